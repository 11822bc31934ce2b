// What operators rely on, on the real daemons: /metrics (checked by
// Prometheus's own linter, promtool, and moving with the requests made),
// /readyz and its reasons, the graceful drain on SIGTERM, and systemd's
// notify protocol (READY=1, WATCHDOG=1, STOPPING=1).
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// ---------------------------------------------------------------------------
// The exposition format, read back

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Every sample line of an exposition (label values without escapes, which
// the tests' labels never need).
std::vector<Sample> parse_samples(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    if (brace != std::string::npos && brace < space) {
      sample.name = line.substr(0, brace);
      const auto close = line.rfind('}', space);
      std::string_view labels(line.data() + brace + 1, close - brace - 1);
      while (!labels.empty()) {
        const auto eq = labels.find('=');
        const auto end = labels.find('"', eq + 2);
        sample.labels[std::string(labels.substr(0, eq))] =
            std::string(labels.substr(eq + 2, end - eq - 2));
        labels.remove_prefix(std::min(labels.size(), end + 2));
      }
    } else {
      sample.name = line.substr(0, space);
    }
    sample.value = std::strtod(line.c_str() + space + 1, nullptr);
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The sum of the samples named `name` whose labels include `labels` (0 when
// there is none: a counter that never moved has no series yet).
double value_of(const std::vector<Sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
  double sum = 0;
  for (const auto& sample : samples) {
    if (sample.name != name) continue;
    bool matches = true;
    for (const auto& [key, value] : labels) {
      const auto found = sample.labels.find(key);
      matches = matches && found != sample.labels.end() && found->second == value;
    }
    if (matches) sum += sample.value;
  }
  return sum;
}

bool has_series(const std::vector<Sample>& samples, const std::string& name) {
  for (const auto& sample : samples) {
    if (sample.name == name) return true;
  }
  return false;
}

std::string scrape(uint16_t port) {
  const auto response = http_request(port, "GET", "/metrics");
  EXPECT_EQ(response.status, 200) << response.summary();
  EXPECT_EQ(response.header("Content-Type").value_or(""),
            "text/plain; version=0.0.4; charset=utf-8");
  return response.body;
}

// Runs a command to completion (bounded), its stdin from `input` when
// given; returns its exit code and what it printed, stdout and stderr.
struct CommandResult {
  int code = -1;
  std::string output;
};
CommandResult run_command(TempDir& tmp, std::vector<std::string> argv,
                          const std::optional<fs::path>& input = std::nullopt) {
  const auto out = tmp.new_scratch_path("command-output");
  if (input) {
    // spawn_process reads stdin from /dev/null: a shell redirects instead.
    std::string line;
    for (const auto& arg : argv) line += "'" + arg + "' ";
    argv = {"/bin/sh", "-c", line + "< '" + input->string() + "'"};
  }
  std::string error;
  const pid_t pid = spawn_process(argv, out, out, error);
  EXPECT_GT(pid, 0) << error;
  if (pid <= 0) return {};
  const auto status = wait_process(pid, 60s);
  EXPECT_TRUE(status.has_value()) << argv[0] << " did not finish in 60 s";
  return {status && status->exited ? status->code : -1, read_file(out)};
}

// promtool's linter on an exposition: exit 0 and nothing to say.
::testing::AssertionResult passes_promtool(TempDir& tmp, const std::string& exposition) {
  const auto file = tmp.new_scratch_path("metrics");
  write_file(file, exposition);
  const auto result = run_command(tmp, {"/usr/bin/promtool", "check", "metrics"}, file);
  if (result.code == 0 && result.output.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "promtool check metrics exited " << result.code << ":\n"
                                       << result.output;
}

// ---------------------------------------------------------------------------
// Metrics

TEST(Metrics, BothDaemonsPassPromtoolAndTheirFiguresMoveWithTheRequests) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto mport = cluster.master_port();
  const auto vport = cluster.volume(0).port();
  // Something of every kind first, so each family has series to lint.
  ASSERT_EQ(run_curl(tmp, {"-L", "-X", "PUT", "-d", "warm", cluster.store_url("warm")}).http_status,
            201);

  const auto master_before = parse_samples(scrape(mport));
  const auto volume_before = parse_samples(scrape(vport));
  constexpr int kPuts = 3;
  constexpr int kGets = 2;
  for (int i = 0; i < kPuts; ++i) {
    const auto put = run_curl(tmp, {"-L", "-X", "PUT", "-d", "value-" + std::to_string(i),
                                    cluster.store_url("key-" + std::to_string(i))});
    ASSERT_EQ(put.http_status, 201) << put.describe();
  }
  for (int i = 0; i < kGets; ++i) {
    EXPECT_EQ(run_curl(tmp, {"-L", cluster.store_url("key-0")}).body, "value-0");
  }
  EXPECT_EQ(http_request(mport, "GET", "/store/missing").status, 404);
  const auto master_text = scrape(mport);
  const auto volume_text = scrape(vport);
  EXPECT_TRUE(passes_promtool(tmp, master_text));
  EXPECT_TRUE(passes_promtool(tmp, volume_text));
  const auto master = parse_samples(master_text);
  const auto volume = parse_samples(volume_text);

  // The shared HTTP layer's figures, by route, method and code.
  const auto moved = [](const std::vector<Sample>& before, const std::vector<Sample>& after,
                        const std::string& name, const std::map<std::string, std::string>& labels) {
    return value_of(after, name, labels) - value_of(before, name, labels);
  };
  const std::string requests = "kalavara_http_requests_total";
  EXPECT_EQ(moved(master_before, master, requests,
                  {{"route", "/store/"}, {"method", "PUT"}, {"code", "307"}}),
            kPuts);
  EXPECT_EQ(moved(master_before, master, requests,
                  {{"route", "/store/"}, {"method", "GET"}, {"code", "302"}}),
            kGets);
  EXPECT_EQ(moved(master_before, master, requests,
                  {{"route", "/store/"}, {"method", "GET"}, {"code", "404"}}),
            1);
  EXPECT_EQ(moved(volume_before, volume, requests,
                  {{"route", "/store/"}, {"method", "PUT"}, {"code", "201"}}),
            kPuts);
  EXPECT_EQ(moved(volume_before, volume, requests,
                  {{"route", "/store/"}, {"method", "GET"}, {"code", "200"}}),
            kGets);
  // A commit per PUT, from the volume to the master.
  EXPECT_EQ(moved(master_before, master, requests, {{"route", "/internal/commit/"}}), kPuts);
  EXPECT_EQ(
      moved(master_before, master, "kalavara_master_commits_total", {{"outcome", "committed"}}),
      kPuts);
  EXPECT_EQ(moved(volume_before, volume, "kalavara_http_request_duration_seconds_count",
                  {{"route", "/store/"}, {"method", "PUT"}}),
            kPuts);
  // Each GET's answer carries the value: at least its bytes went out.
  EXPECT_GE(moved(volume_before, volume, "kalavara_http_sent_bytes_total",
                  {{"route", "/store/"}, {"method", "GET"}}),
            kGets * std::string("value-0").size());
  EXPECT_GE(moved(volume_before, volume, "kalavara_http_received_bytes_total",
                  {{"route", "/store/"}, {"method", "PUT"}}),
            kPuts * std::string("value-0").size());
  // The scrape that read these is itself in flight.
  EXPECT_EQ(value_of(master, "kalavara_http_requests_in_flight"), 1);

  // The volume's own figures: a file and at least two fsyncs (the file and
  // its folder) per PUT.
  EXPECT_EQ(value_of(volume, "kalavara_volume_files"), kPuts + 1);
  EXPECT_GE(moved(volume_before, volume, "kalavara_volume_fsync_duration_seconds_count", {}),
            2 * kPuts);
  EXPECT_GT(value_of(volume, "kalavara_volume_free_bytes"), 0);
  EXPECT_GE(value_of(volume, "kalavara_volume_size_bytes"),
            value_of(volume, "kalavara_volume_free_bytes"));
  EXPECT_EQ(value_of(volume, "kalavara_volume_upload_failures_total"), 0);

  // The master's view of its volume, and its index.
  EXPECT_EQ(value_of(master, "kalavara_master_volume_up", {{"volume", cluster.volume(0).url()}}),
            1);
  EXPECT_GE(value_of(master, "kalavara_index_keys"), kPuts + 1);
  EXPECT_TRUE(has_series(master, "kalavara_index_block_cache_misses_total"));
  EXPECT_TRUE(has_series(master, "kalavara_index_pending_compaction_bytes"));
  for (const auto* samples : {&master, &volume}) {
    EXPECT_EQ(value_of(*samples, "kalavara_build_info", {{"version", KALAVARA_VERSION_TEXT}}), 1);
    EXPECT_GT(value_of(*samples, "process_resident_memory_bytes"), 0);
    EXPECT_GT(value_of(*samples, "process_open_fds"), 0);
  }
}

// docs/monitoring.md lists every metric: each family either daemon
// exposes, with every optional part on (the access log), has its row there.
TEST(Metrics, EveryFamilyEitherDaemonExposesIsDocumented) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--access-log", (tmp.path() / "v.log").string()}));
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--access-log", (tmp.path() / "m.log").string()}));
  ASSERT_EQ(run_curl(tmp, {"-L", "-X", "PUT", "-d", "v", cluster.store_url("k")}).http_status, 201);
  const auto docs = read_file(fs::path(KALAVARA_PACKAGING_DIR) / ".." / "docs" / "monitoring.md");
  ASSERT_FALSE(docs.empty());
  std::size_t families = 0;
  for (const auto port : {cluster.master_port(), cluster.volume(0).port()}) {
    std::istringstream lines(scrape(port));
    for (std::string line; std::getline(lines, line);) {
      if (!line.starts_with("# TYPE ")) continue;
      const auto name = line.substr(7, line.find(' ', 7) - 7);
      ++families;
      EXPECT_NE(docs.find("| `" + name + "` |"), std::string::npos)
          << name << " is not in docs/monitoring.md";
    }
  }
  EXPECT_GT(families, 40U);
}

TEST(Metrics, FailedUploadsAreCountedByStage) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto before = parse_samples(scrape(cluster.volume(0).port()));
  // A body whose Content-MD5 does not match arrives corrupt: a receive failure.
  const auto put =
      run_curl(tmp, {"-L", "-X", "PUT", "-H", "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==", "-d",
                     "corrupt", cluster.store_url("bad-md5")});
  EXPECT_EQ(put.http_status, 400) << put.describe();
  const auto after = parse_samples(scrape(cluster.volume(0).port()));
  const std::string failures = "kalavara_volume_upload_failures_total";
  EXPECT_EQ(value_of(after, failures, {{"stage", "receive"}}) -
                value_of(before, failures, {{"stage", "receive"}}),
            1);
  EXPECT_EQ(value_of(after, failures, {{"stage", "store"}}), 0);
}

// ---------------------------------------------------------------------------
// Readiness

struct Verdict {
  int status = 0;
  std::string body;
};
Verdict readiness_of(uint16_t port) {
  const auto response = http_request(port, "GET", "/readyz");
  return {response.status, response.body};
}

TEST(Readiness, TheMasterIsReadyOnceEnoughVolumesAreUpForItsReplicas) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto mport = cluster.master_port();
  auto verdict = readiness_of(mport);
  EXPECT_EQ(verdict.status, 503) << verdict.body;
  EXPECT_NE(verdict.body.find("\"ready\":false"), std::string::npos) << verdict.body;
  EXPECT_NE(verdict.body.find("1 writable volume(s) up, 2 replica(s) wanted"), std::string::npos)
      << verdict.body;
  // The process itself is fine all along.
  EXPECT_EQ(http_request(mport, "GET", "/healthz").status, 200);

  std::size_t second = 0;
  ASSERT_TRUE(cluster.start_volume(&second));
  const auto added = http_request(mport, "POST", "/admin/add-volume", cluster.volume(second).url());
  ASSERT_EQ(added.status, 200) << added.summary();
  verdict = readiness_of(mport);
  EXPECT_EQ(verdict.status, 200) << verdict.body;
  EXPECT_NE(verdict.body.find("\"ready\":true"), std::string::npos) << verdict.body;
}

TEST(Readiness, AVolumeIsNotReadyUntilItsMasterTookItsRegistration) {
  TempDir tmp;
  Cluster cluster(tmp);
  // A master that is not there yet: the volume serves, but is not ready.
  const auto master_port = pick_free_port();
  const auto volume_port = pick_free_port();
  const auto self = "http://127.0.0.1:" + std::to_string(volume_port);
  ASSERT_TRUE(cluster.start_volume(
      nullptr, {"-m", "http://127.0.0.1:" + std::to_string(master_port), "-b", self}, volume_port));
  auto verdict = readiness_of(volume_port);
  EXPECT_EQ(verdict.status, 503) << verdict.body;
  EXPECT_NE(verdict.body.find("not registered"), std::string::npos) << verdict.body;
  ASSERT_TRUE(cluster.start_master({}, master_port));
  EXPECT_TRUE(wait_until([&] { return readiness_of(volume_port).status == 200; }, 15s))
      << readiness_of(volume_port).body;
}

TEST(Readiness, AVolumeWithTooLittleFreeSpaceIsNotReady) {
  TempDir tmp;
  Cluster cluster(tmp);
  // More free space than any disk has.
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--min-free-bytes", "1000000TiB"}));
  const auto verdict = readiness_of(cluster.volume(0).port());
  EXPECT_EQ(verdict.status, 503) << verdict.body;
  EXPECT_NE(verdict.body.find("disk nearly full"), std::string::npos) << verdict.body;
}

TEST(Readiness, AVolumeWhoseDataFolderTurnsReadOnlyIsNotReady) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to mount a tmpfs it can make read-only";
  TempDir tmp;
  const auto data = tmp.subdir("tmpfs-data");
  ASSERT_EQ(::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=16m"), 0) << std::strerror(errno);
  struct Unmount {
    fs::path path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{data};
  const auto port = pick_free_port();
  Daemon volume("volume-ro", volume_binary(), volume_args(data, port, {"--min-free-bytes", "1MiB"}),
                tmp.new_log_path("volume"));
  ASSERT_TRUE(volume.wait_ready());
  EXPECT_EQ(readiness_of(port).status, 200) << readiness_of(port).body;
  ASSERT_EQ(::mount("tmpfs", data.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=16m"), 0)
      << std::strerror(errno);
  const auto verdict = readiness_of(port);
  EXPECT_EQ(verdict.status, 503) << verdict.body;
  EXPECT_NE(verdict.body.find("data folder not writable"), std::string::npos) << verdict.body;
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
  ASSERT_EQ(::mount("tmpfs", data.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0);
  EXPECT_EQ(readiness_of(port).status, 200);
}

// ---------------------------------------------------------------------------
// Graceful drain

// A cluster of one master and one volume that registers itself (-m), so it
// can tell the master when it stops.
struct SelfRegisteringCluster {
  explicit SelfRegisteringCluster(TempDir& tmp) : cluster(tmp) {}
  ::testing::AssertionResult start(const std::vector<std::string>& volume_extra = {}) {
    if (auto started = cluster.start_master({}); !started) return started;
    const auto port = pick_free_port();
    std::vector<std::string> extra{"-m", cluster.master().url(), "-b",
                                   "http://127.0.0.1:" + std::to_string(port)};
    extra.insert(extra.end(), volume_extra.begin(), volume_extra.end());
    if (auto started = cluster.start_volume(nullptr, extra, port); !started) return started;
    if (!wait_until([&] { return readiness_of(port).status == 200; }, 15s)) {
      return ::testing::AssertionFailure() << "the volume never became ready";
    }
    return ::testing::AssertionSuccess();
  }
  Cluster cluster;
};

TEST(Drain, AVolumeFinishesAnUploadUnderWayAfterSigtermAndItsValueReadsBack) {
  TempDir tmp;
  SelfRegisteringCluster setup(tmp);
  ASSERT_TRUE(setup.start());
  auto& cluster = setup.cluster;
  const auto mport = cluster.master_port();
  const auto vport = cluster.volume(0).port();
  const auto volume_url = cluster.volume(0).url();

  // A 64 MiB upload: the redirect, then the header and the first MiB.
  constexpr std::size_t kSize = 64 * kMiB;
  const auto file = tmp.new_scratch_path("big");
  write_random_file(file, kSize);
  const auto value = read_file(file);
  HttpConnection to_master;
  ASSERT_EQ(to_master.connect(mport), "");
  HttpRequest ask{"PUT",
                  "/store/big",
                  {},
                  {{"Content-Length", std::to_string(kSize)}, {"Expect", "100-continue"}}};
  ask.content_length = false;
  const auto redirect = to_master.request(ask);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto order = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(order.has_value());
  HttpConnection upload;
  upload.set_timeout(60s);
  ASSERT_EQ(upload.connect(order->port), "");
  const std::string header = "PUT " + order->target +
                             " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(order->port) +
                             "\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n";
  ASSERT_EQ(upload.send_all(header + value.substr(0, kMiB)), "");
  // The volume has the upload under way once its request is counted in flight.
  ASSERT_TRUE(wait_until(
      [&] {
        return value_of(parse_samples(scrape(vport)), "kalavara_http_requests_in_flight") >= 2;
      },
      10s));

  cluster.volume(0).send_signal(SIGTERM);
  // At once: not ready, and the master sends nothing more there.
  EXPECT_TRUE(wait_until([&] { return readiness_of(vport).status == 503; }, 5s));
  EXPECT_NE(readiness_of(vport).body.find("stopping"), std::string::npos);
  EXPECT_TRUE(wait_until(
      [&] {
        return value_of(parse_samples(scrape(mport)), "kalavara_master_volume_stopping",
                        {{"volume", volume_url}}) == 1;
      },
      5s));
  const auto refused = put_via_master(mport, "/store/other", "x");
  EXPECT_EQ(refused.first.status, 503) << refused.describe();
  // A new upload straight to the stopping volume is refused with a reason.
  const auto direct = http_request(vport, "PUT", order->target, "x");
  EXPECT_EQ(direct.status, 503) << direct.summary();
  EXPECT_TRUE(cluster.volume(0).running());

  // The rest of the body: the upload completes, then the volume exits 0.
  ASSERT_EQ(upload.send_all(std::string_view(value).substr(kMiB)), "");
  const auto stored = upload.read_response();
  EXPECT_EQ(stored.status, 201) << stored.summary();
  const auto exit = cluster.volume(0).wait_exit(20s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->clean()) << exit->describe();

  // Up again, it registers, and the value reads back whole.
  ASSERT_TRUE(cluster.restart_volume(0));
  ASSERT_TRUE(wait_until([&] { return readiness_of(mport).status == 200; }, 15s));
  const auto out = tmp.new_scratch_path("big-read");
  CurlOptions to_file;
  to_file.output_file = out;
  const auto read = run_curl(tmp, {"-L", cluster.store_url("big")}, to_file);
  EXPECT_EQ(read.http_status, 200) << read.describe();
  EXPECT_TRUE(files_equal(out, file));
}

TEST(Drain, AnIdleDaemonExitsAtOnceOnSigterm) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  for (auto* daemon : {&cluster.volume(0), &cluster.master()}) {
    const auto started = Clock::now();
    const auto exit = daemon->stop(SIGTERM, 10s);
    ASSERT_TRUE(exit.has_value()) << daemon->name();
    EXPECT_TRUE(exit->clean()) << exit->describe();
    // Nothing to wait for: well within the 30 s shutdown timeout.
    EXPECT_LT(Clock::now() - started, 5s) << daemon->name();
  }
}

TEST(Drain, AnUploadThatOutlastsTheShutdownTimeoutIsCutOffAndTheDaemonExits1) {
  TempDir tmp;
  SelfRegisteringCluster setup(tmp);
  ASSERT_TRUE(setup.start({"--shutdown-timeout", "1"}));
  auto& cluster = setup.cluster;
  const auto vport = cluster.volume(0).port();
  HttpConnection to_master;
  ASSERT_EQ(to_master.connect(cluster.master_port()), "");
  HttpRequest ask{
      "PUT", "/store/slow", {}, {{"Content-Length", "1000"}, {"Expect", "100-continue"}}};
  ask.content_length = false;
  const auto redirect = to_master.request(ask);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto order = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(order.has_value());
  HttpConnection upload;
  ASSERT_EQ(upload.connect(vport), "");
  ASSERT_EQ(upload.send_all("PUT " + order->target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            "1000\r\n\r\nonly part of it"),
            "");
  ASSERT_TRUE(wait_until(
      [&] {
        return value_of(parse_samples(scrape(vport)), "kalavara_http_requests_in_flight") >= 2;
      },
      10s));
  cluster.volume(0).send_signal(SIGTERM);
  const auto exit = cluster.volume(0).wait_exit(15s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 1) << exit->describe();
  EXPECT_NE(cluster.volume(0).log_text().find("shutdown timeout of 1 s passed"), std::string::npos);
}

// ---------------------------------------------------------------------------
// systemd's notify protocol

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);
    timeval timeout{0, 100 * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Waits (bounded) for a message that contains `text`; returns it, or "".
  std::string wait_for(std::string_view text, Millis timeout) {
    std::string found;
    wait_until(
        [&] {
          char buffer[4096];
          const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
          if (n > 0) {
            std::string message(buffer, static_cast<std::size_t>(n));
            if (message.find(text) != std::string::npos) found = message;
          }
          return !found.empty();
        },
        timeout, 1ms);
    return found;
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

TEST(SystemdNotify, ADaemonSaysReadyPingsTheWatchdogAndSaysStopping) {
  TempDir tmp;
  const auto socket_path = tmp.path() / "notify.sock";
  NotifySocket notifications(socket_path);
  ::setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);  // pings every 100 ms
  Cluster cluster(tmp);
  const auto started = cluster.start_volume();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started);
  const auto ready = notifications.wait_for("READY=1", 10s);
  EXPECT_NE(ready.find("STATUS=serving on 127.0.0.1:" + std::to_string(cluster.volume(0).port())),
            std::string::npos)
      << ready;
  // Two pings in a row: the timer keeps going.
  EXPECT_NE(notifications.wait_for("WATCHDOG=1", 5s), "");
  EXPECT_NE(notifications.wait_for("WATCHDOG=1", 5s), "");
  cluster.volume(0).send_signal(SIGTERM);
  EXPECT_NE(notifications.wait_for("STOPPING=1", 10s), "");
  const auto exit = cluster.volume(0).wait_exit(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->clean()) << exit->describe();
}

}  // namespace
}  // namespace kalavara::it
