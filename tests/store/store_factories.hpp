// The stores the store tests run over: RocksDB on a temp folder, and etcd
// on a 1-member cluster started on first use and stopped when the test
// suite ends (store/store_factory.hpp's after-suite hooks), each test under
// a prefix of its own ("t/<suite>/<test>/").
#pragma once

#include <vector>

#include "store/store_factory.hpp"

namespace kalavara::testing {

StoreFactory rocksdb_factory();
StoreFactory etcd_factory();
// Both, in that order.
std::vector<StoreFactory> persistent_factories();

}  // namespace kalavara::testing
