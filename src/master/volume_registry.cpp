#include "master/volume_registry.hpp"

#include <algorithm>

namespace kalavara {
namespace {

bool by_url(const RegisteredVolume& a, const RegisteredVolume& b) { return a.url < b.url; }

}  // namespace

bool VolumeRegistry::Snapshot::draining(std::string_view url) const {
  return std::binary_search(all.begin(), all.end(), url) &&
         !std::binary_search(writable.begin(), writable.end(), url);
}

VolumeRegistry::VolumeRegistry(IndexStore& store)
    : store_(store), snapshot_(std::make_shared<const Snapshot>()) {}

void VolumeRegistry::publish(std::vector<RegisteredVolume> volumes) {
  std::sort(volumes.begin(), volumes.end(), by_url);
  auto next = std::make_shared<Snapshot>();
  for (const auto& volume : volumes) {
    next->all.push_back(volume.url);
    if (volume.state == VolumeState::kActive) next->writable.push_back(volume.url);
  }
  volumes_ = std::move(volumes);
  snapshot_ = std::move(next);
}

boost::asio::awaitable<Status> VolumeRegistry::load() {
  auto stored = co_await store_.volumes();
  if (!stored) co_return stored.error();
  std::lock_guard lock(mutex_);
  publish(std::move(stored).value());
  co_return Status{};
}

boost::asio::awaitable<Result<bool>> VolumeRegistry::add(const BaseUrl& url) {
  if (contains(url.text)) co_return false;
  // Named: GCC 12 destroys a braced temporary in a co_await expression twice.
  const RegisteredVolume added{url.text, VolumeState::kActive};
  if (auto status = co_await store_.put_volume(added); !status) co_return status.error();
  std::lock_guard lock(mutex_);
  if (std::any_of(volumes_.begin(), volumes_.end(),
                  [&](const RegisteredVolume& v) { return v.url == url.text; })) {
    co_return false;  // added meanwhile
  }
  auto volumes = volumes_;
  volumes.push_back({url.text, VolumeState::kActive});
  publish(std::move(volumes));
  co_return true;
}

boost::asio::awaitable<Status> VolumeRegistry::drain(std::string_view url) {
  if (!contains(url)) {
    co_return Error{Errc::kNotFound, "volume " + std::string(url) + " is not registered"};
  }
  const RegisteredVolume draining{std::string(url), VolumeState::kDraining};
  if (auto status = co_await store_.put_volume(draining); !status) co_return status;
  std::lock_guard lock(mutex_);
  auto volumes = volumes_;
  for (auto& volume : volumes) {
    if (volume.url == url) volume.state = VolumeState::kDraining;
  }
  publish(std::move(volumes));
  co_return Status{};
}

boost::asio::awaitable<Status> VolumeRegistry::forget(std::string_view url) {
  if (auto status = co_await store_.remove_volume(url); !status) co_return status;
  std::lock_guard lock(mutex_);
  auto volumes = volumes_;
  std::erase_if(volumes, [&](const RegisteredVolume& v) { return v.url == url; });
  publish(std::move(volumes));
  co_return Status{};
}

VolumeRegistry::Volumes VolumeRegistry::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

bool VolumeRegistry::contains(std::string_view url) const {
  const auto volumes = snapshot();
  return std::binary_search(volumes->all.begin(), volumes->all.end(), url);
}

}  // namespace kalavara
