#include "master/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <system_error>

#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/json_fields.hpp"
#include "common/unique_fd.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;
using SystemClock = std::chrono::system_clock;

// Publishing gives up after this many names taken (backups a millisecond
// apart, or folders someone made by hand).
constexpr int kMaxNameAttempts = 100;

Error io_error(std::string_view what, int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) {
    return Error{Errc::kNoSpace, "no space left for the backup (" + std::string(what) + ")"};
  }
  return Error{Errc::kInternal, std::string(what) + ": " + std::strerror(error_number)};
}

// fsync on a directory makes the entries created, renamed or removed in it
// durable; without it a crash can forget a rename that already succeeded.
Status sync_directory(const fs::path& directory) {
  const UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("open " + directory.string(), errno);
  if (::fsync(fd.get()) != 0) return io_error("fsync " + directory.string(), errno);
  return {};
}

// Creates `path` (which must not exist) holding `text`, fsynced.
Status write_new_file(const fs::path& path, std::string_view text) {
  const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error("create " + path.string(), errno);
  while (!text.empty()) {
    const auto written = ::write(fd.get(), text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return io_error("write " + path.string(), errno);
    text.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fsync(fd.get()) != 0) return io_error("fsync " + path.string(), errno);
  return {};
}

// Renames the folder `from` to `to` unless `to` exists. False (nothing
// changed) when it exists.
Result<bool> rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS) return io_error("rename to " + to.string(), errno);
  // A filesystem without RENAME_NOREPLACE: a rename over an empty folder
  // would replace it, so look first. Only this object writes here, one
  // backup at a time, so nothing comes between the look and the rename.
  std::error_code ec;
  if (fs::exists(to, ec) || ec) return false;
  if (::rename(from.c_str(), to.c_str()) != 0) return io_error("rename to " + to.string(), errno);
  return true;
}

// Gives the finished `partial` folder the first free name of `name`,
// `name`-1, `name`-2, ... in `directory`.
Result<fs::path> publish(const fs::path& directory, const fs::path& partial,
                         const std::string& name) {
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    const auto target = directory / (attempt == 0 ? name : name + "-" + std::to_string(attempt));
    auto renamed = rename_no_replace(partial, target);
    if (!renamed) return renamed.error();
    if (*renamed) return target;
  }
  return Error{Errc::kInternal, "no free name for the backup in " + directory.string()};
}

// Removes what backups that crashed left behind: `.partial-*` folders (and
// RocksDB's own `.tmp` staging folders inside that name).
void remove_leftovers(const fs::path& directory) {
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.starts_with(kPartialPrefix)) continue;
    std::error_code removal;
    fs::remove_all(it->path(), removal);
    if (removal) {
      spdlog::warn("backup: cannot remove the interrupted backup {}: {}", it->path().string(),
                   removal.message());
    } else {
      spdlog::info("backup: removed the interrupted backup {}", it->path().string());
    }
  }
}

// Fills in the report's file counts and sizes from what `folder` holds.
Status measure(const fs::path& folder, BackupReport& report) {
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || ec) continue;
    const auto size = it->file_size(ec);
    if (ec) break;
    ++report.files;
    report.bytes += size;
    if (it->path().extension() == ".sst") ++report.sst_files;
  }
  if (ec) return io_error("list " + folder.string(), ec.value());
  return {};
}

std::string utc_text(SystemClock::time_point time, const char* format) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  const auto length = std::strftime(text, sizeof text, format, &utc);
  std::snprintf(text + length, sizeof text - length, ".%03dZ", static_cast<int>(millis % 1000));
  return text;
}

}  // namespace

std::string utc_millis_text(SystemClock::time_point time) {
  return utc_text(time, "%Y-%m-%dT%H:%M:%S");
}

std::string backup_folder_name(SystemClock::time_point time) {
  return "index-" + utc_text(time, "%Y%m%dT%H%M%S");
}

std::string backup_report_json(const BackupReport& report) {
  boost::json::object object;
  object["path"] = report.path;
  object["taken"] = report.taken;
  object["bytes"] = report.bytes;
  object["files"] = report.files;
  object["sst_files"] = report.sst_files;
  object["sequence"] = report.sequence;
  object["millis"] = report.millis;
  return boost::json::serialize(object) + "\n";
}

Result<BackupReport> parse_backup_report(std::string_view json) {
  const Error bad{Errc::kPeerFailed, "not a backup report: " + std::string(json.substr(0, 200))};
  boost::system::error_code ec;
  const auto value = boost::json::parse(json, ec);
  const auto* object = ec ? nullptr : value.if_object();
  if (object == nullptr) return bad;
  BackupReport report;
  auto path = json_string(*object, "path");
  auto taken = json_string(*object, "taken");
  const auto bytes = json_uint(*object, "bytes");
  const auto files = json_uint(*object, "files");
  const auto sst_files = json_uint(*object, "sst_files");
  const auto sequence = json_uint(*object, "sequence");
  const auto millis = json_uint(*object, "millis");
  if (!path || !taken || !bytes || !files || !sst_files || !sequence || !millis) return bad;
  return BackupReport{std::move(*path), std::move(*taken), *bytes, *files,
                      *sst_files,       *sequence,         *millis};
}

Backups::Backups(CheckpointWriter& index, boost::asio::thread_pool& blocking, std::string directory)
    : index_(index),
      blocking_(blocking),
      directory_(directory.empty() ? fs::path() : fs::absolute(directory)) {}

boost::asio::awaitable<Result<BackupReport>> Backups::write() {
  if (directory_.empty()) {
    co_return Error{Errc::kConflict,
                    "backups are off: start the master with --backup-dir DIR (a folder for "
                    "them, best on another disk)"};
  }
  if (running_.exchange(true)) {
    co_return Error{Errc::kConflict, "a backup is running already; try again once it is done"};
  }
  struct Done {
    std::atomic<bool>& running;
    ~Done() { running.store(false); }
  } done{running_};
  Result<BackupReport> result = Error{Errc::kInternal, "the backup did not run"};
  co_await run_blocking(blocking_, [&] { result = write_blocking(); });
  co_return result;
}

Result<BackupReport> Backups::write_blocking() {
  const auto began = std::chrono::steady_clock::now();
  struct stat info {};
  if (::stat(directory_.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return Error{Errc::kInternal, "the backup folder " + directory_.string() +
                                        " does not exist: make it (or mount its disk); the "
                                        "master does not create it"};
    }
    return io_error("the backup folder " + directory_.string(), errno);
  }
  if (!S_ISDIR(info.st_mode)) {
    return Error{Errc::kInternal, "--backup-dir " + directory_.string() + " is not a folder"};
  }
  remove_leftovers(directory_);

  const auto taken = SystemClock::now();
  const auto name = backup_folder_name(taken);
  const auto partial = directory_ / (std::string(kPartialPrefix) + name);
  BackupReport report;
  report.taken = utc_millis_text(taken);
  // Until it is published, a failure takes the partial folder away again.
  const auto failed = [&](Error error) {
    std::error_code ec;
    fs::remove_all(partial, ec);
    spdlog::error("backup into {} failed: {}", directory_.string(), error.message);
    return error;
  };
  auto sequence = index_.write_checkpoint(partial.string());
  if (!sequence) return failed(sequence.error());
  report.sequence = *sequence;
  boost::json::object marker;
  marker["taken"] = report.taken;
  marker["sequence"] = report.sequence;
  if (auto written =
          write_new_file(partial / kBackupMarkerFile, boost::json::serialize(marker) + "\n");
      !written) {
    return failed(written.error());
  }
  if (auto synced = sync_directory(partial); !synced) return failed(synced.error());
  auto published = publish(directory_, partial, name);
  if (!published) return failed(published.error());
  report.path = published->string();
  // The rename is durable only with the folder it happened in.
  if (auto synced = sync_directory(directory_); !synced) return synced.error();
  if (auto measured = measure(*published, report); !measured) return measured.error();
  report.millis = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - began)
                                                 .count());
  spdlog::info("backup: {} written ({} bytes, {} files, sequence {}) in {} ms", report.path,
               report.bytes, report.files, report.sequence, report.millis);
  return report;
}

boost::asio::awaitable<Result<std::optional<std::string>>> adopt_restored_backup(
    IndexStore& store, const std::string& index_dir, std::uint64_t now) {
  const auto marker = fs::path(index_dir) / kBackupMarkerFile;
  std::error_code ec;
  if (!fs::exists(marker, ec)) {
    if (ec) co_return io_error("look for " + marker.string(), ec.value());
    co_return std::optional<std::string>{};
  }
  std::string taken;
  {
    std::ifstream in(marker);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    boost::system::error_code parse_error;
    const auto value = boost::json::parse(text, parse_error);
    if (const auto* object = parse_error ? nullptr : value.if_object()) {
      taken = json_string(*object, "taken").value_or("");
    }
  }
  const auto lead = static_cast<std::uint64_t>(kRestoreVersionLead.count());
  auto floor = co_await store.raise_version_floor(now + lead);
  if (!floor) co_return floor.error();
  if (::unlink(marker.c_str()) != 0) co_return io_error("remove " + marker.string(), errno);
  if (auto synced = sync_directory(index_dir); !synced) co_return synced.error();
  co_return std::optional<std::string>{std::move(taken)};
}

}  // namespace kalavara
