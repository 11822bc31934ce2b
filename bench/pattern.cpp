#include "pattern.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace kalavara::bench {
namespace {

// splitmix64's finalizer: a cheap, well-mixed function of the word index.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Byte i of a value is byte (i % 8) of word (i / 8).
std::uint64_t word_at(std::uint64_t seed, std::uint64_t index) {
  return mix64(seed ^ mix64(index));
}

}  // namespace

std::uint64_t seed_for_key(std::string_view key) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
  for (const unsigned char c : key) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return mix64(hash);
}

void fill_pattern(std::uint64_t seed, std::uint64_t offset, char* out, std::size_t length) {
  std::size_t done = 0;
  while (done < length) {
    const std::uint64_t position = offset + done;
    const std::uint64_t word = word_at(seed, position / 8);
    const std::size_t skip = position % 8;
    if (skip == 0 && length - done >= 8) {
      std::memcpy(out + done, &word, 8);  // the common case: a whole word
      done += 8;
      continue;
    }
    std::array<char, 8> bytes;
    std::memcpy(bytes.data(), &word, sizeof word);
    const std::size_t take = std::min<std::size_t>(8 - skip, length - done);
    std::memcpy(out + done, bytes.data() + skip, take);
    done += take;
  }
}

bool check_pattern(std::uint64_t seed, std::uint64_t offset, std::string_view data) {
  std::array<char, 4096> expected;
  for (std::size_t done = 0; done < data.size();) {
    const std::size_t n = std::min(expected.size(), data.size() - done);
    fill_pattern(seed, offset + done, expected.data(), n);
    if (std::memcmp(expected.data(), data.data() + done, n) != 0) return false;
    done += n;
  }
  return true;
}

std::string make_value(std::uint64_t seed, std::size_t size) {
  std::string value(size, '\0');
  fill_pattern(seed, 0, value.data(), size);
  return value;
}

}  // namespace kalavara::bench
