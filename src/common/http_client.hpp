// A small async HTTP/1.1 client for the daemons' calls to each other (a
// volume committing to the master, the master deleting on a volume, a volume
// registering). One connection per request: these calls are rare next to
// client traffic. Thread-safe: every call is independent.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <string>

#include "common/http_types.hpp"
#include "common/url.hpp"

namespace kalavara::http {

struct ClientResponse {
  unsigned status = 0;
  std::string body;
};

// Sends `method target` with `body` to `server`, within `timeout` in all.
// Succeeds with whatever status the server answered; fails with 503 and a
// one-line reason when the server cannot be reached, the exchange breaks or
// the timeout passes.
asio::awaitable<Result<ClientResponse>> send_request(
    Verb method, const BaseUrl& server, std::string target, std::string body,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace kalavara::http
