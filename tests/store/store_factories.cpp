#include "store/store_factories.hpp"

#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>

#include <unistd.h>

#include "common/blocking.hpp"
#include "common/url.hpp"
#include "master/etcd_index_store.hpp"
#include "master/rocksdb_index_store.hpp"
#include "store/etcd_test_dir.hpp"
#include "support/etcd_cluster.hpp"

namespace kalavara::testing {
namespace {

namespace fs = std::filesystem;

bool current_test_failed() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info != nullptr && info->result()->Failed();
}

class OpenedRocksDb final : public OpenedStore {
 public:
  explicit OpenedRocksDb(fs::path dir) : dir_(std::move(dir)) {}
  ~OpenedRocksDb() override {
    pool_.join();  // nothing of the store still runs on it
    store_.reset();
    if (current_test_failed()) {
      std::cerr << "[store] the failed test's RocksDB index is kept in " << dir_ << "\n";
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  bool open() {
    auto store = RocksDbIndexStore::open(dir_.string(), 8 << 20, pool_);
    if (!store.ok()) {
      ADD_FAILURE() << "RocksDbIndexStore::open(" << dir_ << "): " << store.error().message;
      return false;
    }
    store_ = std::move(store).value();
    return true;
  }
  IndexStore& store() override { return *store_; }

 private:
  fs::path dir_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<RocksDbIndexStore> store_;
};

// The running suite's etcd, started on first use.
struct SuiteEtcd {
  fs::path dir;
  std::optional<test::EtcdCluster> cluster;
  bool failed_to_start = false;
};

SuiteEtcd& suite_etcd() {
  static SuiteEtcd etcd;
  return etcd;
}

void stop_suite_etcd() {
  auto& etcd = suite_etcd();
  etcd.cluster.reset();  // kills and reaps
  const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
  if (!etcd.dir.empty()) {
    if (suite != nullptr && suite->Failed()) {
      std::cerr << "[store] the failed suite's etcd logs are kept in " << etcd.dir << "\n";
    } else {
      std::error_code ec;
      fs::remove_all(etcd.dir, ec);
    }
  }
  etcd = SuiteEtcd{};
}

test::EtcdCluster* suite_cluster() {
  auto& etcd = suite_etcd();
  if (etcd.cluster) return &*etcd.cluster;
  if (etcd.failed_to_start) return nullptr;  // fail fast: once per suite is enough
  etcd.dir = fresh_temp_dir("store-etcd");
  after_suite_hooks().push_back(stop_suite_etcd);
  std::string error;
  etcd.cluster = test::EtcdCluster::start(etcd.dir, 1, &error);
  if (!etcd.cluster) {
    etcd.failed_to_start = true;
    ADD_FAILURE() << "etcd did not start: " << error;
    return nullptr;
  }
  return &*etcd.cluster;
}

class OpenedEtcd final : public OpenedStore {
 public:
  explicit OpenedEtcd(std::unique_ptr<EtcdIndexStore> store) : store_(std::move(store)) {}
  IndexStore& store() override { return *store_; }

 private:
  std::unique_ptr<EtcdIndexStore> store_;
};

}  // namespace

StoreFactory rocksdb_factory() {
  return {"RocksDb", [](boost::asio::io_context&, std::string&) -> std::unique_ptr<OpenedStore> {
            auto opened = std::make_unique<OpenedRocksDb>(fresh_temp_dir("store-rocksdb"));
            if (!opened->open()) return nullptr;
            return opened;
          }};
}

StoreFactory etcd_factory() {
  return {
      "Etcd", [](boost::asio::io_context& io, std::string& skip) -> std::unique_ptr<OpenedStore> {
        if (!test::etcd_available()) {
          skip = std::string(test::kEtcdMissing);
          return nullptr;
        }
        auto* cluster = suite_cluster();
        if (cluster == nullptr) return nullptr;
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        EtcdStoreSettings settings;
        for (const auto& url : cluster->client_urls()) {
          auto parsed = parse_base_url(url);
          if (!parsed.ok()) {
            ADD_FAILURE() << url << ": " << parsed.error().message;
            return nullptr;
          }
          settings.client.endpoints.push_back(std::move(parsed).value());
        }
        // Every test of the suite shares the cluster; none sees another's keys.
        settings.prefix = std::string("t/") + info->test_suite_name() + "/" + info->name() + "/";
        auto store = run_to_completion(io, EtcdIndexStore::open(settings));
        if (!store.ok()) {
          ADD_FAILURE() << "EtcdIndexStore::open(" << cluster->endpoints_flag() << ", "
                        << settings.prefix << "): " << store.error().message << "\n"
                        << cluster->describe();
          return nullptr;
        }
        return std::make_unique<OpenedEtcd>(std::move(store).value());
      }};
}

std::vector<StoreFactory> persistent_factories() { return {rocksdb_factory(), etcd_factory()}; }

}  // namespace kalavara::testing
