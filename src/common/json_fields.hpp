// Reading the fields of JSON objects parsed with Boost.JSON, as the
// daemons' messages use them. Pure; thread-safe.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kalavara {

// The field `name` as a whole number from 0 up; nullopt when it is absent or
// anything else.
std::optional<std::uint64_t> json_uint(const boost::json::object& object, std::string_view name);

// The field `name` as a string; nullopt when it is absent or anything else.
std::optional<std::string> json_string(const boost::json::object& object, std::string_view name);

}  // namespace kalavara
