// The volumes registered with this master: durable in the index store, and
// held in memory, sorted, for placement and for checking commits.
// Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/url.hpp"
#include "master/index_store.hpp"

namespace kalavara {

class VolumeRegistry {
 public:
  using Volumes = std::shared_ptr<const std::vector<std::string>>;

  // `store` must outlive the registry.
  explicit VolumeRegistry(IndexStore& store);

  // Loads the volumes registered before. Fails when the store fails.
  boost::asio::awaitable<Status> load();

  // Registers `url` durably, then for placement (a volume keys are placed on
  // must still be known after a crash); true when it was new.
  boost::asio::awaitable<Result<bool>> add(const BaseUrl& url);

  // The registered volumes' canonical URLs, sorted: an immutable snapshot,
  // cheap to take on every request.
  Volumes snapshot() const;

  bool contains(std::string_view url) const;

 private:
  IndexStore& store_;
  mutable std::mutex mutex_;
  Volumes volumes_;
};

}  // namespace kalavara
