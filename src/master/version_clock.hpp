// Issues write versions: unique and increasing, also across restarts, so that
// replicas, the index, rebuild and repair can always tell the newest copy of
// a key from a stale one. A version is the wall clock in microseconds, or one
// more than the last version issued when the clock has not moved on (or went
// back). A floor is persisted ahead of use: every version issued after a
// restart is above every version issued before it, whatever the clock does.
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "master/index_store.hpp"

namespace kalavara {

class VersionClock {
 public:
  // `store` must outlive the clock. Fails when the floor cannot be read.
  static Result<std::unique_ptr<VersionClock>> open(IndexStore& store);

  // The next version. Fails (kInternal) only when the floor must move and cannot
  // be stored: then no version is issued at all.
  Result<std::uint64_t> next();

 private:
  VersionClock(IndexStore& store, std::uint64_t floor);

  IndexStore& store_;
  std::mutex mutex_;
  std::uint64_t last_;
  std::uint64_t floor_;
};

}  // namespace kalavara
