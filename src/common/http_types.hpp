// The HTTP vocabulary shared by handlers, the router, the server and the client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kalavara::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

using Verb = bhttp::verb;
using HttpStatus = bhttp::status;
using Field = bhttp::field;
using RequestHeader = bhttp::request_header<>;
using Response = bhttp::response<bhttp::string_body>;

// A text/plain response whose body is `message` plus a newline.
Response text_response(HttpStatus status, std::string_view message);

// A 200 application/json response with `body`.
Response json_response(std::string body);

// Appends the HTTP/1.x wire form of `response` to `out`: status line,
// header fields, blank line and, when `with_body`, the body. One contiguous
// buffer is much cheaper to send than Beast's serializer's buffer sequence.
// The server passes a buffer it keeps per connection, so its capacity
// carries over from one response to the next and appending rarely grows it.
void serialize_response(const Response& response, bool with_body, std::string& out);

// The HTTP status that reports an expected failure of kind `code`.
HttpStatus status_of(Errc code);

// The response for an expected failure: its status and one-line reason.
Response error_response(const Error& error);

// The body length `request` declares (Content-Length), if it declares one.
std::optional<std::uint64_t> declared_length(const RequestHeader& request);

// The failure for a value of more than `max_bytes` (--max-value-bytes):
// kTooLarge (413) with the limit.
Error value_too_large(std::uint64_t max_bytes);

// Fails as value_too_large() when `request` declares a body of more than
// `max_bytes`; 0 is no limit. A chunked body is not known yet: it passes,
// and whoever stores it counts.
Status check_declared_length(const RequestHeader& request, std::uint64_t max_bytes);

}  // namespace kalavara::http
