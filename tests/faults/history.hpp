// The fault suite's record of what clients did and saw, and the checker that
// says whether what is read back could have come from it. Pure: no sockets,
// no processes, so the checker itself is unit-tested (checker_test.cpp).
//
// The model is a register per key, as Jepsen checks one. Every operation has
// a start, an end and an outcome:
//   - acknowledged: the store said it happened (201, 204, a read's answer);
//   - refused: the store said it did not (a 4xx, a 5xx other than 504);
//   - unknown: no verdict (a timeout, a 504, a broken connection). It may
//     or may not have happened; if it did, it is ordered at an instant
//     between its start and its end, even when its commit lands later: a
//     write's version is fixed when the master redirects it, while its
//     client waits, and a delete's when the master takes it.
// A read of value X (or of nothing) is explained by a write of X (or a
// delete, or the key's initial absence) that was not refused, began before
// the read ended, and was not certainly superseded: no acknowledged write or
// delete of the key began after it ended and ended before the read began.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kalavara::faults {

using Clock = std::chrono::steady_clock;

// Each written value is made from its id: different ids give different
// bytes (at any size of 8 bytes or more), so a value read back is either
// byte-exact one that was written or matches none (torn, mixed, foreign).
// Values are told apart by digest and size.
std::string make_value(std::uint64_t id, std::size_t size);
std::uint64_t digest(std::string_view bytes);

enum class OpKind : std::uint8_t { kPut, kConditionalPut, kDelete, kGet };
enum class Outcome : std::uint8_t { kAcknowledged, kRefused, kUnknown };

std::string_view kind_name(OpKind kind);
std::string_view outcome_name(Outcome outcome);

struct Operation {
  int client = 0;
  std::string key;
  OpKind kind = OpKind::kGet;
  Outcome outcome = Outcome::kUnknown;
  Clock::time_point start;
  Clock::time_point end;
  // Writes: the value written. Acknowledged reads: what was read, when
  // `found`.
  std::uint64_t digest = 0;
  std::size_t size = 0;
  bool found = false;  // reads: a value came back (else: no such key)
  int status = 0;      // the final HTTP status, 0 for none
  std::string detail;  // why an outcome is unknown or refused

  bool mutates() const { return kind != OpKind::kGet; }
  std::string describe(Clock::time_point epoch) const;
};

// The operations of a run, appended by many clients at once. Thread-safe.
class History {
 public:
  void add(Operation op);
  std::vector<Operation> operations() const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::vector<Operation> operations_;
};

// What the checker found wrong, each with the operations on the key that
// explain it (for the failure output: the minimal history to reproduce).
struct Violation {
  std::string key;
  std::string what;
  std::vector<Operation> history;  // the key's operations, in start order
};

// Checks every acknowledged read in `ops` (reads during the load) against
// the writes and deletes of its key.
std::vector<Violation> check_reads(const std::vector<Operation>& ops);

// A read of `key` after the run, when nothing is in flight any more.
struct FinalRead {
  std::string key;
  bool found = false;
  std::uint64_t digest = 0;
  std::size_t size = 0;
};

// Checks the reads after the run: every acknowledged write reads back
// byte-exact unless a later write or delete (acknowledged or unknown)
// followed it; every acknowledged delete stays deleted unless a write
// followed it.
std::vector<Violation> check_final(const std::vector<Operation>& ops,
                                   const std::vector<FinalRead>& reads);

// The operations on `key`, in start order.
std::vector<Operation> history_of(const std::vector<Operation>& ops, const std::string& key);

// The keys any operation in `ops` touched, sorted.
std::vector<std::string> keys_of(const std::vector<Operation>& ops);

// One line per operation counted by kind and outcome ("put: 120 ack, 3
// refused, 1 unknown; ..."), for the test's log.
std::string summarize(const std::vector<Operation>& ops);

// The violations, each with its key's history, as the failure message.
std::string report(const std::vector<Violation>& violations, Clock::time_point epoch,
                   std::uint64_t seed);

}  // namespace kalavara::faults
