// An IndexStore that forwards every call to another one, with the two hooks
// of the unit tests' MemoryIndexStore, for any store: one that lands a
// concurrent write between a caller's read and its compare-and-put, and
// one that makes writes fail. Header-only.
//
// Set the hooks while no call is running; the store is then as thread-safe
// as the one it forwards to.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <functional>
#include <utility>

#include "master/index_store.hpp"

namespace kalavara::testing {

class HookedIndexStore final : public IndexStore {
 public:
  explicit HookedIndexStore(IndexStore& inner) : inner_(inner) {}

  // The store the calls go to: a hook writes there, past the hooks.
  IndexStore& inner() { return inner_; }

  // Runs once, at the start of the next apply(), before the mutation goes
  // on (or fails): a concurrent write landing between a caller's read and
  // its write. Awaited, so it can await the inner store.
  std::function<boost::asio::awaitable<void>()> before_next_apply;
  // Every write (apply, put_volume, remove_volume, put_job,
  // raise_version_floor) fails with kInternal and reaches nothing.
  std::atomic<bool> fail_writes{false};

  Async<RecordRead> read(std::string_view key) override { return inner_.read(key); }

  Async<bool> apply(const KeyMutation& mutation) override {
    if (auto hook = std::exchange(before_next_apply, nullptr)) co_await hook();
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return co_await inner_.apply(mutation);
  }

  Async<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit) override {
    return inner_.list(prefix, start, limit);
  }

  Async<std::vector<PendingRemoval>> due_removals(
      std::string_view volume, std::uint64_t now, std::size_t limit,
      const std::optional<PendingRemoval>& after) override {
    return inner_.due_removals(volume, now, limit, after);
  }

  Async<std::vector<PendingCollection>> due_collections(std::uint64_t now,
                                                        std::size_t limit) override {
    return inner_.due_collections(now, limit);
  }

  Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit) override {
    return inner_.scan(after, limit);
  }

  Async<std::vector<RegisteredVolume>> volumes() override { return inner_.volumes(); }

  boost::asio::awaitable<Status> put_volume(const RegisteredVolume& volume) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return co_await inner_.put_volume(volume);
  }

  boost::asio::awaitable<Status> remove_volume(std::string_view url) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return co_await inner_.remove_volume(url);
  }

  Async<std::vector<std::string>> jobs() override { return inner_.jobs(); }

  boost::asio::awaitable<Status> put_job(std::string_view id, std::string_view state) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return co_await inner_.put_job(id, state);
  }

  Async<std::uint64_t> version_floor() override { return inner_.version_floor(); }

  Async<std::uint64_t> raise_version_floor(std::uint64_t floor) override {
    if (fail_writes) co_return Error{Errc::kInternal, "disk gone"};
    co_return co_await inner_.raise_version_floor(floor);
  }

 private:
  IndexStore& inner_;
};

}  // namespace kalavara::testing
