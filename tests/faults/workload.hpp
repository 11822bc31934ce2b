// The fault suite's load: clients doing a mixed load of new writes,
// overwrites, deletes, conditional writes and reads through the master, the
// way a plain HTTP library would (the whole body to the master, then again
// to the 307's Location), each recording what it did and saw in a History.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "faults/history.hpp"

namespace kalavara::faults {

struct WorkloadSettings {
  int clients = 16;
  int keys = 48;  // the keys they share, so operations collide
  std::uint64_t seed = 1;
  std::chrono::milliseconds timeout{15000};  // per exchange; then "unknown"
  std::size_t max_value = 8 * 1024 * 1024;
  std::string key_prefix = "fault/";
  // Per client; the load ends at stop() or here, whichever comes first.
  std::size_t max_operations = 100000;
};

// The key a test reads back, by index.
std::string workload_key(const WorkloadSettings& settings, int index);

// Runs the clients on threads of their own. The master's port is read
// before each operation, so a test may restart the master elsewhere.
class Workload {
 public:
  Workload(const std::atomic<std::uint16_t>& master_port, WorkloadSettings settings);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void start();
  // Lets every client finish its operation in flight (bounded by the
  // timeout), then joins them.
  void stop();

  const History& history() const { return history_; }
  Clock::time_point epoch() const { return epoch_; }
  const WorkloadSettings& settings() const { return settings_; }
  // Operations finished so far (any outcome).
  std::size_t done() const { return history_.size(); }
  // Paces the clients to about `per_second` operations in all (0: as fast
  // as they can), from their next operation on.
  void set_rate(double per_second) { rate_ = per_second; }

 private:
  void run_client(int client);

  const std::atomic<std::uint16_t>& master_port_;
  const WorkloadSettings settings_;
  const Clock::time_point epoch_ = Clock::now();
  History history_;
  std::atomic<bool> stopping_{false};
  std::atomic<double> rate_{0};
  std::atomic<std::uint64_t> next_value_{1};
  std::vector<std::thread> threads_;
};

// The size of the next value: mostly small, sometimes up to `max` (0 B
// included), as a store's traffic is.
std::size_t pick_value_size(std::mt19937_64& random, std::size_t max);

}  // namespace kalavara::faults
