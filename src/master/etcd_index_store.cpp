#include "master/etcd_index_store.hpp"

#include <algorithm>
#include <limits>

namespace kalavara {
namespace {

using etcd::Compare;
using etcd::Op;

constexpr int kMaxAttempts = 5;
const std::vector<Compare> kNoCompares;
// Keys read per request when a listing or a queue scan needs more.
constexpr std::int64_t kPageEntries = 1000;

void append_be(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::uint64_t read_be(std::string_view bytes) {
  std::uint64_t value = 0;
  for (const char byte : bytes) value = (value << 8) | static_cast<unsigned char>(byte);
  return value;
}

std::string be64(std::uint64_t value) {
  std::string out;
  append_be(out, value, 8);
  return out;
}

Error corrupt(std::string_view what) {
  return Error{Errc::kInternal, "corrupt index entry in etcd (" + std::string(what) + ")"};
}

// What the master's handlers see of a failed call: etcd out of reach is
// "index unavailable" (503), a write that may have landed likewise, since
// the client cannot tell either from a master that is down; a refusal is
// an internal error.
Error index_error(const Error& error) {
  if (error.code == Errc::kUnavailable || error.code == Errc::kNoAnswer) {
    return Error{Errc::kUnavailable, "index unavailable: " + error.message};
  }
  if (error.code == Errc::kNotFound) return error;
  return Error{Errc::kInternal, "index write failed: " + error.message};
}

// A key followed by everything after it: the next key in byte order.
std::string successor(std::string key) {
  key.push_back('\0');
  return key;
}

}  // namespace

class EtcdLayout {
 public:
  explicit EtcdLayout(const std::string& prefix) : prefix_(prefix) {}

  std::string record(std::string_view key) const { return join("k/", key); }
  std::string records() const { return join("k/", ""); }
  std::string volume(std::string_view url) const { return join("v/", url); }
  std::string volumes() const { return join("v/", ""); }
  std::string job(std::string_view id) const { return join("j/", id); }
  std::string jobs() const { return join("j/", ""); }
  std::string version_floor() const { return join("m/", "version-floor"); }
  std::string absent_floor() const { return join("m/", "absent-floor"); }

  // A removal queue of one volume, and its entries without their up_to.
  std::string removal_queue(std::string_view volume) const {
    auto out = join("q/", volume);
    out.push_back('\0');
    return out;
  }
  std::string removal_entry(const PendingRemoval& removal) const {
    auto out = removal_queue(removal.volume);
    append_be(out, removal.not_before, 8);
    append_keyed(out, removal.key);
    return out;
  }
  std::string removal(const PendingRemoval& removal) const {
    auto out = removal_entry(removal);
    append_be(out, removal.up_to, 8);
    return out;
  }
  // Parses a removal key of `volume`'s queue.
  Result<PendingRemoval> parse_removal(std::string_view volume, std::string_view bytes) const {
    const auto queue = removal_queue(volume);
    if (!bytes.starts_with(queue)) return corrupt("removal key");
    bytes.remove_prefix(queue.size());
    PendingRemoval removal;
    removal.volume = std::string(volume);
    if (bytes.size() < 8) return corrupt("removal key");
    removal.not_before = read_be(bytes.substr(0, 8));
    bytes.remove_prefix(8);
    auto key = parse_keyed(bytes);
    if (!key || bytes.size() != 8) return corrupt("removal key");
    removal.key = std::move(*key);
    removal.up_to = read_be(bytes);
    return removal;
  }

  std::string collections() const { return join("c/", ""); }
  std::string collection(const PendingCollection& collection) const {
    auto out = collections();
    append_be(out, collection.not_before, 8);
    append_keyed(out, collection.key);
    append_be(out, collection.version, 8);
    return out;
  }
  Result<PendingCollection> parse_collection(std::string_view bytes) const {
    const auto queue = collections();
    if (!bytes.starts_with(queue) || bytes.size() < queue.size() + 8) return corrupt("collection");
    bytes.remove_prefix(queue.size());
    PendingCollection collection;
    collection.not_before = read_be(bytes.substr(0, 8));
    bytes.remove_prefix(8);
    auto key = parse_keyed(bytes);
    if (!key || bytes.size() != 8) return corrupt("collection");
    collection.key = std::move(*key);
    collection.version = read_be(bytes);
    return collection;
  }

  const std::string& prefix() const { return prefix_; }

 private:
  std::string join(std::string_view kind, std::string_view rest) const {
    std::string out;
    out.reserve(prefix_.size() + kind.size() + rest.size());
    out.append(prefix_).append(kind).append(rest);
    return out;
  }
  // A key inside a longer one: its length first, so what follows it is
  // never read as part of it.
  static void append_keyed(std::string& out, std::string_view key) {
    append_be(out, key.size(), 4);
    out.append(key);
  }
  static std::optional<std::string> parse_keyed(std::string_view& bytes) {
    if (bytes.size() < 4) return std::nullopt;
    const auto length = read_be(bytes.substr(0, 4));
    bytes.remove_prefix(4);
    if (bytes.size() < length) return std::nullopt;
    std::string key(bytes.substr(0, length));
    bytes.remove_prefix(length);
    return key;
  }

  std::string prefix_;
};

namespace {

Result<std::uint64_t> decode_number(std::string_view value) {
  if (value.size() != 8) return corrupt("8 bytes expected");
  return read_be(value);
}

// The end of the range of entries `entry` (a removal without its up_to)
// with an up_to at or below `up_to`.
std::string up_to_end(const std::string& entry, std::uint64_t up_to) {
  if (up_to == std::numeric_limits<std::uint64_t>::max()) return etcd::prefix_end(entry);
  return entry + be64(up_to + 1);
}

}  // namespace

EtcdIndexStore::EtcdIndexStore(EtcdStoreSettings settings)
    : client_(std::move(settings.client)),
      prefix_(std::move(settings.prefix)),
      layout_(std::make_unique<const EtcdLayout>(prefix_)) {}

EtcdIndexStore::~EtcdIndexStore() = default;

boost::asio::awaitable<Result<std::unique_ptr<EtcdIndexStore>>> EtcdIndexStore::open(
    EtcdStoreSettings settings) {
  std::unique_ptr<EtcdIndexStore> store(new EtcdIndexStore(std::move(settings)));
  etcd::RangeRequest probe;
  probe.key = store->prefix_;
  probe.range_end = etcd::prefix_end(store->prefix_);
  probe.count_only = true;
  auto answer = co_await store->client_.range(probe);
  if (!answer) co_return index_error(answer.error());
  co_return std::move(store);
}

IndexStore::Async<std::uint64_t> EtcdIndexStore::read_number(const std::string& key,
                                                             std::int64_t* mod_revision) {
  etcd::RangeRequest request;
  request.key = key;
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  if (mod_revision != nullptr) *mod_revision = 0;
  if (answer->kvs.empty()) co_return std::uint64_t{0};
  if (mod_revision != nullptr) *mod_revision = answer->kvs.front().mod_revision;
  co_return decode_number(answer->kvs.front().value);
}

IndexStore::Async<RecordRead> EtcdIndexStore::read(std::string_view key) {
  etcd::RangeRequest request;
  request.key = layout_->record(key);
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  RecordRead read;
  if (!answer->kvs.empty()) {
    auto record = decode_record(answer->kvs.front().value);
    if (!record) co_return record.error();
    read.record = std::move(*record);
    read.revision = static_cast<std::uint64_t>(answer->kvs.front().mod_revision);
    co_return read;
  }
  // The record and the floor are two reads: a collection erases the one
  // and raises the other in one transaction, so a record found gone is
  // followed by a floor read at least as high.
  auto floor = co_await read_number(layout_->absent_floor(), nullptr);
  if (!floor) co_return floor.error();
  read.absent_floor = *floor;
  co_return read;
}

IndexStore::Async<bool> EtcdIndexStore::apply(const KeyMutation& mutation) {
  bool lost = false;
  Error last{Errc::kUnavailable, "index unavailable"};
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto applied = co_await apply_once(mutation, lost);
    if (applied) {
      if (applied->has_value()) co_return **applied;
      continue;  // only the floor moved: compare again
    }
    last = applied.error();
    if (last.code != Errc::kNoAnswer) co_return index_error(last);
    // The answer was lost; the compare makes sending it again safe.
    lost = true;
  }
  co_return index_error(last);
}

IndexStore::Async<std::optional<bool>> EtcdIndexStore::apply_once(const KeyMutation& mutation,
                                                                  bool earlier_attempt_lost) {
  const auto record_key = layout_->record(mutation.key);
  std::vector<Compare> compares;
  std::vector<Op> ops;
  std::string written;  // the record this mutation writes, encoded
  if (mutation.expected) {
    compares.push_back({record_key,
                        Compare::Target::kModRevision,
                        Compare::Result::kEqual,
                        static_cast<std::int64_t>(mutation.expected->revision),
                        {}});
    if (mutation.record) {
      written = encode_record(*mutation.record);
      ops.push_back(Op::put(record_key, written));
    } else {
      ops.push_back(Op::erase(record_key));
    }
  }
  // etcd refuses a transaction that names a key twice (or puts a key a
  // range it deletes covers): a removal queued and cleared at once stays
  // queued — carried out once more, which is harmless.
  std::vector<std::string> queued;
  for (const auto& removal : mutation.queue) queued.push_back(layout_->removal(removal));
  std::sort(queued.begin(), queued.end());
  queued.erase(std::unique(queued.begin(), queued.end()), queued.end());
  for (const auto& key : queued) ops.push_back(Op::put(key, {}));
  for (const auto& removal : mutation.cleared) {
    const auto entry = layout_->removal_entry(removal);
    auto end = up_to_end(entry, removal.up_to);
    const bool covers_queued = std::any_of(
        queued.begin(), queued.end(), [&](const auto& key) { return key >= entry && key < end; });
    if (!covers_queued) ops.push_back(Op::erase(entry, std::move(end)));
  }
  std::vector<std::string> collect;
  for (const auto& entry : mutation.collect) collect.push_back(layout_->collection(entry));
  std::sort(collect.begin(), collect.end());
  collect.erase(std::unique(collect.begin(), collect.end()), collect.end());
  for (const auto& key : collect) ops.push_back(Op::put(key, {}));
  for (const auto& entry : mutation.collected) {
    auto key = layout_->collection(entry);
    if (!std::binary_search(collect.begin(), collect.end(), key)) ops.push_back(Op::erase(key));
  }
  if (mutation.raise_absent_floor > 0) {
    std::int64_t floor_revision = 0;
    auto floor = co_await read_number(layout_->absent_floor(), &floor_revision);
    if (!floor) co_return floor.error();
    if (*floor < mutation.raise_absent_floor) {
      compares.push_back({layout_->absent_floor(),
                          Compare::Target::kModRevision,
                          Compare::Result::kEqual,
                          floor_revision,
                          {}});
      ops.push_back(Op::put(layout_->absent_floor(), be64(mutation.raise_absent_floor)));
    }
  }
  if (ops.empty()) co_return std::optional<bool>(true);
  // On a failed compare, the record as it stands: tells a record that moved
  // from a floor that did, and a lost earlier attempt that landed.
  const std::vector<Op> on_failure{Op::range(record_key)};
  auto answer = co_await client_.txn(compares, ops, on_failure);
  if (!answer) co_return answer.error();
  if (answer->succeeded) co_return std::optional<bool>(true);
  const auto* current = !answer->ranges.empty() && !answer->ranges.front().kvs.empty()
                            ? &answer->ranges.front().kvs.front()
                            : nullptr;
  const std::uint64_t revision =
      current != nullptr ? static_cast<std::uint64_t>(current->mod_revision) : 0;
  if (mutation.expected && revision != mutation.expected->revision) {
    if (earlier_attempt_lost) {
      // Ours, if the record holds exactly what we wrote (or is gone, when we
      // erased it): the first attempt landed.
      const bool ours =
          mutation.record ? current != nullptr && current->value == written : current == nullptr;
      if (ours) co_return std::optional<bool>(true);
    }
    co_return std::optional<bool>(false);
  }
  co_return std::optional<bool>();  // the floor moved: read it again
}

IndexStore::Async<KeyPage> EtcdIndexStore::list(std::string_view prefix, std::string_view start,
                                                std::size_t limit) {
  const auto wanted = layout_->record(prefix);
  etcd::RangeRequest request;
  request.key = layout_->record(std::max(prefix, start));
  request.range_end = etcd::prefix_end(wanted);
  KeyPage page;
  const auto record_prefix = layout_->records().size();
  // Every request at the revision of the first: one snapshot per page.
  for (;;) {
    request.limit = static_cast<std::int64_t>(std::min<std::size_t>(limit + 1, kPageEntries));
    auto answer = co_await client_.range(request);
    if (!answer) co_return index_error(answer.error());
    request.revision = answer->revision;
    for (const auto& kv : answer->kvs) {
      if (!encoded_record_is_committed(kv.value)) continue;
      auto key = kv.key.substr(record_prefix);
      if (page.keys.size() == limit) {
        page.next = std::move(key);
        co_return page;
      }
      page.keys.push_back(std::move(key));
    }
    if (!answer->more || answer->kvs.empty()) co_return page;
    request.key = successor(answer->kvs.back().key);
  }
}

IndexStore::Async<std::vector<PendingRemoval>> EtcdIndexStore::due_removals(
    std::string_view volume, std::uint64_t now, std::size_t limit,
    const std::optional<PendingRemoval>& after) {
  const auto queue = layout_->removal_queue(volume);
  etcd::RangeRequest request;
  request.key = after ? etcd::prefix_end(layout_->removal_entry(*after)) : queue;
  request.range_end = now == std::numeric_limits<std::uint64_t>::max() ? etcd::prefix_end(queue)
                                                                       : queue + be64(now + 1);
  request.keys_only = true;
  std::vector<PendingRemoval> due;
  // One removal queued at several up_to is one entry, the highest: it
  // is complete once an entry of another removal follows it.
  while (due.size() <= limit) {
    request.limit = static_cast<std::int64_t>(std::min<std::size_t>(limit + 1, kPageEntries));
    auto answer = co_await client_.range(request);
    if (!answer) co_return index_error(answer.error());
    request.revision = answer->revision;
    for (const auto& kv : answer->kvs) {
      auto removal = layout_->parse_removal(volume, kv.key);
      if (!removal) co_return removal.error();
      if (!due.empty() && due.back().key == removal->key &&
          due.back().not_before == removal->not_before) {
        due.back().up_to = std::max(due.back().up_to, removal->up_to);
      } else {
        due.push_back(std::move(*removal));
      }
    }
    if (!answer->more || answer->kvs.empty()) break;
    request.key = successor(answer->kvs.back().key);
  }
  if (due.size() > limit) due.resize(limit);
  co_return due;
}

IndexStore::Async<std::vector<PendingCollection>> EtcdIndexStore::due_collections(
    std::uint64_t now, std::size_t limit) {
  const auto queue = layout_->collections();
  etcd::RangeRequest request;
  request.key = queue;
  request.range_end = now == std::numeric_limits<std::uint64_t>::max() ? etcd::prefix_end(queue)
                                                                       : queue + be64(now + 1);
  request.keys_only = true;
  request.limit = static_cast<std::int64_t>(limit);
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  std::vector<PendingCollection> due;
  for (const auto& kv : answer->kvs) {
    auto collection = layout_->parse_collection(kv.key);
    if (!collection) co_return collection.error();
    due.push_back(std::move(*collection));
  }
  co_return due;
}

IndexStore::Async<std::vector<KeyRecord>> EtcdIndexStore::scan(std::string_view after,
                                                               std::size_t limit) {
  const auto records = layout_->records();
  etcd::RangeRequest request;
  request.key = after.empty() ? records : successor(layout_->record(after));
  request.range_end = etcd::prefix_end(records);
  request.limit = static_cast<std::int64_t>(limit);
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  std::vector<KeyRecord> page;
  for (const auto& kv : answer->kvs) {
    auto record = decode_record(kv.value);
    if (!record) co_return record.error();
    page.push_back({kv.key.substr(records.size()), std::move(*record)});
  }
  co_return page;
}

IndexStore::Async<std::vector<RegisteredVolume>> EtcdIndexStore::volumes() {
  const auto prefix = layout_->volumes();
  etcd::RangeRequest request;
  request.key = prefix;
  request.range_end = etcd::prefix_end(prefix);
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  std::vector<RegisteredVolume> volumes;
  for (const auto& kv : answer->kvs) {
    volumes.push_back({kv.key.substr(prefix.size()),
                       kv.value == "draining" ? VolumeState::kDraining : VolumeState::kActive});
  }
  co_return volumes;
}

boost::asio::awaitable<Status> EtcdIndexStore::put_volume(const RegisteredVolume& volume) {
  const std::vector<Op> ops{Op::put(layout_->volume(volume.url),
                                    volume.state == VolumeState::kDraining ? "draining" : "")};
  auto answer = co_await client_.txn(kNoCompares, ops);
  if (!answer) co_return index_error(answer.error());
  co_return Status{};
}

boost::asio::awaitable<Status> EtcdIndexStore::remove_volume(std::string_view url) {
  const std::vector<Op> ops{Op::erase(layout_->volume(url))};
  auto answer = co_await client_.txn(kNoCompares, ops);
  if (!answer) co_return index_error(answer.error());
  co_return Status{};
}

IndexStore::Async<std::vector<std::string>> EtcdIndexStore::jobs() {
  const auto prefix = layout_->jobs();
  etcd::RangeRequest request;
  request.key = prefix;
  request.range_end = etcd::prefix_end(prefix);
  auto answer = co_await client_.range(request);
  if (!answer) co_return index_error(answer.error());
  std::vector<std::string> jobs;
  for (auto& kv : answer->kvs) jobs.push_back(std::move(kv.value));
  co_return jobs;
}

boost::asio::awaitable<Status> EtcdIndexStore::put_job(std::string_view id,
                                                       std::string_view state) {
  const std::vector<Op> ops{Op::put(layout_->job(id), std::string(state))};
  auto answer = co_await client_.txn(kNoCompares, ops);
  if (!answer) co_return index_error(answer.error());
  co_return Status{};
}

IndexStore::Async<std::uint64_t> EtcdIndexStore::version_floor() {
  // Awaited here: the key must outlive the call (a coroutine reads its
  // arguments when it runs, not when it is made).
  co_return co_await read_number(layout_->version_floor(), nullptr);
}

IndexStore::Async<std::uint64_t> EtcdIndexStore::raise_version_floor(std::uint64_t floor) {
  // Compare-and-put on the floor's revision: concurrent raises from several
  // masters land in any order and the floor only goes up.
  const auto key = layout_->version_floor();
  for (int attempt = 0; attempt < kMaxAttempts * 4; ++attempt) {
    std::int64_t revision = 0;
    auto stored = co_await read_number(key, &revision);
    if (!stored) co_return stored.error();
    if (*stored >= floor) co_return *stored;
    const std::vector<Compare> compares{
        {key, Compare::Target::kModRevision, Compare::Result::kEqual, revision, {}}};
    const std::vector<Op> ops{Op::put(key, be64(floor))};
    auto answer = co_await client_.txn(compares, ops);
    if (!answer) {
      // A lost answer is found out by the read of the next round.
      if (answer.error().code == Errc::kNoAnswer) continue;
      co_return index_error(answer.error());
    }
    if (answer->succeeded) co_return floor;
  }
  co_return Error{Errc::kUnavailable, "index unavailable: the version floor keeps moving"};
}

void EtcdIndexStore::collect_metrics(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  const auto counters = client_.counters();
  out.single("kalavara_index_etcd_requests_total", Type::kCounter, "Calls the master made to etcd.",
             static_cast<double>(counters.requests));
  out.single("kalavara_index_etcd_failovers_total", Type::kCounter,
             "Times a call moved on to another etcd member (one unreachable or unable to serve).",
             static_cast<double>(counters.failovers));
  out.single("kalavara_index_etcd_failures_total", Type::kCounter,
             "Calls to etcd that failed on every member tried.",
             static_cast<double>(counters.failures));
}

}  // namespace kalavara
