// Waiting for several asynchronous calls at once (a delete's removals on
// every replica, say), so the slowest, not the sum, sets the pace.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace kalavara {

// Runs every task concurrently on the caller's executor and returns their
// results, in the tasks' order, once all are done. The executor must run
// one thing at a time (an io_context run by one thread, or a strand). The
// tasks must not throw.
template <class T>
boost::asio::awaitable<std::vector<T>> when_all(std::vector<boost::asio::awaitable<T>> tasks) {
  namespace asio = boost::asio;
  struct Shared {
    explicit Shared(const asio::any_io_executor& executor, std::size_t n)
        : results(n), left(n), all_done(executor, asio::steady_timer::time_point::max()) {}
    std::vector<std::optional<T>> results;
    std::size_t left;
    asio::steady_timer all_done;  // cancelled by the last task to finish
  };
  const auto executor = co_await asio::this_coro::executor;
  auto shared = std::make_shared<Shared>(executor, tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto run = [](std::shared_ptr<Shared> state, std::size_t index,
                  asio::awaitable<T> task) -> asio::awaitable<void> {
      state->results[index].emplace(co_await std::move(task));
      if (--state->left == 0) state->all_done.cancel();
    };
    asio::co_spawn(executor, run(shared, i, std::move(tasks[i])), asio::detached);
  }
  // A task that never suspends may have finished already; the others can
  // only finish once this coroutine suspends, so `left` cannot reach zero
  // between this check and the wait.
  if (shared->left > 0) co_await shared->all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  std::vector<T> results;
  results.reserve(shared->results.size());
  for (auto& result : shared->results) results.push_back(std::move(*result));
  co_return results;
}

}  // namespace kalavara
