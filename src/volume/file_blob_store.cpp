#include "volume/file_blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>

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

}  // namespace

namespace detail {

// The level-1 (blobs/ab) and level-2 (blobs/ab/cd) folders whose entry in
// their parent is known to be durable, one bit each. Thread-safe. A bit is
// set only once an fsync of the parent succeeded after the folder existed
// (or at open, by the filesystem sync), and never cleared: nothing removes
// these folders while the store is open.
class DurableDirectories {
 public:
  static std::size_t level1(std::uint8_t a) { return a; }
  static std::size_t level2(std::uint8_t a, std::uint8_t b) {
    return kLevel1Count + std::size_t{a} * 256 + b;
  }

  bool contains(std::size_t index) const {
    return ((words_[index / 64].load(std::memory_order_acquire) >> (index % 64)) & 1U) != 0;
  }
  void insert(std::size_t index) {
    words_[index / 64].fetch_or(std::uint64_t{1} << (index % 64), std::memory_order_release);
  }

 private:
  static constexpr std::size_t kLevel1Count = 256;
  static constexpr std::size_t kCount = kLevel1Count + 256 * 256;
  std::array<std::atomic<std::uint64_t>, kCount / 64> words_{};
};

// What the store shares with its writers, which may outlive it (a PUT's
// coroutine frame is destroyed whenever its connection is).
struct BlobTree {
  BlobTree(fs::path data_dir, std::uint64_t file_count, FileBlobStore::TestSeams test_seams)
      : data(std::move(data_dir)),
        blobs(data / kBlobsDirectory),
        temp(data / "tmp"),
        quarantine(data / kQuarantineDirectory),
        files(static_cast<std::int64_t>(file_count)),
        seams(std::move(test_seams)) {}

  // fsync on a directory makes the entries created, renamed or removed in it
  // durable; without it a crash can forget a rename that already succeeded.
  Status sync_directory(const fs::path& directory) const {
    if (seams.before_sync) {
      if (auto status = seams.before_sync(directory); !status) return status;
    }
    UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return io_error("open directory for fsync", errno);
    if (timed_fsync(fd.get()) != 0) {
      return io_error("fsync directory " + directory.string(), errno);
    }
    return {};
  }

  // fsync(2), its duration counted in `syncs`; errno is fsync's.
  int timed_fsync(int fd) const {
    const auto started = std::chrono::steady_clock::now();
    const int result = ::fsync(fd);
    const int saved = errno;
    syncs.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    errno = saved;
    return result;
  }

  // Makes `directory`, under `parent`, exist with a durable entry in
  // `parent`; `index` is its bit in `durable`.
  Status ensure_directory(const fs::path& parent, const fs::path& directory, std::size_t index) {
    if (durable.contains(index)) return {};
    if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
      return io_error("mkdir " + directory.string(), errno);
    }
    // Made now or found: a concurrent writer may have made it a moment ago
    // and not yet fsynced `parent`, and using it then would let a crash
    // forget the folder and the file renamed into it. So whoever finds it
    // not known durable, creator or not, fsyncs `parent` before using it
    // (finders racing here may both sync: harmless, and only until the bit
    // is set).
    if (auto status = sync_directory(parent); !status) return status;
    durable.insert(index);
    return {};
  }

  const fs::path data;
  const fs::path blobs;
  const fs::path temp;
  const fs::path quarantine;
  // Value files (not markers): counted at start, then kept up to date by
  // writers, removals and quarantines.
  std::atomic<std::int64_t> files;
  DurableDirectories durable;
  const FileBlobStore::TestSeams seams;
  // Every fsync's duration, of a value or a folder: what durability costs
  // on this disk.
  mutable metrics::Histogram syncs{metrics::sync_duration_buckets()};
};

}  // namespace detail

namespace {

using detail::BlobTree;
using detail::DurableDirectories;

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

// What a writer publishes: a value, or a delete marker (which the file count
// leaves out).
enum class WriteKind { kValue, kMarker };

class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(std::shared_ptr<BlobTree> tree, UniqueFd fd, fs::path temp_path,
                 const KeyDigest& digest, std::uint64_t version, WriteKind kind)
      : tree_(std::move(tree)),
        fd_(std::move(fd)),
        temp_path_(std::move(temp_path)),
        final_path_(tree_->blobs / (kind == WriteKind::kMarker
                                        ? marker_path_in_blobs_directory(digest, version)
                                        : blob_path_in_blobs_directory(digest, version))),
        level1_index_(DurableDirectories::level1(digest.bytes[0])),
        level2_index_(DurableDirectories::level2(digest.bytes[0], digest.bytes[1])),
        version_(version),
        counted_(kind == WriteKind::kValue) {}

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
      if (published && counted_) --tree_->files;
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
    if (tree_->timed_fsync(fd_.get()) != 0) return io_error("fsync", errno);
    return Written{size_, checksum};
  }

  Status publish() override {
    if (state_ != State::kWriting) return Error{Errc::kInternal, "publish: nothing to publish"};
    const auto level1 = final_path_.parent_path().parent_path();
    const auto level2 = final_path_.parent_path();
    if (auto status = tree_->ensure_directory(tree_->blobs, level1, level1_index_); !status) {
      return status;
    }
    if (auto status = tree_->ensure_directory(level1, level2, level2_index_); !status) {
      return status;
    }
    if (auto moved = move_no_replace(temp_path_, final_path_, tree_->seams.link_instead_of_rename);
        !moved) {
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
    if (auto status = tree_->sync_directory(level2); !status) {
      ::unlink(final_path_.c_str());
      state_ = State::kGone;
      return status;
    }
    state_ = State::kPublished;
    if (counted_) ++tree_->files;
    return {};
  }

 private:
  // kWriting: the temp file is ours. kPublished: the version file is ours.
  // kGone: this writer owns no file any more.
  enum class State { kWriting, kPublished, kGone };

  std::shared_ptr<BlobTree> tree_;
  UniqueFd fd_;
  fs::path temp_path_;
  fs::path final_path_;
  std::size_t level1_index_;
  std::size_t level2_index_;
  std::uint64_t version_;
  bool counted_;
  ValueHasher hasher_;
  std::uint64_t size_ = 0;
  State state_ = State::kWriting;
};

// The byte a level-1 or level-2 folder's name spells ("3f"), if it is one.
std::optional<std::uint8_t> folder_byte(std::string_view text) {
  if (text.size() != 2) return std::nullopt;
  int value = 0;
  for (const char c : text) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return std::nullopt;
    value = value * 16 + digit;
  }
  return static_cast<std::uint8_t>(value);
}

}  // namespace

FileBlobStore::FileBlobStore(std::shared_ptr<detail::BlobTree> tree, UniqueFd blobs_directory)
    : tree_(std::move(tree)), blobs_directory_(std::move(blobs_directory)) {}

FileBlobStore::~FileBlobStore() = default;

Result<std::unique_ptr<FileBlobStore>> FileBlobStore::open_at(const fs::path& data_dir) {
  return open_at(data_dir, TestSeams{});
}

Result<std::unique_ptr<FileBlobStore>> FileBlobStore::open_at(const fs::path& data_dir,
                                                              TestSeams seams) {
  std::error_code ec;
  fs::create_directories(data_dir / kBlobsDirectory, ec);
  if (!ec) fs::create_directories(data_dir / "tmp", ec);
  // Made now so that a quarantine never has to make (and sync) it; the
  // filesystem sync below makes its entry durable.
  if (!ec) fs::create_directories(data_dir / kQuarantineDirectory, ec);
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
  std::vector<std::size_t> folders;  // the level-1 and level-2 folders present
  for (auto it = fs::recursive_directory_iterator(data_dir / kBlobsDirectory, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      // Values only: markers are not values, and other files are not ours.
      const auto name = parse_blob_file_name(it->path().filename().native());
      if (name && !name->marker) ++files;
    } else if (!ec && it->is_directory(ec)) {
      const auto byte = folder_byte(it->path().filename().native());
      if (!byte) continue;
      if (it.depth() == 0) {
        folders.push_back(DurableDirectories::level1(*byte));
      } else if (const auto parent = folder_byte(it->path().parent_path().filename().native());
                 it.depth() == 1 && parent) {
        folders.push_back(DurableDirectories::level2(*parent, *byte));
      }
    }
  }
  if (ec)
    return Error{Errc::kInternal,
                 "cannot count the values in " + data_dir.string() + ": " + ec.message()};

  auto tree = std::make_shared<detail::BlobTree>(data_dir, files, std::move(seams));
  // Whatever exists now need not be on disk: a crashed run (or
  // create_directories just now) may have made a folder and not yet fsynced
  // its parent, and the page cache outlives a process, not a power cut. One
  // syncfs makes every such entry durable: the data folder and any parent
  // made for it, blobs/, tmp/, and each ab/ and ab/cd/ folder, where
  // fsyncing each parent would take up to 258 calls. It writes out the rest
  // of the filesystem's dirty data too, once, at start. Linux reports
  // write-back errors from syncfs since 5.8; one fails the open.
  if (tree->seams.before_sync) {
    if (auto status = tree->seams.before_sync(data_dir); !status) return status.error();
  }
  UniqueFd data(::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!data.valid() || ::syncfs(data.get()) != 0) {
    return Error{Errc::kInternal,
                 "cannot sync " + data_dir.string() + " to disk: " + std::strerror(errno)};
  }
  for (const auto index : folders) tree->durable.insert(index);

  const auto& blobs = tree->blobs;
  UniqueFd blobs_directory(::open(blobs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!blobs_directory.valid()) {
    return Error{Errc::kInternal, "cannot open " + blobs.string() + ": " + std::strerror(errno)};
  }
  return std::unique_ptr<FileBlobStore>(
      new FileBlobStore(std::move(tree), std::move(blobs_directory)));
}

namespace {

Result<std::unique_ptr<BlobWriter>> begin(const std::shared_ptr<BlobTree>& tree,
                                          std::string_view key, std::uint64_t version,
                                          WriteKind kind) {
  auto temp_path = tree->temp / random_name();
  UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error("create temp file", errno);
  if (auto status = write_all(fd.get(), encode_blob_header(key, version)); !status) {
    ::unlink(temp_path.c_str());
    return status.error();
  }
  return std::unique_ptr<BlobWriter>(std::make_unique<FileBlobWriter>(
      tree, std::move(fd), std::move(temp_path), digest_of(key), version, kind));
}

}  // namespace

Result<std::unique_ptr<BlobWriter>> FileBlobStore::begin_write(std::string_view key,
                                                               std::uint64_t version) {
  return begin(tree_, key, version, WriteKind::kValue);
}

Status FileBlobStore::put_marker(std::string_view key, std::uint64_t version) {
  auto writer = begin(tree_, key, version, WriteKind::kMarker);
  if (!writer) return writer.error();
  if (auto written = (*writer)->sync(); !written) return written.error();
  auto published = (*writer)->publish();
  // The same name is the same marker (its content follows from the key and
  // the version), so one already there is this one: a repeated request.
  if (!published && published.error().code == Errc::kConflict) return {};
  return published;
}

namespace {

struct CloseDirectory {
  void operator()(DIR* directory) const { ::closedir(directory); }
};

// Calls `each` with every name in the folder `relative` (to the folder
// `parent`) but "." and "..". False when the folder does not exist. Fails
// with kInternal naming `shown` when it cannot be listed: only a missing
// folder means "nothing there", any other error leaves it unknown.
template <class F>
Result<bool> for_each_name(int parent, const std::string& relative, const fs::path& shown,
                           F&& each) {
  const auto cannot_list = [&](int error_number) {
    return Error{Errc::kInternal,
                 "cannot list " + shown.string() + ": " + std::strerror(error_number)};
  };
  const int fd = ::openat(parent, relative.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    return cannot_list(errno);
  }
  const std::unique_ptr<DIR, CloseDirectory> directory(::fdopendir(fd));
  if (!directory) {
    const int error_number = errno;
    ::close(fd);
    return cannot_list(error_number);
  }
  for (;;) {
    errno = 0;  // readdir returns null both at the end and on an error
    const dirent* entry = ::readdir(directory.get());
    if (entry == nullptr) {
      if (errno != 0) return cannot_list(errno);
      return true;
    }
    const std::string_view name(entry->d_name);
    if (name != "." && name != "..") each(name);
  }
}

// The level-1 or level-2 folders in `relative`, as the bytes they spell,
// in order.
Result<std::vector<std::uint8_t>> sorted_folders(int blobs, const std::string& relative,
                                                 const fs::path& shown) {
  std::vector<std::uint8_t> bytes;
  auto listed = for_each_name(blobs, relative, shown, [&](std::string_view name) {
    if (const auto byte = folder_byte(name)) bytes.push_back(*byte);
  });
  if (!listed) return listed.error();
  std::sort(bytes.begin(), bytes.end());
  return bytes;
}

std::string hex_byte(std::uint8_t byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return {kHex[byte >> 4], kHex[byte & 0xF]};
}

// Reads a file's header: the first bytes, up to the largest header.
Result<BlobHeader> read_header(int fd) {
  std::array<char, kMaxBlobHeaderBytes> head{};
  ssize_t got = 0;
  do {
    got = ::pread(fd, head.data(), head.size(), 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return io_error("read", errno);
  return decode_blob_header(std::string_view(head.data(), static_cast<std::size_t>(got)));
}

}  // namespace

Result<std::vector<FileBlobStore::KeyFile>> FileBlobStore::files_of(std::string_view key) const {
  const auto hex = digest_of(key).hex();
  const auto folder = hex.substr(0, 2) + "/" + hex.substr(2, 2);
  std::vector<KeyFile> files;
  auto listed = for_each_name(
      blobs_directory_.get(), folder, tree_->blobs / folder, [&](std::string_view name) {
        if (const auto parsed = parse_blob_file_name(name); parsed && parsed->digest_hex == hex) {
          files.push_back({parsed->version, parsed->marker});
        }
      });
  if (!listed) return listed.error();
  return files;
}

Result<OpenBlob> FileBlobStore::open(std::string_view key, std::optional<std::uint64_t> version) {
  if (!version) {
    const auto files = files_of(key);
    if (!files) return files.error();
    // The newest value: markers are never served.
    for (const auto& file : *files) {
      if (!file.marker && (!version || file.version > *version)) version = file.version;
    }
    if (!version) return Error{Errc::kNotFound, "no such key"};
  }
  const auto relative = blob_path_in_blobs_directory(digest_of(key), *version);
  const auto path_for_errors = [&] { return (tree_->blobs / relative).string(); };
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
  const auto files = files_of(key);
  if (!files) return files.error();
  bool removed = false;
  for (const auto& file : *files) {
    if (exactly ? (file.marker || file.version != *exactly) : (up_to && file.version > *up_to)) {
      continue;
    }
    const auto path =
        tree_->blobs / (file.marker ? marker_path_in_blobs_directory(digest, file.version)
                                    : blob_path_in_blobs_directory(digest, file.version));
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) continue;  // a concurrent delete got there first
      return io_error("unlink", errno);
    }
    removed = true;
    if (!file.marker) --tree_->files;
  }
  if (!removed) return Error{Errc::kNotFound, "no such key"};
  return tree_->sync_directory(tree_->data / blob_directory(digest));
}

std::optional<StoredBlob> FileBlobStore::listed(const std::string& relative, std::string_view name,
                                                const BlobFileName& parsed) const {
  const auto skip = [&](std::string_view why) -> std::optional<StoredBlob> {
    spdlog::warn("listing skips {}: {}", (tree_->blobs / relative).string(), why);
    return std::nullopt;
  };
  UniqueFd fd(::openat(blobs_directory_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;  // removed since the folder was read
    return skip(std::strerror(errno));
  }
  auto header = read_header(fd.get());
  if (!header) return skip(header.error().message);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return skip(std::strerror(errno));
  if (digest_of(header->key).hex() != parsed.digest_hex) {
    return skip("it holds a key whose digest is not its name's");
  }
  if (header->version != parsed.version) {
    return skip("its header holds version " + std::to_string(header->version));
  }
  // decode_blob_header checked that the header fits in what was read.
  const auto size = static_cast<std::uint64_t>(info.st_size) - header->length;
  if (parsed.marker && size != 0) return skip("a marker with a value");
  StoredBlob blob;
  blob.name.assign(name);
  blob.key = std::move(header->key);
  blob.version = parsed.version;
  blob.size = size;
  if (!parsed.marker) blob.checksum = header->checksum;
  blob.mtime = static_cast<std::uint64_t>(std::max<time_t>(0, info.st_mtim.tv_sec));
  blob.marker = parsed.marker;
  return blob;
}

Result<BlobListing> FileBlobStore::list(std::string_view after, std::size_t limit) {
  if (limit == 0) return Error{Errc::kBadInput, "a listing page holds at least one entry"};
  // The cursor names a file, so its first four hex digits name its folder:
  // the walk seeks there instead of reading the folders before it.
  std::uint8_t first_level1 = 0;
  std::uint8_t first_level2 = 0;
  if (!after.empty()) {
    const auto level1 = folder_byte(after.substr(0, 2));
    const auto level2 = after.size() >= 4 ? folder_byte(after.substr(2, 2)) : std::nullopt;
    if (!level1 || !level2) {
      return Error{Errc::kBadInput, "after= must be a name from a listing (or empty)"};
    }
    first_level1 = *level1;
    first_level2 = *level2;
  }
  const int blobs = blobs_directory_.get();
  BlobListing listing;
  auto level1 = sorted_folders(blobs, ".", tree_->blobs);
  if (!level1) return level1.error();
  for (const auto a : *level1) {
    if (a < first_level1) continue;
    const auto level1_name = hex_byte(a);
    auto level2 = sorted_folders(blobs, level1_name, tree_->blobs / level1_name);
    if (!level2) return level2.error();
    for (const auto b : *level2) {
      if (a == first_level1 && b < first_level2) continue;
      const auto folder = level1_name + "/" + hex_byte(b);
      const auto prefix = level1_name + hex_byte(b);
      // One folder's names at a time: sorted, since readdir's order is the
      // filesystem's.
      std::vector<std::string> names;
      auto read = for_each_name(blobs, folder, tree_->blobs / folder, [&](std::string_view name) {
        if (name > after) names.emplace_back(name);
      });
      if (!read) return read.error();
      std::sort(names.begin(), names.end());
      for (const auto& name : names) {
        const auto parsed = parse_blob_file_name(name);
        if (!parsed) continue;  // not a kalavara file
        const auto relative = folder + "/" + name;
        if (!parsed->digest_hex.starts_with(prefix)) {
          spdlog::warn("listing skips {}: it is not in its digest's folder",
                       (tree_->blobs / relative).string());
          continue;
        }
        auto blob = listed(relative, name, *parsed);
        if (!blob) continue;
        listing.blobs.push_back(std::move(*blob));
        if (listing.blobs.size() == limit) {
          listing.next = name;
          return listing;
        }
      }
    }
  }
  return listing;
}

Status FileBlobStore::quarantine(const KeyDigest& digest, std::uint64_t version) {
  const auto relative = blob_path_in_blobs_directory(digest, version);
  const auto from = tree_->blobs / relative;
  const auto name = from.filename().string();
  // Under its own name, or with a number after it when a copy of that name
  // was quarantined before (a copy pulled again, and corrupt again).
  constexpr int kAttempts = 100;
  Status moved;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto to =
        tree_->quarantine / (attempt == 0 ? name : name + "." + std::to_string(attempt));
    moved = move_no_replace(from, to, tree_->seams.link_instead_of_rename);
    if (moved || moved.error().code != Errc::kConflict) break;
  }
  if (!moved) return moved;
  --tree_->files;
  // Both folders changed: the file is in one and no longer in the other.
  if (auto status = tree_->sync_directory(tree_->quarantine); !status) return status;
  return tree_->sync_directory(from.parent_path());
}

Result<Verification> FileBlobStore::verify(std::string_view key, std::uint64_t version) {
  const auto digest = digest_of(key);
  const auto relative = blob_path_in_blobs_directory(digest, version);
  UniqueFd fd(::openat(blobs_directory_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "no such copy here"};
    return io_error("open", errno);
  }
  std::string corruption;
  auto header = read_header(fd.get());
  if (!header) {
    if (header.error().code != Errc::kInternal ||
        !header.error().message.starts_with("corrupt blob header")) {
      return header.error();  // an I/O error: the copy may be sound
    }
    corruption = header.error().message;
  } else if (header->key != key) {
    corruption = "the file holds another key";
  } else if (header->version != version) {
    corruption = "the file's header holds version " + std::to_string(header->version);
  } else if (!header->checksum) {
    return Verification{Verification::Outcome::kUnverifiable,
                        "a format-1 copy has no checksum to verify against"};
  } else {
    // Read in large pieces: a verify is a sequential pass over the copy.
    constexpr std::size_t kPiece = 1024 * 1024;
    const auto buffer = std::make_unique_for_overwrite<char[]>(kPiece);
    ValueHasher hasher;
    auto offset = static_cast<off_t>(header->length);
    for (;;) {
      const ssize_t got = ::pread(fd.get(), buffer.get(), kPiece, offset);
      if (got < 0) {
        if (errno == EINTR) continue;
        return io_error("read", errno);
      }
      if (got == 0) break;
      hasher.update(std::span<const char>(buffer.get(), static_cast<std::size_t>(got)));
      offset += got;
    }
    const auto actual = hasher.finish();
    if (actual == *header->checksum) return Verification{Verification::Outcome::kIntact, {}};
    corruption = "its bytes' checksum is " + checksum_hex(actual) + ", its header says " +
                 checksum_hex(*header->checksum);
  }
  fd.reset();
  if (auto moved = quarantine(digest, version); !moved) {
    return Error{Errc::kInternal,
                 "corrupt copy (" + corruption + ") not quarantined: " + moved.error().message};
  }
  spdlog::warn("quarantined {} (key {}): {}", relative, percent_encode_component(key), corruption);
  return Verification{Verification::Outcome::kQuarantined, corruption};
}

Result<BlobStore::Usage> FileBlobStore::usage() {
  struct statvfs info {};
  if (::statvfs(tree_->data.c_str(), &info) != 0) return io_error("statvfs", errno);
  return Usage{static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize,
               static_cast<std::uint64_t>(std::max<std::int64_t>(0, tree_->files.load())),
               static_cast<std::uint64_t>(info.f_blocks) * info.f_frsize};
}

const metrics::Histogram& FileBlobStore::sync_durations() const { return tree_->syncs; }

Status FileBlobStore::check_writable() const {
  const auto path = tree_->temp / ("probe-" + random_name());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return io_error("create " + path.string(), errno);
  const char byte = 0;
  const bool written = ::write(fd.get(), &byte, 1) == 1;
  const int saved = errno;
  ::unlink(path.c_str());
  if (!written) return io_error("write " + path.string(), saved);
  return {};
}

}  // namespace kalavara
