// What only the RocksDB index store has: what survives a reopen, reads from
// disk, the migration of older builds' queue, the queue floors of its scans,
// the scratch space, checkpoints. The IndexStore contract itself is tested
// over every store in tests/store/index_store_conformance_test.cpp.
#include "master/rocksdb_index_store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <random>

#include "common/blocking.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;

IndexRecord committed(std::uint64_t version) {
  IndexRecord record;
  record.version = version;
  record.size = 3;
  record.checksum = std::string(32, 'a');
  record.volumes = {"http://a:1"};
  return record;
}

class RocksDbIndexStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kalavara-index-test-" + std::to_string(std::random_device{}()));
    reopen();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto store = RocksDbIndexStore::open(dir_.string(), 1 << 20, pool_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
  }
  template <class T>
  T run(boost::asio::awaitable<T> task) {
    return run_to_completion(io_, std::move(task));
  }
  bool apply(const KeyMutation& mutation) {
    auto applied = run(store_->apply(mutation));
    EXPECT_TRUE(applied.ok());
    return applied.ok() && *applied;
  }
  RecordRead read(std::string_view key) { return run(store_->read(key)).value(); }

  fs::path dir_;
  boost::asio::thread_pool pool_{2};
  boost::asio::io_context io_;
  std::unique_ptr<RocksDbIndexStore> store_;
};

TEST_F(RocksDbIndexStoreTest, AScanFindsAnEntryQueuedBelowWhereTheLastScanEnded) {
  // Scans start past what earlier scans found cleared; an entry queued
  // later with an earlier time must still be found.
  const PendingRemoval first{"http://a:1", "k1", 1, 100};
  KeyMutation m;
  m.key = "k1";
  m.queue = {first};
  ASSERT_TRUE(apply(m));
  ASSERT_EQ(run(store_->due_removals("http://a:1", 1000, 10, std::nullopt)).value().size(), 1U);
  m.queue.clear();
  m.cleared = {first};
  ASSERT_TRUE(apply(m));
  ASSERT_TRUE(run(store_->due_removals("http://a:1", 1000, 10, std::nullopt)).value().empty());
  const PendingRemoval older{"http://a:1", "k2", 1, 50};
  KeyMutation late;
  late.key = "k2";
  late.queue = {older};
  ASSERT_TRUE(apply(late));
  EXPECT_EQ(run(store_->due_removals("http://a:1", 1000, 10, std::nullopt)).value(),
            std::vector<PendingRemoval>{older});

  KeyMutation collect;
  collect.key = "c";
  collect.collect = {{"c", 1, 500}};
  ASSERT_TRUE(apply(collect));
  ASSERT_TRUE(run(store_->due_collections(1000, 10)).value().size() == 1);
  collect.collect.clear();
  collect.collected = {{"c", 1, 500}};
  ASSERT_TRUE(apply(collect));
  ASSERT_TRUE(run(store_->due_collections(1000, 10)).value().empty());
  KeyMutation earlier;
  earlier.key = "d";
  earlier.collect = {{"d", 1, 20}};
  ASSERT_TRUE(apply(earlier));
  EXPECT_EQ(run(store_->due_collections(1000, 10)).value().size(), 1U);
}

TEST_F(RocksDbIndexStoreTest, TheFloorsSurviveAReopen) {
  KeyMutation m;
  m.key = "k";
  m.expected = RecordRead{};
  m.record = committed(1);
  m.record->state = IndexRecord::State::kTombstone;
  ASSERT_TRUE(apply(m));
  KeyMutation collect;
  collect.key = "k";
  collect.expected = read("k");
  collect.raise_absent_floor = 77;
  collect.durable = false;  // made durable by the next durable write
  ASSERT_TRUE(apply(collect));
  ASSERT_EQ(run(store_->raise_version_floor(100)).value(), 100U);
  reopen();
  EXPECT_EQ(read("k").absent_floor, 77U);
  EXPECT_EQ(run(store_->version_floor()).value(), 100U);
  // A mutation that only raises the floor is durable too.
  KeyMutation only;
  only.key = "x";
  only.raise_absent_floor = 99;
  ASSERT_TRUE(apply(only));
  reopen();
  EXPECT_EQ(read("k").absent_floor, 99U);
}

TEST_F(RocksDbIndexStoreTest, RecordsOnDiskAreReadWhenNotInMemory) {
  std::vector<std::pair<std::string, IndexRecord>> records;
  for (int i = 0; i < 2000; ++i) records.emplace_back("key" + std::to_string(i), committed(i + 1));
  ASSERT_TRUE(store_->put_batch(records).ok());
  ASSERT_TRUE(store_->compact().ok());
  reopen();  // an empty block cache: the memory-only read cannot answer
  EXPECT_EQ(read("key1234").record, committed(1235));
  EXPECT_FALSE(read("absent").record.has_value());
}

TEST_F(RocksDbIndexStoreTest, RemovalsQueuedByOlderBuildsAreMovedIntoTheQueueDueAtOnce) {
  store_.reset();
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::string key = std::string("phttp://a:1") + '\0' + "old-key";
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, std::string("\0\0\0\0\0\0\0\x2a", 8)).ok());
  }
  reopen();
  const auto due = run(store_->due_removals("http://a:1", 0, 10, std::nullopt)).value();
  EXPECT_EQ(due, (std::vector<PendingRemoval>{{"http://a:1", "old-key", 42, 0}}));
}

TEST_F(RocksDbIndexStoreTest, ScratchEntriesPageInKeyOrderAndAreNotRecords) {
  auto held = store_->holds_key_records();
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(*held);
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 9; i >= 0; --i) entries.emplace_back("b" + std::to_string(i), std::to_string(i));
  entries.emplace_back(std::string("a\0z", 3), "nul");
  ASSERT_TRUE(store_->put_scratch(entries).ok());
  held = store_->holds_key_records();
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(*held) << "scratch entries are not key records";
  auto listing = run(store_->list("", "", 100));
  ASSERT_TRUE(listing.ok());
  EXPECT_TRUE(listing->keys.empty());

  std::vector<std::string> keys;
  std::string after;
  for (int pages = 0; pages < 20; ++pages) {
    auto page = store_->scratch_page(after, 3);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& [key, value] : *page) keys.push_back(key);
    if (page->size() < 3) break;
    after = page->back().first;
  }
  std::vector<std::string> expected{std::string("a\0z", 3)};
  for (int i = 0; i < 10; ++i) expected.push_back("b" + std::to_string(i));
  EXPECT_EQ(keys, expected);

  ASSERT_TRUE(store_->put_batch({{"k", committed(5)}}).ok());
  held = store_->holds_key_records();
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(*held);
  ASSERT_TRUE(store_->clear_scratch().ok());
  auto empty = store_->scratch_page("", 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(read("k").record, committed(5)) << "clearing the scratch leaves the records";
}

TEST_F(RocksDbIndexStoreTest, AnOfflineRaiseOfTheAbsentFloorIsDurableAndNeverLowers) {
  ASSERT_TRUE(store_->raise_absent_floor(50).ok());
  ASSERT_TRUE(store_->raise_absent_floor(20).ok());
  EXPECT_EQ(read("absent").absent_floor, 50U);
  reopen();
  EXPECT_EQ(read("absent").absent_floor, 50U);
}

TEST_F(RocksDbIndexStoreTest, ACheckpointHoldsEveryWriteBeforeItAndOpensAsAnIndex) {
  for (int i = 0; i < 100; ++i) {
    KeyMutation create;
    create.key = "key" + std::to_string(i);
    create.expected = RecordRead{};
    create.record = committed(100 + i);
    create.durable = i % 2 == 0;  // unsynced writes are in it too
    ASSERT_TRUE(apply(create));
  }
  ASSERT_TRUE(run(store_->raise_version_floor(777)).ok());
  const auto copy = dir_.string() + "-checkpoint";
  auto sequence = store_->write_checkpoint(copy);
  ASSERT_TRUE(sequence.ok()) << sequence.error().message;
  EXPECT_GE(*sequence, 101U);
  EXPECT_FALSE(store_->write_checkpoint(copy).ok()) << "never into a folder that exists";
  // After it: not in the copy.
  KeyMutation later;
  later.key = "later";
  later.expected = RecordRead{};
  later.record = committed(5);
  ASSERT_TRUE(apply(later));

  auto opened = RocksDbIndexStore::open(copy, 1 << 20, pool_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& restored = **opened;
  for (int i = 0; i < 100; ++i) {
    const auto key = "key" + std::to_string(i);
    EXPECT_EQ(run(restored.read(key)).value().record, committed(100 + i)) << key;
  }
  EXPECT_FALSE(run(restored.read("later")).value().record.has_value());
  EXPECT_EQ(run(restored.version_floor()).value(), 777U);
  opened = Error{};
  fs::remove_all(copy);
}

}  // namespace
}  // namespace kalavara
