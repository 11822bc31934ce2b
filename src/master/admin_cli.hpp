// The admin commands of kalavara-master: `rebalance`, `repair`, `scrub`,
// `remove-volume URL`, `jobs` and `backup`, run against a master that is up
// (`--master URL`). Each job command starts the job and waits for it: on a
// terminal with a progress bar (items, bytes moved, rate, ETA) on stderr,
// otherwise one plain line every few seconds; then a summary on stdout.
#pragma once

#include <string>

#include "common/url.hpp"
#include "master/jobs.hpp"

namespace kalavara {

// Starts a job of `kind` on `master` (`target`: the volume to retire) and
// waits for it. Returns the exit code: 0 when the job is done, 1 when it
// failed or could not be started (the reason on stderr).
int run_job_command(JobKind kind, const BaseUrl& master, const std::string& target);

// Prints the master's jobs, newest first, one line each. 0, or 1 when the
// master cannot be asked.
int print_jobs(const BaseUrl& master);

// Has the master write a backup of its index (POST /admin/backup), waiting
// for it, and prints where it went on stdout. 0, or 1 when the master
// refused or failed (its reason on stderr) or cannot be asked.
int run_backup_command(const BaseUrl& master);

}  // namespace kalavara
