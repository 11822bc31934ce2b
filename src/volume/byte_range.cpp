#include "volume/byte_range.hpp"

#include <cctype>
#include <limits>
#include <optional>

namespace kalavara {
namespace {

constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Digits only, at least one. Saturates instead of overflowing: a position
// past 2^64 is past the end of any value, which is what it means.
std::optional<std::uint64_t> parse_position(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

RangeDecision decide_range(std::string_view header, std::uint64_t size) {
  using Kind = RangeDecision::Kind;
  const RangeDecision whole{};
  header = trim(header);
  if (!iequals_prefix(header, "bytes=")) return whole;
  const auto spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return whole;
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  const auto first_text = spec.substr(0, dash);
  const auto last_text = spec.substr(dash + 1);

  if (first_text.empty()) {  // suffix: the last n bytes
    const auto n = parse_position(last_text);
    if (!n) return whole;
    if (*n == 0 || size == 0) return {Kind::kUnsatisfiable, 0, 0};
    return {Kind::kPartial, *n >= size ? 0 : size - *n, size - 1};
  }
  const auto first = parse_position(first_text);
  if (!first) return whole;
  std::uint64_t last = kMax;
  if (!last_text.empty()) {
    const auto parsed = parse_position(last_text);
    if (!parsed || *parsed < *first) return whole;
    last = *parsed;
  }
  if (*first >= size) return {Kind::kUnsatisfiable, 0, 0};
  return {Kind::kPartial, *first, last >= size ? size - 1 : last};
}

}  // namespace kalavara
