// Process-wide logging to stderr (journald picks it up under systemd).
#pragma once

#include <string>

#include "common/result.hpp"

namespace kalavara {

// Sets up the logger. Fails with kBadInput when `level` is not one of trace, debug,
// info, warn, error, critical, off.
Status init_logging(const std::string& level);

}  // namespace kalavara
