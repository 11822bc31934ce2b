// Fuzz target: request signatures (common/signature.hpp). The input is a
// method, a NUL, and a request target (no NUL: the method is PUT). Verifying
// it must never crash and never accept a target the signer did not make;
// signing it must give a target that verifies for that method only, until
// it expires, with the signing secret or the one being rotated out, and
// that no changed byte still verifies.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/signature.hpp"
#include "common/text.hpp"
#include "fuzz_check.hpp"

namespace kalavara::fuzz {
namespace {

constexpr std::uint64_t kNow = 1'000'000;
constexpr std::chrono::seconds kTtl{60};
const std::string kSigning(40, 's');  // the secret that signs
const std::string kRotated(40, 'r');  // the one being rotated out, still accepted

Signer signer_of(std::vector<std::string> secrets, std::uint64_t now) {
  return Signer(Secrets::of(std::move(secrets)).value(), kTtl, [now] { return now; });
}

// The signer under test, and the same daemon's view a little later.
const Signer& current() {
  static const Signer signer = signer_of({kSigning, kRotated}, kNow);
  return signer;
}

// Whether `target` is exactly what a signer holding `secret` made for
// `method` at some time: everything before its final "exp=E&sig=..." signed,
// by sign(), at E minus the ttl.
bool made_by_sign(std::string_view method, std::string_view target, const std::string& secret) {
  const auto sig = target.rfind("&sig=");
  if (sig == std::string_view::npos) return false;
  const auto signed_part = target.substr(0, sig);
  const auto exp = signed_part.rfind("exp=");
  if (exp == std::string_view::npos || exp == 0) return false;
  const auto expiry = parse_decimal(signed_part.substr(exp + 4));
  if (!expiry || *expiry < static_cast<std::uint64_t>(kTtl.count())) return false;
  const auto unsigned_target = signed_part.substr(0, exp - 1);
  const auto signer = signer_of({secret}, *expiry - static_cast<std::uint64_t>(kTtl.count()));
  return signer.sign(method, unsigned_target) == target;
}

void check_verify(std::string_view method, std::string_view target) {
  const auto verdict = current().verify(method, target);
  if (verdict.ok()) {
    FUZZ_CHECK(made_by_sign(method, target, kSigning) || made_by_sign(method, target, kRotated));
  } else {
    FUZZ_CHECK(verdict.error().code == Errc::kForbidden);
    FUZZ_CHECK(verdict.error().message.find(kSigning) == std::string::npos);
    FUZZ_CHECK(verdict.error().message.find(kRotated) == std::string::npos);
  }
}

void check_sign(std::string_view method, std::string_view target, std::size_t seed) {
  const auto signed_target = current().sign(method, target);
  FUZZ_CHECK(signed_target.starts_with(target));
  FUZZ_CHECK(current().verify(method, signed_target).ok());
  // Rotation: a daemon given the new secret second still accepts it; one
  // that only has the old secret does not.
  FUZZ_CHECK(signer_of({kRotated, kSigning}, kNow).verify(method, signed_target).ok());
  FUZZ_CHECK(!signer_of({kRotated}, kNow).verify(method, signed_target).ok());
  // Valid through its expiry second, not after.
  const auto ttl = static_cast<std::uint64_t>(kTtl.count());
  FUZZ_CHECK(signer_of({kSigning}, kNow + ttl).verify(method, signed_target).ok());
  FUZZ_CHECK(!signer_of({kSigning}, kNow + ttl + 1).verify(method, signed_target).ok());
  // For that method only.
  FUZZ_CHECK(!current().verify(std::string(method) + "X", signed_target).ok());
  if (!method.empty()) FUZZ_CHECK(!current().verify(method.substr(1), signed_target).ok());

  // No other target verifies unless sign() made it too: one byte changed
  // (where and how chosen by the input) or cut short. (A target that was
  // itself signed, with a byte after it, signed again and cut back to its
  // first signature does verify, rightly.) Nothing after the signature.
  auto changed = signed_target;
  const auto at = seed % changed.size();
  changed[at] = static_cast<char>(changed[at] ^ static_cast<char>(1 + (seed >> 32) % 255));
  check_verify(method, changed);
  check_verify(method, std::string_view(signed_target).substr(0, at));
  FUZZ_CHECK(!current().verify(method, signed_target + "&master=http%3A%2F%2Fevil%3A1").ok());
}

void check_bearer(std::string_view header) {
  const std::string token = "0123456789abcdef-token";
  FUZZ_CHECK(bearer_matches("Bearer " + token, token));
  if (!bearer_matches(header, token)) return;
  // Only the scheme, spaces around it, and the token itself.
  auto rest = header.substr(7);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  FUZZ_CHECK(rest == token);
}

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto text = as_text(data, size);
  const auto nul = text.find('\0');
  const auto method = nul == std::string_view::npos ? std::string_view("PUT") : text.substr(0, nul);
  const auto target = nul == std::string_view::npos ? text : text.substr(nul + 1);
  check_verify(method, target);
  check_sign(method, target, std::hash<std::string_view>{}(text));
  check_bearer(text);
  return 0;
}
