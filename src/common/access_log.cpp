#include "common/access_log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <mutex>

#include "common/json.hpp"
#include "common/key_codec.hpp"

namespace kalavara {
namespace {

// A text field: printable ASCII as it is, any other byte as %XX, so a field
// never holds a space or a line break and a path stays a valid
// percent-encoded path; "-" when empty.
void append_text_field(std::string& out, std::string_view bytes) {
  if (bytes.empty()) {
    out.push_back('-');
    return;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte > 0x20 && byte < 0x7F) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
}

void append_peer(std::string& out, const boost::asio::ip::tcp::endpoint* peer) {
  if (peer == nullptr) {
    out.push_back('-');
    return;
  }
  const auto address = peer->address();
  if (address.is_v6()) {
    fmt::format_to(std::back_inserter(out), "[{}]:{}", address.to_string(), peer->port());
  } else {
    fmt::format_to(std::back_inserter(out), "{}:{}", address.to_string(), peer->port());
  }
}

double seconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

}  // namespace

std::string format_access_line(const http::CompletedRequest& request, std::string_view route,
                               std::chrono::system_clock::time_point time, LogFormat format) {
  std::string line;
  line.reserve(160 + request.target.size());
  // The query is never logged: it may carry a signature.
  const auto path = split_target(request.target).path;
  if (format == LogFormat::kText) {
    append_utc_time(line, time);
    line.push_back(' ');
    append_peer(line, request.peer);
    line.push_back(' ');
    append_text_field(line, request.method_text);
    line.push_back(' ');
    append_text_field(line, path);
    fmt::format_to(std::back_inserter(line), " {} {} {} {:.6f}", request.status,
                   request.bytes_received, request.bytes_sent, seconds(request.duration));
    return line;
  }
  line += "{\"time\":\"";
  append_utc_time(line, time);
  // A peer's text is digits, dots, colons and brackets: nothing to escape.
  line += "\",\"peer\":\"";
  append_peer(line, request.peer);
  line += "\",\"method\":";
  append_json_string(line, request.method_text);
  line += ",\"path\":";
  append_json_string(line, path);
  line += ",\"route\":";
  if (route.empty()) {
    line += "null";
  } else {
    append_json_string(line, route);
  }
  fmt::format_to(std::back_inserter(line),
                 ",\"status\":{},\"bytes_in\":{},\"bytes_out\":{},\"duration_seconds\":{:.6f}}}",
                 request.status, request.bytes_received, request.bytes_sent,
                 seconds(request.duration));
  return line;
}

// Writes each line with one write(2) on a descriptor opened O_APPEND, so
// lines are never torn or interleaved with another writer's, and nothing
// sits in a buffer: a line is in the file (the page cache) once written, as
// nginx's unbuffered access log is. Only the logging thread writes;
// reopen() swaps the descriptor under the same mutex.
class AccessLog::Sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  Sink(int fd, bool owned) : fd_(fd), owned_(owned) {}
  ~Sink() override {
    if (owned_) ::close(fd_);
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Takes `fd` in place of the current descriptor.
  void replace(int fd) {
    std::lock_guard lock(mutex_);
    if (owned_) ::close(fd_);
    fd_ = fd;
    owned_ = true;
  }

  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    char newline = '\n';
    iovec pieces[2] = {{const_cast<char*>(msg.payload.data()), msg.payload.size()}, {&newline, 1}};
    std::size_t left = msg.payload.size() + 1;
    int index = 0;
    while (left > 0) {
      const auto written = ::writev(fd_, pieces + index, 2 - index);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {
        fail(written < 0 ? std::strerror(errno) : "nothing written");
        return;
      }
      // A short write (a pipe that filled up): write the rest.
      auto done = static_cast<std::size_t>(written);
      left -= done;
      while (index < 2 && done >= pieces[index].iov_len) done -= pieces[index++].iov_len;
      if (index < 2) {
        pieces[index].iov_base = static_cast<char*>(pieces[index].iov_base) + done;
        pieces[index].iov_len -= done;
      }
    }
    failing_ = false;
  }
  void flush_() override {}  // nothing is buffered

 private:
  // Counts the line lost; warns once per run of failures, so a full disk
  // does not flood the daemon log with one warning per request.
  void fail(const char* reason) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    if (!failing_) spdlog::warn("access log: a line could not be written: {}", reason);
    failing_ = true;
  }

  int fd_;
  bool owned_;
  bool failing_ = false;  // under mutex_
  std::atomic<std::uint64_t> failed_{0};
};

namespace {

Result<int> open_for_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Error{Errc::kInternal, "cannot open access log " + path + ": " + std::strerror(errno)};
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path, LogFormat format,
                                                   const http::Router& router,
                                                   std::size_t queue_lines) {
  std::shared_ptr<Sink> sink;
  if (path == "-") {
    sink = std::make_shared<Sink>(STDOUT_FILENO, false);
  } else {
    auto fd = open_for_append(path);
    if (!fd) return fd.error();
    sink = std::make_shared<Sink>(*fd, true);
  }
  return std::unique_ptr<AccessLog>(
      new AccessLog(path, format, router, std::move(sink), queue_lines));
}

AccessLog::AccessLog(std::string path, LogFormat format, const http::Router& router,
                     std::shared_ptr<Sink> sink, std::size_t queue_lines)
    : path_(std::move(path)),
      format_(format),
      routes_(router.route_labels()),
      sink_(std::move(sink)),
      pool_(std::make_shared<spdlog::details::thread_pool>(
          queue_lines, 1, [] { ::pthread_setname_np(::pthread_self(), "access-log"); })),
      // Not registered with spdlog: it must not become a default, nor take
      // --log-level (off turns the daemon log off, not the access log).
      logger_(std::make_shared<spdlog::async_logger>(
          "access", sink_, pool_, spdlog::async_overflow_policy::overrun_oldest)) {}

AccessLog::~AccessLog() {
  // The pool's thread writes what is queued before it ends; queued lines
  // hold the logger, so it goes last.
  logger_.reset();
  pool_.reset();
  if (const auto lost = sink_->failed(); lost > 0) {
    spdlog::warn("access log: {} line(s) could not be written", lost);
  }
}

void AccessLog::request_finished(const http::CompletedRequest& request) {
  const std::string_view route =
      request.route_id < routes_.size() ? std::string_view(routes_[request.route_id]) : "";
  const auto line = format_access_line(request, route, std::chrono::system_clock::now(), format_);
  logger_->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

Status AccessLog::reopen() {
  if (path_ == "-") return {};
  auto fd = open_for_append(path_);
  if (!fd) return fd.error();
  sink_->replace(*fd);
  return {};
}

std::uint64_t AccessLog::dropped() const { return pool_->overrun_counter() + sink_->failed(); }

void AccessLog::collect(metrics::Writer& out) const {
  const std::string name = "kalavara_access_log_dropped_lines_total";
  out.family(name, metrics::Writer::Type::kCounter,
             "Access-log lines lost: the oldest queued line when the queue was full, or a "
             "line whose write failed");
  out.sample(name, {{"reason", "queue_full"}},
             static_cast<std::uint64_t>(pool_->overrun_counter()));
  out.sample(name, {{"reason", "write_failed"}}, sink_->failed());
}

}  // namespace kalavara
