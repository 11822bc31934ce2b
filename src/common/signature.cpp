#include "common/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>

#include "common/key_codec.hpp"
#include "common/text.hpp"

namespace kalavara {
namespace {

constexpr std::string_view kDomain = "kalavara-1\n";
constexpr std::string_view kExp = "exp";
constexpr std::string_view kSig = "sig";
constexpr std::size_t kMacHexBytes = 64;
constexpr std::size_t kMinTokenBytes = 16;  // the messages below say so

Error bad(std::string message) { return Error{Errc::kBadInput, std::move(message)}; }

Error forbidden(std::string message) { return Error{Errc::kForbidden, std::move(message)}; }

// The contents of a file only its owner may read, or why not.
Result<std::string> read_private_file(const std::string& path, std::string_view what) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return bad(std::string(what) + " " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) return bad(std::string(what) + " " + path + " is not a file");
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return bad(std::string(what) + " " + path +
               " may be read or written by its group or others: chmod 600 it");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return bad(std::string(what) + " " + path + " cannot be read");
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto newline = rest.find('\n');
    auto line = rest.substr(0, newline);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    if (newline == std::string_view::npos) break;
    rest.remove_prefix(newline + 1);
  }
  return lines;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<Secrets> Secrets::of(std::vector<std::string> secrets) {
  if (secrets.empty()) return bad("no secret given");
  if (secrets.size() > kMaxSecrets) {
    return bad("at most " + std::to_string(kMaxSecrets) +
               " secrets (the one that signs, and the one being rotated out)");
  }
  for (const auto& secret : secrets) {
    if (secret.size() < kMinSecretBytes) {
      return bad("a secret is shorter than " + std::to_string(kMinSecretBytes) +
                 " bytes (make one with: openssl rand -hex 32)");
    }
  }
  return Secrets(std::move(secrets));
}

Result<Secrets> Secrets::load(const std::vector<std::string>& paths) {
  std::vector<std::string> secrets;
  for (const auto& path : paths) {
    auto text = read_private_file(path, "secret file");
    if (!text) return text.error();
    auto lines = lines_of(*text);
    if (lines.empty()) return bad("secret file " + path + " is empty");
    for (auto& line : lines) secrets.push_back(std::move(line));
  }
  return of(std::move(secrets));
}

Result<std::string> load_token(const std::string& path) {
  auto text = read_private_file(path, "token file");
  if (!text) return text.error();
  auto lines = lines_of(*text);
  if (lines.size() != 1) return bad("token file " + path + " must hold one line");
  if (lines.front().size() < kMinTokenBytes) {
    std::string reason = "the token in " + path;
    reason += " is shorter than 16 bytes (make one with: openssl rand -hex 32)";
    return bad(std::move(reason));
  }
  Result<std::string> token = lines.front();
  return token;
}

bool bearer_matches(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() < kScheme.size()) return false;
  // The scheme is case-insensitive (RFC 9110 §11.1).
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  auto presented = header.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  return constant_time_equal(presented, token);
}

// HMAC-SHA256 (RFC 2104) with the key's padded blocks hashed once: each MAC
// then starts from copies of the two digest states. OpenSSL's one-shot
// HMAC() looks the algorithm up and sets the key up again on every call,
// which made a signed redirect cost a quarter of the master's time.
class Signer::Key {
 public:
  explicit Key(std::string_view secret) {
    constexpr std::size_t kBlock = 64;  // SHA-256's block size
    std::array<unsigned char, kBlock> key{};
    if (secret.size() > kBlock) {
      unsigned int length = 0;
      check(EVP_Digest(secret.data(), secret.size(), key.data(), &length, EVP_sha256(), nullptr));
    } else {
      std::memcpy(key.data(), secret.data(), secret.size());
    }
    std::array<unsigned char, kBlock> pad{};
    for (auto [state, mask] : {std::pair{&inner_, 0x36}, std::pair{&outer_, 0x5c}}) {
      for (std::size_t i = 0; i < kBlock; ++i) pad[i] = key[i] ^ mask;
      *state = EVP_MD_CTX_new();
      check(*state != nullptr && EVP_DigestInit_ex(*state, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(*state, pad.data(), pad.size()) == 1);
    }
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(pad.data(), pad.size());
  }
  ~Key() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
  }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  // The MAC of the concatenation of `parts`. Thread-safe: the key's states
  // are only read.
  std::array<unsigned char, 32> mac(std::initializer_list<std::string_view> parts) const {
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> scratch(
        EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, 32> digest{};
    unsigned int length = 0;
    EVP_MD_CTX* ctx = scratch.get();
    check(ctx != nullptr && EVP_MD_CTX_copy_ex(ctx, inner_) == 1);
    for (const auto part : parts) check(EVP_DigestUpdate(ctx, part.data(), part.size()) == 1);
    check(EVP_DigestFinal_ex(ctx, digest.data(), &length) == 1 && length == digest.size());
    check(EVP_MD_CTX_copy_ex(ctx, outer_) == 1 &&
          EVP_DigestUpdate(ctx, digest.data(), digest.size()) == 1 &&
          EVP_DigestFinal_ex(ctx, digest.data(), &length) == 1);
    return digest;
  }

 private:
  // Only on allocation failure or a broken OpenSSL: a bug, not an input.
  static void check(bool ok) {
    if (!ok) std::abort();
  }

  EVP_MD_CTX* inner_ = nullptr;  // after the key XOR ipad
  EVP_MD_CTX* outer_ = nullptr;  // after the key XOR opad
};

Signer::Signer(Secrets secrets, std::chrono::seconds ttl, Now now)
    : secrets_(std::move(secrets)), ttl_(ttl), now_(std::move(now)) {
  for (const auto& secret : secrets_.all()) keys_.push_back(std::make_unique<const Key>(secret));
}

Signer::~Signer() = default;

std::uint64_t Signer::system_seconds() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string Signer::mac(const Key& key, std::string_view method, std::string_view signed_part) {
  // A HEAD is a GET without the body: a URL signed for reading may be
  // HEADed (curl -I, a client's existence check) and the other way round.
  const std::string_view signed_method = method == "HEAD" ? std::string_view("GET") : method;
  const auto digest = key.mac({kDomain, signed_method, "\n", signed_part});
  return to_hex({digest.data(), digest.size()});
}

std::string Signer::sign(std::string_view method, std::string_view target) const {
  std::string signed_part(target);
  signed_part += signed_part.find('?') == std::string::npos ? '?' : '&';
  signed_part += kExp;
  signed_part += '=';
  signed_part += std::to_string(now_() + static_cast<std::uint64_t>(ttl_.count()));
  const auto signature = mac(*keys_.front(), method, signed_part);
  signed_part += '&';
  signed_part += kSig;
  signed_part += '=';
  signed_part += signature;
  return signed_part;
}

Status Signer::verify(std::string_view method, std::string_view target) const {
  // The signature is the last parameter; what it signs is everything before
  // it, byte for byte as received, so no re-encoding can change its meaning.
  const auto at = target.rfind("sig=");
  if (at == std::string_view::npos || at == 0) return forbidden("the request is not signed");
  const auto signed_part = target.substr(0, at - 1);
  // Joined by the separator sign() puts there and no other, so no second
  // spelling of a signed target verifies ("...&exp=E?sig=" is not it).
  const char separator = signed_part.find('?') == std::string_view::npos ? '?' : '&';
  if (target[at - 1] != separator) return forbidden("the request is not signed");
  const auto signature = target.substr(at + kSig.size() + 1);
  if (signature.size() != kMacHexBytes || at < 2) return forbidden("a malformed signature");
  const auto query = split_target(signed_part).query;
  // The last exp= counts: one cannot be smuggled in after the signed one.
  std::optional<std::uint64_t> expiry;
  for (std::string_view rest = query; !rest.empty();) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    if (pair.starts_with("exp=")) expiry = parse_decimal(pair.substr(4));
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
  }
  if (!expiry) return forbidden("the signature has no expiry");
  if (*expiry < now_()) return forbidden("the signature has expired");
  bool valid = false;
  // Every secret is tried, whatever the first gave: the time taken does not
  // tell which one matched.
  for (const auto& key : keys_) {
    valid = constant_time_equal(mac(*key, method, signed_part), signature) || valid;
  }
  if (!valid) return forbidden("the signature does not match the request");
  return Status{};
}

}  // namespace kalavara
