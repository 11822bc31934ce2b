// What a volume tells operators: whether it is ready (GET /readyz) and its
// own figures (kalavara_volume_* on /metrics).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>

#include "common/metrics.hpp"
#include "common/probes.hpp"
#include "volume/file_blob_store.hpp"
#include "volume/registration.hpp"
#include "volume/volume_service.hpp"

namespace kalavara {

class VolumeStatus {
 public:
  // Everything given must outlive this; `registration` is null for a volume
  // started without -m. Below `min_free_bytes` free the volume is not ready.
  VolumeStatus(FileBlobStore& store, const VolumeService& service, const Registration* registration,
               boost::asio::thread_pool& blocking, std::uint64_t min_free_bytes);

  // Ready when a file can be created in the data folder, at least
  // min_free_bytes are free, and the master took the registration (with
  // -m). The checks touch the disk: they run on the blocking pool.
  boost::asio::awaitable<Readiness> readiness() const;

  // Writes kalavara_volume_*: the disk's size and free bytes, the value
  // files held, fsync durations, failed uploads by stage. Blocking (statvfs):
  // call it off the io threads. Thread-safe.
  void collect(metrics::Writer& out) const;

 private:
  FileBlobStore& store_;
  const VolumeService& service_;
  const Registration* registration_;
  boost::asio::thread_pool& blocking_;
  const std::uint64_t min_free_bytes_;
};

}  // namespace kalavara
