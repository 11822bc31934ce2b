// Backups of the master's index while it serves (POST /admin/backup,
// `kalavara-master backup`), and what a master does when it starts on one
// restored.
//
// Each backup is a new folder in the one folder the operator named
// (--backup-dir): a client chooses nothing about where it goes. It is
// written as `.partial-NAME`, completed with a marker file
// (kBackupMarkerFile), fsynced, and renamed to NAME (never over an existing
// folder), then the backup folder is fsynced: a folder whose name does not
// start with ".partial-" is a whole backup, whatever crashed when. NAME is
// "index-" + the UTC time the backup began, to the millisecond
// (index-20260512T101112.345Z), so the folders sort by age. Leftover
// `.partial-*` folders (a crash mid-backup) are removed by the next backup.
//
// Restored (the folder copied to a stopped master's --data-dir), the index
// is as it was when the backup began; versions the old master issued after
// that are unknown to it, and may sit on the volumes. So a master that
// finds the marker at start raises its version floor kRestoreVersionLead
// ahead of the wall clock before it issues any version, then removes the
// marker (adopt_restored_backup).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "master/checkpoint_writer.hpp"
#include "master/index_store.hpp"

namespace kalavara {

// In every backup folder: {"taken": "<UTC time>", "sequence": N}. Its
// presence in a master's index folder means "restored, not started yet".
inline constexpr std::string_view kBackupMarkerFile = "kalavara-backup.json";
inline constexpr std::string_view kPartialPrefix = ".partial-";

// How far ahead of the wall clock a restored master's first version is.
// The old master's versions can be ahead of its clock: right after a start
// it goes on from its stored floor, up to VersionClock::kFloorLeadMicros
// ahead, more after restarts in quick succession, and more again when its
// clock was stepped back. Ten minutes covers that many times over; the
// cost is that versions run ahead of the clock for ten minutes after a
// restore (they then make uploads look younger than they are, which only
// delays collecting tombstones and orphans).
inline constexpr std::chrono::microseconds kRestoreVersionLead = std::chrono::minutes(10);

// A finished backup, as POST /admin/backup answers it.
struct BackupReport {
  std::string path;             // the backup's folder (absolute)
  std::string taken;            // when it began, UTC: 2026-05-12T10:11:12.345Z
  std::uint64_t bytes = 0;      // of the regular files in it (hard-linked ones too)
  std::uint64_t files = 0;      // regular files in it
  std::uint64_t sst_files = 0;  // of which RocksDB tables
  std::uint64_t sequence = 0;   // see CheckpointWriter::write_checkpoint
  std::uint64_t millis = 0;     // how long it took
  bool operator==(const BackupReport&) const = default;
};

// A one-object JSON document, and its reader (kPeerFailed when `json` is
// not one).
std::string backup_report_json(const BackupReport& report);
Result<BackupReport> parse_backup_report(std::string_view json);

// "index-20260512T101112.345Z" for `time` (UTC, milliseconds). Pure.
std::string backup_folder_name(std::chrono::system_clock::time_point time);
// "2026-05-12T10:11:12.345Z" for `time`. Pure.
std::string utc_millis_text(std::chrono::system_clock::time_point time);

// Writes backups into one folder, one at a time. Thread-safe.
class Backups {
 public:
  // `directory`: where backups go (made absolute); empty turns backups off.
  // `index` and `blocking` must outlive the object.
  Backups(CheckpointWriter& index, boost::asio::thread_pool& blocking, std::string directory);

  // Writes a backup and reports it. All its disk work runs on `blocking`;
  // the caller's thread only waits. Fails, and leaves no folder that looks
  // whole, with kConflict when backups are off (the reason says how to turn
  // them on) or a backup is running already, kNoSpace when the disk filled,
  // kInternal when the folder is missing, is no folder, cannot be written,
  // or the index cannot be copied (the reason says which).
  boost::asio::awaitable<Result<BackupReport>> write();

  const std::filesystem::path& directory() const { return directory_; }

 private:
  Result<BackupReport> write_blocking();

  CheckpointWriter& index_;
  boost::asio::thread_pool& blocking_;
  const std::filesystem::path directory_;
  std::atomic<bool> running_{false};
};

// At start-up, before the version clock is opened on `store`: when
// `index_dir` holds kBackupMarkerFile (it is a restored backup), raises the
// version floor durably to `now` + kRestoreVersionLead and then removes the
// marker (and fsyncs the folder). Returns the backup's "taken" time (""
// when the marker cannot be read: it is still a restore), nullopt when
// there was no marker. Fails with kInternal when the floor or the removal
// cannot be written; the marker then stays for the next start. Blocks on
// the disk: call it at start-up.
boost::asio::awaitable<Result<std::optional<std::string>>> adopt_restored_backup(
    IndexStore& store, const std::string& index_dir, std::uint64_t now);

}  // namespace kalavara
