#include "master/placement.hpp"

#include <algorithm>
#include <numeric>

namespace kalavara {
namespace {

// The finaliser of SplitMix64: a bijection that spreads every input bit over
// the whole output.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::uint64_t placement_score(const KeyDigest& key, const KeyDigest& volume) {
  return mix64(key.prefix64() ^ mix64(volume.prefix64()));
}

std::vector<std::size_t> rank_volumes(const KeyDigest& key, const std::vector<std::string>& volumes,
                                      std::size_t count) {
  std::vector<std::uint64_t> scores(volumes.size());
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    scores[i] = placement_score(key, digest_of(volumes[i]));
  }
  std::vector<std::size_t> order(volumes.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::min(count, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      if (scores[a] != scores[b]) return scores[a] > scores[b];
                      return volumes[a] < volumes[b];
                    });
  order.resize(count);
  return order;
}

}  // namespace kalavara
