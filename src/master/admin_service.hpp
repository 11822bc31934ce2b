// The master's maintenance endpoints: each starts a background job
// (master/jobs.hpp) and answers at once.
//
//   POST /admin/rebalance          202 {"id": ...}: move every value to its placement
//   POST /admin/repair             202: re-create missing or bad copies up to N
//   POST /admin/scrub              202: re-read every copy against its checksum, replace
//                                  corrupt ones, remove orphans
//   POST /admin/remove-volume      body: a volume's URL; 202: drain it, then forget it
//   GET  /admin/jobs               200 JSON: every job, newest first
//   POST /admin/backup             200 JSON (master/backup.hpp): a backup of the index,
//                                  written before the answer; 409 when backups are off
//                                  or one runs, 507 when the disk is full, 500 otherwise
//
// A second job of a kind that runs answers 409. With an admin token
// (--admin-token-file) every endpoint needs "Authorization: Bearer <token>";
// anything else answers 401. Thread-safe.
#pragma once

#include "common/request_auth.hpp"
#include "common/router.hpp"
#include "master/backup.hpp"
#include "master/jobs.hpp"

namespace kalavara {

class AdminService {
 public:
  // `jobs`, and `backups` when given, must outlive the service; without
  // `backups` (an index in etcd) POST /admin/backup answers 409 with how to
  // back that index up instead.
  explicit AdminService(JobRunner& jobs, Backups* backups = nullptr);

  // Adds the endpoints above to `router`, each behind `access`
  // (common/request_auth.hpp); `this` and what `access` points to must
  // outlive the router.
  void add_routes(http::Router& router, http::Access access = {});

 private:
  using Answer = http::asio::awaitable<http::Reply>;
  Answer start(http::Exchange& exchange, JobKind kind);
  Answer list(http::Exchange& exchange);
  Answer backup(http::Exchange& exchange);

  JobRunner& jobs_;
  Backups* backups_;
};

}  // namespace kalavara
