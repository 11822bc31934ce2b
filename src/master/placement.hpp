// Which volumes hold a key: rendezvous (highest-random-weight) hashing.
//
// Every volume gets a score for the key; the ranking by score is the key's
// placement and its top N are the replicas. Adding a volume moves only the
// keys for which the new volume scores highest (about 1/n of them), removing
// one moves only its own keys. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.hpp"

namespace kalavara {

// The score of a volume for a key; both are digests so that neither keys nor
// volume names can be chosen to skew the ranking.
std::uint64_t placement_score(const KeyDigest& key, const KeyDigest& volume);

// Indices into `volumes` (canonical base URLs), best first, at most `count`.
// Ties (practically impossible) break by URL so every master agrees.
std::vector<std::size_t> rank_volumes(const KeyDigest& key, const std::vector<std::string>& volumes,
                                      std::size_t count);

}  // namespace kalavara
