#include "master/jobs.hpp"
#include "common/spawn.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cstdio>

#include "common/internal_api.hpp"
#include "common/json_fields.hpp"
#include "common/when_all.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using Kind = Maintenance::Outcome::Kind;

constexpr std::size_t kScanBatch = 256;
constexpr std::size_t kCountBatch = 4096;
constexpr std::size_t kBlobBatch = 1000;
constexpr auto kSaveInterval = std::chrono::seconds(2);
// Several masters: how often each reads the stored jobs (and the leader
// takes queued ones).
constexpr auto kFollowInterval = std::chrono::seconds(1);
constexpr std::string_view kMasterStopped =
    "the master stopped while the job ran; run it again to resume";
constexpr std::string_view kLeadershipLost =
    "this master stopped leading the background work; run the job again to resume";
// Passes a retire job makes over the index: a write whose upload began
// before the volume started draining may still name it once.
constexpr int kRetirePasses = 3;

std::uint64_t now_seconds() { return wall_clock_micros() / 1'000'000; }

std::string new_job_id(JobKind kind) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(wall_clock_micros()));
  return std::string(hex) + "-" + std::string(job_kind_name(kind));
}

json::object job_object(const JobStatus& job) {
  json::object object;
  object["id"] = job.id;
  object["kind"] = job.kind;
  object["state"] = job.state;
  if (!job.target.empty()) object["target"] = job.target;
  object["done_items"] = job.done_items;
  object["total_items"] = job.total_items;
  object["changed_items"] = job.changed_items;
  object["skipped_items"] = job.skipped_items;
  object["failed_items"] = job.failed_items;
  object["bytes_moved"] = job.bytes_moved;
  json::array errors;
  for (const auto& error : job.errors) errors.emplace_back(error);
  object["errors"] = std::move(errors);
  object["started"] = job.started;
  object["finished"] = job.finished;
  return object;
}

Result<JobStatus> job_from(const json::value& value) {
  const auto* object = value.if_object();
  const Error bad{Errc::kPeerFailed, "not a job"};
  if (object == nullptr) return bad;
  JobStatus job;
  auto id = json_string(*object, "id");
  auto kind = json_string(*object, "kind");
  auto state = json_string(*object, "state");
  if (!id || !kind || !state) return bad;
  job.id = std::move(*id);
  job.kind = std::move(*kind);
  job.state = std::move(*state);
  job.target = json_string(*object, "target").value_or("");
  for (auto [field, name] :
       {std::pair{&job.done_items, "done_items"}, std::pair{&job.total_items, "total_items"},
        std::pair{&job.changed_items, "changed_items"},
        std::pair{&job.skipped_items, "skipped_items"},
        std::pair{&job.failed_items, "failed_items"}, std::pair{&job.bytes_moved, "bytes_moved"},
        std::pair{&job.started, "started"}, std::pair{&job.finished, "finished"}}) {
    const auto number = json_uint(*object, name);
    if (!number) return bad;
    *field = *number;
  }
  const auto* errors = object->if_contains("errors");
  if (errors == nullptr || !errors->is_array()) return bad;
  for (const auto& error : errors->get_array()) {
    if (!error.is_string()) return bad;
    job.errors.emplace_back(error.get_string());
  }
  return job;
}

}  // namespace

std::string_view job_kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kRebalance:
      return "rebalance";
    case JobKind::kRepair:
      return "repair";
    case JobKind::kScrub:
      return "scrub";
    case JobKind::kRetire:
      break;
  }
  return "remove-volume";
}

std::optional<JobKind> parse_job_kind(std::string_view name) {
  for (const auto kind :
       {JobKind::kRebalance, JobKind::kRepair, JobKind::kScrub, JobKind::kRetire}) {
    if (job_kind_name(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string job_json(const JobStatus& job) { return json::serialize(job_object(job)); }

Result<JobStatus> parse_job(std::string_view text) {
  boost::system::error_code ec;
  const auto value = json::parse(text, ec);
  if (ec) return Error{Errc::kPeerFailed, "not a job: " + ec.message()};
  return job_from(value);
}

std::string jobs_json(const std::vector<JobStatus>& jobs) {
  json::array array;
  for (const auto& job : jobs) array.emplace_back(job_object(job));
  return json::serialize(array) + "\n";
}

Result<std::vector<JobStatus>> parse_jobs(std::string_view text) {
  boost::system::error_code ec;
  const auto value = json::parse(text, ec);
  if (ec || !value.is_array()) return Error{Errc::kPeerFailed, "not a list of jobs"};
  std::vector<JobStatus> jobs;
  for (const auto& item : value.get_array()) {
    auto job = job_from(item);
    if (!job) return job.error();
    jobs.push_back(std::move(job).value());
  }
  return jobs;
}

// ---------------------------------------------------------------------------

struct JobRunner::Running {
  JobKind kind;
  std::string id;
  std::chrono::steady_clock::time_point last_save{};
};

JobRunner::JobRunner(IndexStore& store, KeyProtocol& protocol, Maintenance& maintenance,
                     VolumeRegistry& registry, const VolumeHealth& health, RemovalWorker& removals,
                     Settings settings, const Leadership& leadership)
    : store_(store),
      protocol_(protocol),
      maintenance_(maintenance),
      registry_(registry),
      health_(health),
      removals_(removals),
      settings_(settings),
      leadership_(leadership) {}

asio::awaitable<Status> JobRunner::load() {
  auto stored = co_await store_.jobs();
  if (!stored) co_return stored.error();
  for (const auto& text : *stored) {
    auto job = parse_job(text);
    if (!job) {
      spdlog::warn("ignoring a stored job that does not parse: {}", job.error().message);
      continue;
    }
    // Several masters: the job may run on another one; the leader fails
    // those whose master is gone when it takes over (adopt_orphans).
    if (job->state == "running" && !leadership_.shared()) {
      if (auto saved = co_await fail_stored(*job, kMasterStopped); !saved) co_return saved;
    }
    std::lock_guard lock(mutex_);
    jobs_[job->id] = std::move(job).value();
  }
  co_return Status{};
}

asio::awaitable<Status> JobRunner::fail_stored(JobStatus& job, std::string_view why) {
  job.state = "failed";
  job.finished = now_seconds();
  if (job.errors.size() < kMaxJobErrors) job.errors.emplace_back(why);
  co_return co_await store_.put_job(job.id, job_json(job));
}

std::optional<Error> JobRunner::interruption() const {
  if (stopped_) return Error{Errc::kUnavailable, "the master is stopping"};
  if (!leadership_.leading()) {
    return Error{Errc::kUnavailable, std::string(kLeadershipLost)};
  }
  return std::nullopt;
}

void JobRunner::start(const asio::any_io_executor& executor) {
  executor_ = executor;
  if (leadership_.shared()) {
    follow_timer_.emplace(executor);
    asio::co_spawn(executor, follow_store(), log_if_thrown("following the stored jobs"));
  }
  if (settings_.repair_interval.count() > 0) {
    schedule_timer_.emplace(executor);
    asio::co_spawn(executor, schedule_repairs(), log_if_thrown("the repair schedule"));
  }
}

void JobRunner::stop() {
  stopped_ = true;
  for (auto* timer : {&schedule_timer_, &follow_timer_}) {
    if (*timer) asio::post((*timer)->get_executor(), [timer] { (*timer)->cancel(); });
  }
}

std::vector<JobStatus> JobRunner::list() const {
  std::lock_guard lock(mutex_);
  std::vector<JobStatus> jobs;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) jobs.push_back(it->second);
  return jobs;
}

asio::awaitable<Result<std::string>> JobRunner::launch(JobKind kind, std::string target) {
  if (!executor_ || stopped_) co_return Error{Errc::kUnavailable, "the master is stopping"};
  auto job = std::make_shared<Running>();
  job->kind = kind;
  job->id = new_job_id(kind);
  if (leadership_.shared()) {
    // Whichever master is asked, the leading one runs it: this one stores
    // it as queued, and the leader takes it from the store.
    if (auto status = co_await refresh(); !status) co_return status.error();
    std::lock_guard lock(mutex_);
    for (const auto& [id, status] : jobs_) {
      if (status.kind == job_kind_name(kind) && status.finished == 0) {
        co_return Error{Errc::kConflict, "a " + std::string(job_kind_name(kind)) + " job is " +
                                             status.state + ": " + id};
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (const auto running = running_.find(kind); running != running_.end()) {
      co_return Error{Errc::kConflict, "a " + std::string(job_kind_name(kind)) +
                                           " job is running: " + running->second->id};
    }
    if (!leadership_.shared()) running_[kind] = job;
  }
  const auto release = [&] {
    std::lock_guard lock(mutex_);
    if (!leadership_.shared()) running_.erase(kind);
  };
  if (kind == JobKind::kRetire) {
    const auto volumes = registry_.snapshot();
    if (!std::binary_search(volumes->all.begin(), volumes->all.end(), target)) {
      release();
      co_return Error{Errc::kNotFound, "volume " + target + " is not registered"};
    }
    const bool last = volumes->writable.size() == 1 && volumes->writable.front() == target;
    if (last) {
      release();
      co_return Error{Errc::kBadInput,
                      "volume " + target + " is the only one taking writes: add another first"};
    }
    if (auto drained = co_await registry_.drain(target); !drained) {
      release();
      co_return drained.error();
    }
    spdlog::info("volume {} is draining: it takes no new writes", target);
  }
  {
    std::lock_guard lock(mutex_);
    auto& status = jobs_[job->id];
    status.id = job->id;
    status.kind = job_kind_name(kind);
    status.target = target;
    status.started = now_seconds();
    if (leadership_.shared()) status.state = "queued";
  }
  if (leadership_.shared()) {
    std::string state;
    {
      std::lock_guard lock(mutex_);
      state = job_json(jobs_[job->id]);
    }
    if (auto saved = co_await store_.put_job(job->id, state); !saved) {
      std::lock_guard lock(mutex_);
      jobs_.erase(job->id);
      co_return saved.error();
    }
    spdlog::info("job {} queued for the leading master", job->id);
    co_return job->id;
  }
  co_await begin(job);
  co_return job->id;
}

asio::awaitable<void> JobRunner::begin(std::shared_ptr<Running> job) {
  {
    std::lock_guard lock(mutex_);
    auto& status = jobs_[job->id];
    status.state = "running";
    status.started = now_seconds();
  }
  co_await save(*job, true);
  spdlog::info("job {} started", job->id);
  asio::co_spawn(*executor_, run(job), log_if_thrown("a maintenance job"));
}

asio::awaitable<Status> JobRunner::refresh() {
  auto stored = co_await store_.jobs();
  if (!stored) co_return stored.error();
  std::lock_guard lock(mutex_);
  for (const auto& text : *stored) {
    auto job = parse_job(text);
    if (!job) continue;
    // This master's own running jobs are newer here than in the store.
    if (!runs_here(job->id)) jobs_[job->id] = std::move(job).value();
  }
  co_return Status{};
}

bool JobRunner::runs_here(const std::string& id) const {
  return std::any_of(running_.begin(), running_.end(),
                     [&](const auto& entry) { return entry.second->id == id; });
}

asio::awaitable<void> JobRunner::follow_store() {
  bool was_leading = false;
  while (!stopped_) {
    if (auto status = co_await refresh(); !status) {
      spdlog::debug("cannot read the stored jobs: {}", status.error().message);
    } else if (leadership_.leading()) {
      if (!was_leading) co_await adopt_orphans();
      was_leading = true;
      co_await take_queued();
    }
    if (!leadership_.leading()) was_leading = false;
    follow_timer_->expires_after(kFollowInterval);
    co_await follow_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> JobRunner::adopt_orphans() {
  // Jobs stored as running that this master does not run: their master
  // stopped, or lost the leadership (and stops them itself at its next step).
  std::vector<JobStatus> orphans;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, status] : jobs_) {
      if (status.state == "running" && !runs_here(id)) orphans.push_back(status);
    }
  }
  for (auto& job : orphans) {
    spdlog::warn("job {} was running on a master that stopped leading: marked failed", job.id);
    if (auto saved = co_await fail_stored(job, kMasterStopped); saved) {
      std::lock_guard lock(mutex_);
      jobs_[job.id] = job;
    }
  }
}

asio::awaitable<void> JobRunner::take_queued() {
  std::vector<std::shared_ptr<Running>> taken;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, status] : jobs_) {  // by id: oldest first
      if (status.state != "queued") continue;
      const auto kind = parse_job_kind(status.kind);
      if (!kind || running_.count(*kind) != 0) continue;
      auto job = std::make_shared<Running>();
      job->kind = *kind;
      job->id = id;
      running_[*kind] = job;
      taken.push_back(std::move(job));
    }
  }
  for (auto& job : taken) co_await begin(std::move(job));
}

void JobRunner::account(Running& job, const Maintenance::Outcome& outcome, std::string_view what) {
  std::lock_guard lock(mutex_);
  auto& status = jobs_[job.id];
  ++status.done_items;
  status.bytes_moved += outcome.bytes_moved;
  switch (outcome.kind) {
    case Kind::kUnchanged:
      break;
    case Kind::kChanged:
      ++status.changed_items;
      break;
    case Kind::kSkipped:
      ++status.skipped_items;
      break;
    case Kind::kFailed:
      ++status.failed_items;
      if (status.errors.size() < kMaxJobErrors) {
        status.errors.push_back(std::string(what) + ": " + outcome.note);
      }
      break;
  }
}

asio::awaitable<void> JobRunner::save(Running& job, bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - job.last_save < kSaveInterval) co_return;
  job.last_save = now;
  std::string state;
  {
    std::lock_guard lock(mutex_);
    state = job_json(jobs_[job.id]);
  }
  if (auto saved = co_await store_.put_job(job.id, state); !saved) {
    spdlog::warn("could not store the state of job {}: {}", job.id, saved.error().message);
  }
}

asio::awaitable<void> JobRunner::run(std::shared_ptr<Running> job) {
  Status result;
  switch (job->kind) {
    case JobKind::kRebalance:
    case JobKind::kRepair:
      result = co_await run_over_keys(*job);
      break;
    case JobKind::kScrub:
      result = co_await run_scrub(*job);
      break;
    case JobKind::kRetire:
      result = co_await run_retire(*job);
      break;
  }
  {
    std::lock_guard lock(mutex_);
    auto& status = jobs_[job->id];
    if (!result && status.errors.size() < kMaxJobErrors) {
      status.errors.push_back(result.error().message);
    }
    status.state = result && status.failed_items == 0 ? "done" : "failed";
    status.finished = now_seconds();
    spdlog::info("job {} {}: {} of {} items, {} changed, {} skipped, {} failed", job->id,
                 status.state, status.done_items, status.total_items, status.changed_items,
                 status.skipped_items, status.failed_items);
  }
  co_await save(*job, true);
  std::lock_guard lock(mutex_);
  running_.erase(job->kind);
}

asio::awaitable<Status> JobRunner::run_over_keys(Running& job) {
  // Counted first, so progress has a total (a scan of the index only).
  std::uint64_t total = 0;
  for (std::string after;;) {
    auto batch = co_await protocol_.scan(after, kCountBatch);
    if (!batch) co_return batch.error();
    if (batch->empty()) break;
    after = batch->back().key;
    total += static_cast<std::uint64_t>(
        std::count_if(batch->begin(), batch->end(),
                      [](const KeyRecord& entry) { return entry.record.committed(); }));
  }
  {
    std::lock_guard lock(mutex_);
    jobs_[job.id].total_items = total;
  }
  for (std::string after;;) {
    if (auto why = interruption()) co_return *why;
    auto batch = co_await protocol_.scan(after, kScanBatch);
    if (!batch) co_return batch.error();
    if (batch->empty()) break;
    after = batch->back().key;
    std::erase_if(*batch, [](const KeyRecord& entry) { return !entry.record.committed(); });
    for (std::size_t first = 0; first < batch->size(); first += settings_.concurrency) {
      const auto last = std::min(batch->size(), first + settings_.concurrency);
      std::vector<asio::awaitable<Maintenance::Outcome>> tasks;
      for (std::size_t i = first; i < last; ++i) {
        tasks.push_back(job.kind == JobKind::kRebalance ? maintenance_.rebalance((*batch)[i])
                                                        : maintenance_.repair((*batch)[i]));
      }
      const auto outcomes = co_await when_all(std::move(tasks));
      for (std::size_t i = first; i < last; ++i) {
        account(job, outcomes[i - first], "key " + (*batch)[i].key);
      }
    }
    co_await save(job, false);
  }
  co_return Status{};
}

asio::awaitable<Status> JobRunner::run_scrub(Running& job) {
  std::vector<std::string> volumes;
  std::uint64_t total = 0;
  for (const auto& state : health_.snapshot()) {
    if (!state.up) continue;
    volumes.push_back(state.url);
    total += state.files;
  }
  {
    std::lock_guard lock(mutex_);
    jobs_[job.id].total_items = total;
  }
  // One file: re-read in its volume against its checksum; a corrupt copy is
  // replaced from a good one; a file nothing names goes.
  auto scrub_one = [this](std::string volume, BaseUrl url, internal::BlobEntry entry)
      -> asio::awaitable<std::pair<Maintenance::Outcome, std::string>> {
    const std::string what = "key " + entry.key + " on " + volume;
    if (entry.marker) {
      auto collected = co_await maintenance_.collect_if_orphan(volume, entry);
      co_return std::pair{std::move(collected), what};
    }
    auto verified = co_await internal::send_verify(url, entry.key, entry.version);
    if (!verified && verified.error().code == Errc::kNotFound) {
      co_return std::pair{Maintenance::Outcome{}, what};  // gone meanwhile
    }
    if (!verified && verified.error().code != Errc::kConflict) {
      co_return std::pair{Maintenance::Outcome{Kind::kFailed, 0, verified.error().message}, what};
    }
    if (verified) {
      auto collected = co_await maintenance_.collect_if_orphan(volume, entry);
      co_return std::pair{std::move(collected), what};
    }
    // Corrupt: quarantined by the volume, never served again. If it was a
    // copy the index names, a good copy replaces it.
    auto current = co_await protocol_.read(entry.key);
    std::string note = "corrupt copy of version " + std::to_string(entry.version) + " found";
    if (current && current->record && current->record->committed() &&
        current->record->version == entry.version) {
      const KeyRecord named{entry.key, *current->record};
      auto repaired = co_await maintenance_.repair(named, volume);
      if (repaired.kind == Kind::kFailed) co_return std::pair{repaired, what};
      note += repaired.kind == Kind::kChanged ? " and replaced" : " (not replaced yet)";
    }
    co_return std::pair{Maintenance::Outcome{Kind::kChanged, 0, note}, what};
  };
  for (const auto& volume : volumes) {
    auto url = parse_base_url(volume);
    if (!url) continue;
    for (std::string after;;) {
      if (auto why = interruption()) co_return *why;
      auto page = co_await internal::list_blobs(*url, after, kBlobBatch);
      if (!page) {
        account(job, {Kind::kFailed, 0, page.error().message}, "listing " + volume);
        break;
      }
      for (std::size_t first = 0; first < page->entries.size(); first += settings_.concurrency) {
        const auto last = std::min(page->entries.size(), first + settings_.concurrency);
        std::vector<asio::awaitable<std::pair<Maintenance::Outcome, std::string>>> tasks;
        for (std::size_t i = first; i < last; ++i) {
          tasks.push_back(scrub_one(volume, *url, page->entries[i]));
        }
        for (const auto& [outcome, what] : co_await when_all(std::move(tasks))) {
          account(job, outcome, what);
          if (outcome.kind == Kind::kChanged && !outcome.note.empty()) {
            std::lock_guard lock(mutex_);
            auto& errors = jobs_[job.id].errors;
            if (errors.size() < kMaxJobErrors) errors.push_back(what + ": " + outcome.note);
          }
        }
      }
      co_await save(job, false);
      if (page->next.empty()) break;
      after = page->next;
    }
  }
  co_return Status{};
}

asio::awaitable<Status> JobRunner::run_retire(Running& job) {
  std::string target;
  {
    std::lock_guard lock(mutex_);
    target = jobs_[job.id].target;
  }
  const auto names_target = [&](const KeyRecord& entry) {
    const auto& volumes = entry.record.volumes;
    return std::find(volumes.begin(), volumes.end(), target) != volumes.end();
  };
  std::uint64_t remaining = 0;
  for (int pass = 0; pass < kRetirePasses; ++pass) {
    remaining = 0;
    std::uint64_t named = 0;
    for (std::string after;;) {
      if (auto why = interruption()) co_return *why;
      auto batch = co_await protocol_.scan(after, kScanBatch);
      if (!batch) co_return batch.error();
      if (batch->empty()) break;
      after = batch->back().key;
      std::erase_if(*batch, [&](const KeyRecord& entry) { return !names_target(entry); });
      named += batch->size();
      for (const auto& entry : *batch) {
        if (entry.record.tombstone()) {
          // A deleted key's copy still to be removed there: now, while the
          // volume is still known.
          std::vector<PendingRemoval> removal{{target, entry.key, entry.record.version, 0}};
          std::vector<std::string> no_markers;
          co_await removals_.remove_now(std::move(removal), health_, std::move(no_markers));
          account(job, {Kind::kChanged, 0, {}}, "key " + entry.key);
          continue;
        }
        const auto outcome = co_await maintenance_.rebalance(entry);
        if (outcome.kind != Kind::kChanged && outcome.kind != Kind::kUnchanged) ++remaining;
        account(job,
                outcome.kind == Kind::kFailed
                    ? outcome
                    : Maintenance::Outcome{outcome.kind, outcome.bytes_moved, {}},
                "key " + entry.key);
      }
      co_await save(job, false);
    }
    {
      std::lock_guard lock(mutex_);
      auto& status = jobs_[job.id];
      if (pass == 0) status.total_items = named;
    }
    spdlog::debug("job {}: pass {} found {} keys on {}, {} left", job.id, pass + 1, named, target,
                  remaining);
    if (named == 0) break;
  }
  if (remaining > 0) {
    co_return Error{Errc::kInternal, "volume " + target + " still holds " +
                                         std::to_string(remaining) +
                                         " keys; it stays draining: run the job again"};
  }
  // The copies moved off it are removed after the old-version grace: the
  // volume is forgotten once they are, so nothing stays behind on it.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            protocol_.settings().old_version_grace) +
                        std::chrono::seconds(60);
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  spdlog::debug("job {}: waiting for the removals queued on {}", job.id, target);
  for (;;) {
    auto pending = co_await protocol_.pending_removals(target, 1);
    if (!pending) co_return pending.error();
    if (pending->empty()) break;
    spdlog::debug("job {}: a removal of {} on {} is still queued", job.id, pending->front().key,
                  target);
    if (stopped_ || std::chrono::steady_clock::now() > deadline) {
      co_return Error{Errc::kInternal, "removals on volume " + target +
                                           " are still queued; it stays draining: run the job "
                                           "again once it answers"};
    }
    timer.expires_after(std::chrono::milliseconds(500));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (auto forgotten = co_await registry_.forget(target); !forgotten) co_return forgotten;
  spdlog::info("volume {} retired: it holds nothing the index names, and is forgotten", target);
  co_return Status{};
}

asio::awaitable<void> JobRunner::schedule_repairs() {
  while (!stopped_) {
    schedule_timer_->expires_after(settings_.repair_interval);
    co_await schedule_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    if (!leadership_.leading()) continue;  // the leader's schedule starts them
    auto started = co_await launch(JobKind::kRepair);
    if (!started && started.error().code != Errc::kConflict) {
      spdlog::warn("scheduled repair not started: {}", started.error().message);
    }
  }
}

void JobRunner::collect(metrics::Writer& out) const {
  using Type = metrics::Writer::Type;
  std::map<std::string, JobStatus> newest;
  for (auto& job : list()) newest.try_emplace(job.kind, std::move(job));
  out.family("kalavara_master_job_running", Type::kGauge,
             "1 while a maintenance job of the kind runs.");
  for (const auto& [kind, job] : newest) {
    out.sample("kalavara_master_job_running", {{"kind", kind}},
               std::uint64_t{job.state == "running" ? 1U : 0U});
  }
  out.family("kalavara_master_job_items", Type::kGauge,
             "The newest job of each kind: items (keys, or files for a scrub) by count: total, "
             "done (looked at), changed, skipped, failed.");
  for (const auto& [kind, job] : newest) {
    for (const auto& [count, value] :
         {std::pair{"total", job.total_items}, std::pair{"done", job.done_items},
          std::pair{"changed", job.changed_items}, std::pair{"skipped", job.skipped_items},
          std::pair{"failed", job.failed_items}}) {
      out.sample("kalavara_master_job_items", {{"kind", kind}, {"count", count}}, value);
    }
  }
  out.family("kalavara_master_job_moved_bytes", Type::kGauge,
             "Bytes the newest job of each kind copied between volumes.");
  for (const auto& [kind, job] : newest) {
    out.sample("kalavara_master_job_moved_bytes", {{"kind", kind}}, job.bytes_moved);
  }
  out.family("kalavara_master_job_last_finished_timestamp_seconds", Type::kGauge,
             "When the newest finished job of each kind ended, in seconds since the Unix epoch, "
             "by its end state (done or failed).");
  for (const auto& [kind, job] : newest) {
    if (job.finished == 0) continue;
    out.sample("kalavara_master_job_last_finished_timestamp_seconds",
               {{"kind", kind}, {"state", job.state}}, job.finished);
  }
}

}  // namespace kalavara
