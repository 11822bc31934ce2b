#include "common/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <iterator>

#include "common/json.hpp"

namespace kalavara {
namespace {

// One JSON object per line: what log shippers (Vector, Fluent Bit, Loki's
// promtail) parse without a custom pattern. A message may hold a key, so
// anything at all: append_json_string escapes it.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    auto line = format_json_log_line(msg.time, std::string_view(level.data(), level.size()),
                                     std::string_view(msg.payload.data(), msg.payload.size()));
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void LogFlags::add_to(CLI::App& app) {
  app.add_option("--log-format", format,
                 "text, or json: one JSON object per line, for the daemon log and the access log")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--access-log", access_log,
                 "write one line per request to this file (reopened on SIGHUP), or to stdout "
                 "with -; off by default");
}

Status init_logging(const std::string& level, LogFormat format) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str maps anything unknown to "off"; only "off" itself may mean off.
  if (parsed == spdlog::level::off && level != "off") {
    return Error{Errc::kBadInput, "unknown log level '" + level + "'"};
  }
  auto logger = spdlog::stderr_logger_mt("kalavara");
  spdlog::set_default_logger(logger);
  if (format == LogFormat::kJson) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::trace);
  return {};
}

std::string format_json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                                 std::string_view message) {
  std::string line = "{\"time\":\"";
  append_utc_time(line, time);
  line += "\",\"level\":";
  append_json_string(line, level);
  line += ",\"message\":";
  append_json_string(line, message);
  line.push_back('}');
  return line;
}

void append_utc_time(std::string& out, std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  ::gmtime_r(&whole, &utc);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, millis.count());
}

}  // namespace kalavara
