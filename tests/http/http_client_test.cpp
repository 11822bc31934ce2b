// The daemons' HTTP client in-process, against a raw socket on loopback: what
// a failure says about whether the server had the request.
#include "common/http_client.hpp"
#include "support/loopback.hpp"

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
#include <utility>
#include <vector>

namespace kalavara::http {
namespace {

using namespace std::chrono_literals;

// One connection on 127.0.0.1: reads a request with a `body_bytes` body,
// then closes without answering. Every wait is bounded by 10 s.
class SilentPeer {
 public:
  explicit SilentPeer(std::size_t body_bytes) {
    const auto listener = test::listen_on_loopback(4);
    listener_ = listener.fd;
    port_ = listener.port;
    if (listener_ < 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
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

// One connection on 127.0.0.1: reads a request header, records it, sends
// `answer` and closes. Every wait is bounded by 10 s.
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::string answer) : answer_(std::move(answer)) {
    const auto listener = test::listen_on_loopback(4);
    listener_ = listener.fd;
    port_ = listener.port;
    if (listener_ < 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedPeer() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }

  BaseUrl url() const { return *parse_base_url("http://127.0.0.1:" + std::to_string(port_)); }
  // The request's header, once the peer has answered (after the fetch).
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  void serve() {
    pollfd ready{listener_, POLLIN, 0};
    if (::poll(&ready, 1, 10'000) <= 0) return;
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (request_.find("\r\n\r\n") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd readable{fd, POLLIN, 0};
      if (::poll(&readable, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      request_.append(chunk, static_cast<std::size_t>(n));
    }
    std::string_view rest = answer_;
    while (!rest.empty() && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
  }

  std::string answer_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

struct Fetched {
  std::optional<Result<FetchResult>> result;
  std::string body;                 // what the sink got
  std::vector<std::size_t> pieces;  // the size of each piece it got
};

// Fetches `target` from `server`; the sink keeps what it gets, and fails
// with `sink_error` when set.
Fetched fetch_from(const BaseUrl& server, std::optional<Error> sink_error = std::nullopt,
                   const std::vector<std::pair<Field, std::string>>& headers = {}) {
  Fetched fetched;
  asio::io_context context;
  const FetchSink sink = [&](std::span<const char> bytes) -> asio::awaitable<Status> {
    fetched.pieces.push_back(bytes.size());
    fetched.body.append(bytes.data(), bytes.size());
    if (sink_error) co_return *sink_error;
    co_return Status{};
  };
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        fetched.result = co_await fetch(server, "/store/k?version=1", sink, 10s, headers);
      },
      asio::detached);
  context.run_for(20s);  // returns once the fetch is done; the bound is for a hang
  return fetched;
}

std::string answer_with(std::string_view status_line, std::string_view body,
                        std::string_view extra = "") {
  return std::string(status_line) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

TEST(Fetch, PassesTheBodyOnInPiecesAndReturnsTheStatusAndETag) {
  std::string value(200 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7);
  ScriptedPeer peer(answer_with("HTTP/1.1 200 OK", value, "ETag: \"abc\"\r\n"));
  const std::vector<std::pair<Field, std::string>> headers{{Field::if_none_match, "\"x\""}};
  const auto fetched = fetch_from(peer.url(), std::nullopt, headers);
  ASSERT_TRUE(fetched.result.has_value()) << "the fetch did not finish";
  ASSERT_TRUE(fetched.result->ok()) << fetched.result->error().message;
  EXPECT_EQ((*fetched.result)->status, 200U);
  EXPECT_EQ((*fetched.result)->etag, "\"abc\"");
  EXPECT_TRUE(fetched.body == value);
  EXPECT_GE(fetched.pieces.size(), 4U);
  for (const auto piece : fetched.pieces) EXPECT_LE(piece, kFetchChunkBytes);
  const auto request = peer.request();
  EXPECT_TRUE(request.starts_with("GET /store/k?version=1 HTTP/1.1\r\n")) << request;
  EXPECT_NE(request.find("If-None-Match: \"x\"\r\n"), std::string::npos) << request;
}

TEST(Fetch, AnErrorAnswersBodyIsKeptAndNotSunk) {
  ScriptedPeer peer(answer_with("HTTP/1.1 404 Not Found", "no such key\n"));
  const auto fetched = fetch_from(peer.url());
  ASSERT_TRUE(fetched.result.has_value()) << "the fetch did not finish";
  ASSERT_TRUE(fetched.result->ok()) << fetched.result->error().message;
  EXPECT_EQ((*fetched.result)->status, 404U);
  EXPECT_EQ((*fetched.result)->body, "no such key\n");
  EXPECT_TRUE(fetched.pieces.empty());
}

TEST(Fetch, ABodyCutShortIsNoAnswer) {
  const std::string half(50'000, 'v');
  ScriptedPeer peer("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + half);
  const auto fetched = fetch_from(peer.url());
  ASSERT_TRUE(fetched.result.has_value()) << "the fetch did not finish";
  ASSERT_FALSE(fetched.result->ok());
  EXPECT_EQ(fetched.result->error().code, Errc::kNoAnswer) << fetched.result->error().message;
}

TEST(Fetch, AFailingSinkStopsTheFetchWithItsOwnError) {
  ScriptedPeer peer(answer_with("HTTP/1.1 200 OK", std::string(300 * 1024, 'v')));
  const auto fetched = fetch_from(peer.url(), Error{Errc::kNoSpace, "disk full"});
  ASSERT_TRUE(fetched.result.has_value()) << "the fetch did not finish";
  ASSERT_FALSE(fetched.result->ok());
  EXPECT_EQ(fetched.result->error().code, Errc::kNoSpace);
  EXPECT_EQ(fetched.pieces.size(), 1U) << "nothing is read past the failure";
}

TEST(Fetch, AServerThatCannotBeReachedIsUnavailable) {
  BaseUrl closed;
  {
    ScriptedPeer gone("");
    closed = gone.url();
    // The peer's one connection, so that it stops listening.
    const auto served = fetch_from(closed);
    ASSERT_TRUE(served.result.has_value());
  }
  const auto fetched = fetch_from(closed);
  ASSERT_TRUE(fetched.result.has_value()) << "the fetch did not finish";
  ASSERT_FALSE(fetched.result->ok());
  EXPECT_EQ(fetched.result->error().code, Errc::kUnavailable) << fetched.result->error().message;
}

}  // namespace
}  // namespace kalavara::http
