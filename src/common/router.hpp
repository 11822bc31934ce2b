// Maps a request's method and path to a handler. Routes are added at start-up;
// afterwards the router is read-only and safe to share between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/http_types.hpp"
#include "common/unique_fd.hpp"

namespace kalavara::http {

class Exchange;

// An answer whose body is `length` bytes of the open file `fd` from `offset`,
// sent zero-copy (sendfile) after `header`. `header` must carry
// Content-Length == length. For a HEAD request only the header is sent. The
// file is closed once the answer is sent or the connection breaks.
struct FileReply {
  Response header;
  UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// What a handler answers with; the server does all the writing to the socket.
using Reply = std::variant<Response, FileReply>;

// A handler takes a request and returns its answer.
using Handler = std::function<asio::awaitable<Reply>(Exchange&)>;

class Router {
 public:
  enum class Match { kExact, kPrefix };

  // What a route does once the daemon is shutting down (HttpServer::stop()):
  // refuse new requests (503), or keep serving them, as the health checks,
  // the metrics and the daemon-to-daemon calls that finish work already in
  // flight must.
  enum class WhileStopping { kRefuse, kServe };

  // Routes `path` (exactly, or every path starting with it) for `methods`.
  // Several routes may share a path, each taking its own methods.
  void add(std::string path, Match match, std::vector<Verb> methods, Handler handler,
           WhileStopping while_stopping = WhileStopping::kRefuse);

  // The route that takes a request: its handler, and its label, the path it
  // was registered with ("/store/" for every key, "/healthz"). The label is
  // the same string for every request to that path, whatever the method, so
  // it can name the route in metrics; `route_id` numbers the labels from 1
  // (see route_labels()). Both point into the router: valid while it lives
  // and no route is added.
  struct Matched {
    const Handler* handler = nullptr;
    std::string_view route;
    std::size_t route_id = 0;
    WhileStopping while_stopping = WhileStopping::kRefuse;
  };

  // Every route label, indexed by route id; [0] is "" (no route took the
  // request).
  std::vector<std::string> route_labels() const;

  // The route for `method` on `path`; otherwise the response to send
  // instead: 404 for an unknown path, 405 with Allow for a known path and a
  // method it does not take.
  std::variant<Matched, Response> resolve(Verb method, std::string_view path) const;

 private:
  struct Route {
    std::string path;
    Match match;
    std::vector<Verb> methods;
    Handler handler;
    WhileStopping while_stopping;
    std::size_t id;  // of its label: shared by the routes of one path and match
  };
  std::vector<Route> routes_;
};

// GET/HEAD /healthz -> 200 "ok": the process is alive and serving, also
// while it shuts down.
void add_health_route(Router& router);

}  // namespace kalavara::http
