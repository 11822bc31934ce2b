// What operators and orchestrators poll: GET /readyz (is this daemon fit to
// be sent requests) and GET /metrics (the Prometheus exposition), and the
// shutdown state both follow. /healthz (alive at all) is add_health_route
// in router.hpp. Each serves also while the daemon shuts down.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <string>

#include "common/metrics.hpp"
#include "common/router.hpp"

namespace kalavara {

// Whether the daemon is shutting down: set once, when the stop signal
// comes, and read by whatever must behave differently from then on.
// Thread-safe.
class Lifecycle {
 public:
  void begin_stopping() { stopping_.store(true, std::memory_order_relaxed); }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stopping_{false};
};

// A readiness verdict: `reason` says, in a few words, what is missing (or
// what is fine when ready).
struct Readiness {
  bool ready = false;
  std::string reason;
};

// Decides readiness; runs on an io thread, so it must not block (put disk
// checks on the blocking pool).
using ReadinessCheck = std::function<boost::asio::awaitable<Readiness>()>;

// GET/HEAD /readyz -> 200 {"ready":true,"reason":...} or 503
// {"ready":false,"reason":...}: 503 "stopping" as soon as `lifecycle` is
// stopping, otherwise what `check` decides. `lifecycle` must outlive the
// router.
void add_readiness_route(http::Router& router, const Lifecycle& lifecycle, ReadinessCheck check);

// GET /metrics -> 200 text/plain; version=0.0.4: `registry` rendered on
// `pool`, so a collector that makes a system call (statvfs, /proc) never
// holds up an io thread. Both must outlive the router.
void add_metrics_route(http::Router& router, const metrics::Registry& registry,
                       boost::asio::thread_pool& pool);

}  // namespace kalavara
