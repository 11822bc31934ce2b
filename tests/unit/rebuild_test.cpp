// The rebuild's decision per key: versions alone decide, a marker on top
// means deleted, disagreeing copies of one version go to the majority.
#include "master/rebuild.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

const std::string kA = "http://a:1";
const std::string kB = "http://b:1";
const std::string kC = "http://c:1";
const std::vector<std::string> kOrder{kA, kB, kC};

ListedCopy value(const std::string& volume, std::uint64_t version, char checksum = 'a',
                 std::uint64_t size = 10) {
  return {volume, version, false, size, std::string(32, checksum)};
}
ListedCopy marker(const std::string& volume, std::uint64_t version) {
  return {volume, version, true, 0, ""};
}

TEST(DecideKey, TheNewestValueWinsOnEveryVolumeHoldingIt) {
  const auto decision =
      decide_key({value(kC, 9), value(kA, 5), value(kA, 9), marker(kB, 3), value(kB, 7)}, kOrder);
  ASSERT_TRUE(decision.record.has_value());
  EXPECT_FALSE(decision.deleted);
  EXPECT_TRUE(decision.record->committed());
  EXPECT_EQ(decision.record->version, 9U);
  EXPECT_EQ(decision.record->size, 10U);
  EXPECT_EQ(decision.record->checksum, std::string(32, 'a'));
  EXPECT_EQ(decision.record->volumes, (std::vector<std::string>{kA, kC})) << "in -v order";
  EXPECT_FALSE(decision.record->previous.has_value());
  // The older values are stale; the old marker is not a copy to remove.
  EXPECT_EQ(decision.stale, (std::vector<ListedCopy>{value(kA, 5), value(kB, 7)}));
  EXPECT_TRUE(decision.disagreeing.empty());
}

TEST(DecideKey, AMarkerAboveEveryValueMeansTheKeyWasDeleted) {
  const auto decision = decide_key({value(kA, 5), marker(kB, 8), value(kC, 7)}, kOrder);
  EXPECT_FALSE(decision.record.has_value());
  EXPECT_TRUE(decision.deleted);
  EXPECT_EQ(decision.marker_version, 8U);
  EXPECT_EQ(decision.stale, (std::vector<ListedCopy>{value(kA, 5), value(kC, 7)}));
}

TEST(DecideKey, AMarkerAloneIsADeletedKeyWithNothingStale) {
  const auto decision = decide_key({marker(kA, 8), marker(kB, 8)}, kOrder);
  EXPECT_TRUE(decision.deleted);
  EXPECT_TRUE(decision.stale.empty());
}

TEST(DecideKey, AValueAboveTheMarkerWasWrittenAfterTheDelete) {
  const auto decision = decide_key({value(kA, 5), marker(kB, 8), value(kC, 9)}, kOrder);
  ASSERT_TRUE(decision.record.has_value());
  EXPECT_EQ(decision.record->version, 9U);
  EXPECT_EQ(decision.record->volumes, std::vector<std::string>{kC});
  EXPECT_EQ(decision.stale, std::vector<ListedCopy>{value(kA, 5)});
}

TEST(DecideKey, AMarkerTiedWithAValueStillMeansDeleted) {
  const auto decision = decide_key({value(kA, 8), marker(kB, 8)}, kOrder);
  EXPECT_TRUE(decision.deleted);
  EXPECT_EQ(decision.stale, std::vector<ListedCopy>{value(kA, 8)});
}

TEST(DecideKey, CopiesThatDisagreeGoToTheChecksumMostHold) {
  const auto decision =
      decide_key({value(kA, 9, 'b', 4), value(kB, 9, 'c', 5), value(kC, 9, 'c', 5)}, kOrder);
  ASSERT_TRUE(decision.record.has_value());
  EXPECT_EQ(decision.record->checksum, std::string(32, 'c'));
  EXPECT_EQ(decision.record->size, 5U);
  EXPECT_EQ(decision.record->volumes, (std::vector<std::string>{kB, kC}));
  EXPECT_EQ(decision.disagreeing, std::vector<ListedCopy>{value(kA, 9, 'b', 4)});
  EXPECT_TRUE(decision.stale.empty()) << "a disagreeing copy is kept, not removed";
}

TEST(DecideKey, ATieGoesToTheLowestChecksumWhateverTheOrder) {
  for (const auto& copies : {std::vector<ListedCopy>{value(kA, 9, 'e'), value(kB, 9, 'd')},
                             std::vector<ListedCopy>{value(kB, 9, 'd'), value(kA, 9, 'e')}}) {
    const auto decision = decide_key(copies, kOrder);
    ASSERT_TRUE(decision.record.has_value());
    EXPECT_EQ(decision.record->checksum, std::string(32, 'd'));
    EXPECT_EQ(decision.record->volumes, std::vector<std::string>{kB});
  }
}

TEST(DecideKey, VolumesNotNamedComeLastByName) {
  const auto decision =
      decide_key({value("http://z:1", 9), value("http://y:1", 9), value(kB, 9)}, kOrder);
  ASSERT_TRUE(decision.record.has_value());
  EXPECT_EQ(decision.record->volumes, (std::vector<std::string>{kB, "http://y:1", "http://z:1"}));
}

TEST(DecideKey, NothingListedIsNothingDecided) {
  const auto decision = decide_key({}, kOrder);
  EXPECT_FALSE(decision.record.has_value());
  EXPECT_FALSE(decision.deleted);
}

}  // namespace
}  // namespace kalavara
