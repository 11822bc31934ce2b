#include "master/version_clock.hpp"
#include "common/spawn.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>

namespace kalavara {

std::uint64_t wall_clock_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

VersionClock::VersionClock(IndexStore& store, Now now, std::uint64_t floor)
    : store_(store), now_(std::move(now)), last_(floor), floor_(floor) {}

boost::asio::awaitable<Result<std::unique_ptr<VersionClock>>> VersionClock::open(IndexStore& store,
                                                                                 Now now) {
  auto floor = co_await store.version_floor();
  if (!floor) co_return floor.error();
  co_return std::unique_ptr<VersionClock>(new VersionClock(store, std::move(now), *floor));
}

std::uint64_t VersionClock::floor() const {
  std::lock_guard lock(mutex_);
  return floor_;
}

std::uint64_t VersionClock::last_issued() const {
  std::lock_guard lock(mutex_);
  return last_;
}

void VersionClock::raised(std::uint64_t floor) {
  std::lock_guard lock(mutex_);
  floor_ = std::max(floor_, floor);
}

boost::asio::awaitable<void> VersionClock::raise_in_background(std::uint64_t target) {
  // A failure is not reported here: the floor stays where it is, and the
  // next() that reaches it raises it itself and reports the failure.
  if (auto floor = co_await store_.raise_version_floor(target)) raised(*floor);
  std::lock_guard lock(mutex_);
  raising_ = false;
}

void VersionClock::set_slot(std::optional<Slot> slot, std::uint64_t above, Deadline until) {
  std::lock_guard lock(mutex_);
  slot_ = slot;
  slot_until_ = until;
  last_ = std::max(last_, above);
  floor_ = std::max(floor_, above);
}

boost::asio::awaitable<Result<bool>> VersionClock::may_have_issued(std::uint64_t version) {
  if (version <= last_issued()) co_return true;
  // Another master's version (or a forged one): every version issued
  // anywhere is below the stored floor, which only the store knows now.
  auto floor = co_await store_.version_floor();
  if (!floor) co_return floor.error();
  raised(*floor);
  co_return version < *floor;
}

namespace {

// The least version at or above `at_least` that belongs to `slot`.
std::uint64_t in_slot(std::uint64_t at_least, const VersionClock::Slot& slot) {
  const std::uint64_t offset = (slot.index + slot.count - at_least % slot.count) % slot.count;
  return at_least + offset;
}

}  // namespace

boost::asio::awaitable<Result<std::uint64_t>> VersionClock::next(std::uint64_t above) {
  // A round that reaches the floor raises it; the next one then issues,
  // unless concurrent calls took everything the raise covered.
  for (int round = 0; round < 3; ++round) {
    std::uint64_t version = 0;
    std::uint64_t background_target = 0;
    bool issued = false;
    bool has_slot = false;
    {
      std::lock_guard lock(mutex_);
      has_slot = slot_.has_value() &&
                 (slot_until_ == Deadline::max() || std::chrono::steady_clock::now() < slot_until_);
      version = has_slot ? in_slot(std::max({now_(), last_ + 1, above + 1}), *slot_) : 0;
      if (has_slot && version < floor_) {
        last_ = version;
        issued = true;
        if (!raising_ && floor_ - version <= kFloorLeadMicros / 2) {
          raising_ = true;
          background_target = version + kFloorLeadMicros;
        }
      }
    }
    if (!has_slot) {
      co_return Error{Errc::kUnavailable,
                      "this master holds no version slot (its lease on the index lapsed); "
                      "try another master or again shortly"};
    }
    if (issued) {
      if (background_target != 0) {
        boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                              raise_in_background(background_target),
                              log_if_thrown("raising the version floor"));
      }
      co_return version;
    }
    // The floor is reached: nothing may be issued until it is stored higher.
    auto floor = co_await store_.raise_version_floor(version + kFloorLeadMicros);
    if (!floor) co_return floor.error();
    raised(*floor);
  }
  co_return Error{Errc::kInternal, "the version floor keeps being overtaken; try again"};
}

}  // namespace kalavara
