// The SHA-256 digest of a key: the one hash both daemons agree on. The master
// ranks volumes by it (placement) and a volume names the key's file by it, so
// nobody can choose keys that collide or pile up on one volume. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kalavara {

struct KeyDigest {
  std::array<std::uint8_t, 32> bytes{};

  // The first 8 bytes, big-endian: a uniformly distributed 64-bit hash.
  std::uint64_t prefix64() const;
  // 64 lower-case hex characters.
  std::string hex() const;
};

KeyDigest digest_of(std::string_view data);

}  // namespace kalavara
