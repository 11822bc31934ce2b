// Range requests (RFC 9110 section 14): what to send for a Range header.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace kalavara {

struct RangeDecision {
  enum class Kind {
    kWhole,          // 200 with the whole value: no Range, one we ignore, or several ranges
    kPartial,        // 206 with bytes [first, last]
    kUnsatisfiable,  // 416 with Content-Range: bytes */size
  };
  Kind kind = Kind::kWhole;
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
};

// Decides how to answer `header` (the Range field value, possibly empty) for
// a value of `size` bytes. A single range "bytes=a-b", "bytes=a-" or
// "bytes=-n" is served when satisfiable (b is clamped to the end); a range
// starting at or past the end, a zero-length suffix, or any range of an empty
// value is unsatisfiable; a header with invalid syntax or another unit is
// ignored, as RFC 9110 requires; several ranges get the whole value (allowed,
// and simpler than multipart/byteranges).
RangeDecision decide_range(std::string_view header, std::uint64_t size);

}  // namespace kalavara
