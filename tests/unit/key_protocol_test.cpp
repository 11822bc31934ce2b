// The key's life, transition by transition: the pure decisions first, then
// KeyProtocol over an in-memory store, with concurrent writes landed between
// a read and its compare-and-put (the scenarios of
// store/key_protocol_scenarios.hpp, which the store tests run over RocksDB
// and etcd).
#include "master/key_protocol.hpp"

#include <gtest/gtest.h>

#include "common/checksum.hpp"
#include "memory_index_store.hpp"
#include "store/key_protocol_scenarios.hpp"

namespace kalavara {
namespace {

using internal::CommitAnswer;
using internal::CommitCall;
using namespace std::chrono_literals;
// The helpers the key protocol's scenarios over every store use too.
using testing::scenarios::call;
using testing::scenarios::checksum_of;
using testing::scenarios::committed;
using testing::scenarios::kA;
using testing::scenarios::kB;
using testing::scenarios::kC;
using testing::scenarios::KeyProtocolTest;
using testing::scenarios::kNow;
using testing::scenarios::settings;
using testing::scenarios::tombstone;

RecordRead read_of(std::optional<IndexRecord> record, std::uint64_t absent_floor = 0) {
  RecordRead read;
  read.record = std::move(record);
  read.absent_floor = absent_floor;
  return read;
}

std::string etag(char checksum) { return etag_for(checksum_of(checksum)); }

// ---------------------------------------------------------------------------
// decide_commit

TEST(DecideCommit, ANewKeyIsCommittedDurablyInPlaceOfNothing) {
  const auto d = decide_commit(read_of(std::nullopt), call(kNow), kNow, settings());
  ASSERT_TRUE(d.answer.ok());
  EXPECT_EQ(*d.answer, CommitAnswer::kCommitted);
  ASSERT_TRUE(d.mutation.has_value());
  ASSERT_TRUE(d.mutation->expected.has_value());
  EXPECT_FALSE(d.mutation->expected->record.has_value()) << "applies only if still absent";
  ASSERT_TRUE(d.mutation->record.has_value());
  EXPECT_EQ(*d.mutation->record, committed(kNow));
  EXPECT_TRUE(d.mutation->queue.empty());
  EXPECT_TRUE(d.mutation->durable);
}

TEST(DecideCommit, AnOverwriteQueuesTheReplacedVersionsRemovalAfterTheGrace) {
  const auto old = committed(kNow - 100, 'o', {kA, kB});
  const auto d = decide_commit(read_of(old), call(kNow, 'n', {kA}), kNow, settings());
  ASSERT_TRUE(d.answer.ok());
  ASSERT_TRUE(d.mutation.has_value());
  const auto& next = *d.mutation->record;
  EXPECT_EQ(next.version, kNow);
  ASSERT_TRUE(next.previous.has_value());
  EXPECT_EQ(next.previous->version, kNow - 100);
  EXPECT_EQ(next.previous->checksum, checksum_of('o'));
  EXPECT_EQ(next.previous->volumes, (std::vector<std::string>{kA, kB}));
  const auto due = kNow + 30'000'000;
  EXPECT_EQ(d.mutation->queue,
            (std::vector<PendingRemoval>{{kA, "k", kNow - 100, due}, {kB, "k", kNow - 100, due}}));
  EXPECT_TRUE(d.mutation->durable) << "the removal is queued in the commit's own synced write";
}

TEST(DecideCommit, ACommitSentAgainIsCommittedAndWritesNothing) {
  const auto d = decide_commit(read_of(committed(kNow)), call(kNow), kNow + 5, settings());
  ASSERT_TRUE(d.answer.ok());
  EXPECT_EQ(*d.answer, CommitAnswer::kCommitted);
  EXPECT_FALSE(d.mutation.has_value());
}

TEST(DecideCommit, ACommitSentAgainAfterAnOverwriteIsStillCommitted) {
  // Its first answer was lost; a newer write landed before the repeat.
  auto record = committed(kNow + 10, 'n');
  record.previous = IndexRecord::Previous{kNow, checksum_of('a'), {kA}};
  const auto d = decide_commit(read_of(record), call(kNow, 'a'), kNow + 20, settings());
  ASSERT_TRUE(d.answer.ok());
  EXPECT_EQ(*d.answer, CommitAnswer::kCommitted) << "not superseded: it was visible";
  EXPECT_FALSE(d.mutation.has_value());
}

TEST(DecideCommit, AnotherValueUnderTheCommittedVersionIsAConflict) {
  const auto d = decide_commit(read_of(committed(kNow, 'a')), call(kNow, 'b'), kNow, settings());
  ASSERT_FALSE(d.answer.ok());
  EXPECT_EQ(d.answer.error().code, Errc::kConflict);
  EXPECT_FALSE(d.mutation.has_value());
}

TEST(DecideCommit, AnOlderWriteIsSupersededWhateverOrderCommitsArriveIn) {
  const auto d =
      decide_commit(read_of(committed(kNow + 10, 'n')), call(kNow, 'a'), kNow + 20, settings());
  ASSERT_TRUE(d.answer.ok());
  EXPECT_EQ(*d.answer, CommitAnswer::kSuperseded);
  EXPECT_FALSE(d.mutation.has_value());
}

TEST(DecideCommit, ACommitAtOrBelowATombstoneIsSuperseded) {
  for (const auto version : {kNow - 1, kNow}) {
    const auto d =
        decide_commit(read_of(tombstone(kNow, {kA})), call(version), kNow + 1, settings());
    ASSERT_TRUE(d.answer.ok()) << version;
    EXPECT_EQ(*d.answer, CommitAnswer::kSuperseded) << version;
    EXPECT_FALSE(d.mutation.has_value()) << version;
  }
}

TEST(DecideCommit, ACommitAboveATombstoneRecreatesTheKeyWithNothingToRemove) {
  const auto d =
      decide_commit(read_of(tombstone(kNow, {kB})), call(kNow + 1), kNow + 2, settings());
  ASSERT_TRUE(d.answer.ok());
  EXPECT_EQ(*d.answer, CommitAnswer::kCommitted);
  ASSERT_TRUE(d.mutation.has_value());
  EXPECT_EQ(*d.mutation->record, committed(kNow + 1));
  EXPECT_FALSE(d.mutation->record->previous.has_value());
  EXPECT_TRUE(d.mutation->queue.empty()) << "the tombstone's own removals are queued already";
  EXPECT_EQ(d.mutation->expected->record, tombstone(kNow, {kB}));
}

TEST(DecideCommit, ACommitAtOrBelowTheFloorOfCollectedTombstonesIsRefused) {
  const auto refused = decide_commit(read_of(std::nullopt, kNow), call(kNow), kNow, settings());
  ASSERT_FALSE(refused.answer.ok());
  EXPECT_EQ(refused.answer.error().code, Errc::kConflict);
  const auto above =
      decide_commit(read_of(std::nullopt, kNow), call(kNow + 1), kNow + 1, settings());
  ASSERT_TRUE(above.answer.ok());
  EXPECT_EQ(*above.answer, CommitAnswer::kCommitted);
}

TEST(DecideCommit, AnUploadLongerThanTheMaxUploadTimeIsRefused) {
  const auto late = kNow + 3'600'000'001;
  const auto d = decide_commit(read_of(std::nullopt), call(kNow), late, settings());
  ASSERT_FALSE(d.answer.ok());
  EXPECT_EQ(d.answer.error().code, Errc::kConflict);
  EXPECT_FALSE(d.mutation.has_value());
  // Just inside the limit it commits.
  EXPECT_TRUE(decide_commit(read_of(std::nullopt), call(kNow), late - 1, settings()).answer.ok());
  // A late repeat of a write that did commit is still answered committed.
  const auto repeat = decide_commit(read_of(committed(kNow)), call(kNow), late, settings());
  ASSERT_TRUE(repeat.answer.ok());
  EXPECT_EQ(*repeat.answer, CommitAnswer::kCommitted);
}

TEST(DecideCommit, ConditionsAreCheckedAgainstTheValueInArrivalOrder) {
  auto create_only = call(kNow + 1);
  create_only.if_none_match = "*";
  EXPECT_EQ(
      decide_commit(read_of(committed(kNow)), create_only, kNow, settings()).answer.error().code,
      Errc::kPreconditionFailed);
  // A deleted key has no value: a create-only write succeeds.
  EXPECT_TRUE(
      decide_commit(read_of(tombstone(kNow, {})), create_only, kNow, settings()).answer.ok());

  auto replace = call(kNow + 1, 'n');
  replace.if_match = etag('a');
  EXPECT_TRUE(decide_commit(read_of(committed(kNow, 'a')), replace, kNow, settings()).answer.ok());
  EXPECT_EQ(
      decide_commit(read_of(committed(kNow, 'x')), replace, kNow, settings()).answer.error().code,
      Errc::kPreconditionFailed);
  EXPECT_EQ(
      decide_commit(read_of(tombstone(kNow, {})), replace, kNow, settings()).answer.error().code,
      Errc::kPreconditionFailed);
  // A failing condition wins over supersede: the write did not happen.
  auto stale = call(kNow - 1, 'n');
  stale.if_match = etag('z');
  EXPECT_EQ(decide_commit(read_of(committed(kNow)), stale, kNow, settings()).answer.error().code,
            Errc::kPreconditionFailed);
}

// ---------------------------------------------------------------------------
// decide_delete

TEST(DecideDelete, AKeyWithoutAValueIsNotFound) {
  EXPECT_EQ(
      decide_delete(read_of(std::nullopt), "k", "", kNow, kNow, settings()).status.error().code,
      Errc::kNotFound);
  EXPECT_EQ(decide_delete(read_of(tombstone(kNow - 5, {})), "k", "", kNow, kNow, settings())
                .status.error()
                .code,
            Errc::kNotFound);
}

TEST(DecideDelete, IfMatchMustMatchTheValue) {
  const auto d =
      decide_delete(read_of(committed(kNow - 5, 'a')), "k", etag('b'), kNow, kNow, settings());
  EXPECT_EQ(d.status.error().code, Errc::kPreconditionFailed);
  EXPECT_TRUE(
      decide_delete(read_of(committed(kNow - 5, 'a')), "k", etag('a'), kNow, kNow, settings())
          .status.ok());
}

TEST(DecideDelete, ATombstoneFencesTheKeyAndQueuesEveryCopysRemovalAtOnce) {
  auto record = committed(kNow - 5, 'a', {kA, kB});
  record.previous = IndexRecord::Previous{kNow - 9, checksum_of('o'), {kB, kC}};
  const auto d = decide_delete(read_of(record), "k", "", kNow, kNow, settings());
  ASSERT_TRUE(d.status.ok());
  const auto& m = d.mutation;
  EXPECT_EQ(m.expected->record, record);
  ASSERT_TRUE(m.record.has_value());
  EXPECT_EQ(*m.record, tombstone(kNow, {kA, kB, kC}))
      << "the replaced version's copies go too: a delete means the bytes go";
  const std::vector<PendingRemoval> now{
      {kA, "k", kNow, kNow}, {kB, "k", kNow, kNow}, {kC, "k", kNow, kNow}};
  EXPECT_EQ(m.queue, now);
  EXPECT_EQ(d.removals, now);
  EXPECT_EQ(m.collect, (std::vector<PendingCollection>{{"k", kNow, kNow + 3'600'000'001}}));
  EXPECT_TRUE(m.durable);

  // Long after the grace, the replaced version's own queued removal has it.
  const auto late = kNow + 3'700'000'000;
  const auto later = decide_delete(read_of(record), "k", "", late, late, settings());
  ASSERT_TRUE(later.status.ok());
  EXPECT_EQ(later.mutation.record->volumes, (std::vector<std::string>{kA, kB}));
}

TEST(DecideDelete, TheTombstoneMustBeAboveTheRecord) {
  EXPECT_EQ(
      decide_delete(read_of(committed(kNow)), "k", "", kNow, kNow, settings()).status.error().code,
      Errc::kInternal);
}

// ---------------------------------------------------------------------------
// decide_removals_done and decide_collection

TEST(DecideRemovalsDone, ClearsTheQueueAndTheTombstonesConfirmedVolumes) {
  const auto t = tombstone(kNow, {kA, kB});
  const std::vector<PendingRemoval> done{{kA, "k", kNow, kNow}};
  const auto m = decide_removals_done(read_of(t), "k", done, {}, kNow + 1, settings());
  EXPECT_EQ(m.cleared, done);
  ASSERT_TRUE(m.expected.has_value());
  EXPECT_EQ(*m.record, tombstone(kNow, {kB}));
  EXPECT_TRUE(m.collect.empty()) << "b is not confirmed yet";
  EXPECT_FALSE(m.durable) << "lost, the removal is only carried out again";
}

TEST(DecideRemovalsDone, TheLastConfirmationQueuesTheCollection) {
  const auto t = tombstone(kNow, {kB});
  const std::vector<PendingRemoval> done{{kB, "k", kNow, kNow}};
  const auto later = kNow + 7'200'000'000;
  const auto m = decide_removals_done(read_of(t), "k", done, {}, later, settings());
  EXPECT_EQ(*m.record, tombstone(kNow, {}));
  EXPECT_EQ(m.collect, (std::vector<PendingCollection>{{"k", kNow, later}}))
      << "long past the max upload time: collectable at once";
  const auto soon = decide_removals_done(read_of(t), "k", done, {}, kNow + 1, settings());
  EXPECT_EQ(soon.collect, (std::vector<PendingCollection>{{"k", kNow, kNow + 3'600'000'001}}));
}

TEST(DecideRemovalsDone, MarkersGoOnceEveryCopyIsGone) {
  const auto t = tombstone(kNow, {kB});
  // a took its removal and holds a marker; b's copy is still there.
  const auto noted = decide_removals_done(read_of(t), "k", {}, {kA}, kNow + 1, settings());
  ASSERT_TRUE(noted.record.has_value());
  EXPECT_EQ(noted.record->markers, std::vector<std::string>{kA});
  EXPECT_TRUE(noted.queue.empty()) << "b's copy still needs the marker";
  auto marked = t;
  marked.markers = {kA};
  const auto last =
      decide_removals_done(read_of(marked), "k", {{kB, "k", kNow, kNow}}, {}, kNow + 2, settings());
  ASSERT_TRUE(last.record.has_value());
  EXPECT_TRUE(last.record->volumes.empty());
  EXPECT_EQ(last.queue, (std::vector<PendingRemoval>{{kA, "k", kNow, kNow + 2}}))
      << "the marker's removal: up to the tombstone, at once";
  // A marker noted after the last confirmation goes at once too.
  const auto late =
      decide_removals_done(read_of(tombstone(kNow, {})), "k", {}, {kC}, kNow + 3, settings());
  EXPECT_EQ(late.queue, (std::vector<PendingRemoval>{{kC, "k", kNow, kNow + 3}}));
}

TEST(DecideRemovalsDone, AnOlderRemovalDoesNotConfirmATombstone) {
  const auto t = tombstone(kNow, {kA});
  const auto m =
      decide_removals_done(read_of(t), "k", {{kA, "k", kNow - 10, kNow}}, {}, kNow, settings());
  EXPECT_FALSE(m.expected.has_value());
  EXPECT_EQ(m.cleared.size(), 1U);
}

TEST(DecideRemovalsDone, AValueOnlyClearsTheQueue) {
  const auto m = decide_removals_done(read_of(committed(kNow)), "k", {{kA, "k", kNow - 10, kNow}},
                                      {}, kNow, settings());
  EXPECT_FALSE(m.expected.has_value()) << "the record is not touched";
  EXPECT_EQ(m.cleared.size(), 1U);
}

TEST(DecideCollection, ACollectedTombstoneRaisesTheFloorOfAbsentKeys) {
  const PendingCollection due{"k", kNow, kNow + 3'600'000'001};
  const auto m = decide_collection(read_of(tombstone(kNow, {})), due, due.not_before, settings());
  ASSERT_TRUE(m.expected.has_value());
  EXPECT_FALSE(m.record.has_value()) << "erased";
  EXPECT_EQ(m.raise_absent_floor, kNow);
  EXPECT_EQ(m.collected, std::vector<PendingCollection>{due});
}

TEST(DecideCollection, AnUnconfirmedReplacedOrVanishedTombstoneIsOnlyCleared) {
  const PendingCollection due{"k", kNow, kNow + 1};
  for (const auto& current : {read_of(tombstone(kNow, {kA})), read_of(committed(kNow + 5)),
                              read_of(tombstone(kNow + 9, {})), read_of(std::nullopt)}) {
    const auto m = decide_collection(current, due, kNow + 2, settings());
    EXPECT_FALSE(m.expected.has_value());
    EXPECT_EQ(m.raise_absent_floor, 0U);
    EXPECT_EQ(m.collected, std::vector<PendingCollection>{due});
  }
}

// ---------------------------------------------------------------------------
// KeyProtocol over the in-memory store

class OpenedMemory final : public testing::OpenedStore {
 public:
  IndexStore& store() override { return store_; }

 private:
  testing::MemoryIndexStore store_;
};

testing::StoreFactory memory_factory() {
  return {"Memory", [](boost::asio::io_context&, std::string&) {
            return std::unique_ptr<testing::OpenedStore>(std::make_unique<OpenedMemory>());
          }};
}

INSTANTIATE_TEST_SUITE_P(InMemory, KeyProtocolTest, ::testing::Values(memory_factory()),
                         testing::store_name);

}  // namespace
}  // namespace kalavara

namespace kalavara {
namespace {

// Two masters on one shared store, the second's clock a minute behind the
// first's: a write through the second that starts after the first's commit
// lands after it.
TEST(KeyProtocolSharedIndex, AWriteAfterAnothersCommitWinsWhateverTheMastersClocksSay) {
  testing::MemoryIndexStore store;
  std::uint64_t now = kNow;
  auto ahead_clock = testing::run(VersionClock::open(store, [&] { return now + 60'000'000; })).value();
  auto behind_clock = testing::run(VersionClock::open(store, [&] { return now; })).value();
  ahead_clock->set_slot(VersionClock::Slot{0, 16});
  behind_clock->set_slot(VersionClock::Slot{1, 16});
  auto shared = settings();
  shared.shared_index = true;
  KeyProtocol ahead(store, *ahead_clock, shared, [&] { return now; });
  KeyProtocol behind(store, *behind_clock, shared, [&] { return now; });

  const auto first = testing::run(ahead.issue_version("k")).value();
  ASSERT_EQ(*testing::run(ahead.commit(call(first, 'a'))), CommitAnswer::kCommitted);
  now += 1000;
  const auto second = testing::run(behind.issue_version("k")).value();
  EXPECT_GT(second, first);
  // The behind master takes the commit of its version, though it is above
  // anything its own clock would have issued by itself.
  ASSERT_EQ(*testing::run(behind.commit(call(second, 'b'))), CommitAnswer::kCommitted);
  EXPECT_EQ(testing::run(ahead.current("k")).value()->checksum, checksum_of('b'));

  // A delete through the behind master, then a write through the ahead one:
  // the tombstone is above the value, the write above the tombstone.
  ASSERT_TRUE(testing::run(behind.erase("k", "")).ok());
  const auto third = testing::run(ahead.issue_version("k")).value();
  ASSERT_EQ(*testing::run(ahead.commit(call(third, 'c'))), CommitAnswer::kCommitted);
  EXPECT_EQ(testing::run(behind.current("k")).value()->checksum, checksum_of('c'));
}

TEST(DecideRelocation, MovesTheValueAndQueuesTheDroppedCopiesRemovalAfterTheGrace) {
  const auto record = committed(kNow, 'a', {kA, kB});
  const auto d = decide_relocation(read_of(record), "k", record, {kB, kC}, kNow + 5, settings());
  ASSERT_TRUE(d.status.ok());
  ASSERT_TRUE(d.mutation.record.has_value());
  EXPECT_EQ(d.mutation.record->version, kNow) << "a move keeps the version and the checksum";
  EXPECT_EQ(d.mutation.record->checksum, record.checksum);
  EXPECT_EQ(d.mutation.record->volumes, (std::vector<std::string>{kB, kC}));
  EXPECT_EQ(d.mutation.queue,
            (std::vector<PendingRemoval>{{kA, "k", kNow, kNow + 5 + 30'000'000}}));
  EXPECT_TRUE(d.mutation.durable);
}

TEST(DecideRelocation, AWriteOrDeleteThatGotThereFirstWins) {
  const auto moved = committed(kNow, 'a', {kA});
  for (const auto& current : {read_of(committed(kNow + 1, 'n', {kA})),
                              read_of(tombstone(kNow + 1, {kA})), read_of(std::nullopt)}) {
    const auto d = decide_relocation(current, "k", moved, {kB}, kNow, settings());
    EXPECT_EQ(d.status.error().code, Errc::kConflict);
  }
}

TEST(RemovalWanted, NotWhenTheRecordNamesThatCopy) {
  const auto record = committed(kNow, 'a', {kA});
  // A move brought the value back to a after its removal there was queued.
  EXPECT_FALSE(removal_wanted(read_of(record), {kA, "k", kNow, kNow}));
  EXPECT_TRUE(removal_wanted(read_of(record), {kB, "k", kNow, kNow}));
  EXPECT_TRUE(removal_wanted(read_of(record), {kA, "k", kNow - 1, kNow})) << "an older version";
  EXPECT_TRUE(removal_wanted(read_of(tombstone(kNow + 1, {kA})), {kA, "k", kNow + 1, kNow}));
  EXPECT_TRUE(removal_wanted(read_of(std::nullopt), {kA, "k", kNow, kNow}));
}

}  // namespace
}  // namespace kalavara
