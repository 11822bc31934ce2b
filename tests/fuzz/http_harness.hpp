// What the two daemon targets (master_http.cpp, volume_http.cpp) share: the
// daemon under test runs in this process, on an HttpServer over loopback,
// set up once; each input is written to a fresh connection as raw bytes and
// the answer read, so Beast's parser, the session, the router and the
// daemon's handlers all run on it.
//
// Containment: the daemon under test calls other daemons (commits, replica
// uploads, removals, copies) at URLs that come from the input. No such call
// may leave the process, so this harness interposes on getaddrinfo (every
// name is 127.0.0.1, resolved numerically: no DNS query) and connect (a
// connection to anything but the ports this harness listens on goes to the
// stub peer instead): whatever URL an input names, it reaches StubPeer, and
// nothing else on the machine — other daemons on loopback included.
//
// Oracles besides the sanitizers: every answer starts with an HTTP status
// line, and any error the daemon logs — a handler that threw, a background
// task that ended with an exception, both bugs by the code's own account —
// aborts the process, so libFuzzer keeps the input.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/http_server.hpp"
#include "common/router.hpp"

namespace kalavara {
class Signer;
}

namespace kalavara::fuzz {

// Logs only errors, and aborts on the first one. Call before anything logs.
void abort_on_logged_errors();

// A fresh folder for the daemon's data: under $KALAVARA_FUZZ_TMP when set
// (scripts/fuzz.sh points it at /dev/shm, where an fsync costs nothing and
// which it cleans up after a crash), else the system's temp folder. Removed
// when the process exits normally.
std::filesystem::path scratch_folder(std::string_view name);

// The signed configuration (--secret-file), for a second daemon beside the
// open one: the secret every daemon of the target signs and checks with.
const Signer& fuzz_signer();

// `input` with the target of its first request line signed by fuzz_signer()
// for that line's method, so the request gets past the signed daemon's
// guard to its handler; as it is when the line has no target or the target
// already carries a signature (then the guard checks that one).
std::string sign_first_request(std::string_view input);

// The stub of every other daemon: a master that commits whatever is asked,
// volumes that take replica copies (201 with the copy's real ETag) and
// removals and markers (204, 201), serve a made-up value of any key and
// version (with its ETag; 304 on If-None-Match) and report stats.
class StubPeer {
 public:
  explicit StubPeer(boost::asio::io_context& io);
  std::uint16_t port() const { return port_; }

 private:
  http::Router router_;
  std::unique_ptr<http::HttpServer> server_;
  std::uint16_t port_ = 0;
};

// The loop the daemon under test, and the stub, run on: one io thread and a
// small blocking pool, as the daemons have (fewer threads: two cores).
class Loop {
 public:
  Loop() = default;
  boost::asio::io_context& io() { return io_; }
  boost::asio::thread_pool& blocking() { return blocking_; }
  // Starts the io thread; run_to_completion() on io() must be done by now.
  // stop() is called at exit, before static objects (the logger) go.
  void start();
  // Stops the io thread and the pool, and joins them.
  void stop();

 private:
  boost::asio::io_context io_;
  boost::asio::thread_pool blocking_{2};
  std::thread thread_;
};

// Serves `router` on 127.0.0.1 (an ephemeral port) on `loop`, with a stub
// peer beside it, and routes every outbound connection as described above.
// At most two per process.
class Daemon {
 public:
  Daemon(Loop& loop, const http::Router& router);
  std::uint16_t port() const { return port_; }

  // Writes `input` to a new connection, half-closes it, and reads the answer
  // until the daemon closes the connection or a deadline passes
  // ($KALAVARA_FUZZ_DEADLINE_MS, else 1000 ms). Checks the answer, and
  // prints it when $KALAVARA_FUZZ_ECHO is set (to see what an input does).
  std::string exchange(std::string_view input) const;

 private:
  std::unique_ptr<StubPeer> stub_;
  std::unique_ptr<http::HttpServer> server_;
  std::uint16_t port_ = 0;
  std::chrono::milliseconds deadline_;
};

}  // namespace kalavara::fuzz
