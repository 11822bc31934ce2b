#include "master/rocksdb_index_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

namespace kalavara {
namespace {

constexpr char kRecordPrefix = 'k';
constexpr char kVolumePrefix = 'v';
constexpr char kPendingPrefix = 'p';
constexpr std::string_view kVersionFloorKey = "mversion-floor";

std::string pending_key(std::string_view volume, std::string_view key) {
  std::string out(1, kPendingPrefix);
  out.append(volume);
  out.push_back('\0');
  out.append(key);
  return out;
}

std::string encode_u64(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xFF);
  }
  return out;
}

std::uint64_t decode_u64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (const char c : bytes) value = (value << 8) | static_cast<std::uint8_t>(c);
  return value;
}

std::string prefixed(char prefix, std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  out.push_back(prefix);
  out.append(name);
  return out;
}

Error storage_error(std::string_view what, const rocksdb::Status& status) {
  return Error{Errc::kInternal, "index " + std::string(what) + " failed: " + status.ToString()};
}

rocksdb::WriteOptions synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

}  // namespace

RocksDbIndexStore::RocksDbIndexStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
RocksDbIndexStore::~RocksDbIndexStore() = default;

Result<std::unique_ptr<RocksDbIndexStore>> RocksDbIndexStore::open(const std::string& directory,
                                                                   std::size_t block_cache_bytes) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  // Point lookups dominate (one per GET): bloom filters let a miss skip the
  // data blocks, and a block cache keeps hot blocks in memory. Index and
  // filter blocks stay with their open tables instead of in the cache: in a
  // cache they compete with data blocks, and at 10M keys they were evicted
  // and re-read on nearly every lookup (about 1.5 MiB of them per million
  // keys is the memory this costs).
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // A hash index inside each data block finds a key without the binary
  // search over restart points, which was the largest RocksDB cost of a GET.
  table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  table.data_block_hash_table_util_ratio = 0.75;
  // The hash index points at a restart interval, which is then scanned key
  // by key: short intervals make that scan short, for slightly larger blocks.
  table.block_restart_interval = 4;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.cache_index_and_filter_blocks = false;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // A bloom filter over the memtable lets a lookup skip it when the key was
  // not written recently (most GETs, and every missing key).
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.02;

  rocksdb::DB* raw = nullptr;
  const auto status = rocksdb::DB::Open(options, directory, &raw);
  if (!status.ok()) return storage_error("open of " + directory, status);
  return std::unique_ptr<RocksDbIndexStore>(
      new RocksDbIndexStore(std::unique_ptr<rocksdb::DB>(raw)));
}

Status RocksDbIndexStore::compact() {
  const auto status = db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr);
  if (!status.ok()) return storage_error("compaction", status);
  return {};
}

Result<std::optional<IndexRecord>> RocksDbIndexStore::get(std::string_view key) {
  // Pinned: the value is decoded straight from the cached block, not copied.
  rocksdb::PinnableSlice value;
  const auto status = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(),
                               prefixed(kRecordPrefix, key), &value);
  if (status.IsNotFound()) return std::optional<IndexRecord>{};
  if (!status.ok()) return storage_error("read", status);
  auto record = decode_record(value.ToStringView());
  if (!record) return record.error();
  return std::optional<IndexRecord>(std::move(record).value());
}

Status RocksDbIndexStore::put(std::string_view key, const IndexRecord& record) {
  const auto status = db_->Put(synced(), prefixed(kRecordPrefix, key), encode_record(record));
  if (!status.ok()) return storage_error("write", status);
  return {};
}

Status RocksDbIndexStore::put_batch(
    const std::vector<std::pair<std::string, IndexRecord>>& records) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, record] : records) {
    const auto status = batch.Put(prefixed(kRecordPrefix, key), encode_record(record));
    if (!status.ok()) return storage_error("batch", status);
  }
  const auto status = db_->Write(synced(), &batch);
  if (!status.ok()) return storage_error("batch write", status);
  return {};
}

Result<KeyPage> RocksDbIndexStore::list(std::string_view prefix, std::string_view start,
                                        std::size_t limit) {
  const auto first = prefixed(kRecordPrefix, std::max(prefix, start));
  const auto wanted = prefixed(kRecordPrefix, prefix);
  KeyPage page;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(first); it->Valid() && it->key().starts_with(wanted); it->Next()) {
    auto key = it->key().ToStringView().substr(1);
    if (page.keys.size() == limit) {
      page.next.assign(key);
      break;
    }
    page.keys.emplace_back(key);
  }
  if (!it->status().ok()) return storage_error("listing", it->status());
  return page;
}

Result<std::vector<std::string>> RocksDbIndexStore::volumes() {
  std::vector<std::string> urls;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kVolumePrefix);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    urls.emplace_back(it->key().ToStringView().substr(1));
  }
  if (!it->status().ok()) return storage_error("volume scan", it->status());
  return urls;
}

Status RocksDbIndexStore::add_volume(std::string_view url) {
  const auto status = db_->Put(synced(), prefixed(kVolumePrefix, url), "");
  if (!status.ok()) return storage_error("volume registration", status);
  return {};
}

}  // namespace kalavara

namespace kalavara {

Result<std::uint64_t> RocksDbIndexStore::version_floor() {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), kVersionFloorKey, &value);
  if (status.IsNotFound()) return std::uint64_t{0};
  if (!status.ok()) return storage_error("read", status);
  if (value.size() != 8) return Error{Errc::kInternal, "corrupt version floor"};
  return decode_u64(value);
}

Status RocksDbIndexStore::set_version_floor(std::uint64_t floor) {
  const auto status = db_->Put(synced(), kVersionFloorKey, encode_u64(floor));
  if (!status.ok()) return storage_error("version floor write", status);
  return {};
}

}  // namespace kalavara

namespace kalavara {

Status RocksDbIndexStore::erase_and_queue(std::string_view key,
                                          const std::vector<PendingDelete>& pending) {
  rocksdb::WriteBatch batch;
  auto status = batch.Delete(prefixed(kRecordPrefix, key));
  for (const auto& entry : pending) {
    if (!status.ok()) break;
    status = batch.Put(pending_key(entry.volume, entry.key), encode_u64(entry.version));
  }
  if (status.ok()) status = db_->Write(synced(), &batch);
  if (!status.ok()) return storage_error("delete", status);
  return {};
}

Status RocksDbIndexStore::queue_delete(const PendingDelete& pending) {
  const auto status =
      db_->Put(synced(), pending_key(pending.volume, pending.key), encode_u64(pending.version));
  if (!status.ok()) return storage_error("pending delete write", status);
  return {};
}

Result<std::vector<PendingDelete>> RocksDbIndexStore::pending_deletes(std::string_view volume,
                                                                      std::size_t limit) {
  std::vector<PendingDelete> pending;
  const auto prefix = pending_key(volume, "");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && pending.size() < limit;
       it->Next()) {
    pending.push_back({std::string(volume),
                       std::string(it->key().ToStringView().substr(prefix.size())),
                       decode_u64(it->value().ToStringView())});
  }
  if (!it->status().ok()) return storage_error("pending delete scan", it->status());
  return pending;
}

Status RocksDbIndexStore::clear_pending(const PendingDelete& applied) {
  const auto key = pending_key(applied.volume, applied.key);
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (status.IsNotFound()) return {};
  if (status.ok() && decode_u64(value) > applied.version) return {};  // replaced by a newer one
  if (status.ok()) status = db_->Delete(synced(), key);
  if (!status.ok()) return storage_error("pending delete removal", status);
  return {};
}

}  // namespace kalavara
