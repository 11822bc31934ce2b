// Runs a daemon's event loops until SIGINT or SIGTERM, then shuts down
// gracefully: stop hooks run (stop accepting, cancel background work),
// in-flight requests finish, and run() returns once nothing is left or the
// grace period has passed. SIGHUP never stops the daemon: it runs the reload
// hooks (reopening log files after logrotate, `systemctl reload`).
//
// There is one io_context per thread, as nginx has one event loop per worker:
// a connection lives on one of them from accept to close, so its handlers
// never run concurrently and need no strand, and no two threads contend for
// one scheduler queue.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace kalavara {

class ServerRuntime {
 public:
  // `threads` io threads, and `blocking_threads` for blocking work. From
  // here on SIGHUP is caught: one that arrives before run() (while the
  // daemon still starts up) waits for it, and one after run() is ignored,
  // instead of killing the process as it would by default.
  ServerRuntime(unsigned threads, unsigned blocking_threads);
  // Destroys the io_contexts last first: what is left on the others when a
  // shutdown timed out (connections) may still refer to the first's objects
  // (the listener), never the reverse.
  ~ServerRuntime();
  ServerRuntime(const ServerRuntime&) = delete;
  ServerRuntime& operator=(const ServerRuntime&) = delete;

  // The first thread's io_context: signals and background work (health
  // checks, registration) run here, and so does the listener.
  boost::asio::io_context& io() { return *contexts_.front(); }

  // Every thread's io_context, io() first; the server spreads connections
  // over them.
  std::vector<boost::asio::io_context*> contexts() const;

  // The pool blocking work runs on (fsync, synced index writes; see
  // common/blocking.hpp), so that no io thread waits on a disk. run() ends
  // by letting the work running on it finish (work not started yet is
  // dropped), so nothing it does outlives the daemon's objects.
  boost::asio::thread_pool& blocking() { return *blocking_; }

  // Registers `hook` to run, on io()'s thread, when a stop signal arrives.
  // The hooks are destroyed before the io_contexts, so a hook may own I/O
  // objects of theirs.
  void on_stop(std::function<void()> hook);

  // Registers `hook` to run at each SIGHUP while run() runs, until the
  // stop signal: every hook in the order registered, on a thread of
  // blocking(), since a hook may open files. The hooks of two SIGHUPs in
  // quick succession may overlap, so a hook must be thread-safe. Register
  // before run().
  void on_reload(std::function<void()> hook);

  // Blocks until shut down. Returns 0 after a clean stop, 1 when the grace
  // period ran out with work still pending.
  int run(std::chrono::seconds grace = std::chrono::seconds(20));

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::unique_ptr<boost::asio::thread_pool> blocking_;
  std::vector<std::function<void()>> stop_hooks_;
  std::vector<std::function<void()>> reload_hooks_;
  std::unique_ptr<boost::asio::signal_set> reload_signals_;  // SIGHUP

  // Waits for the next SIGHUP, runs the reload hooks, and waits again.
  void wait_for_reload();
};

// The default for -t: the machine's hardware threads (at least 1).
unsigned default_thread_count();

}  // namespace kalavara
