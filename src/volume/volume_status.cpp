#include "volume/volume_status.hpp"

#include "common/blocking.hpp"

namespace kalavara {

VolumeStatus::VolumeStatus(FileBlobStore& store, const VolumeService& service,
                           const Registration* registration, boost::asio::thread_pool& blocking,
                           std::uint64_t min_free_bytes)
    : store_(store),
      service_(service),
      registration_(registration),
      blocking_(blocking),
      min_free_bytes_(min_free_bytes) {}

boost::asio::awaitable<Readiness> VolumeStatus::readiness() const {
  Status writable;
  Result<BlobStore::Usage> usage = Error{Errc::kInternal, "not checked"};
  co_await run_blocking(blocking_, [&] {
    writable = store_.check_writable();
    usage = store_.usage();
  });
  if (!writable)
    co_return Readiness{false, "data folder not writable: " + writable.error().message};
  if (!usage) co_return Readiness{false, "disk usage unknown: " + usage.error().message};
  if (usage->free_bytes < min_free_bytes_) {
    co_return Readiness{false, "disk nearly full: " + std::to_string(usage->free_bytes) +
                                   " bytes free, " + std::to_string(min_free_bytes_) +
                                   " wanted (--min-free-bytes)"};
  }
  if (registration_ != nullptr && !registration_->registered()) {
    co_return Readiness{false, "not registered with the master yet"};
  }
  co_return Readiness{true, std::to_string(usage->free_bytes) + " bytes free" +
                                (registration_ != nullptr ? ", registered" : "")};
}

void VolumeStatus::collect(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  if (auto usage = store_.usage()) {
    out.single("kalavara_volume_size_bytes", Type::kGauge,
               "Size of the filesystem the data folder is on, in bytes.",
               static_cast<double>(usage->total_bytes));
    out.single("kalavara_volume_free_bytes", Type::kGauge,
               "Bytes available to the volume on its filesystem.",
               static_cast<double>(usage->free_bytes));
    out.single("kalavara_volume_files", Type::kGauge, "Value files held (one per stored version).",
               static_cast<double>(usage->files));
  }
  out.family("kalavara_volume_fsync_duration_seconds", Type::kHistogram,
             "Time each fsync took, of a value file or a folder, in seconds.");
  out.histogram("kalavara_volume_fsync_duration_seconds", {}, store_.sync_durations());
  const auto& failures = service_.upload_failures();
  out.family("kalavara_volume_upload_failures_total", Type::kCounter,
             "Uploads that failed once their body began, by stage: receive (the body broke off, "
             "was corrupt or too large), store (this disk), replicate (a replica), commit (the "
             "master).");
  for (const auto& [stage, count] :
       {std::pair{"receive", &failures.receive}, std::pair{"store", &failures.store},
        std::pair{"replicate", &failures.replicate}, std::pair{"commit", &failures.commit}}) {
    out.sample("kalavara_volume_upload_failures_total", {{"stage", stage}},
               count->load(std::memory_order_relaxed));
  }
}

}  // namespace kalavara
