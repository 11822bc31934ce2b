#include "common/internal_api.hpp"

#include "common/signature.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "common/http_client.hpp"
#include "common/json_fields.hpp"
#include "common/key_codec.hpp"
#include "common/text.hpp"

namespace kalavara::internal {
namespace {

constexpr std::string_view kMaster = "master";
constexpr std::string_view kVersion = "version";
constexpr std::string_view kReplicas = "replicas";
constexpr std::string_view kReplica = "replica";
constexpr std::string_view kVolumes = "volumes";
constexpr std::string_view kSize = "size";
constexpr std::string_view kChecksum = "checksum";
constexpr std::string_view kIfMatch = "if_match";
constexpr std::string_view kIfNoneMatch = "if_none_match";
constexpr std::string_view kUpTo = "upto";
constexpr std::string_view kCommitted = "committed";
constexpr std::string_view kSuperseded = "superseded";

Error bad(std::string_view what) { return Error{Errc::kBadInput, std::string(what)}; }

void append_param(std::string& out, std::string_view name, std::string_view value) {
  out += out.find('?') == std::string::npos ? '?' : '&';
  out += name;
  out += '=';
  out += percent_encode_component(value);
}

std::string store_path(std::string_view key) {
  std::string path(kStorePrefix);
  path += encode_key_path(key);
  return path;
}

Result<std::optional<std::uint64_t>> version_param(std::string_view query, std::string_view name) {
  auto found = checked_query_param(query, name);
  if (!found) return found.error();
  const auto& text = *found;
  if (!text) return std::optional<std::uint64_t>{};
  const auto version = parse_decimal(*text);
  if (!version || *version == 0) {
    return bad(std::string(name) + "= must be a version number (1 or more)");
  }
  return std::optional<std::uint64_t>{version};
}

// Comma-separated base URLs, each named once, in canonical form.
Result<std::vector<BaseUrl>> url_list(std::string_view list, std::string_view name) {
  std::vector<BaseUrl> urls;
  if (list.empty()) return urls;
  for (bool more = true; more;) {
    const auto comma = list.find(',');
    more = comma != std::string_view::npos;
    const auto entry = list.substr(0, comma);
    if (entry.empty()) return bad(std::string(name) + "= has an empty entry");
    auto url = parse_base_url(entry);
    if (!url) return bad(std::string(name) + "=: " + url.error().message);
    if (std::any_of(urls.begin(), urls.end(), [&](const BaseUrl& u) { return u == *url; })) {
      return bad(std::string(name) + "= lists " + url->text + " twice");
    }
    urls.push_back(std::move(url).value());
    if (more) list = list.substr(comma + 1);
  }
  return urls;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += ',';
    out += part;
  }
  return out;
}

bool is_checksum_hex(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Conditions travel into header comparisons and error messages: a control
// character there could only be an attempt to forge a header line.
bool has_control_character(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

std::string trimmed_body(std::string body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

}  // namespace

std::string write_location(std::string_view primary, std::string_view key, const WriteOrder& order,
                           const Signer* signer) {
  auto target = store_path(key);
  if (order.master) append_param(target, kMaster, order.master->text);
  append_param(target, kVersion, std::to_string(order.version));
  if (!order.replicas.empty()) {
    std::vector<std::string> urls;
    for (const auto& replica : order.replicas) urls.push_back(replica.text);
    append_param(target, kReplicas, join(urls));
  }
  return std::string(primary) + (signer != nullptr ? signer->sign("PUT", target) : target);
}

std::string replica_target(std::string_view key, std::uint64_t version) {
  auto target = store_path(key);
  append_param(target, kVersion, std::to_string(version));
  append_param(target, kReplica, "1");
  return target;
}

Result<WriteOrder> parse_write_order(std::string_view query) {
  WriteOrder order;
  auto version = version_param(query, kVersion);
  if (!version) return version.error();
  if (!*version) return bad("no write version: PUT through the master, whose redirect carries it");
  order.version = **version;
  order.as_replica = query_param(query, kReplica).has_value();
  if (order.as_replica) return order;
  auto master = checked_query_param(query, kMaster);
  if (!master) return master.error();
  if (*master) {
    auto url = parse_base_url(**master);
    if (!url) return bad("master=: " + url.error().message);
    order.master = std::move(url).value();
  }
  auto replicas_text = checked_query_param(query, kReplicas);
  if (!replicas_text) return replicas_text.error();
  auto replicas = url_list(replicas_text->value_or(""), kReplicas);
  if (!replicas) return replicas.error();
  order.replicas = std::move(replicas).value();
  return order;
}

std::string read_location(std::string_view volume, std::string_view key, std::uint64_t version,
                          const Signer* signer) {
  const auto target = read_target(key, version);
  return std::string(volume) + (signer != nullptr ? signer->sign("GET", target) : target);
}

std::string read_target(std::string_view key, std::uint64_t version) {
  auto target = store_path(key);
  append_param(target, kVersion, std::to_string(version));
  return target;
}

Result<std::optional<std::uint64_t>> parse_read_version(std::string_view query) {
  return version_param(query, kVersion);
}

std::string commit_target(const CommitCall& call) {
  std::string target(kCommitPath);
  target += encode_key_path(call.key);
  append_param(target, kVolumes, join(call.volumes));
  append_param(target, kVersion, std::to_string(call.version));
  append_param(target, kSize, std::to_string(call.size));
  append_param(target, kChecksum, call.checksum);
  if (!call.if_match.empty()) append_param(target, kIfMatch, call.if_match);
  if (!call.if_none_match.empty()) append_param(target, kIfNoneMatch, call.if_none_match);
  return target;
}

Result<CommitCall> parse_commit(std::string_view target) {
  auto key = key_in_target(target, kCommitPath);
  if (!key) return key.error();
  const auto query = split_target(target).query;
  CommitCall call;
  call.key = std::move(key).value();

  auto version = version_param(query, kVersion);
  if (!version) return version.error();
  if (!*version) return bad("commit needs version=");
  call.version = **version;

  auto size = checked_query_param(query, kSize);
  if (!size) return size.error();
  if (!*size) return bad("commit needs size=");
  const auto parsed_size = parse_decimal(**size);
  if (!parsed_size) return bad("size= must be a whole number of bytes");
  call.size = *parsed_size;

  auto checksum = checked_query_param(query, kChecksum);
  if (!checksum) return checksum.error();
  call.checksum = checksum->value_or("");
  if (!is_checksum_hex(call.checksum)) return bad("checksum= must be 32 lower-case hex digits");

  auto volumes_text = checked_query_param(query, kVolumes);
  if (!volumes_text) return volumes_text.error();
  auto volumes = url_list(volumes_text->value_or(""), kVolumes);
  if (!volumes) return volumes.error();
  if (volumes->empty()) return bad("commit needs volumes=, the volumes holding the copies");
  for (auto& url : *volumes) call.volumes.push_back(std::move(url.text));

  auto if_match = checked_query_param(query, kIfMatch);
  if (!if_match) return if_match.error();
  auto if_none_match = checked_query_param(query, kIfNoneMatch);
  if (!if_none_match) return if_none_match.error();
  call.if_match = if_match->value_or("");
  call.if_none_match = if_none_match->value_or("");
  if (has_control_character(call.if_match) || has_control_character(call.if_none_match)) {
    return bad("if_match= and if_none_match= must not hold control characters");
  }
  return call;
}

std::string_view commit_answer_text(CommitAnswer answer) {
  return answer == CommitAnswer::kCommitted ? kCommitted : kSuperseded;
}

std::optional<CommitAnswer> parse_commit_answer(std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  if (body == kCommitted) return CommitAnswer::kCommitted;
  if (body == kSuperseded) return CommitAnswer::kSuperseded;
  return std::nullopt;
}

std::string removal_target(const RemovalCall& call) {
  auto target = store_path(call.key);
  append_param(target, call.scope == RemovalCall::Scope::kUpTo ? kUpTo : kVersion,
               std::to_string(call.version));
  return target;
}

Result<RemovalCall> parse_removal(std::string key, std::string_view query) {
  auto up_to = version_param(query, kUpTo);
  if (!up_to) return up_to.error();
  auto exactly = version_param(query, kVersion);
  if (!exactly) return exactly.error();
  if (up_to->has_value() == exactly->has_value()) {
    return bad("DELETE on a volume takes exactly one of upto=V and version=V");
  }
  RemovalCall call;
  call.key = std::move(key);
  call.scope = *up_to ? RemovalCall::Scope::kUpTo : RemovalCall::Scope::kExactly;
  call.version = *up_to ? **up_to : **exactly;
  return call;
}

std::string stats_body(const VolumeStats& stats) {
  boost::json::object object;
  object["free_bytes"] = stats.free_bytes;
  object["files"] = stats.files;
  return boost::json::serialize(object) + "\n";
}

Result<VolumeStats> parse_stats(std::string_view body) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(body, ec);
  const auto* object = ec ? nullptr : value.if_object();
  const auto free_bytes = object ? json_uint(*object, "free_bytes") : std::nullopt;
  const auto files = object ? json_uint(*object, "files") : std::nullopt;
  if (!free_bytes || !files) {
    return Error{Errc::kPeerFailed, "stats are not {\"free_bytes\": N, \"files\": N}"};
  }
  return VolumeStats{*free_bytes, *files};
}

std::string blobs_target(std::string_view after, std::size_t limit) {
  std::string target(kBlobsPath);
  if (!after.empty()) append_param(target, "after", after);
  append_param(target, "limit", std::to_string(limit));
  return target;
}

Result<BlobsQuery> parse_blobs_query(std::string_view query) {
  BlobsQuery parsed;
  auto after = checked_query_param(query, "after");
  if (!after) return after.error();
  parsed.after = after->value_or("");
  auto limit = checked_query_param(query, "limit");
  if (!limit) return limit.error();
  if (*limit) {
    const auto number = parse_decimal(**limit);
    if (!number || *number == 0 || *number > kMaxBlobPage) {
      return bad("limit= must be a number from 1 to " + std::to_string(kMaxBlobPage));
    }
    parsed.limit = static_cast<std::size_t>(*number);
  }
  return parsed;
}

std::string blob_entry_line(const BlobEntry& entry) {
  boost::json::object object;
  object["name"] = entry.name;
  object["key"] = percent_encode_component(entry.key);
  object["version"] = entry.version;
  object["size"] = entry.size;
  object["checksum"] = entry.checksum;
  object["mtime"] = entry.mtime;
  object["marker"] = entry.marker;
  return boost::json::serialize(object) + "\n";
}

std::string blob_page_end_line(std::string_view next) {
  boost::json::object object;
  object["next"] = next;
  return boost::json::serialize(object) + "\n";
}

namespace {

Result<BlobEntry> parse_blob_entry(const boost::json::object& object) {
  BlobEntry entry;
  const auto name = json_string(object, "name");
  const auto key = json_string(object, "key");
  const auto version = json_uint(object, "version");
  const auto size = json_uint(object, "size");
  const auto checksum = json_string(object, "checksum");
  const auto mtime = json_uint(object, "mtime");
  const auto* marker = object.if_contains("marker");
  if (!name || !key || !version || !size || !checksum || !mtime || marker == nullptr ||
      !marker->is_bool()) {
    return Error{Errc::kPeerFailed, "a listing line lacks a field"};
  }
  auto decoded = percent_decode(*key);
  if (!decoded) return Error{Errc::kPeerFailed, "a listing line's key is not percent-encoded"};
  entry.name = *name;
  entry.key = std::move(decoded).value();
  entry.version = *version;
  entry.size = *size;
  entry.checksum = *checksum;
  entry.mtime = *mtime;
  entry.marker = marker->get_bool();
  return entry;
}

}  // namespace

Result<BlobPage> parse_blob_page(std::string_view body) {
  BlobPage page;
  bool ended = false;
  while (!body.empty()) {
    const auto newline = body.find('\n');
    if (newline == std::string_view::npos) break;
    const auto line = body.substr(0, newline);
    body.remove_prefix(newline + 1);
    if (ended) return Error{Errc::kPeerFailed, "a listing goes on past its last line"};
    boost::system::error_code ec;
    const auto value = boost::json::parse(line, ec);
    const auto* object = ec ? nullptr : value.if_object();
    if (object == nullptr) return Error{Errc::kPeerFailed, "a listing line is not a JSON object"};
    if (object->contains("next")) {
      const auto next = json_string(*object, "next");
      if (!next) return Error{Errc::kPeerFailed, "a listing's next is not a string"};
      page.next = *next;
      ended = true;
      continue;
    }
    auto entry = parse_blob_entry(*object);
    if (!entry) return entry.error();
    page.entries.push_back(std::move(entry).value());
  }
  if (!ended || !body.empty()) {
    return Error{Errc::kPeerFailed, "a listing ended without its last line"};
  }
  return page;
}

namespace {

std::string admin_key_target(std::string_view path, std::string_view key, std::uint64_t version) {
  std::string target(path);
  target += encode_key_path(key);
  append_param(target, kVersion, std::to_string(version));
  return target;
}

}  // namespace

std::string verify_target(std::string_view key, std::uint64_t version) {
  return admin_key_target(kVerifyPath, key, version);
}

std::string copy_target(const CopyCall& call) {
  auto target = admin_key_target(kCopyPath, call.key, call.version);
  append_param(target, "from", call.from.text);
  return target;
}

Result<CopyCall> parse_copy(std::string key, std::string_view query) {
  auto version = version_param(query, kVersion);
  if (!version) return version.error();
  if (!*version) return bad("a copy needs version=");
  auto from = checked_query_param(query, "from");
  if (!from) return from.error();
  if (!*from) return bad("a copy needs from=, the volume to copy from");
  auto url = parse_base_url(**from);
  if (!url) return bad("from=: " + url.error().message);
  return CopyCall{std::move(key), **version, std::move(url).value()};
}

std::string marker_target(std::string_view key, std::uint64_t version) {
  return admin_key_target(kMarkerPath, key, version);
}

Result<std::uint64_t> parse_admin_version(std::string_view query) {
  auto version = version_param(query, kVersion);
  if (!version) return version.error();
  if (!*version) return bad("version= is required");
  return **version;
}

namespace {

// The error for an answer other than the expected ones.
Error unexpected(const BaseUrl& volume, std::string_view what, unsigned status, std::string body) {
  const auto reason = trimmed_body(std::move(body));
  if (status == 404) return Error{Errc::kNotFound, reason};
  if (status == 409) return Error{Errc::kConflict, reason};
  return Error{Errc::kPeerFailed, "volume " + volume.text + " answered " + std::to_string(status) +
                                      " to " + std::string(what) + ": " + reason};
}

}  // namespace

boost::asio::awaitable<Result<BlobPage>> list_blobs(const BaseUrl& volume, std::string_view after,
                                                    std::size_t limit) {
  // A page's lines are a few hundred bytes at most (a key is up to 1024
  // bytes, three times that percent-encoded).
  const std::uint64_t max_body = (limit + 1) * 4096;
  auto reply = co_await http::send_request(http::Verb::get, volume, blobs_target(after, limit),
                                           std::string(), std::chrono::seconds(30), max_body);
  if (!reply) co_return reply.error();
  if (reply->status != 200) {
    co_return unexpected(volume, "a listing", reply->status, std::move(reply->body));
  }
  co_return parse_blob_page(reply->body);
}

boost::asio::awaitable<Status> send_verify(const BaseUrl& volume, std::string_view key,
                                           std::uint64_t version) {
  // Re-reading a large copy takes as long as the disk does.
  auto reply = co_await http::send_request(http::Verb::post, volume, verify_target(key, version),
                                           std::string(), std::chrono::minutes(30));
  if (!reply) co_return reply.error();
  if (reply->status == 200) co_return Status{};
  co_return unexpected(volume, "a verify", reply->status, std::move(reply->body));
}

boost::asio::awaitable<Result<CopyOutcome>> send_copy(const BaseUrl& to, const CopyCall& call) {
  // The copy streams the whole value volume to volume before it answers.
  auto reply = co_await http::send_request(http::Verb::post, to, copy_target(call), std::string(),
                                           std::chrono::hours(1));
  if (!reply) co_return reply.error();
  if (reply->status == 200 || reply->status == 201) {
    co_return CopyOutcome{std::move(reply->etag), reply->status == 201};
  }
  co_return unexpected(to, "a copy", reply->status, std::move(reply->body));
}

boost::asio::awaitable<Status> send_marker(const BaseUrl& volume, std::string_view key,
                                           std::uint64_t version) {
  auto reply = co_await http::send_request(http::Verb::put, volume, marker_target(key, version),
                                           std::string());
  if (!reply) co_return reply.error();
  if (reply->status == 201) co_return Status{};
  co_return unexpected(volume, "a marker", reply->status, std::move(reply->body));
}

boost::asio::awaitable<Result<CommitAnswer>> send_commit(const BaseUrl& master,
                                                         const CommitCall& call) {
  auto reply =
      co_await http::send_request(http::Verb::post, master, commit_target(call), std::string());
  if (!reply) co_return reply.error();
  const auto body = trimmed_body(std::move(reply->body));
  if (reply->status == 200) {
    if (const auto answer = parse_commit_answer(body)) co_return *answer;
  }
  if (reply->status == 412) co_return Error{Errc::kPreconditionFailed, body};
  if (reply->status == 409) co_return Error{Errc::kConflict, body};
  if (reply->status >= 500) {
    // The master failed while committing (its index write failed, say): the
    // write may still have been made durable.
    co_return Error{Errc::kNoAnswer, "master " + master.text + " failed the commit (" +
                                         std::to_string(reply->status) + " " + body + ")"};
  }
  co_return Error{Errc::kPeerFailed, "master " + master.text + " refused the commit (" +
                                         std::to_string(reply->status) + " " + body + ")"};
}

boost::asio::awaitable<Status> send_removal(const BaseUrl& volume, const RemovalCall& call) {
  auto reply =
      co_await http::send_request(http::Verb::delete_, volume, removal_target(call), std::string());
  if (!reply) co_return reply.error();
  if (reply->status == 204 || reply->status == 404) co_return Status{};
  co_return Error{Errc::kPeerFailed, "volume " + volume.text + " answered " +
                                         std::to_string(reply->status) +
                                         " to a removal: " + trimmed_body(std::move(reply->body))};
}

}  // namespace kalavara::internal
