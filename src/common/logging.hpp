// Process-wide logging to stderr (journald picks it up under systemd), as
// text for people or as one JSON object per line for log shippers; the flags
// that choose it and the access log (common/access_log.hpp).
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kalavara {

// How the daemon log and the access log are written (--log-format).
enum class LogFormat { kText, kJson };

struct LogFlags {
  std::string format = "text";
  std::string access_log;  // "": none; "-": stdout; otherwise a file

  // Adds --log-format and --access-log to `app`, bound to these fields.
  // `app` must not outlive them.
  void add_to(CLI::App& app);

  LogFormat log_format() const { return format == "json" ? LogFormat::kJson : LogFormat::kText; }
};

// Sets up the daemon log on stderr. Text lines are
//   2026-12-02T03:04:05.123 info kalavara-master listening on ...
// (local time); JSON lines are
//   {"time":"2026-12-02T03:04:05.123Z","level":"info","message":"..."}
// (UTC), the message escaped by append_json_string. Fails with kBadInput
// when `level` is not one of trace, debug, info, warn, error, critical, off.
// Call once, before any other thread logs.
Status init_logging(const std::string& level, LogFormat format = LogFormat::kText);

// A daemon-log line in JSON, as init_logging writes it with
// LogFormat::kJson, without its line break. Pure; thread-safe.
std::string format_json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                                 std::string_view message);

// Appends `time` as RFC 3339 in UTC with milliseconds,
// "2026-12-02T03:04:05.123Z". Pure; thread-safe.
void append_utc_time(std::string& out, std::chrono::system_clock::time_point time);

}  // namespace kalavara
