// The resource limits of docs/security.md ("Limits") as flags of the real
// daemons: key and value sizes, header bytes, connections, and the header
// deadline; and what a client that gives up mid-body leaves behind
// (nothing). The server-side mechanics (trickled headers, chunk extensions,
// trailers, slowloris) are covered in tests/http/http_server_test.cpp.
#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// The files in a volume's temp folder, where uploads are written first.
std::vector<fs::path> temp_files(const Cluster& cluster, std::size_t volume) {
  return regular_files_under(cluster.volume_dir(volume) / "tmp");
}

// The 307 for a PUT of `key` declaring `headers`, without sending a body
// (the request expects 100-continue, so the master need not wait for one).
Url redirect_for_put(uint16_t master_port, const std::string& key, HeaderList headers) {
  HttpConnection connection;
  EXPECT_EQ(connection.connect(master_port), "");
  headers.emplace_back("Expect", "100-continue");
  HttpRequest request{"PUT", "/store/" + key, {}, headers};
  request.content_length = false;
  const auto response = connection.request(request);
  EXPECT_EQ(response.status, 307) << response.summary();
  auto url = parse_url(response.header("Location").value_or(""));
  EXPECT_TRUE(url.has_value()) << response.summary();
  return url.value_or(Url{});
}

TEST(Limits, KeysAndValuesPastTheirLimitsAreRefusedAndTheOldValueKept) {
  TempDir tmp;
  const std::vector<std::string> limits{"--max-key-bytes", "16", "--max-value-bytes", "1KiB"};
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume(nullptr, limits));
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), limits));
  const auto mport = cluster.master_port();

  // Keys: 16 bytes once decoded is the most.
  auto put = run_curl(
      tmp, {"-L", "-X", "PUT", "-d", "v", cluster.store_url("%41" + std::string(15, 'k'))});
  EXPECT_EQ(put.http_status, 201) << put.describe();
  put = run_curl(tmp, {"-L", "-X", "PUT", "-d", "v", cluster.store_url(std::string(17, 'k'))});
  EXPECT_EQ(put.http_status, 400) << put.describe();
  EXPECT_NE(put.body.find("key is longer than 16 bytes"), std::string::npos) << put.describe();

  // Values: 1 KiB is the most, whatever the client.
  ASSERT_EQ(run_curl(tmp, {"-L", "-X", "PUT", "-d", "old", cluster.store_url("kept")}).http_status,
            201);
  const auto exact = std::string(1024, 'x');
  put = run_curl(tmp, {"-L", "-X", "PUT", "--data-binary", exact, cluster.store_url("exact")});
  EXPECT_EQ(put.http_status, 201) << put.describe();
  EXPECT_EQ(run_curl(tmp, {"-L", cluster.store_url("exact")}).body, exact);
  put = run_curl(tmp, {"-L", "-X", "PUT", "--data-binary", exact + "x", cluster.store_url("kept")});
  EXPECT_EQ(put.http_status, 413) << put.describe();
  EXPECT_NE(put.body.find("value is larger than 1024 bytes"), std::string::npos) << put.describe();
  // curl -T waits for 100-continue: the master refuses before any byte.
  const auto file = tmp.new_scratch_path("big");
  write_random_file(file, 64 * kKiB);
  put = run_curl(tmp, {"-L", "-T", file.string(), cluster.store_url("kept")});
  EXPECT_EQ(put.http_status, 413) << put.describe();
  // A library that sends the whole body first gets the same.
  const auto library = put_via_master(mport, "/store/kept", std::string(2048, 'y'));
  EXPECT_EQ(library.first.status, 413) << library.describe();

  // A chunked body declares no size: the master redirects it, and the
  // volume counts and refuses it once past the limit, keeping nothing.
  const auto order = redirect_for_put(mport, "kept", {{"Transfer-Encoding", "chunked"}});
  HttpConnection volume;
  ASSERT_EQ(volume.connect(order.port), "");
  std::string chunked = "PUT " + order.target +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(order.port) +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(512, 'z') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_EQ(volume.send_all(chunked), "");
  const auto refused = volume.read_response();
  EXPECT_EQ(refused.status, 413) << refused.summary();
  EXPECT_NE(refused.body.find("value is larger than 1024 bytes"), std::string::npos);
  EXPECT_TRUE(wait_until([&] { return temp_files(cluster, 0).empty(); }, 10s))
      << temp_files(cluster, 0).size() << " temp files left";

  const auto kept = run_curl(tmp, {"-L", cluster.store_url("kept")});
  EXPECT_EQ(kept.http_status, 200) << kept.describe();
  EXPECT_EQ(kept.body, "old");
  // Only the two values taken are on disk (plus the kept one).
  EXPECT_EQ(cluster.blob_count(), 3U);
}

TEST(Limits, AClientThatStopsMidBodyLeavesNoValueAndNoTempFile) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto mport = cluster.master_port();
  ASSERT_EQ(put_via_master(mport, "/store/k", "before").second.status, 201);

  struct Cut {
    std::string name;
    HeaderList headers;
    std::string sent;  // the part of the body that is sent
  };
  const std::vector<Cut> cuts = {
      {"declared length", {{"Content-Length", std::to_string(kMiB)}}, std::string(100 * kKiB, 'a')},
      {"chunked", {{"Transfer-Encoding", "chunked"}}, "10000\r\n" + std::string(32 * kKiB, 'b')},
      {"Expect: 100-continue",
       {{"Content-Length", std::to_string(kMiB)}, {"Expect", "100-continue"}},
       std::string(10 * kKiB, 'c')},
  };
  for (const auto& cut : cuts) {
    SCOPED_TRACE(cut.name);
    for (const bool reset : {false, true}) {
      const auto order = redirect_for_put(mport, "k", cut.headers);
      HttpConnection volume;
      ASSERT_EQ(volume.connect(order.port), "");
      std::string request = "PUT " + order.target +
                            " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(order.port) + "\r\n";
      for (const auto& [name, value] : cut.headers) request += name + ": " + value + "\r\n";
      ASSERT_EQ(volume.send_all(request + "\r\n" + cut.sent), "");
      // The volume has started on the upload when its temp file exists.
      EXPECT_TRUE(wait_until([&] { return !temp_files(cluster, 0).empty(); }, 10s));
      if (reset) {
        volume.abort();
      } else {
        volume.close();
      }
      EXPECT_TRUE(wait_until([&] { return temp_files(cluster, 0).empty(); }, 10s))
          << temp_files(cluster, 0).size() << " temp files left";
    }
  }
  const auto got = get_via_master(mport, "/store/k");
  EXPECT_EQ(got.second.body, "before") << got.describe();
  EXPECT_EQ(cluster.blob_count(), 1U) << "a broken-off upload left a value file";
}

TEST(Limits, ConnectionsHeadersAndTheHeaderDeadlineAreBoundedByFlags) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume(nullptr, {"--max-header-bytes", "2KiB"}));
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--max-connections", "4", "--header-timeout", "1"}));
  const auto mport = cluster.master_port();

  // Past 4 connections: 503 and close. The 4 held ones are still served.
  std::vector<std::unique_ptr<HttpConnection>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<HttpConnection>());
    ASSERT_EQ(held.back()->connect(mport), "");
    EXPECT_EQ(held.back()->request({"GET", "/healthz", {}, {}}).status, 200);
  }
  const auto refused = http_request(mport, "GET", "/healthz");
  EXPECT_EQ(refused.status, 503) << refused.summary();
  EXPECT_NE(refused.body.find("too many connections"), std::string::npos) << refused.summary();
  EXPECT_EQ(held[0]->request({"GET", "/healthz", {}, {}}).status, 200);
  held.pop_back();
  EXPECT_TRUE(wait_until([&] { return http_request(mport, "GET", "/healthz").status == 200; }, 10s))
      << "no new connection served after one of the 4 closed";
  held.clear();

  // A header that never ends in time: 408 after the 1 s deadline, though a
  // byte comes every 200 ms.
  HttpConnection slow;
  ASSERT_EQ(slow.connect(mport), "");
  slow.set_timeout(10s);
  const auto start = Clock::now();
  std::string error;
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 's');
  for (std::size_t i = 0; i < header.size() && error.empty(); ++i) {
    error = slow.send_all(header.substr(i, 1));
    std::this_thread::sleep_for(200ms);  // the slow client's pace
    if (Clock::now() - start > 8s) break;
  }
  const auto timed_out = slow.read_response();
  EXPECT_LT(Clock::now() - start, 5s) << "the trickling client held the connection";
  if (timed_out.status != 0) {
    EXPECT_EQ(timed_out.status, 408) << timed_out.summary();
  }

  // The volume's header limit is its own: 2 KiB.
  const auto big = http_request(cluster.volume(0).port(), "GET", "/healthz", {},
                                {{"X-Big", std::string(3000, 'h')}});
  EXPECT_EQ(big.status, 431) << big.summary();
  EXPECT_NE(big.body.find("larger than 2048 bytes"), std::string::npos) << big.summary();
  EXPECT_EQ(http_request(cluster.volume(0).port(), "GET", "/healthz").status, 200);
}

TEST(Limits, ALimitOutOfRangeIsRefusedAtStart) {
  TempDir tmp;
  const std::vector<std::vector<std::string>> cases = {
      {"--max-key-bytes", "1025"}, {"--max-key-bytes", "0"},  {"--max-header-bytes", "100"},
      {"--max-connections", "0"},  {"--header-timeout", "0"}, {"--max-value-bytes", "lots"},
  };
  for (const auto& args : cases) {
    for (const bool master : {true, false}) {
      SCOPED_TRACE(args[0] + " " + args[1] + (master ? " (master)" : " (volume)"));
      const auto full = master ? master_args(tmp.subdir("index"), 0, {}, args)
                               : volume_args(tmp.subdir("data"), 0, args);
      Daemon daemon(master ? "master" : "volume", master ? master_binary() : volume_binary(), full,
                    tmp.new_log_path("refused"));
      const auto exit = daemon.wait_exit(20s);
      ASSERT_TRUE(exit.has_value()) << "still running";
      EXPECT_EQ(exit->code, 2) << exit->describe();
      EXPECT_NE(daemon.log_text().find(args[0]), std::string::npos) << daemon.log_text();
    }
  }
}

}  // namespace
}  // namespace kalavara::it
