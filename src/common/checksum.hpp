// The checksum of a stored value: XXH3-128, computed while the value streams
// to disk (no second pass). Chosen for speed: it runs at memory bandwidth, so
// it costs a few percent of a durable PUT, where SHA-256 or MD5 would cost
// a fifth or more (docs/benchmarks.md). It guards against corruption, not
// against an adversary.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace kalavara {

inline constexpr std::size_t kChecksumBytes = 16;
using Checksum = std::array<std::uint8_t, kChecksumBytes>;

// Incremental XXH3-128. Not thread-safe; one per value.
class ValueHasher {
 public:
  ValueHasher();
  ~ValueHasher();
  ValueHasher(const ValueHasher&) = delete;
  ValueHasher& operator=(const ValueHasher&) = delete;

  void update(std::span<const char> bytes);
  // The checksum of everything passed to update(), big-endian (the canonical
  // XXH128 byte order).
  Checksum finish() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// 32 lower-case hex characters.
std::string checksum_hex(const Checksum& checksum);

// The strong HTTP entity tag for a value with this checksum: "\"<hex>\"".
std::string etag_for(std::string_view checksum_hex);

}  // namespace kalavara
