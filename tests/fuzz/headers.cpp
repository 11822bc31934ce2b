// Fuzz target: the request headers a volume and the master interpret — Range
// (volume/byte_range.hpp), If-Match / If-None-Match / If-Range
// (common/conditional.hpp), Content-MD5 (volume/content_md5.hpp) — and base
// URLs (common/url.hpp, as in -v flags, add-volume bodies and ?master=). The
// input is each header's value in turn.
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "common/conditional.hpp"
#include "common/url.hpp"
#include "fuzz_check.hpp"
#include "volume/byte_range.hpp"
#include "volume/content_md5.hpp"

namespace kalavara::fuzz {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void check_range(std::string_view header) {
  using Kind = RangeDecision::Kind;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  for (const std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10},
                                   std::uint64_t{1} << 32, kMax - 1, kMax}) {
    const auto decision = decide_range(header, size);
    // A partial answer is a non-empty range inside the value: what the
    // volume sends (last - first + 1 bytes from first) never reads past it.
    if (decision.kind == Kind::kPartial) {
      FUZZ_CHECK(size > 0 && decision.first <= decision.last && decision.last < size);
    }
    // Nothing but a byte range is ever answered with 206 or 416.
    if (decision.kind != Kind::kWhole) {
      FUZZ_CHECK(trim(header).size() >= 6);
    }
  }
}

void check_conditionals(std::string_view header) {
  // A missing resource matches no tag, not even "*".
  FUZZ_CHECK(!if_match_matches(header, std::nullopt));
  FUZZ_CHECK(!if_none_match_matches(header, std::nullopt));
  const std::string etag = "\"0123456789abcdef0123456789abcdef\"";
  const std::string weak = "W/" + etag;
  for (const std::string_view current : {std::string_view(etag), std::string_view(weak)}) {
    const bool strong_match = if_match_matches(header, current);
    const bool weak_match = if_none_match_matches(header, current);
    // The strong comparison never matches where the weak one does not
    // (RFC 9110 13.1.1), except "*", which both take for any value.
    FUZZ_CHECK(!strong_match || weak_match);
    // A weak current tag never passes If-Match unless "*" does it.
    if (current.starts_with("W/") && strong_match) FUZZ_CHECK(trim(header) == "*");
    // If-Range takes only the exact strong tag.
    if (if_range_matches(header, current)) {
      FUZZ_CHECK(trim(header) == current && !current.starts_with("W/"));
    }
    // A write's preconditions fail exactly when one of the headers says so.
    const auto status = check_write_preconditions(header, "", current);
    FUZZ_CHECK(status.ok() == (header.empty() || strong_match));
    const auto create_only = check_write_preconditions("", header, current);
    FUZZ_CHECK(create_only.ok() == (header.empty() || !weak_match));
  }
  // Against a key that does not exist, only If-Match can fail.
  FUZZ_CHECK(check_write_preconditions(header, "", std::nullopt).ok() == header.empty());
  FUZZ_CHECK(check_write_preconditions("", header, std::nullopt).ok());
}

std::string base64(const Md5Digest& digest) {
  std::array<unsigned char, 25> out{};
  EVP_EncodeBlock(out.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(out.data()), 24);
}

void check_content_md5(std::string_view header) {
  const auto parsed = parse_content_md5(header);
  if (!parsed) return;
  // What was taken is the base64 of 16 bytes, and those 16 bytes written
  // in base64 again read back the same.
  auto trimmed = header;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  FUZZ_CHECK(trimmed.size() == 24 && trimmed.ends_with("=="));
  const auto again = parse_content_md5(base64(*parsed));
  FUZZ_CHECK(again && *again == *parsed);
}

void check_base_url(std::string_view text) {
  const auto url = parse_base_url(text);
  if (!url) return;
  // The canonical form is http://host:port, and parses to itself.
  FUZZ_CHECK(url->port != 0);
  FUZZ_CHECK(url->text == "http://" + url->host + ":" + std::to_string(url->port));
  FUZZ_CHECK(url->text.find_first_of("/?#@ \t\r\n", 7) == std::string::npos);
  const auto again = parse_base_url(url->text);
  FUZZ_CHECK(again && again->text == url->text && again->host == url->host &&
             again->port == url->port);
}

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto text = as_text(data, size);
  check_range(text);
  check_conditionals(text);
  check_content_md5(text);
  check_base_url(text);
  return 0;
}
