// A small async HTTP/1.1 client for the daemons' calls to each other (a
// volume committing to the master, the master deleting on a volume, a volume
// registering). Connections are kept alive and reused: every PUT commits and
// every DELETE deletes on a volume, so a new TCP connection per call cost as
// much as the call itself. Idle connections are kept per io_context (one
// thread each), so a connection is only ever used by the thread it belongs
// to. Thread-safe: every call is independent.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/http_types.hpp"
#include "common/url.hpp"

namespace kalavara {
class Signer;
}

namespace kalavara::http {

// What every request this process sends carries: a signature of its method
// and target (the daemons, with --secret-file: they sign every call to each
// other) and a bearer token (the admin commands, with --admin-token-file).
struct Credentials {
  const Signer* signer = nullptr;  // must outlive every request
  std::string bearer;
};
// Sets the credentials of every request sent from then on. Call once at
// start-up, before the first request; not thread-safe with requests in
// flight.
void use_credentials(Credentials credentials);

struct ClientResponse {
  unsigned status = 0;
  std::string body;
  std::string etag;  // the ETag header, if any
};

// Sends `method target` with `body` to `server`, within `timeout` in all.
// Succeeds with whatever status the server answered. Fails with a one-line
// reason and
//   kUnavailable when the request was never written in full: the server
//       could not be reached or the connection broke while the request was
//       being sent; the server did not act on it.
//   kNoAnswer when the whole request was written but no whole answer came
//       back (the connection broke or the timeout passed): the server may or
//       may not have acted on it.
// A kept-alive connection that the server closed while it was idle is not
// an error: the request is sent again, once, on a new connection, which is
// safe because the server closes a connection only when it has no request
// on it. If the first attempt had been written in full, a retry that fails
// in any way (even to connect) is kNoAnswer, since the server may have
// acted on the first; a retry that gets an answer returns that answer.
// Answers between daemons are short, but for listings: an answer whose body
// is larger than `max_response_body` fails as one that never came whole
// (kNoAnswer).
// A request with `Sign::kAnonymous` carries no credentials: one to a server
// that is not a kalavara daemon (etcd), which has no use for our secrets.
inline constexpr std::uint64_t kDefaultMaxResponseBody = 1024 * 1024;
enum class Sign : bool { kWithCredentials, kAnonymous };
asio::awaitable<Result<ClientResponse>> send_request(
    Verb method, const BaseUrl& server, std::string target, std::string body,
    std::chrono::milliseconds timeout = std::chrono::seconds(10),
    std::uint64_t max_response_body = kDefaultMaxResponseBody, Sign sign = Sign::kWithCredentials);

// A GET whose answer's body is passed on piece by piece as it arrives: a
// volume pulling a copy of a value from another, in constant memory.
struct FetchResult {
  unsigned status = 0;
  std::string etag;  // the ETag header, if any
  // The body of an answer that is not 2xx (a one-line reason, at most
  // kDefaultMaxResponseBody bytes); a 2xx answer's body went to the sink.
  std::string body;
};
using FetchSink = std::function<asio::awaitable<Status>(std::span<const char>)>;
// The size of the pieces a fetch passes to its sink (the last may be shorter).
inline constexpr std::size_t kFetchChunkBytes = 64 * 1024;

// Sends `GET target` (with `headers`) to `server` on a connection of its
// own, reads the answer's header, then passes a 2xx answer's body to `sink`
// chunk by chunk, awaiting it before reading on, so a slow sink slows the
// server down; each socket operation (connect, send, each read) must be done
// within `io_timeout`. Succeeds with the status and ETag once the whole body
// was passed on. Fails with the sink's own Error when the sink fails (the
// rest is not read), or, as send_request does:
//   kUnavailable when the request was never written in full;
//   kNoAnswer when it was and no whole answer came: the connection broke or
//       stalled past the timeout in the header or in the body (the sink may
//       then have had part of it, which the caller must throw away), or a
//       non-2xx body was larger than kDefaultMaxResponseBody.
// The connection is never reused (a body read only in part could not be),
// and no request is sent twice.
asio::awaitable<Result<FetchResult>> fetch(
    const BaseUrl& server, std::string target, const FetchSink& sink,
    std::chrono::milliseconds io_timeout,
    const std::vector<std::pair<Field, std::string>>& headers = {});

// A request whose body is sent piece by piece as it becomes available: a
// volume forwarding an upload to a replica while it receives it. Not
// thread-safe; one coroutine drives it.
class UploadStream {
 public:
  // Connects to `server` and sends the header of `method target` with
  // Content-Length `length`. Fails with kUnavailable when the server cannot be reached.
  static asio::awaitable<Result<std::unique_ptr<UploadStream>>> open(
      Verb method, const BaseUrl& server, std::string target, std::uint64_t length,
      std::chrono::milliseconds io_timeout);
  ~UploadStream();
  UploadStream(const UploadStream&) = delete;
  UploadStream& operator=(const UploadStream&) = delete;

  // Sends the next bytes of the body. Fails with kUnavailable when the connection breaks.
  asio::awaitable<Status> write(std::span<const char> bytes);
  // After the whole body: reads the server's answer. Fails with kNoAnswer
  // when no whole answer comes within the I/O timeout: the server had the
  // whole request and may have acted on it (stored the body).
  asio::awaitable<Result<ClientResponse>> finish();

 private:
  struct Impl;
  explicit UploadStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kalavara::http
