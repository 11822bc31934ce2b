// Starting background coroutines. Asio's `detached` drops whatever a
// coroutine throws — a bug would then end the work silently, leaving what
// waits on it waiting forever — so background work is spawned with a
// handler that logs it.
#pragma once

#include <spdlog/spdlog.h>
#include <exception>
#include <string_view>

namespace kalavara {

// A completion handler for co_spawn that logs an exception the coroutine
// ended with, naming `what` (a string literal: it must outlive the work).
inline auto log_if_thrown(std::string_view what) {
  return [what](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("{} ended with an exception (a bug): {}", what, e.what());
    } catch (...) {
      spdlog::error("{} ended with an exception (a bug)", what);
    }
  };
}

}  // namespace kalavara
