// Fuzz target: the volume's whole request handling. The input is the raw
// bytes a client sends on one connection (one request or several
// pipelined), served by the volume's real router — VolumeService over a
// FileBlobStore in a scratch folder, wired as volume/main.cpp wires it
// without -m and -b — on an in-process HttpServer (see http_harness.hpp).
// Commits, replica uploads and copies go to whatever URL the request names,
// which the harness turns into its stub peer: a master that commits
// everything and volumes that take every copy.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

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

// Never destroyed: the io thread is only stopped at exit.
struct Volume {
  Loop loop;
  std::unique_ptr<FileBlobStore> store = open_store();
  VolumeService service{*store, VolumeOptions{}, loop.blocking()};
  http::Router router;
  std::unique_ptr<Daemon> daemon;

  Volume() {
    service.add_routes(router);
    daemon = std::make_unique<Daemon>(loop, router);
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
  (void)volume->daemon->exchange(as_text(data, size));
  return 0;
}
