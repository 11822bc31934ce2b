// Where a volume keeps values. An interface so the file tree can be replaced
// (or faked in tests) without touching the HTTP side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// One file of the store as its listing reports it: a value, or a delete
// marker (the key was deleted at `version`; see BlobStore::put_marker).
struct StoredBlob {
  // The file's name: "<sha256 hex>.<16 hex digits of the version>", plus
  // ".marker" for a marker. Names order the listing and are its cursor.
  std::string name;
  std::string key;
  std::uint64_t version = 0;
  std::uint64_t size = 0;            // value bytes; 0 for a marker
  std::optional<Checksum> checksum;  // absent for a marker and a format-1 value
  std::uint64_t mtime = 0;           // seconds since the epoch
  bool marker = false;
};

// A page of the store's listing.
struct BlobListing {
  std::vector<StoredBlob> blobs;
  // The last name returned when the page is full (pass it as `after` for
  // the next one); empty when the listing is at its end.
  std::string next;
};

// How a re-read of a stored copy against its checksum came out.
struct Verification {
  enum class Outcome {
    kIntact,        // the bytes match the header's checksum
    kUnverifiable,  // a format-1 file: it has no checksum to check against
    kQuarantined,   // corrupt: moved out of the tree, never served or listed again
  };
  Outcome outcome = Outcome::kIntact;
  std::string reason;  // for kQuarantined: what did not match
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
  // when nullopt) and the delete markers among them, or only the value
  // `exactly` when given. Fails with kNotFound only when there was none;
  // with kInternal on I/O errors, a folder that cannot be listed included.
  virtual Status remove(std::string_view key, std::optional<std::uint64_t> up_to,
                        std::optional<std::uint64_t> exactly = std::nullopt) = 0;

  struct Usage {
    std::uint64_t free_bytes = 0;   // available to this process on the volume's filesystem
    std::uint64_t files = 0;        // value files held (one per stored version); no markers
    std::uint64_t total_bytes = 0;  // the size of the volume's filesystem
  };
  virtual Result<Usage> usage() = 0;

  // Blocking calls (they read the tree: run them off the io threads).

  // Up to `limit` (>= 1) of the files held, values and markers, in name
  // order (names sort by digest, then version, a marker after the value of
  // its version), starting strictly after the name `after` ("" for the
  // start). Reads only the folders and headers the page needs, never the
  // whole tree. A file whose name is not a kalavara file's is skipped; one
  // whose header cannot be read or does not match its name (another key's
  // digest, another version) is skipped with a warning in the log. Fails
  // with kBadInput when `after` is neither empty nor starts with 4 lower-case
  // hex digits (a name's folder), kInternal when a folder cannot be listed:
  // a listing that skipped one would pass for complete.
  virtual Result<BlobListing> list(std::string_view after, std::size_t limit) = 0;

  // Re-reads `version` of the key and checks its bytes against the checksum
  // in its header; a copy that does not match (or whose header is unreadable
  // or names another key or version) is quarantined: moved out of the tree,
  // durably, so it is never served, listed or counted again. Fails with
  // kNotFound when there is no such copy, kInternal on an I/O error (then
  // nothing was moved) or when a corrupt copy could not be moved.
  virtual Result<Verification> verify(std::string_view key, std::uint64_t version) = 0;

  // Leaves a durable delete marker for the key at the delete's `version`,
  // written as a value is (temp file, fsync, no-replace publish, folder
  // fsync). Succeeds too when that marker is there already. Markers are
  // never opened as values; remove() with `up_to` >= version (or neither
  // bound) removes them, with `exactly` never. Fails as a write does.
  virtual Status put_marker(std::string_view key, std::uint64_t version) = 0;
};

}  // namespace kalavara
