// Opening an empty IndexStore of one kind for one test: the parameter of
// the suites that run the same tests over several stores (the conformance
// suite, the key protocol's scenarios). Header-only: the unit tests supply
// the in-memory kind, the store tests RocksDB and etcd
// (store/store_factories.hpp).
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "master/index_store.hpp"

namespace kalavara::testing {

// A store and whatever it needs to live (a folder, a thread pool), released
// in the right order by the destructor.
class OpenedStore {
 public:
  virtual ~OpenedStore() = default;
  virtual IndexStore& store() = 0;
};

struct StoreFactory {
  std::string name;  // "Memory", "RocksDb", "Etcd": the tests' parameter names
  // Opens an empty store for the running test, whose calls run on `io`
  // (which outlives the store). Returns nullptr with `skip` set when this
  // kind cannot run on this machine (the test then skips), or nullptr with
  // a failure recorded (ADD_FAILURE) when it should have opened.
  std::function<std::unique_ptr<OpenedStore>(boost::asio::io_context& io, std::string& skip)> open;
};

inline void PrintTo(const StoreFactory& factory, std::ostream* out) { *out << factory.name; }

inline std::string store_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

// What a factory asks to run once the test suite that used it is over (the
// etcd factory stops the suite's cluster). Suites over StoreFactory call
// run_after_suite_hooks() from TearDownTestSuite().
inline std::vector<std::function<void()>>& after_suite_hooks() {
  static std::vector<std::function<void()>> hooks;
  return hooks;
}

inline void run_after_suite_hooks() {
  auto hooks = std::exchange(after_suite_hooks(), {});
  for (auto& hook : hooks) hook();
}

}  // namespace kalavara::testing

namespace kalavara {

// Readable failure messages (gtest finds these by argument-dependent lookup,
// so they live in the types' own namespace).
inline void PrintTo(const PendingRemoval& r, std::ostream* out) {
  *out << "{" << ::testing::PrintToString(r.volume) << ", " << ::testing::PrintToString(r.key)
       << ", up_to " << r.up_to << ", not_before " << r.not_before << "}";
}
inline void PrintTo(const PendingCollection& c, std::ostream* out) {
  *out << "{" << ::testing::PrintToString(c.key) << ", version " << c.version << ", not_before "
       << c.not_before << "}";
}
inline void PrintTo(const RegisteredVolume& v, std::ostream* out) {
  *out << "{" << v.url << (v.state == VolumeState::kDraining ? ", draining}" : ", active}");
}

}  // namespace kalavara
