// The write/delete protocol's safety rules, on the real daemons:
//  * a version is unique to one upload: replaying an upload to a version that
//    already exists is refused (409) and the committed value stays, on every
//    replica;
//  * an overwritten version stays readable for --old-version-grace seconds
//    (so a 302 handed out before the overwrite can still be followed), and is
//    removed after it, also across a master restart (the removal is queued
//    durably);
//  * a DELETE leaves a tombstone with a fresh version, so a commit in flight
//    during the delete is superseded instead of resurrecting a key whose
//    files are gone;
//  * malformed commit parameters are refused with 400 and a one-line reason
//    and change nothing (a forged far-future version fences nothing);
//  * a volume that cannot list a key's folder answers an error, not "no such
//    key", so the master keeps the removal queued until it succeeds;
//  * commits older than --max-upload-time are refused (409 to the client),
//    and a key can be written again once its tombstone is collected.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "support/loopback.hpp"

namespace kalavara::it {
namespace {

std::string location_of(const HttpResponse& response) {
  return response.header("Location").value_or("");
}

// The value of query parameter `name` in `url` ("" when absent).
std::string query_value(const std::string& url, const std::string& name) {
  const auto query = url.find('?');
  if (query == std::string::npos) return "";
  for (std::size_t at = query + 1; at < url.size();) {
    const auto end = std::min(url.find('&', at), url.size());
    const std::string item = url.substr(at, end - at);
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
    at = end + 1;
  }
  return "";
}

// `url` with the value of query parameter `name` replaced by `value` (which
// must already be percent-encoded); unchanged when the parameter is absent.
std::string with_query_value(const std::string& url, const std::string& name,
                             const std::string& value) {
  const auto query = url.find('?');
  if (query == std::string::npos) return url;
  for (std::size_t at = query + 1; at < url.size();) {
    const auto end = std::min(url.find('&', at), url.size());
    if (url.compare(at, name.size() + 1, name + "=") == 0) {
      return url.substr(0, at + name.size() + 1) + value + url.substr(end);
    }
    at = end + 1;
  }
  return url;
}

std::string version_in(const HttpResponse& redirect) {
  return query_value(location_of(redirect), "version");
}

// The quoted ETag of a response without its quotes ("" when absent).
std::string checksum_in(const HttpResponse& response) {
  const auto etag = response.header("ETag").value_or("");
  if (etag.size() < 2) return "";
  return etag.substr(1, etag.size() - 2);
}

// Lets `duration` pass from `start`. Used only where the passing of time is
// what the test is about (a grace period, an upload deadline), never as a
// readiness check. Bounded in iterations and in time.
void let_time_pass(Clock::time_point start, Millis duration) {
  for (int i = 0; i < 1000; ++i) {
    const auto left = start + duration - Clock::now();
    if (left <= Clock::duration::zero()) return;
    std::this_thread::sleep_for(std::min<Clock::duration>(left, 20ms));
  }
}

// An error answer's body is one line: a reason, then a single '\n', and no
// CR anywhere.
::testing::AssertionResult is_one_line_reason(const std::string& body) {
  if (body.size() < 2 || body.back() != '\n') {
    return ::testing::AssertionFailure()
           << "not a reason ending in a newline: \"" << printable(body) << "\"";
  }
  if (body.find('\n') != body.size() - 1 || body.find('\r') != std::string::npos) {
    return ::testing::AssertionFailure() << "more than one line: \"" << printable(body) << "\"";
  }
  return ::testing::AssertionSuccess();
}

// A TCP relay on 127.0.0.1 in front of `upstream_port`. Each connection's
// first request is forwarded as is, except that a commit
// (POST /internal/commit/...) is held until release() is called; after that
// the connection is piped both ways until either side closes. It lets a test
// put a commit "in flight" for as long as it needs, so the order of events
// is forced rather than hoped for.
class CommitHoldingRelay {
 public:
  explicit CommitHoldingRelay(uint16_t upstream_port) : upstream_port_(upstream_port) {
    const auto listener = test::listen_on_loopback(16);
    listener_ = listener.fd;
    port_ = listener.port;
    if (listener_ < 0) {
      ADD_FAILURE() << "the relay cannot listen";
      return;
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~CommitHoldingRelay() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    if (acceptor_.joinable()) acceptor_.join();
    // The acceptor has stopped: no worker is added any more.
    for (auto& worker : workers_) worker.join();
    if (listener_ >= 0) ::close(listener_);
  }

  CommitHoldingRelay(const CommitHoldingRelay&) = delete;
  CommitHoldingRelay& operator=(const CommitHoldingRelay&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int commits_received() const { return commits_; }

  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
  }

 private:
  static constexpr Millis kMaxHold = 20s;
  static constexpr Millis kMaxConnection = 40s;

  void accept_loop() {
    for (int round = 0; round < 100000 && !stop_; ++round) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  static bool send_all(int fd, std::string_view bytes) {
    for (int attempts = 0; !bytes.empty() && attempts < 100000; ++attempts) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return bytes.empty();
  }

  int connect_upstream() const { return test::connect_to_loopback(upstream_port_); }

  void serve(int client) {
    const auto deadline = Clock::now() + kMaxConnection;
    std::string buffer;
    // The first request's header.
    while (buffer.find("\r\n\r\n") == std::string::npos) {
      if (stop_ || Clock::now() >= deadline) {
        ::close(client);
        return;
      }
      pollfd ready{client, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      char chunk[16 * 1024];
      const ssize_t n = ::recv(client, chunk, sizeof chunk, 0);
      if (n <= 0) {
        ::close(client);
        return;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    if (buffer.rfind("POST /internal/commit/", 0) == 0) {
      std::unique_lock lock(mutex_);
      ++commits_;
      changed_.notify_all();
      const bool go = changed_.wait_for(lock, kMaxHold, [&] { return released_ || stop_; });
      if (!go || stop_) {
        lock.unlock();
        ::close(client);
        return;
      }
    }
    const int upstream = connect_upstream();
    if (upstream < 0 || !send_all(upstream, buffer)) {
      if (upstream >= 0) ::close(upstream);
      ::close(client);
      return;
    }
    // Pipe both ways until either side closes.
    bool open = true;
    while (open && !stop_ && Clock::now() < deadline) {
      pollfd ready[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      if (::poll(ready, 2, 100) <= 0) continue;
      for (int side = 0; side < 2 && open; ++side) {
        if ((ready[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        char chunk[16 * 1024];
        const ssize_t n = ::recv(ready[side].fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          open = false;
          break;
        }
        open = send_all(ready[1 - side].fd, std::string_view(chunk, static_cast<std::size_t>(n)));
      }
    }
    ::close(upstream);
    ::close(client);
  }

  const uint16_t upstream_port_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> commits_{0};
  bool released_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

// ---------------------------------------------------------------------------
// 1. A replayed upload cannot destroy a committed value.

TEST(Protocol, AReplayedUploadIsRefusedAndTheCommittedValueStays) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "/store/replay-" + random_token(8);

  const auto redirect = http_request(cluster.master_port(), "PUT", key);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const std::string version = version_in(redirect);
  ASSERT_FALSE(version.empty()) << redirect.summary();
  const auto first = follow_redirect(redirect, "PUT", "AAAA");
  ASSERT_EQ(first.status, 201) << first.summary();

  // The very same Location again, with another body.
  const auto replay = follow_redirect(redirect, "PUT", "BBBBBB");
  EXPECT_EQ(replay.status, 409) << replay.summary();

  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.first.status, 302) << read.describe();
  EXPECT_EQ(version_in(read.first), version) << read.describe();
  EXPECT_EQ(read.first.header("ETag"), first.header("ETag")) << read.describe();
  EXPECT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, "AAAA") << read.describe();
  EXPECT_EQ(cluster.blob_count(), 1U);
}

TEST(Protocol, AReplayedUploadIsRefusedAndEveryReplicaKeepsTheCommittedValue) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const std::string key = "/store/replay-replicated-" + random_token(8);

  const auto redirect = http_request(cluster.master_port(), "PUT", key);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const std::string version = version_in(redirect);
  ASSERT_FALSE(version.empty()) << redirect.summary();
  ASSERT_FALSE(query_value(location_of(redirect), "replicas").empty()) << redirect.summary();
  const auto first = follow_redirect(redirect, "PUT", "AAAA");
  ASSERT_EQ(first.status, 201) << first.summary();

  const auto replay = follow_redirect(redirect, "PUT", "BBBBBB");
  EXPECT_EQ(replay.status, 409) << replay.summary();

  for (std::size_t v = 0; v < cluster.volume_count(); ++v) {
    const auto copy = http_request(cluster.volume(v).port(), "GET", key + "?version=" + version);
    EXPECT_EQ(copy.status, 200) << "replica " << v << ": " << copy.summary();
    EXPECT_EQ(copy.body, "AAAA") << "replica " << v << ": " << copy.summary();
    EXPECT_EQ(copy.header("ETag"), first.header("ETag")) << "replica " << v;
  }
  // Reads go to a random replica: a few of them, each must read the value.
  for (int n = 0; n < 6; ++n) {
    const auto read = get_via_master(cluster.master_port(), key);
    ASSERT_EQ(read.first.status, 302) << read.describe();
    EXPECT_EQ(version_in(read.first), version) << read.describe();
    EXPECT_EQ(read.second.status, 200) << read.describe();
    EXPECT_EQ(read.second.body, "AAAA") << read.describe();
  }
  EXPECT_EQ(cluster.blob_count(), 2U);
}

// ---------------------------------------------------------------------------
// 2. Old versions outlive their redirects.

TEST(Protocol, ARedirectToTheOldVersionCanStillBeFollowedAfterAnOverwrite) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));  // the default grace (30 s)
  const std::string key = "/store/grace-" + random_token(8);
  const std::string old_value = "old-" + random_token(32);
  const std::string new_value = "new-" + random_token(32);
  ASSERT_EQ(put_via_master(cluster.master_port(), key, old_value).second.status, 201);

  const auto old_redirect = http_request(cluster.master_port(), "GET", key);
  ASSERT_EQ(old_redirect.status, 302) << old_redirect.summary();
  const auto overwrite = put_via_master(cluster.master_port(), key, new_value);
  ASSERT_EQ(overwrite.second.status, 201) << overwrite.describe();
  const auto overwritten_at = Clock::now();

  const auto at_once = follow_redirect(old_redirect, "GET");
  EXPECT_EQ(at_once.status, 200) << "right after the overwrite: " << at_once.summary();
  EXPECT_EQ(at_once.body, old_value) << "right after the overwrite";

  // For a whole second after the overwrite, well inside the grace, the old
  // redirect keeps working.
  int reads = 0;
  for (; reads < 200 && Clock::now() < overwritten_at + 1s; ++reads) {
    std::this_thread::sleep_for(50ms);
    const auto later = follow_redirect(old_redirect, "GET");
    ASSERT_EQ(later.status, 200) << "read " << reads << " after the overwrite: " << later.summary();
    ASSERT_EQ(later.body, old_value) << "read " << reads;
  }
  const auto last = follow_redirect(old_redirect, "GET");
  EXPECT_EQ(last.status, 200) << "1 s after the overwrite: " << last.summary();
  EXPECT_EQ(last.body, old_value) << "1 s after the overwrite";

  // The master itself sends readers to the new value.
  const auto read = get_via_master(cluster.master_port(), key);
  EXPECT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, new_value) << read.describe();
}

TEST(Protocol, AnOldVersionIsRemovedOnceItsGraceHasPassed) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--old-version-grace", "1"}));
  const std::string key = "/store/grace-short-" + random_token(8);
  const std::string old_value = "old-" + random_token(32);
  const std::string new_value = "new-" + random_token(32);
  ASSERT_EQ(put_via_master(cluster.master_port(), key, old_value).second.status, 201);

  const auto old_redirect = http_request(cluster.master_port(), "GET", key);
  ASSERT_EQ(old_redirect.status, 302) << old_redirect.summary();
  const std::string old_version = version_in(old_redirect);
  const auto overwrite_started = Clock::now();
  const auto overwrite = put_via_master(cluster.master_port(), key, new_value);
  ASSERT_EQ(overwrite.second.status, 201) << overwrite.describe();

  // The grace starts no earlier than the overwrite's PUT: when this read is
  // over well inside 1 s of it, the old version must still be there.
  const auto early = follow_redirect(old_redirect, "GET");
  if (Clock::now() - overwrite_started < 500ms) {
    EXPECT_EQ(early.status, 200) << "inside the grace: " << early.summary();
    EXPECT_EQ(early.body, old_value) << "inside the grace";
  }

  const auto old_gone = [&] {
    return http_request(cluster.volume(0).port(), "GET", key + "?version=" + old_version).status ==
               404 &&
           cluster.blob_count() == 1;
  };
  EXPECT_TRUE(wait_until(old_gone, 1s + 5s))
      << "volume: "
      << http_request(cluster.volume(0).port(), "GET", key + "?version=" + old_version).summary()
      << "; " << cluster.blob_count() << " blob files";
  const auto read = get_via_master(cluster.master_port(), key);
  EXPECT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, new_value) << read.describe();
}

TEST(Protocol, AQueuedOldVersionRemovalSurvivesAMasterRestart) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  const std::vector<std::string> grace{"--old-version-grace", "3"};
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), grace));
  const std::string key = "/store/grace-restart-" + random_token(8);
  const std::string old_value = "old-" + random_token(32);
  const std::string new_value = "new-" + random_token(32);
  ASSERT_EQ(put_via_master(cluster.master_port(), key, old_value).second.status, 201);

  const auto old_redirect = http_request(cluster.master_port(), "GET", key);
  ASSERT_EQ(old_redirect.status, 302) << old_redirect.summary();
  const std::string old_version = version_in(old_redirect);
  const auto overwrite_started = Clock::now();
  ASSERT_EQ(put_via_master(cluster.master_port(), key, new_value).second.status, 201);

  // Restart the master on the same index before the grace has passed.
  const auto stopped = cluster.master().stop(SIGTERM, 10s);
  ASSERT_TRUE(stopped && stopped->clean())
      << (stopped ? stopped->describe() : std::string("still running after 10 s"));
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), grace));
  const auto old_read = [&] {
    return http_request(cluster.volume(0).port(), "GET", key + "?version=" + old_version);
  };
  // The restart must be over well inside the grace, or the test would not
  // show that the queued removal outlives the process that queued it.
  const auto restarted_after =
      std::chrono::duration_cast<Millis>(Clock::now() - overwrite_started).count();
  ASSERT_LT(restarted_after, 2000) << "ms from the overwrite to the restarted master";
  const auto still = old_read();
  EXPECT_EQ(still.status, 200) << "inside the grace, after the restart: " << still.summary();
  EXPECT_EQ(still.body, old_value);

  // The restarted master still removes it once the grace is over.
  EXPECT_TRUE(
      wait_until([&] { return old_read().status == 404 && cluster.blob_count() == 1; }, 3s + 5s))
      << "volume: " << old_read().summary() << "; " << cluster.blob_count() << " blob files";
  const auto read = get_via_master(cluster.master_port(), key);
  EXPECT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, new_value) << read.describe();
}

// ---------------------------------------------------------------------------
// 3. Deletes leave a fence.

TEST(Protocol, ACommitInFlightDuringADeleteDoesNotResurrectTheKey) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string key = "/store/fence-" + random_token(8);

  // (a) A gets its redirect first (the lower version)...
  const auto redirect_a = http_request(mport, "PUT", key);
  ASSERT_EQ(redirect_a.status, 307) << redirect_a.summary();
  // (b) ...B then writes the key completely.
  const auto b = put_via_master(mport, key, "value-b");
  ASSERT_EQ(b.second.status, 201) << b.describe();
  ASSERT_LT(std::stoull(version_in(redirect_a)), std::stoull(version_in(b.first)));

  // (c) A uploads, committing through the relay, which holds the commit: A's
  // version is published on the volume and its commit is in flight.
  HttpResponse upload_a;
  std::thread uploader;  // declared before the relay: the relay goes first
  CommitHoldingRelay relay(mport);
  const auto target_a = parse_url(
      with_query_value(location_of(redirect_a), "master", percent_encode(relay.url(), false)));
  ASSERT_TRUE(target_a.has_value()) << redirect_a.summary();
  ASSERT_NE(target_a->target.find(percent_encode(relay.url(), false)), std::string::npos)
      << target_a->target;
  uploader = std::thread(
      [&] { upload_a = http_request(target_a->port, "PUT", target_a->target, "value-a"); });
  struct Join {
    CommitHoldingRelay& relay;
    std::thread& thread;
    ~Join() {
      relay.release();
      if (thread.joinable()) thread.join();
    }
  } join{relay, uploader};
  ASSERT_TRUE(wait_until([&] { return relay.commits_received() >= 1; }, 10s))
      << "the volume never sent A's commit";

  // (d) The key is deleted while A's commit is held.
  const auto deleted = http_request(mport, "DELETE", key);
  ASSERT_EQ(deleted.status, 204) << deleted.summary();

  // (e) A's commit reaches the master now.
  relay.release();
  uploader.join();
  EXPECT_GE(upload_a.status, 200) << upload_a.summary();
  EXPECT_LT(upload_a.status, 300) << upload_a.summary();

  // (f) The delete came last: the key is gone.
  const auto read = get_via_master(mport, key);
  EXPECT_EQ(read.first.status, 404) << read.describe();
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 0; }, 5s))
      << cluster.blob_count() << " blob files left";
}

// ---------------------------------------------------------------------------
// 4. Malformed commit parameters are refused with 400 and change nothing.

struct CommitParams {
  std::optional<std::string> volumes;  // each already percent-encoded
  std::optional<std::string> version;
  std::optional<std::string> size;
  std::optional<std::string> checksum;
};

std::string commit_target(const std::string& key, const CommitParams& params) {
  std::string target = "/internal/commit/" + key;
  char separator = '?';
  for (const auto& [name, value] :
       {std::pair{"volumes", params.volumes}, std::pair{"version", params.version},
        std::pair{"size", params.size}, std::pair{"checksum", params.checksum}}) {
    if (!value) continue;
    target += separator + std::string(name) + "=" + *value;
    separator = '&';
  }
  return target;
}

TEST(Protocol, MalformedCommitParametersAreRefusedWith400AndChangeNothing) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string volume = percent_encode(cluster.volume(0).url(), false);
  const std::string unregistered =
      percent_encode("http://127.0.0.1:" + std::to_string(pick_free_port()), false);
  const std::string hex32 = "0123456789abcdef0123456789abcdef";

  struct Case {
    std::string name;
    std::function<void(CommitParams&)> spoil;
  };
  const std::vector<Case> cases = {
      {"version missing", [](CommitParams& p) { p.version.reset(); }},
      {"version empty", [](CommitParams& p) { p.version = ""; }},
      {"version not a number", [](CommitParams& p) { p.version = "abc"; }},
      {"version with trailing junk", [](CommitParams& p) { *p.version += "x"; }},
      {"version 0", [](CommitParams& p) { p.version = "0"; }},
      {"version 2^64-1", [](CommitParams& p) { p.version = "18446744073709551615"; }},
      {"version a day ahead",
       [](CommitParams& p) {
         p.version = std::to_string(std::stoull(*p.version) + 86'400'000'000ULL);
       }},
      {"size missing", [](CommitParams& p) { p.size.reset(); }},
      {"size empty", [](CommitParams& p) { p.size = ""; }},
      {"size not a number", [](CommitParams& p) { p.size = "abc"; }},
      {"size negative", [](CommitParams& p) { p.size = "-4"; }},
      {"size hexadecimal", [](CommitParams& p) { p.size = "0x10"; }},
      {"checksum with CR LF",
       [&](CommitParams& p) { p.checksum = hex32.substr(0, 30) + "%0D%0AX-Injected:%20yes"; }},
      {"checksum empty", [](CommitParams& p) { p.checksum = ""; }},
      {"checksum of 31 hex digits", [&](CommitParams& p) { p.checksum = hex32.substr(1); }},
      {"checksum of 33 hex digits", [&](CommitParams& p) { p.checksum = hex32 + "0"; }},
      {"checksum not hex", [](CommitParams& p) { p.checksum = std::string(32, 'z'); }},
      {"volumes missing", [](CommitParams& p) { p.volumes.reset(); }},
      {"volumes empty", [](CommitParams& p) { p.volumes = ""; }},
      {"volumes not a URL", [](CommitParams& p) { p.volumes = "not-a-url"; }},
      {"volumes with a trailing comma", [&](CommitParams& p) { p.volumes = volume + "%2C"; }},
      {"volumes with an empty entry",
       [&](CommitParams& p) { p.volumes = volume + "%2C%2C" + volume; }},
      {"volumes with a path", [&](CommitParams& p) { p.volumes = volume + "%2Fpath"; }},
      {"the same volume twice", [&](CommitParams& p) { p.volumes = volume + "%2C" + volume; }},
      {"a volume not registered", [&](CommitParams& p) { p.volumes = unregistered; }},
      {"a registered and an unregistered volume",
       [&](CommitParams& p) { p.volumes = volume + "%2C" + unregistered; }},
  };

  // A well-formed commit of the same shape: what each case spoils one part of.
  const auto valid_params = [&](const std::string& key) {
    const auto redirect = http_request(mport, "PUT", "/store/" + key);
    EXPECT_EQ(redirect.status, 307) << redirect.summary();
    return CommitParams{volume, version_in(redirect), "4", hex32};
  };

  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const std::string existing = "exists-" + std::to_string(i) + "-" + random_token(6);
    const std::string absent = "absent-" + std::to_string(i) + "-" + random_token(6);
    const std::string value = "value-" + random_token(12);
    const auto put = put_via_master(mport, "/store/" + existing, value);
    ASSERT_EQ(put.second.status, 201) << put.describe();

    for (const auto& key : {existing, absent}) {
      auto params = valid_params(key);
      ASSERT_FALSE(params.version->empty());
      cases[i].spoil(params);
      const auto refused = http_request(mport, "POST", commit_target(key, params));
      EXPECT_EQ(refused.status, 400) << key << ": " << refused.summary();
      EXPECT_TRUE(is_one_line_reason(refused.body)) << key << ": " << refused.summary();
      EXPECT_FALSE(refused.header("X-Injected").has_value()) << refused.summary();
    }

    const auto read = get_via_master(mport, "/store/" + existing);
    EXPECT_EQ(read.first.status, 302) << read.describe();
    EXPECT_EQ(read.first.header("ETag"), put.second.header("ETag")) << read.describe();
    EXPECT_FALSE(read.first.header("X-Injected").has_value()) << read.describe();
    EXPECT_EQ(read.second.status, 200) << read.describe();
    EXPECT_EQ(read.second.body, value) << read.describe();
    const auto missing = http_request(mport, "GET", "/store/" + absent);
    EXPECT_EQ(missing.status, 404) << missing.summary();
    EXPECT_FALSE(missing.header("X-Injected").has_value()) << missing.summary();
  }

  // The control: the same commit, unspoiled, is one the master takes.
  const std::string control = "control-" + random_token(8);
  const auto accepted = http_request(mport, "POST", commit_target(control, valid_params(control)));
  EXPECT_EQ(accepted.status, 200) << accepted.summary();
  EXPECT_EQ(accepted.body, "committed\n") << accepted.summary();
}

TEST(Protocol, AForgedFarFutureVersionDoesNotSupersedeLaterWrites) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string volume = percent_encode(cluster.volume(0).url(), false);
  const std::string existing = "forged-exists-" + random_token(8);
  const std::string fresh = "forged-fresh-" + random_token(8);
  const auto put = put_via_master(mport, "/store/" + existing, "before");
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto issued = std::stoull(version_in(put.first));

  for (const auto& key : {existing, fresh}) {
    for (const std::string& forged :
         {std::string("18446744073709551615"), std::to_string(issued + 86'400'000'000ULL)}) {
      const auto refused = http_request(
          mport, "POST", commit_target(key, {volume, forged, "6", checksum_in(put.second)}));
      EXPECT_EQ(refused.status, 400) << key << " at " << forged << ": " << refused.summary();
      EXPECT_TRUE(is_one_line_reason(refused.body)) << refused.summary();
    }
  }

  // Later writes of both keys are ordinary writes, not "superseded" ones.
  for (const auto& key : {existing, fresh}) {
    const std::string value = "after-" + random_token(16);
    const auto write = put_via_master(mport, "/store/" + key, value);
    EXPECT_EQ(write.second.status, 201) << key << ": " << write.describe();
    const auto read = get_via_master(mport, "/store/" + key);
    EXPECT_EQ(read.first.status, 302) << key << ": " << read.describe();
    EXPECT_EQ(read.second.status, 200) << key << ": " << read.describe();
    EXPECT_EQ(read.second.body, value) << key << ": " << read.describe();
  }
}

// ---------------------------------------------------------------------------
// 5. Listing errors on a volume are errors, never "no such key".

TEST(Protocol, ADeleteTheVolumeCannotListIsQueuedUntilItCan) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string key = "/store/unlistable-" + random_token(8);
  ASSERT_EQ(put_via_master(mport, key, "value").second.status, 201);
  const auto files = cluster.blob_files();
  ASSERT_EQ(files.size(), 1U);
  const fs::path blob = files.front();
  const fs::path leaf = blob.parent_path();  // DATA_DIR/blobs/ab/cd
  ASSERT_EQ(leaf.parent_path().parent_path(), cluster.volume_dir(0) / "blobs") << leaf;

  // The leaf folder becomes unlistable: moved aside, a regular file in its
  // place (permission bits would not stop a daemon running as root).
  const fs::path aside = tmp.path() / "aside";
  fs::rename(leaf, aside);
  write_file(leaf, "not a folder");

  const auto deleted = http_request(mport, "DELETE", key);
  EXPECT_EQ(deleted.status, 204) << deleted.summary();
  const auto read = http_request(mport, "GET", key);
  EXPECT_EQ(read.status, 404) << read.summary();

  // The folder comes back: the queued removal reaches the volume.
  fs::remove(leaf);
  fs::rename(aside, leaf);
  ASSERT_TRUE(fs::exists(blob)) << blob;
  EXPECT_TRUE(wait_until([&] { return !fs::exists(blob) && cluster.blob_count() == 0; }, 10s))
      << cluster.blob_count() << " blob files left, " << blob
      << (fs::exists(blob) ? " still there" : " gone");
  EXPECT_EQ(http_request(mport, "GET", key).status, 404);
}

// ---------------------------------------------------------------------------
// 6. Uploads have a deadline, and tombstones are collected.

TEST(Protocol, AnUploadOlderThanTheMaxUploadTimeIsRefused) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--max-upload-time", "1"}));
  const uint16_t mport = cluster.master_port();
  const std::string fresh = "/store/late-fresh-" + random_token(8);
  const std::string existing = "/store/late-exists-" + random_token(8);
  ASSERT_EQ(put_via_master(mport, existing, "old").second.status, 201);
  const auto blobs_before = cluster.blob_files();
  ASSERT_EQ(blobs_before.size(), 1U);

  const auto redirect_fresh = http_request(mport, "PUT", fresh);
  ASSERT_EQ(redirect_fresh.status, 307) << redirect_fresh.summary();
  const auto redirect_existing = http_request(mport, "PUT", existing);
  ASSERT_EQ(redirect_existing.status, 307) << redirect_existing.summary();
  // Both versions were issued before this point; 1.5 s from it is past the
  // 1 s upload deadline.
  let_time_pass(Clock::now(), 1500ms);

  const auto late_fresh = follow_redirect(redirect_fresh, "PUT", "late");
  EXPECT_EQ(late_fresh.status, 409) << late_fresh.summary();
  const auto late_existing = follow_redirect(redirect_existing, "PUT", "late");
  EXPECT_EQ(late_existing.status, 409) << late_existing.summary();

  const auto read_fresh = get_via_master(mport, fresh);
  EXPECT_EQ(read_fresh.first.status, 404) << read_fresh.describe();
  const auto read_existing = get_via_master(mport, existing);
  EXPECT_EQ(read_existing.second.status, 200) << read_existing.describe();
  EXPECT_EQ(read_existing.second.body, "old") << read_existing.describe();
  EXPECT_TRUE(wait_until([&] { return cluster.blob_files() == blobs_before; }, 5s))
      << cluster.blob_count() << " blob files";
}

TEST(Protocol, AKeyCanBeWrittenAgainAfterItsTombstoneIsCollected) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--max-upload-time", "1"}));
  const uint16_t mport = cluster.master_port();
  const std::string key = "/store/tombstone-" + random_token(8);
  ASSERT_EQ(put_via_master(mport, key, "first").second.status, 201);
  // An upload that starts before the delete and finishes long after it.
  const auto stale_redirect = http_request(mport, "PUT", key);
  ASSERT_EQ(stale_redirect.status, 307) << stale_redirect.summary();

  const auto deleted = http_request(mport, "DELETE", key);
  ASSERT_EQ(deleted.status, 204) << deleted.summary();
  const auto deleted_at = Clock::now();
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 0; }, 5s))
      << cluster.blob_count() << " blob files";
  // 2 s after the delete: every replica confirmed it and the upload
  // deadline has passed, so the tombstone may be gone.
  let_time_pass(deleted_at, 2s);

  // The stale upload does not bring the key back...
  const auto stale = follow_redirect(stale_redirect, "PUT", "stale");
  EXPECT_EQ(stale.status, 409) << stale.summary();
  const auto after_stale = get_via_master(mport, key);
  EXPECT_EQ(after_stale.first.status, 404) << after_stale.describe();

  // ...and a new write of the key is an ordinary write.
  const auto again = put_via_master(mport, key, "second");
  EXPECT_EQ(again.second.status, 201) << again.describe();
  const auto read = get_via_master(mport, key);
  EXPECT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, "second") << read.describe();
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 1; }, 5s))
      << cluster.blob_count() << " blob files";
}

}  // namespace
}  // namespace kalavara::it
