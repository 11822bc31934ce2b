#include "common/server_runtime.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

namespace kalavara {

ServerRuntime::ServerRuntime(unsigned threads)
    : threads_(threads == 0 ? 1 : threads), io_(static_cast<int>(threads_)) {
  // A peer that closes while we write must be an error on that connection,
  // not the death of the daemon: sendfile(2), unlike Asio's sends, has no
  // MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
}

void ServerRuntime::on_stop(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }

unsigned default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

int ServerRuntime::run(std::chrono::seconds grace) {
  std::mutex mutex;
  std::condition_variable stopped_cv;
  bool signalled = false;
  bool finished = false;
  bool timed_out = false;

  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("received signal {}, finishing in-flight requests", signal_number);
    for (auto& hook : stop_hooks_) hook();
    std::lock_guard lock(mutex);
    signalled = true;
    stopped_cv.notify_all();
  });

  // The watchdog bounds the shutdown: requests stuck on a dead peer must not
  // keep the daemon alive forever.
  std::thread watchdog([&] {
    std::unique_lock lock(mutex);
    stopped_cv.wait(lock, [&] { return signalled || finished; });
    if (finished) return;
    if (!stopped_cv.wait_for(lock, grace, [&] { return finished; })) {
      timed_out = true;
      io_.stop();
    }
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads_; ++i) workers.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& worker : workers) worker.join();
  {
    std::lock_guard lock(mutex);
    finished = true;
    stopped_cv.notify_all();
  }
  watchdog.join();
  if (timed_out) spdlog::warn("grace period of {}s passed with requests in flight", grace.count());
  return timed_out ? 1 : 0;
}

}  // namespace kalavara
