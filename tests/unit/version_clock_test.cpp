#include "master/version_clock.hpp"

#include <gtest/gtest.h>

#include <map>

namespace kalavara {
namespace {

// An in-memory IndexStore holding only what the clock uses.
class FloorOnlyStore final : public IndexStore {
 public:
  std::uint64_t floor = 0;
  int floor_writes = 0;
  bool fail_writes = false;

  Result<std::uint64_t> version_floor() override { return floor; }
  Status set_version_floor(std::uint64_t value) override {
    if (fail_writes) return Error{Errc::kInternal, "disk gone"};
    ++floor_writes;
    floor = value;
    return {};
  }
  Result<std::optional<IndexRecord>> get(std::string_view) override {
    return std::optional<IndexRecord>{};
  }
  Status put(std::string_view, const IndexRecord&) override { return {}; }
  Status put_batch(const std::vector<std::pair<std::string, IndexRecord>>&) override { return {}; }
  Status erase_and_queue(std::string_view, const std::vector<PendingDelete>&) override {
    return {};
  }
  Status queue_delete(const PendingDelete&) override { return {}; }
  Result<std::vector<PendingDelete>> pending_deletes(std::string_view, std::size_t) override {
    return std::vector<PendingDelete>{};
  }
  Status clear_pending(const PendingDelete&) override { return {}; }
  Result<KeyPage> list(std::string_view, std::string_view, std::size_t) override {
    return KeyPage{};
  }
  Result<std::vector<std::string>> volumes() override { return std::vector<std::string>{}; }
  Status add_volume(std::string_view) override { return {}; }
};

TEST(VersionClock, IssuesStrictlyIncreasingVersionsAndPersistsAheadRarely) {
  FloorOnlyStore store;
  auto clock = VersionClock::open(store);
  ASSERT_TRUE(clock.ok());
  std::uint64_t last = 0;
  for (int i = 0; i < 10000; ++i) {
    const auto version = (*clock)->next();
    ASSERT_TRUE(version.ok());
    ASSERT_GT(*version, last);
    ASSERT_LT(*version, store.floor) << "a version at or above the stored floor";
    last = *version;
  }
  EXPECT_LE(store.floor_writes, 2) << "the floor moves once per lead time, not per version";
}

TEST(VersionClock, StaysAboveEverythingIssuedBeforeARestartEvenIfTheClockWentBack) {
  FloorOnlyStore store;
  // A floor far in the future, as if the clock had run fast before a restart.
  store.floor = ~0ULL / 2;
  auto clock = VersionClock::open(store);
  ASSERT_TRUE(clock.ok());
  const auto version = (*clock)->next();
  ASSERT_TRUE(version.ok());
  EXPECT_GT(*version, ~0ULL / 2);
}

TEST(VersionClock, IssuesNothingWhenTheFloorCannotBeStored) {
  FloorOnlyStore store;
  store.fail_writes = true;
  auto clock = VersionClock::open(store);
  ASSERT_TRUE(clock.ok());
  auto version = (*clock)->next();
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().code, Errc::kInternal);
}

}  // namespace
}  // namespace kalavara
