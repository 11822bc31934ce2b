#include "master/maintenance.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>

#include "common/checksum.hpp"
#include "common/digest.hpp"
#include "common/http_client.hpp"
#include "common/when_all.hpp"
#include "master/placement.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;
using Outcome = Maintenance::Outcome;
using Kind = Outcome::Kind;

bool contains(const std::vector<std::string>& volumes, std::string_view volume) {
  return std::find(volumes.begin(), volumes.end(), volume) != volumes.end();
}

Outcome outcome(Kind kind, std::string note = {}) { return Outcome{kind, 0, std::move(note)}; }

// The top `count` of the key's ranking among `volumes`.
std::vector<std::string> ranked(std::string_view key, const std::vector<std::string>& volumes,
                                std::size_t count) {
  std::vector<std::string> out;
  for (const auto index : rank_volumes(digest_of(key), volumes, count)) {
    out.push_back(volumes[index]);
  }
  return out;
}

asio::awaitable<Status> remove_exactly(std::string volume, std::string key, std::uint64_t version) {
  auto url = parse_base_url(volume);
  if (!url) co_return url.error();
  const internal::RemovalCall call{std::move(key), version, internal::RemovalCall::Scope::kExactly};
  co_return co_await internal::send_removal(*url, call);
}

// Whether `volume` serves the key's `version` with `etag`: true, false (it
// has no such copy, or a wrong one), or nullopt (it cannot be asked now).
asio::awaitable<std::optional<bool>> holds(std::string volume, std::string key,
                                           std::uint64_t version, std::string etag) {
  auto url = parse_base_url(volume);
  if (!url) co_return false;
  auto reply = co_await http::send_request(http::Verb::head, *url,
                                           internal::read_target(key, version), std::string());
  if (!reply) co_return std::nullopt;
  if (reply->status == 200) co_return reply->etag == etag;
  if (reply->status == 404) co_return false;
  co_return std::nullopt;
}

}  // namespace

Maintenance::Maintenance(KeyProtocol& protocol, const VolumeRegistry& registry,
                         const VolumeHealth& health, KeyLocks& locks, Settings settings)
    : protocol_(protocol),
      registry_(registry),
      health_(health),
      locks_(locks),
      settings_(settings) {}

asio::awaitable<Outcome> Maintenance::move(const KeyRecord& entry,
                                           const std::vector<std::string>& sources,
                                           const std::vector<std::string>& targets,
                                           const std::vector<std::string>& volumes) {
  const auto& record = entry.record;
  // Each target pulls from a source of its own, and from the next ones in
  // turn should that one fail (a volume that just went down still counts
  // as up for a second or so).
  std::vector<asio::awaitable<Result<internal::CopyOutcome>>> copies;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto to = parse_base_url(targets[i]);
    if (!to) co_return outcome(Kind::kFailed, "a volume URL does not parse");
    std::vector<BaseUrl> from;
    for (std::size_t s = 0; s < sources.size(); ++s) {
      auto url = parse_base_url(sources[(i + s) % sources.size()]);
      if (url) from.push_back(std::move(url).value());
    }
    auto copy =
        [](BaseUrl target, std::string key, std::uint64_t version,
           std::vector<BaseUrl> sources_in_turn) -> asio::awaitable<Result<internal::CopyOutcome>> {
      Result<internal::CopyOutcome> result = Error{Errc::kUnavailable, "no source to copy from"};
      for (auto& source : sources_in_turn) {
        const internal::CopyCall call{key, version, std::move(source)};
        result = co_await internal::send_copy(target, call);
        if (result || result.error().code == Errc::kConflict) break;
      }
      co_return result;
    };
    copies.push_back(copy(std::move(to).value(), entry.key, record.version, std::move(from)));
  }
  const auto results = co_await when_all(std::move(copies));

  const auto etag = etag_for(record.checksum);
  std::vector<std::string> created;
  std::string failure;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) {
      failure = "copy to " + targets[i] + ": " + results[i].error().message;
      continue;
    }
    if (results[i]->created) created.push_back(targets[i]);
    if (results[i]->etag != etag) {
      failure = "copy to " + targets[i] + " has ETag " + results[i]->etag + ", expected " + etag;
    }
  }
  const auto undo = [&]() -> asio::awaitable<void> {
    for (const auto& volume : created) {
      if (auto removed = co_await remove_exactly(volume, entry.key, record.version); !removed) {
        spdlog::warn("could not remove a copy a failed move made on {}: {}", volume,
                     removed.error().message);
      }
    }
  };
  if (!failure.empty()) {
    co_await undo();
    // A client write may have replaced the value (and its copies gone after
    // their grace) since the record was read: the write won, nothing failed.
    if (auto now = co_await protocol_.read(entry.key); now && now->record != record) {
      co_return outcome(Kind::kSkipped, "the key changed meanwhile");
    }
    co_return outcome(Kind::kFailed, failure);
  }
  if (auto committed = co_await protocol_.relocate(entry.key, record, volumes); !committed) {
    co_await undo();
    if (committed.error().code == Errc::kConflict) {
      co_return outcome(Kind::kSkipped, "the key changed meanwhile");
    }
    co_return outcome(Kind::kFailed, committed.error().message);
  }
  co_return Outcome{Kind::kChanged, record.size * created.size(), {}};
}

asio::awaitable<Outcome> Maintenance::rebalance(const KeyRecord& scanned) {
  const auto volumes = registry_.snapshot();
  if (volumes->writable.empty()) co_return outcome(Kind::kSkipped, "no volume takes writes");
  const auto placed = [&](const IndexRecord& record) {
    const auto placement = ranked(scanned.key, volumes->writable, settings_.replicas);
    return std::is_permutation(placement.begin(), placement.end(), record.volumes.begin(),
                               record.volumes.end());
  };
  // Most keys are where they belong: told from the scanned record alone.
  if (!scanned.record.committed() || placed(scanned.record)) co_return outcome(Kind::kUnchanged);

  KeyLocks::Held held(locks_, scanned.key);
  if (!held) co_return outcome(Kind::kSkipped, "the key is busy");
  // The scan may be seconds old: decide on the record as it is now.
  auto current = co_await protocol_.read(scanned.key);
  if (!current) co_return outcome(Kind::kFailed, current.error().message);
  if (!current->record || !current->record->committed() || placed(*current->record)) {
    co_return outcome(Kind::kUnchanged);
  }
  const KeyRecord entry{scanned.key, *current->record};
  const auto& record = entry.record;
  const auto placement = ranked(entry.key, volumes->writable, settings_.replicas);
  std::vector<std::string> missing;
  for (const auto& volume : placement) {
    if (!contains(record.volumes, volume)) missing.push_back(volume);
  }
  std::vector<std::string> sources;
  for (const auto& volume : record.volumes) {
    if (health_.is_up(volume)) sources.push_back(volume);
  }
  if (sources.empty()) co_return outcome(Kind::kSkipped, "no copy of the key is up");
  for (const auto& volume : missing) {
    if (!health_.is_up(volume)) co_return outcome(Kind::kSkipped, "volume " + volume + " is down");
  }
  co_return co_await move(entry, sources, missing, placement);
}

asio::awaitable<Outcome> Maintenance::repair(const KeyRecord& scanned,
                                             std::optional<std::string> bad) {
  if (!scanned.record.committed()) co_return outcome(Kind::kUnchanged);
  KeyLocks::Held held(locks_, scanned.key);
  if (!held) co_return outcome(Kind::kSkipped, "the key is busy");
  // The scan may be seconds old: check the copies of the record as it is now.
  auto current = co_await protocol_.read(scanned.key);
  if (!current) co_return outcome(Kind::kFailed, current.error().message);
  if (!current->record || !current->record->committed()) co_return outcome(Kind::kUnchanged);
  if (bad && current->record->version != scanned.record.version) bad.reset();
  const KeyRecord entry{scanned.key, *current->record};
  const auto& record = entry.record;
  const auto volumes = registry_.snapshot();

  // Which copies are good: asked of each volume at once.
  const auto etag = etag_for(record.checksum);
  std::vector<asio::awaitable<std::optional<bool>>> checks;
  for (const auto& volume : record.volumes) {
    checks.push_back(holds(volume, entry.key, record.version, etag));
  }
  const auto answers = co_await when_all(std::move(checks));
  std::vector<std::string> good;
  std::vector<std::string> unknown;
  bool any_bad = false;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& volume = record.volumes[i];
    const bool registered = std::binary_search(volumes->all.begin(), volumes->all.end(), volume);
    if ((bad && *bad == volume) || !registered || (answers[i] && !*answers[i])) {
      any_bad = true;
    } else if (!answers[i] || !health_.is_up(volume)) {
      unknown.push_back(volume);
    } else {
      good.push_back(volume);
    }
  }
  if (!any_bad && unknown.empty() && good.size() >= settings_.replicas) {
    co_return outcome(Kind::kUnchanged);
  }
  // A holder that is down may only be rebooting: its copies are not given
  // up on until it answers (a removed volume is no holder at all).
  if (!unknown.empty()) co_return outcome(Kind::kSkipped, "volume " + unknown.front() + " is down");
  if (good.empty()) co_return outcome(Kind::kFailed, "no good copy of the key is left");
  // New copies on the next volumes of the key's ranking that are up (a
  // wiped or corrupt holder is a fine target: its bad copy is gone).
  std::vector<std::string> targets;
  for (const auto& volume : ranked(entry.key, volumes->writable, volumes->writable.size())) {
    if (good.size() + targets.size() >= settings_.replicas) break;
    if (contains(good, volume) || !health_.is_up(volume)) continue;
    targets.push_back(volume);
  }
  auto location = good;
  location.insert(location.end(), targets.begin(), targets.end());
  co_return co_await move(entry, good, targets, location);
}

asio::awaitable<Outcome> Maintenance::collect_if_orphan(const std::string& volume,
                                                        const internal::BlobEntry& entry) {
  const auto now = wall_clock_micros();
  const auto min_age = static_cast<std::uint64_t>(settings_.orphan_min_age.count());
  if (entry.mtime + min_age > now / 1'000'000) co_return outcome(Kind::kUnchanged);
  const auto& protocol = protocol_.settings();
  // Whether the index may still want the file: decided on the record, and
  // again under the key's lock just before the removal.
  const auto wanted = [&](const RecordRead& current) {
    const auto& record = current.record;
    if (entry.marker) return record && record->tombstone() && record->version == entry.version;
    if (record && record->committed()) {
      if (record->version == entry.version && contains(record->volumes, volume)) return true;
      if (record->previous && record->previous->version == entry.version) return true;
    }
    // An upload of this version may still commit.
    const auto horizon = std::chrono::duration_cast<std::chrono::microseconds>(
                             protocol.max_upload_time + protocol.old_version_grace)
                             .count();
    return entry.version + static_cast<std::uint64_t>(horizon) > now;
  };
  auto current = co_await protocol_.read(entry.key);
  if (!current) co_return outcome(Kind::kFailed, current.error().message);
  if (wanted(*current)) co_return outcome(Kind::kUnchanged);

  KeyLocks::Held held(locks_, entry.key);
  if (!held) co_return outcome(Kind::kSkipped, "the key is busy");
  current = co_await protocol_.read(entry.key);
  if (!current) co_return outcome(Kind::kFailed, current.error().message);
  if (wanted(*current)) co_return outcome(Kind::kUnchanged);
  auto url = parse_base_url(volume);
  if (!url) co_return outcome(Kind::kFailed, url.error().message);
  // A marker goes with everything at or below it (all older than a delete);
  // a value file alone.
  const internal::RemovalCall call{
      entry.key, entry.version,
      entry.marker ? internal::RemovalCall::Scope::kUpTo : internal::RemovalCall::Scope::kExactly};
  if (auto removed = co_await internal::send_removal(*url, call); !removed) {
    co_return outcome(Kind::kFailed, removed.error().message);
  }
  co_return outcome(Kind::kChanged);
}

}  // namespace kalavara
