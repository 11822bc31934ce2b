#include "master/etcd_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>

#include <charconv>

#include "common/base64.hpp"
#include "common/http_client.hpp"

namespace kalavara::etcd {
namespace json = boost::json;
namespace {

// gRPC status codes, as the gateway reports them in an error body.
constexpr std::int64_t kGrpcInvalidArgument = 3;
constexpr std::int64_t kGrpcDeadlineExceeded = 4;
constexpr std::int64_t kGrpcNotFound = 5;
constexpr std::int64_t kGrpcUnavailable = 14;

// The gateway writes int64 fields as JSON strings, and leaves out fields
// at their default (0, false, empty).
std::int64_t int64_field(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr) return 0;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->as_uint64());
  if (value->is_string()) {
    const auto& text = value->as_string();
    std::int64_t number = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec == std::errc{} && end == text.data() + text.size()) return number;
  }
  return 0;
}

bool bool_field(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_bool() && value->as_bool();
}

const json::object* object_field(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_object() ? &value->as_object() : nullptr;
}

Error malformed(std::string_view what) {
  return Error{Errc::kPeerFailed, "etcd answered with malformed JSON (" + std::string(what) + ")"};
}

Result<std::string> bytes_field(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr) return std::string();
  if (!value->is_string()) return malformed(name);
  auto decoded = base64_decode(value->as_string());
  if (!decoded) return malformed(name);
  return std::move(*decoded);
}

json::string encode(std::string_view bytes) { return json::string(base64_encode(bytes)); }

json::string number(std::int64_t value) { return json::string(std::to_string(value)); }

Result<RangeResult> parse_range(const json::object& object) {
  RangeResult result;
  result.more = bool_field(object, "more");
  result.count = int64_field(object, "count");
  if (const auto* header = object_field(object, "header")) {
    result.revision = int64_field(*header, "revision");
  }
  if (const auto* kvs = object.if_contains("kvs")) {
    if (!kvs->is_array()) return malformed("kvs");
    for (const auto& item : kvs->as_array()) {
      if (!item.is_object()) return malformed("kvs");
      const auto& entry = item.as_object();
      KeyValue kv;
      auto key = bytes_field(entry, "key");
      auto value = bytes_field(entry, "value");
      if (!key) return key.error();
      if (!value) return value.error();
      kv.key = std::move(*key);
      kv.value = std::move(*value);
      kv.create_revision = int64_field(entry, "create_revision");
      kv.mod_revision = int64_field(entry, "mod_revision");
      kv.lease = int64_field(entry, "lease");
      result.kvs.push_back(std::move(kv));
    }
  }
  return result;
}

json::object range_json(const RangeRequest& request) {
  json::object body;
  body["key"] = encode(request.key);
  if (!request.range_end.empty()) body["range_end"] = encode(request.range_end);
  if (request.limit != 0) body["limit"] = number(request.limit);
  if (request.revision != 0) body["revision"] = number(request.revision);
  if (request.keys_only) body["keys_only"] = true;
  if (request.count_only) body["count_only"] = true;
  return body;
}

std::string_view target_name(Compare::Target target) {
  switch (target) {
    case Compare::Target::kCreateRevision:
      return "CREATE";
    case Compare::Target::kModRevision:
      return "MOD";
    case Compare::Target::kValue:
      return "VALUE";
    case Compare::Target::kLease:
      return "LEASE";
  }
  return "MOD";
}

std::string_view result_name(Compare::Result result) {
  switch (result) {
    case Compare::Result::kEqual:
      return "EQUAL";
    case Compare::Result::kNotEqual:
      return "NOT_EQUAL";
    case Compare::Result::kGreater:
      return "GREATER";
    case Compare::Result::kLess:
      return "LESS";
  }
  return "EQUAL";
}

json::object compare_json(const Compare& compare) {
  json::object body;
  body["key"] = encode(compare.key);
  body["target"] = target_name(compare.target);
  body["result"] = result_name(compare.result);
  switch (compare.target) {
    case Compare::Target::kCreateRevision:
      body["create_revision"] = number(compare.number);
      break;
    case Compare::Target::kModRevision:
      body["mod_revision"] = number(compare.number);
      break;
    case Compare::Target::kValue:
      body["value"] = encode(compare.value);
      break;
    case Compare::Target::kLease:
      body["lease"] = number(compare.number);
      break;
  }
  return body;
}

json::object op_json(const Op& op) {
  json::object body;
  json::object request;
  request["key"] = encode(op.key);
  switch (op.kind) {
    case Op::Kind::kPut:
      request["value"] = encode(op.value);
      if (op.lease != 0) request["lease"] = number(op.lease);
      body["request_put"] = std::move(request);
      break;
    case Op::Kind::kDeleteRange:
      if (!op.range_end.empty()) request["range_end"] = encode(op.range_end);
      body["request_delete_range"] = std::move(request);
      break;
    case Op::Kind::kRange:
      if (!op.range_end.empty()) request["range_end"] = encode(op.range_end);
      if (op.limit != 0) request["limit"] = number(op.limit);
      body["request_range"] = std::move(request);
      break;
  }
  return body;
}

json::array ops_json(const std::vector<Op>& ops) {
  json::array array;
  for (const auto& op : ops) array.push_back(op_json(op));
  return array;
}

Result<json::object> parse_object(std::string_view body) {
  boost::system::error_code ec;
  auto value = json::parse(body, ec);
  if (ec || !value.is_object()) return malformed("not an object");
  return std::move(value.as_object());
}

// What to do with a failed attempt on one member.
enum class Next : std::uint8_t {
  kTryAnother,  // not applied there: another member may take it
  kLost,        // delivered, no answer: may have been applied
  kRefused,     // etcd refused it: not applied, and another would refuse it too
};

}  // namespace

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

Op Op::put(std::string key, std::string value, std::int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::erase(std::string key, std::string range_end) {
  Op op;
  op.kind = Kind::kDeleteRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

Op Op::range(std::string key, std::string range_end, std::int64_t limit) {
  Op op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  op.limit = limit;
  return op;
}

Client::Client(Settings settings) : settings_(std::move(settings)) {}

Counters Client::counters() const {
  return {requests_.load(std::memory_order_relaxed), failovers_.load(std::memory_order_relaxed),
          failures_.load(std::memory_order_relaxed)};
}

Async<std::string> Client::call(std::string_view path, std::string body, bool read_only) {
  const auto& endpoints = settings_.endpoints;
  if (endpoints.empty()) co_return Error{Errc::kUnavailable, "no etcd endpoint given"};
  requests_.fetch_add(1, std::memory_order_relaxed);
  const auto give_up = std::chrono::steady_clock::now() + settings_.election_wait;
  auto backoff = std::chrono::milliseconds(50);
  std::string reasons;
  bool lost = false;  // some attempt was delivered and not answered
  for (;;) {
    // A member that answered it cannot serve now: the cluster is electing
    // a leader, which a short wait outlasts.
    bool electing = false;
    const std::size_t first = preferred_.load(std::memory_order_relaxed) % endpoints.size();
    for (std::size_t tried = 0; tried < endpoints.size(); ++tried) {
      const std::size_t index = (first + tried) % endpoints.size();
      const auto& endpoint = endpoints[index];
      if (tried > 0) failovers_.fetch_add(1, std::memory_order_relaxed);
      auto answer = co_await http::send_request(http::Verb::post, endpoint, std::string(path), body,
                                                settings_.timeout, settings_.max_response_bytes,
                                                http::Sign::kAnonymous);
      Next next = Next::kTryAnother;
      std::string reason;
      if (!answer) {
        next = answer.error().code == Errc::kNoAnswer ? Next::kLost : Next::kTryAnother;
        reason = answer.error().message;
      } else if (answer->status == 200) {
        preferred_.store(index, std::memory_order_relaxed);
        co_return std::move(answer->body);
      } else {
        // {"error": ..., "message": ..., "code": <gRPC status>}
        auto error = parse_object(answer->body);
        const std::int64_t code = error ? int64_field(*error, "code") : 0;
        const auto* message = error ? error->if_contains("message") : nullptr;
        reason =
            endpoint.text + ": " +
            (message != nullptr && message->is_string() ? std::string(message->as_string())
                                                        : "HTTP " + std::to_string(answer->status));
        if (code == kGrpcUnavailable) {
          // No leader, or a member that cannot serve: the request was not
          // proposed. Anything else unavailable ("leader changed" while it
          // waited) may have been.
          const bool not_proposed = reason.find("no leader") != std::string::npos ||
                                    reason.find("not capable") != std::string::npos ||
                                    reason.find("too many requests") != std::string::npos;
          electing = electing || not_proposed || reason.find("leader changed") != std::string::npos;
          next = not_proposed ? Next::kTryAnother : Next::kLost;
        } else if (code == kGrpcDeadlineExceeded) {
          next = Next::kLost;
        } else if (code == kGrpcNotFound) {
          failures_.fetch_add(1, std::memory_order_relaxed);
          co_return Error{Errc::kNotFound, reason};
        } else if (code == kGrpcInvalidArgument || (code != 0 && answer->status < 500)) {
          next = Next::kRefused;
        }
      }
      if (!reasons.empty()) reasons += "; ";
      reasons += reason;
      if (next == Next::kRefused) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        co_return Error{Errc::kPeerFailed, "etcd refused the request: " + reason};
      }
      if (next == Next::kLost) {
        lost = true;
        // A write that may have landed is not sent again here: its caller
        // decides (a compare makes it safe to resend; a read-back tells).
        if (!read_only) break;
      }
    }
    // Members that cannot be reached are not waited for (etcd down is a
    // quick 503); an election is.
    const bool resend_safe = read_only || !lost;
    if (!electing || !resend_safe || std::chrono::steady_clock::now() + backoff >= give_up) break;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_after(backoff);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(400));
    reasons.clear();
  }
  failures_.fetch_add(1, std::memory_order_relaxed);
  co_return Error{lost ? Errc::kNoAnswer : Errc::kUnavailable, "etcd: " + reasons};
}

Async<RangeResult> Client::range(const RangeRequest& request) {
  auto body = co_await call("/v3/kv/range", json::serialize(range_json(request)), true);
  if (!body) co_return body.error();
  auto object = parse_object(*body);
  if (!object) co_return object.error();
  co_return parse_range(*object);
}

Async<TxnResult> Client::txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                             const std::vector<Op>& failure) {
  json::object request;
  json::array compare_array;
  for (const auto& compare : compares) compare_array.push_back(compare_json(compare));
  request["compare"] = std::move(compare_array);
  request["success"] = ops_json(success);
  request["failure"] = ops_json(failure);
  const auto writes = [](const std::vector<Op>& ops) {
    return std::any_of(ops.begin(), ops.end(),
                       [](const Op& op) { return op.kind != Op::Kind::kRange; });
  };
  auto body =
      co_await call("/v3/kv/txn", json::serialize(request), !writes(success) && !writes(failure));
  if (!body) co_return body.error();
  auto object = parse_object(*body);
  if (!object) co_return object.error();
  TxnResult result;
  result.succeeded = bool_field(*object, "succeeded");
  if (const auto* header = object_field(*object, "header")) {
    result.revision = int64_field(*header, "revision");
  }
  if (const auto* responses = object->if_contains("responses")) {
    if (!responses->is_array()) co_return malformed("responses");
    for (const auto& item : responses->as_array()) {
      if (!item.is_object()) co_return malformed("responses");
      if (const auto* range = object_field(item.as_object(), "response_range")) {
        auto parsed = parse_range(*range);
        if (!parsed) co_return parsed.error();
        result.ranges.push_back(std::move(*parsed));
      }
    }
  }
  co_return result;
}

Async<std::int64_t> Client::grant_lease(std::int64_t ttl) {
  json::object request;
  request["TTL"] = number(ttl);
  auto body = co_await call("/v3/lease/grant", json::serialize(request), false);
  if (!body) co_return body.error();
  auto object = parse_object(*body);
  if (!object) co_return object.error();
  const auto id = int64_field(*object, "ID");
  if (id == 0) co_return malformed("no lease ID");
  co_return id;
}

Async<std::int64_t> Client::keep_alive(std::int64_t lease) {
  json::object request;
  request["ID"] = number(lease);
  // A renewal changes nothing but the lease's deadline: safe to resend.
  auto body = co_await call("/v3/lease/keepalive", json::serialize(request), true);
  if (!body) co_return body.error();
  // A stream of one message: {"result": {..., "TTL": "<seconds>"}}; an
  // expired lease has no TTL.
  auto object = parse_object(*body);
  if (!object) co_return object.error();
  const auto* result = object_field(*object, "result");
  if (result == nullptr) co_return malformed("no keep-alive result");
  const auto ttl = int64_field(*result, "TTL");
  if (ttl <= 0)
    co_return Error{Errc::kNotFound, "etcd lease " + std::to_string(lease) + " expired"};
  co_return ttl;
}

boost::asio::awaitable<Status> Client::revoke_lease(std::int64_t lease) {
  json::object request;
  request["ID"] = number(lease);
  auto body = co_await call("/v3/lease/revoke", json::serialize(request), true);
  if (!body) co_return body.error();
  co_return Status{};
}

}  // namespace kalavara::etcd
