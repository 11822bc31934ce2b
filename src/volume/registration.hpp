// A volume started with -m and -b registers itself with its master: it posts
// its base URL to /admin/add-volume, retrying with backoff while the master
// is down, and serves requests meanwhile.
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
  // Stops retrying; an attempt in flight finishes on its own timeout. Any thread.
  void stop();

 private:
  boost::asio::awaitable<void> run();

  boost::asio::steady_timer timer_;
  BaseUrl master_;
  BaseUrl self_;
  std::atomic<bool> stopped_{false};
};

}  // namespace kalavara
