#include "master/admin_cli.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>

#include "common/blocking.hpp"
#include "common/http_client.hpp"
#include "master/backup.hpp"

namespace kalavara {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::seconds(1);
constexpr auto kPlainLineInterval = std::chrono::seconds(5);
// A backup is written before the master answers: copying a large index to
// another disk takes a while.
constexpr auto kBackupTimeout = std::chrono::hours(6);

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string eta_text(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lds", s);
  }
  return text;
}

// One progress line: "[=====>    ]  52% 5200/10000 items, 12.3 MiB moved, 850 items/s, ETA 6s".
std::string progress_line(const JobStatus& job, double rate, bool bar) {
  const double fraction = job.total_items == 0
                              ? 0.0
                              : std::min(1.0, static_cast<double>(job.done_items) /
                                                  static_cast<double>(job.total_items));
  std::string line;
  if (bar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    line += "[" + std::string(static_cast<std::size_t>(filled), '=') +
            (filled < kWidth ? ">" : "") +
            std::string(static_cast<std::size_t>(std::max(0, kWidth - filled - 1)), ' ') + "] ";
  }
  char text[256];
  const double left =
      static_cast<double>(job.total_items > job.done_items ? job.total_items - job.done_items : 0);
  std::snprintf(text, sizeof text, "%3.0f%% %llu/%llu items, %s moved, %.0f items/s, ETA %s",
                fraction * 100, static_cast<unsigned long long>(job.done_items),
                static_cast<unsigned long long>(job.total_items),
                human_bytes(job.bytes_moved).c_str(), rate,
                rate > 0 ? eta_text(left / rate).c_str() : "?");
  line += text;
  return line;
}

void print_summary(const JobStatus& job) {
  std::printf("%s %s: %llu items, %llu changed, %llu skipped, %llu failed, %s moved\n",
              job.id.c_str(), job.state.c_str(), static_cast<unsigned long long>(job.done_items),
              static_cast<unsigned long long>(job.changed_items),
              static_cast<unsigned long long>(job.skipped_items),
              static_cast<unsigned long long>(job.failed_items),
              human_bytes(job.bytes_moved).c_str());
  for (const auto& error : job.errors) std::printf("  %s\n", error.c_str());
}

asio::awaitable<Result<std::vector<JobStatus>>> fetch_jobs(const BaseUrl& master) {
  auto reply = co_await http::send_request(http::Verb::get, master, "/admin/jobs", std::string(),
                                           std::chrono::seconds(10), 64 * 1024 * 1024);
  if (!reply) co_return reply.error();
  if (reply->status != 200) {
    co_return Error{Errc::kPeerFailed,
                    "master answered " + std::to_string(reply->status) + ": " + reply->body};
  }
  co_return parse_jobs(reply->body);
}

asio::awaitable<int> follow(JobKind kind, BaseUrl master, std::string target) {
  const std::string path = "/admin/" + std::string(job_kind_name(kind));
  auto started = co_await http::send_request(http::Verb::post, master, path, target);
  if (!started) {
    std::fprintf(stderr, "kalavara-master: %s\n", started.error().message.c_str());
    co_return 1;
  }
  if (started->status != 202) {
    std::fprintf(stderr, "kalavara-master: %s answered %u: %s", master.text.c_str(),
                 started->status, started->body.c_str());
    co_return 1;
  }
  boost::system::error_code ec;
  const auto answer = boost::json::parse(started->body, ec);
  const auto* object = ec ? nullptr : answer.if_object();
  const auto* id_field = object ? object->if_contains("id") : nullptr;
  if (id_field == nullptr || !id_field->is_string()) {
    std::fprintf(stderr, "kalavara-master: the master's answer names no job\n");
    co_return 1;
  }
  const std::string id(id_field->get_string());
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::fprintf(stderr, "job %s started\n", id.c_str());

  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto began = Clock::now();
  auto last_line = began;
  for (;;) {
    auto jobs = co_await fetch_jobs(master);
    if (!jobs) {
      std::fprintf(stderr, "\nkalavara-master: %s\n", jobs.error().message.c_str());
      co_return 1;
    }
    const auto found = std::find_if(jobs->begin(), jobs->end(),
                                    [&](const JobStatus& job) { return job.id == id; });
    if (found == jobs->end()) {
      std::fprintf(stderr, "\nkalavara-master: the master no longer knows job %s\n", id.c_str());
      co_return 1;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
    const double rate = elapsed > 0 ? static_cast<double>(found->done_items) / elapsed : 0;
    if (terminal) {
      std::fprintf(stderr, "\r%s\033[K", progress_line(*found, rate, true).c_str());
    } else if (Clock::now() - last_line >= kPlainLineInterval || found->finished != 0) {
      std::fprintf(stderr, "%s %s\n", id.c_str(), progress_line(*found, rate, false).c_str());
      last_line = Clock::now();
    }
    // "queued" (several masters: until the leading one takes it) or "running".
    if (found->state != "done" && found->state != "failed") {
      timer.expires_after(kPollInterval);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (terminal) std::fprintf(stderr, "\n");
    print_summary(*found);
    co_return found->state == "done" ? 0 : 1;
  }
}

asio::awaitable<int> print_all(BaseUrl master) {
  auto jobs = co_await fetch_jobs(master);
  if (!jobs) {
    std::fprintf(stderr, "kalavara-master: %s\n", jobs.error().message.c_str());
    co_return 1;
  }
  for (const auto& job : *jobs) print_summary(job);
  co_return 0;
}

asio::awaitable<int> backup(BaseUrl master) {
  auto reply = co_await http::send_request(http::Verb::post, master, "/admin/backup", std::string(),
                                           kBackupTimeout);
  if (!reply) {
    std::fprintf(stderr, "kalavara-master: %s\n", reply.error().message.c_str());
    co_return 1;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "kalavara-master: %s answered %u: %s", master.text.c_str(), reply->status,
                 reply->body.c_str());
    co_return 1;
  }
  auto report = parse_backup_report(reply->body);
  if (!report) {
    std::fprintf(stderr, "kalavara-master: %s\n", report.error().message.c_str());
    co_return 1;
  }
  std::printf("backup %s: %s, %llu files (%llu SST), sequence %llu, taken %s, in %llu ms\n",
              report->path.c_str(), human_bytes(report->bytes).c_str(),
              static_cast<unsigned long long>(report->files),
              static_cast<unsigned long long>(report->sst_files),
              static_cast<unsigned long long>(report->sequence), report->taken.c_str(),
              static_cast<unsigned long long>(report->millis));
  co_return 0;
}

}  // namespace

int run_job_command(JobKind kind, const BaseUrl& master, const std::string& target) {
  asio::io_context io;
  return run_to_completion(io, follow(kind, master, target));
}

int print_jobs(const BaseUrl& master) {
  asio::io_context io;
  return run_to_completion(io, print_all(master));
}

int run_backup_command(const BaseUrl& master) {
  asio::io_context io;
  return run_to_completion(io, backup(master));
}

}  // namespace kalavara
