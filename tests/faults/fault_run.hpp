// One fault scenario's frame: a cluster of real daemons on loopback, the
// workload against it, and, after the fault, the read-back and every check
// the suite makes (docs/reliability.md). Scenarios inject the faults.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "faults/workload.hpp"
#include "harness.hpp"

namespace kalavara::faults {

// Replaces the I/O-fault shim's control file (shim/io_faults.cpp) with
// `rules`, atomically: the shim sees the old rules or the new ones.
void write_fault_rules(const it::fs::path& control, const std::string& rules);
// How many faults the shim has injected so far (lines of its log).
std::size_t injected_faults(const it::fs::path& control);

// KALAVARA_FAULT_ROUNDS, else `fallback` (the short version ctest runs).
int fault_rounds(int fallback);
// KALAVARA_FAULT_SEED, else a new one; printed either way.
std::uint64_t fault_seed();

struct ClusterShape {
  int volumes = 2;
  int replicas = 1;
  std::vector<std::string> master_flags;
  std::vector<std::string> volume_flags;
  // Added to the environment of volume 0 ("NAME=value": an LD_PRELOAD
  // shim and its settings), kept across its restarts. "{volume0}" stands
  // for its data folder.
  std::vector<std::string> first_volume_env;
  // Added to the master's environment (libfaketime and its settings).
  std::vector<std::string> master_env;
};

class FaultRun {
 public:
  FaultRun(ClusterShape shape, WorkloadSettings load);

  // Starts the volumes and the master, then the load.
  ::testing::AssertionResult start();

  it::Cluster& cluster() { return *cluster_; }
  it::TempDir& tmp() { return tmp_; }
  // Where volume i keeps its data (known before start()).
  it::fs::path volume_dir(std::size_t i) const;
  Workload& workload() { return *workload_; }
  std::mt19937_64& random() { return random_; }
  std::uint64_t seed() const { return load_.seed; }
  // The port the load sends to: set it when the master comes back elsewhere.
  std::atomic<std::uint16_t>& master_port() { return master_port_; }

  // Waits until the master's health checks see every volume up.
  ::testing::AssertionResult wait_volumes_up(it::Millis timeout);
  // Runs a maintenance job (repair, scrub, ...) to its end.
  ::testing::AssertionResult run_job(const std::string& kind);
  // Waits until the load has finished `count` more operations.
  ::testing::AssertionResult wait_operations(std::size_t count, it::Millis timeout);
  // A random pause between `low` and `high`: where in the load a fault hits.
  void pause_between(it::Millis low, it::Millis high);

  // Stops the load and checks everything: the reads during the load, every
  // key read back, at least `copies` byte-exact copies of each value on the
  // volumes, no volume serving a deleted key, no temp file left. Adds a
  // test failure with the seed and the minimal history for each violation.
  void stop_and_check(int copies);

 private:
  ClusterShape shape_;
  WorkloadSettings load_;
  it::TempDir tmp_;
  std::unique_ptr<it::Cluster> cluster_;
  std::atomic<std::uint16_t> master_port_{0};
  std::unique_ptr<Workload> workload_;
  std::mt19937_64 random_;
};

}  // namespace kalavara::faults
