// The master's public API driven with the real curl binary and the raw client:
// seed commands, binary values, keys, bad input, overwrite, no volumes.
#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// Strips one trailing "\n" or "\r\n" and checks what is left is a single
// non-empty line.
::testing::AssertionResult is_one_line(const std::string& body) {
  std::string text = body;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return ::testing::AssertionFailure() << "empty error body";
  if (text.find_first_of("\r\n") != std::string::npos) {
    return ::testing::AssertionFailure()
           << "error body has several lines: \"" << printable(body) << "\"";
  }
  return ::testing::AssertionSuccess();
}

// 1. The README's seed commands, with /usr/bin/curl.
TEST(MasterApi, CurlSeedCommandsPutGetDelete) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "seed-" + random_token(12);
  const std::string value = "value-" + random_token(24);
  const std::string url = cluster.store_url(key);

  const auto put = run_curl(tmp, {"-XPUT", "-L", "-d", value, url});
  ASSERT_EQ(put.exit_code, 0) << put.describe();
  ASSERT_EQ(put.http_status, 201) << put.describe();

  const auto get = run_curl(tmp, {"-XGET", "-L", url});
  ASSERT_EQ(get.exit_code, 0) << get.describe();
  EXPECT_EQ(get.http_status, 200) << get.describe();
  EXPECT_EQ(get.body, value);
  const fs::path blobs = cluster.volume_dir(0) / "blobs";
  EXPECT_EQ(regular_files_under(blobs).size(), 1u) << "expected one blob file under " << blobs;

  const auto del = run_curl(tmp, {"-XDELETE", "-L", url});
  ASSERT_EQ(del.exit_code, 0) << del.describe();
  EXPECT_EQ(del.http_status, 204) << del.describe();

  const auto gone = run_curl(tmp, {"-XGET", "-L", url});
  ASSERT_EQ(gone.exit_code, 0) << gone.describe();
  EXPECT_EQ(gone.http_status, 404) << gone.describe();
  EXPECT_EQ(regular_files_under(blobs).size(), 0u) << "blob file left after DELETE in " << blobs;

  const auto del_again = run_curl(tmp, {"-XDELETE", "-L", url});
  EXPECT_EQ(del_again.http_status, 404) << del_again.describe();
}

// HEAD through the master's Location gives Content-Length == expected size.
void expect_head_size(Cluster& cluster, const std::string& key, std::size_t size) {
  const auto head = get_via_master(cluster.master_port(), "/store/" + key, "HEAD");
  ASSERT_EQ(head.first.status, 302) << head.describe();
  ASSERT_EQ(head.second.status, 200) << head.describe();
  const auto length = head.second.header("Content-Length");
  ASSERT_TRUE(length.has_value()) << head.describe();
  EXPECT_EQ(*length, std::to_string(size)) << head.describe();
}

// 2. Empty, 1 MiB and 64 MiB random values round-trip byte for byte.
TEST(MasterApi, BinaryValuesRoundTrip) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));

  {  // Empty value.
    const std::string key = "empty-" + random_token(8);
    const auto put = run_curl(tmp, {"-XPUT", "-L", "--data-binary", "", cluster.store_url(key)});
    ASSERT_EQ(put.exit_code, 0) << put.describe();
    ASSERT_EQ(put.http_status, 201) << put.describe();
    const auto get = run_curl(tmp, {"-L", cluster.store_url(key)});
    EXPECT_EQ(get.http_status, 200) << get.describe();
    EXPECT_EQ(get.body, "");
    const auto raw = get_via_master(cluster.master_port(), "/store/" + key);
    ASSERT_EQ(raw.second.status, 200) << raw.describe();
    EXPECT_EQ(raw.second.header("Content-Length").value_or("missing"), "0") << raw.describe();
    EXPECT_EQ(raw.second.body, "");
    expect_head_size(cluster, key, 0);
  }

  struct Case {
    std::size_t size;
    std::vector<std::string> upload;  // curl options before the URL
  };
  const fs::path one_mib = tmp.path() / "one-mib.bin";
  const fs::path big = tmp.path() / "big.bin";
  write_random_file(one_mib, 1 * kMiB);
  write_random_file(big, 64 * kMiB);
  const std::vector<std::pair<fs::path, Case>> cases = {
      {one_mib, {1 * kMiB, {"-XPUT", "--data-binary", "@" + one_mib.string()}}},
      {big, {64 * kMiB, {"-T", big.string()}}},
  };
  for (const auto& [source, c] : cases) {
    SCOPED_TRACE("value of " + std::to_string(c.size) + " bytes");
    const std::string key = "bin-" + random_token(8);
    std::vector<std::string> args = c.upload;
    args.push_back("-L");
    args.push_back(cluster.store_url(key));
    const auto put = run_curl(tmp, args);
    ASSERT_EQ(put.exit_code, 0) << put.describe();
    ASSERT_EQ(put.http_status, 201) << put.describe();

    const fs::path out = tmp.path() / ("out-" + key);
    CurlOptions to_file;
    to_file.output_file = out;
    const auto get = run_curl(tmp, {"-L", cluster.store_url(key)}, to_file);
    ASSERT_EQ(get.exit_code, 0) << get.describe();
    ASSERT_EQ(get.http_status, 200) << get.describe();
    EXPECT_TRUE(files_equal(source, out));
    expect_head_size(cluster, key, c.size);
  }
}

// 3. Keys with slashes, spaces, UTF-8, dot segments, and the length limit.
TEST(MasterApi, KeysWithSpecialBytesDoNotCollide) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));

  struct KeyCase {
    std::string encoded;  // as written in the URL after /store/
    std::vector<std::string> curl_flags;
  };
  const std::string long_key = random_token(1024);
  std::string long_utf8;  // 512 x "é" = 1024 bytes once decoded
  for (int i = 0; i < 512; ++i) long_utf8 += "%C3%A9";
  const std::vector<KeyCase> keys = {
      {"abc", {}},
      {"a/b/c", {}},
      {"a%20b%20c", {}},
      {"a+b+c", {}},
      {"a%25b%25c", {}},  // "a%b%c"
      {"a/b", {}},
      {"b", {}},
      {"y", {}},
      {"ete", {}},
      {"%C3%A9t%C3%A9", {}},         // "été"
      {"a/%2E%2E/b", {}},            // "a/../b"
      {"x/../y", {"--path-as-is"}},  // "x/../y"
      {"x/%2E/y", {}},               // "x/./y"
      {"%2Fabs", {}},                // "/abs"
      {"abs", {}},
      {long_key, {}},
      {long_utf8, {}},
  };
  std::vector<std::string> values;
  for (const auto& k : keys) {
    SCOPED_TRACE("PUT key " + printable(k.encoded, 80));
    values.push_back(random_bytes(100 + values.size()));
    const fs::path value_file = tmp.new_scratch_path("value");
    write_file(value_file, values.back());
    std::vector<std::string> args = k.curl_flags;
    for (const char* a : {"-XPUT", "-L", "--data-binary"}) args.emplace_back(a);
    args.push_back("@" + value_file.string());
    args.push_back(cluster.store_url(k.encoded));
    const auto put = run_curl(tmp, args);
    ASSERT_EQ(put.exit_code, 0) << put.describe();
    ASSERT_EQ(put.http_status, 201) << put.describe();
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE("GET key " + printable(keys[i].encoded, 80));
    std::vector<std::string> args = keys[i].curl_flags;
    args.emplace_back("-L");
    args.push_back(cluster.store_url(keys[i].encoded));
    const auto get = run_curl(tmp, args);
    EXPECT_EQ(get.http_status, 200) << get.describe();
    EXPECT_EQ(get.body, values[i]) << "got " << printable(get.body, 60);
  }
  EXPECT_EQ(cluster.blob_count(), keys.size()) << "one blob file per distinct key";

  // The same keys spelled differently (raw client, sent byte for byte).
  const std::vector<std::pair<std::string, std::size_t>> aliases = {
      {"/store/a%2Fb%2Fc", 1},          // %2F decodes to '/'
      {"/store/a%2fb%2fc", 1},          // lowercase hex
      {"/store/%61bc", 0},              // %61 = 'a'
      {"/store/a%2Bb%2Bc", 3},          // "+" is not a space
      {"/store/\xC3\xA9t\xC3\xA9", 9},  // raw UTF-8 bytes in the request line
      {"/store/a/../b", 10},            // no normalisation of dot segments
      {"/store/abc?x=1&y=2", 0},        // the query string is not part of the key
  };
  for (const auto& [target, index] : aliases) {
    SCOPED_TRACE("alias " + printable(target, 80));
    const auto get = get_via_master(cluster.master_port(), target);
    ASSERT_EQ(get.second.status, 200) << get.describe();
    EXPECT_EQ(get.second.body, values[index]);
  }

  // A raw UTF-8 PUT (raw client) read back with the percent-encoded spelling.
  const std::string raw_key = "\xC3\xBCn\xC3\xAF-" + random_token(6);  // "ünï-..."
  const std::string raw_value = random_bytes(777);
  const auto put_raw = put_via_master(cluster.master_port(), "/store/" + raw_key, raw_value);
  ASSERT_EQ(put_raw.second.status, 201) << put_raw.describe();
  const auto get_raw = run_curl(tmp, {"-L", cluster.store_url(percent_encode(raw_key))});
  EXPECT_EQ(get_raw.http_status, 200) << get_raw.describe();
  EXPECT_EQ(get_raw.body, raw_value);

  // A PUT with a query string stores under the key without it.
  const std::string q_key = "q-" + random_token(8);
  const std::string q_value = random_token(30);
  const auto put_q =
      run_curl(tmp, {"-XPUT", "-L", "-d", q_value, cluster.store_url(q_key + "?ignored=1")});
  ASSERT_EQ(put_q.http_status, 201) << put_q.describe();
  const auto get_q = run_curl(tmp, {"-L", cluster.store_url(q_key)});
  EXPECT_EQ(get_q.http_status, 200) << get_q.describe();
  EXPECT_EQ(get_q.body, q_value);

  // 1025 bytes is one too many, however it is spelled.
  const std::vector<std::string> too_long = {random_token(1025), long_utf8 + "a"};
  for (const auto& key : too_long) {
    const auto put = run_curl(tmp, {"-XPUT", "-L", "-d", "x", cluster.store_url(key)});
    EXPECT_EQ(put.http_status, 400) << put.describe();
    const auto get = http_request(cluster.master_port(), "GET", "/store/" + key);
    EXPECT_EQ(get.status, 400) << get.summary();
  }
}

// 4. Bad input on the master: status codes and one-line error bodies.
TEST(MasterApi, BadRequestsGetClearErrors) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  struct BadCase {
    std::string method;
    std::string target;
    int status;
  };
  const std::vector<BadCase> cases = {
      {"PUT", "/store/", 400},           {"GET", "/store/", 400},
      {"PUT", "/store/a%00b", 400},      {"GET", "/store/%00", 400},
      {"PUT", "/store/%zz", 400},        {"GET", "/store/a%zzb", 400},
      {"GET", "/store/abc%", 400},       {"PUT", "/store/abc%4", 400},
      {"DELETE", "/store/%G1", 400},     {"GET", "/nope", 404},
      {"PUT", "/nope/store/k", 404},     {"POST", "/store/k", 405},
      {"PATCH", "/store/k", 405},        {"GET", "/admin/add-volume", 405},
      {"PUT", "/admin/add-volume", 405},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + printable(c.target));
    const std::string body = (c.method == "PUT" || c.method == "POST") ? "x" : "";
    const auto r = http_request(cluster.master_port(), c.method, c.target, body);
    ASSERT_NE(r.status, 0) << r.summary();
    EXPECT_EQ(r.status, c.status) << r.summary();
    EXPECT_TRUE(is_one_line(r.body)) << r.summary();
    if (c.status == 405) {
      const auto allow = r.header("Allow");
      ASSERT_TRUE(allow.has_value()) << r.summary();
      EXPECT_FALSE(allow->empty()) << r.summary();
      EXPECT_EQ(allow->find(c.method), std::string::npos) << "Allow lists the refused method";
    }
  }
  // The same errors reach curl users.
  const auto curl_bad = run_curl(tmp, {"-XPUT", "-L", "-d", "x", cluster.store_url("a%zz")});
  EXPECT_EQ(curl_bad.http_status, 400) << curl_bad.describe();
  EXPECT_TRUE(is_one_line(curl_bad.body));

  const auto health = http_request(cluster.master_port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.summary();
}

// 5. Overwrites: the last value wins and only one blob file remains.
TEST(MasterApi, OverwriteKeepsOnlyTheLastValue) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cluster.start_volume());
  // A short grace: the replaced versions stay readable for 1 s, then go.
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--old-version-grace", "1"}));
  const std::string key = "over-" + random_token(10);
  std::string last;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    last = "v" + std::to_string(round) + "-" + random_token(10 + static_cast<std::size_t>(round));
    const auto put = run_curl(tmp, {"-XPUT", "-L", "-d", last, cluster.store_url(key)});
    ASSERT_EQ(put.http_status, 201) << put.describe();
    const auto get = run_curl(tmp, {"-L", cluster.store_url(key)});
    EXPECT_EQ(get.http_status, 200) << get.describe();
    EXPECT_EQ(get.body, last);
  }
  std::size_t blobs = 0;
  const bool one = wait_until(
      [&] {
        blobs = cluster.blob_count();
        return blobs == 1;
      },
      10s);
  EXPECT_TRUE(one) << blobs << " blob files for one key";
  const auto get = get_via_master(cluster.master_port(), "/store/" + key);
  ASSERT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.body, last);
}

// 15. A master without volumes refuses writes with 503.
TEST(MasterApi, NoVolumesMeansServiceUnavailable) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_master({}));
  const std::string key = "nov-" + random_token(8);
  const auto raw = http_request(cluster.master_port(), "PUT", "/store/" + key, "value");
  EXPECT_EQ(raw.status, 503) << raw.summary();
  const auto curl = run_curl(tmp, {"-XPUT", "-L", "-d", "value", cluster.store_url(key)});
  EXPECT_EQ(curl.exit_code, 0) << curl.describe();
  EXPECT_EQ(curl.http_status, 503) << curl.describe();
  const auto get = http_request(cluster.master_port(), "GET", "/store/" + key);
  EXPECT_EQ(get.status, 404) << get.summary();
  const auto health = http_request(cluster.master_port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.summary();
}

}  // namespace
}  // namespace kalavara::it
