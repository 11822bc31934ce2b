#include "master/volume_registry.hpp"

#include <algorithm>

namespace kalavara {

VolumeRegistry::VolumeRegistry(IndexStore& store)
    : store_(store), volumes_(std::make_shared<const std::vector<std::string>>()) {}

boost::asio::awaitable<Status> VolumeRegistry::load() {
  auto stored = co_await store_.volumes();
  if (!stored) co_return stored.error();
  std::sort(stored->begin(), stored->end());
  std::lock_guard lock(mutex_);
  volumes_ = std::make_shared<const std::vector<std::string>>(std::move(stored).value());
  co_return Status{};
}

boost::asio::awaitable<Result<bool>> VolumeRegistry::add(const BaseUrl& url) {
  if (contains(url.text)) co_return false;
  if (auto status = co_await store_.add_volume(url.text); !status) co_return status.error();
  std::lock_guard lock(mutex_);
  const auto at = std::lower_bound(volumes_->begin(), volumes_->end(), url.text);
  if (at != volumes_->end() && *at == url.text) co_return false;  // added meanwhile
  auto next = std::make_shared<std::vector<std::string>>(*volumes_);
  next->insert(next->begin() + (at - volumes_->begin()), url.text);
  volumes_ = std::move(next);
  co_return true;
}

VolumeRegistry::Volumes VolumeRegistry::snapshot() const {
  std::lock_guard lock(mutex_);
  return volumes_;
}

bool VolumeRegistry::contains(std::string_view url) const {
  const auto volumes = snapshot();
  return std::binary_search(volumes->begin(), volumes->end(), url);
}

}  // namespace kalavara
