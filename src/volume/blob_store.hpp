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

// One version of a value being written. Not thread-safe. A writer only ever
// removes files it created. Destroying one removes its temp file if it
// published nothing; a published version stays unless discard() was called,
// since its upload may have been committed by then (a daemon shutting down
// destroys a PUT still waiting on its commit's answer). At worst it is an
// orphan no index names, which a scrub removes; never a committed value lost.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;

  // Appends bytes of the value. Fails with kNoSpace when the disk is full, kInternal on
  // other I/O errors; after a failure the writer only awaits discard() or destruction.
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
  // after a crash. Never replaces a file: when this version of the key is
  // already stored (a replayed upload), fails with kConflict and leaves that
  // copy as it is. Fails as append does on I/O errors (a failed directory
  // fsync included). On any failure nothing is published and nothing but
  // this writer's temp file is touched. Other versions of the key are never
  // touched.
  virtual Status publish() = 0;

  // For an upload definitively not committed: removes what this writer
  // created, the version it published or else its temp file. A version it
  // did not publish (a kConflict) is never touched. Not durable: after a
  // crash the file may be back, as an orphan no index names. Fails with
  // kInternal on I/O errors; the file then stays, an orphan.
  virtual Status discard() = 0;
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
  // with kNotFound only when there is no such version here; with kInternal
  // on I/O errors or a corrupt file, and when the key's folder cannot be
  // listed (whether a version is here is then unknown).
  virtual Result<OpenBlob> open(std::string_view key, std::optional<std::uint64_t> version) = 0;
  // Removes, durably, every version of the key up to `up_to` (all of them
  // when nullopt), or only `exactly` when given. Fails with kNotFound only
  // when there was none; with kInternal on I/O errors, a folder that cannot
  // be listed included.
  virtual Status remove(std::string_view key, std::optional<std::uint64_t> up_to,
                        std::optional<std::uint64_t> exactly = std::nullopt) = 0;

  struct Usage {
    std::uint64_t free_bytes = 0;  // available to this process on the volume's filesystem
    std::uint64_t files = 0;       // value files held (one per stored version)
  };
  virtual Result<Usage> usage() = 0;
};

}  // namespace kalavara
