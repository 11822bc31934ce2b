// The key's life, transition by transition: the pure decisions first, then
// KeyProtocol over an in-memory store, with concurrent writes landed between
// a read and its compare-and-put.
#include "master/key_protocol.hpp"

#include <gtest/gtest.h>

#include "common/checksum.hpp"
#include "memory_index_store.hpp"

namespace kalavara {
namespace {

using internal::CommitAnswer;
using internal::CommitCall;
using testing::MemoryIndexStore;
using testing::run;
using namespace std::chrono_literals;

constexpr std::uint64_t kNow = 1'800'000'000'000'000;  // microseconds since the epoch
const std::string kA = "http://a:1";
const std::string kB = "http://b:1";
const std::string kC = "http://c:1";

ProtocolSettings settings() {
  ProtocolSettings s;
  s.old_version_grace = 30s;
  s.max_upload_time = 3600s;
  return s;
}

std::string checksum_of(char c) { return std::string(32, c); }

CommitCall call(std::uint64_t version, char checksum = 'a',
                std::vector<std::string> volumes = {kA}) {
  CommitCall c;
  c.key = "k";
  c.version = version;
  c.size = 10;
  c.checksum = checksum_of(checksum);
  c.volumes = std::move(volumes);
  return c;
}

IndexRecord committed(std::uint64_t version, char checksum = 'a',
                      std::vector<std::string> volumes = {kA}) {
  IndexRecord r;
  r.version = version;
  r.size = 10;
  r.checksum = checksum_of(checksum);
  r.volumes = std::move(volumes);
  return r;
}

IndexRecord tombstone(std::uint64_t version, std::vector<std::string> volumes) {
  IndexRecord r;
  r.state = IndexRecord::State::kTombstone;
  r.version = version;
  r.volumes = std::move(volumes);
  return r;
}

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
// KeyProtocol over a store

class KeyProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.floor = kNow + 1'000'000'000;  // every version under test counts as issued
    clock_ = run(VersionClock::open(store_, [this] { return now_; })).value().release();
    protocol_ = std::make_unique<KeyProtocol>(store_, *clock_, settings(), [this] { return now_; });
  }
  void TearDown() override {
    protocol_.reset();
    delete clock_;
  }

  Result<CommitAnswer> commit(const CommitCall& c) { return run(protocol_->commit(c)); }
  std::optional<IndexRecord> current() { return run(protocol_->current("k")).value(); }

  MemoryIndexStore store_;
  std::uint64_t now_ = kNow;
  VersionClock* clock_ = nullptr;
  std::unique_ptr<KeyProtocol> protocol_;
};

TEST_F(KeyProtocolTest, AVersionThatWasNeverIssuedIsRefused) {
  const auto issued = run(protocol_->issue_version("k")).value();
  const auto refused = commit(call(issued + 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kBadInput);
  EXPECT_TRUE(store_.records.empty());
  EXPECT_FALSE(commit(call(~0ULL)).ok());
  EXPECT_TRUE(commit(call(issued)).ok());
}

TEST_F(KeyProtocolTest, ACommitThatArrivesAfterADeleteIsSuperseded) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  now_ += 10;
  auto deleted = run(protocol_->erase("k", ""));
  ASSERT_TRUE(deleted.ok());
  // An upload issued before the delete, committing only now.
  const auto late = commit(call(kNow + 5, 'l'));
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(*late, CommitAnswer::kSuperseded);
  EXPECT_FALSE(current().has_value());
}

TEST_F(KeyProtocolTest, ACommitRacingADeleteIsDecidedAgainstTheTombstone) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  // The delete lands between the commit's read and its compare-and-put.
  store_.before_next_apply = [&] { store_.records["k"] = tombstone(kNow + 100, {kA}); };
  const auto racing = commit(call(kNow + 50, 'r'));
  ASSERT_TRUE(racing.ok());
  EXPECT_EQ(*racing, CommitAnswer::kSuperseded);
  EXPECT_TRUE(store_.records.at("k").tombstone());
}

TEST_F(KeyProtocolTest, ADeleteRacingACommitOfALaterVersionDeletesThatOne) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  now_ = kNow + 10;
  // A write issued after the delete took its version commits in between:
  // the delete must take a version above it, and delete that write.
  std::uint64_t later = 0;
  store_.before_next_apply = [&] {
    later = run(clock_->next()).value();
    store_.records["k"] = committed(later, 'z');
  };
  auto deleted = run(protocol_->erase("k", ""));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_GT(deleted->tombstone.version, later);
  EXPECT_TRUE(store_.records.at("k").tombstone());
  EXPECT_EQ(deleted->removals.size(), 1U);
}

TEST_F(KeyProtocolTest, ConcurrentCreateOnlyWritesHaveOneWinner) {
  auto first = call(kNow, 'a');
  first.if_none_match = "*";
  auto second = call(kNow + 1, 'b');
  second.if_none_match = "*";
  store_.before_next_apply = [&] {
    ASSERT_TRUE(store_.apply_now(*decide_commit(RecordRead{}, first, kNow, settings()).mutation));
  };
  const auto loser = commit(second);
  ASSERT_FALSE(loser.ok());
  EXPECT_EQ(loser.error().code, Errc::kPreconditionFailed);
  EXPECT_EQ(current()->checksum, checksum_of('a'));
}

TEST_F(KeyProtocolTest, AFailedWriteIsAnErrorAndTheStoreKeepsWhatItHad) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  store_.fail_writes = true;
  const auto failed = commit(call(kNow + 1, 'n'));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
  store_.fail_writes = false;
  EXPECT_EQ(current()->version, kNow);
}

TEST_F(KeyProtocolTest, AKeysWholeLifeLeavesNothingBehind) {
  // Written, overwritten, deleted, confirmed and collected.
  ASSERT_EQ(*commit(call(kNow, 'a', {kA, kB})), CommitAnswer::kCommitted);
  now_ = kNow + 1'000;
  ASSERT_EQ(*commit(call(kNow + 1'000, 'b', {kA, kB})), CommitAnswer::kCommitted);
  EXPECT_EQ(store_.removals_of("k").size(), 2U) << "the replaced version, on a and b";
  EXPECT_TRUE(run(protocol_->due_removals(kA, 10, std::nullopt)).value().empty())
      << "not before its grace";
  now_ += 30'000'001;
  auto due = run(protocol_->due_removals(kA, 10, std::nullopt)).value();
  ASSERT_EQ(due.size(), 1U);
  ASSERT_TRUE(run(protocol_->removals_done("k", due)).ok());

  auto deletion = run(protocol_->erase("k", "")).value();
  EXPECT_EQ(deletion.removals.size(), 2U);
  // a confirms now; b only later.
  ASSERT_TRUE(run(protocol_->removals_done("k", {deletion.removals[0]})).ok());
  now_ = deletion.tombstone.version + 3'600'000'002;
  EXPECT_EQ(run(protocol_->collect_tombstones(10)).value(), 1U);
  EXPECT_TRUE(store_.records.at("k").tombstone()) << "b has not confirmed";
  ASSERT_TRUE(run(protocol_->removals_done("k", {deletion.removals[1]})).ok());
  EXPECT_EQ(run(protocol_->collect_tombstones(10)).value(), 1U);
  EXPECT_FALSE(store_.records.contains("k"));
  EXPECT_TRUE(store_.collections.empty());
  // Only b's replaced-version removal is still queued (b never took it).
  EXPECT_EQ(store_.removals_of("k").size(), 1U);
  EXPECT_EQ(store_.absent_floor, deletion.tombstone.version);

  // An upload issued before the delete can no longer commit; a new one can.
  EXPECT_FALSE(commit(call(deletion.tombstone.version - 1, 'c')).ok());
  const auto fresh = run(protocol_->issue_version("k")).value();
  ASSERT_EQ(*commit(call(fresh, 'd')), CommitAnswer::kCommitted);
  EXPECT_EQ(current()->checksum, checksum_of('d'));
}

TEST_F(KeyProtocolTest, ListingSkipsDeletedKeys) {
  ASSERT_TRUE(commit(call(kNow)).ok());
  auto other = call(kNow, 'a');
  other.key = "k2";
  ASSERT_TRUE(commit(other).ok());
  now_ += 1;
  ASSERT_TRUE(run(protocol_->erase("k", "")).ok());
  const auto page = run(protocol_->list("", "", 10)).value();
  EXPECT_EQ(page.keys, std::vector<std::string>{"k2"});
}

}  // namespace
}  // namespace kalavara

namespace kalavara {
namespace {

// Two masters on one shared store, the second's clock a minute behind the
// first's: a write through the second that starts after the first's commit
// lands after it.
TEST(KeyProtocolSharedIndex, AWriteAfterAnothersCommitWinsWhateverTheMastersClocksSay) {
  MemoryIndexStore store;
  std::uint64_t now = kNow;
  auto ahead_clock = run(VersionClock::open(store, [&] { return now + 60'000'000; })).value();
  auto behind_clock = run(VersionClock::open(store, [&] { return now; })).value();
  ahead_clock->set_slot(VersionClock::Slot{0, 16});
  behind_clock->set_slot(VersionClock::Slot{1, 16});
  auto shared = settings();
  shared.shared_index = true;
  KeyProtocol ahead(store, *ahead_clock, shared, [&] { return now; });
  KeyProtocol behind(store, *behind_clock, shared, [&] { return now; });

  const auto first = run(ahead.issue_version("k")).value();
  ASSERT_EQ(*run(ahead.commit(call(first, 'a'))), CommitAnswer::kCommitted);
  now += 1000;
  const auto second = run(behind.issue_version("k")).value();
  EXPECT_GT(second, first);
  // The behind master takes the commit of its version, though it is above
  // anything its own clock would have issued by itself.
  ASSERT_EQ(*run(behind.commit(call(second, 'b'))), CommitAnswer::kCommitted);
  EXPECT_EQ(run(ahead.current("k")).value()->checksum, checksum_of('b'));

  // A delete through the behind master, then a write through the ahead one:
  // the tombstone is above the value, the write above the tombstone.
  ASSERT_TRUE(run(behind.erase("k", "")).ok());
  const auto third = run(ahead.issue_version("k")).value();
  ASSERT_EQ(*run(ahead.commit(call(third, 'c'))), CommitAnswer::kCommitted);
  EXPECT_EQ(run(behind.current("k")).value()->checksum, checksum_of('c'));
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
