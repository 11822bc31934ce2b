// What the index holds for one key, and its byte encoding. Pure; thread-safe.
//
// Encoding (all integers are unsigned LEB128 varints unless noted):
//   u8     format        = 1; a reader rejects formats it does not know, and a
//                          new field means a new format number, decoded beside
//                          the old ones, so stored records never need migrating
//   u8     state         (0 = committed)
//   varint size          bytes of the value
//   varint version       write version (0 until versioned writes exist)
//   varint checksum_len, then checksum bytes (empty until checksums exist)
//   varint volume_count, then for each: varint url_len, url bytes
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kalavara {

struct IndexRecord {
  enum class State : std::uint8_t { kCommitted = 0 };

  std::vector<std::string> volumes;  // canonical base URLs of the volumes holding the value
  std::uint64_t size = 0;
  std::uint64_t version = 0;
  std::string checksum;
  State state = State::kCommitted;

  bool operator==(const IndexRecord&) const = default;
};

inline constexpr std::uint8_t kIndexRecordFormat = 1;

std::string encode_record(const IndexRecord& record);

// Fails with kInternal ("corrupt index record: ...") on truncated or unknown input.
Result<IndexRecord> decode_record(std::string_view bytes);

}  // namespace kalavara
