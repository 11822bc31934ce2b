// RFC 9110 section 14: every form of a single byte range, and the malformed ones.
#include "volume/byte_range.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

using Kind = RangeDecision::Kind;

void expect_partial(std::string_view header, std::uint64_t size, std::uint64_t first,
                    std::uint64_t last) {
  const auto d = decide_range(header, size);
  EXPECT_EQ(d.kind, Kind::kPartial) << header;
  EXPECT_EQ(d.first, first) << header;
  EXPECT_EQ(d.last, last) << header;
}

TEST(DecideRange, ServesTheRfcExamples) {
  // RFC 9110 14.1.2, for a 10000-byte representation.
  expect_partial("bytes=0-499", 10000, 0, 499);
  expect_partial("bytes=500-999", 10000, 500, 999);
  expect_partial("bytes=-500", 10000, 9500, 9999);
  expect_partial("bytes=9500-", 10000, 9500, 9999);
  expect_partial("bytes=0-0", 10000, 0, 0);
  expect_partial("bytes=-1", 10000, 9999, 9999);
}

TEST(DecideRange, ClampsTheEndAndLongSuffixes) {
  expect_partial("bytes=5-100", 10, 5, 9);
  expect_partial("bytes=-100", 10, 0, 9);
  expect_partial("bytes=9-", 10, 9, 9);
  expect_partial("bytes=0-99999999999999999999999", 10, 0, 9);
  expect_partial("Bytes=1-2", 10, 1, 2);
  expect_partial(" bytes= 1-2 ", 10, 1, 2);
}

TEST(DecideRange, RefusesUnsatisfiableRanges) {
  for (const auto* header :
       {"bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(decide_range(header, 10).kind, Kind::kUnsatisfiable) << header;
  }
  for (const auto* header : {"bytes=0-", "bytes=-1", "bytes=0-0"}) {
    EXPECT_EQ(decide_range(header, 0).kind, Kind::kUnsatisfiable) << header;
  }
}

TEST(DecideRange, IgnoresInvalidSyntaxAndOtherUnits) {
  for (const auto* header :
       {"", "bytes", "bytes=", "bytes=-", "bytes=abc", "bytes=5-2", "bytes=1-2-3", "bytes=a-5",
        "bytes=5-b", "bytes=+1-2", "bytes=0x1-2", "items=0-5", "bytes 0-5", "bytes=1 -2"}) {
    EXPECT_EQ(decide_range(header, 10).kind, Kind::kWhole) << header;
  }
}

TEST(DecideRange, AnswersSeveralRangesWithTheWholeValue) {
  EXPECT_EQ(decide_range("bytes=0-1,5-6", 10).kind, Kind::kWhole);
  EXPECT_EQ(decide_range("bytes=0-1, -2", 10).kind, Kind::kWhole);
}

}  // namespace
}  // namespace kalavara
