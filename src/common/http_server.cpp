#include "common/http_server.hpp"
#include "common/spawn.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "common/key_codec.hpp"

namespace kalavara::http {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunkBytes = 64 * 1024;
// After answering a request whose body we did not read, keep reading (and
// dropping) what the client still sends for a while before closing: closing
// with unread data makes the kernel send RST, which can destroy the response
// before the client reads it.
constexpr auto kLingerTime = std::chrono::seconds(5);
// How often deadlines are checked: a timeout fires up to this much late.
constexpr auto kSweepInterval = std::chrono::seconds(1);
// Once stopping, the sweep also watches for the last connection to go, and
// ends within this much of it so the io_context can finish.
constexpr auto kStoppingSweepInterval = std::chrono::milliseconds(50);
// Socket reads while a header is incomplete ask for this much at a time.
constexpr std::size_t kHeaderReadBytes = 8 * 1024;

using Clock = std::chrono::steady_clock;
constexpr Clock::rep kNoDeadline = std::numeric_limits<Clock::rep>::max();

Clock::rep ticks(std::chrono::seconds duration) { return Clock::duration(duration).count(); }

// What a connection waits for while its deadline runs: it decides what a
// connection that times out is told.
enum class Wait : std::uint8_t {
  kNothing,  // a handler runs: no deadline
  kRequest,  // a request's header (nothing of it may have come yet)
  kBody,     // the next piece of a request's body
  kSend,     // the client to take more of the response
  kLinger,   // the client to stop sending after its answer
};

class Session;

}  // namespace

struct HttpServer::State {
  State(std::vector<asio::io_context*> io_contexts, const Router& r, ServerLimits l,
        std::vector<ServerObserver*> o)
      : contexts(std::move(io_contexts)),
        router(r),
        limits(l),
        observers(std::move(o)),
        acceptor(*contexts.front()),
        sweep_timer(*contexts.front()) {}

  const std::vector<asio::io_context*> contexts;
  std::size_t next_context = 0;  // the accept loop's; round robin
  const Router& router;
  const ServerLimits limits;
  const std::vector<ServerObserver*> observers;
  tcp::acceptor acceptor;
  asio::steady_timer sweep_timer;  // on the listener's io_context
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> turned_away{0};  // past max_connections, lingering
  // Requests whose header has been read and whose answer is not sent yet:
  // once stopping, the listener closes when none is left.
  std::atomic<std::size_t> busy{0};
  std::mutex mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
};

namespace {

bool is_disconnect(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == beast::error::timeout || ec == asio::error::broken_pipe ||
         ec == asio::error::bad_descriptor;
}

Clock::rep now_ticks() { return Clock::now().time_since_epoch().count(); }

// What a message's fields take on the wire ("Name: value\r\n"), to bound
// trailers, which Beast adds to the header's fields.
std::size_t field_bytes(const RequestHeader& header) {
  std::size_t bytes = 0;
  for (const auto& field : header) bytes += field.name_string().size() + field.value().size() + 4;
  return bytes;
}

// Whether the request's Transfer-Encoding is one we can delimit: none, or
// chunked alone (RFC 9112 §6.1, §6.3). Beast only looks at whether chunked
// is the last coding: it takes "gzip" as no body, so the body would be read
// as the next request, passes a "gzip, chunked" body on still compressed,
// and takes "chunked, chunked" as no body. Fails with kBadInput (400) when
// the final coding is not chunked or chunked comes twice, kNotImplemented
// (501) for another coding before a final chunked. The fields are one list,
// in order; empty elements are ignored, and parameters are not part of a
// coding's name (as Beast reads them).
Status check_transfer_codings(const RequestHeader& request) {
  const auto fields = request.equal_range(Field::transfer_encoding);
  if (fields.first == fields.second) return Status{};
  const auto trim = [](std::string_view text) {
    const auto begin = text.find_first_not_of(" \t");
    if (begin == std::string_view::npos) return std::string_view{};
    return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
  };
  std::vector<std::string_view> codings;
  for (auto field = fields.first; field != fields.second; ++field) {
    std::string_view list = field->value();
    for (;;) {
      const auto comma = list.find(',');
      const auto element = list.substr(0, comma);
      if (const auto coding = trim(element.substr(0, element.find(';'))); !coding.empty()) {
        codings.push_back(coding);
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  const auto is_chunked = [](std::string_view coding) { return beast::iequals(coding, "chunked"); };
  if (codings.empty()) return Error{Errc::kBadInput, "Transfer-Encoding names no coding"};
  if (!is_chunked(codings.back())) {
    const std::string last(codings.back());
    return Error{Errc::kBadInput, "Transfer-Encoding must end with chunked, not \"" + last +
                                      "\": the body cannot be delimited"};
  }
  codings.pop_back();
  for (const auto coding : codings) {
    if (is_chunked(coding)) {
      return Error{Errc::kBadInput, "Transfer-Encoding applies chunked more than once"};
    }
  }
  if (!codings.empty()) {
    return Error{Errc::kNotImplemented, "transfer coding \"" + std::string(codings.front()) +
                                            "\" is not supported: only chunked is"};
  }
  return Status{};
}

class Session final : public Exchange, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::State> server)
      : server_(std::move(server)), socket_(std::move(socket)), accepted_(now_ticks()) {
    on_chunk_header_ = [this](std::uint64_t, beast::string_view extensions,
                              boost::system::error_code& ec) {
      header_bytes_seen_ += extensions.size();
      if (header_bytes_seen_ > server_->limits.header_bytes) ec = bhttp::error::header_limit;
    };
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    // Writes are tried at once and only awaited when the socket is full.
    socket_.non_blocking(true, ignored);
    peer_ = socket_.remote_endpoint(ignored);
    for (auto* observer : server_->observers) observer->connection_opened();
  }

  ~Session() override {
    for (auto* observer : server_->observers) observer->connection_closed();
    std::lock_guard lock(server_->mutex);
    server_->sessions.erase(this);
  }

  // Closes the connection if it is waiting for a request; otherwise the
  // session closes by itself after its current response. Any thread.
  //
  // The posted work holds the session weakly: once stopping, an io_context
  // ends as soon as it runs out of work, and work posted to one that has
  // ended is never run. Holding the session strongly would then keep it
  // alive forever, and the server, which waits for its last session, would
  // never finish stopping.
  void close_if_idle() {
    asio::post(socket_.get_executor(), [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self) return;
      boost::system::error_code ignored;
      if (self->idle_) self->socket_.close(ignored);
    });
  }

  asio::any_io_executor executor() { return socket_.get_executor(); }

  // Whether an I/O operation has waited past its deadline. Any thread.
  bool overdue(Clock::rep now) const { return deadline_.load(std::memory_order_relaxed) <= now; }

  // Closes the connection if it is still overdue (the operation may have
  // completed meanwhile): the pending operation then fails. A client whose
  // request was partly received is answered 408 first. Any thread.
  void expire() {
    asio::post(socket_.get_executor(), [weak = weak_from_this()] {  // as close_if_idle()
      auto self = weak.lock();
      if (!self || !self->overdue(now_ticks())) return;
      self->timed_out_ = true;
      self->answer_timed_out();
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    });
  }

  // Serves the connection until it closes. The parameter keeps the session
  // alive for as long as the coroutine runs: it may start on another
  // thread after the caller has let go of its pointer.
  static asio::awaitable<void> serve(std::shared_ptr<Session> self) { co_await self->run(); }

 private:
  asio::awaitable<void> run() {
    bool first = true;
    // A connection accepted while stopping still has its one request
    // answered; `keep` is false from then on.
    for (;;) {
      parser_.emplace();
      parser_->header_limit(server_->limits.header_bytes);
      // What a chunked body sends besides data counts against the same limit.
      parser_->on_chunk_header(on_chunk_header_);
      header_bytes_seen_ = 0;
      // Bodies are streamed, never buffered whole, so the parser itself sets
      // no limit; handlers that buffer (read_body) enforce their own.
      parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      continue_sent_ = false;
      broken_ = false;
      client_gone_ = false;
      route_ = {};
      route_id_ = 0;

      idle_ = true;
      auto ec = co_await read_header(first);
      idle_ = false;
      first = false;
      if (ec) {
        if (!is_disconnect(ec)) {
          begin_request();
          const auto status = co_await answer_unparsable(ec);
          end_request(status, false);
        }
        break;
      }
      begin_request();
      if (auto checked = check_request(); !checked) {
        const auto status = co_await reject(checked.error());
        end_request(status, true);
        break;
      }
      to_origin_form();
      auto reply = co_await dispatch();
      bool keep = false;
      if (auto* file = std::get_if<FileReply>(&reply)) {
        const auto status = file->header.result_int();
        keep = co_await send_file(std::move(*file));
        end_request(status, true);
      } else {
        auto& response = std::get<Response>(reply);
        const auto status = response.result_int();
        keep = co_await finish(std::move(response));
        end_request(status, true);
      }
      if (!keep) break;
    }
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 public:
  // Exchange
  const RequestHeader& request() const override { return parser_->get().base(); }

  std::string_view route() const override { return route_; }

  asio::awaitable<Result<std::string>> read_body(std::size_t limit) override {
    const auto too_large =
        Error{Errc::kTooLarge, "request body is larger than " + std::to_string(limit) + " bytes"};
    if (auto length = parser_->content_length(); length && *length > limit) co_return too_large;
    std::string body;
    auto status = co_await stream_body([&](std::span<const char> chunk) -> asio::awaitable<Status> {
      if (body.size() + chunk.size() > limit) co_return too_large;
      body.append(chunk.data(), chunk.size());
      co_return Status{};
    });
    if (!status) co_return status.error();
    co_return body;
  }

  asio::awaitable<Status> stream_body(const BodySink& sink) override {
    if (parser_->is_done()) co_return Status{};
    if (!co_await send_continue_if_expected()) co_return Error{Errc::kBadInput, "client went away"};
    if (!chunk_) chunk_ = std::make_unique<char[]>(kChunkBytes);
    // Beast sizes each socket read by the buffer's free capacity, which after
    // a header is small; without room, a large body arrives in 1-2 KiB reads.
    if (buffer_.capacity() < kChunkBytes) buffer_.reserve(kChunkBytes);
    // Data is taken out of the buffer as it comes; what accumulates is a
    // chunk line or trailer section still incomplete, so a cap bounds the
    // memory an endless one takes (the callback and the trailer count below
    // apply the exact limit once it is whole).
    const bool chunked = parser_->chunked();
    const std::size_t fields_before = chunked ? field_bytes(request()) : 0;
    if (chunked) buffer_.max_size(kChunkBytes + server_->limits.header_bytes);
    const auto uncapped = [this] { buffer_.max_size(std::numeric_limits<std::size_t>::max()); };
    while (!parser_->is_done()) {
      auto& body = parser_->get().body();
      body.data = chunk_.get();
      body.size = kChunkBytes;
      arm(server_->limits.body_timeout, Wait::kBody);
      auto [ec, bytes] = co_await bhttp::async_read_some(socket_, buffer_, *parser_, kAwait);
      disarm();
      received_ += bytes;
      if (ec == bhttp::error::need_buffer) ec = {};
      const std::size_t got = kChunkBytes - body.size;
      if (ec) {
        broken_ = true;
        client_gone_ = ec == bhttp::error::partial_message || is_disconnect(ec);
        uncapped();
        if (timed_out_)
          co_return Error{Errc::kTimedOut, "request body timed out: no data for too long"};
        if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
          co_return framing_too_large();
        }
        co_return Error{Errc::kBadInput, "request body broken off: " + ec.message()};
      }
      if (got > 0) {
        const std::span<const char> piece{chunk_.get(), got};
        auto status = co_await sink(piece);
        if (!status) {
          uncapped();
          co_return status;
        }
      }
    }
    uncapped();
    if (chunked) {
      header_bytes_seen_ += field_bytes(request()) - fields_before;  // the trailers
      if (header_bytes_seen_ > server_->limits.header_bytes) {
        broken_ = true;
        co_return framing_too_large();
      }
    }
    co_return Status{};
  }

  Error framing_too_large() const {
    return Error{Errc::kHeaderTooLarge,
                 "header, chunk extensions and trailers are larger than the limit of " +
                     std::to_string(server_->limits.header_bytes) + " bytes"};
  }

 private:
  asio::awaitable<Reply> dispatch() {
    const auto& req = parser_->get();
    const auto target = split_target(req.target());
    auto resolved = server_->router.resolve(req.method(), target.path);
    if (auto* response = std::get_if<Response>(&resolved)) co_return std::move(*response);
    const auto& matched = std::get<Router::Matched>(resolved);
    route_ = matched.route;
    route_id_ = matched.route_id;
    if (server_->stopping && matched.while_stopping == Router::WhileStopping::kRefuse) {
      auto response = text_response(HttpStatus::service_unavailable, "shutting down");
      response.set(Field::retry_after, "1");
      co_return response;
    }
    const Handler& handler = *matched.handler;
    try {
      co_return co_await handler(*this);
    } catch (const std::exception& e) {
      // A handler that throws has a bug; answer and keep the daemon serving.
      // The path only: a query may carry a signature, never to be logged.
      spdlog::error("handler for {} {} threw: {}", std::string(req.method_string()),
                    std::string(split_target(req.target()).path), e.what());
      co_return text_response(HttpStatus::internal_server_error, "internal error");
    }
  }

  // Makes the connection ready for the response, and tells whether it can be
  // kept for another request: an unread body is discarded first when small
  // enough, so the next request's bytes are not mistaken for body bytes.
  asio::awaitable<bool> prepare_to_answer(Response& response) {
    const auto& req = parser_->get();
    bool keep = req.keep_alive() && !server_->stopping && !broken_;
    // A body that broke off cannot be read on: the connection closes after
    // the answer.
    if (!parser_->is_done() && !broken_) {
      const bool waits_for_continue =
          beast::iequals(req[Field::expect], "100-continue") && !continue_sent_;
      const auto length = parser_->content_length();
      const bool small = length && *length <= server_->limits.discard_body_bytes;
      if (waits_for_continue || !small || !co_await discard_body()) keep = false;
    }
    response.version(req.version());
    response.keep_alive(keep);
    co_return keep;
  }

  // Sends `response`; returns whether the connection stays open.
  asio::awaitable<bool> finish(Response response) {
    const bool keep = co_await prepare_to_answer(response);
    // A HEAD answer keeps the Content-Length of what a GET would send.
    const bool head = parser_->get().method() == Verb::head;
    if (!head && !response.has_content_length() && !response.chunked()) {
      response.prepare_payload();
    }
    out_.clear();
    serialize_response(response, !head, out_);
    if (co_await write_all(asio::buffer(out_))) co_return false;
    // A client that closed its side sends nothing more to drain (and a
    // read after its end would only wait for the sweep).
    if (!parser_->is_done() && !client_gone_) co_await linger();
    co_return keep;
  }

  // Sends the header, then the file's bytes with sendfile (only the header
  // for HEAD); returns whether the connection stays open. The header goes
  // out with MSG_MORE so it shares a segment with the file's first bytes. A
  // file that cannot be sent whole closes the connection: part of the body
  // is already out, so nothing else can follow on it.
  asio::awaitable<bool> send_file(FileReply reply) {
    const bool keep = co_await prepare_to_answer(reply.header);
    out_.clear();
    serialize_response(reply.header, false, out_);
    const bool head = request().method() == Verb::head;
    if (co_await write_all(asio::buffer(out_), !head && reply.length > 0)) co_return false;
    if (head) co_return keep;
    if (auto sent = co_await send_file_body(reply.fd.get(), reply.offset, reply.length); !sent) {
      spdlog::debug("file reply to {} cut off: {}",
                    std::string(split_target(request().target()).path), sent.error().message);
      co_return false;
    }
    co_return keep;
  }

  asio::awaitable<bool> send_continue_if_expected() {
    if (continue_sent_ || !beast::iequals(parser_->get()[Field::expect], "100-continue")) {
      co_return true;
    }
    continue_sent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    const auto ec = co_await write_all(asio::buffer(kContinue));
    if (ec) broken_ = true;
    co_return !ec;
  }

  asio::awaitable<bool> discard_body() {
    auto status = co_await stream_body(
        [](std::span<const char>) -> asio::awaitable<Status> { co_return Status{}; });
    co_return status.ok();
  }

  // Half-closes and drops whatever the client still sends, for a bounded
  // time, so it reads our response instead of a connection reset.
  asio::awaitable<void> linger() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16 * 1024> sink{};
    arm(kLingerTime, Wait::kLinger);
    for (;;) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kAwait);
      if (ec) break;
    }
    disarm();
  }

  asio::awaitable<Status> send_file_body(int fd, std::uint64_t offset, std::uint64_t length) {
    auto& socket = socket_;
    while (length > 0) {
      auto file_offset = static_cast<off_t>(offset);
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, 1U << 30));
      const ssize_t sent = ::sendfile(socket.native_handle(), fd, &file_offset, want);
      if (sent > 0) {
        sent_ += static_cast<std::uint64_t>(sent);
        offset += static_cast<std::uint64_t>(sent);
        length -= static_cast<std::uint64_t>(sent);
        continue;
      }
      if (sent == 0) co_return Error{Errc::kInternal, "file ended before its recorded size"};
      if (errno == EINTR) continue;
      if (errno != EAGAIN)
        co_return Error{Errc::kInternal, std::string("sendfile: ") + std::strerror(errno)};
      if (!co_await wait_writable()) co_return Error{Errc::kInternal, "client stopped reading"};
    }
    co_return Status{};
  }

  asio::awaitable<bool> wait_writable() {
    arm(server_->limits.body_timeout, Wait::kSend);
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_write, kAwait);
    disarm();
    co_return !ec;
  }

  // Reads until the parser has a whole header. Fails with end_of_stream when
  // the client closes between requests, timeout when the connection waited
  // too long: a new connection (`first`) must send its first header whole
  // within the header timeout of its accept; a kept one may wait the idle
  // timeout for a request to start, which must then be whole within the
  // header timeout of its first byte. What trickles in meanwhile never
  // extends that deadline.
  asio::awaitable<boost::system::error_code> read_header(bool first) {
    const auto header_timeout = ticks(server_->limits.header_timeout);
    Clock::rep header_deadline = kNoDeadline;
    if (first) {
      header_deadline = accepted_ + header_timeout;
    } else if (buffer_.size() > 0) {
      header_deadline = now_ticks() + header_timeout;  // a pipelined request
    }
    for (;;) {
      boost::system::error_code ec;
      if (buffer_.size() > 0) {
        const auto consumed = parser_->put(buffer_.data(), ec);
        header_bytes_seen_ += consumed;
        buffer_.consume(consumed);
        if (!ec && parser_->is_header_done()) co_return ec;
        if (ec && ec != bhttp::error::need_more) co_return ec;
      }
      if (header_deadline == kNoDeadline) {
        arm(server_->limits.idle_timeout, Wait::kRequest);
      } else {
        arm_until(header_deadline, Wait::kRequest);
      }
      auto [read_ec, n] =
          co_await socket_.async_read_some(buffer_.prepare(kHeaderReadBytes), kAwait);
      disarm();
      if (timed_out_) co_return beast::error::timeout;
      if (read_ec == asio::error::eof) {
        if (buffer_.size() == 0) co_return bhttp::error::end_of_stream;
        co_return bhttp::error::partial_message;
      }
      if (read_ec) co_return read_ec;
      received_ += n;
      // The request's first byte: its header's time starts.
      if (header_deadline == kNoDeadline) header_deadline = now_ticks() + header_timeout;
      buffer_.commit(n);
    }
  }

  // Writes all of `bytes`. Small answers nearly always fit the socket's
  // buffer, so the write is tried at once, which saves a trip through the
  // scheduler; only the rest, if any, is awaited.
  // `more`: a body follows by other means (sendfile), so the kernel may hold
  // these bytes back to fill a segment with both (MSG_MORE), as nginx's
  // tcp_nopush does.
  asio::awaitable<boost::system::error_code> write_all(asio::const_buffer bytes,
                                                       bool more = false) {
    boost::system::error_code ec;
    const std::size_t written = socket_.send(asio::buffer(bytes), more ? MSG_MORE : 0, ec);
    sent_ += written;
    if (!ec && written == bytes.size()) co_return ec;
    if (ec && ec != asio::error::would_block) co_return ec;
    bytes += written;
    arm(server_->limits.body_timeout, Wait::kSend);
    auto [write_ec, n] = co_await asio::async_write(socket_, bytes, kAwait);
    sent_ += n;
    disarm();
    co_return timed_out_ ? beast::error::timeout : write_ec;
  }

  // The deadline of the I/O operation about to start, and what it waits
  // for; the sweep closes the connection if it is still pending then.
  void arm(std::chrono::seconds timeout, Wait wait) {
    arm_until(now_ticks() + ticks(timeout), wait);
  }
  void arm_until(Clock::rep deadline, Wait wait) {
    waiting_for_ = wait;
    deadline_.store(deadline, std::memory_order_relaxed);
  }
  void disarm() {
    waiting_for_ = Wait::kNothing;
    deadline_.store(kNoDeadline, std::memory_order_relaxed);
  }

  // Tells a client that timed out with part of a request sent that it was
  // too slow (RFC 9110 §15.5.9), on its way out: one non-blocking send that
  // never waits. The socket's send buffer is empty while a request is read
  // (the previous answer was sent whole), so the few bytes fit. A client
  // that sent nothing of a request, or stopped taking its answer, is only
  // closed.
  void answer_timed_out() {
    std::string reason;
    if (waiting_for_ == Wait::kRequest && buffer_.size() > 0) {
      reason = "request header not received whole within " +
               std::to_string(server_->limits.header_timeout.count()) + " s";
    } else if (waiting_for_ == Wait::kBody) {
      reason = "request body timed out: nothing received for " +
               std::to_string(server_->limits.body_timeout.count()) + " s";
    } else {
      return;
    }
    auto response = text_response(HttpStatus::request_timeout, reason);
    bool with_body = true;
    if (waiting_for_ == Wait::kBody) {
      response.version(request().version());
      with_body = request().method() != Verb::head;
    }
    response.keep_alive(false);
    std::string out;
    serialize_response(response, with_body, out);
    boost::system::error_code ignored;
    socket_.send(asio::buffer(out), 0, ignored);
  }

  // Whether the request can be served at all, checked before any handler
  // runs: it names one host, and its body can be delimited.
  Status check_request() const {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before. Two
    // could make a proxy and this server disagree on which host is meant.
    const auto hosts = request().count(Field::host);
    if (hosts > 1) return Error{Errc::kBadInput, "a request may carry only one Host header"};
    if (hosts == 0 && request().version() >= 11) {
      return Error{Errc::kBadInput, "an HTTP/1.1 request needs a Host header"};
    }
    return check_framing();
  }

  // Turns a target in absolute form ("http://host/store/k", as sent to a
  // proxy), which a server must accept (RFC 9112 §3.2.2), into the origin
  // form handlers and signatures work on; its authority replaces the Host.
  void to_origin_form() {
    const std::string_view target = request().target();
    if (target.empty() || target.front() == '/') return;
    for (const std::string_view scheme : {"http://", "https://"}) {
      if (target.size() < scheme.size() ||
          !beast::iequals(target.substr(0, scheme.size()), scheme)) {
        continue;
      }
      const auto rest = target.substr(scheme.size());
      const auto end = rest.find_first_of("/?");
      const std::string authority(rest.substr(0, end));
      std::string origin = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
      if (origin.front() == '?') origin.insert(0, "/");
      parser_->get().target(origin);
      parser_->get().set(Field::host, authority);
      return;
    }
  }

  // Whether the request's body can be delimited (see check_transfer_codings).
  Status check_framing() const {
    // Nearly every request has no Transfer-Encoding: one lookup, then done.
    if (request().find(Field::transfer_encoding) == request().end()) return Status{};
    if (auto status = check_transfer_codings(request()); !status) return status;
    // Beast must agree that the body is chunked, or it would read it as none.
    if (!parser_->chunked()) {
      return Error{Errc::kBadInput, "Transfer-Encoding is not a list of transfer codings"};
    }
    return Status{};
  }

  // Answers a request whose body cannot be delimited with `error`, and
  // drains what the client still sends before the connection closes: the
  // rest of the bytes cannot be told apart from a next request.
  // Returns the status answered.
  asio::awaitable<unsigned> reject(const Error& error) {
    auto response = error_response(error);
    response.version(request().version());
    response.keep_alive(false);
    out_.clear();
    serialize_response(response, request().method() != Verb::head, out_);
    if (!co_await write_all(asio::buffer(out_))) co_await linger();
    co_return response.result_int();
  }

  // Returns the status answered.
  asio::awaitable<unsigned> answer_unparsable(const boost::system::error_code& ec) {
    const bool too_large = ec == bhttp::error::header_limit;
    auto response = text_response(
        too_large ? HttpStatus::request_header_fields_too_large : HttpStatus::bad_request,
        too_large ? "request header is larger than " +
                        std::to_string(server_->limits.header_bytes) + " bytes"
                  : "malformed HTTP request: " + ec.message());
    response.keep_alive(false);
    out_.clear();
    serialize_response(response, true, out_);
    co_await write_all(asio::buffer(out_));
    co_return response.result_int();
  }

  // A request is under way from its header to its answer: counted as busy
  // (see State::busy) and told to the observers.
  void begin_request() {
    started_ = Clock::now();
    server_->busy.fetch_add(1, std::memory_order_relaxed);
    for (auto* observer : server_->observers) observer->request_started();
  }

  // `parsed`: the header was read whole, so its method and target are known.
  void end_request(unsigned status, bool parsed) {
    server_->busy.fetch_sub(1, std::memory_order_relaxed);
    if (!server_->observers.empty()) {
      CompletedRequest done;
      if (parsed) {
        done.method = request().method();
        done.method_text = request().method_string();
        done.target = request().target();
      }
      done.route_id = route_id_;
      done.status = status;
      done.bytes_received = received_ - received_reported_;
      done.bytes_sent = sent_ - sent_reported_;
      done.duration = Clock::now() - started_;
      done.peer = &peer_;
      for (auto* observer : server_->observers) observer->request_finished(done);
    }
    received_reported_ = received_;
    sent_reported_ = sent_;
  }

  std::shared_ptr<HttpServer::State> server_;
  tcp::socket socket_;
  std::atomic<Clock::rep> deadline_{kNoDeadline};
  Wait waiting_for_ = Wait::kNothing;
  const Clock::rep accepted_;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  std::unique_ptr<char[]> chunk_;
  // What this request sent outside its body: its header, then its chunk
  // extensions and, once the body is done, its trailers.
  std::size_t header_bytes_seen_ = 0;
  std::function<void(std::uint64_t, beast::string_view, boost::system::error_code&)>
      on_chunk_header_;
  std::string out_;         // the response being sent; reused so it allocates once
  std::string_view route_;  // the current request's route label; empty if none matched
  std::size_t route_id_ = 0;
  tcp::endpoint peer_;
  Clock::time_point started_;  // the current request's header was read whole
  // Bytes this connection read and wrote, and how many of them were
  // reported with a request already.
  std::uint64_t received_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t received_reported_ = 0;
  std::uint64_t sent_reported_ = 0;
  bool idle_ = false;
  bool continue_sent_ = false;
  bool broken_ = false;       // the body could not be read whole
  bool client_gone_ = false;  // ... because the client closed or reset
};

// Answers a connection past --max-connections 503 and closes it. The
// answer goes out at once, before the request is read: the client learns
// why instead of seeing a bare close. What it sends meanwhile is read and
// dropped for a moment, or closing with unread data would reset the
// connection and could destroy the answer before it is read. Those
// lingering connections are bounded too: past kMaxTurnedAway at once, a
// connection is closed without a word.
constexpr std::size_t kMaxTurnedAway = 256;
constexpr auto kTurnAwayLinger = std::chrono::seconds(1);

asio::awaitable<void> linger_turned_away(tcp::socket socket,
                                         std::shared_ptr<HttpServer::State> state) {
  asio::steady_timer timer(socket.get_executor(), kTurnAwayLinger);
  timer.async_wait([&socket](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) socket.close(ignored);
  });
  std::array<char, 4096> sink{};
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), kAwait);
    if (ec) break;
  }
  timer.cancel();
  state->turned_away.fetch_sub(1, std::memory_order_relaxed);
}

void turn_away(tcp::socket socket, const std::shared_ptr<HttpServer::State>& state) {
  static constexpr std::string_view kAnswer =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
      "Content-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
      "too many connections\n";
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.send(asio::buffer(kAnswer), 0, ignored);
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  if (state->turned_away.fetch_add(1, std::memory_order_relaxed) >= kMaxTurnedAway) {
    state->turned_away.fetch_sub(1, std::memory_order_relaxed);
    socket.close(ignored);
    return;
  }
  auto executor = socket.get_executor();
  asio::co_spawn(executor, linger_turned_away(std::move(socket), state), asio::detached);
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::State> state) {
  for (;;) {
    auto& context = *state->contexts[state->next_context];
    state->next_context = (state->next_context + 1) % state->contexts.size();
    auto [ec, socket] = co_await state->acceptor.async_accept(context, kAwait);
    if (ec) {
      if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) break;
      // Out of descriptors or memory: pause instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(state->acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kAwait);
      continue;
    }
    bool full = false;
    {
      std::lock_guard lock(state->mutex);
      full = state->sessions.size() >= state->limits.max_connections;
    }
    if (full) {
      for (auto* observer : state->observers) observer->connection_refused();
      turn_away(std::move(socket), state);
      continue;
    }
    // The stop hooks, run on this thread, let the other io_contexts end once
    // they run out of work; one may have ended already. What is accepted
    // from then on is served here, where the listener keeps this one going.
    if (state->stopping && &socket.get_executor().context() != state->contexts.front()) {
      boost::system::error_code move_ec;
      const auto protocol = socket.local_endpoint(move_ec).protocol();
      const auto native = move_ec ? -1 : socket.release(move_ec);
      if (move_ec) continue;
      socket =
          std::remove_reference_t<decltype(socket)>(*state->contexts.front(), protocol, native);
    }
    auto session = std::make_shared<Session>(std::move(socket), state);
    {
      std::lock_guard lock(state->mutex);
      state->sessions.emplace(session.get(), session);
    }
    auto executor = session->executor();
    asio::co_spawn(executor, Session::serve(std::move(session)), log_if_thrown("a connection"));
  }
}

// Closes the connections whose pending I/O has passed its deadline, once a
// second, until the server has stopped and its last connection is gone.
asio::awaitable<void> sweep_loop(std::shared_ptr<HttpServer::State> state) {
  std::vector<std::shared_ptr<Session>> overdue;
  for (;;) {
    if (state->stopping) {
      state->sweep_timer.expires_after(kStoppingSweepInterval);
    } else {
      state->sweep_timer.expires_after(kSweepInterval);
    }
    co_await state->sweep_timer.async_wait(kAwait);
    const auto now = now_ticks();
    // Stopping, and no request left in flight: nothing is waited for any
    // more, so the port closes and so do the connections still open.
    const bool close_all = state->stopping && state->acceptor.is_open() &&
                           state->busy.load(std::memory_order_relaxed) == 0;
    if (close_all) {
      boost::system::error_code ignored;
      state->acceptor.close(ignored);
    }
    {
      std::lock_guard lock(state->mutex);
      if (state->stopping && !state->acceptor.is_open() && state->sessions.empty()) break;
      for (const auto& [raw, weak] : state->sessions) {
        if (!close_all && !raw->overdue(now)) continue;
        if (auto session = weak.lock()) overdue.push_back(std::move(session));
      }
    }
    for (const auto& session : overdue) {
      if (close_all) session->close_if_idle();
      if (session->overdue(now)) session->expire();
    }
    overdue.clear();
  }
}

}  // namespace

HttpServer::HttpServer(std::vector<asio::io_context*> contexts, const Router& router,
                       ServerLimits limits, std::vector<ServerObserver*> observers)
    : state_(std::make_shared<State>(std::move(contexts), router, limits, std::move(observers))) {}

HttpServer::~HttpServer() = default;

Result<tcp::endpoint> HttpServer::listen(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec)
    return Error{Errc::kBadInput, "invalid listen address '" + address + "': " + ec.message()};
  const tcp::endpoint endpoint{ip, port};
  auto& acceptor = state_->acceptor;
  const auto failed = [&] {
    return Error{Errc::kInternal,
                 "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message()};
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return failed();
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return failed();
  acceptor.bind(endpoint, ec);
  if (ec) return failed();
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed();
  return acceptor.local_endpoint();
}

void HttpServer::start() {
  asio::co_spawn(state_->acceptor.get_executor(), accept_loop(state_),
                 log_if_thrown("the listener"));
  asio::co_spawn(state_->sweep_timer.get_executor(), sweep_loop(state_),
                 log_if_thrown("the timeout sweep"));
}

void HttpServer::stop() {
  state_->stopping = true;
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    // The sweep switches to its stopping pace at once; it closes the
    // listener once no request is in flight.
    state->sweep_timer.cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(state_->mutex);
    for (auto& [raw, weak] : state_->sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->close_if_idle();
}

}  // namespace kalavara::http
