// Abandoned uploads, plain HTTP clients, keep-alive, path traversal and
// concurrent clients.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// 9. A redirect that is never followed, or an upload that dies midway, leaves
// the previous value (or no value) and no temp or extra blob files.
TEST(Robustness, AbandonedUploadsLeaveNoTrace) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string old_key = "abandon-old-" + random_token(8);
  const std::string new_key = "abandon-new-" + random_token(8);
  const std::string old_value = "old-" + random_token(16);
  const auto put_old = put_via_master(mport, "/store/" + old_key, old_value);
  ASSERT_EQ(put_old.second.status, 201) << put_old.describe();
  const auto blobs_before = cluster.blob_files();
  ASSERT_EQ(blobs_before.size(), 1u);

  auto expect_state = [&](const std::string& when) {
    SCOPED_TRACE(when);
    const auto old_get = get_via_master(mport, "/store/" + old_key);
    EXPECT_EQ(old_get.second.status, 200) << old_get.describe();
    EXPECT_EQ(old_get.second.body, old_value);
    const auto new_get = http_request(mport, "GET", "/store/" + new_key);
    EXPECT_EQ(new_get.status, 404) << new_get.summary();
  };

  // The 307 is read but the value is never uploaded.
  for (const auto& key : {old_key, new_key}) {
    const auto r = http_request(mport, "PUT", "/store/" + key, "new-" + random_token(16));
    ASSERT_EQ(r.status, 307) << r.summary();
  }
  expect_state("after redirects that were never followed");

  // The upload to the volume stops halfway: clean close, then reset.
  const fs::path tmp_dir = cluster.volume_dir(0) / "tmp";
  const std::string big = random_bytes(1 * kMiB);
  for (const auto& key : {old_key, new_key}) {
    for (const bool reset : {false, true}) {
      SCOPED_TRACE(key + (reset ? " reset" : " close"));
      const auto r = http_request(mport, "PUT", "/store/" + key, big);
      ASSERT_EQ(r.status, 307) << r.summary();
      const auto location = parse_url(r.header("Location").value_or(""));
      ASSERT_TRUE(location.has_value()) << r.summary();
      HttpConnection conn;
      ASSERT_EQ(conn.connect(location->port), "");
      HttpRequest req{"PUT", location->target, big, {}, true, true};
      const std::string wire = req.serialize(location->port);
      ASSERT_EQ(conn.send_all(std::string_view(wire).substr(0, wire.size() - big.size() / 2)), "");
      EXPECT_TRUE(wait_until([&] { return !regular_files_under(tmp_dir).empty(); }, 10s))
          << "no temp file in " << tmp_dir << " while the upload was in progress";
      if (reset) {
        conn.abort();
      } else {
        conn.close();
      }
      std::vector<fs::path> left;
      const bool emptied = wait_until(
          [&] {
            left = regular_files_under(tmp_dir);
            return left.empty();
          },
          10s);
      EXPECT_TRUE(emptied) << left.size() << " temp files left, first: "
                           << (left.empty() ? fs::path() : left.front());
      EXPECT_EQ(cluster.blob_files(), blobs_before);
    }
  }
  expect_state("after uploads that died midway");
  const auto health = http_request(cluster.volume(0).port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.summary();
}

// 10a. A plain HTTP client: whole body to the master (no Expect), 307, the same
// body again to Location.
TEST(PlainHttpClient, PutFollowingRedirectWithWholeBody) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "plain-" + random_token(8);
  const std::string value = random_bytes(300 * kKiB + 17);
  const auto put = put_via_master(cluster.master_port(), "/store/" + key, value);
  ASSERT_EQ(put.first.status, 307) << put.describe();
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto location = parse_url(put.first.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value());
  EXPECT_EQ(location->port, cluster.volume(0).port());

  const auto get = get_via_master(cluster.master_port(), "/store/" + key);
  ASSERT_EQ(get.first.status, 302) << get.describe();
  ASSERT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.header("Content-Length").value_or(""), std::to_string(value.size()));
  EXPECT_TRUE(get.second.body == value)
      << "value differs (" << get.second.body.size() << " vs " << value.size() << " bytes)";
}

// 10b. Several requests on one keep-alive connection, to the master and to a
// volume.
TEST(PlainHttpClient, KeepAliveConnectionServesSeveralRequests) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::string key = "ka-" + random_token(8);
  const std::string value = random_bytes(4096);
  const auto put = put_via_master(mport, "/store/" + key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();

  HttpConnection conn;
  ASSERT_EQ(conn.connect(mport), "");
  const std::string missing = "/store/missing-" + random_token(8);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("GET missing #" + std::to_string(i));
    const auto r = conn.request({"GET", missing, "", {}, true, true});
    ASSERT_EQ(r.status, 404) << r.summary();
  }
  const auto put_again =
      conn.request({"PUT", "/store/ka-new-" + random_token(8), random_bytes(1000), {}, true, true});
  ASSERT_EQ(put_again.status, 307) << put_again.summary();
  const auto get = conn.request({"GET", "/store/" + key, "", {}, true, true});
  ASSERT_EQ(get.status, 302) << get.summary();
  const auto head = conn.request({"HEAD", "/store/" + key, "", {}, true, true});
  EXPECT_EQ(head.status, 302) << head.summary();
  const auto health = conn.request({"GET", "/healthz", "", {}, true, true});
  EXPECT_EQ(health.status, 200) << health.summary();

  // Same on the volume the key lives on.
  const auto location = parse_url(get.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value()) << get.summary();
  HttpConnection vconn;
  ASSERT_EQ(vconn.connect(location->port), "");
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("volume GET #" + std::to_string(i));
    const auto r = vconn.request({"GET", location->target, "", {}, true, true});
    ASSERT_EQ(r.status, 200) << r.summary();
    EXPECT_TRUE(r.body == value);
    const auto m = vconn.request({"GET", "/store/missing-" + random_token(8), "", {}, true, true});
    ASSERT_EQ(m.status, 404) << m.summary();
  }
}

// 11. Whatever the path, a volume reads, writes and deletes nothing outside
// its data dir, answers no 5xx and stays up.
TEST(PathTraversal, VolumeStaysInsideItsDataDir) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t vport = cluster.volume(0).port();
  const uint16_t mport = cluster.master_port();

  const fs::path sentinel = tmp.subdir("outside") / "secret";
  const fs::path shallow = tmp.path() / "secret";
  const std::string secret = "sentinel-" + random_token(48);
  const std::string shallow_secret = "sentinel-" + random_token(48);
  write_file(sentinel, secret);
  write_file(shallow, shallow_secret);
  const std::string passwd = read_file("/etc/passwd");
  const std::vector<fs::path> excluded = {cluster.volume_dir(0), cluster.master_dir(),
                                          tmp.logs_dir(), tmp.scratch_dir()};
  const auto entries_before = entries_under(tmp.path(), excluded);

  // The query string the master gives uploads (lets the volume commit).
  const auto redirect = http_request(mport, "PUT", "/store/benign-" + random_token(6), "x");
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto benign = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(benign.has_value()) << redirect.summary();
  const auto qpos = benign->target.find('?');
  const std::string query = qpos == std::string::npos ? "" : benign->target.substr(qpos + 1);

  const std::string abs = sentinel.string();
  std::string deep_dots;
  std::string deep_encoded;
  for (int i = 0; i < 10; ++i) {
    deep_dots += "../";
    deep_encoded += "..%2F";
  }
  // Targets also used with PUT and DELETE (they point into the test dir).
  const std::vector<std::string> writable = {
      "/store/../outside/secret",
      "/store/../../outside/secret",
      "/store/../../../outside/secret",
      "/store/../secret",
      "/store/../../secret",
      "/store/%2e%2e/%2e%2e/outside/secret",
      "/store/%2e%2e/%2e%2e/%2e%2e/outside/secret",
      "/store/%2E%2E/%2E%2E/secret",
      "/store/..%2F..%2Foutside%2Fsecret",
      "/store/..%2F..%2F..%2Foutside%2Fsecret",
      "/store/..%2fsecret",
      "/store/%2e%2e%2f%2e%2e%2foutside%2fsecret",
      "/store/blobs/../../outside/secret",
      "/store/" + abs,
      "/store/" + percent_encode(abs, false),
      "/store/" + deep_dots + abs.substr(1),
      "/store/" + deep_encoded + percent_encode(abs.substr(1), false),
      "/store/a%00b",
      "/store/secret%00",
      "/store/..%00/outside/secret",
      "/store/%2e%2e%00",
      "/../../outside/secret",
      "/store/",
      "/store/.",
      "/store/..",
      "/store/%2e",
      "/store/%2e%2e",
  };
  // Targets only read (GET/HEAD): they point at system files.
  const std::vector<std::string> read_only = {
      "/store//etc/passwd",
      "/../../etc/passwd",
      "/store/" + deep_dots + "etc/passwd",
      "/store/%2Fetc%2Fpasswd",
      "/store/" + deep_encoded + "etc%2Fpasswd",
  };

  auto check_body = [&](const HttpResponse& r) {
    EXPECT_EQ(r.body.find(secret), std::string::npos) << "sentinel leaked: " << r.summary();
    EXPECT_EQ(r.body.find(shallow_secret), std::string::npos) << "sentinel leaked";
    if (!passwd.empty()) {
      EXPECT_EQ(r.body.find(passwd), std::string::npos) << "/etc/passwd leaked";
    }
  };
  auto send = [&](uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body) {
    SCOPED_TRACE(method + " " + printable(target));
    const auto r = http_request(port, method, target, body);
    ASSERT_NE(r.status, 0) << "no response: " << r.error;
    EXPECT_LT(r.status, 500) << r.summary();
    if (target.find("%00") != std::string::npos) {
      EXPECT_GE(r.status, 400) << "a key with NUL must be refused: " << r.summary();
    }
    check_body(r);
  };
  auto with_query = [&](const std::string& target) {
    if (query.empty()) return target;
    return target + (target.find('?') == std::string::npos ? "?" : "&") + query;
  };

  for (const auto& t : read_only) {
    send(vport, "GET", t, "");
    send(vport, "HEAD", t, "");
    send(mport, "GET", t, "");
  }
  for (const auto& t : writable) {
    send(vport, "GET", t, "");
    send(vport, "HEAD", t, "");
    send(vport, "PUT", with_query(t), "PWNED-" + random_token(8));
    send(vport, "GET", t, "");
    send(vport, "DELETE", t, "");
    send(vport, "PUT", t, "PWNED-" + random_token(8));
    send(vport, "DELETE", t, "");
    send(mport, "GET", t, "");
    send(mport, "DELETE", t, "");
  }

  EXPECT_TRUE(cluster.volume(0).running()) << "the volume died";
  EXPECT_TRUE(cluster.master().running()) << "the master died";
  const auto health = http_request(vport, "GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.summary();
  ASSERT_TRUE(fs::exists(sentinel)) << "sentinel deleted";
  ASSERT_TRUE(fs::exists(shallow)) << "sentinel deleted";
  EXPECT_EQ(read_file(sentinel), secret) << "sentinel overwritten";
  EXPECT_EQ(read_file(shallow), shallow_secret) << "sentinel overwritten";
  EXPECT_EQ(read_file("/etc/passwd"), passwd);
  const auto entries_after = entries_under(tmp.path(), excluded);
  EXPECT_EQ(entries_after, entries_before)
      << "files appeared or vanished outside the daemons' dirs";
}

// 12. 16 clients x 20 rounds of PUT then GET of distinct keys, half with the raw
// client and half with curl; every byte verified.
TEST(Concurrency, ParallelClientsReadTheirOwnWrites) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  constexpr int kThreads = 16;
  constexpr int kRounds = 20;
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::vector<std::pair<std::string, std::string>>> written(kThreads);
  std::atomic<int> verified{0};
  auto fail = [&](std::string message) {
    std::lock_guard<std::mutex> lock(mu);
    failures.push_back(std::move(message));
  };

  auto client = [&](int t) {
    const bool use_curl = t % 2 == 1;
    for (int r = 0; r < kRounds; ++r) {
      const std::string key =
          "conc/t" + std::to_string(t) + "/r" + std::to_string(r) + "-" + random_token(6);
      const std::size_t size = static_cast<std::size_t>((t * kRounds + r) * 211 % 40000);
      const std::string value = random_bytes(size);
      if (use_curl) {
        const fs::path in = tmp.new_scratch_path("conc-in");
        const fs::path out = tmp.new_scratch_path("conc-out");
        write_file(in, value);
        const auto put = run_curl(
            tmp, {"-XPUT", "-L", "--data-binary", "@" + in.string(), cluster.store_url(key)});
        if (put.http_status != 201) {
          fail("curl PUT " + key + ": " + put.describe());
          continue;
        }
        CurlOptions options;
        options.output_file = out;
        const auto get = run_curl(tmp, {"-L", cluster.store_url(key)}, options);
        if (get.http_status != 200 || read_file(out) != value) {
          fail("curl GET " + key + ": " + get.describe() + ", " +
               std::to_string(read_file(out).size()) + " of " + std::to_string(size) + " bytes");
          continue;
        }
      } else {
        const auto put = put_via_master(mport, "/store/" + key, value);
        if (put.second.status != 201) {
          fail("PUT " + key + ": " + put.describe());
          continue;
        }
        const auto get = get_via_master(mport, "/store/" + key);
        if (get.second.status != 200 || get.second.body != value) {
          fail("GET " + key + ": " + get.describe());
          continue;
        }
      }
      written[static_cast<std::size_t>(t)].emplace_back(key, value);
      ++verified;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(client, t);
  for (auto& th : threads) th.join();

  std::string report;
  for (std::size_t i = 0; i < failures.size() && i < 10; ++i) report += failures[i] + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures, first ones:\n" << report;
  EXPECT_EQ(verified.load(), kThreads * kRounds);

  // Once everyone is done, every key still holds its own value.
  int mismatches = 0;
  for (const auto& per_thread : written) {
    for (const auto& [key, value] : per_thread) {
      const auto get = get_via_master(mport, "/store/" + key);
      if (get.second.status != 200 || get.second.body != value) {
        if (++mismatches <= 5) ADD_FAILURE() << "re-read " << key << ": " << get.describe();
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(cluster.blob_count(), static_cast<std::size_t>(verified.load()));
}

}  // namespace
}  // namespace kalavara::it

namespace kalavara::it {
namespace {

// Clients that hang up in the middle of a large download: the volume's
// sendfile then writes to a closed socket, which must fail that response
// only (a SIGPIPE would kill the daemon).
TEST(Robustness, ClientsHangingUpMidDownloadDoNotKillTheVolume) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "/store/big-" + random_token(8);
  const auto value = random_bytes(16 * kMiB);
  const auto put = put_via_master(cluster.master_port(), key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto located = http_request(cluster.master_port(), "GET", key);
  ASSERT_EQ(located.status, 302) << located.summary();
  const auto url = parse_url(located.header("Location").value_or(""));
  ASSERT_TRUE(url.has_value()) << located.summary();

  for (int i = 0; i < 20; ++i) {
    HttpConnection connection;
    ASSERT_EQ(connection.connect(url->port), "");
    ASSERT_EQ(connection.send_all("GET " + url->target + " HTTP/1.1\r\nHost: x\r\n\r\n"), "");
    if (i % 2 == 0) {
      connection.abort();  // a reset
    } else {
      connection.close();  // an orderly close with unread data
    }
  }
  EXPECT_TRUE(wait_until(
      [&] { return http_request(cluster.volume(0).port(), "GET", "/healthz").status == 200; }, 5s));
  EXPECT_TRUE(cluster.volume(0).running()) << "the volume died";
  const auto read = get_via_master(cluster.master_port(), key);
  ASSERT_EQ(read.second.status, 200) << read.describe();
  EXPECT_EQ(read.second.body.size(), value.size());
  EXPECT_TRUE(read.second.body == value);
}

}  // namespace
}  // namespace kalavara::it
