// Runs a daemon's io_context on N threads until SIGINT or SIGTERM, then shuts
// down gracefully: stop hooks run (stop accepting, cancel background work),
// in-flight requests finish, and run() returns once nothing is left or the
// grace period has passed.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace kalavara {

class ServerRuntime {
 public:
  explicit ServerRuntime(unsigned threads);
  ServerRuntime(const ServerRuntime&) = delete;
  ServerRuntime& operator=(const ServerRuntime&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Registers `hook` to run, on an io thread, when a stop signal arrives.
  void on_stop(std::function<void()> hook);

  // Blocks until shut down. Returns 0 after a clean stop, 1 when the grace
  // period ran out with work still pending.
  int run(std::chrono::seconds grace = std::chrono::seconds(20));

 private:
  unsigned threads_;
  boost::asio::io_context io_;
  std::vector<std::function<void()>> stop_hooks_;
};

// The default for -t: the machine's hardware threads (at least 1).
unsigned default_thread_count();

}  // namespace kalavara
