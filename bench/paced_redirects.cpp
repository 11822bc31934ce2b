#include "paced_redirects.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

#include "common/key_codec.hpp"

namespace kalavara::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr auto kRequestTimeout = std::chrono::seconds(5);
constexpr unsigned kErrorsPrinted = 10;

struct Shared {
  const PacedOptions& options;
  Clock::time_point start;
  Clock::time_point end;
  std::vector<std::uint32_t> latencies_us;
  std::uint64_t errors = 0;
  Clock::time_point last_finish;
};

void report(Shared& shared, const std::string& message) {
  if (shared.errors++ < kErrorsPrinted) {
    std::fprintf(stderr, "kalavara-bench: %s\n", message.c_str());
  }
}

std::string target_of(const PacedOptions& options, std::uint64_t index) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%09llu", static_cast<unsigned long long>(index));
  return "/store/" + encode_key_path(options.key_prefix + digits);
}

// The requests due on connection `id`: id, id + connections, ...
asio::awaitable<void> connection(Shared& shared, tcp::endpoint endpoint, unsigned id) {
  const auto& options = shared.options;
  const auto interval = std::chrono::duration<double>(1.0 / options.rate);
  std::mt19937_64 random(id * 7919 + 1);
  std::uniform_int_distribution<std::uint64_t> pick(0, options.keys - 1);
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  const std::string host = options.host + ":" + std::to_string(options.port);

  for (std::uint64_t i = id;; i += options.connections) {
    const auto due = shared.start +
                     std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
    if (due >= shared.end) break;
    timer.expires_at(due);
    co_await timer.async_wait(kAwait);

    if (!stream) {
      stream.emplace(executor);
      stream->expires_after(kRequestTimeout);
      auto [ec] = co_await stream->async_connect(endpoint, kAwait);
      if (ec) {
        report(shared, "connect: " + ec.message());
        stream.reset();
        continue;
      }
    }
    const auto target = target_of(options, pick(random));
    bhttp::request<bhttp::empty_body> request{bhttp::verb::get, target, 11};
    request.set(bhttp::field::host, host);
    stream->expires_after(kRequestTimeout);
    auto [write_ec, written] = co_await bhttp::async_write(*stream, request, kAwait);
    bhttp::response<bhttp::string_body> response;
    boost::system::error_code read_ec;
    if (!write_ec) {
      std::tie(read_ec, std::ignore) =
          co_await bhttp::async_read(*stream, buffer, response, kAwait);
    }
    const auto finished = Clock::now();
    if (write_ec || read_ec) {
      report(shared, "GET " + target + ": " + (write_ec ? write_ec : read_ec).message());
      stream.reset();
      buffer.clear();
      continue;
    }
    if (response.result_int() != options.expect) {
      report(shared, "GET " + target + ": got " + std::to_string(response.result_int()) +
                         " (expected " + std::to_string(options.expect) + ")");
    } else if (response.result_int() == 302 && options.check_location) {
      const auto location = std::string_view(response[bhttp::field::location]);
      if (location.substr(0, location.find('?')).ends_with(target)) {
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(finished - due);
        shared.latencies_us.push_back(static_cast<std::uint32_t>(took.count()));
      } else {
        report(shared,
               "GET " + target + ": Location " + std::string(location) + " is not this key");
      }
    } else {
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(finished - due);
      shared.latencies_us.push_back(static_cast<std::uint32_t>(took.count()));
    }
    shared.last_finish = std::max(shared.last_finish, finished);
    if (!response.keep_alive()) stream.reset();
  }
}

std::uint32_t percentile(std::vector<std::uint32_t>& values, double fraction) {
  if (values.empty()) return 0;
  const auto rank = static_cast<std::size_t>(fraction * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank),
                   values.end());
  return values[rank];
}

}  // namespace

PacedResult run_paced_redirects(const PacedOptions& options) {
  asio::io_context io(1);
  tcp::resolver resolver(io);
  const auto endpoint = *resolver.resolve(options.host, std::to_string(options.port)).begin();
  Shared shared{options, Clock::now(), {}, {}, 0, {}};
  shared.end = shared.start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(options.duration));
  shared.last_finish = shared.start;
  shared.latencies_us.reserve(static_cast<std::size_t>(options.rate * options.duration) + 16);
  for (unsigned id = 0; id < options.connections; ++id) {
    asio::co_spawn(io, connection(shared, endpoint, id), asio::detached);
  }
  io.run();

  PacedResult result;
  result.ops = shared.latencies_us.size();
  result.errors = shared.errors;
  result.seconds = std::chrono::duration<double>(shared.last_finish - shared.start).count();
  result.p50_us = percentile(shared.latencies_us, 0.50);
  result.p99_us = percentile(shared.latencies_us, 0.99);
  return result;
}

}  // namespace kalavara::bench
