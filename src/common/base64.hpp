// Standard base64 (RFC 4648, with padding), for protocols that carry bytes
// in text: etcd's JSON gateway, Content-MD5.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kalavara {

std::string base64_encode(std::string_view bytes);

// nullopt when `text` is not padded base64 (wrong length, a stray
// character, padding in the middle).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace kalavara
