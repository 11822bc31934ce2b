// The fault scenarios (docs/reliability.md): each runs the mixed load of 16
// clients against real daemons on loopback, injects its fault, lets the
// cluster recover, and checks the whole history (fault_run.hpp). ctest runs
// a few rounds of each; scripts/fault-tests.sh runs the full count
// (KALAVARA_FAULT_ROUNDS) and KALAVARA_FAULT_SEED replays a failure's choices.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>

#include "faults/fault_run.hpp"

namespace kalavara::faults {
namespace {

using namespace std::chrono_literals;
using it::Millis;

constexpr int kShortRounds = 3;

ClusterShape shape_of(int volumes, int replicas) {
  ClusterShape shape;
  shape.volumes = volumes;
  shape.replicas = replicas;
  return shape;
}

WorkloadSettings load_with_seed() {
  WorkloadSettings load;
  load.seed = fault_seed();
  // A killed peer answers nothing: a few seconds decide "unknown".
  load.timeout = 8s;
  return load;
}

// Kills a daemon at a random instant of the load, restarts it, and waits
// until the cluster serves again, round after round.
void kill_rounds(FaultRun& run, const std::function<it::Daemon&()>& pick_victim,
                 const std::function<::testing::AssertionResult()>& restart) {
  const int rounds = fault_rounds(kShortRounds);
  for (int round = 0; round < rounds; ++round) {
    run.pause_between(200ms, 1500ms);
    pick_victim().kill_hard();
    run.pause_between(50ms, 500ms);
    ASSERT_TRUE(restart()) << "round " << round;
    ASSERT_TRUE(run.wait_volumes_up(20s)) << "round " << round;
    ASSERT_TRUE(run.wait_operations(20, 60s)) << "round " << round;
  }
}

// 1. kill -9 of a volume at a random instant, round after round: the load
// goes on against the other volume and the restarted one.
TEST(Faults, VolumeKilledAtRandomInstantsLosesNothingAcknowledged) {
  FaultRun run(shape_of(2, 1), load_with_seed());
  ASSERT_TRUE(run.start());
  std::size_t victim = 0;
  kill_rounds(
      run,
      [&]() -> it::Daemon& {
        victim = std::uniform_int_distribution<std::size_t>(0, 1)(run.random());
        return run.cluster().volume(victim);
      },
      [&] { return run.cluster().restart_volume(victim); });
  if (HasFatalFailure()) return;
  run.stop_and_check(1);
}

// 2. kill -9 of the master at a random instant: every commit it answered
// was synced to its index first, so the restarted master knows it.
TEST(Faults, MasterKilledAtRandomInstantsLosesNothingAcknowledged) {
  FaultRun run(shape_of(2, 1), load_with_seed());
  ASSERT_TRUE(run.start());
  kill_rounds(
      run, [&]() -> it::Daemon& { return run.cluster().master(); },
      [&] { return run.cluster().restart_master_in_place(); });
  if (HasFatalFailure()) return;
  run.stop_and_check(1);
}

// 3. Two replicas over three volumes, one killed mid-load and brought back:
// reads keep being answered from the other replica once the master has
// seen the volume go (its health-check window), and a repair restores two
// copies of everything.
TEST(Faults, ReplicatedVolumeKilledMidLoadKeepsReadsAnsweredAndRepairRestoresCopies) {
  FaultRun run(shape_of(3, 2), load_with_seed());
  ASSERT_TRUE(run.start());
  const int rounds = fault_rounds(kShortRounds);
  for (int round = 0; round < rounds; ++round) {
    run.pause_between(300ms, 1500ms);
    const auto victim = std::uniform_int_distribution<std::size_t>(0, 2)(run.random());
    run.cluster().volume(victim).kill_hard();
    const auto killed = Clock::now();
    // 3 failed checks 500 ms apart mark it down; reads sent to it before
    // then fail, as they would with any store that redirects.
    constexpr auto kDetection = 2500ms;
    std::this_thread::sleep_for(kDetection);
    const auto before = run.workload().done();
    ASSERT_TRUE(run.wait_operations(40, 60s)) << "round " << round;
    const auto ops = run.workload().history().operations();
    std::size_t failed_reads = 0;
    std::string example;
    for (std::size_t i = before; i < ops.size(); ++i) {
      const auto& op = ops[i];
      if (op.kind != OpKind::kGet || op.start < killed + kDetection) continue;
      if (op.outcome != Outcome::kAcknowledged) {
        ++failed_reads;
        example = op.describe(run.workload().epoch());
      }
    }
    EXPECT_EQ(failed_reads, 0U) << "round " << round << ": reads failed with a volume down, e.g. "
                                << example;
    ASSERT_TRUE(run.cluster().restart_volume(victim)) << "round " << round;
    ASSERT_TRUE(run.wait_volumes_up(20s)) << "round " << round;
  }
  run.workload().stop();
  // Writes made while a volume was down went to the next volumes in rank;
  // the repair moves or copies them back to two up-to-date replicas.
  ASSERT_TRUE(run.run_job("repair"));
  run.stop_and_check(2);
}

// 8. The master's wall clock, which versions are made from, jumps back an
// hour under load (libfaketime, re-reading its offset): versions keep
// growing, and no write is lost or reordered.
TEST(Faults, TheMastersClockSteppingBackAnHourUnderLoadLosesAndReordersNothing) {
  constexpr const char* kLibFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  if (::access(kLibFaketime, R_OK) != 0) {
    GTEST_SKIP() << kLibFaketime << " is missing: install faketime (scripts/install-deps.sh)";
  }
  it::TempDir clock_dir;
  const auto offset = clock_dir.path() / "offset";
  write_fault_rules(offset, "+0\n");
  ClusterShape shape = shape_of(2, 1);
  shape.master_env = {std::string("LD_PRELOAD=") + kLibFaketime,
                      "FAKETIME_TIMESTAMP_FILE=" + offset.string(), "FAKETIME_NO_CACHE=1",
                      "FAKETIME_DONT_FAKE_MONOTONIC=1"};
  FaultRun run(shape, load_with_seed());
  ASSERT_TRUE(run.start());
  const int rounds = fault_rounds(kShortRounds);
  long step = 0;
  for (int round = 0; round < rounds; ++round) {
    run.pause_between(300ms, 1200ms);
    const auto before = it::http_request(run.master_port(), "PUT", "/store/clock-probe", "x");
    ASSERT_EQ(before.status, 307) << before.summary();
    step -= 3600;
    write_fault_rules(offset, std::to_string(step) + "\n");
    // The master sees the step at its next reading of the clock.
    ASSERT_TRUE(run.wait_operations(200, 60s)) << "round " << round;
    const auto after = it::http_request(run.master_port(), "PUT", "/store/clock-probe", "x");
    ASSERT_EQ(after.status, 307) << after.summary();
    const auto version = [](const it::HttpResponse& redirect) {
      const auto location = redirect.header("Location").value_or("");
      return std::stoull(location.substr(location.find("version=") + 8));
    };
    EXPECT_GT(version(after), version(before)) << "round " << round << ": versions went back";
  }
  // The step did reach the master: a job it starts now is stamped with its
  // wall clock, hours back.
  ASSERT_TRUE(run.run_job("repair"));
  const auto jobs = it::http_request(run.master_port(), "GET", "/admin/jobs");
  const auto at = jobs.body.find("\"started\":");
  ASSERT_NE(at, std::string::npos) << jobs.body;
  const auto started = std::stoll(jobs.body.substr(jobs.body.find_first_of("0123456789", at)));
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_LT(started, now + step + 60) << "the master's clock was not stepped: " << jobs.body;
  run.stop_and_check(1);
}

// What a daemon holds: resident memory and open descriptors.
struct Footprint {
  long rss_kib = 0;
  long fds = 0;
};

Footprint footprint_of(pid_t pid) {
  Footprint footprint;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) footprint.rss_kib = std::stol(line.substr(6));
  }
  std::error_code ec;
  for (auto it = it::fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != it::fs::directory_iterator(); it.increment(ec)) {
    ++footprint.fds;
  }
  return footprint;
}

// 9. A soak: the mixed load at about 70% of the rate measured just before,
// for KALAVARA_FAULT_SOAK_SECONDS (20 here, 600 in scripts/fault-tests.sh).
// No unexpected error (no 5xx, no unanswered request), and each daemon's
// memory and descriptors flat: recorded every tenth of the run (at most
// every 10 s), the last no higher than the one a third in, give or take.
TEST(Faults, ASoakAtSeventyPercentOfTheMaximumHasNoErrorsAndFlatMemoryAndDescriptors) {
  const auto seconds = std::chrono::seconds(std::max(10, [] {
    const char* text = std::getenv("KALAVARA_FAULT_SOAK_SECONDS");
    return text == nullptr ? 20 : std::atoi(text);
  }()));
  FaultRun run(shape_of(2, 1), load_with_seed());
  ASSERT_TRUE(run.start());
  // The maximum, measured on this machine now.
  const auto measure = std::chrono::seconds(std::clamp<long>(seconds.count() / 10, 3, 20));
  const auto counted = run.workload().done();
  std::this_thread::sleep_for(measure);
  const double maximum =
      static_cast<double>(run.workload().done() - counted) / static_cast<double>(measure.count());
  run.workload().set_rate(0.7 * maximum);
  std::cerr << "[faults] maximum " << maximum << " op/s; soaking at " << 0.7 * maximum
            << " op/s for " << seconds.count() << " s\n";
  const auto soak_start = run.workload().done();
  const auto interval = std::min<it::Millis>(10s, seconds / 10);
  std::vector<std::vector<Footprint>> samples(3);  // master, volume 0, volume 1
  const auto deadline = Clock::now() + seconds;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(interval);
    samples[0].push_back(footprint_of(run.cluster().master().pid()));
    samples[1].push_back(footprint_of(run.cluster().volume(0).pid()));
    samples[2].push_back(footprint_of(run.cluster().volume(1).pid()));
  }
  run.workload().set_rate(0);
  const auto ops = run.workload().history().operations();
  std::size_t unexpected = 0;
  std::string example;
  for (std::size_t i = soak_start; i < ops.size(); ++i) {
    if (ops[i].status == 0 || ops[i].status >= 500) {
      if (unexpected++ == 0) example = ops[i].describe(run.workload().epoch());
    }
  }
  EXPECT_EQ(unexpected, 0U) << "e.g. " << example;
  const char* names[] = {"master", "volume 0", "volume 1"};
  for (std::size_t d = 0; d < samples.size(); ++d) {
    std::string trace;
    for (const auto& s : samples[d]) {
      trace += " " + std::to_string(s.rss_kib / 1024) + " MiB/" + std::to_string(s.fds) + " fds";
    }
    std::cerr << "[faults] " << names[d] << ":" << trace << "\n";
    ASSERT_GE(samples[d].size(), 3U);
    const auto& early = samples[d][samples[d].size() / 3];
    const auto& last = samples[d].back();
    EXPECT_LE(last.rss_kib, early.rss_kib * 3 / 2 + 16 * 1024) << names[d] << ":" << trace;
    EXPECT_LE(last.fds, early.fds + 32) << names[d] << ":" << trace;
  }
  run.stop_and_check(1);
}

// A tmpfs of `megabytes` mounted on `dir` for the test's length (root
// only: the test skips without it). Unmounted lazily, before the temp dir
// it lives in goes.
class SmallDisk {
 public:
  SmallDisk(const it::fs::path& dir, int megabytes) : dir_(dir) {
    it::fs::create_directories(dir);
    const auto command = "mount -t tmpfs -o size=" + std::to_string(megabytes) + "m tmpfs '" +
                         dir.string() + "' 2>/dev/null";
    mounted_ = std::system(command.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) std::system(("umount -l '" + dir_.string() + "'").c_str());
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }

 private:
  it::fs::path dir_;
  bool mounted_ = false;
};

// The free space the master's last check of `url` reported.
std::optional<std::uint64_t> reported_free_bytes(std::uint16_t master, const std::string& url) {
  const auto volumes = it::http_request(master, "GET", "/admin/volumes");
  const auto at = volumes.body.find("\"url\": \"" + url + "\"");
  if (volumes.status != 200 || at == std::string::npos) return std::nullopt;
  const auto field = volumes.body.find("\"free_bytes\": ", at);
  if (field == std::string::npos) return std::nullopt;
  return std::stoull(volumes.body.substr(field + 14));
}

std::size_t value_files_in(const it::fs::path& volume_dir) {
  return it::regular_files_under(volume_dir / "blobs").size();
}

// 5. Disk full: a volume on a 48 MiB filesystem, and a master that does not
// steer (--volume-min-free-bytes 0). Writes past the space answer 507 and
// leave no temp file; the values already there are untouched; once space
// is freed, writes succeed again.
TEST(Faults, AFullVolumeAnswers507KeepsItsValuesAndRecoversWhenSpaceIsFreed) {
  ClusterShape shape = shape_of(1, 1);
  shape.master_flags = {"--volume-min-free-bytes", "0"};
  WorkloadSettings no_load = load_with_seed();
  no_load.clients = 0;
  FaultRun run(shape, no_load);
  SmallDisk disk(run.volume_dir(0), 48);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ASSERT_TRUE(run.start());
  const auto port = run.master_port().load();
  std::vector<std::string> small;
  for (int i = 0; i < 10; ++i) {
    small.push_back(make_value(static_cast<std::uint64_t>(1000 + i), 4096));
    const auto put = it::put_via_master(port, "/store/small/" + std::to_string(i), small.back());
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  int full_at = -1;
  for (int i = 0; i < 12 && full_at < 0; ++i) {
    const auto put =
        it::put_via_master(port, "/store/big/" + std::to_string(i),
                           make_value(static_cast<std::uint64_t>(i + 1), 8 * it::kMiB));
    if (put.second.status == 507) {
      full_at = i;
    } else {
      ASSERT_EQ(put.second.status, 201) << i << ": " << put.describe();
    }
  }
  ASSERT_GE(full_at, 1) << "48 MiB took twelve 8 MiB values";
  EXPECT_TRUE(it::regular_files_under(run.volume_dir(0) / "tmp").empty());
  for (int i = 0; i < 10; ++i) {
    const auto read = it::get_via_master(port, "/store/small/" + std::to_string(i));
    ASSERT_EQ(read.second.status, 200) << read.describe();
    EXPECT_EQ(read.second.body, small[static_cast<std::size_t>(i)]) << i;
  }
  // Space freed: the next write of the same size is taken.
  for (int i = 0; i < full_at; ++i) {
    EXPECT_EQ(it::http_request(port, "DELETE", "/store/big/" + std::to_string(i)).status, 204);
  }
  const auto again = it::put_via_master(port, "/store/big/again", make_value(99, 8 * it::kMiB));
  EXPECT_EQ(again.second.status, 201) << again.describe();
}

// 5, the master's part: a volume reporting less free space than
// --volume-min-free-bytes takes no new writes; they go to the next volume
// in rank, and come back once it has room again.
TEST(Faults, TheMasterSteersNewWritesAwayFromAVolumeWithoutRoom) {
  ClusterShape shape = shape_of(2, 1);
  shape.master_flags = {"--volume-min-free-bytes", "16MiB"};
  WorkloadSettings no_load = load_with_seed();
  no_load.clients = 0;
  FaultRun run(shape, no_load);
  SmallDisk disk(run.volume_dir(0), 48);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ASSERT_TRUE(run.start());
  const auto port = run.master_port().load();
  const auto url = run.cluster().volume_urls()[0];
  const auto filler = run.volume_dir(0) / "filler";
  it::write_file(filler, std::string(40 * it::kMiB, 'f'));
  ASSERT_TRUE(it::wait_until(
      [&] { return reported_free_bytes(port, url).value_or(~0ULL) < 16 * it::kMiB; }, 10s));
  for (int i = 0; i < 30; ++i) {
    const auto put = it::put_via_master(port, "/store/steered/" + std::to_string(i), "value");
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  EXPECT_EQ(value_files_in(run.volume_dir(0)), 0U) << "a write went to the volume without room";

  it::fs::remove(filler);
  ASSERT_TRUE(it::wait_until(
      [&] { return reported_free_bytes(port, url).value_or(0) > 16 * it::kMiB; }, 10s));
  for (int i = 0; i < 30; ++i) {
    const auto put = it::put_via_master(port, "/store/back/" + std::to_string(i), "value");
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  EXPECT_GT(value_files_in(run.volume_dir(0)), 0U) << "the volume with room again took nothing";
}

// 6. I/O errors on the volume's data folder, at random, under the load:
// a write whose data never became durable is answered 5xx and never read.
TEST(Faults, RandomIoErrorsOnAVolumeAreNeverAcknowledged) {
  it::TempDir control_dir;
  const auto control = control_dir.path() / "io-faults";
  write_fault_rules(control, "");
  ClusterShape shape = shape_of(1, 1);
  // Only the data folder's files fail, never the logs'.
  shape.first_volume_env = {"LD_PRELOAD=" KALAVARA_IO_FAULTS_LIB,
                            "KALAVARA_IO_FAULTS=" + control.string(),
                            "KALAVARA_IO_FAULTS_PREFIX={volume0}"};
  FaultRun run(shape, load_with_seed());
  ASSERT_TRUE(run.start());
  const int rounds = fault_rounds(kShortRounds);
  for (int round = 0; round < rounds; ++round) {
    // Each call fails now and then; a write needs all of its calls.
    for (const char* rule :
         {"fsync random 20", "write random 2", "rename random 20", "open random 10"}) {
      write_fault_rules(control, std::string(rule) + "\n");
      ASSERT_TRUE(run.wait_operations(30, 60s)) << rule;
    }
    write_fault_rules(control, "");
    ASSERT_TRUE(run.wait_operations(20, 60s)) << "round " << round << ", no faults";
  }
  write_fault_rules(control, "");
  run.stop_and_check(1);
  // The faults did hit writes: else the test proved nothing.
  const auto injected = injected_faults(control);
  EXPECT_GT(injected, 0U) << "no I/O error was injected";
  std::cerr << "[faults] " << injected << " I/O errors injected\n";
}

// 6, one call at a time: the next write, fsync, rename or open of the
// volume's data folder fails once. The PUT it belongs to is answered 5xx,
// the value before it stays, and the very next PUT (the call succeeds
// again) is acknowledged: a failed fsync is not retried and then trusted,
// it fails the write it belonged to.
TEST(Faults, AnIoErrorOnAnyStepOfAWriteFailsThatWriteAndKeepsThePreviousValue) {
  it::TempDir control_dir;
  const auto control = control_dir.path() / "io-faults";
  write_fault_rules(control, "");
  ClusterShape shape = shape_of(1, 1);
  shape.first_volume_env = {"LD_PRELOAD=" KALAVARA_IO_FAULTS_LIB,
                            "KALAVARA_IO_FAULTS=" + control.string(),
                            "KALAVARA_IO_FAULTS_PREFIX={volume0}"};
  WorkloadSettings no_load = load_with_seed();
  no_load.clients = 0;
  FaultRun run(shape, no_load);
  ASSERT_TRUE(run.start());
  const auto port = run.master_port().load();
  const auto log_lines = [&] { return injected_faults(control); };
  int tag = 0;
  for (const char* call : {"write", "fsync", "rename", "open"}) {
    const std::string target = std::string("/store/io-") + call;
    const auto before = make_value(static_cast<std::uint64_t>(++tag), 5000);
    auto put = it::put_via_master(port, target, before);
    ASSERT_EQ(put.second.status, 201) << call << ": " << put.describe();

    const auto injected = log_lines();
    write_fault_rules(control, std::string(call) + " once " + std::to_string(++tag) + "\n");
    const auto failing = make_value(static_cast<std::uint64_t>(tag), 6000);
    put = it::put_via_master(port, target, failing);
    EXPECT_EQ(log_lines(), injected + 1) << call << ": the fault did not hit the write";
    EXPECT_GE(put.second.status, 500) << call << ": " << put.describe();
    EXPECT_NE(put.second.status, 504) << call << ": " << put.describe();
    auto read = it::get_via_master(port, target);
    ASSERT_EQ(read.second.status, 200) << call << ": " << read.describe();
    EXPECT_EQ(read.second.body, before) << call << ": the failed write replaced the value";

    const auto after = make_value(static_cast<std::uint64_t>(++tag), 7000);
    put = it::put_via_master(port, target, after);
    EXPECT_EQ(put.second.status, 201) << call << ": " << put.describe();
    read = it::get_via_master(port, target);
    EXPECT_EQ(read.second.body, after) << call;
  }
  // A read error on GET is a 5xx, never a short or wrong body.
  write_fault_rules(control, "read always\n");
  const auto read = it::get_via_master(port, "/store/io-write");
  EXPECT_GE(read.second.status, 500) << read.describe();
  write_fault_rules(control, "");
  EXPECT_EQ(it::get_via_master(port, "/store/io-write").second.status, 200);
}

}  // namespace
}  // namespace kalavara::faults
