#include "volume/volume_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/blocking.hpp"
#include "common/checksum.hpp"
#include "common/conditional.hpp"
#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "common/internal_api.hpp"
#include "common/key_codec.hpp"
#include "common/request_auth.hpp"
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

// A copy pulls its value over one connection; each read or write of it may
// take this long, as a client's may at the server.
constexpr auto kCopyIoTimeout = std::chrono::seconds(30);
// A copy's bytes are handed to the blocking pool in pieces this large, so
// the trips there cost little next to the writing (and memory stays small).
constexpr std::size_t kCopyFlushBytes = 1024 * 1024;

}  // namespace

VolumeService::VolumeService(BlobStore& store, VolumeOptions options,
                             boost::asio::thread_pool& blocking)
    : store_(store), options_(std::move(options)), blocking_(blocking) {}

void VolumeService::add_routes(http::Router& router) {
  using Match = http::Router::Match;
  const std::string store(kStorePrefix);
  const http::Access signed_only{options_.signer, nullptr};
  const http::Access readers = options_.sign_reads ? signed_only : http::Access{};
  using WhileStopping = http::Router::WhileStopping;
  const auto add = [&router](std::string_view path, Match match, Verb method, http::Access access,
                             auto handler, WhileStopping while_stopping = WhileStopping::kRefuse) {
    router.add(std::string(path), match, {method}, http::guarded(access, std::move(handler)),
               while_stopping);
  };
  router.add(store, Match::kPrefix, {Verb::get, Verb::head},
             http::guarded(readers, [this](http::Exchange& exchange) { return get(exchange); }));
  // Served while stopping, for the replica copies of uploads under way on
  // other volumes; put() refuses new uploads of its own then.
  add(
      store, Match::kPrefix, Verb::put, signed_only,
      [this](http::Exchange& exchange) { return put(exchange); }, WhileStopping::kServe);
  add(store, Match::kPrefix, Verb::delete_, signed_only,
      [this](http::Exchange& exchange) { return erase(exchange); });
  add(internal::kBlobsPath, Match::kExact, Verb::get, signed_only,
      [this](http::Exchange& exchange) { return list_blobs(exchange); });
  add(internal::kVerifyPath, Match::kPrefix, Verb::post, signed_only,
      [this](http::Exchange& exchange) { return verify(exchange); });
  add(internal::kCopyPath, Match::kPrefix, Verb::post, signed_only,
      [this](http::Exchange& exchange) { return copy(exchange); });
  add(internal::kMarkerPath, Match::kPrefix, Verb::put, signed_only,
      [this](http::Exchange& exchange) { return put_marker(exchange); });
  http::add_health_route(router);
  add(
      internal::kStatsPath, Match::kExact, Verb::get, signed_only,
      [this](http::Exchange&) -> Answer {
        auto usage = store_.usage();
        if (!usage) co_return http::error_response(usage.error());
        co_return http::json_response(internal::stats_body({usage->free_bytes, usage->files}));
      },
      WhileStopping::kServe);
}

VolumeService::Answer VolumeService::put(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix, options_.max_key_bytes);
  if (!key) co_return http::error_response(key.error());
  const auto& request = exchange.request();
  if (auto size = http::check_declared_length(request, options_.max_value_bytes); !size) {
    co_return http::error_response(size.error());
  }
  auto order = internal::parse_write_order(split_target(request.target()).query);
  if (!order) co_return http::error_response(order.error());
  if (!order->as_replica && options_.lifecycle != nullptr && options_.lifecycle->stopping()) {
    auto refused =
        http::text_response(HttpStatus::service_unavailable,
                            "this volume is shutting down; PUT through the master again");
    refused.set(Field::retry_after, "1");
    co_return refused;
  }

  // A replica's copy, streamed by the primary, is stored and published as
  // its own version and never committed here (the primary commits all
  // copies); the primary needs a master to commit to and its own URL.
  std::optional<BaseUrl> master = order->master;
  if (!options_.masters.empty() &&
      (!master || std::find(options_.masters.begin(), options_.masters.end(), *master) ==
                      options_.masters.end())) {
    master = options_.masters.front();
  }
  BaseUrl self;
  if (!order->as_replica) {
    if (!master) {
      co_return http::error_response(
          {Errc::kBadInput,
           "no master to commit to: PUT through the master (or start the volume with -m)"});
    }
    if (options_.base_url) {
      self = *options_.base_url;
    } else {
      auto from_host = parse_base_url("http://" + std::string(request[Field::host]));
      if (!from_host) {
        co_return http::error_response({Errc::kBadInput, "PUT needs a valid Host header"});
      }
      self = std::move(from_host).value();
    }
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
  ReplicaUploads uploads(*key, order->version);
  // Where a failure from here on is counted; moved along as the upload goes.
  std::atomic<std::uint64_t>* stage = &failures_.replicate;
  const auto count_failure = [&stage] { stage->fetch_add(1, std::memory_order_relaxed); };
  if (!order->replicas.empty()) {
    const auto length = http::declared_length(request);
    if (!length) {
      co_return http::error_response(
          {Errc::kLengthRequired,
           "a replicated PUT needs a Content-Length (chunked uploads are not forwarded)"});
    }
    if (auto status = co_await uploads.open(order->replicas, *length); !status) {
      count_failure();
      co_return http::error_response(status.error());
    }
  }

  stage = &failures_.store;
  auto writer = store_.begin_write(*key, order->version);
  if (!writer) {
    count_failure();
    co_return http::error_response(writer.error());
  }
  // Cleanup is explicit, and only ever for a write that is certainly not
  // committed: then every copy this upload created goes (and no other).
  // Every other way out — a commit whose answer never came, a shutdown that
  // destroys this frame — leaves the files, at worst as orphans.
  const auto discard = [&]() -> http::asio::awaitable<void> {
    Status removed;
    co_await run_blocking(blocking_, [&] { removed = (*writer)->discard(); });
    if (!removed) {
      spdlog::warn("could not remove an uncommitted version: {}", removed.error().message);
    }
    co_await uploads.discard();
  };
  // (Errors are passed to it as named objects: GCC 12 destroys a braced
  // temporary in a co_await expression twice.)
  const auto fail = [&](const Error& error) -> Answer {
    count_failure();
    co_await discard();
    co_return http::error_response(error);
  };

  std::uint64_t received_bytes = 0;
  stage = &failures_.receive;
  auto received = co_await exchange.stream_body(
      [&](std::span<const char> chunk) -> http::asio::awaitable<Status> {
        received_bytes += chunk.size();
        if (options_.max_value_bytes != 0 && received_bytes > options_.max_value_bytes) {
          co_return http::value_too_large(options_.max_value_bytes);
        }
        if (md5) md5->update(chunk);
        stage = &failures_.store;
        if (auto status = (*writer)->append(chunk); !status) co_return status;
        stage = &failures_.replicate;
        auto sent = co_await uploads.write(chunk);
        if (sent) stage = &failures_.receive;
        co_return sent;
      });
  if (!received) co_return co_await fail(received.error());
  if (md5 && md5->finish() != *expected_md5) {
    const Error corrupted{
        Errc::kBadInput,
        "Content-MD5 does not match the body: it was corrupted in transit; nothing stored"};
    co_return co_await fail(corrupted);
  }
  // Sync, then publish, in one trip to the blocking pool. The published
  // file is its own version, which no reader is sent to until the index
  // names it, and never replaces another upload's file.
  stage = &failures_.store;
  Result<BlobWriter::Written> written = Error{Errc::kInternal, "not synced"};
  Status publication;
  co_await run_blocking(blocking_, [&] {
    written = (*writer)->sync();
    if (written) publication = (*writer)->publish();
  });
  if (!written) co_return co_await fail(written.error());
  if (!publication) co_return co_await fail(publication.error());
  const auto checksum = checksum_hex(written->checksum);
  const auto etag = etag_for(checksum);
  if (order->as_replica) {
    auto response = http::text_response(HttpStatus::created, "stored as a replica");
    response.set(Field::etag, etag);
    co_return response;
  }
  // Every replica's copy is durable and identical (same checksum) before
  // the commit: a 201 means N durable copies.
  stage = &failures_.replicate;
  if (auto status = co_await uploads.finish(etag); !status) {
    co_return co_await fail(status.error());
  }
  stage = &failures_.commit;

  internal::CommitCall call;
  call.key = *key;
  call.volumes.push_back(self.text);
  for (const auto& replica : order->replicas) call.volumes.push_back(replica.text);
  call.version = order->version;
  call.size = written->size;
  call.checksum = checksum;
  call.if_match = request[Field::if_match];
  call.if_none_match = request[Field::if_none_match];
  auto answer = co_await internal::send_commit(*master, call);
  if (!answer) {
    const auto& error = answer.error();
    if (error.code == Errc::kNoAnswer) {
      // The master may have committed: the files must stay, or the index
      // could name a version that no longer exists. If it did not commit,
      // they are orphans no read is sent to.
      count_failure();
      co_return http::error_response(
          {Errc::kNoAnswer,
           "the master did not answer the commit; the value may or may not be stored: " +
               error.message});
    }
    if (error.code == Errc::kUnavailable) {
      const Error not_delivered{Errc::kUnavailable, "value not stored: " + error.message};
      co_return co_await fail(not_delivered);
    }
    co_return co_await fail(error);
  }
  // A superseded write is ordered before a newer write or a delete the
  // index holds: its 201 is right, and it was never visible, so its files go.
  if (*answer == internal::CommitAnswer::kSuperseded) co_await discard();
  auto response = http::text_response(HttpStatus::created, "stored");
  response.set(Field::etag, etag);
  co_return response;
}

VolumeService::Answer VolumeService::get(http::Exchange& exchange) {
  auto key = key_in_target(exchange.request().target(), kStorePrefix);
  if (!key) co_return http::error_response(key.error());
  auto version = internal::parse_read_version(split_target(exchange.request().target()).query);
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
  auto removal = internal::parse_removal(std::move(key).value(),
                                         split_target(exchange.request().target()).query);
  if (!removal) co_return http::error_response(removal.error());
  using Scope = internal::RemovalCall::Scope;
  const auto version = std::optional<std::uint64_t>(removal->version);
  Status removed;
  co_await run_blocking(blocking_, [&] {
    removed = removal->scope == Scope::kUpTo ? store_.remove(removal->key, version, std::nullopt)
                                             : store_.remove(removal->key, std::nullopt, version);
  });
  if (!removed) co_return http::error_response(removed.error());
  co_return Response{HttpStatus::no_content, 11};
}

VolumeService::Answer VolumeService::list_blobs(http::Exchange& exchange) {
  auto query = internal::parse_blobs_query(split_target(exchange.request().target()).query);
  if (!query) co_return http::error_response(query.error());
  Result<BlobListing> listing = BlobListing{};
  co_await run_blocking(blocking_, [&] { listing = store_.list(query->after, query->limit); });
  if (!listing) co_return http::error_response(listing.error());
  std::string body;
  for (auto& blob : listing->blobs) {
    internal::BlobEntry entry;
    entry.name = std::move(blob.name);
    entry.key = std::move(blob.key);
    entry.version = blob.version;
    entry.size = blob.size;
    if (blob.checksum) entry.checksum = checksum_hex(*blob.checksum);
    entry.mtime = blob.mtime;
    entry.marker = blob.marker;
    body += internal::blob_entry_line(entry);
  }
  body += internal::blob_page_end_line(listing->next);
  Response response{HttpStatus::ok, 11};
  response.set(Field::content_type, "application/x-ndjson");
  response.body() = std::move(body);
  response.prepare_payload();
  co_return response;
}

VolumeService::Answer VolumeService::verify(http::Exchange& exchange) {
  const auto target = exchange.request().target();
  auto key = key_in_target(target, internal::kVerifyPath);
  if (!key) co_return http::error_response(key.error());
  auto version = internal::parse_admin_version(split_target(target).query);
  if (!version) co_return http::error_response(version.error());
  Result<Verification> verification = Verification{};
  co_await run_blocking(blocking_, [&] { verification = store_.verify(*key, *version); });
  if (!verification) co_return http::error_response(verification.error());
  switch (verification->outcome) {
    case Verification::Outcome::kIntact:
      co_return http::text_response(HttpStatus::ok, "ok");
    case Verification::Outcome::kUnverifiable:
      // Not a corruption: format-1 files predate checksums. It stays served.
      co_return http::text_response(HttpStatus::ok, "ok, unverified: " + verification->reason);
    case Verification::Outcome::kQuarantined:
      break;
  }
  co_return http::text_response(HttpStatus::conflict,
                                "corrupt, quarantined: " + verification->reason);
}

VolumeService::Answer VolumeService::put_marker(http::Exchange& exchange) {
  const auto target = exchange.request().target();
  auto key = key_in_target(target, internal::kMarkerPath);
  if (!key) co_return http::error_response(key.error());
  auto version = internal::parse_admin_version(split_target(target).query);
  if (!version) co_return http::error_response(version.error());
  Status stored;
  co_await run_blocking(blocking_, [&] { stored = store_.put_marker(*key, *version); });
  if (!stored) co_return http::error_response(stored.error());
  co_return http::text_response(HttpStatus::created, "marker stored");
}

VolumeService::Answer VolumeService::copy(http::Exchange& exchange) {
  const auto target = exchange.request().target();
  auto key = key_in_target(target, internal::kCopyPath);
  if (!key) co_return http::error_response(key.error());
  auto call = internal::parse_copy(std::move(key).value(), split_target(target).query);
  if (!call) co_return http::error_response(call.error());
  const auto version_text = "version " + std::to_string(call->version);
  const auto source_failed = [&](const std::string& why) {
    return http::error_response(
        {Errc::kPeerFailed, "copy from " + call->from.text + " failed: " + why});
  };
  // The source serves the copy as a read of that version, as the master's
  // redirect would name it.
  const auto source_target = internal::read_location("", call->key, call->version);

  // What this volume holds under that version already (a repeated copy, or
  // another value: then nothing may change).
  std::optional<std::string> held_etag;
  bool held = false;
  {
    Result<OpenBlob> opened = Error{Errc::kNotFound, ""};
    co_await run_blocking(blocking_, [&] { opened = store_.open(call->key, call->version); });
    if (opened) {
      held = true;
      if (opened->checksum) held_etag = etag_for(checksum_hex(*opened->checksum));
    } else if (opened.error().code != Errc::kNotFound) {
      co_return http::error_response(opened.error());
    }
  }
  if (held) {
    if (!held_etag) {
      co_return http::error_response(
          {Errc::kConflict, "this volume holds a format-1 copy of " + version_text +
                                " (no checksum to compare with the source's)"});
    }
    // The source's ETag tells a repeat from a conflict; asked conditionally,
    // a source holding the same value answers 304 without the body. Any
    // body that still comes is read and dropped, never stored.
    const http::FetchSink drop = [](std::span<const char>) -> http::asio::awaitable<Status> {
      co_return Status{};
    };
    const std::vector<std::pair<Field, std::string>> headers{{Field::if_none_match, *held_etag}};
    auto fetched = co_await http::fetch(call->from, source_target, drop, kCopyIoTimeout, headers);
    if (!fetched) co_return source_failed(fetched.error().message);
    if (fetched->status == 404) {
      co_return http::error_response(
          {Errc::kNotFound, "the source " + call->from.text + " has no " + version_text});
    }
    if (fetched->status != 304 && fetched->status != 200) {
      co_return source_failed("it answered " + std::to_string(fetched->status));
    }
    if (fetched->etag != *held_etag) {
      co_return http::error_response(
          {Errc::kConflict, "this volume holds another value under " + version_text});
    }
    auto response = http::text_response(HttpStatus::ok, "already held");
    response.set(Field::etag, *held_etag);
    co_return response;
  }

  Result<std::unique_ptr<BlobWriter>> writer = Error{Errc::kInternal, "not begun"};
  co_await run_blocking(blocking_, [&] { writer = store_.begin_write(call->key, call->version); });
  if (!writer) co_return http::error_response(writer.error());
  // Nothing of a failed copy stays: it was never committed anywhere.
  const auto discard = [&]() -> http::asio::awaitable<void> {
    Status removed;
    co_await run_blocking(blocking_, [&] { removed = (*writer)->discard(); });
    if (!removed) spdlog::warn("could not remove a failed copy: {}", removed.error().message);
  };
  const auto fail = [&](const Error& error) -> Answer {
    co_await discard();
    co_return http::error_response(error);
  };

  // The writer computes the checksum as a PUT's does; pieces gather here and
  // are written off the io thread.
  std::string pending;
  std::optional<Error> local_failure;  // this volume's own (disk), not the source's
  const auto flush = [&]() -> http::asio::awaitable<Status> {
    Status appended;
    co_await run_blocking(blocking_, [&] { appended = (*writer)->append(pending); });
    pending.clear();
    if (!appended) local_failure = appended.error();
    co_return appended;
  };
  const http::FetchSink sink = [&](std::span<const char> chunk) -> http::asio::awaitable<Status> {
    pending.append(chunk.data(), chunk.size());
    if (pending.size() < kCopyFlushBytes) co_return Status{};
    co_return co_await flush();
  };
  auto fetched = co_await http::fetch(call->from, source_target, sink, kCopyIoTimeout);
  if (!fetched) {
    if (local_failure) co_return co_await fail(*local_failure);
    const Error failed{Errc::kPeerFailed,
                       "copy from " + call->from.text + " failed: " + fetched.error().message};
    co_return co_await fail(failed);
  }
  if (fetched->status == 404) {
    const Error absent{Errc::kNotFound,
                       "the source " + call->from.text + " has no " + version_text};
    co_return co_await fail(absent);
  }
  if (fetched->status != 200) {
    auto reason = fetched->body;
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
    const Error refused{Errc::kPeerFailed, "copy from " + call->from.text +
                                               " failed: it answered " +
                                               std::to_string(fetched->status) + " " + reason};
    co_return co_await fail(refused);
  }
  if (!pending.empty()) {
    if (auto flushed = co_await flush(); !flushed) co_return co_await fail(flushed.error());
  }
  Result<BlobWriter::Written> written = Error{Errc::kInternal, "not synced"};
  co_await run_blocking(blocking_, [&] { written = (*writer)->sync(); });
  if (!written) co_return co_await fail(written.error());
  const auto etag = etag_for(checksum_hex(written->checksum));
  if (fetched->etag != etag) {
    const Error mismatch{Errc::kPeerFailed,
                         "copy from " + call->from.text + " failed: the bytes' checksum gives " +
                             etag + ", the source's ETag is " +
                             (fetched->etag.empty() ? "missing" : fetched->etag)};
    co_return co_await fail(mismatch);
  }
  Status publication;
  co_await run_blocking(blocking_, [&] { publication = (*writer)->publish(); });
  if (!publication) {
    if (publication.error().code != Errc::kConflict) co_return co_await fail(publication.error());
    // A concurrent copy (or upload) of this version published first: a
    // repeat if it holds these bytes.
    Result<OpenBlob> now_held = Error{Errc::kNotFound, ""};
    co_await run_blocking(blocking_, [&] { now_held = store_.open(call->key, call->version); });
    if (!now_held || !now_held->checksum || *now_held->checksum != written->checksum) {
      co_return http::error_response(
          {Errc::kConflict, "this volume holds another value under " + version_text});
    }
    auto response = http::text_response(HttpStatus::ok, "already held");
    response.set(Field::etag, etag);
    co_return response;
  }
  auto response = http::text_response(HttpStatus::created, "copied");
  response.set(Field::etag, etag);
  co_return response;
}

}  // namespace kalavara
