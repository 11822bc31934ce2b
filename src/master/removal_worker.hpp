// Carries out what the key protocol queues for the volumes — a deleted key's
// copies, an overwritten key's old version once its grace is over — and
// collects tombstones whose removals are all confirmed. Every removal is
// reported back to the protocol, which clears it from the durable queue;
// one that fails stays queued and is tried again when its volume next
// passes a health check. With several masters on one index, only the
// leader (master/leadership.hpp) retries queued removals and collects
// tombstones; every master carries out its own deletes' removals at once.
// Thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "master/key_locks.hpp"
#include "master/key_protocol.hpp"
#include "master/leadership.hpp"
#include "master/volume_health.hpp"

namespace kalavara {

class RemovalWorker {
 public:
  // `protocol`, `locks` and `leadership` must outlive the worker.
  RemovalWorker(KeyProtocol& protocol, KeyLocks& locks,
                const Leadership& leadership = sole_master());

  // Carries out a delete's `removals` (of one key, up to its tombstone's
  // version) now, in parallel, on the volumes that `health` reports up.
  // When one stays queued, leaves a delete marker on the volumes that took
  // theirs, or else on the first of `marker_candidates` that is up. Returns
  // once each was tried; those done are reported to the protocol in the
  // background.
  boost::asio::awaitable<void> remove_now(std::vector<PendingRemoval> removals,
                                          const VolumeHealth& health,
                                          std::vector<std::string> marker_candidates);

  // Called when `volume` passed a health check: carries out its due
  // removals in the background on `executor`, one run per volume at a time,
  // while this master leads.
  void volume_alive(const std::string& volume, const boost::asio::any_io_executor& executor);

  // Collects due tombstones every `interval` while this master leads, on
  // `executor`, until stop().
  void start(const boost::asio::any_io_executor& executor,
             std::chrono::milliseconds interval = std::chrono::seconds(1));
  void stop();

  // Removals carried out on a volume, and attempts that failed (each is
  // tried again later), since the start.
  std::uint64_t removed() const { return removed_.load(std::memory_order_relaxed); }
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  boost::asio::awaitable<void> apply_due(std::string volume,
                                         std::shared_ptr<std::atomic<bool>> running);
  boost::asio::awaitable<void> collect_loop(std::chrono::milliseconds interval);
  // Carries out `removals` (of any keys) in parallel.
  struct Outcome {
    std::vector<PendingRemoval> done;
    bool unreachable = false;  // a volume could not be reached (or did not answer)
  };
  boost::asio::awaitable<Outcome> carry_out(std::vector<PendingRemoval> removals);
  // Those of one key, holding it (see KeyLocks); a removal the record no
  // longer wants counts as done.
  boost::asio::awaitable<Outcome> carry_out_for_key(std::vector<PendingRemoval> removals);
  // Tells the protocol, key by key, which removals were done.
  boost::asio::awaitable<void> report(const std::vector<PendingRemoval>& done);

  KeyProtocol& protocol_;
  KeyLocks& locks_;
  const Leadership& leadership_;
  std::atomic<bool> stopped_{false};
  std::atomic<std::uint64_t> removed_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::optional<boost::asio::steady_timer> timer_;  // the collection loop's
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> runs_;  // per volume
};

}  // namespace kalavara
