// Fuzz target: the daemon-to-daemon messages (common/internal_api.hpp). The
// input is read by every parser — as the key and query of a commit, as the
// query of a write order, removal, read, listing, copy or admin call, as a
// listing page, stats or a commit's answer — and whatever a parser takes is
// built again with its builder and must parse back to the same message.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/internal_api.hpp"
#include "common/key_codec.hpp"
#include "fuzz_check.hpp"

namespace kalavara::fuzz {
namespace {

using namespace kalavara::internal;

std::string_view query_of(std::string_view target) { return split_target(target).query; }

std::vector<std::string> texts(const std::vector<BaseUrl>& urls) {
  std::vector<std::string> out;
  for (const auto& url : urls) out.push_back(url.text);
  return out;
}

void check_commit(std::string_view input) {
  const auto call = parse_commit(std::string(kCommitPath) + std::string(input));
  if (!call) {
    FUZZ_CHECK(call.error().code == Errc::kBadInput);
    return;
  }
  const auto target = commit_target(*call);
  FUZZ_CHECK(target.starts_with(kCommitPath));
  const auto again = parse_commit(target);
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->key == call->key && again->volumes == call->volumes &&
             again->version == call->version && again->size == call->size &&
             again->checksum == call->checksum && again->if_match == call->if_match &&
             again->if_none_match == call->if_none_match);
}

void check_write_order(std::string_view query, const std::string& key) {
  const auto order = parse_write_order(query);
  if (!order) {
    FUZZ_CHECK(order.error().code == Errc::kBadInput);
    return;
  }
  FUZZ_CHECK(order->version >= 1);
  if (order->as_replica) {
    // A replica's copy names no master and no further replicas.
    FUZZ_CHECK(!order->master && order->replicas.empty());
    const auto again = parse_write_order(query_of(replica_target(key, order->version)));
    FUZZ_CHECK(again && again->as_replica && again->version == order->version && !again->master &&
               again->replicas.empty());
    return;
  }
  const auto location = write_location("http://primary:6001", key, *order);
  FUZZ_CHECK(location.starts_with("http://primary:6001/store/"));
  const auto stored_key = key_in_target(location.substr(19), kStorePrefix);
  FUZZ_CHECK(stored_key && *stored_key == key);
  const auto again = parse_write_order(query_of(location));
  FUZZ_CHECK(again && !again->as_replica && again->version == order->version);
  FUZZ_CHECK(again->master.has_value() == order->master.has_value());
  if (order->master) FUZZ_CHECK(again->master->text == order->master->text);
  FUZZ_CHECK(texts(again->replicas) == texts(order->replicas));
}

void check_removal(std::string_view query, const std::string& key) {
  const auto call = parse_removal(key, query);
  if (!call) {
    FUZZ_CHECK(call.error().code == Errc::kBadInput);
    return;
  }
  FUZZ_CHECK(call->key == key && call->version >= 1);
  const auto target = removal_target(*call);
  const auto again = parse_removal(key, query_of(target));
  FUZZ_CHECK(again && again->key == key && again->version == call->version &&
             again->scope == call->scope);
  const auto path_key = key_in_target(target, kStorePrefix);
  FUZZ_CHECK(path_key && *path_key == key);
}

void check_small_queries(std::string_view query, const std::string& key) {
  if (const auto version = parse_read_version(query); version && *version) {
    const auto again = parse_read_version(query_of(read_target(key, **version)));
    FUZZ_CHECK(again && *again == *version);
    FUZZ_CHECK(read_location("http://v:1", key, **version) ==
               "http://v:1" + read_target(key, **version));
  }
  if (const auto blobs = parse_blobs_query(query)) {
    FUZZ_CHECK(blobs->limit >= 1 && blobs->limit <= kMaxBlobPage);
    const auto again = parse_blobs_query(query_of(blobs_target(blobs->after, blobs->limit)));
    FUZZ_CHECK(again && again->after == blobs->after && again->limit == blobs->limit);
  }
  if (const auto version = parse_admin_version(query)) {
    FUZZ_CHECK(*version >= 1);
    for (const auto& [target, prefix] : {std::pair{verify_target(key, *version), kVerifyPath},
                                         std::pair{marker_target(key, *version), kMarkerPath}}) {
      const auto again = parse_admin_version(query_of(target));
      FUZZ_CHECK(again && *again == *version);
      const auto path_key = key_in_target(target, prefix);
      FUZZ_CHECK(path_key && *path_key == key);
    }
  }
  if (const auto copy = parse_copy(key, query)) {
    const auto target = copy_target(*copy);
    const auto again = parse_copy(key, query_of(target));
    FUZZ_CHECK(again && again->key == key && again->version == copy->version &&
               again->from.text == copy->from.text);
    const auto path_key = key_in_target(target, kCopyPath);
    FUZZ_CHECK(path_key && *path_key == key);
  } else {
    FUZZ_CHECK(copy.error().code == Errc::kBadInput);
  }
}

void check_bodies(std::string_view body) {
  if (const auto page = parse_blob_page(body)) {
    std::string rebuilt;
    for (const auto& entry : page->entries) rebuilt += blob_entry_line(entry);
    rebuilt += blob_page_end_line(page->next);
    const auto again = parse_blob_page(rebuilt);
    FUZZ_CHECK(again && again->entries == page->entries && again->next == page->next);
  } else {
    FUZZ_CHECK(page.error().code == Errc::kPeerFailed);
  }
  if (const auto stats = parse_stats(body)) {
    const auto again = parse_stats(stats_body(*stats));
    FUZZ_CHECK(again && *again == *stats);
  } else {
    FUZZ_CHECK(stats.error().code == Errc::kPeerFailed);
  }
  if (const auto answer = parse_commit_answer(body)) {
    FUZZ_CHECK(parse_commit_answer(commit_answer_text(*answer)) == answer);
  }
}

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto input = as_text(data, size);
  check_commit(input);
  // The key of the other messages: a plain one, and one that needs escaping
  // in every way a path can.
  for (const std::string key : {"k", "a b/../%2F?&=#+\x01\xff/."}) {
    check_write_order(input, key);
    check_removal(input, key);
    check_small_queries(input, key);
  }
  check_bodies(input);
  return 0;
}
