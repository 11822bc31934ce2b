#include "master/key_protocol.hpp"

#include <algorithm>
#include <limits>

#include "common/checksum.hpp"
#include "common/conditional.hpp"

namespace kalavara {
namespace {

using internal::CommitAnswer;

// A compare-and-put that keeps failing means other writes of the key keep
// landing in between; each of those made progress, so this is only a bound.
constexpr int kMaxAttempts = 32;

std::uint64_t micros(std::chrono::microseconds duration) {
  return static_cast<std::uint64_t>(duration.count());
}

std::string seconds_text(std::chrono::microseconds duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(duration).count()) + " s";
}

// The ETag of the key's value as the record describes it; nullopt when the
// key has no value (no record, or a tombstone).
std::optional<std::string> current_etag(const RecordRead& current) {
  if (!current.record || !current.record->committed()) return std::nullopt;
  return etag_for(current.record->checksum);
}

// When a deleted key's tombstone may be collected: once no upload at or
// below it can still commit.
std::uint64_t collection_time(std::uint64_t tombstone_version, const ProtocolSettings& settings) {
  return tombstone_version + micros(settings.max_upload_time) + 1;
}

Error too_much_contention() {
  return Error{Errc::kInternal, "the key kept changing under this write; try again"};
}

}  // namespace

CommitDecision decide_commit(const RecordRead& current, const internal::CommitCall& call,
                             std::uint64_t now, const ProtocolSettings& settings) {
  const auto& record = current.record;
  if (record && record->committed()) {
    if (record->version == call.version) {
      if (record->checksum == call.checksum) return {CommitAnswer::kCommitted, std::nullopt};
      return {Error{Errc::kConflict, "version " + std::to_string(call.version) +
                                         " of this key is committed with another checksum"},
              std::nullopt};
    }
    // Committed, then overwritten, and now sent again (its first answer was
    // lost): still committed, and its files are queued for removal already.
    if (record->previous && record->previous->version == call.version &&
        record->previous->checksum == call.checksum) {
      return {CommitAnswer::kCommitted, std::nullopt};
    }
  }
  if (now > call.version && now - call.version > micros(settings.max_upload_time)) {
    return {Error{Errc::kConflict, "the upload took longer than the longest allowed (" +
                                       seconds_text(settings.max_upload_time) +
                                       "); nothing stored: PUT again"},
            std::nullopt};
  }
  if (auto status =
          check_write_preconditions(call.if_match, call.if_none_match, current_etag(current));
      !status) {
    return {status.error(), std::nullopt};
  }
  if (record && call.version <= record->version) {
    // Ordered before a write or a delete the index already holds: it is
    // overwritten (or deleted) at once, and was never visible.
    return {CommitAnswer::kSuperseded, std::nullopt};
  }
  if (!record && call.version <= current.absent_floor) {
    // The key may have had a tombstone above this version that is gone now:
    // committing could bring back a value older than an acknowledged delete.
    return {Error{Errc::kConflict,
                  "the upload is older than deletes already forgotten; nothing "
                  "stored: PUT again"},
            std::nullopt};
  }

  KeyMutation mutation;
  mutation.key = call.key;
  mutation.expected = current;
  auto& next = mutation.record.emplace();
  next.state = IndexRecord::State::kCommitted;
  next.version = call.version;
  next.size = call.size;
  next.checksum = call.checksum;
  next.volumes = call.volumes;
  if (record && record->committed()) {
    next.previous = IndexRecord::Previous{record->version, record->checksum, record->volumes};
    const auto not_before = now + micros(settings.old_version_grace);
    for (const auto& volume : record->volumes) {
      mutation.queue.push_back({volume, call.key, record->version, not_before});
    }
  }
  mutation.durable = true;
  return {CommitAnswer::kCommitted, std::move(mutation)};
}

DeleteDecision decide_delete(const RecordRead& current, std::string_view key,
                             std::string_view if_match, std::uint64_t tombstone_version,
                             std::uint64_t now, const ProtocolSettings& settings) {
  DeleteDecision decision;
  const auto& record = current.record;
  if (!record || !record->committed()) {
    decision.status = Error{Errc::kNotFound, "no such key"};
    return decision;
  }
  if (auto status = check_write_preconditions(if_match, {}, current_etag(current)); !status) {
    decision.status = status;
    return decision;
  }
  if (tombstone_version <= record->version) {
    decision.status = Error{Errc::kInternal, "a delete's version must be above the record's"};
    return decision;
  }
  // Every volume that may hold a copy: the value's, and the replaced
  // version's while its grace may last (a delete means the bytes go now;
  // after the grace the replaced version's own queued removal has them).
  // The record's commit came at most the max upload time after its version.
  std::vector<std::string> volumes = record->volumes;
  const auto grace_end =
      record->version + micros(settings.max_upload_time) + micros(settings.old_version_grace);
  if (record->previous && now <= grace_end) {
    for (const auto& volume : record->previous->volumes) {
      if (std::find(volumes.begin(), volumes.end(), volume) == volumes.end()) {
        volumes.push_back(volume);
      }
    }
  }
  auto& mutation = decision.mutation;
  mutation.key = std::string(key);
  mutation.expected = current;
  auto& tombstone = mutation.record.emplace();
  tombstone.state = IndexRecord::State::kTombstone;
  tombstone.version = tombstone_version;
  tombstone.volumes = volumes;
  for (const auto& volume : volumes) {
    mutation.queue.push_back({volume, std::string(key), tombstone_version, now});
  }
  mutation.collect.push_back(
      {std::string(key), tombstone_version, collection_time(tombstone_version, settings)});
  mutation.durable = true;
  decision.removals = mutation.queue;
  return decision;
}

KeyMutation decide_removals_done(const RecordRead& current, std::string_view key,
                                 const std::vector<PendingRemoval>& done,
                                 const std::vector<std::string>& marked, std::uint64_t now,
                                 const ProtocolSettings& settings) {
  KeyMutation mutation;
  mutation.key = std::string(key);
  mutation.cleared = done;
  mutation.durable = false;
  const auto& record = current.record;
  if (!record || !record->tombstone()) return mutation;
  auto remaining = record->volumes;
  for (const auto& removal : done) {
    if (removal.up_to < record->version) continue;  // an older removal: not this delete's
    std::erase(remaining, removal.volume);
  }
  auto markers = record->markers;
  std::vector<std::string> new_markers;
  for (const auto& volume : marked) {
    if (std::find(markers.begin(), markers.end(), volume) == markers.end()) {
      markers.push_back(volume);
      new_markers.push_back(volume);
    }
  }
  if (remaining == record->volumes && new_markers.empty()) return mutation;
  mutation.expected = current;
  auto& next = mutation.record.emplace(*record);
  next.volumes = std::move(remaining);
  next.markers = std::move(markers);
  if (next.volumes.empty()) {
    const bool last_confirmation = !record->volumes.empty();
    if (last_confirmation) {
      // The delete's queued collection may have come and gone while a
      // volume was still unconfirmed; this queues it again (the same entry,
      // if not).
      mutation.collect.push_back({std::string(key), record->version,
                                  std::max(now, collection_time(record->version, settings))});
    }
    // Every copy is gone: the markers have nothing left to speak for.
    for (const auto& volume : last_confirmation ? next.markers : new_markers) {
      mutation.queue.push_back({volume, std::string(key), record->version, now});
    }
  }
  return mutation;
}

KeyMutation decide_collection(const RecordRead& current, const PendingCollection& due,
                              std::uint64_t, const ProtocolSettings&) {
  KeyMutation mutation;
  mutation.key = due.key;
  mutation.collected.push_back(due);
  mutation.durable = false;
  const auto& record = current.record;
  if (!record || !record->tombstone() || record->version != due.version ||
      !record->volumes.empty()) {
    return mutation;
  }
  mutation.expected = current;
  mutation.record.reset();
  mutation.raise_absent_floor = record->version;
  return mutation;
}

RelocationDecision decide_relocation(const RecordRead& current, std::string_view key,
                                     const IndexRecord& moved,
                                     const std::vector<std::string>& volumes, std::uint64_t now,
                                     const ProtocolSettings& settings) {
  RelocationDecision decision;
  if (!current.record || *current.record != moved || !moved.committed()) {
    decision.status = Error{Errc::kConflict, "the key changed while its value was being moved"};
    return decision;
  }
  if (volumes.empty()) {
    decision.status = Error{Errc::kInternal, "a value cannot be moved to no volume"};
    return decision;
  }
  auto& mutation = decision.mutation;
  mutation.key = std::string(key);
  mutation.expected = current;
  auto& next = mutation.record.emplace(moved);
  next.volumes = volumes;
  const auto not_before = now + micros(settings.old_version_grace);
  for (const auto& volume : moved.volumes) {
    if (std::find(volumes.begin(), volumes.end(), volume) != volumes.end()) continue;
    mutation.queue.push_back({volume, std::string(key), moved.version, not_before});
  }
  mutation.durable = true;
  return decision;
}

bool removal_wanted(const RecordRead& current, const PendingRemoval& removal) {
  const auto& record = current.record;
  if (!record || !record->committed() || record->version > removal.up_to) return true;
  return std::find(record->volumes.begin(), record->volumes.end(), removal.volume) ==
         record->volumes.end();
}

KeyProtocol::KeyProtocol(IndexStore& store, VersionClock& clock, ProtocolSettings settings, Now now)
    : store_(store), clock_(clock), settings_(settings), now_(std::move(now)) {}

KeyProtocol::Async<std::optional<IndexRecord>> KeyProtocol::current(std::string_view key) {
  auto read = co_await store_.read(key);
  if (!read) co_return read.error();
  if (!read->record || !read->record->committed()) co_return std::optional<IndexRecord>{};
  co_return std::move(read->record);
}

KeyProtocol::Async<std::uint64_t> KeyProtocol::issue_version(std::string_view key) {
  if (!settings_.shared_index) co_return co_await clock_.next();
  auto current = co_await store_.read(key);
  if (!current) co_return current.error();
  co_return co_await clock_.next(current->record ? current->record->version
                                                 : current->absent_floor);
}

KeyProtocol::Async<internal::CommitAnswer> KeyProtocol::commit(const internal::CommitCall& call) {
  // A forged version far ahead would make every later write of the key
  // "superseded": only versions this master has issued can commit.
  // With a shared index another master may have issued it: below the
  // shared floor is the most that can be told then.
  Result<bool> issued = call.version <= clock_.last_issued();
  if (!*issued && settings_.shared_index) issued = co_await clock_.may_have_issued(call.version);
  if (!issued) co_return issued.error();
  if (!*issued) {
    co_return Error{Errc::kBadInput, "version " + std::to_string(call.version) +
                                         " was not issued by this master (none is above " +
                                         std::to_string(clock_.last_issued()) + " yet)"};
  }
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto current = co_await store_.read(call.key);
    if (!current) co_return current.error();
    auto decision = decide_commit(*current, call, now_(), settings_);
    if (!decision.answer || !decision.mutation) co_return decision.answer;
    auto applied = co_await store_.apply(*decision.mutation);
    if (!applied) co_return applied.error();
    if (*applied) co_return decision.answer;
  }
  co_return too_much_contention();
}

KeyProtocol::Async<KeyProtocol::Deletion> KeyProtocol::erase(std::string_view key,
                                                             std::string_view if_match) {
  std::uint64_t version = 0;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto current = co_await store_.read(key);
    if (!current) co_return current.error();
    // The tombstone must be above every version the record names; a write
    // issued after an earlier version of ours may have committed meanwhile.
    if (version == 0 || (current->record && current->record->version >= version)) {
      auto issued = co_await clock_.next(current->record ? current->record->version : 0);
      if (!issued) co_return issued.error();
      version = *issued;
    }
    auto decision = decide_delete(*current, key, if_match, version, now_(), settings_);
    if (!decision.status) co_return decision.status.error();
    auto applied = co_await store_.apply(decision.mutation);
    if (!applied) co_return applied.error();
    if (*applied) co_return Deletion{*decision.mutation.record, std::move(decision.removals)};
  }
  co_return too_much_contention();
}

boost::asio::awaitable<Status> KeyProtocol::relocate(std::string_view key, const IndexRecord& moved,
                                                     const std::vector<std::string>& volumes) {
  auto current = co_await store_.read(key);
  if (!current) co_return current.error();
  auto decision = decide_relocation(*current, key, moved, volumes, now_(), settings_);
  if (!decision.status) co_return decision.status;
  auto applied = co_await store_.apply(decision.mutation);
  if (!applied) co_return applied.error();
  if (!*applied)
    co_return Error{Errc::kConflict, "the key changed while its value was being moved"};
  co_return Status{};
}

KeyProtocol::Async<RecordRead> KeyProtocol::read(std::string_view key) { return store_.read(key); }

KeyProtocol::Async<std::vector<KeyRecord>> KeyProtocol::scan(std::string_view after,
                                                             std::size_t limit) {
  return store_.scan(after, limit);
}

boost::asio::awaitable<Status> KeyProtocol::removals_done(std::string_view key,
                                                          const std::vector<PendingRemoval>& done,
                                                          const std::vector<std::string>& marked) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto current = co_await store_.read(key);
    if (!current) co_return current.error();
    auto applied =
        co_await store_.apply(decide_removals_done(*current, key, done, marked, now_(), settings_));
    if (!applied) co_return applied.error();
    if (*applied) co_return Status{};
  }
  co_return too_much_contention();
}

KeyProtocol::Async<std::vector<PendingRemoval>> KeyProtocol::due_removals(
    std::string_view volume, std::size_t limit, const std::optional<PendingRemoval>& after) {
  return store_.due_removals(volume, now_(), limit, after);
}

KeyProtocol::Async<std::vector<PendingRemoval>> KeyProtocol::pending_removals(
    std::string_view volume, std::size_t limit) {
  // A coroutine, so the store's call reads an argument that lives in this
  // frame (a temporary in a forwarding return would be gone by then).
  const std::optional<PendingRemoval> from_the_start;
  co_return co_await store_.due_removals(volume, std::numeric_limits<std::uint64_t>::max(), limit,
                                         from_the_start);
}

KeyProtocol::Async<KeyPage> KeyProtocol::list(std::string_view prefix, std::string_view start,
                                              std::size_t limit) {
  return store_.list(prefix, start, limit);
}

KeyProtocol::Async<std::size_t> KeyProtocol::collect_tombstones(std::size_t limit) {
  const auto now = now_();
  auto due = co_await store_.due_collections(now, limit);
  if (!due) co_return due.error();
  for (const auto& entry : *due) {
    bool applied = false;
    for (int attempt = 0; attempt < kMaxAttempts && !applied; ++attempt) {
      auto current = co_await store_.read(entry.key);
      if (!current) co_return current.error();
      auto result = co_await store_.apply(decide_collection(*current, entry, now, settings_));
      if (!result) co_return result.error();
      applied = *result;
    }
    if (!applied) co_return too_much_contention();
  }
  co_return due->size();
}

}  // namespace kalavara
