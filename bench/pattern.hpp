// Deterministic pseudo-random value bytes for the benchmarks. Any byte range of
// a value can be generated (or checked) on its own, so a client can stream a
// value of any size in constant memory and verify it on the way back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kalavara::bench {

// A value's seed: a hash of its key, so every tool (the load client, the file
// writer for nginx) derives the same bytes for the same key.
std::uint64_t seed_for_key(std::string_view key);

// Writes bytes [offset, offset + length) of the value with `seed` to `out`.
void fill_pattern(std::uint64_t seed, std::uint64_t offset, char* out, std::size_t length);

// True when `data` equals bytes [offset, offset + data.size()) of the value.
bool check_pattern(std::uint64_t seed, std::uint64_t offset, std::string_view data);

// The whole value, for small sizes.
std::string make_value(std::uint64_t seed, std::size_t size);

}  // namespace kalavara::bench
