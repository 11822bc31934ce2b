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

// One page of a key listing.
struct KeyPage {
  std::vector<std::string> keys;
  std::string next;  // the first key of the following page; empty at the end
};

class IndexStore {
 public:
  virtual ~IndexStore() = default;

  // The record of `key`; nullopt when there is none. Fails with 500 when the
  // store cannot be read or the record is corrupt.
  virtual Result<std::optional<IndexRecord>> get(std::string_view key) = 0;

  // Stores `record` for `key`, durably: when this returns success the record
  // survives a crash of the process or the machine.
  virtual Status put(std::string_view key, const IndexRecord& record) = 0;

  // Stores all `records` in one durable, atomic batch (bulk loads).
  virtual Status put_batch(const std::vector<std::pair<std::string, IndexRecord>>& records) = 0;

  // Removes `key`, durably. Removing an absent key succeeds.
  virtual Status erase(std::string_view key) = 0;

  // Keys that start with `prefix`, in byte order, from the first key >=
  // `start`, at most `limit` (>= 1) of them. Fails with 500 when the store
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
