// Maintenance jobs on real daemons: rebalance after volumes are added, under
// load; repair of a wiped volume; scrub of a flipped byte; retiring a
// volume under load; orphan collection. Every job is started over HTTP
// (POST /admin/...) and followed through GET /admin/jobs.

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "blob_listing.hpp"
#include "fake_peer.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

struct JobResult {
  std::string state;  // "done", "failed", or "" when it never finished in time
  std::string json;   // the job's object as GET /admin/jobs showed it last
  std::string describe() const { return state + ": " + json; }
};

// The object of job `id` within GET /admin/jobs' array.
std::string job_object(const std::string& jobs, const std::string& id) {
  const auto at = jobs.find("{\"id\":\"" + id + "\"");
  if (at == std::string::npos) return {};
  // Objects hold one array (errors) of strings and no nested objects.
  const auto end = jobs.find("},", at);
  return jobs.substr(at, end == std::string::npos ? std::string::npos : end - at + 1);
}

// Starts a job with POST `path` and waits for it to end.
JobResult run_job(uint16_t master_port, const std::string& path, const std::string& body = {},
                  Millis timeout = 90s) {
  JobResult result;
  const auto started = http_request(master_port, "POST", path, body);
  if (started.status != 202) {
    result.json = "not started: " + started.summary();
    return result;
  }
  const auto id = flat_json_field(started.body, "id");
  if (!id) {
    result.json = "no id: " + started.summary();
    return result;
  }
  wait_until(
      [&] {
        const auto jobs = http_request(master_port, "GET", "/admin/jobs");
        result.json = job_object(jobs.body, *id);
        const auto state = flat_json_field(result.json, "state");
        if (state && *state != "running") result.state = *state;
        return !result.state.empty();
      },
      timeout, 100ms);
  return result;
}

std::uint64_t job_number(const JobResult& job, const std::string& field) {
  const auto text = flat_json_field(job.json, field);
  return text ? std::stoull(*text) : 0;
}

// The version named by a 302's Location.
std::uint64_t version_of(const HttpResponse& redirect) {
  const auto location = redirect.header("Location").value_or("");
  const auto at = location.find("version=");
  return at == std::string::npos ? 0 : std::stoull(location.substr(at + 8));
}

// For every key, the volumes (indices) holding a file of `versions[key]`.
std::map<std::string, std::set<std::size_t>> holders(
    Cluster& cluster, const std::map<std::string, std::uint64_t>& versions) {
  std::map<std::string, std::set<std::size_t>> out;
  for (std::size_t v = 0; v < cluster.volume_count(); ++v) {
    if (!cluster.volume(v).running()) continue;
    for (const auto& blob : list_all_blobs(cluster.volume(v).port(), 1000)) {
      const auto it = versions.find(blob.key);
      if (!blob.marker && it != versions.end() && it->second == blob.version) {
        out[blob.key].insert(v);
      }
    }
  }
  return out;
}

// The committed version of each key, as the master redirects to it.
std::map<std::string, std::uint64_t> committed_versions(uint16_t master_port,
                                                        const std::vector<std::string>& keys) {
  std::map<std::string, std::uint64_t> versions;
  for (const auto& key : keys) {
    const auto located = http_request(master_port, "HEAD", "/store/" + key);
    if (located.status == 302) versions[key] = version_of(located);
  }
  return versions;
}

std::string value_for(const std::string& key, int round) {
  return key + "-" + std::to_string(round) + "-" + random_token(64 + (round % 7) * 100);
}

// Clients that each own some keys, overwrite and read them back until told
// to stop, and count every request that did not go as it should.
class Load {
 public:
  Load(uint16_t master_port, std::map<std::string, std::string> values, std::size_t clients)
      : master_port_(master_port), values_(std::move(values)) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : values_) keys.push_back(key);
    for (std::size_t c = 0; c < clients; ++c) {
      std::vector<std::string> mine;
      for (std::size_t i = c; i < keys.size(); i += clients) mine.push_back(keys[i]);
      threads_.emplace_back([this, mine] { run(mine); });
    }
  }
  ~Load() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  std::map<std::string, std::string> values() const {
    std::lock_guard lock(mutex_);
    return values_;
  }
  int requests() const { return requests_; }

 private:
  void run(const std::vector<std::string>& keys) {
    std::mt19937 random(std::random_device{}());
    // Bounded in count as well as by stop().
    for (int round = 1; round <= 100000 && !stop_; ++round) {
      const auto& key = keys[random() % keys.size()];
      if (random() % 3 == 0) {
        const auto value = value_for(key, round);
        const auto put = put_via_master(master_port_, "/store/" + key, value);
        ++requests_;
        if (put.second.status != 201) {
          fail("PUT " + key + ": " + put.describe());
          continue;
        }
        std::lock_guard lock(mutex_);
        values_[key] = value;
      } else {
        std::string expected;
        {
          std::lock_guard lock(mutex_);
          expected = values_.at(key);
        }
        const auto get = get_via_master(master_port_, "/store/" + key);
        ++requests_;
        if (get.second.status != 200 || get.second.body != expected) {
          fail("GET " + key + ": " + get.describe());
        }
      }
    }
  }
  void fail(std::string what) {
    std::lock_guard lock(mutex_);
    if (failures_.size() < 20) failures_.push_back(std::move(what));
  }

  const uint16_t master_port_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> failures_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::vector<std::thread> threads_;
};

std::map<std::string, std::string> store_keys(uint16_t master_port, const std::string& prefix,
                                              int count) {
  std::map<std::string, std::string> values;
  for (int i = 0; i < count; ++i) {
    const auto key = prefix + std::to_string(i);
    const auto value = value_for(key, 0);
    const auto put = put_via_master(master_port, "/store/" + key, value);
    EXPECT_EQ(put.second.status, 201) << put.describe();
    values[key] = value;
  }
  return values;
}

std::vector<std::string> keys_of(const std::map<std::string, std::string>& values) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : values) keys.push_back(key);
  return keys;
}

void expect_values(uint16_t master_port, const std::map<std::string, std::string>& values,
                   int reads_each = 1) {
  for (const auto& [key, value] : values) {
    for (int r = 0; r < reads_each; ++r) {
      const auto get = get_via_master(master_port, "/store/" + key);
      ASSERT_EQ(get.second.status, 200) << key << ": " << get.describe();
      ASSERT_EQ(get.second.body, value) << key;
    }
  }
}

TEST(Maintenance, RebalanceMovesValuesToNewVolumesUnderLoad) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--old-version-grace", "1"}));
  const auto mport = cluster.master_port();
  const auto stored = store_keys(mport, "rebalance/", 200);

  for (int i = 0; i < 2; ++i) {
    std::size_t index = 0;
    ASSERT_TRUE(cluster.start_volume(&index));
    const auto added =
        http_request(mport, "POST", "/admin/add-volume", cluster.volume(index).url());
    ASSERT_EQ(added.status, 200) << added.summary();
  }
  Load load(mport, stored, 8);
  const auto job = run_job(mport, "/admin/rebalance");
  load.stop();
  ASSERT_EQ(job.state, "done") << job.describe();
  EXPECT_GT(job_number(job, "changed_items"), 0U) << job.describe();
  EXPECT_GT(load.requests(), 0);
  EXPECT_TRUE(load.failures().empty()) << load.failures().front();

  // Keys the load overwrote meanwhile were placed by their new write; a
  // second run moves what the first had to leave (busy keys).
  const auto again = run_job(mport, "/admin/rebalance");
  ASSERT_EQ(again.state, "done") << again.describe();
  const auto values = load.values();
  expect_values(mport, values, 2);
  const auto versions = committed_versions(mport, keys_of(values));
  ASSERT_EQ(versions.size(), values.size());
  std::map<std::string, std::set<std::size_t>> where;
  std::size_t files = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        where = holders(cluster, versions);
        files = cluster.blob_count();
        // Every value on exactly two volumes, and nothing else left behind
        // once the replaced copies' grace is over.
        return files == 2 * values.size() &&
               std::all_of(values.begin(), values.end(),
                           [&](const auto& kv) { return where[kv.first].size() == 2; });
      },
      20s, 200ms))
      << files << " files for " << values.size() << " keys";
  std::size_t on_new = 0;
  for (const auto& [key, volumes] : where) on_new += volumes.count(2) + volumes.count(3);
  // Half the copies belong on the new volumes; allow for the spread.
  EXPECT_GT(on_new, values.size() * 2 / 4) << on_new << " of " << 2 * values.size() << " copies";
}

TEST(Maintenance, RepairRecreatesTheCopiesOfAWipedVolume) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto mport = cluster.master_port();
  const auto values = store_keys(mport, "repair/", 90);
  const auto versions = committed_versions(mport, keys_of(values));

  // The disk of volume 1 is replaced: same address, empty folder.
  ASSERT_TRUE(cluster.volume(1).stop(SIGTERM, 10s).has_value());
  fs::remove_all(cluster.volume_dir(1));
  ASSERT_TRUE(cluster.restart_volume(1));
  const auto before = holders(cluster, versions);
  std::size_t short_keys = 0;
  for (const auto& [key, version] : versions)
    short_keys += before.count(key) == 0 || before.at(key).size() < 2;
  ASSERT_GT(short_keys, 0U) << "the wiped volume held copies";

  const auto job = run_job(mport, "/admin/repair");
  ASSERT_EQ(job.state, "done") << job.describe();
  EXPECT_EQ(job_number(job, "changed_items"), short_keys) << job.describe();
  const auto after = holders(cluster, versions);
  for (const auto& [key, version] : versions) {
    ASSERT_EQ(after.count(key), 1U) << key;
    EXPECT_EQ(after.at(key).size(), 2U) << key;
  }
  expect_values(mport, values, 3);
  // Nothing more to do.
  const auto again = run_job(mport, "/admin/repair");
  ASSERT_EQ(again.state, "done") << again.describe();
  EXPECT_EQ(job_number(again, "changed_items"), 0U) << again.describe();
}

TEST(Maintenance, ScrubReplacesACorruptCopyAndNeverServesItAgain) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto mport = cluster.master_port();
  const auto values = store_keys(mport, "scrub/", 20);
  const std::string victim = "scrub/7";
  const auto versions = committed_versions(mport, {victim});

  // Flip one byte of the value in volume 0's copy.
  std::optional<fs::path> file;
  for (const auto& blob : list_all_blobs(cluster.volume(0).port(), 1000)) {
    if (blob.key != victim) continue;
    const auto name = blob.name;
    file = cluster.volume_dir(0) / "blobs" / name.substr(0, 2) / name.substr(2, 2) / name;
  }
  ASSERT_TRUE(file.has_value());
  {
    std::fstream stream(*file, std::ios::in | std::ios::out | std::ios::binary);
    stream.seekg(-1, std::ios::end);
    char last = 0;
    stream.read(&last, 1);
    stream.seekp(-1, std::ios::end);
    last = static_cast<char>(last ^ 0x20);
    stream.write(&last, 1);
  }
  const auto job = run_job(mport, "/admin/scrub");
  ASSERT_EQ(job.state, "done") << job.describe();
  EXPECT_NE(job.json.find("corrupt copy of version " + std::to_string(versions.at(victim)) +
                          " found and replaced"),
            std::string::npos)
      << job.describe();
  // Both copies are good again, and every read returns the stored bytes.
  const auto after = holders(cluster, versions);
  EXPECT_EQ(after.count(victim) ? after.at(victim).size() : 0U, 2U);
  expect_values(mport, values, 4);
  const auto direct =
      http_request(cluster.volume(0).port(), "GET",
                   "/store/" + victim + "?version=" + std::to_string(versions.at(victim)));
  if (direct.status == 200) {
    EXPECT_EQ(direct.body, values.at(victim));
  }
}

TEST(Maintenance, RemovingAVolumeUnderLoadDrainsItAndLosesNothing) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--old-version-grace", "1"}));
  const auto mport = cluster.master_port();
  const auto stored = store_keys(mport, "retire/", 120);
  const auto retired = cluster.volume(2).url();

  Load load(mport, stored, 4);
  const auto job = run_job(mport, "/admin/remove-volume", retired);
  load.stop();
  ASSERT_EQ(job.state, "done") << job.describe();
  EXPECT_TRUE(load.failures().empty()) << load.failures().front();
  const auto volumes = http_request(mport, "GET", "/admin/volumes");
  EXPECT_EQ(volumes.body.find(retired), std::string::npos) << volumes.body;
  EXPECT_TRUE(list_all_blobs(cluster.volume(2).port(), 1000).empty())
      << "the retired volume still holds files";
  expect_values(mport, load.values(), 2);
  // A second retire of a forgotten volume is refused.
  const auto unknown = http_request(mport, "POST", "/admin/remove-volume", retired);
  EXPECT_EQ(unknown.status, 404) << unknown.summary();
}

TEST(Maintenance, ScrubRemovesOrphansAndLeavesCommittedValues) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(),
      {"--max-upload-time", "1", "--old-version-grace", "1", "--orphan-min-age", "0"}));
  const auto mport = cluster.master_port();
  const auto values = store_keys(mport, "orphans/", 5);

  // Two uploads whose commit vanished: one of a new key, one of an existing
  // key at an older version than the committed one. Their versions are old
  // enough that no commit can come for them any more.
  // A stand-in master that reads the commit and closes without an answer:
  // the volume answers 504 and keeps its file, an orphan.
  FakePeer vanishing(FakePeer::Mode::kCloseUnanswered);
  const auto old_version = std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch() - std::chrono::seconds(60))
          .count());
  for (const std::string key : {"orphans/never-committed", "orphans/1"}) {
    const auto put = http_request(cluster.volume(0).port(), "PUT",
                                  "/store/" + key + "?version=" + old_version +
                                      "&master=" + percent_encode(vanishing.url(), false),
                                  "orphan bytes");
    ASSERT_EQ(put.status, 504) << put.summary();
  }
  ASSERT_EQ(cluster.blob_count(), values.size() + 2);

  const auto job = run_job(mport, "/admin/scrub");
  ASSERT_EQ(job.state, "done") << job.describe();
  EXPECT_EQ(job_number(job, "changed_items"), 2U) << job.describe();
  EXPECT_EQ(cluster.blob_count(), values.size());
  expect_values(mport, values);
  EXPECT_EQ(get_via_master(mport, "/store/orphans/never-committed").first.status, 404);
}

TEST(Maintenance, ASecondJobOfAKindWhileOneRunsIsRefused) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto mport = cluster.master_port();
  store_keys(mport, "busy/", 30);
  // Retiring a volume that is down: its values move off it, but the removal
  // of its copies waits for it to answer (a minute and more), so the job
  // stays running.
  const auto dead = cluster.volume(2).url();
  cluster.volume(2).kill_hard();
  const auto first = http_request(mport, "POST", "/admin/remove-volume", dead);
  ASSERT_EQ(first.status, 202) << first.summary();
  const auto second = http_request(mport, "POST", "/admin/remove-volume", cluster.volume(1).url());
  EXPECT_EQ(second.status, 409) << second.summary();
  const auto other = http_request(mport, "POST", "/admin/repair");
  EXPECT_EQ(other.status, 202) << "jobs of other kinds run side by side: " << other.summary();
  const auto unknown = http_request(mport, "POST", "/admin/scrub/extra");
  EXPECT_EQ(unknown.status, 404) << unknown.summary();
  const auto jobs = http_request(mport, "GET", "/admin/jobs");
  EXPECT_NE(jobs.body.find("\"kind\":\"remove-volume\",\"state\":\"running\""), std::string::npos)
      << jobs.body;
  const auto volumes = http_request(mport, "GET", "/admin/volumes");
  const auto listed = volumes.body.find("\"url\": \"" + dead + "\"");
  ASSERT_NE(listed, std::string::npos) << volumes.body;
  EXPECT_NE(volumes.body.find("\"draining\": true", listed), std::string::npos) << volumes.body;
  EXPECT_EQ(volumes.body.find("\"draining\": true"),
            volumes.body.find("\"draining\": true", listed))
      << "only the retired volume drains: " << volumes.body;
}

TEST(Maintenance, TheAdminCommandWaitsForItsJobAndSaysHowItWent) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const auto mport = cluster.master_port();
  const auto values = store_keys(mport, "cli/", 40);
  ASSERT_TRUE(cluster.volume(1).stop(SIGTERM, 10s).has_value());
  fs::remove_all(cluster.volume_dir(1));
  ASSERT_TRUE(cluster.restart_volume(1));

  // Not a terminal: plain progress lines on stderr, the summary on stdout.
  const std::string master = "http://127.0.0.1:" + std::to_string(mport);
  Daemon repair("repair", master_binary(), {"repair", "--master", master},
                tmp.new_log_path("repair"));
  const auto exit = repair.wait_exit(60s);
  ASSERT_TRUE(exit.has_value()) << "the command did not end: " << repair.log_text();
  EXPECT_TRUE(exit->clean()) << exit->describe() << "\n" << repair.log_text();
  const auto log = repair.log_text();
  EXPECT_NE(log.find("-repair done: 40 items, 40 changed, 0 skipped, 0 failed"), std::string::npos)
      << log;
  EXPECT_NE(log.find("40/40 items"), std::string::npos) << log;
  EXPECT_EQ(log.find("\033["), std::string::npos) << "no terminal codes when not a terminal";
  expect_values(mport, values, 2);

  Daemon jobs("jobs", master_binary(), {"jobs", "--master", master}, tmp.new_log_path("jobs"));
  const auto listed = jobs.wait_exit(30s);
  ASSERT_TRUE(listed.has_value());
  EXPECT_TRUE(listed->clean()) << jobs.log_text();
  EXPECT_NE(jobs.log_text().find("-repair done"), std::string::npos) << jobs.log_text();

  // A master that cannot be reached: exit 1 and why.
  Daemon unreachable("unreachable", master_binary(),
                     {"scrub", "--master", "http://127.0.0.1:" + std::to_string(pick_free_port())},
                     tmp.new_log_path("unreachable"));
  const auto failed = unreachable.wait_exit(30s);
  ASSERT_TRUE(failed.has_value());
  EXPECT_TRUE(failed->exited && failed->code == 1) << failed->describe();
  EXPECT_NE(unreachable.log_text().find("unreachable"), std::string::npos)
      << unreachable.log_text();
}

TEST(Maintenance, AJobRunningWhenTheMasterStopsIsMarkedFailedAndCanBeRunAgain) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--old-version-grace", "1"}));
  store_keys(cluster.master_port(), "restart/", 30);
  // Retiring a volume that is down keeps the job running (see above).
  const auto dead = cluster.volume(2).url();
  cluster.volume(2).kill_hard();
  const auto started = http_request(cluster.master_port(), "POST", "/admin/remove-volume", dead);
  ASSERT_EQ(started.status, 202) << started.summary();
  const auto id = flat_json_field(started.body, "id").value_or("");
  // The master dies with the job under way; its next start marks it failed.
  cluster.master().kill_hard();
  const auto port = cluster.master_port();
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(), {"--replicas", "2", "--old-version-grace", "1"}, port));
  const auto jobs = http_request(cluster.master_port(), "GET", "/admin/jobs");
  const auto job = job_object(jobs.body, id);
  EXPECT_NE(job.find("\"state\":\"failed\""), std::string::npos) << jobs.body;
  EXPECT_NE(job.find("the master stopped while the job ran"), std::string::npos) << jobs.body;
  // Run again with the volume back: it finishes, and the volume is gone.
  ASSERT_TRUE(cluster.restart_volume(2));
  const auto again = run_job(cluster.master_port(), "/admin/remove-volume", dead);
  ASSERT_EQ(again.state, "done") << again.describe();
  const auto volumes = http_request(cluster.master_port(), "GET", "/admin/volumes");
  EXPECT_EQ(volumes.body.find(dead), std::string::npos) << volumes.body;
}

TEST(Maintenance, RepairsRunOnTheirOwnWithARepairInterval) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--repair-interval", "1"}));
  const auto mport = cluster.master_port();
  const auto values = store_keys(mport, "scheduled/", 20);
  const auto versions = committed_versions(mport, keys_of(values));
  ASSERT_TRUE(cluster.volume(0).stop(SIGTERM, 10s).has_value());
  fs::remove_all(cluster.volume_dir(0));
  ASSERT_TRUE(cluster.restart_volume(0));
  // No job is started by hand: the schedule finds the missing copies.
  EXPECT_TRUE(wait_until(
      [&] {
        const auto where = holders(cluster, versions);
        return std::all_of(versions.begin(), versions.end(), [&](const auto& kv) {
          return where.count(kv.first) == 1 && where.at(kv.first).size() == 2;
        });
      },
      20s, 250ms));
  const auto jobs = http_request(mport, "GET", "/admin/jobs");
  EXPECT_NE(jobs.body.find("\"kind\":\"repair\""), std::string::npos) << jobs.body;
}

}  // namespace
}  // namespace kalavara::it
