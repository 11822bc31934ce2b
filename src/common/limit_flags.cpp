#include "common/limit_flags.hpp"

#include <sys/resource.h>

#include <spdlog/spdlog.h>

namespace kalavara {

void LimitFlags::add_to(CLI::App& app) {
  app.add_option("--max-key-bytes", max_key_bytes,
                 "longest key taken, in bytes once percent-decoded (at most 1024, the on-disk "
                 "format's limit)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, kMaxKeyBytes));
  app.add_option("--max-value-bytes", max_value_bytes,
                 "largest value taken, e.g. 64MiB (413 beyond it); 0: no limit")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--max-header-bytes", max_header_bytes,
                 "most a request may send besides its body: request line, header fields, chunk "
                 "extensions and trailers (431 beyond it)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1024 * 1024}));
  app.add_option("--max-connections", max_connections,
                 "connections open at once; one more is answered 503 and closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--header-timeout", header_timeout,
                 "seconds a request's header may take to arrive whole, from its first byte "
                 "(408 and close beyond it)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--body-timeout", body_timeout,
                 "seconds a request body may pause, or a client take nothing of an answer, "
                 "before the connection is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--idle-timeout", idle_timeout,
                 "seconds a kept-alive connection may wait for its next request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--shutdown-timeout", shutdown_timeout,
                 "seconds requests in flight may take to finish after SIGTERM; then the daemon "
                 "exits anyway, with status 1")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

http::ServerLimits LimitFlags::server_limits() const {
  http::ServerLimits limits;
  limits.header_bytes = static_cast<std::uint32_t>(max_header_bytes);
  limits.max_connections = max_connections;
  limits.header_timeout = std::chrono::seconds(header_timeout);
  limits.body_timeout = std::chrono::seconds(body_timeout);
  limits.idle_timeout = std::chrono::seconds(idle_timeout);
  return limits;
}

void allow_connections(std::size_t max_connections) {
  // Descriptors besides connections: files being read and written, the
  // index, outgoing calls to other daemons.
  constexpr rlim_t kOwnDescriptors = 256;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) (void)::getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < max_connections + kOwnDescriptors) {
    spdlog::warn(
        "--max-connections {} needs about {} open files, but the limit is {}: connections "
        "beyond it fail at accept (raise LimitNOFILE, or lower --max-connections)",
        max_connections, max_connections + kOwnDescriptors, limit.rlim_cur);
  }
}

}  // namespace kalavara
