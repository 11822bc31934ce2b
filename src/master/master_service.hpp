// The master's HTTP endpoints. Each handler translates a request into calls
// of the key protocol (master/key_protocol.hpp) and the volume registry,
// and carries out the removals a delete asks for; the decisions are theirs.
//
//   PUT    /store/{key}            307 to the key's volume with the write's version and
//                                  the master to commit to (internal_api: write order);
//                                  412 when If-Match / If-None-Match already fail
//   GET    /store/{key}, HEAD      302 to a replica of the committed version, with ETag
//                                  and X-Kalavara-Size; 304 on If-None-Match; 404 if none
//   GET    /store/{prefix}?list    JSON page of keys (&limit=N, &start=KEY)
//   DELETE /store/{key}            tombstone, then the copies' removal; 204;
//                                  412 when If-Match fails; 404 if none
//   POST   /admin/add-volume       body: a volume's base URL; 200
//   GET    /admin/volumes          JSON: each volume's state, last check, free bytes, files
//   POST   /internal/commit/{key}  a volume's commit (internal_api: commit); 200
//                                  "committed" or "superseded"; 400, 409, 412
//   POST   /internal/volume-stopping  body: a volume's base URL; 200: it gets no
//                                  reads or writes until it registers again
//   GET    /healthz, /readyz, /metrics  see common/probes.hpp
//
// Who may call what is set by MasterOptions (see docs/security.md).
//
// Thread-safe: handlers run concurrently on the io threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/key_codec.hpp"
#include "common/metrics.hpp"
#include "common/probes.hpp"
#include "common/router.hpp"
#include "common/url.hpp"
#include "master/key_protocol.hpp"
#include "master/removal_worker.hpp"
#include "master/volume_health.hpp"
#include "master/volume_registry.hpp"

namespace kalavara {

class Signer;

struct MasterOptions {
  // The URL volumes use to reach this master, sent to them in PUT redirects.
  // When unset, the Host header of the client's PUT is used: the address the
  // client reached the master at.
  std::optional<BaseUrl> advertise_url;
  // Copies of every value (--replicas): the top N of the key's ranking
  // among the volumes that are up.
  std::size_t replicas = 1;
  // With a secret (--secret-file): PUT redirects are signed with it, and
  // only signed commits and registrations are taken (403 otherwise).
  const Signer* signer = nullptr;
  // GET redirects are signed too (--sign-reads), for volumes that need it.
  bool sign_reads = false;
  // With a token (--admin-token-file), /admin/* needs "Authorization: Bearer
  // <token>" (401 otherwise); a volume's signed registration is taken too.
  std::string admin_token;
  // Limits on what a PUT may store (--max-key-bytes, --max-value-bytes; 0:
  // no limit). The value's limit is checked on its declared length, before
  // the redirect; the volumes count what really arrives.
  std::size_t max_key_bytes = kMaxKeyBytes;
  std::uint64_t max_value_bytes = 0;
  // New writes go only to volumes whose last check reported at least this
  // much free space beyond the value's declared length
  // (--volume-min-free-bytes; 0: no check): a full volume is passed over
  // as a down one is, instead of answering 507.
  std::uint64_t volume_min_free_bytes = 0;
};

class MasterService {
 public:
  // Everything given must outlive the service.
  MasterService(KeyProtocol& protocol, VolumeRegistry& registry, VolumeHealth& health,
                RemovalWorker& removals, MasterOptions options);

  // Adds the endpoints above to `router`; `this` must outlive the router.
  void add_routes(http::Router& router);

  // Ready when enough volumes are up (and not stopping) to take a write of
  // --replicas copies; the reason counts them.
  Readiness readiness() const;

  // Writes the master's view (kalavara_master_*): each volume's state, free
  // bytes and files as its health checks last saw them, commits by outcome,
  // removals done and failed. Thread-safe.
  void collect(metrics::Writer& out) const;

 private:
  using Answer = http::asio::awaitable<http::Reply>;
  Answer put(http::Exchange& exchange);
  Answer get(http::Exchange& exchange);     // locate() or list()
  Answer locate(http::Exchange& exchange);  // the 302 to a key's value
  Answer erase(http::Exchange& exchange);
  Answer add_volume(http::Exchange& exchange);
  Answer commit(http::Exchange& exchange);
  Answer list(http::Exchange& exchange);
  Answer describe_volumes(http::Exchange& exchange);

  Answer volume_stopping(http::Exchange& exchange);

  KeyProtocol& protocol_;
  VolumeRegistry& registry_;
  VolumeHealth& health_;
  RemovalWorker& removals_;
  const MasterOptions options_;
  // Commits by how they ended: committed, superseded, refused (an error).
  std::atomic<std::uint64_t> committed_{0};
  std::atomic<std::uint64_t> superseded_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace kalavara
