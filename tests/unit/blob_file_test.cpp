#include "volume/blob_file.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

TEST(BlobHeader, RoundTripsKeyAndVersion) {
  for (const std::string& key :
       {std::string("k"), std::string("a/../b \xC3\xA9"), std::string(kMaxKeyBytes, 'x')}) {
    const auto bytes = encode_blob_header(key, 7) + "value bytes";
    auto header = decode_blob_header(bytes);
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->key, key);
    EXPECT_EQ(header->version, 7U);
    EXPECT_EQ(header->length, kBlobFixedHeaderBytes + key.size());
    EXPECT_EQ(bytes.substr(header->length), "value bytes");
  }
}

TEST(BlobHeader, CarriesTheChecksumInFormat2) {
  Checksum checksum{};
  for (std::size_t i = 0; i < checksum.size(); ++i) checksum[i] = static_cast<std::uint8_t>(i * 17);
  auto header = decode_blob_header(encode_blob_header("k", 0, checksum));
  ASSERT_TRUE(header.ok());
  ASSERT_TRUE(header->checksum.has_value());
  EXPECT_EQ(*header->checksum, checksum);
  // The writer fills the checksum in place, at its fixed offset.
  auto bytes = encode_blob_header("k", 0);
  bytes[kBlobChecksumOffset] = '\x42';
  EXPECT_EQ((*decode_blob_header(bytes)->checksum)[0], 0x42);
}

TEST(BlobHeader, StillReadsFormat1) {
  // Format 1: the 24-byte fixed header without a checksum, then the key.
  std::string v1 = std::string("KLVB") + '\x01' + '\0' + '\x1b' + '\0' + '\x03' + '\0' +
                   std::string(6, '\0') + std::string(8, '\0') + "key" + "value";
  auto header = decode_blob_header(v1);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->key, "key");
  EXPECT_EQ(header->length, 27);
  EXPECT_FALSE(header->checksum.has_value());
}

TEST(BlobHeader, RejectsCorruptHeaders) {
  const auto good = encode_blob_header("key", 0);
  EXPECT_FALSE(decode_blob_header(good.substr(0, good.size() - 1)).ok());
  EXPECT_FALSE(decode_blob_header("").ok());
  auto bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_FALSE(decode_blob_header(bad_magic).ok());
  auto bad_format = good;
  bad_format[4] = 9;
  EXPECT_FALSE(decode_blob_header(bad_format).ok());
  auto zero_key = good;
  zero_key[8] = 0;
  EXPECT_FALSE(decode_blob_header(zero_key).ok());
}

TEST(BlobPath, IsTwoHexLevelsThenTheDigestAndVersion) {
  const auto digest = digest_of("key");
  const auto hex = digest.hex();
  ASSERT_EQ(hex.size(), 64U);
  const auto directory = "blobs/" + hex.substr(0, 2) + "/" + hex.substr(2, 2);
  EXPECT_EQ(blob_directory(digest), directory);
  EXPECT_EQ(blob_relative_path(digest, 0x18bcdef0123ULL),
            directory + "/" + hex + ".0000018bcdef0123");
  // Keys that try to escape still map to a digest under blobs/.
  EXPECT_EQ(blob_relative_path(digest_of("../../etc/passwd"), 1).find(".."), std::string::npos);
}

TEST(BlobPath, InTheBlobsFolderIsTheSamePathWithoutIt) {
  const auto digest = digest_of("key");
  const auto hex = digest.hex();
  const auto directory = hex.substr(0, 2) + "/" + hex.substr(2, 2);
  EXPECT_EQ(blob_path_in_blobs_directory(digest, 0), directory + "/" + hex + ".0000000000000000");
  EXPECT_EQ(blob_path_in_blobs_directory(digest, ~0ULL),
            directory + "/" + hex + ".ffffffffffffffff");
  EXPECT_EQ(
      std::string(kBlobsDirectory) + "/" + blob_path_in_blobs_directory(digest, 0x18bcdef0123),
      blob_relative_path(digest, 0x18bcdef0123));
}

TEST(BlobPath, FileNamesGiveBackTheirVersion) {
  const auto digest = digest_of("key");
  const auto hex = digest.hex();
  for (std::uint64_t version : {0ULL, 1ULL, 0x18bcdef0123ULL, ~0ULL}) {
    const auto path = blob_relative_path(digest, version);
    const auto name = path.substr(path.rfind('/') + 1);
    EXPECT_EQ(blob_file_version(name, hex), version);
  }
  EXPECT_FALSE(blob_file_version(hex, hex).has_value());
  EXPECT_FALSE(blob_file_version(hex + ".000000000000000g", hex).has_value());
  EXPECT_FALSE(blob_file_version(hex + ".00000000000000001", hex).has_value());
  EXPECT_FALSE(blob_file_version(digest_of("other").hex() + ".0000000000000001", hex).has_value());
}

TEST(KeyDigest, MatchesKnownSha256) {
  // SHA-256("abc") from FIPS 180-2, appendix B.1.
  EXPECT_EQ(digest_of("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest_of("abc").prefix64(), 0xba7816bf8f01cfeaULL);
}

}  // namespace
}  // namespace kalavara
