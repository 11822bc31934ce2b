// The daemon's side of systemd's Type=notify protocol (sd_notify(3)):
// READY=1 once it serves, STOPPING=1 when it begins to shut down, and
// WATCHDOG=1 pings while its first io thread runs, when the unit sets
// WatchdogSec=. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
#pragma once

#include <string_view>

#include "common/server_runtime.hpp"

namespace kalavara {

// Tells systemd the daemon is serving; `status` is shown by systemctl status.
void notify_ready(std::string_view status);

// Tells systemd the daemon is shutting down.
void notify_stopping();

// When systemd asked for watchdog pings (WATCHDOG_USEC), sends one every
// half interval from a timer on the runtime's first io thread, until the
// stop signal (systemd stops watching once a service is stopping; its
// TimeoutStopSec= bounds the shutdown instead): a loop that hangs stops the
// pings, and systemd restarts the daemon. Call once, before runtime.run().
void start_watchdog(ServerRuntime& runtime);

}  // namespace kalavara
