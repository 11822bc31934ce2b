// Integration-test harness: temp dirs, daemon processes, the curl binary and a
// small raw HTTP/1.1 client over POSIX sockets. Standard library + POSIX only.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace kalavara::it {

namespace fs = std::filesystem;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

// Absolute paths of the daemons under test (compile definitions from CMake).
std::string master_binary();
std::string volume_binary();

// ---------------------------------------------------------------------------
// Polling

// Calls `pred` until it returns true or `timeout` has passed; bounded in time
// and in the number of calls. Returns the last value of `pred`.
template <typename Pred>
bool wait_until(Pred pred, Millis timeout, Millis interval = 20ms) {
  const auto deadline = Clock::now() + timeout;
  const auto max_calls = timeout / interval + 2;
  for (auto i = decltype(max_calls){0}; i < max_calls; ++i) {
    if (pred()) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(interval);
  }
  return pred();
}

// ---------------------------------------------------------------------------
// Files and random data

std::string random_bytes(std::size_t n);
// Lowercase letters and digits only: safe in URLs and in curl -d.
std::string random_token(std::size_t n);
void write_file(const fs::path& path, std::string_view bytes);
std::string read_file(const fs::path& path);
// Writes `size` random bytes in chunks (never holds the whole value in memory).
void write_random_file(const fs::path& path, std::size_t size);
// Compares two files chunk by chunk.
::testing::AssertionResult files_equal(const fs::path& a, const fs::path& b);
// Regular files under `dir`, recursively, sorted; empty if `dir` is missing.
std::vector<fs::path> regular_files_under(const fs::path& dir);
// Every entry (files, dirs, symlinks) under `dir`, recursively, sorted, except
// those under one of `excluded` (given as absolute paths).
std::vector<fs::path> entries_under(const fs::path& dir, const std::vector<fs::path>& excluded);

// Percent-encodes everything except unreserved characters (and '/' when
// `keep_slash`).
std::string percent_encode(std::string_view bytes, bool keep_slash = true);
// Printable rendering of arbitrary bytes for assertion messages (truncated).
std::string printable(std::string_view bytes, std::size_t max = 300);

// ---------------------------------------------------------------------------
// Temp dir

// A fresh directory under $TMPDIR (or /tmp), removed at destruction unless the
// current test failed: then its path and every daemon log are printed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  // Creates (if needed) and returns path()/name.
  fs::path subdir(std::string_view name) const;
  // A new, unique log file path under path()/logs for a daemon called `name`.
  fs::path new_log_path(std::string_view name);
  // A new, unique scratch file path under path()/scratch (thread-safe).
  fs::path new_scratch_path(std::string_view tag) const;
  fs::path logs_dir() const { return path_ / "logs"; }
  fs::path scratch_dir() const { return path_ / "scratch"; }

 private:
  fs::path path_;
  int log_counter_ = 0;
};

// ---------------------------------------------------------------------------
// Processes

struct ExitStatus {
  bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
  int code = -1;
  int signal = 0;
  bool clean() const { return exited && code == 0; }
  std::string describe() const;
};

// Spawns `argv` (argv[0] = absolute path) with stdin from /dev/null, stdout to
// `out` and stderr to `err` (may be the same path), and `environment`
// ("NAME=value" each) as its whole environment, or this process's when
// nullopt. The child is SIGKILLed if the spawning thread dies. Returns the
// pid, or -1 with `error` set.
pid_t spawn_process(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err,
                    std::string& error,
                    const std::optional<std::vector<std::string>>& environment = std::nullopt);
// Waits up to `timeout` for `pid` to exit; nullopt if it is still running.
std::optional<ExitStatus> wait_process(pid_t pid, Millis timeout);

// One daemon process whose stdout+stderr go to a log file. Killed (SIGKILL) at
// destruction if still running. `environment`: as for spawn_process.
class Daemon {
 public:
  Daemon(std::string name, std::string binary, std::vector<std::string> args, fs::path log_path,
         const std::optional<std::vector<std::string>>& environment = std::nullopt);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Polls the log (deadline `timeout`) for "listening on 127.0.0.1:PORT" and
  // records PORT. Fails early if the process exits.
  ::testing::AssertionResult wait_ready(Millis timeout = 10s);

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:PORT
  const fs::path& log_path() const { return log_path_; }
  std::string log_text() const;
  const std::vector<std::string>& args() const { return args_; }
  // The environment it was started with (nullopt: the test's own).
  const std::optional<std::vector<std::string>>& environment() const { return environment_; }

  bool running();
  // Sends `sig`, then waits up to `timeout`; if the process does not exit in
  // time its threads' stacks are printed (gdb, where installed), it is
  // SIGKILLed, and nullopt is returned.
  std::optional<ExitStatus> stop(int sig = SIGTERM, Millis timeout = 10s);
  std::optional<ExitStatus> wait_exit(Millis timeout);
  void send_signal(int sig);
  void kill_hard();
  // Prints every thread's stack to stderr, where gdb is installed.
  void print_stacks() const;
  // Peak resident set size (VmHWM) in KiB while the process is alive.
  std::optional<long> peak_rss_kib() const;

 private:
  std::string name_;
  std::vector<std::string> args_;
  std::optional<std::vector<std::string>> environment_;
  fs::path log_path_;
  pid_t pid_ = -1;
  std::string spawn_error_;
  uint16_t port_ = 0;
  std::optional<ExitStatus> exit_status_;
};

// Builds the argument lists of the two daemons (always --bind 127.0.0.1).
std::vector<std::string> master_args(const fs::path& index_dir, uint16_t port,
                                     const std::vector<std::string>& volume_urls,
                                     const std::vector<std::string>& extra = {});
std::vector<std::string> volume_args(const fs::path& data_dir, uint16_t port,
                                     const std::vector<std::string>& extra = {});
// A master keeping its index in etcd: --etcd `endpoints` (comma-separated
// client URLs) --etcd-prefix `prefix` instead of -d, then -v and `extra`.
std::vector<std::string> etcd_master_args(const std::string& endpoints, const std::string& prefix,
                                          uint16_t port,
                                          const std::vector<std::string>& volume_urls,
                                          const std::vector<std::string>& extra = {});

// A port that was free a moment ago (bind 127.0.0.1:0, read it, close).
uint16_t pick_free_port();

// N volumes plus a master started with -v for each of them.
class Cluster {
 public:
  explicit Cluster(TempDir& tmp) : tmp_(tmp) {}
  ~Cluster();

  // Starts `volumes` volumes (not self-registering) and a master listing them.
  ::testing::AssertionResult start(int volumes);
  // Starts one more volume (no -m); returns its index.
  ::testing::AssertionResult start_volume(
      std::size_t* index = nullptr, const std::vector<std::string>& extra = {}, uint16_t port = 0,
      const std::optional<std::vector<std::string>>& environment = std::nullopt);
  // Starts the master on master_dir() with -v for each of `volume_urls`.
  ::testing::AssertionResult start_master(const std::vector<std::string>& volume_urls,
                                          uint16_t port = 0);
  // SIGTERMs the master (expects exit code 0) and starts it again on the same dir.
  ::testing::AssertionResult restart_master(const std::vector<std::string>& volume_urls);
  // Like start_master(), with `extra` appended to the master's command line
  // (e.g. {"--replicas", "2"}).
  ::testing::AssertionResult start_master_with_args(
      const std::vector<std::string>& volume_urls, const std::vector<std::string>& extra,
      uint16_t port = 0, const std::optional<std::vector<std::string>>& environment = std::nullopt);
  // Starts volume `i` again, after it exited or was killed, with the same
  // command line, on the same port and data dir.
  ::testing::AssertionResult restart_volume(std::size_t i);
  // Starts the master (stopped or killed) again with the same flags on the
  // same port, as a restart by systemd would.
  ::testing::AssertionResult restart_master_in_place();

  Daemon& master() { return *master_; }
  bool has_master() const { return master_ != nullptr; }
  uint16_t master_port() const { return master_->port(); }
  Daemon& volume(std::size_t i) { return *volumes_.at(i); }
  std::size_t volume_count() const { return volumes_.size(); }
  std::vector<std::string> volume_urls() const;
  fs::path volume_dir(std::size_t i) const { return volume_dirs_.at(i); }
  fs::path master_dir() const { return tmp_.path() / "master"; }
  // http://127.0.0.1:MPORT/store/<encoded_key>
  std::string store_url(std::string_view encoded_key) const;
  // Regular files under every volume's DATA_DIR/blobs.
  std::size_t blob_count() const;
  std::vector<fs::path> blob_files() const;

 private:
  TempDir& tmp_;
  std::vector<std::unique_ptr<Daemon>> volumes_;
  std::vector<fs::path> volume_dirs_;
  std::unique_ptr<Daemon> master_;
};

// ---------------------------------------------------------------------------
// curl

struct CurlOptions {
  // When set, the body goes to this file and CurlResult::body stays empty.
  std::optional<fs::path> output_file;
  std::chrono::seconds max_time{120};
};

struct CurlResult {
  int exit_code = -1;
  int http_status = 0;  // from -w %{http_code}: the last response's status
  std::string body;
  std::string stderr_text;
  std::string describe() const;
};

// Runs /usr/bin/curl -q --silent --show-error --noproxy '*' -o FILE
// -w '%{http_code}' ARGS...
CurlResult run_curl(const TempDir& tmp, const std::vector<std::string>& args,
                    const CurlOptions& options = {});

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 client

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;  // 0: no complete response (see `error`)
  std::string error;
  std::string reason;
  HeaderList headers;
  std::string body;

  std::optional<std::string> header(std::string_view name) const;
  std::string summary() const;
};

struct HttpRequest {
  std::string method;
  std::string target;
  std::string body;
  HeaderList headers;
  bool keep_alive = true;      // false: adds Connection: close
  bool content_length = true;  // adds Content-Length when body non-empty or PUT/POST
  std::string serialize(uint16_t port) const;
};

struct Url {
  std::string host;
  uint16_t port = 0;
  std::string target;  // path + query, sent as-is
};
// Parses http://HOST:PORT/target; nullopt otherwise.
std::optional<Url> parse_url(std::string_view url);

class HttpConnection {
 public:
  HttpConnection() = default;
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Connects to 127.0.0.1:port. Returns an empty string or an error message.
  std::string connect(uint16_t port, Millis timeout = 10s);
  bool is_open() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }
  void set_timeout(Millis timeout) { timeout_ = timeout; }

  // Sends all bytes; meanwhile buffers whatever the peer sends, so an early
  // response is neither lost nor a cause of deadlock. Empty string or error.
  std::string send_all(std::string_view bytes);
  // Reads one full response (skipping 1xx). `head`: the request was HEAD.
  HttpResponse read_response(bool head = false);
  HttpResponse request(const HttpRequest& req);

  void shutdown_write();
  void close();
  // Closes with SO_LINGER 0 so the peer sees a reset.
  void abort();

 private:
  // Receives once into buffer_; false on EOF, error or deadline.
  bool receive(Clock::time_point deadline, std::string& error);

  int fd_ = -1;
  uint16_t port_ = 0;
  bool eof_ = false;
  Millis timeout_ = 60s;
  std::string buffer_;
};

// One request on a fresh connection with Connection: close.
HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = {}, const HeaderList& headers = {});

// Request/redirect pairs.
struct Exchange {
  HttpResponse first;   // the master's answer
  HttpResponse second;  // the volume's answer, if the first was a redirect
  std::string error;    // set when the redirect could not be followed
  std::string describe() const;
};

// Sends the same `method` and `body` to the target named by `redirect`'s
// Location header (which must be http://127.0.0.1:PORT/...).
HttpResponse follow_redirect(const HttpResponse& redirect, const std::string& method,
                             const std::string& body = {}, const HeaderList& headers = {});
// PUT to the master with the whole body (no Expect), then, on 307, the same PUT
// with the same body to Location — like a plain HTTP library.
Exchange put_via_master(uint16_t master_port, const std::string& target, const std::string& body);
// GET (or HEAD) to the master, then, on 302, to Location.
Exchange get_via_master(uint16_t master_port, const std::string& target,
                        const std::string& method = "GET");

}  // namespace kalavara::it
