// Backups (master/backup.hpp) over a stand-in checkpoint writer: where they
// go, what a failure leaves, one at a time off the io thread; and what a
// master does when it starts on a restored one.
#include "master/backup.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "common/blocking.hpp"
#include "master/version_clock.hpp"
#include "memory_index_store.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;
using testing::MemoryIndexStore;
using testing::run;
using namespace std::chrono_literals;

const auto kTaken = std::chrono::system_clock::time_point(std::chrono::milliseconds(1778580672345));

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes two tables and a manifest, or fails as told; `gate`, when set, is
// waited for first.
class FakeCheckpoints final : public CheckpointWriter {
 public:
  Result<std::uint64_t> write_checkpoint(const std::string& directory) override {
    if (gate.valid()) gate.wait();
    ++calls;
    if (failure) {
      fs::create_directory(directory);
      write_text(fs::path(directory) / "000007.sst", "half");
      return *failure;
    }
    fs::create_directory(directory);
    write_text(fs::path(directory) / "000007.sst", "table one");
    write_text(fs::path(directory) / "000009.sst", "table two");
    write_text(fs::path(directory) / "MANIFEST-000011", "manifest");
    return std::uint64_t{42};
  }

  std::optional<Error> failure;
  std::shared_future<void> gate;
  std::atomic<int> calls{0};
};

class BackupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kalavara-backup-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_ / "backups");
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<BackupReport> write(Backups& backups) {
    boost::asio::io_context io;
    return run_to_completion(io, backups.write());
  }
  std::vector<std::string> names_in(const fs::path& folder) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
  boost::asio::thread_pool pool_{2};
  FakeCheckpoints checkpoints_;
};

TEST(BackupNames, AreUtcToTheMillisecondAndSortByTime) {
  EXPECT_EQ(backup_folder_name(kTaken), "index-20260512T101112.345Z");
  EXPECT_EQ(utc_millis_text(kTaken), "2026-05-12T10:11:12.345Z");
  EXPECT_EQ(backup_folder_name(kTaken - 345ms), "index-20260512T101112.000Z");
  std::string last;
  for (const std::chrono::milliseconds step :
       {1ms, 999ms, 1000ms, 59'000ms, 3'600'000ms, 86'400'000ms, 400 * 86'400'000ms}) {
    const auto name = backup_folder_name(kTaken + step);
    EXPECT_LT(backup_folder_name(kTaken), name);
    EXPECT_LT(last, name);
    last = name;
  }
}

TEST(BackupReports, RoundTripThroughJson) {
  const BackupReport report{
      "/backups/index-20260512T101112.345Z", "2026-05-12T10:11:12.345Z", 123456, 7, 3, 99, 812};
  const auto json = backup_report_json(report);
  EXPECT_EQ(json.back(), '\n');
  auto parsed = parse_backup_report(json);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, report);
  for (const auto* bad : {"", "[]", "{\"path\":\"/x\"}", "not json", "{\"path\":1}"}) {
    const auto refused = parse_backup_report(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().code, Errc::kPeerFailed);
  }
}

TEST_F(BackupsTest, AreOffWithoutAFolderAndSaySoAndHowToTurnThemOn) {
  Backups backups(checkpoints_, pool_, "");
  const auto refused = write(backups);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kConflict);
  EXPECT_NE(refused.error().message.find("--backup-dir"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(checkpoints_.calls, 0);
}

TEST_F(BackupsTest, EachGoesIntoANewFolderWithItsMarkerAndNothingPartialIsLeft) {
  Backups backups(checkpoints_, pool_, (dir_ / "backups").string());
  auto first = write(backups);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = write(backups);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE(first->path, second->path);
  EXPECT_EQ(names_in(dir_ / "backups").size(), 2U);
  for (const auto& report : {*first, *second}) {
    const fs::path path(report.path);
    EXPECT_EQ(path.parent_path(), dir_ / "backups");
    EXPECT_TRUE(path.filename().string().starts_with("index-")) << report.path;
    EXPECT_EQ(names_in(path),
              (std::vector<std::string>{"000007.sst", "000009.sst", "MANIFEST-000011",
                                        "kalavara-backup.json"}));
    const auto marker = read_text(path / kBackupMarkerFile);
    EXPECT_EQ(marker, "{\"taken\":\"" + report.taken + "\",\"sequence\":42}\n");
    EXPECT_EQ(report.files, 4U);
    EXPECT_EQ(report.sst_files, 2U);
    EXPECT_EQ(report.bytes, 9 + 9 + 8 + marker.size());
    EXPECT_EQ(report.sequence, 42U);
  }
}

TEST_F(BackupsTest, AFailedCheckpointLeavesNothingAndTellsAFullDiskApart) {
  Backups backups(checkpoints_, pool_, (dir_ / "backups").string());
  for (const auto& failure : {Error{Errc::kNoSpace, "no space left for the checkpoint"},
                              Error{Errc::kInternal, "index checkpoint failed: IO error"}}) {
    checkpoints_.failure = failure;
    const auto failed = write(backups);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, failure.code);
    EXPECT_EQ(failed.error().message, failure.message);
    EXPECT_EQ(names_in(dir_ / "backups"), std::vector<std::string>{});
  }
  checkpoints_.failure.reset();
  EXPECT_TRUE(write(backups).ok()) << "a failure does not stop the next backup";
}

TEST_F(BackupsTest, AMissingFolderOrAFileInItsPlaceIsAnErrorWithTheReason) {
  Backups missing(checkpoints_, pool_, (dir_ / "not there").string());
  auto failed = write(missing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
  EXPECT_NE(failed.error().message.find("does not exist"), std::string::npos)
      << failed.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "not there")) << "the master does not create it";

  write_text(dir_ / "a file", "x");
  Backups file(checkpoints_, pool_, (dir_ / "a file").string());
  failed = write(file);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("is not a folder"), std::string::npos)
      << failed.error().message;
  EXPECT_EQ(checkpoints_.calls, 0);
}

TEST_F(BackupsTest, AnInterruptedBackupIsRemovedByTheNextOne) {
  fs::create_directories(dir_ / "backups" / ".partial-index-20260101T000000.000Z");
  fs::create_directories(dir_ / "backups" / ".partial-index-20260101T000000.000Z.tmp");
  fs::create_directories(dir_ / "backups" / "kept by hand");
  Backups backups(checkpoints_, pool_, (dir_ / "backups").string());
  auto report = write(backups);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(names_in(dir_ / "backups"),
            (std::vector<std::string>{fs::path(report->path).filename().string(), "kept by hand"}));
}

TEST_F(BackupsTest, OneRunsAtATimeOnTheBlockingPoolWhileTheIoThreadGoesOn) {
  std::promise<void> open_gate;
  checkpoints_.gate = open_gate.get_future().share();
  Backups backups(checkpoints_, pool_, (dir_ / "backups").string());
  boost::asio::io_context io;
  std::optional<Result<BackupReport>> first;
  std::optional<Result<BackupReport>> second;
  bool served_meanwhile = false;
  const auto store_in = [](std::optional<Result<BackupReport>>& out,
                           Backups& from) -> boost::asio::awaitable<void> {
    out.emplace(co_await from.write());
  };
  boost::asio::co_spawn(io, store_in(first, backups), boost::asio::detached);
  // Posted behind the first backup: they run while its checkpoint waits on
  // the gate, which only they open. Were the checkpoint on the io thread,
  // nothing here would run and the test would hang.
  boost::asio::post(io, [&] {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          co_await store_in(second, backups);
          served_meanwhile = true;
          open_gate.set_value();
        },
        boost::asio::detached);
  });
  io.run();
  ASSERT_TRUE(served_meanwhile);
  ASSERT_TRUE(second.has_value() && !second->ok());
  EXPECT_EQ(second->error().code, Errc::kConflict);
  EXPECT_NE(second->error().message.find("running"), std::string::npos);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->ok()) << first->error().message;
  EXPECT_EQ(checkpoints_.calls, 1);
  EXPECT_TRUE(write(backups).ok()) << "the next one runs once the first is done";
}

TEST_F(BackupsTest, ARestoredIndexMovesTheVersionFloorAheadOnceAndDropsItsMarker) {
  MemoryIndexStore store;
  store.floor = 5'000'000;
  const std::uint64_t now = 1'000'000'000;
  auto none = run(adopt_restored_backup(store, dir_.string(), now));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value()) << "no marker: not a restore";
  EXPECT_EQ(store.floor, 5'000'000U);

  write_text(dir_ / kBackupMarkerFile,
             "{\"taken\":\"2026-05-12T10:11:12.345Z\",\"sequence\":42}\n");
  auto restored = run(adopt_restored_backup(store, dir_.string(), now));
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->value_or("none"), "2026-05-12T10:11:12.345Z");
  const auto lead = static_cast<std::uint64_t>(kRestoreVersionLead.count());
  EXPECT_EQ(store.floor, now + lead);
  EXPECT_FALSE(fs::exists(dir_ / kBackupMarkerFile));
  // Every version issued after it is above the moved floor, whatever the
  // clock says.
  auto clock = run(VersionClock::open(store, [&] { return now; }));
  ASSERT_TRUE(clock.ok());
  const auto version = run((*clock)->next());
  ASSERT_TRUE(version.ok());
  EXPECT_GT(*version, now + lead);

  // A marker that cannot be read is still a restore.
  write_text(dir_ / kBackupMarkerFile, "garbage");
  restored = run(adopt_restored_backup(store, dir_.string(), now + 2 * lead));
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->value_or("none"), "");
  EXPECT_EQ(store.floor, now + 3 * lead);

  // A floor that cannot be stored keeps the marker for the next start.
  write_text(dir_ / kBackupMarkerFile, "{}");
  store.fail_writes = true;
  EXPECT_FALSE(run(adopt_restored_backup(store, dir_.string(), now + 9 * lead)).ok());
  EXPECT_TRUE(fs::exists(dir_ / kBackupMarkerFile));
}

}  // namespace
}  // namespace kalavara
