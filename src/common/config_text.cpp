#include "common/config_text.hpp"

#include <algorithm>
#include <array>

#include "common/text.hpp"

namespace kalavara {

namespace {

constexpr std::string_view kPrefix = "KALAVARA_";

std::string_view trim(std::string_view text) {
  constexpr std::string_view kBlank = " \t";
  const auto first = text.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kBlank) - first + 1);
}

// Quoted as TOML, in the form CLI11 reads back unchanged: it strips one pair
// of matching quotes and undoes no escapes, so a value holding '"' or '\'
// goes in single quotes (a TOML literal string, which has no escapes).
std::string quoted(std::string_view text) {
  const bool plain = text.find_first_of("\"\\") == std::string_view::npos;
  const char quote = plain || text.find('\'') != std::string_view::npos ? '"' : '\'';
  return quote + std::string(text) + quote;
}

std::string toml_value(std::string_view text) {
  if (text == "true" || text == "false" || parse_decimal(text)) return std::string(text);
  return quoted(text);
}

}  // namespace

std::string env_name(std::string_view option) {
  std::string name(kPrefix);
  for (const char c : option) {
    name += c == '-' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  return name;
}

bool is_script_variable(std::string_view name) {
  static constexpr std::array<std::string_view, 3> kNames = {"KALAVARA_JOBS", "KALAVARA_TEST_JOBS",
                                                             "KALAVARA_DATA"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end() ||
         name.starts_with("KALAVARA_FUZZ_");
}

Result<std::vector<std::string>> split_list(std::string_view text) {
  std::vector<std::string> items;
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    const auto item =
        trim(text.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (item.empty()) {
      return Error{Errc::kBadInput, "an empty item in a comma-separated list"};
    }
    items.emplace_back(item);
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

std::string toml_line(std::string_view key, const std::vector<std::string>& values, bool list) {
  std::string line = std::string(key) + " = ";
  if (!list) return line + (values.empty() ? std::string("\"\"") : toml_value(values.front()));
  line += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) line += ", ";
    line += toml_value(values[i]);
  }
  return line + ']';
}

}  // namespace kalavara
