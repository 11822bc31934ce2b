#include "common/daemon.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/access_log.hpp"
#include "common/http_server.hpp"
#include "common/request_metrics.hpp"
#include "common/systemd_notify.hpp"

namespace kalavara {

int serve_until_stopped(ServerRuntime& runtime, const http::Router& router,
                        const ServeSettings& settings) {
  http::RequestMetrics request_metrics(router);
  if (settings.registry != nullptr) {
    settings.registry->add(
        [&request_metrics](metrics::Writer& out) { request_metrics.collect(out); });
  }
  auto observers = settings.observers;
  observers.push_back(&request_metrics);
  std::unique_ptr<AccessLog> access_log;
  if (!settings.access_log.empty()) {
    auto opened = AccessLog::open(settings.access_log, settings.access_log_format, router);
    if (!opened) {
      spdlog::critical("--access-log: {}", opened.error().message);
      return 1;
    }
    access_log = std::move(opened).value();
    observers.push_back(access_log.get());
    if (settings.registry != nullptr) {
      settings.registry->add([&access_log](metrics::Writer& out) { access_log->collect(out); });
    }
    runtime.on_reload([&access_log, path = settings.access_log] {
      if (auto reopened = access_log->reopen(); !reopened) {
        spdlog::error("access log: {}; still writing to the file open before",
                      reopened.error().message);
      } else if (path != "-") {
        spdlog::info("access log reopened: {}", path);
      }
    });
  }
  http::HttpServer server(runtime.contexts(), router, settings.limits, observers);
  auto endpoint = server.listen(settings.bind, settings.port);
  if (!endpoint) {
    spdlog::critical("{}", endpoint.error().message);
    return 1;
  }
  server.start();
  runtime.on_stop([&server, lifecycle = settings.lifecycle] {
    if (lifecycle != nullptr) lifecycle->begin_stopping();
    notify_stopping();
    server.stop();
  });
  start_watchdog(runtime);
  const auto address = endpoint->address().to_string();
  spdlog::info("{} listening on {}:{}{}", settings.name, address, endpoint->port(),
               settings.details);
  notify_ready("serving on " + address + ":" + std::to_string(endpoint->port()));
  if (runtime.run(settings.shutdown_timeout) != 0) {
    // Requests cut off by the timeout leave coroutine frames behind that
    // refer to the daemon's objects, which main() is about to destroy:
    // unwinding would touch freed memory. So the daemon leaves as a crash
    // would, which it is built to survive: whatever it acknowledged is
    // durable already, and nothing it did not acknowledge counts. The
    // access log's queued lines are written first: no io thread runs any
    // more to add to them.
    access_log.reset();
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }
  return 0;
}

}  // namespace kalavara
