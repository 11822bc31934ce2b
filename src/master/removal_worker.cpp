#include "master/removal_worker.hpp"
#include "common/spawn.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/internal_api.hpp"
#include "common/when_all.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;

// Due removals read per scan, and carried out at once per volume.
constexpr std::size_t kScanBatch = 256;
constexpr std::size_t kParallelRemovals = 16;
constexpr std::size_t kCollectBatch = 1024;

asio::awaitable<Status> remove_on_volume(PendingRemoval removal) {
  auto volume = parse_base_url(removal.volume);
  if (!volume) co_return volume.error();
  // A named variable, not a temporary in the co_await expression: GCC 12
  // destroys such temporaries twice.
  const internal::RemovalCall call{removal.key, removal.up_to, internal::RemovalCall::Scope::kUpTo};
  co_return co_await internal::send_removal(*volume, call);
}

}  // namespace

RemovalWorker::RemovalWorker(KeyProtocol& protocol, KeyLocks& locks, const Leadership& leadership)
    : protocol_(protocol), locks_(locks), leadership_(leadership) {}

asio::awaitable<RemovalWorker::Outcome> RemovalWorker::carry_out_for_key(
    std::vector<PendingRemoval> removals) {
  Outcome outcome;
  // Held for the check and the removals: a move of this key cannot commit
  // in between and have its new copy removed.
  KeyLocks::Held held(locks_, removals.front().key, KeyLocks::Mode::kShared);
  if (!held) {
    // A job is moving the key: left queued for the next round.
    spdlog::debug("removal of a copy of {} waits: the key is being moved", removals.front().key);
    co_return outcome;
  }
  auto current = co_await protocol_.read(removals.front().key);
  if (!current) co_return outcome;
  std::vector<PendingRemoval> wanted;
  for (auto& removal : removals) {
    // A removal the record no longer wants is done without the volume.
    (removal_wanted(*current, removal) ? wanted : outcome.done).push_back(std::move(removal));
  }
  std::vector<asio::awaitable<Status>> tasks;
  for (const auto& removal : wanted) tasks.push_back(remove_on_volume(removal));
  const auto results = co_await when_all(std::move(tasks));
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const auto& result = results[i];
    if (result) {
      removed_.fetch_add(1, std::memory_order_relaxed);
      outcome.done.push_back(std::move(wanted[i]));
      continue;
    }
    failed_.fetch_add(1, std::memory_order_relaxed);
    const auto code = result.error().code;
    if (code == Errc::kUnavailable || code == Errc::kNoAnswer) outcome.unreachable = true;
    spdlog::debug("removal of a version of a key on {} not done yet: {}", wanted[i].volume,
                  result.error().message);
  }
  co_return outcome;
}

asio::awaitable<RemovalWorker::Outcome> RemovalWorker::carry_out(
    std::vector<PendingRemoval> removals) {
  // Grouped by key, in order of first appearance.
  std::vector<std::vector<PendingRemoval>> groups;
  std::map<std::string, std::size_t, std::less<>> group_of;
  for (auto& removal : removals) {
    const auto [at, added] = group_of.try_emplace(removal.key, groups.size());
    if (added) groups.emplace_back();
    groups[at->second].push_back(std::move(removal));
  }
  Outcome outcome;
  for (std::size_t first = 0; first < groups.size(); first += kParallelRemovals) {
    const auto last = std::min(groups.size(), first + kParallelRemovals);
    std::vector<asio::awaitable<Outcome>> tasks;
    for (std::size_t i = first; i < last; ++i) {
      tasks.push_back(carry_out_for_key(std::move(groups[i])));
    }
    for (auto& result : co_await when_all(std::move(tasks))) {
      for (auto& done : result.done) outcome.done.push_back(std::move(done));
      outcome.unreachable = outcome.unreachable || result.unreachable;
    }
  }
  co_return outcome;
}

asio::awaitable<void> RemovalWorker::report(const std::vector<PendingRemoval>& done) {
  std::map<std::string_view, std::vector<PendingRemoval>> by_key;
  for (const auto& removal : done) by_key[removal.key].push_back(removal);
  for (const auto& [key, removals] : by_key) {
    if (auto status = co_await protocol_.removals_done(key, removals); !status) {
      // Still queued: carried out (harmlessly) again later.
      spdlog::warn("could not clear done removals from the queue: {}", status.error().message);
    }
  }
}

asio::awaitable<void> RemovalWorker::remove_now(std::vector<PendingRemoval> removals,
                                                const VolumeHealth& health,
                                                std::vector<std::string> marker_candidates) {
  if (removals.empty()) co_return;
  const std::string key = removals.front().key;
  const auto version = removals.front().up_to;
  std::vector<PendingRemoval> up;
  std::size_t left_queued = 0;
  for (auto& removal : removals) {
    if (health.is_up(removal.volume)) {
      up.push_back(std::move(removal));
    } else {
      ++left_queued;
    }
  }
  const auto attempted = up.size();
  auto outcome = co_await carry_out(std::move(up));
  left_queued += attempted - outcome.done.size();
  std::vector<std::string> marked;
  if (left_queued > 0) {
    // A copy stays behind until its volume takes the removal. Should the
    // index be lost before then, a rebuild would see only that copy: a
    // marker on the volumes that did take it (or else on another that is
    // up) tells it the key was deleted.
    std::vector<std::string> wanted;
    for (const auto& removal : outcome.done) {
      if (removal.up_to == version) wanted.push_back(removal.volume);
    }
    if (wanted.empty()) {
      for (const auto& candidate : marker_candidates) {
        if (!health.is_up(candidate)) continue;
        wanted.push_back(candidate);
        break;
      }
    }
    for (const auto& volume : wanted) {
      auto url = parse_base_url(volume);
      if (!url) continue;
      if (auto status = co_await internal::send_marker(*url, key, version); !status) {
        spdlog::warn("could not leave a delete marker on {}: {}", volume, status.error().message);
        continue;
      }
      marked.push_back(volume);
    }
  }
  if (outcome.done.empty() && marked.empty()) co_return;
  // The copies are gone: the caller may answer now. Recording that (and the
  // markers) is bookkeeping — lost, a removal is only carried out again —
  // so it does not hold the answer up.
  auto report_owned = [](KeyProtocol& protocol, std::string of_key,
                         std::vector<PendingRemoval> done,
                         std::vector<std::string> markers) -> asio::awaitable<void> {
    if (auto status = co_await protocol.removals_done(of_key, done, markers); !status) {
      spdlog::warn("could not clear done removals from the queue: {}", status.error().message);
    }
  };
  asio::co_spawn(co_await asio::this_coro::executor,
                 report_owned(protocol_, key, std::move(outcome.done), std::move(marked)),
                 log_if_thrown("recording done removals"));
}

void RemovalWorker::volume_alive(const std::string& volume, const asio::any_io_executor& executor) {
  if (stopped_ || !leadership_.leading()) return;
  std::shared_ptr<std::atomic<bool>> running;
  {
    std::lock_guard lock(mutex_);
    auto& flag = runs_[volume];
    if (!flag) flag = std::make_shared<std::atomic<bool>>(false);
    running = flag;
  }
  if (running->exchange(true)) return;  // a run for this volume is under way
  asio::co_spawn(executor, apply_due(volume, running), log_if_thrown("applying queued removals"));
}

asio::awaitable<void> RemovalWorker::apply_due(std::string volume,
                                               std::shared_ptr<std::atomic<bool>> running) {
  std::optional<PendingRemoval> after;
  while (!stopped_ && leadership_.leading()) {
    auto due = co_await protocol_.due_removals(volume, kScanBatch, after);
    if (!due) {
      spdlog::warn("cannot read the removal queue of {}: {}", volume, due.error().message);
      break;
    }
    if (due->empty()) break;
    after = due->back();
    const bool last_batch = due->size() < kScanBatch;
    const auto outcome = co_await carry_out(std::move(due).value());
    co_await report(outcome.done);
    // A volume that cannot be reached is left until its next passed check,
    // which starts again from the front; removals it refuses are passed by,
    // so they do not hold up the ones behind them.
    if (outcome.unreachable || last_batch) break;
  }
  *running = false;
}

void RemovalWorker::start(const asio::any_io_executor& executor,
                          std::chrono::milliseconds interval) {
  timer_.emplace(executor);
  asio::co_spawn(executor, collect_loop(interval), log_if_thrown("tombstone collection"));
}

void RemovalWorker::stop() {
  stopped_ = true;
  if (timer_) asio::post(timer_->get_executor(), [this] { timer_->cancel(); });
}

asio::awaitable<void> RemovalWorker::collect_loop(std::chrono::milliseconds interval) {
  while (!stopped_) {
    while (leadership_.leading()) {
      auto collected = co_await protocol_.collect_tombstones(kCollectBatch);
      if (!collected) {
        spdlog::warn("tombstone collection failed: {}", collected.error().message);
        break;
      }
      if (*collected < kCollectBatch || stopped_) break;
    }
    timer_->expires_after(interval);
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace kalavara
