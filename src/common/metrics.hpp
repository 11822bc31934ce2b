// Metrics in the Prometheus text exposition format (version 0.0.4): the
// pieces to keep figures cheaply on hot paths (Histogram) and to write them
// out when /metrics is scraped (Writer, Registry).
//
// Names follow Prometheus's conventions: a `kalavara_` prefix, base units
// (seconds, bytes), `_total` for counters; a histogram's samples are
// `_bucket{le=...}`, `_sum` and `_count`. No third-party client library:
// the format is a few lines of text, and every figure is read at scrape time
// from what the daemon keeps anyway.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kalavara::metrics {

// Counts observations into fixed buckets. observe() is lock-free and
// thread-safe; snapshot() may run concurrently with it (each figure is read
// atomically, so a snapshot taken meanwhile may be off by the observations
// under way, never torn).
class Histogram {
 public:
  // `upper_bounds` strictly increasing; the +Inf bucket is implicit.
  explicit Histogram(std::span<const double> upper_bounds);

  void observe(double value);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, +Inf last
  std::atomic<double> sum_{0};
};

// Bucket bounds for request durations, in seconds: 100 µs to 60 s.
std::span<const double> request_duration_buckets();
// Bucket bounds for disk syncs (fsync, fdatasync), in seconds: 50 µs to 10 s.
std::span<const double> sync_duration_buckets();

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Builds one exposition. Families must be started before their samples and
// each name used for one family only; the caller keeps to that (render()
// output is checked with promtool in the tests). Not thread-safe.
class Writer {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Starts a family: its # HELP and # TYPE lines.
  void family(std::string_view name, Type type, std::string_view help);

  // One sample of the family started last: `name` is the family's name, or
  // for a histogram's own samples its name with a suffix.
  void sample(std::string_view name, Labels labels, double value);
  void sample(std::string_view name, Labels labels, std::uint64_t value);

  // Every sample of a histogram family: its buckets, _sum and _count.
  void histogram(std::string_view name, Labels labels, const Histogram& histogram);

  // A family of one sample.
  void single(std::string_view name, Type type, std::string_view help, double value);

  std::string take() { return std::move(out_); }

 private:
  void start_sample(std::string_view name, Labels labels, std::string_view extra_label = {},
                    std::string_view extra_value = {});
  std::string out_;
};

// Formats a sample value as the exposition format writes it: integers
// without a fraction, "+Inf", "-Inf" and "NaN" for the special values.
std::string format_value(double value);

// The collectors a daemon's /metrics runs, in the order added. Add them at
// start-up; render() is then thread-safe when every collector is.
class Registry {
 public:
  using Collector = std::function<void(Writer&)>;
  void add(Collector collector);
  std::string render() const;

 private:
  std::vector<Collector> collectors_;
};

// What every daemon exposes about itself: kalavara_build_info{daemon,version}
// and the process's start time, CPU, memory and descriptors (the standard
// process_* names Prometheus client libraries use), read from /proc.
void add_process_collector(Registry& registry, std::string_view daemon);

}  // namespace kalavara::metrics
