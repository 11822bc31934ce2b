#include "volume/content_md5.hpp"

#include <openssl/evp.h>

#include <cstdlib>
#include <string>

namespace kalavara {

Result<Md5Digest> parse_content_md5(std::string_view header) {
  const Error malformed{Errc::kBadInput, "Content-MD5 must be the base64 of a 16-byte MD5 digest"};
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  // 16 bytes are 24 base64 characters, the last two "==".
  if (header.size() != 24 || !header.ends_with("==")) return malformed;
  unsigned char decoded[18] = {};
  const int length = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(header.data()),
                                     static_cast<int>(header.size()));
  // EVP_DecodeBlock counts the padding as zero bytes: 24 characters give 18.
  if (length != 18) return malformed;
  Md5Digest digest;
  for (std::size_t i = 0; i < digest.size(); ++i) digest[i] = decoded[i];
  return digest;
}

struct Md5::State {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
};

Md5::Md5() : state_(std::make_unique<State>()) {
  if (state_->context == nullptr || EVP_DigestInit_ex(state_->context, EVP_md5(), nullptr) != 1) {
    std::abort();  // allocation failure or a broken OpenSSL: a bug
  }
}

Md5::~Md5() { EVP_MD_CTX_free(state_->context); }

void Md5::update(std::span<const char> bytes) {
  EVP_DigestUpdate(state_->context, bytes.data(), bytes.size());
}

Md5Digest Md5::finish() {
  Md5Digest digest;
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(state_->context, digest.data(), &length) != 1 || length != digest.size()) {
    std::abort();
  }
  return digest;
}

}  // namespace kalavara
