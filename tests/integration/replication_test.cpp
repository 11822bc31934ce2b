// Replication: with --replicas N every value lives on N volumes, reads survive
// a killed volume, writes and deletes go on while it is down, and once it is
// back the cluster converges to exactly the committed versions (no orphans).
// The files on the volumes are checked directly: each write is one file,
// DATA_DIR/blobs/xx/yy/<sha256(key) hex>.<version as 16 hex>.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <latch>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4): volumes name a key's files by it.

std::string sha256_hex(std::string_view data) {
  static constexpr std::array<std::uint32_t, 64> kRound = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  std::array<std::uint32_t, 8> state = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string message(data);
  message.push_back(static_cast<char>(0x80));
  while (message.size() % 64 != 56) message.push_back('\0');
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  for (int shift = 56; shift >= 0; shift -= 8) {
    message.push_back(static_cast<char>((bits >> shift) & 0xff));
  }
  const auto rotr = [](std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (std::size_t block = 0; block < message.size(); block += 64) {
    std::array<std::uint32_t, 64> w{};
    for (std::size_t t = 0; t < 16; ++t) {
      for (std::size_t b = 0; b < 4; ++b) {
        w[t] = (w[t] << 8) | static_cast<unsigned char>(message[block + 4 * t + b]);
      }
    }
    for (std::size_t t = 16; t < 64; ++t) {
      const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::array<std::uint32_t, 8> v = state;  // a..h
    for (std::size_t t = 0; t < 64; ++t) {
      const std::uint32_t big_s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
      const std::uint32_t choose = (v[4] & v[5]) ^ (~v[4] & v[6]);
      const std::uint32_t t1 = v[7] + big_s1 + choose + kRound[t] + w[t];
      const std::uint32_t big_s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
      const std::uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
      const std::uint32_t t2 = big_s0 + majority;
      v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
    }
    for (std::size_t i = 0; i < 8; ++i) state[i] += v[i];
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const std::uint32_t word : state) {
    for (int shift = 28; shift >= 0; shift -= 4) hex.push_back(kHex[(word >> shift) & 0xf]);
  }
  return hex;
}

// sha256sum's digest of `bytes` (written to a scratch file first).
std::string sha256sum_of(const TempDir& tmp, std::string_view bytes) {
  const fs::path input = tmp.new_scratch_path("sha-input");
  const fs::path output = tmp.new_scratch_path("sha-output");
  write_file(input, bytes);
  std::string error;
  const pid_t pid = spawn_process({"/usr/bin/sha256sum", input.string()}, output, output, error);
  if (pid < 0) return "spawn failed: " + error;
  const auto st = wait_process(pid, 10s);
  if (!st || !st->clean()) return "sha256sum failed: " + read_file(output);
  const std::string text = read_file(output);
  return text.substr(0, text.find(' '));
}

// ---------------------------------------------------------------------------
// Blob files on the volumes

struct BlobFile {
  std::size_t volume = 0;
  fs::path path;
  std::string digest;                    // the name before the dot
  std::optional<std::uint64_t> version;  // the 16-hex suffix; nullopt if malformed
};

std::optional<std::uint64_t> parse_number(std::string_view text, int base) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

BlobFile describe_blob(std::size_t volume, const fs::path& path) {
  BlobFile blob{volume, path, path.filename().string(), std::nullopt};
  const std::string name = path.filename().string();
  const auto dot = name.find('.');
  if (dot == 64 && name.size() == 64 + 1 + 16) {
    blob.digest = name.substr(0, 64);
    blob.version = parse_number(std::string_view(name).substr(65), 16);
  }
  return blob;
}

// Every regular file under every volume's DATA_DIR/blobs.
std::vector<BlobFile> all_blobs(const Cluster& cluster) {
  std::vector<BlobFile> out;
  for (std::size_t v = 0; v < cluster.volume_count(); ++v) {
    for (const auto& path : regular_files_under(cluster.volume_dir(v) / "blobs")) {
      out.push_back(describe_blob(v, path));
    }
  }
  return out;
}

// The files of one key (any version) on every volume.
std::vector<BlobFile> blobs_of(const Cluster& cluster, const std::string& digest) {
  std::vector<BlobFile> out;
  for (std::size_t v = 0; v < cluster.volume_count(); ++v) {
    const fs::path dir =
        cluster.volume_dir(v) / "blobs" / digest.substr(0, 2) / digest.substr(2, 2);
    for (const auto& path : regular_files_under(dir)) {
      auto blob = describe_blob(v, path);
      if (blob.digest == digest) out.push_back(std::move(blob));
    }
  }
  return out;
}

std::string describe_blobs(const std::vector<BlobFile>& blobs) {
  std::string out = std::to_string(blobs.size()) + " file(s):";
  for (const auto& b : blobs) out += " [volume" + std::to_string(b.volume) + "] " + b.path.string();
  return out;
}

// The value stored in a blob file: the bytes after the header, whose length is
// the u16 little-endian at offset 6.
std::optional<std::string> value_in_blob(const fs::path& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 8) return std::nullopt;
  const std::size_t header = static_cast<unsigned char>(bytes[6]) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(bytes[7])) << 8);
  if (header > bytes.size()) return std::nullopt;
  return bytes.substr(header);
}

// ---------------------------------------------------------------------------
// Master views

// The version=V (decimal) of a redirect's Location.
std::optional<std::uint64_t> version_in(const HttpResponse& redirect) {
  const std::string location = redirect.header("Location").value_or("");
  const auto at = location.find("version=");
  if (at == std::string::npos) return std::nullopt;
  const auto end = location.find('&', at);
  const std::string text =
      location.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
  return parse_number(text, 10);
}

// The version the master sends readers of `key` to (HEAD, not followed).
std::optional<std::uint64_t> master_version(uint16_t master_port, const std::string& key) {
  const auto head = http_request(master_port, "HEAD", "/store/" + key);
  if (head.status != 302) return std::nullopt;
  return version_in(head);
}

struct VolumeStatus {
  std::string url;
  std::string state;
  std::optional<std::uint64_t> keys;
};

// The raw text of `field` in a flat JSON object: a string's contents or a
// literal up to the next ',' or '}'.
std::optional<std::string> json_field(std::string_view object, std::string_view field) {
  const std::string quoted = "\"" + std::string(field) + "\"";
  auto at = object.find(quoted);
  if (at == std::string_view::npos) return std::nullopt;
  at = object.find(':', at + quoted.size());
  if (at == std::string_view::npos) return std::nullopt;
  at = object.find_first_not_of(" \t\r\n", at + 1);
  if (at == std::string_view::npos) return std::nullopt;
  if (object[at] == '"') {
    const auto end = object.find('"', at + 1);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(object.substr(at + 1, end - at - 1));
  }
  const auto end = object.find_first_of(",}", at);
  std::string text(object.substr(at, end == std::string_view::npos ? end : end - at));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.pop_back();
  return text;
}

// GET /admin/volumes on the master; nullopt unless 200 with a JSON array.
std::optional<std::vector<VolumeStatus>> admin_volumes(uint16_t master_port,
                                                       std::string* raw = nullptr) {
  const auto resp = http_request(master_port, "GET", "/admin/volumes");
  if (raw != nullptr) *raw = resp.summary();
  if (resp.status != 200) return std::nullopt;
  const std::string& body = resp.body;
  const auto first = body.find_first_not_of(" \r\n\t");
  if (first == std::string::npos || body[first] != '[') return std::nullopt;
  std::vector<VolumeStatus> out;
  std::size_t pos = first;
  for (int i = 0; i < 1000; ++i) {
    const auto open = body.find('{', pos);
    if (open == std::string::npos) break;
    const auto close = body.find('}', open);
    if (close == std::string::npos) return std::nullopt;
    const std::string_view object = std::string_view(body).substr(open, close - open + 1);
    VolumeStatus status;
    status.url = json_field(object, "url").value_or("");
    status.state = json_field(object, "state").value_or("");
    if (auto keys = json_field(object, "keys")) status.keys = parse_number(*keys, 10);
    out.push_back(std::move(status));
    pos = close + 1;
  }
  return out;
}

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The state the master reports for `url` ("" if it is not listed).
std::string state_of(const std::vector<VolumeStatus>& statuses, const std::string& url) {
  for (const auto& s : statuses) {
    if (without_trailing_slash(s.url) == url) return s.state;
  }
  return "";
}

// Polls /admin/volumes until every volume of `cluster` has the state
// `expected(i)`.
template <typename Expected>
::testing::AssertionResult wait_for_states(Cluster& cluster, Expected expected, Millis timeout) {
  std::string last;
  const bool ok = wait_until(
      [&] {
        const auto statuses = admin_volumes(cluster.master_port(), &last);
        if (!statuses || statuses->size() != cluster.volume_count()) return false;
        for (std::size_t i = 0; i < cluster.volume_count(); ++i) {
          if (state_of(*statuses, cluster.volume(i).url()) != expected(i)) return false;
        }
        return true;
      },
      timeout, 50ms);
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "volume states not reached within " << timeout.count()
                                       << " ms; last /admin/volumes: " << last;
}

// ---------------------------------------------------------------------------
// The scenario of tests 1-4: three volumes, --replicas 2, thirty keys.

constexpr std::size_t kInitialKeys = 30;

struct Scenario {
  TempDir tmp;
  Cluster cluster{tmp};
  std::vector<std::string> original;              // the first keys, in order
  std::map<std::string, std::string> values;      // live key -> current value
  std::vector<std::string> added;                 // keys written while a volume was down
  std::vector<std::string> deleted;               // keys deleted while it was down
  std::map<std::string, std::uint64_t> replaced;  // overwritten key -> its old version
  std::size_t dead = 0;                           // the killed volume
  Clock::time_point killed_at;

  uint16_t mport() { return cluster.master_port(); }
  std::string url(const std::string& key) { return cluster.store_url(key); }
};

void curl_put(Scenario& s, const std::string& key, const std::string& value) {
  const auto put = run_curl(s.tmp, {"-XPUT", "-L", "-d", value, s.url(key)});
  ASSERT_EQ(put.http_status, 201) << "PUT " << key << ": " << put.describe();
  s.values[key] = value;
}

void start_and_store(Scenario& s) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.cluster.start_volume());
  // A short grace, so overwritten keys' old versions go within the test.
  ASSERT_TRUE(s.cluster.start_master_with_args(s.cluster.volume_urls(),
                                               {"--replicas", "2", "--old-version-grace", "1"}));
  const std::string run = random_token(6);
  for (std::size_t i = 0; i < kInitialKeys; ++i) {
    const std::string key = "rep-" + run + "-" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(
        curl_put(s, key, "value-" + std::to_string(i) + "-" + random_token(24)));
    s.original.push_back(key);
  }
}

// Kills (SIGKILL) the volume holding the most files: with 2 copies of 30 keys
// over 3 volumes it holds at least 20, so enough keys have a copy there.
void kill_busiest_volume(Scenario& s) {
  std::vector<std::size_t> per_volume(s.cluster.volume_count(), 0);
  for (const auto& blob : all_blobs(s.cluster)) ++per_volume[blob.volume];
  s.dead = 0;
  for (std::size_t v = 1; v < per_volume.size(); ++v) {
    if (per_volume[v] > per_volume[s.dead]) s.dead = v;
  }
  ASSERT_GE(per_volume[s.dead], 2 * kInitialKeys / 3);
  s.killed_at = Clock::now();
  s.cluster.volume(s.dead).kill_hard();
  ASSERT_FALSE(s.cluster.volume(s.dead).running());
}

// Keys (from the original ones) with a copy on the dead volume.
std::vector<std::string> keys_on_dead_volume(Scenario& s) {
  std::vector<std::string> out;
  for (const auto& key : s.original) {
    for (const auto& blob : blobs_of(s.cluster, sha256_hex(key))) {
      if (blob.volume == s.dead) {
        out.push_back(key);
        break;
      }
    }
  }
  return out;
}

Millis left_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() > 0 ? left : 0ms;
}

void wait_until_dead_is_down(Scenario& s, Millis timeout) {
  ASSERT_TRUE(wait_for_states(
      s.cluster, [&](std::size_t i) { return i == s.dead ? "down" : "up"; }, timeout));
}

void write_while_down(Scenario& s) {
  ASSERT_NO_FATAL_FAILURE(wait_until_dead_is_down(s, 5s));
  const auto on_dead = keys_on_dead_volume(s);
  ASSERT_GE(on_dead.size(), 10u);

  // New keys go to the two live volumes.
  const std::string run = random_token(6);
  for (int i = 0; i < 10; ++i) {
    const std::string key = "new-" + run + "-" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(
        curl_put(s, key, "fresh-" + std::to_string(i) + "-" + random_token(20)));
    s.added.push_back(key);
    const auto blobs = blobs_of(s.cluster, sha256_hex(key));
    ASSERT_EQ(blobs.size(), 2u) << key << ": " << describe_blobs(blobs);
    EXPECT_NE(blobs[0].volume, blobs[1].volume) << describe_blobs(blobs);
    for (const auto& blob : blobs) EXPECT_NE(blob.volume, s.dead) << describe_blobs(blobs);
  }

  // Overwrites of keys that had a copy on the dead volume.
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string& key = on_dead[i];
    const auto old_version = master_version(s.mport(), key);
    ASSERT_TRUE(old_version.has_value()) << key;
    s.replaced[key] = *old_version;
    ASSERT_NO_FATAL_FAILURE(
        curl_put(s, key, "overwritten-" + std::to_string(i) + "-" + random_token(20)));
    for (int read = 0; read < 4; ++read) {
      const auto get = run_curl(s.tmp, {"-L", s.url(key)});
      EXPECT_EQ(get.http_status, 200) << key << ": " << get.describe();
      EXPECT_EQ(get.body, s.values[key]) << key;
    }
    const auto now = master_version(s.mport(), key);
    ASSERT_TRUE(now.has_value()) << key;
    EXPECT_GT(*now, *old_version) << key;
  }

  // Deletes of other keys that had a copy on the dead volume.
  for (std::size_t i = 5; i < 10; ++i) {
    const std::string& key = on_dead[i];
    const auto del = run_curl(s.tmp, {"-XDELETE", s.url(key)});
    EXPECT_EQ(del.http_status, 204) << "DELETE " << key << ": " << del.describe();
    s.deleted.push_back(key);
    s.values.erase(key);
    const auto get = run_curl(s.tmp, {"-L", s.url(key)});
    EXPECT_EQ(get.http_status, 404) << key << ": " << get.describe();
  }

  // On the live volumes the deleted keys' files and the overwritten keys' old
  // versions go (asynchronously).
  std::string leftover;
  EXPECT_TRUE(wait_until(
      [&] {
        leftover.clear();
        for (const auto& key : s.deleted) {
          for (const auto& blob : blobs_of(s.cluster, sha256_hex(key))) {
            if (blob.volume != s.dead) leftover += " deleted " + key + ": " + blob.path.string();
          }
        }
        for (const auto& [key, old_version] : s.replaced) {
          for (const auto& blob : blobs_of(s.cluster, sha256_hex(key))) {
            if (blob.volume != s.dead && blob.version == old_version) {
              leftover += " replaced " + key + ": " + blob.path.string();
            }
          }
        }
        return leftover.empty();
      },
      5s, 50ms))
      << "files left on live volumes:" << leftover;
}

// Every file on every volume is a current version of a live key, each live
// key has exactly `copies` files, and deleted keys have none. Empty if so.
std::string orphan_report(Scenario& s, const std::map<std::string, std::uint64_t>& versions,
                          std::size_t copies) {
  std::map<std::string, std::string> key_of_digest;
  for (const auto& [key, value] : s.values) key_of_digest[sha256_hex(key)] = key;
  std::map<std::string, std::size_t> count;
  std::string report;
  for (const auto& blob : all_blobs(s.cluster)) {
    const auto it = key_of_digest.find(blob.digest);
    if (it == key_of_digest.end()) {
      report += "\n  not a live key: " + blob.path.string();
      continue;
    }
    const auto expected = versions.find(it->second);
    if (!blob.version || expected == versions.end() || *blob.version != expected->second) {
      report += "\n  not the master's version of " + it->second + ": " + blob.path.string();
      continue;
    }
    ++count[it->second];
  }
  for (const auto& [key, value] : s.values) {
    if (count[key] != copies) {
      report += "\n  " + key + " has " + std::to_string(count[key]) + " current file(s)";
    }
  }
  return report;
}

// ---------------------------------------------------------------------------
// Tests

TEST(Replication, InTestSha256MatchesSha256sum) {
  TempDir tmp;
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::vector<std::string> inputs = {"",
                                     "abc",
                                     "rep-key-1",
                                     std::string(55, 'x'),
                                     std::string(56, 'y'),
                                     std::string(64, 'z'),
                                     random_bytes(1000)};
  for (const auto& input : inputs) {
    EXPECT_EQ(sha256_hex(input), sha256sum_of(tmp, input)) << printable(input, 80);
  }
}

// 1. Each value is on exactly two volumes; /admin/volumes counts them.
TEST(Replication, EachValueIsOnExactlyTwoVolumes) {
  Scenario s;
  ASSERT_NO_FATAL_FAILURE(start_and_store(s));

  std::vector<std::uint64_t> files_per_volume(3, 0);
  for (const auto& key : s.original) {
    const auto blobs = blobs_of(s.cluster, sha256_hex(key));
    ASSERT_EQ(blobs.size(), 2u) << key << ": " << describe_blobs(blobs);
    EXPECT_NE(blobs[0].volume, blobs[1].volume) << key << ": " << describe_blobs(blobs);
    EXPECT_EQ(blobs[0].version, blobs[1].version) << key << ": " << describe_blobs(blobs);
    for (const auto& blob : blobs) {
      ++files_per_volume[blob.volume];
      EXPECT_EQ(value_in_blob(blob.path), s.values[key]) << blob.path;
    }
    EXPECT_EQ(blobs[0].version, master_version(s.mport(), key)) << key;
  }
  EXPECT_EQ(s.cluster.blob_count(), 2 * kInitialKeys);

  std::string last;
  const bool counted = wait_until(
      [&] {
        const auto statuses = admin_volumes(s.mport(), &last);
        if (!statuses || statuses->size() != 3) return false;
        std::uint64_t total = 0;
        for (std::size_t v = 0; v < 3; ++v) {
          const std::string url = s.cluster.volume(v).url();
          const auto it = std::find_if(statuses->begin(), statuses->end(), [&](const auto& st) {
            return without_trailing_slash(st.url) == url;
          });
          if (it == statuses->end() || it->state != "up" || !it->keys) return false;
          if (*it->keys != files_per_volume[v]) return false;
          total += *it->keys;
        }
        return total == 2 * kInitialKeys;
      },
      5s, 100ms);
  EXPECT_TRUE(counted) << "expected 3 volumes up holding " << files_per_volume[0] << ", "
                       << files_per_volume[1] << ", " << files_per_volume[2]
                       << " keys; last /admin/volumes: " << last;
}

// 2. With one volume killed every key is readable again within 5 s.
TEST(Replication, EveryKeyIsReadableWithinFiveSecondsOfAVolumeKill) {
  Scenario s;
  ASSERT_NO_FATAL_FAILURE(start_and_store(s));
  ASSERT_NO_FATAL_FAILURE(kill_busiest_volume(s));
  const auto deadline = s.killed_at + 5s;

  std::vector<std::string> failures;
  const bool readable = wait_until(
      [&] {
        failures.clear();
        for (const auto& key : s.original) {
          const auto get = run_curl(s.tmp, {"-L", s.url(key)}, {std::nullopt, 5s});
          if (get.http_status != 200 || get.body != s.values[key]) {
            failures.push_back(key + ": " + get.describe());
          }
        }
        return failures.empty();
      },
      left_until(deadline), 100ms);
  EXPECT_TRUE(readable) << failures.size() << " key(s) unreadable 5 s after the kill, e.g. "
                        << (failures.empty() ? "" : failures.front());

  ASSERT_NO_FATAL_FAILURE(wait_until_dead_is_down(s, left_until(deadline)));
  // Marked down: no read goes to the dead volume any more.
  for (const auto& key : s.original) {
    for (int read = 0; read < 3; ++read) {
      const auto get = get_via_master(s.mport(), "/store/" + key);
      EXPECT_EQ(get.second.status, 200) << key << ": " << get.describe();
      EXPECT_EQ(get.second.body, s.values[key]) << key;
    }
  }
}

// 3. While a volume is down: new keys, overwrites and deletes all work.
TEST(Replication, WritesOverwritesAndDeletesWorkWhileAVolumeIsDown) {
  Scenario s;
  ASSERT_NO_FATAL_FAILURE(start_and_store(s));
  ASSERT_NO_FATAL_FAILURE(kill_busiest_volume(s));
  ASSERT_NO_FATAL_FAILURE(write_while_down(s));
  // The old keys not touched are still readable.
  for (const auto& key : s.original) {
    if (!s.values.contains(key)) continue;
    const auto get = get_via_master(s.mport(), "/store/" + key);
    EXPECT_EQ(get.second.status, 200) << key << ": " << get.describe();
    EXPECT_EQ(get.second.body, s.values[key]) << key;
  }
}

// 4. The restarted volume applies the pending deletes, loses the overwritten
// keys' old versions, and the cluster ends with no orphan file.
TEST(Replication, RestartedVolumeCatchesUpAndNoOrphansRemain) {
  Scenario s;
  ASSERT_NO_FATAL_FAILURE(start_and_store(s));
  ASSERT_NO_FATAL_FAILURE(kill_busiest_volume(s));
  ASSERT_NO_FATAL_FAILURE(write_while_down(s));

  // Before the restart the dead volume still holds the stale files.
  std::size_t stale = 0;
  for (const auto& key : s.deleted) stale += blobs_of(s.cluster, sha256_hex(key)).size();
  ASSERT_EQ(stale, s.deleted.size())
      << "each deleted key should have one file left on the dead volume";

  ASSERT_TRUE(s.cluster.restart_volume(s.dead));
  const auto deadline = Clock::now() + 5s;
  std::string leftover;
  EXPECT_TRUE(wait_until(
      [&] {
        leftover.clear();
        for (const auto& key : s.deleted) {
          for (const auto& blob : blobs_of(s.cluster, sha256_hex(key))) {
            leftover += " deleted " + key + ": " + blob.path.string();
          }
        }
        for (const auto& [key, old_version] : s.replaced) {
          for (const auto& blob : blobs_of(s.cluster, sha256_hex(key))) {
            if (blob.version == old_version) {
              leftover += " replaced " + key + ": " + blob.path.string();
            }
          }
        }
        return leftover.empty();
      },
      left_until(deadline), 50ms))
      << "stale files 5 s after the restart:" << leftover;
  ASSERT_TRUE(wait_for_states(
      s.cluster, [](std::size_t) { return "up"; }, left_until(deadline)));

  // Reads of every live key, several times each so both replicas serve some.
  std::map<std::string, std::uint64_t> versions;
  std::map<uint16_t, int> reads_served;
  for (const auto& [key, value] : s.values) {
    const auto curl_get = run_curl(s.tmp, {"-L", s.url(key)});
    EXPECT_EQ(curl_get.http_status, 200) << key << ": " << curl_get.describe();
    EXPECT_EQ(curl_get.body, value) << key;
    for (int read = 0; read < 8; ++read) {
      const auto get = get_via_master(s.mport(), "/store/" + key);
      ASSERT_EQ(get.first.status, 302) << key << ": " << get.describe();
      EXPECT_EQ(get.second.status, 200) << key << ": " << get.describe();
      EXPECT_EQ(get.second.body, value) << key;
      const auto version = version_in(get.first);
      ASSERT_TRUE(version.has_value()) << get.describe();
      const auto [it, inserted] = versions.emplace(key, *version);
      EXPECT_EQ(it->second, *version) << key << " redirected to two versions";
      if (const auto location = parse_url(get.first.header("Location").value_or(""))) {
        ++reads_served[location->port];
      }
    }
  }
  // The restarted volume holds one copy of the untouched keys it had, and
  // serves its share of their reads again.
  EXPECT_GT(reads_served[s.cluster.volume(s.dead).port()], 0)
      << "no read was sent to the restarted volume";
  for (const auto& key : s.deleted) {
    const auto get = run_curl(s.tmp, {"-L", s.url(key)});
    EXPECT_EQ(get.http_status, 404) << key << " came back: " << get.describe();
  }

  // After the repair window: no orphans, exactly two current copies per key.
  std::string report;
  EXPECT_TRUE(wait_until(
      [&] {
        report = orphan_report(s, versions, 2);
        return report.empty();
      },
      10s, 100ms))
      << "after the repair window:" << report;
  EXPECT_EQ(s.cluster.blob_count(), 2 * s.values.size());
}

// 5. Racing writers of one key: the highest committed version wins on the
// master and on both replicas, and the losers' files go.
TEST(Replication, RacingWritersConvergeToOneValueOnBothReplicas) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(),
                                             {"--replicas", "2", "--old-version-grace", "1"}));
  const uint16_t mport = cluster.master_port();
  const std::string key = "race-" + random_token(10);
  const std::string digest = sha256_hex(key);
  constexpr std::size_t kClients = 8;

  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::string> values;
    for (std::size_t c = 0; c < kClients; ++c) {
      values.push_back("round" + std::to_string(round) + "-client" + std::to_string(c) + "-" +
                       random_token(16 + c));
    }
    std::vector<Exchange> results(kClients);
    {
      std::latch go(static_cast<std::ptrdiff_t>(kClients));
      std::vector<std::jthread> clients;
      for (std::size_t c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
          go.arrive_and_wait();
          results[c] = put_via_master(mport, "/store/" + key, values[c]);
        });
      }
    }
    std::optional<std::uint64_t> highest;
    std::size_t winner = 0;
    for (std::size_t c = 0; c < kClients; ++c) {
      EXPECT_EQ(results[c].second.status, 201) << "client " << c << ": " << results[c].describe();
      const auto version = version_in(results[c].first);
      ASSERT_TRUE(version.has_value()) << results[c].describe();
      if (!highest || *version > *highest) {
        highest = version;
        winner = c;
      }
    }

    for (int read = 0; read < 6; ++read) {
      const auto get = get_via_master(mport, "/store/" + key);
      ASSERT_EQ(get.second.status, 200) << get.describe();
      EXPECT_NE(std::find(values.begin(), values.end(), get.second.body), values.end())
          << "not one of this round's values: " << printable(get.second.body);
      EXPECT_EQ(get.second.body, values[winner]) << "the highest version did not win";
      EXPECT_EQ(version_in(get.first), highest) << get.describe();
    }

    std::vector<BlobFile> blobs;
    EXPECT_TRUE(wait_until(
        [&] {
          blobs = blobs_of(cluster, digest);
          return blobs.size() == 2;
        },
        5s, 50ms))
        << describe_blobs(blobs);
    ASSERT_EQ(blobs.size(), 2u) << describe_blobs(blobs);
    EXPECT_NE(blobs[0].volume, blobs[1].volume) << describe_blobs(blobs);
    for (const auto& blob : blobs) {
      EXPECT_EQ(blob.version, highest) << blob.path;
      EXPECT_EQ(value_in_blob(blob.path), values[winner]) << blob.path;
      const auto direct = http_request(cluster.volume(blob.volume).port(), "GET",
                                       "/store/" + key + "?version=" + std::to_string(*highest));
      EXPECT_EQ(direct.status, 200) << blob.path << ": " << direct.summary();
      EXPECT_EQ(direct.body, values[winner]) << blob.path;
    }
  }
}

// 6. --replicas 3: concurrent PUT/GET/DELETE/GET cycles, then no file left.
TEST(Replication, ThreeReplicasUnderConcurrentCyclesLeaveNoFiles) {
  TempDir tmp;
  Cluster cluster(tmp);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "3"}));
  const uint16_t mport = cluster.master_port();
  constexpr std::size_t kClients = 16;
  constexpr int kCycles = 20;
  const std::string run = random_token(6);

  std::vector<std::vector<std::string>> failures(kClients);
  std::vector<int> completed(kClients, 0);
  {
    std::latch go(static_cast<std::ptrdiff_t>(kClients));
    std::vector<std::jthread> clients;
    for (std::size_t c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        const std::string key = "cycle-" + run + "-" + std::to_string(c);
        const std::string target = "/store/" + key;
        const std::string digest = sha256_hex(key);
        auto& errors = failures[c];
        go.arrive_and_wait();
        for (int cycle = 0; cycle < kCycles && errors.size() < 5; ++cycle) {
          const std::string where = key + " cycle " + std::to_string(cycle) + ": ";
          const std::string value = random_bytes(100 + static_cast<std::size_t>(cycle) * 37);
          const auto put = put_via_master(mport, target, value);
          if (put.second.status != 201) {
            errors.push_back(where + "PUT " + put.describe());
            continue;
          }
          const auto version = version_in(put.first);
          std::set<std::size_t> holders;
          for (const auto& blob : blobs_of(cluster, digest)) {
            if (blob.version == version) holders.insert(blob.volume);
          }
          if (holders.size() != 3) {
            errors.push_back(where + "201 but the version is on " + std::to_string(holders.size()) +
                             " volume(s)");
          }
          const auto get = get_via_master(mport, target);
          if (get.second.status != 200 || get.second.body != value) {
            errors.push_back(where + "GET " + get.describe());
          }
          const auto del = http_request(mport, "DELETE", target);
          if (del.status != 204) errors.push_back(where + "DELETE " + del.summary());
          const auto gone = http_request(mport, "GET", target);
          if (gone.status != 404) errors.push_back(where + "GET after DELETE " + gone.summary());
          ++completed[c];
        }
      });
    }
  }
  for (std::size_t c = 0; c < kClients; ++c) {
    EXPECT_EQ(completed[c], kCycles) << "client " << c;
    for (const auto& e : failures[c]) ADD_FAILURE() << e;
  }
  std::vector<BlobFile> left;
  EXPECT_TRUE(wait_until(
      [&] {
        left = all_blobs(cluster);
        return left.empty();
      },
      5s, 50ms))
      << "left behind: " << describe_blobs(left);
}

// 7. Fewer live volumes than --replicas: the master starts, PUT answers 503
// until a second volume is added.
TEST(Replication, FewerLiveVolumesThanReplicasRefusesWritesUntilOneIsAdded) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start_volume());
  ASSERT_TRUE(cluster.start_master_with_args(cluster.volume_urls(), {"--replicas", "2"}));
  const uint16_t mport = cluster.master_port();
  // The one volume is healthy, and still not enough.
  ASSERT_TRUE(wait_for_states(
      cluster, [](std::size_t) { return "up"; }, 5s));

  const std::string key = "two-copies-" + random_token(8);
  const std::string value = "needs-two-" + random_token(30);
  const auto refused = http_request(mport, "PUT", "/store/" + key, value);
  EXPECT_EQ(refused.status, 503) << refused.summary();
  const auto refused_curl = run_curl(tmp, {"-XPUT", "-L", "-d", value, cluster.store_url(key)});
  EXPECT_EQ(refused_curl.http_status, 503) << refused_curl.describe();
  EXPECT_EQ(cluster.blob_count(), 0u);
  EXPECT_EQ(run_curl(tmp, {"-L", cluster.store_url(key)}).http_status, 404);

  std::size_t second = 0;
  ASSERT_TRUE(cluster.start_volume(&second));
  const auto added = http_request(mport, "POST", "/admin/add-volume", cluster.volume(second).url());
  ASSERT_EQ(added.status, 200) << added.summary();

  CurlResult put;
  int attempts = 0;
  const bool stored = wait_until(
      [&] {
        ++attempts;
        put = run_curl(tmp, {"-XPUT", "-L", "-d", value, cluster.store_url(key)});
        return put.http_status == 201;
      },
      10s, 100ms);
  ASSERT_TRUE(stored) << "after " << attempts << " attempts: " << put.describe();

  const auto blobs = blobs_of(cluster, sha256_hex(key));
  ASSERT_EQ(blobs.size(), 2u) << describe_blobs(blobs);
  EXPECT_NE(blobs[0].volume, blobs[1].volume) << describe_blobs(blobs);
  for (const auto& blob : blobs) EXPECT_EQ(value_in_blob(blob.path), value) << blob.path;
  const auto get = run_curl(tmp, {"-L", cluster.store_url(key)});
  EXPECT_EQ(get.http_status, 200) << get.describe();
  EXPECT_EQ(get.body, value);
}

}  // namespace
}  // namespace kalavara::it
