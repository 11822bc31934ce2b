// The daemon-to-daemon messages: what one side builds, the other parses back
// exactly, and anything malformed is refused with a reason.
#include "common/internal_api.hpp"

#include <gtest/gtest.h>

#include "common/key_codec.hpp"

namespace kalavara::internal {
namespace {

BaseUrl url(std::string_view text) { return parse_base_url(text).value(); }

std::string query_of(const std::string& target) { return std::string(split_target(target).query); }

CommitCall sample_commit() {
  CommitCall call;
  call.key = "dir/a b&c=d?/../%";
  call.volumes = {"http://127.0.0.1:6001", "http://[::1]:6002"};
  call.version = 1'796'000'000'000'001;
  call.size = 12345;
  call.checksum = "0123456789abcdef0123456789abcdef";
  call.if_match = "\"0123456789abcdef0123456789abcdef\"";
  call.if_none_match = "*";
  return call;
}

TEST(WriteOrder, RoundTripsThroughTheRedirect) {
  WriteOrder order;
  order.version = 42;
  order.master = url("http://master:6000");
  order.replicas = {url("http://b:1"), url("http://c:2")};
  const auto location = write_location("http://a:1", "k/ey", order);
  EXPECT_TRUE(location.starts_with("http://a:1/store/k/ey?")) << location;
  const auto parsed = parse_write_order(location.substr(location.find('?') + 1));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->version, 42U);
  EXPECT_EQ(parsed->master, order.master);
  EXPECT_EQ(parsed->replicas, order.replicas);
  EXPECT_FALSE(parsed->as_replica);
}

TEST(WriteOrder, AReplicasCopyIsNeverCommitted) {
  const auto target = replica_target("k", 7);
  const auto parsed = parse_write_order(query_of(target));
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->as_replica);
  EXPECT_EQ(parsed->version, 7U);
}

TEST(WriteOrder, RefusesMissingOrBadVersionsAndUrls) {
  for (const auto* query :
       {"", "version=", "version=abc", "version=0", "version=-1", "version=1&master=ftp://x",
        "version=1&replicas=http://a:1,", "version=1&replicas=http://a:1,http://a:1",
        // Not valid percent-encoding is refused, never taken as absent.
        "version=%zz", "version=1&master=%", "version=1&replicas=http%3A%2F%2Fa%3A1%2"}) {
    const auto parsed = parse_write_order(query);
    ASSERT_FALSE(parsed.ok()) << query;
    EXPECT_EQ(parsed.error().code, Errc::kBadInput) << query;
  }
}

TEST(CommitCall, RoundTripsExactly) {
  const auto call = sample_commit();
  const auto parsed = parse_commit(commit_target(call));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->key, call.key);
  EXPECT_EQ(parsed->volumes, call.volumes);
  EXPECT_EQ(parsed->version, call.version);
  EXPECT_EQ(parsed->size, call.size);
  EXPECT_EQ(parsed->checksum, call.checksum);
  EXPECT_EQ(parsed->if_match, call.if_match);
  EXPECT_EQ(parsed->if_none_match, call.if_none_match);
}

TEST(CommitCall, RefusesEveryMalformedParameterWithItsName) {
  const auto good = commit_target(sample_commit());
  const auto replace = [&](std::string_view name, std::string_view value) {
    auto target = good;
    const auto at = target.find(std::string(name) + "=");
    const auto end = target.find('&', at);
    target.replace(at, end == std::string::npos ? std::string::npos : end - at,
                   std::string(name) + "=" + std::string(value));
    return target;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {replace("version", "0"), "version"},
      {replace("version", "x1"), "version"},
      {replace("version", "18446744073709551616"), "version"},
      {replace("size", "-1"), "size"},
      {replace("size", "1e3"), "size"},
      {replace("checksum", "0123456789ABCDEF0123456789ABCDEF"), "checksum"},
      {replace("checksum", "0123"), "checksum"},
      {replace("checksum", "0123456789abcdef0123456789abcd%0D%0A"), "checksum"},
      {replace("volumes", ""), "volumes"},
      {replace("volumes", "http%3A%2F%2Fa%3A1%2C"), "volumes"},
      {replace("volumes", "http%3A%2F%2Fa%3A1%2Chttp%3A%2F%2Fa%3A1"), "volumes"},
      {replace("volumes", "http%3A%2F%2Fa%3A1%2Fpath"), "volumes"},
      {replace("if_match", "%22x%22%0D%0AX-Evil%3A%201"), "if_match"},
      {replace("if_match", "%22x%2"), "if_match"},
      {replace("size", "%zz"), "size"},
      {replace("volumes", "%"), "volumes"},
  };
  for (const auto& [target, name] : cases) {
    const auto parsed = parse_commit(target);
    ASSERT_FALSE(parsed.ok()) << target;
    EXPECT_EQ(parsed.error().code, Errc::kBadInput) << target;
    EXPECT_NE(parsed.error().message.find(name), std::string::npos)
        << target << ": " << parsed.error().message;
    EXPECT_EQ(parsed.error().message.find('\n'), std::string::npos);
  }
  // No version and no checksum at all.
  const std::string bare = "/internal/commit/k?volumes=http%3A%2F%2Fa%3A1&size=1";
  EXPECT_FALSE(parse_commit(bare).ok());
}

TEST(CommitAnswer, IsOneOfTwoWords) {
  for (const auto answer : {CommitAnswer::kCommitted, CommitAnswer::kSuperseded}) {
    EXPECT_EQ(parse_commit_answer(std::string(commit_answer_text(answer)) + "\n"), answer);
  }
  EXPECT_FALSE(parse_commit_answer("committed, probably").has_value());
  EXPECT_FALSE(parse_commit_answer("").has_value());
}

TEST(RemovalCall, TakesExactlyOneScope) {
  for (const auto scope : {RemovalCall::Scope::kUpTo, RemovalCall::Scope::kExactly}) {
    const RemovalCall call{"a/b", 9, scope};
    const auto target = removal_target(call);
    const auto parsed = parse_removal("a/b", query_of(target));
    ASSERT_TRUE(parsed.ok()) << target;
    EXPECT_EQ(parsed->scope, scope);
    EXPECT_EQ(parsed->version, 9U);
  }
  for (const auto* query : {"", "upto=1&version=1", "upto=x", "version=0"}) {
    EXPECT_FALSE(parse_removal("k", query).ok()) << query;
  }
}

TEST(ReadLocation, NamesTheVersion) {
  const auto location = read_location("http://a:1", "k", 5);
  EXPECT_EQ(location, "http://a:1/store/k?version=5");
  EXPECT_EQ(parse_read_version("version=5").value(), std::optional<std::uint64_t>{5});
  EXPECT_EQ(parse_read_version("").value(), std::nullopt);
  EXPECT_FALSE(parse_read_version("version=five").ok());
  // A version that is not valid percent-encoding is refused, not ignored
  // (which would read the newest version instead).
  EXPECT_FALSE(parse_read_version("version=%zz").ok());
  EXPECT_FALSE(parse_removal("k", "upto=%1").ok());
}

}  // namespace
}  // namespace kalavara::internal

namespace kalavara::internal {
namespace {

TEST(VolumeStats, RoundTripsAndRefusesAnythingElse) {
  const VolumeStats stats{18'000'000'000'000'000'000ULL, 42};
  EXPECT_EQ(parse_stats(stats_body(stats)).value(), stats);
  EXPECT_EQ(parse_stats("{\"files\": 1, \"free_bytes\": 2, \"extra\": true}").value(),
            (VolumeStats{2, 1}));
  for (const auto* body : {"", "[]", "{\"files\": 1}", "{\"free_bytes\": -1, \"files\": 1}",
                           "{\"free_bytes\": \"2\", \"files\": 1}", "<html>"}) {
    const auto parsed = parse_stats(body);
    ASSERT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(parsed.error().code, Errc::kPeerFailed) << body;
  }
}

}  // namespace
}  // namespace kalavara::internal

namespace kalavara::internal {
namespace {

TEST(BlobPage, RoundTripsEveryKeyByteForByte) {
  std::string binary;
  for (int c = 1; c < 256; ++c) binary.push_back(static_cast<char>(c));
  const std::vector<BlobEntry> entries = {
      {"00ab.0000000000000001", "a/b c", 1, 5, std::string(32, 'f'), 1'700'000'000, false},
      {"00ac.00000000000000ff", binary, 255, 0, "", 1'700'000'001, true},
      {"00ad.0000000000000002", "caf\xc3\xa9 \xe9", 2, 1ULL << 40, std::string(32, '0'), 0, false},
  };
  std::string body;
  for (const auto& entry : entries) body += blob_entry_line(entry);
  body += blob_page_end_line("00ad.0000000000000002");
  const auto page = parse_blob_page(body);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->entries, entries);
  EXPECT_EQ(page->next, "00ad.0000000000000002");
  const auto last = parse_blob_page(blob_page_end_line(""));
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->entries.empty());
  EXPECT_EQ(last->next, "");
}

TEST(BlobPage, RefusesTruncatedOrForeignBodies) {
  const BlobEntry entry{"00ab.0000000000000001", "k", 1, 5, std::string(32, 'f'), 1, false};
  const auto line = blob_entry_line(entry);
  for (const auto& body : {line, line + "{\"next\":\"\"}", std::string("<html>\n"),
                           line + blob_page_end_line("") + line,
                           std::string("{\"name\":\"x\"}\n") + blob_page_end_line("")}) {
    const auto page = parse_blob_page(body);
    ASSERT_FALSE(page.ok()) << body;
    EXPECT_EQ(page.error().code, Errc::kPeerFailed) << body;
  }
}

TEST(BlobsQuery, RoundTripsAndBoundsTheLimit) {
  const auto parsed =
      parse_blobs_query(split_target(blobs_target("00ab.0000000000000001", 7)).query);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->after, "00ab.0000000000000001");
  EXPECT_EQ(parsed->limit, 7U);
  const auto start = parse_blobs_query(split_target(blobs_target("", kMaxBlobPage)).query);
  ASSERT_TRUE(start.ok()) << start.error().message;
  EXPECT_EQ(start->after, "");
  EXPECT_EQ(start->limit, kMaxBlobPage);
  const auto defaults = parse_blobs_query("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->limit, kDefaultBlobPage);
  for (const auto* query : {"limit=0", "limit=10001", "limit=-1", "limit=x", "limit="}) {
    const auto refused = parse_blobs_query(query);
    ASSERT_FALSE(refused.ok()) << query;
    EXPECT_EQ(refused.error().code, Errc::kBadInput) << query;
  }
}

TEST(AdminVersion, VerifyAndMarkerTargetsCarryTheVersion) {
  for (const auto& target : {verify_target("a/b c", 42), marker_target("a/b c", 42)}) {
    const auto version = parse_admin_version(split_target(target).query);
    ASSERT_TRUE(version.ok()) << target;
    EXPECT_EQ(*version, 42U);
  }
  EXPECT_FALSE(parse_admin_version("").ok());
  EXPECT_FALSE(parse_admin_version("version=0").ok());
  EXPECT_FALSE(parse_admin_version("version=abc").ok());
}

TEST(CopyCall, RoundTripsAndNeedsBothParameters) {
  const CopyCall call{"k/1", 9, parse_base_url("http://a:1").value()};
  const auto target = copy_target(call);
  const auto parsed = parse_copy("k/1", split_target(target).query);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->version, 9U);
  EXPECT_EQ(parsed->from, call.from);
  EXPECT_FALSE(parse_copy("k", "version=9").ok());
  EXPECT_FALSE(parse_copy("k", "from=http%3A%2F%2Fa%3A1").ok());
  EXPECT_FALSE(parse_copy("k", "version=9&from=nope").ok());
}

}  // namespace
}  // namespace kalavara::internal
