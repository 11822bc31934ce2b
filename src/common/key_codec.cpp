#include "common/key_codec.hpp"

#include <algorithm>

namespace kalavara {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void append_escaped(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

}  // namespace

Target split_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

Result<std::string> percent_decode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= encoded.size()) {
      return Error{Errc::kBadInput,
                   "malformed percent-encoding: '%' must be followed by two hex digits"};
    }
    const int hi = hex_value(encoded[i + 1]);
    const int lo = hex_value(encoded[i + 2]);
    if (hi < 0 || lo < 0) {
      return Error{Errc::kBadInput,
                   "malformed percent-encoding: '%' must be followed by two hex digits"};
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<std::string> decode_key(std::string_view encoded, std::size_t max_bytes) {
  max_bytes = std::min(max_bytes, kMaxKeyBytes);
  // Every decoded byte takes one to three encoded ones: a key that cannot
  // fit is refused before anything is decoded.
  if (encoded.size() > 3 * max_bytes) {
    return Error{Errc::kBadInput, "key is longer than " + std::to_string(max_bytes) + " bytes"};
  }
  auto key = percent_decode(encoded);
  if (!key) return key.error();
  if (key->empty()) return Error{Errc::kBadInput, "key is empty"};
  if (key->size() > max_bytes) {
    return Error{Errc::kBadInput, "key is longer than " + std::to_string(max_bytes) + " bytes"};
  }
  if (key->find('\0') != std::string::npos)
    return Error{Errc::kBadInput, "key contains a NUL byte"};
  return key;
}

Result<std::string> key_in_target(std::string_view target, std::string_view prefix,
                                  std::size_t max_bytes) {
  return decode_key(split_target(target).path.substr(prefix.size()), max_bytes);
}

std::string encode_key_path(std::string_view key) {
  std::string out;
  out.reserve(key.size() + key.size() / 2);
  std::size_t segment_start = 0;
  while (segment_start <= key.size()) {
    auto end = key.find('/', segment_start);
    if (end == std::string_view::npos) end = key.size();
    const auto segment = key.substr(segment_start, end - segment_start);
    const bool dot_segment = segment == "." || segment == "..";
    for (const char ch : segment) {
      const auto c = static_cast<unsigned char>(ch);
      if (is_unreserved(c) && !dot_segment) {
        out.push_back(ch);
      } else {
        append_escaped(out, c);
      }
    }
    if (end == key.size()) break;
    out.push_back('/');
    segment_start = end + 1;
  }
  return out;
}

std::string percent_encode_component(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      append_escaped(out, c);
    }
  }
  return out;
}

Result<std::optional<std::string>> checked_query_param(std::string_view query,
                                                       std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return std::optional<std::string>{std::string{}};
    auto value = percent_decode(pair.substr(eq + 1));
    if (!value) {
      return Error{Errc::kBadInput, std::string(name) + "= is not valid percent-encoding"};
    }
    return std::optional<std::string>{std::move(value).value()};
  }
  return std::optional<std::string>{};
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  auto found = checked_query_param(query, name);
  if (!found) return std::nullopt;
  return std::move(found).value();
}

}  // namespace kalavara
