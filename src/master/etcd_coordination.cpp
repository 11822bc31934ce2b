#include "master/etcd_coordination.hpp"
#include "common/spawn.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace kalavara {
namespace {

namespace asio = boost::asio;

std::string slot_key(const std::string& prefix, std::uint64_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%02llu", static_cast<unsigned long long>(index));
  return prefix + "x/slots/" + digits;
}

}  // namespace

EtcdCoordination::EtcdCoordination(etcd::Client& client, std::string prefix, IndexStore& store,
                                   VersionClock& clock, CoordinationSettings settings)
    : client_(client),
      prefix_(std::move(prefix)),
      store_(store),
      clock_(clock),
      settings_(std::move(settings)) {
  // Until join() has claimed one, this master issues no version.
  clock_.set_slot(std::nullopt);
}

bool EtcdCoordination::leading() const {
  const auto until = leading_until_.load(std::memory_order_acquire);
  return until != 0 && SteadyClock::now().time_since_epoch().count() < until;
}

std::optional<VersionClock::Slot> EtcdCoordination::slot() const {
  std::lock_guard lock(mutex_);
  if (SteadyClock::now() >= slot_until_) return std::nullopt;
  return slot_;
}

asio::awaitable<bool> EtcdCoordination::claim(const std::string& key) {
  etcd::Compare absent;
  absent.key = key;
  absent.target = etcd::Compare::Target::kCreateRevision;
  absent.number = 0;
  const std::vector<etcd::Compare> compares{absent};
  const std::vector<etcd::Op> success{etcd::Op::put(key, settings_.identity, lease_)};
  const std::vector<etcd::Op> failure{etcd::Op::range(key)};
  auto answer = co_await client_.txn(compares, success, failure);
  if (answer && answer->succeeded) co_return true;
  // Held already — perhaps by this lease, when an earlier answer was lost.
  std::vector<etcd::KeyValue> holders;
  if (answer && !answer->ranges.empty()) {
    holders = answer->ranges.front().kvs;
  } else {
    etcd::RangeRequest read;
    read.key = key;
    auto current = co_await client_.range(read);
    if (!current) co_return false;
    holders = current->kvs;
  }
  co_return !holders.empty() && holders.front().lease == lease_;
}

asio::awaitable<std::optional<std::uint64_t>> EtcdCoordination::claim_slot() {
  etcd::RangeRequest held;
  held.key = prefix_ + "x/slots/";
  held.range_end = etcd::prefix_end(held.key);
  auto current = co_await client_.range(held);
  if (!current) co_return std::nullopt;
  for (std::uint64_t index = 0; index < settings_.slots; ++index) {
    const auto key = slot_key(prefix_, index);
    const auto found = std::find_if(current->kvs.begin(), current->kvs.end(),
                                    [&](const etcd::KeyValue& kv) { return kv.key == key; });
    if (found != current->kvs.end()) {
      if (found->lease == lease_) co_return index;  // claimed by an answer that was lost
      continue;
    }
    const bool claimed = co_await claim(key);
    if (claimed) co_return index;
  }
  co_return std::nullopt;
}

void EtcdCoordination::drop(std::string_view why) {
  const bool had = slot_index_.has_value() || lead_claimed_;
  clock_.set_slot(std::nullopt);
  leading_until_.store(0, std::memory_order_release);
  if (lead_claimed_) spdlog::warn("kalavara-master: stopped leading the background work: {}", why);
  slot_index_.reset();
  lead_claimed_ = false;
  {
    std::lock_guard lock(mutex_);
    slot_.reset();
  }
  if (had) spdlog::warn("kalavara-master: gave up version slot and leadership: {}", why);
}

asio::awaitable<bool> EtcdCoordination::tick() {
  const auto sent = SteadyClock::now();
  if (lease_ != 0) {
    auto renewed = co_await client_.keep_alive(lease_);
    if (!renewed && renewed.error().code == Errc::kNotFound) {
      drop("its etcd lease expired");
      lease_ = 0;
    } else if (!renewed) {
      renewal_failures_.fetch_add(1, std::memory_order_relaxed);
      if (!warned_ && sent - last_renewal_ok_ > settings_.lease_ttl / 2) {
        warned_ = true;
        spdlog::warn(
            "kalavara-master: cannot renew its etcd lease ({}): issuing no versions and "
            "running no background work until it can",
            renewed.error().message);
      }
      co_return false;
    }
  }
  if (lease_ == 0) {
    auto granted = co_await client_.grant_lease(settings_.lease_ttl.count());
    if (!granted) {
      renewal_failures_.fetch_add(1, std::memory_order_relaxed);
      if (!warned_) {
        warned_ = true;
        spdlog::warn("kalavara-master: cannot get an etcd lease: {}", granted.error().message);
      }
      co_return false;
    }
    lease_ = *granted;
  }
  const auto hold = settings_.lease_ttl / 2;
  if (last_renewal_ok_ != SteadyClock::time_point{} && sent > last_renewal_ok_ + hold) {
    spdlog::warn(
        "kalavara-master: etcd lease {} renewed after {} ms without: version slot and "
        "leadership lapsed meanwhile (PUTs and DELETEs answered 503)",
        lease_,
        std::chrono::duration_cast<std::chrono::milliseconds>(sent - last_renewal_ok_).count());
  } else if (warned_) {
    spdlog::info("kalavara-master: etcd lease {} renewed", lease_);
  }
  warned_ = false;
  last_renewal_ok_ = sent;
  const auto until = sent + hold;
  if (!slot_index_) {
    if (auto index = co_await claim_slot()) {
      // Above every version the slot's earlier holder issued: each was
      // below the floor it had stored first.
      auto floor = co_await store_.version_floor();
      if (floor) {
        slot_index_ = *index;
        spdlog::info("kalavara-master: holds version slot {} of {} (etcd lease {})", *index,
                     settings_.slots, lease_);
        clock_.set_slot(VersionClock::Slot{*index, settings_.slots}, *floor, until);
      }
    }
  } else {
    clock_.set_slot(VersionClock::Slot{*slot_index_, settings_.slots}, 0, until);
  }
  const bool was_leading = lead_claimed_;
  {
    std::lock_guard lock(mutex_);
    slot_ = slot_index_ ? std::optional(VersionClock::Slot{*slot_index_, settings_.slots})
                        : std::nullopt;
    slot_until_ = until;
  }
  if (!lead_claimed_) lead_claimed_ = co_await claim(prefix_ + "x/leader");
  if (lead_claimed_ && !was_leading) {
    spdlog::info(
        "kalavara-master: {} is leading the background work (maintenance jobs, queued "
        "removals, tombstone collection)",
        settings_.identity);
  }
  leading_until_.store(lead_claimed_ && !stopped_ ? until.time_since_epoch().count() : 0,
                       std::memory_order_release);
  co_return true;
}

asio::awaitable<Status> EtcdCoordination::join() {
  const bool renewed = co_await tick();
  if (!renewed) {
    co_return Error{Errc::kUnavailable, "cannot get an etcd lease: etcd is unreachable"};
  }
  if (!slot_index_) {
    co_return Error{Errc::kConflict, "every one of the " + std::to_string(settings_.slots) +
                                         " version slots is held by a running master"};
  }
  co_return Status{};
}

void EtcdCoordination::start(const asio::any_io_executor& executor) {
  timer_.emplace(asio::make_strand(executor));
  asio::co_spawn(timer_->get_executor(), run(), log_if_thrown("the etcd lease"));
}

asio::awaitable<void> EtcdCoordination::run() {
  // Renewals are spaced from when each was sent, however long its answer
  // took; a failed one is tried again sooner: the slot lapses half a TTL
  // after the last renewal etcd answered.
  auto sent = SteadyClock::now();
  bool renewed = true;
  while (!stopped_) {
    timer_->expires_at(sent + (renewed ? settings_.renew_interval : settings_.renew_interval / 4));
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    sent = SteadyClock::now();
    renewed = co_await tick();
  }
  drop("the master is stopping");
  if (lease_ != 0) {
    if (auto revoked = co_await client_.revoke_lease(lease_); !revoked) {
      spdlog::warn("kalavara-master: could not revoke its etcd lease ({}); it expires in {} s",
                   revoked.error().message, settings_.lease_ttl.count());
    }
  }
}

void EtcdCoordination::stop() {
  stopped_ = true;
  leading_until_.store(0, std::memory_order_release);
  if (timer_) asio::post(timer_->get_executor(), [this] { timer_->cancel(); });
}

void EtcdCoordination::collect(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  out.single("kalavara_master_leading", Type::kGauge,
             "1 while this master leads the background work (several masters on etcd).",
             leading() ? 1.0 : 0.0);
  const auto held = slot();
  out.single("kalavara_master_version_slot", Type::kGauge,
             "The version slot this master holds (several masters on etcd); -1 while it holds "
             "none and so accepts no writes.",
             held ? static_cast<double>(held->index) : -1.0);
  out.single("kalavara_master_lease_renewal_failures_total", Type::kCounter,
             "Renewals of this master's etcd lease that failed.",
             static_cast<double>(renewal_failures_.load(std::memory_order_relaxed)));
}

}  // namespace kalavara
