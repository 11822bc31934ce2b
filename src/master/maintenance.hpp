// What maintenance jobs do to one key: move its value to the volumes it
// should be on (rebalance, retiring a volume), re-create missing or corrupt
// copies from a good one (repair, scrub), and remove files nothing names
// (orphans). Copies go volume to volume (internal_api: copy), never through
// the master and never whole in memory; the key protocol commits the new
// location only once every new copy is durable, with compare-and-put, so a
// client write or delete that races a move wins and the move is void (its
// new copies are removed). Each operation holds the key (KeyLocks) so no
// removal interleaves with it. Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/internal_api.hpp"
#include "master/key_locks.hpp"
#include "master/key_protocol.hpp"
#include "master/volume_health.hpp"
#include "master/volume_registry.hpp"

namespace kalavara {

class Maintenance {
 public:
  struct Settings {
    std::size_t replicas = 1;
    // An unnamed file younger than this (by its mtime) is not an orphan yet:
    // a move may just have copied it and not yet committed.
    std::chrono::seconds orphan_min_age{600};
  };

  // Everything given must outlive the object.
  Maintenance(KeyProtocol& protocol, const VolumeRegistry& registry, const VolumeHealth& health,
              KeyLocks& locks, Settings settings);

  struct Outcome {
    enum class Kind {
      kUnchanged,  // nothing to do
      kChanged,    // moved, repaired or removed
      kSkipped,    // not now (the key is busy, a volume is down): a later run retries
      kFailed,     // could not be done; `note` says why
    };
    Kind kind = Kind::kUnchanged;
    std::uint64_t bytes_moved = 0;
    std::string note;
  };

  // Moves the key's value to the top N of its ranking among the volumes new
  // writes may go to (so off a draining one), copying it to the new ones
  // from a copy that is up. `scanned` is the record as a scan read it; the
  // move is decided on the record as it is once the key is held.
  boost::asio::awaitable<Outcome> rebalance(const KeyRecord& scanned);

  // Checks every copy the record names (a HEAD of that version, its ETag)
  // and re-creates missing or corrupt (`bad`, if known) ones, and those on
  // volumes no longer registered, from a good copy, on the next volumes of
  // the key's ranking, up to N. A key with a copy on a volume that is down
  // is left for a later run (the volume may only be rebooting).
  boost::asio::awaitable<Outcome> repair(const KeyRecord& scanned,
                                         std::optional<std::string> bad = std::nullopt);

  // Removes `entry`, a file `volume` listed, if nothing names it: a value
  // version no record holds there (and not the replaced version whose grace
  // may still run) that no upload can commit any more and that is older
  // than the orphan age, or a delete marker whose tombstone is gone.
  boost::asio::awaitable<Outcome> collect_if_orphan(const std::string& volume,
                                                    const internal::BlobEntry& entry);

 private:
  // Copies the key's value to `targets` from `sources` (up ones), then
  // commits `volumes` as its new location; undoes the copies it made if
  // anything fails.
  boost::asio::awaitable<Outcome> move(const KeyRecord& entry,
                                       const std::vector<std::string>& sources,
                                       const std::vector<std::string>& targets,
                                       const std::vector<std::string>& volumes);

  KeyProtocol& protocol_;
  const VolumeRegistry& registry_;
  const VolumeHealth& health_;
  KeyLocks& locks_;
  const Settings settings_;
};

}  // namespace kalavara
