#include "volume/registration.hpp"
#include "common/spawn.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/http_client.hpp"
#include "common/internal_api.hpp"

namespace kalavara {

namespace asio = boost::asio;

Registration::Registration(asio::io_context& io, std::vector<BaseUrl> masters, BaseUrl self)
    : strand_(asio::make_strand(io)), masters_(std::move(masters)), self_(std::move(self)) {
  for (std::size_t i = 0; i < masters_.size(); ++i) {
    timers_.push_back(std::make_unique<asio::steady_timer>(strand_));
  }
}

void Registration::start() {
  for (const auto& master : masters_) {
    asio::co_spawn(strand_, run(master), log_if_thrown("registration"));
  }
}

void Registration::stop() {
  stopped_ = true;
  asio::post(strand_, [this] {
    for (auto& timer : timers_) timer->cancel();
  });
  for (const auto& master : masters_) {
    asio::co_spawn(strand_, announce_stopping(master), log_if_thrown("stop notice"));
  }
}

asio::awaitable<void> Registration::announce_stopping(BaseUrl master) {
  auto reply =
      co_await http::send_request(http::Verb::post, master, std::string(internal::kStoppingPath),
                                  self_.text, std::chrono::seconds(2));
  if (reply && reply->status == 200) {
    spdlog::info("told master {} that this volume is stopping", master.text);
    co_return;
  }
  spdlog::warn(
      "could not tell master {} that this volume is stopping ({}); it stops sending "
      "requests here once its health checks fail",
      master.text, reply ? "answered " + std::to_string(reply->status) : reply.error().message);
}

asio::awaitable<void> Registration::run(BaseUrl master) {
  const auto which = static_cast<std::size_t>(std::find(masters_.begin(), masters_.end(), master) -
                                              masters_.begin());
  auto& timer = *timers_.at(which);
  auto backoff = std::chrono::milliseconds(100);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
  while (!stopped_) {
    auto reply =
        co_await http::send_request(http::Verb::post, master, std::string(internal::kRegisterPath),
                                    self_.text, std::chrono::seconds(3));
    if (reply && reply->status == 200) {
      spdlog::info("registered with master {} as {}", master.text, self_.text);
      registered_ = true;
      co_return;
    }
    const std::string reason =
        reply ? "answered " + std::to_string(reply->status) + ": " + reply->body
              : reply.error().message;
    spdlog::warn("registration with {} failed ({}); retrying in {} ms", master.text, reason,
                 backoff.count());
    timer.expires_after(backoff);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace kalavara
