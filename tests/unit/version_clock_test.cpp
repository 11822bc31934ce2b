#include "master/version_clock.hpp"

#include <gtest/gtest.h>

#include <set>

#include "memory_index_store.hpp"

namespace kalavara {
namespace {

using testing::MemoryIndexStore;
using testing::run;

std::unique_ptr<VersionClock> open_clock(MemoryIndexStore& store, VersionClock::Now now) {
  auto clock = run(VersionClock::open(store, std::move(now)));
  EXPECT_TRUE(clock.ok());
  return std::move(clock).value();
}

TEST(VersionClock, IssuesStrictlyIncreasingVersionsBelowTheStoredFloor) {
  MemoryIndexStore store;
  std::uint64_t now = 1'000'000;
  auto clock = open_clock(store, [&] { return now; });
  std::uint64_t last = 0;
  for (int i = 0; i < 30000; ++i) {
    if (i % 2 == 0) now += 1000;  // a clock that moves on, and one that stands still
    const auto version = run(clock->next());
    ASSERT_TRUE(version.ok());
    ASSERT_GT(*version, last);
    ASSERT_LT(*version, store.floor) << "a version at or above the stored floor";
    ASSERT_LE(clock->floor(), store.floor);
    last = *version;
  }
  // 15 s of clock: the floor (10 s ahead) is raised ahead of use a few
  // times, not per version.
  EXPECT_GE(store.floor_writes, 2);
  EXPECT_LE(store.floor_writes, 6);
}

TEST(VersionClock, AVersionIssuedAfterAFloorWriteFailureIsStillBelowTheFloor) {
  MemoryIndexStore store;
  std::uint64_t now = 1'000'000;
  auto clock = open_clock(store, [&] { return now; });
  ASSERT_TRUE(run(clock->next()).ok());
  store.fail_writes = true;
  // Within the lead the clock goes on issuing without a write...
  now += VersionClock::kFloorLeadMicros / 4;
  ASSERT_TRUE(run(clock->next()).ok());
  // ...but at the floor it stops.
  now += VersionClock::kFloorLeadMicros;
  const auto refused = run(clock->next());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kInternal);
  store.fail_writes = false;
  const auto again = run(clock->next());
  ASSERT_TRUE(again.ok());
  EXPECT_LT(*again, store.floor);
}

TEST(VersionClock, StaysAboveEverythingIssuedBeforeARestartEvenIfTheClockWentBack) {
  MemoryIndexStore store;
  // A floor far in the future, as if the clock had run fast before a restart.
  store.floor = ~0ULL / 2;
  auto clock = open_clock(store, [] { return std::uint64_t{5}; });
  const auto version = run(clock->next());
  ASSERT_TRUE(version.ok());
  EXPECT_GT(*version, ~0ULL / 2);
  EXPECT_LT(*version, store.floor);
}

TEST(VersionClock, IssuesNothingWhenTheFloorCannotBeStored) {
  MemoryIndexStore store;
  store.fail_writes = true;
  auto clock = open_clock(store, [] { return std::uint64_t{1'000'000}; });
  auto version = run(clock->next());
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().code, Errc::kInternal);
}

TEST(VersionClock, MastersWithTheirOwnSlotsNeverIssueTheSameVersion) {
  MemoryIndexStore store;
  const std::uint64_t now = 1'000'000;  // the same instant on both, standing still
  auto first = open_clock(store, [&] { return now; });
  auto second = open_clock(store, [&] { return now; });
  first->set_slot(VersionClock::Slot{3, 16});
  second->set_slot(VersionClock::Slot{11, 16});
  std::set<std::uint64_t> issued;
  for (int i = 0; i < 2000; ++i) {
    for (auto* clock : {first.get(), second.get()}) {
      const auto version = run(clock->next());
      ASSERT_TRUE(version.ok());
      ASSERT_TRUE(issued.insert(*version).second) << "version " << *version << " issued twice";
      EXPECT_EQ(*version % 16, clock == first.get() ? 3U : 11U);
    }
  }
}

TEST(VersionClock, AVersionComesAfterTheGivenOneWhateverTheClockSays) {
  MemoryIndexStore store;
  // This master's clock is a minute behind the one that issued `theirs`.
  const std::uint64_t now = 1'000'000'000;
  const std::uint64_t theirs = now + 60'000'000;
  auto clock = open_clock(store, [&] { return now; });
  clock->set_slot(VersionClock::Slot{1, 16});
  const auto version = run(clock->next(theirs));
  ASSERT_TRUE(version.ok());
  EXPECT_GT(*version, theirs);
  EXPECT_LT(*version, store.floor);
  // And the next, without a version to pass, is still above it.
  const auto after = run(clock->next());
  ASSERT_TRUE(after.ok());
  EXPECT_GT(*after, *version);
}

TEST(VersionClock, IssuesNothingWithoutASlot) {
  MemoryIndexStore store;
  auto clock = open_clock(store, [] { return std::uint64_t{1'000'000}; });
  clock->set_slot(std::nullopt);
  const auto refused = run(clock->next());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kUnavailable);
  clock->set_slot(VersionClock::Slot{0, 1});
  EXPECT_TRUE(run(clock->next()).ok());
}

TEST(VersionClock, AnotherMastersVersionBelowTheSharedFloorMayHaveBeenIssued) {
  MemoryIndexStore store;
  std::uint64_t now = 1'000'000;
  auto mine = open_clock(store, [&] { return now; });
  auto theirs = open_clock(store, [&] { return now + 30'000'000; });  // 30 s ahead
  const auto their_version = run(theirs->next());
  ASSERT_TRUE(their_version.ok());
  ASSERT_GT(*their_version, mine->last_issued());
  const auto known = run(mine->may_have_issued(*their_version));
  ASSERT_TRUE(known.ok());
  EXPECT_TRUE(*known);
  // Far above the stored floor, no master can have issued it.
  const auto forged = run(mine->may_have_issued(store.floor + 1'000'000'000));
  ASSERT_TRUE(forged.ok());
  EXPECT_FALSE(*forged);
}

}  // namespace
}  // namespace kalavara
