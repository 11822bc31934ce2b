// The access log (--access-log FILE|-): one line per request, apart from the
// daemon log, in the --log-format of the daemon log.
//
// Text, eight fields separated by single spaces:
//   2026-12-02T03:04:05.123Z 127.0.0.1:53012 PUT /store/my%20key 307 48 512 0.000412
//   TIME PEER METHOD PATH STATUS BYTES_IN BYTES_OUT DURATION_SECONDS
// JSON, one object per line, the same fields plus the route:
//   {"time":"2026-12-02T03:04:05.123Z","peer":"127.0.0.1:53012","method":"PUT",
//    "path":"/store/my%20key","route":"/store/","status":307,"bytes_in":48,
//    "bytes_out":512,"duration_seconds":0.000412}
//
// - time: when the answer's last byte was written (or the connection failed),
//   RFC 3339, UTC, milliseconds; lines are in about that order.
// - peer: the client's address and port ([v6]:port for IPv6).
// - method, path: as the client sent them, path in origin form (an absolute
//   target is reduced to its path) WITHOUT the query string: a query carries
//   signatures (sig=), which are credentials until they expire, and nothing
//   that is in a query is ever logged. The path holds the key percent-encoded
//   as the client sent it. In text, a byte that is not printable ASCII
//   (space, control, 0x7F and up) is written %XX, so a field never holds a
//   space or a line break; in JSON, the string is escaped by
//   append_json_string. "-" (text) or "" (JSON) when the request line could
//   not be parsed.
// - route: the label the route was registered with ("/store/"), null when no
//   route took the request. JSON only: the path says as much in text.
// - status: the status answered. bytes_in, bytes_out: what the request and
//   the answer took on the wire, header and body.
// - duration_seconds: from the whole header being read to the answer's last
//   byte written, to the microsecond.
// Bodies and header fields (credentials among them) are never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/result.hpp"
#include "common/router.hpp"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace kalavara {

// The access-log line of `request` (without its line break). `route` is the
// label of request.route_id, "" when none. Pure; thread-safe.
std::string format_access_line(const http::CompletedRequest& request, std::string_view route,
                               std::chrono::system_clock::time_point time, LogFormat format);

// Formats each request on its io thread and hands the line to a logging
// thread of its own, through a bounded queue, which writes it with one
// write(2) in O_APPEND mode: an io thread never waits on the disk. When the
// queue is full (the disk stalls, or the lines come faster than it takes
// them), the oldest line waiting is dropped, never the request: drops are
// counted (kalavara_access_log_dropped_lines_total{reason="queue_full"}), as
// are lines a write failed for (reason="write_failed", e.g. a full disk;
// the first failure after a success is also logged as a warning).
// Thread-safe: request_finished() is called concurrently from every io
// thread; reopen() and collect() may run at any time alongside it.
class AccessLog final : public http::ServerObserver {
 public:
  // Lines the queue holds: about 3.3 MiB, allocated at open.
  static constexpr std::size_t kQueueLines = 8192;

  // Opens `path` for appending (creating it, mode 0640 less the umask), or
  // uses stdout when `path` is "-". Routes are named after `router`, which
  // must have all its routes. Fails with kInternal, saying why, when the file
  // cannot be opened.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path, LogFormat format,
                                                 const http::Router& router,
                                                 std::size_t queue_lines = kQueueLines);
  // Writes the lines still queued, then closes the file.
  ~AccessLog() override;
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void request_finished(const http::CompletedRequest& request) override;

  // Opens the path again, for the new file after logrotate moved the old one
  // away: lines written from then on go to the new file; those written before
  // stay in the old. On failure the old file is kept, and the Error says why.
  // Nothing to do for stdout. Blocks on open(2) and on a write under way.
  Status reopen();

  // Writes kalavara_access_log_dropped_lines_total.
  void collect(metrics::Writer& out) const;

  // Lines dropped so far, for either reason.
  std::uint64_t dropped() const;

 private:
  class Sink;
  AccessLog(std::string path, LogFormat format, const http::Router& router,
            std::shared_ptr<Sink> sink, std::size_t queue_lines);

  std::string path_;
  LogFormat format_;
  std::vector<std::string> routes_;  // labels by route id; [0] is ""
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace kalavara
