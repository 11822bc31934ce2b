#include "volume/volume_service.hpp"

#include <spdlog/spdlog.h>

#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "common/key_codec.hpp"

namespace kalavara {
namespace {

using http::Field;
using http::HttpStatus;
using http::Response;
using http::Verb;

Result<std::string> key_of(const http::Exchange& exchange) {
  const auto path = split_target(exchange.request().target()).path;
  return decode_key(path.substr(kStorePrefix.size()));
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
}

VolumeService::Reply VolumeService::put(http::Exchange& exchange) {
  auto key = key_of(exchange);
  if (!key) co_return http::error_response(key.error());
  const auto& request = exchange.request();

  std::optional<BaseUrl> master = options_.master;
  if (!master) {
    const auto param = query_param(split_target(request.target()).query, "master");
    if (!param) {
      co_return http::error_response(
          {400, "no master to commit to: PUT through the master (or start the volume with -m)"});
    }
    auto parsed = parse_base_url(*param);
    if (!parsed) co_return http::error_response(parsed.error());
    master = *parsed;
  }
  BaseUrl self;
  if (options_.base_url) {
    self = *options_.base_url;
  } else {
    auto from_host = parse_base_url("http://" + std::string(request[Field::host]));
    if (!from_host) co_return http::error_response({400, "PUT needs a valid Host header"});
    self = *from_host;
  }

  auto writer = store_.begin_write(*key);
  if (!writer) co_return http::error_response(writer.error());
  auto received = co_await exchange.stream_body(
      [&](std::span<const char> chunk) { return (*writer)->append(chunk); });
  if (!received) co_return http::error_response(received.error());
  auto size = (*writer)->sync();
  if (!size) co_return http::error_response(size.error());

  // Commit before publishing: if the master cannot be reached or refuses,
  // the temp file is dropped and the old value stays exactly as it was.
  auto reply = co_await http::send_request(Verb::post, *master,
                                           "/internal/commit/" + encode_key_path(*key) +
                                               "?volume=" + percent_encode_component(self.text) +
                                               "&size=" + std::to_string(*size),
                                           {});
  if (!reply) {
    co_return http::error_response({503, "value not stored: master " + reply.error().message});
  }
  if (reply->status != 204) {
    std::string reason = reply->body;
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    co_return http::error_response({502, "value not stored: master refused the commit (" +
                                             std::to_string(reply->status) + " " + reason + ")"});
  }
  if (auto status = (*writer)->publish(); !status) {
    spdlog::error("committed value could not be published: {}", status.error().message);
    co_return http::error_response(status.error());
  }
  auto response = http::text_response(HttpStatus::created, "stored");
  co_return response;
}

VolumeService::Reply VolumeService::get(http::Exchange& exchange) {
  auto key = key_of(exchange);
  if (!key) co_return http::error_response(key.error());
  auto blob = store_.open(*key);
  if (!blob) co_return http::error_response(blob.error());
  Response header{HttpStatus::ok, 11};
  header.set(Field::content_type, "application/octet-stream");
  header.content_length(blob->size);
  co_await exchange.send_file(std::move(header), blob->fd.get(), blob->offset, blob->size);
  co_return std::nullopt;
}

VolumeService::Reply VolumeService::erase(http::Exchange& exchange) {
  auto key = key_of(exchange);
  if (!key) co_return http::error_response(key.error());
  if (auto status = store_.remove(*key); !status) co_return http::error_response(status.error());
  co_return Response{HttpStatus::no_content, 11};
}

}  // namespace kalavara
