#include "master/rebuild.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <utility>

#include "common/blocking.hpp"
#include "common/internal_api.hpp"
#include "common/key_codec.hpp"
#include "common/when_all.hpp"
#include "master/rocksdb_index_store.hpp"

namespace kalavara {

KeyDecision decide_key(const std::vector<ListedCopy>& copies,
                       const std::vector<std::string>& volume_order) {
  KeyDecision decision;
  if (copies.empty()) return decision;
  std::uint64_t top = 0;
  bool top_is_marker = false;
  for (const auto& copy : copies) {
    if (copy.version > top) {
      top = copy.version;
      top_is_marker = copy.marker;
    } else if (copy.version == top && copy.marker) {
      top_is_marker = true;
    }
  }
  if (top_is_marker) {
    decision.deleted = true;
    decision.marker_version = top;
    for (const auto& copy : copies) {
      if (!copy.marker) decision.stale.push_back(copy);
    }
    return decision;
  }

  // The copies of the winning version, by checksum: the one most hold wins
  // (std::map: ties go to the lowest checksum).
  std::map<std::string, std::size_t> holders;
  for (const auto& copy : copies) {
    if (!copy.marker && copy.version == top) ++holders[copy.checksum];
  }
  const auto winner =
      std::max_element(holders.begin(), holders.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  const auto rank = [&](const std::string& volume) {
    const auto at = std::find(volume_order.begin(), volume_order.end(), volume);
    return static_cast<std::size_t>(at - volume_order.begin());
  };
  std::vector<const ListedCopy*> chosen;
  for (const auto& copy : copies) {
    if (copy.marker) continue;
    if (copy.version < top) {
      decision.stale.push_back(copy);
    } else if (copy.checksum == winner->first) {
      chosen.push_back(&copy);
    } else {
      decision.disagreeing.push_back(copy);
    }
  }
  std::sort(chosen.begin(), chosen.end(), [&](const ListedCopy* a, const ListedCopy* b) {
    return std::pair(rank(a->volume), a->volume) < std::pair(rank(b->volume), b->volume);
  });
  IndexRecord record;
  record.version = top;
  record.size = chosen.front()->size;
  record.checksum = winner->first;
  for (const auto* copy : chosen) {
    if (record.volumes.empty() || record.volumes.back() != copy->volume) {
      record.volumes.push_back(copy->volume);
    }
  }
  decision.record = std::move(record);
  return decision;
}

int rebuild_exit_code(const RebuildSummary& summary) {
  return summary.unread_volumes.empty() && summary.stale_not_removed == 0 ? 0 : 1;
}

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Scratch entries: key NUL volume NUL be64(version) kind → be64(size)
// checksum. Keys and volume URLs hold no NUL, so the entries sort by key
// (byte order), then volume, then version, and one key's are adjacent.
constexpr char kValueKind = 'v';
constexpr char kMarkerKind = 'm';

void append_u64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

std::uint64_t read_u64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (const char c : bytes.substr(0, 8)) value = (value << 8) | static_cast<std::uint8_t>(c);
  return value;
}

std::pair<std::string, std::string> scratch_entry(const internal::BlobEntry& entry,
                                                  const std::string& volume) {
  std::string key = entry.key;
  key.push_back('\0');
  key += volume;
  key.push_back('\0');
  append_u64(key, entry.version);
  key.push_back(entry.marker ? kMarkerKind : kValueKind);
  std::string value;
  append_u64(value, entry.size);
  value += entry.checksum;
  return {std::move(key), std::move(value)};
}

// The key and copy a scratch entry holds; nullopt for anything else.
std::optional<std::pair<std::string_view, ListedCopy>> parse_scratch(std::string_view key,
                                                                     std::string_view value) {
  const auto first = key.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = key.find('\0', first + 1);
  if (second == std::string_view::npos || key.size() != second + 1 + 8 + 1 || value.size() < 8) {
    return std::nullopt;
  }
  ListedCopy copy;
  copy.volume = std::string(key.substr(first + 1, second - first - 1));
  copy.version = read_u64(key.substr(second + 1, 8));
  copy.marker = key.back() == kMarkerKind;
  copy.size = read_u64(value);
  copy.checksum = std::string(value.substr(8));
  return std::pair(key.substr(0, first), std::move(copy));
}

std::string printable_key(std::string_view key) { return percent_encode_component(key); }

class Rebuild {
 public:
  Rebuild(const RebuildOptions& options, RocksDbIndexStore& store, asio::thread_pool& blocking)
      : options_(options), store_(store), blocking_(blocking) {
    for (const auto& volume : options_.volumes) volume_order_.push_back(volume.text);
  }

  RebuildSummary& summary() { return summary_; }

  // Phase 1: every volume's listing into the scratch space, all volumes at
  // once. Fails only when the index cannot be written.
  asio::awaitable<Status> list_volumes() {
    std::vector<asio::awaitable<Status>> listings;
    for (std::size_t i = 0; i < options_.volumes.size(); ++i) {
      listings.push_back(list_volume(options_.volumes[i]));
    }
    const auto results = co_await when_all(std::move(listings));
    for (const auto& result : results) {
      if (!result) co_return result;
    }
    co_return Status{};
  }

  // Phase 2: every key's files, in key order, decided and committed.
  asio::awaitable<Status> decide_keys() {
    constexpr std::size_t kScratchPage = 4096;
    std::string after;
    std::string key;
    std::vector<ListedCopy> copies;
    for (;;) {
      Result<std::vector<std::pair<std::string, std::string>>> page =
          std::vector<std::pair<std::string, std::string>>{};
      co_await run_blocking(blocking_, [&] { page = store_.scratch_page(after, kScratchPage); });
      if (!page) co_return page.error();
      for (const auto& [scratch_key, scratch_value] : *page) {
        auto parsed = parse_scratch(scratch_key, scratch_value);
        if (!parsed) {
          co_return Error{Errc::kInternal, "a scratch entry the rebuild did not write"};
        }
        if (parsed->first != key) {
          if (auto status = co_await decide(key, copies); !status) co_return status;
          key.assign(parsed->first);
          copies.clear();
        }
        copies.push_back(std::move(parsed->second));
      }
      if (page->size() < kScratchPage) break;
      after = page->back().first;
    }
    if (auto status = co_await decide(key, copies); !status) co_return status;
    co_return co_await flush_records();
  }

  void progress(bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_progress_ < options_.progress_interval) return;
    last_progress_ = now;
    spdlog::info(
        "rebuild: {} of {} volume(s) listed, {} entries read; {} key(s) rebuilt, {} deleted, {} "
        "stale cop(ies)",
        volumes_done_, options_.volumes.size(), summary_.entries_read, summary_.keys_rebuilt,
        summary_.deleted_keys, summary_.stale_found);
  }

 private:
  asio::awaitable<Status> list_volume(const BaseUrl& volume) {
    constexpr int kAttempts = 4;
    std::string after;
    std::uint64_t read = 0;
    for (;;) {
      Result<internal::BlobPage> page = Error{Errc::kInternal, "not listed"};
      for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        page = co_await internal::list_blobs(volume, after, options_.page_size);
        if (page || attempt == kAttempts) break;
        spdlog::warn("rebuild: listing {} failed ({}); trying again", volume.text,
                     page.error().message);
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(250 << attempt));
        co_await pause.async_wait(asio::use_awaitable);
      }
      if (!page) {
        spdlog::error("rebuild: volume {} could not be listed completely ({} entries read): {}",
                      volume.text, read, page.error().message);
        summary_.unread_volumes.push_back(volume.text);
        co_return Status{};
      }
      std::vector<std::pair<std::string, std::string>> entries;
      for (const auto& entry : page->entries) {
        if (entry.version == 0) {
          // Written before versions existed: no redirect can name it.
          ++summary_.unindexable;
          spdlog::warn("rebuild: {} holds {} at version 0, which cannot be indexed", volume.text,
                       printable_key(entry.key));
          continue;
        }
        summary_.highest_version = std::max(summary_.highest_version, entry.version);
        entries.push_back(scratch_entry(entry, volume.text));
      }
      Status written;
      co_await run_blocking(blocking_, [&] { written = store_.put_scratch(entries); });
      if (!written) co_return written;
      read += page->entries.size();
      summary_.entries_read += page->entries.size();
      progress();
      if (page->next.empty()) break;
      // A cursor that does not move on would page forever.
      if (page->next <= after) {
        spdlog::error("rebuild: volume {}'s listing does not advance past {}", volume.text, after);
        summary_.unread_volumes.push_back(volume.text);
        co_return Status{};
      }
      after = std::move(page->next);
    }
    ++volumes_done_;
    spdlog::info("rebuild: {} listed: {} entries", volume.text, read);
    co_return Status{};
  }

  asio::awaitable<Status> decide(const std::string& key, const std::vector<ListedCopy>& copies) {
    if (copies.empty()) co_return Status{};
    auto decision = decide_key(copies, volume_order_);
    if (decision.deleted) ++summary_.deleted_keys;
    if (!decision.disagreeing.empty()) {
      ++summary_.disagreements;
      for (const auto& copy : decision.disagreeing) {
        spdlog::warn(
            "rebuild: {} version {}: {} holds checksum {}, the record takes {} (held by {} "
            "volume(s)); that copy is kept",
            printable_key(key), copy.version, copy.volume, copy.checksum, decision.record->checksum,
            decision.record->volumes.size());
      }
    }
    for (const auto& copy : decision.stale) {
      ++summary_.stale_found;
      spdlog::info("rebuild: stale copy of {} version {} on {} ({})", printable_key(key),
                   copy.version, copy.volume,
                   decision.deleted
                       ? "the key was deleted at " + std::to_string(decision.marker_version)
                       : "below the committed " + std::to_string(decision.record->version));
      if (options_.clean) co_await remove(key, copy);
    }
    if (decision.record) {
      ++summary_.keys_rebuilt;
      records_.emplace_back(key, std::move(*decision.record));
      if (records_.size() >= kRecordBatch) {
        if (auto status = co_await flush_records(); !status) co_return status;
      }
    }
    progress();
    co_return Status{};
  }

  asio::awaitable<void> remove(const std::string& key, const ListedCopy& copy) {
    auto volume = parse_base_url(copy.volume);
    if (!volume) {
      ++summary_.stale_not_removed;
      co_return;
    }
    // Exactly that version: a removal up to it would take markers too.
    const internal::RemovalCall call{key, copy.version, internal::RemovalCall::Scope::kExactly};
    if (auto removed = co_await internal::send_removal(*volume, call); !removed) {
      ++summary_.stale_not_removed;
      spdlog::error("rebuild: could not remove {} version {} on {}: {}", printable_key(key),
                    copy.version, copy.volume, removed.error().message);
      co_return;
    }
    ++summary_.stale_removed;
  }

  asio::awaitable<Status> flush_records() {
    if (records_.empty()) co_return Status{};
    Status written;
    co_await run_blocking(blocking_, [&] { written = store_.put_batch(records_); });
    records_.clear();
    co_return written;
  }

  static constexpr std::size_t kRecordBatch = 1000;

  const RebuildOptions& options_;
  RocksDbIndexStore& store_;
  asio::thread_pool& blocking_;
  std::vector<std::string> volume_order_;
  RebuildSummary summary_;
  std::size_t volumes_done_ = 0;
  std::vector<std::pair<std::string, IndexRecord>> records_;
  Clock::time_point last_progress_ = Clock::now();
};

}  // namespace

Result<RebuildSummary> rebuild_index(const RebuildOptions& options) {
  asio::thread_pool blocking(2);
  asio::io_context io;
  auto opened = RocksDbIndexStore::open(options.index_dir, 16 * 1024 * 1024, blocking);
  if (!opened) return opened.error();
  auto& store = **opened;
  // The store's pool is joined before the store goes, as it requires.
  struct JoinFirst {
    asio::thread_pool& pool;
    ~JoinFirst() { pool.join(); }
  } join_first{blocking};

  auto held = store.holds_key_records();
  if (!held) return held.error();
  if (*held) {
    return Error{Errc::kConflict,
                 options.index_dir +
                     " already holds key records: a rebuild writes into an empty index only "
                     "(stop the master, and delete or move the folder first)"};
  }
  // Left by a rebuild that was interrupted while listing.
  if (auto cleared = store.clear_scratch(); !cleared) return cleared.error();

  Rebuild rebuild(options, store, blocking);
  spdlog::info("rebuild: listing {} volume(s) into {}", options.volumes.size(), options.index_dir);
  if (auto listed = run_to_completion(io, rebuild.list_volumes()); !listed) {
    return listed.error();
  }
  auto& summary = rebuild.summary();

  // Before any record: should the rebuild stop halfway, the master still
  // issues versions above every stored one and knows its volumes.
  for (const auto& volume : options.volumes) {
    if (auto added = run_to_completion(io, store.put_volume({volume.text, VolumeState::kActive}));
        !added) {
      return added.error();
    }
  }
  if (summary.highest_version > 0) {
    auto floor = run_to_completion(io, store.raise_version_floor(summary.highest_version + 1));
    if (!floor) return floor.error();
    // An upload the lost index had issued a version to may still commit:
    // to a key that has no record now, it is refused, since whether a
    // delete came after it is lost with the index.
    if (auto raised = store.raise_absent_floor(summary.highest_version); !raised) {
      return raised.error();
    }
  }

  if (auto decided = run_to_completion(io, rebuild.decide_keys()); !decided) {
    return decided.error();
  }
  if (auto cleared = store.clear_scratch(); !cleared) return cleared.error();
  rebuild.progress(true);
  spdlog::info(
      "rebuild: done: {} key(s) rebuilt, {} deleted key(s) seen, {} stale cop(ies) found, {} "
      "removed{}, {} key(s) with disagreeing copies, {} unindexable file(s); highest version {}; "
      "volumes not read completely: {}",
      summary.keys_rebuilt, summary.deleted_keys, summary.stale_found, summary.stale_removed,
      summary.stale_not_removed > 0
          ? fmt::format(" ({} could not be removed)", summary.stale_not_removed)
          : std::string(options.clean ? "" : " (run with --clean to remove them)"),
      summary.disagreements, summary.unindexable, summary.highest_version,
      summary.unread_volumes.empty() ? std::string("none")
                                     : fmt::format("{}", fmt::join(summary.unread_volumes, ", ")));
  return summary;
}

}  // namespace kalavara
