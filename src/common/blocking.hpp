// Runs blocking work (fsync, synced RocksDB writes) on a thread pool so that
// an io thread never waits for a disk: durable writes of different requests
// then overlap (and RocksDB can group their commits) instead of queueing
// behind one another, and other requests keep being served meanwhile.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <utility>

namespace kalavara {

namespace detail {
// `work` is a parameter, so it lives in this coroutine's frame while it runs.
template <class F>
boost::asio::awaitable<int> invoke(F work) {
  work();
  co_return 0;
}
}  // namespace detail

// Runs `work` on `pool` and resumes the caller on its own executor when it
// is done. Pass results out through references the caller owns: the caller
// is suspended until `work` returns, so they stay valid. `work` must not
// throw.
template <class F>
boost::asio::awaitable<void> run_blocking(boost::asio::thread_pool& pool, F work) {
  co_await boost::asio::co_spawn(pool.get_executor(), detail::invoke(std::move(work)),
                                 boost::asio::use_awaitable);
}

// Runs `task` on `io` until it completes and returns its result: for start-up
// work and tests, while `io` runs nothing else. `io` is restarted before and
// after, so it can be run again. An exception from `task` is rethrown.
template <class T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  // Spawned as awaitable<void>: co_spawn of an awaitable<T> needs a default
  // T for its error path, which Result<T> has not.
  auto wrapper = [](boost::asio::awaitable<T> inner,
                    std::optional<T>& out) -> boost::asio::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  boost::asio::co_spawn(io, wrapper(std::move(task), result),
                        [&failure](std::exception_ptr e) { failure = e; });
  io.restart();
  io.run();
  io.restart();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

}  // namespace kalavara
