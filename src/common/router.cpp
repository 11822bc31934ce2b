#include "common/router.hpp"

#include <algorithm>

namespace kalavara::http {

Response text_response(HttpStatus status, std::string_view message) {
  Response response{status, 11};
  response.set(Field::content_type, "text/plain; charset=utf-8");
  response.body().reserve(message.size() + 1);
  response.body().append(message);
  response.body().push_back('\n');
  response.prepare_payload();
  return response;
}

Response error_response(const Error& error) {
  return text_response(static_cast<HttpStatus>(error.status), error.message);
}

void Router::add(std::string path, Match match, std::vector<Verb> methods, Handler handler) {
  routes_.push_back({std::move(path), match, std::move(methods), std::move(handler)});
}

std::variant<const Handler*, Response> Router::resolve(Verb method, std::string_view path) const {
  for (const auto& route : routes_) {
    const bool matches =
        route.match == Match::kExact ? path == route.path : path.starts_with(route.path);
    if (!matches) continue;
    if (std::find(route.methods.begin(), route.methods.end(), method) != route.methods.end()) {
      return &route.handler;
    }
    std::string allow;
    for (const auto verb : route.methods) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(verb));
    }
    auto response = text_response(HttpStatus::method_not_allowed,
                                  "method not allowed; this path takes " + allow);
    response.set(Field::allow, allow);
    return response;
  }
  return text_response(HttpStatus::not_found, "no such endpoint: " + std::string(path));
}

}  // namespace kalavara::http
