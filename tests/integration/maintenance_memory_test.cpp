// The master's memory while a rebalance moves half of 100,000 values: a job
// pages through the index and moves one key at a time, volume to volume, so
// what it holds does not grow with the keys or the values. (minikeyvalue's
// rebalance reads each value into memory.)
//
// The values are stored as replica copies straight on a volume and their
// records loaded into the stopped master's index with kalavara-index-loader,
// so the test does not spend minutes on 100,000 PUTs. The volumes' folders
// are on tmpfs (/dev/shm) when it has room, where fsyncs cost nothing.
#include <sys/statvfs.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "blob_listing.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

// Only the test with the index loader uses these (KALAVARA_BUILD_BENCH).
#ifdef KALAVARA_INDEX_LOADER_BIN
constexpr int kKeys = 100'000;
constexpr std::size_t kValueBytes = 2048;

std::string key_of(int n) {
  char text[32];
  std::snprintf(text, sizeof text, "mem/%09d", n);
  return text;
}

// VmRSS of a process, KiB.
std::optional<long> rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return std::nullopt;
}
#endif

TEST(MaintenanceMemory, TheMastersMemoryStaysFlatWhileRebalancingAHundredThousandKeys) {
#ifndef KALAVARA_INDEX_LOADER_BIN
  GTEST_SKIP() << "needs kalavara-index-loader (built with KALAVARA_BUILD_BENCH)";
#else
  struct statvfs shm {};
  if (::statvfs("/dev/shm", &shm) == 0 &&
      static_cast<unsigned long long>(shm.f_bavail) * shm.f_frsize > (2ULL << 30)) {
    ::setenv("TMPDIR", "/dev/shm", 1);
  }
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  const auto source = cluster.volume(0).port();

  // 100,000 copies of one value, version n + 1, on the first volume.
  const std::string value(kValueBytes, 'v');
  std::string etag;
  {
    constexpr int kThreads = 8;
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    std::string etags[kThreads];
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        HttpConnection connection;
        if (!connection.connect(source).empty()) {
          ++failures;
          return;
        }
        for (int n = t; n < kKeys; n += kThreads) {
          HttpRequest put;
          put.method = "PUT";
          put.target = "/store/" + key_of(n) + "?version=" + std::to_string(n + 1) + "&replica=1";
          put.body = value;
          const auto answer = connection.request(put);
          if (answer.status != 201) {
            ++failures;
            return;
          }
          etags[t] = answer.header("ETag").value_or("");
        }
      });
    }
    for (auto& writer : writers) writer.join();
    ASSERT_EQ(failures, 0);
    etag = etags[0];
  }
  ASSERT_EQ(etag.size(), 34U) << etag;

  // Their records, as the master would have committed them.
  Daemon loader("loader", KALAVARA_INDEX_LOADER_BIN,
                {"-d", cluster.master_dir().string(), "-v", cluster.volume(0).url(), "--count",
                 std::to_string(kKeys), "--value-size", std::to_string(kValueBytes), "--key-prefix",
                 "mem/", "--checksum", etag.substr(1, 32)},
                tmp.new_log_path("loader"));
  const auto loaded = loader.wait_exit(120s);
  ASSERT_TRUE(loaded.has_value() && loaded->clean()) << loader.log_text();

  // Half the keys now rank the second volume first.
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(), {"--block-cache-mib", "8", "--maintenance-concurrency", "8"}));
  const auto mport = cluster.master_port();
  const auto master_pid = cluster.master().pid();
  const auto read = get_via_master(mport, "/store/" + key_of(12345));
  ASSERT_EQ(read.second.status, 200) << read.describe();
  ASSERT_EQ(read.second.body, value);
  const auto before = rss_kib(master_pid);
  ASSERT_TRUE(before.has_value());

  const auto started = http_request(mport, "POST", "/admin/rebalance");
  ASSERT_EQ(started.status, 202) << started.summary();
  long peak = *before;
  std::string state;
  std::string job;
  ASSERT_TRUE(wait_until(
      [&] {
        peak = std::max(peak, rss_kib(master_pid).value_or(0));
        job = http_request(mport, "GET", "/admin/jobs").body;
        state = flat_json_field(job, "state").value_or("");
        return state != "running";
      },
      240s, 100ms))
      << job;
  ASSERT_EQ(state, "done") << job;
  const auto changed = std::stoull(flat_json_field(job, "changed_items").value_or("0"));
  EXPECT_GT(changed, static_cast<unsigned long long>(kKeys) * 4 / 10) << job;
  EXPECT_LT(changed, static_cast<unsigned long long>(kKeys) * 6 / 10) << job;
  // What does grow: RocksDB's memtable, with the 50,000 moves' records and
  // queued removals and the arena around them (measured: about 32 MiB from
  // 20 MiB; it is bounded by the write buffers, flushed at 64 MiB), and the
  // 8 MiB block cache filling. Holding the moved values as well would add
  // about 100 MiB.
  const long growth_kib = peak - *before;
  RecordProperty("rss_before_kib", std::to_string(*before));
  RecordProperty("rss_peak_kib", std::to_string(peak));
  EXPECT_LT(growth_kib, 56 * 1024)
      << "the master grew from " << *before << " KiB to " << peak << " KiB while rebalancing";
  // Moved values read back whole, wherever they went.
  for (int n = 0; n < kKeys; n += 997) {
    const auto get = get_via_master(mport, "/store/" + key_of(n));
    ASSERT_EQ(get.second.status, 200) << key_of(n) << ": " << get.describe();
    ASSERT_EQ(get.second.body, value) << key_of(n);
  }
#endif
}

}  // namespace
}  // namespace kalavara::it
