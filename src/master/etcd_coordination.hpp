// How masters sharing one etcd index tell themselves apart: each holds an
// etcd lease, and under it a version slot (so no two issue the same
// version: master/version_clock.hpp) and, for one of them, the leadership
// of the background work (master/leadership.hpp). Keys, under the index's
// prefix P:
//
//   P "x/slots/NN"   the master holding slot NN (00 to slots-1): its identity
//   P "x/leader"     the master leading the background work: its identity
//
// Each key is attached to its holder's lease, so etcd deletes it when the
// lease ends: revoked at a clean stop (another master takes over at its
// next renewal), or expired TTL seconds after the holder's last renewal
// (a master killed, or cut off from etcd). A key is claimed with a
// transaction that puts it only while it does not exist.
//
// A holder that cannot renew stops using what it holds before the lease
// can expire: the slot and the leadership count as held only until half
// the TTL after the last renewal that etcd answered was sent. A renewal
// that then succeeds (the lease still lives) restores both; a lease that
// expired is granted anew and its keys claimed again. A slot claimed again
// first reads the shared version floor, so this master's next versions are
// above every version the slot's earlier holder issued.
//
// Thread-safe: leading() and slot() from any thread; join(), start() and
// stop() from the wiring.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/metrics.hpp"
#include "master/etcd_client.hpp"
#include "master/index_store.hpp"
#include "master/leadership.hpp"
#include "master/version_clock.hpp"

namespace kalavara {

struct CoordinationSettings {
  // The lease's TTL: how long a killed master's slot and leadership stay
  // held before another master may take them.
  std::chrono::seconds lease_ttl{6};
  // How often the lease is renewed (and a free leadership tried for); a
  // failed renewal is tried again after a quarter of this.
  std::chrono::milliseconds renew_interval{1000};
  // How many masters may share the index at once.
  std::uint64_t slots = 16;
  // How this master is named in the keys and in other masters' logs.
  std::string identity;
};

class EtcdCoordination final : public Leadership {
 public:
  // `client`, `store` (for the version floor) and `clock` must outlive it.
  // `prefix` is the index's (P above).
  EtcdCoordination(etcd::Client& client, std::string prefix, IndexStore& store, VersionClock& clock,
                   CoordinationSettings settings);

  // Grants the lease and claims a slot (and the leadership, when free)
  // before the master serves. Fails with kUnavailable when etcd cannot be
  // reached, kConflict when every slot is held.
  boost::asio::awaitable<Status> join();

  // Renews the lease every renew_interval on `executor` until stop().
  void start(const boost::asio::any_io_executor& executor);

  // Gives up the slot and the leadership at once, and revokes the lease in
  // the background, so another master takes over without waiting for it
  // to expire.
  void stop();

  bool leading() const override;
  bool shared() const override { return true; }

  // The slot held now, if any: none past half a lease without a renewal.
  std::optional<VersionClock::Slot> slot() const;

  // Writes kalavara_master_leading, _version_slot and
  // _lease_renewal_failures_total. Thread-safe.
  void collect(metrics::Writer& out) const;

 private:
  using SteadyClock = std::chrono::steady_clock;

  // One renewal (or grant) and the claims that follow it; false when the
  // lease could not be renewed or granted.
  boost::asio::awaitable<bool> tick();
  boost::asio::awaitable<void> run();
  // The first free slot claimed under the lease, or nullopt.
  boost::asio::awaitable<std::optional<std::uint64_t>> claim_slot();
  // Whether `key` is now held under this master's lease, claiming it when
  // nobody holds it.
  boost::asio::awaitable<bool> claim(const std::string& key);
  void drop(std::string_view why);  // gives up slot and leadership (loop only)

  etcd::Client& client_;
  const std::string prefix_;
  IndexStore& store_;
  VersionClock& clock_;
  const CoordinationSettings settings_;

  // The loop's own state (one coroutine at a time).
  std::int64_t lease_ = 0;
  std::optional<std::uint64_t> slot_index_;
  bool lead_claimed_ = false;
  SteadyClock::time_point last_renewal_ok_{};
  bool warned_ = false;

  std::optional<boost::asio::steady_timer> timer_;
  std::atomic<bool> stopped_{false};
  // Read by any thread: the leadership holds until this instant (steady
  // clock ticks; 0: not leading).
  std::atomic<SteadyClock::rep> leading_until_{0};
  std::atomic<std::uint64_t> renewal_failures_{0};
  mutable std::mutex mutex_;
  std::optional<VersionClock::Slot> slot_;  // for slot(), under mutex_
  SteadyClock::time_point slot_until_{};    // slot_ is held until then
};

}  // namespace kalavara
