// Background work repeated at a fixed interval — re-reading state other
// processes share — until stopped. The step runs to its end before the next
// wait begins, so steps never overlap. Thread-safe: stop() from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string_view>

#include "common/spawn.hpp"

namespace kalavara {

class Periodic {
 public:
  using Step = std::function<boost::asio::awaitable<void>()>;

  // `what` names the work in a log line should it throw (a string literal).
  Periodic(const boost::asio::any_io_executor& executor, std::chrono::milliseconds interval,
           Step step, std::string_view what)
      : timer_(executor), interval_(interval), step_(std::move(step)), what_(what) {}

  void start() { boost::asio::co_spawn(timer_.get_executor(), run(), log_if_thrown(what_)); }

  void stop() {
    stopped_ = true;
    boost::asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
  }

 private:
  boost::asio::awaitable<void> run() {
    while (!stopped_) {
      timer_.expires_after(interval_);
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (stopped_) break;
      co_await step_();
    }
  }

  boost::asio::steady_timer timer_;
  const std::chrono::milliseconds interval_;
  const Step step_;
  const std::string_view what_;
  std::atomic<bool> stopped_{false};
};

}  // namespace kalavara
