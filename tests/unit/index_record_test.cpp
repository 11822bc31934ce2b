#include "master/index_record.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

IndexRecord sample() {
  IndexRecord record;
  record.volumes = {"http://127.0.0.1:6001", "http://127.0.0.1:6002"};
  record.size = 300'000'000'000ULL;
  record.version = 42;
  record.checksum = std::string("\x00\xff\x10", 3);
  return record;
}

IndexRecord overwritten() {
  auto record = sample();
  record.previous = IndexRecord::Previous{41, std::string(32, 'f'), {"http://127.0.0.1:6003"}};
  return record;
}

IndexRecord tombstone() {
  IndexRecord record;
  record.state = IndexRecord::State::kTombstone;
  record.version = 43;
  record.volumes = {"http://127.0.0.1:6002"};
  record.markers = {"http://127.0.0.1:6001"};
  return record;
}

TEST(IndexRecord, RoundTrips) {
  for (const auto& record : {sample(), overwritten(), tombstone(), IndexRecord{}}) {
    EXPECT_EQ(decode_record(encode_record(record)).value(), record);
  }
}

TEST(IndexRecord, ReadsFormatOneRecords) {
  // As the first builds wrote them: format, state, size, version, checksum,
  // volumes.
  const std::string format1 = {1, 0, 5, 42, 2, 'a', 'b', 1, 3, 'u', 'r', 'l'};
  const auto record = decode_record(format1);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_TRUE(record->committed());
  EXPECT_EQ(record->size, 5U);
  EXPECT_EQ(record->version, 42U);
  EXPECT_EQ(record->checksum, "ab");
  EXPECT_EQ(record->volumes, std::vector<std::string>{"url"});
  EXPECT_FALSE(record->previous.has_value());
  EXPECT_TRUE(encoded_record_is_committed(format1));
}

TEST(IndexRecord, TellsTombstonesWithoutDecoding) {
  EXPECT_TRUE(encoded_record_is_committed(encode_record(overwritten())));
  EXPECT_FALSE(encoded_record_is_committed(encode_record(tombstone())));
  EXPECT_FALSE(encoded_record_is_committed(""));
}

TEST(IndexRecord, StartsWithItsFormatByte) {
  EXPECT_EQ(static_cast<std::uint8_t>(encode_record(sample())[0]), kIndexRecordFormat);
}

TEST(IndexRecord, RejectsEveryTruncation) {
  const auto bytes = encode_record(overwritten());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto record = decode_record(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(record.ok()) << n;
  }
}

TEST(IndexRecord, RejectsANumberThatDoesNotFitInSixtyFourBits) {
  // The version as ten varint bytes: the largest 64-bit number, then one
  // with bit 64 set too, which used to be cut to 64 bits without a word
  // (found by tests/fuzz/index_record).
  const std::string max = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
  // Format 2, committed, the version, then size, checksum, volumes, previous
  // and markers all empty.
  const auto with_version = [](std::string_view version) {
    std::string bytes(2, '\0');
    bytes[0] = 2;
    bytes.append(version);
    bytes.append(5, '\0');
    return bytes;
  };
  const auto record = decode_record(with_version(max));
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->version, ~std::uint64_t{0});
  for (const char tenth : {'\x02', '\x03', '\x7f'}) {
    auto too_large = max;
    too_large.back() = tenth;
    EXPECT_FALSE(decode_record(with_version(too_large)).ok()) << int{tenth};
  }
}

TEST(IndexRecord, RejectsUnknownFormatsAndTrailingBytes) {
  auto bytes = encode_record(overwritten());
  auto other_format = bytes;
  other_format[0] = 3;
  EXPECT_FALSE(decode_record(other_format).ok());
  EXPECT_FALSE(decode_record(bytes + "x").ok());
  auto unknown_state = bytes;
  unknown_state[1] = 2;
  EXPECT_FALSE(decode_record(unknown_state).ok());
  // A hostile volume count must not allocate wildly.
  std::string huge = {1, 0, 0, 0, 0, '\xff', '\xff', '\xff', '\xff', '\x0f'};
  EXPECT_FALSE(decode_record(huge).ok());
}

}  // namespace
}  // namespace kalavara
