#include "master/admin_service.hpp"

#include <boost/json.hpp>

#include "common/http_server.hpp"
#include "common/url.hpp"

namespace kalavara {
namespace {

using http::HttpStatus;
using http::Verb;

// A remove-volume body is one URL; anything longer is not one.
constexpr std::size_t kMaxAdminBody = 4096;

}  // namespace

AdminService::AdminService(JobRunner& jobs, Backups* backups) : jobs_(jobs), backups_(backups) {}

void AdminService::add_routes(http::Router& router, http::Access access) {
  using Match = http::Router::Match;
  for (const auto kind :
       {JobKind::kRebalance, JobKind::kRepair, JobKind::kScrub, JobKind::kRetire}) {
    router.add("/admin/" + std::string(job_kind_name(kind)), Match::kExact, {Verb::post},
               http::guarded(access, [this, kind](http::Exchange& exchange) {
                 return start(exchange, kind);
               }));
  }
  router.add("/admin/jobs", Match::kExact, {Verb::get},
             http::guarded(access, [this](http::Exchange& exchange) { return list(exchange); }));
  router.add("/admin/backup", Match::kExact, {Verb::post},
             http::guarded(access, [this](http::Exchange& exchange) { return backup(exchange); }));
}

AdminService::Answer AdminService::start(http::Exchange& exchange, JobKind kind) {
  std::string target;
  if (kind == JobKind::kRetire) {
    auto body = co_await exchange.read_body(kMaxAdminBody);
    if (!body) co_return http::error_response(body.error());
    auto url = parse_base_url(*body);
    if (!url) co_return http::error_response(url.error());
    target = url->text;
  }
  auto id = co_await jobs_.launch(kind, std::move(target));
  if (!id) co_return http::error_response(id.error());
  boost::json::object answer;
  answer["id"] = *id;
  auto response = http::json_response(boost::json::serialize(answer) + "\n");
  response.result(HttpStatus::accepted);
  co_return response;
}

AdminService::Answer AdminService::list(http::Exchange&) {
  co_return http::json_response(jobs_json(jobs_.list()));
}

AdminService::Answer AdminService::backup(http::Exchange&) {
  if (backups_ == nullptr) {
    co_return http::error_response(
        {Errc::kConflict,
         "this master's index is in etcd: back it up with etcdctl snapshot save "
         "(docs/scaling.md)"});
  }
  auto report = co_await backups_->write();
  if (!report) co_return http::error_response(report.error());
  co_return http::json_response(backup_report_json(*report));
}

}  // namespace kalavara
