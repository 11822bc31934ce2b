// A volume started with -m and -b registers itself with its masters (one,
// or several sharing an index in etcd): it posts its base URL to each one's
// /internal/register, retrying with backoff while that master is down, and
// serves requests meanwhile. When it shuts down it tells every master,
// which then sends it no more reads or writes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <memory>
#include <vector>

#include "common/url.hpp"

namespace kalavara {

class Registration {
 public:
  // `masters` is not empty.
  Registration(boost::asio::io_context& io, std::vector<BaseUrl> masters, BaseUrl self);

  // Starts the attempts on the io_context. Call once.
  void start();
  // Stops retrying (an attempt in flight finishes on its own timeout) and
  // tells each master this volume is stopping: one call each, in the background,
  // bounded by a few seconds, logged if it fails. Call once. Any thread.
  void stop();

  // Whether a master has taken the registration (with several on one
  // index, one suffices: they share the registered volumes). Any thread.
  bool registered() const { return registered_.load(std::memory_order_relaxed); }

 private:
  boost::asio::awaitable<void> run(BaseUrl master);
  boost::asio::awaitable<void> announce_stopping(BaseUrl master);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  // One per master, on strand_; cancelled by stop().
  std::vector<std::unique_ptr<boost::asio::steady_timer>> timers_;
  const std::vector<BaseUrl> masters_;
  BaseUrl self_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> registered_{false};
};

}  // namespace kalavara
