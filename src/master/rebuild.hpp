// `kalavara-master rebuild`: rebuilds a lost index from what the volumes
// hold, while the master is stopped (see docs/architecture.md, "Rebuilding a
// lost index").
//
// It pages through every volume's listing (GET /admin/blobs) and writes each
// file it learns of into the new index as a scratch entry, keyed by key, then
// volume, then version; then it walks the scratch entries in key order, one
// key's files at a time, and decides each key from versions alone (never
// file times). So memory stays bounded whatever the number of keys: one
// listing page per volume while listing, one key's files while deciding.
//
// decide_key is pure; rebuild_index blocks (an offline tool, on threads of
// its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/url.hpp"
#include "master/index_record.hpp"

namespace kalavara {

// One file a volume listed for a key, as the rebuild weighs it.
struct ListedCopy {
  std::string volume;  // canonical base URL
  std::uint64_t version = 0;
  bool marker = false;
  std::uint64_t size = 0;
  std::string checksum;  // 32 hex digits; empty for a marker or a format-1 value
  bool operator==(const ListedCopy&) const = default;
};

// What the listings say about one key.
struct KeyDecision {
  // The record to commit; nullopt when the key was deleted (or nothing was
  // listed).
  std::optional<IndexRecord> record;
  // The newest file is a delete marker: the delete is the key's last event,
  // and every value of it is stale.
  bool deleted = false;
  std::uint64_t marker_version = 0;  // when deleted
  // Values no index will name: those below the committed version, or every
  // value when the key was deleted. Markers are never stale (they may stay).
  std::vector<ListedCopy> stale;
  // Values at the committed version whose checksum the record does not take
  // (two uploads under one version, or a corrupt header): reported, never
  // removed, left for a verify or a person.
  std::vector<ListedCopy> disagreeing;
};

// Decides a key from the versions of its files alone: the highest version
// among its values and markers wins. A marker there (also one tied with a
// value: a delete's version is its own) means the key was deleted: no
// record. Otherwise the record is committed at that version, with the size
// and checksum the most copies of that version share (a tie goes to the
// lowest checksum, so that reruns agree), and as volumes every volume holding
// those, in the order of `volume_order` (volumes not in it last, by name).
KeyDecision decide_key(const std::vector<ListedCopy>& copies,
                       const std::vector<std::string>& volume_order);

struct RebuildOptions {
  std::string index_dir;
  std::vector<BaseUrl> volumes;
  // Remove the stale values on their volumes (DELETE ?version=V, one
  // version each); markers stay.
  bool clean = false;
  std::size_t page_size = 1000;  // listing entries asked for per request
  // A progress line goes to the log at most this often.
  std::chrono::milliseconds progress_interval = std::chrono::seconds(3);
};

struct RebuildSummary {
  std::uint64_t entries_read = 0;  // listing entries, over every volume
  std::uint64_t keys_rebuilt = 0;  // records committed
  std::uint64_t deleted_keys = 0;  // keys whose newest file is a marker
  std::uint64_t stale_found = 0;
  std::uint64_t stale_removed = 0;      // with clean
  std::uint64_t stale_not_removed = 0;  // with clean, the removals that failed
  std::uint64_t disagreements = 0;      // keys whose copies of one version disagree
  std::uint64_t unindexable = 0;        // version-0 files (builds before versions)
  std::uint64_t highest_version = 0;
  std::vector<std::string> unread_volumes;  // not listed completely
};

// Rebuilds the index in `options.index_dir` from the volumes' listings:
// registers the volumes, raises the version floor above (and the floor of
// absent records to) the highest version seen, commits a record per live
// key, reports stale copies (and removes them when asked), logging progress
// and a summary. A volume that cannot be listed completely is reported and
// the rebuild goes on with what it has. Fails with kConflict when the index
// already holds key records (it rebuilds into an empty index only), and
// kInternal when the index cannot be opened or written.
Result<RebuildSummary> rebuild_index(const RebuildOptions& options);

// 0 when every volume was listed completely (and every removal asked for
// was done), 1 otherwise.
int rebuild_exit_code(const RebuildSummary& summary);

}  // namespace kalavara
