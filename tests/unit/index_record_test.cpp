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

TEST(IndexRecord, RoundTrips) {
  EXPECT_EQ(decode_record(encode_record(sample())).value(), sample());
  IndexRecord empty;
  EXPECT_EQ(decode_record(encode_record(empty)).value(), empty);
}

TEST(IndexRecord, StartsWithItsFormatByte) {
  EXPECT_EQ(static_cast<std::uint8_t>(encode_record(sample())[0]), kIndexRecordFormat);
}

TEST(IndexRecord, RejectsEveryTruncation) {
  const auto bytes = encode_record(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto record = decode_record(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(record.ok()) << n;
  }
}

TEST(IndexRecord, RejectsUnknownFormatsAndTrailingBytes) {
  auto bytes = encode_record(sample());
  auto other_format = bytes;
  other_format[0] = 2;
  EXPECT_FALSE(decode_record(other_format).ok());
  EXPECT_FALSE(decode_record(bytes + "x").ok());
  // A hostile volume count must not allocate wildly.
  std::string huge = {1, 0, 0, 0, 0, '\xff', '\xff', '\xff', '\xff', '\x0f'};
  EXPECT_FALSE(decode_record(huge).ok());
}

}  // namespace
}  // namespace kalavara
