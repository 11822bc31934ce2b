#include "common/request_auth.hpp"

#include "common/http_server.hpp"
#include "common/signature.hpp"

namespace kalavara::http {
namespace {

bool carries_signature(std::string_view target) {
  return target.find("?sig=") != std::string_view::npos ||
         target.find("&sig=") != std::string_view::npos;
}

// nullopt when `request` is let in; otherwise the answer instead.
std::optional<Response> refusal(const Access& access, const RequestHeader& request) {
  const bool has_token = access.admin_token != nullptr && !access.admin_token->empty();
  if (has_token && bearer_matches(request[Field::authorization], *access.admin_token)) {
    return std::nullopt;
  }
  const auto target = request.target();
  if (access.signer != nullptr) {
    auto verified = access.signer->verify(request.method_string(), target);
    if (verified) return std::nullopt;
    if (!has_token || carries_signature(target)) return error_response(verified.error());
  }
  auto response = error_response(
      {Errc::kUnauthorized, "this endpoint needs Authorization: Bearer <the admin token>"});
  response.set(Field::www_authenticate, "Bearer");
  return response;
}

}  // namespace

Handler guarded(Access access, Handler handler) {
  const bool has_token = access.admin_token != nullptr && !access.admin_token->empty();
  if (access.signer == nullptr && !has_token) return handler;
  return [access, handler = std::move(handler)](Exchange& exchange) -> asio::awaitable<Reply> {
    if (auto refused = refusal(access, exchange.request())) co_return std::move(*refused);
    co_return co_await handler(exchange);
  };
}

}  // namespace kalavara::http
