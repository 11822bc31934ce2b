// IndexStore on an embedded RocksDB. Keys (byte order matters: records stay
// in key order for listing, queues in time order for their scans):
//
//   "k" + key                                  the key's IndexRecord
//   "q" + volume + NUL + be64(not_before) + key  a pending removal: be64(up_to)
//   "c" + be64(not_before) + key               a tombstone collection: be64(version)
//   "v" + volume                               a registered volume: "" active, "draining"
//   "j" + job id                               a maintenance job's state (JSON)
//   "mversion-floor"                           be64: the version floor
//   "mabsent-floor"                            be64: the floor of absent records
//   "s" + ...                                  scratch space of an offline tool
//                                              (rebuild); nothing else reads it
//
// (Older builds queued removals as "p" + volume + NUL + key → be64(version);
// open() moves them into the "q" queue, due at once.)
//
// apply() is compare-and-put under a per-key stripe lock, taken only on the
// blocking pool, never on an io thread, and held across the write: the
// compare, the queue merges and the write of one key are one step. Durable
// writes are synced (the WAL fsynced before the call returns); RocksDB groups
// concurrent synced writes into one fsync.
//
// read() looks in memory first (memtable and block cache) on the calling
// thread, which is all a GET usually needs; only when the record's block
// must come from disk does it move to the blocking pool.
//
// write_checkpoint() is a RocksDB checkpoint (see CheckpointWriter): the
// memtable is flushed first, then the table files are hard-linked into the
// folder (copied when it is on another filesystem) and the rest copied.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.hpp"
#include "master/checkpoint_writer.hpp"
#include "master/index_store.hpp"

namespace rocksdb {
class DB;
}

namespace kalavara {

class RocksDbIndexStore final : public IndexStore, public CheckpointWriter {
 public:
  // Opens (creating if missing) the index in `directory`; blocking work runs
  // on `blocking`, which must outlive the store and be joined before it is
  // destroyed. Fails with kInternal and RocksDB's reason, e.g. when another
  // process holds the directory's lock. Blocks: call at start-up.
  static Result<std::unique_ptr<RocksDbIndexStore>> open(const std::string& directory,
                                                         std::size_t block_cache_bytes,
                                                         boost::asio::thread_pool& blocking);
  ~RocksDbIndexStore() override;

  // Bulk loading (benchmarks, rebuild), blocking: stores committed `records`
  // in one durable, atomic batch, and compacts the whole index.
  Status put_batch(const std::vector<std::pair<std::string, IndexRecord>>& records);
  Status compact();

  // Offline work on a stopped master's index (rebuild), blocking.
  //
  // Whether any key has a record (committed or tombstone).
  Result<bool> holds_key_records();
  // Raises the floor of absent records durably to at least `floor`.
  Status raise_absent_floor(std::uint64_t floor);
  // A scratch space under its own prefix, which no other part of the index
  // reads, for bulk work that must not hold its data in memory: entries are
  // written in unsynced batches (a crash loses scratch, which is rebuilt
  // anyway), read back in key order a page at a time, and cleared at the
  // end. Keys are the caller's, without the prefix.
  Status put_scratch(const std::vector<std::pair<std::string, std::string>>& entries);
  // Up to `limit` entries in key order, strictly after `after` ("" for the
  // first).
  Result<std::vector<std::pair<std::string, std::string>>> scratch_page(std::string_view after,
                                                                        std::size_t limit);
  // Removes every scratch entry, durably, and compacts their range away.
  Status clear_scratch();

  Async<RecordRead> read(std::string_view key) override;
  Async<bool> apply(const KeyMutation& mutation) override;
  Async<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit) override;
  Async<std::vector<PendingRemoval>> due_removals(
      std::string_view volume, std::uint64_t now, std::size_t limit,
      const std::optional<PendingRemoval>& after) override;
  Async<std::vector<PendingCollection>> due_collections(std::uint64_t now,
                                                        std::size_t limit) override;
  Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit) override;
  Async<std::vector<RegisteredVolume>> volumes() override;
  boost::asio::awaitable<Status> put_volume(const RegisteredVolume& volume) override;
  boost::asio::awaitable<Status> remove_volume(std::string_view url) override;
  Async<std::vector<std::string>> jobs() override;
  boost::asio::awaitable<Status> put_job(std::string_view id, std::string_view state) override;
  Async<std::uint64_t> version_floor() override;
  Async<std::uint64_t> raise_version_floor(std::uint64_t floor) override;

  // Writes the kalavara_index_* families: keys, sizes, write stalls,
  // pending compaction, block cache hits and misses, and the lengths of the
  // removal and collection queues. Blocking (it scans the queues, up to a
  // bound): call it off the io threads. Thread-safe.
  void collect_metrics(metrics::Writer& out) const;

  Result<std::uint64_t> write_checkpoint(const std::string& directory) override;

 private:
  RocksDbIndexStore(std::unique_ptr<rocksdb::DB> db, boost::asio::thread_pool& blocking,
                    std::uint64_t absent_floor);
  Result<RecordRead> read_blocking(std::string_view key);
  Result<bool> apply_blocking(const KeyMutation& mutation);
  std::mutex& stripe_of(std::string_view key);

  // Where a queue scan may start. A queue's cleared entries stay behind as
  // RocksDB deletion markers until compaction, and a scan from the start of
  // the queue steps over every one of them (200,000 markers: 24 ms a scan).
  // So the store remembers, per queue, a time below which it holds no live
  // entry: lowered before any entry below it is written, raised by a scan
  // that saw everything up to some time — unless an entry was queued while
  // it ran (the generation tells).
  struct QueueFloor {
    std::uint64_t time = 0;
    std::uint64_t generation = 0;
  };
  QueueFloor& floor_of(const std::string& queue);  // queue_floors_mutex_ held
  void lower_queue_floor(const std::string& queue, std::uint64_t time);
  QueueFloor queue_floor(const std::string& queue);
  void raise_queue_floor(const std::string& queue, const QueueFloor& seen, std::uint64_t time);

  std::unique_ptr<rocksdb::DB> db_;
  boost::asio::thread_pool& blocking_;
  // Raised before a batch that erases a collected tombstone is written, so
  // a read that finds the record gone finds the floor raised too.
  std::atomic<std::uint64_t> absent_floor_;
  std::mutex absent_floor_mutex_;   // orders the floor's writes: it never goes down
  std::mutex version_floor_mutex_;  // likewise
  std::array<std::mutex, 1024> stripes_;
  std::mutex queue_floors_mutex_;
  std::unordered_map<std::string, QueueFloor> queue_floors_;  // by queue prefix
};

}  // namespace kalavara
