#include "http_harness.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/checksum.hpp"
#include "common/conditional.hpp"
#include "common/internal_api.hpp"
#include "common/signature.hpp"

namespace kalavara::fuzz {
namespace {

// The ports connections may go to as they are: the daemons' own (a target
// may serve two configurations) and the stub's. Set before the io thread
// starts; read on any thread.
std::array<std::atomic<std::uint16_t>, 2> daemon_ports{};
std::atomic<std::uint16_t> stub_port{0};

bool own_port(std::uint16_t port) {
  if (port == stub_port.load()) return true;
  for (const auto& daemon_port : daemon_ports) {
    if (port == daemon_port.load()) return true;
  }
  return false;
}

}  // namespace
}  // namespace kalavara::fuzz

// These two replace the C library's for the whole process (the executable's
// definitions come first; the sanitizer runtime's getaddrinfo is weak).

extern "C" int getaddrinfo(const char* /*node*/, const char* service, const struct addrinfo* hints,
                           struct addrinfo** result) {
  using Real = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const auto real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  struct addrinfo numeric {};
  if (hints != nullptr) numeric = *hints;
  // Numeric: no lookup leaves the process. IPv4 only, whatever the machine
  // has configured (AI_ADDRCONFIG would drop loopback-only answers).
  numeric.ai_family = AF_INET;
  numeric.ai_flags = (numeric.ai_flags & AI_NUMERICSERV) | AI_NUMERICHOST;
  return real("127.0.0.1", service, &numeric, result);
}

extern "C" int connect(int fd, const struct sockaddr* address, socklen_t length) {
  using kalavara::fuzz::own_port;
  using kalavara::fuzz::stub_port;
  if (address == nullptr || address->sa_family != AF_INET || length < sizeof(sockaddr_in)) {
    errno = ECONNREFUSED;
    return -1;
  }
  sockaddr_in destination{};
  std::memcpy(&destination, address, sizeof destination);
  const auto port = ntohs(destination.sin_port);
  const bool loopback = destination.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
  if (!loopback || !own_port(port)) {
    if (stub_port.load() == 0) {
      errno = ECONNREFUSED;
      return -1;
    }
    destination.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    destination.sin_port = htons(stub_port.load());
  }
  return static_cast<int>(::syscall(SYS_connect, fd, &destination, sizeof destination));
}

namespace kalavara::fuzz {
namespace {

namespace asio = boost::asio;
using http::Exchange;
using http::Field;
using http::HttpStatus;
using http::Reply;
using http::Response;
using http::Router;
using http::Verb;

class AbortingSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    std::fprintf(stderr, "kalavara logged an error, a bug by its own account: %.*s\n",
                 static_cast<int>(message.payload.size()), message.payload.data());
    std::abort();
  }
  void flush_() override {}
};

// The folders to remove at exit.
std::mutex folders_mutex;
std::vector<std::filesystem::path>* folders = nullptr;

void remove_folders() {
  const std::lock_guard lock(folders_mutex);
  if (folders == nullptr) return;
  for (const auto& folder : *folders) {
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
}

Loop* running_loop = nullptr;

void stop_running_loop() {
  if (running_loop != nullptr) running_loop->stop();
}

std::chrono::milliseconds deadline_from_environment() {
  if (const char* text = std::getenv("KALAVARA_FUZZ_DEADLINE_MS")) {
    return std::chrono::milliseconds(std::strtoul(text, nullptr, 10));
  }
  return std::chrono::milliseconds(1000);
}

// A made-up value for any target: what the stub serves as a source's copy.
std::string stub_value(std::string_view target) { return "stub value of " + std::string(target); }

std::string etag_of(std::string_view bytes) {
  ValueHasher hasher;
  hasher.update(bytes);
  return etag_for(checksum_hex(hasher.finish()));
}

asio::awaitable<Reply> stub_commit(Exchange& exchange) {
  const auto call = internal::parse_commit(exchange.request().target());
  if (!call) co_return http::error_response(call.error());
  co_return http::text_response(HttpStatus::ok,
                                internal::commit_answer_text(internal::CommitAnswer::kCommitted));
}

asio::awaitable<Reply> stub_replica_copy(Exchange& exchange) {
  ValueHasher hasher;
  const auto received =
      co_await exchange.stream_body([&](std::span<const char> chunk) -> asio::awaitable<Status> {
        hasher.update(chunk);
        co_return Status{};
      });
  if (!received) co_return http::error_response(received.error());
  auto response = http::text_response(HttpStatus::created, "stored as a replica");
  response.set(Field::etag, etag_for(checksum_hex(hasher.finish())));
  co_return response;
}

asio::awaitable<Reply> stub_read(Exchange& exchange) {
  const auto value = stub_value(exchange.request().target());
  const auto etag = etag_of(value);
  if (const auto header = exchange.request()[Field::if_none_match];
      !header.empty() && if_none_match_matches(header, etag)) {
    Response not_modified{HttpStatus::not_modified, 11};
    not_modified.set(Field::etag, etag);
    co_return not_modified;
  }
  Response response{HttpStatus::ok, 11};
  response.set(Field::etag, etag);
  response.body() = value;
  response.prepare_payload();
  co_return response;
}

asio::awaitable<Reply> stub_status(HttpStatus status) {
  Response response{status, 11};
  response.prepare_payload();
  co_return response;
}

}  // namespace

void abort_on_logged_errors() {
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<AbortingSink>());
  logger->set_level(spdlog::level::err);
  spdlog::set_default_logger(std::move(logger));
}

std::filesystem::path scratch_folder(std::string_view name) {
  const char* base = std::getenv("KALAVARA_FUZZ_TMP");
  const std::filesystem::path parent = base != nullptr && *base != '\0'
                                           ? std::filesystem::path(base)
                                           : std::filesystem::temp_directory_path();
  std::filesystem::create_directories(parent);
  auto pattern = (parent / ("kalavara-" + std::string(name) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror(("mkdtemp " + pattern).c_str());
    std::abort();
  }
  const std::lock_guard lock(folders_mutex);
  if (folders == nullptr) {
    folders = new std::vector<std::filesystem::path>;
    std::atexit(remove_folders);
  }
  folders->emplace_back(pattern);
  return pattern;
}

const Signer& fuzz_signer() {
  static const Signer signer(Secrets::of({std::string(40, 'k')}).value(), std::chrono::seconds(60));
  return signer;
}

std::string sign_first_request(std::string_view input) {
  // "METHOD SP target SP ...": the target is the second word of the first
  // line. Left as it is when there is none or it carries a signature.
  const auto line = input.substr(0, input.find('\n'));
  const auto space = line.find(' ');
  if (space == std::string_view::npos) return std::string(input);
  const auto end = line.find(' ', space + 1);
  if (end == std::string_view::npos) return std::string(input);
  const auto target = line.substr(space + 1, end - space - 1);
  if (target.empty() || target.find("sig=") != std::string_view::npos) return std::string(input);
  std::string out(input.substr(0, space + 1));
  out += fuzz_signer().sign(line.substr(0, space), target);
  out += input.substr(end);
  return out;
}

StubPeer::StubPeer(asio::io_context& io) {
  router_.add(std::string(internal::kCommitPath), Router::Match::kPrefix, {Verb::post},
              stub_commit);
  router_.add("/store/", Router::Match::kPrefix, {Verb::put}, stub_replica_copy);
  router_.add("/store/", Router::Match::kPrefix, {Verb::get, Verb::head}, stub_read);
  router_.add("/store/", Router::Match::kPrefix, {Verb::delete_},
              [](Exchange&) { return stub_status(HttpStatus::no_content); });
  router_.add(std::string(internal::kMarkerPath), Router::Match::kPrefix, {Verb::put},
              [](Exchange&) { return stub_status(HttpStatus::created); });
  router_.add(std::string(internal::kVerifyPath), Router::Match::kPrefix, {Verb::post},
              [](Exchange&) { return stub_status(HttpStatus::ok); });
  router_.add(std::string(internal::kStatsPath), Router::Match::kExact, {Verb::get},
              [](Exchange&) -> asio::awaitable<Reply> {
                co_return http::json_response(internal::stats_body({1U << 30, 0}));
              });
  router_.add(std::string(internal::kBlobsPath), Router::Match::kExact, {Verb::get},
              [](Exchange&) -> asio::awaitable<Reply> {
                co_return http::json_response(internal::blob_page_end_line(""));
              });
  server_ = std::make_unique<http::HttpServer>(std::vector<asio::io_context*>{&io}, router_);
  auto endpoint = server_->listen("127.0.0.1", 0);
  if (!endpoint) {
    std::fprintf(stderr, "stub peer: %s\n", endpoint.error().message.c_str());
    std::abort();
  }
  port_ = endpoint->port();
  server_->start();
}

void Loop::start() {
  // OpenSSL loads its configuration on the thread that first uses it, and
  // keeps an error state for that thread in thread-specific data, which
  // LeakSanitizer does not scan on a thread other than main: the io thread
  // never ends, so its state was reported as leaked. Loaded here, on the
  // main thread, before any other runs.
  OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  running_loop = this;
  std::atexit(stop_running_loop);
  thread_ = std::thread([this] {
    const auto work = asio::make_work_guard(io_);
    io_.run();
  });
}

void Loop::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
  blocking_.stop();
  blocking_.join();
}

Daemon::Daemon(Loop& loop, const http::Router& router)
    : stub_(std::make_unique<StubPeer>(loop.io())),
      server_(
          std::make_unique<http::HttpServer>(std::vector<asio::io_context*>{&loop.io()}, router)),
      deadline_(deadline_from_environment()) {
  auto endpoint = server_->listen("127.0.0.1", 0);
  if (!endpoint) {
    std::fprintf(stderr, "daemon under test: %s\n", endpoint.error().message.c_str());
    std::abort();
  }
  port_ = endpoint->port();
  const auto free_slot = std::find(daemon_ports.begin(), daemon_ports.end(), 0);
  if (free_slot == daemon_ports.end()) {
    std::fprintf(stderr, "more daemons under test than the harness knows of\n");
    std::abort();
  }
  *free_slot = port_;
  if (stub_port.load() == 0) stub_port = stub_->port();
  server_->start();
}

std::string Daemon::exchange(std::string_view input) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    std::perror("socket");
    std::abort();
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port_);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
      errno != EINPROGRESS) {
    std::perror("connect to the daemon under test");
    std::abort();
  }
  // Writes and reads interleave, so neither side waits on a full buffer.
  const auto until = std::chrono::steady_clock::now() + deadline_;
  std::string answer;
  std::size_t written = 0;
  bool writing = true;
  for (;;) {
    if (writing && written == input.size()) {
      // The end of the input: the daemon sees end of stream once it has
      // read every request, answers them, and closes.
      ::shutdown(fd, SHUT_WR);
      writing = false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      static std::atomic<int> reported{0};
      if (reported++ < 10) {
        std::fprintf(stderr, "note: the daemon did not close the connection within %lld ms\n",
                     static_cast<long long>(deadline_.count()));
      }
      break;
    }
    pollfd poll_fd{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (::poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) continue;
    if (writing && (poll_fd.revents & POLLOUT) != 0) {
      const auto sent =
          ::send(fd, input.data() + written, input.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        written += static_cast<std::size_t>(sent);
      } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        writing = false;  // the daemon closed early (e.g. a 400 for a broken header)
      }
    }
    if ((poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buffer[16 * 1024];
      const auto got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (got > 0) {
        answer.append(buffer, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        break;  // closed, or reset after an early close
      }
    }
  }
  ::close(fd);
  if (!answer.empty() && !answer.starts_with("HTTP/1.")) {
    std::fprintf(stderr, "the answer does not start with a status line: %.200s\n", answer.c_str());
    std::abort();
  }
  static const bool echo = std::getenv("KALAVARA_FUZZ_ECHO") != nullptr;
  if (echo) std::fprintf(stderr, "--- answer:\n%s\n", answer.c_str());
  return answer;
}

}  // namespace kalavara::fuzz
