// The copies a primary volume streams to the other replicas of a write, while
// it writes its own. Not thread-safe: the PUT's coroutine drives it.
//
// A replica answers 201 only for a copy it created (publishing never replaces
// a file), so the copies this upload may remove are exactly those answered
// 201; a copy whose answer never came is left alone (at worst an orphan no
// index names), since removing it could remove another upload's copy.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/http_client.hpp"
#include "common/url.hpp"

namespace kalavara {

class ReplicaUploads {
 public:
  ReplicaUploads(std::string key, std::uint64_t version);
  // Closes the uploads still open (a replica then drops its partial copy);
  // removes no copy: that takes discard().
  ~ReplicaUploads();
  ReplicaUploads(const ReplicaUploads&) = delete;
  ReplicaUploads& operator=(const ReplicaUploads&) = delete;

  // Starts an upload of `length` bytes to each replica. Fails with
  // kUnavailable naming the first volume that cannot be reached.
  boost::asio::awaitable<Status> open(const std::vector<BaseUrl>& replicas, std::uint64_t length);
  // Sends the next chunk to every replica. Fails with kUnavailable naming the
  // volume.
  boost::asio::awaitable<Status> write(std::span<const char> chunk);
  // Waits for every replica to answer: each must have stored the copy
  // durably (201) with the same checksum (`etag`). Fails with kConflict when
  // a replica holds this version already (a replayed upload), otherwise with
  // kUnavailable naming the volume and why.
  boost::asio::awaitable<Status> finish(const std::string& etag);
  // The write is certainly not committed: every copy this upload created is
  // removed (in the background, best effort). A replica that was sent the
  // whole body is first asked for its answer, to learn whether it created one.
  boost::asio::awaitable<void> discard();

 private:
  struct Upload {
    BaseUrl replica;
    std::unique_ptr<http::UploadStream> stream;
    std::uint64_t sent = 0;
    std::optional<http::ClientResponse> answer;
  };
  boost::asio::awaitable<Status> answer_of(Upload& upload);

  std::string key_;
  std::uint64_t version_;
  std::uint64_t length_ = 0;
  std::vector<Upload> uploads_;
};

}  // namespace kalavara
