#include "common/daemon.hpp"

#include <spdlog/spdlog.h>

#include "common/http_server.hpp"

namespace kalavara {

int serve_until_stopped(ServerRuntime& runtime, const http::Router& router, const std::string& bind,
                        std::uint16_t port, const http::ServerLimits& limits, std::string_view name,
                        std::string_view details) {
  http::HttpServer server(runtime.contexts(), router, limits);
  auto endpoint = server.listen(bind, port);
  if (!endpoint) {
    spdlog::critical("{}", endpoint.error().message);
    return 1;
  }
  server.start();
  runtime.on_stop([&server] { server.stop(); });
  spdlog::info("{} listening on {}:{}{}", name, endpoint->address().to_string(), endpoint->port(),
               details);
  return runtime.run();
}

}  // namespace kalavara
