#include "common/digest.hpp"

#include "common/text.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace kalavara {

std::uint64_t KeyDigest::prefix64() const {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | bytes[i];
  return value;
}

std::string KeyDigest::hex() const { return to_hex(bytes); }

KeyDigest digest_of(std::string_view data) {
  KeyDigest digest;
  unsigned int length = 0;
  // EVP_Digest only fails on allocation failure or a broken OpenSSL: a bug.
  if (EVP_Digest(data.data(), data.size(), digest.bytes.data(), &length, EVP_sha256(), nullptr) !=
          1 ||
      length != digest.bytes.size()) {
    std::abort();
  }
  return digest;
}

}  // namespace kalavara
