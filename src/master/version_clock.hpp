// Issues write versions: unique and increasing, also across restarts, so that
// replicas, the index, rebuild and repair can always tell the newest copy of
// a key from a stale one. A version is the wall clock in microseconds, or one
// more than the last version issued when the clock has not moved on (or went
// back). A floor is persisted ahead of use: every version issued is below the
// stored floor, so every version issued after a restart is above every
// version issued before it, whatever the clock does.
//
// The floor is moved ahead in the background while half its lead is left,
// so a version normally costs no I/O; only when the floor is reached (at
// start, or when the store stalled for seconds) does next() wait for it.
//
// Several masters on one shared store (etcd) share the floor, and each
// holds a slot: the versions a master issues are all congruent to its slot
// modulo the slot count, so no two masters ever issue the same version,
// whatever their clocks say. A master without a slot (its lease lapsed)
// issues nothing until it has one again. One master alone holds slot 0 of 1:
// every number is its.
//
// Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "master/index_store.hpp"

namespace kalavara {

// Microseconds since the Unix epoch, by the system clock.
std::uint64_t wall_clock_micros();

class VersionClock {
 public:
  using Now = std::function<std::uint64_t()>;

  // How far ahead of the last version the floor is stored.
  static constexpr std::uint64_t kFloorLeadMicros = 10'000'000;

  // A master's share of the versions: those equal to `index` modulo `count`.
  struct Slot {
    std::uint64_t index = 0;
    std::uint64_t count = 1;  // >= 1, > index
    bool operator==(const Slot&) const = default;
  };

  // `store` must outlive the clock. Fails when the floor cannot be read.
  // The clock starts with slot 0 of 1.
  static boost::asio::awaitable<Result<std::unique_ptr<VersionClock>>> open(
      IndexStore& store, Now now = wall_clock_micros);

  // The next version: above `above` (a version the key already holds, so a
  // write that starts after another's commit comes after it even when that
  // one was issued by a master whose clock runs ahead) and above every
  // version issued by this clock. Fails with kInternal when the floor must
  // move and cannot be stored, kUnavailable without a slot: then no version
  // is issued at all. Background work it starts runs on the caller's
  // executor, which must outlive the clock's use.
  boost::asio::awaitable<Result<std::uint64_t>> next(std::uint64_t above = 0);

  using Deadline = std::chrono::steady_clock::time_point;

  // Takes a slot (several masters: the one their coordination gave this
  // one), or gives it up (nullopt: next() fails until a slot is set).
  // Every version issued from then on is above `above`: the stored floor,
  // read after the slot was claimed, is above every version an earlier
  // holder of the slot issued. The slot is held until `until`: past it
  // next() fails as without one, so a master that stalls past its lease
  // issues nothing its successor in the slot might issue too, before its
  // coordination has even noticed.
  void set_slot(std::optional<Slot> slot, std::uint64_t above = 0,
                Deadline until = Deadline::max());

  // Whether `version` may have been issued, by this clock or by another
  // master's on the same store: at or below the last this clock issued, or
  // below the stored floor (read again when above this clock's own).
  boost::asio::awaitable<Result<bool>> may_have_issued(std::uint64_t version);

  // The stored floor: every version issued so far is below it.
  std::uint64_t floor() const;

  // No version above this has been issued, by this clock or before a
  // restart: a version above it is forged or corrupt.
  std::uint64_t last_issued() const;

 private:
  VersionClock(IndexStore& store, Now now, std::uint64_t floor);
  boost::asio::awaitable<void> raise_in_background(std::uint64_t target);
  void raised(std::uint64_t floor);

  IndexStore& store_;
  const Now now_;
  mutable std::mutex mutex_;
  std::uint64_t last_;
  std::uint64_t floor_;
  bool raising_ = false;
  std::optional<Slot> slot_ = Slot{};
  Deadline slot_until_ = Deadline::max();
};

}  // namespace kalavara
