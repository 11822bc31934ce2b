// Values as proper HTTP resources: ETag checksums, Range and resumed downloads,
// conditional GET/HEAD/PUT/DELETE, Content-MD5 on upload, and prefix listing
// on the master. Driven with /usr/bin/curl and the raw client.
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
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
// Small helpers

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A strong ETag of 32 lowercase hex characters: "0123...ef".
::testing::AssertionResult is_strong_etag(const std::optional<std::string>& etag) {
  if (!etag) return ::testing::AssertionFailure() << "no ETag header";
  const std::string& s = *etag;
  if (s.size() != 34 || s.front() != '"' || s.back() != '"' ||
      !std::all_of(s.begin() + 1, s.end() - 1, is_lower_hex)) {
    return ::testing::AssertionFailure()
           << "ETag " << printable(s) << " is not '\"' + 32 lowercase hex + '\"'";
  }
  return ::testing::AssertionSuccess();
}

// The status the client ends up with: the volume's when the master redirected.
int final_status(const Exchange& ex) {
  const int first = ex.first.status;
  if ((first == 302 || first == 307) && ex.second.status != 0) return ex.second.status;
  return first;
}

// `method` to the master with `headers` (and `body`); on 302/307 the same
// request to Location — what curl -L does with -H and -X.
Exchange send_via_master(uint16_t master_port, const std::string& method, const std::string& target,
                         const std::string& body = {}, const HeaderList& headers = {}) {
  Exchange ex;
  ex.first = http_request(master_port, method, target, body, headers);
  if (ex.first.status != 302 && ex.first.status != 307) return ex;
  ex.second = follow_redirect(ex.first, method, body, headers);
  if (ex.second.status == 0) ex.error = "request to Location failed";
  return ex;
}

// Where the master sends a GET of `target` (the volume holding the key).
std::optional<Url> volume_location(uint16_t master_port, const std::string& target) {
  const auto r = http_request(master_port, "HEAD", target);
  if (r.status != 302) return std::nullopt;
  const auto location = r.header("Location");
  if (!location) return std::nullopt;
  return parse_url(*location);
}

std::string quoted_etag_list(const std::vector<std::string>& etags) {
  std::string out;
  for (const auto& e : etags) out += (out.empty() ? "" : ", ") + e;
  return out;
}

// Every regular file left under each volume's DATA_DIR/tmp (polled: the
// upload's temp file may be removed just after the answer).
::testing::AssertionResult volume_tmp_dirs_empty(Cluster& cluster) {
  std::vector<fs::path> left;
  const bool empty = wait_until(
      [&] {
        left.clear();
        for (std::size_t i = 0; i < cluster.volume_count(); ++i) {
          auto files = regular_files_under(cluster.volume_dir(i) / "tmp");
          left.insert(left.end(), files.begin(), files.end());
        }
        return left.empty();
      },
      5s);
  if (empty) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << left.size() << " files left in tmp:";
  for (const auto& f : left) failure << " " << f;
  return failure;
}

// Headers of the last response in a `curl -D FILE` dump (after redirects the
// file holds one block per response); `status` gets its status code.
HeaderList last_response_headers(const std::string& dump, int* status) {
  HeaderList headers;
  std::size_t pos = 0;
  for (int lines = 0; pos < dump.size() && lines < 10000; ++lines) {
    std::size_t eol = dump.find('\n', pos);
    if (eol == std::string::npos) eol = dump.size();
    std::string line = dump.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
      headers.clear();
      const auto space = line.find(' ');
      if (status != nullptr && space != std::string::npos) {
        *status = std::atoi(line.substr(space + 1, 3).c_str());
      }
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    value = first == std::string::npos ? "" : value.substr(first);
    headers.emplace_back(line.substr(0, colon), value);
  }
  return headers;
}

std::optional<std::string> find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < k.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(k[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return v;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// MD5 (RFC 1321) and base64 (RFC 4648), for Content-MD5 (RFC 1864)

using Md5Digest = std::array<unsigned char, 16>;

Md5Digest md5(std::string_view data) {
  static const std::array<std::uint32_t, 64> kSine = [] {
    std::array<std::uint32_t, 64> k{};
    for (std::size_t i = 0; i < k.size(); ++i) {
      k[i] = static_cast<std::uint32_t>(
          std::floor(std::fabs(std::sin(static_cast<double>(i + 1))) * 4294967296.0));
    }
    return k;
  }();
  static constexpr std::array<unsigned, 16> kShift = {7, 12, 17, 22, 5, 9,  14, 20,
                                                      4, 11, 16, 23, 6, 10, 15, 21};
  std::string msg(data);
  const std::uint64_t bit_length = static_cast<std::uint64_t>(data.size()) * 8;
  msg.push_back('\x80');
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (unsigned i = 0; i < 8; ++i) msg.push_back(static_cast<char>((bit_length >> (8 * i)) & 0xff));

  std::uint32_t a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
  for (std::size_t block = 0; block < msg.size(); block += 64) {
    std::array<std::uint32_t, 16> m{};
    for (std::size_t j = 0; j < 16; ++j) {
      for (std::size_t b = 0; b < 4; ++b) {
        m[j] |= static_cast<std::uint32_t>(static_cast<unsigned char>(msg[block + 4 * j + b]))
                << (8 * b);
      }
    }
    std::uint32_t a = a0, b = b0, c = c0, d = d0;
    for (unsigned i = 0; i < 64; ++i) {
      std::uint32_t f = 0;
      unsigned g = 0;
      switch (i / 16) {
        case 0:
          f = (b & c) | (~b & d);
          g = i;
          break;
        case 1:
          f = (d & b) | (~d & c);
          g = (5 * i + 1) % 16;
          break;
        case 2:
          f = b ^ c ^ d;
          g = (3 * i + 5) % 16;
          break;
        default:
          f = c ^ (b | ~d);
          g = (7 * i) % 16;
          break;
      }
      f = f + a + kSine[i] + m[g];
      a = d;
      d = c;
      c = b;
      const unsigned s = kShift[(i / 16) * 4 + i % 4];
      b = b + ((f << s) | (f >> (32 - s)));
    }
    a0 += a;
    b0 += b;
    c0 += c;
    d0 += d;
  }
  Md5Digest out{};
  const std::array<std::uint32_t, 4> words = {a0, b0, c0, d0};
  for (std::size_t w = 0; w < 4; ++w) {
    for (std::size_t b = 0; b < 4; ++b) {
      out[4 * w + b] = static_cast<unsigned char>((words[w] >> (8 * b)) & 0xff);
    }
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string digest_bytes(const Md5Digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v =
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v =
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::string content_md5(std::string_view body) { return base64(digest_bytes(md5(body))); }

// `md5sum FILE`'s hex digest, or a message starting with "error".
std::string md5sum_of(const TempDir& tmp, const fs::path& file) {
  const fs::path out = tmp.new_scratch_path("md5sum-out");
  const fs::path err = tmp.new_scratch_path("md5sum-err");
  std::string error;
  const pid_t pid = spawn_process({"/usr/bin/md5sum", file.string()}, out, err, error);
  if (pid < 0) return "error: " + error;
  const auto st = wait_process(pid, 60s);
  if (!st || !st->clean()) return "error: md5sum failed: " + read_file(err);
  return read_file(out).substr(0, 32);
}

// ---------------------------------------------------------------------------
// The listing's JSON: {"keys": [string...], "next": string}

struct Listing {
  std::vector<std::string> keys;
  std::string next;
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  std::optional<Listing> listing() {
    Listing out;
    bool have_keys = false;
    bool have_next = false;
    skip_ws();
    if (!expect('{')) return std::nullopt;
    skip_ws();
    if (peek() == '}') return fail("empty object");
    for (int members = 0; members < 1000; ++members) {
      skip_ws();
      std::string name;
      if (!string(name)) return std::nullopt;
      skip_ws();
      if (!expect(':')) return std::nullopt;
      skip_ws();
      if (name == "keys") {
        if (have_keys) return fail("two \"keys\" members");
        have_keys = true;
        if (!string_array(out.keys)) return std::nullopt;
      } else if (name == "next") {
        if (have_next) return fail("two \"next\" members");
        have_next = true;
        if (!string(out.next)) return std::nullopt;
      } else if (!skip_value(0)) {
        return std::nullopt;
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (!expect('}')) return std::nullopt;
      skip_ws();
      if (pos_ != text_.size()) return fail("trailing bytes after the object");
      if (!have_keys || !have_next) return fail("\"keys\" or \"next\" missing");
      return out;
    }
    return fail("too many members");
  }

  const std::string& error() const { return error_; }

 private:
  std::nullopt_t fail(const std::string& why) {
    if (error_.empty()) error_ = why + " at byte " + std::to_string(pos_);
    return std::nullopt;
  }
  int peek() const { return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : -1; }
  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool expect(char c) {
    if (peek() != static_cast<unsigned char>(c)) {
      fail(std::string("expected '") + c + "'");
      return false;
    }
    ++pos_;
    return true;
  }
  bool hex4(std::uint32_t& out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int c = peek();
      std::uint32_t v = 0;
      if (c >= '0' && c <= '9') {
        v = static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        fail("bad \\u escape");
        return false;
      }
      out = out * 16 + v;
      ++pos_;
    }
    return true;
  }
  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool string(std::string& out) {
    out.clear();
    if (!expect('"')) return false;
    while (true) {
      const int c = peek();
      if (c < 0) {
        fail("unterminated string");
        return false;
      }
      ++pos_;
      if (c == '"') return true;
      if (c < 0x20) {
        --pos_;
        fail("raw control character in a string");
        return false;
      }
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      const int e = peek();
      ++pos_;
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone low surrogate");
            return false;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (peek() != '\\') {
              fail("high surrogate without a low one");
              return false;
            }
            ++pos_;
            if (!expect('u')) return false;
            std::uint32_t low = 0;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) {
              fail("high surrogate followed by a non-low surrogate");
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail("bad escape");
          return false;
      }
    }
  }
  bool string_array(std::vector<std::string>& out) {
    if (!expect('[')) return false;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return true;
    }
    for (std::size_t n = 0; n < 1000000; ++n) {
      skip_ws();
      std::string s;
      if (!string(s)) return false;
      out.push_back(std::move(s));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      return expect(']');
    }
    fail("array too long");
    return false;
  }
  // Any other member's value (not expected, but allowed).
  bool skip_value(int depth) {
    if (depth > 64) {
      fail("too deep");
      return false;
    }
    skip_ws();
    const int c = peek();
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (c == '[' || c == '{') {
      const char close = c == '[' ? ']' : '}';
      ++pos_;
      skip_ws();
      if (peek() == close) {
        ++pos_;
        return true;
      }
      for (int n = 0; n < 1000000; ++n) {
        skip_ws();
        if (close == '}') {
          std::string ignored;
          if (!string(ignored)) return false;
          skip_ws();
          if (!expect(':')) return false;
        }
        if (!skip_value(depth + 1)) return false;
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        return expect(close);
      }
      fail("container too long");
      return false;
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() && std::string_view("+-.0123456789eEtruefalsn").find(text_[pos_]) !=
                                      std::string_view::npos) {
      ++pos_;
    }
    if (pos_ == start) {
      fail("unexpected character");
      return false;
    }
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::string error_;
};

struct Page {
  HttpResponse response;
  std::optional<Listing> listing;
  std::string parse_error;
};

// GET /store/<encoded_prefix>?list<params> on the master.
Page list_page(uint16_t master_port, const std::string& encoded_prefix, const std::string& params) {
  Page page;
  page.response = http_request(master_port, "GET", "/store/" + encoded_prefix + "?list" + params);
  if (page.response.status == 200) {
    JsonReader reader(page.response.body);
    page.listing = reader.listing();
    if (!page.listing) page.parse_error = reader.error();
  }
  return page;
}

::testing::AssertionResult is_json_listing(const Page& page) {
  if (page.response.status != 200) {
    return ::testing::AssertionFailure() << "expected 200: " << page.response.summary();
  }
  const auto type = page.response.header("Content-Type");
  if (!type || type->rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure()
           << "Content-Type is not application/json: " << page.response.summary();
  }
  if (!page.listing) {
    return ::testing::AssertionFailure()
           << "unparsable listing (" << page.parse_error << "): " << page.response.summary();
  }
  return ::testing::AssertionSuccess();
}

// Follows `next` from the first page until it is "" (bounded). `limit` 0
// means: no limit parameter. Every page must be a full `expected_page` keys
// except the last, and each `next` must be the following page's first key.
::testing::AssertionResult list_all(uint16_t master_port, const std::string& encoded_prefix,
                                    int limit, std::size_t expected_page,
                                    std::vector<std::string>& keys, int* pages = nullptr) {
  keys.clear();
  std::string start;
  bool first = true;
  std::string expected_first;
  for (int page_no = 0; page_no < 100; ++page_no) {
    std::string params;
    if (limit != 0) params += "&limit=" + std::to_string(limit);
    if (!first) params += "&start=" + percent_encode(start, false);
    const Page page = list_page(master_port, encoded_prefix, params);
    auto ok = is_json_listing(page);
    if (!ok) return ok << " (page " << page_no << ")";
    const Listing& l = *page.listing;
    if (!first && (l.keys.empty() || l.keys.front() != expected_first)) {
      return ::testing::AssertionFailure()
             << "page " << page_no << " does not start with the previous page's next \""
             << printable(expected_first) << "\"";
    }
    keys.insert(keys.end(), l.keys.begin(), l.keys.end());
    if (l.next.empty()) {
      if (l.keys.size() > expected_page) {
        return ::testing::AssertionFailure() << "last page " << page_no << " has " << l.keys.size()
                                             << " keys, more than " << expected_page;
      }
      if (pages != nullptr) *pages = page_no + 1;
      return ::testing::AssertionSuccess();
    }
    if (l.keys.size() != expected_page) {
      return ::testing::AssertionFailure() << "page " << page_no << " has " << l.keys.size()
                                           << " keys but a next; expected " << expected_page;
    }
    first = false;
    start = l.next;
    expected_first = l.next;
  }
  return ::testing::AssertionFailure() << "listing did not end within 100 pages";
}

// PUTs over keep-alive connections: one to the master, one per volume.
class KeepAlivePutter {
 public:
  explicit KeepAlivePutter(uint16_t master_port) : master_port_(master_port) {}

  // Empty on 201, otherwise what went wrong.
  std::string put(const std::string& target, const std::string& body) {
    const HttpResponse redirect = request_on(master_, master_port_, {"PUT", target, body, {}});
    if (redirect.status != 307) return "master: " + redirect.summary();
    const auto url = parse_url(redirect.header("Location").value_or(""));
    if (!url) return "bad Location: " + redirect.summary();
    auto& conn = volumes_[url->port];
    if (!conn) conn = std::make_unique<HttpConnection>();
    const HttpResponse stored = request_on(*conn, url->port, {"PUT", url->target, body, {}});
    if (stored.status != 201) return "volume: " + stored.summary();
    return {};
  }

 private:
  // One retry on a fresh connection if the kept-alive one was closed.
  static HttpResponse request_on(HttpConnection& conn, uint16_t port, const HttpRequest& req) {
    HttpResponse r;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn.is_open()) {
        const std::string err = conn.connect(port);
        if (!err.empty()) {
          r.error = err;
          continue;
        }
      }
      r = conn.request(req);
      const auto connection = r.header("Connection");
      if (r.status == 0 || (connection && *connection == "close")) conn.close();
      if (r.status != 0) return r;
    }
    return r;
  }

  uint16_t master_port_;
  HttpConnection master_;
  std::map<uint16_t, std::unique_ptr<HttpConnection>> volumes_;
};

// Stores every (key, value) with `threads` keep-alive clients; returns the
// failures (at most 10 described).
std::vector<std::string> put_all(uint16_t master_port,
                                 const std::vector<std::pair<std::string, std::string>>& items,
                                 int threads) {
  std::mutex mu;
  std::vector<std::string> failures;
  auto worker = [&](int t) {
    KeepAlivePutter putter(master_port);
    for (std::size_t i = static_cast<std::size_t>(t); i < items.size();
         i += static_cast<std::size_t>(threads)) {
      const std::string err =
          putter.put("/store/" + percent_encode(items[i].first), items[i].second);
      if (!err.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failures.size() < 10) failures.push_back(printable(items[i].first) + ": " + err);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  for (auto& th : pool) th.join();
  return failures;
}

// ---------------------------------------------------------------------------
// Checksum / ETag

TEST(HttpResourceEtag, SameEtagFromPutRedirectGetAndHead) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();

  const std::string value = random_bytes(100 * kKiB + 17);
  const std::string key = "etag-" + random_token(10);
  const auto put = put_via_master(mport, "/store/" + key, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const auto etag = put.second.header("ETag");
  ASSERT_TRUE(is_strong_etag(etag)) << put.describe();

  for (const std::string method : {"GET", "HEAD"}) {
    SCOPED_TRACE(method);
    const auto ex = get_via_master(mport, "/store/" + key, method);
    ASSERT_EQ(ex.first.status, 302) << ex.describe();
    EXPECT_EQ(ex.first.header("ETag").value_or("missing"), *etag) << ex.describe();
    EXPECT_EQ(ex.first.header("X-Kalavara-Size").value_or("missing"), std::to_string(value.size()))
        << ex.describe();
    ASSERT_EQ(ex.second.status, 200) << ex.describe();
    EXPECT_EQ(ex.second.header("ETag").value_or("missing"), *etag) << ex.describe();
    EXPECT_EQ(ex.second.header("Accept-Ranges").value_or("missing"), "bytes") << ex.describe();
    EXPECT_EQ(ex.second.header("Content-Length").value_or("missing"), std::to_string(value.size()));
    if (method == "GET") {
      EXPECT_TRUE(ex.second.body == value) << "GET body differs";
    }
  }

  // The same bytes under another key (curl, final headers with -D): same ETag.
  const fs::path value_file = tmp.new_scratch_path("value");
  write_file(value_file, value);
  const fs::path dump = tmp.new_scratch_path("headers");
  const std::string twin = "twin-" + random_token(10);
  const auto curl_put = run_curl(tmp, {"-XPUT", "-L", "-D", dump.string(), "--data-binary",
                                       "@" + value_file.string(), cluster.store_url(twin)});
  ASSERT_EQ(curl_put.http_status, 201) << curl_put.describe();
  int dump_status = 0;
  const HeaderList final_headers = last_response_headers(read_file(dump), &dump_status);
  EXPECT_EQ(dump_status, 201) << read_file(dump);
  EXPECT_EQ(find_header(final_headers, "ETag").value_or("missing"), *etag) << read_file(dump);

  // One byte different, another size, the empty value: all different ETags.
  std::string flipped = value;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x01);
  const std::vector<std::string> others = {flipped, value.substr(0, value.size() - 1), "",
                                           value + "x"};
  std::set<std::string> seen = {*etag};
  for (std::size_t i = 0; i < others.size(); ++i) {
    SCOPED_TRACE("other value " + std::to_string(i) + " of " + std::to_string(others[i].size()) +
                 " bytes");
    const std::string other_key = "other-" + std::to_string(i) + "-" + random_token(6);
    const auto other = put_via_master(mport, "/store/" + other_key, others[i]);
    ASSERT_EQ(other.second.status, 201) << other.describe();
    const auto other_etag = other.second.header("ETag");
    ASSERT_TRUE(is_strong_etag(other_etag)) << other.describe();
    EXPECT_TRUE(seen.insert(*other_etag).second) << "ETag repeated: " << *other_etag;
    const auto head = get_via_master(mport, "/store/" + other_key, "HEAD");
    ASSERT_EQ(head.first.status, 302) << head.describe();
    EXPECT_EQ(head.first.header("ETag").value_or("missing"), *other_etag) << head.describe();
    EXPECT_EQ(head.first.header("X-Kalavara-Size").value_or("missing"),
              std::to_string(others[i].size()))
        << head.describe();
    EXPECT_EQ(head.second.header("ETag").value_or("missing"), *other_etag) << head.describe();
  }

  // Overwriting changes the ETag everywhere; writing the old bytes back restores it.
  const std::string replacement = random_bytes(3000);
  const auto over = put_via_master(mport, "/store/" + key, replacement);
  ASSERT_EQ(over.second.status, 201) << over.describe();
  const auto new_etag = over.second.header("ETag");
  ASSERT_TRUE(is_strong_etag(new_etag)) << over.describe();
  EXPECT_NE(*new_etag, *etag);
  const auto after = get_via_master(mport, "/store/" + key);
  ASSERT_EQ(after.second.status, 200) << after.describe();
  EXPECT_EQ(after.first.header("ETag").value_or("missing"), *new_etag) << after.describe();
  EXPECT_EQ(after.first.header("X-Kalavara-Size").value_or("missing"),
            std::to_string(replacement.size()));
  EXPECT_EQ(after.second.header("ETag").value_or("missing"), *new_etag) << after.describe();
  EXPECT_TRUE(after.second.body == replacement);
  const auto back = put_via_master(mport, "/store/" + key, value);
  ASSERT_EQ(back.second.status, 201) << back.describe();
  EXPECT_EQ(back.second.header("ETag").value_or("missing"), *etag) << back.describe();
}

// A large value streamed with curl -T: the ETag is the same as for the same
// bytes sent in one piece by the raw client (the checksum spans every chunk).
TEST(HttpResourceEtag, StreamedUploadHasTheSameEtagAsOneShotUpload) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const std::string value = random_bytes(3 * kMiB + 12345);
  const fs::path file = tmp.new_scratch_path("big");
  write_file(file, value);
  const fs::path dump = tmp.new_scratch_path("headers");
  const auto streamed = run_curl(
      tmp, {"-L", "-T", file.string(), "-D", dump.string(), cluster.store_url("streamed")});
  ASSERT_EQ(streamed.http_status, 201) << streamed.describe();
  const auto streamed_etag = find_header(last_response_headers(read_file(dump), nullptr), "ETag");
  ASSERT_TRUE(is_strong_etag(streamed_etag)) << read_file(dump);

  const auto raw = put_via_master(cluster.master_port(), "/store/one-shot", value);
  ASSERT_EQ(raw.second.status, 201) << raw.describe();
  EXPECT_EQ(raw.second.header("ETag").value_or("missing"), *streamed_etag) << raw.describe();
  const auto head = get_via_master(cluster.master_port(), "/store/streamed", "HEAD");
  EXPECT_EQ(head.first.header("ETag").value_or("missing"), *streamed_etag) << head.describe();
  EXPECT_EQ(head.first.header("X-Kalavara-Size").value_or("missing"), std::to_string(value.size()));
  EXPECT_EQ(head.second.header("ETag").value_or("missing"), *streamed_etag) << head.describe();
}

// ---------------------------------------------------------------------------
// Range

::testing::AssertionResult is_partial(const HttpResponse& r, const std::string& value,
                                      std::size_t first, std::size_t last,
                                      const std::string& etag) {
  const std::string want_range = "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                 "/" + std::to_string(value.size());
  const std::size_t length = last - first + 1;
  if (r.status != 206) return ::testing::AssertionFailure() << "expected 206: " << r.summary();
  if (r.header("Content-Range").value_or("missing") != want_range) {
    return ::testing::AssertionFailure()
           << "expected Content-Range " << want_range << ": " << r.summary();
  }
  if (r.header("Content-Length").value_or("missing") != std::to_string(length)) {
    return ::testing::AssertionFailure()
           << "expected Content-Length " << length << ": " << r.summary();
  }
  if (r.header("Accept-Ranges").value_or("missing") != "bytes") {
    return ::testing::AssertionFailure() << "expected Accept-Ranges: bytes: " << r.summary();
  }
  if (r.header("ETag").value_or("missing") != etag) {
    return ::testing::AssertionFailure() << "expected ETag " << etag << ": " << r.summary();
  }
  if (r.body != value.substr(first, length)) {
    return ::testing::AssertionFailure() << "body is not bytes " << first << ".." << last;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult is_whole(const HttpResponse& r, const std::string& value,
                                    const std::string& etag) {
  if (r.status != 200) return ::testing::AssertionFailure() << "expected 200: " << r.summary();
  if (r.header("Content-Range")) {
    return ::testing::AssertionFailure() << "Content-Range on a 200: " << r.summary();
  }
  if (r.header("Accept-Ranges").value_or("missing") != "bytes") {
    return ::testing::AssertionFailure() << "expected Accept-Ranges: bytes: " << r.summary();
  }
  if (r.header("ETag").value_or("missing") != etag) {
    return ::testing::AssertionFailure() << "expected ETag " << etag << ": " << r.summary();
  }
  if (r.body != value) {
    return ::testing::AssertionFailure() << "body is not the whole value (" << r.body.size()
                                         << " of " << value.size() << " bytes)";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult is_unsatisfiable(const HttpResponse& r, std::size_t size) {
  if (r.status != 416) return ::testing::AssertionFailure() << "expected 416: " << r.summary();
  const std::string want = "bytes */" + std::to_string(size);
  if (r.header("Content-Range").value_or("missing") != want) {
    return ::testing::AssertionFailure()
           << "expected Content-Range " << want << ": " << r.summary();
  }
  return ::testing::AssertionSuccess();
}

TEST(HttpResourceRange, SingleRangesOnTheVolume) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const std::size_t n = 150000;
  const std::string value = random_bytes(n);
  const auto put = put_via_master(mport, "/store/ranged", value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const std::string etag = put.second.header("ETag").value_or("missing");
  const auto loc = volume_location(mport, "/store/ranged");
  ASSERT_TRUE(loc.has_value());

  struct Case {
    std::string range;
    std::size_t first;
    std::size_t last;
  };
  const auto s = [](std::size_t v) { return std::to_string(v); };
  const std::vector<Case> cases = {
      {"bytes=0-0", 0, 0},
      {"bytes=0-9", 0, 9},
      {"bytes=10-19", 10, 19},
      {"bytes=65530-65545", 65530, 65545},  // across the 64 KiB chunk size
      {"bytes=100-" + s(n - 1), 100, n - 1},
      {"bytes=" + s(n - 10) + "-" + s(n + 1000), n - 10, n - 1},  // end clamped
      {"bytes=0-" + s(n * 10), 0, n - 1},
      {"bytes=" + s(n - 1) + "-", n - 1, n - 1},
      {"bytes=0-", 0, n - 1},
      {"bytes=100000-", 100000, n - 1},
      {"bytes=-1", n - 1, n - 1},
      {"bytes=-10", n - 10, n - 1},
      {"bytes=-" + s(n), 0, n - 1},
      {"bytes=-" + s(n + 5000), 0, n - 1},  // suffix longer than the value: all of it
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.range);
    const auto r = http_request(loc->port, "GET", loc->target, {}, {{"Range", c.range}});
    EXPECT_TRUE(is_partial(r, value, c.first, c.last, etag));
  }

  // Unsatisfiable.
  for (const std::string& range : {"bytes=" + s(n) + "-", "bytes=" + s(n) + "-" + s(n + 10),
                                   "bytes=" + s(n * 2) + "-", std::string("bytes=-0")}) {
    SCOPED_TRACE(range);
    const auto r = http_request(loc->port, "GET", loc->target, {}, {{"Range", range}});
    EXPECT_TRUE(is_unsatisfiable(r, n));
  }

  // Several ranges, or nonsense: the whole value with 200.
  for (const std::string range : {"bytes=0-1,5-6", "bytes=abc", "bytes=5-2", "items=0-1",
                                  "bytes=", "bytes=--1", "bytes=1-2-3"}) {
    SCOPED_TRACE(range);
    const auto r = http_request(loc->port, "GET", loc->target, {}, {{"Range", range}});
    EXPECT_TRUE(is_whole(r, value, etag));
  }

  // Plain GET and HEAD advertise byte ranges.
  const auto plain = http_request(loc->port, "GET", loc->target);
  EXPECT_TRUE(is_whole(plain, value, etag));
  const auto head = http_request(loc->port, "HEAD", loc->target);
  ASSERT_EQ(head.status, 200) << head.summary();
  EXPECT_EQ(head.header("Accept-Ranges").value_or("missing"), "bytes") << head.summary();
  EXPECT_EQ(head.header("ETag").value_or("missing"), etag) << head.summary();

  // If-Range: only the current ETag keeps the range.
  const auto matching = http_request(loc->port, "GET", loc->target, {},
                                     {{"Range", "bytes=5-14"}, {"If-Range", etag}});
  EXPECT_TRUE(is_partial(matching, value, 5, 14, etag));
  const std::string other_etag = "\"" + std::string(32, '0') + "\"";
  ASSERT_NE(other_etag, etag);
  const auto stale = http_request(loc->port, "GET", loc->target, {},
                                  {{"Range", "bytes=5-14"}, {"If-Range", other_etag}});
  EXPECT_TRUE(is_whole(stale, value, etag));
}

TEST(HttpResourceRange, EmptyValueHasNoSatisfiableRange) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const auto put = put_via_master(cluster.master_port(), "/store/empty", "");
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const std::string etag = put.second.header("ETag").value_or("missing");
  EXPECT_TRUE(is_strong_etag(etag));
  const auto loc = volume_location(cluster.master_port(), "/store/empty");
  ASSERT_TRUE(loc.has_value());
  for (const std::string range : {"bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-0", "bytes=5-9"}) {
    SCOPED_TRACE(range);
    const auto r = http_request(loc->port, "GET", loc->target, {}, {{"Range", range}});
    EXPECT_TRUE(is_unsatisfiable(r, 0));
  }
  const auto plain = http_request(loc->port, "GET", loc->target);
  EXPECT_TRUE(is_whole(plain, "", etag));
  EXPECT_EQ(plain.header("Content-Length").value_or("missing"), "0") << plain.summary();
}

// The volume reads a file's first 64 KiB in one go and answers from memory
// when that was the whole file (header: 40 bytes + the key), by sendfile
// otherwise: both ways give the same answers, on either side of the limit.
TEST(HttpResourceRange, SmallAndLargeValuesAnswerAlike) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(1));
  const uint16_t mport = cluster.master_port();
  const auto s = [](std::size_t v) { return std::to_string(v); };
  const std::string key = "sized/value";
  const std::size_t whole_read = 64 * kKiB - (40 + key.size());
  for (const std::size_t n : {std::size_t{1}, 4 * kKiB, whole_read, whole_read + 1, 200 * kKiB}) {
    SCOPED_TRACE(s(n) + " bytes");
    const std::string value = random_bytes(n);
    const auto put = put_via_master(mport, "/store/" + key, value);
    ASSERT_EQ(put.second.status, 201) << put.describe();
    const std::string etag = put.second.header("ETag").value_or("missing");
    const auto loc = volume_location(mport, "/store/" + key);
    ASSERT_TRUE(loc.has_value());

    // One keep-alive connection: a HEAD that sent body bytes would break
    // the next answer on it.
    HttpConnection conn;
    ASSERT_EQ(conn.connect(loc->port), "");
    const auto get = conn.request({"GET", loc->target, {}, {}});
    EXPECT_TRUE(is_whole(get, value, etag));
    EXPECT_EQ(get.header("Content-Type").value_or("missing"), "application/octet-stream");
    EXPECT_EQ(get.header("Content-Length").value_or("missing"), s(n)) << get.summary();
    const auto head = conn.request({"HEAD", loc->target, {}, {}});
    ASSERT_EQ(head.status, 200) << head.summary();
    EXPECT_EQ(head.header("Content-Length").value_or("missing"), s(n)) << head.summary();
    EXPECT_EQ(head.header("ETag").value_or("missing"), etag) << head.summary();
    EXPECT_EQ(head.header("Accept-Ranges").value_or("missing"), "bytes") << head.summary();
    const std::size_t first = n / 3;
    const std::size_t last = n - 1 - n / 4;
    const std::string range = "bytes=" + s(first) + "-" + s(last);
    const auto head_range = conn.request({"HEAD", loc->target, {}, {{"Range", range}}});
    ASSERT_EQ(head_range.status, 206) << head_range.summary();
    EXPECT_EQ(head_range.header("Content-Length").value_or("missing"), s(last - first + 1))
        << head_range.summary();
    EXPECT_EQ(head_range.header("Content-Range").value_or("missing"),
              "bytes " + s(first) + "-" + s(last) + "/" + s(n))
        << head_range.summary();
    const auto partial = conn.request({"GET", loc->target, {}, {{"Range", range}}});
    EXPECT_TRUE(is_partial(partial, value, first, last, etag));
    const auto suffix = conn.request({"GET", loc->target, {}, {{"Range", "bytes=-7"}}});
    EXPECT_TRUE(is_partial(suffix, value, n > 7 ? n - 7 : 0, n - 1, etag));
    const auto tail =
        conn.request({"GET", loc->target, {}, {{"Range", "bytes=" + s(n - 1) + "-"}}});
    EXPECT_TRUE(is_partial(tail, value, n - 1, n - 1, etag));
    const auto past = conn.request({"GET", loc->target, {}, {{"Range", "bytes=" + s(n) + "-"}}});
    EXPECT_TRUE(is_unsatisfiable(past, n));
    const auto stale_range =
        conn.request({"GET",
                      loc->target,
                      {},
                      {{"Range", range}, {"If-Range", "\"" + std::string(32, '0') + "\""}}});
    EXPECT_TRUE(is_whole(stale_range, value, etag));
    const auto cached = conn.request({"GET", loc->target, {}, {{"If-None-Match", etag}}});
    EXPECT_EQ(cached.status, 304) << cached.summary();
    EXPECT_EQ(cached.body, "");
    const auto again = conn.request({"GET", loc->target, {}, {}, false});
    EXPECT_TRUE(is_whole(again, value, etag));
  }
}

// Clients go through the master: its 302 keeps their Range, If-Range headers.
TEST(HttpResourceRange, RangesThroughTheMasterWithCurlAndRawClient) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const std::string value = random_bytes(4000);
  const auto put = put_via_master(mport, "/store/via/master", value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const std::string etag = put.second.header("ETag").value_or("missing");

  const auto raw =
      send_via_master(mport, "GET", "/store/via/master", {}, {{"Range", "bytes=1000-1999"}});
  EXPECT_EQ(raw.first.status, 302) << raw.describe();
  EXPECT_TRUE(is_partial(raw.second, value, 1000, 1999, etag)) << raw.describe();

  const auto r = run_curl(tmp, {"-r", "100-199", "-L", cluster.store_url("via/master")});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.http_status, 206) << r.describe();
  EXPECT_TRUE(r.body == value.substr(100, 100)) << r.body.size() << " bytes";

  const auto suffix =
      run_curl(tmp, {"-L", "-H", "Range: bytes=-7", cluster.store_url("via/master")});
  EXPECT_EQ(suffix.http_status, 206) << suffix.describe();
  EXPECT_TRUE(suffix.body == value.substr(value.size() - 7)) << suffix.body.size() << " bytes";

  const auto past_end =
      run_curl(tmp, {"-L", "-H", "Range: bytes=" + std::to_string(value.size()) + "-",
                     cluster.store_url("via/master")});
  EXPECT_EQ(past_end.http_status, 416) << past_end.describe();

  const auto multi =
      run_curl(tmp, {"-L", "-H", "Range: bytes=0-1,5-6", cluster.store_url("via/master")});
  EXPECT_EQ(multi.http_status, 200) << multi.describe();
  EXPECT_TRUE(multi.body == value) << multi.body.size() << " bytes";

  const auto if_range = run_curl(
      tmp, {"-L", "-r", "0-3", "-H", "If-Range: " + etag, cluster.store_url("via/master")});
  EXPECT_EQ(if_range.http_status, 206) << if_range.describe();
  EXPECT_TRUE(if_range.body == value.substr(0, 4));
}

// ---------------------------------------------------------------------------
// Resume

TEST(HttpResourceResume, CurlContinueAtCompletesAPartialFile) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const std::size_t n = 300000;
  const std::string value = random_bytes(n);
  const fs::path source = tmp.new_scratch_path("source");
  write_file(source, value);
  const auto put = run_curl(tmp, {"-L", "-T", source.string(), cluster.store_url("resume/me")});
  ASSERT_EQ(put.http_status, 201) << put.describe();

  for (const std::size_t have : {std::size_t{1}, std::size_t{65536}, std::size_t{100003}, n - 1}) {
    SCOPED_TRACE("partial file of " + std::to_string(have) + " bytes");
    const fs::path partial = tmp.new_scratch_path("partial");
    write_file(partial, std::string_view(value).substr(0, have));
    CurlOptions options;
    options.output_file = partial;
    const auto r = run_curl(tmp, {"-C", "-", "-L", cluster.store_url("resume/me")}, options);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.http_status, 206) << r.describe();
    EXPECT_TRUE(files_equal(partial, source));
  }
}

// ---------------------------------------------------------------------------
// Conditional GET / HEAD

// After a 304 the same connection must carry another request: proves the 304
// had no body bytes.
void expect_not_modified_then_usable(uint16_t port, const std::string& target,
                                     const std::string& method, const std::string& if_none_match,
                                     const std::string& etag, int next_status) {
  SCOPED_TRACE(method + " " + target + " If-None-Match: " + if_none_match);
  HttpConnection conn;
  ASSERT_EQ(conn.connect(port), "");
  const auto r = conn.request({method, target, {}, {{"If-None-Match", if_none_match}}});
  EXPECT_EQ(r.status, 304) << r.summary();
  EXPECT_EQ(r.header("ETag").value_or("missing"), etag) << r.summary();
  EXPECT_EQ(r.body, "");
  if (r.header("Connection").value_or("") == "close") return;
  const auto again = conn.request({"HEAD", target, {}, {}, false});
  EXPECT_EQ(again.status, next_status) << again.summary();
}

TEST(HttpResourceConditionalGet, IfNoneMatchOnVolumeAndMaster) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const std::string value = random_bytes(5000);
  const std::string target = "/store/cond/get";
  const auto put = put_via_master(mport, target, value);
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const std::string etag = put.second.header("ETag").value_or("missing");
  ASSERT_TRUE(is_strong_etag(etag));
  const auto loc = volume_location(mport, target);
  ASSERT_TRUE(loc.has_value());
  const std::string other = "\"" + std::string(32, 'f') + "\"";
  ASSERT_NE(other, etag);

  const std::vector<std::string> matching = {etag, "*", quoted_etag_list({other, etag}),
                                             quoted_etag_list({etag, other})};
  for (const auto& inm : matching) {
    for (const std::string method : {"GET", "HEAD"}) {
      expect_not_modified_then_usable(loc->port, loc->target, method, inm, etag, 200);
      expect_not_modified_then_usable(mport, target, method, inm, etag, 302);
    }
  }

  // Not matching: business as usual.
  for (const std::string method : {"GET", "HEAD"}) {
    SCOPED_TRACE(method);
    const auto ex = send_via_master(mport, method, target, {}, {{"If-None-Match", other}});
    EXPECT_EQ(ex.first.status, 302) << ex.describe();
    EXPECT_EQ(ex.second.status, 200) << ex.describe();
    EXPECT_EQ(ex.second.header("ETag").value_or("missing"), etag) << ex.describe();
    if (method == "GET") {
      EXPECT_TRUE(ex.second.body == value);
    }
  }

  // curl: a cached copy is not fetched again; a stale one is.
  const auto cached =
      run_curl(tmp, {"-L", "-H", "If-None-Match: " + etag, cluster.store_url("cond/get")});
  EXPECT_EQ(cached.exit_code, 0) << cached.describe();
  EXPECT_EQ(cached.http_status, 304) << cached.describe();
  EXPECT_EQ(cached.body, "");
  const auto stale =
      run_curl(tmp, {"-L", "-H", "If-None-Match: " + other, cluster.store_url("cond/get")});
  EXPECT_EQ(stale.http_status, 200) << stale.describe();
  EXPECT_TRUE(stale.body == value);

  // After an overwrite the old ETag no longer matches.
  const auto over = put_via_master(mport, target, "new value");
  ASSERT_EQ(over.second.status, 201) << over.describe();
  const auto after = send_via_master(mport, "GET", target, {}, {{"If-None-Match", etag}});
  EXPECT_EQ(after.first.status, 302) << after.describe();
  EXPECT_EQ(after.second.status, 200) << after.describe();
  EXPECT_EQ(after.second.body, "new value");
}

// ---------------------------------------------------------------------------
// Conditional PUT

TEST(HttpResourceConditionalPut, IfNoneMatchStarCreatesOnlyAbsentKeys) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const HeaderList create_only = {{"If-None-Match", "*"}};

  const auto created = send_via_master(mport, "PUT", "/store/once", "first", create_only);
  EXPECT_EQ(created.first.status, 307) << created.describe();
  ASSERT_EQ(created.second.status, 201) << created.describe();

  // The key exists: the master refuses at once.
  const auto again = http_request(mport, "PUT", "/store/once", "second", create_only);
  EXPECT_EQ(again.status, 412) << again.summary();
  const auto curl_again = run_curl(
      tmp, {"-XPUT", "-L", "-H", "If-None-Match: *", "-d", "third", cluster.store_url("once")});
  EXPECT_EQ(curl_again.http_status, 412) << curl_again.describe();
  const auto get = get_via_master(mport, "/store/once");
  EXPECT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.body, "first");

  // A create whose 307 was issued before another client created the key is
  // refused by the volume at commit.
  const auto redirect = http_request(mport, "PUT", "/store/late", "loser", create_only);
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto winner = put_via_master(mport, "/store/late", "winner");
  ASSERT_EQ(winner.second.status, 201) << winner.describe();
  const auto late = follow_redirect(redirect, "PUT", "loser", create_only);
  EXPECT_EQ(late.status, 412) << late.summary();
  const auto late_get = get_via_master(mport, "/store/late");
  EXPECT_EQ(late_get.second.status, 200) << late_get.describe();
  EXPECT_EQ(late_get.second.body, "winner");
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 2; }, 5s))
      << cluster.blob_count() << " blob files for 2 keys";
}

TEST(HttpResourceConditionalPut, IfMatchReplacesOnlyTheCurrentValue) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const std::string target = "/store/cas";

  // Absent key: nothing matches.
  const std::string some_etag = "\"" + std::string(32, 'a') + "\"";
  const auto absent = send_via_master(mport, "PUT", target, "v0", {{"If-Match", some_etag}});
  EXPECT_EQ(final_status(absent), 412) << absent.describe();
  EXPECT_EQ(http_request(mport, "GET", target).status, 404);

  const auto v1 = put_via_master(mport, target, "value one");
  ASSERT_EQ(v1.second.status, 201) << v1.describe();
  const std::string e1 = v1.second.header("ETag").value_or("missing");

  // Wrong ETag: refused, value kept.
  const auto wrong = send_via_master(mport, "PUT", target, "nope", {{"If-Match", some_etag}});
  ASSERT_NE(e1, some_etag);
  EXPECT_EQ(final_status(wrong), 412) << wrong.describe();

  // Right ETag (curl): replaced, and the 201 carries the new ETag.
  const fs::path dump = tmp.new_scratch_path("headers");
  const auto v2 = run_curl(tmp, {"-XPUT", "-L", "-D", dump.string(), "-H", "If-Match: " + e1, "-d",
                                 "value two", cluster.store_url("cas")});
  ASSERT_EQ(v2.http_status, 201) << v2.describe();
  const auto e2 = find_header(last_response_headers(read_file(dump), nullptr), "ETag");
  ASSERT_TRUE(is_strong_etag(e2)) << read_file(dump);
  EXPECT_NE(*e2, e1);
  auto get = get_via_master(mport, target);
  EXPECT_EQ(get.second.body, "value two") << get.describe();

  // The old ETag no longer matches.
  const auto stale = run_curl(
      tmp, {"-XPUT", "-L", "-H", "If-Match: " + e1, "-d", "value three", cluster.store_url("cas")});
  EXPECT_EQ(stale.http_status, 412) << stale.describe();

  // A 307 issued while E2 was current, followed after another write: the
  // volume checks at commit and refuses.
  const auto redirect = http_request(mport, "PUT", target, "late", {{"If-Match", *e2}});
  ASSERT_EQ(redirect.status, 307) << redirect.summary();
  const auto v3 = put_via_master(mport, target, "value four");
  ASSERT_EQ(v3.second.status, 201) << v3.describe();
  const auto late = follow_redirect(redirect, "PUT", "late", {{"If-Match", *e2}});
  EXPECT_EQ(late.status, 412) << late.summary();
  get = get_via_master(mport, target);
  EXPECT_EQ(get.second.body, "value four") << get.describe();
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
}

struct RaceResult {
  int status = 0;
  std::string etag;  // from the final response's headers
  std::string describe;
};

// `clients` curl PUTs of value_i with `header`, released together.
std::vector<RaceResult> race_puts(TempDir& tmp, const std::string& url, const std::string& header,
                                  const std::vector<std::string>& values) {
  std::vector<RaceResult> results(values.size());
  std::latch go(static_cast<std::ptrdiff_t>(values.size()));
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < values.size(); ++i) {
    pool.emplace_back([&, i] {
      const fs::path dump = tmp.new_scratch_path("race-headers");
      go.arrive_and_wait();
      const auto r =
          run_curl(tmp, {"-XPUT", "-L", "-D", dump.string(), "-H", header, "-d", values[i], url});
      results[i].status = r.http_status;
      results[i].etag =
          find_header(last_response_headers(read_file(dump), nullptr), "ETag").value_or("");
      results[i].describe = r.describe();
    });
  }
  for (auto& th : pool) th.join();
  return results;
}

void expect_one_winner(const std::vector<RaceResult>& results,
                       const std::vector<std::string>& values, uint16_t mport,
                       const std::string& target) {
  std::vector<std::size_t> winners;
  std::string report;
  for (std::size_t i = 0; i < results.size(); ++i) {
    report += "client " + std::to_string(i) + ": " + results[i].describe + "\n";
    if (results[i].status == 201) {
      winners.push_back(i);
    } else {
      EXPECT_EQ(results[i].status, 412) << "client " << i << ": " << results[i].describe;
    }
  }
  ASSERT_EQ(winners.size(), 1u) << report;
  const auto get = get_via_master(mport, target);
  ASSERT_EQ(get.second.status, 200) << get.describe();
  EXPECT_EQ(get.second.body, values[winners[0]]) << report;
  EXPECT_EQ(get.first.header("ETag").value_or("missing"), results[winners[0]].etag) << report;
}

TEST(HttpResourceConditionalPut, RacingIfMatchWritersHaveExactlyOneWinner) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const auto v0 = put_via_master(mport, "/store/race/cas", "initial");
  ASSERT_EQ(v0.second.status, 201) << v0.describe();
  const std::string etag = v0.second.header("ETag").value_or("missing");
  ASSERT_TRUE(is_strong_etag(etag));

  std::vector<std::string> values;
  for (int i = 0; i < 8; ++i)
    values.push_back("writer-" + std::to_string(i) + "-" + random_token(8));
  const auto results = race_puts(tmp, cluster.store_url("race/cas"), "If-Match: " + etag, values);
  expect_one_winner(results, values, mport, "/store/race/cas");
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
}

TEST(HttpResourceConditionalPut, RacingCreatorsHaveExactlyOneWinner) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  std::vector<std::string> values;
  for (int i = 0; i < 8; ++i)
    values.push_back("creator-" + std::to_string(i) + "-" + random_token(8));
  const auto results = race_puts(tmp, cluster.store_url("race/create"), "If-None-Match: *", values);
  expect_one_winner(results, values, cluster.master_port(), "/store/race/create");
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 1; }, 5s))
      << cluster.blob_count() << " blob files for one key";
}

// ---------------------------------------------------------------------------
// Conditional DELETE

TEST(HttpResourceConditionalDelete, IfMatchDeletesOnlyTheCurrentValue) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  const auto put = put_via_master(mport, "/store/del/me", "keep me for now");
  ASSERT_EQ(put.second.status, 201) << put.describe();
  const std::string etag = put.second.header("ETag").value_or("missing");
  ASSERT_TRUE(is_strong_etag(etag));
  const std::string other = "\"" + std::string(32, '1') + "\"";
  ASSERT_NE(other, etag);

  const auto refused = http_request(mport, "DELETE", "/store/del/me", {}, {{"If-Match", other}});
  EXPECT_EQ(refused.status, 412) << refused.summary();
  const auto curl_refused =
      run_curl(tmp, {"-XDELETE", "-L", "-H", "If-Match: " + other, cluster.store_url("del/me")});
  EXPECT_EQ(curl_refused.http_status, 412) << curl_refused.describe();
  const auto still = get_via_master(mport, "/store/del/me");
  EXPECT_EQ(still.second.status, 200) << still.describe();
  EXPECT_EQ(still.second.body, "keep me for now");
  EXPECT_EQ(cluster.blob_count(), 1u);

  const auto deleted =
      run_curl(tmp, {"-XDELETE", "-L", "-H", "If-Match: " + etag, cluster.store_url("del/me")});
  EXPECT_EQ(deleted.http_status, 204) << deleted.describe();
  EXPECT_EQ(http_request(mport, "GET", "/store/del/me").status, 404);
  EXPECT_TRUE(wait_until([&] { return cluster.blob_count() == 0; }, 5s));

  // Raw client, with a list of ETags containing the current one.
  const auto put2 = put_via_master(mport, "/store/del/too", "second");
  ASSERT_EQ(put2.second.status, 201) << put2.describe();
  const std::string etag2 = put2.second.header("ETag").value_or("missing");
  const auto deleted2 = http_request(mport, "DELETE", "/store/del/too", {},
                                     {{"If-Match", quoted_etag_list({other, etag2})}});
  EXPECT_EQ(deleted2.status, 204) << deleted2.summary();
  EXPECT_EQ(http_request(mport, "GET", "/store/del/too").status, 404);
}

// ---------------------------------------------------------------------------
// Content-MD5

TEST(HttpResourceContentMd5, InTestMd5AgreesWithMd5sum) {
  TempDir tmp;
  // RFC 1321 appendix A.5 test suite.
  EXPECT_EQ(to_hex(digest_bytes(md5(""))), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(to_hex(digest_bytes(md5("abc"))), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(to_hex(digest_bytes(md5("message digest"))), "f96b697d7cb7938d525a2f31aaf161d0");
  // RFC 1864's example encoding is of a digest; check base64 on RFC 4648 vectors.
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  for (const std::size_t size : {std::size_t{55}, std::size_t{56}, std::size_t{63}, std::size_t{64},
                                 std::size_t{65}, std::size_t{1000003}}) {
    SCOPED_TRACE(std::to_string(size) + " random bytes");
    const std::string data = random_bytes(size);
    const fs::path file = tmp.new_scratch_path("md5");
    write_file(file, data);
    EXPECT_EQ(to_hex(digest_bytes(md5(data))), md5sum_of(tmp, file));
  }
}

TEST(HttpResourceContentMd5, UploadIsCheckedAgainstContentMd5) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();

  // Correct digests: stored (raw client, and curl with a 1 MiB file).
  const std::string small = random_bytes(777);
  const auto ok = send_via_master(mport, "PUT", "/store/md5/small", small,
                                  {{"Content-MD5", content_md5(small)}});
  EXPECT_EQ(final_status(ok), 201) << ok.describe();
  const std::string big = random_bytes(kMiB + 3);
  const fs::path big_file = tmp.new_scratch_path("big");
  write_file(big_file, big);
  const auto curl_ok =
      run_curl(tmp, {"-L", "-T", big_file.string(), "-H", "Content-MD5: " + content_md5(big),
                     cluster.store_url("md5/big")});
  EXPECT_EQ(curl_ok.http_status, 201) << curl_ok.describe();
  const auto get_big = get_via_master(mport, "/store/md5/big");
  EXPECT_TRUE(get_big.second.body == big) << get_big.describe();
  const auto get_small = get_via_master(mport, "/store/md5/small");
  EXPECT_TRUE(get_small.second.body == small) << get_small.describe();

  // Valid base64 of the wrong digest: 400, nothing stored.
  const std::string wrong_small = content_md5(small + "x");
  ASSERT_NE(wrong_small, content_md5(small));
  const auto bad_new =
      send_via_master(mport, "PUT", "/store/md5/new", small, {{"Content-MD5", wrong_small}});
  EXPECT_EQ(final_status(bad_new), 400) << bad_new.describe();
  EXPECT_EQ(http_request(mport, "GET", "/store/md5/new").status, 404);
  const auto curl_bad_big =
      run_curl(tmp, {"-L", "-T", big_file.string(), "-H", "Content-MD5: " + content_md5(small),
                     cluster.store_url("md5/new-big")});
  EXPECT_EQ(curl_bad_big.http_status, 400) << curl_bad_big.describe();
  EXPECT_EQ(http_request(mport, "GET", "/store/md5/new-big").status, 404);
  // An existing key keeps its value.
  const std::string replacement = random_bytes(2000);
  const auto bad_existing = send_via_master(mport, "PUT", "/store/md5/small", replacement,
                                            {{"Content-MD5", content_md5(small)}});
  EXPECT_EQ(final_status(bad_existing), 400) << bad_existing.describe();
  const auto kept = get_via_master(mport, "/store/md5/small");
  EXPECT_TRUE(kept.second.body == small) << kept.describe();
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
  EXPECT_EQ(cluster.blob_count(), 2u);

  // Not base64 of 16 bytes: 400.
  const std::string digest = digest_bytes(md5(small));
  const std::vector<std::string> malformed = {
      "not base64!",  base64(digest.substr(0, 15)), base64(digest + "x"),
      to_hex(digest),  // hex instead of base64
      "====",
  };
  for (const auto& header : malformed) {
    SCOPED_TRACE("Content-MD5: " + header);
    const auto r =
        send_via_master(mport, "PUT", "/store/md5/malformed", small, {{"Content-MD5", header}});
    EXPECT_EQ(final_status(r), 400) << r.describe();
  }
  EXPECT_EQ(http_request(mport, "GET", "/store/md5/malformed").status, 404);
  EXPECT_TRUE(volume_tmp_dirs_empty(cluster));
}

// ---------------------------------------------------------------------------
// Listing

TEST(HttpResourceListing, JsonReaderHandlesEveryEscape) {
  JsonReader reader(
      " {\"next\" : \"n\\/x\", \"keys\":[\"a\\\"b\",\"c\\\\d\",\"\\n\\t\\r\\b\\f\\u0001\","
      "\"\\u00e9\\u00E9\",\"\xC3\xA9\",\"\\ud83d\\ude00\",\"\"], \"extra\": [1, {\"x\": null}]} ");
  const auto l = reader.listing();
  ASSERT_TRUE(l.has_value()) << reader.error();
  EXPECT_EQ(l->next, "n/x");
  const std::vector<std::string> want = {
      "a\"b", "c\\d", "\n\t\r\b\f\x01", "\xC3\xA9\xC3\xA9", "\xC3\xA9", "\xF0\x9F\x98\x80", ""};
  EXPECT_EQ(l->keys, want);
  for (const std::string bad :
       {"{\"keys\":[\"\x01\"],\"next\":\"\"}", "{\"keys\":[\"\\ud83d\"],\"next\":\"\"}",
        "{\"keys\":[],\"next\":\"\"} x", "{\"keys\":[]}", "{\"keys\":[\"\\x\"],\"next\":\"\"}"}) {
    JsonReader r(bad);
    EXPECT_FALSE(r.listing().has_value()) << printable(bad);
  }
}

TEST(HttpResourceListing, PagesThroughThousandsOfKeys) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();

  // Keys with varied lengths and bytes, so byte order is not insertion order.
  static constexpr std::string_view kMiddles[] = {"",         "Z",   "zz", "~",   "%",
                                                  "\xC3\xA9", " sp", "0",  "a.b", "+"};
  std::vector<std::string> a_keys;
  std::vector<std::string> b_keys;
  for (std::size_t i = 0; i < 1500; ++i) {
    a_keys.push_back("list/a/" + std::string(kMiddles[i % 10]) + random_token(1 + i % 7) + "-" +
                     std::to_string(i));
  }
  for (std::size_t i = 0; i < 1000; ++i) {
    b_keys.push_back("list/b/" + std::string(kMiddles[(i * 3) % 10]) + random_token(3) + "-" +
                     std::to_string(i));
  }
  const std::vector<std::string> outside = {"list/",  "list/a",   "list/ab/x", "list/a0",
                                            "list/c", "lisu/a/x", "alist/a/x", "list/b"};
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& k : a_keys) items.emplace_back(k, "v" + k);
  for (const auto& k : b_keys) items.emplace_back(k, "v" + k);
  for (const auto& k : outside) items.emplace_back(k, "o" + k);
  // Not in byte order, nor in insertion order of the prefixes.
  std::reverse(items.begin() + 1500, items.end());
  const auto started = Clock::now();
  const auto failures = put_all(mport, items, 8);
  std::string report;
  for (const auto& f : failures) report += f + "\n";
  ASSERT_TRUE(failures.empty()) << report;
  std::cerr << "[http_resource_test] stored " << items.size() << " keys in "
            << std::chrono::duration_cast<Millis>(Clock::now() - started).count() << " ms\n";

  std::sort(a_keys.begin(), a_keys.end());
  std::sort(b_keys.begin(), b_keys.end());
  std::vector<std::string> all;
  for (const auto& [k, v] : items) all.push_back(k);
  std::sort(all.begin(), all.end());

  std::vector<std::string> got;
  int pages = 0;
  ASSERT_TRUE(list_all(mport, "list/a/", 1000, 1000, got, &pages));
  EXPECT_EQ(pages, 2);
  EXPECT_TRUE(got == a_keys) << got.size() << " keys listed for 1500 stored";

  ASSERT_TRUE(list_all(mport, "list/a/", 333, 333, got, &pages));
  EXPECT_EQ(pages, 5);
  EXPECT_TRUE(got == a_keys) << got.size() << " keys listed for 1500 stored";

  // Exactly 1000 keys with the default limit: one page, no next.
  ASSERT_TRUE(list_all(mport, "list/b/", 0, 1000, got, &pages));
  EXPECT_EQ(pages, 1);
  EXPECT_TRUE(got == b_keys) << got.size() << " keys listed for 1000 stored";

  // Default limit is 1000.
  const Page first_a = list_page(mport, "list/a/", "");
  ASSERT_TRUE(is_json_listing(first_a));
  EXPECT_EQ(first_a.listing->keys.size(), 1000u);
  EXPECT_TRUE(std::equal(a_keys.begin(), a_keys.begin() + 1000, first_a.listing->keys.begin(),
                         first_a.listing->keys.end()));
  EXPECT_EQ(first_a.listing->next, a_keys[1000]);

  // Everything, with the largest limit and with the default one.
  ASSERT_TRUE(list_all(mport, "", 10000, 10000, got, &pages));
  EXPECT_EQ(pages, 1);
  EXPECT_TRUE(got == all) << got.size() << " keys listed for " << all.size() << " stored";
  ASSERT_TRUE(list_all(mport, "", 0, 1000, got, &pages));
  EXPECT_EQ(pages, 3);
  EXPECT_TRUE(got == all) << got.size() << " keys listed for " << all.size() << " stored";

  // Starting in the middle: at an existing key (inclusive) and between keys.
  const Page mid =
      list_page(mport, "list/a/", "&limit=10&start=" + percent_encode(a_keys[700], false));
  ASSERT_TRUE(is_json_listing(mid));
  EXPECT_TRUE(std::equal(a_keys.begin() + 700, a_keys.begin() + 710, mid.listing->keys.begin(),
                         mid.listing->keys.end()));
  EXPECT_EQ(mid.listing->next, a_keys[710]);
  const std::string between = a_keys[700] + "\x01";
  const auto from = std::lower_bound(a_keys.begin(), a_keys.end(), between);
  ASSERT_EQ(from, a_keys.begin() + 701);
  const Page mid2 = list_page(mport, "list/a/", "&limit=3&start=" + percent_encode(between, false));
  ASSERT_TRUE(is_json_listing(mid2));
  EXPECT_TRUE(std::equal(from, from + 3, mid2.listing->keys.begin(), mid2.listing->keys.end()));
  EXPECT_EQ(mid2.listing->next, *(from + 3));
  // Starting at the last key, and past it.
  const Page last = list_page(mport, "list/a/", "&start=" + percent_encode(a_keys.back(), false));
  ASSERT_TRUE(is_json_listing(last));
  EXPECT_EQ(last.listing->keys, std::vector<std::string>{a_keys.back()});
  EXPECT_EQ(last.listing->next, "");
  const Page past = list_page(mport, "list/a/", "&start=" + percent_encode("list/a0", false));
  ASSERT_TRUE(is_json_listing(past));
  EXPECT_TRUE(past.listing->keys.empty());
  EXPECT_EQ(past.listing->next, "");

  // A prefix nothing has.
  const Page none = list_page(mport, "list/none/", "");
  ASSERT_TRUE(is_json_listing(none));
  EXPECT_TRUE(none.listing->keys.empty());
  EXPECT_EQ(none.listing->next, "");

  // Bad limits.
  for (const std::string limit : {"0", "10001", "-1", "abc", ""}) {
    SCOPED_TRACE("limit=" + limit);
    const Page bad = list_page(mport, "list/a/", "&limit=" + limit);
    EXPECT_EQ(bad.response.status, 400) << bad.response.summary();
  }
  const Page one = list_page(mport, "list/a/", "&limit=1");
  ASSERT_TRUE(is_json_listing(one));
  EXPECT_EQ(one.listing->keys, std::vector<std::string>{a_keys[0]});
  EXPECT_EQ(one.listing->next, a_keys[1]);

  // curl sees the same first page.
  const auto curl_page = run_curl(tmp, {cluster.store_url("list/b/?list&limit=5")});
  EXPECT_EQ(curl_page.http_status, 200) << curl_page.describe();
  JsonReader reader(curl_page.body);
  const auto parsed = reader.listing();
  ASSERT_TRUE(parsed.has_value()) << reader.error() << ": " << curl_page.describe();
  EXPECT_TRUE(
      std::equal(b_keys.begin(), b_keys.begin() + 5, parsed->keys.begin(), parsed->keys.end()));
  EXPECT_EQ(parsed->next, b_keys[5]);
}

TEST(HttpResourceListing, KeysNeedingJsonEscapesComeBackExactly) {
  TempDir tmp;
  Cluster cluster(tmp);
  ASSERT_TRUE(cluster.start(2));
  const uint16_t mport = cluster.master_port();
  std::vector<std::string> keys = {
      "esc/",                            // the prefix itself
      "esc/q\"uote",                     // "
      "esc/back\\slash",                 // backslash
      "esc/new\nline",                   // %0A
      "esc/tab\there",                   // tab
      "esc/ctl\x01x",                    // %01
      "esc/unit\x1f",                    // last control character
      "esc/cr\r",                        // carriage return
      "esc/del\x7f",                     // not a JSON control character
      "esc/\xC3\xA9t\xC3\xA9",           // UTF-8 "été"
      "esc/emoji\xF0\x9F\x98\x80",       // 4-byte UTF-8
      "esc/slash/in/key",                //
      "esc/ space+plus%percent&amp=eq",  // URL-special bytes
  };
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& k : keys) items.emplace_back(k, "value of " + k);
  items.emplace_back("esd", "outside");
  items.emplace_back("es", "outside");
  const auto failures = put_all(mport, items, 2);
  std::string report;
  for (const auto& f : failures) report += f + "\n";
  ASSERT_TRUE(failures.empty()) << report;
  std::sort(keys.begin(), keys.end());

  const Page page = list_page(mport, "esc/", "");
  ASSERT_TRUE(is_json_listing(page));
  EXPECT_EQ(page.listing->keys, keys) << printable(page.response.body, 2000);
  EXPECT_EQ(page.listing->next, "");
  // Valid UTF-8 is passed through as is.
  EXPECT_NE(page.response.body.find("\xC3\xA9t\xC3\xA9"), std::string::npos)
      << printable(page.response.body, 2000);
  EXPECT_NE(page.response.body.find("\xF0\x9F\x98\x80"), std::string::npos)
      << printable(page.response.body, 2000);

  // Each key is reachable by paging one at a time (start is percent-decoded).
  std::vector<std::string> got;
  int pages = 0;
  ASSERT_TRUE(list_all(mport, "esc/", 1, 1, got, &pages));
  EXPECT_EQ(got, keys);
  EXPECT_EQ(pages, static_cast<int>(keys.size()));

  // Percent-encoded prefixes with special bytes.
  const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"esc/q\"", "esc/q\"uote"},
      {"esc/\xC3\xA9", "esc/\xC3\xA9t\xC3\xA9"},
      {"esc/new\n", "esc/new\nline"},
      {"esc/ space+", "esc/ space+plus%percent&amp=eq"},
  };
  for (const auto& [prefix, only] : prefixes) {
    SCOPED_TRACE("prefix " + printable(prefix));
    const Page p = list_page(mport, percent_encode(prefix), "");
    ASSERT_TRUE(is_json_listing(p));
    EXPECT_EQ(p.listing->keys, std::vector<std::string>{only});
    EXPECT_EQ(p.listing->next, "");
  }
  // Each listed key reads back its value.
  for (const auto& k : page.listing->keys) {
    const auto get = get_via_master(mport, "/store/" + percent_encode(k));
    EXPECT_EQ(get.second.body, "value of " + k) << printable(k) << ": " << get.describe();
  }
}

}  // namespace
}  // namespace kalavara::it
