// kalavara-bench: a load client for kalavara (issue 4). One thread per
// connection, blocking Beast, keep-alive. Prints one line of JSON and exits
// non-zero on any wrong answer (status or bytes). See docs/benchmarks.md.
//
// Modes:
//   put-get-delete  cycles: PUT master (307) -> PUT volume (201) -> GET master
//                   (302) -> GET volume (200, bytes checked) -> DELETE master
//                   (204) -> GET master (404)
//   put             stores keys PREFIX000000000 .. PREFIX{keys-1}
//   get             random keys of a `put` set, following the 302, bytes checked
//   redirect        random keys at the master only: expects --expect (302 or
//                   404); 302 must point at the key
//   big             one value of --value-size bytes PUT then GET (MB/s each way),
//                   generated and checked chunk by chunk, never held in memory
//   write-files     writes the values of a `put` set as plain files under --dir
//                   (for nginx to serve the same bytes)
//
// --rate R paces the load at R operations per second in all (open loop): an
// operation's latency is counted from the moment it was due, not from when
// the client got round to sending it, so a stalled server is not hidden.
// Paced redirect mode runs on one thread with asynchronous connections
// (paced_redirects.hpp), so the client's own threads do not add to the tail.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_client.hpp"
#include "common/key_codec.hpp"
#include "common/url.hpp"
#include "paced_redirects.hpp"
#include "pattern.hpp"

namespace kalavara::bench {
namespace {

namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBodyToMasterLimit = 64 * 1024;

struct Options {
  std::string master = "http://127.0.0.1:6000";
  std::string mode = "put-get-delete";
  unsigned concurrency = 16;
  std::uint64_t value_size = 1024;
  std::uint64_t keys = 1000;
  double duration = 10;
  std::uint64_t max_ops = 10'000'000;
  std::string key_prefix = "bench/";
  double rate = 0;
  unsigned expect = 302;
  bool check_location = true;
  std::string dir;
};

// A wrong answer: counted as an error, and the run exits non-zero.
struct WrongAnswer : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string key_name(const std::string& prefix, std::uint64_t index) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%09llu", static_cast<unsigned long long>(index));
  return prefix + digits;
}

// A URL or target without its query (the master may add e.g. ?version=).
std::string_view path_of(std::string_view url) { return url.substr(0, url.find('?')); }

std::string store_target(const std::string& key) { return "/store/" + encode_key_path(key); }

std::string describe(const char* what, const std::string& target, const Reply& reply) {
  std::string body = reply.body.substr(0, 200);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return std::string(what) + " " + target + ": got " + std::to_string(reply.status) +
         (reply.location.empty() ? "" : " Location " + reply.location) +
         (body.empty() ? "" : " \"" + body + "\"");
}

void expect_status(const char* what, const std::string& target, const Reply& reply,
                   unsigned status) {
  if (reply.status != status) {
    throw WrongAnswer(describe(what, target, reply) + " (expected " + std::to_string(status) + ")");
  }
}

// Everything a worker thread needs: its master connection and one
// connection per volume it has been redirected to.
class Worker {
 public:
  Worker(const Options& options, const BaseUrl& master, unsigned id)
      : options_(options), id_(id), master_(master.host, master.port), random_(id * 7919 + 1) {}

  Connection& volume(const Location& location) {
    const auto name = location.host + ":" + std::to_string(location.port);
    auto& slot = volumes_[name];
    if (!slot) slot = std::make_unique<Connection>(location.host, location.port);
    return *slot;
  }

  // PUT at the master, follow the 307 with the body: 201.
  void put(const std::string& key, const std::string& value) {
    const auto target = store_target(key);
    // A small body goes to the master too, as a plain HTTP library sends it
    // (the master reads and drops it); a large one only to the volume, as
    // curl -T does with Expect: 100-continue (the master connection is then
    // closed, since the body it announced never comes).
    const Reply redirect = value.size() <= kBodyToMasterLimit
                               ? master_.send(bhttp::verb::put, target, value)
                               : master_.put_expect_continue(target, value.size());
    expect_status("PUT master", target, redirect, 307);
    const auto location = parse_location(redirect.location);
    const Reply stored = volume(location).send(bhttp::verb::put, location.target, value);
    expect_status("PUT volume", location.target, stored, 201);
  }

  // GET at the master (302 to a URL for this key), then at the volume:
  // 200 and the expected bytes.
  void get(const std::string& key, std::uint64_t seed, std::uint64_t size) {
    const auto target = store_target(key);
    const Reply redirect = master_.send(bhttp::verb::get, target);
    expect_status("GET master", target, redirect, 302);
    const auto location = parse_location(redirect.location);
    if (path_of(location.target) != target) {
      throw WrongAnswer(describe("GET master", target, redirect) + " (Location is not this key)");
    }
    const Reply value = volume(location).send(bhttp::verb::get, location.target);
    expect_status("GET volume", location.target, value, 200);
    if (value.body.size() != size || !check_pattern(seed, 0, value.body)) {
      throw WrongAnswer("GET volume " + location.target + ": wrong bytes (" +
                        std::to_string(value.body.size()) + " bytes, expected " +
                        std::to_string(size) + ")");
    }
  }

  void cycle(std::uint64_t n) {
    const auto key = options_.key_prefix + "pgd/" + std::to_string(id_) + "/" + std::to_string(n);
    const auto seed = seed_for_key(key);
    const auto value = make_value(seed, options_.value_size);
    put(key, value);
    get(key, seed, value.size());
    const auto target = store_target(key);
    const Reply deleted = master_.send(bhttp::verb::delete_, target);
    expect_status("DELETE master", target, deleted, 204);
    const Reply gone = master_.send(bhttp::verb::get, target);
    expect_status("GET master after DELETE", target, gone, 404);
  }

  void put_index(std::uint64_t index) {
    const auto key = key_name(options_.key_prefix, index);
    put(key, make_value(seed_for_key(key), options_.value_size));
  }

  void get_random() {
    const auto key = key_name(options_.key_prefix, pick());
    get(key, seed_for_key(key), options_.value_size);
  }

  void redirect_random() {
    const auto key = key_name(options_.key_prefix, pick());
    const auto target = store_target(key);
    const Reply reply = master_.send(bhttp::verb::get, target);
    expect_status("GET master", target, reply, options_.expect);
    if (reply.status == 302 && options_.check_location &&
        !path_of(reply.location).ends_with(target)) {
      throw WrongAnswer(describe("GET master", target, reply) + " (Location is not this key)");
    }
  }

  Connection& master() { return master_; }

 private:
  std::uint64_t pick() {
    return std::uniform_int_distribution<std::uint64_t>(0, options_.keys - 1)(random_);
  }

  const Options& options_;
  unsigned id_;
  Connection master_;
  std::map<std::string, std::unique_ptr<Connection>> volumes_;
  std::mt19937_64 random_;
};

struct Totals {
  std::mutex mutex;
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint32_t> latencies_us;
  Clock::time_point last_finish;
  unsigned finished = 0;
  std::condition_variable all_finished;
  unsigned errors_printed = 0;

  // Counts an error and prints the first few; returns the count so far.
  std::uint64_t report_error(const std::string& message) {
    std::lock_guard lock(mutex);
    ++errors;
    if (errors_printed < 10) {
      std::fprintf(stderr, "kalavara-bench: %s\n", message.c_str());
      ++errors_printed;
    }
    return errors;
  }
};

std::string json_number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

std::uint32_t percentile(std::vector<std::uint32_t>& values, double fraction) {
  if (values.empty()) return 0;
  const auto rank = static_cast<std::size_t>(fraction * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank),
                   values.end());
  return values[rank];
}

int run_paced(const Options& options, const BaseUrl& master) {
  PacedOptions paced;
  paced.host = master.host;
  paced.port = master.port;
  paced.connections = options.concurrency;
  paced.rate = options.rate;
  paced.duration = options.duration;
  paced.keys = options.keys;
  paced.key_prefix = options.key_prefix;
  paced.expect = options.expect;
  paced.check_location = options.check_location;
  const auto result = run_paced_redirects(paced);
  std::printf(
      "{\"mode\":\"%s\",\"concurrency\":%u,\"value_size\":%llu,\"ops\":%llu,\"seconds\":%s,"
      "\"rate\":%s,\"target_rate\":%s,\"p50_us\":%u,\"p99_us\":%u,\"errors\":%llu,"
      "\"incomplete\":false}\n",
      options.mode.c_str(), options.concurrency,
      static_cast<unsigned long long>(options.value_size),
      static_cast<unsigned long long>(result.ops), json_number(result.seconds).c_str(),
      json_number(result.seconds > 0 ? static_cast<double>(result.ops) / result.seconds : 0)
          .c_str(),
      json_number(options.rate).c_str(), result.p50_us, result.p99_us,
      static_cast<unsigned long long>(result.errors));
  return result.errors > 0 ? 1 : 0;
}

int run_load(const Options& options, const BaseUrl& master) {
  const bool is_put = options.mode == "put";
  const std::uint64_t limit = is_put ? options.keys : options.max_ops;
  std::atomic<std::uint64_t> claimed{0};
  std::atomic<bool> failed_stop{false};
  Totals totals;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options.duration));
  const auto interval = options.rate > 0
                            ? std::chrono::duration<double>(options.concurrency / options.rate)
                            : std::chrono::duration<double>(0);

  auto body = [&](unsigned id) {
    Worker worker(options, master, id);
    std::vector<std::uint32_t> latencies;
    std::uint64_t done = 0;
    const auto first_due =
        start + std::chrono::duration_cast<Clock::duration>(interval * id / options.concurrency);
    for (std::uint64_t local = 0;; ++local) {
      if (failed_stop.load(std::memory_order_relaxed) || Clock::now() >= deadline) break;
      const std::uint64_t n = claimed.fetch_add(1, std::memory_order_relaxed);
      if (n >= limit) break;
      auto began = Clock::now();
      if (options.rate > 0) {
        const auto due = first_due + std::chrono::duration_cast<Clock::duration>(
                                         interval * static_cast<double>(local));
        if (due > deadline) break;
        if (due > began) std::this_thread::sleep_until(due);
        began = due;
      }
      try {
        if (options.mode == "put-get-delete") {
          worker.cycle(local);
        } else if (is_put) {
          worker.put_index(n);
        } else if (options.mode == "get") {
          worker.get_random();
        } else {
          worker.redirect_random();
        }
      } catch (const std::exception& error) {
        // Every wrong answer is reported; past 100 the load is broken and
        // not worth continuing.
        if (totals.report_error(error.what()) > 100) failed_stop = true;
        worker.master().close();
        continue;
      }
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - began);
      latencies.push_back(
          static_cast<std::uint32_t>(std::min<std::int64_t>(took.count(), UINT32_MAX)));
      ++done;
    }
    std::lock_guard lock(totals.mutex);
    totals.ops += done;
    totals.latencies_us.insert(totals.latencies_us.end(), latencies.begin(), latencies.end());
    totals.last_finish = std::max(totals.last_finish, Clock::now());
    ++totals.finished;
    totals.all_finished.notify_all();
  };

  std::vector<std::thread> threads;
  for (unsigned id = 0; id < options.concurrency; ++id) threads.emplace_back(body, id);
  {
    // Watchdog: a hung server must not hang the benchmark. Blocking sockets
    // have no timeout, so give up on the whole process.
    std::unique_lock lock(totals.mutex);
    const bool finished =
        totals.all_finished.wait_until(lock, deadline + std::chrono::seconds(60),
                                       [&] { return totals.finished == options.concurrency; });
    if (!finished) {
      std::fprintf(stderr,
                   "kalavara-bench: workers still busy 60 s after the deadline; giving up\n");
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
  for (auto& thread : threads) thread.join();

  const double seconds = std::chrono::duration<double>(totals.last_finish - start).count();
  const bool incomplete = is_put && totals.ops < options.keys;
  const auto p50 = percentile(totals.latencies_us, 0.50);
  const auto p99 = percentile(totals.latencies_us, 0.99);
  std::printf(
      "{\"mode\":\"%s\",\"concurrency\":%u,\"value_size\":%llu,\"ops\":%llu,\"seconds\":%s,"
      "\"rate\":%s,\"target_rate\":%s,\"p50_us\":%u,\"p99_us\":%u,\"errors\":%llu,\"incomplete\":%"
      "s}\n",
      options.mode.c_str(), options.concurrency,
      static_cast<unsigned long long>(options.value_size),
      static_cast<unsigned long long>(totals.ops), json_number(seconds).c_str(),
      json_number(seconds > 0 ? static_cast<double>(totals.ops) / seconds : 0).c_str(),
      json_number(options.rate).c_str(), p50, p99, static_cast<unsigned long long>(totals.errors),
      incomplete ? "true" : "false");
  if (incomplete)
    std::fprintf(stderr, "kalavara-bench: stopped before storing all %llu keys\n",
                 static_cast<unsigned long long>(options.keys));
  return totals.errors > 0 || incomplete ? 1 : 0;
}

int run_big(const Options& options, const BaseUrl& master_url) {
  const auto key = options.key_prefix + "big";
  const auto target = store_target(key);
  const auto seed = seed_for_key(key);
  const auto size = options.value_size;
  Connection master(master_url.host, master_url.port);
  double put_seconds = 0;
  double get_seconds = 0;
  std::uint64_t errors = 0;
  try {
    const auto put_start = Clock::now();
    const Reply redirect = master.put_expect_continue(target, size);
    expect_status("PUT master", target, redirect, 307);
    const auto location = parse_location(redirect.location);
    Connection volume(location.host, location.port);
    const Reply stored = volume.put_streaming(location.target, size,
                                              [&](std::uint64_t offset, char* out, std::size_t n) {
                                                fill_pattern(seed, offset, out, n);
                                              });
    expect_status("PUT volume", location.target, stored, 201);
    put_seconds = std::chrono::duration<double>(Clock::now() - put_start).count();

    const auto get_start = Clock::now();
    const Reply found = master.send(bhttp::verb::get, target);
    expect_status("GET master", target, found, 302);
    const auto read_location = parse_location(found.location);
    Connection reader(read_location.host, read_location.port);
    std::uint64_t received = 0;
    std::uint64_t first_bad = UINT64_MAX;
    const Reply value = reader.get_streaming(
        read_location.target,
        [&](std::uint64_t offset, std::string_view data) {
          if (first_bad == UINT64_MAX && !check_pattern(seed, offset, data)) first_bad = offset;
        },
        received);
    expect_status("GET volume", read_location.target, value, 200);
    get_seconds = std::chrono::duration<double>(Clock::now() - get_start).count();
    if (received != size || first_bad != UINT64_MAX) {
      throw WrongAnswer("GET volume " + read_location.target + ": wrong bytes (" +
                        std::to_string(received) + " bytes, first bad chunk at " +
                        (first_bad == UINT64_MAX ? "none" : std::to_string(first_bad)) + ")");
    }
    const Reply deleted = master.send(bhttp::verb::delete_, target);
    expect_status("DELETE master", target, deleted, 204);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kalavara-bench: %s\n", error.what());
    ++errors;
  }
  const double mb = static_cast<double>(size) / 1e6;
  std::printf(
      "{\"mode\":\"big\",\"value_size\":%llu,\"ops\":%d,\"seconds\":%s,\"rate\":%s,"
      "\"put_seconds\":%s,\"get_seconds\":%s,\"put_mb_s\":%s,\"get_mb_s\":%s,\"p50_us\":0,"
      "\"p99_us\":0,\"errors\":%llu}\n",
      static_cast<unsigned long long>(size), errors ? 0 : 2,
      json_number(put_seconds + get_seconds).c_str(),
      json_number(put_seconds + get_seconds > 0 ? 2 / (put_seconds + get_seconds) : 0).c_str(),
      json_number(put_seconds).c_str(), json_number(get_seconds).c_str(),
      json_number(put_seconds > 0 ? mb / put_seconds : 0).c_str(),
      json_number(get_seconds > 0 ? mb / get_seconds : 0).c_str(),
      static_cast<unsigned long long>(errors));
  return errors ? 1 : 0;
}

int write_files(const Options& options) {
  if (options.dir.empty()) {
    std::fprintf(stderr, "kalavara-bench: write-files needs --dir\n");
    return 2;
  }
  for (std::uint64_t index = 0; index < options.keys; ++index) {
    const auto key = key_name(options.key_prefix, index);
    const std::filesystem::path path = std::filesystem::path(options.dir) / key;
    std::filesystem::create_directories(path.parent_path());
    const auto value = make_value(seed_for_key(key), options.value_size);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    if (!out) {
      std::fprintf(stderr, "kalavara-bench: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("{\"mode\":\"write-files\",\"ops\":%llu,\"errors\":0}\n",
              static_cast<unsigned long long>(options.keys));
  return 0;
}

}  // namespace
}  // namespace kalavara::bench

int main(int argc, char** argv) {
  using namespace kalavara::bench;
  Options options;
  CLI::App app{"kalavara-bench: load client for kalavara (one line of JSON on stdout)"};
  app.add_option("--master", options.master, "master base URL")->capture_default_str();
  app.add_option("--mode", options.mode, "put-get-delete, put, get, redirect, big, write-files")
      ->check(CLI::IsMember({"put-get-delete", "put", "get", "redirect", "big", "write-files"}))
      ->capture_default_str();
  app.add_option("-c,--concurrency", options.concurrency, "connections (one thread each)")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--value-size", options.value_size, "bytes per value")->capture_default_str();
  app.add_option("--keys", options.keys, "keys to store (put) or draw from (get, redirect)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--duration", options.duration, "seconds to run at most")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--max-ops", options.max_ops, "operations to run at most")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}))
      ->capture_default_str();
  app.add_option("--key-prefix", options.key_prefix, "prefix of every key")->capture_default_str();
  app.add_option("--rate", options.rate,
                 "operations per second in all, paced (0: as fast as possible)")
      ->check(CLI::Range(0.0, 10'000'000.0))
      ->capture_default_str();
  app.add_option("--expect", options.expect, "redirect mode: the status to expect (302 or 404)")
      ->check(CLI::IsMember({302u, 404u}))
      ->capture_default_str();
  app.add_option("--check-location", options.check_location,
                 "redirect mode: a 302 must point at the key (false for a fixed redirect)")
      ->capture_default_str();
  app.add_option("--dir", options.dir, "write-files mode: where to write");
  CLI11_PARSE(app, argc, argv);

  if (options.mode == "write-files") return write_files(options);
  auto master = kalavara::parse_base_url(options.master);
  if (!master) {
    std::fprintf(stderr, "kalavara-bench: --master: %s\n", master.error().message.c_str());
    return 2;
  }
  try {
    if (options.mode == "big") return run_big(options, *master);
    if (options.mode == "redirect" && options.rate > 0) return run_paced(options, *master);
    return run_load(options, *master);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kalavara-bench: %s\n", error.what());
    return 1;
  }
}
