// The part of main() both daemons share: listen, serve, stop on a signal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_server.hpp"
#include "common/router.hpp"
#include "common/server_runtime.hpp"

namespace kalavara {

// Listens on `bind`:`port` (0: any free port), serves `router` within
// `limits` until SIGINT
// or SIGTERM and returns the process exit code: 0 after a clean stop, 1 when
// the address cannot be used or the grace period ran out. Once listening it
// logs "<name> listening on ADDR:PORT<details>": the line tools wait for.
int serve_until_stopped(ServerRuntime& runtime, const http::Router& router, const std::string& bind,
                        std::uint16_t port, const http::ServerLimits& limits, std::string_view name,
                        std::string_view details);

}  // namespace kalavara
