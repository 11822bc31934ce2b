// BlobStore on a local file tree (format: blob_file.hpp). Writes stream into
// <data-dir>/tmp (same filesystem, so the final rename is atomic), are
// fsynced, renamed into place without replacing any file
// (renameat2(RENAME_NOREPLACE), or link(2) + unlink where the filesystem
// lacks it), and the directory is fsynced.
//
// Reads open files relative to the blobs folder opened once at start, so
// the data folder must not be moved or replaced while the store is open.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <vector>

#include "volume/blob_store.hpp"

namespace kalavara {

class FileBlobStore final : public BlobStore {
 public:
  // Test seams; the defaults are what a volume runs with.
  struct TestSeams {
    // Publish as on a filesystem without RENAME_NOREPLACE: link(2) + unlink.
    bool link_instead_of_rename = false;
  };

  // Creates the tree under `data_dir` if needed and removes temp files left
  // by a crash. Fails with kInternal when the folder cannot be prepared.
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

 private:
  FileBlobStore(std::filesystem::path data_dir, UniqueFd blobs_directory, std::uint64_t files,
                TestSeams seams);
  // The versions of the key present here, unordered; none when its folder
  // does not exist. Fails with kInternal naming the folder when it cannot be
  // listed.
  Result<std::vector<std::uint64_t>> versions_of(std::string_view key) const;
  std::filesystem::path data_dir_;
  // <data-dir>/blobs: value files are opened relative to it, so the kernel
  // resolves three path components instead of the whole absolute path.
  UniqueFd blobs_directory_;
  TestSeams seams_;
  // Counted at start, then kept up to date by writers and removals.
  std::shared_ptr<std::atomic<std::int64_t>> files_;
};

}  // namespace kalavara
