#include "common/server_runtime.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
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
  // Caught from now on, not only once run() waits for it: a logrotate
  // running while the daemon starts (a volume counting its files, the
  // master opening its index) must not kill it. Asio queues the signal
  // until run() waits.
  reload_signals_ = std::make_unique<boost::asio::signal_set>(io(), SIGHUP);
}

ServerRuntime::~ServerRuntime() {
  // Removing the signal_set restores SIGHUP's default action, which would
  // kill a daemon that is only tidying up before it exits 0.
  reload_signals_.reset();
  std::signal(SIGHUP, SIG_IGN);
  blocking_->stop();
  blocking_->join();
  // The hooks may own I/O objects of the io_contexts (the watchdog's timer):
  // they go first, while their io_context still exists.
  stop_hooks_.clear();
  reload_hooks_.clear();
  while (!contexts_.empty()) contexts_.pop_back();
}

std::vector<boost::asio::io_context*> ServerRuntime::contexts() const {
  std::vector<boost::asio::io_context*> all;
  all.reserve(contexts_.size());
  for (const auto& context : contexts_) all.push_back(context.get());
  return all;
}

void ServerRuntime::on_stop(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }

void ServerRuntime::on_reload(std::function<void()> hook) {
  reload_hooks_.push_back(std::move(hook));
}

void ServerRuntime::wait_for_reload() {
  reload_signals_->async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;  // cancelled: the daemon is stopping
    if (reload_hooks_.empty()) {
      spdlog::info("received SIGHUP: no log file to reopen");
    } else {
      spdlog::info("received SIGHUP: reopening log files");
      boost::asio::post(*blocking_, [this] {
        for (auto& hook : reload_hooks_) hook();
      });
    }
    wait_for_reload();
  });
}

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

  wait_for_reload();
  boost::asio::signal_set signals(io(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("received signal {}, finishing in-flight requests", signal_number);
    // A pending wait would keep io() from running out of work. A SIGHUP
    // from here on stays queued, harmless, until the daemon exits.
    reload_signals_->cancel();
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
