// Where a volume keeps values. An interface so the file tree can be replaced
// (or faked in tests) without touching the HTTP side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/checksum.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kalavara {

// One version of a value being written. Not thread-safe. Destroying a writer
// that was not kept removes everything it wrote, published or not: a failed
// or abandoned write leaves no trace and other versions untouched.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;

  // Appends bytes of the value. Fails with kNoSpace when the disk is full, kInternal on
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

  // Puts the synced value in place as its own version, atomically and
  // durably: after success a reader of that version finds it whole, also
  // after a crash. Other versions of the key are not touched.
  virtual Status publish() = 0;

  // Keeps the published version when the writer is destroyed (the commit
  // succeeded).
  virtual void keep() = 0;
};

// An open value, `size` bytes long. A small one comes back already read:
// then `bytes` is set and holds the whole value (its size() == size), and
// `fd` may still be open but need not be. Otherwise read `size` bytes of
// `fd` from `offset`.
struct OpenBlob {
  std::optional<std::string> bytes;  // when set, the whole value; fd may still be open
  UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::optional<Checksum> checksum;  // absent for values stored before checksums
};

// Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual Result<std::unique_ptr<BlobWriter>> begin_write(std::string_view key,
                                                          std::uint64_t version) = 0;
  // Opens `version` of the key, or its newest version when nullopt. Fails
  // with kNotFound when there is no such version here.
  virtual Result<OpenBlob> open(std::string_view key, std::optional<std::uint64_t> version) = 0;
  // Removes, durably, every version of the key up to `up_to` (all of them
  // when nullopt), or only `exactly` when given. Fails with kNotFound when there
  // was none.
  virtual Status remove(std::string_view key, std::optional<std::uint64_t> up_to,
                        std::optional<std::uint64_t> exactly = std::nullopt) = 0;

  struct Usage {
    std::uint64_t free_bytes = 0;  // available to this process on the volume's filesystem
    std::uint64_t files = 0;       // value files held (one per stored version)
  };
  virtual Result<Usage> usage() = 0;
};

}  // namespace kalavara
