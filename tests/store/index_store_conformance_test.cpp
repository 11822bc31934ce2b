// The IndexStore contract (master/index_store.hpp), run over every store
// the master can use: compare-and-put, queue merges and clears, time-ordered
// queue scans, listing and scanning in byte order, floors, volumes and jobs,
// concurrent writers. What only one store has (RocksDB's reopen, its
// offline tools, its checkpoint) is tested beside it, in tests/unit/.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/blocking.hpp"
#include "master/index_store.hpp"
#include "store/store_factories.hpp"

namespace kalavara {
namespace {

using testing::OpenedStore;
using testing::StoreFactory;

constexpr std::uint64_t kForever = std::numeric_limits<std::uint64_t>::max();

IndexRecord committed(std::uint64_t version) {
  IndexRecord record;
  record.version = version;
  record.size = 3;
  record.checksum = std::string(32, 'a');
  record.volumes = {"http://a:1"};
  return record;
}

IndexRecord tombstone(std::uint64_t version) {
  IndexRecord record;
  record.state = IndexRecord::State::kTombstone;
  record.version = version;
  record.volumes = {"http://a:1"};
  return record;
}

class IndexStoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  static void TearDownTestSuite() { testing::run_after_suite_hooks(); }

  void SetUp() override {
    std::string skip;
    opened_ = GetParam().open(io_, skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(opened_) << "the " << GetParam().name << " store did not open";
    store_ = &opened_->store();
  }
  void TearDown() override { opened_.reset(); }

  template <class T>
  T run(boost::asio::awaitable<T> task) {
    return run_to_completion(io_, std::move(task));
  }
  template <class T>
  T value_of(boost::asio::awaitable<Result<T>> task) {
    auto result = run(std::move(task));
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? std::move(result).value() : T{};
  }
  bool apply(const KeyMutation& mutation) {
    auto applied = run(store_->apply(mutation));
    EXPECT_TRUE(applied.ok()) << applied.error().message;
    return applied.ok() && *applied;
  }
  RecordRead read(std::string_view key) { return value_of(store_->read(key)); }
  // Creates `key` with `record` (it must be absent).
  void create(const std::string& key, const IndexRecord& record) {
    KeyMutation m;
    m.key = key;
    m.expected = read(key);
    ASSERT_FALSE(m.expected->record.has_value()) << key;
    m.record = record;
    ASSERT_TRUE(apply(m)) << key;
  }
  std::vector<PendingRemoval> due_removals(std::string_view volume, std::uint64_t now,
                                           std::size_t limit,
                                           const std::optional<PendingRemoval>& after) {
    return value_of(store_->due_removals(volume, now, limit, after));
  }
  std::vector<PendingCollection> due_collections(std::uint64_t now, std::size_t limit) {
    return value_of(store_->due_collections(now, limit));
  }
  KeyPage list(std::string_view prefix, std::string_view start, std::size_t limit) {
    return value_of(store_->list(prefix, start, limit));
  }
  // Every listed key under `prefix`, page by page of `limit`.
  std::vector<std::string> list_all(std::string_view prefix, std::size_t limit) {
    std::vector<std::string> keys;
    std::string start;
    for (int pages = 0; pages < 1000; ++pages) {
      const auto page = list(prefix, start, limit);
      EXPECT_LE(page.keys.size(), limit);
      keys.insert(keys.end(), page.keys.begin(), page.keys.end());
      if (page.next.empty()) return keys;
      EXPECT_FALSE(page.keys.empty()) << "a page with a next has keys";
      if (!page.keys.empty()) {
        EXPECT_GT(page.next, page.keys.back());
      }
      start = page.next;
    }
    ADD_FAILURE() << "the listing did not end";
    return keys;
  }
  // Every record, page by page of `limit`.
  std::vector<KeyRecord> scan_all(std::size_t limit) {
    std::vector<KeyRecord> out;
    std::string after;
    for (int pages = 0; pages < 1000; ++pages) {
      const auto page = value_of(store_->scan(after, limit));
      EXPECT_LE(page.size(), limit);
      out.insert(out.end(), page.begin(), page.end());
      if (page.size() < limit) return out;
      after = page.back().key;
    }
    ADD_FAILURE() << "the scan did not end";
    return out;
  }

  // Declared first: destroyed after the store, which may hold its sockets.
  boost::asio::io_context io_;
  std::unique_ptr<OpenedStore> opened_;
  IndexStore* store_ = nullptr;
};

TEST_P(IndexStoreConformanceTest, ACompareAndPutAppliesOnlyToTheRecordItRead) {
  KeyMutation create;
  create.key = "k";
  create.expected = read("k");
  ASSERT_FALSE(create.expected->record.has_value());
  create.record = committed(5);
  EXPECT_TRUE(apply(create));
  EXPECT_FALSE(apply(create)) << "the record is no longer absent";
  EXPECT_EQ(read("k").record, committed(5));

  KeyMutation replace;
  replace.key = "k";
  replace.expected = read("k");
  replace.record = committed(6);
  auto stale = replace;
  stale.record = committed(7);
  EXPECT_TRUE(apply(replace));
  EXPECT_FALSE(apply(stale)) << "read before the replace";
  EXPECT_EQ(read("k").record, committed(6));

  KeyMutation erase;
  erase.key = "k";
  erase.expected = read("k");
  EXPECT_TRUE(apply(erase));
  EXPECT_FALSE(read("k").record.has_value());
  auto stale_erase = erase;
  stale_erase.record = committed(8);
  EXPECT_FALSE(apply(stale_erase)) << "read before the erase";
  EXPECT_FALSE(read("k").record.has_value());
}

TEST_P(IndexStoreConformanceTest, ARefusedCompareAndPutWritesNothingOfItsMutation) {
  create("k", committed(5));
  KeyMutation stale;
  stale.key = "k";
  stale.expected = RecordRead{};  // absent: no longer so
  stale.record = committed(9);
  stale.queue = {{"http://a:1", "k", 4, 10}};
  stale.collect = {{"k", 4, 10}};
  stale.raise_absent_floor = 50;
  EXPECT_FALSE(apply(stale));
  EXPECT_EQ(read("k").record, committed(5));
  EXPECT_TRUE(due_removals("http://a:1", kForever, 10, std::nullopt).empty());
  EXPECT_TRUE(due_collections(kForever, 10).empty());
  EXPECT_EQ(read("absent").absent_floor, 0U);
}

TEST_P(IndexStoreConformanceTest, AMutationWithoutACompareAppliesItsQueueChangesAndNotItsRecord) {
  create("k", committed(5));
  KeyMutation replace;
  replace.key = "k";
  replace.expected = read("k");
  replace.record = committed(6);
  ASSERT_TRUE(apply(replace));

  const PendingRemoval removal{"http://a:1", "k", 5, 100};
  const PendingCollection collection{"k", 5, 200};
  KeyMutation queue;
  queue.key = "k";
  queue.record = committed(99);  // ignored: `expected` is unset
  queue.queue = {removal};
  queue.collect = {collection};
  queue.raise_absent_floor = 40;
  EXPECT_TRUE(apply(queue));
  EXPECT_EQ(read("k").record, committed(6)) << "the record is not touched";
  EXPECT_EQ(due_removals("http://a:1", kForever, 10, std::nullopt),
            std::vector<PendingRemoval>{removal});
  EXPECT_EQ(due_collections(kForever, 10), std::vector<PendingCollection>{collection});
  EXPECT_EQ(read("absent").absent_floor, 40U);

  KeyMutation clear;
  clear.key = "k";
  clear.cleared = {removal};
  clear.collected = {collection};
  EXPECT_TRUE(apply(clear));
  EXPECT_EQ(read("k").record, committed(6));
  EXPECT_TRUE(due_removals("http://a:1", kForever, 10, std::nullopt).empty());
  EXPECT_TRUE(due_collections(kForever, 10).empty());
}

TEST_P(IndexStoreConformanceTest, AQueuedRemovalKeepsTheHigherVersionAndClearsOnlyIfUnchanged) {
  const PendingRemoval high{"http://a:1", "k", 9, 100};
  auto low = high;
  low.up_to = 4;
  KeyMutation queue;
  queue.key = "k";
  queue.queue = {high};
  ASSERT_TRUE(apply(queue));
  queue.queue = {low};  // late and older: must not replace the newer one
  ASSERT_TRUE(apply(queue));
  ASSERT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), std::vector<PendingRemoval>{high});

  KeyMutation clear;
  clear.key = "k";
  clear.cleared = {low};  // what an applier of the older entry would clear
  ASSERT_TRUE(apply(clear));
  EXPECT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), std::vector<PendingRemoval>{high});
  clear.cleared = {high};
  ASSERT_TRUE(apply(clear));
  EXPECT_TRUE(due_removals("http://a:1", 100, 10, std::nullopt).empty());
}

TEST_P(IndexStoreConformanceTest, ARemovalQueuedAgainHigherReplacesTheLowerOne) {
  const PendingRemoval low{"http://a:1", "k", 4, 100};
  auto high = low;
  high.up_to = 9;
  KeyMutation queue;
  queue.key = "k";
  queue.queue = {low};
  ASSERT_TRUE(apply(queue));
  queue.queue = {high};
  ASSERT_TRUE(apply(queue));
  EXPECT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), std::vector<PendingRemoval>{high})
      << "one entry per (volume, not_before, key), the higher up_to";
  // An applier of the lower one, which it read before the higher came.
  KeyMutation clear;
  clear.key = "k";
  clear.cleared = {low};
  ASSERT_TRUE(apply(clear));
  EXPECT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), std::vector<PendingRemoval>{high})
      << "queued again higher in the meantime: it stays";
}

TEST_P(IndexStoreConformanceTest, ARemovalQueuedManyTimesIsOneEntryAcrossPages) {
  // Queued five times with rising up_to, between two other keys' removals.
  for (std::uint64_t up_to = 1; up_to <= 5; ++up_to) {
    KeyMutation queue;
    queue.key = "b";
    queue.queue = {{"http://a:1", "b", up_to, 100}};
    ASSERT_TRUE(apply(queue));
  }
  KeyMutation others;
  others.key = "x";
  others.queue = {{"http://a:1", "a", 1, 100}, {"http://a:1", "c", 1, 100}};
  ASSERT_TRUE(apply(others));
  const std::vector<PendingRemoval> expected{
      {"http://a:1", "a", 1, 100}, {"http://a:1", "b", 5, 100}, {"http://a:1", "c", 1, 100}};
  EXPECT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), expected);
  // Page by page, the limit counts entries, not what a store keeps.
  std::vector<PendingRemoval> paged;
  std::optional<PendingRemoval> after;
  for (int pages = 0; pages < 10; ++pages) {
    const auto page = due_removals("http://a:1", 100, 2, after);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2U);
    paged.insert(paged.end(), page.begin(), page.end());
    after = page.back();
  }
  EXPECT_EQ(paged, expected);
  const auto first_two = due_removals("http://a:1", 100, 2, std::nullopt);
  EXPECT_EQ(first_two, (std::vector<PendingRemoval>{expected[0], expected[1]}))
      << "a limit of 2 still gives 2 entries";
}

TEST_P(IndexStoreConformanceTest, AMutationWithManyQueueEntriesAppliesWhole) {
  // A mutation as large as the interface allows (the record, the floor and
  // kMaxMutationEntries - 2 queue entries) applies whole or not at all.
  constexpr int kEntries = (kMaxMutationEntries - 2) / 2;
  KeyMutation m;
  m.key = "k";
  m.expected = read("k");
  m.record = committed(7);
  for (int i = 0; i < kEntries; ++i) {
    m.queue.push_back({"http://v" + std::to_string(i) + ":1", "k", 7, 100});
    m.collect.push_back({"k" + std::to_string(i), 7, 100});
  }
  m.raise_absent_floor = 3;
  const auto applied = run(store_->apply(m));
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(*applied);
  EXPECT_EQ(read("k").record, committed(7));
  EXPECT_EQ(due_collections(kForever, 1000).size(), static_cast<std::size_t>(kEntries));
  EXPECT_EQ(
      due_removals("http://v" + std::to_string(kEntries - 1) + ":1", kForever, 10, std::nullopt)
          .size(),
      1U);
}

TEST_P(IndexStoreConformanceTest, AClearCoversARemovalQueuedLowerButNotOneQueuedHigher) {
  // "cleared: each removed if it is still queued at this up_to or below".
  const PendingRemoval queued{"http://a:1", "k", 4, 100};
  KeyMutation queue;
  queue.key = "k";
  queue.queue = {queued};
  ASSERT_TRUE(apply(queue));
  auto lower = queued;
  lower.up_to = 3;
  KeyMutation stale;
  stale.key = "k";
  stale.cleared = {lower};
  ASSERT_TRUE(apply(stale));
  EXPECT_EQ(due_removals("http://a:1", 100, 10, std::nullopt), std::vector<PendingRemoval>{queued});
  auto higher = queued;
  higher.up_to = 7;
  KeyMutation clear;
  clear.key = "k";
  clear.cleared = {higher};
  ASSERT_TRUE(apply(clear));
  EXPECT_TRUE(due_removals("http://a:1", 100, 10, std::nullopt).empty());
}

TEST_P(IndexStoreConformanceTest, DueRemovalsComeInTimeOrderPerVolumeFromACursor) {
  KeyMutation queue;
  queue.key = "x";
  queue.queue = {{"http://a:1", "late", 1, 300},
                 {"http://a:1", "early", 1, 100},
                 {"http://a:1", "middle", 1, 200},
                 {"http://b:1", "other", 1, 50},
                 // A volume whose URL starts with another's is another queue.
                 {"http://a:10", "longer", 1, 60}};
  ASSERT_TRUE(apply(queue));
  const auto all = due_removals("http://a:1", 250, 10, std::nullopt);
  ASSERT_EQ(all.size(), 2U) << "the one due at 300 is not due at 250";
  EXPECT_EQ(all[0], (PendingRemoval{"http://a:1", "early", 1, 100}));
  EXPECT_EQ(all[1], (PendingRemoval{"http://a:1", "middle", 1, 200}));
  EXPECT_EQ(due_removals("http://a:1", 200, 10, std::nullopt).size(), 2U)
      << "due at its not_before";
  const auto first = due_removals("http://a:1", 1000, 1, std::nullopt);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0].key, "early");
  const auto rest = due_removals("http://a:1", 1000, 10, first.back());
  ASSERT_EQ(rest.size(), 2U);
  EXPECT_EQ(rest[0].key, "middle");
  EXPECT_EQ(rest[1].key, "late");
  EXPECT_TRUE(due_removals("http://a:1", 1000, 10, rest.back()).empty());
  EXPECT_EQ(due_removals("http://b:1", 1000, 10, std::nullopt),
            (std::vector<PendingRemoval>{{"http://b:1", "other", 1, 50}}));
  EXPECT_EQ(due_removals("http://a:10", 1000, 10, std::nullopt),
            (std::vector<PendingRemoval>{{"http://a:10", "longer", 1, 60}}));
  EXPECT_TRUE(due_removals("http://c:1", 1000, 10, std::nullopt).empty());
}

TEST_P(IndexStoreConformanceTest, DueRemovalsAtOneTimeComeInKeyOrderFromACursor) {
  KeyMutation queue;
  queue.key = "x";
  for (const auto* key : {"d", "b", "a", "c"}) queue.queue.push_back({"http://a:1", key, 1, 100});
  ASSERT_TRUE(apply(queue));
  std::vector<std::string> keys;
  std::optional<PendingRemoval> after;
  for (int pages = 0; pages < 10; ++pages) {
    const auto page = due_removals("http://a:1", 100, 1, after);
    if (page.empty()) break;
    ASSERT_EQ(page.size(), 1U);
    keys.push_back(page[0].key);
    after = page[0];
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_P(IndexStoreConformanceTest, CollectionsComeInTimeOrder) {
  KeyMutation m;
  m.key = "x";
  m.collect = {{"b", 7, 20}, {"a", 8, 10}, {"c", 9, 30}};
  ASSERT_TRUE(apply(m));
  const auto due = due_collections(25, 10);
  ASSERT_EQ(due.size(), 2U);
  EXPECT_EQ(due[0], (PendingCollection{"a", 8, 10}));
  EXPECT_EQ(due[1], (PendingCollection{"b", 7, 20}));
  EXPECT_EQ(due_collections(kForever, 1), (std::vector<PendingCollection>{{"a", 8, 10}}));
  m.collect.clear();
  m.collected = {due[0]};
  ASSERT_TRUE(apply(m));
  EXPECT_EQ(due_collections(25, 10), (std::vector<PendingCollection>{{"b", 7, 20}}));
  // Not exactly so (another version): it stays.
  m.collected = {{"b", 6, 20}};
  ASSERT_TRUE(apply(m));
  EXPECT_EQ(due_collections(25, 10), (std::vector<PendingCollection>{{"b", 7, 20}}));
}

TEST_P(IndexStoreConformanceTest, ListingSkipsTombstones) {
  for (const auto* key : {"p/a", "p/b", "p/c", "q"}) {
    create(key, std::string_view(key) == "p/b" ? tombstone(1) : committed(1));
  }
  const auto page = list("p/", "", 1);
  EXPECT_EQ(page.keys, std::vector<std::string>{"p/a"});
  EXPECT_EQ(page.next, "p/c");
  const auto rest = list("p/", page.next, 10);
  EXPECT_EQ(rest.keys, std::vector<std::string>{"p/c"});
  EXPECT_EQ(rest.next, "");
  EXPECT_EQ(list("", "", 10).keys, (std::vector<std::string>{"p/a", "p/c", "q"}));
}

TEST_P(IndexStoreConformanceTest, ListingPagesFromAnyStartWithinThePrefix) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "p/%02d", i);
    // Every third key is deleted.
    create(name, i % 3 == 1 ? tombstone(1) : committed(1));
    if (i % 3 != 1) expected.emplace_back(name);
  }
  create("o", committed(1));   // before the prefix
  create("p0", committed(1));  // after it
  EXPECT_EQ(list_all("p/", 1), expected);
  EXPECT_EQ(list_all("p/", 4), expected);
  EXPECT_EQ(list_all("p/", 100), expected);
  // A start before the prefix starts at the prefix; one inside, from there.
  EXPECT_EQ(list("p/", "a", 2).keys, (std::vector<std::string>{"p/00", "p/02"}));
  EXPECT_EQ(list("p/", "p/13", 2).keys, (std::vector<std::string>{"p/14", "p/15"}));
  EXPECT_EQ(list("p/", "p/13", 2).next, "p/17");
  // A start past the prefix, or a prefix nothing has: nothing.
  const auto past = list("p/", "p0", 10);
  EXPECT_TRUE(past.keys.empty());
  EXPECT_EQ(past.next, "");
  EXPECT_TRUE(list("z", "", 10).keys.empty());
}

TEST_P(IndexStoreConformanceTest, AScanPagesThroughRecordsAndTombstonesInKeyOrder) {
  std::map<std::string, IndexRecord> expected;
  for (int i = 0; i < 23; ++i) {
    // Created out of order.
    const std::string key = "key" + std::to_string((i * 7) % 23);
    const auto record = i % 4 == 0 ? tombstone(100 + i) : committed(100 + i);
    create(key, record);
    expected[key] = record;
  }
  for (const std::size_t limit : {1U, 5U, 23U, 100U}) {
    const auto records = scan_all(limit);
    ASSERT_EQ(records.size(), expected.size()) << "limit " << limit;
    auto it = expected.begin();
    for (const auto& [key, record] : records) {
      EXPECT_EQ(key, it->first) << "limit " << limit;
      EXPECT_EQ(record, it->second) << key;
      ++it;
    }
  }
  // From after a key that has no record: the keys above it.
  const auto from = value_of(store_->scan("key15a", 2));
  ASSERT_EQ(from.size(), 2U);
  EXPECT_EQ(from[0].key, "key16");
  EXPECT_EQ(from[1].key, "key17");
  // After an existing key: strictly after it.
  const auto after = value_of(store_->scan("key9", 10));
  EXPECT_TRUE(after.empty());
}

TEST_P(IndexStoreConformanceTest, KeysOfAnyBytesRoundTripAndListInByteOrder) {
  const std::vector<std::string> keys{std::string("a\0b", 3),
                                      std::string("a\0", 2),
                                      "a",
                                      "a/b/c",
                                      "a//",
                                      "\xff",
                                      "\xff\xff",
                                      "\x7f",
                                      "\x01",
                                      "caf\xc3\xa9",
                                      "\xe2\x82\xac/euro",
                                      std::string("\0", 1),
                                      std::string("\xff\0z", 3)};
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());  // std::string orders bytes as unsigned
  for (std::size_t i = 0; i < keys.size(); ++i) create(keys[i], committed(100 + i));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(read(keys[i]).record, committed(100 + i)) << ::testing::PrintToString(keys[i]);
  }
  EXPECT_EQ(list_all("", 3), sorted);
  std::vector<std::string> scanned;
  for (const auto& record : scan_all(4)) scanned.push_back(record.key);
  EXPECT_EQ(scanned, sorted);
  // Prefixes with the bytes that are special to a range's end.
  EXPECT_EQ(list_all("\xff", 10),
            (std::vector<std::string>{"\xff", std::string("\xff\0z", 3), "\xff\xff"}));
  EXPECT_EQ(list_all(std::string("a\0", 2), 10),
            (std::vector<std::string>{std::string("a\0", 2), std::string("a\0b", 3)}));
  EXPECT_EQ(list_all("a/", 10), (std::vector<std::string>{"a//", "a/b/c"}));
  // And in the queues.
  const PendingRemoval removal{"http://a:1", std::string("n\0\xff/", 4), 3, 10};
  const PendingCollection collection{std::string("\0\xff", 2), 3, 10};
  KeyMutation queue;
  queue.key = removal.key;
  queue.queue = {removal};
  queue.collect = {collection};
  ASSERT_TRUE(apply(queue));
  EXPECT_EQ(due_removals("http://a:1", 10, 10, std::nullopt), std::vector<PendingRemoval>{removal});
  EXPECT_EQ(due_collections(10, 10), std::vector<PendingCollection>{collection});
}

TEST_P(IndexStoreConformanceTest, TheFloorOfAbsentKeysRisesWithTheEraseAndNeverGoesDown) {
  create("k", tombstone(1));
  EXPECT_EQ(read("other").absent_floor, 0U);
  KeyMutation collect;
  collect.key = "k";
  collect.expected = read("k");
  collect.raise_absent_floor = 77;
  collect.durable = false;
  ASSERT_TRUE(apply(collect));
  const auto gone = read("k");
  EXPECT_FALSE(gone.record.has_value());
  EXPECT_EQ(gone.absent_floor, 77U);
  EXPECT_EQ(read("other").absent_floor, 77U) << "one floor for every absent key";
  KeyMutation lower;
  lower.key = "j";
  lower.collect = {{"j", 1, 1}};
  lower.raise_absent_floor = 5;
  ASSERT_TRUE(apply(lower));
  EXPECT_EQ(read("k").absent_floor, 77U) << "it never goes down";
  // A mutation that only raises the floor still does.
  KeyMutation only;
  only.key = "x";
  only.raise_absent_floor = 99;
  ASSERT_TRUE(apply(only));
  EXPECT_EQ(read("k").absent_floor, 99U);
}

TEST_P(IndexStoreConformanceTest, TheVersionFloorNeverGoesDown) {
  EXPECT_EQ(value_of(store_->version_floor()), 0U);
  EXPECT_EQ(value_of(store_->raise_version_floor(100)), 100U);
  EXPECT_EQ(value_of(store_->raise_version_floor(50)), 100U);
  EXPECT_EQ(value_of(store_->version_floor()), 100U);
  EXPECT_EQ(value_of(store_->raise_version_floor(100)), 100U);
  EXPECT_EQ(value_of(store_->raise_version_floor(101)), 101U);
}

TEST_P(IndexStoreConformanceTest, ConcurrentRaisesOfTheVersionFloorLeaveTheHighest) {
  constexpr int kRaises = 16;
  std::vector<std::uint64_t> wanted;
  for (int i = 0; i < kRaises; ++i)
    wanted.push_back(1000 + static_cast<std::uint64_t>(i * 37 % 16));
  std::vector<std::optional<Result<std::uint64_t>>> answers(kRaises);
  for (int i = 0; i < kRaises; ++i) {
    boost::asio::co_spawn(
        io_,
        [](IndexStore& store, std::uint64_t floor,
           std::optional<Result<std::uint64_t>>& answer) -> boost::asio::awaitable<void> {
          answer.emplace(co_await store.raise_version_floor(floor));
        }(*store_, wanted[i], answers[i]),
        boost::asio::detached);
  }
  io_.restart();
  io_.run();
  io_.restart();
  for (int i = 0; i < kRaises; ++i) {
    ASSERT_TRUE(answers[i].has_value()) << i;
    ASSERT_TRUE(answers[i]->ok()) << answers[i]->error().message;
    EXPECT_GE(**answers[i], wanted[i]) << "the floor stored is at least the one asked for";
  }
  EXPECT_EQ(value_of(store_->version_floor()), *std::max_element(wanted.begin(), wanted.end()));
}

TEST_P(IndexStoreConformanceTest, ConcurrentCompareAndPutsOnOneKeyHaveOneWinnerEachRound) {
  constexpr int kWriters = 8;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    // Every writer reads first, then all write at once against that read.
    const auto seen = read("contended");
    if (round > 0) {
      ASSERT_TRUE(seen.record.has_value());
    }
    std::vector<std::optional<Result<bool>>> answers(kWriters);
    std::vector<KeyMutation> mutations(kWriters);
    for (int w = 0; w < kWriters; ++w) {
      auto& m = mutations[w];
      m.key = "contended";
      m.expected = seen;
      m.record = committed(static_cast<std::uint64_t>(1000 * (round + 1) + w));
      m.queue = {{"http://a:1", "contended", static_cast<std::uint64_t>(w),
                  10 + static_cast<std::uint64_t>(round)}};
      boost::asio::co_spawn(
          io_,
          [](IndexStore& store, const KeyMutation& mutation,
             std::optional<Result<bool>>& answer) -> boost::asio::awaitable<void> {
            answer.emplace(co_await store.apply(mutation));
          }(*store_, m, answers[w]),
          boost::asio::detached);
    }
    io_.restart();
    io_.run();
    io_.restart();
    std::vector<int> winners;
    for (int w = 0; w < kWriters; ++w) {
      ASSERT_TRUE(answers[w].has_value()) << "round " << round << " writer " << w;
      ASSERT_TRUE(answers[w]->ok()) << answers[w]->error().message;
      if (**answers[w]) winners.push_back(w);
    }
    ASSERT_EQ(winners.size(), 1U) << "round " << round;
    const int winner = winners[0];
    EXPECT_EQ(read("contended").record, *mutations[winner].record) << "round " << round;
    // Only the winner's queue entry was written.
    const auto due = due_removals("http://a:1", kForever, 100, std::nullopt);
    std::vector<PendingRemoval> of_round;
    for (const auto& r : due) {
      if (r.not_before == 10 + static_cast<std::uint64_t>(round)) of_round.push_back(r);
    }
    EXPECT_EQ(of_round, mutations[winner].queue) << "round " << round;
  }
}

TEST_P(IndexStoreConformanceTest, VolumesAreRegisteredChangedAndForgotten) {
  EXPECT_TRUE(value_of(store_->volumes()).empty());
  auto sorted_volumes = [this] {
    auto volumes = value_of(store_->volumes());
    std::sort(volumes.begin(), volumes.end(),
              [](const auto& a, const auto& b) { return a.url < b.url; });
    return volumes;
  };
  const RegisteredVolume a{"http://a:1", VolumeState::kActive};
  const RegisteredVolume b{"http://b:1", VolumeState::kActive};
  const RegisteredVolume a10{"http://a:10", VolumeState::kDraining};
  for (const auto& volume : {b, a, a10}) {
    const auto status = run(store_->put_volume(volume));
    ASSERT_TRUE(status.ok()) << status.error().message;
  }
  EXPECT_EQ(sorted_volumes(), (std::vector<RegisteredVolume>{a, a10, b}));
  auto draining = a;
  draining.state = VolumeState::kDraining;
  ASSERT_TRUE(run(store_->put_volume(draining)).ok());
  EXPECT_EQ(sorted_volumes(), (std::vector<RegisteredVolume>{draining, a10, b}));
  ASSERT_TRUE(run(store_->put_volume(a)).ok());
  EXPECT_EQ(sorted_volumes(), (std::vector<RegisteredVolume>{a, a10, b})) << "active again";
  ASSERT_TRUE(run(store_->remove_volume("http://a:1")).ok());
  EXPECT_EQ(sorted_volumes(), (std::vector<RegisteredVolume>{a10, b})) << "not http://a:10";
  ASSERT_TRUE(run(store_->remove_volume("http://never:1")).ok()) << "unregistered is fine";
  ASSERT_TRUE(run(store_->remove_volume("http://a:1")).ok()) << "twice is fine";
  EXPECT_EQ(sorted_volumes(), (std::vector<RegisteredVolume>{a10, b}));
}

TEST_P(IndexStoreConformanceTest, JobsAreStoredInIdOrderAndReplaced) {
  EXPECT_TRUE(value_of(store_->jobs()).empty());
  for (const auto& [id, state] :
       std::vector<std::pair<std::string, std::string>>{{"job-2", R"({"id":"job-2"})"},
                                                        {"job-10", R"({"id":"job-10"})"},
                                                        {"job-1", R"({"id":"job-1"})"}}) {
    const auto status = run(store_->put_job(id, state));
    ASSERT_TRUE(status.ok()) << status.error().message;
  }
  // Byte order of the ids: job-1 < job-10 < job-2.
  EXPECT_EQ(
      value_of(store_->jobs()),
      (std::vector<std::string>{R"({"id":"job-1"})", R"({"id":"job-10"})", R"({"id":"job-2"})"}));
  ASSERT_TRUE(run(store_->put_job("job-10", R"({"id":"job-10","done":true})")).ok());
  EXPECT_EQ(value_of(store_->jobs()),
            (std::vector<std::string>{R"({"id":"job-1"})", R"({"id":"job-10","done":true})",
                                      R"({"id":"job-2"})"}));
}

TEST_P(IndexStoreConformanceTest, RecordsVolumesJobsAndFloorsDoNotSeeOneAnother) {
  // Every kind of state at once: none shows up as another.
  create("v", committed(1));
  create("j", committed(2));
  ASSERT_TRUE(run(store_->put_volume({"http://a:1", VolumeState::kActive})).ok());
  ASSERT_TRUE(run(store_->put_job("k", "{}")).ok());
  ASSERT_TRUE(run(store_->raise_version_floor(5)).ok());
  KeyMutation queue;
  queue.key = "q";
  queue.queue = {{"http://a:1", "q", 1, 1}};
  queue.collect = {{"c", 1, 1}};
  queue.raise_absent_floor = 3;
  ASSERT_TRUE(apply(queue));
  EXPECT_EQ(list_all("", 10), (std::vector<std::string>{"j", "v"}));
  EXPECT_EQ(scan_all(10).size(), 2U);
  EXPECT_EQ(value_of(store_->volumes()).size(), 1U);
  EXPECT_EQ(value_of(store_->jobs()), std::vector<std::string>{"{}"});
  EXPECT_EQ(value_of(store_->version_floor()), 5U);
  EXPECT_EQ(read("q").absent_floor, 3U);
}

INSTANTIATE_TEST_SUITE_P(Stores, IndexStoreConformanceTest,
                         ::testing::ValuesIn(testing::persistent_factories()), testing::store_name);

}  // namespace
}  // namespace kalavara
