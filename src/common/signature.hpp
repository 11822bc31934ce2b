// Request signatures. With a shared secret (--secret-file), the master signs
// every redirect it issues and every daemon signs each call it makes to
// another; the receiver checks the signature before it acts. A signature is
// HMAC-SHA256 over the method and the request target — path and query, as
// sent — with an expiry: so it binds the key, the version, the master named,
// the replica set and every other parameter, for that method only, until it
// expires. Appended to the target as "exp=<unix seconds>&sig=<64 hex>", it
// travels in a redirect's Location and is sent back unchanged.
//
// Secrets rotate without downtime: a daemon signs with its first secret and
// accepts a signature made with any of them (at most two), so the new one
// can be given to every daemon as the second, then made the first, and the
// old one dropped. Comparisons are constant-time; no secret is ever in an
// error message or a log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kalavara {

inline constexpr std::size_t kMinSecretBytes = 32;
inline constexpr std::size_t kMaxSecrets = 2;

// A secret read from a file, kept out of logs and error messages.
class Secrets {
 public:
  // Reads the secrets of `paths`: each file holds one secret per line (a
  // trailing newline is fine), two at most in all; the first line of the
  // first file signs. Fails with kBadInput and the reason when a file cannot
  // be read, is readable or writable by its group or others, holds a secret
  // shorter than kMinSecretBytes, or when there are none or more than two.
  static Result<Secrets> load(const std::vector<std::string>& paths);

  // From secrets in memory (tests). Fails as load() does on their lengths
  // and count.
  static Result<Secrets> of(std::vector<std::string> secrets);

  const std::string& signing() const { return secrets_.front(); }
  const std::vector<std::string>& all() const { return secrets_; }

 private:
  explicit Secrets(std::vector<std::string> secrets) : secrets_(std::move(secrets)) {}
  std::vector<std::string> secrets_;
};

// Reads a bearer token (--admin-token-file) under the same rules as a
// secret file: not readable by group or others, one line, at least 16
// bytes. Fails with kBadInput and the reason.
Result<std::string> load_token(const std::string& path);

// Whether `header` (an Authorization header's value) is "Bearer <token>",
// compared in constant time.
bool bearer_matches(std::string_view header, std::string_view token);

// Signs and checks request targets. Immutable; thread-safe.
class Signer {
 public:
  using Now = std::function<std::uint64_t()>;  // unix seconds

  Signer(Secrets secrets, std::chrono::seconds ttl, Now now = system_seconds);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // `target` ("/path" or "/path?query") with "exp=..&sig=.." appended: a
  // signature of `method` ("PUT", "GET", ...) and everything before it,
  // valid for the signer's ttl. HEAD and GET sign alike: a signature for
  // one is good for the other.
  std::string sign(std::string_view method, std::string_view target) const;

  // Checks that `target` ends in a signature of `method` and of everything
  // before it that has not expired, made with one of the secrets. Fails with
  // kForbidden and the reason (never a secret or the expected signature).
  Status verify(std::string_view method, std::string_view target) const;

  std::chrono::seconds ttl() const { return ttl_; }

  static std::uint64_t system_seconds();

 private:
  // A secret's HMAC-SHA256 key, set up once (signature.cpp).
  class Key;

  static std::string mac(const Key& key, std::string_view method, std::string_view signed_part);

  const Secrets secrets_;
  std::vector<std::unique_ptr<const Key>> keys_;  // one per secret, in order
  const std::chrono::seconds ttl_;
  const Now now_;
};

}  // namespace kalavara
