// kalavara-master: flags and wiring only; the logic is in master_service.
#include <spdlog/spdlog.h>

#include "common/cli.hpp"
#include "common/daemon.hpp"
#include "common/logging.hpp"
#include "common/server_runtime.hpp"
#include "master/master_service.hpp"
#include "master/rocksdb_index_store.hpp"

int main(int argc, char** argv) {
  using namespace kalavara;
  CLI::App app{"kalavara-master: keeps the key -> volume index and redirects clients"};
  std::uint16_t port = 6000;
  std::string data_dir;
  std::vector<std::string> volume_flags;
  unsigned threads = default_thread_count();
  std::string bind = "0.0.0.0";
  std::string advertise;
  std::string log_level = "info";
  std::size_t cache_mib = 64;
  std::size_t replicas = 1;
  app.add_option("-p,--port", port, "port to listen on (0: any free port)")->capture_default_str();
  app.add_option("-d,--data-dir", data_dir, "folder of the index (RocksDB)")->required();
  app.add_option("-v,--volumes", volume_flags, "volume base URLs, e.g. http://127.0.0.1:6001");
  app.add_option("-t,--threads", threads, "worker threads")->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--advertise-url", advertise,
                 "URL volumes reach this master at (default: the Host of each PUT)");
  app.add_option("--replicas", replicas, "copies of every value, on distinct volumes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--block-cache-mib", cache_mib, "RocksDB block cache size")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.set_version_flag("--version", "kalavara-master " KALAVARA_VERSION);
  if (int code = parse_command_line(app, argc, argv); code >= 0) return code;

  if (auto status = init_logging(log_level); !status) {
    std::fprintf(stderr, "%s\n", status.error().message.c_str());
    return kUsageExit;
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
  MasterOptions options;
  options.replicas = replicas;
  if (!advertise.empty()) {
    auto url = parse_base_url(advertise);
    if (!url) {
      spdlog::critical("--advertise-url: {}", url.error().message);
      return kUsageExit;
    }
    options.advertise_url = *url;
  }

  auto store = RocksDbIndexStore::open(data_dir, cache_mib * 1024 * 1024);
  if (!store) {
    spdlog::critical("{}", store.error().message);
    return 1;
  }
  auto clock = VersionClock::open(**store);
  if (!clock) {
    spdlog::critical("{}", clock.error().message);
    return 1;
  }
  ServerRuntime runtime(threads);
  // Health and service refer to each other: health asks for the volumes and
  // reports live ones; the service asks health which volumes are up.
  MasterService* service_ptr = nullptr;
  VolumeHealth health(
      runtime.io(), {}, [&service_ptr] { return service_ptr->volumes(); },
      [&service_ptr, &runtime](const std::string& url) {
        service_ptr->volume_alive(url, runtime.io().get_executor());
      });
  MasterService service(**store, **clock, health, options);
  service_ptr = &service;
  if (auto status = service.load_volumes(volumes); !status) {
    spdlog::critical("{}", status.error().message);
    return 1;
  }
  if (service.volumes().size() < replicas) {
    spdlog::warn("{} volume(s) known, {} replicas wanted: PUTs answer 503 until enough are up",
                 service.volumes().size(), replicas);
  }

  http::Router router;
  service.add_routes(router);
  health.start();
  runtime.on_stop([&health] { health.stop(); });
  return serve_until_stopped(runtime, router, bind, port, "kalavara-master",
                             fmt::format(" with {} volume(s), {} replica(s), {} thread(s)",
                                         service.volumes().size(), replicas, threads));
}
