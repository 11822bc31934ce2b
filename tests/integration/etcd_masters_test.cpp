// Several masters on one etcd index (docs/scaling.md): every master started
// with the same --etcd, --etcd-prefix and -v serves the same keys, issues
// versions that order sequential writes whatever its clock says, and exactly
// one of them (the lease-holding leader) runs the background work. The
// faults: a master killed under load, an etcd member killed under load,
// etcd down altogether, the leader killed.
//
// Each test starts its own etcd (one member, three for the member-loss
// test) on loopback ports picked free, and a prefix of its own, so tests
// share nothing. The volumes are started without -m: they commit to the
// master each redirect names.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "blob_listing.hpp"
#include "harness.hpp"
#include "support/etcd_cluster.hpp"

namespace kalavara::it {
namespace {

// The multi-threaded build of libfaketime (Debian package faketime): the
// master runs several threads.
constexpr const char* kLibFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
constexpr std::string_view kLeading = "leading the background work";
// Every request a test makes is bounded: a master that hangs fails the
// request, not the whole run.
constexpr Millis kRequestTimeout = 15s;

// ---------------------------------------------------------------------------
// Bounded requests

HttpResponse bounded_request(uint16_t port, const std::string& method, const std::string& target,
                             const std::string& body = {}, Millis timeout = kRequestTimeout,
                             const HeaderList& headers = {}) {
  HttpConnection connection;
  connection.set_timeout(timeout);
  HttpResponse response;
  if (auto error = connection.connect(port, timeout); !error.empty()) {
    response.error = error;
    return response;
  }
  const HttpRequest request{method, target, body, headers, false, true};
  return connection.request(request);
}

HttpResponse bounded_follow(const HttpResponse& redirect, const std::string& method,
                            const std::string& body, Millis timeout) {
  const auto url = parse_url(redirect.header("Location").value_or(""));
  if (!url || url->host != "127.0.0.1") {
    HttpResponse response;
    response.error = "no usable Location in " + redirect.summary();
    return response;
  }
  return bounded_request(url->port, method, url->target, body, timeout);
}

// PUT at the master, then the same PUT at the 307's Location.
Exchange bounded_put(uint16_t master_port, const std::string& key, const std::string& value,
                     Millis timeout = kRequestTimeout) {
  Exchange exchange;
  exchange.first = bounded_request(master_port, "PUT", "/store/" + key, value, timeout);
  if (exchange.first.status != 307) return exchange;
  exchange.second = bounded_follow(exchange.first, "PUT", value, timeout);
  return exchange;
}

// GET at the master, then at the 302's Location.
Exchange bounded_get(uint16_t master_port, const std::string& key,
                     Millis timeout = kRequestTimeout) {
  Exchange exchange;
  exchange.first = bounded_request(master_port, "GET", "/store/" + key, {}, timeout);
  if (exchange.first.status != 302) return exchange;
  exchange.second = bounded_follow(exchange.first, "GET", {}, timeout);
  return exchange;
}

// ---------------------------------------------------------------------------
// What the answers say

// The version=V of a redirect's Location.
std::optional<std::uint64_t> version_in(const HttpResponse& redirect) {
  const std::string location = redirect.header("Location").value_or("");
  for (const std::string_view marker : {"?version=", "&version="}) {
    const auto at = location.find(marker);
    if (at == std::string::npos) continue;
    const auto begin = at + marker.size();
    const auto end = location.find('&', begin);
    const std::string digits =
        location.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return std::stoull(digits);
  }
  return std::nullopt;
}

// The checksum hex of an ETag header ("\"hex\"").
std::string etag_hex(const HttpResponse& response) {
  auto etag = response.header("ETag").value_or("");
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

std::string joined(const std::vector<std::string>& lines, std::size_t max = 20) {
  std::string out;
  for (std::size_t i = 0; i < lines.size() && i < max; ++i) out += "\n  " + lines[i];
  if (lines.size() > max) out += "\n  ... and " + std::to_string(lines.size() - max) + " more";
  return out;
}

// GET /store/PREFIX?list's body: {"keys": ["a", "b"], "next": "c"}.
struct KeyListing {
  std::vector<std::string> keys;
  std::string next;
  std::string error;  // set when the body is not such a listing
};

KeyListing parse_key_listing(std::string_view body) {
  KeyListing out;
  std::size_t at = 0;
  const auto skip_spaces = [&] {
    while (at < body.size() && std::isspace(static_cast<unsigned char>(body[at])) != 0) ++at;
  };
  // A JSON string without escapes other than \" and \\ (the tests' keys
  // hold neither control characters nor non-ASCII bytes).
  const auto read_string = [&](std::string& into) {
    if (at >= body.size() || body[at] != '"') return false;
    for (++at; at < body.size(); ++at) {
      if (body[at] == '"') {
        ++at;
        return true;
      }
      if (body[at] == '\\' && ++at >= body.size()) return false;
      into.push_back(body[at]);
    }
    return false;
  };
  at = body.find("\"keys\"");
  if (at == std::string_view::npos || (at = body.find('[', at)) == std::string_view::npos) {
    out.error = "no keys array";
    return out;
  }
  ++at;
  for (std::size_t i = 0;; ++i) {
    skip_spaces();
    if (at < body.size() && body[at] == ']') break;
    if (i > 0) {
      if (at >= body.size() || body[at] != ',') {
        out.error = "no ',' between keys";
        return out;
      }
      ++at;
      skip_spaces();
    }
    std::string key;
    if (i > 20000 || !read_string(key)) {
      out.error = "a malformed key";
      return out;
    }
    out.keys.push_back(std::move(key));
  }
  at = body.find("\"next\"", at);
  if (at == std::string_view::npos || (at = body.find(':', at)) == std::string_view::npos) {
    out.error = "no next";
    return out;
  }
  ++at;
  skip_spaces();
  if (!read_string(out.next)) out.error = "a malformed next";
  return out;
}

// The object of job `id` in GET /admin/jobs' array (objects hold no nested
// objects, and a job without errors no strings that could hold a brace).
std::string job_object(const std::string& jobs, const std::string& id) {
  const auto at = jobs.find("\"id\":\"" + id + "\"");
  if (at == std::string::npos) return {};
  const auto begin = jobs.rfind('{', at);
  const auto end = jobs.find('}', at);
  if (begin == std::string::npos || end == std::string::npos) return {};
  return jobs.substr(begin, end - begin + 1);
}

// When the line of `log` that holds `needle` was written, by the daemon's
// clock: the text log's lines begin with local time, %Y-%m-%dT%H:%M:%S.mmm.
std::optional<std::time_t> log_time_of(const std::string& log, std::string_view needle) {
  const auto at = log.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const auto newline = log.rfind('\n', at);
  const std::size_t begin = newline == std::string::npos ? 0 : newline + 1;
  const std::string stamp = log.substr(begin, 19);
  std::tm parts{};
  const char* end = ::strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%S", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  parts.tm_isdst = -1;
  return std::mktime(&parts);
}

// This process's environment with libfaketime preloaded, moving the wall
// clock by `offset` seconds ("+60", "-60"). The monotonic clock is left
// alone: only the wall clock, which versions are made from, is skewed.
std::vector<std::string> skewed_environment(const std::string& offset) {
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with("LD_PRELOAD=") || text.starts_with("FAKETIME")) continue;
    // A sanitized daemon (scripts/test.sh --sanitize) refuses to start with
    // a library loaded before its runtime unless told that it is meant.
    if (text.starts_with("ASAN_OPTIONS=")) {
      environment.emplace_back(std::string(text) + ":verify_asan_link_order=0");
      continue;
    }
    environment.emplace_back(text);
  }
  environment.push_back(std::string("LD_PRELOAD=") + kLibFaketime);
  environment.push_back("FAKETIME=" + offset);
  environment.emplace_back("FAKETIME_DONT_FAKE_MONOTONIC=1");
  return environment;
}

// ---------------------------------------------------------------------------
// Clients writing at once

// What a key's writer knows of it once done.
struct KeyHistory {
  std::optional<std::string> acked;  // the value of the last 201
  std::vector<std::string> unknown;  // values written since, whose outcome is unknown
};

struct LoadSettings {
  std::string tag;                // key prefix
  std::vector<uint16_t> masters;  // the masters' ports
  std::size_t clients = 16;
  std::size_t keys_per_client = 4;
  std::size_t max_ops = 20;  // writes per client
  Millis max_time = 40s;     // per client
  // true: a client's write i goes through masters[(client + i) % n];
  // false: through its current master, until that one cannot be reached.
  bool alternate = true;
  // After each 201, GET the key through the next master: it must read the
  // value just written.
  bool read_back = false;
};

// `clients` threads, each writing keys of its own (first new, then
// overwrites), so a key's last acknowledged value is well defined. A
// master that cannot be reached (no answer to the PUT: nothing written)
// makes the client send the same write to the next master.
class Load {
 public:
  explicit Load(LoadSettings settings)
      : settings_(std::move(settings)), errors_by_master_(settings_.masters.size()) {
    for (std::size_t c = 0; c < settings_.clients; ++c) {
      threads_.emplace_back([this, c] { run(c); });
    }
  }
  ~Load() { finish(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  // Tells the clients to stop after their current write, and joins them.
  void finish() {
    stop_ = true;
    join();
  }
  // Waits for the clients to end on their own (max_ops or max_time).
  void join() {
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  std::size_t acked() const { return acked_; }
  // Milliseconds since the clients started (errors are stamped with it).
  long long elapsed_ms() const {
    return std::chrono::duration_cast<Millis>(Clock::now() - started_).count();
  }
  std::size_t reads() const { return reads_; }
  std::size_t error_count() const {
    std::size_t total = 0;
    for (const auto& errors : errors_by_master_) total += errors;
    return total;
  }
  // Requests that went wrong with the master at this index as the first hop.
  std::size_t errors_through(std::size_t master) const { return errors_by_master_.at(master); }
  std::string describe_errors() const {
    std::lock_guard lock(mutex_);
    return std::to_string(error_count()) + " request(s) went wrong (" +
           std::to_string(errors_through(0)) + " through master 0):" + joined(errors_) +
           (last_error_.empty() ? "" : "\n  the last: " + last_error_);
  }
  // After join() or finish().
  const std::map<std::string, KeyHistory>& histories() const { return histories_; }
  // Versions issued more than once (by any master, to any key), and how many
  // 307s named a version at all. After join() or finish().
  std::vector<std::string> reissued_versions(std::size_t* issued = nullptr) const {
    std::map<std::uint64_t, std::vector<std::string>> by_version;
    for (const auto& [version, what] : issued_) by_version[version].push_back(what);
    std::vector<std::string> out;
    for (const auto& [version, writes] : by_version) {
      if (writes.size() > 1) out.push_back(std::to_string(version) + ":" + joined(writes, 4));
    }
    if (issued != nullptr) *issued = issued_.size();
    return out;
  }

 private:
  void note_error(std::size_t master, std::string what) {
    ++errors_by_master_.at(master);
    const std::string stamp = "at " + std::to_string(elapsed_ms()) + " ms: ";
    std::lock_guard lock(mutex_);
    if (errors_.size() < 50) {
      errors_.push_back(stamp + what);
    } else {
      last_error_ = stamp + what;
    }
  }

  void run(std::size_t client) {
    const std::size_t n = settings_.masters.size();
    std::vector<std::string> keys;
    for (std::size_t k = 0; k < settings_.keys_per_client; ++k) {
      keys.push_back(settings_.tag + "/c" + std::to_string(client) + "-k" + std::to_string(k));
    }
    std::map<std::string, KeyHistory> mine;
    std::vector<std::pair<std::uint64_t, std::string>> issued;  // the 307s' versions
    std::size_t current = client % n;
    const auto deadline = Clock::now() + settings_.max_time;
    for (std::size_t op = 0; op < settings_.max_ops && !stop_ && Clock::now() < deadline; ++op) {
      const std::string& key = keys[op % keys.size()];
      const std::string value =
          key + "#" + std::to_string(op) + "#" + random_token(16 + (op * 37 + client * 101) % 1500);
      if (settings_.alternate) current = (client + op) % n;
      for (std::size_t tries = 0; tries < n; ++tries) {
        const std::size_t m = current;
        const std::string through = "master " + std::to_string(m);
        const auto put = bounded_put(settings_.masters[m], key, value);
        if (put.first.status == 0) {
          // No redirect: nothing was written. The next master gets it.
          note_error(m, "PUT " + key + " through " + through + ": " + put.describe());
          current = (current + 1) % n;
          continue;
        }
        if (put.first.status != 307) {  // refused: nothing was written
          note_error(m, "PUT " + key + " through " + through + ": " + put.describe());
          break;
        }
        if (const auto version = version_in(put.first)) {
          issued.emplace_back(*version, key + " through " + through);
        }
        if (put.second.status != 201) {  // the upload's outcome is unknown
          mine[key].unknown.push_back(value);
          note_error(m, "PUT " + key + " through " + through + ": " + put.describe());
          break;
        }
        auto& history = mine[key];
        history.acked = value;
        history.unknown.clear();
        ++acked_;
        if (settings_.read_back) {
          const std::size_t other = (m + 1) % n;
          const auto get = bounded_get(settings_.masters[other], key);
          if (get.second.status != 200 || get.second.body != value) {
            note_error(other, "GET " + key + " through master " + std::to_string(other) +
                                  " right after its 201 through " + through + ", expecting \"" +
                                  printable(value, 60) + "\": " + get.describe());
          } else {
            ++reads_;
          }
        }
        break;
      }
    }
    std::lock_guard lock(mutex_);
    for (auto& [key, history] : mine) histories_[key] = std::move(history);
    issued_.insert(issued_.end(), issued.begin(), issued.end());
  }

  const LoadSettings settings_;
  const Clock::time_point started_ = Clock::now();
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> acked_{0};
  std::atomic<std::size_t> reads_{0};
  std::vector<std::atomic<std::size_t>> errors_by_master_;
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;                            // under mutex_: the first 50
  std::string last_error_;                                     // under mutex_
  std::map<std::string, KeyHistory> histories_;                // under mutex_
  std::vector<std::pair<std::uint64_t, std::string>> issued_;  // under mutex_
  std::vector<std::thread> threads_;  // last: the clients use everything above
};

// Every key reads, through the master at `port`, its last acknowledged
// value, or a value written after it whose outcome was unknown (or nothing,
// for a key never acknowledged). Returns what did not.
std::vector<std::string> unexpected_reads(uint16_t port, const std::string& label,
                                          const std::map<std::string, KeyHistory>& histories) {
  std::vector<std::string> problems;
  for (const auto& [key, history] : histories) {
    const auto get = bounded_get(port, key);
    std::set<std::string> allowed(history.unknown.begin(), history.unknown.end());
    if (history.acked) allowed.insert(*history.acked);
    const bool absent_allowed = !history.acked;
    if (get.first.status == 404 && absent_allowed) continue;
    if (get.second.status == 200 && allowed.count(get.second.body) != 0) continue;
    problems.push_back(key + " through " + label + ": expected \"" +
                       printable(history.acked.value_or("(nothing)"), 60) + "\" (or one of " +
                       std::to_string(history.unknown.size()) +
                       " write(s) of unknown outcome after it); got " + get.describe());
  }
  return problems;
}

// The record of `key` as a master describes it (HEAD, not followed).
struct Located {
  int status = 0;
  std::uint64_t version = 0;
  std::string etag;
  uint16_t volume_port = 0;
  std::string summary;
};

Located locate(uint16_t master_port, const std::string& key) {
  const auto head = bounded_request(master_port, "HEAD", "/store/" + key);
  Located out;
  out.status = head.status;
  out.summary = head.summary();
  out.version = version_in(head).value_or(0);
  out.etag = etag_hex(head);
  if (const auto url = parse_url(head.header("Location").value_or(""))) out.volume_port = url->port;
  return out;
}

// For every key of `expected`: every master sends readers to the same
// version with the same ETag, and reads the expected value; exactly
// `replicas` volumes hold that version, each copy with the index's checksum
// and the expected bytes (read from the volume itself), the redirect's
// volume among them; and no volume holds a newer version of the key.
std::vector<std::string> replica_problems(const std::vector<uint16_t>& masters,
                                          const std::vector<uint16_t>& volumes,
                                          const std::map<std::string, std::string>& expected,
                                          std::size_t replicas) {
  std::vector<std::string> problems;
  // key -> (volume index, listed file)
  std::map<std::string, std::vector<std::pair<std::size_t, ListedBlob>>> files;
  for (std::size_t v = 0; v < volumes.size(); ++v) {
    for (auto& blob : list_all_blobs(volumes[v], 1000)) {
      files[blob.key].emplace_back(v, std::move(blob));
    }
  }
  for (const auto& [key, value] : expected) {
    std::optional<Located> first;
    for (std::size_t m = 0; m < masters.size(); ++m) {
      const std::string through = " through master " + std::to_string(m);
      const auto located = locate(masters[m], key);
      if (located.status != 302 || located.version == 0 || located.etag.empty()) {
        problems.push_back(key + through + ": HEAD " + located.summary);
        continue;
      }
      if (!first) {
        first = located;
      } else if (located.version != first->version || located.etag != first->etag) {
        problems.push_back(key + ": the masters disagree: version " +
                           std::to_string(first->version) + " " + first->etag + " and version " +
                           std::to_string(located.version) + " " + located.etag);
      }
      const auto get = bounded_get(masters[m], key);
      if (get.second.status != 200 || get.second.body != value) {
        problems.push_back(key + through + ": expected \"" + printable(value, 60) + "\", got " +
                           get.describe());
      }
    }
    if (!first) continue;
    std::size_t holders = 0;
    bool redirect_holds = false;
    for (const auto& [v, blob] : files[key]) {
      const std::string where = key + " on volume " + std::to_string(v);
      if (blob.version > first->version) {
        problems.push_back(where + ": a " + (blob.marker ? "marker" : "copy") + " of version " +
                           std::to_string(blob.version) + ", newer than the index's " +
                           std::to_string(first->version));
        continue;
      }
      if (blob.marker || blob.version != first->version) continue;  // an older version
      ++holders;
      if (volumes[v] == first->volume_port) redirect_holds = true;
      if (blob.checksum != first->etag) {
        problems.push_back(where + ": checksum " + blob.checksum + ", the index says " +
                           first->etag);
      }
      const auto direct = bounded_request(
          volumes[v], "GET", "/store/" + key + "?version=" + std::to_string(first->version));
      if (direct.status != 200 || direct.body != value) {
        problems.push_back(where + ": its copy of version " + std::to_string(first->version) +
                           " reads " + direct.summary());
      }
    }
    if (holders != replicas) {
      problems.push_back(key + ": " + std::to_string(holders) + " volume(s) hold version " +
                         std::to_string(first->version) + ", not " + std::to_string(replicas));
    }
    if (!redirect_holds) {
      problems.push_back(key + ": the redirect's volume (port " +
                         std::to_string(first->volume_port) + ") holds no copy of version " +
                         std::to_string(first->version));
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The fixture: an etcd, volumes, and masters on one index.

class EtcdMasters : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::etcd_available()) GTEST_SKIP() << test::kEtcdMissing;
  }

  void TearDown() override {
    if (HasFailure() && etcd_)
      std::cerr << "[etcd] index prefix " << prefix_ << "\n" << etcd_->describe();
  }

  ::testing::AssertionResult start_etcd(int members) {
    std::string error;
    etcd_ = test::EtcdCluster::start(tmp_.path() / "etcd", members, &error);
    if (!etcd_) return ::testing::AssertionFailure() << "etcd did not start: " << error;
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult start_volumes(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      const std::string name = "volume" + std::to_string(volumes_.size());
      const fs::path dir = tmp_.subdir(name);
      volumes_.push_back(std::make_unique<Daemon>(name, volume_binary(), volume_args(dir, 0),
                                                  tmp_.new_log_path(name)));
      if (auto ready = volumes_.back()->wait_ready(); !ready) return ready;
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<std::string> volume_urls() const {
    std::vector<std::string> urls;
    for (const auto& volume : volumes_) urls.push_back(volume->url());
    return urls;
  }
  std::vector<uint16_t> volume_ports() const {
    std::vector<uint16_t> ports;
    for (const auto& volume : volumes_) ports.push_back(volume->port());
    return ports;
  }

  // Starts a master on the test's index (every etcd member, prefix_, every
  // volume, master_extra_) and waits until it takes writes (/readyz 200).
  // nullptr, with a failure added, when it does not.
  Daemon* start_master(const std::string& name,
                       const std::optional<std::vector<std::string>>& environment = std::nullopt) {
    auto args = etcd_master_args(etcd_->endpoints_flag(), prefix_, 0, volume_urls(), master_extra_);
    masters_.push_back(std::make_unique<Daemon>(name, master_binary(), std::move(args),
                                                tmp_.new_log_path(name), environment));
    Daemon& master = *masters_.back();
    if (auto ready = master.wait_ready(20s); !ready) {
      ADD_FAILURE() << ready.message();
      return nullptr;
    }
    ready_at_[&master] = std::time(nullptr);
    HttpResponse last;
    const bool writable = wait_until(
        [&] {
          last = bounded_request(master.port(), "GET", "/readyz", {}, 5s);
          return last.status == 200;
        },
        20s, 50ms);
    if (!writable) {
      ADD_FAILURE() << name << " not ready within 20 s; last /readyz: " << last.summary();
      return nullptr;
    }
    return &master;
  }

  void stop_master(Daemon& master) {
    const auto status = master.stop(SIGTERM, 20s);
    EXPECT_TRUE(status && status->clean())
        << master.name() << " on SIGTERM: " << (status ? status->describe() : "still running");
  }

  // How far `master`'s wall clock is from this process's: the time on its
  // "listening on" log line minus the time here when the harness saw it.
  ::testing::AssertionResult clock_offset_is(Daemon& master, long expected_seconds) {
    const auto seen = ready_at_.find(&master);
    const auto stamped = log_time_of(master.log_text(), "listening on");
    if (seen == ready_at_.end() || !stamped) {
      return ::testing::AssertionFailure() << master.name() << ": no timestamped listening line";
    }
    const long offset = static_cast<long>(*stamped - seen->second);
    if (std::labs(offset - expected_seconds) > 5) {
      return ::testing::AssertionFailure()
             << master.name() << "'s clock is " << offset << " s from this process's, not about "
             << expected_seconds << " s: is faketime working?";
    }
    return ::testing::AssertionSuccess();
  }

  // Lists `prefix` with curl, `limit` keys a page (0: no limit given), each
  // page through the next of `masters`.
  std::vector<std::string> list_keys(const std::vector<Daemon*>& masters, const std::string& prefix,
                                     std::size_t limit, std::string& error) {
    std::vector<std::string> keys;
    std::string start;
    for (std::size_t page = 0; page < 1000; ++page) {
      Daemon& master = *masters[page % masters.size()];
      std::string url = master.url() + "/store/" + prefix + "?list";
      if (limit > 0) url += "&limit=" + std::to_string(limit);
      if (!start.empty()) url += "&start=" + percent_encode(start, false);
      const auto listed = run_curl(tmp_, {url});
      if (listed.http_status != 200) {
        error =
            "page " + std::to_string(page) + " through " + master.name() + ": " + listed.describe();
        return keys;
      }
      auto listing = parse_key_listing(listed.body);
      if (!listing.error.empty() || (limit > 0 && listing.keys.size() > limit)) {
        error = "page " + std::to_string(page) + " through " + master.name() + ": " +
                (listing.error.empty() ? "more keys than the limit" : listing.error) + " in " +
                printable(listed.body);
        return keys;
      }
      keys.insert(keys.end(), listing.keys.begin(), listing.keys.end());
      if (listing.next.empty()) return keys;
      start = listing.next;
    }
    error = "the listing never ended";
    return keys;
  }

  void crud_round(Daemon& writer, Daemon& reader, const std::string& prefix);
  void concurrent_writers(std::size_t volumes, std::size_t replicas);
  void alternate_writes(Daemon& first, Daemon& second, const std::string& key, int rounds,
                        std::uint64_t& last_version);
  void expect_job_runs_once(const std::string& path, Daemon& through, Daemon& leader,
                            const std::vector<Daemon*>& listing, const std::vector<Daemon*>& all,
                            std::uint64_t items);
  // The etcd member that is the raft leader, or -1 (for failure messages).
  int etcd_leader();

  // Declared first: destroyed last, after every process it holds the logs of.
  TempDir tmp_;
  std::optional<test::EtcdCluster> etcd_;
  std::vector<std::unique_ptr<Daemon>> volumes_;
  std::vector<std::unique_ptr<Daemon>> masters_;  // stopped first
  std::map<const Daemon*, std::time_t> ready_at_;
  const std::string prefix_ = "it-" + random_token(10) + "/";
  std::vector<std::string> master_extra_;
};

int EtcdMasters::etcd_leader() {
  for (int m = 0; etcd_ && m < etcd_->size(); ++m) {
    if (!etcd_->running(m)) continue;
    const auto status =
        bounded_request(etcd_->client_port(m), "POST", "/v3/maintenance/status", "{}", 3s);
    const auto member = flat_json_field(status.body, "member_id");
    const auto leader = flat_json_field(status.body, "leader");
    if (member && leader && *member == *leader) return m;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// 1. What one master writes, the other reads, overwrites, lists and deletes.

void EtcdMasters::crud_round(Daemon& writer, Daemon& reader, const std::string& prefix) {
  const auto store = [](Daemon& master, const std::string& key) {
    return master.url() + "/store/" + key;
  };
  // curl --data-binary @file through the writer; curl and the raw client
  // read it through the reader.
  const std::string key = prefix + "value";
  const std::string first = random_bytes(3000);
  const fs::path first_file = tmp_.new_scratch_path("first");
  write_file(first_file, first);
  const auto put = run_curl(
      tmp_, {"-XPUT", "-L", "--data-binary", "@" + first_file.string(), store(writer, key)});
  ASSERT_EQ(put.http_status, 201) << put.describe();
  const auto curl_get = run_curl(tmp_, {"-L", store(reader, key)});
  EXPECT_EQ(curl_get.http_status, 200) << curl_get.describe();
  EXPECT_TRUE(curl_get.body == first) << "curl read " << printable(curl_get.body);
  const auto raw_get = get_via_master(reader.port(), "/store/" + key);
  ASSERT_EQ(raw_get.second.status, 200) << raw_get.describe();
  EXPECT_TRUE(raw_get.second.body == first) << raw_get.describe();

  // Both masters describe the one record: version, ETag, size; the reader
  // answers a conditional GET with the writer's ETag itself.
  const auto head_writer = http_request(writer.port(), "HEAD", "/store/" + key);
  const auto head_reader = http_request(reader.port(), "HEAD", "/store/" + key);
  ASSERT_EQ(head_writer.status, 302) << head_writer.summary();
  ASSERT_EQ(head_reader.status, 302) << head_reader.summary();
  const auto first_version = version_in(head_writer);
  ASSERT_TRUE(first_version.has_value()) << head_writer.summary();
  EXPECT_EQ(version_in(head_reader), first_version);
  EXPECT_EQ(head_reader.header("ETag"), head_writer.header("ETag"));
  EXPECT_EQ(head_reader.header("ETag"), raw_get.second.header("ETag"));
  EXPECT_EQ(head_reader.header("X-Kalavara-Size"), std::to_string(first.size()));
  const HeaderList if_none_match{{"If-None-Match", head_writer.header("ETag").value_or("")}};
  const auto not_modified = http_request(reader.port(), "GET", "/store/" + key, {}, if_none_match);
  EXPECT_EQ(not_modified.status, 304) << not_modified.summary();

  // Overwritten through the reader (raw client), read through both.
  const std::string second = random_bytes(5000);
  const auto overwrite = put_via_master(reader.port(), "/store/" + key, second);
  ASSERT_EQ(overwrite.second.status, 201) << overwrite.describe();
  for (Daemon* master : {&writer, &reader}) {
    const auto get = get_via_master(master->port(), "/store/" + key);
    EXPECT_EQ(get.second.status, 200) << master->name() << ": " << get.describe();
    EXPECT_TRUE(get.second.body == second)
        << master->name() << " did not read the overwrite: " << get.describe();
    EXPECT_GT(version_in(get.first).value_or(0), *first_version) << get.describe();
  }
  const auto curl_again = run_curl(tmp_, {"-L", store(writer, key)});
  EXPECT_EQ(curl_again.http_status, 200) << curl_again.describe();
  EXPECT_TRUE(curl_again.body == second) << "curl read " << printable(curl_again.body);

  // A larger value uploaded with curl -T through the writer, downloaded
  // through the reader.
  const std::string big_key = prefix + "big";
  const fs::path big = tmp_.new_scratch_path("big");
  write_random_file(big, 3 * kMiB + 123);
  const auto upload = run_curl(tmp_, {"-L", "-T", big.string(), store(writer, big_key)});
  ASSERT_EQ(upload.http_status, 201) << upload.describe();
  CurlOptions to_file;
  to_file.output_file = tmp_.new_scratch_path("big-download");
  const auto download = run_curl(tmp_, {"-L", store(reader, big_key)}, to_file);
  EXPECT_EQ(download.http_status, 200) << download.describe();
  EXPECT_TRUE(files_equal(big, *to_file.output_file));

  // Keys written through both masters are listed whole, and page by page
  // with every page through the other master.
  std::set<std::string> expected{key, big_key};
  for (int i = 0; i < 5; ++i) {
    const std::string item = prefix + "item-" + std::to_string(i);
    Daemon& through = i % 2 == 0 ? writer : reader;
    const auto item_put = put_via_master(through.port(), "/store/" + item, random_token(20 + i));
    ASSERT_EQ(item_put.second.status, 201) << item_put.describe();
    expected.insert(item);
  }
  std::string error;
  const std::vector<std::string> all(expected.begin(), expected.end());
  EXPECT_EQ(list_keys({&reader}, prefix, 0, error), all);
  EXPECT_EQ(error, "");
  EXPECT_EQ(list_keys({&writer, &reader}, prefix, 2, error), all);
  EXPECT_EQ(error, "");

  // Deleted through the reader: gone through both, listed by neither, and
  // a second delete through the writer is 404. The other keys stay.
  const auto deleted = run_curl(tmp_, {"-XDELETE", "-L", store(reader, key)});
  EXPECT_EQ(deleted.http_status, 204) << deleted.describe();
  for (Daemon* master : {&writer, &reader}) {
    const auto gone = http_request(master->port(), "GET", "/store/" + key);
    EXPECT_EQ(gone.status, 404) << master->name() << ": " << gone.summary();
  }
  const auto again = http_request(writer.port(), "DELETE", "/store/" + key);
  EXPECT_EQ(again.status, 404) << again.summary();
  expected.erase(key);
  EXPECT_EQ(list_keys({&writer}, prefix, 0, error),
            std::vector<std::string>(expected.begin(), expected.end()));
  EXPECT_EQ(error, "");
  const auto kept = get_via_master(writer.port(), "/store/" + prefix + "item-1");
  EXPECT_EQ(kept.second.status, 200) << kept.describe();
}

TEST_F(EtcdMasters, WhatOneMasterWritesTheOtherReadsOverwritesListsAndDeletes) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(2));
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);
  {
    SCOPED_TRACE("written through A, read through B");
    crud_round(*a, *b, "ab-" + random_token(6) + "/");
  }
  {
    SCOPED_TRACE("written through B, read through A");
    crud_round(*b, *a, "ba-" + random_token(6) + "/");
  }
}

// ---------------------------------------------------------------------------
// 2. Sixteen clients writing through both masters at once.

void EtcdMasters::concurrent_writers(std::size_t volumes, std::size_t replicas) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(volumes));
  if (replicas > 1) master_extra_ = {"--replicas", std::to_string(replicas)};
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);

  LoadSettings settings;
  settings.tag = "load-" + random_token(6);
  settings.masters = {a->port(), b->port()};
  settings.clients = 16;
  settings.keys_per_client = 5;
  settings.max_ops = 15;
  settings.max_time = 60s;
  settings.alternate = true;
  settings.read_back = true;
  Load load(settings);
  load.join();
  EXPECT_EQ(load.error_count(), 0u) << load.describe_errors();
  // Every key written, and overwritten at least once by most clients.
  const std::size_t keys = settings.clients * settings.keys_per_client;
  EXPECT_GE(load.acked(), keys + settings.clients) << "the clients ran out of time";
  EXPECT_EQ(load.reads(), load.acked());
  // Two masters issuing at once never issue one version twice.
  std::size_t issued = 0;
  const auto reissued = load.reissued_versions(&issued);
  EXPECT_EQ(issued, load.acked());
  EXPECT_TRUE(reissued.empty()) << reissued.size()
                                << " version(s) issued twice:" << joined(reissued);

  std::map<std::string, std::string> expected;
  for (const auto& [key, history] : load.histories()) {
    if (history.acked && history.unknown.empty()) expected[key] = *history.acked;
  }
  EXPECT_EQ(expected.size(), keys);
  const auto problems =
      replica_problems({a->port(), b->port()}, volume_ports(), expected, replicas);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problem(s):" << joined(problems);
}

TEST_F(EtcdMasters, SixteenClientsThroughTwoMastersOnTwoVolumes) { concurrent_writers(2, 1); }

TEST_F(EtcdMasters, SixteenClientsThroughTwoMastersOnThreeVolumesWithTwoReplicas) {
  concurrent_writers(3, 2);
}

// ---------------------------------------------------------------------------
// 3. Sequential writes alternating between a master and one whose clock is
// a minute off land in order.

// `rounds` writes of `key`, alternately through `first` and `second`, each
// once the previous one's 201 came back: after each, both masters read it
// and send readers to one version, higher than the one before.
void EtcdMasters::alternate_writes(Daemon& first, Daemon& second, const std::string& key,
                                   int rounds, std::uint64_t& last_version) {
  for (int round = 0; round < rounds; ++round) {
    Daemon& through = round % 2 == 0 ? first : second;
    const std::string value = "round-" + std::to_string(round) + "-" + random_token(24);
    const auto put = bounded_put(through.port(), key, value);
    ASSERT_EQ(put.second.status, 201)
        << "round " << round << " through " << through.name() << ": " << put.describe();
    std::optional<std::uint64_t> version;
    for (Daemon* master : {&first, &second}) {
      const auto get = bounded_get(master->port(), key);
      ASSERT_EQ(get.second.status, 200)
          << "round " << round << " read through " << master->name() << ": " << get.describe();
      ASSERT_EQ(get.second.body, value)
          << "round " << round << ": written through " << through.name() << " (redirected to "
          << version_in(put.first).value_or(0) << "), read through " << master->name() << ": "
          << get.describe();
      const auto read_version = version_in(get.first);
      ASSERT_TRUE(read_version.has_value()) << get.describe();
      if (!version) version = read_version;
      EXPECT_EQ(read_version, version) << "the masters send readers to different versions";
    }
    EXPECT_GT(*version, last_version) << "round " << round << " through " << through.name();
    last_version = *version;
  }
}

TEST_F(EtcdMasters, SequentialWritesThroughMastersWhoseClocksDifferByAMinuteLandInOrder) {
  // libfaketime and AddressSanitizer both wrap clock_gettime; under ASan the
  // preloaded library can recurse at start-up and the master never listens.
  if (std::getenv("ASAN_OPTIONS") != nullptr) {
    GTEST_SKIP() << "faketime cannot be preloaded into a sanitized master; the normal run has it";
  }
  ASSERT_EQ(::access(kLibFaketime, R_OK), 0)
      << kLibFaketime << " is missing: scripts/install-deps.sh installs faketime";
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(1));
  const std::string key = "skew-" + random_token(8);
  std::uint64_t last_version = 0;
  {
    SCOPED_TRACE("the second master's clock a minute behind");
    Daemon* a = start_master("master-a");
    ASSERT_NE(a, nullptr);
    Daemon* b = start_master("master-b-behind", skewed_environment("-60"));
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(clock_offset_is(*a, 0));
    ASSERT_TRUE(clock_offset_is(*b, -60));
    alternate_writes(*a, *b, key, 24, last_version);
    if (HasFatalFailure()) return;
    stop_master(*a);
    stop_master(*b);
  }
  {
    SCOPED_TRACE("the first master's clock a minute ahead");
    Daemon* a = start_master("master-a-ahead", skewed_environment("+60"));
    ASSERT_NE(a, nullptr);
    Daemon* b = start_master("master-b");
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(clock_offset_is(*a, 60));
    ASSERT_TRUE(clock_offset_is(*b, 0));
    // The key's versions are now from a clock a minute ahead of master-b's.
    alternate_writes(*a, *b, key, 24, last_version);
  }
}

// ---------------------------------------------------------------------------
// 4. A master killed under load: the other serves on, every acknowledged
// write stays, and a new master serves the same data.

TEST_F(EtcdMasters, AMasterKilledUnderLoadLosesNoAcknowledgedWrite) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(2));
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);

  LoadSettings settings;
  settings.tag = "kill-" + random_token(6);
  settings.masters = {a->port(), b->port()};
  settings.clients = 12;
  settings.keys_per_client = 3;
  settings.max_ops = 400;
  settings.max_time = 60s;
  settings.alternate = false;  // half start on each; a client moves when its master is gone
  Load load(settings);
  const bool warmed = wait_until([&] { return load.acked() >= 60; }, 30s, 20ms);
  EXPECT_TRUE(warmed) << load.acked() << " writes acknowledged in 30 s; " << load.describe_errors();
  const std::size_t before_kill = load.acked();
  a->kill_hard();
  const bool went_on = wait_until([&] { return load.acked() >= before_kill + 120; }, 30s, 20ms);
  load.finish();
  EXPECT_TRUE(went_on) << load.acked() - before_kill
                       << " writes acknowledged in the 30 s after the kill";
  EXPECT_EQ(load.errors_through(1), 0u)
      << "through the surviving master: " << load.describe_errors();
  std::cerr << "[test] " << load.acked() << " writes acknowledged, " << before_kill
            << " before the kill; " << load.errors_through(0)
            << " request(s) through the killed master went wrong\n";

  const auto& histories = load.histories();
  EXPECT_EQ(histories.size(), settings.clients * settings.keys_per_client);
  auto problems = unexpected_reads(b->port(), "the surviving master", histories);
  EXPECT_TRUE(problems.empty()) << problems.size() << " key(s):" << joined(problems);

  // A new master on the same etcd serves the same data, and what it takes
  // the other reads.
  Daemon* c = start_master("master-c");
  ASSERT_NE(c, nullptr);
  problems = unexpected_reads(c->port(), "the new master", histories);
  EXPECT_TRUE(problems.empty()) << problems.size() << " key(s):" << joined(problems);
  for (const auto& [key, history] : histories) {
    const auto through_b = bounded_get(b->port(), key);
    const auto through_c = bounded_get(c->port(), key);
    EXPECT_EQ(through_c.second.status, through_b.second.status) << key;
    EXPECT_TRUE(through_c.second.body == through_b.second.body)
        << key << ": " << through_b.describe() << " / " << through_c.describe();
  }
  const std::string key = settings.tag + "/after";
  const std::string value = random_token(100);
  const auto put = bounded_put(c->port(), key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto get = bounded_get(b->port(), key);
  EXPECT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.body, value);
}

// ---------------------------------------------------------------------------
// 5. One member of a three-member etcd killed under load fails no request.

TEST_F(EtcdMasters, OneOfThreeEtcdMembersKilledUnderLoadFailsNoRequest) {
  ASSERT_TRUE(start_etcd(3));
  ASSERT_TRUE(start_volumes(2));
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);

  LoadSettings settings;
  settings.tag = "member-" + random_token(6);
  settings.masters = {a->port(), b->port()};
  settings.clients = 8;
  settings.keys_per_client = 3;
  settings.max_ops = 500;
  settings.max_time = 75s;
  settings.alternate = true;
  settings.read_back = true;
  Load load(settings);
  const bool warmed = wait_until([&] { return load.acked() >= 40; }, 30s, 20ms);
  EXPECT_TRUE(warmed) << load.acked() << " writes in 30 s; " << load.describe_errors();
  // Two faults, one member at a time, each under load and each member
  // back before the next: member 0, the first of --etcd and so the one the
  // masters' clients prefer; then whichever member is the raft leader, so
  // an election happens under load whatever the first kill did.
  std::string faults;
  for (int phase = 0; phase < 2; ++phase) {
    const int leader = etcd_leader();
    const int victim = phase == 0 ? 0 : leader;
    faults += (faults.empty() ? "" : "; ") + std::string("killed member ") +
              std::to_string(victim) + " (raft leader: member " + std::to_string(leader) + ")";
    std::cerr << "[test] at " << load.elapsed_ms() << " ms: killing etcd member " << victim
              << "; the raft leader is member " << leader << "\n";
    ASSERT_GE(victim, 0) << "no member says it leads: " << etcd_->describe();
    const std::size_t before_kill = load.acked();
    etcd_->kill(victim);
    const bool went_on = wait_until([&] { return load.acked() >= before_kill + 150; }, 30s, 20ms);
    EXPECT_TRUE(went_on) << load.acked() - before_kill
                         << " writes in the 30 s after killing member " << victim;
    ASSERT_TRUE(etcd_->restart(victim, 20s)) << etcd_->log_tail(victim);
    ASSERT_TRUE(etcd_->wait_healthy(20s)) << etcd_->describe();
    std::cerr << "[test] at " << load.elapsed_ms() << " ms: member " << victim << " back\n";
    const std::size_t before_restart = load.acked();
    const bool after = wait_until([&] { return load.acked() >= before_restart + 60; }, 30s, 20ms);
    EXPECT_TRUE(after) << load.acked() - before_restart
                       << " writes in the 30 s after restarting member " << victim;
  }
  load.finish();
  EXPECT_EQ(load.error_count(), 0u) << faults << ": " << load.describe_errors();
  EXPECT_EQ(load.reads(), load.acked());
  const auto reissued = load.reissued_versions();
  EXPECT_TRUE(reissued.empty()) << reissued.size()
                                << " version(s) issued twice:" << joined(reissued);
  for (Daemon* master : {a, b}) {
    const auto problems = unexpected_reads(master->port(), master->name(), load.histories());
    EXPECT_TRUE(problems.empty()) << problems.size() << " key(s):" << joined(problems);
  }
}

// ---------------------------------------------------------------------------
// 6. etcd down: store requests answer 503 (never 404, never a redirect),
// promptly; once etcd is back the masters serve again, with nothing lost.

TEST_F(EtcdMasters, EtcdDownAnswers503AndTheMastersServeAgainOnceItIsBack) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(1));
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);
  const std::string tag = "outage-" + random_token(6);
  std::map<std::string, std::string> values;
  for (int i = 0; i < 6; ++i) {
    const std::string key = tag + "/before-" + std::to_string(i);
    const std::string value = random_token(50 + 10 * i);
    const auto put = bounded_put((i % 2 == 0 ? a : b)->port(), key, value);
    ASSERT_EQ(put.second.status, 201) << put.describe();
    values[key] = value;
  }
  const std::string kept = tag + "/before-0";
  const std::string refused_delete = tag + "/before-1";
  const std::string refused_put = tag + "/during";

  etcd_->kill(0);
  const auto killed_at = Clock::now();
  struct Probe {
    std::string method;
    std::string target;
    std::string body;
  };
  const std::vector<Probe> probes{
      {"GET", "/store/" + kept, ""},
      {"HEAD", "/store/" + kept, ""},
      {"GET", "/store/" + tag + "/absent", ""},
      {"PUT", "/store/" + refused_put, "not stored"},
      {"DELETE", "/store/" + refused_delete, ""},
      {"GET", "/store/" + tag + "/?list", ""},
  };
  std::vector<std::string> wrong;
  std::size_t answered = 0;
  // Three seconds of probes, every one through each master, from the kill on.
  for (int round = 0; round < 40 && (round < 2 || Clock::now() < killed_at + 3s); ++round) {
    for (Daemon* master : {a, b}) {
      for (const auto& probe : probes) {
        const auto sent = Clock::now();
        const auto answer =
            bounded_request(master->port(), probe.method, probe.target, probe.body, 10s);
        const auto took = std::chrono::duration_cast<Millis>(Clock::now() - sent);
        ++answered;
        if (answer.status != 503 || answer.header("Location") || took > 5s) {
          wrong.push_back(
              probe.method + " " + probe.target + " through " + master->name() + " " +
              std::to_string(took.count()) + " ms after being sent, " +
              std::to_string(std::chrono::duration_cast<Millis>(sent - killed_at).count()) +
              " ms after the kill: " + answer.summary());
        }
      }
    }
    std::this_thread::sleep_for(100ms);  // pacing between rounds of probes
  }
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " of " << answered
                             << " answers were not a prompt 503:" << joined(wrong);
  // Not ready once the lease could not be renewed for half its TTL, so a
  // load balancer sends nothing there.
  for (Daemon* master : {a, b}) {
    HttpResponse ready;
    EXPECT_TRUE(wait_until(
        [&] {
          ready = bounded_request(master->port(), "GET", "/readyz", {}, 5s);
          return ready.status == 503;
        },
        10s, 100ms))
        << master->name() << " stays ready with etcd down: " << ready.summary();
    EXPECT_NE(ready.body.find("etcd"), std::string::npos) << ready.summary();
  }

  ASSERT_TRUE(etcd_->restart(0, 20s)) << etcd_->log_tail(0);
  for (Daemon* master : {a, b}) {
    Exchange last;
    const bool reads = wait_until(
        [&] {
          last = bounded_get(master->port(), kept, 5s);
          return last.second.status == 200;
        },
        30s, 100ms);
    EXPECT_TRUE(reads) << master->name() << " does not read again: " << last.describe();
    const std::string key = tag + "/after-" + master->name();
    const std::string value = random_token(80);
    const bool writes = wait_until(
        [&] {
          last = bounded_put(master->port(), key, value, 5s);
          return last.second.status == 201;
        },
        30s, 200ms);
    EXPECT_TRUE(writes) << master->name() << " does not write again: " << last.describe();
    if (writes) values[key] = value;
    const auto ready = bounded_request(master->port(), "GET", "/readyz", {}, 5s);
    EXPECT_EQ(ready.status, 200) << master->name() << " ready again: " << ready.summary();
  }
  // What was written before and since is there through both; the refused
  // delete deleted nothing and the refused write wrote nothing.
  for (Daemon* master : {a, b}) {
    for (const auto& [key, value] : values) {
      const auto get = bounded_get(master->port(), key);
      EXPECT_EQ(get.second.status, 200)
          << key << " through " << master->name() << ": " << get.describe();
      EXPECT_EQ(get.second.body, value) << key << " through " << master->name();
    }
    const auto absent = bounded_request(master->port(), "GET", "/store/" + refused_put);
    EXPECT_EQ(absent.status, 404) << master->name() << ": " << absent.summary();
  }
}

// ---------------------------------------------------------------------------
// 7. Maintenance jobs run once, on the leader, whichever master launches
// them; the leader killed, the other takes over.

void EtcdMasters::expect_job_runs_once(const std::string& path, Daemon& through, Daemon& leader,
                                       const std::vector<Daemon*>& listing,
                                       const std::vector<Daemon*>& all, std::uint64_t items) {
  const auto launched = bounded_request(through.port(), "POST", path, {}, 10s);
  ASSERT_EQ(launched.status, 202) << launched.summary();
  const auto id = flat_json_field(launched.body, "id");
  ASSERT_TRUE(id.has_value()) << launched.summary();
  // Every master lists it, done (a follower may lag: polled).
  for (Daemon* master : listing) {
    std::string object;
    const bool ended = wait_until(
        [&] {
          const auto jobs = bounded_request(master->port(), "GET", "/admin/jobs", {}, 5s);
          object = job_object(jobs.body, *id);
          const auto state = flat_json_field(object, "state");
          return state == "done" || state == "failed";
        },
        60s, 100ms);
    ASSERT_TRUE(ended) << *id << " not ended as " << master->name()
                       << " lists it: " << (object.empty() ? "(not listed)" : object);
    EXPECT_EQ(flat_json_field(object, "state"), "done") << master->name() << ": " << object;
    EXPECT_EQ(flat_json_field(object, "done_items"), std::to_string(items))
        << master->name() << ": " << object;
    EXPECT_EQ(flat_json_field(object, "total_items"), std::to_string(items))
        << master->name() << ": " << object;
    EXPECT_EQ(flat_json_field(object, "failed_items"), "0") << master->name() << ": " << object;
  }
  // It ran exactly once, on the leader.
  const std::string started = "job " + *id + " started";
  const std::string ended = "job " + *id + " done";
  std::size_t started_total = 0;
  std::size_t ended_total = 0;
  std::string where;
  for (Daemon* master : all) {
    const std::string log = master->log_text();
    const auto count = count_of(log, started);
    started_total += count;
    ended_total += count_of(log, ended);
    where += " " + master->name() + ": " + std::to_string(count);
  }
  EXPECT_EQ(count_of(leader.log_text(), started), 1u)
      << "\"" << started << "\" in the leader's (" << leader.name() << ") log;" << where;
  EXPECT_EQ(started_total, 1u) << "\"" << started << "\" in the logs:" << where;
  EXPECT_EQ(ended_total, 1u) << "\"" << ended << "\" in the logs";
}

TEST_F(EtcdMasters, JobsRunOnceOnTheLeaderAndAnotherMasterTakesOverWhenItIsKilled) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(2));
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);
  const auto leaders = [&] {
    std::vector<Daemon*> out;
    for (Daemon* master : {a, b}) {
      if (master->log_text().find(kLeading) != std::string::npos) out.push_back(master);
    }
    return out;
  };
  ASSERT_TRUE(wait_until([&] { return !leaders().empty(); }, 15s, 50ms))
      << "no master logged \"" << kLeading << "\" in 15 s";
  ASSERT_EQ(leaders().size(), 1u) << "both masters lead";
  Daemon* leader = leaders().front();
  Daemon* follower = leader == a ? b : a;

  constexpr std::uint64_t kKeys = 24;
  const std::string tag = "jobs-" + random_token(6);
  for (std::uint64_t i = 0; i < kKeys; ++i) {
    const auto put = bounded_put((i % 2 == 0 ? a : b)->port(), tag + "/" + std::to_string(i),
                                 random_token(100 + i));
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  for (const auto& [path, through] :
       std::vector<std::pair<std::string, Daemon*>>{{"/admin/repair", follower},
                                                    {"/admin/repair", leader},
                                                    {"/admin/scrub", follower},
                                                    {"/admin/scrub", leader}}) {
    SCOPED_TRACE(path + " through " + through->name() + " (the leader is " + leader->name() + ")");
    expect_job_runs_once(path, *through, *leader, {a, b}, {a, b}, kKeys);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(leaders().size(), 1u) << "the follower started leading while the leader ran";

  // The leader killed: the follower leads within about 10 s, and runs jobs.
  leader->kill_hard();
  const auto killed_at = Clock::now();
  const bool took_over = wait_until(
      [&] { return follower->log_text().find(kLeading) != std::string::npos; }, 11s, 50ms);
  ASSERT_TRUE(took_over) << follower->name() << " did not log \"" << kLeading
                         << "\" within 11 s of the leader's kill";
  std::cerr << "[test] " << follower->name() << " took over "
            << std::chrono::duration_cast<Millis>(Clock::now() - killed_at).count()
            << " ms after the kill\n";
  SCOPED_TRACE("/admin/repair through " + follower->name() + " after the leader's kill");
  expect_job_runs_once("/admin/repair", *follower, *follower, {follower}, {a, b}, kKeys);
}

}  // namespace
}  // namespace kalavara::it

namespace kalavara::it {
namespace {

// ---------------------------------------------------------------------------
// 8. A volume started with -m naming both masters registers with each,
// commits each write to the master that redirected it, and tells each
// when it stops.

TEST_F(EtcdMasters, AVolumeGivenBothMastersRegistersWithEachCommitsToTheOneThatRedirected) {
  ASSERT_TRUE(start_etcd(1));
  ASSERT_TRUE(start_volumes(1));  // listed by -v, so the masters are ready at once
  Daemon* a = start_master("master-a");
  ASSERT_NE(a, nullptr);
  Daemon* b = start_master("master-b");
  ASSERT_NE(b, nullptr);

  const uint16_t port = pick_free_port();
  const std::string self = "http://127.0.0.1:" + std::to_string(port);
  Daemon registering(
      "volume-m", volume_binary(),
      volume_args(tmp_.subdir("volume-m"), port, {"-m", a->url() + "," + b->url(), "-b", self}),
      tmp_.new_log_path("volume-m"));
  ASSERT_TRUE(registering.wait_ready());
  for (Daemon* master : {a, b}) {
    EXPECT_TRUE(wait_until(
        [&] {
          return registering.log_text().find("registered with master " + master->url()) !=
                 std::string::npos;
        },
        10s))
        << "no registration with " << master->name() << ":\n"
        << registering.log_text();
  }
  // The listed volume stops: every write now goes to the registered one.
  volumes_.front()->stop(SIGTERM, 20s);
  for (Daemon* master : {a, b}) {
    EXPECT_TRUE(wait_until(
        [&] {
          const auto listed = bounded_request(master->port(), "GET", "/admin/volumes", {}, 5s);
          return listed.status == 200 && listed.body.find(self) != std::string::npos;
        },
        10s))
        << master->name() << " does not list " << self;
  }
  // With the first master dead, a write redirected by the second commits
  // there: the first of -m is not where every commit goes.
  a->kill_hard();
  for (int i = 0; i < 5; ++i) {
    const std::string key = "via-b/" + std::to_string(i);
    const std::string value = random_token(64);
    Exchange put;
    // The volume listed by -v is gone: until B's health check says so, a
    // write may still be placed there (503), and is tried again.
    const bool stored = wait_until(
        [&] {
          put = bounded_put(b->port(), key, value, 10s);
          return put.second.status == 201;
        },
        15s, 100ms);
    ASSERT_TRUE(stored) << key << ": " << put.describe() << "\n" << registering.log_text();
    EXPECT_NE(put.first.header("Location").value_or("").find(self), std::string::npos)
        << put.describe();
    const auto got = bounded_get(b->port(), key);
    EXPECT_EQ(got.second.status, 200) << got.describe();
    EXPECT_EQ(got.second.body, value);
  }
  // Stopping, it tells each master (the dead one cannot hear it).
  const auto status = registering.stop(SIGTERM, 20s);
  EXPECT_TRUE(status && status->clean()) << registering.log_text();
  const auto log = registering.log_text();
  EXPECT_NE(log.find("told master " + b->url() + " that this volume is stopping"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("could not tell master " + a->url()), std::string::npos) << log;
}

}  // namespace
}  // namespace kalavara::it
