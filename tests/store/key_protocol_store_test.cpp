// The key protocol's scenarios (store/key_protocol_scenarios.hpp) over the
// stores a master runs on: RocksDB and etcd. The unit tests run the same
// scenarios over the in-memory store.
#include "store/key_protocol_scenarios.hpp"

#include "store/store_factories.hpp"

namespace kalavara::testing::scenarios {
namespace {

INSTANTIATE_TEST_SUITE_P(Stores, KeyProtocolTest, ::testing::ValuesIn(persistent_factories()),
                         store_name);

}  // namespace
}  // namespace kalavara::testing::scenarios
