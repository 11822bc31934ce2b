// What the index holds for one key, and its byte encoding. Pure; thread-safe.
//
// A record is in one of two states:
//   committed  the key's value: the write `version` of `size` bytes with
//              `checksum`, held by `volumes`; `previous` is the write it
//              replaced, whose files stay readable for the old-version grace
//   tombstone  the key was deleted by the delete `version`: every commit at or
//              below it is superseded. `volumes` are those whose removal of the
//              key's files is not yet confirmed; once none are left and no
//              upload of a version at or below it can still commit, the
//              tombstone is collected (erased)
//
// Encoding, format 2 (integers are unsigned LEB128 varints unless noted; a
// string is a varint length and its bytes):
//   u8     format = 2
//   u8     state (0 committed, 1 tombstone)
//   varint version
//   varint size
//   string checksum
//   varint volume count, then each volume's URL as a string
//   u8     has previous (0 or 1); when 1: varint version, string checksum,
//          varint volume count, volume URLs
//   varint marker volume count, then each URL as a string (a tombstone's)
// Format 1 (the first builds) is format 2's first six fields with size and
// version swapped, no previous, and only the committed state. A reader
// rejects formats it does not know; a new field means a new format number,
// decoded beside the old ones, so stored records never need migrating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kalavara {

struct IndexRecord {
  enum class State : std::uint8_t { kCommitted = 0, kTombstone = 1 };

  struct Previous {
    std::uint64_t version = 0;
    std::string checksum;
    std::vector<std::string> volumes;
    bool operator==(const Previous&) const = default;
  };

  State state = State::kCommitted;
  std::uint64_t version = 0;
  std::uint64_t size = 0;            // committed only
  std::string checksum;              // committed only: XXH3-128 as 32 hex digits
  std::vector<std::string> volumes;  // canonical base URLs (see the states above)
  std::optional<Previous> previous;  // committed only
  // Tombstone only: volumes holding a delete marker for it (left while a
  // copy's removal stays queued; removed once every removal is confirmed).
  std::vector<std::string> markers;

  bool committed() const { return state == State::kCommitted; }
  bool tombstone() const { return state == State::kTombstone; }
  bool operator==(const IndexRecord&) const = default;
};

inline constexpr std::uint8_t kIndexRecordFormat = 2;

std::string encode_record(const IndexRecord& record);

// Fails with kInternal ("corrupt index record: ...") on truncated or unknown
// input.
Result<IndexRecord> decode_record(std::string_view bytes);

// Whether encoded `bytes` hold a committed record, without decoding the rest
// (a listing skips tombstones). False for anything undecodable.
bool encoded_record_is_committed(std::string_view bytes);

}  // namespace kalavara
