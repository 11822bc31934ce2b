// The part of main() both daemons share: listen, serve, stop on a signal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/probes.hpp"
#include "common/router.hpp"
#include "common/server_runtime.hpp"

namespace kalavara {

struct ServeSettings {
  std::string bind = "0.0.0.0";
  std::uint16_t port = 0;  // 0: any free port
  http::ServerLimits limits;
  std::string name;     // "kalavara-master"
  std::string details;  // appended to the "listening" line
  // Told of every connection and request, besides the request metrics.
  std::vector<http::ServerObserver*> observers;
  // The access log (AccessLog): "" for none (nothing is added to the
  // request path), "-" for stdout, otherwise a file reopened on SIGHUP.
  std::string access_log;
  LogFormat access_log_format = LogFormat::kText;
  // Gets the kalavara_http_* figures; may be null.
  metrics::Registry* registry = nullptr;
  // Set stopping when the stop signal comes; may be null.
  Lifecycle* lifecycle = nullptr;
  // How long requests in flight may take to finish once the stop signal
  // came.
  std::chrono::seconds shutdown_timeout{30};
};

// Opens the access log if one is set, listens, serves `router` until SIGINT
// or SIGTERM, shuts down gracefully (HttpServer::stop()) and returns the
// process exit code: 0 after a clean stop, 1 when the access log cannot be
// opened or the address cannot be used. When requests are still in
// flight after the shutdown timeout, the process exits with 1 at once,
// without returning (see daemon.cpp). Once listening it logs "<name> listening on
// ADDR:PORT<details>" (the line tools wait for) and tells systemd it is
// ready; at the stop signal, that it is stopping.
int serve_until_stopped(ServerRuntime& runtime, const http::Router& router,
                        const ServeSettings& settings);

}  // namespace kalavara
