#include "volume/registration.hpp"
#include "common/spawn.hpp"

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

Registration::Registration(asio::io_context& io, BaseUrl master, BaseUrl self)
    : timer_(asio::make_strand(io)), master_(std::move(master)), self_(std::move(self)) {}

void Registration::start() {
  asio::co_spawn(timer_.get_executor(), run(), log_if_thrown("registration"));
}

void Registration::stop() {
  stopped_ = true;
  asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
  asio::co_spawn(timer_.get_executor(), announce_stopping(), log_if_thrown("stop notice"));
}

asio::awaitable<void> Registration::announce_stopping() {
  auto reply =
      co_await http::send_request(http::Verb::post, master_, std::string(internal::kStoppingPath),
                                  self_.text, std::chrono::seconds(2));
  if (reply && reply->status == 200) {
    spdlog::info("told master {} that this volume is stopping", master_.text);
    co_return;
  }
  spdlog::warn(
      "could not tell master {} that this volume is stopping ({}); it stops sending "
      "requests here once its health checks fail",
      master_.text, reply ? "answered " + std::to_string(reply->status) : reply.error().message);
}

asio::awaitable<void> Registration::run() {
  auto backoff = std::chrono::milliseconds(100);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
  while (!stopped_) {
    auto reply =
        co_await http::send_request(http::Verb::post, master_, std::string(internal::kRegisterPath),
                                    self_.text, std::chrono::seconds(3));
    if (reply && reply->status == 200) {
      spdlog::info("registered with master {} as {}", master_.text, self_.text);
      registered_ = true;
      co_return;
    }
    const std::string reason =
        reply ? "answered " + std::to_string(reply->status) + ": " + reply->body
              : reply.error().message;
    spdlog::warn("registration with {} failed ({}); retrying in {} ms", master_.text, reason,
                 backoff.count());
    timer_.expires_after(backoff);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace kalavara
