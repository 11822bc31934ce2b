// Small text conversions the daemons share. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kalavara {

// A whole decimal number (digits only, no sign, no spaces, fits 64 bits).
std::optional<std::uint64_t> parse_decimal(std::string_view text);

// Lower-case hex of `bytes`.
std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace kalavara
