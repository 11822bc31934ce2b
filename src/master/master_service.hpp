// The master's HTTP endpoints: redirects for /store/, volume registration,
// and the commit call volumes make once a value is durable.
//
//   PUT    /store/{key}            307 to the key's volume (with ?master=... to commit to)
//   GET    /store/{key}, HEAD      302 to the volume holding the value; 404 if none
//   DELETE /store/{key}            deletes on the volume, then in the index; 204
//   POST   /admin/add-volume       body: a volume's base URL; 200
//   POST   /internal/commit/{key}?volume=URL&size=N   a volume's commit; 204
//   GET    /healthz                200
//
// Thread-safe: handlers run concurrently on the io threads.
#pragma once

#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/router.hpp"
#include "common/url.hpp"
#include "master/index_store.hpp"

namespace kalavara {

struct MasterOptions {
  // The URL volumes use to reach this master, sent to them in PUT redirects.
  // When unset, the Host header of the client's PUT is used: the address the
  // client reached the master at.
  std::optional<BaseUrl> advertise_url;
};

class MasterService {
 public:
  // `store` must outlive the service.
  MasterService(IndexStore& store, MasterOptions options);

  // Loads the registered volumes from the store and registers `extra` (the
  // -v flags) durably. Fails when the store fails.
  Status load_volumes(const std::vector<BaseUrl>& extra);

  // Adds the endpoints above to `router`; `this` must outlive the router.
  void add_routes(http::Router& router);

  // The known volumes' canonical URLs, sorted.
  std::vector<std::string> volumes() const;

 private:
  using Reply = http::asio::awaitable<std::optional<http::Response>>;
  Reply put(http::Exchange& exchange);
  Reply get(http::Exchange& exchange);
  Reply erase(http::Exchange& exchange);
  Reply add_volume(http::Exchange& exchange);
  Reply commit(http::Exchange& exchange);

  // Registers `url` durably and in memory; true when it was new.
  Result<bool> register_volume(const BaseUrl& url);

  IndexStore& store_;
  const MasterOptions options_;
  mutable std::shared_mutex mutex_;
  std::vector<std::string> volumes_;  // sorted, canonical
};

}  // namespace kalavara
