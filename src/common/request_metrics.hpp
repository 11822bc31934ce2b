// The HTTP layer's figures for /metrics: requests by route, method and
// status, their durations, bytes in and out, requests in flight and
// connections. One object per server, fed by HttpServer as a
// ServerObserver; counting is lock-free. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http_server.hpp"
#include "common/metrics.hpp"
#include "common/router.hpp"

namespace kalavara::http {

class RequestMetrics final : public ServerObserver {
 public:
  // Counts by the routes of `router`, which must have all its routes.
  explicit RequestMetrics(const Router& router);
  ~RequestMetrics() override;

  void connection_opened() override;
  void connection_closed() override;
  void connection_refused() override;
  void request_started() override;
  void request_finished(const CompletedRequest& request) override;

  // Writes the kalavara_http_* families.
  void collect(metrics::Writer& out) const;

  // The method label a request is counted under: its name for the methods
  // the daemons serve, "other" for any other.
  static std::string_view method_label(Verb method);

 private:
  struct Cell;
  Cell& cell(std::size_t route_id, Verb method) const;

  std::vector<std::string> routes_;  // labels by route id
  std::unique_ptr<Cell[]> cells_;    // by route id, then method
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> open_connections_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace kalavara::http
