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
// Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "master/index_store.hpp"

namespace kalavara {

// Microseconds since the Unix epoch, by the system clock.
std::uint64_t wall_clock_micros();

class VersionClock {
 public:
  using Now = std::function<std::uint64_t()>;

  // How far ahead of the last version the floor is stored.
  static constexpr std::uint64_t kFloorLeadMicros = 10'000'000;

  // `store` must outlive the clock. Fails when the floor cannot be read.
  static boost::asio::awaitable<Result<std::unique_ptr<VersionClock>>> open(
      IndexStore& store, Now now = wall_clock_micros);

  // The next version. Fails (kInternal) only when the floor must move and
  // cannot be stored: then no version is issued at all. Background work it
  // starts runs on the caller's executor, which must outlive the clock's use.
  boost::asio::awaitable<Result<std::uint64_t>> next();

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
};

}  // namespace kalavara
