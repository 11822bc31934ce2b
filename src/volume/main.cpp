// kalavara-volume: flags and wiring only; the logic is in volume_service.
#include <spdlog/spdlog.h>

#include "common/cli.hpp"
#include "common/daemon.hpp"
#include "common/limit_flags.hpp"
#include "common/logging.hpp"
#include "common/security_flags.hpp"
#include "common/server_runtime.hpp"
#include "volume/file_blob_store.hpp"
#include "volume/registration.hpp"
#include "volume/volume_service.hpp"

int main(int argc, char** argv) {
  using namespace kalavara;
  CLI::App app{"kalavara-volume: stores values as files and serves them"};
  std::uint16_t port = 7000;
  std::string data_dir;
  unsigned threads = default_thread_count();
  std::string master_flag;
  std::string base_url_flag;
  std::string bind = "0.0.0.0";
  std::string log_level = "info";
  SecurityFlags security;
  LimitFlags limits;
  app.add_option("-p,--port", port, "port to listen on (0: any free port)")->capture_default_str();
  app.add_option("-d,--data-dir", data_dir, "folder the values are stored in")->required();
  app.add_option("-t,--threads", threads, "worker threads")->capture_default_str();
  app.add_option("-m,--master", master_flag, "master to register with and commit to (needs -b)");
  app.add_option("-b,--base-url", base_url_flag, "this volume's URL as the master should use it");
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  security.add_to(app);
  limits.add_to(app);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.set_version_flag("--version", "kalavara-volume " KALAVARA_VERSION);
  if (int code = parse_command_line(app, argc, argv); code >= 0) return code;

  if (auto status = init_logging(log_level); !status) {
    std::fprintf(stderr, "%s\n", status.error().message.c_str());
    return kUsageExit;
  }
  if (!master_flag.empty() && base_url_flag.empty()) {
    spdlog::critical(
        "-m/--master needs -b/--base-url: the URL the master should use for this volume");
    return kUsageExit;
  }
  VolumeOptions options;
  for (auto [flag, text, target] : {std::tuple{"-m", &master_flag, &options.master},
                                    std::tuple{"-b", &base_url_flag, &options.base_url}}) {
    if (text->empty()) continue;
    auto url = parse_base_url(*text);
    if (!url) {
      spdlog::critical("{} {}: {}", flag, *text, url.error().message);
      return kUsageExit;
    }
    *target = *url;
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

  auto store = FileBlobStore::open_at(data_dir);
  if (!store) {
    spdlog::critical("{}", store.error().message);
    return 1;
  }
  ServerRuntime runtime(threads, 16);
  VolumeService service(**store, options, runtime.blocking());
  http::Router router;
  service.add_routes(router);
  std::optional<Registration> registration;
  if (options.master) {
    registration.emplace(runtime.io(), *options.master, *options.base_url);
    registration->start();
    runtime.on_stop([&registration] { registration->stop(); });
  }
  allow_connections(limits.max_connections);
  return serve_until_stopped(runtime, router, bind, port, limits.server_limits(), "kalavara-volume",
                             fmt::format(", data in {}, {} thread(s)", data_dir, threads));
}
