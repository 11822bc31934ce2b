// `kalavara-master rebuild` on real volumes: a lost index comes back from
// what the volumes hold, latest values live and deleted keys deleted, and
// new writes go on above every stored version.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "blob_listing.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

std::string store_target(std::string_view key) { return "/store/" + percent_encode(key); }

// Keys of every awkward kind: '/', spaces, '%', arbitrary bytes, 1000 bytes.
std::string key_number(std::size_t i) {
  const auto n = std::to_string(i);
  switch (i % 6) {
    case 0:
      return "plain-" + n;
    case 1:
      return "dir/sub dir/" + n + "/";
    case 2:
      return "100% sure " + n;
    case 3: {
      std::string key;
      for (int c = 1; c < 256; c += 7) key.push_back(static_cast<char>(c));
      return key + n;
    }
    case 4: {
      auto key = "long-" + n + "-";
      key.resize(1000, static_cast<char>('a' + i % 26));
      return key;
    }
    default:
      return "\xc3\xa9t\xc3\xa9/" + n;
  }
}

struct RebuildRun {
  std::optional<ExitStatus> exit;
  std::string log;
};

RebuildRun run_rebuild(TempDir& tmp, const fs::path& index_dir,
                       const std::vector<std::string>& volume_urls,
                       const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"rebuild", "-d", index_dir.string(), "-v"};
  args.insert(args.end(), volume_urls.begin(), volume_urls.end());
  args.insert(args.end(), extra.begin(), extra.end());
  Daemon rebuild("rebuild", master_binary(), args, tmp.new_log_path("rebuild"));
  RebuildRun run;
  run.exit = rebuild.wait_exit(120s);
  run.log = rebuild.log_text();
  return run;
}

// Stops the master (expecting a clean exit) and loses its index.
::testing::AssertionResult lose_the_index(Cluster& cluster) {
  const auto stopped = cluster.master().stop();
  if (!stopped || !stopped->clean()) {
    return ::testing::AssertionFailure()
           << "the master did not stop cleanly: "
           << (stopped ? stopped->describe() : std::string("still running"));
  }
  fs::remove_all(cluster.master_dir());
  return ::testing::AssertionSuccess();
}

// The versions of `key` each volume lists, values and markers apart.
struct Held {
  std::vector<std::uint64_t> values;
  std::vector<std::uint64_t> markers;
};
// What each volume holds of `key`; a volume that is not running holds
// nothing, as far as this can tell.
std::vector<Held> held_by_volume(Cluster& cluster, const std::string& key) {
  std::vector<Held> held(cluster.volume_count());
  for (std::size_t i = 0; i < cluster.volume_count(); ++i) {
    if (!cluster.volume(i).running()) continue;
    for (const auto& blob : list_all_blobs(cluster.volume(i).port(), 1000)) {
      if (blob.key != key) continue;
      (blob.marker ? held[i].markers : held[i].values).push_back(blob.version);
    }
  }
  return held;
}

class RebuildAfterOverwrites : public ::testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(, RebuildAfterOverwrites, ::testing::Bool(), [](const auto& param_info) {
  return param_info.param ? "OldVersionsGone" : "OldVersionsStillThere";
});

TEST_P(RebuildAfterOverwrites, EveryLiveKeyReadsItsLatestValueAndEveryDeletedKeyIs404) {
  const bool wait_for_old_versions = GetParam();
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--old-version-grace", "1"}));
  const auto master = cluster.master_port();

  constexpr std::size_t kKeys = 500;
  std::map<std::string, std::string> live;  // key -> latest value
  std::set<std::string> deleted;
  for (std::size_t i = 0; i < kKeys; ++i) {
    const auto key = key_number(i);
    const auto value = "first value of " + std::to_string(i) + std::string(i % 7 * 100, 'x');
    const auto put = put_via_master(master, store_target(key), value);
    ASSERT_EQ(put.second.status, 201) << printable(key) << ": " << put.describe();
    live[key] = value;
  }
  ASSERT_EQ(live.size(), kKeys);
  // Every fifth key overwritten, one in eleven deleted (some of those
  // overwritten first).
  for (std::size_t i = 0; i < kKeys; i += 5) {
    const auto key = key_number(i);
    const auto value = "second value of " + std::to_string(i);
    const auto put = put_via_master(master, store_target(key), value);
    ASSERT_EQ(put.second.status, 201) << printable(key) << ": " << put.describe();
    live[key] = value;
  }
  for (std::size_t i = 3; i < kKeys; i += 11) {
    const auto key = key_number(i);
    const auto erased = http_request(master, "DELETE", store_target(key));
    ASSERT_EQ(erased.status, 204) << printable(key) << ": " << erased.summary();
    live.erase(key);
    deleted.insert(key);
  }
  if (wait_for_old_versions) {
    // Two copies of each live key's latest value, and nothing else.
    EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 2 * live.size(); }, 30s))
        << cluster.blob_count() << " files for " << live.size() << " live keys";
  }

  ASSERT_TRUE(lose_the_index(cluster));
  const auto rebuilt = run_rebuild(tmp, cluster.master_dir(), cluster.volume_urls());
  ASSERT_TRUE(rebuilt.exit.has_value()) << "the rebuild did not end";
  EXPECT_TRUE(rebuilt.exit->clean()) << rebuilt.exit->describe() << "\n" << rebuilt.log;
  EXPECT_NE(rebuilt.log.find("done: " + std::to_string(live.size()) + " key(s) rebuilt"),
            std::string::npos)
      << rebuilt.log;
  EXPECT_NE(rebuilt.log.find("volumes not read completely: none"), std::string::npos)
      << rebuilt.log;

  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto port = cluster.master_port();
  for (const auto& [key, value] : live) {
    const auto read = get_via_master(port, store_target(key));
    ASSERT_EQ(read.second.status, 200) << printable(key) << ": " << read.describe();
    EXPECT_TRUE(read.second.body == value) << printable(key) << ": " << printable(read.second.body);
  }
  for (const auto& key : deleted) {
    const auto read = http_request(port, "GET", store_target(key));
    EXPECT_EQ(read.status, 404) << printable(key) << ": " << read.summary();
  }
  // The listing of the rebuilt index is every live key.
  const auto listing = http_request(port, "GET", "/store/?list&limit=10000");
  ASSERT_EQ(listing.status, 200) << listing.summary();
  EXPECT_EQ(std::count(listing.body.begin(), listing.body.end(), ','),
            static_cast<std::ptrdiff_t>(live.size()))
      << "one separator per key, and one before next";

  // Writes go on above every stored version: an overwrite wins, a new key
  // reads back.
  const auto& [old_key, old_value] = *live.begin();
  for (const auto& [key, value] : std::map<std::string, std::string>{
           {old_key, "written after the rebuild"}, {"new key/after rebuild", "brand new"}}) {
    const auto put = put_via_master(port, store_target(key), value);
    ASSERT_EQ(put.second.status, 201) << put.describe();
    const auto read = get_via_master(port, store_target(key));
    EXPECT_EQ(read.second.status, 200) << read.describe();
    EXPECT_EQ(read.second.body, value);
  }
  EXPECT_NE(old_value, "written after the rebuild");
}

TEST(Rebuild, AMarkerKeepsADeletedKeyDeletedAndCleanRemovesTheStaleCopy) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const std::string ghost = "ghost/deleted key";
  const std::string kept = "kept";
  ASSERT_EQ(put_via_master(cluster.master_port(), store_target(ghost), "boo").second.status, 201);
  ASSERT_EQ(put_via_master(cluster.master_port(), store_target(kept), "here").second.status, 201);

  // The ghost's copies: one volume goes down, the delete reaches the other.
  auto held = held_by_volume(cluster, ghost);
  std::vector<std::size_t> holders;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (!held[i].values.empty()) holders.push_back(i);
  }
  ASSERT_EQ(holders.size(), 2U);
  const auto down = holders[0];
  const auto reached = holders[1];
  const auto version = held[down].values.at(0);
  cluster.volume(down).kill_hard();
  const auto erased = http_request(cluster.master_port(), "DELETE", store_target(ghost));
  ASSERT_EQ(erased.status, 204) << erased.summary();
  // The master's delete path leaves a marker on the volume it reached, for
  // the removal still queued for the one that is down.
  std::vector<std::uint64_t> markers;
  ASSERT_TRUE(wait_until(
      [&] {
        markers = held_by_volume(cluster, ghost)[reached].markers;
        return !markers.empty();
      },
      5s))
      << "no delete marker on the volume that took its removal";
  ASSERT_EQ(markers.size(), 1U);
  EXPECT_GT(markers.front(), version) << "the delete's version is above the value's";

  // The index is lost before the down volume is back.
  ASSERT_TRUE(lose_the_index(cluster));
  ASSERT_TRUE(cluster.restart_volume(down));
  ASSERT_EQ(held_by_volume(cluster, ghost)[down].values, std::vector<std::uint64_t>{version});

  auto rebuilt = run_rebuild(tmp, cluster.master_dir(), cluster.volume_urls());
  ASSERT_TRUE(rebuilt.exit.has_value()) << "the rebuild did not end";
  EXPECT_TRUE(rebuilt.exit->clean()) << rebuilt.exit->describe() << "\n" << rebuilt.log;
  EXPECT_NE(rebuilt.log.find("1 key(s) rebuilt, 1 deleted key(s) seen, 1 stale cop(ies) found"),
            std::string::npos)
      << rebuilt.log;
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  EXPECT_EQ(http_request(cluster.master_port(), "GET", store_target(ghost)).status, 404);
  EXPECT_EQ(get_via_master(cluster.master_port(), store_target(kept)).second.body, "here");
  // Without --clean the stale copy stays.
  EXPECT_EQ(held_by_volume(cluster, ghost)[down].values, std::vector<std::uint64_t>{version});

  // A rebuild into an index that holds records is refused.
  ASSERT_TRUE(cluster.master().stop().has_value());
  const auto refused = run_rebuild(tmp, cluster.master_dir(), cluster.volume_urls());
  ASSERT_TRUE(refused.exit.has_value());
  EXPECT_TRUE(refused.exit->exited && refused.exit->code == 2) << refused.exit->describe();
  EXPECT_NE(refused.log.find("already holds key records"), std::string::npos) << refused.log;

  // Lost again, and rebuilt with --clean: the stale copy goes, the marker
  // stays.
  fs::remove_all(cluster.master_dir());
  rebuilt = run_rebuild(tmp, cluster.master_dir(), cluster.volume_urls(), {"--clean"});
  ASSERT_TRUE(rebuilt.exit.has_value()) << "the rebuild did not end";
  EXPECT_TRUE(rebuilt.exit->clean()) << rebuilt.exit->describe() << "\n" << rebuilt.log;
  EXPECT_NE(rebuilt.log.find("1 stale cop(ies) found, 1 removed"), std::string::npos)
      << rebuilt.log;
  held = held_by_volume(cluster, ghost);
  EXPECT_TRUE(held[down].values.empty());
  EXPECT_EQ(held[reached].markers, markers);
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  EXPECT_EQ(http_request(cluster.master_port(), "GET", store_target(ghost)).status, 404);
  EXPECT_EQ(get_via_master(cluster.master_port(), store_target(kept)).second.body, "here");
}

TEST(Rebuild, AVolumeThatCannotBeListedIsReportedAndTheExitCodeIs1) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  ASSERT_EQ(put_via_master(cluster.master_port(), store_target("k"), "v").second.status, 201);
  ASSERT_TRUE(lose_the_index(cluster));
  const auto nobody = "http://127.0.0.1:" + std::to_string(pick_free_port());
  const auto rebuilt = run_rebuild(tmp, cluster.master_dir(), {cluster.volume(0).url(), nobody});
  ASSERT_TRUE(rebuilt.exit.has_value()) << "the rebuild did not end";
  EXPECT_TRUE(rebuilt.exit->exited && rebuilt.exit->code == 1) << rebuilt.exit->describe();
  EXPECT_NE(rebuilt.log.find("volumes not read completely: " + nobody), std::string::npos)
      << rebuilt.log;
  // What could be read is rebuilt.
  ASSERT_TRUE(cluster.start_master({cluster.volume(0).url()}));
  EXPECT_EQ(get_via_master(cluster.master_port(), store_target("k")).second.body, "v");
}

TEST(Rebuild, NewWritesGoAboveEveryStoredVersionAndUploadsIssuedBeforeTheLossAreRefused) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto master_port = cluster.master_port();
  // An upload whose redirect came before the loss and whose body comes after.
  const auto pending = http_request(master_port, "PUT", "/store/in-flight", "late");
  ASSERT_EQ(pending.status, 307) << pending.summary();
  ASSERT_EQ(put_via_master(master_port, store_target("k"), "v").second.status, 201);
  // A copy at a version above any the clock will reach for an hour.
  const auto now_micros =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const auto future = std::to_string(now_micros + 3'600'000'000ULL);
  const auto stored = http_request(cluster.volume(0).port(), "PUT",
                                   "/store/future?version=" + future + "&replica=1", "ahead");
  ASSERT_EQ(stored.status, 201) << stored.summary();

  ASSERT_TRUE(lose_the_index(cluster));
  const auto rebuilt = run_rebuild(tmp, cluster.master_dir(), cluster.volume_urls());
  ASSERT_TRUE(rebuilt.exit.has_value()) << "the rebuild did not end";
  EXPECT_TRUE(rebuilt.exit->clean()) << rebuilt.exit->describe() << "\n" << rebuilt.log;
  ASSERT_TRUE(cluster.start_master(cluster.volume_urls(), master_port));

  const auto ahead = get_via_master(master_port, "/store/future");
  EXPECT_EQ(ahead.second.body, "ahead") << ahead.describe();
  // Were the new master's versions below the stored one, this write would
  // be superseded by it.
  ASSERT_EQ(put_via_master(master_port, "/store/future", "now").second.status, 201);
  EXPECT_EQ(get_via_master(master_port, "/store/future").second.body, "now");

  // Whether a delete came after the pending upload is lost with the index:
  // its commit to a key without a record is refused.
  const auto late = follow_redirect(pending, "PUT", "late");
  EXPECT_EQ(late.status, 409) << late.summary();
  EXPECT_EQ(http_request(master_port, "GET", "/store/in-flight").status, 404);
  EXPECT_EQ(get_via_master(master_port, store_target("k")).second.body, "v");
}

}  // namespace
}  // namespace kalavara::it
