// The volume's maintenance endpoints on real volumes: the listing pages
// through everything held, byte for byte; verify quarantines a corrupt copy;
// copy pulls a value from another volume, checked against its ETag; delete
// markers are listed, never served, and removed by a removal up to them.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "blob_listing.hpp"
#include "harness.hpp"

namespace kalavara::it {
namespace {

std::string store_target(std::string_view key) { return "/store/" + percent_encode(key); }

// The checksum hex of an ETag header ("\"hex\"").
std::string etag_hex(const HttpResponse& response) {
  auto etag = response.header("ETag").value_or("");
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// The 300 keys of the listing test: plain, with '/', spaces and '%',
// arbitrary bytes, and 1000 bytes long.
std::vector<std::string> awkward_keys(std::size_t count) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < count; ++i) {
    const auto n = std::to_string(i);
    switch (i % 5) {
      case 0:
        keys.push_back("plain-" + n);
        break;
      case 1:
        keys.push_back("dir/sub/" + n + "/leaf");
        break;
      case 2:
        keys.push_back("with space %25 and % sign " + n);
        break;
      case 3: {
        auto bytes = random_bytes(24);
        std::replace(bytes.begin(), bytes.end(), '\0', '\x01');
        keys.push_back(bytes + n);
        break;
      }
      default: {
        auto key = "long-" + n + "-" + std::string("\xff/%\x7f ");
        key.resize(1000, 'L');
        keys.push_back(key);
      }
    }
  }
  return keys;
}

std::uint64_t stats_files(uint16_t port) {
  const auto stats = http_request(port, "GET", "/stats");
  const auto files = flat_json_field(stats.body, "files");
  return files ? std::stoull(*files) : ~std::uint64_t{0};
}

// Flips one bit of the byte at `offset` from the end of `path`.
void flip_byte_from_end(const fs::path& path, std::size_t offset) {
  auto bytes = read_file(path);
  bytes[bytes.size() - 1 - offset] ^= 0x01;
  write_file(path, bytes);
}

fs::path file_of(const fs::path& data_dir, const ListedBlob& blob) {
  return data_dir / "blobs" / blob.name.substr(0, 2) / blob.name.substr(2, 2) / blob.name;
}

TEST(VolumeAdmin, TheListingPagesThroughEveryKeyByteForByte) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto keys = awkward_keys(300);
  std::map<std::string, std::string> etag_of;  // by key
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto put =
        put_via_master(cluster.master_port(), store_target(keys[i]), "value " + std::to_string(i));
    ASSERT_EQ(put.second.status, 201) << printable(keys[i]) << ": " << put.describe();
    etag_of[keys[i]] = etag_hex(put.second);
  }
  ASSERT_EQ(etag_of.size(), keys.size());

  const auto port = cluster.volume(0).port();
  std::size_t pages = 0;
  const auto listed = list_all_blobs(port, 7, &pages);
  ASSERT_EQ(listed.size(), keys.size());
  // 300 entries, 7 a page: 42 full pages and one of 6.
  EXPECT_EQ(pages, 43U);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < listed.size(); ++i) {
    const auto& blob = listed[i];
    if (i > 0) {
      EXPECT_LT(listed[i - 1].name, blob.name) << "in name order";
    }
    ASSERT_TRUE(etag_of.contains(blob.key)) << "an unknown key: " << printable(blob.key);
    EXPECT_TRUE(seen.insert(blob.key).second) << printable(blob.key) << " listed twice";
    EXPECT_EQ(blob.checksum, etag_of[blob.key]) << printable(blob.key);
    const auto index = std::find(keys.begin(), keys.end(), blob.key) - keys.begin();
    EXPECT_EQ(blob.size, ("value " + std::to_string(index)).size());
    EXPECT_GT(blob.version, 0U);
    EXPECT_FALSE(blob.marker);
    EXPECT_GT(blob.mtime, 1'600'000'000U);
    EXPECT_TRUE(fs::exists(file_of(cluster.volume_dir(0), blob))) << blob.name;
  }
  EXPECT_EQ(seen.size(), keys.size());

  // One page with the default limit; the limit is bounded.
  const auto whole = http_request(port, "GET", "/admin/blobs");
  ASSERT_EQ(whole.status, 200) << whole.summary();
  EXPECT_EQ(std::count(whole.body.begin(), whole.body.end(), '\n'), 301);
  EXPECT_NE(whole.body.find("{\"next\":\"\"}\n"), std::string::npos);
  for (const auto* query : {"?limit=0", "?limit=10001", "?limit=x", "?after=nothex"}) {
    const auto refused = http_request(port, "GET", std::string("/admin/blobs") + query);
    EXPECT_EQ(refused.status, 400) << query << ": " << refused.summary();
  }
}

TEST(VolumeAdmin, VerifyQuarantinesACorruptCopySoItIsNeverServedOrListedAgain) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "verify me/please";
  const auto value = random_bytes(100 * kKiB);
  ASSERT_EQ(put_via_master(cluster.master_port(), store_target(key), value).second.status, 201);
  const auto port = cluster.volume(0).port();
  const auto listed = list_all_blobs(port, 10);
  ASSERT_EQ(listed.size(), 1U);
  const auto version = std::to_string(listed[0].version);
  const auto verify_target = "/admin/verify/" + percent_encode(key) + "?version=" + version;

  const auto intact = http_request(port, "POST", verify_target);
  EXPECT_EQ(intact.status, 200) << intact.summary();
  EXPECT_EQ(intact.body, "ok\n");
  EXPECT_EQ(http_request(port, "POST", verify_target + "1").status, 404);

  const auto path = file_of(cluster.volume_dir(0), listed[0]);
  flip_byte_from_end(path, 10);
  const auto corrupt = http_request(port, "POST", verify_target);
  EXPECT_EQ(corrupt.status, 409) << corrupt.summary();
  EXPECT_NE(corrupt.body.find("quarantined"), std::string::npos) << corrupt.summary();

  const auto direct = http_request(port, "GET", store_target(key) + "?version=" + version);
  EXPECT_EQ(direct.status, 404) << direct.summary();
  const auto through_master = get_via_master(cluster.master_port(), store_target(key));
  EXPECT_EQ(through_master.second.status, 404) << through_master.describe();
  EXPECT_TRUE(list_all_blobs(port, 10).empty());
  EXPECT_EQ(stats_files(port), 0U);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(cluster.volume_dir(0) / "quarantine" / listed[0].name));
  EXPECT_EQ(http_request(port, "POST", verify_target).status, 404) << "nothing left to verify";
  EXPECT_EQ(http_request(port, "POST", "/admin/verify/" + percent_encode(key)).status, 400);
}

// POST /admin/copy on `to` of `key` at `version` from `from_url`.
HttpResponse copy(uint16_t to, std::string_view key, std::uint64_t version,
                  const std::string& from_url) {
  return http_request(to, "POST",
                      "/admin/copy/" + percent_encode(key) + "?version=" + std::to_string(version) +
                          "&from=" + percent_encode(from_url, false));
}

TEST(VolumeAdmin, CopyPullsAValueFromAnotherVolumeCheckedAgainstItsETag) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));  // every value lands on volume 0
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_volume());
  const auto source = cluster.volume(0).url();
  const auto to = cluster.volume(1).port();

  const std::map<std::string, std::string> values{{"big/value", random_bytes(5 * kMiB)},
                                                  {"small value", "a small one"}};
  std::map<std::string, std::string> etags;
  for (const auto& [key, value] : values) {
    const auto put = put_via_master(cluster.master_port(), store_target(key), value);
    ASSERT_EQ(put.second.status, 201) << put.describe();
    etags[key] = put.second.header("ETag").value_or("");
  }
  std::map<std::string, std::uint64_t> version_of;
  for (const auto& blob : list_all_blobs(cluster.volume(0).port(), 10)) {
    version_of[blob.key] = blob.version;
  }
  ASSERT_EQ(version_of.size(), 2U);

  // The small one first: the big one's peak memory is then measured with
  // the copy's code paths warm.
  std::optional<long> rss_before;
  for (const auto& key : {std::string("small value"), std::string("big/value")}) {
    const auto& value = values.at(key);
    if (key == "big/value") rss_before = cluster.volume(1).peak_rss_kib();
    const auto copied = copy(to, key, version_of[key], source);
    ASSERT_EQ(copied.status, 201) << copied.summary();
    EXPECT_EQ(copied.header("ETag"), etags[key]);
    const auto read =
        http_request(to, "GET", store_target(key) + "?version=" + std::to_string(version_of[key]));
    ASSERT_EQ(read.status, 200) << read.summary();
    EXPECT_TRUE(read.body == value) << key << ": " << read.body.size() << " bytes";
    EXPECT_EQ(read.header("ETag"), etags[key]);
    const auto repeated = copy(to, key, version_of[key], source);
    EXPECT_EQ(repeated.status, 200) << repeated.summary();
    EXPECT_EQ(repeated.header("ETag"), etags[key]);
  }
  const auto rss_after = cluster.volume(1).peak_rss_kib();
  ASSERT_TRUE(rss_before && rss_after);
  // Streamed, never held whole: the copy's 5 MiB did not pass through memory.
  EXPECT_LT(*rss_after - *rss_before, 3 * 1024) << *rss_before << " KiB, then " << *rss_after;
  EXPECT_EQ(stats_files(to), 2U);
  EXPECT_TRUE(fs::is_empty(cluster.volume_dir(1) / "tmp"));

  // Another value under that version: refused, and it stays as it is.
  const auto third = cluster.volume(2).port();
  const auto small_version = std::to_string(version_of["small value"]);
  const auto other = http_request(
      third, "PUT", store_target("small value") + "?version=" + small_version + "&replica=1",
      "another value");
  ASSERT_EQ(other.status, 201) << other.summary();
  const auto conflict = copy(third, "small value", version_of["small value"], source);
  EXPECT_EQ(conflict.status, 409) << conflict.summary();
  EXPECT_EQ(
      http_request(third, "GET", store_target("small value") + "?version=" + small_version).body,
      "another value");

  // No such version at the source; a source that is not there.
  EXPECT_EQ(copy(to, "absent", 5, source).status, 404);
  const auto nobody = "http://127.0.0.1:" + std::to_string(pick_free_port());
  const auto unreachable = copy(third, "big/value", version_of["big/value"], nobody);
  EXPECT_EQ(unreachable.status, 502) << unreachable.summary();

  // A source whose copy went bad: its bytes do not give its ETag.
  for (const auto& blob : list_all_blobs(cluster.volume(0).port(), 10)) {
    if (blob.key == "big/value") flip_byte_from_end(file_of(cluster.volume_dir(0), blob), 4096);
  }
  const auto mismatch = copy(third, "big/value", version_of["big/value"], source);
  EXPECT_EQ(mismatch.status, 502) << mismatch.summary();
  EXPECT_NE(mismatch.body.find("checksum"), std::string::npos) << mismatch.summary();
  // Nothing of the failed copies is left on the third volume.
  const auto left = list_all_blobs(third, 10);
  ASSERT_EQ(left.size(), 1U);
  EXPECT_EQ(left[0].key, "small value");
  EXPECT_TRUE(fs::is_empty(cluster.volume_dir(2) / "tmp"));
  EXPECT_EQ(copy(third, "k", 1, "not a url").status, 400);
}

TEST(VolumeAdmin, MarkersAreListedNeverServedAndRemovedByARemovalUpToThem) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string key = "marked/key %";
  ASSERT_EQ(put_via_master(cluster.master_port(), store_target(key), "value").second.status, 201);
  const auto port = cluster.volume(0).port();
  const auto value_version = list_all_blobs(port, 10).at(0).version;
  const auto marker_version = value_version + 10;
  const auto marker_target =
      "/admin/marker/" + percent_encode(key) + "?version=" + std::to_string(marker_version);

  const auto marked = http_request(port, "PUT", marker_target);
  EXPECT_EQ(marked.status, 201) << marked.summary();
  EXPECT_EQ(http_request(port, "PUT", marker_target).status, 201) << "a repeat is the same marker";
  EXPECT_EQ(http_request(port, "PUT", "/admin/marker/" + percent_encode(key)).status, 400);

  // It survives a restart, and is listed after the value it follows.
  cluster.volume(0).stop();
  ASSERT_TRUE(cluster.restart_volume(0));
  auto listed = list_all_blobs(port, 1);
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_FALSE(listed[0].marker);
  EXPECT_EQ(listed[0].version, value_version);
  EXPECT_TRUE(listed[1].marker);
  EXPECT_EQ(listed[1].key, key);
  EXPECT_EQ(listed[1].version, marker_version);
  EXPECT_EQ(listed[1].size, 0U);
  EXPECT_EQ(listed[1].checksum, "");
  EXPECT_EQ(listed[1].name,
            listed[0].name.substr(0, 65) + listed[1].name.substr(65, 16) + ".marker");
  EXPECT_EQ(stats_files(port), 1U) << "markers are not values";

  // Never served: the newest value is still the value.
  const auto newest = http_request(port, "GET", store_target(key));
  EXPECT_EQ(newest.status, 200) << newest.summary();
  EXPECT_EQ(newest.body, "value");
  EXPECT_EQ(
      http_request(port, "GET", store_target(key) + "?version=" + std::to_string(marker_version))
          .status,
      404);

  // A removal of exactly its version leaves it; one up to the value's too;
  // one up to it takes it.
  const auto erase = [&](const std::string& query) {
    return http_request(port, "DELETE", store_target(key) + query).status;
  };
  EXPECT_EQ(erase("?version=" + std::to_string(marker_version)), 404);
  EXPECT_EQ(erase("?upto=" + std::to_string(value_version)), 204);
  listed = list_all_blobs(port, 10);
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_TRUE(listed[0].marker);
  EXPECT_EQ(erase("?upto=" + std::to_string(marker_version)), 204);
  EXPECT_TRUE(list_all_blobs(port, 10).empty());
}

}  // namespace
}  // namespace kalavara::it
