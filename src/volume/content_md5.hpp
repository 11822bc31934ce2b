// Content-MD5 (RFC 1864): the base64 MD5 of a request body, which clients
// send so that corruption in transit is caught before anything is stored.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "common/result.hpp"

namespace kalavara {

using Md5Digest = std::array<std::uint8_t, 16>;

// Decodes a Content-MD5 value. Fails with kBadInput when it is not the base64 of
// exactly 16 bytes.
Result<Md5Digest> parse_content_md5(std::string_view header);

// Incremental MD5 (OpenSSL). Not thread-safe.
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(std::span<const char> bytes);
  Md5Digest finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kalavara
