// Volume membership, persistence across master restarts and graceful shutdown.
#include <csignal>
#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

std::string loopback_url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

// 6. POST /admin/add-volume validates its body, and added volumes survive a
// master restart without -v.
TEST(ClusterMembership, AddVolumeValidatesAndPersistsAcrossRestart) {
  TempDir tmp;
  Cluster cluster(tmp);
  std::size_t vi = 0;
  ASSERT_TRUE(cluster.start_volume(&vi));
  ASSERT_TRUE(cluster.start_master({}));
  const uint16_t mport = cluster.master_port();
  const std::string vurl = cluster.volume(vi).url();

  const auto before = http_request(mport, "PUT", "/store/before-" + random_token(6), "x");
  EXPECT_EQ(before.status, 503) << "no volume registered yet: " << before.summary();

  for (const std::string& body : {vurl + "\n", vurl, vurl + "/", "  " + vurl + " \r\n"}) {
    SCOPED_TRACE("add-volume body \"" + printable(body) + "\"");
    const auto r = http_request(mport, "POST", "/admin/add-volume", body);
    EXPECT_EQ(r.status, 200) << r.summary();
  }
  const std::vector<std::string> invalid = {
      "ftp://x",
      "http://h:1/path",
      "not a url",
      "",
      "\n",
      "http://127.0.0.1:0",
      "http://127.0.0.1:65536",
      "http://127.0.0.1:99999999999",
      "http://127.0.0.1:12ab",
      "http://:8080",
      vurl + "/store/x",
      vurl + "?q=1",
  };
  for (const auto& body : invalid) {
    SCOPED_TRACE("add-volume body \"" + printable(body) + "\"");
    const auto r = http_request(mport, "POST", "/admin/add-volume", body);
    EXPECT_EQ(r.status, 400) << r.summary();
  }

  const std::string key1 = "added-" + random_token(8);
  const std::string value1 = random_token(40);
  const auto put1 = run_curl(tmp, {"-XPUT", "-L", "-d", value1, cluster.store_url(key1)});
  ASSERT_EQ(put1.http_status, 201) << put1.describe();
  EXPECT_EQ(regular_files_under(cluster.volume_dir(vi) / "blobs").size(), 1u);

  // Restart with no -v at all: the registered volume comes back from the index dir.
  ASSERT_TRUE(cluster.restart_master({}));
  const std::string key2 = "after-restart-" + random_token(8);
  const std::string value2 = random_token(50);
  const auto put2 = run_curl(tmp, {"-XPUT", "-L", "-d", value2, cluster.store_url(key2)});
  ASSERT_EQ(put2.http_status, 201) << put2.describe();
  const auto get2 = run_curl(tmp, {"-L", cluster.store_url(key2)});
  EXPECT_EQ(get2.http_status, 200) << get2.describe();
  EXPECT_EQ(get2.body, value2);
  const auto get1 = run_curl(tmp, {"-L", cluster.store_url(key1)});
  EXPECT_EQ(get1.http_status, 200) << get1.describe();
  EXPECT_EQ(get1.body, value1);
  EXPECT_EQ(regular_files_under(cluster.volume_dir(vi) / "blobs").size(), 2u);
}

// 7a. A volume started with -m/-b before its master registers itself once the
// master is up.
TEST(ClusterMembership, VolumeSelfRegistersWithLaterMaster) {
  TempDir tmp;
  Cluster cluster(tmp);
  const uint16_t mport = pick_free_port();
  uint16_t vport = pick_free_port();
  for (int i = 0; i < 20 && vport == mport; ++i) vport = pick_free_port();
  ASSERT_NE(vport, mport);

  std::size_t vi = 0;
  ASSERT_TRUE(
      cluster.start_volume(&vi, {"-m", loopback_url(mport), "-b", loopback_url(vport)}, vport));
  EXPECT_EQ(cluster.volume(vi).port(), vport);
  ASSERT_TRUE(cluster.start_master({}, mport));
  ASSERT_EQ(cluster.master_port(), mport);

  const std::string key = "selfreg-" + random_token(8);
  const std::string value = random_bytes(5000);
  Exchange last;
  int attempts = 0;
  const bool stored = wait_until(
      [&] {
        ++attempts;
        last = put_via_master(mport, "/store/" + key, value);
        return last.second.status == 201;
      },
      15s, 200ms);
  ASSERT_TRUE(stored) << "after " << attempts << " attempts: " << last.describe();
  const auto location = parse_url(last.first.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value()) << last.describe();
  EXPECT_EQ(location->port, vport);

  const auto get = get_via_master(mport, "/store/" + key);
  ASSERT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.body, value);
  EXPECT_EQ(regular_files_under(cluster.volume_dir(vi) / "blobs").size(), 1u);
}

// 7b. -m without -b is a usage error: exit code 2 and a message.
TEST(ClusterMembership, VolumeWithMasterButNoBaseUrlExitsWith2) {
  TempDir tmp;
  const fs::path log = tmp.new_log_path("volume");
  Daemon volume("volume", volume_binary(),
                volume_args(tmp.subdir("volume"), 0, {"-m", loopback_url(pick_free_port())}), log);
  const auto st = volume.wait_exit(10s);
  ASSERT_TRUE(st.has_value()) << "volume still running 10 s after a bad command line";
  EXPECT_TRUE(st->exited) << st->describe();
  EXPECT_EQ(st->code, 2) << st->describe();
  const std::string text = volume.log_text();
  const auto first_newline = text.find('\n');  // the first line is the harness's command line
  const std::string daemon_output =
      first_newline == std::string::npos ? "" : text.substr(first_newline + 1);
  EXPECT_NE(daemon_output.find_first_not_of(" \r\n\t"), std::string::npos)
      << "no error message printed";
}

// 8. The index survives a clean master restart.
TEST(ClusterPersistence, IndexSurvivesMasterRestart) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  constexpr int kKeys = 20;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back("persist/" + std::to_string(i) + "-" + random_token(8));
    values.push_back(random_bytes(static_cast<std::size_t>(i) * 397));
    const auto put = put_via_master(cluster.master_port(), "/store/" + keys.back(), values.back());
    ASSERT_EQ(put.second.status, 201) << put.describe();
  }
  ASSERT_TRUE(cluster.restart_master(cluster.volume_urls()));
  for (int i = 0; i < kKeys; ++i) {
    SCOPED_TRACE("key " + keys[static_cast<std::size_t>(i)]);
    const auto get =
        get_via_master(cluster.master_port(), "/store/" + keys[static_cast<std::size_t>(i)]);
    ASSERT_EQ(get.second.status, 200) << get.describe();
    EXPECT_EQ(get.second.body, values[static_cast<std::size_t>(i)]);
  }
}

void expect_graceful_stop(int sig) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "stop-" + random_token(8);
  const std::string value = random_token(64);
  const auto put = put_via_master(cluster.master_port(), "/store/" + key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto master_exit = cluster.master().stop(sig, 10s);
  ASSERT_TRUE(master_exit.has_value()) << "master still running 10 s after signal " << sig;
  EXPECT_TRUE(master_exit->clean()) << "master " << master_exit->describe();
  const auto volume_exit = cluster.volume(0).stop(sig, 10s);
  ASSERT_TRUE(volume_exit.has_value()) << "volume still running 10 s after signal " << sig;
  EXPECT_TRUE(volume_exit->clean()) << "volume " << volume_exit->describe();
}

// 14. SIGTERM and SIGINT stop both daemons with exit code 0.
TEST(GracefulStop, SigtermExitsZero) { expect_graceful_stop(SIGTERM); }
TEST(GracefulStop, SigintExitsZero) { expect_graceful_stop(SIGINT); }

// 14b. An upload in progress when SIGTERM arrives is finished before exit.
TEST(GracefulStop, SigtermFinishesInFlightUpload) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "inflight-" + random_token(8);
  const std::string value = random_bytes(512 * kKiB);
  const auto redirect = http_request(cluster.master_port(), "PUT", "/store/" + key, value);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto location = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value()) << redirect.summary();

  HttpConnection conn;
  ASSERT_EQ(conn.connect(location->port), "");
  HttpRequest req{"PUT", location->target, value, {}, false, true};
  const std::string wire = req.serialize(location->port);
  const std::size_t half = wire.size() - value.size() / 2;
  ASSERT_EQ(conn.send_all(std::string_view(wire).substr(0, half)), "");
  // The upload is under way once its temp file exists.
  const fs::path tmp_dir = cluster.volume_dir(0) / "tmp";
  ASSERT_TRUE(wait_until([&] { return !regular_files_under(tmp_dir).empty(); }, 10s))
      << "no temp file appeared in " << tmp_dir << " during the upload";

  cluster.volume(0).send_signal(SIGTERM);
  ASSERT_EQ(conn.send_all(std::string_view(wire).substr(half)), "");
  const auto resp = conn.read_response();
  EXPECT_EQ(resp.status, 201) << resp.summary();
  const auto st = cluster.volume(0).wait_exit(10s);
  ASSERT_TRUE(st.has_value()) << "volume still running 10 s after SIGTERM";
  EXPECT_TRUE(st->clean()) << st->describe();
  // The write was committed in the master's index.
  const auto get = http_request(cluster.master_port(), "GET", "/store/" + key);
  EXPECT_EQ(get.status, 302) << get.summary();
}

}  // namespace
}  // namespace kalavara::it
