// kalavara-index-loader: fills a master's index folder with synthetic records,
// fast, while the master is stopped (issue 4, the 10M-key figure). Keys are
// PREFIX000000000, PREFIX000000001, ... each pointing at one of the given
// volumes (round robin). Writes through RocksDbIndexStore::put_batch, so the
// records are exactly what the master would have committed.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/blocking.hpp"
#include "common/url.hpp"
#include "master/index_record.hpp"
#include "master/rocksdb_index_store.hpp"

int main(int argc, char** argv) {
  std::string dir;
  std::vector<std::string> volume_flags;
  std::uint64_t start = 0;
  std::uint64_t count = 1'000'000;
  std::uint64_t batch_size = 10'000;
  std::uint64_t value_size = 1024;
  std::string prefix = "bench/";
  std::string checksum;
  double max_seconds = 3600;

  CLI::App app{"kalavara-index-loader: loads synthetic records into a stopped master's index"};
  app.add_option("-d,--data-dir", dir, "the master's index folder (RocksDB)")->required();
  app.add_option("-v,--volumes", volume_flags, "volume base URLs the records point at")->required();
  app.add_option("--start", start, "first key number")->capture_default_str();
  app.add_option("--count", count, "records to write")->capture_default_str();
  app.add_option("--batch", batch_size, "records per batch")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--value-size", value_size, "the size the records claim")->capture_default_str();
  app.add_option("--key-prefix", prefix, "prefix of every key")->capture_default_str();
  app.add_option("--checksum", checksum,
                 "the checksum (32 hex digits) the records claim: that of values stored "
                 "beside them, for tests that move them");
  app.add_option("--max-seconds", max_seconds,
                 "stop after this long (the count written is printed)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> volumes;
  for (const auto& flag : volume_flags) {
    auto url = kalavara::parse_base_url(flag);
    if (!url) {
      std::fprintf(stderr, "kalavara-index-loader: %s: %s\n", flag.c_str(),
                   url.error().message.c_str());
      return 2;
    }
    volumes.push_back(url->text);
  }

  boost::asio::thread_pool blocking(1);
  boost::asio::io_context io;
  auto store = kalavara::RocksDbIndexStore::open(dir, 8u << 20, blocking);
  if (!store) {
    std::fprintf(stderr, "kalavara-index-loader: %s\n", store.error().message.c_str());
    return 1;
  }
  for (const auto& url : volumes) {
    if (auto status = kalavara::run_to_completion(
            io, (*store)->put_volume({url, kalavara::VolumeState::kActive}));
        !status) {
      std::fprintf(stderr, "kalavara-index-loader: %s\n", status.error().message.c_str());
      return 1;
    }
  }

  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  std::vector<std::pair<std::string, kalavara::IndexRecord>> batch;
  batch.reserve(batch_size);
  std::uint64_t written = 0;
  bool out_of_time = false;
  while (written < count) {
    if (std::chrono::duration<double>(Clock::now() - began).count() > max_seconds) {
      out_of_time = true;
      break;
    }
    batch.clear();
    for (std::uint64_t i = 0; i < batch_size && written + i < count; ++i) {
      const std::uint64_t n = start + written + i;
      char digits[32];
      std::snprintf(digits, sizeof digits, "%09llu", static_cast<unsigned long long>(n));
      kalavara::IndexRecord record;
      record.volumes.push_back(volumes[n % volumes.size()]);
      record.size = value_size;
      record.version = n + 1;  // versions start at 1, as the master's redirects require
      record.checksum = checksum;
      batch.emplace_back(prefix + digits, std::move(record));
    }
    if (auto status = (*store)->put_batch(batch); !status) {
      std::fprintf(stderr, "kalavara-index-loader: after %llu records: %s\n",
                   static_cast<unsigned long long>(written), status.error().message.c_str());
      return 1;
    }
    written += batch.size();
  }
  // Measure a settled index, as a long-running master has: without this the
  // master would spend its first minutes compacting what was just loaded.
  if (auto status = (*store)->compact(); !status) {
    std::fprintf(stderr, "kalavara-index-loader: %s\n", status.error().message.c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  std::printf("{\"records\":%llu,\"first\":%llu,\"seconds\":%.3f,\"rate\":%.0f,\"complete\":%s}\n",
              static_cast<unsigned long long>(written), static_cast<unsigned long long>(start),
              seconds, seconds > 0 ? static_cast<double>(written) / seconds : 0.0,
              out_of_time ? "false" : "true");
  return 0;
}
