// Orders the publishing of concurrent writes of one key. The master numbers
// each write of a key as it commits it (the record's version); a volume
// publishes (renames into place) after that commit. Two writes of one key in
// flight at once could rename in the other order than they committed, leaving
// on disk a value the index does not name. PublishOrder publishes a write only
// if no later-committed write of the same key has been published meanwhile;
// otherwise it is superseded and dropped. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/result.hpp"

namespace kalavara {

class PublishOrder {
 public:
  // Registers a write of `key` as in flight, before its commit; the write
  // leaves when the ticket is destroyed.
  class Ticket {
   public:
    Ticket(PublishOrder& order, std::string key);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

    // Runs `publish` unless a write of this key with a higher `version` was
    // published since this ticket was taken; returns true when it ran (and
    // its Status), false when this write was superseded.
    Result<bool> publish(std::uint64_t version, const std::function<Status()>& publish);

   private:
    PublishOrder& order_;
    std::string key_;
  };

 private:
  struct InFlight {
    int writers = 0;
    std::uint64_t published_version = 0;
  };
  // Sharded so that publishes of unrelated keys (each a rename and a
  // directory fsync) do not wait for each other.
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, InFlight> keys;
  };
  Shard& shard_of(const std::string& key);
  std::array<Shard, 64> shards_;
};

}  // namespace kalavara
