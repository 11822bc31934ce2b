#include "common/json_fields.hpp"

namespace kalavara {

std::optional<std::uint64_t> json_uint(const boost::json::object& object, std::string_view name) {
  const auto* field = object.if_contains(name);
  if (field == nullptr) return std::nullopt;
  if (const auto* u = field->if_uint64()) return *u;
  if (const auto* i = field->if_int64(); i != nullptr && *i >= 0) {
    return static_cast<std::uint64_t>(*i);
  }
  return std::nullopt;
}

std::optional<std::string> json_string(const boost::json::object& object, std::string_view name) {
  const auto* field = object.if_contains(name);
  if (field == nullptr || !field->is_string()) return std::nullopt;
  return std::string(field->get_string());
}

}  // namespace kalavara
