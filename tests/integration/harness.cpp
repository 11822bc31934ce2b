#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

#ifndef KALAVARA_MASTER_BIN
#error "KALAVARA_MASTER_BIN must be defined (absolute path of kalavara-master)"
#endif
#ifndef KALAVARA_VOLUME_BIN
#error "KALAVARA_VOLUME_BIN must be defined (absolute path of kalavara-volume)"
#endif

namespace kalavara::it {

std::string master_binary() { return KALAVARA_MASTER_BIN; }
std::string volume_binary() { return KALAVARA_VOLUME_BIN; }

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return engine;
}

void fill_random(char* out, std::size_t n) {
  auto& engine = rng();
  std::size_t i = 0;
  while (i + 8 <= n) {
    const std::uint64_t v = engine();
    std::memcpy(out + i, &v, 8);
    i += 8;
  }
  if (i < n) {
    const std::uint64_t v = engine();
    std::memcpy(out + i, &v, n - i);
  }
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string tail_of_file(const fs::path& path, std::size_t max_bytes) {
  std::string text = read_file(path);
  if (text.size() > max_bytes) {
    text = "[... " + std::to_string(text.size() - max_bytes) + " bytes omitted ...]\n" +
           text.substr(text.size() - max_bytes);
  }
  return text;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

// ---------------------------------------------------------------------------
// Files and random data

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  fill_random(s.data(), n);
  return s;
}

std::string random_token(std::size_t n) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string s(n, 'a');
  for (auto& c : s) c = kAlphabet[pick(rng())];
  return s;
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot open for writing: " + path.string());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write: " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_random_file(const fs::path& path, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot open for writing: " + path.string());
  std::string chunk(kMiB, '\0');
  std::size_t left = size;
  while (left > 0) {
    const std::size_t n = std::min(left, chunk.size());
    fill_random(chunk.data(), n);
    out.write(chunk.data(), static_cast<std::streamsize>(n));
    left -= n;
  }
  if (!out) throw std::runtime_error("cannot write: " + path.string());
}

::testing::AssertionResult files_equal(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const auto size_a = fs::file_size(a, ec);
  if (ec) return ::testing::AssertionFailure() << "cannot stat " << a << ": " << ec.message();
  const auto size_b = fs::file_size(b, ec);
  if (ec) return ::testing::AssertionFailure() << "cannot stat " << b << ": " << ec.message();
  if (size_a != size_b) {
    return ::testing::AssertionFailure()
           << a << " has " << size_a << " bytes but " << b << " has " << size_b;
  }
  std::ifstream in_a(a, std::ios::binary);
  std::ifstream in_b(b, std::ios::binary);
  if (!in_a || !in_b) return ::testing::AssertionFailure() << "cannot open " << a << " or " << b;
  std::string buf_a(kMiB, '\0');
  std::string buf_b(kMiB, '\0');
  std::uintmax_t offset = 0;
  while (offset < size_a) {
    const auto n = static_cast<std::size_t>(std::min<std::uintmax_t>(kMiB, size_a - offset));
    in_a.read(buf_a.data(), static_cast<std::streamsize>(n));
    in_b.read(buf_b.data(), static_cast<std::streamsize>(n));
    if (!in_a || !in_b) return ::testing::AssertionFailure() << "short read at offset " << offset;
    if (std::memcmp(buf_a.data(), buf_b.data(), n) != 0) {
      std::size_t i = 0;
      while (buf_a[i] == buf_b[i]) ++i;
      return ::testing::AssertionFailure()
             << a << " and " << b << " differ at byte " << (offset + i);
    }
    offset += n;
  }
  return ::testing::AssertionSuccess();
}

std::vector<fs::path> regular_files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> entries_under(const fs::path& dir, const std::vector<fs::path>& excluded) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const bool skip = std::any_of(excluded.begin(), excluded.end(),
                                  [&](const fs::path& p) { return it->path() == p; });
    if (skip) {
      it.disable_recursion_pending();
      continue;
    }
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string percent_encode(std::string_view bytes, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string printable(std::string_view bytes, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (bytes.size() > max) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

// ---------------------------------------------------------------------------
// TempDir

TempDir::TempDir() {
  const char* env = std::getenv("TMPDIR");
  const std::string base = (env != nullptr && *env != '\0') ? env : "/tmp";
  std::string tmpl = base + "/kalavara-it-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp"));
  path_ = fs::path(tmpl);
  fs::create_directories(logs_dir());
  fs::create_directories(scratch_dir());
}

TempDir::~TempDir() {
  const bool failed = ::testing::Test::HasFailure();
  if (!failed) {
    std::error_code ec;
    fs::remove_all(path_, ec);
    return;
  }
  std::cerr << "[harness] test failed; keeping temp dir " << path_ << "\n";
  for (const auto& log : regular_files_under(logs_dir())) {
    std::cerr << "[harness] ===== " << log.string() << " =====\n"
              << tail_of_file(log, 32 * kKiB) << "\n[harness] ===== end of " << log.filename()
              << " =====\n";
  }
  std::cerr.flush();
}

fs::path TempDir::subdir(std::string_view name) const {
  fs::path p = path_ / name;
  fs::create_directories(p);
  return p;
}

fs::path TempDir::new_log_path(std::string_view name) {
  ++log_counter_;
  return logs_dir() / (std::to_string(log_counter_) + "-" + std::string(name) + ".log");
}

fs::path TempDir::new_scratch_path(std::string_view tag) const {
  static std::atomic<unsigned> counter{0};
  return scratch_dir() / (std::to_string(++counter) + "-" + std::string(tag));
}

// ---------------------------------------------------------------------------
// Processes

std::string ExitStatus::describe() const {
  if (exited) return "exited with code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

pid_t spawn_process(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err,
                    std::string& error,
                    const std::optional<std::vector<std::string>>& environment) {
  if (argv.empty()) {
    error = "empty argv";
    return -1;
  }
  // Everything the child touches is prepared before fork(): after fork only
  // async-signal-safe calls are made.
  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  if (environment) {
    for (const auto& e : *environment) c_env.push_back(const_cast<char*>(e.c_str()));
    c_env.push_back(nullptr);
  }
  char** envp = environment ? c_env.data() : environ;
  const std::string out_path = out.string();
  const std::string err_path = err.string();
  const bool same = out_path == err_path;
  const pid_t parent = ::getpid();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error = errno_text("pipe2");
    return -1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    error = errno_text("fork");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return -1;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    int fd = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) ::dup2(fd, 0);
    fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) ::dup2(fd, 1);
    if (same) {
      ::dup2(1, 2);
    } else {
      fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 2);
    }
    ::execve(c_argv[0], c_argv.data(), envp);
    const int e = errno;
    [[maybe_unused]] auto ignored = ::write(pipe_fds[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n > 0) {
    error = "exec " + argv[0] + ": " + std::strerror(child_errno);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return pid;
}

std::optional<ExitStatus> wait_process(pid_t pid, Millis timeout) {
  std::optional<ExitStatus> result;
  wait_until(
      [&] {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
          ExitStatus st;
          if (WIFEXITED(status)) {
            st.exited = true;
            st.code = WEXITSTATUS(status);
          } else if (WIFSIGNALED(status)) {
            st.signal = WTERMSIG(status);
          }
          result = st;
          return true;
        }
        if (r < 0 && errno != EINTR) {
          result = ExitStatus{false, -1, 0};  // not our child any more
          return true;
        }
        return false;
      },
      timeout, 10ms);
  return result;
}

Daemon::Daemon(std::string name, std::string binary, std::vector<std::string> args,
               fs::path log_path, const std::optional<std::vector<std::string>>& environment)
    : name_(std::move(name)),
      args_(std::move(args)),
      environment_(environment),
      log_path_(std::move(log_path)) {
  std::vector<std::string> argv;
  argv.push_back(std::move(binary));
  argv.insert(argv.end(), args_.begin(), args_.end());
  std::string cmdline;
  for (const auto& a : argv) cmdline += a + " ";
  // The command line goes first in the log so a failure report shows it; the
  // child appends to the file.
  write_file(log_path_, "[harness] " + cmdline + "\n");
  pid_ = spawn_process(argv, log_path_, log_path_, spawn_error_, environment);
  if (pid_ < 0) {
    write_file(log_path_, "[harness] " + cmdline + "\n[harness] spawn failed: " + spawn_error_);
  } else {
    std::cerr << "[harness] started " << name_ << " pid " << pid_ << ": " << cmdline << "\n";
  }
}

Daemon::~Daemon() {
  if (pid_ > 0 && !exit_status_) kill_hard();
}

std::string Daemon::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string Daemon::log_text() const { return read_file(log_path_); }

::testing::AssertionResult Daemon::wait_ready(Millis timeout) {
  if (pid_ < 0) return ::testing::AssertionFailure() << name_ << ": " << spawn_error_;
  static constexpr std::string_view kMarker = "listening on 127.0.0.1:";
  std::optional<ExitStatus> exited;
  const bool ok = wait_until(
      [&] {
        const std::string log = log_text();
        for (std::size_t pos = log.find(kMarker); pos != std::string::npos;
             pos = log.find(kMarker, pos + 1)) {
          std::size_t i = pos + kMarker.size();
          unsigned long value = 0;
          std::size_t digits = 0;
          while (i < log.size() && std::isdigit(static_cast<unsigned char>(log[i])) && digits < 6) {
            value = value * 10 + static_cast<unsigned long>(log[i] - '0');
            ++i;
            ++digits;
          }
          // Only a complete line counts (the digits may still be being written).
          if (digits == 0 || log.find('\n', i) == std::string::npos) continue;
          if (value == 0 || value > 65535) continue;
          port_ = static_cast<uint16_t>(value);
          return true;
        }
        exited = wait_exit(0ms);
        return exited.has_value();
      },
      timeout, 20ms);
  if (ok && !exited) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << name_ << " (pid " << pid_ << ") not ready within " << timeout.count() << " ms"
         << (exited ? "; it " + exited->describe() : std::string()) << "\n--- " << log_path_
         << " ---\n"
         << tail_of_file(log_path_, 16 * kKiB);
}

bool Daemon::running() {
  if (pid_ < 0) return false;
  return !wait_exit(0ms).has_value();
}

std::optional<ExitStatus> Daemon::wait_exit(Millis timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ < 0) return ExitStatus{false, -1, 0};
  exit_status_ = wait_process(pid_, timeout);
  return exit_status_;
}

void Daemon::send_signal(int sig) {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, sig);
}

std::optional<ExitStatus> Daemon::stop(int sig, Millis timeout) {
  send_signal(sig);
  auto st = wait_exit(timeout);
  if (!st) {
    std::cerr << "[harness] " << name_ << " did not exit within " << timeout.count()
              << " ms of signal " << sig << "; its threads, then killing it\n";
    print_stacks();
    kill_hard();
    return std::nullopt;
  }
  return st;
}

void Daemon::print_stacks() const {
  // What a daemon that will not stop waits for is the whole diagnosis; gdb
  // is a debugging aid, not a dependency: without it nothing is printed.
  if (pid_ <= 0 || ::access("/usr/bin/gdb", X_OK) != 0) return;
  // Its sockets too: a connection left open names what it waits for.
  const auto pid = std::to_string(pid_);
  const auto command = "ss -tanp 2>&1 | grep -E 'pid=" + pid +
                       ",|State'; timeout 60 /usr/bin/gdb -p " + pid +
                       " -batch -nx -ex 'thread apply all bt' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return;
  std::array<char, 4096> chunk{};
  std::string text;
  while (const auto n = std::fread(chunk.data(), 1, chunk.size(), pipe))
    text.append(chunk.data(), n);
  ::pclose(pipe);
  std::cerr << "[harness] ===== threads of " << name_ << " =====\n"
            << text << "[harness] ===== end of the threads of " << name_ << " =====\n";
}

void Daemon::kill_hard() {
  if (pid_ <= 0 || exit_status_) return;
  ::kill(pid_, SIGKILL);
  if (!wait_exit(10s)) {
    std::cerr << "[harness] " << name_ << " pid " << pid_ << " survived SIGKILL for 10 s\n";
  }
}

std::optional<long> Daemon::peak_rss_kib() const {
  if (pid_ <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  for (int i = 0; i < 200 && std::getline(in, line); ++i) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      long kib = -1;
      ss >> kib;
      if (kib >= 0) return kib;
    }
  }
  return std::nullopt;
}

namespace {

// A master's command line: `args`, then -v `volume_urls`, then `extra`.
std::vector<std::string> with_volumes(std::vector<std::string> args,
                                      const std::vector<std::string>& volume_urls,
                                      const std::vector<std::string>& extra) {
  if (!volume_urls.empty()) {
    args.emplace_back("-v");
    args.insert(args.end(), volume_urls.begin(), volume_urls.end());
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

std::vector<std::string> master_args(const fs::path& index_dir, uint16_t port,
                                     const std::vector<std::string>& volume_urls,
                                     const std::vector<std::string>& extra) {
  return with_volumes({"-p", std::to_string(port), "-d", index_dir.string(), "--bind", "127.0.0.1"},
                      volume_urls, extra);
}

std::vector<std::string> etcd_master_args(const std::string& endpoints, const std::string& prefix,
                                          uint16_t port,
                                          const std::vector<std::string>& volume_urls,
                                          const std::vector<std::string>& extra) {
  return with_volumes({"-p", std::to_string(port), "--etcd", endpoints, "--etcd-prefix", prefix,
                       "--bind", "127.0.0.1"},
                      volume_urls, extra);
}

std::vector<std::string> volume_args(const fs::path& data_dir, uint16_t port,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> args{"-p",     std::to_string(port), "-d", data_dir.string(),
                                "--bind", "127.0.0.1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errno_text("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string e = errno_text("bind/getsockname");
    ::close(fd);
    throw std::runtime_error(e);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------
// Cluster

Cluster::~Cluster() {
  master_.reset();
  volumes_.clear();
}

::testing::AssertionResult Cluster::start_volume(
    std::size_t* index, const std::vector<std::string>& extra, uint16_t port,
    const std::optional<std::vector<std::string>>& environment) {
  const std::size_t i = volumes_.size();
  const std::string name = "volume" + std::to_string(i);
  const fs::path dir = tmp_.path() / name;
  fs::create_directories(dir);
  volume_dirs_.push_back(dir);
  volumes_.push_back(std::make_unique<Daemon>(name, volume_binary(), volume_args(dir, port, extra),
                                              tmp_.new_log_path(name), environment));
  if (index != nullptr) *index = i;
  return volumes_.back()->wait_ready();
}

::testing::AssertionResult Cluster::start_master(const std::vector<std::string>& volume_urls,
                                                 uint16_t port) {
  master_.reset();
  fs::create_directories(master_dir());
  master_ = std::make_unique<Daemon>("master", master_binary(),
                                     master_args(master_dir(), port, volume_urls),
                                     tmp_.new_log_path("master"));
  return master_->wait_ready();
}

::testing::AssertionResult Cluster::start_master_with_args(
    const std::vector<std::string>& volume_urls, const std::vector<std::string>& extra,
    uint16_t port, const std::optional<std::vector<std::string>>& environment) {
  master_.reset();
  fs::create_directories(master_dir());
  master_ = std::make_unique<Daemon>("master", master_binary(),
                                     master_args(master_dir(), port, volume_urls, extra),
                                     tmp_.new_log_path("master"), environment);
  return master_->wait_ready();
}

namespace {

// Starts `old` (stopped or killed) again with the same flags on the same
// port, replacing it.
::testing::AssertionResult restart_in_place(std::unique_ptr<Daemon>& old, const std::string& binary,
                                            TempDir& tmp) {
  if (old->running()) {
    return ::testing::AssertionFailure() << old->name() << " is still running; stop it first";
  }
  const uint16_t port = old->port();
  if (port == 0) return ::testing::AssertionFailure() << old->name() << " never became ready";
  std::vector<std::string> args = old->args();
  for (std::size_t a = 0; a + 1 < args.size(); ++a) {
    if (args[a] == "-p") {
      args[a + 1] = std::to_string(port);
      break;
    }
  }
  const std::string name = old->name();
  const auto environment = old->environment();
  old =
      std::make_unique<Daemon>(name, binary, std::move(args), tmp.new_log_path(name), environment);
  auto ready = old->wait_ready();
  if (!ready) return ready;
  if (old->port() != port) {
    return ::testing::AssertionFailure()
           << name << " came back on port " << old->port() << " instead of " << port;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult Cluster::restart_volume(std::size_t i) {
  return restart_in_place(volumes_.at(i), volume_binary(), tmp_);
}

::testing::AssertionResult Cluster::restart_master_in_place() {
  if (!master_) return ::testing::AssertionFailure() << "no master was started";
  return restart_in_place(master_, master_binary(), tmp_);
}

::testing::AssertionResult Cluster::start(int volumes) {
  for (int i = 0; i < volumes; ++i) {
    auto r = start_volume();
    if (!r) return r;
  }
  return start_master(volume_urls());
}

::testing::AssertionResult Cluster::restart_master(const std::vector<std::string>& volume_urls) {
  if (master_) {
    const auto st = master_->stop(SIGTERM, 10s);
    if (!st || !st->clean()) {
      return ::testing::AssertionFailure()
             << "master did not exit cleanly on SIGTERM: "
             << (st ? st->describe() : std::string("still running after 10 s"));
    }
  }
  return start_master(volume_urls);
}

std::vector<std::string> Cluster::volume_urls() const {
  std::vector<std::string> urls;
  for (const auto& v : volumes_) urls.push_back(v->url());
  return urls;
}

std::string Cluster::store_url(std::string_view encoded_key) const {
  return master_->url() + "/store/" + std::string(encoded_key);
}

std::vector<fs::path> Cluster::blob_files() const {
  std::vector<fs::path> all;
  for (const auto& dir : volume_dirs_) {
    auto files = regular_files_under(dir / "blobs");
    all.insert(all.end(), files.begin(), files.end());
  }
  return all;
}

std::size_t Cluster::blob_count() const { return blob_files().size(); }

// ---------------------------------------------------------------------------
// curl

std::string CurlResult::describe() const {
  std::ostringstream ss;
  ss << "curl exit " << exit_code << ", http " << http_status << ", body \"" << printable(body)
     << "\", stderr \"" << printable(stderr_text) << "\"";
  return ss.str();
}

CurlResult run_curl(const TempDir& tmp, const std::vector<std::string>& args,
                    const CurlOptions& options) {
  const fs::path body_path =
      options.output_file ? *options.output_file : tmp.new_scratch_path("curl-body");
  const fs::path status_path = tmp.new_scratch_path("curl-status");
  const fs::path stderr_path = tmp.new_scratch_path("curl-stderr");
  std::vector<std::string> argv{"/usr/bin/curl",
                                "-q",
                                "--silent",
                                "--show-error",
                                "--noproxy",
                                "*",
                                "--max-time",
                                std::to_string(options.max_time.count()),
                                "-o",
                                body_path.string(),
                                "-w",
                                "%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  CurlResult result;
  std::string error;
  const pid_t pid = spawn_process(argv, status_path, stderr_path, error);
  if (pid < 0) {
    result.stderr_text = error;
    return result;
  }
  auto st = wait_process(pid, Millis(options.max_time) + 15s);
  if (!st) {
    ::kill(pid, SIGKILL);
    st = wait_process(pid, 10s);
    result.stderr_text = "[harness] curl did not finish in time; killed. ";
  }
  result.exit_code = (st && st->exited) ? st->code : -1;
  const std::string status_text = read_file(status_path);
  result.http_status = std::atoi(status_text.c_str());
  result.stderr_text += read_file(stderr_path);
  if (!options.output_file) result.body = read_file(body_path);
  std::error_code ec;
  if (!options.output_file) fs::remove(body_path, ec);
  fs::remove(status_path, ec);
  fs::remove(stderr_path, ec);
  return result;
}

// ---------------------------------------------------------------------------
// Raw HTTP client

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  const std::string wanted = lower(name);
  for (const auto& [k, v] : headers) {
    if (lower(k) == wanted) return v;
  }
  return std::nullopt;
}

std::string HttpResponse::summary() const {
  std::ostringstream ss;
  if (status == 0) {
    ss << "no response (" << error << ")";
    return ss.str();
  }
  ss << status << " " << reason << " [";
  for (const auto& [k, v] : headers) ss << k << ": " << printable(v, 200) << "; ";
  ss << "] body \"" << printable(body, 200) << "\"";
  return ss.str();
}

std::string HttpRequest::serialize(uint16_t port) const {
  std::string out =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  if (content_length && (!body.empty() || method == "PUT" || method == "POST")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

std::optional<Url> parse_url(std::string_view url) {
  static constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  url.remove_prefix(kScheme.size());
  const auto slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  Url out;
  out.host = std::string(authority.substr(0, colon));
  const std::string_view port_text = authority.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return std::nullopt;
  unsigned long port = 0;
  for (const char c : port_text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  out.port = static_cast<uint16_t>(port);
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  return out;
}

HttpConnection::~HttpConnection() { close(); }

std::string HttpConnection::connect(uint16_t port, Millis timeout) {
  close();
  port_ = port;
  eof_ = false;
  buffer_.clear();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return errno_text("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      const std::string e = errno_text("connect");
      close();
      return e;
    }
    pollfd pfd{fd_, POLLOUT, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (r <= 0 || so_error != 0) {
      const std::string e = r <= 0 ? std::string("connect: timeout")
                                   : std::string("connect: ") + std::strerror(so_error);
      close();
      return e;
    }
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {};
}

bool HttpConnection::receive(Clock::time_point deadline, std::string& error) {
  if (fd_ < 0) {
    error = "not connected";
    return false;
  }
  if (eof_) {
    error = "connection closed by peer";
    return false;
  }
  for (int attempts = 0; attempts < 100000; ++attempts) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) {
      error = "timeout waiting for data";
      return false;
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) {
      error = errno_text("poll");
      return false;
    }
    if (r <= 0) continue;
    char chunk[64 * 1024];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      eof_ = true;
      error = "connection closed by peer";
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
    error = errno_text("recv");
    return false;
  }
  error = "too many poll attempts";
  return false;
}

std::string HttpConnection::send_all(std::string_view bytes) {
  if (fd_ < 0) return "not connected";
  const auto deadline = Clock::now() + timeout_;
  std::size_t sent = 0;
  for (int attempts = 0; sent < bytes.size() && attempts < 10000000; ++attempts) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return "timeout sending (" + std::to_string(sent) + " bytes sent)";
    pollfd pfd{fd_, static_cast<short>(eof_ ? POLLOUT : (POLLOUT | POLLIN)), 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) return errno_text("poll");
    if (r <= 0) continue;
    if ((pfd.revents & POLLIN) != 0 && !eof_) {
      char chunk[64 * 1024];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
      if (n == 0) eof_ = true;
    }
    if ((pfd.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const std::size_t want = std::min<std::size_t>(bytes.size() - sent, 256 * kKiB);
      const ssize_t n = ::send(fd_, bytes.data() + sent, want, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return errno_text("send") + " after " + std::to_string(sent) + " bytes";
      }
    }
  }
  return sent == bytes.size() ? std::string() : std::string("send did not finish");
}

HttpResponse HttpConnection::read_response(bool head) {
  HttpResponse resp;
  const auto deadline = Clock::now() + timeout_;
  std::string error;
  constexpr std::size_t kMaxHeader = 1 * kMiB;
  constexpr std::size_t kMaxBody = 512 * kMiB;
  for (int interim = 0; interim < 16; ++interim) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (buffer_.size() > kMaxHeader) {
        resp.error = "response header too large";
        return resp;
      }
      if (!receive(deadline, error)) {
        resp.error = error + (buffer_.empty() ? "" : " (partial: " + printable(buffer_) + ")");
        return resp;
      }
    }
    const std::string head_text = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::istringstream lines(head_text);
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // "HTTP/1.1 200 OK"
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) {
      resp.error = "bad status line: " + printable(line);
      return resp;
    }
    const int status = std::atoi(line.substr(9, 3).c_str());
    resp.reason = line.size() > 13 ? line.substr(13) : "";
    resp.headers.clear();
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      const auto first = value.find_first_not_of(" \t");
      const auto last = value.find_last_not_of(" \t");
      value = first == std::string::npos ? "" : value.substr(first, last - first + 1);
      resp.headers.emplace_back(line.substr(0, colon), value);
    }
    if (status >= 100 && status < 200 && status != 101) continue;  // interim response
    const bool no_body = head || status == 204 || status == 304 || status < 200;
    const auto te = resp.header("Transfer-Encoding");
    const auto cl = resp.header("Content-Length");
    if (no_body) {
      // nothing
    } else if (te && lower(*te).find("chunked") != std::string::npos) {
      std::string body;
      for (int chunks = 0;; ++chunks) {
        if (chunks > 1000000) {
          resp.error = "too many chunks";
          return resp;
        }
        std::size_t eol;
        while ((eol = buffer_.find("\r\n")) == std::string::npos) {
          if (!receive(deadline, error)) {
            resp.error = "chunk size: " + error;
            return resp;
          }
        }
        const std::size_t size = std::strtoul(buffer_.substr(0, eol).c_str(), nullptr, 16);
        buffer_.erase(0, eol + 2);
        if (size == 0) {
          // Trailers until an empty line.
          for (int trailers = 0; trailers < 100; ++trailers) {
            while ((eol = buffer_.find("\r\n")) == std::string::npos) {
              if (!receive(deadline, error)) {
                resp.error = "trailer: " + error;
                return resp;
              }
            }
            buffer_.erase(0, eol + 2);
            if (eol == 0) break;
          }
          break;
        }
        if (body.size() + size > kMaxBody) {
          resp.error = "body too large";
          return resp;
        }
        while (buffer_.size() < size + 2) {
          if (!receive(deadline, error)) {
            resp.error = "chunk data: " + error;
            return resp;
          }
        }
        body.append(buffer_, 0, size);
        buffer_.erase(0, size + 2);
      }
      resp.body = std::move(body);
    } else if (cl) {
      const std::size_t length = std::strtoull(cl->c_str(), nullptr, 10);
      if (length > kMaxBody) {
        resp.error = "body too large";
        return resp;
      }
      while (buffer_.size() < length) {
        if (!receive(deadline, error)) {
          resp.error = "body (" + std::to_string(buffer_.size()) + "/" + std::to_string(length) +
                       " bytes): " + error;
          return resp;
        }
      }
      resp.body = buffer_.substr(0, length);
      buffer_.erase(0, length);
    } else {
      // Read until the peer closes.
      while (!eof_) {
        if (buffer_.size() > kMaxBody) {
          resp.error = "body too large";
          return resp;
        }
        if (!receive(deadline, error) && !eof_) {
          resp.error = "body until close: " + error;
          return resp;
        }
      }
      resp.body = std::move(buffer_);
      buffer_.clear();
    }
    resp.status = status;
    return resp;
  }
  resp.error = "too many interim responses";
  return resp;
}

HttpResponse HttpConnection::request(const HttpRequest& req) {
  if (fd_ < 0) {
    HttpResponse r;
    r.error = "not connected";
    return r;
  }
  const std::string send_error = send_all(req.serialize(port_));
  HttpResponse resp = read_response(req.method == "HEAD");
  if (resp.status == 0 && !send_error.empty()) resp.error = send_error + "; " + resp.error;
  return resp;
}

void HttpConnection::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void HttpConnection::abort() {
  if (fd_ < 0) return;
  linger lg{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close();
}

HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body, const HeaderList& headers) {
  HttpConnection conn;
  const std::string err = conn.connect(port);
  if (!err.empty()) {
    HttpResponse r;
    r.error = err;
    return r;
  }
  HttpRequest req{method, target, body, headers, false, true};
  return conn.request(req);
}

std::string Exchange::describe() const {
  std::string out = "first: " + first.summary();
  if (second.status != 0 || !second.error.empty()) out += "; second: " + second.summary();
  if (!error.empty()) out += "; error: " + error;
  return out;
}

HttpResponse follow_redirect(const HttpResponse& redirect, const std::string& method,
                             const std::string& body, const HeaderList& headers) {
  HttpResponse r;
  const auto location = redirect.header("Location");
  if (!location) {
    r.error = "no Location header in " + redirect.summary();
    return r;
  }
  const auto url = parse_url(*location);
  if (!url) {
    r.error = "unparsable Location: " + printable(*location);
    return r;
  }
  if (url->host != "127.0.0.1") {
    r.error = "Location host is not 127.0.0.1: " + printable(*location);
    return r;
  }
  return http_request(url->port, method, url->target, body, headers);
}

Exchange put_via_master(uint16_t master_port, const std::string& target, const std::string& body) {
  Exchange ex;
  ex.first = http_request(master_port, "PUT", target, body);
  if (ex.first.status != 307) {
    ex.error = "master did not answer 307";
    return ex;
  }
  ex.second = follow_redirect(ex.first, "PUT", body);
  if (ex.second.status == 0) ex.error = "upload to Location failed";
  return ex;
}

Exchange get_via_master(uint16_t master_port, const std::string& target,
                        const std::string& method) {
  Exchange ex;
  ex.first = http_request(master_port, method, target);
  if (ex.first.status != 302) return ex;
  ex.second = follow_redirect(ex.first, method);
  if (ex.second.status == 0) ex.error = "request to Location failed";
  return ex;
}

}  // namespace kalavara::it
