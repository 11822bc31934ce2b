// Versioned writes: every write carries the version the master issued, the
// highest committed version wins whatever order commits arrive in, and reads
// are sent to exactly the version the index holds.
#include <string>

#include "harness.hpp"

namespace kalavara::it {
namespace {

std::string location_of(const HttpResponse& response) {
  return response.header("Location").value_or("");
}

// The version=V parameter of a redirect's Location.
std::string version_in(const std::string& location) {
  const auto at = location.find("version=");
  if (at == std::string::npos) return "";
  const auto end = location.find('&', at);
  return location.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
}

TEST(Versions, RedirectsCarryIncreasingVersionsAndReadsNameTheCommittedOne) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--old-version-grace", "1"}));
  const std::string key = "/store/versioned-" + random_token(8);

  const auto first = put_via_master(cluster.master_port(), key, "one");
  ASSERT_EQ(first.second.status, 201) << first.describe();
  const auto second = put_via_master(cluster.master_port(), key, "two");
  ASSERT_EQ(second.second.status, 201) << second.describe();
  const auto v1 = version_in(location_of(first.first));
  const auto v2 = version_in(location_of(second.first));
  ASSERT_FALSE(v1.empty()) << first.describe();
  ASSERT_FALSE(v2.empty()) << second.describe();
  EXPECT_LT(std::stoull(v1), std::stoull(v2));

  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.first.status, 302) << read.describe();
  EXPECT_EQ(version_in(location_of(read.first)), v2) << read.describe();
  EXPECT_EQ(read.second.body, "two");

  // The old version's file goes once its grace has passed after the new one
  // was committed; asking the volume for it then finds nothing.
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 1; }, 10s))
      << cluster.blob_count() << " blob files";
  const auto old = http_request(cluster.volume(0).port(), "GET", key + "?version=" + v1);
  EXPECT_EQ(old.status, 404) << old.summary();
}

TEST(Versions, TheHigherVersionWinsWhateverOrderUploadsFinishIn) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "/store/race-" + random_token(8);

  // Two clients get their redirects in order A, B (so A's version is lower)
  // but B finishes its upload first.
  const auto redirect_a = http_request(cluster.master_port(), "PUT", key, "value-a");
  const auto redirect_b = http_request(cluster.master_port(), "PUT", key, "value-b");
  ASSERT_EQ(redirect_a.status, 307) << redirect_a.summary();
  ASSERT_EQ(redirect_b.status, 307) << redirect_b.summary();
  const auto b = follow_redirect(redirect_b, "PUT", "value-b");
  ASSERT_EQ(b.status, 201) << b.summary();
  const auto a = follow_redirect(redirect_a, "PUT", "value-a");
  // A is ordered before B: acknowledged, and at once overwritten by B.
  ASSERT_EQ(a.status, 201) << a.summary();

  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, "value-b");
  EXPECT_EQ(read.first.header("ETag"), b.header("ETag"));
  // The superseded write leaves no file behind.
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 1; }, 10s))
      << cluster.blob_count() << " blob files";
}

TEST(Versions, AMasterThatIsDownAtCommitLeavesTheOldValueAndNoFile) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "/store/orphan-" + random_token(8);
  ASSERT_EQ(put_via_master(cluster.master_port(), key, "old").second.status, 201);

  const auto redirect = http_request(cluster.master_port(), "PUT", key, "new");
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  // The master goes away before the volume can commit the new version.
  ASSERT_TRUE(cluster.master().stop(SIGTERM, 10s).has_value());
  const auto upload = follow_redirect(redirect, "PUT", "new");
  EXPECT_EQ(upload.status, 503) << upload.summary();
  EXPECT_EQ(cluster.blob_count(), 1U) << "the uncommitted version's file is left behind";

  ASSERT_TRUE(cluster.start_master(cluster.volume_urls()));
  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body, "old");
}

}  // namespace
}  // namespace kalavara::it

namespace kalavara::it {
namespace {

// Every replica of a value holds the same bytes with the same checksum: the
// ETag of the PUT, of the master's 302 and of each replica's HEAD agree.
TEST(Versions, EveryReplicaServesTheSameChecksum) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) {
    std::size_t index = 0;
    ASSERT_TRUE(cluster.start_volume(&index));
  }
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "3"}));
  for (int n = 0; n < 5; ++n) {
    const std::string key = "/store/replicated-" + random_token(8);
    const auto put = put_via_master(cluster.master_port(), key, random_bytes(100'000 + n));
    ASSERT_EQ(put.second.status, 201) << put.describe();
    const auto etag = put.second.header("ETag").value_or("");
    ASSERT_FALSE(etag.empty()) << put.describe();
    const auto located = http_request(cluster.master_port(), "HEAD", key);
    ASSERT_EQ(located.status, 302) << located.summary();
    EXPECT_EQ(located.header("ETag").value_or(""), etag);
    const auto target = parse_url(located.header("Location").value_or(""));
    ASSERT_TRUE(target.has_value()) << located.summary();
    const auto query = target->target.substr(target->target.find('?'));
    for (std::size_t v = 0; v < cluster.volume_count(); ++v) {
      const auto head = http_request(cluster.volume(v).port(), "HEAD", key + query);
      ASSERT_EQ(head.status, 200) << "replica " << v << ": " << head.summary();
      EXPECT_EQ(head.header("ETag").value_or(""), etag) << "replica " << v;
    }
  }
}

}  // namespace
}  // namespace kalavara::it

namespace kalavara::it {
namespace {

// A replicated upload is forwarded with its length; a chunked one (no
// Content-Length) is refused with 411 and leaves nothing behind.
TEST(Versions, AReplicatedChunkedUploadIsRefusedWith411) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const std::string key = "/store/chunked-" + random_token(8);
  const auto redirect = http_request(cluster.master_port(), "PUT", key);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto target = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(target.has_value()) << redirect.summary();

  HttpConnection connection;
  ASSERT_EQ(connection.connect(target->port), "");
  ASSERT_EQ(connection.send_all("PUT " + target->target +
                                " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(target->port) +
                                "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            "");
  const auto answer = connection.read_response();
  EXPECT_EQ(answer.status, 411) << answer.summary();
  EXPECT_EQ(get_via_master(cluster.master_port(), key).first.status, 404);
  EXPECT_EQ(cluster.blob_count(), 0U);
}

}  // namespace
}  // namespace kalavara::it
