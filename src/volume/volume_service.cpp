#include "volume/volume_service.hpp"

#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/checksum.hpp"
#include "common/conditional.hpp"
#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "common/key_codec.hpp"
#include "common/text.hpp"
#include "volume/byte_range.hpp"
#include "volume/content_md5.hpp"
#include "volume/replica_uploads.hpp"

namespace kalavara {
namespace {

using http::Field;
using http::HttpStatus;
using http::Response;
using http::Verb;

// The declared Content-Length of a request, if any.
std::optional<std::uint64_t> content_length(const http::RequestHeader& request) {
  return parse_decimal(request[Field::content_length]);
}

// The replicas= parameter: comma-separated base URLs.
Result<std::vector<BaseUrl>> parse_replicas(std::string_view list) {
  std::vector<BaseUrl> replicas;
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto url = parse_base_url(list.substr(0, comma));
    if (!url) return url.error();
    replicas.push_back(*url);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return replicas;
}

// The version named by query parameter `name`: nullopt when absent, 400 when
// not a number.
Result<std::optional<std::uint64_t>> version_param(const http::Exchange& exchange,
                                                   std::string_view name) {
  const auto text = query_param(split_target(exchange.request().target()).query, name);
  if (!text) return std::optional<std::uint64_t>{};
  const auto version = parse_decimal(*text);
  if (!version) return Error{Errc::kBadInput, std::string(name) + "= must be a version number"};
  return std::optional<std::uint64_t>{version};
}

}  // namespace

VolumeService::VolumeService(BlobStore& store, VolumeOptions options)
    : store_(store), options_(std::move(options)) {}

void VolumeService::add_routes(http::Router& router) {
  using Match = http::Router::Match;
  const std::string store(kStorePrefix);
  router.add(store, Match::kPrefix, {Verb::get, Verb::head},
             [this](http::Exchange& exchange) { return get(exchange); });
  router.add(store, Match::kPrefix, {Verb::put},
             [this](http::Exchange& exchange) { return put(exchange); });
  router.add(store, Match::kPrefix, {Verb::delete_},
             [this](http::Exchange& exchange) { return erase(exchange); });
  http::add_health_route(router);
  router.add("/stats", Match::kExact, {Verb::get}, [this](http::Exchange&) -> Answer {
    auto usage = store_.usage();
    if (!usage) co_return http::error_response(usage.error());
    co_return http::json_response("{\"free_bytes\": " + std::to_string(usage->free_bytes) +
                                  ", \"files\": " + std::to_string(usage->files) + "}\n");
  });
}

VolumeService::Answer VolumeService::put(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  const auto& request = exchange.request();
  const auto query = split_target(request.target()).query;

  auto version = version_param(exchange, "version");
  if (!version) co_return http::error_response(version.error());
  if (!*version) {
    co_return http::error_response(
        {Errc::kBadInput, "no write version: PUT through the master, whose redirect carries it"});
  }
  // A replica's copy, streamed by the primary: stored and published as its
  // own version, never committed here (the primary commits all copies).
  const bool as_replica = query_param(query, "replica").has_value();

  std::optional<BaseUrl> master = options_.master;
  BaseUrl self;
  std::vector<BaseUrl> replicas;
  if (!as_replica) {
    if (!master) {
      const auto param = query_param(query, "master");
      if (!param) {
        co_return http::error_response(
            {Errc::kBadInput,
             "no master to commit to: PUT through the master (or start the volume with -m)"});
      }
      auto parsed = parse_base_url(*param);
      if (!parsed) co_return http::error_response(parsed.error());
      master = *parsed;
    }
    if (options_.base_url) {
      self = *options_.base_url;
    } else {
      auto from_host = parse_base_url("http://" + std::string(request[Field::host]));
      if (!from_host)
        co_return http::error_response({Errc::kBadInput, "PUT needs a valid Host header"});
      self = *from_host;
    }
    auto parsed = parse_replicas(query_param(query, "replicas").value_or(""));
    if (!parsed) co_return http::error_response(parsed.error());
    replicas = std::move(parsed).value();
  }

  std::optional<Md5Digest> expected_md5;
  std::optional<Md5> md5;
  if (const auto header = request[Field::content_md5]; !header.empty()) {
    auto parsed = parse_content_md5(header);
    if (!parsed) co_return http::error_response(parsed.error());
    expected_md5 = *parsed;
    md5.emplace();
  }

  // The other replicas get the body as it arrives, so no copy waits for
  // another and nothing is buffered whole.
  ReplicaUploads uploads(*key, **version);
  if (!replicas.empty()) {
    const auto length = content_length(request);
    if (!length) {
      co_return http::error_response(
          {Errc::kLengthRequired,
           "a replicated PUT needs a Content-Length (chunked uploads are not forwarded)"});
    }
    if (auto status = co_await uploads.open(replicas, *length); !status) {
      co_return http::error_response(status.error());
    }
  }

  auto writer = store_.begin_write(*key, **version);
  if (!writer) co_return http::error_response(writer.error());
  auto received = co_await exchange.stream_body(
      [&](std::span<const char> chunk) -> http::asio::awaitable<Status> {
        if (md5) md5->update(chunk);
        if (auto status = (*writer)->append(chunk); !status) co_return status;
        co_return co_await uploads.write(chunk);
      });
  if (!received) co_return http::error_response(received.error());
  if (md5 && md5->finish() != *expected_md5) {
    co_return http::error_response(
        {Errc::kBadInput,
         "Content-MD5 does not match the body: it was corrupted in transit; nothing stored"});
  }
  // Sync, then publish, in one trip to the blocking pool. The published
  // file is its own version, which no reader is sent to until the index
  // names it: if anything fails before the commit, the writer removes the
  // file, `uploads` has the replicas remove theirs, and every other version
  // stays exactly as it was.
  Result<BlobWriter::Written> written = Error{Errc::kInternal, "not synced"};
  Status published;
  co_await run_blocking(blocking_, [&] {
    written = (*writer)->sync();
    if (written) published = (*writer)->publish();
  });
  if (!written) co_return http::error_response(written.error());
  if (!published) co_return http::error_response(published.error());
  const auto etag = etag_for(checksum_hex(written->checksum));
  if (as_replica) {
    (*writer)->keep();
    auto response = http::text_response(HttpStatus::created, "stored as a replica");
    response.set(Field::etag, etag);
    co_return response;
  }
  // Every replica's copy is durable and identical (same checksum) before
  // the commit: a 201 means N durable copies.
  if (auto status = co_await uploads.finish(etag); !status) {
    co_return http::error_response(status.error());
  }

  std::string volumes = self.text;
  for (const auto& replica : replicas) volumes += "," + replica.text;
  std::string target =
      "/internal/commit/" + encode_key_path(*key) +
      "?volumes=" + percent_encode_component(volumes) + "&version=" + std::to_string(**version) +
      "&size=" + std::to_string(written->size) + "&checksum=" + checksum_hex(written->checksum);
  for (const auto& [field, name] :
       {std::pair{Field::if_match, "if_match"}, std::pair{Field::if_none_match, "if_none_match"}}) {
    if (const auto value = request[field]; !value.empty()) {
      target += std::string("&") + name + "=" + percent_encode_component(value);
    }
  }
  auto reply = co_await http::send_request(Verb::post, *master, target, {});
  if (!reply && reply.error().code == Errc::kNoAnswer) {
    // The master may have committed: the files must stay, or the index
    // could name a version that no longer exists. If it did not commit,
    // they are orphans no read is sent to.
    (*writer)->keep();
    uploads.keep();
    co_return http::error_response(
        {Errc::kNoAnswer,
         "the master did not answer the commit; the value may or may not be stored: " +
             reply.error().message});
  }
  if (!reply) {
    co_return http::error_response(
        {Errc::kUnavailable, "value not stored: master " + reply.error().message});
  }
  std::string outcome = reply->body;
  while (!outcome.empty() && outcome.back() == '\n') outcome.pop_back();
  if (reply->status == 412) co_return http::error_response({Errc::kPreconditionFailed, outcome});
  if (reply->status != 200 || (outcome != "committed" && outcome != "superseded")) {
    co_return http::error_response(
        {Errc::kPeerFailed, "value not stored: master refused the commit (" +
                                std::to_string(reply->status) + " " + outcome + ")"});
  }
  // A superseded write was committed and at once overwritten by a newer
  // version: its 201 is right, its files are garbage (removed on the way out).
  if (outcome == "committed") {
    (*writer)->keep();
    uploads.keep();
  }
  auto response = http::text_response(HttpStatus::created, "stored");
  response.set(Field::etag, etag);
  co_return response;
}

VolumeService::Answer VolumeService::get(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  auto version = version_param(exchange, "version");
  if (!version) co_return http::error_response(version.error());
  auto blob = store_.open(*key, *version);
  if (!blob) co_return http::error_response(blob.error());
  const auto& request = exchange.request();
  const std::string etag = blob->checksum ? etag_for(checksum_hex(*blob->checksum)) : "";

  if (const auto header = request[Field::if_none_match];
      !header.empty() && !etag.empty() && if_none_match_matches(header, etag)) {
    Response not_modified{HttpStatus::not_modified, 11};
    not_modified.set(Field::etag, etag);
    co_return not_modified;
  }

  RangeDecision range;
  if (const auto header = request[Field::range]; !header.empty()) {
    const auto if_range = request[Field::if_range];
    if (if_range.empty() || (!etag.empty() && if_range_matches(if_range, etag))) {
      range = decide_range(header, blob->size);
    }
  }
  const auto size = std::to_string(blob->size);
  if (range.kind == RangeDecision::Kind::kUnsatisfiable) {
    auto response = http::text_response(HttpStatus::range_not_satisfiable,
                                        "range not satisfiable: the value has " + size + " bytes");
    response.set(Field::content_range, "bytes */" + size);
    response.set(Field::accept_ranges, "bytes");
    co_return response;
  }

  const bool partial = range.kind == RangeDecision::Kind::kPartial;
  const std::uint64_t first = partial ? range.first : 0;
  const std::uint64_t length = partial ? range.last - range.first + 1 : blob->size;
  Response response{partial ? HttpStatus::partial_content : HttpStatus::ok, 11};
  response.set(Field::content_type, "application/octet-stream");
  response.set(Field::accept_ranges, "bytes");
  if (!etag.empty()) response.set(Field::etag, etag);
  if (partial) {
    response.set(Field::content_range, "bytes " + std::to_string(range.first) + "-" +
                                           std::to_string(range.last) + "/" + size);
  }
  // Set, not derived from the body: a HEAD answer carries no body but the
  // Content-Length a GET would have.
  response.content_length(length);
  if (!blob->bytes) {
    co_return http::FileReply{std::move(response), std::move(blob->fd), blob->offset + first,
                              length};
  }
  // A small value was read whole with the header: the server sends it in the
  // same write as the response header, with no further syscall on the file.
  if (request.method() != Verb::head) {
    auto& bytes = *blob->bytes;
    if (partial) {
      bytes.resize(first + length);
      bytes.erase(0, first);
    }
    response.body() = std::move(bytes);
  }
  co_return response;
}

VolumeService::Answer VolumeService::erase(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  auto up_to = version_param(exchange, "upto");
  if (!up_to) co_return http::error_response(up_to.error());
  auto exactly = version_param(exchange, "version");
  if (!exactly) co_return http::error_response(exactly.error());
  Status removed;
  co_await run_blocking(blocking_, [&] { removed = store_.remove(*key, *up_to, *exactly); });
  if (!removed) co_return http::error_response(removed.error());
  co_return Response{HttpStatus::no_content, 11};
}

}  // namespace kalavara
