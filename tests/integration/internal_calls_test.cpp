// The daemons' calls to each other: a volume's commits go over kept-alive
// connections, a kept connection the master closed is retried on a new one,
// a commit whose answer is lost leaves the files in place (also when the
// retry cannot connect), and a commit sent twice is committed once. Health checks of volumes do not
// wait for each other.
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

namespace kalavara::it {
namespace {

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
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "fake master cannot listen";
      return;
    }
    port_ = ntohs(address.sin_port);
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

// A PUT straight to the volume, as a redirect from `master` would send it.
HttpResponse put_to_volume(uint16_t volume_port, const std::string& key, std::uint64_t version,
                           const std::string& master, const std::string& body) {
  return http_request(volume_port, "PUT",
                      "/store/" + key + "?version=" + std::to_string(version) +
                          "&master=" + percent_encode(master, false),
                      body);
}

TEST(InternalCalls, CommitsReuseKeptAliveConnections) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t index = 0;
  ASSERT_TRUE(cluster.start_volume(&index, {"-t", "2"}));
  FakePeer master(FakePeer::Mode::kCommit);
  constexpr int kPuts = 8;
  for (int i = 0; i < kPuts; ++i) {
    const auto put = put_to_volume(cluster.volume(index).port(), "kept-" + std::to_string(i),
                                   1000 + i, master.url(), "value " + std::to_string(i));
    ASSERT_EQ(put.status, 201) << put.summary();
  }
  EXPECT_EQ(master.requests(), kPuts);
  // One connection per volume thread at most, not one per commit.
  EXPECT_LE(master.connections(), 2);
}

TEST(InternalCalls, AKeptConnectionTheMasterClosedIsRetriedOnANewOne) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t index = 0;
  ASSERT_TRUE(cluster.start_volume(&index, {"-t", "1"}));
  FakePeer master(FakePeer::Mode::kOneAnswerPerConnection);
  for (int i = 0; i < 3; ++i) {
    const auto put = put_to_volume(cluster.volume(index).port(), "retried-" + std::to_string(i),
                                   2000 + i, master.url(), "value");
    ASSERT_EQ(put.status, 201) << "PUT " << i << ": " << put.summary();
  }
  // Each later commit went first to the kept connection, which the master
  // closed unanswered, and then to a new one.
  EXPECT_EQ(master.connections(), 3);
  EXPECT_EQ(master.requests(), 5);
  EXPECT_EQ(cluster.blob_count(), 3U);
}

TEST(InternalCalls, ACommitWhoseAnswerIsLostKeepsTheFile) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t index = 0;
  ASSERT_TRUE(cluster.start_volume(&index));
  FakePeer master(FakePeer::Mode::kCloseUnanswered);
  const auto put =
      put_to_volume(cluster.volume(index).port(), "unanswered", 3000, master.url(), "value");
  EXPECT_EQ(put.status, 504) << put.summary();
  EXPECT_EQ(master.requests(), 1) << "a commit that may have happened is not sent again";
  // The master may have committed it: removing the file could leave the
  // index naming a version that is gone.
  EXPECT_EQ(cluster.blob_count(), 1U);
}

TEST(InternalCalls, ACommitLostOnAKeptConnectionIsUnansweredThoughTheRetryCannotConnect) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t index = 0;
  // One thread: the second commit takes the connection the first one left.
  ASSERT_TRUE(cluster.start_volume(&index, {"-t", "1"}));
  FakePeer master(FakePeer::Mode::kVanishAfterOneAnswer);
  const auto first =
      put_to_volume(cluster.volume(index).port(), "vanish-1", 5000, master.url(), "one");
  ASSERT_EQ(first.status, 201) << first.summary();
  // The second commit goes out whole on the kept connection, which the
  // master closes unanswered; by then it refuses new connections, so the
  // retry cannot even connect.
  const auto second =
      put_to_volume(cluster.volume(index).port(), "vanish-2", 5001, master.url(), "two");
  EXPECT_EQ(second.status, 504) << second.summary();
  EXPECT_EQ(master.connections(), 1);
  EXPECT_EQ(master.requests(), 2);
  // The master had the whole commit and may have acted on it: the file stays.
  EXPECT_EQ(cluster.blob_count(), 2U);
}

TEST(InternalCalls, AnUnreachableMasterMeansNothingStored) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t index = 0;
  ASSERT_TRUE(cluster.start_volume(&index));
  const auto put = put_to_volume(cluster.volume(index).port(), "refused", 4000,
                                 "http://127.0.0.1:" + std::to_string(pick_free_port()), "value");
  EXPECT_EQ(put.status, 503) << put.summary();
  EXPECT_EQ(cluster.blob_count(), 0U);
}

TEST(InternalCalls, ACommitSentTwiceIsCommittedOnce) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "twice-" + random_token(8);
  const std::string value = random_token(100);
  const auto put = put_via_master(cluster.master_port(), "/store/" + key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto location = put.first.header("Location").value_or("");
  const auto at = location.find("version=");
  ASSERT_NE(at, std::string::npos) << location;
  const auto version = location.substr(at + 8, location.find('&', at) - at - 8);
  auto checksum = put.second.header("ETag").value_or("");
  ASSERT_GE(checksum.size(), 2U);
  checksum = checksum.substr(1, checksum.size() - 2);

  // The volume's commit again, as if its first answer had been lost.
  const auto again = http_request(
      cluster.master_port(), "POST",
      "/internal/commit/" + key + "?volumes=" + percent_encode(cluster.volume(0).url(), false) +
          "&version=" + version + "&size=" + std::to_string(value.size()) +
          "&checksum=" + checksum);
  EXPECT_EQ(again.status, 200) << again.summary();
  EXPECT_EQ(again.body, "committed\n");
  const auto read = get_via_master(cluster.master_port(), "/store/" + key);
  ASSERT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, value);
  EXPECT_EQ(cluster.blob_count(), 1U);
}

TEST(HealthChecks, AHungVolumeDelaysNoOtherVolumesCheck) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  // Six volumes that accept connections and never answer: checked one after
  // another, each would take its whole 500 ms timeout every round.
  std::vector<std::unique_ptr<FakePeer>> hung;
  for (int i = 0; i < 6; ++i) {
    hung.push_back(std::make_unique<FakePeer>(FakePeer::Mode::kNeverAnswer));
    const auto added =
        http_request(cluster.master_port(), "POST", "/admin/add-volume", hung.back()->url());
    ASSERT_EQ(added.status, 200) << added.summary();
  }
  const auto reported_down = [&](const std::string& url) {
    const auto volumes = http_request(cluster.master_port(), "GET", "/admin/volumes");
    return volumes.body.find("\"url\": \"" + url + "\", \"state\": \"down\"") != std::string::npos;
  };
  ASSERT_TRUE(wait_until([&] { return reported_down(hung.front()->url()); }, 10s))
      << "the hung volumes are checked";

  cluster.volume(0).kill_hard();
  // Three missed checks at 500 ms: about 1.5 s when checks run side by
  // side; more than 9 s if each round waited for the six hung volumes.
  EXPECT_TRUE(wait_until([&] { return reported_down(cluster.volume(0).url()); }, 5s))
      << http_request(cluster.master_port(), "GET", "/admin/volumes").body;
}

}  // namespace
}  // namespace kalavara::it
