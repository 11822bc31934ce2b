#include "common/probes.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/blocking.hpp"

namespace kalavara {

void add_readiness_route(http::Router& router, const Lifecycle& lifecycle, ReadinessCheck check) {
  router.add(
      "/readyz", http::Router::Match::kExact, {http::Verb::get, http::Verb::head},
      [&lifecycle,
       check = std::move(check)](http::Exchange&) -> http::asio::awaitable<http::Reply> {
        Readiness verdict{false, "stopping"};
        if (!lifecycle.stopping()) verdict = co_await check();
        // Asked again after the check: a stop that came meanwhile wins.
        if (lifecycle.stopping()) verdict = {false, "stopping"};
        boost::json::object body;
        body["ready"] = verdict.ready;
        body["reason"] = verdict.reason;
        auto response = http::json_response(boost::json::serialize(body) + "\n");
        if (!verdict.ready) response.result(http::HttpStatus::service_unavailable);
        response.set(http::Field::cache_control, "no-store");
        co_return response;
      },
      http::Router::WhileStopping::kServe);
}

void add_metrics_route(http::Router& router, const metrics::Registry& registry,
                       boost::asio::thread_pool& pool) {
  router.add(
      "/metrics", http::Router::Match::kExact, {http::Verb::get, http::Verb::head},
      [&registry, &pool](http::Exchange&) -> http::asio::awaitable<http::Reply> {
        std::string text;
        co_await run_blocking(pool, [&] { text = registry.render(); });
        http::Response response{http::HttpStatus::ok, 11};
        response.set(http::Field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        response.set(http::Field::cache_control, "no-store");
        response.body() = std::move(text);
        response.prepare_payload();
        co_return response;
      },
      http::Router::WhileStopping::kServe);
}

}  // namespace kalavara
