// The hostile-input suite (issue 11, docs/security.md): requests no client
// should send, against the real daemons. Each case expects one specific
// answer (a status with its reason, or a closed connection) and, after it,
// the stage checks that the daemons are unharmed: both still running, no
// file outside their data folders created, changed or removed (canaries
// next to the data folders and in the temp folder's parent, and the name
// every traversal aims at nowhere), every file a volume holds under its
// blobs/ folder with a name it derived itself, no temp file left, a normal
// PUT and GET still round-tripping, and each daemon's memory back near its
// baseline.
//
// Groups: traversal in keys, malformed requests, framing and smuggling,
// CR/LF injection, bad ranges, conditions and query parameters, and a
// signed cluster's forged, replayed and expired signatures, forged commits
// and admin calls. Slow clients, timeouts and connection limits are in the
// limits' own tests.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fake_peer.hpp"
#include "harness.hpp"
#include "support/loopback.hpp"

namespace kalavara::it {
namespace {

// ---------------------------------------------------------------------------
// A raw client: bytes out, bytes in, nothing interpreted on the way.

struct RawResponse {
  int status = 0;
  std::string head;  // status line and header lines, CRLF-separated, no final CRLF CRLF
  std::string body;

  // How many header lines are named `name` (case-insensitive).
  int count(std::string_view name) const {
    int found = 0;
    std::istringstream lines(head);
    std::string line;
    for (int i = 0; i < 1000 && std::getline(lines, line); ++i) {
      if (line.size() <= name.size() || line[name.size()] != ':') continue;
      bool same = true;
      for (std::size_t c = 0; c < name.size() && same; ++c) {
        same = std::tolower(static_cast<unsigned char>(line[c])) ==
               std::tolower(static_cast<unsigned char>(name[c]));
      }
      if (same) ++found;
    }
    return found;
  }
  std::string header(std::string_view name) const {
    std::istringstream lines(head);
    std::string line;
    for (int i = 0; i < 1000 && std::getline(lines, line); ++i) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() <= name.size() || line[name.size()] != ':') continue;
      std::string lowered = line.substr(0, name.size());
      std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string wanted(name);
      std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lowered != wanted) continue;
      const auto value = line.substr(name.size() + 1);
      const auto first = value.find_first_not_of(' ');
      return first == std::string::npos ? std::string() : value.substr(first);
    }
    return {};
  }
};

struct RawExchange {
  std::string error;  // a connect or send failure
  std::string received;
  bool closed = false;  // the daemon closed (or reset) the connection
  std::vector<RawResponse> responses;

  std::string describe() const {
    return "received \"" + printable(received, 600) + "\"" + (closed ? ", closed" : ", open") +
           (error.empty() ? "" : ", error: " + error);
  }
};

// The complete responses at the start of `bytes` (every answer the daemons
// give has a Content-Length; a 1xx has none).
std::vector<RawResponse> split_responses(std::string_view bytes) {
  std::vector<RawResponse> out;
  for (int i = 0; i < 100; ++i) {
    const auto end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    RawResponse response;
    response.head = std::string(bytes.substr(0, end));
    if (response.head.rfind("HTTP/1.", 0) != 0 || response.head.size() < 12) break;
    response.status = std::atoi(response.head.substr(9, 3).c_str());
    const auto length_text = response.header("Content-Length");
    const std::size_t length =
        length_text.empty() ? 0 : static_cast<std::size_t>(std::stoull(length_text));
    if (bytes.size() < end + 4 + length) break;
    response.body = std::string(bytes.substr(end + 4, length));
    bytes.remove_prefix(end + 4 + length);
    if (response.status >= 100 && response.status < 200) continue;
    out.push_back(std::move(response));
  }
  return out;
}

struct RawOptions {
  // Stop reading once this many responses have come, unless until_close.
  std::size_t responses = 1;
  // Read until the daemon closes the connection (or the deadline passes).
  bool until_close = false;
  // Shut our side down for writing once everything is sent.
  bool half_close = false;
  Millis timeout = 5s;
};

// Sends `bytes` to 127.0.0.1:port on a fresh connection and reads what comes
// back, bounded by options.timeout.
RawExchange send_raw(uint16_t port, std::string_view bytes, const RawOptions& options = {}) {
  RawExchange exchange;
  const int fd = test::connect_to_loopback(port);
  if (fd < 0) {
    exchange.error = "connect failed";
    return exchange;
  }
  timeval send_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  for (std::size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      // The daemon may refuse early and close: what it answered is read below.
      exchange.error = "send stopped after " + std::to_string(sent) + " bytes";
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  if (options.half_close) ::shutdown(fd, SHUT_WR);
  const auto deadline = Clock::now() + options.timeout;
  for (int reads = 0; reads < 100000; ++reads) {
    if (!options.until_close && split_responses(exchange.received).size() >= options.responses) {
      break;
    }
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[16 * 1024];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      exchange.closed = true;
      break;
    }
    exchange.received.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  exchange.responses = split_responses(exchange.received);
  return exchange;
}

// The one answer a request gets, then the connection closed by the daemon.
::testing::AssertionResult answered_then_closed(const RawExchange& exchange, int status,
                                                std::string_view reason) {
  if (exchange.responses.size() != 1) {
    return ::testing::AssertionFailure()
           << "expected exactly one answer, got " << exchange.responses.size() << ": "
           << exchange.describe();
  }
  const auto& response = exchange.responses.front();
  if (response.status != status || response.body.find(reason) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "expected " << status << " \"" << reason << "\": " << exchange.describe();
  }
  if (!exchange.closed) {
    return ::testing::AssertionFailure() << "the connection stayed open: " << exchange.describe();
  }
  return ::testing::AssertionSuccess();
}

// Exactly the answers `statuses`, in order: each request on the connection
// was read as one, and nothing else was.
::testing::AssertionResult answered(const RawExchange& exchange, const std::vector<int>& statuses) {
  bool same = exchange.responses.size() == statuses.size();
  for (std::size_t i = 0; same && i < statuses.size(); ++i) {
    same = exchange.responses[i].status == statuses[i];
  }
  if (same) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "expected";
  for (const auto status : statuses) failure << " " << status;
  return failure << ": " << exchange.describe();
}

// ---------------------------------------------------------------------------
// Files and processes

std::optional<long> rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  for (int i = 0; i < 200 && std::getline(in, line); ++i) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    long kib = -1;
    fields >> kib;
    if (kib >= 0) return kib;
  }
  return std::nullopt;
}

// Size and modification time of every entry under `dir` but the excluded:
// any file created, changed or removed there shows as a difference.
std::map<std::string, std::string> snapshot(const fs::path& dir,
                                            const std::vector<fs::path>& excluded) {
  std::map<std::string, std::string> out;
  for (const auto& path : entries_under(dir, excluded)) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) continue;
    out[path.string()] = std::to_string(info.st_size) + "@" + std::to_string(info.st_mtim.tv_sec) +
                         "." + std::to_string(info.st_mtim.tv_nsec);
  }
  return out;
}

// What a volume keeps is blobs/ab/cd/<64 hex>.<16 hex>[marker suffix],
// tmp/ and quarantine/: a file anywhere else was named by a request.
std::vector<fs::path> strays_in_volume(const fs::path& data_dir) {
  static const std::regex kBlob(
      "blobs/([0-9a-f]{2})/([0-9a-f]{2})/\\1\\2[0-9a-f]{60}\\.[0-9a-f]{16}.*");
  std::vector<fs::path> strays;
  for (const auto& path : regular_files_under(data_dir)) {
    const auto relative = fs::relative(path, data_dir).string();
    if (std::regex_match(relative, kBlob) || relative.rfind("tmp/", 0) == 0 ||
        relative.rfind("quarantine/", 0) == 0) {
      continue;
    }
    strays.push_back(path);
  }
  return strays;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

std::string query_of(const std::string& target) {
  const auto q = target.find('?');
  return q == std::string::npos ? "" : target.substr(q + 1);
}

// ---------------------------------------------------------------------------
// Signatures, forged the way docs/security.md specifies them.

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

// `target` with "exp=<exp>" appended, then "&sig=" and the HMAC-SHA256 of
// "kalavara-1\n<METHOD>\n<everything before &sig=>" keyed with `secret`.
std::string forge(std::string_view secret, std::string_view method, std::string target,
                  std::string_view exp) {
  target += target.find('?') == std::string::npos ? "?exp=" : "&exp=";
  target += exp;
  const std::string signed_method(method == "HEAD" ? "GET" : method);
  return target + "&sig=" + hmac_sha256_hex(secret, "kalavara-1\n" + signed_method + "\n" + target);
}

std::uint64_t unix_now() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// A target without its "&exp=..&sig=.." (or "?exp=..").
std::string unsigned_part(const std::string& target) {
  auto at = target.find("&exp=");
  if (at == std::string::npos) at = target.find("?exp=");
  return target.substr(0, at);
}

fs::path write_private_file(const fs::path& path, const std::string& text) {
  write_file(path, text + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

// ---------------------------------------------------------------------------
// The stage: a master and one volume, canaries around them, and the checks
// run after every case.

constexpr long kRssSlackKib = 32 * 1024;

class Stage {
 public:
  struct Options {
    bool secured = false;  // a secret, signed reads and an admin token
  };

  explicit Stage(Options options) {
    if (options.secured) {
      secret = random_token(64);
      token = random_token(40);
      write_private_file(tmp.path() / "secret", secret);
      write_private_file(tmp.path() / "admin-token", token);
    }
    std::vector<std::string> signing;
    if (options.secured) {
      signing = {"--secret-file", (tmp.path() / "secret").string(), "--sign-reads"};
    }
    auto master_extra = signing;
    if (options.secured) {
      master_extra.insert(master_extra.end(),
                          {"--admin-token-file", (tmp.path() / "admin-token").string()});
    }
    started = cluster.start_volume(nullptr, signing);
    if (started) started = cluster.start_master_with_args(cluster.volume_urls(), master_extra);
    if (!started) return;
    mport = cluster.master_port();
    vport = cluster.volume(0).port();

    // Canaries: beside the data folders, in a folder of their own, and in
    // the parent of the whole test folder (the system's temp folder).
    for (const auto& path : {tmp.path() / "canary", tmp.subdir("outside") / "canary",
                             tmp.path().parent_path() / ("kalavara-canary-" + name)}) {
      const auto text = "canary " + random_token(32);
      write_file(path, text);
      canaries.emplace_back(path, text);
    }
    excluded = {cluster.volume_dir(0), cluster.master_dir(), tmp.logs_dir(), tmp.scratch_dir()};
    before = snapshot(tmp.path(), excluded);

    // Warm up both daemons (first requests allocate their pools), then
    // take the baseline.
    for (int i = 0; i < 20 && started; ++i) {
      started = round_trip();
    }
    for (const auto& daemon : {&cluster.master(), &cluster.volume(0)}) {
      baseline.push_back(rss_kib(daemon->pid()).value_or(0));
    }
  }

  ~Stage() {
    // The parent folder's canary is not under the test folder.
    std::error_code ignored;
    if (!canaries.empty()) fs::remove(canaries.back().first, ignored);
  }

  // Where every traversal in a key aims: a name no daemon should ever make.
  const std::string name = "hostile-" + random_token(12);
  std::string secret;
  std::string token;
  TempDir tmp;
  Cluster cluster{tmp};
  ::testing::AssertionResult started = ::testing::AssertionFailure() << "not started";
  uint16_t mport = 0;
  uint16_t vport = 0;

  // A volume's target for a write of `key` (encoded), as the master's 307
  // names it: its query lets the volume store and commit.
  std::string write_target(const std::string& encoded_key) {
    const auto redirect = http_request(mport, "PUT", "/store/" + encoded_key);
    const auto location = parse_url(redirect.header("Location").value_or(""));
    EXPECT_EQ(redirect.status, 307) << redirect.summary();
    return location ? location->target : "/store/" + encoded_key;
  }

  // Stores `value` under `encoded_key` through the master.
  ::testing::AssertionResult store(const std::string& encoded_key, const std::string& value) {
    const auto put = put_via_master(mport, "/store/" + encoded_key, value);
    if (put.second.status != 201) return ::testing::AssertionFailure() << put.describe();
    return ::testing::AssertionSuccess();
  }

  // What the master's 302 for `encoded_key` leads to.
  HttpResponse read(const std::string& encoded_key) {
    const auto got = get_via_master(mport, "/store/" + encoded_key);
    if (got.first.status != 302) return got.first;
    return got.second;
  }

  ::testing::AssertionResult round_trip() {
    const auto key = "round-trip-" + std::to_string(++round_trips_);
    const auto value = random_bytes(100 + round_trips_ % 900);
    if (auto stored = store(key, value); !stored) return stored;
    const auto got = read(key);
    if (got.status != 200 || got.body != value) {
      return ::testing::AssertionFailure() << "round trip read: " << got.summary();
    }
    return ::testing::AssertionSuccess();
  }

  // The checks after every case.
  ::testing::AssertionResult unharmed() {
    for (const auto& daemon : {&cluster.master(), &cluster.volume(0)}) {
      if (!daemon->running()) {
        return ::testing::AssertionFailure() << daemon->name() << " is not running";
      }
    }
    for (const auto& [path, text] : canaries) {
      std::error_code ec;
      if (!fs::exists(path, ec) || read_file(path) != text) {
        return ::testing::AssertionFailure() << "canary " << path << " removed or changed";
      }
    }
    for (auto dir = tmp.path(); dir.has_relative_path(); dir = dir.parent_path()) {
      std::error_code ec;
      if (fs::exists(dir / name, ec)) {
        return ::testing::AssertionFailure() << "a request made " << dir / name;
      }
    }
    if (const auto now = snapshot(tmp.path(), excluded); now != before) {
      std::string changed;
      for (const auto& [path, state] : now) {
        if (before.count(path) == 0 || before.at(path) != state) changed += " " + path;
      }
      for (const auto& [path, state] : before) {
        if (now.count(path) == 0) changed += " -" + path;
      }
      return ::testing::AssertionFailure() << "outside the data folders:" << changed;
    }
    if (const auto strays = strays_in_volume(cluster.volume_dir(0)); !strays.empty()) {
      return ::testing::AssertionFailure() << "a file the volume did not name: " << strays.front();
    }
    const auto temp = cluster.volume_dir(0) / "tmp";
    if (!wait_until([&] { return regular_files_under(temp).empty(); }, 5s)) {
      return ::testing::AssertionFailure() << "a temp file stays: " << regular_files_under(temp)[0];
    }
    if (auto trip = round_trip(); !trip) return trip;
    const std::vector<Daemon*> daemons{&cluster.master(), &cluster.volume(0)};
    for (std::size_t i = 0; i < daemons.size(); ++i) {
      const auto rss = rss_kib(daemons[i]->pid()).value_or(0);
      if (rss > baseline[i] + kRssSlackKib) {
        return ::testing::AssertionFailure() << daemons[i]->name() << " holds " << rss << " KiB, "
                                             << baseline[i] << " KiB at the start";
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  std::vector<std::pair<fs::path, std::string>> canaries;
  std::vector<fs::path> excluded;
  std::map<std::string, std::string> before;
  std::vector<long> baseline;
  int round_trips_ = 0;
};

// A group of cases on one stage, started once per group; every case ends
// with the stage's checks.
template <bool kSecured>
class OnStage : public ::testing::Test {
 public:
  static void SetUpTestSuite() { stage_ = std::make_unique<Stage>(Stage::Options{kSecured}); }
  static void TearDownTestSuite() { stage_.reset(); }

 protected:
  void SetUp() override { ASSERT_TRUE(stage_->started); }
  void TearDown() override {
    if (stage_->started) {
      EXPECT_TRUE(stage_->unharmed());
    }
    if (HasFailure()) dump_logs();
  }
  static Stage& stage() { return *stage_; }

 private:
  static void dump_logs() {
    for (const auto& log : regular_files_under(stage_->tmp.logs_dir())) {
      const auto text = read_file(log);
      std::cerr << "===== " << log.filename() << " (tail)\n"
                << text.substr(text.size() > 6000 ? text.size() - 6000 : 0) << "\n";
    }
  }
  static inline std::unique_ptr<Stage> stage_;
};

using HostileOpen = OnStage<false>;
using HostileSecured = OnStage<true>;

enum class Side { kMaster, kVolume };

std::string side_name(Side side) { return side == Side::kMaster ? "Master" : "Volume"; }

// ---------------------------------------------------------------------------
// Path traversal and odd keys, to the master and to the volume.

struct KeyCase {
  std::string name;
  std::string encoded;  // the path after /store/; '@' stands for the stage's target name
  // The key it is stored under (an opaque name inside the data folder);
  // nullopt: refused with 400 and `refusal`.
  std::optional<std::string> key;
  std::string refusal;
};

std::ostream& operator<<(std::ostream& out, const KeyCase& c) { return out << c.name; }

class KeyTraversal : public HostileOpen, public ::testing::WithParamInterface<KeyCase> {};

TEST_P(KeyTraversal, IsStoredInsideTheDataFolderOrRefused) {
  auto& s = stage();
  const auto& c = GetParam();
  const auto encoded = replace_all(c.encoded, "@", s.name);
  const auto target = "/store/" + encoded;
  const auto blobs_before = s.cluster.blob_count();
  if (c.key) {
    const auto key = replace_all(*c.key, "@", s.name);
    const auto value = "value of " + c.name + " " + random_token(8);
    // The volume is sent the key as the client spelled it, with the query
    // the master's 307 gave: both must read the same key from it.
    const auto order = s.write_target(encoded);
    const auto put = http_request(s.vport, "PUT", target + "?" + query_of(order), value);
    ASSERT_EQ(put.status, 201) << put.summary();
    EXPECT_EQ(s.cluster.blob_count(), blobs_before + 1) << "stored as one file in blobs/";
    // Read through the master under the key's plain spelling and as sent,
    // and from the volume directly.
    EXPECT_EQ(s.read(percent_encode(key, false)).body, value);
    EXPECT_EQ(s.read(encoded).body, value);
    const auto direct = http_request(s.vport, "GET", target);
    EXPECT_EQ(direct.status, 200) << direct.summary();
    EXPECT_EQ(direct.body, value);
    const auto deleted = http_request(s.mport, "DELETE", target);
    EXPECT_EQ(deleted.status, 204) << deleted.summary();
    EXPECT_EQ(http_request(s.mport, "GET", target).status, 404);
    EXPECT_TRUE(wait_until([&] { return s.cluster.blob_count() == blobs_before; }, 5s));
    return;
  }
  const auto order_query = query_of(s.write_target("benign-" + random_token(6)));
  const std::vector<std::pair<Side, std::pair<std::string, std::string>>> attempts{
      {Side::kMaster, {"PUT", target}},
      {Side::kMaster, {"GET", target}},
      {Side::kMaster, {"HEAD", target}},
      {Side::kMaster, {"DELETE", target}},
      {Side::kVolume, {"PUT", target + "?" + order_query}},
      {Side::kVolume, {"GET", target}},
      {Side::kVolume, {"DELETE", target + "?upto=1"}},
  };
  for (const auto& [side, request] : attempts) {
    const auto& [method, sent] = request;
    const auto port = side == Side::kMaster ? s.mport : s.vport;
    const auto answer = http_request(port, method, sent, method == "PUT" ? "pwned" : "");
    EXPECT_EQ(answer.status, 400) << side_name(side) << " " << method << ": " << answer.summary();
    if (method != "HEAD") {
      EXPECT_NE(answer.body.find(c.refusal), std::string::npos)
          << side_name(side) << " " << method << ": " << answer.summary();
    }
  }
  EXPECT_EQ(s.cluster.blob_count(), blobs_before);
}

std::string repeated(std::string_view piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

const std::string kMalformedEscape = "malformed percent-encoding";

INSTANTIATE_TEST_SUITE_P(
    Hostile, KeyTraversal,
    ::testing::Values(
        KeyCase{"DotDotSlash", "../@", "../@", ""},
        KeyCase{"DeepDotDotSlash", repeated("../", 12) + "@", repeated("../", 12) + "@", ""},
        KeyCase{"EncodedDotDotSlash", "%2e%2e%2f%2e%2e%2f@", "../../@", ""},
        KeyCase{"UpperCaseEncodedDots", "%2E%2E/%2E%2E/@", "../../@", ""},
        KeyCase{"DotsThenEncodedSlash", "..%2f..%2F@", "../../@", ""},
        // Decoded once: the key holds the escapes, not the dots.
        KeyCase{"DoubleEncoded", "%252e%252e%252f@", "%2e%2e%2f@", ""},
        KeyCase{"Backslashes", "..\\..\\@", "..\\..\\@", ""},
        KeyCase{"EncodedBackslashes", "..%5c..%5C@", "..\\..\\@", ""},
        KeyCase{"BlobsFolderEscape", "blobs/../../../@", "blobs/../../../@", ""},
        KeyCase{"AbsolutePath", "/tmp/@", "/tmp/@", ""},
        KeyCase{"EncodedAbsolutePath", "%2Ftmp%2F@", "/tmp/@", ""},
        // Overlong UTF-8 for '.' and '/' is not decoded into them: opaque bytes.
        KeyCase{"OverlongUtf8Dots", "%c0%ae%c0%ae%c0%af@", "\xc0\xae\xc0\xae\xc0\xaf@", ""},
        KeyCase{"OnlyOneDot", ".", ".", ""}, KeyCase{"OnlyTwoDots", "..", "..", ""},
        KeyCase{"OnlyEncodedDots", "%2e%2e%2e", "...", ""},
        KeyCase{"DotSegmentsOnly", "./../.", "./../.", ""},
        KeyCase{"LongestKey", std::string(1024, 'k'), std::string(1024, 'k'), ""},
        KeyCase{"LongestKeyEncoded", repeated("%6B", 1024), std::string(1024, 'k'), ""},
        KeyCase{"KeyOneByteTooLong", std::string(1025, 'k'), std::nullopt,
                "key is longer than 1024 bytes"},
        KeyCase{"EncodedKeyOneByteTooLong", repeated("%6B", 1025), std::nullopt,
                "key is longer than 1024 bytes"},
        KeyCase{"VeryLongTraversal", repeated("../", 1000) + "@", std::nullopt,
                "key is longer than 1024 bytes"},
        KeyCase{"EmptyKey", "", std::nullopt, "key is empty"},
        KeyCase{"Nul", "@%00", std::nullopt, "key contains a NUL byte"},
        KeyCase{"NulAfterDots", "..%00/@", std::nullopt, "key contains a NUL byte"},
        KeyCase{"LonePercent", "@%", std::nullopt, kMalformedEscape},
        KeyCase{"PercentWithOneDigit", "@%2", std::nullopt, kMalformedEscape},
        KeyCase{"PercentWithNonHex", "%zz@", std::nullopt, kMalformedEscape},
        KeyCase{"HalfEncodedDot", "%2@", std::nullopt, kMalformedEscape}),
    [](const ::testing::TestParamInfo<KeyCase>& p) { return p.param.name; });

// System files named by a key are never read: the key is a name in the
// index, which holds no such key.
TEST_F(HostileOpen, KeysNamingSystemFilesReadNothing) {
  auto& s = stage();
  const auto passwd = read_file("/etc/passwd");
  for (const auto& target : std::vector<std::string>{
           "/store//etc/passwd", "/store/%2Fetc%2Fpasswd", "/store/../../../../etc/passwd",
           "/store/" + repeated("..%2F", 12) + "etc%2Fpasswd", "/store/..\\..\\..\\etc\\passwd"}) {
    for (const auto port : {s.mport, s.vport}) {
      const auto answer = http_request(port, "GET", target);
      EXPECT_EQ(answer.status, 404) << target << ": " << answer.summary();
      EXPECT_NE(answer.body.find("no such key"), std::string::npos) << answer.summary();
      if (!passwd.empty()) {
        EXPECT_EQ(answer.body.find(passwd), std::string::npos);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Malformed requests, sent as raw bytes to each daemon.

struct RawCase {
  std::string name;
  std::string bytes;
  int status;
  std::string reason;
  bool closes;  // the daemon closes the connection after its answer
};

std::ostream& operator<<(std::ostream& out, const RawCase& c) { return out << c.name; }

class MalformedRequest : public HostileOpen,
                         public ::testing::WithParamInterface<std::tuple<RawCase, Side>> {};

TEST_P(MalformedRequest, GetsItsAnswer) {
  auto& s = stage();
  const auto& [c, side] = GetParam();
  const auto port = side == Side::kMaster ? s.mport : s.vport;
  const auto exchange = send_raw(port, c.bytes, {.until_close = c.closes});
  if (c.closes) {
    EXPECT_TRUE(answered_then_closed(exchange, c.status, c.reason));
    return;
  }
  ASSERT_EQ(exchange.responses.size(), 1U) << exchange.describe();
  EXPECT_EQ(exchange.responses[0].status, c.status) << exchange.describe();
  EXPECT_NE(exchange.responses[0].body.find(c.reason), std::string::npos) << exchange.describe();
}

std::string many_headers(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += "X-Header-" + std::to_string(i) + ": " + "v\r\n";
  return out;
}

const std::string kHost = "Host: 127.0.0.1\r\n";

// The Host of a request to `port`: an open volume names itself by it when it
// commits.
std::string host_line(uint16_t port) { return "Host: 127.0.0.1:" + std::to_string(port) + "\r\n"; }

INSTANTIATE_TEST_SUITE_P(
    Hostile, MalformedRequest,
    ::testing::Combine(
        ::testing::Values(
            RawCase{"GarbageLine", "GARBAGE\r\n\r\n", 400, "bad method", true},
            RawCase{
                "BinaryTlsHello",
                std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + random_bytes(200),
                400, "bad method", true},
            RawCase{"Http09RequestLine", "GET /healthz\r\n\r\n", 400, "bad target", true},
            RawCase{"Http2Version", "GET /healthz HTTP/2.0\r\n" + kHost + "\r\n", 400,
                    "bad version", true},
            RawCase{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad version", true},
            RawCase{"TwoDigitMinorVersion", "GET /healthz HTTP/1.10\r\n" + kHost + "\r\n", 400,
                    "bad version", true},
            RawCase{"NoVersion", "GET /healthz \r\n" + kHost + "\r\n", 400, "bad version", true},
            RawCase{"TwoSpacesInRequestLine", "GET  /healthz HTTP/1.1\r\n" + kHost + "\r\n", 400,
                    "bad target", true},
            RawCase{"NulInTarget", std::string("GET /store/a\0b HTTP/1.1\r\n", 25) + kHost + "\r\n",
                    400, "bad target", true},
            RawCase{"DelInTarget", "GET /store/a\x7f HTTP/1.1\r\n" + kHost + "\r\n", 400,
                    "bad target", true},
            // An unknown method, or a known one in the wrong case (methods
            // are case-sensitive): the path exists, the method does not.
            RawCase{"UnknownMethod", "BREW /healthz HTTP/1.1\r\n" + kHost + "\r\n", 405,
                    "method not allowed", false},
            RawCase{"LowerCaseMethod", "get /healthz HTTP/1.1\r\n" + kHost + "\r\n", 405,
                    "method not allowed", false},
            RawCase{"HeaderWithoutColon",
                    "GET /healthz HTTP/1.1\r\n" + kHost + "NoColonHere\r\n\r\n", 400, "bad field",
                    true},
            RawCase{"InvalidHeaderNameChars",
                    "GET /healthz HTTP/1.1\r\n" + kHost + "X(Y)@: v\r\n\r\n", 400, "bad field",
                    true},
            // RFC 9112 §5.1: whitespace before the colon MUST be refused with 400.
            RawCase{"SpaceBeforeColon", "GET /healthz HTTP/1.1\r\n" + kHost + "X-A : v\r\n\r\n",
                    400, "bad field", true},
            RawCase{"NulInHeaderValue",
                    "GET /healthz HTTP/1.1\r\n" + kHost + std::string("X-A: a\0b\r\n\r\n", 11), 400,
                    "bad value", true},
            RawCase{"HugeHeader",
                    "GET /healthz HTTP/1.1\r\n" + kHost + "X-Big: " + std::string(40 * kKiB, 'b') +
                        "\r\n\r\n",
                    431, "request header is larger than 8192 bytes", true},
            RawCase{"TenThousandHeaders",
                    "GET /healthz HTTP/1.1\r\n" + kHost + many_headers(10000) + "\r\n", 431,
                    "request header is larger than 8192 bytes", true},
            RawCase{"FiveHundredHeaders",
                    "GET /healthz HTTP/1.1\r\n" + kHost + many_headers(500) + "\r\n", 200,
                    "\"alive\":true", false},
            RawCase{"NonNumericContentLength",
                    "PUT /store/k HTTP/1.1\r\n" + kHost + "Content-Length: abc\r\n\r\n", 400,
                    "bad Content-Length", true},
            RawCase{"NegativeContentLength",
                    "PUT /store/k HTTP/1.1\r\n" + kHost + "Content-Length: -1\r\n\r\n", 400,
                    "bad Content-Length", true},
            RawCase{"SignedContentLength",
                    "PUT /store/k HTTP/1.1\r\n" + kHost + "Content-Length: +1\r\n\r\nx", 400,
                    "bad Content-Length", true},
            RawCase{"HugeContentLength",
                    "PUT /store/k HTTP/1.1\r\n" + kHost +
                        "Content-Length: 99999999999999999999999\r\n\r\n",
                    400, "bad Content-Length", true},
            RawCase{"TwoDifferentContentLengths",
                    "PUT /store/k HTTP/1.1\r\n" + kHost +
                        "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
                    400, "multiple Content-Length", true},
            RawCase{"DifferentContentLengthsInOneField",
                    "PUT /store/k HTTP/1.1\r\n" + kHost + "Content-Length: 1, 2\r\n\r\nxy", 400,
                    "Content-Length", true},
            RawCase{"BareLineFeeds", "GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n", 400,
                    "bad version", true},
            RawCase{"CarriageReturnsWithoutLineFeeds", "GET /healthz HTTP/1.1\rHost: 127.0.0.1\r\r",
                    400, "bad version", true},
            RawCase{"BareLineFeedInAHeader",
                    "GET /healthz HTTP/1.1\r\n" + kHost + "X-A: v\nX-B: w\r\n\r\n", 400,
                    "bad value", true}),
        ::testing::Values(Side::kMaster, Side::kVolume)),
    [](const ::testing::TestParamInfo<std::tuple<RawCase, Side>>& p) {
      return std::get<0>(p.param).name + side_name(std::get<1>(p.param));
    });

// HTTP/1.0 is answered as HTTP/1.0, and the connection then closes.
TEST_F(HostileOpen, AnHttp10RequestIsAnsweredAndClosed) {
  const auto exchange =
      send_raw(stage().mport, "GET /healthz HTTP/1.0\r\n\r\n", {.until_close = true});
  ASSERT_EQ(exchange.responses.size(), 1U) << exchange.describe();
  EXPECT_EQ(exchange.responses[0].head.rfind("HTTP/1.0 200", 0), 0U) << exchange.describe();
  EXPECT_TRUE(exchange.closed) << exchange.describe();
}

// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code
// to any HTTP/1.1 request message that lacks a Host header field and to any
// request message that contains more than one Host header field line". Both
// daemons serve such requests today: the check belongs in the HTTP server
// (src/common/http_server.cpp), which is being changed elsewhere.
TEST_F(HostileOpen, AnHttp11RequestWithoutOneHostIsRefused) {
  auto& s = stage();
  for (const auto port : {s.mport, s.vport}) {
    EXPECT_TRUE(answered_then_closed(
        send_raw(port, "GET /healthz HTTP/1.1\r\n\r\n", {.until_close = true}), 400, "Host"));
    EXPECT_TRUE(
        answered_then_closed(send_raw(port, "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                                      {.until_close = true}),
                             400, "Host"));
  }
}

// Without a Host (HTTP/1.0 may omit it) and no --advertise-url, the master
// cannot name itself in a write order: 400, and nothing is redirected.
TEST_F(HostileOpen, APutWithoutHostIsRefusedByTheMaster) {
  const auto exchange = send_raw(
      stage().mport, "PUT /store/k HTTP/1.0\r\nContent-Length: 0\r\n\r\n", {.until_close = true});
  EXPECT_TRUE(answered_then_closed(exchange, 400, "PUT needs a valid Host header"));
}

// ---------------------------------------------------------------------------
// Framing and request smuggling.

// A request after a body that cannot be delimited: it must never be answered.
const std::string kSmuggled = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

struct FramingCase {
  std::string name;
  std::string headers;  // between the request line and the blank line
  std::string body;     // then kSmuggled follows
  int status;
  std::string reason;
};

std::ostream& operator<<(std::ostream& out, const FramingCase& c) { return out << c.name; }

class Framing : public HostileOpen, public ::testing::WithParamInterface<FramingCase> {};

// Sent to the volume as an upload of a fresh key: refused, the connection
// closed with the smuggled request unanswered, and nothing stored.
TEST_P(Framing, AnUploadThatCannotBeDelimitedIsRefusedAndClosed) {
  auto& s = stage();
  const auto& c = GetParam();
  const auto key = "framed-" + random_token(8);
  const auto target = s.write_target(key);
  const auto exchange = send_raw(s.vport,
                                 "PUT " + target + " HTTP/1.1\r\n" + host_line(s.vport) +
                                     c.headers + "\r\n" + c.body + kSmuggled,
                                 {.until_close = true});
  EXPECT_TRUE(answered_then_closed(exchange, c.status, c.reason));
  EXPECT_EQ(http_request(s.mport, "GET", "/store/" + key).status, 404) << "nothing stored";
}

const std::string kChunkedBody = "5\r\nhello\r\n0\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Hostile, Framing,
    ::testing::Values(FramingCase{"ContentLengthThenTransferEncoding",
                                  "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                                  kChunkedBody, 400, "bad Transfer-Encoding"},
                      FramingCase{"TransferEncodingThenContentLength",
                                  "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                                  kChunkedBody, 400, "bad Content-Length"},
                      FramingCase{"ChunkedThenIdentity", "Transfer-Encoding: chunked, identity\r\n",
                                  kChunkedBody, 400, "must end with chunked"},
                      FramingCase{"XChunked", "Transfer-Encoding: xchunked\r\n", kChunkedBody, 400,
                                  "must end with chunked"},
                      FramingCase{"ChunkedInTwoFields",
                                  "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                                  kChunkedBody, 400, "bad Transfer-Encoding"},
                      FramingCase{"ChunkedTwiceInOneField",
                                  "Transfer-Encoding: chunked, chunked\r\n", kChunkedBody, 400,
                                  "chunked more than once"},
                      FramingCase{"GzipThenChunked", "Transfer-Encoding: gzip, chunked\r\n",
                                  kChunkedBody, 501, "is not supported"},
                      FramingCase{"EmptyTransferEncoding", "Transfer-Encoding: ,\r\n", kChunkedBody,
                                  400, "names no coding"},
                      FramingCase{"ChunkSizeOverflow", "Transfer-Encoding: chunked\r\n",
                                  "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400, "broken off"},
                      FramingCase{"NegativeChunkSize", "Transfer-Encoding: chunked\r\n",
                                  "-5\r\nhello\r\n0\r\n\r\n", 400, "broken off"},
                      FramingCase{"GarbageChunkSize", "Transfer-Encoding: chunked\r\n",
                                  "zz\r\nhello\r\n0\r\n\r\n", 400, "broken off"},
                      FramingCase{"ChunkLongerThanItsSize", "Transfer-Encoding: chunked\r\n",
                                  "3\r\nhello\r\n0\r\n\r\n", 400, "broken off"},
                      FramingCase{"ChunkWithoutItsCrLf", "Transfer-Encoding: chunked\r\n",
                                  "5\r\nhello0\r\n\r\n", 400, "broken off"}),
    [](const ::testing::TestParamInfo<FramingCase>& p) { return p.param.name; });

// A body that stops short — chunked without its last chunk, or fewer bytes
// than its Content-Length — and then the client's end: no value, no temp
// file, and the previous value of the key still read.
std::string broken_upload(Stage& s, const std::string& key, const std::string& framing,
                          const std::string& body) {
  return "PUT " + s.write_target(key) + " HTTP/1.1\r\n" + host_line(s.vport) + framing + "\r\n" +
         body;
}

const std::vector<std::pair<std::string, std::string>> kShortChunkedBodies{
    {"Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"},
    {"Transfer-Encoding: chunked\r\n", "5\r\nhel"},
    {"Transfer-Encoding: chunked\r\n", ""}};
const std::vector<std::pair<std::string, std::string>> kShortCountedBodies{
    {"Content-Length: 100\r\n", "only part of it"}, {"Content-Length: 100\r\n", ""}};

TEST_F(HostileOpen, AChunkedUploadBrokenOffGets400AndLeavesNoValue) {
  auto& s = stage();
  const auto key = "broken-" + random_token(8);
  ASSERT_TRUE(s.store(key, "the old value"));
  for (const auto& [framing, body] : kShortChunkedBodies) {
    for (const auto& stored : {key, "broken-new-" + random_token(8)}) {
      const auto exchange = send_raw(s.vport, broken_upload(s, stored, framing, body),
                                     {.until_close = true, .half_close = true});
      EXPECT_TRUE(answered_then_closed(exchange, 400, "request body broken off"));
      if (stored != key) {
        EXPECT_EQ(http_request(s.mport, "GET", "/store/" + stored).status, 404);
      }
    }
    EXPECT_EQ(s.read(key).body, "the old value");
  }
}

// The volume drops such an upload at once (no value, no temp file: the
// stage checks), whether or not it answers.
TEST_F(HostileOpen, AnUploadShorterThanItsContentLengthLeavesNoValue) {
  auto& s = stage();
  const auto key = "short-" + random_token(8);
  ASSERT_TRUE(s.store(key, "the old value"));
  for (const auto& [framing, body] : kShortCountedBodies) {
    for (const auto& stored : {key, "short-new-" + random_token(8)}) {
      send_raw(s.vport, broken_upload(s, stored, framing, body),
               {.half_close = true, .timeout = 100ms});
      if (stored != key) {
        EXPECT_EQ(http_request(s.mport, "GET", "/store/" + stored).status, 404);
      }
    }
    EXPECT_EQ(s.read(key).body, "the old value");
  }
}

// It should also be answered 400 and closed, as a chunked one is. Today no
// answer comes and the connection stays until the I/O timeout (30 s): after
// the body's read failed at the client's FIN, Session::prepare_to_answer
// (src/common/http_server.cpp) still calls discard_body() for a small
// Content-Length, which reads again; asio marked the socket exhausted at
// the EOF and, edge-triggered, never wakes that read again. Not fixed here:
// the HTTP server is being changed elsewhere.
TEST_F(HostileOpen, AnUploadShorterThanItsContentLengthGets400AndIsClosed) {
  auto& s = stage();
  for (const auto& [framing, body] : kShortCountedBodies) {
    const auto exchange =
        send_raw(s.vport, broken_upload(s, "short-answered-" + random_token(8), framing, body),
                 {.until_close = true, .half_close = true, .timeout = 3s});
    EXPECT_TRUE(answered_then_closed(exchange, 400, "request body broken off"));
  }
}

// Pipelined requests: a body is exactly its Content-Length; what follows
// is the next request, answered as one, and never part of the value.
TEST_F(HostileOpen, BytesPastTheContentLengthAreTheNextRequest) {
  auto& s = stage();
  const auto key = "pipelined-" + random_token(8);
  const auto target = s.write_target(key);
  const std::string smuggled_put = "PUT /store/" + key + "?version=1&replica=1 HTTP/1.1\r\n" +
                                   kHost + "Content-Length: 6\r\n\r\nEVIL!!";
  const auto exchange = send_raw(s.vport,
                                 "PUT " + target + " HTTP/1.1\r\n" + host_line(s.vport) +
                                     "Content-Length: 5\r\n\r\nhello" + kSmuggled + smuggled_put,
                                 {.responses = 3});
  // The third is a replica copy of version 1, stored as its own file and
  // never committed: the key still reads the first body.
  ASSERT_TRUE(answered(exchange, {201, 200, 201}));
  EXPECT_NE(exchange.responses[1].body.find("\"alive\":true"), std::string::npos);
  EXPECT_EQ(s.read(key).body, "hello");
  const auto removed = http_request(s.vport, "DELETE", "/store/" + key + "?version=1");
  EXPECT_EQ(removed.status, 204) << removed.summary();

  // The master reads and drops a body it does not need, and the next
  // request is answered on the same connection.
  const auto at_master = send_raw(
      s.mport,
      "PUT /store/" + key + " HTTP/1.1\r\n" + kHost + "Content-Length: 3\r\n\r\nabc" + kSmuggled,
      {.responses = 2});
  EXPECT_TRUE(answered(at_master, {307, 200}));
}

// Two equal Content-Lengths are one (RFC 9110 §8.6 allows either that or a
// 400): the body is 2 bytes, and the next request is read after it.
TEST_F(HostileOpen, EqualContentLengthsFrameTheBodyOnce) {
  const auto exchange = send_raw(stage().mport,
                                 "POST /healthz HTTP/1.1\r\n" + kHost +
                                     "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab" + kSmuggled,
                                 {.responses = 2});
  EXPECT_TRUE(answered(exchange, {405, 200}));
}

// An obsolete line folding is folded into the field before it (RFC 9112
// §5.2 allows replacing it with spaces): a folded "Content-Length" is no
// field of its own and frames no body, so the next request is answered.
TEST_F(HostileOpen, AFoldedLineIsPartOfThePreviousField) {
  const auto exchange = send_raw(stage().vport,
                                 "GET /healthz HTTP/1.1\r\n" + kHost +
                                     "X-Folded: a\r\n Content-Length: 40\r\n\r\n" + kSmuggled,
                                 {.responses = 2});
  EXPECT_TRUE(answered(exchange, {200, 200}));
}

// ---------------------------------------------------------------------------
// CR/LF injection into what reaches a response header or an error line.

// Every header line of `response`: exactly the expected names, once each.
::testing::AssertionResult no_injected_header(const RawResponse& response) {
  for (const auto* name : {"Set-Cookie", "X-Injected"}) {
    if (response.count(name) != 0) {
      return ::testing::AssertionFailure()
             << "an injected " << name << " header: " << printable(response.head);
    }
  }
  if (response.count("Location") > 1) {
    return ::testing::AssertionFailure() << "two Location headers: " << printable(response.head);
  }
  return ::testing::AssertionSuccess();
}

const std::vector<std::string> kInjectedKeys{
    "a%0d%0aSet-Cookie:%20pwned=1",
    "a%0aX-Injected:%201",
    "a%0dX-Injected:%201",
    "%0d%0aLocation:%20http://evil.example/%0d%0aX-Injected:%201",
    "a%0d%0a%0d%0aHTTP/1.1%20200%20OK%0d%0aX-Injected:%201",
};

TEST_F(HostileOpen, KeysWithCrLfNeverSplitTheRedirects) {
  auto& s = stage();
  for (const auto& key : kInjectedKeys) {
    SCOPED_TRACE(key);
    const auto put = send_raw(s.mport,
                              "PUT /store/" + key + " HTTP/1.1\r\n" + kHost +
                                  "Content-Length: 0\r\nConnection: close\r\n\r\n",
                              {.until_close = true});
    ASSERT_EQ(put.responses.size(), 1U) << put.describe();
    EXPECT_EQ(put.responses[0].status, 307) << put.describe();
    EXPECT_TRUE(no_injected_header(put.responses[0]));
    EXPECT_EQ(put.responses[0].count("Location"), 1);
    const auto location = put.responses[0].header("Location");
    EXPECT_EQ(location.find_first_of("\r\n"), std::string::npos) << printable(location);
    ASSERT_TRUE(s.store(key, "crlf"));
    const auto get = send_raw(
        s.mport, "GET /store/" + key + " HTTP/1.1\r\n" + kHost + "Connection: close\r\n\r\n",
        {.until_close = true});
    ASSERT_EQ(get.responses.size(), 1U) << get.describe();
    EXPECT_EQ(get.responses[0].status, 302) << get.describe();
    EXPECT_TRUE(no_injected_header(get.responses[0]));
    EXPECT_EQ(s.read(key).body, "crlf");
    EXPECT_EQ(http_request(s.mport, "DELETE", "/store/" + key).status, 204);
  }
}

// Query values with CR/LF: refused with a one-line reason (an error answer
// is one line, docs/api.md), and no header appears.
TEST_F(HostileOpen, QueryValuesWithCrLfAreRefusedOnOneLine) {
  auto& s = stage();
  const auto order = s.write_target("crlf-query");
  const auto version = order.substr(order.find("version="));
  const std::string injected = "%0d%0aX-Injected:%201";
  for (const auto& [port, method, target] :
       std::vector<std::tuple<uint16_t, std::string, std::string>>{
           {s.vport, "PUT",
            "/store/crlf-query?master=http://127.0.0.1:1" + injected + "&" + version},
           {s.vport, "PUT", "/store/crlf-query?master=evil" + injected + "&" + version},
           {s.vport, "PUT", "/store/crlf-query?" + version + "&replicas=evil" + injected},
           {s.vport, "POST", "/admin/copy/crlf-query?version=1&from=evil" + injected},
           {s.vport, "GET", "/store/crlf-query?version=1" + injected},
           {s.mport, "POST",
            "/internal/commit/crlf-query?volumes=" +
                percent_encode(s.cluster.volume_urls()[0], false) +
                "&version=1&size=1&checksum=00000000000000000000000000000000&if_match=%22a%22" +
                injected},
       }) {
    SCOPED_TRACE(method + " " + target);
    const auto exchange = send_raw(port,
                                   method + " " + target + " HTTP/1.1\r\n" + kHost +
                                       "Content-Length: 1\r\nConnection: close\r\n\r\nx",
                                   {.until_close = true});
    ASSERT_EQ(exchange.responses.size(), 1U) << exchange.describe();
    const auto& response = exchange.responses[0];
    EXPECT_EQ(response.status, 400) << exchange.describe();
    EXPECT_TRUE(no_injected_header(response));
    EXPECT_EQ(response.body.find_first_of("\r\n"), response.body.size() - 1)
        << "a reason of more than one line: " << printable(response.body);
  }
  EXPECT_EQ(http_request(s.mport, "GET", "/store/crlf-query").status, 404);
}

// A listing's start= with CR/LF: the keys are JSON, escaped, in the body.
TEST_F(HostileOpen, AListingStartWithCrLfStaysInTheBody) {
  const auto exchange = send_raw(stage().mport,
                                 "GET /store/?list&start=%0d%0aX-Injected:%201 HTTP/1.1\r\n" +
                                     kHost + "Connection: close\r\n\r\n",
                                 {.until_close = true});
  ASSERT_TRUE(answered(exchange, {200}));
  EXPECT_TRUE(no_injected_header(exchange.responses[0]));
}

// ---------------------------------------------------------------------------
// Ranges, conditions and query parameters: what RFC 9110 and docs/api.md say.

struct RangeCase {
  std::string name;
  std::string range;
  int status;
  std::string body;           // of the ten-byte value "0123456789"
  std::string content_range;  // expected, or empty for none
};

std::ostream& operator<<(std::ostream& out, const RangeCase& c) { return out << c.name; }

class BadRange : public HostileOpen, public ::testing::WithParamInterface<RangeCase> {};

TEST_P(BadRange, IsIgnoredOrUnsatisfiable) {
  auto& s = stage();
  const auto& c = GetParam();
  ASSERT_TRUE(s.store("ranged", "0123456789"));
  const auto redirect = http_request(s.mport, "GET", "/store/ranged");
  const auto answer = follow_redirect(redirect, "GET", {}, {{"Range", c.range}});
  EXPECT_EQ(answer.status, c.status) << answer.summary();
  EXPECT_EQ(answer.header("Content-Range").value_or(""), c.content_range) << answer.summary();
  if (c.status != 416) {
    EXPECT_EQ(answer.body, c.body);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, BadRange,
    ::testing::Values(RangeCase{"EndBeforeStart", "bytes=5-1", 200, "0123456789", ""},
                      RangeCase{"NoPositions", "bytes=-", 200, "0123456789", ""},
                      RangeCase{"DoubleDash", "bytes=--5", 200, "0123456789", ""},
                      RangeCase{"NotNumbers", "bytes=a-b", 200, "0123456789", ""},
                      RangeCase{"OtherUnit", "items=0-1", 200, "0123456789", ""},
                      RangeCase{"MultiRange", "bytes=0-1,4-5", 200, "0123456789", ""},
                      RangeCase{"NegativeStart", "bytes=-3-5", 200, "0123456789", ""},
                      RangeCase{"OverflowingStart", "bytes=99999999999999999999999-", 416, "",
                                "bytes */10"},
                      RangeCase{"StartAtTheEnd", "bytes=10-", 416, "", "bytes */10"},
                      RangeCase{"ZeroSuffix", "bytes=-0", 416, "", "bytes */10"},
                      RangeCase{"OverflowingEnd", "bytes=2-99999999999999999999999", 206,
                                "23456789", "bytes 2-9/10"},
                      RangeCase{"OverflowingSuffix", "bytes=-99999999999999999999999", 206,
                                "0123456789", "bytes 0-9/10"}),
    [](const ::testing::TestParamInfo<RangeCase>& p) { return p.param.name; });

// An entity tag that is not one matches nothing: If-Match fails (412, the
// value stays), If-None-Match passes, If-Range gives the whole value.
TEST_F(HostileOpen, MalformedEntityTagsMatchNothing) {
  auto& s = stage();
  ASSERT_TRUE(s.store("tagged", "tagged value"));
  for (const auto& tag : {"garbage", "\"unterminated", "W/", "\"\"\"", "\"a\" \"b\""}) {
    SCOPED_TRACE(tag);
    const auto put = http_request(s.mport, "PUT", "/store/tagged", "new", {{"If-Match", tag}});
    EXPECT_EQ(put.status, 412) << put.summary();
    const auto del = http_request(s.mport, "DELETE", "/store/tagged", {}, {{"If-Match", tag}});
    EXPECT_EQ(del.status, 412) << del.summary();
    const auto get = http_request(s.mport, "GET", "/store/tagged", {}, {{"If-None-Match", tag}});
    EXPECT_EQ(get.status, 302) << get.summary();
    const auto ranged =
        follow_redirect(get, "GET", {}, {{"Range", "bytes=0-1"}, {"If-Range", tag}});
    EXPECT_EQ(ranged.status, 200) << ranged.summary();
  }
  EXPECT_EQ(s.read("tagged").body, "tagged value");
}

struct QueryCase {
  std::string name;
  Side side;
  std::string method;
  std::string target;  // '@' stands for the volume's URL, percent-encoded
  int status;
  std::string reason;
};

std::ostream& operator<<(std::ostream& out, const QueryCase& c) { return out << c.name; }

class BadQuery : public HostileOpen, public ::testing::WithParamInterface<QueryCase> {};

TEST_P(BadQuery, IsRefusedWithTheParameterNamed) {
  auto& s = stage();
  const auto& c = GetParam();
  ASSERT_TRUE(s.store("queried", "queried value"));
  const auto target = replace_all(c.target, "@", percent_encode(s.cluster.volume_urls()[0], false));
  const auto answer = http_request(c.side == Side::kMaster ? s.mport : s.vport, c.method, target,
                                   c.method == "PUT" ? "x" : "");
  EXPECT_EQ(answer.status, c.status) << answer.summary();
  EXPECT_NE(answer.body.find(c.reason), std::string::npos) << answer.summary();
  EXPECT_EQ(s.read("queried").body, "queried value") << "a refused request changed nothing";
}

const std::string kChecksum = "&checksum=00000000000000000000000000000000";
const std::string kVersionReason = "version= must be a version number";

INSTANTIATE_TEST_SUITE_P(
    Hostile, BadQuery,
    ::testing::Values(
        QueryCase{"ReadVersionNotANumber", Side::kVolume, "GET", "/store/queried?version=abc", 400,
                  kVersionReason},
        QueryCase{"ReadVersionZero", Side::kVolume, "GET", "/store/queried?version=0", 400,
                  kVersionReason},
        QueryCase{"ReadVersionNegative", Side::kVolume, "GET", "/store/queried?version=-1", 400,
                  kVersionReason},
        QueryCase{"ReadVersionOverflow", Side::kVolume, "GET",
                  "/store/queried?version=18446744073709551616", 400, kVersionReason},
        QueryCase{"ReadVersionEmpty", Side::kVolume, "GET", "/store/queried?version=", 400,
                  kVersionReason},
        QueryCase{"ReadVersionBadEscape", Side::kVolume, "GET", "/store/queried?version=%zz", 400,
                  "version= is not valid percent-encoding"},
        QueryCase{"ReadVersionNotHeld", Side::kVolume, "GET", "/store/queried?version=1", 404, ""},
        QueryCase{"WriteWithoutVersion", Side::kVolume, "PUT", "/store/queried", 400,
                  "no write version"},
        QueryCase{"WriteVersionOverflow", Side::kVolume, "PUT",
                  "/store/queried?master=http://127.0.0.1:1&version=99999999999999999999", 400,
                  kVersionReason},
        QueryCase{"WriteWithoutMaster", Side::kVolume, "PUT", "/store/queried?version=5", 400,
                  "no master to commit to"},
        QueryCase{"WriteMasterNotAUrl", Side::kVolume, "PUT",
                  "/store/queried?master=ftp://x&version=5", 400, "master="},
        QueryCase{"WriteReplicasTwice", Side::kVolume, "PUT",
                  "/store/queried?master=http://127.0.0.1:1&version=5&replicas=http://"
                  "127.0.0.1:2,http://127.0.0.1:2",
                  400, "twice"},
        QueryCase{"WriteReplicasBadEscape", Side::kVolume, "PUT",
                  "/store/queried?master=http://127.0.0.1:1&version=5&replicas=%zz", 400,
                  "replicas= is not valid percent-encoding"},
        QueryCase{"DeleteWithoutScope", Side::kVolume, "DELETE", "/store/queried", 400,
                  "exactly one of upto=V and version=V"},
        QueryCase{"DeleteWithBothScopes", Side::kVolume, "DELETE",
                  "/store/queried?upto=5&version=5", 400, "exactly one of upto=V and version=V"},
        QueryCase{"DeleteUptoNotANumber", Side::kVolume, "DELETE", "/store/queried?upto=x", 400,
                  "upto= must be a version number"},
        QueryCase{"BlobsLimitZero", Side::kVolume, "GET", "/admin/blobs?limit=0", 400, "limit="},
        QueryCase{"BlobsLimitTooLarge", Side::kVolume, "GET", "/admin/blobs?limit=10001", 400,
                  "limit="},
        QueryCase{"BlobsLimitOverflow", Side::kVolume, "GET",
                  "/admin/blobs?limit=99999999999999999999999", 400, "limit="},
        QueryCase{"BlobsAfterBadEscape", Side::kVolume, "GET", "/admin/blobs?after=%g0", 400,
                  "after= is not valid percent-encoding"},
        QueryCase{"VerifyWithoutVersion", Side::kVolume, "POST", "/admin/verify/queried", 400,
                  "version="},
        QueryCase{"MarkerVersionNotANumber", Side::kVolume, "PUT",
                  "/admin/marker/queried?version=x", 400, "version="},
        QueryCase{"CopyWithoutSource", Side::kVolume, "POST", "/admin/copy/queried?version=5", 400,
                  "from="},
        QueryCase{"CopyFromAPath", Side::kVolume, "POST",
                  "/admin/copy/queried?version=5&from=http://127.0.0.1:1/etc/passwd", 400, "from="},
        QueryCase{"CommitWithoutVersion", Side::kMaster, "POST",
                  "/internal/commit/queried?volumes=@&size=1" + kChecksum, 400,
                  "commit needs version="},
        QueryCase{
            "CommitVersionOverflow", Side::kMaster, "POST",
            "/internal/commit/queried?volumes=@&version=99999999999999999999&size=1" + kChecksum,
            400, kVersionReason},
        QueryCase{"CommitSizeNegative", Side::kMaster, "POST",
                  "/internal/commit/queried?volumes=@&version=5&size=-1" + kChecksum, 400,
                  "size= must be a whole number"},
        QueryCase{"CommitChecksumUpperCase", Side::kMaster, "POST",
                  "/internal/commit/queried?volumes=@&version=5&size=1&checksum="
                  "0000000000000000000000000000000A",
                  400, "checksum="},
        QueryCase{
            "CommitConditionBadEscape", Side::kMaster, "POST",
            "/internal/commit/queried?volumes=@&version=5&size=1" + kChecksum + "&if_match=%22x%2",
            400, "if_match= is not valid percent-encoding"},
        QueryCase{"CommitWithoutVolumes", Side::kMaster, "POST",
                  "/internal/commit/queried?version=5&size=1" + kChecksum, 400, "volumes="},
        QueryCase{
            "CommitUnregisteredVolume", Side::kMaster, "POST",
            "/internal/commit/queried?volumes=http://127.0.0.1:1&version=5&size=1" + kChecksum, 400,
            "not registered"},
        QueryCase{"ListLimitZero", Side::kMaster, "GET", "/store/?list&limit=0", 400, "limit"},
        QueryCase{"ListLimitTooLarge", Side::kMaster, "GET", "/store/?list&limit=10001", 400,
                  "limit"},
        QueryCase{"ListLimitNotANumber", Side::kMaster, "GET", "/store/?list&limit=ten", 400,
                  "limit"},
        QueryCase{"ListPrefixMalformed", Side::kMaster, "GET", "/store/%zz?list", 400,
                  kMalformedEscape},
        QueryCase{"ListLimitMalformed", Side::kMaster, "GET", "/store/?list&limit=%zz", 400,
                  "limit= is not valid percent-encoding"},
        QueryCase{"ListStartMalformed", Side::kMaster, "GET", "/store/?list&start=%g1", 400,
                  "start= is not valid percent-encoding"}),
    [](const ::testing::TestParamInfo<QueryCase>& p) { return p.param.name; });

// ---------------------------------------------------------------------------
// A secured cluster: forged, replayed, altered and expired signatures.

// What a forgery is made from: targets the master signed, and the secret.
struct Material {
  std::string secret;
  std::string write;      // the signed target of a 307 for a fresh key
  std::string read;       // the signed target of a 302 for the stored key "signed"
  std::string fresh_key;  // the fresh key's name
};

struct SignatureCase {
  std::string name;
  std::string method;
  std::function<std::string(const Material&)> target;
  std::string reason;
};

std::ostream& operator<<(std::ostream& out, const SignatureCase& c) { return out << c.name; }

class ForgedSignature : public HostileSecured,
                        public ::testing::WithParamInterface<SignatureCase> {};

TEST_P(ForgedSignature, IsRefusedWith403AndChangesNothing) {
  auto& s = stage();
  const auto& c = GetParam();
  ASSERT_TRUE(s.store("signed", "signed value"));
  Material material;
  material.secret = s.secret;
  material.fresh_key = "fresh-" + random_token(8);
  material.write = s.write_target(material.fresh_key);
  const auto located = http_request(s.mport, "GET", "/store/signed");
  ASSERT_EQ(located.status, 302) << located.summary();
  material.read = parse_url(located.header("Location").value_or(""))->target;

  const auto target = c.target(material);
  const auto answer = http_request(s.vport, c.method, target,
                                   c.method == "PUT" || c.method == "POST" ? "forged" : "");
  EXPECT_EQ(answer.status, 403) << c.method << " " << target << ": " << answer.summary();
  EXPECT_NE(answer.body.find(c.reason), std::string::npos) << answer.summary();
  EXPECT_EQ(answer.body.find(s.secret), std::string::npos) << "the secret is never echoed";
  EXPECT_EQ(s.read("signed").body, "signed value");
  EXPECT_EQ(http_request(s.mport, "GET", "/store/" + material.fresh_key).status, 404);
}

const std::string kNotSigned = "the request is not signed";
const std::string kMalformed = "a malformed signature";
const std::string kMismatch = "the signature does not match the request";
const std::string kExpired = "the signature has expired";

std::string with_signature(const std::string& target, const std::string& signature) {
  return target.substr(0, target.rfind("&sig=")) + "&sig=" + signature;
}
std::string signature_of(const std::string& target) {
  return target.substr(target.rfind("&sig=") + 5);
}
std::string far_future() { return std::to_string(unix_now() + 10 * 365 * 24 * 3600); }

INSTANTIATE_TEST_SUITE_P(Hostile, ForgedSignature,
                         ::
                             testing::Values(SignatureCase{"WriteWithoutSignature", "PUT",
                                                           [](const Material& m) {
                                                             return unsigned_part(m.write);
                                                           },
                                                           kNotSigned},
                                             SignatureCase{"WriteWithExpiryButNoSignature", "PUT",
                                                           [](const Material& m) {
                                                             return m.write.substr(
                                                                 0, m.write.rfind("&sig="));
                                                           },
                                                           kNotSigned},
                                             SignatureCase{"ReadWithoutSignature", "GET",
                                                           [](const Material& m) {
                                                             return unsigned_part(m.read);
                                                           },
                                                           kNotSigned},
                                             SignatureCase{"DeleteWithoutSignature", "DELETE",
                                                           [](const Material&) {
                                                             return std::string(
                                                                 "/store/signed?upto=1");
                                                           },
                                                           kNotSigned},
                                             SignatureCase{"EmptySignature", "PUT",
                                                           [](const Material& m) {
                                                             return with_signature(m.write, "");
                                                           },
                                                           kMalformed},
                                             SignatureCase{"TruncatedSignature", "PUT",
                                                           [](const Material& m) {
                                                             return with_signature(
                                                                 m.write,
                                                                 signature_of(m.write).substr(0,
                                                                                              63));
                                                           },
                                                           kMalformed},
                                             SignatureCase{
                                                 "SignatureOneDigitLonger", "PUT",
                                                 [](const Material& m) { return m.write + "0"; },
                                                 kMalformed},
                                             SignatureCase{"SignatureTwiceAsLong", "PUT",
                                                           [](const Material& m) {
                                                             return m.write + signature_of(m.write);
                                                           },
                                                           kMalformed},
                                             SignatureCase{
                                                 "UpperCaseSignature", "PUT",
                                                 [](const Material& m) {
                                                   auto upper = signature_of(m.write);
                                                   std::transform(
                                                       upper.begin(), upper.end(), upper.begin(),
                                                       [](unsigned char c) {
                                                         return static_cast<char>(std::toupper(c));
                                                       });
                                                   return with_signature(m.write, upper);
                                                 },
                                                 kMismatch},
                                             SignatureCase{"NonHexSignature", "PUT",
                                                           [](const Material& m) {
                                                             return with_signature(
                                                                 m.write, std::string(64, 'z'));
                                                           },
                                                           kMismatch},
                                             SignatureCase{"OneBitFlipped", "PUT",
                                                           [](const Material& m) {
                                                             auto sig = signature_of(m.write);
                                                             sig[10] = sig[10] == '0' ? '1' : '0';
                                                             return with_signature(m.write, sig);
                                                           },
                                                           kMismatch},
                                             SignatureCase{"Expired", "PUT",
                                                           [](const Material& m) {
                                                             return forge(
                                                                 m.secret, "PUT",
                                                                 unsigned_part(m.write),
                                                                 std::to_string(unix_now() - 5));
                                                           },
                                                           kExpired},
                                             SignatureCase{"ExpiredLongAgo", "GET",
                                                           [](const Material& m) {
                                                             return forge(m.secret, "GET",
                                                                          unsigned_part(m.read),
                                                                          "1");
                                                           },
                                                           kExpired},
                                             SignatureCase{"FarFutureWithAnotherKey", "PUT",
                                                           [](const Material& m) {
                                                             return forge(random_token(64), "PUT",
                                                                          unsigned_part(m.write),
                                                                          far_future());
                                                           },
                                                           kMismatch},
                                             SignatureCase{"AnotherSecret", "PUT",
                                                           [](const Material& m) {
                                                             return forge(
                                                                 m.secret + "x", "PUT",
                                                                 unsigned_part(m.write),
                                                                 std::to_string(unix_now() + 30));
                                                           },
                                                           kMismatch},
                                             SignatureCase{"ExpiryOverflow", "PUT",
                                                           [](const Material& m) {
                                                             return forge(
                                                                 m.secret, "PUT",
                                                                 unsigned_part(m.write),
                                                                 "99999999999999999999999");
                                                           },
                                                           "the signature has no expiry"},
                                             SignatureCase{"ExpiryNotANumber", "PUT",
                                                           [](const Material& m) {
                                                             return forge(m.secret, "PUT",
                                                                          unsigned_part(m.write),
                                                                          "soon");
                                                           },
                                                           "the signature has no expiry"},
                                             SignatureCase{"ExpiryChanged", "PUT",
                                                           [](const Material& m) {
                                                             const auto at = m.write.find("&exp=");
                                                             return m.write.substr(0, at) +
                                                                    "&exp=" + far_future() +
                                                                    m.write.substr(
                                                                        m.write.find("&sig="));
                                                           },
                                                           kMismatch},
                                             SignatureCase{"ReadSignatureUsedToWrite", "PUT",
                                                           [](const Material& m) { return m.read; },
                                                           kMismatch},
                                             SignatureCase{"ReadSignatureUsedToDelete", "DELETE",
                                                           [](const Material& m) { return m.read; },
                                                           kMismatch},
                                             SignatureCase{
                                                 "WriteSignatureUsedToDelete", "DELETE",
                                                 [](const Material& m) { return m.write; },
                                                 kMismatch},
                                             SignatureCase{"WriteSignatureForAnotherKey", "PUT",
                                                           [](const Material& m) {
                                                             return replace_all(
                                                                 m.write, "/store/" + m.fresh_key,
                                                                 "/store/signed");
                                                           },
                                                           kMismatch},
                                             SignatureCase{"ReadSignatureForAnotherKey", "GET",
                                                           [](const Material& m) {
                                                             return replace_all(m.read,
                                                                                "/store/signed",
                                                                                "/store/other");
                                                           },
                                                           kMismatch},
                                             SignatureCase{"ReadSignatureForListing", "GET",
                                                           [](const Material& m) {
                                                             return "/admin/blobs?" +
                                                                    query_of(m.read);
                                                           },
                                                           kMismatch},
                                             SignatureCase{"VersionChanged", "PUT",
                                                           [](const Material& m) {
                                                             return replace_all(
                                                                 m.write, "version=", "version=1");
                                                           },
                                                           kMismatch},
                                             SignatureCase{
                                                 "ParameterAddedBeforeTheSignature", "PUT",
                                                 [](const Material& m) {
                                                   const auto at = m.write.find("&exp=");
                                                   return m.write.substr(0, at) +
                                                          "&replicas=http%3A%2F%2F127.0.0.1%3A1" +
                                                          m.write.substr(at);
                                                 },
                                                 kMismatch},
                                             SignatureCase{"ParameterAddedAfterTheSignature", "PUT",
                                                           [](const Material& m) {
                                                             return m.write + "&version=1";
                                                           },
                                                           kMalformed},
                                             SignatureCase{"MasterChanged", "PUT",
                                                           [](const Material& m) {
                                                             const auto from =
                                                                 m.write.find("master=");
                                                             const auto to =
                                                                 m.write.find('&', from);
                                                             return m.write.substr(0, from) +
                                                                    "master=http%3A%2F%2F127.0.0.1%"
                                                                    "3A1" +
                                                                    m.write.substr(to);
                                                           },
                                                           kMismatch},
                                             SignatureCase{"SignatureDuplicated", "PUT",
                                                           [](const Material& m) {
                                                             return m.write +
                                                                    "&sig=" + signature_of(m.write);
                                                           },
                                                           kMismatch},
                                             SignatureCase{"GarbageSignatureFirst", "PUT",
                                                           [](const Material& m) {
                                                             const auto at = m.write.find("&sig=");
                                                             return m.write.substr(0, at) +
                                                                    "&sig=" + std::string(64, 'a') +
                                                                    m.write.substr(at);
                                                           },
                                                           kMismatch},
                                             SignatureCase{"StatsUnsigned", "GET",
                                                           [](const Material&) {
                                                             return std::string("/stats");
                                                           },
                                                           kNotSigned},
                                             SignatureCase{
                                                 "CopyFromElsewhereUnsigned", "POST",
                                                 [](const Material&) {
                                                   return std::string(
                                                       "/admin/copy/signed?version=5&from=http://"
                                                       "127.0.0.1:1");
                                                 },
                                                 kNotSigned},
                                             SignatureCase{"MarkerUnsigned", "PUT",
                                                           [](const Material&) {
                                                             return std::string(
                                                                 "/admin/marker/signed?version=5");
                                                           },
                                                           kNotSigned}),
                         [](const ::testing::TestParamInfo<SignatureCase>& p) {
                           return p.param.name;
                         });

// The forger signs as the master does: with the cluster's secret, a target
// it made is accepted. So the refusals above are refusals of a signature,
// not of the forger's format.
TEST_F(HostileSecured, TheTestsOwnSignatureWithTheSecretIsAccepted) {
  auto& s = stage();
  const auto key = "forged-right-" + random_token(6);
  const auto target =
      forge(s.secret, "PUT", unsigned_part(s.write_target(key)), std::to_string(unix_now() + 30));
  const auto put = http_request(s.vport, "PUT", target, "accepted");
  EXPECT_EQ(put.status, 201) << put.summary();
  EXPECT_EQ(s.read(key).body, "accepted");
}

// A HEAD is signed and checked as a GET (docs/security.md): the 302's
// signature is good for either, and for nothing else.
TEST_F(HostileSecured, AReadSignatureServesGetAndHeadOnly) {
  auto& s = stage();
  ASSERT_TRUE(s.store("headed", "headed value"));
  const auto located = http_request(s.mport, "GET", "/store/headed");
  const auto target = parse_url(located.header("Location").value_or(""))->target;
  EXPECT_EQ(http_request(s.vport, "HEAD", target).status, 200);
  EXPECT_EQ(http_request(s.vport, "GET", target).body, "headed value");
  EXPECT_EQ(http_request(s.vport, "POST", target).status, 405);
}

// A forged commit, unsigned or signed with another secret: 403, and the
// index is unchanged — the key still reads its old value, and a key it
// would create stays absent.
TEST_F(HostileSecured, AForgedCommitIsRefusedAndTheIndexIsUnchanged) {
  auto& s = stage();
  ASSERT_TRUE(s.store("committed", "the old value"));
  const auto volumes = percent_encode(s.cluster.volume_urls()[0], false);
  for (const auto* key : {"committed", "never-written"}) {
    const std::string commit = std::string("/internal/commit/") + key + "?volumes=" + volumes +
                               "&version=99999999999999999&size=4" + kChecksum;
    const auto exp = std::to_string(unix_now() + 30);
    for (const auto& [target, reason] : std::vector<std::pair<std::string, std::string>>{
             {commit, kNotSigned},
             {forge(random_token(64), "POST", commit, exp), kMismatch},
             {forge(s.secret, "PUT", commit, exp), kMismatch},
             {forge(s.secret, "POST", commit, "1"), kExpired}}) {
      const auto answer = http_request(s.mport, "POST", target);
      EXPECT_EQ(answer.status, 403) << target << ": " << answer.summary();
      EXPECT_NE(answer.body.find(reason), std::string::npos) << answer.summary();
    }
  }
  EXPECT_EQ(s.read("committed").body, "the old value");
  EXPECT_EQ(http_request(s.mport, "GET", "/store/never-written").status, 404);
}

// A write order naming another master is refused unsigned, so the volume
// never calls it: nothing connects to the other address.
TEST_F(HostileSecured, AnUnsignedMasterElsewhereIsNeverCalled) {
  auto& s = stage();
  FakePeer elsewhere(FakePeer::Mode::kCommit);
  const auto order = s.write_target("ssrf");
  const auto version = order.substr(order.find("version="));
  const auto target = "/store/ssrf?master=" + percent_encode(elsewhere.url(), false) + "&" +
                      version.substr(0, version.find('&'));
  const auto answer = http_request(s.vport, "PUT", target, "to elsewhere");
  EXPECT_EQ(answer.status, 403) << answer.summary();
  EXPECT_NE(answer.body.find(kNotSigned), std::string::npos) << answer.summary();
  EXPECT_EQ(elsewhere.connections(), 0);
  EXPECT_EQ(http_request(s.mport, "GET", "/store/ssrf").status, 404);
}

// /admin/* without the token: 401 with WWW-Authenticate; a token in the
// query string, or the secret's signature for another path, is no token.
TEST_F(HostileSecured, AdminCallsWithoutTheTokenGet401) {
  auto& s = stage();
  const auto exp = std::to_string(unix_now() + 30);
  for (const auto& [target, headers] : std::vector<std::pair<std::string, HeaderList>>{
           {"/admin/volumes", {}},
           {"/admin/volumes", {{"Authorization", "Bearer " + s.token + "x"}}},
           {"/admin/volumes", {{"Authorization", "Bearer"}}},
           {"/admin/volumes", {{"Authorization", "Basic " + s.token}}},
           {"/admin/volumes?token=" + s.token, {}},
           {"/admin/volumes?access_token=" + s.token, {}},
           {"/admin/volumes?authorization=Bearer%20" + s.token, {}}}) {
    const auto answer = http_request(s.mport, "GET", target, {}, headers);
    EXPECT_EQ(answer.status, 401) << target << ": " << answer.summary();
    EXPECT_EQ(answer.header("WWW-Authenticate").value_or(""), "Bearer") << answer.summary();
    EXPECT_EQ(answer.body.find(s.token), std::string::npos) << "the token is never echoed";
  }
  // A signed call to a daemon-only endpoint signed for another path.
  const auto forged = forge(s.secret, "POST", "/admin/add-volume", exp);
  const auto moved = http_request(s.mport, "POST", replace_all(forged, "add-volume", "scrub"));
  EXPECT_EQ(moved.status, 401) << moved.summary();
  const auto listed =
      http_request(s.mport, "GET", "/admin/volumes", {}, {{"Authorization", "Bearer " + s.token}});
  EXPECT_EQ(listed.status, 200) << listed.summary();
  EXPECT_EQ(listed.body.find("127.0.0.1:1\""), std::string::npos) << listed.body;
}

// ---------------------------------------------------------------------------
// An open volume started with -m commits only to its own master, whatever
// master= its write order names: the other address is never connected to.

TEST(HostileOpenVolume, CommitsOnlyToItsOwnMaster) {
  TempDir tmp;
  const uint16_t mport = pick_free_port();
  const auto master_url = "http://127.0.0.1:" + std::to_string(mport);
  Daemon master("master", master_binary(), master_args(tmp.subdir("index"), mport, {}),
                tmp.new_log_path("master"));
  ASSERT_TRUE(master.wait_ready());
  const uint16_t vport = pick_free_port();
  const auto volume_url = "http://127.0.0.1:" + std::to_string(vport);
  Daemon volume("volume", volume_binary(),
                volume_args(tmp.subdir("volume"), vport, {"-m", master_url, "-b", volume_url}),
                tmp.new_log_path("volume"));
  ASSERT_TRUE(volume.wait_ready());
  // The volume registers itself; then the master redirects writes to it.
  ASSERT_TRUE(
      wait_until([&] { return http_request(mport, "PUT", "/store/probe").status == 307; }, 20s));
  FakePeer elsewhere(FakePeer::Mode::kCommit);
  const auto redirect = http_request(mport, "PUT", "/store/k");
  const auto location = parse_url(redirect.header("Location").value_or(""));
  ASSERT_TRUE(location.has_value()) << redirect.summary();
  const auto from = location->target.find("master=");
  const auto to = location->target.find('&', from);
  const auto target = location->target.substr(0, from) +
                      "master=" + percent_encode(elsewhere.url(), false) +
                      location->target.substr(to);
  const auto put = http_request(vport, "PUT", target, "committed at home");
  EXPECT_EQ(put.status, 201) << put.summary();
  EXPECT_EQ(elsewhere.connections(), 0) << "the volume called the master its order named";
  EXPECT_EQ(get_via_master(mport, "/store/k").second.body, "committed at home");
}

}  // namespace
}  // namespace kalavara::it
