#include "common/http_client.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/signature.hpp"

namespace kalavara::http {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// The answer to an upload is short text; anything larger is a bug or a peer
// that is not a kalavara daemon.
constexpr std::uint64_t kMaxUploadAnswer = kDefaultMaxResponseBody;

// A kept-alive connection idle longer than this is closed rather than
// reused: well inside the server's own idle timeout, so the server is not
// about to close it as we send.
constexpr auto kMaxIdle = std::chrono::seconds(5);
// Idle connections kept per server and io_context; more are closed.
constexpr std::size_t kMaxIdlePerServer = 64;

// Set once at start-up (use_credentials), read-only afterwards.
Credentials g_credentials;

// The fields every request carries, and its credentials: the signature of
// its method and target (appended to the target) and the bearer token.
template <class Request>
void address(Request& request, const BaseUrl& server, Sign sign = Sign::kWithCredentials) {
  request.set(Field::host, server.host + ":" + std::to_string(server.port));
  request.set(Field::user_agent, "kalavara/" KALAVARA_VERSION);
  if (sign == Sign::kAnonymous) return;
  if (g_credentials.signer != nullptr) {
    request.target(g_credentials.signer->sign(request.method_string(), request.target()));
  }
  if (!g_credentials.bearer.empty()) {
    request.set(Field::authorization, "Bearer " + g_credentials.bearer);
  }
}

Error unreachable(const BaseUrl& server, std::string_view what,
                  const boost::system::error_code& ec) {
  return Error{Errc::kUnavailable,
               server.text + " unreachable (" + std::string(what) + ": " + ec.message() + ")"};
}

Error no_answer(const BaseUrl& server, const boost::system::error_code& ec) {
  return Error{Errc::kNoAnswer, server.text + " did not answer (" + ec.message() + ")"};
}

// A retry failed after an earlier attempt had sent the whole request: the
// server may have acted on that one, so however the retry failed the call
// is unanswered, not undelivered.
Error no_answer_after_retry(const BaseUrl& server, const Error& retry) {
  return Error{Errc::kNoAnswer, server.text +
                                    " did not answer (it closed the connection the request went "
                                    "out on, and the retry failed: " +
                                    retry.message + ")"};
}

// The idle kept-alive connections of one io_context, by server. An Asio
// service, so the sockets are closed with the io_context they belong to.
// Only the io_context's own thread uses it; the mutex is for safety, never
// contended.
class IdleConnections final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;

  explicit IdleConnections(asio::execution_context& context) : service(context) {}

  static IdleConnections& of(const asio::any_io_executor& executor) {
    return asio::use_service<IdleConnections>(asio::query(executor, asio::execution::context));
  }

  // An idle connection to `server` that still looks open, if there is one.
  std::optional<tcp::socket> take(const std::string& server) {
    std::lock_guard lock(mutex_);
    auto found = idle_.find(server);
    if (found == idle_.end()) return std::nullopt;
    auto& list = found->second;
    const auto now = std::chrono::steady_clock::now();
    while (!list.empty()) {
      auto entry = std::move(list.back());
      list.pop_back();
      if (now - entry.since < kMaxIdle && still_open(entry.socket)) return std::move(entry.socket);
    }
    return std::nullopt;
  }

  void put(const std::string& server, tcp::socket socket) {
    std::lock_guard lock(mutex_);
    auto& list = idle_[server];
    if (list.size() < kMaxIdlePerServer) {
      list.push_back({std::move(socket), std::chrono::steady_clock::now()});
    }
  }

 private:
  struct Entry {
    tcp::socket socket;
    std::chrono::steady_clock::time_point since;
  };

  // An idle connection has nothing to read: readable means the server
  // closed it (or broke protocol), so it is not reused.
  static bool still_open(tcp::socket& socket) {
    char byte;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void shutdown() override {
    std::lock_guard lock(mutex_);
    idle_.clear();
  }

  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<Entry>> idle_;
};

asio::execution_context::id IdleConnections::id;

// Resolves `server` and connects `stream` to it, the whole within `deadline`.
asio::awaitable<Status> connect_to(beast::tcp_stream& stream, const BaseUrl& server,
                                   std::chrono::steady_clock::time_point deadline) {
  tcp::resolver resolver(stream.get_executor());
  // Hosts are stored bracketed when IPv6; the resolver wants them bare.
  std::string host = server.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(host, std::to_string(server.port), kAwait);
  if (resolve_ec) co_return unreachable(server, "resolve", resolve_ec);
  stream.expires_at(deadline);
  auto [connect_ec, endpoint] = co_await stream.async_connect(endpoints, kAwait);
  if (connect_ec) co_return unreachable(server, "connect", connect_ec);
  co_return Status{};
}

}  // namespace

void use_credentials(Credentials credentials) { g_credentials = std::move(credentials); }

asio::awaitable<Result<ClientResponse>> send_request(Verb method, const BaseUrl& server,
                                                     std::string target, std::string body,
                                                     std::chrono::milliseconds timeout,
                                                     std::uint64_t max_response_body, Sign sign) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto executor = co_await asio::this_coro::executor;
  auto& idle = IdleConnections::of(executor);

  bhttp::request<bhttp::string_body> request{method, target, 11};
  address(request, server, sign);
  request.body() = std::move(body);
  request.prepare_payload();

  // At most two attempts: a reused connection the server had closed while
  // idle fails before any answer, and the request goes again on a new one.
  // Once an attempt has written the whole request, the server may have acted
  // on it: from then on every failure is kNoAnswer.
  bool delivered = false;
  for (int attempt = 0;; ++attempt) {
    auto kept = attempt == 0 ? idle.take(server.text) : std::nullopt;
    const bool reused = kept.has_value();
    beast::tcp_stream stream(reused ? std::move(*kept) : tcp::socket(executor));
    if (!reused) {
      if (auto connected = co_await connect_to(stream, server, deadline); !connected) {
        if (delivered) co_return no_answer_after_retry(server, connected.error());
        co_return connected.error();
      }
    }

    stream.expires_at(deadline);
    auto [write_ec, written] = co_await bhttp::async_write(stream, request, kAwait);
    if (write_ec) {
      if (reused) continue;
      const auto error = unreachable(server, "send", write_ec);
      if (delivered) co_return no_answer_after_retry(server, error);
      co_return error;
    }
    delivered = true;

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_response_body);
    // The answer to a HEAD has a Content-Length but no body.
    parser.skip(method == Verb::head);
    stream.expires_at(deadline);
    auto [read_ec, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
    if (read_ec) {
      const bool closed_while_idle =
          reused && !parser.got_some() && read_ec != beast::error::timeout;
      if (closed_while_idle) continue;
      co_return no_answer(server, read_ec);
    }

    const bool reusable = parser.keep_alive() && buffer.size() == 0;
    auto response = parser.release();
    if (reusable) {
      stream.expires_never();
      idle.put(server.text, stream.release_socket());
    }
    co_return ClientResponse{response.result_int(), std::move(response.body()),
                             std::string(response[Field::etag])};
  }
}

asio::awaitable<Result<FetchResult>> fetch(
    const BaseUrl& server, std::string target, const FetchSink& sink,
    std::chrono::milliseconds io_timeout,
    const std::vector<std::pair<Field, std::string>>& headers) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  if (auto connected =
          co_await connect_to(stream, server, std::chrono::steady_clock::now() + io_timeout);
      !connected) {
    co_return connected.error();
  }
  bhttp::request<bhttp::empty_body> request{Verb::get, target, 11};
  address(request, server);
  for (const auto& [field, value] : headers) request.set(field, value);
  // Not reusable anyway once a sink may stop reading halfway: say so, and
  // the server closes its end once it has answered.
  request.keep_alive(false);
  stream.expires_after(io_timeout);
  auto [write_ec, written] = co_await bhttp::async_write(stream, request, kAwait);
  if (write_ec) co_return unreachable(server, "send", write_ec);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);  // a value of any size; the sink decides what to keep
  stream.expires_after(io_timeout);
  auto [header_ec, header_read] = co_await bhttp::async_read_header(stream, buffer, parser, kAwait);
  if (header_ec) co_return no_answer(server, header_ec);
  FetchResult result;
  result.status = parser.get().result_int();
  result.etag = std::string(parser.get()[Field::etag]);
  const bool to_sink = result.status / 100 == 2;

  const auto chunk = std::make_unique_for_overwrite<char[]>(kFetchChunkBytes);
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = chunk.get();
    body.size = kFetchChunkBytes;
    stream.expires_after(io_timeout);
    auto [read_ec, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
    // need_buffer: the chunk is full, which is what the loop waits for.
    if (read_ec && read_ec != bhttp::error::need_buffer) co_return no_answer(server, read_ec);
    const std::size_t got = kFetchChunkBytes - parser.get().body().size;
    if (got == 0) continue;
    const std::span<const char> bytes(chunk.get(), got);
    if (to_sink) {
      if (auto status = co_await sink(bytes); !status) co_return status.error();
    } else if (result.body.size() + got > kDefaultMaxResponseBody) {
      co_return Error{Errc::kNoAnswer, server.text + " answered " + std::to_string(result.status) +
                                           " with a body too large for an error"};
    } else {
      result.body.append(bytes.data(), bytes.size());
    }
  }
  co_return result;
}

struct UploadStream::Impl {
  Impl(asio::any_io_executor executor, BaseUrl url, std::chrono::milliseconds timeout)
      : stream(std::move(executor)), server(std::move(url)), io_timeout(timeout) {}
  beast::tcp_stream stream;
  BaseUrl server;
  std::chrono::milliseconds io_timeout;
};

UploadStream::UploadStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UploadStream::~UploadStream() = default;

asio::awaitable<Result<std::unique_ptr<UploadStream>>> UploadStream::open(
    Verb method, const BaseUrl& server, std::string target, std::uint64_t length,
    std::chrono::milliseconds io_timeout) {
  auto impl = std::make_unique<Impl>(co_await asio::this_coro::executor, server, io_timeout);
  if (auto connected =
          co_await connect_to(impl->stream, server, std::chrono::steady_clock::now() + io_timeout);
      !connected) {
    co_return connected.error();
  }

  bhttp::request<bhttp::empty_body> request{method, target, 11};
  address(request, server);
  request.content_length(length);
  request.keep_alive(false);
  bhttp::request_serializer<bhttp::empty_body> serializer{request};
  impl->stream.expires_after(io_timeout);
  auto [write_ec, written] = co_await bhttp::async_write_header(impl->stream, serializer, kAwait);
  if (write_ec) co_return unreachable(server, "send", write_ec);
  co_return std::unique_ptr<UploadStream>(new UploadStream(std::move(impl)));
}

asio::awaitable<Status> UploadStream::write(std::span<const char> bytes) {
  impl_->stream.expires_after(impl_->io_timeout);
  auto [ec, written] =
      co_await asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()), kAwait);
  if (ec) co_return unreachable(impl_->server, "send", ec);
  co_return Status{};
}

asio::awaitable<Result<ClientResponse>> UploadStream::finish() {
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxUploadAnswer);
  impl_->stream.expires_after(impl_->io_timeout);
  auto [ec, read] = co_await bhttp::async_read(impl_->stream, buffer, parser, kAwait);
  // The whole body went out: the server may have stored it.
  if (ec) co_return no_answer(impl_->server, ec);
  auto response = parser.release();
  co_return ClientResponse{response.result_int(), std::move(response.body()),
                           std::string(response[Field::etag])};
}

}  // namespace kalavara::http
