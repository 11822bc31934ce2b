// What the store tests that start their own etcd share: a fresh folder, the
// endpoints of a cluster as the client takes them, and a cluster whose
// folder goes with it unless a test failed (its logs are then kept).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/url.hpp"
#include "support/etcd_cluster.hpp"

namespace kalavara::testing {

inline std::filesystem::path fresh_temp_dir(const std::string& tag) {
  static int counter = 0;
  return std::filesystem::temp_directory_path() /
         ("kalavara-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
          "-" + std::to_string(std::random_device{}()));
}

inline std::vector<BaseUrl> endpoints_of(const std::vector<std::string>& urls) {
  std::vector<BaseUrl> endpoints;
  for (const auto& url : urls) {
    auto parsed = parse_base_url(url);
    EXPECT_TRUE(parsed.ok()) << url;
    if (parsed.ok()) endpoints.push_back(std::move(parsed).value());
  }
  return endpoints;
}

struct ClusterDir {
  std::filesystem::path dir = fresh_temp_dir("etcd");
  std::optional<test::EtcdCluster> cluster;
  std::string error;

  bool start(int members) {
    cluster = test::EtcdCluster::start(dir, members, &error);
    return cluster.has_value();
  }
  void release(bool failed) {
    cluster.reset();
    std::error_code ec;
    if (failed) {
      std::cerr << "[etcd] logs of the failed test are kept in " << dir << "\n";
    } else {
      std::filesystem::remove_all(dir, ec);
    }
  }
};

}  // namespace kalavara::testing
