// A volume started with -m and -b registers itself with its master: it posts
// its base URL to /admin/add-volume, retrying with backoff while the master
// is down, and serves requests meanwhile. When it shuts down it tells the
// master, which then sends it no more reads or writes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>

#include "common/url.hpp"

namespace kalavara {

class Registration {
 public:
  Registration(boost::asio::io_context& io, BaseUrl master, BaseUrl self);

  // Starts the attempts on the io_context. Call once.
  void start();
  // Stops retrying (an attempt in flight finishes on its own timeout) and
  // tells the master this volume is stopping: one call, in the background,
  // bounded by a few seconds, logged if it fails. Call once. Any thread.
  void stop();

  // Whether the master has taken the registration. Any thread.
  bool registered() const { return registered_.load(std::memory_order_relaxed); }

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> announce_stopping();

  boost::asio::steady_timer timer_;
  BaseUrl master_;
  BaseUrl self_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> registered_{false};
};

}  // namespace kalavara
