// The volumes registered with this master: durable in the index store, and
// held in memory, sorted, for placement and for checking commits. A
// draining volume (being retired) is still registered — its copies are
// still read, and commits naming it are still taken — but gets no new
// writes. Thread-safe.
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
  // An immutable snapshot, cheap to take on every request.
  struct Snapshot {
    std::vector<std::string> all;       // every registered volume, sorted
    std::vector<std::string> writable;  // those new writes may go to (not draining), sorted
    bool draining(std::string_view url) const;
  };
  using Volumes = std::shared_ptr<const Snapshot>;

  // `store` must outlive the registry.
  explicit VolumeRegistry(IndexStore& store);

  // Loads the volumes registered before. Fails when the store fails.
  boost::asio::awaitable<Status> load();

  // Registers `url` durably, then for placement (a volume keys are placed on
  // must still be known after a crash); true when it was new. A known
  // volume keeps its state.
  boost::asio::awaitable<Result<bool>> add(const BaseUrl& url);

  // Marks a registered volume draining, durably. Fails with kNotFound when
  // it is not registered.
  boost::asio::awaitable<Status> drain(std::string_view url);

  // Forgets a volume, durably (a retired one).
  boost::asio::awaitable<Status> forget(std::string_view url);

  Volumes snapshot() const;

  bool contains(std::string_view url) const;

 private:
  void publish(std::vector<RegisteredVolume> volumes);  // mutex_ held

  IndexStore& store_;
  mutable std::mutex mutex_;
  std::vector<RegisteredVolume> volumes_;  // sorted by url
  Volumes snapshot_;
};

}  // namespace kalavara
