// The resource limits both daemons take as flags (docs/security.md,
// "Limits"): what a request may be, and how long and how many connections
// may wait.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>

#include "common/http_server.hpp"
#include "common/key_codec.hpp"

namespace kalavara {

struct LimitFlags {
  std::size_t max_key_bytes = kMaxKeyBytes;
  std::uint64_t max_value_bytes = 0;  // 0: no limit
  std::uint64_t max_header_bytes = http::ServerLimits{}.header_bytes;
  std::size_t max_connections = http::ServerLimits{}.max_connections;
  unsigned header_timeout = 10;  // seconds, as the flags are given
  unsigned body_timeout = 30;
  unsigned idle_timeout = 60;
  unsigned shutdown_timeout = 30;

  // Adds --max-key-bytes, --max-value-bytes, --max-header-bytes,
  // --max-connections, --header-timeout, --body-timeout, --idle-timeout and
  // --shutdown-timeout to `app`, bound to these fields. `app` must not
  // outlive them.
  void add_to(CLI::App& app);

  // The server's share of them.
  http::ServerLimits server_limits() const;
};

// Raises the process's soft limit on open descriptors to its hard limit
// (systemd's default soft limit, 1024, would cap connections far below
// --max-connections), and warns when even that leaves too few for
// `max_connections` plus the daemon's own files.
void allow_connections(std::size_t max_connections);

}  // namespace kalavara
