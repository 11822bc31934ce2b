#include "common/request_metrics.hpp"

#include <array>
#include <chrono>

namespace kalavara::http {
namespace {

constexpr std::array<Verb, 6> kMethods = {Verb::get,  Verb::head,    Verb::put,
                                          Verb::post, Verb::delete_, Verb::options};
constexpr std::size_t kMethodSlots = kMethods.size() + 1;  // + "other"
constexpr unsigned kFirstStatus = 100;
constexpr unsigned kStatusSlots = 500;  // 100 to 599

std::size_t method_slot(Verb method) {
  for (std::size_t i = 0; i < kMethods.size(); ++i) {
    if (kMethods[i] == method) return i;
  }
  return kMethods.size();
}

std::string_view slot_label(std::size_t slot) {
  return slot < kMethods.size() ? RequestMetrics::method_label(kMethods[slot]) : "other";
}

}  // namespace

struct RequestMetrics::Cell {
  Cell() : duration(metrics::request_duration_buckets()) {}
  std::array<std::atomic<std::uint64_t>, kStatusSlots> by_status{};
  metrics::Histogram duration;
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent{0};
};

RequestMetrics::RequestMetrics(const Router& router)
    : routes_(router.route_labels()),
      cells_(std::make_unique<Cell[]>(routes_.size() * kMethodSlots)) {
  routes_.front() = "none";
}

RequestMetrics::~RequestMetrics() = default;

std::string_view RequestMetrics::method_label(Verb method) {
  if (method_slot(method) == kMethods.size()) return "other";
  return bhttp::to_string(method);
}

RequestMetrics::Cell& RequestMetrics::cell(std::size_t route_id, Verb method) const {
  if (route_id >= routes_.size()) route_id = 0;
  return cells_[route_id * kMethodSlots + method_slot(method)];
}

void RequestMetrics::connection_opened() {
  open_connections_.fetch_add(1, std::memory_order_relaxed);
  accepted_.fetch_add(1, std::memory_order_relaxed);
}

void RequestMetrics::connection_closed() {
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
}

void RequestMetrics::connection_refused() { refused_.fetch_add(1, std::memory_order_relaxed); }

void RequestMetrics::request_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }

void RequestMetrics::request_finished(const CompletedRequest& request) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  auto& counts = cell(request.route_id, request.method);
  if (request.status >= kFirstStatus && request.status < kFirstStatus + kStatusSlots) {
    counts.by_status[request.status - kFirstStatus].fetch_add(1, std::memory_order_relaxed);
  }
  counts.duration.observe(std::chrono::duration<double>(request.duration).count());
  counts.received.fetch_add(request.bytes_received, std::memory_order_relaxed);
  counts.sent.fetch_add(request.bytes_sent, std::memory_order_relaxed);
}

void RequestMetrics::collect(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  // Cells that never saw a request are left out: a series appears with its
  // first request.
  const auto each_used_cell = [this](auto&& visit) {
    for (std::size_t route = 0; route < routes_.size(); ++route) {
      for (std::size_t slot = 0; slot < kMethodSlots; ++slot) {
        const Cell& counts = cells_[route * kMethodSlots + slot];
        if (counts.duration.snapshot().cumulative.back() == 0) continue;
        visit(routes_[route], slot_label(slot), counts);
      }
    }
  };
  out.family("kalavara_http_requests_total", Type::kCounter,
             "HTTP requests answered, by route, method and status code.");
  each_used_cell([&](std::string_view route, std::string_view method, const Cell& counts) {
    for (unsigned i = 0; i < kStatusSlots; ++i) {
      const auto count = counts.by_status[i].load(std::memory_order_relaxed);
      if (count == 0) continue;
      const auto code = std::to_string(kFirstStatus + i);
      out.sample("kalavara_http_requests_total",
                 {{"route", route}, {"method", method}, {"code", code}}, count);
    }
  });
  out.family("kalavara_http_request_duration_seconds", Type::kHistogram,
             "Time from a request's whole header to its answer's last byte, in seconds.");
  each_used_cell([&](std::string_view route, std::string_view method, const Cell& counts) {
    out.histogram("kalavara_http_request_duration_seconds", {{"route", route}, {"method", method}},
                  counts.duration);
  });
  out.family("kalavara_http_received_bytes_total", Type::kCounter,
             "Bytes of requests read, header and body, by route and method.");
  each_used_cell([&](std::string_view route, std::string_view method, const Cell& counts) {
    out.sample("kalavara_http_received_bytes_total", {{"route", route}, {"method", method}},
               counts.received.load(std::memory_order_relaxed));
  });
  out.family("kalavara_http_sent_bytes_total", Type::kCounter,
             "Bytes of answers written, header and body, by route and method.");
  each_used_cell([&](std::string_view route, std::string_view method, const Cell& counts) {
    out.sample("kalavara_http_sent_bytes_total", {{"route", route}, {"method", method}},
               counts.sent.load(std::memory_order_relaxed));
  });
  out.single("kalavara_http_requests_in_flight", Type::kGauge,
             "Requests whose header has been read and whose answer is not sent yet.",
             static_cast<double>(in_flight_.load(std::memory_order_relaxed)));
  out.single("kalavara_http_open_connections", Type::kGauge, "Client connections open.",
             static_cast<double>(open_connections_.load(std::memory_order_relaxed)));
  out.single("kalavara_http_connections_total", Type::kCounter, "Client connections accepted.",
             static_cast<double>(accepted_.load(std::memory_order_relaxed)));
  out.single("kalavara_http_connections_refused_total", Type::kCounter,
             "Connections answered 503 and closed because --max-connections were open.",
             static_cast<double>(refused_.load(std::memory_order_relaxed)));
}

}  // namespace kalavara::http
