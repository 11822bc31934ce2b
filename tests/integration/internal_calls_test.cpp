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

#include "fake_peer.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

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
