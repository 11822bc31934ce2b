// The exposition format as common/metrics writes it, and the HTTP layer's
// request accounting, without sockets (CompletedRequest values are made up).
#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>

#include "common/request_metrics.hpp"
#include "common/router.hpp"

namespace kalavara::metrics {
namespace {

TEST(Histogram, CountsEachValueInTheFirstBucketThatHoldsItAndSumsThem) {
  constexpr std::array<double, 3> kBounds = {1, 2, 5};
  Histogram histogram(kBounds);
  for (const double value : {0.5, 1.0, 1.5, 4.0, 9.0}) histogram.observe(value);
  const auto snapshot = histogram.snapshot();
  // le=1: 0.5 and 1 (a bound is inclusive); le=2: + 1.5; le=5: + 4; +Inf: all.
  EXPECT_EQ(snapshot.cumulative, (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(snapshot.sum, 16.0);
}

TEST(Writer, WritesHelpTypeAndSamplesWithEscapedLabels) {
  Writer out;
  out.family("kalavara_things_total", Writer::Type::kCounter, "Things, with a \\ and\na newline.");
  out.sample("kalavara_things_total", {{"name", "a\"b\\c\nd"}, {"kind", "x"}}, std::uint64_t{7});
  out.single("kalavara_ratio", Writer::Type::kGauge, "A ratio.", 0.25);
  EXPECT_EQ(out.take(),
            "# HELP kalavara_things_total Things, with a \\\\ and\\na newline.\n"
            "# TYPE kalavara_things_total counter\n"
            "kalavara_things_total{name=\"a\\\"b\\\\c\\nd\",kind=\"x\"} 7\n"
            "# HELP kalavara_ratio A ratio.\n"
            "# TYPE kalavara_ratio gauge\n"
            "kalavara_ratio 0.25\n");
}

TEST(Writer, WritesAHistogramAsCumulativeBucketsSumAndCount) {
  constexpr std::array<double, 2> kBounds = {0.5, 1};
  Histogram histogram(kBounds);
  histogram.observe(0.25);
  histogram.observe(3);
  Writer out;
  out.histogram("kalavara_wait_seconds", {{"route", "/r"}}, histogram);
  EXPECT_EQ(out.take(),
            "kalavara_wait_seconds_bucket{route=\"/r\",le=\"0.5\"} 1\n"
            "kalavara_wait_seconds_bucket{route=\"/r\",le=\"1\"} 1\n"
            "kalavara_wait_seconds_bucket{route=\"/r\",le=\"+Inf\"} 2\n"
            "kalavara_wait_seconds_sum{route=\"/r\"} 3.25\n"
            "kalavara_wait_seconds_count{route=\"/r\"} 2\n");
}

TEST(FormatValue, WritesIntegersWholeAndTheSpecialValuesByName) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(1e12), "1000000000000");
  EXPECT_EQ(format_value(0.001), "0.001");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Registry, RunsItsCollectorsInOrder) {
  Registry registry;
  registry.add([](Writer& out) { out.single("a", Writer::Type::kGauge, "A.", 1); });
  registry.add([](Writer& out) { out.single("b", Writer::Type::kGauge, "B.", 2); });
  const auto text = registry.render();
  EXPECT_LT(text.find("\na 1\n"), text.find("\nb 2\n"));
}

http::asio::awaitable<http::Reply> unused(http::Exchange&) {
  co_return http::text_response(http::HttpStatus::ok, "");
}

TEST(RequestMetrics, CountsByRouteMethodAndCodeAndOmitsWhatNeverHappened) {
  http::Router router;
  router.add("/store/", http::Router::Match::kPrefix, {http::Verb::get}, unused);
  router.add("/store/", http::Router::Match::kPrefix, {http::Verb::put}, unused);
  router.add("/healthz", http::Router::Match::kExact, {http::Verb::get}, unused);
  const auto labels = router.route_labels();
  ASSERT_EQ(labels, (std::vector<std::string>{"", "/store/", "/healthz"}));

  http::RequestMetrics counts(router);
  const auto finish = [&counts](std::size_t route, http::Verb method, unsigned status) {
    counts.request_started();
    http::CompletedRequest done;
    done.method = method;
    done.route_id = route;
    done.status = status;
    done.bytes_received = 10;
    done.bytes_sent = 100;
    done.duration = std::chrono::milliseconds(3);
    counts.request_finished(done);
  };
  finish(1, http::Verb::put, 307);
  finish(1, http::Verb::put, 307);
  finish(1, http::Verb::get, 404);
  finish(0, http::Verb::unknown, 400);
  Writer out;
  counts.collect(out);
  const auto text = out.take();
  EXPECT_NE(
      text.find("kalavara_http_requests_total{route=\"/store/\",method=\"PUT\",code=\"307\"} 2\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("kalavara_http_requests_total{route=\"/store/\",method=\"GET\",code=\"404\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("kalavara_http_requests_total{route=\"none\",method=\"other\",code=\"400\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("kalavara_http_sent_bytes_total{route=\"/store/\",method=\"PUT\"} 200\n"),
            std::string::npos)
      << text;
  // 3 ms falls in the 5 ms bucket, not the 2.5 ms one.
  EXPECT_NE(
      text.find("kalavara_http_request_duration_seconds_bucket{route=\"/store/\",method=\"PUT\","
                "le=\"0.0025\"} 0\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("kalavara_http_request_duration_seconds_bucket{route=\"/store/\",method=\"PUT\","
                "le=\"0.005\"} 2\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("route=\"/healthz\""), std::string::npos) << text;
  EXPECT_NE(text.find("kalavara_http_requests_in_flight 0\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace kalavara::metrics
