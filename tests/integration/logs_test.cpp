// The logs on the real daemons (docs/operations.md, "Logs"): the access log,
// one line per request in text or JSON, with no signature in it; the daemon
// log in JSON; SIGHUP reopening the access log after logrotate moved it, and
// never stopping a daemon.
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The lines of `text` that hold `needle`.
std::vector<std::string> lines_with(const std::string& text, std::string_view needle) {
  std::vector<std::string> found;
  for (auto& line : lines_of(text)) {
    if (line.find(needle) != std::string::npos) found.push_back(std::move(line));
  }
  return found;
}

std::string file_text(const fs::path& path) { return fs::exists(path) ? read_file(path) : ""; }

// Waits (bounded) until `path` has `count` lines holding `needle`: the
// access log is written by a thread of its own, a moment after the answer.
std::vector<std::string> wait_for_lines(const fs::path& path, std::string_view needle,
                                        std::size_t count) {
  wait_until([&] { return lines_with(file_text(path), needle).size() >= count; }, 10s);
  return lines_with(file_text(path), needle);
}

// One access-log line, read back from either format.
struct AccessLine {
  std::string time, peer, method, path, route, status;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  double duration = -1;
};

std::vector<std::string> split_spaces(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

::testing::AssertionResult parse_text(const std::string& line, AccessLine& out) {
  const auto fields = split_spaces(line);
  if (fields.size() != 8) return ::testing::AssertionFailure() << "not 8 fields: " << line;
  out = {fields[0], fields[1], fields[2], fields[3], "", fields[4]};
  out.bytes_in = std::stoull(fields[5]);
  out.bytes_out = std::stoull(fields[6]);
  out.duration = std::stod(fields[7]);
  return ::testing::AssertionSuccess();
}

// The value of "key" in a one-line JSON object, as written: a string with
// its escapes left in, or a number, or "null".
std::optional<std::string> json_value(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nullopt;
  auto i = at + key.size() + 3;
  if (i < line.size() && line[i] == '"') {
    std::string value;
    for (++i; i < line.size() && line[i] != '"'; ++i) {
      value.push_back(line[i]);
      if (line[i] == '\\' && i + 1 < line.size()) value.push_back(line[++i]);
    }
    return value;
  }
  const auto end = line.find_first_of(",}", i);
  return line.substr(i, end - i);
}

::testing::AssertionResult parse_json(const std::string& line, AccessLine& out) {
  if (line.empty() || line.front() != '{' || line.back() != '}') {
    return ::testing::AssertionFailure() << "not a JSON object: " << line;
  }
  std::vector<std::string> values;
  for (const char* key : {"time", "peer", "method", "path", "route", "status", "bytes_in",
                          "bytes_out", "duration_seconds"}) {
    auto value = json_value(line, key);
    if (!value) return ::testing::AssertionFailure() << "no \"" << key << "\": " << line;
    values.push_back(*value);
  }
  out = {values[0], values[1], values[2], values[3], values[4], values[5]};
  out.bytes_in = std::stoull(values[6]);
  out.bytes_out = std::stoull(values[7]);
  out.duration = std::stod(values[8]);
  return ::testing::AssertionSuccess();
}

// What every line holds, whatever the request: the time in RFC 3339 UTC
// with milliseconds, the loopback peer, a duration.
void expect_common_fields(const AccessLine& line) {
  EXPECT_EQ(line.time.size(), 24U) << line.time;
  EXPECT_EQ(line.time.substr(10, 1), "T") << line.time;
  EXPECT_EQ(line.time.back(), 'Z') << line.time;
  EXPECT_EQ(line.peer.rfind("127.0.0.1:", 0), 0U) << line.peer;
  EXPECT_GT(std::atoi(line.peer.substr(10).c_str()), 0) << line.peer;
  EXPECT_GE(line.duration, 0);
  EXPECT_LT(line.duration, 60);
}

// The bytes of an answer as read back: status line, header fields, body.
std::uint64_t wire_size(const HttpResponse& response) {
  std::uint64_t size =
      std::string("HTTP/1.1 200 \r\n\r\n").size() + response.reason.size() + response.body.size();
  for (const auto& [name, value] : response.headers) size += name.size() + value.size() + 4;
  return size;
}

// Starts a volume and a master, both with `extra` and an access log each.
struct LoggedCluster {
  explicit LoggedCluster(TempDir& tmp) : cluster(tmp) {}
  ::testing::AssertionResult start(TempDir& tmp, const std::vector<std::string>& extra) {
    master_log = tmp.path() / "master-access.log";
    volume_log = tmp.path() / "volume-access.log";
    auto volume_extra = extra;
    volume_extra.insert(volume_extra.end(), {"--access-log", volume_log.string()});
    if (auto started = cluster.start_volume(nullptr, volume_extra); !started) return started;
    auto master_extra = extra;
    master_extra.insert(master_extra.end(), {"--access-log", master_log.string()});
    return cluster.start_master_with_args(cluster.volume_urls(), master_extra);
  }
  Cluster cluster;
  fs::path master_log;
  fs::path volume_log;
};

// A PUT through the master with curl -L, a GET the same way, a GET of a
// missing key: each request gets exactly one line on each daemon it reached,
// with its method, path, status and sizes.
// `store_lines` picks the lines of /store/ requests out of the log.
void check_one_line_per_request(TempDir& tmp, LoggedCluster& setup,
                                ::testing::AssertionResult (*parse)(const std::string&,
                                                                    AccessLine&),
                                std::string_view store_lines) {
  auto& cluster = setup.cluster;
  const std::string value = "value-alpha";
  const auto put = run_curl(tmp, {"-L", "-X", "PUT", "-d", value, cluster.store_url("alpha")});
  ASSERT_EQ(put.http_status, 201) << put.describe();
  const auto got = run_curl(tmp, {"-L", cluster.store_url("alpha")});
  ASSERT_EQ(got.body, value) << got.describe();
  const auto missing = http_request(cluster.master_port(), "GET", "/store/missing");
  ASSERT_EQ(missing.status, 404) << missing.summary();
  const auto missing_request =
      HttpRequest{"GET", "/store/missing", {}, {}, false, true}.serialize(cluster.master_port());

  const auto master_lines = wait_for_lines(setup.master_log, store_lines, 3);
  const auto volume_lines = wait_for_lines(setup.volume_log, store_lines, 2);
  // The volume's commit reached the master too, and is logged there.
  EXPECT_EQ(wait_for_lines(setup.master_log, "/internal/commit/", 1).size(), 1U);
  ASSERT_EQ(master_lines.size(), 3U) << file_text(setup.master_log);
  ASSERT_EQ(volume_lines.size(), 2U) << file_text(setup.volume_log);
  std::vector<AccessLine> master(3), volume(2);
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(parse(master_lines[i], master[i]));
  for (std::size_t i = 0; i < 2; ++i) ASSERT_TRUE(parse(volume_lines[i], volume[i]));
  for (const auto& line : master) expect_common_fields(line);
  for (const auto& line : volume) expect_common_fields(line);

  // The master redirects the PUT and the GET; the query of the volume's
  // URL (its version, master, and so on) is not in the volume's lines.
  EXPECT_EQ(master[0].method, "PUT");
  EXPECT_EQ(master[0].path, "/store/alpha");
  EXPECT_EQ(master[0].status, "307");
  EXPECT_EQ(master[1].method, "GET");
  EXPECT_EQ(master[1].status, "302");
  EXPECT_EQ(master[2].path, "/store/missing");
  EXPECT_EQ(master[2].status, "404");
  // Every byte of the request and of the answer, header and body.
  EXPECT_EQ(master[2].bytes_in, missing_request.size());
  EXPECT_EQ(master[2].bytes_out, wire_size(missing));
  EXPECT_EQ(volume[0].method, "PUT");
  EXPECT_EQ(volume[0].path, "/store/alpha");
  EXPECT_EQ(volume[0].status, "201");
  EXPECT_GT(volume[0].bytes_in, value.size());
  EXPECT_EQ(volume[1].method, "GET");
  EXPECT_EQ(volume[1].path, "/store/alpha");
  EXPECT_EQ(volume[1].status, "200");
  EXPECT_GT(volume[1].bytes_out, value.size());
  EXPECT_LT(volume[1].bytes_in, volume[0].bytes_in);
}

TEST(AccessLog, TextHasOneLinePerRequestWithItsFieldsOnTheMasterAndTheVolume) {
  TempDir tmp;
  LoggedCluster setup(tmp);
  ASSERT_TRUE(setup.start(tmp, {}));
  check_one_line_per_request(tmp, setup, parse_text, " /store/");
}

TEST(AccessLog, JsonHasTheSameLinesAndTheDaemonLogIsJsonToo) {
  TempDir tmp;
  LoggedCluster setup(tmp);
  ASSERT_TRUE(setup.start(tmp, {"--log-format", "json"}));
  check_one_line_per_request(tmp, setup, parse_json, "\"path\":\"/store/");
  const auto routes = lines_with(file_text(setup.volume_log), "\"route\":\"/store/\"");
  EXPECT_EQ(routes.size(), 2U) << file_text(setup.volume_log);

  // The daemon log: every line one object with a level and a message (but
  // the harness's own first line, the command).
  for (auto* daemon : {&setup.cluster.master(), &setup.cluster.volume(0)}) {
    const auto text = daemon->log_text();
    std::size_t objects = 0;
    for (const auto& line : lines_of(text)) {
      if (line.rfind("[harness]", 0) == 0) continue;
      ++objects;
      EXPECT_TRUE(!line.empty() && line.front() == '{' && line.back() == '}') << line;
      EXPECT_NE(line.find("\"level\":\""), std::string::npos) << line;
      EXPECT_NE(line.find("\"message\":\""), std::string::npos) << line;
      EXPECT_EQ(json_value(line, "time").value_or("").size(), 24U) << line;
    }
    EXPECT_GE(objects, 1U) << text;
    EXPECT_EQ(lines_with(text, "listening on 127.0.0.1:").size(), 1U) << text;
  }
}

// A key may hold anything. Raw '"' and bytes from 0x80 up pass the HTTP
// parser; a line break comes percent-encoded; a raw control byte makes the
// request unparsable, and still gets its line.
TEST(AccessLog, AnOddKeyStaysOnOneEscapedLineInBothFormats) {
  TempDir tmp;
  Cluster cluster(tmp);
  const auto json_log = tmp.path() / "json-access.log";
  const auto text_log = tmp.path() / "text-access.log";
  ASSERT_TRUE(
      cluster.start_volume(nullptr, {"--access-log", json_log.string(), "--log-format", "json"}));
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--access-log", text_log.string()}));
  const std::string target = "/store/odd\"key\\\x80\xff%0Aend";
  for (std::size_t i = 0; i < 2; ++i) {
    const auto port = cluster.volume(i).port();
    EXPECT_EQ(http_request(port, "GET", target).status, 404);
    HttpConnection raw;
    ASSERT_EQ(raw.connect(port), "");
    ASSERT_EQ(raw.send_all("GET /store/ctl\x01x HTTP/1.1\r\nHost: x\r\n\r\n"), "");
    EXPECT_EQ(raw.read_response().status, 400);
  }
  const auto json = wait_for_lines(json_log, "\"status\":", 2);
  ASSERT_EQ(json.size(), 2U) << file_text(json_log);
  EXPECT_EQ(lines_of(file_text(json_log)).size(), 2U) << file_text(json_log);
  EXPECT_EQ(json_value(json[0], "path").value_or(""), R"(/store/odd\"key\\\u0080\u00ff%0Aend)")
      << json[0];
  EXPECT_EQ(json_value(json[1], "status").value_or(""), "400") << json[1];
  EXPECT_EQ(json_value(json[1], "path").value_or("?"), "") << json[1];
  for (const auto& line : json) EXPECT_TRUE(line.front() == '{' && line.back() == '}') << line;

  ASSERT_EQ(wait_for_lines(text_log, " 127.0.0.1:", 2).size(), 2U) << file_text(text_log);
  ASSERT_EQ(lines_of(file_text(text_log)).size(), 2U) << file_text(text_log);
  const auto text = lines_with(file_text(text_log), " GET ");
  ASSERT_EQ(text.size(), 1U);
  AccessLine parsed;
  ASSERT_TRUE(parse_text(text[0], parsed));
  EXPECT_EQ(parsed.path, "/store/odd\"key\\%80%FF%0Aend");
  ASSERT_TRUE(parse_text(lines_of(file_text(text_log))[1], parsed));
  EXPECT_EQ(parsed.status, "400");
  EXPECT_EQ(parsed.path, "-");
}

TEST(AccessLog, ASignedClusterLogsNoSignature) {
  TempDir tmp;
  const auto secret_file = tmp.path() / "secret";
  write_file(secret_file, random_token(64) + "\n");
  ::chmod(secret_file.c_str(), 0600);
  LoggedCluster setup(tmp);
  ASSERT_TRUE(setup.start(tmp, {"--secret-file", secret_file.string(), "--sign-reads"}));
  auto& cluster = setup.cluster;
  const auto put = put_via_master(cluster.master_port(), "/store/signed", "value");
  ASSERT_EQ(put.second.status, 201) << put.describe();
  ASSERT_NE(put.first.header("Location").value_or("").find("&sig="), std::string::npos);
  const auto got = get_via_master(cluster.master_port(), "/store/signed");
  ASSERT_EQ(got.second.body, "value") << got.describe();
  EXPECT_EQ(wait_for_lines(setup.volume_log, " /store/signed ", 2).size(), 2U);
  EXPECT_EQ(wait_for_lines(setup.master_log, " /store/signed ", 2).size(), 2U);
  // The signed commit, too.
  EXPECT_EQ(wait_for_lines(setup.master_log, "/internal/commit/", 1).size(), 1U);
  for (const auto& log : {setup.master_log, setup.volume_log}) {
    const auto text = file_text(log);
    EXPECT_EQ(text.find("sig="), std::string::npos) << text;
    EXPECT_EQ(text.find('?'), std::string::npos) << text;
  }
}

TEST(AccessLog, ADashWritesToStdout) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--access-log", "-"}));
  EXPECT_EQ(http_request(cluster.volume(0).port(), "GET", "/healthz").status, 200);
  EXPECT_TRUE(wait_until(
      [&] { return lines_with(cluster.volume(0).log_text(), " GET /healthz 200 ").size() == 1; },
      10s))
      << cluster.volume(0).log_text();
}

// ---------------------------------------------------------------------------
// SIGHUP

std::size_t count_in(const std::string& text, std::string_view needle) {
  return lines_with(text, needle).size();
}

TEST(Sighup, ReopensTheAccessLogAfterLogrotateMovedIt) {
  TempDir tmp;
  Cluster cluster(tmp);
  const auto log = tmp.path() / "access.log";
  const auto rotated = tmp.path() / "access.log.1";
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--access-log", log.string()}));
  auto& volume = cluster.volume(0);
  const auto port = volume.port();
  EXPECT_EQ(http_request(port, "GET", "/store/before").status, 404);
  ASSERT_EQ(wait_for_lines(log, "/store/before", 1).size(), 1U);

  // What logrotate does: move the file away, then reload the daemon.
  fs::rename(log, rotated);
  volume.send_signal(SIGHUP);
  // The reopen creates the file at the configured path.
  ASSERT_TRUE(wait_until([&] { return fs::exists(log); }, 10s)) << volume.log_text();
  EXPECT_EQ(http_request(port, "GET", "/store/after").status, 404);
  ASSERT_EQ(wait_for_lines(log, "/store/after", 1).size(), 1U) << volume.log_text();
  EXPECT_EQ(count_in(file_text(log), "/store/before"), 0U);
  EXPECT_EQ(count_in(file_text(rotated), "/store/before"), 1U);
  EXPECT_EQ(count_in(file_text(rotated), "/store/after"), 0U);
  EXPECT_TRUE(
      wait_until([&] { return count_in(volume.log_text(), "access log reopened") == 1; }, 10s))
      << volume.log_text();

  // A second reload with nothing moved keeps appending to the same file.
  volume.send_signal(SIGHUP);
  EXPECT_TRUE(
      wait_until([&] { return count_in(volume.log_text(), "access log reopened") == 2; }, 10s));
  EXPECT_EQ(http_request(port, "GET", "/store/again").status, 404);
  EXPECT_EQ(wait_for_lines(log, "/store/", 2).size(), 2U);
  EXPECT_TRUE(volume.running());
  const auto exit = volume.stop(SIGTERM);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->clean()) << exit->describe();
}

TEST(Sighup, NeverStopsADaemonThatHasNoAccessLog) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  for (auto* daemon : {&cluster.master(), &cluster.volume(0)}) {
    // One at a time: two signals sent at once may reach it as one.
    for (std::size_t i = 1; i <= 2; ++i) {
      daemon->send_signal(SIGHUP);
      EXPECT_TRUE(
          wait_until([&] { return count_in(daemon->log_text(), "received SIGHUP") == i; }, 10s))
          << daemon->log_text();
    }
    EXPECT_TRUE(daemon->running()) << daemon->name();
    EXPECT_EQ(http_request(daemon->port(), "GET", "/healthz").status, 200) << daemon->name();
  }
  const auto put = run_curl(tmp, {"-L", "-X", "PUT", "-d", "v", cluster.store_url("k")});
  EXPECT_EQ(put.http_status, 201) << put.describe();
  for (auto* daemon : {&cluster.volume(0), &cluster.master()}) {
    const auto exit = daemon->stop(SIGTERM);
    ASSERT_TRUE(exit.has_value()) << daemon->name();
    EXPECT_TRUE(exit->clean()) << daemon->name() << ": " << exit->describe();
  }
}

// Whether `pid` has a handler for SIGHUP (SigCgt in /proc/PID/status).
bool catches_sighup(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigCgt:", 0) == 0) {
      return (std::strtoull(line.c_str() + 7, nullptr, 16) & (1ULL << (SIGHUP - 1))) != 0;
    }
  }
  return false;
}

// A logrotate while a daemon still starts (the master opening its index)
// is taken once the daemon serves, and does not kill it.
TEST(Sighup, ADaemonThatIsStartingIsNotKilled) {
  TempDir tmp;
  const auto index = tmp.subdir("index");
  Daemon master("master", master_binary(), master_args(index, 0, {}), tmp.new_log_path("master"));
  ASSERT_TRUE(wait_until([&] { return catches_sighup(master.pid()); }, 10s, 1ms))
      << master.log_text();
  master.send_signal(SIGHUP);
  ASSERT_TRUE(master.wait_ready());
  EXPECT_TRUE(wait_until([&] { return count_in(master.log_text(), "received SIGHUP") == 1; }, 10s))
      << master.log_text();
  EXPECT_EQ(http_request(master.port(), "GET", "/healthz").status, 200);
  const auto exit = master.stop(SIGTERM);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->clean()) << exit->describe();
}

}  // namespace
}  // namespace kalavara::it
