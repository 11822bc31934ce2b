// The life of a key: issue a version, commit (conditions, supersede,
// idempotent repeat), delete (tombstone), remove old versions, collect
// tombstones. The decisions are pure functions of the record as read, the
// request and the time; KeyProtocol carries them out over an IndexStore with
// compare-and-put, re-deciding when a concurrent write changed the record.
// Nothing here makes an HTTP call: the master's handlers translate requests
// into these calls and carry out the removals a decision asks for.
//
// The rules (docs/architecture.md has them as a table):
//   - Versions are unique to one upload and only grow, so "newer" is a
//     comparison of versions, never of arrival times.
//   - A commit of the version the record holds (or held just before: its
//     `previous`) with the same checksum is a repeat: answered "committed",
//     nothing written.
//   - A commit whose upload took longer than the max upload time is refused.
//   - Conditions (If-Match / If-None-Match) are checked against the record
//     in arrival order; a tombstone or no record means "no value".
//   - A commit at or below the record's version, or the tombstone's, or the
//     floor of absent records, is superseded: ordered before that write or
//     delete, it is never visible.
//   - Otherwise the commit replaces the record durably and, in the same
//     write, queues the removal of the replaced version after the
//     old-version grace: readers already sent to it can still read it.
//   - A delete writes a tombstone with a fresh version above the record's,
//     durably, with the removals of every copy queued, before any file is
//     touched. It answers once that write is durable; the removals are then
//     carried out (and confirmed in the tombstone) or left queued.
//   - A tombstone is collected once every removal is confirmed and no upload
//     at or below it can still commit (the max upload time has passed); the
//     floor of absent records is raised to it in the same write.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/internal_api.hpp"
#include "master/index_store.hpp"
#include "master/version_clock.hpp"

namespace kalavara {

struct ProtocolSettings {
  // How long a replaced version stays readable for readers already sent to it.
  std::chrono::microseconds old_version_grace = std::chrono::seconds(30);
  // The longest an upload may take, from its version's issue to its commit;
  // also how long a tombstone is kept at least.
  std::chrono::microseconds max_upload_time = std::chrono::hours(1);
  // Several masters share the store (etcd), with clocks that need not
  // agree: a write's version is issued above the version the key holds
  // when it is issued, so a write that starts after another's commit lands
  // after it, whichever master issued either. One master alone needs no
  // such read: its own clock orders its versions.
  bool shared_index = false;
};

// ---------------------------------------------------------------------------
// Decisions: pure, deterministic, thread-safe.

struct CommitDecision {
  // The answer to the volume, or the refusal: kPreconditionFailed,
  // kConflict (the upload took too long; the version holds another write;
  // the key's record is below the floor of absent records).
  Result<internal::CommitAnswer> answer = internal::CommitAnswer::kCommitted;
  // What to write for a new commit; nullopt for a repeat, a supersede or a
  // refusal.
  std::optional<KeyMutation> mutation;
};
CommitDecision decide_commit(const RecordRead& current, const internal::CommitCall& call,
                             std::uint64_t now, const ProtocolSettings& settings);

struct DeleteDecision {
  Status status;                         // kNotFound, kPreconditionFailed
  KeyMutation mutation;                  // the tombstone and its queued removals
  std::vector<PendingRemoval> removals;  // the same removals, to carry out now
};
// `tombstone_version` must be above every version the record names.
DeleteDecision decide_delete(const RecordRead& current, std::string_view key,
                             std::string_view if_match, std::uint64_t tombstone_version,
                             std::uint64_t now, const ProtocolSettings& settings);

// After volumes confirmed the removals `done` of `key`, and delete markers
// were left on `marked` ones: clears the removals from the queue and, for a
// tombstone, drops the confirmed volumes from it and notes the markers; the
// last confirmation queues the tombstone's collection and the removal of
// its markers (no copy is left that a rebuild could mistake for the value).
// Not durable: lost, the removals are only carried out again.
KeyMutation decide_removals_done(const RecordRead& current, std::string_view key,
                                 const std::vector<PendingRemoval>& done,
                                 const std::vector<std::string>& marked, std::uint64_t now,
                                 const ProtocolSettings& settings);

// A due tombstone collection: erase the tombstone if every removal is
// confirmed (raising the floor of absent records to it). Otherwise, or when
// the tombstone is gone or was replaced, only the entry is cleared: the
// last confirmation queues the collection again.
KeyMutation decide_collection(const RecordRead& current, const PendingCollection& due,
                              std::uint64_t now, const ProtocolSettings& settings);

// A move of a key's committed value to other volumes (rebalance, repair,
// retiring a volume), once the copies on `volumes` are durable: the record
// keeps its version and checksum and names `volumes`; the copies on the
// volumes it no longer names are removed after the old-version grace
// (readers sent there just before can still read them). Refused with
// kConflict when the record is no longer `moved` (a client write or delete
// got there first: the write wins, the move of the older version is void).
struct RelocationDecision {
  Status status;
  KeyMutation mutation;
};
RelocationDecision decide_relocation(const RecordRead& current, std::string_view key,
                                     const IndexRecord& moved,
                                     const std::vector<std::string>& volumes, std::uint64_t now,
                                     const ProtocolSettings& settings);

// Whether `removal` may still be carried out: not when the record names its
// volume at a version it would remove (a move brought the value back there
// after the removal was queued). Such a removal is only cleared.
bool removal_wanted(const RecordRead& current, const PendingRemoval& removal);

// ---------------------------------------------------------------------------
// KeyProtocol: the decisions carried out over a store. Thread-safe.

class KeyProtocol {
 public:
  template <class T>
  using Async = boost::asio::awaitable<Result<T>>;
  // The wall clock in microseconds since the Unix epoch (injectable for tests).
  using Now = std::function<std::uint64_t()>;

  // `store` and `clock` must outlive the protocol.
  KeyProtocol(IndexStore& store, VersionClock& clock, ProtocolSettings settings,
              Now now = wall_clock_micros);

  const ProtocolSettings& settings() const { return settings_; }

  // The key's committed record; nullopt when it has none (never written,
  // deleted). Fails with kInternal when the store fails.
  Async<std::optional<IndexRecord>> current(std::string_view key);

  // A version for a new write of `key` (VersionClock::next): with a shared
  // index, above the version its record holds now (and above the floor of
  // absent records when it has none). Fails with kUnavailable (no version
  // slot, the index out of reach) or kInternal.
  Async<std::uint64_t> issue_version(std::string_view key);

  // Commits `call` (its volumes are registered: the caller checked). Fails
  // with kBadInput when its version was never issued (above every version
  // issued, by this master or one sharing its index), as decide_commit refuses, or with kInternal
  // when the store failed — then the commit may or may not have been made durable.
  Async<internal::CommitAnswer> commit(const internal::CommitCall& call);

  // Deletes `key` if it has a value (and `if_match` matches): the tombstone
  // is durable when this returns. The caller then carries out `removals`
  // and reports what was done with removals_done(); what it does not do
  // stays queued. Fails with kNotFound, kPreconditionFailed, or kInternal
  // (the delete may or may not have been made durable).
  struct Deletion {
    IndexRecord tombstone;
    std::vector<PendingRemoval> removals;
  };
  Async<Deletion> erase(std::string_view key, std::string_view if_match);

  // Moves `moved` (the key's record as a job read it) to `volumes`
  // (decide_relocation); durable when it returns.
  boost::asio::awaitable<Status> relocate(std::string_view key, const IndexRecord& moved,
                                          const std::vector<std::string>& volumes);

  // The key's record as it stands (committed, tombstone or none).
  Async<RecordRead> read(std::string_view key);

  // Up to `limit` records after `after`, in key order (IndexStore::scan).
  Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit);

  // Volumes confirmed these removals of `key`, and markers were left on
  // `marked` (see decide_removals_done).
  boost::asio::awaitable<Status> removals_done(std::string_view key,
                                               const std::vector<PendingRemoval>& done,
                                               const std::vector<std::string>& marked = {});

  // Removals queued for `volume` that are due now, earliest first (after
  // `after`, as IndexStore::due_removals).
  Async<std::vector<PendingRemoval>> due_removals(std::string_view volume, std::size_t limit,
                                                  const std::optional<PendingRemoval>& after);

  // Removals queued for `volume`, due or not (retiring a volume waits for
  // them).
  Async<std::vector<PendingRemoval>> pending_removals(std::string_view volume, std::size_t limit);

  // Keys with a value (IndexStore::list).
  Async<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit);

  // Handles up to `limit` due tombstone collections; returns how many.
  Async<std::size_t> collect_tombstones(std::size_t limit);

 private:
  IndexStore& store_;
  VersionClock& clock_;
  const ProtocolSettings settings_;
  const Now now_;
};

}  // namespace kalavara
