// Runs blocking work (fsync, synced RocksDB writes) on a thread pool so that
// an io thread never waits for a disk: durable writes of different requests
// then overlap (and RocksDB can group their commits) instead of queueing
// behind one another, and other requests keep being served meanwhile.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

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

}  // namespace kalavara
