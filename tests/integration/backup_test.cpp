// Backups of the master's index (POST /admin/backup, `kalavara-master
// backup`) and the restore procedure of docs/operations.md, followed to the
// letter: stop the master, move its index folder aside, `cp -a` the backup
// in its place, start it. A backup taken under load restores every write
// and delete acknowledged before it was asked for; versions go on above
// everything the old master issued; the failures are answers, not crashes.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "blob_listing.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

std::string store_target(std::string_view key) { return "/store/" + percent_encode(key); }

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// The master's --admin-token-file, holding `token`.
fs::path write_token_file(TempDir& tmp, const std::string& token) {
  const auto path = tmp.path() / "admin-token";
  write_file(path, token + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

HttpResponse request_backup(uint16_t master_port, const HeaderList& headers = {}) {
  return http_request(master_port, "POST", "/admin/backup", {}, headers);
}

// The version a PUT's redirect names.
std::uint64_t version_of(const Exchange& put) {
  const auto location = put.first.header("Location").value_or("");
  const auto at = location.find("version=");
  if (at == std::string::npos) return 0;
  return std::stoull(location.substr(at + 8));
}

// Runs `argv` (a plain tool: mv, cp, the master's subcommands) to its end.
struct ToolRun {
  std::optional<ExitStatus> exit;
  std::string output;
  bool clean() const { return exit && exit->clean(); }
};
ToolRun run_tool(TempDir& tmp, const std::vector<std::string>& argv) {
  Daemon tool("tool", argv.front(), {argv.begin() + 1, argv.end()}, tmp.new_log_path("tool"));
  ToolRun run;
  run.exit = tool.wait_exit(60s);
  run.output = tool.log_text();
  return run;
}

// The restore of docs/operations.md: stop the master, move its index aside,
// copy the backup in its place, start the master (with `extra` flags).
::testing::AssertionResult restore(TempDir& tmp, Cluster& cluster, const std::string& backup,
                                   const std::vector<std::string>& extra = {}) {
  const auto stopped = cluster.master().stop();
  if (!stopped || !stopped->clean()) {
    return ::testing::AssertionFailure() << "the master did not stop cleanly";
  }
  const auto index = cluster.master_dir().string();
  const auto aside = index + ".before-restore";
  for (const auto& step : std::vector<std::vector<std::string>>{{"/bin/mv", index, aside},
                                                                {"/bin/cp", "-a", backup, index}}) {
    const auto run = run_tool(tmp, step);
    if (!run.clean()) return ::testing::AssertionFailure() << step.front() << ": " << run.output;
  }
  return cluster.start_master_with_args(cluster.volume_urls(), extra);
}

// Whether any volume lists a file of `key` (of its `version`, when given).
bool held_anywhere(Cluster& cluster, const std::string& key, std::uint64_t version = 0) {
  for (std::size_t i = 0; i < cluster.volume_count(); ++i) {
    for (const auto& blob : list_all_blobs(cluster.volume(i).port(), 1000)) {
      if (blob.key == key && (version == 0 || blob.version == version)) return true;
    }
  }
  return false;
}

TEST(Backup, TakenUnderLoadRestoresEveryWriteAndDeleteAcknowledgedBeforeIt) {
  TempDir tmp;
  const auto backups = tmp.subdir("backups");
  const std::vector<std::string> flags{
      "--threads", "1", "--old-version-grace", "1", "--backup-dir", backups.string()};
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), flags));
  const auto master = cluster.master_port();

  std::map<std::string, std::string> live;
  std::set<std::string> deleted;
  for (int i = 0; i < 200; ++i) {
    const auto key = "before/" + std::to_string(i);
    const auto value = "value of " + key + std::string(static_cast<std::size_t>(i % 9) * 50, '~');
    const auto put = put_via_master(master, store_target(key), value);
    ASSERT_EQ(put.second.status, 201) << put.describe();
    live[key] = value;
  }
  for (int i = 0; i < 200; i += 10) {
    const auto key = "before/" + std::to_string(i);
    const auto erased = http_request(master, "DELETE", store_target(key));
    ASSERT_EQ(erased.status, 204) << erased.summary();
    live.erase(key);
    deleted.insert(key);
  }

  // A writer of new keys and a reader of an old one, all through the backup.
  struct Acked {
    std::string key;
    std::string value;
    Clock::time_point sent;
    Clock::time_point acked;
  };
  std::mutex mutex;
  std::vector<Acked> acked;
  std::vector<std::string> failures;
  std::atomic<bool> stop{false};
  std::vector<std::pair<Clock::time_point, Clock::time_point>> reads;  // sent, answered
  std::thread writer([&] {
    for (int i = 0; i < 100000 && !stop; ++i) {
      const auto key = "during/" + std::to_string(i);
      const auto value = "written while backing up, " + std::to_string(i);
      const auto sent = Clock::now();
      const auto put = put_via_master(master, store_target(key), value);
      std::lock_guard lock(mutex);
      if (put.second.status != 201) {
        failures.push_back(key + ": " + put.describe());
      } else {
        acked.push_back({key, value, sent, Clock::now()});
      }
    }
  });
  std::thread reader([&] {
    const auto& [key, value] = *live.begin();
    for (int i = 0; i < 100000 && !stop; ++i) {
      const auto sent = Clock::now();
      const auto read = get_via_master(master, store_target(key));
      std::lock_guard lock(mutex);
      if (read.second.status == 200 && read.second.body == value) {
        reads.emplace_back(sent, Clock::now());
      } else {
        failures.push_back("GET " + key + ": " + read.describe());
      }
    }
  });
  const auto acked_count = [&] {
    std::lock_guard lock(mutex);
    return acked.size();
  };
  EXPECT_TRUE(wait_until([&] { return acked_count() >= 30; }, 30s));

  std::vector<Acked> before_backup;
  {
    std::lock_guard lock(mutex);
    before_backup = acked;
  }
  const auto asked = Clock::now();
  const auto answer = request_backup(master);
  const auto answered = Clock::now();
  const auto during = acked_count();
  EXPECT_TRUE(wait_until([&] { return acked_count() >= during + 30; }, 30s));
  stop = true;
  writer.join();
  reader.join();
  ASSERT_EQ(answer.status, 200) << answer.summary();
  const auto path = flat_json_field(answer.body, "path").value_or("");
  ASSERT_TRUE(fs::is_directory(path)) << answer.body;
  EXPECT_EQ(failures, std::vector<std::string>{}) << "every request succeeded meanwhile";
  // Requests sent and answered while the backup ran: the master served them
  // whole meanwhile (a PUT's commit too).
  std::size_t puts_inside = 0;
  for (const auto& write : acked) puts_inside += write.sent > asked && write.acked < answered;
  std::size_t gets_inside = 0;
  for (const auto& [sent, done] : reads) gets_inside += sent > asked && done < answered;
  const auto millis = std::chrono::duration_cast<Millis>(answered - asked).count();
  std::printf(
      "backup of %zu keys took %lld ms (the master says %s ms); %zu PUTs and %zu GETs "
      "were made while it ran\n",
      live.size() + deleted.size() + acked.size(), static_cast<long long>(millis),
      flat_json_field(answer.body, "millis").value_or("?").c_str(), puts_inside, gets_inside);
  // With one io thread, a backup that blocked it would let nothing be
  // answered while it ran (the deterministic check is a unit test's).
  if (millis >= 50) {
    EXPECT_GT(gets_inside, 0U);
  }

  // Changed after the backup: a key deleted, one overwritten. The files
  // the backup's index names go (the deleted value's at once, the
  // overwritten one's after the 1 s grace).
  const auto gone_after = std::next(live.begin())->first;
  const auto overwritten_after = std::next(live.begin(), 2)->first;
  const auto old_version = version_of(get_via_master(master, store_target(overwritten_after)));
  ASSERT_EQ(http_request(master, "DELETE", store_target(gone_after)).status, 204);
  ASSERT_EQ(put_via_master(master, store_target(overwritten_after), "new").second.status, 201);
  EXPECT_TRUE(wait_until(
      [&] {
        return !held_anywhere(cluster, gone_after) &&
               !held_anywhere(cluster, overwritten_after, old_version);
      },
      20s))
      << "the removals never reached the volumes";

  ASSERT_TRUE(restore(tmp, cluster, path, flags));
  const auto port = cluster.master_port();
  EXPECT_NE(cluster.master().log_text().find("is a restored backup"), std::string::npos)
      << cluster.master().log_text();
  EXPECT_FALSE(fs::exists(cluster.master_dir() / "kalavara-backup.json"))
      << "the marker goes at the first start";

  for (const auto& [key, value] : live) {
    if (key == gone_after || key == overwritten_after) continue;
    const auto read = get_via_master(port, store_target(key));
    ASSERT_EQ(read.second.status, 200) << key << ": " << read.describe();
    EXPECT_EQ(read.second.body, value) << key;
  }
  for (const auto& write : before_backup) {
    const auto read = get_via_master(port, store_target(write.key));
    ASSERT_EQ(read.second.status, 200) << write.key << ": " << read.describe();
    EXPECT_EQ(read.second.body, write.value) << write.key;
  }
  for (const auto& key : deleted) {
    const auto read = http_request(port, "GET", store_target(key));
    EXPECT_EQ(read.status, 404) << key << ": " << read.summary();
  }
  // Deleted or overwritten after the backup: the restored index names a
  // file that is gone, as docs/operations.md says (a rebuild would have the
  // one deleted and the other's new value).
  for (const auto& key : {gone_after, overwritten_after}) {
    const auto broken = get_via_master(port, store_target(key));
    EXPECT_EQ(broken.first.status, 302) << key << ": " << broken.describe();
    EXPECT_EQ(broken.second.status, 404) << key << ": " << broken.describe();
  }
  // A repair reports them and cannot mend them; a DELETE makes one whole.
  ASSERT_EQ(http_request(port, "POST", "/admin/repair").status, 202);
  std::string jobs;
  ASSERT_TRUE(wait_until(
      [&] {
        jobs = http_request(port, "GET", "/admin/jobs").body;
        return flat_json_field(jobs, "state").value_or("running") != "running";
      },
      60s))
      << jobs;
  EXPECT_EQ(flat_json_field(jobs, "failed_items").value_or(""), "2") << jobs;
  EXPECT_NE(jobs.find("no good copy"), std::string::npos) << jobs;
  EXPECT_EQ(http_request(port, "DELETE", store_target(gone_after)).status, 204);
  EXPECT_EQ(http_request(port, "GET", store_target(gone_after)).status, 404);
}

TEST(Backup, NeedsTheTokenAndAFolderAndAnswersEveryFailureWithAReason) {
  TempDir tmp;
  const auto token = random_token(40);
  const auto token_file = write_token_file(tmp, token);
  const auto backups = tmp.subdir("backups");
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  const std::vector<std::string> guarded{"--admin-token-file", token_file.string()};
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), guarded));
  ASSERT_EQ(put_via_master(cluster.master_port(), "/store/k", "v").second.status, 201);

  auto answer = request_backup(cluster.master_port());
  EXPECT_EQ(answer.status, 401) << answer.summary();
  answer = request_backup(cluster.master_port(), bearer(token + "x"));
  EXPECT_EQ(answer.status, 401) << answer.summary();
  answer = request_backup(cluster.master_port(), bearer(token));
  EXPECT_EQ(answer.status, 409) << answer.summary();
  EXPECT_NE(answer.body.find("--backup-dir"), std::string::npos) << answer.summary();
  EXPECT_EQ(http_request(cluster.master_port(), "GET", "/admin/backup", {}, bearer(token)).status,
            405);

  // Two backups, two folders, each whole.
  ASSERT_TRUE(cluster.master().stop().has_value());
  auto with_dir = guarded;
  with_dir.insert(with_dir.end(), {"--backup-dir", backups.string()});
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), with_dir));
  const auto first = request_backup(cluster.master_port(), bearer(token));
  ASSERT_EQ(first.status, 200) << first.summary();
  EXPECT_EQ(first.header("Content-Type").value_or(""), "application/json");
  const auto second = request_backup(cluster.master_port(), bearer(token));
  ASSERT_EQ(second.status, 200) << second.summary();
  std::set<std::string> paths;
  for (const auto& body : {first.body, second.body}) {
    const auto path = flat_json_field(body, "path").value_or("");
    paths.insert(path);
    EXPECT_EQ(fs::path(path).parent_path(), backups) << body;
    EXPECT_TRUE(fs::exists(fs::path(path) / "kalavara-backup.json")) << body;
    EXPECT_TRUE(fs::exists(fs::path(path) / "CURRENT")) << body;
    EXPECT_GE(std::stoull(flat_json_field(body, "sst_files").value_or("0")), 1U) << body;
    EXPECT_GT(std::stoull(flat_json_field(body, "bytes").value_or("0")), 0U) << body;
    EXPECT_GT(std::stoull(flat_json_field(body, "sequence").value_or("0")), 0U) << body;
    EXPECT_TRUE(flat_json_field(body, "millis").has_value()) << body;
  }
  EXPECT_EQ(paths.size(), 2U);
  std::size_t folders = 0;
  for (const auto& entry : fs::directory_iterator(backups)) {
    ++folders;
    EXPECT_TRUE(entry.path().filename().string().starts_with("index-")) << entry.path();
  }
  EXPECT_EQ(folders, 2U) << "nothing partial is left behind";

  // Folders a backup cannot go into: missing, a file, and (unless root,
  // whom permissions do not stop) one it may not write.
  const auto not_a_folder = tmp.path() / "a file";
  write_file(not_a_folder, "x");
  const auto read_only = tmp.subdir("read-only");
  ::chmod(read_only.c_str(), 0500);
  std::vector<std::pair<fs::path, std::string>> bad{{tmp.path() / "missing", "does not exist"},
                                                    {not_a_folder, "is not a folder"}};
  if (::geteuid() != 0) bad.emplace_back(read_only, "ermission denied");
  for (const auto& [folder, reason] : bad) {
    ASSERT_TRUE(cluster.master().stop().has_value());
    auto flags = guarded;
    flags.insert(flags.end(), {"--backup-dir", folder.string()});
    ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), flags));
    const auto refused = request_backup(cluster.master_port(), bearer(token));
    EXPECT_EQ(refused.status, 500) << folder << ": " << refused.summary();
    EXPECT_NE(refused.body.find(reason), std::string::npos) << refused.summary();
    EXPECT_EQ(refused.body.find('\n'), refused.body.size() - 1) << "one line";
    // Still serving.
    EXPECT_TRUE(cluster.master().running());
    EXPECT_EQ(put_via_master(cluster.master_port(), "/store/k", folder.string()).second.status,
              201);
    EXPECT_EQ(get_via_master(cluster.master_port(), "/store/k").second.body, folder.string());
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "missing")) << "the master does not make it";
  ::chmod(read_only.c_str(), 0700);
}

TEST(Backup, VersionsAfterARestoreAreAboveEveryVersionTheOldMasterIssued) {
  TempDir tmp;
  const auto backups = tmp.subdir("backups");
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(
      cluster.start_master_with_args(cluster.volume_urls(), {"--backup-dir", backups.string()}));
  const auto first = put_via_master(cluster.master_port(), "/store/k", "one");
  ASSERT_EQ(first.second.status, 201) << first.describe();
  const auto answer = request_backup(cluster.master_port());
  ASSERT_EQ(answer.status, 200) << answer.summary();
  // Restarted after the backup, the old master goes on from its stored
  // floor, ahead of the clock: the version it issues next is the one a
  // master opening the backup's floor would issue too, were the floor not
  // moved at the restore.
  ASSERT_TRUE(cluster.restart_master(cluster.volume_urls()));
  const auto second = put_via_master(cluster.master_port(), "/store/k", "two");
  ASSERT_EQ(second.second.status, 201) << second.describe();
  EXPECT_GT(version_of(second), version_of(first));

  ASSERT_TRUE(restore(tmp, cluster, flat_json_field(answer.body, "path").value_or("")));
  EXPECT_EQ(get_via_master(cluster.master_port(), "/store/k").second.body, "one")
      << "the index is the backup's";
  const auto third = put_via_master(cluster.master_port(), "/store/k", "three");
  ASSERT_EQ(third.second.status, 201) << third.describe();
  EXPECT_GT(version_of(third), version_of(second));
  EXPECT_EQ(get_via_master(cluster.master_port(), "/store/k").second.body, "three");
  // And again after a plain restart: the marker was taken away.
  ASSERT_TRUE(cluster.restart_master(cluster.volume_urls()));
  const auto fourth = put_via_master(cluster.master_port(), "/store/k", "four");
  ASSERT_EQ(fourth.second.status, 201) << fourth.describe();
  EXPECT_GT(version_of(fourth), version_of(third));
  EXPECT_EQ(cluster.master().log_text().find("is a restored backup"), std::string::npos);
}

TEST(Backup, TheCommandPrintsWhereTheBackupWentAndExitsZero) {
  TempDir tmp;
  const auto token = random_token(40);
  const auto token_file = write_token_file(tmp, token);
  const auto backups = tmp.subdir("backups");
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(),
      {"--admin-token-file", token_file.string(), "--backup-dir", backups.string()}));
  ASSERT_EQ(put_via_master(cluster.master_port(), "/store/k", "v").second.status, 201);
  const auto master = cluster.master().url();

  auto run = run_tool(tmp, {master_binary(), "backup", "--master", master, "--admin-token-file",
                            token_file.string()});
  ASSERT_TRUE(run.clean()) << run.output;
  const auto at = run.output.find("backup " + backups.string() + "/index-");
  ASSERT_NE(at, std::string::npos) << run.output;
  EXPECT_NE(run.output.find("SST"), std::string::npos) << run.output;
  const auto folder = run.output.substr(at + 7, run.output.find(':', at) - at - 7);
  EXPECT_TRUE(fs::exists(fs::path(folder) / "kalavara-backup.json")) << folder;

  run = run_tool(tmp, {master_binary(), "backup", "--master", master});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_EQ(run.exit->code, 1) << run.output;
  EXPECT_NE(run.output.find("401"), std::string::npos) << run.output;

  run = run_tool(tmp, {master_binary(), "backup"});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_EQ(run.exit->code, 2) << "--master is required: " << run.output;
}

}  // namespace
}  // namespace kalavara::it
