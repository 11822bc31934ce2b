// KeyProtocol over a store, scenario by scenario, with concurrent writes
// landed between a read and its compare-and-put (HookedIndexStore), over
// any store: a value-parameterized suite over StoreFactory. Each binary
// that runs it includes this header in exactly one source file and
// instantiates KeyProtocolTest with its stores: the unit tests with the
// in-memory store, the store tests with RocksDB and etcd.
//
// Everything is checked through the IndexStore interface, never a store's
// insides, so the same assertions hold for every store.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/blocking.hpp"
#include "master/key_protocol.hpp"
#include "master/version_clock.hpp"
#include "store/hooked_index_store.hpp"
#include "store/store_factory.hpp"

namespace kalavara::testing::scenarios {

using internal::CommitAnswer;
using internal::CommitCall;
using namespace std::chrono_literals;

inline constexpr std::uint64_t kNow = 1'800'000'000'000'000;  // microseconds since the epoch
inline const std::string kA = "http://a:1";
inline const std::string kB = "http://b:1";
inline const std::string kC = "http://c:1";

inline ProtocolSettings settings() {
  ProtocolSettings s;
  s.old_version_grace = 30s;
  s.max_upload_time = 3600s;
  return s;
}

inline std::string checksum_of(char c) { return std::string(32, c); }

inline CommitCall call(std::uint64_t version, char checksum = 'a',
                       std::vector<std::string> volumes = {kA}) {
  CommitCall c;
  c.key = "k";
  c.version = version;
  c.size = 10;
  c.checksum = checksum_of(checksum);
  c.volumes = std::move(volumes);
  return c;
}

inline IndexRecord committed(std::uint64_t version, char checksum = 'a',
                             std::vector<std::string> volumes = {kA}) {
  IndexRecord r;
  r.version = version;
  r.size = 10;
  r.checksum = checksum_of(checksum);
  r.volumes = std::move(volumes);
  return r;
}

inline IndexRecord tombstone(std::uint64_t version, std::vector<std::string> volumes) {
  IndexRecord r;
  r.state = IndexRecord::State::kTombstone;
  r.version = version;
  r.volumes = std::move(volumes);
  return r;
}

class KeyProtocolTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  static void TearDownTestSuite() { run_after_suite_hooks(); }

  void SetUp() override {
    std::string skip;
    opened_ = GetParam().open(io_, skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(opened_) << "the " << GetParam().name << " store did not open";
    store_ = std::make_unique<HookedIndexStore>(opened_->store());
    // Every version under test counts as issued.
    ASSERT_TRUE(run(store_->raise_version_floor(kNow + 1'000'000'000)).ok());
    auto clock = run(VersionClock::open(*store_, [this] { return now_; }));
    ASSERT_TRUE(clock.ok()) << clock.error().message;
    clock_ = std::move(clock).value();
    protocol_ =
        std::make_unique<KeyProtocol>(*store_, *clock_, settings(), [this] { return now_; });
  }

  void TearDown() override {
    protocol_.reset();
    clock_.reset();
    store_.reset();
    opened_.reset();
  }

  template <class T>
  T run(boost::asio::awaitable<T> task) {
    return run_to_completion(io_, std::move(task));
  }

  Result<CommitAnswer> commit(const CommitCall& c) { return run(protocol_->commit(c)); }
  std::optional<IndexRecord> current() { return run(protocol_->current("k")).value(); }

  // The key's record as the store holds it (committed, tombstone or none).
  RecordRead stored(std::string_view key) {
    auto read = run(store_->inner().read(key));
    EXPECT_TRUE(read.ok()) << read.error().message;
    return read.ok() ? *read : RecordRead{};
  }

  // Writes `record` over whatever `key` holds, past the hooks: a concurrent
  // writer's compare-and-put. True when it applied.
  boost::asio::awaitable<bool> overwrite(std::string key, IndexRecord record) {
    auto& inner = store_->inner();
    auto read = co_await inner.read(key);
    if (!read.ok()) co_return false;
    KeyMutation m;
    m.key = key;
    m.expected = *read;
    m.record = std::move(record);
    auto applied = co_await inner.apply(m);
    co_return applied.ok() && *applied;
  }

  // Every removal queued for `key` on the volumes under test, due or not.
  std::vector<PendingRemoval> removals_of(std::string_view key) {
    std::vector<PendingRemoval> out;
    for (const auto& volume : {kA, kB, kC}) {
      auto due = run(store_->due_removals(volume, std::numeric_limits<std::uint64_t>::max(), 1000,
                                          std::nullopt));
      EXPECT_TRUE(due.ok()) << due.error().message;
      if (!due.ok()) continue;
      for (const auto& r : *due) {
        if (r.key == key) out.push_back(r);
      }
    }
    return out;
  }

  std::vector<PendingCollection> collections() {
    auto due = run(store_->due_collections(std::numeric_limits<std::uint64_t>::max(), 1000));
    EXPECT_TRUE(due.ok()) << due.error().message;
    return due.ok() ? *due : std::vector<PendingCollection>{};
  }

  std::vector<KeyRecord> every_record() {
    auto records = run(store_->scan("", 1000));
    EXPECT_TRUE(records.ok()) << records.error().message;
    return records.ok() ? *records : std::vector<KeyRecord>{};
  }

  // Declared first: destroyed last, after the store and the protocol that
  // may hold its sockets and timers.
  boost::asio::io_context io_;
  std::unique_ptr<OpenedStore> opened_;
  std::unique_ptr<HookedIndexStore> store_;
  std::uint64_t now_ = kNow;
  std::unique_ptr<VersionClock> clock_;
  std::unique_ptr<KeyProtocol> protocol_;
};

TEST_P(KeyProtocolTest, AVersionThatWasNeverIssuedIsRefused) {
  const auto issued = run(protocol_->issue_version("k")).value();
  const auto refused = commit(call(issued + 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kBadInput);
  EXPECT_TRUE(every_record().empty());
  EXPECT_FALSE(commit(call(~0ULL)).ok());
  EXPECT_TRUE(every_record().empty());
  const auto accepted = commit(call(issued));
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(*accepted, CommitAnswer::kCommitted);
  EXPECT_EQ(stored("k").record, committed(issued));
}

TEST_P(KeyProtocolTest, ACommitThatArrivesAfterADeleteIsSuperseded) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  now_ += 10;
  auto deleted = run(protocol_->erase("k", ""));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  // An upload issued before the delete, committing only now.
  const auto late = commit(call(kNow + 5, 'l'));
  ASSERT_TRUE(late.ok()) << late.error().message;
  EXPECT_EQ(*late, CommitAnswer::kSuperseded);
  EXPECT_FALSE(current().has_value());
  const auto record = stored("k").record;
  ASSERT_TRUE(record.has_value());
  EXPECT_TRUE(record->tombstone());
  EXPECT_EQ(record->version, deleted->tombstone.version);
}

TEST_P(KeyProtocolTest, ACommitRacingADeleteIsDecidedAgainstTheTombstone) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  // The delete lands between the commit's read and its compare-and-put.
  // (No gtest assertion inside a coroutine: g++ 12 miscompiles some.)
  bool landed = false;
  store_->before_next_apply = [this, &landed]() -> boost::asio::awaitable<void> {
    auto deleted = tombstone(kNow + 100, {kA});
    landed = co_await overwrite("k", std::move(deleted));
  };
  const auto racing = commit(call(kNow + 50, 'r'));
  ASSERT_TRUE(racing.ok()) << racing.error().message;
  EXPECT_EQ(*racing, CommitAnswer::kSuperseded);
  EXPECT_TRUE(landed) << "the race was landed";
  EXPECT_EQ(stored("k").record, tombstone(kNow + 100, {kA}));
}

TEST_P(KeyProtocolTest, ADeleteRacingACommitOfALaterVersionDeletesThatOne) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  now_ = kNow + 10;
  // A write issued after the delete took its version commits in between:
  // the delete must take a version above it, and delete that write.
  std::uint64_t later = 0;
  bool landed = false;
  store_->before_next_apply = [this, &later, &landed]() -> boost::asio::awaitable<void> {
    auto next = co_await clock_->next();
    if (!next.ok()) co_return;
    later = *next;
    // Named first: committed()'s braced default argument in a co_await
    // expression is what g++ 12 miscompiles.
    auto record = committed(later, 'z');
    landed = co_await overwrite("k", std::move(record));
  };
  auto deleted = run(protocol_->erase("k", ""));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  ASSERT_TRUE(landed) << "the race was landed (version " << later << ")";
  EXPECT_GT(deleted->tombstone.version, later);
  const auto record = stored("k").record;
  ASSERT_TRUE(record.has_value());
  EXPECT_TRUE(record->tombstone());
  EXPECT_EQ(record->version, deleted->tombstone.version);
  EXPECT_EQ(deleted->removals.size(), 1U);
}

TEST_P(KeyProtocolTest, ConcurrentCreateOnlyWritesHaveOneWinner) {
  auto first = call(kNow, 'a');
  first.if_none_match = "*";
  auto second = call(kNow + 1, 'b');
  second.if_none_match = "*";
  bool landed = false;
  store_->before_next_apply = [this, &first, &landed]() -> boost::asio::awaitable<void> {
    const auto decision = decide_commit(RecordRead{}, first, kNow, settings());
    if (!decision.mutation) co_return;
    auto applied = co_await store_->inner().apply(*decision.mutation);
    landed = applied.ok() && *applied;
  };
  const auto loser = commit(second);
  EXPECT_TRUE(landed) << "the race was landed";
  ASSERT_FALSE(loser.ok());
  EXPECT_EQ(loser.error().code, Errc::kPreconditionFailed);
  ASSERT_TRUE(current().has_value());
  EXPECT_EQ(current()->checksum, checksum_of('a'));
  EXPECT_EQ(current()->version, kNow);
}

TEST_P(KeyProtocolTest, AFailedWriteIsAnErrorAndTheStoreKeepsWhatItHad) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  store_->fail_writes = true;
  const auto failed = commit(call(kNow + 1, 'n'));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
  store_->fail_writes = false;
  EXPECT_EQ(current()->version, kNow);
  EXPECT_EQ(stored("k").record, committed(kNow));
  EXPECT_TRUE(removals_of("k").empty()) << "nothing of the failed overwrite was queued";
}

TEST_P(KeyProtocolTest, AKeysWholeLifeLeavesNothingBehind) {
  // Written, overwritten, deleted, confirmed and collected.
  ASSERT_EQ(*commit(call(kNow, 'a', {kA, kB})), CommitAnswer::kCommitted);
  now_ = kNow + 1'000;
  ASSERT_EQ(*commit(call(kNow + 1'000, 'b', {kA, kB})), CommitAnswer::kCommitted);
  EXPECT_EQ(removals_of("k").size(), 2U) << "the replaced version, on a and b";
  EXPECT_TRUE(run(protocol_->due_removals(kA, 10, std::nullopt)).value().empty())
      << "not before its grace";
  now_ += 30'000'001;
  auto due = run(protocol_->due_removals(kA, 10, std::nullopt)).value();
  ASSERT_EQ(due.size(), 1U);
  EXPECT_EQ(due[0], (PendingRemoval{kA, "k", kNow, kNow + 1'000 + 30'000'000}));
  ASSERT_TRUE(run(protocol_->removals_done("k", due)).ok());

  auto deletion = run(protocol_->erase("k", "")).value();
  EXPECT_EQ(deletion.removals.size(), 2U);
  // a confirms now; b only later.
  ASSERT_TRUE(run(protocol_->removals_done("k", {deletion.removals[0]})).ok());
  now_ = deletion.tombstone.version + 3'600'000'002;
  EXPECT_EQ(run(protocol_->collect_tombstones(10)).value(), 1U);
  ASSERT_TRUE(stored("k").record.has_value());
  EXPECT_TRUE(stored("k").record->tombstone()) << "b has not confirmed";
  ASSERT_TRUE(run(protocol_->removals_done("k", {deletion.removals[1]})).ok());
  EXPECT_EQ(run(protocol_->collect_tombstones(10)).value(), 1U);
  const auto gone = stored("k");
  EXPECT_FALSE(gone.record.has_value());
  EXPECT_TRUE(every_record().empty());
  EXPECT_TRUE(collections().empty());
  // Only b's replaced-version removal is still queued (b never took it).
  EXPECT_EQ(removals_of("k"), (std::vector<PendingRemoval>{{kB, "k", kNow, kNow + 30'001'000}}));
  EXPECT_EQ(gone.absent_floor, deletion.tombstone.version);

  // An upload issued before the delete can no longer commit; a new one can.
  EXPECT_FALSE(commit(call(deletion.tombstone.version - 1, 'c')).ok());
  const auto fresh = run(protocol_->issue_version("k")).value();
  ASSERT_EQ(*commit(call(fresh, 'd')), CommitAnswer::kCommitted);
  EXPECT_EQ(current()->checksum, checksum_of('d'));
}

TEST_P(KeyProtocolTest, ListingSkipsDeletedKeys) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  auto other = call(kNow, 'a');
  other.key = "k2";
  ASSERT_TRUE(commit(other).ok());
  now_ += 1;
  ASSERT_TRUE(run(protocol_->erase("k", "")).ok());
  const auto page = run(protocol_->list("", "", 10)).value();
  EXPECT_EQ(page.keys, std::vector<std::string>{"k2"});
  EXPECT_EQ(page.next, "");
  EXPECT_EQ(every_record().size(), 2U) << "the tombstone is still there, unlisted";
}

}  // namespace kalavara::testing::scenarios
