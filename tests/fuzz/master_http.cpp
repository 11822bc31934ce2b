// Fuzz target: the master's whole request handling. The input is the raw
// bytes a client sends on one connection (one request or several
// pipelined), served by the master's real router — MasterService and
// AdminService, wired as master/main.cpp wires them, over a RocksDB index in
// a scratch folder — on an in-process HttpServer (see http_harness.hpp).
//
// Unlike main.cpp: the health checks are not started, so every volume counts
// as up and nothing polls the volumes an input registers; --max-upload-time
// is the largest the flag takes, so a commit of any version the clock could
// have issued is decided on its merits, not refused as too old; and every
// call to a volume reaches the harness's stub. Registered from the start:
// http://volume-a:7001 and http://volume-b:7002, with two replicas.
//
// Two masters serve the same index: an open one, and one started with a
// secret, --sign-reads and --admin-token-file. An input of odd length goes to
// the signed one, with its first request signed by the harness
// (sign_first_request) unless it carries a signature of its own; every call
// either master makes is signed, as a daemon with --secret-file signs them.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/blocking.hpp"
#include "common/http_client.hpp"
#include "common/request_auth.hpp"
#include "fuzz_check.hpp"
#include "http_harness.hpp"
#include "master/admin_service.hpp"
#include "master/jobs.hpp"
#include "master/key_locks.hpp"
#include "master/key_protocol.hpp"
#include "master/maintenance.hpp"
#include "master/master_service.hpp"
#include "master/removal_worker.hpp"
#include "master/rocksdb_index_store.hpp"
#include "master/version_clock.hpp"
#include "master/volume_health.hpp"
#include "master/volume_registry.hpp"

namespace kalavara::fuzz {
namespace {

constexpr std::size_t kReplicas = 2;

template <class T>
T must(Result<T> result, const char* what) {
  if (!result) {
    std::fprintf(stderr, "master setup: %s: %s\n", what, result.error().message.c_str());
    std::abort();
  }
  return std::move(result).value();
}

void must(const Status& status, const char* what) {
  if (!status) {
    std::fprintf(stderr, "master setup: %s: %s\n", what, status.error().message.c_str());
    std::abort();
  }
}

ProtocolSettings protocol_settings() {
  ProtocolSettings settings;
  settings.old_version_grace = std::chrono::seconds(30);
  settings.max_upload_time = std::chrono::seconds(4294967295U);
  return settings;
}

MasterOptions master_options(const Signer* signer) {
  MasterOptions options;
  options.replicas = kReplicas;
  if (signer != nullptr) {
    options.signer = signer;
    options.sign_reads = true;
    options.admin_token = "fuzz-admin-token-0123456789";
  }
  return options;
}

// Everything the master's main() makes, in the same order. Never destroyed:
// the io thread is only stopped at exit.
struct Master {
  Loop loop;
  std::unique_ptr<RocksDbIndexStore> store =
      must(RocksDbIndexStore::open(scratch_folder("master").string(), 8 << 20, loop.blocking()),
           "index");
  std::unique_ptr<VersionClock> clock =
      must(run_to_completion(loop.io(), VersionClock::open(*store)), "version clock");
  KeyProtocol protocol{*store, *clock, protocol_settings()};
  VolumeRegistry registry{*store};
  KeyLocks locks;
  RemovalWorker removals{protocol, locks};
  VolumeHealth health{
      loop.io(),
      {},
      [this] { return registry.snapshot()->all; },
      [this](const std::string& url) { removals.volume_alive(url, loop.io().get_executor()); }};
  MasterService service{protocol, registry, health, removals, master_options(nullptr)};
  MasterOptions signed_options = master_options(&fuzz_signer());
  MasterService signed_service{protocol, registry, health, removals, signed_options};
  Maintenance maintenance{
      protocol, registry, health, locks, {kReplicas, std::chrono::seconds(600)}};
  JobRunner jobs{
      *store, protocol, maintenance, registry, health, removals, {4, std::chrono::seconds(0)}};
  AdminService admin{jobs};
  http::Router router;
  http::Router signed_router;
  std::unique_ptr<Daemon> daemon;
  std::unique_ptr<Daemon> signed_daemon;

  Master() {
    must(run_to_completion(loop.io(), registry.load()), "volume registry");
    for (const auto* url : {"http://volume-a:7001", "http://volume-b:7002"}) {
      must(run_to_completion(loop.io(), registry.add(must(parse_base_url(url), "volume URL"))),
           "registering a volume");
    }
    must(run_to_completion(loop.io(), jobs.load()), "jobs");
    http::use_credentials({&fuzz_signer(), ""});
    service.add_routes(router);
    admin.add_routes(router);
    signed_service.add_routes(signed_router);
    // As master/main.cpp guards them: the admin token only (in the
    // dictionary, tests/fuzz/http.dict).
    admin.add_routes(signed_router, {nullptr, &signed_options.admin_token});
    removals.start(loop.io().get_executor());
    jobs.start(loop.io().get_executor());
    daemon = std::make_unique<Daemon>(loop, router);
    signed_daemon = std::make_unique<Daemon>(loop, signed_router);
    loop.start();
  }
};

Master* master = nullptr;

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kalavara::fuzz::abort_on_logged_errors();
  kalavara::fuzz::master = new kalavara::fuzz::Master();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto input = as_text(data, size);
  if (size % 2 == 1) {
    (void)master->signed_daemon->exchange(sign_first_request(input));
  } else {
    (void)master->daemon->exchange(input);
  }
  return 0;
}
