#include "master/volume_health.hpp"
#include "common/spawn.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/http_client.hpp"
#include "common/internal_api.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;

}  // namespace

VolumeHealth::VolumeHealth(asio::io_context& io, Options options,
                           std::function<std::vector<std::string>()> volumes,
                           std::function<void(const std::string&)> on_alive)
    : timer_(asio::make_strand(io)),
      options_(options),
      volumes_(std::move(volumes)),
      on_alive_(std::move(on_alive)) {}

void VolumeHealth::start() {
  asio::co_spawn(timer_.get_executor(), run(), log_if_thrown("health checks"));
}

void VolumeHealth::stop() {
  stopped_ = true;
  asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
}

bool VolumeHealth::is_up(const std::string& url) const {
  std::lock_guard lock(mutex_);
  const auto it = states_.find(url);
  return it == states_.end() || (it->second.up && !it->second.stopping);
}

bool VolumeHealth::takes_writes(const std::string& url, std::uint64_t free_bytes) const {
  std::lock_guard lock(mutex_);
  const auto it = states_.find(url);
  if (it == states_.end()) return true;
  const auto& state = it->second;
  return state.up && !state.stopping && (!state.last_seen || state.free_bytes >= free_bytes);
}

void VolumeHealth::set_stopping(const std::string& url, bool stopping) {
  std::lock_guard lock(mutex_);
  auto found = states_.find(url);
  if (found == states_.end()) {
    if (!stopping) return;
    found = states_.emplace(url, State{}).first;
    found->second.url = url;
  }
  if (found->second.stopping != stopping) {
    spdlog::info("volume {} {}", url,
                 stopping ? "is stopping: no reads or writes go there" : "is back");
  }
  found->second.stopping = stopping;
}

std::vector<VolumeHealth::State> VolumeHealth::snapshot() const {
  std::vector<State> states;
  for (const auto& url : volumes_()) {
    std::lock_guard lock(mutex_);
    const auto it = states_.find(url);
    if (it != states_.end()) {
      states.push_back(it->second);
    } else {
      states.emplace_back().url = url;
    }
  }
  return states;
}

asio::awaitable<void> VolumeHealth::run() {
  while (!stopped_) {
    const auto round_start = std::chrono::steady_clock::now();
    for (auto& url : volumes_()) {
      // A check still under way (it has the whole interval) is not doubled.
      if (checking_.insert(url).second) {
        asio::co_spawn(timer_.get_executor(), check(std::move(url)),
                       log_if_thrown("a health check"));
      }
    }
    timer_.expires_at(round_start + options_.interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> VolumeHealth::check(std::string url) {
  struct Done {
    std::set<std::string>& checking;
    const std::string& url;
    ~Done() { checking.erase(url); }
  } done{checking_, url};
  auto parsed = parse_base_url(url);
  if (!parsed) co_return;
  // Bounded by most of the interval, so that it is over before the next
  // round starts and every round checks every volume.
  auto reply =
      co_await http::send_request(http::Verb::get, *parsed, std::string(internal::kStatsPath),
                                  std::string(), options_.interval * 9 / 10);
  // A volume is alive when it answers its stats; one that answers anything
  // else is failing, whatever the status says.
  std::optional<internal::VolumeStats> stats;
  if (reply && reply->status == 200) {
    if (auto parsed_stats = internal::parse_stats(reply->body)) stats = *parsed_stats;
  }
  const bool alive = stats.has_value();
  record(url, alive, alive ? stats->free_bytes : 0, alive ? stats->files : 0);
  if (alive) on_alive_(url);
}

void VolumeHealth::record(const std::string& url, bool alive, std::uint64_t free_bytes,
                          std::uint64_t files) {
  std::lock_guard lock(mutex_);
  auto& state = states_[url];
  state.url = url;
  if (alive) {
    if (!state.up) spdlog::info("volume {} is up again", url);
    state.up = true;
    state.misses = 0;
    state.last_seen = std::chrono::system_clock::now();
    state.free_bytes = free_bytes;
    state.files = files;
  } else if (++state.misses >= options_.misses_for_down && state.up) {
    spdlog::warn("volume {} is down ({} failed checks)", url, state.misses);
    state.up = false;
  }
}

}  // namespace kalavara
