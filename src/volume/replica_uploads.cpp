#include "volume/replica_uploads.hpp"
#include "common/spawn.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "common/internal_api.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;
constexpr auto kReplicaTimeout = std::chrono::seconds(30);

Error replica_failed(const BaseUrl& replica, const std::string& why) {
  return Error{Errc::kUnavailable,
               "value not stored: replica " + replica.text + " failed (" + why + ")"};
}

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// Parameters by value: the coroutine outlives the uploads.
asio::awaitable<void> remove_copy(BaseUrl replica, std::string key, std::uint64_t version) {
  const internal::RemovalCall call{std::move(key), version, internal::RemovalCall::Scope::kExactly};
  if (auto status = co_await internal::send_removal(replica, call); !status) {
    spdlog::warn("could not remove an uncommitted copy on {}: {}", replica.text,
                 status.error().message);
  }
}

}  // namespace

ReplicaUploads::ReplicaUploads(std::string key, std::uint64_t version)
    : key_(std::move(key)), version_(version) {}

ReplicaUploads::~ReplicaUploads() = default;

asio::awaitable<Status> ReplicaUploads::open(const std::vector<BaseUrl>& replicas,
                                             std::uint64_t length) {
  length_ = length;
  for (const auto& replica : replicas) {
    auto stream = co_await http::UploadStream::open(http::Verb::put, replica,
                                                    internal::replica_target(key_, version_),
                                                    length, kReplicaTimeout);
    if (!stream) co_return replica_failed(replica, stream.error().message);
    uploads_.push_back({replica, std::move(stream).value(), 0, std::nullopt});
  }
  co_return Status{};
}

asio::awaitable<Status> ReplicaUploads::write(std::span<const char> chunk) {
  for (auto& upload : uploads_) {
    if (auto status = co_await upload.stream->write(chunk); !status) {
      co_return replica_failed(upload.replica, status.error().message);
    }
    upload.sent += chunk.size();
  }
  co_return Status{};
}

asio::awaitable<Status> ReplicaUploads::answer_of(Upload& upload) {
  if (upload.answer) co_return Status{};
  auto reply = co_await upload.stream->finish();
  if (!reply) co_return reply.error();
  upload.answer = std::move(reply).value();
  co_return Status{};
}

asio::awaitable<Status> ReplicaUploads::finish(const std::string& etag) {
  for (auto& upload : uploads_) {
    if (auto status = co_await answer_of(upload); !status) {
      co_return replica_failed(upload.replica, status.error().message);
    }
    const auto& answer = *upload.answer;
    if (answer.status == 409) {
      co_return Error{Errc::kConflict,
                      "replica " + upload.replica.text + ": " + trimmed(answer.body)};
    }
    if (answer.status != 201) {
      co_return replica_failed(upload.replica,
                               std::to_string(answer.status) + " " + trimmed(answer.body));
    }
    if (answer.etag != etag) {
      co_return replica_failed(upload.replica,
                               "its copy has checksum " + answer.etag + ", expected " + etag);
    }
  }
  co_return Status{};
}

asio::awaitable<void> ReplicaUploads::discard() {
  const auto executor = co_await asio::this_coro::executor;
  for (auto& upload : uploads_) {
    // Only a replica that has the whole body can have published a copy.
    if (upload.sent == length_ && !(co_await answer_of(upload))) continue;
    if (upload.answer && upload.answer->status == 201) {
      asio::co_spawn(executor, remove_copy(upload.replica, key_, version_),
                     log_if_thrown("removing an uncommitted copy"));
    }
  }
  uploads_.clear();
}

}  // namespace kalavara
