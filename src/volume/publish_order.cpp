#include "volume/publish_order.hpp"

namespace kalavara {

PublishOrder::Shard& PublishOrder::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % shards_.size()];
}

PublishOrder::Ticket::Ticket(PublishOrder& order, std::string key)
    : order_(order), key_(std::move(key)) {
  auto& shard = order_.shard_of(key_);
  std::lock_guard lock(shard.mutex);
  ++shard.keys[key_].writers;
}

PublishOrder::Ticket::~Ticket() {
  auto& shard = order_.shard_of(key_);
  std::lock_guard lock(shard.mutex);
  auto it = shard.keys.find(key_);
  if (--it->second.writers == 0) shard.keys.erase(it);
}

Result<bool> PublishOrder::Ticket::publish(std::uint64_t version,
                                           const std::function<Status()>& publish) {
  auto& shard = order_.shard_of(key_);
  std::lock_guard lock(shard.mutex);
  auto& in_flight = shard.keys[key_];
  if (version < in_flight.published_version) return false;
  if (auto status = publish(); !status) return status.error();
  in_flight.published_version = version;
  return true;
}

}  // namespace kalavara
