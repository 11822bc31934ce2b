// The text forms a daemon's options take besides flags (docs/operations.md,
// "Configuration"): the KALAVARA_* variable each is read from, how a list
// and a true/false value are written in one, and the TOML lines
// --dump-config prints. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kalavara {

// "KALAVARA_", then the long option name upper-cased with '-' as '_':
// "data-dir" -> "KALAVARA_DATA_DIR".
std::string env_name(std::string_view option);

// True for the KALAVARA_* variables the project's own scripts read
// (KALAVARA_JOBS, KALAVARA_TEST_JOBS, KALAVARA_DATA, KALAVARA_FUZZ_*): they
// are no daemon option, and no typo of one either.
bool is_script_variable(std::string_view name);

// The items of a list given in a variable: separated by commas, the spaces
// and tabs around each dropped ("a, b" -> {"a", "b"}). Fails with kBadInput
// when an item is empty ("a,,b", "a,", "").
Result<std::vector<std::string>> split_list(std::string_view text);

// A true/false value in a variable or a file: "true" or "1", "false" or "0";
// nullopt for anything else.
std::optional<bool> parse_bool(std::string_view text);

// One `key = value` line (no newline) that CLI11's TOML reader reads back as
// `values`: a `list` in brackets even when it holds one item, whole decimal
// numbers and true/false bare, any other text quoted. A value holding '#'
// does not read back: CLI11 takes the rest of the line for a comment.
std::string toml_line(std::string_view key, const std::vector<std::string>& values, bool list);

}  // namespace kalavara
