#include "master/master_service.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <ctime>
#include <mutex>
#include <random>

#include "common/blocking.hpp"
#include "common/checksum.hpp"
#include "common/conditional.hpp"
#include "common/digest.hpp"
#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "common/json.hpp"
#include "common/key_codec.hpp"
#include "common/text.hpp"
#include "master/placement.hpp"

namespace kalavara {
namespace {

using http::Field;
using http::HttpStatus;
using http::Response;
using http::Verb;
namespace asio = http::asio;

constexpr std::string_view kCommitPrefix = "/internal/commit/";
// An add-volume body is one URL; anything longer is not one.
constexpr std::size_t kMaxAdminBody = 4096;
constexpr std::size_t kDefaultListLimit = 1000;
constexpr std::size_t kMaxListLimit = 10000;

// The ETag of the key's current value, or nullopt when the key is absent.
std::optional<std::string> current_etag(const std::optional<IndexRecord>& record) {
  if (!record) return std::nullopt;
  return etag_for(record->checksum);
}

std::string volume_location(std::string_view volume, std::string_view key) {
  std::string location(volume);
  location += kStorePrefix;
  location += encode_key_path(key);
  return location;
}

std::optional<std::uint64_t> parse_u64(const std::optional<std::string>& text) {
  return text ? parse_decimal(*text) : std::nullopt;
}

Response redirect(HttpStatus status, const std::string& location) {
  Response response{status, 11};
  response.set(Field::location, location);
  response.prepare_payload();
  return response;
}

// Removes the key's versions up to `up_to` on `volume`.
asio::awaitable<Status> delete_on_volume(const std::string& volume, const std::string& key,
                                         std::uint64_t up_to) {
  auto url = parse_base_url(volume);
  if (!url) co_return url.error();
  auto reply = co_await http::send_request(
      Verb::delete_, *url,
      std::string(kStorePrefix) + encode_key_path(key) + "?upto=" + std::to_string(up_to), {});
  if (!reply) co_return reply.error();
  if (reply->status != 204 && reply->status != 404) {
    co_return Error{Errc::kPeerFailed, "volume " + volume + " answered " +
                                           std::to_string(reply->status) +
                                           " to delete: " + reply->body};
  }
  co_return Status{};
}

// Parameters by value: the coroutine outlives the caller's frame. A volume
// that cannot take the delete now gets it queued, durably, for when it is
// back.
// The queue's writes are synced, so they run on the blocking pool.
asio::awaitable<void> remove_old_version(IndexStore& store, asio::thread_pool& blocking,
                                         std::string volume, std::string key,
                                         std::uint64_t version) {
  if (auto status = co_await delete_on_volume(volume, key, version); !status) {
    spdlog::info("queueing the removal of an old version on {}: {}", volume,
                 status.error().message);
    Status queued;
    co_await run_blocking(blocking, [&] { queued = store.queue_delete({volume, key, version}); });
    if (!queued) {
      spdlog::error("could not queue a delete for {}: {}", volume, queued.error().message);
    }
  }
}

// Applies the pending deletes of `volume`, a batch at a time.
asio::awaitable<void> apply_pending_deletes(IndexStore& store, asio::thread_pool& blocking,
                                            std::string volume,
                                            std::shared_ptr<std::atomic<bool>> running) {
  for (;;) {
    auto pending = store.pending_deletes(volume, 256);
    if (!pending || pending->empty()) break;
    bool progress = false;
    for (const auto& entry : *pending) {
      if (auto status = co_await delete_on_volume(volume, entry.key, entry.version); !status) {
        spdlog::debug("pending delete on {} not applied yet: {}", volume, status.error().message);
        continue;
      }
      Status cleared;
      co_await run_blocking(blocking, [&] { cleared = store.clear_pending(entry); });
      if (cleared) progress = true;
    }
    if (!progress) break;
  }
  *running = false;
}

}  // namespace

MasterService::MasterService(IndexStore& store, VersionClock& clock, const VolumeHealth& health,
                             MasterOptions options)
    : store_(store), clock_(clock), health_(health), options_(std::move(options)) {}

Status MasterService::load_volumes(const std::vector<BaseUrl>& extra) {
  auto stored = store_.volumes();
  if (!stored) return stored.error();
  {
    std::unique_lock lock(mutex_);
    volumes_ = std::move(stored).value();
    std::sort(volumes_.begin(), volumes_.end());
  }
  for (const auto& url : extra) {
    if (auto added = register_volume(url); !added) return added.error();
  }
  return {};
}

std::vector<std::string> MasterService::volumes() const {
  std::shared_lock lock(mutex_);
  return volumes_;
}

Result<bool> MasterService::register_volume(const BaseUrl& url) {
  {
    std::shared_lock lock(mutex_);
    if (std::binary_search(volumes_.begin(), volumes_.end(), url.text)) return false;
  }
  // Durable first: a volume we route keys to must still be known after a crash.
  if (auto status = store_.add_volume(url.text); !status) return status.error();
  std::unique_lock lock(mutex_);
  const auto at = std::lower_bound(volumes_.begin(), volumes_.end(), url.text);
  if (at != volumes_.end() && *at == url.text) return false;
  volumes_.insert(at, url.text);
  return true;
}

void MasterService::add_routes(http::Router& router) {
  using Match = http::Router::Match;
  const std::string store(kStorePrefix);
  router.add(store, Match::kPrefix, {Verb::get, Verb::head},
             [this](http::Exchange& exchange) { return get(exchange); });
  router.add(store, Match::kPrefix, {Verb::put},
             [this](http::Exchange& exchange) { return put(exchange); });
  router.add(store, Match::kPrefix, {Verb::delete_},
             [this](http::Exchange& exchange) { return erase(exchange); });
  router.add("/admin/volumes", Match::kExact, {Verb::get},
             [this](http::Exchange& exchange) { return describe_volumes(exchange); });
  router.add("/admin/add-volume", Match::kExact, {Verb::post},
             [this](http::Exchange& exchange) { return add_volume(exchange); });
  router.add(std::string(kCommitPrefix), Match::kPrefix, {Verb::post},
             [this](http::Exchange& exchange) { return commit(exchange); });
  http::add_health_route(router);
}

MasterService::Answer MasterService::put(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  const auto& request = exchange.request();
  const auto if_match = request[Field::if_match];
  const auto if_none_match = request[Field::if_none_match];
  if (!if_match.empty() || !if_none_match.empty()) {
    // Fail early, before the client uploads; the commit checks again, which
    // is what makes the condition race-free.
    auto record = store_.get(*key);
    if (!record) co_return http::error_response(record.error());
    const auto etag = current_etag(*record);
    if (auto status = check_write_preconditions(if_match, if_none_match, etag); !status) {
      co_return http::error_response(status.error());
    }
  }

  // The key's replicas: the top N of its ranking among the volumes that
  // are up. With one down, its keys' new writes go to the next in rank, and
  // the record says where.
  std::vector<std::string> replicas;
  {
    std::shared_lock lock(mutex_);
    if (volumes_.empty()) {
      co_return http::error_response(
          {Errc::kUnavailable, "no volumes registered; add one with /admin/add-volume"});
    }
    for (const auto index : rank_volumes(digest_of(*key), volumes_, volumes_.size())) {
      if (!health_.is_up(volumes_[index])) continue;
      replicas.push_back(volumes_[index]);
      if (replicas.size() == options_.replicas) break;
    }
  }
  if (replicas.size() < options_.replicas) {
    co_return http::error_response(
        {Errc::kUnavailable, "only " + std::to_string(replicas.size()) + " volume(s) up, " +
                                 std::to_string(options_.replicas) + " replicas needed"});
  }

  std::string master_url;
  if (options_.advertise_url) {
    master_url = options_.advertise_url->text;
  } else {
    auto from_host = parse_base_url("http://" + std::string(request[Field::host]));
    if (!from_host)
      co_return http::error_response({Errc::kBadInput, "PUT needs a valid Host header"});
    master_url = from_host->text;
  }

  auto version = clock_.next();
  if (!version) co_return http::error_response(version.error());
  std::string others;
  for (std::size_t i = 1; i < replicas.size(); ++i) others += (i == 1 ? "" : ",") + replicas[i];
  if (!others.empty()) others = "&replicas=" + percent_encode_component(others);

  // The value becomes visible only when the volume commits it after its
  // durable write: nothing is written here, so an abandoned upload changes
  // nothing.
  co_return redirect(HttpStatus::temporary_redirect,
                     volume_location(replicas.front(), *key) +
                         "?master=" + percent_encode_component(master_url) +
                         "&version=" + std::to_string(*version) + others);
}

MasterService::Answer MasterService::get(http::Exchange& exchange) {
  const auto& request = exchange.request();
  if (query_param(split_target(request.target()).query, "list")) return list(exchange);
  return locate(exchange);
}

MasterService::Answer MasterService::locate(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  auto record = store_.get(*key);
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
  if (up.empty())
    co_return http::error_response({Errc::kUnavailable, "no replica of the key is up"});
  thread_local std::minstd_rand spread{std::random_device{}()};
  const auto& volume = *up[spread() % up.size()];
  auto response = redirect(HttpStatus::found, volume_location(volume, *key) +
                                                  "?version=" + std::to_string((*record)->version));
  response.set(Field::etag, etag);
  response.set("X-Kalavara-Size", std::to_string((*record)->size));
  co_return response;
}

MasterService::Answer MasterService::list(http::Exchange& exchange) {
  const auto target = split_target(exchange.request().target());
  auto prefix = percent_decode(target.path.substr(kStorePrefix.size()));
  if (!prefix) co_return http::error_response(prefix.error());
  std::uint64_t limit = kDefaultListLimit;
  if (auto text = query_param(target.query, "limit")) {
    const auto parsed = parse_decimal(*text);
    if (!parsed || *parsed == 0 || *parsed > kMaxListLimit) {
      co_return http::error_response({Errc::kBadInput, "limit must be a whole number from 1 to " +
                                                           std::to_string(kMaxListLimit)});
    }
    limit = *parsed;
  }
  const auto start = query_param(target.query, "start").value_or("");
  auto page = store_.list(*prefix, start, limit);
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
  auto& stripe = stripe_of(*key);
  IndexRecord record;
  {
    std::lock_guard lock(stripe.mutex);
    if (stripe.deleting.contains(*key)) {
      co_return http::error_response(
          {Errc::kConflict, "a delete of this key is already in progress"});
    }
    auto found = store_.get(*key);
    if (!found) co_return http::error_response(found.error());
    if (!found->has_value()) co_return http::error_response({Errc::kNotFound, "no such key"});
    if (auto status = check_write_preconditions(exchange.request()[Field::if_match], {},
                                                current_etag(*found));
        !status) {
      co_return http::error_response(status.error());
    }
    record = std::move(**found);
    stripe.deleting.insert(*key);
  }
  struct Unmark {
    KeyStripe& stripe;
    const std::string& key;
    ~Unmark() {
      std::lock_guard lock(stripe.mutex);
      stripe.deleting.erase(key);
    }
  } unmark{stripe, *key};

  // Files first where the volume can take it; for a volume that is down or
  // failing, the delete is queued in the same durable write that removes the
  // record, and applied when the volume is back. Either way the key is gone
  // for good: no copy can come back. Commits of this key wait the delete out.
  std::vector<PendingDelete> pending;
  for (const auto& volume : record.volumes) {
    if (health_.is_up(volume)) {
      if (auto status = co_await delete_on_volume(volume, *key, record.version); status) continue;
    }
    pending.push_back({volume, *key, record.version});
  }
  Status erased;
  co_await run_blocking(blocking_, [&] {
    std::lock_guard lock(stripe.mutex);
    erased = store_.erase_and_queue(*key, pending);
  });
  if (!erased) co_return http::error_response(erased.error());
  co_return Response{HttpStatus::no_content, 11};
}

MasterService::Answer MasterService::add_volume(http::Exchange& exchange) {
  auto body = co_await exchange.read_body(kMaxAdminBody);
  if (!body) co_return http::error_response(body.error());
  auto url = parse_base_url(*body);
  if (!url) co_return http::error_response(url.error());
  auto added = register_volume(*url);
  if (!added) co_return http::error_response(added.error());
  if (*added) spdlog::info("volume {} registered", url->text);
  co_return http::text_response(HttpStatus::ok, (*added ? "added " : "already known ") + url->text);
}

MasterService::Answer MasterService::commit(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kCommitPrefix);
  if (!key) co_return http::error_response(key.error());
  const auto query = split_target(exchange.request().target()).query;
  auto volume_param = query_param(query, "volumes");
  const auto size = parse_u64(query_param(query, "size"));
  const auto version = parse_u64(query_param(query, "version"));
  if (!volume_param || !size || !version) {
    co_return http::error_response(
        {Errc::kBadInput, "commit needs volumes=, version= and size= parameters"});
  }
  std::vector<std::string> volumes;
  for (std::string_view list = *volume_param; !list.empty();) {
    const auto comma = list.find(',');
    auto volume = parse_base_url(list.substr(0, comma));
    if (!volume) co_return http::error_response(volume.error());
    volumes.push_back(volume->text);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  {
    std::shared_lock lock(mutex_);
    for (const auto& volume : volumes) {
      if (!std::binary_search(volumes_.begin(), volumes_.end(), volume)) {
        co_return http::error_response(
            {Errc::kConflict, "volume " + volume + " is not registered with this master"});
      }
    }
  }
  const auto checksum = query_param(query, "checksum").value_or("");
  const auto if_match = query_param(query, "if_match").value_or("");
  const auto if_none_match = query_param(query, "if_none_match").value_or("");

  IndexRecord record;
  record.volumes = volumes;
  record.size = *size;
  record.checksum = checksum;
  record.version = *version;
  CommitOutcome outcome;
  co_await run_blocking(blocking_,
                        [&] { outcome = commit_record(*key, record, if_match, if_none_match); });
  if (!outcome.status) co_return http::error_response(outcome.status.error());
  if (outcome.superseded) co_return http::text_response(HttpStatus::ok, "superseded");
  const auto& previous = outcome.previous;

  // The previous version's files are garbage now, wherever they are.
  // Removing them is best effort: the index no longer points at them.
  if (previous) {
    const auto executor = co_await asio::this_coro::executor;
    for (const auto& old_volume : previous->volumes) {
      asio::co_spawn(executor,
                     remove_old_version(store_, blocking_, old_volume, *key, previous->version),
                     asio::detached);
    }
  }
  co_return http::text_response(HttpStatus::ok, "committed");
}

MasterService::Answer MasterService::describe_volumes(http::Exchange&) {
  std::string body = "[";
  for (const auto& state : health_.snapshot()) {
    if (body.size() > 1) body += ", ";
    body += "{\"url\": ";
    append_json_string(body, state.url);
    body += std::string(", \"state\": \"") + (state.up ? "up" : "down") + "\", \"last_seen\": ";
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

void MasterService::volume_alive(const std::string& url, const asio::any_io_executor& executor) {
  std::shared_ptr<std::atomic<bool>> running;
  {
    std::lock_guard lock(pending_mutex_);
    auto& flag = pending_runs_[url];
    if (!flag) flag = std::make_shared<std::atomic<bool>>(false);
    running = flag;
  }
  if (running->exchange(true)) return;  // a run for this volume is under way
  asio::co_spawn(executor, apply_pending_deletes(store_, blocking_, url, running), asio::detached);
}

MasterService::CommitOutcome MasterService::commit_record(const std::string& key,
                                                          const IndexRecord& record,
                                                          std::string_view if_match,
                                                          std::string_view if_none_match) {
  CommitOutcome outcome;
  auto& stripe = stripe_of(key);
  std::lock_guard lock(stripe.mutex);
  if (stripe.deleting.contains(key)) {
    outcome.status = Error{Errc::kConflict, "the key is being deleted; retry the PUT"};
    return outcome;
  }
  auto found = store_.get(key);
  if (!found) {
    outcome.status = found.error();
    return outcome;
  }
  if (*found && (*found)->version == record.version && (*found)->checksum == record.checksum) {
    // This very write is committed already (versions are unique to a PUT):
    // a commit sent again after its answer was lost. Answering "committed"
    // again makes the commit idempotent, so the volume keeps its files.
    return outcome;
  }
  outcome.previous = std::move(*found);
  outcome.status =
      check_write_preconditions(if_match, if_none_match, current_etag(outcome.previous));
  if (!outcome.status) return outcome;
  if (outcome.previous && outcome.previous->version >= record.version) {
    // A newer write of the key is already committed: this one is ordered
    // before it, so it is overwritten at once. Versions, not arrival order,
    // decide, so every replica and the index agree.
    outcome.superseded = true;
    return outcome;
  }
  outcome.status = store_.put(key, record);
  return outcome;
}

MasterService::KeyStripe& MasterService::stripe_of(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % stripes_.size()];
}

}  // namespace kalavara
