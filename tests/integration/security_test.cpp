// A cluster run with its security settings on (docs/security.md): a shared
// secret on every daemon, signed reads, an admin token. Every client path
// must keep working through signed redirects (curl -L with -d and -T, a
// library that sends the body then follows the 307, ranges, conditional
// reads, HEAD, replicas, old versions within their grace, retries), every
// daemon-to-daemon call must be accepted (commits, replica uploads,
// registration, health checks, deletes, maintenance, rebuild), and a request
// without the right credential is refused. The forged and replayed
// signatures themselves are in hostile_test.cpp.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// Writes `lines` to `path` with mode `mode`, one per line.
fs::path write_private_file(const fs::path& path, const std::vector<std::string>& lines,
                            mode_t mode = 0600) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  write_file(path, text);
  ::chmod(path.c_str(), mode);
  return path;
}

struct Secret {
  std::string text = random_token(64);
  fs::path path;
};

Secret make_secret(TempDir& tmp, const std::string& name) {
  Secret secret;
  secret.path = write_private_file(tmp.path() / name, {secret.text});
  return secret;
}

std::vector<std::string> join(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every log under `tmp` that holds `needle`.
std::vector<fs::path> logs_holding(const TempDir& tmp, const std::string& needle) {
  std::vector<fs::path> found;
  for (const auto& path : regular_files_under(tmp.logs_dir())) {
    if (read_file(path).find(needle) != std::string::npos) found.push_back(path);
  }
  return found;
}

// Whether the master's /admin/volumes shows `url` in `state`.
bool volume_state_is(uint16_t master_port, const std::string& url, const std::string& state,
                     const HeaderList& headers = {}) {
  const auto volumes = http_request(master_port, "GET", "/admin/volumes", {}, headers);
  const auto at = volumes.body.find("\"url\": \"" + url + "\"");
  if (volumes.status != 200 || at == std::string::npos) return false;
  const auto end = volumes.body.find('}', at);
  return volumes.body.substr(at, end - at).find("\"state\": \"" + state + "\"") !=
         std::string::npos;
}

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Runs `kalavara-master ARGS` to its end: its exit and output.
struct CommandRun {
  std::optional<ExitStatus> exit;
  std::string output;
};
CommandRun run_command(TempDir& tmp, const std::string& binary,
                       const std::vector<std::string>& args) {
  Daemon command("command", binary, args, tmp.new_log_path("command"));
  CommandRun run;
  run.exit = command.wait_exit(60s);
  run.output = command.log_text();
  return run;
}

TEST(SignedCluster, EveryClientPathWorksAndVolumesTakeOnlySignedRequests) {
  TempDir tmp;
  const auto secret = make_secret(tmp, "secret");
  const std::vector<std::string> signing{"--secret-file", secret.path.string(), "--sign-reads"};
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume(nullptr, signing));
  ASSERT_TRUE(
      cluster.start_master_with_args(cluster.volume_urls(), join(signing, {"--replicas", "2"})));
  const auto mport = cluster.master_port();
  ASSERT_TRUE(
      wait_until([&] { return volume_state_is(mport, cluster.volume_urls()[1], "up"); }, 10s));

  // curl -L with -d, with -T (Expect: 100-continue), and a library that
  // sends the whole body before it follows the 307.
  auto put = run_curl(tmp, {"-L", "-X", "PUT", "-d", "small value", cluster.store_url("small")});
  ASSERT_EQ(put.http_status, 201) << put.describe();
  const auto big = tmp.new_scratch_path("big");
  write_random_file(big, 3 * kMiB);
  put = run_curl(tmp, {"-L", "-T", big.string(), cluster.store_url("big")});
  ASSERT_EQ(put.http_status, 201) << put.describe();
  const auto library = put_via_master(mport, "/store/library", "sent whole");
  ASSERT_EQ(library.second.status, 201) << library.describe();
  const auto location = library.first.header("Location").value_or("");
  EXPECT_NE(location.find("&sig="), std::string::npos) << location;
  // A retry of the same redirected PUT passes the signature, and is told
  // what it would be told without one: that version is stored already.
  const auto retried = follow_redirect(library.first, "PUT", "sent whole");
  EXPECT_EQ(retried.status, 409) << retried.summary();
  EXPECT_NE(retried.body.find("already stored"), std::string::npos) << retried.summary();

  // Reads: whole, ranged, conditional, HEAD, all through signed 302s.
  auto got = run_curl(tmp, {"-L", cluster.store_url("small")});
  EXPECT_EQ(got.http_status, 200) << got.describe();
  EXPECT_EQ(got.body, "small value");
  const auto copy = tmp.new_scratch_path("copy");
  got = run_curl(tmp, {"-L", cluster.store_url("big")}, {.output_file = copy});
  ASSERT_EQ(got.http_status, 200) << got.describe();
  EXPECT_TRUE(files_equal(big, copy));
  got = run_curl(tmp, {"-L", "-r", "2-6", cluster.store_url("small")});
  EXPECT_EQ(got.http_status, 206) << got.describe();
  EXPECT_EQ(got.body, "all v");
  const auto read = get_via_master(mport, "/store/small");
  ASSERT_EQ(read.second.status, 200) << read.describe();
  const auto etag = read.second.header("ETag").value_or("");
  ASSERT_FALSE(etag.empty());
  const auto unchanged =
      run_curl(tmp, {"-L", "-H", "If-None-Match: " + etag, cluster.store_url("small")});
  EXPECT_EQ(unchanged.http_status, 304) << unchanged.describe();
  // The volume checks the condition itself too, behind the signature.
  const auto at_volume = follow_redirect(read.first, "GET", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(at_volume.status, 304) << at_volume.summary();
  const auto head = get_via_master(mport, "/store/big", "HEAD");
  EXPECT_EQ(head.second.status, 200) << head.describe();
  EXPECT_EQ(head.second.header("Content-Length").value_or(""), std::to_string(3 * kMiB));

  // The volume itself takes nothing unsigned: not the path of the 302
  // without its signature, not the signature used for another method.
  const auto signed_read = parse_url(read.first.header("Location").value_or(""));
  ASSERT_TRUE(signed_read.has_value());
  const auto path_only = signed_read->target.substr(0, signed_read->target.find('?'));
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", path_only},
                                                        {"DELETE", signed_read->target},
                                                        {"PUT", signed_read->target},
                                                        {"GET", "/stats"},
                                                        {"GET", "/admin/blobs"}}) {
    const auto refused =
        http_request(signed_read->port, method, target, method == "PUT" ? "x" : "");
    EXPECT_EQ(refused.status, 403) << method << " " << target << ": " << refused.summary();
  }
  EXPECT_EQ(http_request(signed_read->port, "GET", "/healthz").status, 200);
  got = run_curl(tmp, {"-L", cluster.store_url("small")});
  EXPECT_EQ(got.body, "small value") << "a refused request changed nothing";

  // Reads come from the other replica when one volume is down.
  ASSERT_TRUE(cluster.volume(0).stop().has_value());
  ASSERT_TRUE(
      wait_until([&] { return volume_state_is(mport, cluster.volume_urls()[0], "down"); }, 20s));
  for (int i = 0; i < 4; ++i) {
    got = run_curl(tmp, {"-L", cluster.store_url("small")});
    EXPECT_EQ(got.body, "small value") << got.describe();
  }
  ASSERT_TRUE(cluster.restart_volume(0));
  ASSERT_TRUE(
      wait_until([&] { return volume_state_is(mport, cluster.volume_urls()[0], "up"); }, 20s));

  // Deletes: the master's signed removals take the copies off both volumes.
  for (const auto* key : {"small", "big", "library"}) {
    const auto deleted = run_curl(tmp, {"-X", "DELETE", cluster.store_url(key)});
    EXPECT_EQ(deleted.http_status, 204) << key << ": " << deleted.describe();
  }
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 0; }, 20s))
      << cluster.blob_count() << " value files left";
  got = run_curl(tmp, {"-L", cluster.store_url("small")});
  EXPECT_EQ(got.http_status, 404) << got.describe();

  EXPECT_EQ(logs_holding(tmp, secret.text), std::vector<fs::path>{}) << "a log holds the secret";
}

TEST(SignedCluster, AReaderSentToAnOldVersionStillGetsItWithinTheGrace) {
  TempDir tmp;
  const auto secret = make_secret(tmp, "secret");
  const std::vector<std::string> signing{"--secret-file", secret.path.string(), "--sign-reads"};
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume(nullptr, signing));
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), signing));
  const auto mport = cluster.master_port();
  ASSERT_EQ(put_via_master(mport, "/store/k", "first").second.status, 201);
  const auto sent = get_via_master(mport, "/store/k");
  ASSERT_EQ(sent.second.body, "first") << sent.describe();
  ASSERT_EQ(put_via_master(mport, "/store/k", "second").second.status, 201);
  EXPECT_EQ(get_via_master(mport, "/store/k").second.body, "second");
  // The 302 given before the overwrite still reads what it named.
  const auto late = follow_redirect(sent.first, "GET");
  EXPECT_EQ(late.status, 200) << late.summary();
  EXPECT_EQ(late.body, "first");
}

// The order of docs/security.md: every daemon learns the new secret as its
// second, then each in turn signs with it, then the old one is dropped. One
// restart at a time; after each, with every daemon up, writes, reads and
// deletes go on and no request is refused.
TEST(SignedCluster, ASecretIsRotatedOneDaemonAtATimeWithoutARefusedRequest) {
  TempDir tmp;
  const auto old_secret = make_secret(tmp, "old");
  const auto new_secret = make_secret(tmp, "new");
  // The two forms a second secret takes: the flag twice, or a file of two lines.
  const auto both_new_first =
      write_private_file(tmp.path() / "new-then-old", {new_secret.text, old_secret.text});
  const std::vector<std::string> only_old{"--secret-file", old_secret.path.string()};
  const std::vector<std::string> old_then_new{"--secret-file", old_secret.path.string(),
                                              "--secret-file", new_secret.path.string()};
  const std::vector<std::string> new_then_old{"--secret-file", both_new_first.string()};
  const std::vector<std::string> only_new{"--secret-file", new_secret.path.string()};

  const uint16_t mport = pick_free_port();
  const std::string master_url = "http://127.0.0.1:" + std::to_string(mport);
  std::vector<uint16_t> vports{pick_free_port(), pick_free_port()};
  std::vector<std::string> vurls;
  for (const auto port : vports) vurls.push_back("http://127.0.0.1:" + std::to_string(port));
  std::vector<std::unique_ptr<Daemon>> volumes(2);
  std::unique_ptr<Daemon> master;
  const auto start_volume = [&](std::size_t i, const std::vector<std::string>& secrets) {
    if (volumes[i]) volumes[i]->stop();
    volumes[i] =
        std::make_unique<Daemon>("volume" + std::to_string(i), volume_binary(),
                                 volume_args(tmp.subdir("v" + std::to_string(i)), vports[i],
                                             join(secrets, {"-m", master_url, "-b", vurls[i]})),
                                 tmp.new_log_path("volume"));
    return volumes[i]->wait_ready();
  };
  const auto start_master = [&](const std::vector<std::string>& secrets) {
    if (master) master->stop();
    master = std::make_unique<Daemon>(
        "master", master_binary(),
        master_args(tmp.subdir("index"), mport, {},
                    join(secrets, {"--replicas", "2", "--advertise-url", master_url})),
        tmp.new_log_path("master"));
    return master->wait_ready();
  };
  int round = 0;
  // Every daemon up and known to the master, then one write, read and
  // delete, and every key written before still there.
  const auto works = [&]() -> ::testing::AssertionResult {
    for (const auto& url : vurls) {
      if (!wait_until([&] { return volume_state_is(mport, url, "up"); }, 20s)) {
        return ::testing::AssertionFailure() << url << " never up at the master";
      }
    }
    const auto key = "/store/round" + std::to_string(round);
    const auto value = "value " + std::to_string(round);
    const auto written = put_via_master(mport, key, value);
    if (written.second.status != 201) return ::testing::AssertionFailure() << written.describe();
    for (int i = 0; i <= round; ++i) {
      const auto read = get_via_master(mport, "/store/round" + std::to_string(i));
      if (read.second.body != "value " + std::to_string(i)) {
        return ::testing::AssertionFailure() << "round " << i << ": " << read.describe();
      }
    }
    const auto scratch = put_via_master(mport, "/store/scratch", "x");
    const auto deleted = http_request(mport, "DELETE", "/store/scratch");
    if (scratch.second.status != 201 || deleted.status != 204) {
      return ::testing::AssertionFailure() << scratch.describe() << " / " << deleted.summary();
    }
    ++round;
    return ::testing::AssertionSuccess();
  };

  ASSERT_TRUE(start_master(only_old));
  for (std::size_t i = 0; i < 2; ++i) ASSERT_TRUE(start_volume(i, only_old));
  ASSERT_TRUE(works());
  // 1. Everyone accepts the new secret, still signing with the old.
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(start_volume(i, old_then_new));
    ASSERT_TRUE(works()) << "volume " << i << " accepts both";
  }
  ASSERT_TRUE(start_master(old_then_new));
  ASSERT_TRUE(works());
  // 2. Each in turn signs with the new one.
  ASSERT_TRUE(start_volume(0, new_then_old));
  ASSERT_TRUE(works()) << "volume 0 signs with the new secret, the others with the old";
  ASSERT_TRUE(start_master(new_then_old));
  ASSERT_TRUE(works());
  ASSERT_TRUE(start_volume(1, new_then_old));
  ASSERT_TRUE(works());
  // 3. The old one is dropped everywhere.
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(start_volume(i, only_new));
    ASSERT_TRUE(works());
  }
  ASSERT_TRUE(start_master(only_new));
  ASSERT_TRUE(works());

  // And a daemon still on the old secret alone is refused from then on.
  const auto stale_port = pick_free_port();
  const auto stale_url = "http://127.0.0.1:" + std::to_string(stale_port);
  Daemon stale("stale", volume_binary(),
               volume_args(tmp.subdir("stale"), stale_port,
                           join(only_old, {"-m", master_url, "-b", stale_url})),
               tmp.new_log_path("stale"));
  ASSERT_TRUE(stale.wait_ready());
  EXPECT_TRUE(wait_until([&] { return stale.log_text().find("403") != std::string::npos; }, 20s))
      << stale.log_text();
  EXPECT_FALSE(volume_state_is(mport, stale_url, "up"));
  EXPECT_EQ(logs_holding(tmp, old_secret.text), std::vector<fs::path>{});
  EXPECT_EQ(logs_holding(tmp, new_secret.text), std::vector<fs::path>{});
}

TEST(AdminToken, GuardsEveryAdminEndpointAndNothingElse) {
  TempDir tmp;
  const auto token = random_token(40);
  const auto token_file = write_private_file(tmp.path() / "token", {token});
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--admin-token-file", token_file.string()}));
  const auto mport = cluster.master_port();

  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/admin/jobs"},
                                                        {"GET", "/admin/volumes"},
                                                        {"POST", "/admin/repair"},
                                                        {"POST", "/admin/rebalance"},
                                                        {"POST", "/admin/scrub"},
                                                        {"POST", "/admin/remove-volume"},
                                                        {"POST", "/admin/add-volume"}}) {
    const auto body = method == "POST" ? std::string("http://127.0.0.1:1") : std::string();
    for (const auto& headers : std::vector<HeaderList>{{},
                                                       bearer(token + "x"),
                                                       bearer(token.substr(1)),
                                                       {{"Authorization", "Basic " + token}},
                                                       {{"Authorization", token}}}) {
      const auto refused = http_request(mport, method, path, body, headers);
      EXPECT_EQ(refused.status, 401) << method << " " << path << ": " << refused.summary();
      EXPECT_EQ(refused.header("WWW-Authenticate").value_or(""), "Bearer") << path;
      EXPECT_EQ(refused.body.find(token), std::string::npos) << "the token is never echoed";
    }
  }
  EXPECT_FALSE(volume_state_is(mport, "http://127.0.0.1:1", "down", bearer(token)))
      << "a refused add-volume added nothing";
  EXPECT_EQ(http_request(mport, "GET", "/admin/jobs", {}, bearer(token)).status, 200);
  // The scheme is case-insensitive.
  EXPECT_EQ(http_request(mport, "GET", "/admin/volumes", {}, {{"Authorization", "bearer " + token}})
                .status,
            200);
  const auto repair = http_request(mport, "POST", "/admin/repair", {}, bearer(token));
  EXPECT_EQ(repair.status, 202) << repair.summary();

  // Clients are not admins: the store stays open to them.
  ASSERT_EQ(put_via_master(mport, "/store/k", "v").second.status, 201);
  EXPECT_EQ(get_via_master(mport, "/store/k").second.body, "v");
  EXPECT_EQ(http_request(mport, "GET", "/healthz").status, 200);

  // The admin commands send the token from their own --admin-token-file.
  const auto master = "http://127.0.0.1:" + std::to_string(mport);
  auto run = run_command(tmp, master_binary(),
                         {"jobs", "--master", master, "--admin-token-file", token_file.string()});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_TRUE(run.exit->clean()) << run.output;
  run = run_command(tmp, master_binary(), {"jobs", "--master", master});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_EQ(run.exit->code, 1) << run.output;
  EXPECT_NE(run.output.find("401"), std::string::npos) << run.output;
  run = run_command(tmp, master_binary(),
                    {"scrub", "--master", master, "--admin-token-file", token_file.string()});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_TRUE(run.exit->clean()) << run.output;
  EXPECT_EQ(logs_holding(tmp, token), std::vector<fs::path>{});
}

TEST(SignedCluster, OnlyASignedVolumeOrTheAdminAddsAVolume) {
  TempDir tmp;
  const auto secret = make_secret(tmp, "secret");
  const auto token = random_token(40);
  const auto token_file = write_private_file(tmp.path() / "token", {token});
  const uint16_t mport = pick_free_port();
  const std::string master_url = "http://127.0.0.1:" + std::to_string(mport);
  Daemon master("master", master_binary(),
                master_args(tmp.subdir("index"), mport, {},
                            {"--secret-file", secret.path.string(), "--admin-token-file",
                             token_file.string(), "--advertise-url", master_url}),
                tmp.new_log_path("master"));
  ASSERT_TRUE(master.wait_ready());
  EXPECT_EQ(master.log_text().find("no --secret-file"), std::string::npos) << master.log_text();

  // A volume with the secret registers itself (a signed call).
  const auto vport = pick_free_port();
  const auto vurl = "http://127.0.0.1:" + std::to_string(vport);
  Daemon volume("volume", volume_binary(),
                volume_args(tmp.subdir("v"), vport,
                            {"--secret-file", secret.path.string(), "-m", master_url, "-b", vurl}),
                tmp.new_log_path("volume"));
  ASSERT_TRUE(volume.wait_ready());
  EXPECT_TRUE(wait_until([&] { return volume_state_is(mport, vurl, "up", bearer(token)); }, 20s));
  ASSERT_EQ(put_via_master(mport, "/store/k", "v").second.status, 201);

  // Anyone else: refused, and nothing added.
  const auto intruder = http_request(mport, "POST", "/admin/add-volume", "http://127.0.0.1:9");
  EXPECT_EQ(intruder.status, 401) << intruder.summary();
  const auto unsigned_commit =
      http_request(mport, "POST",
                   "/internal/commit/k?volumes=" + percent_encode(vurl, false) +
                       "&version=99&size=1&checksum=00000000000000000000000000000000");
  EXPECT_EQ(unsigned_commit.status, 403) << unsigned_commit.summary();
  // The admin may add one by hand.
  const auto by_admin =
      http_request(mport, "POST", "/admin/add-volume", "http://127.0.0.1:9", bearer(token));
  EXPECT_EQ(by_admin.status, 200) << by_admin.summary();
  const auto listed = http_request(mport, "GET", "/admin/volumes", {}, bearer(token));
  EXPECT_NE(listed.body.find("http://127.0.0.1:9"), std::string::npos) << listed.body;
  EXPECT_EQ(get_via_master(mport, "/store/k").second.body, "v");
}

TEST(SecuritySettings, ADaemonRefusesToStartOnAnUnsafeSecretAndWarnsWithoutOne) {
  TempDir tmp;
  const auto good = make_secret(tmp, "good");
  const auto shared = write_private_file(tmp.path() / "shared", {random_token(64)}, 0640);
  const auto world = write_private_file(tmp.path() / "world", {random_token(64)}, 0604);
  const auto short_one = write_private_file(tmp.path() / "short", {random_token(31)});
  const auto three = write_private_file(tmp.path() / "three",
                                        {random_token(64), random_token(64), random_token(64)});
  const auto empty = write_private_file(tmp.path() / "empty", {});
  const auto loose_token = write_private_file(tmp.path() / "loose-token", {random_token(40)}, 0644);
  const auto short_token = write_private_file(tmp.path() / "short-token", {random_token(15)});
  struct Case {
    std::vector<std::string> args;
    std::string reason;  // a part of the one-line reason
    bool master_only = false;
  };
  const std::vector<Case> cases = {
      {{"--secret-file", shared.string()}, "group or others"},
      {{"--secret-file", world.string()}, "group or others"},
      {{"--secret-file", short_one.string()}, "shorter than 32 bytes"},
      {{"--secret-file", three.string()}, "at most 2 secrets"},
      {{"--secret-file", good.path.string(), "--secret-file", three.string()}, "at most 2"},
      {{"--secret-file", empty.string()}, "is empty"},
      {{"--secret-file", (tmp.path() / "missing").string()}, "missing"},
      {{"--sign-reads"}, "--sign-reads needs --secret-file"},
      {{"--secret-file", good.path.string(), "--token-ttl", "0"}, "--token-ttl"},
      {{"--admin-token-file", loose_token.string()}, "group or others", true},
      {{"--admin-token-file", short_token.string()}, "shorter than 16 bytes", true},
  };
  for (const auto& c : cases) {
    for (const bool master : {true, false}) {
      if (c.master_only && !master) continue;
      const auto args = master ? master_args(tmp.subdir("index"), 0, {}, c.args)
                               : volume_args(tmp.subdir("data"), 0, c.args);
      Daemon daemon(master ? "master" : "volume", master ? master_binary() : volume_binary(), args,
                    tmp.new_log_path("refused"));
      const auto exit = daemon.wait_exit(20s);
      ASSERT_TRUE(exit.has_value()) << c.reason << ": still running";
      EXPECT_EQ(exit->code, 2) << c.reason << ": " << exit->describe();
      const auto log = daemon.log_text();
      EXPECT_NE(log.find(c.reason), std::string::npos) << log;
      EXPECT_EQ(log.find("listening"), std::string::npos) << log;
    }
  }
  for (const auto& path : {shared, world, three}) {
    const auto text = read_file(path);
    EXPECT_EQ(logs_holding(tmp, text.substr(0, 32)), std::vector<fs::path>{})
        << "no secret in any message";
  }

  // Without a secret both start, open, and say so.
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  EXPECT_NE(cluster.master().log_text().find("no --secret-file"), std::string::npos)
      << cluster.master().log_text();
  EXPECT_NE(cluster.volume(0).log_text().find("no --secret-file"), std::string::npos)
      << cluster.volume(0).log_text();
  EXPECT_EQ(put_via_master(cluster.master_port(), "/store/open", "v").second.status, 201);
}

TEST(SignedCluster, MaintenanceAndRebuildWorkWithSignedCalls) {
  TempDir tmp;
  const auto secret = make_secret(tmp, "secret");
  const auto token = random_token(40);
  const auto token_file = write_private_file(tmp.path() / "token", {token});
  const std::vector<std::string> signing{"--secret-file", secret.path.string(), "--sign-reads"};
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume(nullptr, signing));
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(),
      join(signing, {"--replicas", "2", "--admin-token-file", token_file.string()})));
  const auto mport = cluster.master_port();
  constexpr int kKeys = 30;
  for (int i = 0; i < kKeys; ++i) {
    const auto put =
        put_via_master(mport, "/store/m" + std::to_string(i), "value" + std::to_string(i));
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  ASSERT_EQ(cluster.blob_count(), 2U * kKeys);

  // Volume 1's disk is replaced; a repair pulls copies from the others
  // (signed copy calls, signed reads of the sources).
  ASSERT_TRUE(cluster.volume(1).stop().has_value());
  fs::remove_all(cluster.volume_dir(1));
  ASSERT_TRUE(cluster.restart_volume(1));
  ASSERT_LT(cluster.blob_count(), 2U * kKeys);
  ASSERT_TRUE(wait_until(
      [&] { return volume_state_is(mport, cluster.volume_urls()[1], "up", bearer(token)); }, 20s));
  const auto master = "http://127.0.0.1:" + std::to_string(mport);
  auto run = run_command(tmp, master_binary(),
                         {"repair", "--master", master, "--admin-token-file", token_file.string()});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_TRUE(run.exit->clean()) << run.output;
  EXPECT_EQ(cluster.blob_count(), 2U * kKeys) << run.output;
  run = run_command(tmp, master_binary(),
                    {"scrub", "--master", master, "--admin-token-file", token_file.string()});
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_TRUE(run.exit->clean()) << run.output;
  EXPECT_NE(run.output.find("0 failed"), std::string::npos) << run.output;

  // The index is lost; a rebuild lists the volumes with signed calls.
  const auto stopped = cluster.master().stop();
  ASSERT_TRUE(stopped && stopped->clean());
  fs::remove_all(cluster.master_dir());
  const auto rebuild_args = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args{"rebuild", "-d", cluster.master_dir().string(), "-v"};
    for (const auto& url : cluster.volume_urls()) args.push_back(url);
    return join(args, extra);
  };
  run = run_command(tmp, master_binary(), rebuild_args({}));
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_NE(run.exit->code, 0) << "volumes refuse an unsigned listing: " << run.output;
  fs::remove_all(cluster.master_dir());
  run = run_command(tmp, master_binary(), rebuild_args({"--secret-file", secret.path.string()}));
  ASSERT_TRUE(run.exit.has_value());
  EXPECT_TRUE(run.exit->clean()) << run.output;
  ASSERT_TRUE(cluster.start_master_with_args(
      cluster.volume_urls(),
      join(signing, {"--replicas", "2", "--admin-token-file", token_file.string()})));
  for (int i = 0; i < kKeys; ++i) {
    const auto read = get_via_master(cluster.master_port(), "/store/m" + std::to_string(i));
    EXPECT_EQ(read.second.body, "value" + std::to_string(i)) << read.describe();
  }
}

}  // namespace
}  // namespace kalavara::it
