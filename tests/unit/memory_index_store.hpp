// An in-memory IndexStore for unit tests: the same contract as the RocksDB
// store (compare-and-put, queue merges, floors), synchronous, with hooks
// that let a test land a concurrent write between a read and a write, or
// make writes fail.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/blocking.hpp"
#include "master/index_store.hpp"

namespace kalavara::testing {

class MemoryIndexStore final : public IndexStore {
 public:
  std::map<std::string, IndexRecord> records;
  // (volume, not_before, key) -> up_to
  std::map<std::tuple<std::string, std::uint64_t, std::string>, std::uint64_t> removals;
  // (not_before, key) -> version
  std::map<std::pair<std::uint64_t, std::string>, std::uint64_t> collections;
  std::map<std::string, VolumeState> registered;
  std::map<std::string, std::string> job_states;
  std::uint64_t floor = 0;
  std::uint64_t absent_floor = 0;
  int floor_writes = 0;
  int applied = 0;
  int durable_applies = 0;
  bool fail_writes = false;
  // Runs once, at the start of the next apply(), before its compare: a
  // concurrent write landing between a caller's read and its write.
  std::function<void()> before_next_apply;

  Async<RecordRead> read(std::string_view key) override {
    RecordRead read;
    if (auto it = records.find(std::string(key)); it != records.end()) {
      read.record = it->second;
    } else {
      read.absent_floor = absent_floor;
    }
    co_return read;
  }

  Async<bool> apply(const KeyMutation& mutation) override {
    if (auto hook = std::exchange(before_next_apply, nullptr)) hook();
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return apply_now(mutation);
  }

  // apply() without the hooks, for tests that set up state.
  bool apply_now(const KeyMutation& mutation) {
    const std::string key = mutation.key;
    if (mutation.expected) {
      std::optional<IndexRecord> current;
      if (auto it = records.find(key); it != records.end()) current = it->second;
      if (current != mutation.expected->record) return false;
      if (mutation.record) {
        records[key] = *mutation.record;
      } else {
        records.erase(key);
      }
    }
    for (const auto& r : mutation.queue) {
      auto& up_to = removals[{r.volume, r.not_before, r.key}];
      up_to = std::max(up_to, r.up_to);
    }
    for (const auto& r : mutation.cleared) {
      auto it = removals.find({r.volume, r.not_before, r.key});
      if (it != removals.end() && it->second <= r.up_to) removals.erase(it);
    }
    for (const auto& c : mutation.collect) {
      auto& version = collections[{c.not_before, c.key}];
      version = std::max(version, c.version);
    }
    for (const auto& c : mutation.collected) {
      auto it = collections.find({c.not_before, c.key});
      if (it != collections.end() && it->second == c.version) collections.erase(it);
    }
    absent_floor = std::max(absent_floor, mutation.raise_absent_floor);
    ++applied;
    if (mutation.durable) ++durable_applies;
    return true;
  }

  Async<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit) override {
    KeyPage page;
    for (auto it = records.lower_bound(std::string(std::max(prefix, start)));
         it != records.end() && it->first.starts_with(prefix); ++it) {
      if (!it->second.committed()) continue;
      if (page.keys.size() == limit) {
        page.next = it->first;
        break;
      }
      page.keys.push_back(it->first);
    }
    co_return page;
  }

  Async<std::vector<PendingRemoval>> due_removals(
      std::string_view volume, std::uint64_t now, std::size_t limit,
      const std::optional<PendingRemoval>& after) override {
    std::vector<PendingRemoval> due;
    for (const auto& [entry, up_to] : removals) {
      const auto& [entry_volume, not_before, key] = entry;
      if (entry_volume != volume || not_before > now) continue;
      if (after && std::tie(not_before, key) <= std::tie(after->not_before, after->key)) continue;
      if (due.size() == limit) break;
      due.push_back({entry_volume, key, up_to, not_before});
    }
    co_return due;
  }

  Async<std::vector<PendingCollection>> due_collections(std::uint64_t now,
                                                        std::size_t limit) override {
    std::vector<PendingCollection> due;
    for (const auto& [entry, version] : collections) {
      if (entry.first > now || due.size() == limit) break;
      due.push_back({entry.second, version, entry.first});
    }
    co_return due;
  }

  Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit) override {
    std::vector<KeyRecord> out;
    for (auto it = records.upper_bound(std::string(after));
         it != records.end() && out.size() < limit; ++it) {
      out.push_back({it->first, it->second});
    }
    co_return out;
  }

  Async<std::vector<RegisteredVolume>> volumes() override {
    std::vector<RegisteredVolume> out;
    for (const auto& [url, state] : registered) out.push_back({url, state});
    co_return out;
  }

  boost::asio::awaitable<Status> put_volume(const RegisteredVolume& volume) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    registered[volume.url] = volume.state;
    co_return Status{};
  }

  boost::asio::awaitable<Status> remove_volume(std::string_view url) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    registered.erase(std::string(url));
    co_return Status{};
  }

  Async<std::vector<std::string>> jobs() override {
    std::vector<std::string> out;
    for (const auto& [id, state] : job_states) out.push_back(state);
    co_return out;
  }

  boost::asio::awaitable<Status> put_job(std::string_view id, std::string_view state) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    job_states[std::string(id)] = std::string(state);
    co_return Status{};
  }

  Async<std::uint64_t> version_floor() override { co_return floor; }

  Async<std::uint64_t> raise_version_floor(std::uint64_t value) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    if (value > floor) {
      floor = value;
      ++floor_writes;
    }
    co_return floor;
  }

  // Queued removals of `key`, for assertions.
  std::vector<PendingRemoval> removals_of(std::string_view key) const {
    std::vector<PendingRemoval> out;
    for (const auto& [entry, up_to] : removals) {
      const auto& [volume, not_before, entry_key] = entry;
      if (entry_key == key) out.push_back({volume, entry_key, up_to, not_before});
    }
    return out;
  }
};

// Runs a coroutine of the code under test to completion.
template <class T>
T run(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  return run_to_completion(io, std::move(task));
}

}  // namespace kalavara::testing
