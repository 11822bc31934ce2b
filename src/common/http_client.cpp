#include "common/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

namespace kalavara::http {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Answers between daemons are short text; anything larger is a bug or a peer
// that is not a kalavara daemon.
constexpr std::uint64_t kMaxResponseBody = 1024 * 1024;

Error unreachable(const BaseUrl& server, std::string_view what,
                  const boost::system::error_code& ec) {
  return Error{503, server.text + " unreachable (" + std::string(what) + ": " + ec.message() + ")"};
}

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

asio::awaitable<Result<ClientResponse>> send_request(Verb method, const BaseUrl& server,
                                                     std::string target, std::string body,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  if (auto connected = co_await connect_to(stream, server, deadline); !connected) {
    co_return connected.error();
  }

  bhttp::request<bhttp::string_body> request{method, target, 11};
  request.set(Field::host, server.host + ":" + std::to_string(server.port));
  request.set(Field::user_agent, "kalavara/" KALAVARA_VERSION);
  request.keep_alive(false);
  request.body() = std::move(body);
  request.prepare_payload();

  stream.expires_at(deadline);
  auto [write_ec, written] = co_await bhttp::async_write(stream, request, kAwait);
  if (write_ec) co_return unreachable(server, "send", write_ec);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  stream.expires_at(deadline);
  auto [read_ec, read] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
  if (read_ec) co_return unreachable(server, "receive", read_ec);

  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  auto response = parser.release();
  co_return ClientResponse{response.result_int(), std::move(response.body()),
                           std::string(response[Field::etag])};
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
  request.set(Field::host, server.host + ":" + std::to_string(server.port));
  request.set(Field::user_agent, "kalavara/" KALAVARA_VERSION);
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
  parser.body_limit(kMaxResponseBody);
  impl_->stream.expires_after(impl_->io_timeout);
  auto [ec, read] = co_await bhttp::async_read(impl_->stream, buffer, parser, kAwait);
  if (ec) co_return unreachable(impl_->server, "receive", ec);
  auto response = parser.release();
  co_return ClientResponse{response.result_int(), std::move(response.body()),
                           std::string(response[Field::etag])};
}

}  // namespace kalavara::http
