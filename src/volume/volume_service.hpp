// The volume's HTTP endpoints.
//
//   PUT    /store/{key}?version=V[&master=URL]
//                                     stream the body to disk durably as version
//                                     V (checking Content-MD5), publish it,
//                                     commit it at the master (which checks
//                                     If-Match / If-None-Match); 201 with the ETag
//   GET    /store/{key}[?version=V], HEAD
//                                     200 with the exact bytes of version V (the
//                                     newest without it), ETag, Range (206/416),
//                                     If-None-Match (304); 404. A small value is
//                                     sent in one write with the header, a large
//                                     one by sendfile
//   DELETE /store/{key}?upto=V | ?version=V
//                                     removes versions up to V (and the delete
//                                     markers among them), or the value V; 204; 404
//   GET    /healthz                   200
//   GET    /stats                     free bytes and value files (markers not counted)
//
// Who may call what is set by VolumeOptions (see docs/security.md).
//
// Maintenance (the master and `kalavara-master rebuild`; see common/internal_api.hpp):
//   GET    /admin/blobs?after=NAME&limit=N
//                                     a page of the files held, values and
//                                     markers, in name order (NDJSON)
//   POST   /admin/verify/{key}?version=V
//                                     re-read the copy against its checksum:
//                                     200; 409, and the copy is quarantined; 404
//   POST   /admin/copy/{key}?version=V&from=URL
//                                     pull version V from another volume, checked
//                                     against its ETag: 201; 200 already held; 409
//                                     another value held; 404; 502
//   PUT    /admin/marker/{key}?version=T
//                                     leave a durable delete marker at T: 201
//
// Thread-safe: handlers run concurrently on the io threads.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/key_codec.hpp"
#include "common/probes.hpp"
#include "common/router.hpp"
#include "common/url.hpp"
#include "volume/blob_store.hpp"

namespace kalavara {

class Signer;

struct VolumeOptions {
  // The masters to commit writes to (-m): the one named in the PUT's
  // ?master= parameter (put there by its redirect) when it is one of them,
  // else the first. When empty, the one named in ?master= (the signature,
  // when a secret is set, makes sure a master put it there).
  std::vector<BaseUrl> masters;
  // This volume's base URL as the master knows it (-b). When unset, the Host
  // header of each PUT is used: the address the master's redirect named.
  std::optional<BaseUrl> base_url;
  // With a secret (--secret-file), every endpoint but /healthz needs a
  // request signed with it (403 otherwise): PUT and DELETE of values, /stats
  // and /admin/*; GET and HEAD of values too with sign_reads (--sign-reads).
  const Signer* signer = nullptr;
  bool sign_reads = false;
  // Limits on what a PUT may store (--max-key-bytes, --max-value-bytes; 0:
  // no limit): 400 and 413. A value is refused on its declared length
  // before any byte is read, and a chunked one once it passes the limit;
  // nothing of it stays.
  std::size_t max_key_bytes = kMaxKeyBytes;
  std::uint64_t max_value_bytes = 0;
  // Once stopping, new uploads are refused (503) while replica copies of
  // uploads under way elsewhere are still taken. May be null.
  const Lifecycle* lifecycle = nullptr;
};

// Uploads (PUTs of values, replicas' included) that failed once their
// body had begun to arrive, by where they failed. Thread-safe.
struct UploadFailures {
  std::atomic<std::uint64_t> receive{0};    // the body broke off, was corrupt or too large
  std::atomic<std::uint64_t> store{0};      // this volume's disk: write, fsync or publish
  std::atomic<std::uint64_t> replicate{0};  // a replica did not take its copy
  std::atomic<std::uint64_t> commit{0};     // the master did not commit it
};

class VolumeService {
 public:
  // `store` and `blocking` (where fsyncs and renames wait, not on an io
  // thread, so that concurrent writes' fsyncs overlap) must outlive the
  // service.
  VolumeService(BlobStore& store, VolumeOptions options, boost::asio::thread_pool& blocking);

  // `this` must outlive the router.
  void add_routes(http::Router& router);

  const UploadFailures& upload_failures() const { return failures_; }

 private:
  using Answer = http::asio::awaitable<http::Reply>;
  Answer put(http::Exchange& exchange);
  Answer get(http::Exchange& exchange);
  Answer erase(http::Exchange& exchange);
  Answer list_blobs(http::Exchange& exchange);
  Answer verify(http::Exchange& exchange);
  Answer copy(http::Exchange& exchange);
  Answer put_marker(http::Exchange& exchange);

  BlobStore& store_;
  const VolumeOptions options_;
  boost::asio::thread_pool& blocking_;
  UploadFailures failures_;
};

}  // namespace kalavara
