// Maps a request's method and path to a handler. Routes are added at start-up;
// afterwards the router is read-only and safe to share between threads.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/http_types.hpp"

namespace kalavara::http {

class Exchange;

// A handler takes a request and answers it: it returns the response to send,
// or nullopt when it has already sent one itself through the Exchange (e.g. a
// file streamed with sendfile).
using Handler = std::function<asio::awaitable<std::optional<Response>>(Exchange&)>;

class Router {
 public:
  enum class Match { kExact, kPrefix };

  // Routes `path` (exactly, or every path starting with it) for `methods`.
  // Several routes may share a path, each taking its own methods.
  void add(std::string path, Match match, std::vector<Verb> methods, Handler handler);

  // The handler for `method` on `path`; otherwise the response to send
  // instead: 404 for an unknown path, 405 with Allow for a known path and a
  // method it does not take.
  std::variant<const Handler*, Response> resolve(Verb method, std::string_view path) const;

 private:
  struct Route {
    std::string path;
    Match match;
    std::vector<Verb> methods;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// GET/HEAD /healthz -> 200 "ok": the daemon is up and serving.
void add_health_route(Router& router);

}  // namespace kalavara::http
