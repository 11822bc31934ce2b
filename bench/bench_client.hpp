// A blocking HTTP/1.1 client for the benchmarks: one keep-alive connection
// per object, used by one thread. Simple on purpose; every failure is an
// exception (std::runtime_error or boost::system::system_error) that the
// caller counts as an error.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kalavara::bench {

// "http://host:port/path?query" split in two. Throws on anything else.
struct Location {
  std::string host;
  std::uint16_t port = 80;
  std::string target;  // path and query, starting with '/'
};
Location parse_location(std::string_view url);

struct Reply {
  unsigned status = 0;
  std::string location;  // the Location header, empty when absent
  std::string body;
  bool keep_alive = true;
};

class Connection {
 public:
  Connection(std::string host, std::uint16_t port);

  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }

  // Sends a request with `body` (Content-Length framing) and reads the whole
  // answer. A request on a reused connection that the server closed
  // meanwhile is retried once on a new connection.
  Reply send(boost::beast::http::verb method, std::string_view target, std::string_view body = {});

  // Streams a PUT of `size` bytes produced by `produce(offset, out, length)`
  // in chunks, without holding the value; reads the (small) answer.
  Reply put_streaming(std::string_view target, std::uint64_t size,
                      const std::function<void(std::uint64_t, char*, std::size_t)>& produce);

  // Sends only the header of a PUT of `size` bytes with
  // `Expect: 100-continue` and reads the answer, as curl -T does. The body is
  // never sent, so the connection is closed afterwards.
  Reply put_expect_continue(std::string_view target, std::uint64_t size);

  // GET whose body is handed to `consume(offset, data)` chunk by chunk
  // instead of being stored. Returns the reply (body empty) and sets
  // `length` to the body bytes received.
  Reply get_streaming(std::string_view target,
                      const std::function<void(std::uint64_t, std::string_view)>& consume,
                      std::uint64_t& length);

  void close();

 private:
  void ensure_open();
  Reply exchange(boost::beast::http::verb method, std::string_view target, std::string_view body);

  std::string host_;
  std::uint16_t port_;
  std::string host_header_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  bool open_ = false;
  bool reused_ = false;
};

}  // namespace kalavara::bench
