#include "common/server_runtime.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

namespace kalavara {

ServerRuntime::ServerRuntime(unsigned threads, unsigned blocking_threads)
    : blocking_(std::make_unique<boost::asio::thread_pool>(std::max(1U, blocking_threads))) {
  const unsigned count = threads == 0 ? 1 : threads;
  // Concurrency hint 1: each io_context is run by one thread (others may
  // still post to it, e.g. the blocking pools resuming a coroutine).
  for (unsigned i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
  // A peer that closes while we write must be an error on that connection,
  // not the death of the daemon: sendfile(2), unlike Asio's sends, has no
  // MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
}

ServerRuntime::~ServerRuntime() {
  blocking_->stop();
  blocking_->join();
  while (!contexts_.empty()) contexts_.pop_back();
}

std::vector<boost::asio::io_context*> ServerRuntime::contexts() const {
  std::vector<boost::asio::io_context*> all;
  all.reserve(contexts_.size());
  for (const auto& context : contexts_) all.push_back(context.get());
  return all;
}

void ServerRuntime::on_stop(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }

unsigned default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

int ServerRuntime::run(std::chrono::seconds grace) {
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::mutex mutex;
  std::condition_variable stopped_cv;
  bool signalled = false;
  bool finished = false;
  bool timed_out = false;

  // The other threads' loops may have nothing to do until a connection
  // comes; they are kept running until the stop signal.
  std::vector<std::optional<Guard>> keep_running;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    keep_running.emplace_back(contexts_[i]->get_executor());
  }

  boost::asio::signal_set signals(io(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("received signal {}, finishing in-flight requests", signal_number);
    for (auto& hook : stop_hooks_) hook();
    for (auto& guard : keep_running) guard.reset();
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
      for (auto& context : contexts_) context->stop();
    }
  });

  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    workers.emplace_back([context = contexts_[i].get()] { context->run(); });
  }
  io().run();
  for (auto& worker : workers) worker.join();
  {
    std::lock_guard lock(mutex);
    finished = true;
    stopped_cv.notify_all();
  }
  watchdog.join();
  blocking_->stop();
  blocking_->join();
  if (timed_out)
    spdlog::warn("shutdown timeout of {} s passed with requests in flight (--shutdown-timeout)",
                 grace.count());
  return timed_out ? 1 : 0;
}

}  // namespace kalavara
