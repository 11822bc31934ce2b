// The HTTP/1.1 server both daemons run: a listener that accepts connections
// and sessions that own a socket, its buffer and its parsers, read requests,
// hand them to the router's handlers and write the answers.
//
// Each connection is a coroutine on one io_context (one thread), so a handler
// never runs concurrently with another on the same connection; connections
// are spread over the io_contexts given, so handlers of different
// connections run in parallel. Timeouts are deadlines a sweep checks once a
// second, so no timer is armed or cancelled per read or write.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/router.hpp"

namespace kalavara::http {

// One request on one connection, as a handler sees it. Lives for the duration
// of the handler call; not thread-safe (a connection has one handler at a time).
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const RequestHeader& request() const = 0;

  // The label of the route that took the request (Router::Matched::route):
  // the path it was registered with, e.g. "/store/", not the request's own.
  virtual std::string_view route() const = 0;

  // Reads the whole body, at most `limit` bytes. Fails with kTooLarge when it is
  // larger and kBadInput when the client sends a broken body or goes away.
  virtual asio::awaitable<Result<std::string>> read_body(std::size_t limit) = 0;

  // Streams the body to `sink` chunk by chunk as it arrives, after sending
  // "100 Continue" if the client asked for it. Succeeds once the whole body
  // has been passed to `sink`. A failing sink stops the reading and its Error
  // is returned; a client that breaks off yields kBadInput, one that stalls past
  // the body timeout kTimedOut (it has been answered 408 and its connection
  // closed). The sink is awaited
  // before the next chunk is read, so a slow sink slows the client down.
  using BodySink = std::function<asio::awaitable<Status>(std::span<const char>)>;
  virtual asio::awaitable<Status> stream_body(const BodySink& sink) = 0;
};

struct ServerLimits {
  // The most a request may send outside its body: the request line and
  // header fields, plus, for a chunked body, every chunk extension and the
  // trailer fields (431 beyond it). Beast bounds only the header itself; an
  // endless chunk extension would otherwise grow a buffer without limit.
  std::uint32_t header_bytes = 8 * 1024;
  // Connections open at once; one more is answered 503 and closed, so a
  // client flooding the port cannot exhaust the daemon's descriptors.
  std::size_t max_connections = 10000;
  // How long a request's header may take to arrive whole, counted from its
  // first byte (for a connection's first request, from the accept) and never
  // extended by what trickles in: a client sending a byte now and then does
  // not hold a connection past it.
  std::chrono::seconds header_timeout{10};
  // How long a body may stall: between two pieces of a request's body, or
  // while the client takes nothing of the response.
  std::chrono::seconds body_timeout{30};
  // How long a keep-alive connection may wait for its next request's first
  // byte.
  std::chrono::seconds idle_timeout{60};
  // A body the handler did not read is read and discarded up to this size so
  // the connection can be kept; a larger one closes the connection.
  std::uint64_t discard_body_bytes = 16 * 1024 * 1024;
};

// One request as the server handled it, reported once its answer is sent
// (or could not be). Valid only during the call it is passed to.
struct CompletedRequest {
  Verb method = Verb::unknown;
  std::string_view method_text;  // as the client sent it; "" when unparsable
  std::string_view target;       // in origin form; "" when unparsable
  std::size_t route_id = 0;      // Router::Matched::route_id; 0: no route took it
  unsigned status = 0;
  std::uint64_t bytes_received = 0;  // of the request, header and body, as read
  std::uint64_t bytes_sent = 0;      // of the answer, header and body, as written
  // From the whole header being read to the answer's last byte written.
  std::chrono::steady_clock::duration duration{};
  const asio::ip::tcp::endpoint* peer = nullptr;
};

// Told of the server's connections and requests: what metrics and access
// logs are built from. Called on the connection's io thread, so calls for
// different connections come concurrently: an observer must be thread-safe
// and must not block.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  virtual void connection_opened() {}
  virtual void connection_closed() {}
  // A connection past ServerLimits::max_connections, answered 503.
  virtual void connection_refused() {}
  // A request's header has been read; request_finished() follows.
  virtual void request_started() {}
  virtual void request_finished(const CompletedRequest& request) = 0;
};

class HttpServer {
 public:
  // `router`, the io_contexts and the observers must outlive the server;
  // there must be at least one io_context. The listener runs on the first;
  // connections are handed to each in turn. Thread-safe after listen().
  HttpServer(std::vector<asio::io_context*> contexts, const Router& router,
             ServerLimits limits = {}, std::vector<ServerObserver*> observers = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; with port 0 the kernel picks a port. Returns the bound
  // endpoint, or an Error saying why the address could not be used.
  Result<asio::ip::tcp::endpoint> listen(const std::string& address, std::uint16_t port);

  // Starts accepting connections on the io_context.
  void start();

  // Shuts down gracefully. At once: idle connections are closed, every
  // connection closes after its current response, and a new request is
  // answered 503 unless its route serves while stopping
  // (Router::WhileStopping), so health checks and the calls that finish
  // work in flight still get through. The port stays open until no request
  // is in flight any more; then the listener closes, and the io_contexts
  // run out of work once the last connection has gone. Thread-safe.
  void stop();

  struct State;  // shared with the sessions; opaque outside http_server.cpp

 private:
  std::shared_ptr<State> state_;
};

}  // namespace kalavara::http
