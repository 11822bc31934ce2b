#include "common/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace kalavara {

void notify_ready(std::string_view status) {
  const std::string message = "READY=1\nSTATUS=" + std::string(status);
  if (const int r = sd_notify(0, message.c_str()); r < 0) {
    spdlog::warn("sd_notify READY=1 failed: error {}", -r);
  }
}

void notify_stopping() { sd_notify(0, "STOPPING=1\nSTATUS=shutting down"); }

namespace {

void ping_after(const std::shared_ptr<boost::asio::steady_timer>& timer,
                std::chrono::microseconds interval) {
  timer->expires_after(interval);
  timer->async_wait([timer, interval](const boost::system::error_code& ec) {
    if (ec) return;
    sd_notify(0, "WATCHDOG=1");
    ping_after(timer, interval);
  });
}

}  // namespace

void start_watchdog(ServerRuntime& runtime) {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  const auto interval = std::chrono::microseconds(usec / 2);
  spdlog::info("systemd watchdog: pinging every {} ms", interval.count() / 1000);
  sd_notify(0, "WATCHDOG=1");
  auto timer = std::make_shared<boost::asio::steady_timer>(runtime.io());
  ping_after(timer, interval);
  runtime.on_stop([timer] { timer->cancel(); });
}

}  // namespace kalavara
