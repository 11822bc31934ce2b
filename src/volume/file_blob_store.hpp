// BlobStore on a local file tree (format: blob_file.hpp). Writes stream into
// <data-dir>/tmp (same filesystem, so the final rename is atomic), are
// fsynced, renamed into place without replacing any file
// (renameat2(RENAME_NOREPLACE), or link(2) + unlink where the filesystem
// lacks it), and the directory is fsynced.
//
// A file is renamed only into a folder whose own entry is known durable:
// the store remembers which of the 256 + 65536 blobs/ab and blobs/ab/cd
// folders are (all that exist at open, which syncs the filesystem once),
// and a folder not yet known durable gets its parent fsynced first, by
// whichever writer finds it, so no publish pays for more than its own
// directory fsync once the tree is warm.
//
// Reads open files relative to the blobs folder opened once at start, so
// the data folder must not be moved or replaced while the store is open.
//
// Delete markers are written like values, under their own names beside
// them (blob_file.hpp), and left out of the file count; a copy a verify
// finds corrupt is renamed into <data-dir>/quarantine, out of the tree.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "common/digest.hpp"
#include "common/metrics.hpp"
#include "volume/blob_file.hpp"
#include "volume/blob_store.hpp"

namespace kalavara {

namespace detail {
struct BlobTree;
}  // namespace detail

class FileBlobStore final : public BlobStore {
 public:
  // Test seams; the defaults are what a volume runs with.
  struct TestSeams {
    // Publish as on a filesystem without RENAME_NOREPLACE: link(2) + unlink.
    bool link_instead_of_rename = false;
    // Called before each directory fsync with the directory, and at open
    // with the data folder before its filesystem is synced; an error it
    // returns stands for that sync's failure. Called from any thread that
    // syncs, so it must be thread-safe.
    std::function<Status(const std::filesystem::path&)> before_sync;
  };

  // Creates the tree under `data_dir` if needed, removes temp files left by
  // a crash, and syncs the data folder's filesystem, so that every folder
  // in the tree (and the data folder's own entry) is durable from then on.
  // Fails with kInternal when the folder cannot be prepared or synced.
  static Result<std::unique_ptr<FileBlobStore>> open_at(const std::filesystem::path& data_dir);
  static Result<std::unique_ptr<FileBlobStore>> open_at(const std::filesystem::path& data_dir,
                                                        TestSeams seams);

  // open() reads this many bytes from the start of a value's file in one
  // pread: the header and, when the file is no longer, the whole value,
  // which then comes back in OpenBlob::bytes with no fstat and no fd to keep.
  // 64 KiB holds the largest header (kMaxBlobHeaderBytes) many times over and
  // the small values that dominate request counts, while a value past it is
  // large enough that sendfile's extra syscalls cost little next to the
  // transfer. The buffer is per thread, so it is never allocated per read.
  static constexpr std::size_t kHeadReadBytes = 64 * 1024;

  Result<std::unique_ptr<BlobWriter>> begin_write(std::string_view key,
                                                  std::uint64_t version) override;
  Result<OpenBlob> open(std::string_view key, std::optional<std::uint64_t> version) override;
  Status remove(std::string_view key, std::optional<std::uint64_t> up_to,
                std::optional<std::uint64_t> exactly) override;
  Result<Usage> usage() override;

  // Whether a file can be created and written in the data folder: one is,
  // in tmp/, and removed at once (not synced). Fails with the reason.
  // Blocking. Thread-safe.
  Status check_writable() const;

  // How long each fsync took, of a value file or a folder. Thread-safe.
  const metrics::Histogram& sync_durations() const;
  Result<BlobListing> list(std::string_view after, std::size_t limit) override;
  Result<Verification> verify(std::string_view key, std::uint64_t version) override;
  Status put_marker(std::string_view key, std::uint64_t version) override;

  ~FileBlobStore() override;
  FileBlobStore(const FileBlobStore&) = delete;
  FileBlobStore& operator=(const FileBlobStore&) = delete;

 private:
  FileBlobStore(std::shared_ptr<detail::BlobTree> tree, UniqueFd blobs_directory);
  // A file of one key: a value, or a delete marker.
  struct KeyFile {
    std::uint64_t version = 0;
    bool marker = false;
  };
  // The key's files present here, unordered; none when its folder does not
  // exist. Fails with kInternal naming the folder when it cannot be listed.
  Result<std::vector<KeyFile>> files_of(std::string_view key) const;
  // The listing's entry for the file at `relative` (to the blobs folder),
  // named `name`: nullopt when it is gone (removed since its folder was
  // read) or skipped (logged).
  std::optional<StoredBlob> listed(const std::string& relative, std::string_view name,
                                   const BlobFileName& parsed) const;
  // Moves the value file of `version` to the quarantine folder, durably.
  Status quarantine(const KeyDigest& digest, std::uint64_t version);
  // Paths, the file count and the durable-folder record, shared with the
  // writers, which may outlive the store.
  std::shared_ptr<detail::BlobTree> tree_;
  // <data-dir>/blobs: value files are opened relative to it, so the kernel
  // resolves three path components instead of the whole absolute path.
  UniqueFd blobs_directory_;
};

}  // namespace kalavara
