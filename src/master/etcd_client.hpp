// A small client of etcd's v3 API over its JSON gateway (POST /v3/kv/range,
// /v3/kv/txn, /v3/lease/*), on the daemons' own keep-alive HTTP client: no
// gRPC stack to build or link (docs/scaling.md says why this transport).
// Keys and values are bytes here; the base64 and the int64-as-string of the
// gateway stay inside.
//
// Several endpoints (the members of one cluster): a call goes to the one
// that answered last and moves on to the next when a member cannot be
// reached, or answers that it cannot serve (no leader, not enough members),
// so losing a member of three costs one failed connection, not an error.
//
// Failures, as http::send_request's:
//   kUnavailable  no member took the request: it was not applied;
//   kNoAnswer     a member had the whole request and no answer came (a
//                 timeout, a broken connection, a member that answered
//                 "request timed out"): it may or may not have been
//                 applied, and a caller that must know reads back;
//   kPeerFailed   etcd refused the request (too large, a compacted
//                 revision, ...): it was not applied.
// Reads are retried on the next member whatever went wrong (a read changes
// nothing). Writes are retried only when they were not delivered. While
// the cluster elects a leader, a call waits for it (Settings::election_wait).
//
// Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/url.hpp"

namespace kalavara::etcd {

template <class T>
using Async = boost::asio::awaitable<Result<T>>;

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
};

// The smallest key above every key starting with `prefix` (etcd's
// range_end for a prefix); "\0" (every key) when `prefix` is all 0xff.
std::string prefix_end(std::string_view prefix);

struct RangeRequest {
  std::string key;
  std::string range_end;      // empty: `key` alone
  std::int64_t limit = 0;     // 0: no limit
  std::int64_t revision = 0;  // 0: the latest; otherwise a snapshot at that revision
  bool keys_only = false;
  bool count_only = false;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;          // the limit cut the range short
  std::int64_t count = 0;     // keys in the whole range
  std::int64_t revision = 0;  // the store's revision the range was read at
};

// One comparison of a transaction. A key that does not exist compares as
// revision 0 (create and mod) and as an empty value.
struct Compare {
  enum class Target : std::uint8_t { kCreateRevision, kModRevision, kValue, kLease };
  enum class Result : std::uint8_t { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kModRevision;
  Result result = Result::kEqual;
  std::int64_t number = 0;  // the revision or lease compared with
  std::string value;        // for kValue
};

// One operation of a transaction.
struct Op {
  enum class Kind : std::uint8_t { kPut, kDeleteRange, kRange };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;       // kPut
  std::string range_end;   // kDeleteRange, kRange: empty for `key` alone
  std::int64_t lease = 0;  // kPut: 0 for none
  std::int64_t limit = 0;  // kRange

  static Op put(std::string key, std::string value, std::int64_t lease = 0);
  static Op erase(std::string key, std::string range_end = {});
  static Op range(std::string key, std::string range_end = {}, std::int64_t limit = 0);
};

struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;        // the store's revision after the transaction
  std::vector<RangeResult> ranges;  // the answers of the branch's kRange ops, in order
};

struct Settings {
  std::vector<BaseUrl> endpoints;  // at least one
  // Each request to one member, all in.
  std::chrono::milliseconds timeout{3000};
  // How long a call keeps trying while members answer that they cannot
  // serve now (no leader, leader changed: an election, which takes about a
  // second): the whole round of members again, after a growing pause.
  // Members that cannot be reached are not waited for.
  std::chrono::milliseconds election_wait{3000};
  // The largest answer taken (a range's): etcd's default request limit is
  // 1.5 MiB, its answers are not bounded; ranges are paged well below this.
  std::uint64_t max_response_bytes = 64ULL * 1024 * 1024;
};

// What the client did, for metrics.
struct Counters {
  std::uint64_t requests = 0;
  std::uint64_t failovers = 0;  // moved on to another member
  std::uint64_t failures = 0;   // calls that failed on every member tried
};

class Client {
 public:
  explicit Client(Settings settings);

  Async<RangeResult> range(const RangeRequest& request);

  // If every compare holds, the `success` ops, else the `failure` ops, as one
  // atomic step. etcd refuses a transaction that writes one key twice.
  Async<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                       const std::vector<Op>& failure = {});

  // A lease of `ttl` seconds: its id.
  Async<std::int64_t> grant_lease(std::int64_t ttl);
  // Renews a lease: the TTL left, or kNotFound when it has expired.
  Async<std::int64_t> keep_alive(std::int64_t lease);
  // Ends a lease, deleting every key attached to it.
  boost::asio::awaitable<Status> revoke_lease(std::int64_t lease);

  Counters counters() const;

 private:
  // POSTs `body` to `path`, moving on from member to member as described
  // above; `read_only` lets any failure move on.
  Async<std::string> call(std::string_view path, std::string body, bool read_only);

  const Settings settings_;
  std::atomic<std::size_t> preferred_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failovers_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace kalavara::etcd
