#include "common/key_codec.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

TEST(SplitTarget, SeparatesPathAndQuery) {
  auto target = split_target("/store/a/b?x=1&y");
  EXPECT_EQ(target.path, "/store/a/b");
  EXPECT_EQ(target.query, "x=1&y");
  target = split_target("/store/plain");
  EXPECT_EQ(target.path, "/store/plain");
  EXPECT_TRUE(target.query.empty());
}

TEST(DecodeKey, DecodesEscapesAndKeepsPlusAndSlashes) {
  EXPECT_EQ(decode_key("a%20b+c/d").value(), "a b+c/d");
  EXPECT_EQ(decode_key("%C3%A9t%C3%A9").value(), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(decode_key("%2e%2E/x").value(), "../x");
  EXPECT_EQ(decode_key("%2F").value(), "/");
}

TEST(DecodeKey, RejectsBadKeysWith400) {
  for (const auto* bad : {"", "%00", "a%00b", "%zz", "%", "%4", "abc%g1"}) {
    auto key = decode_key(bad);
    ASSERT_FALSE(key.ok()) << bad;
    EXPECT_EQ(key.error().code, Errc::kBadInput) << bad;
    EXPECT_EQ(key.error().message.find('\n'), std::string::npos);
  }
}

TEST(DecodeKey, EnforcesTheLengthLimitAfterDecoding) {
  EXPECT_TRUE(decode_key(std::string(kMaxKeyBytes, 'k')).ok());
  EXPECT_FALSE(decode_key(std::string(kMaxKeyBytes + 1, 'k')).ok());
  std::string encoded;
  for (std::size_t i = 0; i < kMaxKeyBytes; ++i) encoded += "%41";
  EXPECT_EQ(decode_key(encoded).value(), std::string(kMaxKeyBytes, 'A'));
}

TEST(EncodeKeyPath, RoundTripsEveryByteExceptNul) {
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(decode_key(encode_key_path(all)).value(), all);
}

TEST(EncodeKeyPath, EscapesDotSegmentsOnly) {
  EXPECT_EQ(encode_key_path("a/../b/./c"), "a/%2E%2E/b/%2E/c");
  EXPECT_EQ(encode_key_path(".."), "%2E%2E");
  EXPECT_EQ(encode_key_path("file.txt/..x"), "file.txt/..x");
  EXPECT_EQ(encode_key_path("a b?#%"), "a%20b%3F%23%25");
  EXPECT_EQ(encode_key_path("dir/"), "dir/");
}

TEST(QueryParam, FindsAndDecodes) {
  EXPECT_EQ(query_param("a=1&master=http%3A%2F%2Fh%3A1&b", "master").value(), "http://h:1");
  EXPECT_EQ(query_param("a=1&b", "b").value(), "");
  EXPECT_FALSE(query_param("a=1", "master").has_value());
  EXPECT_FALSE(query_param("master=%zz", "master").has_value());
  EXPECT_FALSE(query_param("", "x").has_value());
}

TEST(QueryParam, TheCheckedOneRefusesAValueThatIsNotPercentEncoding) {
  EXPECT_EQ(checked_query_param("a=1&b=%41", "b").value(), std::optional<std::string>("A"));
  EXPECT_EQ(checked_query_param("a=1", "b").value(), std::nullopt);
  const auto bad = checked_query_param("a=1&b=%zz", "b");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kBadInput);
  EXPECT_EQ(bad.error().message, "b= is not valid percent-encoding");
  // Only the first pair of that name counts, as for query_param().
  EXPECT_EQ(checked_query_param("b=1&b=%zz", "b").value(), std::optional<std::string>("1"));
}

TEST(PercentEncodeComponent, EscapesAllButUnreserved) {
  EXPECT_EQ(percent_encode_component("http://h:1/a b"), "http%3A%2F%2Fh%3A1%2Fa%20b");
  EXPECT_EQ(percent_decode(percent_encode_component("x/y?z")).value(), "x/y?z");
}

}  // namespace
}  // namespace kalavara

namespace kalavara {
namespace {

TEST(KeyInTarget, DecodesThePathAfterThePrefixAndDropsTheQuery) {
  EXPECT_EQ(key_in_target("/store/a%20b/c?version=3", "/store/").value(), "a b/c");
  EXPECT_EQ(key_in_target("/internal/commit/k?volumes=x", "/internal/commit/").value(), "k");
  EXPECT_EQ(key_in_target("/store/?list", "/store/").error().code, Errc::kBadInput);
}

}  // namespace
}  // namespace kalavara
