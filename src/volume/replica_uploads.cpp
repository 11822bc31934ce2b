#include "volume/replica_uploads.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "common/key_codec.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;
constexpr auto kReplicaTimeout = std::chrono::seconds(30);

std::string replica_target(const std::string& key, std::uint64_t version) {
  return std::string(kStorePrefix) + encode_key_path(key) + "?version=" + std::to_string(version);
}

Error replica_failed(const BaseUrl& replica, const std::string& why) {
  return Error{Errc::kUnavailable,
               "value not stored: replica " + replica.text + " failed (" + why + ")"};
}

// Parameters by value: the coroutine outlives the uploads.
asio::awaitable<void> remove_copy(BaseUrl replica, std::string key, std::uint64_t version) {
  auto reply =
      co_await http::send_request(http::Verb::delete_, replica, replica_target(key, version), {});
  if (!reply || (reply->status != 204 && reply->status != 404)) {
    spdlog::warn("could not remove an uncommitted copy on {}: {}", replica.text,
                 reply ? std::to_string(reply->status) : reply.error().message);
  }
}

}  // namespace

ReplicaUploads::ReplicaUploads(std::string key, std::uint64_t version)
    : key_(std::move(key)), version_(version) {}

ReplicaUploads::~ReplicaUploads() {
  if (kept_ || !executor_) return;
  for (auto& [replica, upload] : uploads_) {
    upload.reset();
    asio::co_spawn(*executor_, remove_copy(replica, key_, version_), asio::detached);
  }
}

asio::awaitable<Status> ReplicaUploads::open(const std::vector<BaseUrl>& replicas,
                                             std::uint64_t length) {
  executor_ = co_await asio::this_coro::executor;
  for (const auto& replica : replicas) {
    auto upload = co_await http::UploadStream::open(http::Verb::put, replica,
                                                    replica_target(key_, version_) + "&replica=1",
                                                    length, kReplicaTimeout);
    if (!upload) co_return replica_failed(replica, upload.error().message);
    uploads_.emplace_back(replica, std::move(upload).value());
  }
  co_return Status{};
}

asio::awaitable<Status> ReplicaUploads::write(std::span<const char> chunk) {
  for (auto& [replica, upload] : uploads_) {
    if (auto status = co_await upload->write(chunk); !status) {
      co_return replica_failed(replica, status.error().message);
    }
  }
  co_return Status{};
}

asio::awaitable<Status> ReplicaUploads::finish(const std::string& etag) {
  for (auto& [replica, upload] : uploads_) {
    auto reply = co_await upload->finish();
    if (!reply) co_return replica_failed(replica, reply.error().message);
    if (reply->status != 201) {
      std::string body = reply->body;
      while (!body.empty() && body.back() == '\n') body.pop_back();
      co_return replica_failed(replica, std::to_string(reply->status) + " " + body);
    }
    if (reply->etag != etag) {
      co_return replica_failed(replica,
                               "its copy has checksum " + reply->etag + ", expected " + etag);
    }
  }
  co_return Status{};
}

}  // namespace kalavara
