#include "common/checksum.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>

#include "volume/content_md5.hpp"

namespace kalavara {
namespace {

std::string random_bytes(std::size_t n) {
  std::mt19937 generator(7);
  std::string bytes(n, '\0');
  for (auto& c : bytes) c = static_cast<char>(generator());
  return bytes;
}

TEST(ValueHasher, StreamingEqualsOneShotWhateverTheChunking) {
  const auto data = random_bytes(300'001);
  XXH128_canonical_t expected;
  XXH128_canonicalFromHash(&expected, XXH3_128bits(data.data(), data.size()));
  for (std::size_t chunk : {1UL, 7UL, 4096UL, 65536UL, 300'001UL}) {
    ValueHasher hasher;
    for (std::size_t at = 0; at < data.size(); at += chunk) {
      hasher.update(std::string_view(data).substr(at, chunk));
    }
    const auto checksum = hasher.finish();
    EXPECT_EQ(std::memcmp(checksum.data(), expected.digest, checksum.size()), 0) << chunk;
  }
}

TEST(ValueHasher, DistinguishesValuesAndFormatsETags) {
  ValueHasher a, b;
  a.update(std::string_view("value-1"));
  b.update(std::string_view("value-2"));
  EXPECT_NE(a.finish(), b.finish());
  const auto hex = checksum_hex(a.finish());
  EXPECT_EQ(hex.size(), 32U);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(etag_for(hex), "\"" + hex + "\"");
}

TEST(ContentMd5, ParsesRfc1864Values) {
  // MD5("") = d41d8cd98f00b204e9800998ecf8427e (RFC 1321, appendix A.5).
  auto digest = parse_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==");
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ((*digest)[0], 0xd4);
  EXPECT_EQ((*digest)[15], 0x7e);
  Md5 md5;
  EXPECT_EQ(md5.finish(), *digest);
}

TEST(ContentMd5, RejectsWhatIsNotBase64Of16Bytes) {
  for (const auto* bad : {"", "zz", "1B2M2Y8AsgTpgAmY7PhCfg", "1B2M2Y8AsgTpgAmY7PhCfg=",
                          "1B2M2Y8AsgTpgAmY7PhC!g==", "1B2M2Y8AsgTpgAmY7PhCfgAAAAA="}) {
    auto digest = parse_content_md5(bad);
    ASSERT_FALSE(digest.ok()) << bad;
    EXPECT_EQ(digest.error().code, Errc::kBadInput);
  }
}

TEST(ContentMd5, MatchesAKnownDigestOfData) {
  // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321, appendix A.5).
  Md5 md5;
  md5.update(std::string_view("a"));
  md5.update(std::string_view("bc"));
  EXPECT_EQ(md5.finish(), parse_content_md5("kAFQmDzST7DWlj99KOF/cg==").value());
}

}  // namespace
}  // namespace kalavara
