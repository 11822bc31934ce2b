#include "master/master_service.hpp"

#include <spdlog/spdlog.h>
#include <charconv>
#include <ctime>
#include <random>

#include "common/checksum.hpp"
#include "common/conditional.hpp"
#include "common/digest.hpp"
#include "common/http_server.hpp"
#include "common/internal_api.hpp"
#include "common/json.hpp"
#include "common/key_codec.hpp"
#include "common/request_auth.hpp"
#include "common/text.hpp"
#include "master/placement.hpp"

namespace kalavara {
namespace {

using http::Field;
using http::HttpStatus;
using http::Response;
using http::Verb;

// An add-volume body is one URL; anything longer is not one.
constexpr std::size_t kMaxAdminBody = 4096;
constexpr std::size_t kDefaultListLimit = 1000;
constexpr std::size_t kMaxListLimit = 10000;

Response redirect(HttpStatus status, const std::string& location) {
  Response response{status, 11};
  response.set(Field::location, location);
  response.prepare_payload();
  return response;
}

std::optional<std::string> etag_of(const std::optional<IndexRecord>& record) {
  if (!record) return std::nullopt;
  return etag_for(record->checksum);
}

}  // namespace

MasterService::MasterService(KeyProtocol& protocol, VolumeRegistry& registry, VolumeHealth& health,
                             RemovalWorker& removals, MasterOptions options)
    : protocol_(protocol),
      registry_(registry),
      health_(health),
      removals_(removals),
      options_(std::move(options)) {}

void MasterService::add_routes(http::Router& router) {
  using Match = http::Router::Match;
  const std::string store(kStorePrefix);
  router.add(store, Match::kPrefix, {Verb::get, Verb::head},
             [this](http::Exchange& exchange) { return get(exchange); });
  router.add(store, Match::kPrefix, {Verb::put},
             [this](http::Exchange& exchange) { return put(exchange); });
  router.add(store, Match::kPrefix, {Verb::delete_},
             [this](http::Exchange& exchange) { return erase(exchange); });
  const http::Access admin{nullptr, &options_.admin_token};
  const http::Access daemons{options_.signer, nullptr};
  const http::Access daemons_or_admin{options_.signer, &options_.admin_token};
  router.add("/admin/volumes", Match::kExact, {Verb::get},
             http::guarded(
                 admin, [this](http::Exchange& exchange) { return describe_volumes(exchange); }));
  // Served while stopping: they finish uploads under way, or tell of volumes.
  using WhileStopping = http::Router::WhileStopping;
  router.add(std::string(internal::kRegisterPath), Match::kExact, {Verb::post},
             http::guarded(daemons_or_admin,
                           [this](http::Exchange& exchange) { return add_volume(exchange); }),
             WhileStopping::kServe);
  router.add(std::string(internal::kStoppingPath), Match::kExact, {Verb::post},
             http::guarded(daemons_or_admin,
                           [this](http::Exchange& exchange) { return volume_stopping(exchange); }),
             WhileStopping::kServe);
  router.add(std::string(internal::kCommitPath), Match::kPrefix, {Verb::post},
             http::guarded(daemons, [this](http::Exchange& exchange) { return commit(exchange); }),
             WhileStopping::kServe);
  http::add_health_route(router);
}

MasterService::Answer MasterService::put(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix, options_.max_key_bytes);
  if (!key) co_return http::error_response(key.error());
  const auto& request = exchange.request();
  if (auto size = http::check_declared_length(request, options_.max_value_bytes); !size) {
    co_return http::error_response(size.error());
  }
  const auto if_match = request[Field::if_match];
  const auto if_none_match = request[Field::if_none_match];
  if (!if_match.empty() || !if_none_match.empty()) {
    // Fail early, before the client uploads; the commit checks again, which
    // is what makes the condition race-free.
    auto record = co_await protocol_.current(*key);
    if (!record) co_return http::error_response(record.error());
    if (auto status = check_write_preconditions(if_match, if_none_match, etag_of(*record));
        !status) {
      co_return http::error_response(status.error());
    }
  }

  // The key's replicas: the top N of its ranking among the volumes that
  // are up. With one down, its keys' new writes go to the next in rank, and
  // the record says where.
  // Draining volumes take no new writes.
  const auto registered = registry_.snapshot();
  const auto& volumes = registered->writable;
  if (volumes.empty()) {
    co_return http::error_response(
        {Errc::kUnavailable, "no volumes registered; add one with /admin/add-volume"});
  }
  // A volume without room for the value (by its last check) is passed over
  // as a down one is: the write goes to the next in rank.
  std::uint64_t room_needed = 0;
  if (options_.volume_min_free_bytes > 0) {
    const auto declared = request[Field::content_length];
    std::uint64_t length = 0;
    std::from_chars(declared.data(), declared.data() + declared.size(), length);
    room_needed = options_.volume_min_free_bytes + length;
  }
  std::vector<std::string_view> replicas;
  for (const auto index : rank_volumes(digest_of(*key), volumes, volumes.size())) {
    if (!health_.takes_writes(volumes[index], room_needed)) continue;
    replicas.push_back(volumes[index]);
    if (replicas.size() == options_.replicas) break;
  }
  if (replicas.size() < options_.replicas) {
    co_return http::error_response(
        {Errc::kUnavailable, "only " + std::to_string(replicas.size()) +
                                 " volume(s) up with room for the value, " +
                                 std::to_string(options_.replicas) + " replicas needed"});
  }

  internal::WriteOrder order;
  if (options_.advertise_url) {
    order.master = *options_.advertise_url;
  } else {
    auto from_host = parse_base_url("http://" + std::string(request[Field::host]));
    if (!from_host) {
      co_return http::error_response({Errc::kBadInput, "PUT needs a valid Host header"});
    }
    order.master = std::move(from_host).value();
  }
  for (std::size_t i = 1; i < replicas.size(); ++i) {
    auto url = parse_base_url(replicas[i]);
    if (!url) co_return http::error_response(url.error());
    order.replicas.push_back(std::move(url).value());
  }
  auto version = co_await protocol_.issue_version(*key);
  if (!version) co_return http::error_response(version.error());
  order.version = *version;

  // The value becomes visible only when the volume commits it after its
  // durable write: nothing is written here, so an abandoned upload changes
  // nothing.
  co_return redirect(HttpStatus::temporary_redirect,
                     internal::write_location(replicas.front(), *key, order, options_.signer));
}

MasterService::Answer MasterService::get(http::Exchange& exchange) {
  const auto& request = exchange.request();
  if (query_param(split_target(request.target()).query, "list")) return list(exchange);
  return locate(exchange);
}

MasterService::Answer MasterService::locate(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  auto record = co_await protocol_.current(*key);
  if (!record) co_return http::error_response(record.error());
  if (!record->has_value() || (*record)->volumes.empty()) {
    co_return http::error_response({Errc::kNotFound, "no such key"});
  }
  const auto etag = etag_for((*record)->checksum);
  if (const auto header = exchange.request()[Field::if_none_match];
      !header.empty() && if_none_match_matches(header, etag)) {
    Response not_modified{HttpStatus::not_modified, 11};
    not_modified.set(Field::etag, etag);
    co_return not_modified;
  }
  // Spread reads over the replicas that are up.
  std::vector<const std::string*> up;
  for (const auto& volume : (*record)->volumes) {
    if (health_.is_up(volume)) up.push_back(&volume);
  }
  if (up.empty()) {
    co_return http::error_response({Errc::kUnavailable, "no replica of the key is up"});
  }
  thread_local std::minstd_rand spread{std::random_device{}()};
  const auto& volume = *up[spread() % up.size()];
  auto response = redirect(
      HttpStatus::found, internal::read_location(volume, *key, (*record)->version,
                                                 options_.sign_reads ? options_.signer : nullptr));
  response.set(Field::etag, etag);
  response.set("X-Kalavara-Size", std::to_string((*record)->size));
  co_return response;
}

MasterService::Answer MasterService::list(http::Exchange& exchange) {
  const auto target = split_target(exchange.request().target());
  auto prefix = percent_decode(target.path.substr(kStorePrefix.size()));
  if (!prefix) co_return http::error_response(prefix.error());
  auto limit_param = checked_query_param(target.query, "limit");
  auto start = checked_query_param(target.query, "start");
  if (!limit_param) co_return http::error_response(limit_param.error());
  if (!start) co_return http::error_response(start.error());
  std::uint64_t limit = kDefaultListLimit;
  if (const auto& text = *limit_param) {
    const auto parsed = parse_decimal(*text);
    if (!parsed || *parsed == 0 || *parsed > kMaxListLimit) {
      co_return http::error_response({Errc::kBadInput, "limit must be a whole number from 1 to " +
                                                           std::to_string(kMaxListLimit)});
    }
    limit = *parsed;
  }
  auto page = co_await protocol_.list(*prefix, start->value_or(""), limit);
  if (!page) co_return http::error_response(page.error());

  std::string body = "{\"keys\": [";
  for (std::size_t i = 0; i < page->keys.size(); ++i) {
    if (i > 0) body += ", ";
    append_json_string(body, page->keys[i]);
  }
  body += "], \"next\": ";
  append_json_string(body, page->next);
  body += "}\n";
  co_return http::json_response(std::move(body));
}

MasterService::Answer MasterService::erase(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  // The tombstone is durable, with every copy's removal queued, before any
  // file is touched: from here on no copy can come back, whatever fails.
  auto deletion = co_await protocol_.erase(*key, exchange.request()[Field::if_match]);
  if (!deletion) co_return http::error_response(deletion.error());
  // The copies on volumes that are up go now; the others' removals stay
  // queued until their volume is back.
  // Where a delete marker may go should a copy's removal stay queued: the
  // key's ranking among the registered volumes.
  const auto registered = registry_.snapshot();
  std::vector<std::string> candidates;
  for (const auto index : rank_volumes(digest_of(*key), registered->all, 3)) {
    candidates.push_back(registered->all[index]);
  }
  co_await removals_.remove_now(std::move(deletion->removals), health_, std::move(candidates));
  co_return Response{HttpStatus::no_content, 11};
}

MasterService::Answer MasterService::add_volume(http::Exchange& exchange) {
  auto body = co_await exchange.read_body(kMaxAdminBody);
  if (!body) co_return http::error_response(body.error());
  auto url = parse_base_url(*body);
  if (!url) co_return http::error_response(url.error());
  auto added = co_await registry_.add(*url);
  if (!added) co_return http::error_response(added.error());
  if (*added) spdlog::info("volume {} registered", url->text);
  health_.set_stopping(url->text, false);
  co_return http::text_response(HttpStatus::ok, (*added ? "added " : "already known ") + url->text);
}

MasterService::Answer MasterService::commit(http::Exchange& exchange) {
  auto call = internal::parse_commit(exchange.request().target());
  if (!call) co_return http::error_response(call.error());
  for (const auto& volume : call->volumes) {
    if (!registry_.contains(volume)) {
      co_return http::error_response(
          {Errc::kBadInput, "volume " + volume + " is not registered with this master"});
    }
  }
  auto answer = co_await protocol_.commit(*call);
  if (!answer) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    co_return http::error_response(answer.error());
  }
  (*answer == internal::CommitAnswer::kCommitted ? committed_ : superseded_)
      .fetch_add(1, std::memory_order_relaxed);
  co_return http::text_response(HttpStatus::ok, internal::commit_answer_text(*answer));
}

MasterService::Answer MasterService::volume_stopping(http::Exchange& exchange) {
  auto body = co_await exchange.read_body(kMaxAdminBody);
  if (!body) co_return http::error_response(body.error());
  auto url = parse_base_url(*body);
  if (!url) co_return http::error_response(url.error());
  if (!registry_.contains(url->text)) {
    co_return http::error_response(
        {Errc::kNotFound, "volume " + url->text + " is not registered with this master"});
  }
  health_.set_stopping(url->text, true);
  co_return http::text_response(HttpStatus::ok, "no more requests go to " + url->text);
}

Readiness MasterService::readiness() const {
  const auto registered = registry_.snapshot();
  std::size_t up = 0;
  for (const auto& url : registered->writable) up += health_.is_up(url) ? 1 : 0;
  const auto wanted = options_.replicas;
  std::string reason = std::to_string(up) + " writable volume(s) up, " + std::to_string(wanted) +
                       " replica(s) wanted";
  return {up >= wanted, std::move(reason)};
}

void MasterService::collect(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  const auto registered = registry_.snapshot();
  const auto states = health_.snapshot();
  out.family("kalavara_master_volume_up", Type::kGauge,
             "1 when the volume passes its health checks and is not stopping.");
  for (const auto& state : states) {
    out.sample("kalavara_master_volume_up", {{"volume", state.url}},
               std::uint64_t{state.up && !state.stopping ? 1U : 0U});
  }
  out.family("kalavara_master_volume_stopping", Type::kGauge,
             "1 when the volume said it is shutting down.");
  for (const auto& state : states) {
    out.sample("kalavara_master_volume_stopping", {{"volume", state.url}},
               std::uint64_t{state.stopping ? 1U : 0U});
  }
  out.family("kalavara_master_volume_draining", Type::kGauge,
             "1 when the volume is being retired (remove-volume): it takes no new writes.");
  for (const auto& state : states) {
    out.sample("kalavara_master_volume_draining", {{"volume", state.url}},
               std::uint64_t{registered->draining(state.url) ? 1U : 0U});
  }
  out.family("kalavara_master_volume_free_bytes", Type::kGauge,
             "Free bytes on the volume's disk, as its last health check reported.");
  for (const auto& state : states) {
    out.sample("kalavara_master_volume_free_bytes", {{"volume", state.url}}, state.free_bytes);
  }
  out.family("kalavara_master_volume_files", Type::kGauge,
             "Value files on the volume, as its last health check reported.");
  for (const auto& state : states) {
    out.sample("kalavara_master_volume_files", {{"volume", state.url}}, state.files);
  }
  out.family("kalavara_master_volume_last_seen_timestamp_seconds", Type::kGauge,
             "When the volume last passed a health check, in seconds since the Unix epoch.");
  for (const auto& state : states) {
    if (!state.last_seen) continue;
    const auto seconds = std::chrono::duration<double>(state.last_seen->time_since_epoch());
    out.sample("kalavara_master_volume_last_seen_timestamp_seconds", {{"volume", state.url}},
               seconds.count());
  }
  out.single("kalavara_master_replicas", Type::kGauge, "Copies kept of every value (--replicas).",
             static_cast<double>(options_.replicas));
  out.family("kalavara_master_commits_total", Type::kCounter,
             "Volumes' commits, by outcome: committed, superseded (ordered before a newer write "
             "or delete), refused (an error answered).");
  out.sample("kalavara_master_commits_total", {{"outcome", "committed"}},
             committed_.load(std::memory_order_relaxed));
  out.sample("kalavara_master_commits_total", {{"outcome", "superseded"}},
             superseded_.load(std::memory_order_relaxed));
  out.sample("kalavara_master_commits_total", {{"outcome", "refused"}},
             refused_.load(std::memory_order_relaxed));
  out.single("kalavara_master_removals_total", Type::kCounter,
             "Copies removed from volumes (of deleted keys and replaced versions).",
             static_cast<double>(removals_.removed()));
  out.single("kalavara_master_removal_failures_total", Type::kCounter,
             "Removal attempts that failed; each stays queued and is tried again.",
             static_cast<double>(removals_.failed()));
}

MasterService::Answer MasterService::describe_volumes(http::Exchange&) {
  const auto registered = registry_.snapshot();
  std::string body = "[";
  for (const auto& state : health_.snapshot()) {
    if (body.size() > 1) body += ", ";
    body += "{\"url\": ";
    append_json_string(body, state.url);
    body += std::string(", \"state\": \"") +
            (state.stopping ? "stopping"
             : state.up     ? "up"
                            : "down") +
            "\", \"draining\": " + (registered->draining(state.url) ? "true" : "false") +
            ", \"last_seen\": ";
    if (state.last_seen) {
      const auto seconds = std::chrono::system_clock::to_time_t(*state.last_seen);
      std::tm utc{};
      gmtime_r(&seconds, &utc);
      char text[32];
      std::strftime(text, sizeof text, "\"%Y-%m-%dT%H:%M:%SZ\"", &utc);
      body += text;
    } else {
      body += "null";
    }
    body += ", \"free_bytes\": " + std::to_string(state.free_bytes) +
            ", \"keys\": " + std::to_string(state.files) + "}";
  }
  body += "]\n";
  co_return http::json_response(std::move(body));
}

}  // namespace kalavara
