// kalavara-volume: flags and wiring only; the logic is in volume_service.
#include <spdlog/spdlog.h>

#include "common/cli.hpp"
#include "common/daemon.hpp"
#include "common/limit_flags.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/probes.hpp"
#include "common/security_flags.hpp"
#include "common/server_runtime.hpp"
#include "volume/file_blob_store.hpp"
#include "volume/registration.hpp"
#include "volume/volume_service.hpp"
#include "volume/volume_status.hpp"

int main(int argc, char** argv) {
  using namespace kalavara;
  CLI::App app{"kalavara-volume: stores values as files and serves them"};
  std::uint16_t port = 7000;
  std::string data_dir;
  unsigned threads = default_thread_count();
  std::vector<std::string> master_flags;
  std::string base_url_flag;
  std::string bind = "0.0.0.0";
  std::string log_level = "info";
  SecurityFlags security;
  LimitFlags limits;
  LogFlags logs;
  std::uint64_t min_free_bytes = 64 * 1024 * 1024;
  app.add_option("-p,--port", port, "port to listen on (0: any free port)")->capture_default_str();
  app.add_option("-d,--data-dir", data_dir, "folder the values are stored in")->required();
  app.add_option("-t,--threads", threads, "worker threads")->capture_default_str();
  app.add_option("-m,--master", master_flags,
                 "masters to register with and commit to (needs -b); several only when they "
                 "share an index in etcd")
      ->delimiter(',');
  app.add_option("-b,--base-url", base_url_flag, "this volume's URL as the master should use it");
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--min-free-bytes", min_free_bytes,
                 "free disk space, e.g. 1GiB, below which /readyz answers 503")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  security.add_to(app);
  limits.add_to(app);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  logs.add_to(app);
  app.set_version_flag("--version", "kalavara-volume " KALAVARA_VERSION);
  if (int code = parse_command_line(app, argc, argv); code >= 0) return code;

  if (auto status = init_logging(log_level, logs.log_format()); !status) {
    std::fprintf(stderr, "%s\n", status.error().message.c_str());
    return kUsageExit;
  }
  if (!master_flags.empty() && base_url_flag.empty()) {
    spdlog::critical(
        "-m/--master needs -b/--base-url: the URL the master should use for this volume");
    return kUsageExit;
  }
  VolumeOptions options;
  for (const auto& text : master_flags) {
    auto url = parse_base_url(text);
    if (!url) {
      spdlog::critical("-m {}: {}", text, url.error().message);
      return kUsageExit;
    }
    options.masters.push_back(*url);
  }
  if (!base_url_flag.empty()) {
    auto url = parse_base_url(base_url_flag);
    if (!url) {
      spdlog::critical("-b {}: {}", base_url_flag, url.error().message);
      return kUsageExit;
    }
    options.base_url = *url;
  }

  auto signer = start_signing(security, "kalavara-volume");
  if (!signer) {
    spdlog::critical("{}", signer.error().message);
    return kUsageExit;
  }
  options.signer = signer->get();
  options.sign_reads = security.sign_reads;
  options.max_key_bytes = limits.max_key_bytes;
  options.max_value_bytes = limits.max_value_bytes;

  // Before the store, whose opening counts every file: SIGHUP must not
  // kill a volume that starts (see ServerRuntime).
  ServerRuntime runtime(threads, 16);
  auto store = FileBlobStore::open_at(data_dir);
  if (!store) {
    spdlog::critical("{}", store.error().message);
    return 1;
  }
  Lifecycle lifecycle;
  options.lifecycle = &lifecycle;
  VolumeService service(**store, options, runtime.blocking());
  std::optional<Registration> registration;
  if (!options.masters.empty()) {
    registration.emplace(runtime.io(), options.masters, *options.base_url);
    registration->start();
    runtime.on_stop([&registration] { registration->stop(); });
  }
  VolumeStatus status(**store, service, registration ? &*registration : nullptr, runtime.blocking(),
                      min_free_bytes);
  metrics::Registry registry;
  metrics::add_process_collector(registry, "volume");
  registry.add([&status](metrics::Writer& out) { status.collect(out); });

  http::Router router;
  service.add_routes(router);
  add_readiness_route(router, lifecycle, [&status] { return status.readiness(); });
  add_metrics_route(router, registry, runtime.blocking());
  allow_connections(limits.max_connections);
  ServeSettings serve;
  serve.bind = bind;
  serve.port = port;
  serve.limits = limits.server_limits();
  serve.name = "kalavara-volume";
  serve.details = fmt::format(", data in {}, {} thread(s)", data_dir, threads);
  serve.registry = &registry;
  serve.lifecycle = &lifecycle;
  serve.access_log = logs.access_log;
  serve.access_log_format = logs.log_format();
  serve.shutdown_timeout = std::chrono::seconds(limits.shutdown_timeout);
  return serve_until_stopped(runtime, router, serve);
}
