#include "faults/fault_run.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

namespace kalavara::faults {
namespace {

using namespace std::chrono_literals;
using it::Millis;

// --max-upload-time in the fault runs: an upload (at most 8 MiB, on
// loopback) takes well under this, even on a loaded machine.
constexpr std::chrono::seconds kUploadHorizon{4};

std::optional<long long> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoll(text, nullptr, 10);
}

// This test process's environment, for a daemon to add to.
std::vector<std::string> own_environment() {
  std::vector<std::string> all;
  for (char** entry = environ; *entry != nullptr; ++entry) all.emplace_back(*entry);
  return all;
}

// The master's answer for `key`, retried while it cannot say (503: no
// replica up yet, the index busy), within `timeout`.
it::HttpResponse ask_master(std::uint16_t port, const std::string& method,
                            const std::string& target, Millis timeout) {
  const auto deadline = it::Clock::now() + timeout;
  for (;;) {
    auto answer = it::http_request(port, method, target);
    const bool definite = answer.status != 0 && answer.status < 500;
    if (definite || it::Clock::now() > deadline) return answer;
    std::this_thread::sleep_for(50ms);
  }
}

// The version a 302's Location names.
std::string version_in(const it::HttpResponse& redirect) {
  const auto location = redirect.header("Location").value_or("");
  const auto at = location.find("version=");
  if (at == std::string::npos) return {};
  const auto end = location.find('&', at);
  return location.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
}

}  // namespace

void write_fault_rules(const it::fs::path& control, const std::string& rules) {
  const auto temp = control.string() + ".new";
  it::write_file(temp, rules);
  it::fs::rename(temp, control);
}

std::size_t injected_faults(const it::fs::path& control) {
  std::ifstream log(control.string() + ".log");
  std::size_t lines = 0;
  for (std::string line; std::getline(log, line);) ++lines;
  return lines;
}

int fault_rounds(int fallback) {
  const auto rounds = env_number("KALAVARA_FAULT_ROUNDS");
  return rounds && *rounds > 0 ? static_cast<int>(*rounds) : fallback;
}

std::uint64_t fault_seed() {
  const auto given = env_number("KALAVARA_FAULT_SEED");
  const std::uint64_t seed =
      given ? static_cast<std::uint64_t>(*given) : std::random_device{}() % 1000000000ULL + 1;
  std::cerr << "[faults] seed " << seed << " (KALAVARA_FAULT_SEED=" << seed << " to replay)\n";
  return seed;
}

FaultRun::FaultRun(ClusterShape shape, WorkloadSettings load)
    : shape_(std::move(shape)), load_(std::move(load)), random_(load_.seed) {
  cluster_ = std::make_unique<it::Cluster>(tmp_);
}

::testing::AssertionResult FaultRun::start() {
  for (int i = 0; i < shape_.volumes; ++i) {
    std::optional<std::vector<std::string>> environment;
    if (i == 0 && !shape_.first_volume_env.empty()) {
      environment = own_environment();
      for (auto entry : shape_.first_volume_env) {
        const std::string placeholder = "{volume0}";
        if (const auto at = entry.find(placeholder); at != std::string::npos) {
          entry.replace(at, placeholder.size(), volume_dir(0).string());
        }
        environment->push_back(std::move(entry));
      }
    }
    auto started = cluster_->start_volume(nullptr, shape_.volume_flags, 0, environment);
    if (!started) return started;
    if (cluster_->volume_dir(static_cast<std::size_t>(i)) != volume_dir(i)) {
      return ::testing::AssertionFailure() << "volume " << i << " keeps its data in "
                                           << cluster_->volume_dir(static_cast<std::size_t>(i));
    }
  }
  auto flags = shape_.master_flags;
  flags.insert(flags.end(), {"--replicas", std::to_string(shape_.replicas)});
  // Short horizons, so that the scrub after the load may remove what an
  // upload cut off by a fault left behind (an orphan no index names) a few
  // seconds after the load stops, not an hour later.
  flags.insert(flags.end(), {"--max-upload-time", std::to_string(kUploadHorizon.count()),
                             "--old-version-grace", "1", "--orphan-min-age", "1"});
  std::optional<std::vector<std::string>> master_environment;
  if (!shape_.master_env.empty()) {
    master_environment = own_environment();
    master_environment->insert(master_environment->end(), shape_.master_env.begin(),
                               shape_.master_env.end());
  }
  auto started =
      cluster_->start_master_with_args(cluster_->volume_urls(), flags, 0, master_environment);
  if (!started) return started;
  master_port_ = cluster_->master_port();
  workload_ = std::make_unique<Workload>(master_port_, load_);
  workload_->start();
  return ::testing::AssertionSuccess();
}

it::fs::path FaultRun::volume_dir(std::size_t i) const {
  return tmp_.path() / ("volume" + std::to_string(i));
}

::testing::AssertionResult FaultRun::wait_volumes_up(Millis timeout) {
  const auto all_up = [&] {
    const auto volumes = it::http_request(master_port_, "GET", "/admin/volumes");
    if (volumes.status != 200) return false;
    for (const auto& url : cluster_->volume_urls()) {
      const auto at = volumes.body.find("\"url\": \"" + url + "\"");
      if (at == std::string::npos) return false;
      const auto entry = volumes.body.substr(at, volumes.body.find('}', at) - at);
      if (entry.find("\"state\": \"up\"") == std::string::npos) return false;
    }
    return true;
  };
  if (it::wait_until(all_up, timeout, 50ms)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "the master does not see every volume up: "
         << it::http_request(master_port_, "GET", "/admin/volumes").body;
}

::testing::AssertionResult FaultRun::wait_operations(std::size_t count, Millis timeout) {
  const auto target = workload_->done() + count;
  if (it::wait_until([&] { return workload_->done() >= target; }, timeout, 10ms)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the load made " << workload_->done() << " of " << target
                                       << " operations in " << timeout.count() << " ms";
}

void FaultRun::pause_between(Millis low, Millis high) {
  std::this_thread::sleep_for(
      Millis(std::uniform_int_distribution<long>(low.count(), high.count())(random_)));
}

::testing::AssertionResult FaultRun::run_job(const std::string& kind) {
  const auto started = it::http_request(master_port_, "POST", "/admin/" + kind);
  const auto id_at = started.body.find("-" + kind);
  if (started.status != 202 || id_at == std::string::npos || id_at < 16) {
    return ::testing::AssertionFailure() << kind << ": " << started.summary();
  }
  const auto id = started.body.substr(id_at - 16, 16 + 1 + kind.size());
  // The job's entry in the listing, up to the next one.
  std::string entry;
  const auto finished = [&] {
    const auto jobs = it::http_request(master_port_, "GET", "/admin/jobs");
    const auto at = jobs.body.find(id);
    if (jobs.status != 200 || at == std::string::npos) return false;
    entry = jobs.body.substr(at, jobs.body.find('}', at) - at);
    return entry.find("done\"") != std::string::npos || entry.find("failed\"") != std::string::npos;
  };
  if (!it::wait_until(finished, 180s, 100ms)) {
    return ::testing::AssertionFailure() << kind << " did not finish: " << entry;
  }
  if (entry.find("\"failed_items\": 0") == std::string::npos &&
      entry.find("\"failed_items\":0") == std::string::npos) {
    return ::testing::AssertionFailure() << kind << " failed items: " << entry;
  }
  return ::testing::AssertionSuccess();
}

void FaultRun::stop_and_check(int copies) {
  workload_->stop();
  const auto ops = workload_->history().operations();
  std::cerr << "[faults] " << summarize(ops) << "\n";
  ASSERT_TRUE(wait_volumes_up(30s));
  const auto epoch = workload_->epoch();
  const auto seed = load_.seed;

  auto violations = check_reads(ops);
  EXPECT_TRUE(violations.empty()) << "reads during the load:\n" << report(violations, epoch, seed);

  // Every key the load touched, read back through the master.
  std::vector<FinalRead> reads;
  std::map<std::string, std::string> versions;  // key -> the index's version
  for (const auto& key : keys_of(ops)) {
    const auto target = "/store/" + key;
    const auto answer = ask_master(master_port_, "GET", target, 30s);
    FinalRead read{key};
    if (answer.status == 302) {
      const auto fetched = it::follow_redirect(answer, "GET");
      ASSERT_EQ(fetched.status, 200) << key << ": the 302 leads to " << fetched.summary();
      read.found = true;
      read.digest = digest(fetched.body);
      read.size = fetched.body.size();
      versions[key] = version_in(answer);
    } else {
      ASSERT_EQ(answer.status, 404) << key << ": " << answer.summary();
    }
    reads.push_back(read);
  }
  violations = check_final(ops, reads);
  EXPECT_TRUE(violations.empty()) << "read back after recovery:\n"
                                  << report(violations, epoch, seed);

  // A scrub removes the orphans: files of uploads a fault cut off after
  // they were published, which no index names. It may only once the wall
  // clock has passed their version by the upload horizon (the upload could
  // still have committed). Every orphan's version is below the one the
  // master hands out now (a 307 read, not followed); versions may run ahead
  // of the wall clock after a master restart (the stored version floor).
  // That is time passing, not a state to poll for.
  const auto probe = it::http_request(master_port_, "PUT", "/store/fault-probe", "x");
  ASSERT_EQ(probe.status, 307) << probe.summary();
  const auto issued = std::stoull(version_in(probe));
  const auto wall_micros = [] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  };
  const auto lead_ms = issued > wall_micros() ? (issued - wall_micros()) / 1000 : 0;
  std::cerr << "[faults] versions run " << lead_ms << " ms ahead of the wall clock\n";
  const auto collectable = issued + static_cast<std::uint64_t>(
                                        std::chrono::microseconds(kUploadHorizon + 1500ms).count());
  while (wall_micros() < collectable) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(run_job("scrub"));

  // The replicas agree with the index: each value on at least `copies`
  // volumes, byte-exact; no volume's newest copy of a key is anything but
  // the indexed value; no volume serves a deleted key (its queued removals
  // are carried out once the volume is up: polled).
  for (const auto& read : reads) {
    const auto target = "/store/" + read.key;
    std::string disagreement;
    const auto agree = [&] {
      int exact = 0;
      for (std::size_t v = 0; v < cluster_->volume_count(); ++v) {
        const auto port = cluster_->volume(v).port();
        const auto newest = it::http_request(port, "GET", target);
        const bool indexed = newest.status == 200 && read.found &&
                             digest(newest.body) == read.digest && newest.body.size() == read.size;
        if (newest.status != 404 && !indexed) {
          disagreement = "volume " + std::to_string(v) + " serves " + newest.summary() +
                         (read.found ? " beside the indexed version " + versions[read.key]
                                     : " of a deleted key");
          return false;
        }
        if (indexed) ++exact;
      }
      if (read.found && exact < copies) {
        disagreement = std::to_string(exact) + " byte-exact copies of the indexed version " +
                       versions[read.key] + ", not " + std::to_string(copies);
        return false;
      }
      return true;
    };
    EXPECT_TRUE(it::wait_until(agree, 30s, 100ms))
        << read.key << ": " << disagreement << "\n"
        << report({{read.key, "replicas disagree with the index", history_of(ops, read.key)}},
                  epoch, seed);
  }

  // No upload left a temp file behind.
  for (std::size_t v = 0; v < cluster_->volume_count(); ++v) {
    const auto temp = cluster_->volume_dir(v) / "tmp";
    const auto empty = [&] { return it::regular_files_under(temp).empty(); };
    EXPECT_TRUE(it::wait_until(empty, 15s, 100ms))
        << "volume " << v << " keeps " << it::regular_files_under(temp).size()
        << " temp file(s) in " << temp;
  }
}

}  // namespace kalavara::faults
