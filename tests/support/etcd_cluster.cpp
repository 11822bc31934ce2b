#include "support/etcd_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

namespace kalavara::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kStartAttempts = 4;
constexpr auto kStartTimeout = 20s;
constexpr auto kPollInterval = 25ms;
constexpr auto kReapTimeout = 10s;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Picks `count` distinct free loopback ports: every socket stays bound until
// all are picked, so no two picks return the same port.
bool pick_free_ports(std::size_t count, std::vector<std::uint16_t>& ports, std::string* error) {
  std::vector<int> fds;
  ports.clear();
  bool ok = true;
  for (std::size_t i = 0; i < count && ok; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (error) *error = errno_text("socket");
      ok = false;
      break;
    }
    fds.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (error) *error = errno_text("bind/getsockname");
      ok = false;
      break;
    }
    const std::uint16_t port = ntohs(address.sin_port);
    // A system etcd's ports are never used, even if free now.
    if (port == 2379 || port == 2380) {
      --i;
      continue;
    }
    ports.push_back(port);
  }
  for (const int fd : fds) ::close(fd);
  return ok;
}

// GET /health on 127.0.0.1:port: true when etcd answers {"health":"true"}
// (it has a leader and a linearizable read went through). Each socket step
// is bounded by two seconds: etcd's own check may take one.
bool health_says_true(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{};
  timeout.tv_sec = 2;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return false;
  }
  const std::string request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nConnection: close\r\n\r\n";
  bool sent = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
  std::string answer;
  char buffer[4096];
  // An answer is a few hundred bytes; the count bounds a peer that trickles.
  for (int reads = 0; sent && reads < 64 && answer.size() < 65536; ++reads) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer.starts_with("HTTP/1.1 200") &&
         answer.find("\"health\":\"true\"") != std::string::npos;
}

// Reaps `pid` within `timeout`: true when it is gone (reaped, or not our
// child).
bool reap(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto max_polls = timeout / 5ms + 2;
  for (auto i = decltype(max_polls){0}; i < max_polls; ++i) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Spawns argv with stdin /dev/null, stdout and stderr appended to `log`,
// and `environment` as its whole environment. -1 with `error` on failure.
pid_t spawn_process(const std::vector<std::string>& argv,
                    const std::vector<std::string>& environment, const fs::path& log,
                    std::string* error) {
  // Everything the child needs is prepared before fork(): after it only
  // async-signal-safe calls are made.
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const auto& e : environment) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t parent = ::getpid();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    if (error) *error = errno_text("pipe2");
    return -1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    if (error) *error = errno_text("fork");
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
    fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execve(c_argv[0], c_argv.data(), c_env.data());
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
    if (error) *error = "exec " + argv[0] + ": " + std::strerror(child_errno);
    reap(pid, kReapTimeout);
    return -1;
  }
  return pid;
}

std::string unique_token() {
  static std::atomic<unsigned> counter{0};
  std::random_device random;
  return "kalavara-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(random());
}

}  // namespace

bool etcd_available() { return ::access(kEtcdBinary, X_OK) == 0; }

std::optional<EtcdCluster> EtcdCluster::start(fs::path dir, int members, std::string* error) {
  std::string why;
  if (members < 1) {
    why = "a cluster needs at least one member";
  } else if (!etcd_available()) {
    why = std::string(kEtcdMissing);
  }
  for (int attempt = 0; why.empty() && attempt < kStartAttempts; ++attempt) {
    EtcdCluster cluster;
    cluster.dir_ = dir;
    cluster.token_ = unique_token();
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::vector<std::uint16_t> ports;
    if (!pick_free_ports(2 * static_cast<std::size_t>(members), ports, &why)) break;
    for (int i = 0; i < members; ++i) {
      Member m;
      m.name = "m" + std::to_string(i);
      m.client_port = ports[2 * i];
      m.peer_port = ports[2 * i + 1];
      m.data_dir = dir / ("member-" + std::to_string(i));
      m.log = dir / ("member-" + std::to_string(i) + ".log");
      // A retry starts from nothing: an earlier attempt's data dir names
      // other ports.
      fs::remove_all(m.data_dir, ec);
      fs::remove(m.log, ec);
      if (!cluster.initial_cluster_.empty()) cluster.initial_cluster_ += ',';
      cluster.initial_cluster_ += m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
      cluster.members_.push_back(std::move(m));
    }
    bool spawned = true;
    for (int i = 0; i < members && spawned; ++i) spawned = cluster.spawn(i, false, &why);
    if (!spawned) break;
    if (cluster.wait_started(kStartTimeout)) {
      if (error) error->clear();
      return cluster;
    }
    // Why not? A port taken since its pick is worth a retry on new ones.
    bool collided = false;
    for (int i = 0; i < members; ++i) {
      if (read_whole(cluster.members_[i].log).find("address already in use") != std::string::npos) {
        collided = true;
      }
    }
    why = "etcd did not get healthy within " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kStartTimeout).count()) +
          " s:\n" + cluster.describe();
    cluster.kill_all();
    if (!collided) break;
    std::cerr << "[etcd] a port was taken before etcd bound it; starting again on new ports\n";
  }
  if (error) *error = why;
  std::cerr << "[etcd] cluster not started: " << why << "\n";
  return std::nullopt;
}

EtcdCluster::EtcdCluster(EtcdCluster&& other) noexcept
    : dir_(std::move(other.dir_)),
      token_(std::move(other.token_)),
      initial_cluster_(std::move(other.initial_cluster_)),
      members_(std::move(other.members_)) {
  other.members_.clear();
}

EtcdCluster& EtcdCluster::operator=(EtcdCluster&& other) noexcept {
  if (this != &other) {
    kill_all();
    dir_ = std::move(other.dir_);
    token_ = std::move(other.token_);
    initial_cluster_ = std::move(other.initial_cluster_);
    members_ = std::move(other.members_);
    other.members_.clear();
  }
  return *this;
}

EtcdCluster::~EtcdCluster() { kill_all(); }

void EtcdCluster::kill_all() {
  for (int i = 0; i < size(); ++i) kill(i);
}

bool EtcdCluster::spawn(int member, bool existing, std::string* error) {
  Member& m = members_.at(member);
  std::error_code ec;
  fs::create_directories(m.data_dir, ec);
  const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  const std::vector<std::string> argv{kEtcdBinary,
                                      "--name",
                                      m.name,
                                      "--data-dir",
                                      m.data_dir.string(),
                                      "--listen-client-urls",
                                      client,
                                      "--advertise-client-urls",
                                      client,
                                      "--listen-peer-urls",
                                      peer,
                                      "--initial-advertise-peer-urls",
                                      peer,
                                      "--initial-cluster",
                                      initial_cluster_,
                                      "--initial-cluster-state",
                                      existing ? "existing" : "new",
                                      "--initial-cluster-token",
                                      token_,
                                      "--heartbeat-interval",
                                      "50",
                                      "--election-timeout",
                                      "500",
                                      "--logger",
                                      "zap",
                                      "--log-outputs",
                                      "stderr"};
  // A clean environment: no ETCD_* variable of the caller's changes a flag.
  const std::vector<std::string> environment{"PATH=/usr/bin:/bin", "HOME=" + dir_.string()};
  {
    std::ofstream log(m.log, std::ios::app);
    log << "[etcd_cluster] " << (existing ? "restart" : "start") << ':';
    for (const auto& a : argv) log << ' ' << a;
    log << '\n';
  }
  m.pid = spawn_process(argv, environment, m.log, error);
  return m.pid > 0;
}

std::vector<std::string> EtcdCluster::client_urls() const {
  std::vector<std::string> urls;
  for (int i = 0; i < size(); ++i) urls.push_back(client_url(i));
  return urls;
}

std::string EtcdCluster::client_url(int member) const {
  return "http://127.0.0.1:" + std::to_string(client_port(member));
}

std::uint16_t EtcdCluster::client_port(int member) const { return members_.at(member).client_port; }

std::string EtcdCluster::endpoints_flag() const {
  std::string flag;
  for (const auto& url : client_urls()) {
    if (!flag.empty()) flag += ',';
    flag += url;
  }
  return flag;
}

void EtcdCluster::kill(int member) {
  Member& m = members_.at(member);
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  if (!reap(m.pid, kReapTimeout)) {
    std::cerr << "[etcd] member " << member << " pid " << m.pid << " survived SIGKILL\n";
  }
  m.pid = -1;
}

void EtcdCluster::stop(int member, std::chrono::milliseconds grace) {
  Member& m = members_.at(member);
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGTERM);
  if (reap(m.pid, grace)) {
    m.pid = -1;
    return;
  }
  kill(member);
}

bool EtcdCluster::running(int member) {
  Member& m = members_.at(member);
  if (m.pid <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(m.pid, &status, WNOHANG);
  if (r == m.pid || (r < 0 && errno != EINTR)) {
    m.pid = -1;
    return false;
  }
  return true;
}

bool EtcdCluster::restart(int member, std::chrono::milliseconds timeout) {
  if (running(member)) return false;
  std::string error;
  if (!spawn(member, true, &error)) {
    std::cerr << "[etcd] restart of member " << member << ": " << error << "\n";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  const auto max_polls = timeout / kPollInterval + 2;
  for (auto i = decltype(max_polls){0}; i < max_polls; ++i) {
    if (!running(member)) return false;
    if (healthy(member)) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

bool EtcdCluster::wait_started(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto max_polls = timeout / kPollInterval + 2;
  std::vector<bool> up(members_.size(), false);
  for (auto i = decltype(max_polls){0}; i < max_polls; ++i) {
    bool all = true;
    for (int m = 0; m < size(); ++m) {
      if (!running(m)) return false;  // it will not come up: say why now
      if (!up[m]) up[m] = healthy(m);
      all = all && up[m];
    }
    if (all) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

bool EtcdCluster::healthy(int member) const { return health_says_true(client_port(member)); }

bool EtcdCluster::wait_healthy(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto max_polls = timeout / kPollInterval + 2;
  for (auto i = decltype(max_polls){0}; i < max_polls; ++i) {
    bool all = true;
    int alive = 0;
    for (int m = 0; m < size(); ++m) {
      if (!running(m)) continue;
      ++alive;
      if (!healthy(m)) {
        all = false;
        break;
      }
    }
    if (alive == 0) return false;
    if (all) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

std::string EtcdCluster::log_tail(int member, std::size_t max) const {
  const std::string log = read_whole(members_.at(member).log);
  return log.size() <= max ? log : log.substr(log.size() - max);
}

std::string EtcdCluster::describe() const {
  std::ostringstream out;
  for (int i = 0; i < size(); ++i) {
    out << "--- etcd member " << i << " (" << client_url(i) << ", log " << members_[i].log.string()
        << ", pid " << members_[i].pid << ") ---\n"
        << log_tail(i) << "\n";
  }
  return out.str();
}

}  // namespace kalavara::test
