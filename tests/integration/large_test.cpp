// A 256 MiB value streams through the daemons without being held in memory.
// Filter with --gtest_filter=-*Large* to skip it.
#include <iostream>
#include <string>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// 13. PUT with curl -T, GET with curl -L -o, compare in chunks, then check each
// daemon's peak RSS (VmHWM) stayed under 64 MiB.
TEST(Streaming, LargeValueStreamsWithBoundedMemory) {
  constexpr std::size_t kSize = 256 * kMiB;
  constexpr long kMaxRssKiB = 64 * 1024;
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const fs::path source = tmp.path() / "large.bin";
  const fs::path fetched = tmp.path() / "large.out";
  write_random_file(source, kSize);
  const std::string url = cluster.store_url("large/" + random_token(10));

  CurlOptions options;
  options.max_time = std::chrono::seconds(240);
  const auto put = run_curl(tmp, {"-T", source.string(), "-L", url}, options);
  ASSERT_EQ(put.exit_code, 0) << put.describe();
  ASSERT_EQ(put.http_status, 201) << put.describe();

  options.output_file = fetched;
  const auto get = run_curl(tmp, {"-L", url}, options);
  ASSERT_EQ(get.exit_code, 0) << get.describe();
  ASSERT_EQ(get.http_status, 200) << get.describe();
  EXPECT_TRUE(files_equal(source, fetched));

  for (Daemon* d : {&cluster.master(), &cluster.volume(0)}) {
    const auto rss = d->peak_rss_kib();
    ASSERT_TRUE(rss.has_value()) << "no VmHWM for " << d->name() << " (pid " << d->pid() << ")";
    std::cerr << "[harness] " << d->name() << " peak RSS " << *rss << " KiB\n";
    EXPECT_LT(*rss, kMaxRssKiB) << d->name() << " peak RSS " << *rss << " KiB";
  }
}

}  // namespace
}  // namespace kalavara::it
