#include "master/version_clock.hpp"

#include <algorithm>
#include <chrono>

namespace kalavara {
namespace {

// How far ahead the floor is moved: one synced write per this much time
// under steady load.
constexpr std::uint64_t kFloorLeadMicros = 10'000'000;

std::uint64_t now_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

VersionClock::VersionClock(IndexStore& store, std::uint64_t floor)
    : store_(store), last_(floor), floor_(floor) {}

Result<std::unique_ptr<VersionClock>> VersionClock::open(IndexStore& store) {
  auto floor = store.version_floor();
  if (!floor) return floor.error();
  return std::unique_ptr<VersionClock>(new VersionClock(store, *floor));
}

Result<std::uint64_t> VersionClock::next() {
  std::lock_guard lock(mutex_);
  const auto version = std::max(now_micros(), last_ + 1);
  if (version >= floor_) {
    const auto floor = version + kFloorLeadMicros;
    if (auto status = store_.set_version_floor(floor); !status) return status.error();
    floor_ = floor;
  }
  last_ = version;
  return version;
}

}  // namespace kalavara
