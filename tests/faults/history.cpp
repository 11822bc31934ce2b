#include "faults/history.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>

namespace kalavara::faults {
namespace {

// splitmix64: a cheap, well-mixed stream from a seed.
std::uint64_t next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// What a read or the end of the run saw of a key.
struct Observation {
  bool found = false;
  std::uint64_t digest = 0;
  std::size_t size = 0;
  Clock::time_point start;
  Clock::time_point end;
};

bool produces(const Operation& op, const Observation& seen) {
  if (op.kind == OpKind::kGet) return false;
  if (op.kind == OpKind::kDelete) return !seen.found;
  return seen.found && op.digest == seen.digest && op.size == seen.size;
}

// Whether `candidate` (a write or delete of the key, not refused) can be the
// one `seen` shows: it began before the read ended, and no acknowledged
// mutation began after it ended and ended before the read began.
bool explains(const Operation& candidate, const Observation& seen,
              const std::vector<const Operation*>& mutations) {
  if (candidate.outcome == Outcome::kRefused || candidate.start >= seen.end) return false;
  return std::none_of(mutations.begin(), mutations.end(), [&](const Operation* other) {
    return other != &candidate && other->outcome == Outcome::kAcknowledged &&
           other->start > candidate.end && other->end < seen.start;
  });
}

// The key's initial absence explains "not found" while no acknowledged
// mutation ended before the read began.
bool initially_absent(const Observation& seen, const std::vector<const Operation*>& mutations) {
  return !seen.found && std::none_of(mutations.begin(), mutations.end(), [&](const Operation* op) {
    return op->outcome == Outcome::kAcknowledged && op->end < seen.start;
  });
}

bool explained(const Observation& seen, const std::vector<const Operation*>& mutations) {
  if (initially_absent(seen, mutations)) return true;
  return std::any_of(mutations.begin(), mutations.end(), [&](const Operation* op) {
    return produces(*op, seen) && explains(*op, seen, mutations);
  });
}

std::map<std::string, std::vector<const Operation*>> mutations_by_key(
    const std::vector<Operation>& ops) {
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const auto& op : ops) {
    if (op.mutates()) by_key[op.key].push_back(&op);
  }
  return by_key;
}

std::string seen_text(bool found, std::uint64_t digest, std::size_t size) {
  if (!found) return "no such key";
  std::ostringstream out;
  out << "a value of " << size << " B, digest " << std::hex << digest;
  return out.str();
}

}  // namespace

std::string make_value(std::uint64_t id, std::size_t size) {
  std::string bytes(size, '\0');
  std::uint64_t state = id;
  std::size_t at = 0;
  // The id itself first, so two ids differ in the first 8 bytes.
  const std::size_t head = std::min(size, sizeof id);
  std::memcpy(bytes.data(), &id, head);
  at = head;
  while (at < size) {
    const std::uint64_t word = next(state);
    const std::size_t n = std::min(size - at, sizeof word);
    std::memcpy(bytes.data() + at, &word, n);
    at += n;
  }
  return bytes;
}

std::uint64_t digest(std::string_view bytes) {
  std::uint64_t hash = 0xCBF29CE484222325ULL;  // FNV-1a
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

std::string_view kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
      return "put";
    case OpKind::kConditionalPut:
      return "conditional put";
    case OpKind::kDelete:
      return "delete";
    case OpKind::kGet:
      return "get";
  }
  return "?";
}

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAcknowledged:
      return "acknowledged";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string Operation::describe(Clock::time_point epoch) const {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  std::ostringstream out;
  out << "client " << client << " " << kind_name(kind) << " " << key << " ["
      << duration_cast<microseconds>(start - epoch).count() << " us, "
      << duration_cast<microseconds>(end - epoch).count() << " us] " << outcome_name(outcome)
      << " (status " << status;
  if (!detail.empty()) out << ": " << detail;
  out << ")";
  if (kind == OpKind::kPut || kind == OpKind::kConditionalPut) {
    out << " wrote " << seen_text(true, digest, size);
  } else if (kind == OpKind::kGet && outcome == Outcome::kAcknowledged) {
    out << " read " << seen_text(found, digest, size);
  }
  return out.str();
}

void History::add(Operation op) {
  std::lock_guard lock(mutex_);
  operations_.push_back(std::move(op));
}

std::vector<Operation> History::operations() const {
  std::lock_guard lock(mutex_);
  return operations_;
}

std::size_t History::size() const {
  std::lock_guard lock(mutex_);
  return operations_.size();
}

std::vector<Violation> check_reads(const std::vector<Operation>& ops) {
  const auto by_key = mutations_by_key(ops);
  static const std::vector<const Operation*> kNone;
  std::vector<Violation> violations;
  for (const auto& op : ops) {
    if (op.kind != OpKind::kGet || op.outcome != Outcome::kAcknowledged) continue;
    const auto found = by_key.find(op.key);
    const auto& mutations = found == by_key.end() ? kNone : found->second;
    const Observation seen{op.found, op.digest, op.size, op.start, op.end};
    if (explained(seen, mutations)) continue;
    violations.push_back({op.key,
                          "a read during the load saw " + seen_text(op.found, op.digest, op.size) +
                              ", which no write or delete of the key can explain",
                          history_of(ops, op.key)});
  }
  return violations;
}

std::vector<Violation> check_final(const std::vector<Operation>& ops,
                                   const std::vector<FinalRead>& reads) {
  const auto by_key = mutations_by_key(ops);
  static const std::vector<const Operation*> kNone;
  std::vector<Violation> violations;
  const auto after_everything = Clock::time_point::max();
  for (const auto& read : reads) {
    const auto found = by_key.find(read.key);
    const auto& mutations = found == by_key.end() ? kNone : found->second;
    const Observation seen{read.found, read.digest, read.size, after_everything, after_everything};
    if (explained(seen, mutations)) continue;
    std::string what =
        "read back after recovery: " + seen_text(read.found, read.digest, read.size) + ", but ";
    const bool any_write = std::any_of(mutations.begin(), mutations.end(), [&](const auto* op) {
      return read.found && produces(*op, seen);
    });
    if (read.found && !any_write) {
      what += "no write made those bytes (torn or foreign)";
    } else if (read.found) {
      what +=
          "a later acknowledged write or delete superseded every write of it "
          "(an acknowledged operation was undone or lost)";
    } else {
      what +=
          "an acknowledged write was followed by no delete (an acknowledged write "
          "was lost, or a refused delete took effect)";
    }
    violations.push_back({read.key, what, history_of(ops, read.key)});
  }
  return violations;
}

std::vector<Operation> history_of(const std::vector<Operation>& ops, const std::string& key) {
  std::vector<Operation> mine;
  for (const auto& op : ops) {
    if (op.key == key) mine.push_back(op);
  }
  std::sort(mine.begin(), mine.end(),
            [](const Operation& a, const Operation& b) { return a.start < b.start; });
  return mine;
}

std::vector<std::string> keys_of(const std::vector<Operation>& ops) {
  std::vector<std::string> keys;
  for (const auto& op : ops) keys.push_back(op.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::string summarize(const std::vector<Operation>& ops) {
  std::map<std::pair<OpKind, Outcome>, std::size_t> counts;
  for (const auto& op : ops) ++counts[{op.kind, op.outcome}];
  std::ostringstream out;
  out << ops.size() << " operations:";
  for (const auto kind : {OpKind::kPut, OpKind::kConditionalPut, OpKind::kDelete, OpKind::kGet}) {
    out << " " << kind_name(kind) << " ";
    bool first = true;
    for (const auto outcome : {Outcome::kAcknowledged, Outcome::kRefused, Outcome::kUnknown}) {
      out << (first ? "" : "/") << counts[{kind, outcome}];
      first = false;
    }
    out << ";";
  }
  out << " (acknowledged/refused/unknown)";
  return out.str();
}

std::string report(const std::vector<Violation>& violations, Clock::time_point epoch,
                   std::uint64_t seed) {
  std::ostringstream out;
  out << violations.size() << " violation(s); seed " << seed << " (KALAVARA_FAULT_SEED=" << seed
      << " replays the same choices)\n";
  constexpr std::size_t kShown = 5;
  for (std::size_t i = 0; i < violations.size() && i < kShown; ++i) {
    const auto& v = violations[i];
    out << "key " << v.key << ": " << v.what << "\n  its history (" << v.history.size()
        << " operations):\n";
    for (const auto& op : v.history) out << "    " << op.describe(epoch) << "\n";
  }
  if (violations.size() > kShown) out << "(" << violations.size() - kShown << " more)\n";
  return out.str();
}

}  // namespace kalavara::faults
