#include "bench_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <limits>
#include <stdexcept>
#include <vector>

namespace kalavara::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kChunkBytes = 1 << 20;

template <class Body>
Reply to_reply(bhttp::response<Body>& response) {
  Reply reply;
  reply.status = response.result_int();
  if (auto it = response.find(bhttp::field::location); it != response.end()) {
    reply.location = std::string(it->value());
  }
  reply.keep_alive = response.keep_alive();
  return reply;
}

}  // namespace

Location parse_location(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) throw std::runtime_error("not an http URL: " + std::string(url));
  url.remove_prefix(kScheme.size());
  const auto slash = url.find('/');
  if (slash == std::string_view::npos) throw std::runtime_error("URL without a path");
  const auto authority = url.substr(0, slash);
  Location location;
  location.target = std::string(url.substr(slash));
  // IPv6 literals are bracketed: the port colon is the one after ']'.
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    location.host = std::string(authority.substr(0, colon));
    const auto port = authority.substr(colon + 1);
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), location.port);
    if (error != std::errc() || end != port.data() + port.size()) {
      throw std::runtime_error("bad port in URL: " + std::string(authority));
    }
  } else {
    location.host = std::string(authority);
  }
  if (location.host.size() > 2 && location.host.front() == '[') {
    location.host = location.host.substr(1, location.host.size() - 2);
  }
  return location;
}

Connection::Connection(std::string host, std::uint16_t port)
    : host_(std::move(host)),
      port_(port),
      host_header_((host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
                   std::to_string(port)),
      socket_(io_) {}

void Connection::ensure_open() {
  if (open_) return;
  tcp::resolver resolver(io_);
  const auto endpoints = resolver.resolve(host_, std::to_string(port_));
  socket_ = tcp::socket(io_);
  asio::connect(socket_, endpoints);
  socket_.set_option(tcp::no_delay(true));
  buffer_.clear();
  open_ = true;
  reused_ = false;
}

void Connection::close() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  open_ = false;
}

Reply Connection::exchange(bhttp::verb method, std::string_view target, std::string_view body) {
  ensure_open();
  bhttp::request<bhttp::string_body> request(method, target, 11);
  request.set(bhttp::field::host, host_header_);
  if (!body.empty() || method == bhttp::verb::put || method == bhttp::verb::post) {
    request.body().assign(body);
    request.prepare_payload();
  }
  bhttp::write(socket_, request);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  // HEAD-less client: every answer we expect has a body or a Content-Length.
  bhttp::read(socket_, buffer_, parser);
  auto& response = parser.get();
  Reply reply = to_reply(response);
  reply.body = std::move(response.body());
  if (!reply.keep_alive) close();
  return reply;
}

Reply Connection::send(bhttp::verb method, std::string_view target, std::string_view body) {
  const bool was_reused = open_ && reused_;
  try {
    Reply reply = exchange(method, target, body);
    reused_ = open_;
    return reply;
  } catch (const boost::system::system_error&) {
    close();
    if (!was_reused) throw;
  }
  // The server may have closed an idle keep-alive connection: one new try.
  Reply reply = exchange(method, target, body);
  reused_ = open_;
  return reply;
}

Reply Connection::put_streaming(
    std::string_view target, std::uint64_t size,
    const std::function<void(std::uint64_t, char*, std::size_t)>& produce) {
  close();  // a fresh connection: nothing to retry on a stale one mid-stream
  ensure_open();
  bhttp::request<bhttp::empty_body> header(bhttp::verb::put, target, 11);
  header.set(bhttp::field::host, host_header_);
  header.content_length(size);
  bhttp::request_serializer<bhttp::empty_body> serializer(header);
  bhttp::write_header(socket_, serializer);
  std::vector<char> chunk(kChunkBytes);
  for (std::uint64_t offset = 0; offset < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - offset));
    produce(offset, chunk.data(), n);
    asio::write(socket_, asio::buffer(chunk.data(), n));
    offset += n;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  bhttp::read(socket_, buffer_, parser);
  Reply reply = to_reply(parser.get());
  reply.body = std::move(parser.get().body());
  if (!reply.keep_alive) close();
  reused_ = open_;
  return reply;
}

Reply Connection::put_expect_continue(std::string_view target, std::uint64_t size) {
  close();
  ensure_open();
  bhttp::request<bhttp::empty_body> header(bhttp::verb::put, target, 11);
  header.set(bhttp::field::host, host_header_);
  header.set(bhttp::field::expect, "100-continue");
  header.content_length(size);
  bhttp::request_serializer<bhttp::empty_body> serializer(header);
  bhttp::write_header(socket_, serializer);
  for (;;) {
    bhttp::response_parser<bhttp::string_body> parser;
    bhttp::read(socket_, buffer_, parser);
    Reply reply = to_reply(parser.get());
    if (reply.status == 100) continue;  // the final answer follows
    reply.body = std::move(parser.get().body());
    close();
    return reply;
  }
}

Reply Connection::get_streaming(std::string_view target,
                                const std::function<void(std::uint64_t, std::string_view)>& consume,
                                std::uint64_t& length) {
  close();
  ensure_open();
  bhttp::request<bhttp::empty_body> request(bhttp::verb::get, target, 11);
  request.set(bhttp::field::host, host_header_);
  bhttp::write(socket_, request);
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  bhttp::read_header(socket_, buffer_, parser);
  // Beast sizes each socket read by the buffer's free room, which after a
  // header is small: without room, a large body arrives in 1-2 KiB reads.
  if (buffer_.capacity() - buffer_.size() < kChunkBytes)
    buffer_.reserve(buffer_.size() + kChunkBytes);
  std::vector<char> chunk(kChunkBytes);
  length = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    boost::system::error_code error;
    bhttp::read(socket_, buffer_, parser, error);
    if (error == bhttp::error::need_buffer) error = {};
    if (error) throw boost::system::system_error(error);
    const std::size_t n = chunk.size() - parser.get().body().size;
    consume(length, std::string_view(chunk.data(), n));
    length += n;
  }
  Reply reply = to_reply(parser.get());
  if (!reply.keep_alive) close();
  reused_ = open_;
  return reply;
}

}  // namespace kalavara::bench
