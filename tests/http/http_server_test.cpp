// The shared HTTP server in-process, over loopback sockets: how connections
// are spread over io_contexts and how its timeouts behave. The daemons'
// behaviour over HTTP is covered by the integration tests.
#include "common/http_server.hpp"
#include "support/loopback.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace kalavara::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string this_thread_name() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

asio::awaitable<Reply> answer_with_thread(Exchange&) {
  co_return text_response(HttpStatus::ok, this_thread_name());
}

// Answers after `delay`: a handler that works longer than the I/O timeout.
asio::awaitable<Reply> answer_slowly(Exchange&) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 2500ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return text_response(HttpStatus::ok, "slow");
}

ServerLimits one_second_timeouts() {
  ServerLimits limits;
  limits.header_timeout = 1s;
  limits.body_timeout = 1s;
  limits.idle_timeout = 1s;
  return limits;
}

// The status the last /upload handler's stream_body returned (0: none yet).
std::atomic<unsigned> last_upload_status{0};

asio::awaitable<Reply> answer_upload(Exchange& exchange) {
  const auto status = co_await exchange.stream_body(
      [](std::span<const char>) -> asio::awaitable<Status> { co_return Status{}; });
  last_upload_status = status ? 200U : static_cast<unsigned>(http::status_of(status.error().code));
  co_return text_response(HttpStatus::ok, "received");
}

// /hold answers once `release_held` is set; `hold_started` tells it began.
std::atomic<bool> hold_started{false};
std::atomic<bool> release_held{false};

asio::awaitable<Reply> answer_when_released(Exchange&) {
  hold_started = true;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < 1000 && !release_held; ++i) {
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return text_response(HttpStatus::ok, "released");
}

asio::awaitable<Reply> answer_with_route(Exchange& exchange) {
  co_return text_response(HttpStatus::ok, exchange.route());
}

// The file /file answers with: a few MiB, so sendfile fills the socket and
// has to wait for the client, opened once and never linked into a directory.
struct ReplyFile {
  static constexpr std::uint64_t kOffset = 5;
  static constexpr std::uint64_t kLength = 4 * 1024 * 1024 - 12;
  int fd = -1;
  std::string content;  // the whole file

  ReplyFile() {
    std::mt19937 random(7);
    content.resize(kOffset + kLength + 7);
    for (auto& byte : content) byte = static_cast<char>(random());
    fd = ::open(::testing::TempDir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 ||
        ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      ADD_FAILURE() << "cannot write the reply file in " << ::testing::TempDir();
    }
  }
  std::string_view sent() const { return std::string_view(content).substr(kOffset, kLength); }
};

const ReplyFile& reply_file() {
  static const ReplyFile file;
  return file;
}

asio::awaitable<Reply> answer_with_file(Exchange&) {
  Response header{HttpStatus::ok, 11};
  header.content_length(ReplyFile::kLength);
  co_return FileReply{std::move(header), UniqueFd(::dup(reply_file().fd)), ReplyFile::kOffset,
                      ReplyFile::kLength};
}

// A server on two io_contexts, each run by its own thread, with 1 s timeouts
// unless a derived fixture says otherwise.
class HttpServerTest : public ::testing::Test {
 protected:
  explicit HttpServerTest(ServerLimits limits = one_second_timeouts()) : limits_(limits) {}

  void SetUp() override {
    router_.add("/thread", Router::Match::kExact, {Verb::get}, answer_with_thread);
    router_.add("/slow", Router::Match::kExact, {Verb::get}, answer_slowly);
    router_.add("/upload", Router::Match::kExact, {Verb::put}, answer_upload);
    router_.add("/file", Router::Match::kExact, {Verb::get, Verb::head}, answer_with_file);
    router_.add("/route/", Router::Match::kPrefix, {Verb::get}, answer_with_route);
    router_.add("/hold", Router::Match::kExact, {Verb::get}, answer_when_released);
    router_.add("/probe", Router::Match::kExact, {Verb::get}, answer_with_route,
                Router::WhileStopping::kServe);
    server_ = std::make_unique<HttpServer>(std::vector<asio::io_context*>{&first_, &second_},
                                           router_, limits_);
    auto endpoint = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
    port_ = endpoint->port();
    server_->start();
    threads_.emplace_back([this] { first_.run(); });
    threads_.emplace_back([this] { second_.run(); });
  }

  void TearDown() override {
    if (server_) server_->stop();
    guards_.clear();
    // Connections still open are closed by stop(); bound the wait anyway.
    const auto deadline = Clock::now() + 10s;
    while ((!first_.stopped() || !second_.stopped()) && Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    first_.stop();
    second_.stop();
    for (auto& thread : threads_) thread.join();
  }

  // A connected socket with a 10 s receive timeout, or -1.
  int connect_client() const {
    const int fd = test::connect_to_loopback(port_);
    timeval timeout{10, 0};
    if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
  }

  static bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one response with a Content-Length body (none when `head`); ""
  // when the connection closed or the 10 s receive timeout passed first.
  static std::string read_response(int fd, bool head = false) {
    std::string data;
    char chunk[64 * 1024];
    for (;;) {
      const auto end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        const auto at = data.find("Content-Length: ");
        const std::size_t length =
            at == std::string::npos || head ? 0 : std::stoul(data.substr(at + 16));
        if (data.size() >= end + 4 + length) return data.substr(0, end + 4 + length);
      }
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      data.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Everything the server sends until it closes `fd`; nullopt when the 10 s
  // receive timeout passes first.
  static std::optional<std::string> read_until_closed(int fd) {
    std::string data;
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return data;
      if (n < 0) return std::nullopt;
      data.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Waits (at most the 10 s receive timeout) for the server to close `fd`.
  static bool closed_by_server(int fd) {
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // Expects the server to answer 408 on `fd`, for a header that did not come
  // whole in time, and close it.
  static void expect_timed_out_header(int fd) {
    const auto received = read_until_closed(fd);
    ASSERT_TRUE(received.has_value()) << "the server kept the connection open";
    EXPECT_TRUE(received->starts_with("HTTP/1.1 408")) << *received;
    EXPECT_NE(received->find("request header not received whole"), std::string::npos) << *received;
  }

  // Tries, for up to 5 s, to get a request served on a new connection.
  bool wait_for_a_served_connection() const {
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      const int fd = connect_client();
      if (fd >= 0) {
        const bool served =
            send_all(fd, kGetThreadRequest) && read_response(fd).starts_with("HTTP/1.1 200");
        ::close(fd);
        if (served) return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  static constexpr std::string_view kGetThreadRequest = "GET /thread HTTP/1.1\r\nHost: t\r\n\r\n";

  static std::string body_of(const std::string& response) {
    auto body = response.substr(response.find("\r\n\r\n") + 4);
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }

  ServerLimits limits_;
  asio::io_context first_{1};
  asio::io_context second_{1};
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_{
      asio::make_work_guard(first_), asio::make_work_guard(second_)};
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

constexpr std::string_view kGetThread = "GET /thread HTTP/1.1\r\nHost: t\r\n\r\n";

TEST_F(HttpServerTest, ConnectionsAreSpreadOverTheIoContexts) {
  std::set<std::string> threads;
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_client();
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
    ASSERT_TRUE(send_all(fd, kGetThread));
    const auto response = read_response(fd);
    ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
    threads.insert(body_of(response));
  }
  // A connection stays on its thread: a second request gets the same one.
  ASSERT_TRUE(send_all(clients[0], kGetThread));
  const auto again = read_response(clients[0]);
  for (const int fd : clients) ::close(fd);
  EXPECT_EQ(threads.size(), 2U);
  EXPECT_TRUE(threads.contains(body_of(again)));
}

TEST_F(HttpServerTest, AFileReplyIsSentFromItsOffsetAndTheConnectionKept) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  const auto length = "Content-Length: " + std::to_string(ReplyFile::kLength) + "\r\n";
  ASSERT_TRUE(send_all(fd, "HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto head = read_response(fd, true);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  EXPECT_NE(head.find(length), std::string::npos) << head;

  // HEAD sent no body: the next answer on the connection is the GET's.
  ASSERT_TRUE(send_all(fd, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto get = read_response(fd);
  ASSERT_TRUE(get.starts_with("HTTP/1.1 200")) << get.substr(0, 200);
  const auto body = std::string_view(get).substr(get.find("\r\n\r\n") + 4);
  EXPECT_EQ(body.size(), ReplyFile::kLength);
  EXPECT_TRUE(body == reply_file().sent()) << "the body is not the file's bytes from the offset";

  ASSERT_TRUE(send_all(fd, kGetThread));
  EXPECT_TRUE(read_response(fd).starts_with("HTTP/1.1 200"));
  ::close(fd);
}

TEST_F(HttpServerTest, AHandlerSeesTheLabelOfTheRouteThatTookTheRequest) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  for (const std::string_view target : {"/route/a", "/route/b/c?x=1", "/route/"}) {
    ASSERT_TRUE(send_all(fd, "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto response = read_response(fd);
    ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << target << ": " << response;
    EXPECT_EQ(body_of(response), "/route/") << target;
  }
  ::close(fd);
}

TEST_F(HttpServerTest, ATargetInAbsoluteFormIsServedAsItsPath) {
  // As a client configured with a proxy sends it (RFC 9112 §3.2.2).
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  for (const std::string_view target : {"http://t/route/a", "HTTP://t:80/route/b?x=1"}) {
    ASSERT_TRUE(send_all(fd, "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto response = read_response(fd);
    ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << target << ": " << response;
    EXPECT_EQ(body_of(response), "/route/") << target;
  }
  ::close(fd);
}

TEST_F(HttpServerTest, AnIncompleteHeaderIsCutOffAfterTheTimeout) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  ASSERT_TRUE(send_all(fd, "GET /thread HTTP/1.1\r\nHo"));
  expect_timed_out_header(fd);
  // Not at once: the client had its 1 s.
  EXPECT_GE(Clock::now() - start, 900ms);
  ::close(fd);
}

TEST_F(HttpServerTest, AnIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, kGetThread));
  ASSERT_TRUE(read_response(fd).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST_F(HttpServerTest, AHandlerMayTakeLongerThanTheIoTimeout) {
  // The timeout bounds waiting for the client, not the handler's own work.
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto response = read_response(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_EQ(body_of(response), "slow");
  ::close(fd);
}

TEST_F(HttpServerTest, ABodyThatStallsTimesOutWith408) {
  last_upload_status = 0;
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      send_all(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
  // The server gives up on the body, says so and closes the connection.
  const auto received = read_until_closed(fd);
  ASSERT_TRUE(received.has_value()) << "the server kept the connection open";
  EXPECT_TRUE(received->starts_with("HTTP/1.1 408")) << *received;
  EXPECT_NE(received->find("request body timed out"), std::string::npos) << *received;
  const auto deadline = Clock::now() + 5s;
  while (last_upload_status == 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(last_upload_status, 408U);
  ::close(fd);
}

TEST_F(HttpServerTest, AConnectionInUseIsKeptPastTheTimeout) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  const auto until = Clock::now() + 2500ms;
  int answered = 0;
  while (Clock::now() < until && answered < 100) {
    ASSERT_TRUE(send_all(fd, kGetThread));
    ASSERT_TRUE(read_response(fd).starts_with("HTTP/1.1 200")) << "after " << answered;
    ++answered;
    std::this_thread::sleep_for(200ms);  // paces the client; not a readiness wait
  }
  EXPECT_GE(answered, 5);
  ::close(fd);
}

// A request after a body the server cannot delimit: it must never be
// answered, or the body's bytes could pass for a request of their own.
constexpr std::string_view kSmuggled = "GET /thread HTTP/1.1\r\nHost: t\r\n\r\n";

class HttpServerFramingTest : public HttpServerTest {
 protected:
  // Sends "PUT /upload" with `fields` and `body`, then kSmuggled, and
  // expects one answer, `status` with a text reason and Connection: close,
  // after which the server closes the connection, without running the
  // handler.
  void expect_refused(std::string_view fields, std::string_view body, std::string_view status) {
    last_upload_status = 0;
    const int fd = connect_client();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\n" + std::string(fields) + "\r\n" +
                                 std::string(body) + std::string(kSmuggled)));
    const auto received = read_until_closed(fd);
    ::close(fd);
    ASSERT_TRUE(received.has_value()) << "the server kept the connection open";
    EXPECT_TRUE(received->starts_with("HTTP/1.1 " + std::string(status))) << *received;
    EXPECT_NE(received->find("Content-Type: text/plain"), std::string::npos) << *received;
    EXPECT_NE(received->find("Connection: close\r\n"), std::string::npos) << *received;
    EXPECT_EQ(received->find("HTTP/1.1", 1), std::string::npos)
        << "more than one answer: the bytes after the header were read as a request\n"
        << *received;
    EXPECT_EQ(last_upload_status, 0U) << "the handler ran";
  }
};

TEST_F(HttpServerFramingTest, ATransferEncodingNotEndingInChunkedGets400AndTheConnectionCloses) {
  for (const std::string_view fields : {
           "Transfer-Encoding: gzip\r\n",
           "Transfer-Encoding: chunked, gzip\r\n",
           "Transfer-Encoding: identity\r\n",
           "Transfer-Encoding: \r\n",
           // Beast would read a Content-Length body; Transfer-Encoding overrides it.
           "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
       }) {
    SCOPED_TRACE(fields);
    expect_refused(fields, "hello", "400");
  }
}

TEST_F(HttpServerFramingTest, ChunkedAppliedTwiceGets400AndTheConnectionCloses) {
  expect_refused("Transfer-Encoding: chunked, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n", "400");
}

TEST_F(HttpServerFramingTest, AnUnknownCodingBeforeChunkedGets501AndTheConnectionCloses) {
  for (const std::string_view fields : {
           "Transfer-Encoding: gzip, chunked\r\n",
           // Two fields are one list.
           "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
       }) {
    SCOPED_TRACE(fields);
    expect_refused(fields, "5\r\nhello\r\n0\r\n\r\n", "501");
  }

  // Chunked alone is read, in any case, and the connection kept.
  last_upload_status = 0;
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\n"));
  const auto response = read_response(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_EQ(last_upload_status, 200U);
  ASSERT_TRUE(send_all(fd, kGetThread));
  EXPECT_TRUE(read_response(fd).starts_with("HTTP/1.1 200"));
  ::close(fd);
}

// A long idle timeout and a short I/O timeout, to tell them apart.
class HttpServerIdleTest : public HttpServerTest {
 protected:
  HttpServerIdleTest() : HttpServerTest(idle_longer_than_io()) {}

  static ServerLimits idle_longer_than_io() {
    ServerLimits limits;
    limits.header_timeout = 1s;
    limits.body_timeout = 1s;
    limits.idle_timeout = 8s;
    return limits;
  }
};

TEST_F(HttpServerIdleTest, APartlySentHeaderHasTheHeaderTimeoutNotTheIdleOne) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, kGetThread));
  ASSERT_TRUE(read_response(fd).starts_with("HTTP/1.1 200"));
  // The next request starts and stalls: the client is no longer idle.
  ASSERT_TRUE(send_all(fd, "GET /thread HTTP/1.1\r\nHo"));
  const auto start = Clock::now();
  expect_timed_out_header(fd);
  EXPECT_LT(Clock::now() - start, 6s) << "cut off by the 8 s idle timeout, not the 1 s header one";
  ::close(fd);
}

TEST_F(HttpServerIdleTest, AHeaderTrickledInAByteAtATimeIsCutOffAtTheHeaderTimeout) {
  // A byte every 200 ms: each read would have re-armed a per-read deadline,
  // and the client would hold the connection for as long as it liked.
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  const std::string request = "GET /thread HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(60, 'a');
  const auto start = Clock::now();
  bool cut_off = false;
  for (const char byte : request) {
    if (!send_all(fd, std::string_view(&byte, 1))) {
      cut_off = true;
      break;
    }
    std::this_thread::sleep_for(200ms);  // the attacker's pace, not a wait for the server
    if (Clock::now() - start > 6s) break;
  }
  const auto received = read_until_closed(fd);
  ::close(fd);
  ASSERT_TRUE(cut_off || received.has_value()) << "still open after 6 s of trickling";
  EXPECT_LT(Clock::now() - start, 5s) << "held past the 1 s header timeout (and its 1 s sweep)";
  if (received && !received->empty()) {
    EXPECT_TRUE(received->starts_with("HTTP/1.1 408")) << *received;
  }
}

TEST_F(HttpServerIdleTest, ANewConnectionMustSendItsHeaderWithinTheHeaderTimeout) {
  // Nothing sent at all: a connection's first request has the header
  // timeout from the accept, not the idle timeout.
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  EXPECT_TRUE(closed_by_server(fd));
  EXPECT_LT(Clock::now() - start, 5s) << "a silent new connection waited the 8 s idle timeout";
  ::close(fd);
}

TEST_F(HttpServerTest, SlowlorisWithFiveHundredConnectionsIsCutOffAndOthersAreServed) {
  constexpr int kConnections = 500;
  std::vector<int> slow;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = connect_client();
    ASSERT_GE(fd, 0) << "connection " << i;
    slow.push_back(fd);
    ASSERT_TRUE(send_all(fd, "GET /thread HTTP/1.1\r\nHost: t\r\n"));
  }
  // Each keeps sending a header field now and then, never the blank line.
  const auto start = Clock::now();
  std::size_t open = slow.size();
  for (int round = 0; round < 40 && open > 0; ++round) {
    open = 0;
    for (int& fd : slow) {
      if (fd < 0) continue;
      if (!send_all(fd, "X-a: b\r\n")) {
        ::close(fd);
        fd = -1;
        continue;
      }
      ++open;
    }
    // Meanwhile a normal client is served.
    if (round % 10 == 0) {
      const int fd = connect_client();
      ASSERT_GE(fd, 0);
      ASSERT_TRUE(send_all(fd, kGetThread));
      EXPECT_TRUE(read_response(fd).starts_with("HTTP/1.1 200")) << "round " << round;
      ::close(fd);
    }
    std::this_thread::sleep_for(150ms);  // the attacker's pace
  }
  const auto elapsed = Clock::now() - start;
  for (const int fd : slow) {
    if (fd >= 0) ::close(fd);
  }
  EXPECT_EQ(open, 0U) << "connections still open after 6 s of slowloris";
  EXPECT_LT(elapsed, 5s);
}

TEST_F(HttpServerTest, AHeaderPastTheDefaultLimitGets431) {
  const int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(
      fd, "GET /thread HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n"));
  const auto received = read_until_closed(fd);
  ::close(fd);
  ASSERT_TRUE(received.has_value());
  EXPECT_TRUE(received->starts_with("HTTP/1.1 431")) << received->substr(0, 200);
  EXPECT_NE(received->find("larger than 8192 bytes"), std::string::npos) << *received;
}

class HttpServerChunkFramingTest : public HttpServerTest {
 protected:
  // PUTs a chunked `body` after the header `fields` and returns what the
  // server sent until it closed; the handler's status is in
  // last_upload_status.
  std::optional<std::string> upload_chunked(std::string_view fields, std::string_view body) {
    last_upload_status = 0;
    const int fd = connect_client();
    if (fd < 0) return std::nullopt;
    const bool sent =
        send_all(fd, "PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n" +
                         std::string(fields) + "\r\n" + std::string(body));
    auto received = read_until_closed(fd);
    ::close(fd);
    if (!sent && !received) return std::string();
    return received;
  }

  static unsigned handler_status() {
    const auto deadline = Clock::now() + 5s;
    while (last_upload_status == 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return last_upload_status;
  }
};

TEST_F(HttpServerChunkFramingTest, SmallExtensionsAndTrailersAreTaken) {
  const auto received = upload_chunked("Connection: close\r\n",
                                       "5;name=value\r\nhello\r\n0;last\r\nX-Trailer: t\r\n\r\n");
  ASSERT_TRUE(received.has_value());
  EXPECT_TRUE(received->starts_with("HTTP/1.1 200")) << *received;
  EXPECT_EQ(handler_status(), 200U);
}

TEST_F(HttpServerChunkFramingTest, ChunkExtensionsCountAgainstTheHeaderLimit) {
  // Each extension is small; together they pass 8 KiB.
  std::string body;
  for (int i = 0; i < 100; ++i) body += "1;ext=" + std::string(100, 'e') + "\r\nx\r\n";
  body += "0\r\n\r\n";
  upload_chunked("", body);
  EXPECT_EQ(handler_status(), 431U);
}

TEST_F(HttpServerChunkFramingTest, TheHeaderAndTheExtensionsShareTheLimit) {
  // 6 KiB of header fields and a 3 KiB extension: each alone would pass.
  upload_chunked("X-Big: " + std::string(6000, 'h') + "\r\n",
                 "5;ext=" + std::string(3000, 'e') + "\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(handler_status(), 431U);
}

TEST_F(HttpServerChunkFramingTest, TrailersCountAgainstTheHeaderLimit) {
  std::string trailers;
  for (int i = 0; i < 30; ++i)
    trailers += "X-T" + std::to_string(i) + ": " + std::string(300, 't') + "\r\n";
  upload_chunked("", "5\r\nhello\r\n0\r\n" + trailers + "\r\n");
  EXPECT_EQ(handler_status(), 431U);
}

TEST_F(HttpServerChunkFramingTest, AnEndlessChunkExtensionIsCutOffNotBuffered) {
  // 1 MiB of one chunk line that never ends: the server must stop reading
  // it long before (it would otherwise buffer it all, and more).
  const auto received = upload_chunked("", "5;" + std::string(1024 * 1024, 'e'));
  EXPECT_EQ(handler_status(), 431U);
  ASSERT_TRUE(received.has_value()) << "the server kept the connection open";
}

class HttpServerConnectionCapTest : public HttpServerTest {
 protected:
  HttpServerConnectionCapTest() : HttpServerTest(four_connections()) {}
  static ServerLimits four_connections() {
    ServerLimits limits;
    limits.max_connections = 4;
    return limits;
  }
};

TEST_F(HttpServerConnectionCapTest, AConnectionPastTheCapGets503AndIsClosed) {
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_client();
    ASSERT_GE(fd, 0);
    held.push_back(fd);
    ASSERT_TRUE(send_all(fd, kGetThread));
    ASSERT_TRUE(read_response(fd).starts_with("HTTP/1.1 200")) << "connection " << i;
  }
  const int extra = connect_client();
  ASSERT_GE(extra, 0);
  send_all(extra, kGetThread);  // may fail once the server has closed it
  const auto refused = read_until_closed(extra);
  ::close(extra);
  ASSERT_TRUE(refused.has_value()) << "the fifth connection was kept open";
  EXPECT_TRUE(refused->starts_with("HTTP/1.1 503")) << *refused;
  EXPECT_NE(refused->find("too many connections"), std::string::npos) << *refused;

  // The held ones still work, and once one goes, a new one is served.
  ASSERT_TRUE(send_all(held[0], kGetThread));
  EXPECT_TRUE(read_response(held[0]).starts_with("HTTP/1.1 200"));
  ::close(held[0]);
  held.erase(held.begin());
  EXPECT_TRUE(wait_for_a_served_connection()) << "no connection served after one was closed";
  for (const int fd : held) ::close(fd);
}

}  // namespace
}  // namespace kalavara::http

namespace kalavara::http {
namespace {

// stop(): the port stays open while a request is in flight, refusing new
// work with 503 but serving the routes that serve while stopping; once the
// last request is done, the port closes.
TEST_F(HttpServerTest, StoppingRefusesNewWorkServesProbesAndClosesWhenNothingIsInFlight) {
  hold_started = false;
  release_held = false;
  const int in_flight = connect_client();
  ASSERT_GE(in_flight, 0);
  ASSERT_TRUE(send_all(in_flight, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto deadline = Clock::now() + 10s;
  while (!hold_started && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(hold_started);

  server_->stop();
  const int refused = connect_client();
  ASSERT_GE(refused, 0) << "the port closed while a request was in flight";
  ASSERT_TRUE(send_all(refused, kGetThreadRequest));
  const auto refusal = read_response(refused);
  EXPECT_TRUE(refusal.starts_with("HTTP/1.1 503")) << refusal;
  EXPECT_NE(refusal.find("Connection: close"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("shutting down"), std::string::npos) << refusal;
  EXPECT_TRUE(closed_by_server(refused));
  ::close(refused);
  const int probe = connect_client();
  ASSERT_GE(probe, 0);
  ASSERT_TRUE(send_all(probe, "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto probed = read_response(probe);
  EXPECT_TRUE(probed.starts_with("HTTP/1.1 200")) << probed;
  EXPECT_TRUE(probed.ends_with("/probe\n")) << probed;
  ::close(probe);

  release_held = true;
  const auto answer = read_response(in_flight);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_TRUE(answer.ends_with("released\n")) << answer;
  EXPECT_TRUE(closed_by_server(in_flight));
  ::close(in_flight);
  // Nothing in flight any more: the listener closes within a sweep.
  bool port_closed = false;
  while (!port_closed && Clock::now() < deadline + 5s) {
    const int fd = test::connect_to_loopback(port_);
    port_closed = fd < 0;
    if (fd >= 0) ::close(fd);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(port_closed);
}

}  // namespace
}  // namespace kalavara::http
