// The copies a primary volume streams to the other replicas of a write, while
// it writes its own. Not thread-safe: the PUT's coroutine drives it.
#pragma once

#include <boost/asio/any_io_executor.hpp>

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
  // Unless keep() was called, has every replica that may hold a copy of this
  // version remove it (in the background, best effort: an uncommitted
  // version no reader is sent to).
  ~ReplicaUploads();
  ReplicaUploads(const ReplicaUploads&) = delete;
  ReplicaUploads& operator=(const ReplicaUploads&) = delete;

  // Starts an upload of `length` bytes to each replica. Fails with kUnavailable
  // naming the first volume that cannot be reached.
  boost::asio::awaitable<Status> open(const std::vector<BaseUrl>& replicas, std::uint64_t length);
  // Sends the next chunk to every replica. Fails with kUnavailable naming the volume.
  boost::asio::awaitable<Status> write(std::span<const char> chunk);
  // Waits for every replica to answer: each must have stored the copy
  // durably (201) with the same checksum (`etag`). Fails with kUnavailable naming the
  // volume and why.
  boost::asio::awaitable<Status> finish(const std::string& etag);
  // The write was committed: the copies stay.
  void keep() { kept_ = true; }

 private:
  std::string key_;
  std::uint64_t version_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::vector<std::pair<BaseUrl, std::unique_ptr<http::UploadStream>>> uploads_;
  bool kept_ = false;
};

}  // namespace kalavara
