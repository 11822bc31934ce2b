// A stand-in peer on 127.0.0.1 for tests of the daemons' calls to each
// other: a master (or a volume) that answers, hangs or vanishes as told.
// Header-only; POSIX sockets only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "support/loopback.hpp"

namespace kalavara::it {

// A stand-in for a master (or a volume) on 127.0.0.1 that counts the
// connections and requests it gets and answers as `mode` says.
class FakePeer {
 public:
  enum class Mode {
    kCommit,                  // answer every request "committed", keep-alive
    kCloseUnanswered,         // read a request, close without answering
    kOneAnswerPerConnection,  // answer the first request, then read the next and close
    kNeverAnswer,             // read requests and never answer (a hung peer)
    kVanishAfterOneAnswer,    // answer the first request, read the next on the same
                              // connection, stop listening, then close it unanswered
  };

  explicit FakePeer(Mode mode) : mode_(mode) {
    const auto listener = test::listen_on_loopback(16);
    listener_ = listener.fd;
    port_ = listener.port;
    if (listener_ < 0) {
      ADD_FAILURE() << "fake master cannot listen";
      return;
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakePeer() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& worker : workers_) worker.join();
    if (listener_ >= 0) ::close(listener_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void accept_loop() {
    while (!stop_) {
      if (stop_listening_ && listener_ >= 0) {
        ::close(listener_);
        listener_ = -1;
        std::lock_guard lock(listening_mutex_);
        listening_ = false;
        listening_changed_.notify_all();
      }
      // With the listener closed, poll only waits out its timeout.
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      std::lock_guard lock(mutex_);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  // Reads one request header (commits have no body); false when the peer
  // closed or the fake is stopping.
  bool read_request(int fd, std::string& buffer) {
    while (buffer.find("\r\n\r\n") == std::string::npos) {
      pollfd ready{fd, POLLIN, 0};
      if (stop_) return false;
      if (::poll(&ready, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    buffer.erase(0, buffer.find("\r\n\r\n") + 4);
    ++requests_;
    return true;
  }

  // Has the acceptor close the listener, so that connecting is refused, and
  // waits (at most 5 s) until it has.
  void stop_listening() {
    stop_listening_ = true;
    std::unique_lock lock(listening_mutex_);
    if (!listening_changed_.wait_for(lock, 5s, [this] { return !listening_; })) {
      ADD_FAILURE() << "the fake peer's listener did not close";
    }
  }

  void serve(int fd) {
    static constexpr std::string_view kCommitted =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\ncommitted\n";
    std::string buffer;
    for (int answered = 0; read_request(fd, buffer); ++answered) {
      if (mode_ == Mode::kCloseUnanswered) break;
      if (mode_ == Mode::kNeverAnswer) continue;
      if (mode_ == Mode::kOneAnswerPerConnection && answered == 1) break;
      if (mode_ == Mode::kVanishAfterOneAnswer && answered == 1) {
        stop_listening();
        break;
      }
      if (::send(fd, kCommitted.data(), kCommitted.size(), MSG_NOSIGNAL) < 0) break;
    }
    ::close(fd);
  }

  const Mode mode_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<bool> stop_listening_{false};
  std::mutex listening_mutex_;
  std::condition_variable listening_changed_;
  bool listening_ = true;
  std::mutex mutex_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace kalavara::it
