#include "common/metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kalavara::metrics {

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double value) {
  // Few buckets: a linear scan is as fast as a binary search and simpler.
  std::size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::span<const double> request_duration_buckets() {
  static constexpr std::array<double, 18> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                     1,      2.5,     5,      10,    30,     60};
  return kBounds;
}

std::span<const double> sync_duration_buckets() {
  static constexpr std::array<double, 16> kBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
  return kBounds;
}

namespace {

void append_escaped(std::string& out, std::string_view text, bool quotes) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string_view type_name(Writer::Type type) {
  switch (type) {
    case Writer::Type::kCounter:
      return "counter";
    case Writer::Type::kGauge:
      return "gauge";
    case Writer::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<long long>(value));
  }
  return fmt::format("{}", value);
}

void Writer::family(std::string_view name, Type type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(type);
  out_ += '\n';
}

void Writer::start_sample(std::string_view name, Labels labels, std::string_view extra_label,
                          std::string_view extra_value) {
  out_ += name;
  if (labels.size() == 0 && extra_label.empty()) return;
  out_ += '{';
  bool first = true;
  const auto label = [&](std::string_view key, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    out_ += key;
    out_ += "=\"";
    append_escaped(out_, value, true);
    out_ += '"';
  };
  for (const auto& [key, value] : labels) label(key, value);
  if (!extra_label.empty()) label(extra_label, extra_value);
  out_ += '}';
}

void Writer::sample(std::string_view name, Labels labels, double value) {
  start_sample(name, labels);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void Writer::sample(std::string_view name, Labels labels, std::uint64_t value) {
  start_sample(name, labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void Writer::histogram(std::string_view name, Labels labels, const Histogram& histogram) {
  const auto snapshot = histogram.snapshot();
  const auto& bounds = histogram.upper_bounds();
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
    start_sample(bucket, labels, "le", le);
    out_ += ' ';
    out_ += std::to_string(snapshot.cumulative[i]);
    out_ += '\n';
  }
  sample(std::string(name) + "_sum", labels, snapshot.sum);
  sample(std::string(name) + "_count", labels, snapshot.cumulative.back());
}

void Writer::single(std::string_view name, Type type, std::string_view help, double value) {
  family(name, type, help);
  sample(name, {}, value);
}

void Registry::add(Collector collector) { collectors_.push_back(std::move(collector)); }

std::string Registry::render() const {
  Writer writer;
  for (const auto& collector : collectors_) collector(writer);
  return writer.take();
}

namespace {

struct ProcessFigures {
  double cpu_seconds = 0;
  double start_time_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  bool ok = false;
};

// /proc/self/stat fields 14, 15 (utime, stime) and 22 (starttime), in
// clock ticks; /proc/stat's btime is the boot time in seconds.
ProcessFigures read_process_figures() {
  ProcessFigures figures;
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: fields are counted after
  // its closing parenthesis.
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return figures;
  std::istringstream fields(stat.substr(paren + 2));
  std::vector<std::string> values;
  for (std::string field; fields >> field;) values.push_back(field);
  // values[0] is field 3.
  if (values.size() < 22) return figures;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  figures.cpu_seconds = (std::stod(values[11]) + std::stod(values[12])) / ticks;
  const double start_ticks = std::stod(values[19]);
  figures.virtual_bytes = std::stod(values[20]);
  figures.resident_bytes = std::stod(values[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream system_stat("/proc/stat");
  for (std::string line; std::getline(system_stat, line);) {
    if (line.starts_with("btime ")) {
      figures.start_time_seconds = std::stod(line.substr(6)) + start_ticks / ticks;
      figures.ok = true;
      break;
    }
  }
  return figures;
}

double open_descriptors() {
  std::error_code ec;
  double count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++count;
  }
  return count;
}

}  // namespace

void add_process_collector(Registry& registry, std::string_view daemon) {
  registry.add([daemon = std::string(daemon)](Writer& out) {
    out.family("kalavara_build_info", Writer::Type::kGauge,
               "Always 1; the labels name the daemon and its version.");
    out.sample("kalavara_build_info", {{"daemon", daemon}, {"version", KALAVARA_VERSION}},
               std::uint64_t{1});
    const auto figures = read_process_figures();
    if (figures.ok) {
      out.single("process_cpu_seconds_total", Writer::Type::kCounter,
                 "User and system CPU time spent, in seconds.", figures.cpu_seconds);
      out.single("process_start_time_seconds", Writer::Type::kGauge,
                 "Start time of the process since the Unix epoch, in seconds.",
                 figures.start_time_seconds);
      out.single("process_resident_memory_bytes", Writer::Type::kGauge,
                 "Resident memory size, in bytes.", figures.resident_bytes);
      out.single("process_virtual_memory_bytes", Writer::Type::kGauge,
                 "Virtual memory size, in bytes.", figures.virtual_bytes);
    }
    out.single("process_open_fds", Writer::Type::kGauge, "Open file descriptors.",
               open_descriptors());
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
      out.single("process_max_fds", Writer::Type::kGauge, "The most file descriptors it may open.",
                 static_cast<double>(limit.rlim_cur));
    }
  });
}

}  // namespace kalavara::metrics
