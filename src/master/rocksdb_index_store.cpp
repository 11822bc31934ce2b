#include "master/rocksdb_index_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>

#include "common/blocking.hpp"

namespace kalavara {
namespace {

constexpr char kRecordPrefix = 'k';
constexpr char kVolumePrefix = 'v';
constexpr char kRemovalPrefix = 'q';
constexpr char kCollectionPrefix = 'c';
constexpr char kLegacyPendingPrefix = 'p';
constexpr char kJobPrefix = 'j';
constexpr std::string_view kDraining = "draining";
constexpr char kScratchPrefix = 's';
constexpr std::string_view kVersionFloorKey = "mversion-floor";
constexpr std::string_view kAbsentFloorKey = "mabsent-floor";

void append_u64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

std::string encode_u64(std::uint64_t value) {
  std::string out;
  append_u64(out, value);
  return out;
}

std::uint64_t decode_u64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (const char c : bytes.substr(0, 8)) value = (value << 8) | static_cast<std::uint8_t>(c);
  return value;
}

std::string prefixed(char prefix, std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  out.push_back(prefix);
  out.append(name);
  return out;
}

std::string removal_prefix(std::string_view volume) {
  std::string out = prefixed(kRemovalPrefix, volume);
  out.push_back('\0');
  return out;
}

std::string removal_key(const PendingRemoval& removal) {
  auto out = removal_prefix(removal.volume);
  append_u64(out, removal.not_before);
  out.append(removal.key);
  return out;
}

std::string collection_key(const PendingCollection& collection) {
  std::string out(1, kCollectionPrefix);
  append_u64(out, collection.not_before);
  out.append(collection.key);
  return out;
}

Error storage_error(std::string_view what, const rocksdb::Status& status) {
  return Error{Errc::kInternal, "index " + std::string(what) + " failed: " + status.ToString()};
}

rocksdb::WriteOptions write_options(bool durable) {
  rocksdb::WriteOptions options;
  options.sync = durable;
  return options;
}

// The u64 stored at `key`, or nullopt when there is none.
Result<std::optional<std::uint64_t>> get_u64(rocksdb::DB& db, std::string_view key) {
  std::string value;
  const auto status = db.Get(rocksdb::ReadOptions(), key, &value);
  if (status.IsNotFound()) return std::optional<std::uint64_t>{};
  if (!status.ok()) return storage_error("read", status);
  if (value.size() != 8) return Error{Errc::kInternal, "corrupt index entry (8 bytes expected)"};
  return std::optional<std::uint64_t>{decode_u64(value)};
}

// Queues `value` at `key` unless an entry there already holds as much (the
// higher version covers the lower one).
rocksdb::Status put_at_least(rocksdb::DB& db, rocksdb::WriteBatch& batch, const std::string& key,
                             std::uint64_t value) {
  std::string existing;
  const auto status = db.Get(rocksdb::ReadOptions(), key, &existing);
  if (status.ok() && decode_u64(existing) >= value) return status;
  if (!status.ok() && !status.IsNotFound()) return status;
  return batch.Put(key, encode_u64(value));
}

// Removes the entry at `key` only if it still holds `value`.
rocksdb::Status delete_if_unchanged(rocksdb::DB& db, rocksdb::WriteBatch& batch,
                                    const std::string& key, std::uint64_t value) {
  std::string existing;
  const auto status = db.Get(rocksdb::ReadOptions(), key, &existing);
  if (status.IsNotFound()) return rocksdb::Status::OK();
  if (!status.ok() || decode_u64(existing) != value) return status;
  return batch.Delete(key);
}

// A removal done up to `up_to` covers one queued at or below it.
rocksdb::Status delete_if_covered(rocksdb::DB& db, rocksdb::WriteBatch& batch,
                                  const std::string& key, std::uint64_t up_to) {
  std::string existing;
  const auto status = db.Get(rocksdb::ReadOptions(), key, &existing);
  if (status.IsNotFound()) return rocksdb::Status::OK();
  if (!status.ok() || decode_u64(existing) > up_to) return status;
  return batch.Delete(key);
}

// Moves removals queued by older builds ("p" entries) into the "q" queue,
// due at once.
Status migrate_legacy_queue(rocksdb::DB& db) {
  rocksdb::WriteBatch batch;
  const std::string prefix(1, kLegacyPendingPrefix);
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const auto entry = it->key().ToStringView().substr(1);
    const auto nul = entry.find('\0');
    if (nul == std::string_view::npos) continue;
    PendingRemoval removal{std::string(entry.substr(0, nul)), std::string(entry.substr(nul + 1)),
                           decode_u64(it->value().ToStringView()), 0};
    auto status = batch.Put(removal_key(removal), encode_u64(removal.up_to));
    if (status.ok()) status = batch.Delete(it->key());
    if (!status.ok()) return storage_error("queue migration", status);
  }
  if (!it->status().ok()) return storage_error("queue migration", it->status());
  if (batch.Count() == 0) return {};
  const auto status = db.Write(write_options(true), &batch);
  if (!status.ok()) return storage_error("queue migration", status);
  return {};
}

}  // namespace

RocksDbIndexStore::RocksDbIndexStore(std::unique_ptr<rocksdb::DB> db,
                                     boost::asio::thread_pool& blocking, std::uint64_t absent_floor)
    : db_(std::move(db)), blocking_(blocking), absent_floor_(absent_floor) {}

RocksDbIndexStore::~RocksDbIndexStore() = default;

Result<std::unique_ptr<RocksDbIndexStore>> RocksDbIndexStore::open(
    const std::string& directory, std::size_t block_cache_bytes,
    boost::asio::thread_pool& blocking) {
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
  // Tickers only (block cache hits and misses, for /metrics): counters kept
  // per core; the timers and histograms, which cost on every operation, off.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);

  rocksdb::DB* raw = nullptr;
  const auto status = rocksdb::DB::Open(options, directory, &raw);
  if (!status.ok()) return storage_error("open of " + directory, status);
  std::unique_ptr<rocksdb::DB> db(raw);
  if (auto migrated = migrate_legacy_queue(*db); !migrated) return migrated.error();
  auto absent_floor = get_u64(*db, kAbsentFloorKey);
  if (!absent_floor) return absent_floor.error();
  return std::unique_ptr<RocksDbIndexStore>(
      new RocksDbIndexStore(std::move(db), blocking, absent_floor->value_or(0)));
}

namespace {

// Entries under `prefix`, counting up to `cap` (a figure past it is shown as
// `cap`: a queue that long needs looking at anyway).
std::uint64_t count_prefixed(rocksdb::DB& db, char prefix, std::uint64_t cap) {
  const std::string start(1, prefix);
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  std::uint64_t count = 0;
  for (it->Seek(start); it->Valid() && it->key().starts_with(start) && count < cap; it->Next()) {
    ++count;
  }
  return count;
}

}  // namespace

void RocksDbIndexStore::collect_metrics(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  const auto property = [this](const std::string& name) -> double {
    std::uint64_t value = 0;
    return db_->GetIntProperty(name, &value) ? static_cast<double>(value) : 0;
  };
  out.single("kalavara_index_keys", Type::kGauge,
             "Entries in the index (RocksDB's estimate; records, queues and settings).",
             property("rocksdb.estimate-num-keys"));
  out.single("kalavara_index_sst_bytes", Type::kGauge, "Size of the index's SST files, in bytes.",
             property("rocksdb.total-sst-files-size"));
  out.single("kalavara_index_live_data_bytes", Type::kGauge,
             "Estimated size of the index's live data, in bytes.",
             property("rocksdb.estimate-live-data-size"));
  out.single("kalavara_index_memtable_bytes", Type::kGauge,
             "Size of the index's memtables, in bytes.",
             property("rocksdb.cur-size-all-mem-tables"));
  out.single("kalavara_index_pending_compaction_bytes", Type::kGauge,
             "Bytes RocksDB estimates compaction has to rewrite.",
             property("rocksdb.estimate-pending-compaction-bytes"));
  out.single("kalavara_index_write_stopped", Type::kGauge,
             "1 while RocksDB stops writes (too many memtables or level-0 files).",
             property("rocksdb.is-write-stopped"));
  std::map<std::string, std::string> stats;
  double stops = 0;
  double slowdowns = 0;
  if (db_->GetMapProperty("rocksdb.cfstats", &stats)) {
    const auto number = [&stats](const std::string& key) {
      const auto found = stats.find(key);
      return found == stats.end() ? 0.0 : std::strtod(found->second.c_str(), nullptr);
    };
    stops = number("io_stalls.total_stop");
    slowdowns = number("io_stalls.total_slowdown");
  }
  out.family("kalavara_index_write_stalls_total", Type::kCounter,
             "Times RocksDB stopped or slowed down writes, by kind.");
  out.sample("kalavara_index_write_stalls_total", {{"kind", "stop"}}, stops);
  out.sample("kalavara_index_write_stalls_total", {{"kind", "slowdown"}}, slowdowns);
  if (const auto statistics = db_->GetOptions().statistics) {
    out.single("kalavara_index_block_cache_hits_total", Type::kCounter,
               "Index lookups that found their block in the block cache.",
               static_cast<double>(statistics->getTickerCount(rocksdb::BLOCK_CACHE_HIT)));
    out.single("kalavara_index_block_cache_misses_total", Type::kCounter,
               "Index lookups that had to read their block from disk.",
               static_cast<double>(statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS)));
  }
  constexpr std::uint64_t kCountCap = 1'000'000;
  out.single("kalavara_index_pending_removals", Type::kGauge,
             "Copies queued for removal from volumes (deletes and replaced versions), up to "
             "1000000.",
             static_cast<double>(count_prefixed(*db_, kRemovalPrefix, kCountCap)));
  out.single("kalavara_index_pending_collections", Type::kGauge,
             "Tombstones waiting for their removals before they are collected, up to 1000000.",
             static_cast<double>(count_prefixed(*db_, kCollectionPrefix, kCountCap)));
}

Status RocksDbIndexStore::compact() {
  const auto status = db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr);
  if (!status.ok()) return storage_error("compaction", status);
  return {};
}

Status RocksDbIndexStore::put_batch(
    const std::vector<std::pair<std::string, IndexRecord>>& records) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, record] : records) {
    const auto status = batch.Put(prefixed(kRecordPrefix, key), encode_record(record));
    if (!status.ok()) return storage_error("batch", status);
  }
  const auto status = db_->Write(write_options(true), &batch);
  if (!status.ok()) return storage_error("batch write", status);
  return {};
}

Result<bool> RocksDbIndexStore::holds_key_records() {
  const std::string prefix(1, kRecordPrefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(prefix);
  if (!it->status().ok()) return storage_error("record scan", it->status());
  return it->Valid() && it->key().starts_with(prefix);
}

Status RocksDbIndexStore::raise_absent_floor(std::uint64_t floor) {
  std::lock_guard lock(absent_floor_mutex_);
  if (floor <= absent_floor_.load()) return {};
  const auto status = db_->Put(write_options(true), kAbsentFloorKey, encode_u64(floor));
  if (!status.ok()) return storage_error("absent floor write", status);
  absent_floor_.store(floor);
  return {};
}

Status RocksDbIndexStore::put_scratch(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : entries) {
    const auto status = batch.Put(prefixed(kScratchPrefix, key), value);
    if (!status.ok()) return storage_error("scratch batch", status);
  }
  const auto status = db_->Write(write_options(false), &batch);
  if (!status.ok()) return storage_error("scratch write", status);
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> RocksDbIndexStore::scratch_page(
    std::string_view after, std::size_t limit) {
  const std::string prefix(1, kScratchPrefix);
  const auto start = prefixed(kScratchPrefix, after);
  std::vector<std::pair<std::string, std::string>> page;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(start);
  if (it->Valid() && it->key() == start) it->Next();
  for (; it->Valid() && it->key().starts_with(prefix) && page.size() < limit; it->Next()) {
    page.emplace_back(it->key().ToStringView().substr(1), it->value().ToStringView());
  }
  if (!it->status().ok()) return storage_error("scratch scan", it->status());
  return page;
}

Status RocksDbIndexStore::clear_scratch() {
  const std::string begin(1, kScratchPrefix);
  const std::string end(1, kScratchPrefix + 1);
  auto status = db_->DeleteRange(write_options(true), db_->DefaultColumnFamily(), begin, end);
  if (!status.ok()) return storage_error("scratch removal", status);
  const rocksdb::Slice from(begin);
  const rocksdb::Slice to(end);
  status = db_->CompactRange(rocksdb::CompactRangeOptions(), &from, &to);
  if (!status.ok()) return storage_error("scratch compaction", status);
  return {};
}

RocksDbIndexStore::QueueFloor& RocksDbIndexStore::floor_of(const std::string& queue) {
  return queue_floors_[queue];
}

void RocksDbIndexStore::lower_queue_floor(const std::string& queue, std::uint64_t time) {
  std::lock_guard lock(queue_floors_mutex_);
  auto& floor = floor_of(queue);
  floor.time = std::min(floor.time, time);
  ++floor.generation;
}

RocksDbIndexStore::QueueFloor RocksDbIndexStore::queue_floor(const std::string& queue) {
  std::lock_guard lock(queue_floors_mutex_);
  return floor_of(queue);
}

void RocksDbIndexStore::raise_queue_floor(const std::string& queue, const QueueFloor& seen,
                                          std::uint64_t time) {
  std::lock_guard lock(queue_floors_mutex_);
  auto& floor = floor_of(queue);
  if (floor.generation == seen.generation) floor.time = std::max(floor.time, time);
}

std::mutex& RocksDbIndexStore::stripe_of(std::string_view key) {
  return stripes_[std::hash<std::string_view>{}(key) % stripes_.size()];
}

Result<RecordRead> RocksDbIndexStore::read_blocking(std::string_view key) {
  rocksdb::PinnableSlice value;
  const auto status = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(),
                               prefixed(kRecordPrefix, key), &value);
  RecordRead read;
  if (status.IsNotFound()) {
    read.absent_floor = absent_floor_.load();
    return read;
  }
  if (!status.ok()) return storage_error("read", status);
  auto record = decode_record(value.ToStringView());
  if (!record) return record.error();
  read.record = std::move(record).value();
  return read;
}

IndexStore::Async<RecordRead> RocksDbIndexStore::read(std::string_view key) {
  // Memory only (memtable, block cache, open tables' filters): no I/O, so it
  // may run on the io thread. Pinned: decoded straight from the cached block.
  rocksdb::ReadOptions memory_only;
  memory_only.read_tier = rocksdb::kBlockCacheTier;
  rocksdb::PinnableSlice value;
  const auto status =
      db_->Get(memory_only, db_->DefaultColumnFamily(), prefixed(kRecordPrefix, key), &value);
  if (status.IsNotFound()) {
    RecordRead read;
    // Loaded after the record's absence was seen: see absent_floor_.
    read.absent_floor = absent_floor_.load();
    co_return read;
  }
  if (status.ok()) {
    auto record = decode_record(value.ToStringView());
    if (!record) co_return record.error();
    RecordRead read;
    read.record = std::move(record).value();
    co_return read;
  }
  if (!status.IsIncomplete()) co_return storage_error("read", status);
  Result<RecordRead> read = RecordRead{};
  co_await run_blocking(blocking_, [&] { read = read_blocking(key); });
  co_return read;
}

Result<bool> RocksDbIndexStore::apply_blocking(const KeyMutation& mutation) {
  std::lock_guard lock(stripe_of(mutation.key));
  const auto record_key = prefixed(kRecordPrefix, mutation.key);
  rocksdb::WriteBatch batch;
  rocksdb::Status status;
  if (mutation.expected) {
    auto current = read_blocking(mutation.key);
    if (!current) return current.error();
    if (current->record != mutation.expected->record) return false;
    status = mutation.record ? batch.Put(record_key, encode_record(*mutation.record))
                             : batch.Delete(record_key);
  }
  for (const auto& removal : mutation.queue) {
    if (status.ok()) status = put_at_least(*db_, batch, removal_key(removal), removal.up_to);
  }
  for (const auto& removal : mutation.cleared) {
    if (status.ok()) status = delete_if_covered(*db_, batch, removal_key(removal), removal.up_to);
  }
  for (const auto& collection : mutation.collect) {
    if (status.ok()) {
      status = put_at_least(*db_, batch, collection_key(collection), collection.version);
    }
  }
  for (const auto& collection : mutation.collected) {
    if (status.ok()) {
      status = delete_if_unchanged(*db_, batch, collection_key(collection), collection.version);
    }
  }
  if (!status.ok()) return storage_error("batch", status);
  if (batch.Count() == 0 && mutation.raise_absent_floor <= absent_floor_.load()) return true;
  // Before the entries can be seen: a scan that started above them must not
  // raise its queue's floor past them.
  for (const auto& removal : mutation.queue) {
    lower_queue_floor(removal_prefix(removal.volume), removal.not_before);
  }
  for (const auto& collection : mutation.collect) {
    lower_queue_floor(std::string(1, kCollectionPrefix), collection.not_before);
  }

  std::unique_lock<std::mutex> floor_lock;
  if (mutation.raise_absent_floor > absent_floor_.load()) {
    floor_lock = std::unique_lock(absent_floor_mutex_);
    // Raised in memory first: from the moment the erase below is visible, a
    // read that finds no record must also find the floor that replaces it.
    // If the write then fails, the floor stays raised, which only refuses
    // more.
    const auto floor = std::max(absent_floor_.load(), mutation.raise_absent_floor);
    absent_floor_.store(floor);
    status = batch.Put(kAbsentFloorKey, encode_u64(floor));
    if (!status.ok()) return storage_error("batch", status);
  }
  status = db_->Write(write_options(mutation.durable), &batch);
  if (!status.ok()) return storage_error("write", status);
  return true;
}

IndexStore::Async<bool> RocksDbIndexStore::apply(const KeyMutation& mutation) {
  Result<bool> applied = false;
  co_await run_blocking(blocking_, [&] { applied = apply_blocking(mutation); });
  co_return applied;
}

IndexStore::Async<KeyPage> RocksDbIndexStore::list(std::string_view prefix, std::string_view start,
                                                   std::size_t limit) {
  Result<KeyPage> result = KeyPage{};
  co_await run_blocking(blocking_, [&] {
    const auto first = prefixed(kRecordPrefix, std::max(prefix, start));
    const auto wanted = prefixed(kRecordPrefix, prefix);
    KeyPage page;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(first); it->Valid() && it->key().starts_with(wanted); it->Next()) {
      if (!encoded_record_is_committed(it->value().ToStringView())) continue;
      auto key = it->key().ToStringView().substr(1);
      if (page.keys.size() == limit) {
        page.next.assign(key);
        break;
      }
      page.keys.emplace_back(key);
    }
    if (!it->status().ok()) {
      result = storage_error("listing", it->status());
    } else {
      result = std::move(page);
    }
  });
  co_return result;
}

IndexStore::Async<std::vector<PendingRemoval>> RocksDbIndexStore::due_removals(
    std::string_view volume, std::uint64_t now, std::size_t limit,
    const std::optional<PendingRemoval>& after) {
  Result<std::vector<PendingRemoval>> result = std::vector<PendingRemoval>{};
  co_await run_blocking(blocking_, [&] {
    std::vector<PendingRemoval> due;
    const auto prefix = removal_prefix(volume);
    const auto floor = queue_floor(prefix);
    std::string start = prefix;
    if (after) {
      start = removal_key(*after);
    } else {
      append_u64(start, floor.time);
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(start);
    if (after && it->Valid() && it->key() == start) it->Next();
    for (; it->Valid() && it->key().starts_with(prefix) && due.size() < limit; it->Next()) {
      const auto rest = it->key().ToStringView().substr(prefix.size());
      if (rest.size() < 8) continue;
      const auto not_before = decode_u64(rest);
      if (not_before > now) break;  // in time order: nothing later is due either
      due.push_back({std::string(volume), std::string(rest.substr(8)),
                     decode_u64(it->value().ToStringView()), not_before});
    }
    if (!it->status().ok()) {
      result = storage_error("removal queue scan", it->status());
      return;
    }
    // Nothing live before the first entry found, or before `now` if none.
    if (!after) raise_queue_floor(prefix, floor, due.empty() ? now : due.front().not_before);
    result = std::move(due);
  });
  co_return result;
}

IndexStore::Async<std::vector<PendingCollection>> RocksDbIndexStore::due_collections(
    std::uint64_t now, std::size_t limit) {
  Result<std::vector<PendingCollection>> result = std::vector<PendingCollection>{};
  co_await run_blocking(blocking_, [&] {
    std::vector<PendingCollection> due;
    const std::string prefix(1, kCollectionPrefix);
    const auto floor = queue_floor(prefix);
    auto start = prefix;
    append_u64(start, floor.time);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(start); it->Valid() && it->key().starts_with(prefix) && due.size() < limit;
         it->Next()) {
      const auto rest = it->key().ToStringView().substr(1);
      if (rest.size() < 8) continue;
      const auto not_before = decode_u64(rest);
      if (not_before > now) break;
      due.push_back(
          {std::string(rest.substr(8)), decode_u64(it->value().ToStringView()), not_before});
    }
    if (!it->status().ok()) {
      result = storage_error("collection queue scan", it->status());
      return;
    }
    raise_queue_floor(prefix, floor, due.empty() ? now : due.front().not_before);
    result = std::move(due);
  });
  co_return result;
}

IndexStore::Async<std::vector<KeyRecord>> RocksDbIndexStore::scan(std::string_view after,
                                                                  std::size_t limit) {
  Result<std::vector<KeyRecord>> result = std::vector<KeyRecord>{};
  co_await run_blocking(blocking_, [&] {
    std::vector<KeyRecord> records;
    const std::string prefix(1, kRecordPrefix);
    const auto start = prefixed(kRecordPrefix, after);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(start);
    if (!after.empty() && it->Valid() && it->key() == start) it->Next();
    for (; it->Valid() && it->key().starts_with(prefix) && records.size() < limit; it->Next()) {
      auto record = decode_record(it->value().ToStringView());
      if (!record) {
        result = record.error();
        return;
      }
      records.push_back({std::string(it->key().ToStringView().substr(1)), std::move(*record)});
    }
    if (!it->status().ok()) {
      result = storage_error("index scan", it->status());
    } else {
      result = std::move(records);
    }
  });
  co_return result;
}

IndexStore::Async<std::vector<RegisteredVolume>> RocksDbIndexStore::volumes() {
  Result<std::vector<RegisteredVolume>> result = std::vector<RegisteredVolume>{};
  co_await run_blocking(blocking_, [&] {
    std::vector<RegisteredVolume> volumes;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const std::string start(1, kVolumePrefix);
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      volumes.push_back({std::string(it->key().ToStringView().substr(1)),
                         it->value().ToStringView() == kDraining ? VolumeState::kDraining
                                                                 : VolumeState::kActive});
    }
    if (!it->status().ok()) {
      result = storage_error("volume scan", it->status());
    } else {
      result = std::move(volumes);
    }
  });
  co_return result;
}

boost::asio::awaitable<Status> RocksDbIndexStore::put_volume(const RegisteredVolume& volume) {
  Status result;
  co_await run_blocking(blocking_, [&] {
    const auto status =
        db_->Put(write_options(true), prefixed(kVolumePrefix, volume.url),
                 volume.state == VolumeState::kDraining ? kDraining : std::string_view{});
    if (!status.ok()) result = storage_error("volume registration", status);
  });
  co_return result;
}

boost::asio::awaitable<Status> RocksDbIndexStore::remove_volume(std::string_view url) {
  Status result;
  co_await run_blocking(blocking_, [&] {
    const auto status = db_->Delete(write_options(true), prefixed(kVolumePrefix, url));
    if (!status.ok()) result = storage_error("volume removal", status);
  });
  co_return result;
}

IndexStore::Async<std::vector<std::string>> RocksDbIndexStore::jobs() {
  Result<std::vector<std::string>> result = std::vector<std::string>{};
  co_await run_blocking(blocking_, [&] {
    std::vector<std::string> jobs;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const std::string start(1, kJobPrefix);
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      jobs.emplace_back(it->value().ToStringView());
    }
    if (!it->status().ok()) {
      result = storage_error("job scan", it->status());
    } else {
      result = std::move(jobs);
    }
  });
  co_return result;
}

boost::asio::awaitable<Status> RocksDbIndexStore::put_job(std::string_view id,
                                                          std::string_view state) {
  Status result;
  co_await run_blocking(blocking_, [&] {
    const auto status = db_->Put(write_options(true), prefixed(kJobPrefix, id), state);
    if (!status.ok()) result = storage_error("job state write", status);
  });
  co_return result;
}

IndexStore::Async<std::uint64_t> RocksDbIndexStore::version_floor() {
  Result<std::uint64_t> result = std::uint64_t{0};
  co_await run_blocking(blocking_, [&] {
    auto floor = get_u64(*db_, kVersionFloorKey);
    if (!floor) {
      result = floor.error();
    } else {
      result = floor->value_or(0);
    }
  });
  co_return result;
}

IndexStore::Async<std::uint64_t> RocksDbIndexStore::raise_version_floor(std::uint64_t floor) {
  Result<std::uint64_t> result = std::uint64_t{0};
  co_await run_blocking(blocking_, [&] {
    std::lock_guard lock(version_floor_mutex_);
    auto stored = get_u64(*db_, kVersionFloorKey);
    if (!stored) {
      result = stored.error();
      return;
    }
    if (stored->value_or(0) >= floor) {
      result = **stored;
      return;
    }
    const auto status = db_->Put(write_options(true), kVersionFloorKey, encode_u64(floor));
    if (!status.ok()) {
      result = storage_error("version floor write", status);
    } else {
      result = floor;
    }
  });
  co_return result;
}

Result<std::uint64_t> RocksDbIndexStore::write_checkpoint(const std::string& directory) {
  rocksdb::Checkpoint* raw = nullptr;
  auto status = rocksdb::Checkpoint::Create(db_.get(), &raw);
  if (!status.ok()) return storage_error("checkpoint", status);
  const std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  std::uint64_t sequence = 0;
  // 0: the memtable is always flushed first, so every write acknowledged
  // before this call, synced or not, is in the copied tables; the WAL copied
  // with them holds only writes that came during the checkpoint, up to a
  // point (a torn last record is dropped when the copy is opened).
  status = checkpoint->CreateCheckpoint(directory, 0, &sequence);
  if (status.IsNoSpace()) {
    return Error{Errc::kNoSpace, "no space left for the checkpoint: " + status.ToString()};
  }
  if (!status.ok()) return storage_error("checkpoint", status);
  return sequence;
}

}  // namespace kalavara
