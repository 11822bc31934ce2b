#include "master/placement.hpp"

#include <gtest/gtest.h>

#include <map>

namespace kalavara {
namespace {

std::vector<std::string> volume_urls(int n) {
  std::vector<std::string> urls;
  for (int i = 0; i < n; ++i) urls.push_back("http://10.0.0." + std::to_string(i + 1) + ":6001");
  return urls;
}

std::string first_choice(const std::string& key, const std::vector<std::string>& volumes) {
  return volumes[rank_volumes(digest_of(key), volumes, 1).front()];
}

TEST(Placement, IsDeterministicAndIndependentOfVolumeOrder) {
  auto volumes = volume_urls(5);
  auto reversed = std::vector<std::string>(volumes.rbegin(), volumes.rend());
  for (int i = 0; i < 200; ++i) {
    const auto key = "key-" + std::to_string(i);
    EXPECT_EQ(first_choice(key, volumes), first_choice(key, reversed));
  }
}

TEST(Placement, SpreadsKeysEvenlyOverEveryVolume) {
  // The original's weighted pick never chose the middle volumes of three.
  for (int n : {2, 3, 5}) {
    auto volumes = volume_urls(n);
    std::map<std::string, int> counts;
    constexpr int kKeys = 30000;
    for (int i = 0; i < kKeys; ++i) ++counts[first_choice("k" + std::to_string(i), volumes)];
    ASSERT_EQ(counts.size(), static_cast<std::size_t>(n));
    for (const auto& [volume, count] : counts) {
      EXPECT_NEAR(count, kKeys / n, kKeys / n * 0.05) << volume << " of " << n;
    }
  }
}

TEST(Placement, AddingAVolumeMovesOnlyKeysToIt) {
  auto before = volume_urls(4);
  auto after = before;
  after.emplace_back("http://10.0.0.99:6001");
  constexpr int kKeys = 20000;
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    const auto key = "k" + std::to_string(i);
    const auto old_home = first_choice(key, before);
    const auto new_home = first_choice(key, after);
    if (old_home != new_home) {
      ++moved;
      EXPECT_EQ(new_home, after.back());
    }
  }
  EXPECT_NEAR(moved, kKeys / 5, kKeys / 5 * 0.1);
}

TEST(Placement, RanksDistinctVolumesAndCapsTheCount) {
  auto volumes = volume_urls(4);
  auto ranked = rank_volumes(digest_of("x"), volumes, 3);
  ASSERT_EQ(ranked.size(), 3U);
  EXPECT_NE(ranked[0], ranked[1]);
  EXPECT_NE(ranked[1], ranked[2]);
  EXPECT_NE(ranked[0], ranked[2]);
  EXPECT_EQ(ranked[0], rank_volumes(digest_of("x"), volumes, 1).front());
  EXPECT_EQ(rank_volumes(digest_of("x"), volumes, 10).size(), 4U);
  EXPECT_TRUE(rank_volumes(digest_of("x"), {}, 1).empty());
}

}  // namespace
}  // namespace kalavara
