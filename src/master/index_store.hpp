// The master's durable state: key -> IndexRecord, the queues of removals and
// tombstone collections, the registered volumes and the version floor.
//
// An interface because a distributed engine (etcd, behind several masters)
// may replace the embedded RocksDB. What the key protocol needs of a store is
// small: a read, and an atomic write of one key's record together with its
// queue entries that applies only if the record is still what was read
// (compare-and-put). How a store makes that atomic — stripe locks, a
// transaction, a compare on a revision — is its own business.
//
// Every call is awaitable and completes without blocking the calling
// thread on a disk or the network: a store runs blocking work on a pool of
// its own (or on the network) and resumes the caller on its executor.
// Arguments are read while the call runs: await each call at once.
// Implementations are thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "master/index_record.hpp"

namespace kalavara {

// A key's record as read, with what a compare-and-put needs to tell whether
// it changed since.
struct RecordRead {
  std::optional<IndexRecord> record;  // nullopt: the key has no record
  // With no record: every commit at or below this version is refused, as a
  // tombstone would refuse it — the highest tombstone collected so far (a
  // collected tombstone must not let an old upload resurrect its key).
  std::uint64_t absent_floor = 0;
  // Opaque: stores that compare by revision rather than by value keep it here.
  std::uint64_t revision = 0;
};

// A removal a volume has to carry out: the key's versions up to `up_to`,
// not before `not_before` (microseconds since the Unix epoch). Entries are
// unique by (volume, not_before, key); the same one queued twice keeps the
// higher `up_to`. Removals are idempotent and never reach a version the
// index may still name, so applying one late, twice, or after a later one
// is harmless.
struct PendingRemoval {
  std::string volume;
  std::string key;
  std::uint64_t up_to = 0;
  std::uint64_t not_before = 0;
  bool operator==(const PendingRemoval&) const = default;
};

// A tombstone to look at again from `not_before` on: collect it, or wait.
struct PendingCollection {
  std::string key;
  std::uint64_t version = 0;  // the tombstone's
  std::uint64_t not_before = 0;
  bool operator==(const PendingCollection&) const = default;
};

// The most entries (record, queued and cleared removals, collections) one
// mutation may hold: etcd refuses transactions of more than 128 operations
// by default. The key protocol's hold a few per replica.
inline constexpr std::size_t kMaxMutationEntries = 120;

// One atomic write about one key, of at most kMaxMutationEntries entries.
struct KeyMutation {
  std::string key;
  // When set, the whole mutation applies only if the key's record is still
  // the one read (the compare of compare-and-put: by value or by revision,
  // so a record rewritten to the same value since may or may not count as
  // changed; either is safe, a caller re-reads), and `record` replaces it
  // (nullopt: the record is erased). When unset the record is not touched.
  std::optional<RecordRead> expected;
  std::optional<IndexRecord> record;
  std::vector<PendingRemoval> queue;  // removals to queue
  // Each removed if it is still queued at this up_to or below (the removal
  // done covers those); one queued again higher since stays.
  std::vector<PendingRemoval> cleared;
  std::vector<PendingCollection> collect;
  std::vector<PendingCollection> collected;  // each removed only if still exactly so
  // Raises the floor of absent records (RecordRead::absent_floor) to at
  // least this, before any record this mutation erases reads as absent.
  std::uint64_t raise_absent_floor = 0;
  // Durable when the call returns (a synced write); otherwise it reaches
  // stable storage with the next durable write, and a crash before then may
  // lose it, atomically, whole.
  bool durable = true;
};

// A registered volume. A draining one gets no new writes while a retire job
// moves what it holds elsewhere; then it is forgotten.
enum class VolumeState : std::uint8_t { kActive, kDraining };
struct RegisteredVolume {
  std::string url;  // canonical base URL
  VolumeState state = VolumeState::kActive;
  bool operator==(const RegisteredVolume&) const = default;
};

// A key and its record, as a scan of the whole index returns them.
struct KeyRecord {
  std::string key;
  IndexRecord record;
};

// One page of a key listing.
struct KeyPage {
  std::vector<std::string> keys;
  std::string next;  // the first key of the following page; empty at the end
};

class IndexStore {
 public:
  template <class T>
  using Async = boost::asio::awaitable<Result<T>>;

  virtual ~IndexStore() = default;

  // The record of `key`. Fails with kInternal when the store cannot be read
  // or the record is corrupt.
  virtual Async<RecordRead> read(std::string_view key) = 0;

  // Applies `mutation` atomically. True when applied; false — a value, not
  // an error — when `expected` was set and the record has changed since it
  // was read: then nothing was written. Fails with kInternal when the write
  // failed; then nothing was written either.
  virtual Async<bool> apply(const KeyMutation& mutation) = 0;

  // Keys with a committed record that start with `prefix`, in byte order,
  // from the first key >= `start`, at most `limit` (>= 1) of them;
  // tombstones are skipped.
  virtual Async<KeyPage> list(std::string_view prefix, std::string_view start,
                              std::size_t limit) = 0;

  // Up to `limit` removals queued for `volume` that are due at `now`, the
  // earliest first; after `after` (an entry returned before) when given, so
  // removals that keep failing do not hide the ones behind them.
  virtual Async<std::vector<PendingRemoval>> due_removals(
      std::string_view volume, std::uint64_t now, std::size_t limit,
      const std::optional<PendingRemoval>& after) = 0;

  // Up to `limit` tombstone collections due at `now`, the earliest first.
  virtual Async<std::vector<PendingCollection>> due_collections(std::uint64_t now,
                                                                std::size_t limit) = 0;

  // Up to `limit` records (committed and tombstones) of the keys after
  // `after` (from the first key when empty), in key order: maintenance jobs
  // page through the whole index with it.
  virtual Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit) = 0;

  // The registered volumes, in no particular order.
  virtual Async<std::vector<RegisteredVolume>> volumes() = 0;

  // Registers `volume` durably, or changes its state.
  virtual boost::asio::awaitable<Status> put_volume(const RegisteredVolume& volume) = 0;

  // Forgets a volume durably (one that is not registered is fine).
  virtual boost::asio::awaitable<Status> remove_volume(std::string_view url) = 0;

  // The stored state of every maintenance job (JSON, see master/jobs.hpp),
  // in id order.
  virtual Async<std::vector<std::string>> jobs() = 0;

  // Stores a job's state durably under its id, replacing what was there.
  virtual boost::asio::awaitable<Status> put_job(std::string_view id, std::string_view state) = 0;

  // The version floor (see VersionClock): 0 when never set.
  virtual Async<std::uint64_t> version_floor() = 0;

  // Raises the version floor durably to at least `floor` (it never goes
  // down, whatever order concurrent calls land in) and returns the floor now
  // stored.
  virtual Async<std::uint64_t> raise_version_floor(std::uint64_t floor) = 0;
};

}  // namespace kalavara
