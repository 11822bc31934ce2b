// HTTP conditional requests (RFC 9110 section 13): matching entity tags
// against If-Match / If-None-Match / If-Range. Pure; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace kalavara {

// Whether an If-None-Match header value (a list of entity tags, or "*")
// matches a resource whose current ETag is `current` (nullopt: no resource).
// Uses the weak comparison, as RFC 9110 13.1.2 requires: W/"x" matches "x".
bool if_none_match_matches(std::string_view header, std::optional<std::string_view> current);

// Whether an If-Match header value matches: "*" matches any existing
// resource; otherwise the strong comparison (a weak tag never matches).
bool if_match_matches(std::string_view header, std::optional<std::string_view> current);

// Whether an If-Range header value lets a Range apply: only an exact strong
// ETag match does (a date or a weak tag makes the server send the whole value).
bool if_range_matches(std::string_view header, std::string_view current);

}  // namespace kalavara

#include "common/result.hpp"

namespace kalavara {

// The preconditions of a write (PUT or DELETE) against the key's current
// ETag (nullopt: the key is absent). `if_match` and `if_none_match` are the
// header values, empty when absent. Fails with kPreconditionFailed and the reason when one
// fails: If-Match that does not match, or If-None-Match that does ("*" on an
// existing key: a create-only write).
Status check_write_preconditions(std::string_view if_match, std::string_view if_none_match,
                                 std::optional<std::string_view> current);

}  // namespace kalavara
