// Maintenance jobs — rebalance, repair, scrub, retiring a volume — run in
// the background by the master: at most one of a kind at a time, their
// progress kept in the index store (so a second index backend carries it),
// and a job that was running when the master stopped marked failed at the
// next start. Every job is safe to run again: each step it takes is
// re-decided from what the index and the volumes hold at that moment.
//
// With several masters on one index (master/leadership.hpp), exactly one
// runs jobs: the leader. A job launched through any master is stored as
// "queued"; every master reads the stored jobs each second (so each lists
// them all), and the leader takes the queued ones, oldest first, one per
// kind at a time. A job stops at its next step when its master stops
// leading, and a new leader marks the jobs stored as running that it does
// not run itself failed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.hpp"
#include "master/index_store.hpp"
#include "master/key_protocol.hpp"
#include "master/leadership.hpp"
#include "master/maintenance.hpp"
#include "master/removal_worker.hpp"
#include "master/volume_health.hpp"
#include "master/volume_registry.hpp"

namespace kalavara {

enum class JobKind { kRebalance, kRepair, kScrub, kRetire };
std::string_view job_kind_name(JobKind kind);  // "rebalance", "repair", "scrub", "remove-volume"
std::optional<JobKind> parse_job_kind(std::string_view name);

// A job as GET /admin/jobs shows it (one JSON object each).
struct JobStatus {
  std::string id;
  std::string kind;
  std::string state = "running";    // "queued" (several masters), "running", "done" or "failed"
  std::string target;               // the volume a remove-volume job retires
  std::uint64_t done_items = 0;     // keys (or files, for a scrub) looked at
  std::uint64_t total_items = 0;    // how many there are (counted at the start)
  std::uint64_t changed_items = 0;  // moved, repaired, removed
  std::uint64_t skipped_items = 0;  // left for a later run (a key busy, a volume down)
  std::uint64_t failed_items = 0;   // could not be done: see errors
  std::uint64_t bytes_moved = 0;
  // The first kMaxJobErrors failures and findings (a corrupt copy found and
  // replaced is reported here without failing the job).
  std::vector<std::string> errors;
  std::uint64_t started = 0;   // seconds since the epoch
  std::uint64_t finished = 0;  // 0 while running
  bool operator==(const JobStatus&) const = default;
};
inline constexpr std::size_t kMaxJobErrors = 100;

std::string job_json(const JobStatus& job);
// Fails with kPeerFailed when `json` is not a job object.
Result<JobStatus> parse_job(std::string_view json);
// A JSON array of jobs, and its reader.
std::string jobs_json(const std::vector<JobStatus>& jobs);
Result<std::vector<JobStatus>> parse_jobs(std::string_view json);

class JobRunner {
 public:
  struct Settings {
    // Keys handled at once by a job (its throttle).
    std::size_t concurrency = 4;
    // A repair job is started this often (0: never on its own).
    std::chrono::seconds repair_interval{0};
  };

  // Everything given must outlive the runner.
  JobRunner(IndexStore& store, KeyProtocol& protocol, Maintenance& maintenance,
            VolumeRegistry& registry, const VolumeHealth& health, RemovalWorker& removals,
            Settings settings, const Leadership& leadership = sole_master());

  // Loads the stored jobs; a master alone marks one stored as running
  // failed (it stopped while the job ran). Fails when the store fails.
  boost::asio::awaitable<Status> load();

  // Runs started jobs (and the repair schedule) on `executor` until stop().
  void start(const boost::asio::any_io_executor& executor);
  void stop();

  // Starts a job of `kind` (`target`: the volume to retire) and returns its
  // id; several masters: queues it for the leader. Fails with kConflict
  // while a job of that kind runs (or is queued), kNotFound when
  // retiring a volume that is not registered, kBadInput for a volume that
  // is the last one new writes may go to.
  boost::asio::awaitable<Result<std::string>> launch(JobKind kind, std::string target = {});

  // Every job known, newest first (several masters: as stored at most a
  // second ago, and this master's own jobs as they are now).
  std::vector<JobStatus> list() const;

  // Writes kalavara_master_job_*: for the newest job of each kind, whether
  // it runs, its progress and when it finished. Thread-safe.
  void collect(metrics::Writer& out) const;

 private:
  struct Running;
  boost::asio::awaitable<void> run(std::shared_ptr<Running> job);
  boost::asio::awaitable<Status> run_over_keys(Running& job);
  boost::asio::awaitable<Status> run_scrub(Running& job);
  boost::asio::awaitable<Status> run_retire(Running& job);
  boost::asio::awaitable<void> schedule_repairs();
  // Marks `job` running, stores it, and runs it in the background.
  boost::asio::awaitable<void> begin(std::shared_ptr<Running> job);
  // Stores `job` as failed for `why`.
  boost::asio::awaitable<Status> fail_stored(JobStatus& job, std::string_view why);
  // Why a running job must stop now, if it must.
  std::optional<Error> interruption() const;
  // Several masters: reads the stored jobs into jobs_ (all but the ones
  // this master runs).
  boost::asio::awaitable<Status> refresh();
  // Whether this master runs the job `id` now (mutex_ held).
  bool runs_here(const std::string& id) const;
  boost::asio::awaitable<void> follow_store();
  boost::asio::awaitable<void> adopt_orphans();
  boost::asio::awaitable<void> take_queued();
  // Records an item's outcome in the job's progress.
  void account(Running& job, const Maintenance::Outcome& outcome, std::string_view what);
  boost::asio::awaitable<void> save(Running& job, bool force);

  IndexStore& store_;
  KeyProtocol& protocol_;
  Maintenance& maintenance_;
  VolumeRegistry& registry_;
  const VolumeHealth& health_;
  RemovalWorker& removals_;
  const Settings settings_;
  const Leadership& leadership_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::optional<boost::asio::steady_timer> schedule_timer_;
  std::optional<boost::asio::steady_timer> follow_timer_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mutex_;
  std::map<std::string, JobStatus> jobs_;                // by id
  std::map<JobKind, std::shared_ptr<Running>> running_;  // at most one per kind
};

}  // namespace kalavara
