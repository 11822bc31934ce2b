#include "volume/file_blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "common/digest.hpp"
#include "volume/blob_file.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;

Error io_error(std::string_view what, int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) {
    return Error{Errc::kNoSpace, "volume is full (" + std::string(what) + ")"};
  }
  return Error{Errc::kInternal, std::string(what) + ": " + std::strerror(error_number)};
}

// fsync on a directory makes the entries created, renamed or removed in it
// durable; without it a crash can forget a rename that already succeeded.
Status sync_directory(const fs::path& directory) {
  UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("open directory for fsync", errno);
  if (::fsync(fd.get()) != 0) return io_error("fsync directory", errno);
  return {};
}

// Creates `directory` under an existing `parent` if missing, durably.
Status ensure_directory(const fs::path& parent, const fs::path& directory) {
  if (::mkdir(directory.c_str(), 0755) == 0) return sync_directory(parent);
  if (errno == EEXIST) return {};
  return io_error("mkdir " + directory.string(), errno);
}

// Gives the file at `from` the name `to` unless `to` exists, atomically.
// Fails with kConflict when it exists (then nothing changed), as io_error
// otherwise. Once it succeeded, `from` no longer names the file, except in
// the link fallback when its unlink fails: that extra name in tmp/ goes at
// the next start.
Status move_no_replace(const fs::path& from, const fs::path& to, bool link_instead_of_rename) {
  if (!link_instead_of_rename) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return {};
    if (errno == EEXIST) return Error{Errc::kConflict, to.string() + " exists"};
    if (errno != EINVAL && errno != ENOSYS) return io_error("rename", errno);
  }
  // A filesystem without RENAME_NOREPLACE: link(2) never replaces either,
  // and once the temp name is gone the file has only its published name.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return Error{Errc::kConflict, to.string() + " exists"};
    return io_error("link", errno);
  }
  ::unlink(from.c_str());
  return {};
}

std::string random_name() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t bits = generator();
  std::string name(16, '0');
  for (auto& c : name) {
    c = kHex[bits & 0xF];
    bits >>= 4;
  }
  return name + ".part";
}

Status write_all(int fd, std::span<const char> bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return io_error("write", errno);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
  return {};
}

class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(UniqueFd fd, fs::path temp_path, fs::path blobs_dir, fs::path final_path,
                 std::uint64_t version, bool link_instead_of_rename,
                 std::shared_ptr<std::atomic<std::int64_t>> files)
      : files_(std::move(files)),
        fd_(std::move(fd)),
        temp_path_(std::move(temp_path)),
        blobs_dir_(std::move(blobs_dir)),
        final_path_(std::move(final_path)),
        version_(version),
        link_instead_of_rename_(link_instead_of_rename) {}

  // A published version stays: by now its upload may have been committed,
  // and only the caller can know it was not (discard()).
  ~FileBlobWriter() override {
    if (state_ == State::kWriting) ::unlink(temp_path_.c_str());
  }

  // No directory fsync: an unlink a crash forgets brings back an uncommitted
  // version, an orphan no read is sent to, and the caller is a PUT on an io
  // thread, which must not block on the disk for that.
  Status discard() override {
    if (state_ == State::kGone) return {};
    const bool published = state_ == State::kPublished;
    const auto& path = published ? final_path_ : temp_path_;
    if (::unlink(path.c_str()) == 0) {
      if (published) --*files_;
    } else if (errno != ENOENT) {  // ENOENT: a DELETE of this version got there first
      return io_error("unlink " + path.string(), errno);
    }
    state_ = State::kGone;
    return {};
  }

  Status append(std::span<const char> bytes) override {
    if (auto status = write_all(fd_.get(), bytes); !status) return status;
    hasher_.update(bytes);
    size_ += bytes.size();
    return {};
  }

  Result<Written> sync() override {
    const auto checksum = hasher_.finish();
    if (::pwrite(fd_.get(), checksum.data(), checksum.size(), kBlobChecksumOffset) !=
        static_cast<ssize_t>(checksum.size())) {
      return io_error("write checksum", errno);
    }
    // A failed fsync may have dropped the dirty pages; the write is lost and
    // is reported as failed, never retried and trusted.
    if (::fsync(fd_.get()) != 0) return io_error("fsync", errno);
    return Written{size_, checksum};
  }

  Status publish() override {
    if (state_ != State::kWriting) return Error{Errc::kInternal, "publish: nothing to publish"};
    const auto level1 = final_path_.parent_path().parent_path();
    const auto level2 = final_path_.parent_path();
    if (auto status = ensure_directory(blobs_dir_, level1); !status) return status;
    if (auto status = ensure_directory(level1, level2); !status) return status;
    if (auto moved = move_no_replace(temp_path_, final_path_, link_instead_of_rename_); !moved) {
      ::unlink(temp_path_.c_str());
      state_ = State::kGone;
      if (moved.error().code != Errc::kConflict) return moved;
      // Another upload of this version already published it, and the
      // master may have committed that copy: it must stay as it is.
      return Error{Errc::kConflict, "version " + std::to_string(version_) +
                                        " of this key is already stored; PUT again through "
                                        "the master for a new version"};
    }
    // The name is ours now (nothing was replaced), but until its folder is
    // fsynced a crash may forget it: a failed sync fails the write, and the
    // name goes (no commit follows a failed publish, so no index names it).
    if (auto status = sync_directory(level2); !status) {
      ::unlink(final_path_.c_str());
      state_ = State::kGone;
      return status;
    }
    state_ = State::kPublished;
    ++*files_;
    return {};
  }

 private:
  // kWriting: the temp file is ours. kPublished: the version file is ours.
  // kGone: this writer owns no file any more.
  enum class State { kWriting, kPublished, kGone };

  std::shared_ptr<std::atomic<std::int64_t>> files_;
  UniqueFd fd_;
  fs::path temp_path_;
  fs::path blobs_dir_;
  fs::path final_path_;
  std::uint64_t version_;
  bool link_instead_of_rename_;
  ValueHasher hasher_;
  std::uint64_t size_ = 0;
  State state_ = State::kWriting;
};

}  // namespace

FileBlobStore::FileBlobStore(fs::path data_dir, UniqueFd blobs_directory, std::uint64_t files,
                             TestSeams seams)
    : data_dir_(std::move(data_dir)),
      blobs_directory_(std::move(blobs_directory)),
      seams_(seams),
      files_(std::make_shared<std::atomic<std::int64_t>>(static_cast<std::int64_t>(files))) {}

Result<std::unique_ptr<FileBlobStore>> FileBlobStore::open_at(const fs::path& data_dir) {
  return open_at(data_dir, TestSeams{});
}

Result<std::unique_ptr<FileBlobStore>> FileBlobStore::open_at(const fs::path& data_dir,
                                                              TestSeams seams) {
  std::error_code ec;
  fs::create_directories(data_dir / kBlobsDirectory, ec);
  if (!ec) fs::create_directories(data_dir / "tmp", ec);
  if (ec)
    return Error{Errc::kInternal, "cannot prepare " + data_dir.string() + ": " + ec.message()};
  // Temp files are uploads that never completed: no one will finish them.
  for (const auto& entry : fs::directory_iterator(data_dir / "tmp", ec)) {
    fs::remove(entry.path(), ec);
    if (ec)
      return Error{Errc::kInternal, "cannot clean " + entry.path().string() + ": " + ec.message()};
  }
  if (ec)
    return Error{Errc::kInternal,
                 "cannot list " + (data_dir / "tmp").string() + ": " + ec.message()};
  std::uint64_t files = 0;
  for (auto it = fs::recursive_directory_iterator(data_dir / kBlobsDirectory, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) ++files;
  }
  if (ec)
    return Error{Errc::kInternal,
                 "cannot count the values in " + data_dir.string() + ": " + ec.message()};
  const auto blobs = data_dir / kBlobsDirectory;
  UniqueFd blobs_directory(::open(blobs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!blobs_directory.valid()) {
    return Error{Errc::kInternal, "cannot open " + blobs.string() + ": " + std::strerror(errno)};
  }
  return std::unique_ptr<FileBlobStore>(
      new FileBlobStore(data_dir, std::move(blobs_directory), files, seams));
}

Result<std::unique_ptr<BlobWriter>> FileBlobStore::begin_write(std::string_view key,
                                                               std::uint64_t version) {
  auto temp_path = data_dir_ / "tmp" / random_name();
  UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error("create temp file", errno);
  if (auto status = write_all(fd.get(), encode_blob_header(key, version)); !status) {
    ::unlink(temp_path.c_str());
    return status.error();
  }
  return std::unique_ptr<BlobWriter>(
      std::make_unique<FileBlobWriter>(std::move(fd), temp_path, data_dir_ / kBlobsDirectory,
                                       data_dir_ / blob_relative_path(digest_of(key), version),
                                       version, seams_.link_instead_of_rename, files_));
}

Result<std::vector<std::uint64_t>> FileBlobStore::versions_of(std::string_view key) const {
  const auto hex = digest_of(key).hex();
  const auto folder = hex.substr(0, 2) + "/" + hex.substr(2, 2);
  // Only a missing folder means "no versions": any other error leaves it
  // unknown, and answering "no such key" then would make a DELETE count as
  // done while the copy stays.
  const auto cannot_list = [&](int error_number) {
    return Error{Errc::kInternal, "cannot list " + (data_dir_ / kBlobsDirectory / folder).string() +
                                      ": " + std::strerror(error_number)};
  };
  const int fd =
      ::openat(blobs_directory_.get(), folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::vector<std::uint64_t>{};
    return cannot_list(errno);
  }
  struct CloseDirectory {
    void operator()(DIR* directory) const { ::closedir(directory); }
  };
  const std::unique_ptr<DIR, CloseDirectory> directory(::fdopendir(fd));
  if (!directory) {
    const int error_number = errno;
    ::close(fd);
    return cannot_list(error_number);
  }
  std::vector<std::uint64_t> versions;
  for (;;) {
    errno = 0;  // readdir returns null both at the end and on an error
    const dirent* entry = ::readdir(directory.get());
    if (entry == nullptr) {
      if (errno != 0) return cannot_list(errno);
      return versions;
    }
    if (auto version = blob_file_version(entry->d_name, hex)) versions.push_back(*version);
  }
}

Result<OpenBlob> FileBlobStore::open(std::string_view key, std::optional<std::uint64_t> version) {
  if (!version) {
    const auto versions = versions_of(key);
    if (!versions) return versions.error();
    if (versions->empty()) return Error{Errc::kNotFound, "no such key"};
    version = *std::max_element(versions->begin(), versions->end());
  }
  const auto relative = blob_path_in_blobs_directory(digest_of(key), *version);
  const auto path_for_errors = [&] { return (data_dir_ / kBlobsDirectory / relative).string(); };
  UniqueFd fd(::openat(blobs_directory_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "no such key (or not this version of it)"};
    return io_error("open", errno);
  }
  // open() never suspends, so one buffer per thread serves every call, and it
  // is neither allocated nor zero-filled per read.
  static_assert(kHeadReadBytes >= kMaxBlobHeaderBytes);
  thread_local const auto buffer = std::make_unique_for_overwrite<char[]>(kHeadReadBytes);
  ssize_t got = 0;
  do {
    got = ::pread(fd.get(), buffer.get(), kHeadReadBytes, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return io_error("read", errno);
  const std::string_view head(buffer.get(), static_cast<std::size_t>(got));
  auto header = decode_blob_header(head);
  if (!header) return Error{Errc::kInternal, path_for_errors() + ": " + header.error().message};
  if (header->key != key) return Error{Errc::kInternal, path_for_errors() + " holds another key"};

  // Published files never change, so a read shorter than the buffer read
  // the whole file; only a full buffer leaves the size unknown.
  std::uint64_t file_size = head.size();
  if (head.size() == kHeadReadBytes) {
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return io_error("stat", errno);
    file_size = static_cast<std::uint64_t>(info.st_size);
  }
  OpenBlob blob;
  blob.offset = header->length;
  blob.checksum = header->checksum;
  if (file_size <= head.size()) {
    blob.bytes.emplace(head.substr(header->length));
    blob.size = blob.bytes->size();
  } else {
    blob.size = file_size - header->length;
    blob.fd = std::move(fd);
  }
  return blob;
}

Status FileBlobStore::remove(std::string_view key, std::optional<std::uint64_t> up_to,
                             std::optional<std::uint64_t> exactly) {
  const auto digest = digest_of(key);
  const auto versions = versions_of(key);
  if (!versions) return versions.error();
  bool removed = false;
  for (const auto version : *versions) {
    if ((up_to && version > *up_to) || (exactly && version != *exactly)) continue;
    const auto path = data_dir_ / blob_relative_path(digest, version);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) continue;  // a concurrent delete got there first
      return io_error("unlink", errno);
    }
    removed = true;
    --*files_;
  }
  if (!removed) return Error{Errc::kNotFound, "no such key"};
  return sync_directory(data_dir_ / blob_directory(digest));
}

Result<BlobStore::Usage> FileBlobStore::usage() {
  struct statvfs info {};
  if (::statvfs(data_dir_.c_str(), &info) != 0) return io_error("statvfs", errno);
  return Usage{static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize,
               static_cast<std::uint64_t>(std::max<std::int64_t>(0, files_->load()))};
}

}  // namespace kalavara
