// Watches the volumes in the background: GET /stats on each one every
// `interval`, all at once and each bounded by most of `interval`, so a volume that
// hangs delays no other's check. A volume is down after `misses_for_down`
// failed checks in a row
// and up again after one success. No request path ever probes a volume; it
// asks this. Volumes never checked yet count as up. Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kalavara {

class VolumeHealth {
 public:
  struct Options {
    std::chrono::milliseconds interval{500};
    int misses_for_down = 3;
  };
  struct State {
    std::string url;
    bool up = true;
    std::optional<std::chrono::system_clock::time_point> last_seen;
    std::uint64_t free_bytes = 0;
    std::uint64_t files = 0;
    int misses = 0;
    // The volume said it is shutting down: it counts as down, whatever its
    // checks say, until it registers again.
    bool stopping = false;
  };

  // `volumes` lists the volumes to watch, asked before every round;
  // `on_alive` runs after every successful check of a volume (on an io
  // thread; it may start asynchronous work).
  VolumeHealth(boost::asio::io_context& io, Options options,
               std::function<std::vector<std::string>()> volumes,
               std::function<void(const std::string&)> on_alive);

  void start();
  void stop();

  // Up: its checks pass and it is not stopping.
  bool is_up(const std::string& url) const;
  // Up, and its last check reported at least `free_bytes` free (a volume
  // not checked yet counts as having room).
  bool takes_writes(const std::string& url, std::uint64_t free_bytes) const;
  std::vector<State> snapshot() const;

  // The volume at `url` is shutting down (see State::stopping), or has
  // registered again (no longer).
  void set_stopping(const std::string& url, bool stopping);

 private:
  boost::asio::awaitable<void> run();
  // Checks `url` and records the outcome. Runs on timer_'s strand.
  boost::asio::awaitable<void> check(std::string url);
  void record(const std::string& url, bool alive, std::uint64_t free_bytes, std::uint64_t files);

  boost::asio::steady_timer timer_;
  const Options options_;
  std::function<std::vector<std::string>()> volumes_;
  std::function<void(const std::string&)> on_alive_;
  // Volumes whose check is under way; only touched on timer_'s strand.
  std::set<std::string> checking_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mutex_;
  std::map<std::string, State> states_;
};

}  // namespace kalavara
