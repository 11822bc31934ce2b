#include "common/checksum.hpp"

#include "common/text.hpp"

#include <xxhash.h>

#include <cstdlib>

namespace kalavara {

struct ValueHasher::State {
  XXH3_state_t* xxh = XXH3_createState();
};

ValueHasher::ValueHasher() : state_(std::make_unique<State>()) {
  // Allocation failure or a broken library: a bug, not an expected failure.
  if (state_->xxh == nullptr || XXH3_128bits_reset(state_->xxh) != XXH_OK) std::abort();
}

ValueHasher::~ValueHasher() { XXH3_freeState(state_->xxh); }

void ValueHasher::update(std::span<const char> bytes) {
  XXH3_128bits_update(state_->xxh, bytes.data(), bytes.size());
}

Checksum ValueHasher::finish() const {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state_->xxh));
  Checksum checksum;
  for (std::size_t i = 0; i < checksum.size(); ++i) checksum[i] = canonical.digest[i];
  return checksum;
}

std::string checksum_hex(const Checksum& checksum) { return to_hex(checksum); }

std::string etag_for(std::string_view checksum_hex) {
  std::string etag;
  etag.reserve(checksum_hex.size() + 2);
  etag.push_back('"');
  etag.append(checksum_hex);
  etag.push_back('"');
  return etag;
}

}  // namespace kalavara
