// The master's HTTP endpoints: redirects for /store/, volume registration,
// and the commit call volumes make once a value is durable.
//
//   PUT    /store/{key}            307 to the key's volume with the write's version and
//                                  the master to commit to (?master=..&version=..);
//                                  412 when If-Match / If-None-Match already fail
//   GET    /store/{key}, HEAD      302 to the volume holding the value, with ETag and
//                                  X-Kalavara-Size; 304 on If-None-Match; 404 if none
//   GET    /store/{prefix}?list    JSON page of keys (&limit=N, &start=KEY)
//   DELETE /store/{key}            deletes on the volume, then in the index; 204;
//                                  412 when If-Match fails
//   POST   /admin/add-volume       body: a volume's base URL; 200
//   GET    /admin/volumes          JSON: each volume's state, last check, free bytes, files
//   POST   /internal/commit/{key}?volumes=URL,URL&version=V&size=N&checksum=HEX
//          [&if_match=..][&if_none_match=..]
//                                  a volume's commit; 200 "committed", or
//                                  "superseded" when a newer version is committed
//   GET    /healthz                200
//
// Thread-safe: handlers run concurrently on the io threads.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/router.hpp"
#include "common/url.hpp"
#include "master/index_store.hpp"
#include "master/version_clock.hpp"
#include "master/volume_health.hpp"

namespace kalavara {

struct MasterOptions {
  // The URL volumes use to reach this master, sent to them in PUT redirects.
  // When unset, the Host header of the client's PUT is used: the address the
  // client reached the master at.
  std::optional<BaseUrl> advertise_url;
  // Copies of every value (--replicas): the top N of the key's ranking
  // among the volumes that are up.
  std::size_t replicas = 1;
};

class MasterService {
 public:
  // `store`, `clock` and `health` must outlive the service.
  MasterService(IndexStore& store, VersionClock& clock, const VolumeHealth& health,
                MasterOptions options);

  // Loads the registered volumes from the store and registers `extra` (the
  // -v flags) durably. Fails when the store fails.
  Status load_volumes(const std::vector<BaseUrl>& extra);

  // Adds the endpoints above to `router`; `this` must outlive the router.
  void add_routes(http::Router& router);

  // The known volumes' canonical URLs, sorted.
  std::vector<std::string> volumes() const;

  // Called when `url` passed a health check: applies the deletes queued for
  // it, in the background on `executor`. Thread-safe.
  void volume_alive(const std::string& url, const http::asio::any_io_executor& executor);

 private:
  using Answer = http::asio::awaitable<http::Reply>;
  Answer put(http::Exchange& exchange);
  Answer get(http::Exchange& exchange);     // locate() or list()
  Answer locate(http::Exchange& exchange);  // the 302 to a key's value
  Answer erase(http::Exchange& exchange);
  Answer add_volume(http::Exchange& exchange);
  Answer commit(http::Exchange& exchange);
  Answer list(http::Exchange& exchange);
  Answer describe_volumes(http::Exchange& exchange);

  // Registers `url` durably and in memory; true when it was new.
  Result<bool> register_volume(const BaseUrl& url);

  // Serialises the read-check-write of one key's record (a commit, the
  // checks of a delete) so that conditional writes are race-free, and marks
  // keys whose delete is in flight (it spans calls to volumes) so that no
  // commit lands between the delete's file removal and its record removal.
  struct KeyStripe {
    std::mutex mutex;
    std::unordered_set<std::string> deleting;
  };
  KeyStripe& stripe_of(const std::string& key);

  // A commit's read-check-write of the record, under the key's stripe lock.
  // Blocks on a synced write: runs on blocking_.
  struct CommitOutcome {
    Status status;
    bool superseded = false;
    std::optional<IndexRecord> previous;
  };
  CommitOutcome commit_record(const std::string& key, const IndexRecord& record,
                              std::string_view if_match, std::string_view if_none_match);

  IndexStore& store_;
  VersionClock& clock_;
  const VolumeHealth& health_;
  const MasterOptions options_;
  std::array<KeyStripe, 64> stripes_;
  // Synced index writes wait here, not on an io thread; concurrent ones are
  // group-committed by RocksDB.
  boost::asio::thread_pool blocking_{8};
  std::mutex pending_mutex_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> pending_runs_;  // per volume
  mutable std::shared_mutex mutex_;
  std::vector<std::string> volumes_;  // sorted, canonical
};

}  // namespace kalavara
