// A real etcd cluster of 1 or 3 members on 127.0.0.1 for one test (or one
// test suite). Standard library + POSIX only: shared by the store tests and
// the integration tests.
//
// The contract:
//   - start() runs /usr/bin/etcd once per member, each on a client and a
//     peer port picked free (bind 127.0.0.1:0, read it, close), never on
//     2379/2380 (where a system etcd may listen), with its data dir under
//     `dir`/member-N/ and its log in `dir`/member-N.log, a unique
//     --initial-cluster-token, --initial-cluster-state new and short
//     heartbeat/election timers (50 ms / 500 ms) so a fail-over takes well
//     under two seconds. It returns once every member answers GET /health
//     with "true" (a leader is elected and a read goes through), or nullopt
//     with `error` set: etcd missing, or a member that would not start. A
//     port taken between its pick and etcd's bind restarts the whole start
//     on new ports (a bounded number of times).
//   - kill() SIGKILLs a member and reaps it; stop() SIGTERMs it (SIGKILL
//     after a deadline) and reaps it; restart() starts a stopped or killed
//     member again on the same ports and data dir (--initial-cluster-state
//     existing) and waits until it is healthy.
//   - wait_healthy() polls GET /health on every running member until all
//     say "true", with a deadline; no sleep stands in for readiness.
//   - The destructor SIGKILLs and reaps every member still running. A
//     member is also SIGKILLed by the kernel if the thread that started it
//     dies (PR_SET_PDEATHSIG): start clusters from the test's main thread.
//
// Not thread-safe: one test thread drives a cluster.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kalavara::test {

inline constexpr const char* kEtcdBinary = "/usr/bin/etcd";
// What a test that needs etcd says when it skips.
inline constexpr std::string_view kEtcdMissing =
    "etcd-server is not installed: scripts/install-deps.sh installs it";

// Whether /usr/bin/etcd is there and executable.
bool etcd_available();

class EtcdCluster {
 public:
  // `members` is 1 or 3 (any count >= 1 works). `dir` is created if missing.
  static std::optional<EtcdCluster> start(std::filesystem::path dir, int members,
                                          std::string* error = nullptr);

  EtcdCluster(EtcdCluster&& other) noexcept;
  EtcdCluster& operator=(EtcdCluster&& other) noexcept;
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;
  ~EtcdCluster();

  int size() const { return static_cast<int>(members_.size()); }
  // "http://127.0.0.1:PORT" of every member, in member order.
  std::vector<std::string> client_urls() const;
  std::string client_url(int member) const;
  std::uint16_t client_port(int member) const;
  // The client URLs joined with ',' (the form of --etcd).
  std::string endpoints_flag() const;

  // SIGKILL, then reap (bounded). A member that is not running is left.
  void kill(int member);
  // SIGTERM, SIGKILL if it has not exited in `grace`, then reap.
  void stop(int member, std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Starts a member that is not running again (same ports, same data dir,
  // --initial-cluster-state existing) and waits up to `timeout` for its
  // /health. False when it exited or did not get healthy in time.
  bool restart(int member, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Whether the member's process is alive (reaps it when it has exited).
  bool running(int member);

  // Polls GET /health on every running member until each answers "true";
  // false at the deadline, or when no member is running.
  bool wait_healthy(std::chrono::milliseconds timeout);
  // One member's GET /health said "true", now.
  bool healthy(int member) const;

  // The member's log, or its last `max` bytes, for failure messages.
  std::string log_tail(int member, std::size_t max = 4000) const;
  // Every member's log tail, labelled.
  std::string describe() const;

 private:
  struct Member {
    std::string name;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::filesystem::path data_dir;
    std::filesystem::path log;
    pid_t pid = -1;
  };

  EtcdCluster() = default;
  bool spawn(int member, bool existing, std::string* error);
  // Every member healthy within `timeout`; false at once when one exits.
  bool wait_started(std::chrono::milliseconds timeout);
  void kill_all();

  std::filesystem::path dir_;
  std::string token_;
  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace kalavara::test
