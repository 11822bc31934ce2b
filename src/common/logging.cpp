#include "common/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace kalavara {

Status init_logging(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str maps anything unknown to "off"; only "off" itself may mean off.
  if (parsed == spdlog::level::off && level != "off") {
    return Error{Errc::kBadInput, "unknown log level '" + level + "'"};
  }
  auto logger = spdlog::stderr_logger_mt("kalavara");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::trace);
  return {};
}

}  // namespace kalavara
