#include "master/volume_health.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "common/http_client.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;

// The number after "name": in a flat JSON object; 0 when absent.
std::uint64_t json_number(std::string_view json, std::string_view name) {
  const auto quoted = "\"" + std::string(name) + "\":";
  auto at = json.find(quoted);
  if (at == std::string_view::npos) return 0;
  at += quoted.size();
  while (at < json.size() && json[at] == ' ') ++at;
  std::uint64_t value = 0;
  std::from_chars(json.data() + at, json.data() + json.size(), value);
  return value;
}

}  // namespace

VolumeHealth::VolumeHealth(asio::io_context& io, Options options,
                           std::function<std::vector<std::string>()> volumes,
                           std::function<void(const std::string&)> on_alive)
    : timer_(asio::make_strand(io)),
      options_(options),
      volumes_(std::move(volumes)),
      on_alive_(std::move(on_alive)) {}

void VolumeHealth::start() { asio::co_spawn(timer_.get_executor(), run(), asio::detached); }

void VolumeHealth::stop() {
  stopped_ = true;
  asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
}

bool VolumeHealth::is_up(const std::string& url) const {
  std::lock_guard lock(mutex_);
  const auto it = states_.find(url);
  return it == states_.end() || it->second.up;
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
        asio::co_spawn(timer_.get_executor(), check(std::move(url)), asio::detached);
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
  auto reply = co_await http::send_request(http::Verb::get, *parsed, "/stats", {},
                                           options_.interval * 9 / 10);
  const bool alive = reply && reply->status == 200;
  record(url, alive, alive ? json_number(reply->body, "free_bytes") : 0,
         alive ? json_number(reply->body, "files") : 0);
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
