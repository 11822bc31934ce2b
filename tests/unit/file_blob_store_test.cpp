#include "volume/file_blob_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "volume/blob_file.hpp"

namespace kalavara {
namespace {

namespace fs = std::filesystem;

// A fresh data folder, removed at the end of the test.
class DataDir {
 public:
  DataDir() {
    std::string pattern = (fs::temp_directory_path() / "kalavara-blob-store-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~DataDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string random_bytes(std::size_t n) {
  static std::mt19937_64 generator{42};
  std::string bytes(n, '\0');
  for (auto& c : bytes) c = static_cast<char>(generator());
  return bytes;
}

Checksum checksum_of(std::string_view bytes) {
  ValueHasher hasher;
  hasher.update(bytes);
  return hasher.finish();
}

// Writes and publishes `value` as `version` of `key`.
void store(FileBlobStore& blobs, std::string_view key, std::uint64_t version,
           std::string_view value) {
  auto writer = blobs.begin_write(key, version);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE((*writer)->append(value).ok());
  auto written = (*writer)->sync();
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->size, value.size());
  ASSERT_TRUE((*writer)->publish().ok());
}

std::string read_at(int fd, std::uint64_t offset, std::uint64_t size) {
  std::string bytes(size, '\0');
  const ssize_t got = ::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  bytes.resize(got < 0 ? 0 : static_cast<std::size_t>(got));
  return bytes;
}

// Writes and syncs `value` as `version` of `key`, then returns what publish()
// says.
Status publish_once(FileBlobStore& blobs, std::string_view key, std::uint64_t version,
                    std::string_view value) {
  auto writer = blobs.begin_write(key, version);
  if (!writer) return writer.error();
  if (auto status = (*writer)->append(value); !status) return status;
  if (auto written = (*writer)->sync(); !written) return written.error();
  return (*writer)->publish();
}

// The whole value of `version` of `key`, or the error's message.
std::string value_of(FileBlobStore& blobs, std::string_view key, std::uint64_t version) {
  auto blob = blobs.open(key, version);
  if (!blob) return "error: " + blob.error().message;
  if (blob->bytes) return *blob->bytes;
  return read_at(blob->fd.get(), blob->offset, blob->size);
}

// The value size at which the file is exactly one head read long.
std::size_t fits_exactly(std::string_view key) {
  return FileBlobStore::kHeadReadBytes - (kBlobFixedHeaderBytes + key.size());
}

class FileBlobStoreOpen : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = FileBlobStore::open_at(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    blobs_ = std::move(opened).value();
  }

  // Stores `value`, opens it and checks what every open value must satisfy.
  OpenBlob store_and_open(std::string_view key, std::string_view value) {
    store(*blobs_, key, 7, value);
    auto blob = blobs_->open(key, 7);
    EXPECT_TRUE(blob.ok()) << blob.error().message;
    if (!blob.ok()) return {};
    EXPECT_EQ(blob->size, value.size());
    EXPECT_EQ(blob->checksum, checksum_of(value));
    return std::move(blob).value();
  }

  void expect_in_memory(const OpenBlob& blob, std::string_view value) {
    ASSERT_TRUE(blob.bytes.has_value());
    EXPECT_TRUE(*blob.bytes == value) << blob.bytes->size() << " bytes for " << value.size();
    // Nothing is left to read from the file, so it is not kept open.
    EXPECT_FALSE(blob.fd.valid());
  }

  void expect_on_disk(const OpenBlob& blob, std::string_view key, std::string_view value) {
    EXPECT_FALSE(blob.bytes.has_value());
    ASSERT_TRUE(blob.fd.valid());
    EXPECT_EQ(blob.offset, kBlobFixedHeaderBytes + key.size());
    EXPECT_TRUE(read_at(blob.fd.get(), blob.offset, blob.size) == value);
  }

  DataDir dir_;
  std::unique_ptr<FileBlobStore> blobs_;
};

TEST_F(FileBlobStoreOpen, SmallValueComesBackInMemory) {
  const auto value = random_bytes(4096);
  expect_in_memory(store_and_open("small", value), value);
}

TEST_F(FileBlobStoreOpen, EmptyValueComesBackInMemory) {
  const auto blob = store_and_open("empty", "");
  expect_in_memory(blob, "");
}

TEST_F(FileBlobStoreOpen, ValueLargerThanTheHeadReadStaysOnDisk) {
  const auto value = random_bytes(3 * FileBlobStore::kHeadReadBytes + 5);
  const auto blob = store_and_open("large", value);
  expect_on_disk(blob, "large", value);
}

TEST_F(FileBlobStoreOpen, AFileOfExactlyOneHeadReadIsInMemory) {
  const std::string key = "boundary";
  const auto value = random_bytes(fits_exactly(key));
  expect_in_memory(store_and_open(key, value), value);
}

TEST_F(FileBlobStoreOpen, OneByteMoreThanTheHeadReadStaysOnDisk) {
  const std::string key = "boundary+1";
  const auto value = random_bytes(fits_exactly(key) + 1);
  expect_on_disk(store_and_open(key, value), key, value);
}

TEST_F(FileBlobStoreOpen, OneByteLessThanTheHeadReadIsInMemory) {
  const std::string key = "boundary-1";
  const auto value = random_bytes(fits_exactly(key) - 1);
  expect_in_memory(store_and_open(key, value), value);
}

TEST_F(FileBlobStoreOpen, TheLongestKeyStillLeavesRoomForAValue) {
  const std::string key(kMaxKeyBytes, 'k');
  const auto value = random_bytes(fits_exactly(key));
  expect_in_memory(store_and_open(key, value), value);
}

TEST_F(FileBlobStoreOpen, WithoutAVersionOpensTheNewest) {
  store(*blobs_, "key", 3, "three");
  store(*blobs_, "key", 10, "ten");
  store(*blobs_, "key", 9, "nine");
  auto blob = blobs_->open("key", std::nullopt);
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(blob->bytes.has_value());
  EXPECT_EQ(*blob->bytes, "ten");
  auto older = blobs_->open("key", 3);
  ASSERT_TRUE(older.ok()) << older.error().message;
  ASSERT_TRUE(older->bytes.has_value());
  EXPECT_EQ(*older->bytes, "three");
}

TEST_F(FileBlobStoreOpen, MissingKeyOrVersionIs404) {
  EXPECT_EQ(blobs_->open("absent", std::nullopt).error().code, Errc::kNotFound);
  store(*blobs_, "present", 1, "v");
  EXPECT_EQ(blobs_->open("present", 2).error().code, Errc::kNotFound);
}

TEST_F(FileBlobStoreOpen, AKeyFolderThatCannotBeListedIsAnErrorNotAMissingKey) {
  EXPECT_EQ(blobs_->remove("absent", std::nullopt, std::nullopt).error().code, Errc::kNotFound);
  store(*blobs_, "key", 1, "value");
  // A regular file where the key's folder was: listing it fails with ENOTDIR.
  const auto folder = dir_.path() / blob_directory(digest_of("key"));
  fs::remove_all(folder);
  std::ofstream(folder) << "not a folder";

  auto blob = blobs_->open("key", std::nullopt);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().code, Errc::kInternal);
  EXPECT_NE(blob.error().message.find("cannot list " + folder.string()), std::string::npos)
      << blob.error().message;
  const auto expect_internal = [](const Status& removed) {
    ASSERT_FALSE(removed.ok());
    EXPECT_EQ(removed.error().code, Errc::kInternal) << removed.error().message;
  };
  expect_internal(blobs_->remove("key", std::nullopt, std::nullopt));
  expect_internal(blobs_->remove("key", 5, std::nullopt));
  expect_internal(blobs_->remove("key", std::nullopt, 1));
}

TEST_F(FileBlobStoreOpen, StillReadsFormat1Files) {
  // Format 1: the 24-byte fixed header without a checksum, then the key.
  const std::string key = "old";
  const std::string value = "written by the first builds";
  const std::string file = std::string("KLVB") + '\x01' + '\0' + '\x1b' + '\0' + '\x03' + '\0' +
                           std::string(6, '\0') + std::string(8, '\0') + key + value;
  const auto path = dir_.path() / blob_relative_path(digest_of(key), 0);
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << file;
  auto blob = blobs_->open(key, 0);
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(blob->bytes.has_value());
  EXPECT_EQ(*blob->bytes, value);
  EXPECT_EQ(blob->size, value.size());
  EXPECT_FALSE(blob->checksum.has_value());
}

TEST_F(FileBlobStoreOpen, AFileHoldingAnotherKeyIs500) {
  store(*blobs_, "mine", 1, "value");
  fs::create_directories(dir_.path() / blob_directory(digest_of("theirs")));
  fs::rename(dir_.path() / blob_relative_path(digest_of("mine"), 1),
             dir_.path() / blob_relative_path(digest_of("theirs"), 1));
  auto blob = blobs_->open("theirs", 1);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().code, Errc::kInternal);
  EXPECT_NE(blob.error().message.find("holds another key"), std::string::npos)
      << blob.error().message;
}

TEST_F(FileBlobStoreOpen, ACorruptHeaderIs500) {
  const auto path = dir_.path() / blob_relative_path(digest_of("bad"), 1);
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << "not a header";
  auto blob = blobs_->open("bad", 1);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().code, Errc::kInternal);
}

// Both ways of publishing: renameat2(RENAME_NOREPLACE), and link(2) + unlink
// as on a filesystem without it.
class FileBlobStorePublish : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    FileBlobStore::TestSeams seams;
    seams.link_instead_of_rename = GetParam();
    auto opened = FileBlobStore::open_at(dir_.path(), seams);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    blobs_ = std::move(opened).value();
  }

  std::uint64_t files() {
    auto usage = blobs_->usage();
    EXPECT_TRUE(usage.ok());
    return usage.ok() ? usage->files : 0;
  }

  DataDir dir_;
  std::unique_ptr<FileBlobStore> blobs_;
};

INSTANTIATE_TEST_SUITE_P(, FileBlobStorePublish, ::testing::Bool(), [](const auto& param_info) {
  return param_info.param ? "Link" : "Rename";
});

TEST_P(FileBlobStorePublish, PublishesTheValueAndLeavesNoTempFile) {
  store(*blobs_, "key", 5, "the value");
  EXPECT_EQ(value_of(*blobs_, "key", 5), "the value");
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  EXPECT_EQ(files(), 1U);
}

TEST_P(FileBlobStorePublish, AStoredVersionIsNeverReplaced) {
  store(*blobs_, "key", 5, "committed copy");
  const auto replayed = publish_once(*blobs_, "key", 5, "replayed upload");
  ASSERT_FALSE(replayed.ok());
  EXPECT_EQ(replayed.error().code, Errc::kConflict);
  EXPECT_EQ(replayed.error().message,
            "version 5 of this key is already stored; PUT again through the master for a new "
            "version");
  EXPECT_EQ(value_of(*blobs_, "key", 5), "committed copy");
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  EXPECT_EQ(files(), 1U);
}

// A writer that published, synced and wrote `value` as `version` of `key`,
// or null (with a test failure).
std::unique_ptr<BlobWriter> published_writer(FileBlobStore& blobs, std::string_view key,
                                             std::uint64_t version, std::string_view value) {
  auto writer = blobs.begin_write(key, version);
  EXPECT_TRUE(writer.ok()) << writer.error().message;
  if (!writer) return nullptr;
  EXPECT_TRUE((*writer)->append(value).ok());
  EXPECT_TRUE((*writer)->sync().ok());
  if (auto published = (*writer)->publish(); !published) {
    ADD_FAILURE() << published.error().message;
    return nullptr;
  }
  return std::move(writer).value();
}

TEST_P(FileBlobStorePublish, DestroyingAWriterRemovesOnlyAnUnpublishedTempFile) {
  {
    auto abandoned = blobs_->begin_write("key", 1);
    ASSERT_TRUE(abandoned.ok()) << abandoned.error().message;
    ASSERT_TRUE((*abandoned)->append("never published").ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  // Its upload may have been committed meanwhile: only discard() removes it.
  ASSERT_NE(published_writer(*blobs_, "key", 2, "published"), nullptr);
  EXPECT_EQ(value_of(*blobs_, "key", 2), "published");
  EXPECT_EQ(files(), 1U);
}

TEST_P(FileBlobStorePublish, DiscardRemovesThePublishedVersionAndNothingElse) {
  store(*blobs_, "key", 1, "older");
  auto writer = published_writer(*blobs_, "key", 2, "not committed");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->discard().ok());
  EXPECT_EQ(blobs_->open("key", 2).error().code, Errc::kNotFound);
  EXPECT_EQ(value_of(*blobs_, "key", 1), "older");
  EXPECT_EQ(files(), 1U);
  writer.reset();
  EXPECT_EQ(value_of(*blobs_, "key", 1), "older");
}

TEST_P(FileBlobStorePublish, DiscardBeforePublishingRemovesTheTempFile) {
  auto writer = blobs_->begin_write("key", 1);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE((*writer)->append("abandoned").ok());
  ASSERT_TRUE((*writer)->discard().ok());
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  EXPECT_EQ(files(), 0U);
}

TEST_P(FileBlobStorePublish, DiscardAfterAConflictLeavesTheStoredCopy) {
  store(*blobs_, "key", 5, "committed copy");
  auto writer = blobs_->begin_write("key", 5);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE((*writer)->append("replayed upload").ok());
  ASSERT_TRUE((*writer)->sync().ok());
  ASSERT_EQ((*writer)->publish().error().code, Errc::kConflict);
  ASSERT_TRUE((*writer)->discard().ok());
  EXPECT_EQ(value_of(*blobs_, "key", 5), "committed copy");
  EXPECT_EQ(files(), 1U);
}

// The first key "probe-N" whose digest satisfies `wanted`.
std::string key_where(const std::function<bool(const KeyDigest&)>& wanted) {
  for (int i = 0;; ++i) {
    auto key = "probe-" + std::to_string(i);
    if (wanted(digest_of(key))) return key;
  }
}

// Another key in the same blobs/ab/cd folder as `key`.
std::string key_in_the_folder_of(std::string_view key) {
  const auto digest = digest_of(key);
  return key_where([&](const KeyDigest& other) {
    return other.bytes[0] == digest.bytes[0] && other.bytes[1] == digest.bytes[1] &&
           other.bytes != digest.bytes;
  });
}

// Records the folders the store syncs, in order, and fails the sync of one
// when told to.
class SyncLog {
 public:
  FileBlobStore::TestSeams seams() {
    FileBlobStore::TestSeams seams;
    seams.before_sync = [this](const fs::path& directory) -> Status {
      const std::lock_guard lock(mutex_);
      synced_.push_back(directory);
      if (directory == failing_) return Error{Errc::kInternal, "fsync failed (injected)"};
      return {};
    };
    return seams;
  }
  // The folders synced since the last call.
  std::vector<fs::path> take() {
    const std::lock_guard lock(mutex_);
    return std::exchange(synced_, {});
  }
  void fail(fs::path directory) {
    const std::lock_guard lock(mutex_);
    failing_ = std::move(directory);
  }

 private:
  std::mutex mutex_;
  std::vector<fs::path> synced_;
  fs::path failing_;
};

class FileBlobStoreDurability : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    blobs_.reset();
    auto opened = FileBlobStore::open_at(dir_.path(), log_.seams());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    blobs_ = std::move(opened).value();
  }

  fs::path blobs() const { return dir_.path() / kBlobsDirectory; }
  // blobs/ab and blobs/ab/cd for `key`.
  fs::path level1(std::string_view key) const {
    return blobs() / digest_of(key).hex().substr(0, 2);
  }
  fs::path level2(std::string_view key) const {
    return dir_.path() / blob_directory(digest_of(key));
  }

  DataDir dir_;
  SyncLog log_;
  std::unique_ptr<FileBlobStore> blobs_;
};

using Paths = std::vector<fs::path>;

TEST_F(FileBlobStoreDurability, OpeningSyncsTheDataFoldersFilesystem) {
  SyncLog log;
  const auto data = dir_.path() / "new" / "volume";
  ASSERT_TRUE(FileBlobStore::open_at(data, log.seams()).ok());
  EXPECT_EQ(log.take(), Paths{data});
  log.fail(data);
  const auto failed = FileBlobStore::open_at(data, log.seams());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
}

TEST_F(FileBlobStoreDurability, ANewFolderHasItsParentSyncedBeforeUse) {
  log_.take();
  store(*blobs_, "key", 1, "value");
  EXPECT_EQ(log_.take(), (Paths{blobs(), level1("key"), level2("key")}));
}

TEST_F(FileBlobStoreDurability, AFolderSomeoneElseMadeHasItsParentSyncedAnyway) {
  // As a concurrent writer leaves them between its mkdirs and its fsyncs.
  fs::create_directories(level2("key"));
  log_.take();
  store(*blobs_, "key", 1, "value");
  EXPECT_EQ(log_.take(), (Paths{blobs(), level1("key"), level2("key")}));
}

TEST_F(FileBlobStoreDurability, AFolderKnownDurableIsNotSyncedAgain) {
  store(*blobs_, "key", 1, "one");
  log_.take();
  store(*blobs_, "key", 2, "two");
  EXPECT_EQ(log_.take(), Paths{level2("key")});
  const auto hex = digest_of("key").hex();
  const auto sibling = key_where([&](const KeyDigest& other) {
    const auto other_hex = other.hex();
    return other_hex.substr(0, 2) == hex.substr(0, 2) && other_hex.substr(2, 2) != hex.substr(2, 2);
  });
  store(*blobs_, sibling, 1, "sibling");
  EXPECT_EQ(log_.take(), (Paths{level1(sibling), level2(sibling)}));
}

TEST_F(FileBlobStoreDurability, FoldersPresentAtOpenCountAsDurable) {
  store(*blobs_, "key", 1, "one");
  reopen();
  EXPECT_EQ(log_.take().back(), dir_.path());
  store(*blobs_, "key", 2, "two");
  EXPECT_EQ(log_.take(), Paths{level2("key")});
}

TEST_F(FileBlobStoreDurability, AFolderWhoseParentSyncFailedIsNotTrusted) {
  log_.fail(level1("key"));
  const auto failed = publish_once(*blobs_, "key", 1, "one");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  log_.fail({});
  log_.take();
  store(*blobs_, "key", 2, "two");
  EXPECT_EQ(log_.take(), (Paths{level1("key"), level2("key")}));
}

TEST_F(FileBlobStoreDurability, AFailedSyncOfTheFilesFolderUnpublishesIt) {
  store(*blobs_, "key", 1, "older");
  log_.fail(level2("key"));
  const auto failed = publish_once(*blobs_, "key", 2, "never durable");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::kInternal);
  EXPECT_EQ(blobs_->open("key", 2).error().code, Errc::kNotFound);
  EXPECT_EQ(value_of(*blobs_, "key", 1), "older");
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  auto usage = blobs_->usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->files, 1U);
}

TEST_F(FileBlobStoreDurability, AWriterFindingAFolderStillBeingMadeSyncsItsParentItself) {
  const std::string creator_key = "key";
  const auto other_key = key_in_the_folder_of(creator_key);
  const auto parent = level1(creator_key);
  std::mutex mutex;
  std::vector<std::pair<std::thread::id, fs::path>> synced;
  bool paused = false;
  std::binary_semaphore creator_paused{0};
  std::binary_semaphore resume_creator{0};
  FileBlobStore::TestSeams seams;
  // The first sync of blobs/ab, the creator's, waits: blobs/ab/cd exists,
  // and its entry is not yet durable.
  seams.before_sync = [&](const fs::path& directory) -> Status {
    bool pause = false;
    {
      const std::lock_guard lock(mutex);
      synced.emplace_back(std::this_thread::get_id(), directory);
      if (directory == parent && !paused) pause = paused = true;
    }
    if (pause) {
      creator_paused.release();
      resume_creator.acquire();
    }
    return {};
  };
  auto opened = FileBlobStore::open_at(dir_.path(), seams);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& blobs = **opened;
  synced.clear();  // the filesystem sync at open

  std::thread creator([&] { store(blobs, creator_key, 1, "creator's"); });
  const bool reached = creator_paused.try_acquire_for(std::chrono::seconds(60));
  if (reached) store(blobs, other_key, 1, "other's");
  resume_creator.release();
  creator.join();
  ASSERT_TRUE(reached) << "the creator never synced " << parent;

  std::vector<fs::path> by_other;
  for (const auto& [thread, directory] : synced) {
    if (thread == std::this_thread::get_id()) by_other.push_back(directory);
  }
  EXPECT_EQ(by_other, (Paths{parent, level2(other_key)}));
  EXPECT_EQ(value_of(blobs, creator_key, 1), "creator's");
  EXPECT_EQ(value_of(blobs, other_key, 1), "other's");
}

// ---------------------------------------------------------------------------
// The maintenance side: listing, delete markers, verification and quarantine.

class FileBlobStoreMaintenance : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    blobs_.reset();
    auto opened = FileBlobStore::open_at(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    blobs_ = std::move(opened).value();
  }

  // Every page from `after` on, `limit` at a time, checking each page's
  // shape; the entries in order.
  std::vector<StoredBlob> list_all(std::size_t limit, std::string after = {}) {
    std::vector<StoredBlob> all;
    for (int page = 0; page < 100000; ++page) {
      auto listing = blobs_->list(after, limit);
      EXPECT_TRUE(listing.ok()) << listing.error().message;
      if (!listing) return all;
      EXPECT_LE(listing->blobs.size(), limit);
      if (!listing->next.empty()) {
        // A full page, whose cursor is its last name.
        EXPECT_EQ(listing->blobs.size(), limit);
        EXPECT_EQ(listing->next, listing->blobs.back().name);
      }
      for (auto& blob : listing->blobs) all.push_back(std::move(blob));
      if (listing->next.empty()) return all;
      after = listing->next;
    }
    ADD_FAILURE() << "the listing never ended";
    return all;
  }

  static std::vector<std::string> names_of(const std::vector<StoredBlob>& blobs) {
    std::vector<std::string> names;
    for (const auto& blob : blobs) names.push_back(blob.name);
    return names;
  }

  std::uint64_t files() {
    auto usage = blobs_->usage();
    EXPECT_TRUE(usage.ok());
    return usage.ok() ? usage->files : 0;
  }

  fs::path value_path(std::string_view key, std::uint64_t version) const {
    return dir_.path() / blob_relative_path(digest_of(key), version);
  }

  DataDir dir_;
  std::unique_ptr<FileBlobStore> blobs_;
};

std::string name_of(std::string_view key, std::uint64_t version, bool marker = false) {
  return fs::path(marker ? marker_path_in_blobs_directory(digest_of(key), version)
                         : blob_path_in_blobs_directory(digest_of(key), version))
      .filename()
      .string();
}

TEST_F(FileBlobStoreMaintenance, ListsEveryFileInNameOrderAtEveryPageSize) {
  // Keys in folders of their own, three sharing one folder, several
  // versions of one key and a marker: 27 files over 22 folders.
  std::vector<std::pair<std::string, std::uint64_t>> values;
  for (int i = 0; i < 20; ++i) values.emplace_back("key-" + std::to_string(i), 7);
  const auto neighbour = key_in_the_folder_of("key-0");
  values.emplace_back(neighbour, 3);
  values.emplace_back(key_in_the_folder_of(neighbour), 4);
  values.emplace_back("key-1", 9);
  values.emplace_back("key-1", 12);
  values.emplace_back(std::string(kMaxKeyBytes, '\xff'), 1);
  values.emplace_back("a/b c%\x01", 2);
  std::vector<std::string> expected;
  for (const auto& [key, version] : values) {
    store(*blobs_, key, version, "value of " + key + std::to_string(version));
    expected.push_back(name_of(key, version));
  }
  ASSERT_TRUE(blobs_->put_marker("key-1", 10).ok());
  expected.push_back(name_of("key-1", 10, true));
  std::sort(expected.begin(), expected.end());

  for (std::size_t limit = 1; limit <= expected.size() + 1; ++limit) {
    EXPECT_EQ(names_of(list_all(limit)), expected) << "limit " << limit;
  }
  // Every entry describes its file.
  for (const auto& blob : list_all(1000)) {
    if (blob.marker) {
      EXPECT_EQ(blob.key, "key-1");
      EXPECT_EQ(blob.version, 10U);
      EXPECT_EQ(blob.size, 0U);
      EXPECT_FALSE(blob.checksum.has_value());
      continue;
    }
    const auto value = "value of " + blob.key + std::to_string(blob.version);
    EXPECT_EQ(blob.name, name_of(blob.key, blob.version));
    EXPECT_EQ(blob.size, value.size());
    EXPECT_EQ(blob.checksum, checksum_of(value));
    EXPECT_NEAR(static_cast<double>(blob.mtime),
                static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()),
                60);
  }
  EXPECT_NE(std::find(expected.begin(), expected.end(), name_of("a/b c%\x01", 2)), expected.end());
}

TEST_F(FileBlobStoreMaintenance, AnEmptyStoreListsNothing) {
  auto listing = blobs_->list("", 10);
  ASSERT_TRUE(listing.ok()) << listing.error().message;
  EXPECT_TRUE(listing->blobs.empty());
  EXPECT_EQ(listing->next, "");
}

TEST_F(FileBlobStoreMaintenance, ACursorInTheMiddleOfAFolderResumesJustAfterIt) {
  const std::string first = "key";
  const auto second = key_in_the_folder_of(first);
  const auto third = key_in_the_folder_of(second);
  std::map<std::string, std::string> key_of;  // by name, so in name order
  for (const auto& key : {first, second, third}) {
    store(*blobs_, key, 5, "v");
    key_of[name_of(key, 5)] = key;
  }
  std::vector<std::string> names;
  for (const auto& [name, key] : key_of) names.push_back(name);
  EXPECT_EQ(names_of(list_all(10, names[0])), (std::vector<std::string>{names[1], names[2]}));
  EXPECT_EQ(names_of(list_all(1, names[1])), (std::vector<std::string>{names[2]}));
  EXPECT_TRUE(list_all(10, names[2]).empty());
  // A cursor whose file went between two pages still resumes after it.
  ASSERT_TRUE(blobs_->remove(key_of[names[1]], std::nullopt, std::nullopt).ok());
  EXPECT_EQ(names_of(list_all(10, names[1])), (std::vector<std::string>{names[2]}));
  // A cursor just before a version's file, and the same version's marker.
  const auto& last = key_of[names[2]];
  ASSERT_TRUE(blobs_->put_marker(last, 5).ok());
  EXPECT_EQ(names_of(list_all(10, names[1])),
            (std::vector<std::string>{names[2], name_of(last, 5, true)}));
  EXPECT_EQ(names_of(list_all(10, names[2])), std::vector<std::string>{name_of(last, 5, true)});
}

TEST_F(FileBlobStoreMaintenance, ACursorSeeksToItsFolderWithoutReadingTheOnesBefore) {
  const auto early = key_where([](const KeyDigest& d) { return d.bytes[0] == 0x10; });
  const auto late = key_where([](const KeyDigest& d) { return d.bytes[0] == 0xe0; });
  store(*blobs_, early, 1, "early");
  store(*blobs_, late, 1, "late");
  // A level-1 "folder" that cannot be listed, before the late key's.
  std::ofstream(dir_.path() / kBlobsDirectory / "20") << "not a folder";
  const auto from_start = blobs_->list("", 10);
  ASSERT_FALSE(from_start.ok()) << "a listing that skipped a folder would pass for complete";
  EXPECT_EQ(from_start.error().code, Errc::kInternal);
  // From a cursor past it, the walk starts at the cursor's folder.
  const auto cursor = std::string("3000") + std::string(60, '0') + ".0000000000000001";
  auto listing = blobs_->list(cursor, 10);
  ASSERT_TRUE(listing.ok()) << listing.error().message;
  EXPECT_EQ(names_of(listing->blobs), std::vector<std::string>{name_of(late, 1)});
}

TEST_F(FileBlobStoreMaintenance, ACursorThatIsNotANameIsRefused) {
  for (const auto* after : {"x", "0", "zz00", "00z0", "0A00"}) {
    const auto listing = blobs_->list(after, 10);
    ASSERT_FALSE(listing.ok()) << after;
    EXPECT_EQ(listing.error().code, Errc::kBadInput) << after;
  }
  EXPECT_TRUE(blobs_->list("00ff", 10).ok());
}

TEST_F(FileBlobStoreMaintenance, ForeignAndMismatchedFilesAreSkipped) {
  store(*blobs_, "good", 1, "good value");
  store(*blobs_, "moved", 1, "value");
  const auto folder = dir_.path() / blob_directory(digest_of("good"));
  // Not kalavara names.
  std::ofstream(folder / "README") << "notes";
  std::ofstream(folder / (digest_of("good").hex() + ".000000000000000G")) << "x";
  // A kalavara name whose file holds another key.
  fs::create_directories(dir_.path() / blob_directory(digest_of("theirs")));
  fs::rename(value_path("moved", 1), value_path("theirs", 1));
  // A kalavara name whose header is garbage.
  std::ofstream(value_path("good", 2), std::ios::binary) << "not a header";
  // A header whose version is not its name's.
  store(*blobs_, "renumbered", 1, "value");
  fs::rename(value_path("renumbered", 1), value_path("renumbered", 3));
  EXPECT_EQ(names_of(list_all(1)), std::vector<std::string>{name_of("good", 1)});
}

TEST_F(FileBlobStoreMaintenance, MarkersAreListedNeverServedNotCountedAndRemovedUpToTheirVersion) {
  store(*blobs_, "key", 1, "one");
  store(*blobs_, "key", 3, "three");
  ASSERT_TRUE(blobs_->put_marker("key", 5).ok());
  ASSERT_TRUE(blobs_->put_marker("key", 5).ok()) << "a repeated marker is the same marker";
  EXPECT_TRUE(fs::is_empty(dir_.path() / "tmp"));
  EXPECT_EQ(files(), 2U);
  reopen();
  EXPECT_EQ(files(), 2U) << "counted at open: values only";

  // Never served: not as its version, not as the newest.
  EXPECT_EQ(blobs_->open("key", 5).error().code, Errc::kNotFound);
  EXPECT_EQ(value_of(*blobs_, "key", 3), "three");
  auto newest = blobs_->open("key", std::nullopt);
  ASSERT_TRUE(newest.ok()) << newest.error().message;
  ASSERT_TRUE(newest->bytes.has_value());
  EXPECT_EQ(*newest->bytes, "three");
  // A marker alone is no value.
  ASSERT_TRUE(blobs_->put_marker("deleted", 2).ok());
  EXPECT_EQ(blobs_->open("deleted", std::nullopt).error().code, Errc::kNotFound);

  // The marker's file: a header with the key and T, and no value.
  const auto marker_file =
      dir_.path() / kBlobsDirectory / marker_path_in_blobs_directory(digest_of("key"), 5);
  const auto bytes = [&] {
    std::ifstream in(marker_file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto header = decode_blob_header(bytes);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->key, "key");
  EXPECT_EQ(header->version, 5U);
  EXPECT_EQ(header->length, bytes.size());

  // A removal of exactly a version never takes a marker; up to it does.
  EXPECT_EQ(blobs_->remove("key", std::nullopt, 5).error().code, Errc::kNotFound);
  ASSERT_TRUE(blobs_->remove("key", 4, std::nullopt).ok());
  EXPECT_EQ(
      names_of(list_all(10)),
      (std::vector<std::string>{std::min(name_of("key", 5, true), name_of("deleted", 2, true)),
                                std::max(name_of("key", 5, true), name_of("deleted", 2, true))}));
  EXPECT_EQ(files(), 0U);
  ASSERT_TRUE(blobs_->remove("key", 5, std::nullopt).ok());
  EXPECT_FALSE(fs::exists(marker_file));
  EXPECT_EQ(blobs_->remove("key", 9, std::nullopt).error().code, Errc::kNotFound);
  ASSERT_TRUE(blobs_->remove("deleted", std::nullopt, std::nullopt).ok()) << "all of them";
  EXPECT_TRUE(list_all(10).empty());
}

// Flips one byte of a file, at `offset` from its start.
void flip_byte(const fs::path& path, std::uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  file.get(c);
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(c ^ 0x20));
}

TEST_F(FileBlobStoreMaintenance, VerifyFindsAnIntactCopyIntact) {
  const auto value = random_bytes(3 * 1024 * 1024 + 17);  // several read pieces
  store(*blobs_, "key", 4, value);
  auto verified = blobs_->verify("key", 4);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kIntact);
  EXPECT_EQ(value_of(*blobs_, "key", 4), value);
  EXPECT_EQ(blobs_->verify("key", 5).error().code, Errc::kNotFound);
  EXPECT_EQ(blobs_->verify("absent", 4).error().code, Errc::kNotFound);
  EXPECT_TRUE(fs::is_empty(dir_.path() / kQuarantineDirectory));
}

TEST_F(FileBlobStoreMaintenance, ACorruptCopyIsQuarantinedNeverServedListedOrCounted) {
  const auto value = random_bytes(200 * 1024);
  store(*blobs_, "key", 4, value);
  store(*blobs_, "key", 2, "older");
  const auto path = value_path("key", 4);
  flip_byte(path, kBlobFixedHeaderBytes + 3 + 150 * 1024);
  auto verified = blobs_->verify("key", 4);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kQuarantined);
  EXPECT_NE(verified->reason.find("checksum"), std::string::npos) << verified->reason;

  EXPECT_FALSE(fs::exists(path));
  const auto quarantined = dir_.path() / kQuarantineDirectory / name_of("key", 4);
  ASSERT_TRUE(fs::exists(quarantined));
  EXPECT_EQ(fs::file_size(quarantined), kBlobFixedHeaderBytes + 3 + value.size());
  EXPECT_EQ(blobs_->open("key", 4).error().code, Errc::kNotFound);
  EXPECT_EQ(value_of(*blobs_, "key", 2), "older");
  auto newest = blobs_->open("key", std::nullopt);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest->bytes, "older");
  EXPECT_EQ(names_of(list_all(10)), std::vector<std::string>{name_of("key", 2)});
  EXPECT_EQ(files(), 1U);
  EXPECT_EQ(blobs_->verify("key", 4).error().code, Errc::kNotFound);
  reopen();
  EXPECT_EQ(files(), 1U) << "the quarantine is outside the tree";

  // The same name quarantined again keeps the first one.
  store(*blobs_, "key", 4, value);
  flip_byte(value_path("key", 4), kBlobFixedHeaderBytes + 3);
  verified = blobs_->verify("key", 4);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kQuarantined);
  EXPECT_TRUE(fs::exists(quarantined));
  EXPECT_TRUE(fs::exists(quarantined.string() + ".1"));
}

TEST_F(FileBlobStoreMaintenance, ACopyWithAnUnreadableHeaderIsQuarantinedToo) {
  store(*blobs_, "key", 4, "value");
  flip_byte(value_path("key", 4), 0);  // the magic
  auto verified = blobs_->verify("key", 4);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kQuarantined);
  EXPECT_TRUE(fs::exists(dir_.path() / kQuarantineDirectory / name_of("key", 4)));

  store(*blobs_, "mine", 1, "value");
  fs::create_directories(dir_.path() / blob_directory(digest_of("theirs")));
  fs::rename(value_path("mine", 1), value_path("theirs", 1));
  verified = blobs_->verify("theirs", 1);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kQuarantined);
  EXPECT_NE(verified->reason.find("another key"), std::string::npos) << verified->reason;
}

TEST_F(FileBlobStoreMaintenance, AFormat1CopyCannotBeVerifiedAndStays) {
  const std::string key = "old";
  const std::string file = std::string("KLVB") + '\x01' + '\0' + '\x1b' + '\0' + '\x03' + '\0' +
                           std::string(6, '\0') + std::string(8, '\0') + key + "value";
  const auto path = value_path(key, 0);
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << file;
  auto verified = blobs_->verify(key, 0);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->outcome, Verification::Outcome::kUnverifiable);
  EXPECT_TRUE(fs::exists(path));
  // Listed without a checksum.
  const auto listed = list_all(10);
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_FALSE(listed[0].checksum.has_value());
  EXPECT_EQ(listed[0].size, 5U);
}

}  // namespace
}  // namespace kalavara
