#include "faults/workload.hpp"

#include <map>
#include <optional>

#include "harness.hpp"

namespace kalavara::faults {
namespace {

using it::HeaderList;
using it::HttpConnection;
using it::HttpRequest;
using it::HttpResponse;

// One request on a connection of its own, within `timeout`. `sent` tells
// whether the request may have reached the server: false only when the
// connection could not even be made.
struct Attempt {
  HttpResponse response;
  bool sent = false;
};

Attempt send_once(std::uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body, const HeaderList& headers,
                  std::chrono::milliseconds timeout) {
  Attempt attempt;
  HttpConnection connection;
  connection.set_timeout(timeout);
  if (auto error = connection.connect(port, timeout); !error.empty()) {
    attempt.response.error = error;
    return attempt;
  }
  attempt.sent = true;
  attempt.response = connection.request(HttpRequest{method, target, body, headers, false, true});
  return attempt;
}

// The port and target of a Location on loopback.
std::optional<it::Url> location_of(const HttpResponse& response) {
  const auto location = response.header("Location");
  if (!location) return std::nullopt;
  return it::parse_url(*location);
}

// A status the store chose: the operation did not happen (504, "may or may
// not be stored", is the exception, and so is having no answer at all).
Outcome outcome_of(int status, bool sent, int acknowledged) {
  if (status == acknowledged) return Outcome::kAcknowledged;
  if (status == 0) return sent ? Outcome::kUnknown : Outcome::kRefused;
  if (status == 504) return Outcome::kUnknown;
  return Outcome::kRefused;
}

void note(Operation& op, const HttpResponse& response) {
  op.status = response.status;
  if (response.status == 0) {
    op.detail = response.error;
  } else if (op.outcome != Outcome::kAcknowledged) {
    op.detail = response.body.substr(0, 200);
    while (!op.detail.empty() && op.detail.back() == '\n') op.detail.pop_back();
  }
}

}  // namespace

std::string workload_key(const WorkloadSettings& settings, int index) {
  return settings.key_prefix + std::to_string(index);
}

std::size_t pick_value_size(std::mt19937_64& random, std::size_t max) {
  const auto roll = std::uniform_int_distribution<int>(0, 999)(random);
  const auto between = [&](std::size_t low, std::size_t high) {
    high = std::min(high, max);
    low = std::min(low, high);
    return std::uniform_int_distribution<std::size_t>(low, high)(random);
  };
  if (roll < 40) return 0;
  if (roll < 600) return between(1, 4 * 1024);
  if (roll < 900) return between(4 * 1024, 64 * 1024);
  if (roll < 985) return between(64 * 1024, 1024 * 1024);
  return between(1024 * 1024, max);
}

Workload::Workload(const std::atomic<std::uint16_t>& master_port, WorkloadSettings settings)
    : master_port_(master_port), settings_(std::move(settings)) {}

Workload::~Workload() { stop(); }

void Workload::start() {
  for (int client = 0; client < settings_.clients; ++client) {
    threads_.emplace_back([this, client] { run_client(client); });
  }
}

void Workload::stop() {
  stopping_ = true;
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

void Workload::run_client(int client) {
  std::mt19937_64 random(settings_.seed * 1000003 + static_cast<std::uint64_t>(client));
  // The ETags this client last saw per key: what its If-Match sends.
  std::map<std::string, std::string> etags;
  const auto timeout = settings_.timeout;
  auto next_start = Clock::now();
  for (std::size_t n = 0; n < settings_.max_operations && !stopping_; ++n) {
    if (const double rate = rate_; rate > 0) {
      next_start += std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(settings_.clients / rate));
      std::this_thread::sleep_until(next_start);
    } else {
      next_start = Clock::now();
    }
    Operation op;
    op.client = client;
    op.key =
        workload_key(settings_, std::uniform_int_distribution<int>(0, settings_.keys - 1)(random));
    const auto target = "/store/" + op.key;
    const auto roll = std::uniform_int_distribution<int>(0, 99)(random);
    op.kind = roll < 30   ? OpKind::kGet
              : roll < 65 ? OpKind::kPut
              : roll < 80 ? OpKind::kDelete
                          : OpKind::kConditionalPut;
    const std::uint16_t port = master_port_.load();
    op.start = Clock::now();
    if (op.kind == OpKind::kGet) {
      const auto first = send_once(port, "GET", target, {}, {}, timeout);
      op.outcome = Outcome::kRefused;  // a failed read: it saw nothing
      note(op, first.response);
      if (first.response.status == 404) {
        op.outcome = Outcome::kAcknowledged;
      } else if (first.response.status == 302) {
        if (const auto volume = location_of(first.response)) {
          const auto second = send_once(volume->port, "GET", volume->target, {}, {}, timeout);
          note(op, second.response);
          if (second.response.status == 200 || second.response.status == 404) {
            op.outcome = Outcome::kAcknowledged;
            op.found = second.response.status == 200;
            if (op.found) {
              op.digest = digest(second.response.body);
              op.size = second.response.body.size();
              if (auto etag = second.response.header("ETag")) etags[op.key] = *etag;
            }
          }
        }
      }
    } else if (op.kind == OpKind::kDelete) {
      const auto answer = send_once(port, "DELETE", target, {}, {}, timeout);
      op.outcome = outcome_of(answer.response.status, answer.sent, 204);
      note(op, answer.response);
      if (op.outcome == Outcome::kAcknowledged) etags.erase(op.key);
    } else {
      const auto id = next_value_.fetch_add(1);
      const auto value = make_value(id, pick_value_size(random, settings_.max_value));
      op.digest = digest(value);
      op.size = value.size();
      HeaderList headers;
      if (op.kind == OpKind::kConditionalPut) {
        const auto known = etags.find(op.key);
        // Create-only when this client knows of no value; else replace
        // only the value it last saw.
        if (known == etags.end() || random() % 4 == 0) {
          headers.emplace_back("If-None-Match", "*");
        } else {
          headers.emplace_back("If-Match", known->second);
        }
      }
      // The master only redirects: whatever it answers, nothing is written.
      const auto first = send_once(port, "PUT", target, value, headers, timeout);
      op.outcome = Outcome::kRefused;
      note(op, first.response);
      if (first.response.status == 307) {
        if (const auto volume = location_of(first.response)) {
          const auto second =
              send_once(volume->port, "PUT", volume->target, value, headers, timeout);
          op.outcome = outcome_of(second.response.status, second.sent, 201);
          note(op, second.response);
          if (op.outcome == Outcome::kAcknowledged) {
            if (auto etag = second.response.header("ETag")) etags[op.key] = *etag;
          }
        }
      }
    }
    op.end = Clock::now();
    // A peer that is down refuses at once: a client backs off a little
    // rather than spinning.
    const bool unreachable = op.status == 0 && op.outcome == Outcome::kRefused;
    history_.add(std::move(op));
    if (unreachable) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace kalavara::faults
