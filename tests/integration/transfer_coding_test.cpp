// Transfer codings on the real daemons (RFC 9112 §6): a body whose final
// coding is not chunked cannot be delimited (400), a coding other than
// chunked is not understood (501); either way the connection closes and
// what follows the header is never read as a request. Plain chunked uploads
// still work.
#include <cstdio>
#include <string>
#include <string_view>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// A request after a body that cannot be delimited: it must not be answered.
constexpr std::string_view kSmuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

std::string chunked(std::string_view value) {
  std::string out;
  constexpr std::size_t kChunk = 1000;
  for (std::size_t at = 0; at < value.size(); at += kChunk) {
    const auto piece = value.substr(at, kChunk);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    out += size;
    out += piece;
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

// Sends PUT `target` to `port` with `transfer_encoding` and `body`, then
// kSmuggled, on one connection: expects `status` and the connection closed
// with nothing more sent.
::testing::AssertionResult refused(uint16_t port, const std::string& target,
                                   std::string_view transfer_encoding, std::string_view body,
                                   int status) {
  HttpConnection connection;
  connection.set_timeout(10s);
  if (auto error = connection.connect(port); !error.empty()) {
    return ::testing::AssertionFailure() << "connect: " << error;
  }
  const std::string request = "PUT " + target +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nTransfer-Encoding: " + std::string(transfer_encoding) +
                              "\r\n\r\n" + std::string(body) + std::string(kSmuggled);
  if (auto error = connection.send_all(request); !error.empty()) {
    return ::testing::AssertionFailure() << "send: " << error;
  }
  const auto answer = connection.read_response();
  if (answer.status != status) {
    return ::testing::AssertionFailure() << "expected " << status << ", got " << answer.summary();
  }
  if (answer.header("Connection").value_or("") != "close") {
    return ::testing::AssertionFailure() << "no Connection: close in " << answer.summary();
  }
  const auto next = connection.read_response();
  if (next.status != 0 || next.error.find("closed") == std::string::npos) {
    return ::testing::AssertionFailure()
           << "the connection was not closed after the " << status << ": " << next.summary();
  }
  return ::testing::AssertionSuccess();
}

// Where the master sends a PUT of /store/k: the volume's target, which it
// would store and commit.
std::string volume_target(uint16_t master_port) {
  const auto redirect = http_request(master_port, "PUT", "/store/k");
  const auto location = parse_url(redirect.header("Location").value_or(""));
  EXPECT_TRUE(location.has_value()) << redirect.summary();
  return location ? location->target : "/store/k";
}

TEST(TransferCoding, AFinalCodingOtherThanChunkedGets400AndTheConnectionCloses) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  EXPECT_TRUE(refused(cluster.master_port(), "/store/k", "gzip", "hello", 400)) << "master";
  EXPECT_TRUE(
      refused(cluster.volume(0).port(), volume_target(cluster.master_port()), "gzip", "hello", 400))
      << "volume";
  EXPECT_EQ(cluster.blob_count(), 0U);
}

TEST(TransferCoding, AnUnknownCodingBeforeChunkedGets501AndTheConnectionCloses) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  EXPECT_TRUE(refused(cluster.master_port(), "/store/k", "gzip, chunked", chunked("hello"), 501))
      << "master";
  EXPECT_TRUE(refused(cluster.volume(0).port(), volume_target(cluster.master_port()),
                      "gzip, chunked", chunked("hello"), 501))
      << "volume";
  EXPECT_EQ(cluster.blob_count(), 0U);

  // Chunked alone is still read: the upload is stored and reads back.
  const std::string key = "/store/chunked-" + random_token(8);
  const std::string value = random_bytes(5000);
  const auto redirect = http_request(cluster.master_port(), "PUT", key);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto location = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value()) << redirect.summary();
  HttpConnection connection;
  ASSERT_EQ(connection.connect(location->port), "");
  const auto put = connection.request(
      {"PUT", location->target, chunked(value), {{"Transfer-Encoding", "chunked"}}, true, false});
  ASSERT_EQ(put.status, 201) << put.summary();
  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.second.status, 200) << read.describe();
  EXPECT_TRUE(read.second.body == value) << read.second.body.size() << " bytes read back";
}

}  // namespace
}  // namespace kalavara::it
