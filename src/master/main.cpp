// kalavara-master: flags and wiring only; the logic is in master_service (serving) and
// rebuild (the rebuild subcommand).
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>

#include "common/blocking.hpp"
#include "common/cli.hpp"
#include "common/daemon.hpp"
#include "common/http_client.hpp"
#include "common/limit_flags.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/periodic.hpp"
#include "common/probes.hpp"
#include "common/security_flags.hpp"
#include "common/server_runtime.hpp"
#include "master/admin_cli.hpp"
#include "master/admin_service.hpp"
#include "master/backup.hpp"
#include "master/etcd_coordination.hpp"
#include "master/etcd_index_store.hpp"
#include "master/jobs.hpp"
#include "master/key_protocol.hpp"
#include "master/maintenance.hpp"
#include "master/master_service.hpp"
#include "master/rebuild.hpp"
#include "master/removal_worker.hpp"
#include "master/rocksdb_index_store.hpp"
#include "master/volume_registry.hpp"

int main(int argc, char** argv) {
  using namespace kalavara;
  CLI::App app{"kalavara-master: keeps the key -> volume index and redirects clients"};
  std::uint16_t port = 6000;
  std::string data_dir;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "kalavara/";
  std::vector<std::string> volume_flags;
  unsigned threads = default_thread_count();
  std::string bind = "0.0.0.0";
  std::string advertise;
  std::string log_level = "info";
  std::size_t cache_mib = 64;
  std::size_t replicas = 1;
  std::uint64_t volume_min_free_bytes = 64 * 1024 * 1024;
  unsigned old_version_grace = 30;
  unsigned max_upload_time = 3600;
  std::size_t maintenance_concurrency = 4;
  unsigned repair_interval = 0;
  unsigned orphan_min_age = 600;
  SecurityFlags security;
  LimitFlags limits;
  LogFlags logs;
  std::string admin_token_file;
  std::string backup_dir;
  app.add_option("-p,--port", port, "port to listen on (0: any free port)")->capture_default_str();
  // Required to serve; not when a subcommand runs instead (checked below).
  app.add_option("-d,--data-dir", data_dir,
                 "folder of the index (RocksDB); this or --etcd is required");
  app.add_option("--etcd", etcd_endpoints,
                 "client URLs of etcd's members, e.g. http://10.0.0.1:2379: the index lives "
                 "there instead of -d, shared by every master given the same --etcd and "
                 "--etcd-prefix")
      ->delimiter(',');
  app.add_option("--etcd-prefix", etcd_prefix,
                 "where in etcd's key space the index lives (with --etcd)")
      ->capture_default_str();
  app.add_option("-v,--volumes", volume_flags, "volume base URLs, e.g. http://127.0.0.1:6001");
  app.add_option("-t,--threads", threads, "worker threads")->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--advertise-url", advertise,
                 "URL volumes reach this master at (default: the Host of each PUT)");
  app.add_option("--replicas", replicas, "copies of every value, on distinct volumes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--volume-min-free-bytes", volume_min_free_bytes,
                 "new writes skip volumes with less free space than this, e.g. 64MiB (0: never)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--old-version-grace", old_version_grace,
                 "seconds a replaced version stays readable for readers already sent to it")
      ->capture_default_str();
  app.add_option("--max-upload-time", max_upload_time,
                 "seconds an upload may take from its redirect to its commit; deletes are "
                 "remembered at least this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--maintenance-concurrency", maintenance_concurrency,
                 "keys a maintenance job works on at once (its throttle)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--repair-interval", repair_interval,
                 "seconds between repair jobs started on their own (0: never)")
      ->capture_default_str();
  app.add_option("--orphan-min-age", orphan_min_age,
                 "seconds a file nothing names must have existed before a scrub removes it")
      ->capture_default_str();
  security.add_to(app);
  limits.add_to(app);
  app.add_option("--admin-token-file", admin_token_file,
                 "file holding the token /admin/* needs as \"Authorization: Bearer\" (mode 600)")
      ->check(CLI::ExistingFile);
  app.add_option("--backup-dir", backup_dir,
                 "folder POST /admin/backup writes backups of the index into, one new folder "
                 "each (default: backups are off)");
  // The admin commands: each runs against a master that is up.
  std::string admin_master;
  std::string retire_url;
  std::vector<std::pair<CLI::App*, JobKind>> job_commands;
  for (const auto& [name, help, kind] :
       {std::tuple{"rebalance", "move every value to the volumes its placement picks now",
                   JobKind::kRebalance},
        std::tuple{"repair", "re-create missing or bad copies up to --replicas", JobKind::kRepair},
        std::tuple{"scrub", "re-read every copy against its checksum; remove orphans",
                   JobKind::kScrub},
        std::tuple{"remove-volume", "drain a volume, then forget it", JobKind::kRetire}}) {
    auto* command = app.add_subcommand(name, help);
    command
        ->add_option("--master", admin_master,
                     "the master to run it on, e.g. http://127.0.0.1:6000")
        ->required();
    command->add_option("--admin-token-file", admin_token_file, "the master's admin token")
        ->check(CLI::ExistingFile);
    if (kind == JobKind::kRetire) {
      command->add_option("url", retire_url, "the volume to retire")->required();
    }
    job_commands.emplace_back(command, kind);
  }
  auto* jobs_command = app.add_subcommand("jobs", "list the master's maintenance jobs");
  jobs_command->add_option("--master", admin_master, "the master to ask")->required();
  jobs_command->add_option("--admin-token-file", admin_token_file, "the master's admin token")
      ->check(CLI::ExistingFile);
  auto* backup_command =
      app.add_subcommand("backup", "have the master write a backup of its index (--backup-dir)");
  backup_command->add_option("--master", admin_master, "the master to back up")->required();
  backup_command->add_option("--admin-token-file", admin_token_file, "the master's admin token")
      ->check(CLI::ExistingFile);
  app.require_subcommand(0, 1);
  app.add_option("--block-cache-mib", cache_mib, "RocksDB block cache size")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  logs.add_to(app);
  app.set_version_flag("--version", "kalavara-master " KALAVARA_VERSION);

  RebuildOptions rebuild_options;
  std::vector<std::string> rebuild_volumes;
  auto* rebuild = app.add_subcommand(
      "rebuild",
      "rebuild a lost index from the volumes (the master stopped, its index folder empty)");
  rebuild->add_option("-d,--data-dir", rebuild_options.index_dir, "folder of the new index")
      ->required();
  rebuild->add_option("-v,--volumes", rebuild_volumes, "every volume that may hold values")
      ->required();
  rebuild->add_flag("--clean", rebuild_options.clean,
                    "remove stale copies (versions below the newest, values under a delete "
                    "marker) on their volumes");
  rebuild
      ->add_option("--secret-file", security.secret_files,
                   "the cluster's secret, when the volumes need signed requests")
      ->check(CLI::ExistingFile);
  rebuild->add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  if (int code = parse_command_line(app, argc, argv); code >= 0) return code;

  if (auto status = init_logging(log_level, logs.log_format()); !status) {
    std::fprintf(stderr, "%s\n", status.error().message.c_str());
    return kUsageExit;
  }
  const auto admin_target = [&]() -> std::optional<BaseUrl> {
    auto url = parse_base_url(admin_master);
    if (!url) {
      std::fprintf(stderr, "--master %s: %s\n", admin_master.c_str(), url.error().message.c_str());
      return std::nullopt;
    }
    return std::move(url).value();
  };
  std::string admin_token;
  if (!admin_token_file.empty()) {
    auto token = load_token(admin_token_file);
    if (!token) {
      spdlog::critical("--admin-token-file: {}", token.error().message);
      return kUsageExit;
    }
    admin_token = std::move(token).value();
  }
  const bool admin_command = jobs_command->parsed() || backup_command->parsed() ||
                             std::any_of(job_commands.begin(), job_commands.end(),
                                         [](const auto& entry) { return entry.first->parsed(); });
  if (admin_command) http::use_credentials({nullptr, admin_token});
  for (const auto& [command, kind] : job_commands) {
    if (!command->parsed()) continue;
    const auto master = admin_target();
    if (!master) return kUsageExit;
    std::string target;
    if (kind == JobKind::kRetire) {
      auto url = parse_base_url(retire_url);
      if (!url) {
        std::fprintf(stderr, "%s: %s\n", retire_url.c_str(), url.error().message.c_str());
        return kUsageExit;
      }
      target = url->text;
    }
    return run_job_command(kind, *master, target);
  }
  if (jobs_command->parsed()) {
    const auto master = admin_target();
    return master ? print_jobs(*master) : kUsageExit;
  }
  if (backup_command->parsed()) {
    const auto master = admin_target();
    return master ? run_backup_command(*master) : kUsageExit;
  }
  if (*rebuild) {
    // Without a secret nothing is signed, and volumes that need it refuse.
    auto rebuild_signer = security.secret_files.empty()
                              ? Result<std::unique_ptr<const Signer>>(nullptr)
                              : start_signing(security, "kalavara-master rebuild");
    if (!rebuild_signer) {
      spdlog::critical("{}", rebuild_signer.error().message);
      return kUsageExit;
    }
    for (const auto& text : rebuild_volumes) {
      auto url = parse_base_url(text);
      if (!url) {
        spdlog::critical("-v {}: {}", text, url.error().message);
        return kUsageExit;
      }
      if (std::find(rebuild_options.volumes.begin(), rebuild_options.volumes.end(), *url) ==
          rebuild_options.volumes.end()) {
        rebuild_options.volumes.push_back(*url);
      }
    }
    auto summary = rebuild_index(rebuild_options);
    if (!summary) {
      spdlog::critical("rebuild: {}", summary.error().message);
      return summary.error().code == Errc::kConflict ? kUsageExit : 1;
    }
    return rebuild_exit_code(*summary);
  }
  if (data_dir.empty() == etcd_endpoints.empty()) {
    std::fprintf(stderr,
                 "one of --data-dir and --etcd is required\nRun with --help for more "
                 "information.\n");
    return kUsageExit;
  }
  EtcdStoreSettings etcd_settings;
  etcd_settings.prefix = etcd_prefix;
  for (const auto& text : etcd_endpoints) {
    auto url = parse_base_url(text);
    if (!url) {
      spdlog::critical("--etcd {}: {}", text, url.error().message);
      return kUsageExit;
    }
    etcd_settings.client.endpoints.push_back(*url);
  }
  std::vector<BaseUrl> volumes;
  for (const auto& text : volume_flags) {
    auto url = parse_base_url(text);
    if (!url) {
      spdlog::critical("-v {}: {}", text, url.error().message);
      return kUsageExit;
    }
    volumes.push_back(*url);
  }
  auto signer = start_signing(security, "kalavara-master");
  if (!signer) {
    spdlog::critical("{}", signer.error().message);
    return kUsageExit;
  }
  MasterOptions options;
  options.replicas = replicas;
  options.volume_min_free_bytes = volume_min_free_bytes;
  options.signer = signer->get();
  options.sign_reads = security.sign_reads;
  options.admin_token = admin_token;
  options.max_key_bytes = limits.max_key_bytes;
  options.max_value_bytes = limits.max_value_bytes;
  if (admin_token.empty()) {
    spdlog::warn(
        "kalavara-master: no --admin-token-file: anyone who can reach this port can "
        "run maintenance jobs and list volumes");
  }
  if (options.signer != nullptr && advertise.empty()) {
    spdlog::warn(
        "kalavara-master: --secret-file without --advertise-url: redirects name this "
        "master by the Host a client sent; start volumes with -m, or set "
        "--advertise-url, so none commits to an address a client chose");
  }
  if (!advertise.empty()) {
    auto url = parse_base_url(advertise);
    if (!url) {
      spdlog::critical("--advertise-url: {}", url.error().message);
      return kUsageExit;
    }
    options.advertise_url = *url;
  }

  // Synced index writes wait on the blocking pool, not on an io thread;
  // concurrent ones are group-committed by RocksDB.
  ServerRuntime runtime(threads, 8);
  const bool shared_index = !etcd_endpoints.empty();
  std::unique_ptr<RocksDbIndexStore> rocksdb;
  std::unique_ptr<EtcdIndexStore> etcd_store;
  if (shared_index) {
    auto opened = run_to_completion(runtime.io(), EtcdIndexStore::open(std::move(etcd_settings)));
    if (!opened) {
      spdlog::critical("{}", opened.error().message);
      return 1;
    }
    etcd_store = std::move(opened).value();
  } else {
    auto opened = RocksDbIndexStore::open(data_dir, cache_mib * 1024 * 1024, runtime.blocking());
    if (!opened) {
      spdlog::critical("{}", opened.error().message);
      return 1;
    }
    rocksdb = std::move(opened).value();
    // Before the clock opens: a restored backup's floor is moved past what
    // the old master may have issued since.
    auto restored = run_to_completion(
        runtime.io(), adopt_restored_backup(*rocksdb, data_dir, wall_clock_micros()));
    if (!restored) {
      spdlog::critical("{}", restored.error().message);
      return 1;
    }
    if (*restored) {
      spdlog::warn(
          "kalavara-master: {} is a restored backup (taken {}): writes and deletes made after "
          "it are not in the index; version floor moved ahead (see docs/operations.md)",
          data_dir, restored->value().empty() ? "at an unknown time" : restored->value());
    }
  }
  IndexStore& store = shared_index ? static_cast<IndexStore&>(*etcd_store) : *rocksdb;
  auto clock = run_to_completion(runtime.io(), VersionClock::open(store));
  if (!clock) {
    spdlog::critical("{}", clock.error().message);
    return 1;
  }
  // Several masters: each holds a version slot and one leads the background
  // work, both under an etcd lease.
  std::optional<EtcdCoordination> coordination;
  if (shared_index) {
    CoordinationSettings coordinated;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    coordinated.identity = options.advertise_url
                               ? options.advertise_url->text
                               : fmt::format("{} pid {}", host, static_cast<long>(::getpid()));
    coordination.emplace(etcd_store->client(), etcd_store->prefix(), store, **clock, coordinated);
    if (auto joined = run_to_completion(runtime.io(), coordination->join()); !joined) {
      spdlog::critical("kalavara-master: {}", joined.error().message);
      return 1;
    }
  }
  const Leadership& leadership =
      coordination ? static_cast<const Leadership&>(*coordination) : sole_master();
  ProtocolSettings settings;
  settings.old_version_grace = std::chrono::seconds(old_version_grace);
  settings.max_upload_time = std::chrono::seconds(max_upload_time);
  settings.shared_index = shared_index;
  KeyProtocol protocol(store, **clock, settings);

  VolumeRegistry registry(store);
  if (auto status = run_to_completion(runtime.io(), registry.load()); !status) {
    spdlog::critical("{}", status.error().message);
    return 1;
  }
  for (const auto& url : volumes) {
    if (auto added = run_to_completion(runtime.io(), registry.add(url)); !added) {
      spdlog::critical("{}", added.error().message);
      return 1;
    }
  }
  if (registry.snapshot()->all.size() < replicas) {
    spdlog::warn("{} volume(s) known, {} replicas wanted: PUTs answer 503 until enough are up",
                 registry.snapshot()->all.size(), replicas);
  }

  KeyLocks locks;
  RemovalWorker removals(protocol, locks, leadership);
  VolumeHealth health(
      runtime.io(), {}, [&registry] { return registry.snapshot()->all; },
      [&removals, &runtime](const std::string& url) {
        removals.volume_alive(url, runtime.io().get_executor());
      });
  MasterService service(protocol, registry, health, removals, options);

  Maintenance maintenance(protocol, registry, health, locks,
                          {replicas, std::chrono::seconds(orphan_min_age)});
  JobRunner jobs(store, protocol, maintenance, registry, health, removals,
                 {maintenance_concurrency, std::chrono::seconds(repair_interval)}, leadership);
  if (auto status = run_to_completion(runtime.io(), jobs.load()); !status) {
    spdlog::critical("{}", status.error().message);
    return 1;
  }
  // An index in etcd is backed up with etcd's own tools (docs/scaling.md).
  std::optional<Backups> backups;
  if (rocksdb) backups.emplace(*rocksdb, runtime.blocking(), backup_dir);
  AdminService admin(jobs, backups ? &*backups : nullptr);

  Lifecycle lifecycle;
  metrics::Registry registry_metrics;
  metrics::add_process_collector(registry_metrics, "master");
  registry_metrics.add([&service](metrics::Writer& out) { service.collect(out); });
  registry_metrics.add([&jobs](metrics::Writer& out) { jobs.collect(out); });
  if (rocksdb) {
    registry_metrics.add([&rocksdb](metrics::Writer& out) { rocksdb->collect_metrics(out); });
  } else {
    registry_metrics.add([&etcd_store](metrics::Writer& out) { etcd_store->collect_metrics(out); });
    registry_metrics.add([&coordination](metrics::Writer& out) { coordination->collect(out); });
  }

  http::Router router;
  service.add_routes(router);
  admin.add_routes(router, {nullptr, &options.admin_token});
  add_readiness_route(
      router, lifecycle, [&service, &coordination]() -> boost::asio::awaitable<Readiness> {
        // On etcd: without a slot (etcd out of reach for half a lease) no
        // write can be taken, and reads fail as well.
        if (coordination && !coordination->slot()) {
          co_return Readiness{false, "no etcd lease: the index in etcd is out of reach"};
        }
        co_return service.readiness();
      });
  add_metrics_route(router, registry_metrics, runtime.blocking());
  // Several masters: volumes registered, drained or retired through
  // another one are seen here within a refresh.
  Periodic volume_refresh(
      runtime.io().get_executor(), std::chrono::seconds(2),
      [&registry]() -> boost::asio::awaitable<void> {
        if (auto status = co_await registry.load(); !status) {
          spdlog::debug("cannot re-read the registered volumes: {}", status.error().message);
        }
      },
      "re-reading the registered volumes");
  if (coordination) {
    coordination->start(runtime.io().get_executor());
    volume_refresh.start();
  }
  health.start();
  removals.start(runtime.io().get_executor());
  jobs.start(runtime.io().get_executor());
  runtime.on_stop([&health, &removals, &jobs, &coordination, &volume_refresh] {
    health.stop();
    removals.stop();
    jobs.stop();
    volume_refresh.stop();
    if (coordination) coordination->stop();
  });
  allow_connections(limits.max_connections);
  ServeSettings serve;
  serve.bind = bind;
  serve.port = port;
  serve.limits = limits.server_limits();
  serve.name = "kalavara-master";
  serve.details = fmt::format(" with {} volume(s), {} replica(s), {} thread(s), index {}",
                              registry.snapshot()->all.size(), replicas, threads,
                              shared_index ? "in etcd" : data_dir);
  serve.registry = &registry_metrics;
  serve.lifecycle = &lifecycle;
  serve.access_log = logs.access_log;
  serve.access_log_format = logs.log_format();
  serve.shutdown_timeout = std::chrono::seconds(limits.shutdown_timeout);
  return serve_until_stopped(runtime, router, serve);
}
