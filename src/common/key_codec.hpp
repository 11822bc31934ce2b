// Keys as they travel in URLs. Pure functions, no I/O; thread-safe.
//
// A key is the request path after "/store/", percent-decoded: any bytes
// except NUL, 1 to kMaxKeyBytes long. '+' is a literal plus, not a space, and
// the query string is never part of the key.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kalavara {

inline constexpr std::size_t kMaxKeyBytes = 1024;
inline constexpr std::string_view kStorePrefix = "/store/";

// A request target split at the first '?'. `query` excludes the '?'.
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target);

// Decodes %XX escapes (RFC 3986). Fails with kBadInput on a '%' not followed by two
// hex digits.
Result<std::string> percent_decode(std::string_view encoded);

// Decodes and validates the key in `encoded` (the path after "/store/").
// Fails with kBadInput and a one-line reason when the key is empty, longer than
// `max_bytes` (at most kMaxKeyBytes) once decoded, contains NUL, or has a
// malformed escape.
Result<std::string> decode_key(std::string_view encoded, std::size_t max_bytes = kMaxKeyBytes);

// Decodes and validates the key of a request target under `prefix` (e.g.
// "/store/"): the path after the prefix, without the query. Fails as
// decode_key does.
Result<std::string> key_in_target(std::string_view target, std::string_view prefix,
                                  std::size_t max_bytes = kMaxKeyBytes);

// Encodes `key` as a URL path suffix that any RFC 3986 client sends back
// unchanged: everything but unreserved characters and '/' is escaped, and so
// are the dots of "." and ".." segments, which clients would otherwise
// resolve away ("a/../b" would become "b").
std::string encode_key_path(std::string_view key);

// Escapes everything but unreserved characters, for use in a query value.
std::string percent_encode_component(std::string_view text);

// The decoded value of the first `name=value` pair in `query`: nullopt when
// absent; kBadInput naming the parameter when its value is not valid
// percent-encoding (taken as absent, a bad parameter would be dropped
// without a word). A bare `name` yields an empty string.
Result<std::optional<std::string>> checked_query_param(std::string_view query,
                                                       std::string_view name);

// As checked_query_param(), with an undecodable value taken as absent: for
// flags such as `?list`, whose value does not matter.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace kalavara
