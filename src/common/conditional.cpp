#include "common/conditional.hpp"

#include <functional>

namespace kalavara {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `on_tag(tag, weak)` for each entity tag of a comma-separated list,
// tag including its quotes; stops early when it returns true. Malformed
// members are skipped.
bool any_tag(std::string_view list, const std::function<bool(std::string_view, bool)>& on_tag) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto member = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    bool weak = false;
    if (member.starts_with("W/")) {
      weak = true;
      member.remove_prefix(2);
    }
    if (member.size() < 2 || member.front() != '"' || member.back() != '"') continue;
    if (on_tag(member, weak)) return true;
  }
  return false;
}

}  // namespace

bool if_none_match_matches(std::string_view header, std::optional<std::string_view> current) {
  if (!current) return false;
  if (trim(header) == "*") return true;
  auto target = *current;
  if (target.starts_with("W/")) target.remove_prefix(2);
  return any_tag(header, [&](std::string_view tag, bool) { return tag == target; });
}

bool if_match_matches(std::string_view header, std::optional<std::string_view> current) {
  if (!current) return false;
  if (trim(header) == "*") return true;
  if (current->starts_with("W/")) return false;
  return any_tag(header, [&](std::string_view tag, bool weak) { return !weak && tag == *current; });
}

bool if_range_matches(std::string_view header, std::string_view current) {
  header = trim(header);
  return !header.starts_with("W/") && !current.starts_with("W/") && header == current;
}

}  // namespace kalavara

namespace kalavara {

Status check_write_preconditions(std::string_view if_match, std::string_view if_none_match,
                                 std::optional<std::string_view> current) {
  if (!if_match.empty() && !if_match_matches(if_match, current)) {
    return Error{Errc::kPreconditionFailed,
                 current ? "If-Match: the value's ETag is " + std::string(*current)
                         : std::string("If-Match: no such key")};
  }
  if (!if_none_match.empty() && if_none_match_matches(if_none_match, current)) {
    return Error{Errc::kPreconditionFailed,
                 "If-None-Match: the key exists with ETag " + std::string(*current)};
  }
  return {};
}

}  // namespace kalavara
