// Fuzz target: keys as they travel in URLs (common/key_codec.hpp), and how a
// volume names and reads their files (volume/blob_file.hpp). The input is
// tried as an encoded key, as a raw key, as a file name and as the first
// bytes of a value file.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/digest.hpp"
#include "common/key_codec.hpp"
#include "fuzz_check.hpp"
#include "volume/blob_file.hpp"

namespace kalavara::fuzz {
namespace {

bool valid_key(std::string_view key) {
  return !key.empty() && key.size() <= kMaxKeyBytes && key.find('\0') == std::string_view::npos;
}

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// Only unreserved characters and %XX escapes (and '/' in a path): what any
// RFC 3986 client sends back unchanged.
void check_escaped(std::string_view encoded, bool slashes) {
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%') {
      FUZZ_CHECK(i + 2 < encoded.size() && upper_hex(encoded[i + 1]) && upper_hex(encoded[i + 2]));
      i += 2;
    } else {
      FUZZ_CHECK(unreserved(encoded[i]) || (slashes && encoded[i] == '/'));
    }
  }
}

// What encode_key_path promises besides: no "." or ".." segment, which a
// client would resolve away.
void check_path_shape(std::string_view encoded) {
  check_escaped(encoded, true);
  for (std::string_view rest = encoded;;) {
    const auto slash = rest.find('/');
    const auto segment = rest.substr(0, slash);
    FUZZ_CHECK(segment != "." && segment != "..");
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
}

// decode(encode(key)) == key, in a path, in a target with a query, and as a
// query value.
void check_round_trip(std::string_view key) {
  const auto encoded = encode_key_path(key);
  check_path_shape(encoded);
  const auto decoded = decode_key(encoded);
  FUZZ_CHECK(decoded.ok() && *decoded == key);
  const auto in_target =
      key_in_target(std::string(kStorePrefix) + encoded + "?version=1&x=%zz", kStorePrefix);
  FUZZ_CHECK(in_target.ok() && *in_target == key);

  const auto component = percent_encode_component(key);
  check_escaped(component, false);
  const auto value = query_param("a=1&k=" + component + "&k=other", "k");
  FUZZ_CHECK(value.has_value() && *value == key);
}

void check_key_codec(std::string_view text) {
  const auto decoded = percent_decode(text);
  if (decoded) FUZZ_CHECK(decoded->size() <= text.size());
  // decode_key is percent_decode plus the key's rules, nothing else.
  const auto key = decode_key(text);
  FUZZ_CHECK(key.ok() == (decoded.ok() && valid_key(*decoded)));
  if (key) FUZZ_CHECK(*key == *decoded);

  // The key of a target is its path's, whatever the query holds.
  const auto path = split_target(text).path;
  FUZZ_CHECK(path == text.substr(0, text.find('?')));
  const auto in_target = key_in_target(std::string(kStorePrefix) + std::string(text), kStorePrefix);
  const auto of_path = decode_key(path);
  FUZZ_CHECK(in_target.ok() == of_path.ok());
  if (in_target) FUZZ_CHECK(*in_target == *of_path);

  // Whatever the query, looking a parameter up never fails loudly.
  (void)query_param(text, "version");
  (void)query_param(split_target(text).query, "");

  if (valid_key(text)) check_round_trip(text);
  if (key) check_round_trip(*key);
}

std::uint64_t version_of(std::string_view bytes) {
  std::uint64_t version = 0;
  std::memcpy(&version, bytes.data(), std::min(bytes.size(), sizeof version));
  return version;
}

std::string version_hex(std::uint64_t version) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (std::size_t i = out.size(); i-- > 0; version >>= 4) out[i] = kHex[version & 0xF];
  return out;
}

void check_blob_names(std::string_view text) {
  const auto digest = digest_of(text);
  const auto hex = digest.hex();
  const auto version = version_of(text);

  // Containment: whatever the key, its file is blobs/ab/cd/<64 hex>.<16 hex>.
  const auto relative = blob_relative_path(digest, version);
  const auto directory = blob_directory(digest);
  FUZZ_CHECK(directory == "blobs/" + hex.substr(0, 2) + "/" + hex.substr(2, 2));
  FUZZ_CHECK(relative == directory + "/" + hex + "." + version_hex(version));
  FUZZ_CHECK(relative == "blobs/" + blob_path_in_blobs_directory(digest, version));

  // The names the store writes parse back to what they were made from.
  const auto file_name = [](std::string_view path) { return path.substr(path.rfind('/') + 1); };
  const auto name = file_name(relative);
  FUZZ_CHECK(blob_file_version(name, hex) == version);
  const auto parsed = parse_blob_file_name(name);
  FUZZ_CHECK(parsed && !parsed->marker && parsed->version == version && parsed->digest_hex == hex);
  const auto marker_path = marker_path_in_blobs_directory(digest, version);
  const auto marker_name = file_name(marker_path);
  FUZZ_CHECK(!blob_file_version(marker_name, hex).has_value());
  const auto marker = parse_blob_file_name(marker_name);
  FUZZ_CHECK(marker && marker->marker && marker->version == version && marker->digest_hex == hex);

  // Any other name is taken only when it is exactly such a name.
  if (const auto raw = parse_blob_file_name(text)) {
    FUZZ_CHECK(std::string(raw->digest_hex) + "." + version_hex(raw->version) +
                   (raw->marker ? std::string(kMarkerSuffix) : std::string()) ==
               text);
  }
  for (const auto digest_hex : {std::string_view(hex), text.substr(0, 64)}) {
    if (const auto raw = blob_file_version(text, digest_hex)) {
      FUZZ_CHECK(std::string(digest_hex) + "." + version_hex(*raw) == text);
    }
  }
}

void check_blob_header(std::string_view bytes) {
  if (const auto header = decode_blob_header(bytes)) {
    FUZZ_CHECK(header->length <= bytes.size());
    FUZZ_CHECK(!header->key.empty() && header->key.size() <= kMaxKeyBytes);
    FUZZ_CHECK(header->length >= header->key.size() + (header->checksum ? 40U : 24U));
    // Written again in the current format, it reads back the same.
    const auto encoded =
        encode_blob_header(header->key, header->version, header->checksum.value_or(Checksum{}));
    const auto again = decode_blob_header(encoded);
    FUZZ_CHECK(again && again->key == header->key && again->version == header->version &&
               again->length == encoded.size() &&
               again->checksum == header->checksum.value_or(Checksum{}));
  }
  // Every key a volume accepts makes a header that reads back, also with the
  // value after it.
  if (!bytes.empty() && bytes.size() <= kMaxKeyBytes) {
    Checksum checksum{};
    std::memcpy(checksum.data(), bytes.data(), std::min(bytes.size(), checksum.size()));
    const auto version = version_of(bytes);
    const auto encoded = encode_blob_header(bytes, version, checksum) + "value";
    const auto header = decode_blob_header(encoded);
    FUZZ_CHECK(header && header->key == bytes && header->version == version &&
               header->checksum == checksum && header->length + 5 == encoded.size());
  }
}

}  // namespace
}  // namespace kalavara::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kalavara::fuzz;
  const auto text = as_text(data, size);
  check_key_codec(text);
  check_blob_names(text);
  check_blob_header(text);
  return 0;
}
