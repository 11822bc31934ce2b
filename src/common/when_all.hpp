// Waiting for several asynchronous calls at once (a delete's removals on
// every replica, say), so the slowest, not the sum, sets the pace.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "common/spawn.hpp"

namespace kalavara {

// Runs every task concurrently on the caller's executor and returns their
// results, in the tasks' order, once all are done. One task is simply
// awaited. The executor must run one thing at a time (an io_context run by
// one thread, or a strand). The tasks must not throw.
template <class T>
boost::asio::awaitable<std::vector<T>> when_all(std::vector<boost::asio::awaitable<T>> tasks) {
  namespace asio = boost::asio;
  std::vector<T> results;
  results.reserve(tasks.size());
  if (tasks.size() == 1) {
    results.push_back(co_await std::move(tasks.front()));
    co_return results;
  }
  struct Shared {
    asio::any_io_executor executor;
    std::vector<std::optional<T>> results;
    std::size_t left = 0;
    // The waiting coroutine, resumed by the last task to finish.
    std::optional<asio::any_completion_handler<void()>> waiter;
  };
  const auto executor = co_await asio::this_coro::executor;
  auto shared = std::make_shared<Shared>();
  shared->executor = executor;
  shared->results.resize(tasks.size());
  shared->left = tasks.size();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto run = [](std::shared_ptr<Shared> state, std::size_t index,
                  asio::awaitable<T> task) -> asio::awaitable<void> {
      state->results[index].emplace(co_await std::move(task));
      if (--state->left == 0 && state->waiter) {
        auto waiter = std::move(*state->waiter);
        state->waiter.reset();
        asio::post(state->executor, std::move(waiter));
      }
    };
    asio::co_spawn(executor, run(shared, i, std::move(tasks[i])),
                   log_if_thrown("a task of when_all"));
  }
  // A task that never suspends may have finished already; the others can
  // only finish once this coroutine suspends, after it has left its handler.
  if (shared->left > 0) {
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&shared](auto handler) { shared->waiter.emplace(std::move(handler)); },
        asio::use_awaitable);
  }
  for (auto& result : shared->results) results.push_back(std::move(*result));
  co_return results;
}

}  // namespace kalavara
