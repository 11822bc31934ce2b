#include "common/router.hpp"

#include <algorithm>

#include "common/text.hpp"

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

void serialize_response(const Response& response, bool with_body, std::string& out) {
  out += response.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(response.result_int());
  out += ' ';
  out += response.reason();
  out += "\r\n";
  for (const auto& field : response) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
  if (with_body) out += response.body();
}

Response json_response(std::string body) {
  Response response{HttpStatus::ok, 11};
  response.set(Field::content_type, "application/json");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

HttpStatus status_of(Errc code) {
  switch (code) {
    case Errc::kBadInput:
      return HttpStatus::bad_request;
    case Errc::kNotFound:
      return HttpStatus::not_found;
    case Errc::kConflict:
      return HttpStatus::conflict;
    case Errc::kPreconditionFailed:
      return HttpStatus::precondition_failed;
    case Errc::kUnauthorized:
      return HttpStatus::unauthorized;
    case Errc::kForbidden:
      return HttpStatus::forbidden;
    case Errc::kTooLarge:
      return HttpStatus::payload_too_large;
    case Errc::kHeaderTooLarge:
      return HttpStatus::request_header_fields_too_large;
    case Errc::kLengthRequired:
      return HttpStatus::length_required;
    case Errc::kTimedOut:
      return HttpStatus::request_timeout;
    case Errc::kNotImplemented:
      return HttpStatus::not_implemented;
    case Errc::kNoSpace:
      return HttpStatus::insufficient_storage;
    case Errc::kUnavailable:
      return HttpStatus::service_unavailable;
    case Errc::kNoAnswer:
      return HttpStatus::gateway_timeout;
    case Errc::kPeerFailed:
      return HttpStatus::bad_gateway;
    case Errc::kInternal:
      break;
  }
  return HttpStatus::internal_server_error;
}

Response error_response(const Error& error) {
  return text_response(status_of(error.code), error.message);
}

std::optional<std::uint64_t> declared_length(const RequestHeader& request) {
  return parse_decimal(request[Field::content_length]);
}

Error value_too_large(std::uint64_t max_bytes) {
  return Error{Errc::kTooLarge,
               "value is larger than " + std::to_string(max_bytes) + " bytes (--max-value-bytes)"};
}

Status check_declared_length(const RequestHeader& request, std::uint64_t max_bytes) {
  if (max_bytes == 0) return Status{};
  if (const auto length = declared_length(request); length && *length > max_bytes) {
    return value_too_large(max_bytes);
  }
  return Status{};
}

void Router::add(std::string path, Match match, std::vector<Verb> methods, Handler handler,
                 WhileStopping while_stopping) {
  std::size_t id = 0;
  std::size_t labels = 0;
  for (const auto& route : routes_) {
    labels = std::max(labels, route.id);
    if (route.path == path && route.match == match) id = route.id;
  }
  if (id == 0) id = labels + 1;
  routes_.push_back(
      {std::move(path), match, std::move(methods), std::move(handler), while_stopping, id});
}

std::vector<std::string> Router::route_labels() const {
  std::vector<std::string> labels(1);
  for (const auto& route : routes_) {
    if (route.id >= labels.size()) labels.resize(route.id + 1);
    labels[route.id] = route.path;
  }
  return labels;
}

std::variant<Router::Matched, Response> Router::resolve(Verb method, std::string_view path) const {
  const auto matches = [path](const Route& route) {
    return route.match == Match::kExact ? path == route.path : path.starts_with(route.path);
  };
  // The first route whose path matches names the resource; later routes
  // with the same path and match add methods to it.
  const Route* resource = nullptr;
  std::string allow;
  for (const auto& route : routes_) {
    if (resource == nullptr) {
      if (!matches(route)) continue;
      resource = &route;
    } else if (route.path != resource->path || route.match != resource->match) {
      continue;
    }
    if (std::find(route.methods.begin(), route.methods.end(), method) != route.methods.end()) {
      return Matched{&route.handler, resource->path, resource->id, route.while_stopping};
    }
    for (const auto verb : route.methods) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(verb));
    }
  }
  if (resource == nullptr) {
    return text_response(HttpStatus::not_found, "no such endpoint: " + std::string(path));
  }
  auto response =
      text_response(HttpStatus::method_not_allowed, "method not allowed; this path takes " + allow);
  response.set(Field::allow, allow);
  return response;
}

void add_health_route(Router& router) {
  router.add(
      "/healthz", Router::Match::kExact, {Verb::get, Verb::head},
      [](Exchange&) -> asio::awaitable<Reply> {
        co_return json_response("{\"alive\":true,\"reason\":\"serving\"}\n");
      },
      Router::WhileStopping::kServe);
}

}  // namespace kalavara::http
