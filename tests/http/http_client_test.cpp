// The daemons' HTTP client in-process, against a raw socket on loopback: what
// a failure says about whether the server had the request.
#include "common/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

namespace kalavara::http {
namespace {

using namespace std::chrono_literals;

// One connection on 127.0.0.1: reads a request with a `body_bytes` body,
// then closes without answering. Every wait is bounded by 10 s.
class SilentPeer {
 public:
  explicit SilentPeer(std::size_t body_bytes) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, body_bytes] { serve(body_bytes); });
  }
  ~SilentPeer() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }

  BaseUrl url() const { return *parse_base_url("http://127.0.0.1:" + std::to_string(port_)); }
  // Whether the whole request had come when the peer closed.
  bool got_whole_request() const { return got_whole_; }

 private:
  void serve(std::size_t body_bytes) {
    pollfd ready{listener_, POLLIN, 0};
    if (::poll(&ready, 1, 10'000) <= 0) return;
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    std::string data;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto end = data.find("\r\n\r\n");
      if (end != std::string::npos && data.size() >= end + 4 + body_bytes) {
        got_whole_ = true;
        break;
      }
      pollfd readable{fd, POLLIN, 0};
      if (::poll(&readable, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      data.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> got_whole_{false};
  std::thread thread_;
};

TEST(UploadStream, NoAnswerAfterTheWholeBodyIsNoAnswerNotUnavailable) {
  const std::string body = "the whole value";
  SilentPeer peer(body.size());
  asio::io_context context;
  std::optional<Result<ClientResponse>> result;
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        auto stream = co_await UploadStream::open(Verb::put, peer.url(), "/store/k", body.size(),
                                                  std::chrono::seconds(10));
        if (!stream) {
          result = stream.error();
          co_return;
        }
        if (auto written = co_await (*stream)->write(body); !written) {
          result = written.error();
          co_return;
        }
        result = co_await (*stream)->finish();
      },
      asio::detached);
  // Returns once the coroutine is done; the bound is for a hang.
  context.run_for(20s);
  ASSERT_TRUE(result.has_value()) << "the upload did not finish";
  ASSERT_FALSE(result->ok()) << "answered " << (*result)->status;
  EXPECT_TRUE(peer.got_whole_request());
  // The peer had the whole body and may have stored it.
  EXPECT_EQ(result->error().code, Errc::kNoAnswer) << result->error().message;
}

}  // namespace
}  // namespace kalavara::http
