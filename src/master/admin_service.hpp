// The master's maintenance endpoints: each starts a background job
// (master/jobs.hpp) and answers at once.
//
//   POST /admin/rebalance          202 {"id": ...}: move every value to its placement
//   POST /admin/repair             202: re-create missing or bad copies up to N
//   POST /admin/scrub              202: re-read every copy against its checksum, replace
//                                  corrupt ones, remove orphans
//   POST /admin/remove-volume      body: a volume's URL; 202: drain it, then forget it
//   GET  /admin/jobs               200 JSON: every job, newest first
//
// A second job of a kind that runs answers 409. With an admin token
// (--admin-token-file) every endpoint needs "Authorization: Bearer <token>";
// anything else answers 401. Thread-safe.
#pragma once

#include "common/request_auth.hpp"
#include "common/router.hpp"
#include "master/jobs.hpp"

namespace kalavara {

class AdminService {
 public:
  // `jobs` must outlive the service.
  explicit AdminService(JobRunner& jobs);

  // Adds the endpoints above to `router`, each behind `access`
  // (common/request_auth.hpp); `this` and what `access` points to must
  // outlive the router.
  void add_routes(http::Router& router, http::Access access = {});

 private:
  using Answer = http::asio::awaitable<http::Reply>;
  Answer start(http::Exchange& exchange, JobKind kind);
  Answer list(http::Exchange& exchange);

  JobRunner& jobs_;
};

}  // namespace kalavara
