// IndexStore on RocksDB. Records live under "k" + key, volumes under
// "v" + url, pending deletes under "p" + url + NUL + key (value: the version,
// 8 bytes big-endian) and the version floor under "m" + "version-floor", so
// records stay in key order for listing. Every write is a
// synced write (WAL fsynced before it returns); RocksDB groups concurrent
// synced writes into one fsync.
#pragma once

#include <memory>
#include <string>

#include "master/index_store.hpp"

namespace rocksdb {
class DB;
}

namespace kalavara {

class RocksDbIndexStore final : public IndexStore {
 public:
  // Opens (creating if missing) the index in `directory`. Fails with kInternal and
  // RocksDB's reason, e.g. when another process holds the directory's lock.
  static Result<std::unique_ptr<RocksDbIndexStore>> open(const std::string& directory,
                                                         std::size_t block_cache_bytes);
  ~RocksDbIndexStore() override;

  // Compacts the whole index now, waiting for it (bulk loads, then serve).
  Status compact();

  Result<std::optional<IndexRecord>> get(std::string_view key) override;
  Status put(std::string_view key, const IndexRecord& record) override;
  Status put_batch(const std::vector<std::pair<std::string, IndexRecord>>& records) override;
  Status erase_and_queue(std::string_view key, const std::vector<PendingDelete>& pending) override;
  Status queue_delete(const PendingDelete& pending) override;
  Result<std::vector<PendingDelete>> pending_deletes(std::string_view volume,
                                                     std::size_t limit) override;
  Status clear_pending(const PendingDelete& applied) override;
  Result<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit) override;
  Result<std::vector<std::string>> volumes() override;
  Status add_volume(std::string_view url) override;
  Result<std::uint64_t> version_floor() override;
  Status set_version_floor(std::uint64_t floor) override;

 private:
  explicit RocksDbIndexStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace kalavara
