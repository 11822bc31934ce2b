// Where a volume keeps values. An interface so the file tree can be replaced
// (or faked in tests) without touching the HTTP side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "common/checksum.hpp"
#include "common/result.hpp"
#include "volume/unique_fd.hpp"

namespace kalavara {

// One value being written. Not thread-safe. Destroying a writer that was not
// committed removes everything it wrote: a failed or abandoned write leaves
// no trace and the previous value untouched.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;

  // Appends bytes of the value. Fails with 507 when the disk is full, 500 on
  // other I/O errors; after a failure the writer only awaits destruction.
  virtual Status append(std::span<const char> bytes) = 0;

  struct Written {
    std::uint64_t size = 0;
    Checksum checksum{};
  };
  // Makes the value durable (the data is on stable storage) but not yet
  // visible, and returns its size and checksum. Fails as append does; a
  // failed sync is never retried.
  virtual Result<Written> sync() = 0;

  // Makes the synced value the key's value, atomically and durably: a
  // reader sees the old value or the new one, never a mix, and after success
  // the new one survives a crash.
  virtual Status publish() = 0;
};

// An open value: read `size` bytes of `fd` from `offset`.
struct OpenBlob {
  UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::optional<Checksum> checksum;  // absent for values stored before checksums
};

// Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual Result<std::unique_ptr<BlobWriter>> begin_write(std::string_view key) = 0;
  // Fails with 404 when the key has no value here.
  virtual Result<OpenBlob> open(std::string_view key) = 0;
  // Removes the key's value durably. Fails with 404 when there is none.
  virtual Status remove(std::string_view key) = 0;
};

}  // namespace kalavara
