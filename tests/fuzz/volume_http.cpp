// Fuzz target: the volume's whole request handling. The input is the raw
// bytes a client sends on one connection (one request or several
// pipelined), served by the volume's real router — VolumeService over a
// FileBlobStore in a scratch folder, wired as volume/main.cpp wires it
// without -m and -b — on an in-process HttpServer (see http_harness.hpp).
// Commits, replica uploads and copies go to whatever URL the request names,
// which the harness turns into its stub peer: a master that commits
// everything and volumes that take every copy.
//
// Two volumes serve the same store: an open one, and one started with a
// secret and --sign-reads. An input of odd length goes to the signed one,
// with its first request signed by the harness (sign_first_request) unless
// it carries a signature of its own; every call either volume makes is
// signed, as a daemon with --secret-file signs them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/http_client.hpp"
#include "fuzz_check.hpp"
#include "http_harness.hpp"
#include "volume/file_blob_store.hpp"
#include "volume/volume_service.hpp"

namespace kalavara::fuzz {
namespace {

std::unique_ptr<FileBlobStore> open_store() {
  auto store = FileBlobStore::open_at(scratch_folder("volume"));
  if (!store) {
    std::fprintf(stderr, "volume setup: %s\n", store.error().message.c_str());
    std::abort();
  }
  return std::move(store).value();
}

VolumeOptions signed_options() {
  VolumeOptions options;
  options.signer = &fuzz_signer();
  options.sign_reads = true;
  return options;
}

// Never destroyed: the io thread is only stopped at exit.
struct Volume {
  Loop loop;
  std::unique_ptr<FileBlobStore> store = open_store();
  VolumeService service{*store, VolumeOptions{}, loop.blocking()};
  VolumeService signed_service{*store, signed_options(), loop.blocking()};
  http::Router router;
  http::Router signed_router;
  std::unique_ptr<Daemon> daemon;
  std::unique_ptr<Daemon> signed_daemon;

  Volume() {
    http::use_credentials({&fuzz_signer(), ""});
    service.add_routes(router);
    signed_service.add_routes(signed_router);
    daemon = std::make_unique<Daemon>(loop, router);
    signed_daemon = std::make_unique<Daemon>(loop, signed_router);
    loop.start();
  }
};

Volume* volume = nullptr;

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kalavara::fuzz::abort_on_logged_errors();
  kalavara::fuzz::volume = new kalavara::fuzz::Volume();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto input = as_text(data, size);
  if (size % 2 == 1) {
    (void)volume->signed_daemon->exchange(sign_first_request(input));
  } else {
    (void)volume->daemon->exchange(input);
  }
  return 0;
}
