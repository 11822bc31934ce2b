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
constexpr std::string_view kVersionFloorKey = "mversion-floor";

std::string prefixed(char prefix, std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  out.push_back(prefix);
  out.append(name);
  return out;
}

Error storage_error(std::string_view what, const rocksdb::Status& status) {
  return Error{500, "index " + std::string(what) + " failed: " + status.ToString()};
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
  // data blocks, and a block cache keeps hot blocks in memory.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::DB* raw = nullptr;
  const auto status = rocksdb::DB::Open(options, directory, &raw);
  if (!status.ok()) return storage_error("open of " + directory, status);
  return std::unique_ptr<RocksDbIndexStore>(
      new RocksDbIndexStore(std::unique_ptr<rocksdb::DB>(raw)));
}

Result<std::optional<IndexRecord>> RocksDbIndexStore::get(std::string_view key) {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), prefixed(kRecordPrefix, key), &value);
  if (status.IsNotFound()) return std::optional<IndexRecord>{};
  if (!status.ok()) return storage_error("read", status);
  auto record = decode_record(value);
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

Status RocksDbIndexStore::erase(std::string_view key) {
  const auto status = db_->Delete(synced(), prefixed(kRecordPrefix, key));
  if (!status.ok()) return storage_error("delete", status);
  return {};
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
  if (value.size() != 8) return Error{500, "corrupt version floor"};
  std::uint64_t floor = 0;
  for (const char c : value) floor = (floor << 8) | static_cast<std::uint8_t>(c);
  return floor;
}

Status RocksDbIndexStore::set_version_floor(std::uint64_t floor) {
  std::string value(8, '\0');
  for (int i = 7; i >= 0; --i, floor >>= 8)
    value[static_cast<std::size_t>(i)] = static_cast<char>(floor & 0xFF);
  const auto status = db_->Put(synced(), kVersionFloorKey, value);
  if (!status.ok()) return storage_error("version floor write", status);
  return {};
}

}  // namespace kalavara
