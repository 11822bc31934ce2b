// The master's durable index: key -> IndexRecord, plus the registered volumes.
// An interface because a distributed engine may replace RocksDB for users who
// outgrow one master. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "master/index_record.hpp"

namespace kalavara {

// A delete a volume still has to apply: remove the key's versions up to
// `version` (the volume was down or failing when the key was deleted or
// overwritten).
struct PendingDelete {
  std::string volume;
  std::string key;
  std::uint64_t version = 0;
};

// One page of a key listing.
struct KeyPage {
  std::vector<std::string> keys;
  std::string next;  // the first key of the following page; empty at the end
};

class IndexStore {
 public:
  virtual ~IndexStore() = default;

  // The record of `key`; nullopt when there is none. Fails with kInternal when the
  // store cannot be read or the record is corrupt.
  virtual Result<std::optional<IndexRecord>> get(std::string_view key) = 0;

  // Stores `record` for `key`, durably: when this returns success the record
  // survives a crash of the process or the machine.
  virtual Status put(std::string_view key, const IndexRecord& record) = 0;

  // Stores all `records` in one durable, atomic batch (bulk loads).
  virtual Status put_batch(const std::vector<std::pair<std::string, IndexRecord>>& records) = 0;

  // Removes `key` (an absent key is fine) and queues `pending` deletes, in
  // one durable, atomic write: a crash cannot leave the key gone without its
  // queued deletes.
  virtual Status erase_and_queue(std::string_view key,
                                 const std::vector<PendingDelete>& pending) = 0;

  // Queues one pending delete durably (a newer one for the same volume and
  // key replaces it: it covers more versions).
  virtual Status queue_delete(const PendingDelete& pending) = 0;

  // Up to `limit` pending deletes of `volume`, in key order.
  virtual Result<std::vector<PendingDelete>> pending_deletes(std::string_view volume,
                                                             std::size_t limit) = 0;

  // Forgets a pending delete once applied, unless a newer one replaced it.
  virtual Status clear_pending(const PendingDelete& applied) = 0;

  // Keys that start with `prefix`, in byte order, from the first key >=
  // `start`, at most `limit` (>= 1) of them. Fails with kInternal when the store
  // cannot be read.
  virtual Result<KeyPage> list(std::string_view prefix, std::string_view start,
                               std::size_t limit) = 0;

  // The registered volumes' canonical base URLs, in no particular order.
  virtual Result<std::vector<std::string>> volumes() = 0;

  // Registers a volume durably; registering a known one succeeds.
  virtual Status add_volume(std::string_view url) = 0;

  // The version floor (see VersionClock): 0 when never set.
  virtual Result<std::uint64_t> version_floor() = 0;
  // Stores the version floor durably.
  virtual Status set_version_floor(std::uint64_t floor) = 0;
};

}  // namespace kalavara
