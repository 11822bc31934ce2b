#include "volume/blob_file.hpp"

namespace kalavara {
namespace {

constexpr std::string_view kMagic = "KLVB";

void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::uint64_t get_le(std::string_view bytes, std::size_t offset, int count) {
  std::uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<std::uint8_t>(bytes[offset + static_cast<std::size_t>(i)]);
  }
  return value;
}

Error corrupt(std::string_view what) {
  return Error{Errc::kInternal, "corrupt blob header: " + std::string(what)};
}

}  // namespace

std::string encode_blob_header(std::string_view key, std::uint64_t version,
                               const Checksum& checksum) {
  std::string out(kMagic);
  put_le(out, kBlobFormat, 2);
  put_le(out, kBlobFixedHeaderBytes + key.size(), 2);
  put_le(out, key.size(), 2);
  put_le(out, 0, 6);
  put_le(out, version, 8);
  out.append(checksum.begin(), checksum.end());
  out.append(key);
  return out;
}

Result<BlobHeader> decode_blob_header(std::string_view bytes) {
  constexpr std::size_t kFormat1FixedBytes = 24;
  if (bytes.size() < kFormat1FixedBytes) return corrupt("file too short");
  if (bytes.substr(0, kMagic.size()) != kMagic) return corrupt("bad magic");
  const auto format = get_le(bytes, 4, 2);
  if (format != 1 && format != kBlobFormat) return corrupt("unknown format");
  const std::size_t fixed = format == 1 ? kFormat1FixedBytes : kBlobFixedHeaderBytes;
  const auto length = get_le(bytes, 6, 2);
  const auto key_length = get_le(bytes, 8, 2);
  if (key_length == 0 || key_length > kMaxKeyBytes || length < fixed + key_length ||
      length > bytes.size()) {
    return corrupt("bad lengths");
  }
  BlobHeader header;
  header.version = get_le(bytes, 16, 8);
  header.length = static_cast<std::uint16_t>(length);
  if (format == kBlobFormat) {
    Checksum checksum;
    for (std::size_t i = 0; i < checksum.size(); ++i) {
      checksum[i] = static_cast<std::uint8_t>(bytes[kBlobChecksumOffset + i]);
    }
    header.checksum = checksum;
  }
  header.key.assign(bytes.substr(fixed, key_length));
  return header;
}

std::string blob_directory(const KeyDigest& digest) {
  const auto hex = digest.hex();
  return std::string(kBlobsDirectory) + "/" + hex.substr(0, 2) + "/" + hex.substr(2, 2);
}

std::string blob_relative_path(const KeyDigest& digest, std::uint64_t version) {
  return std::string(kBlobsDirectory) + "/" + blob_path_in_blobs_directory(digest, version);
}

std::string blob_path_in_blobs_directory(const KeyDigest& digest, std::uint64_t version) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::size_t kVersionDigits = 16;
  const auto hex = digest.hex();
  std::string path;
  path.reserve(6 + hex.size() + 1 + kVersionDigits);
  path.append(hex, 0, 2).append(1, '/').append(hex, 2, 2).append(1, '/').append(hex);
  path.append(1, '.').append(kVersionDigits, '0');
  for (std::size_t i = path.size(); version != 0; version >>= 4) path[--i] = kHex[version & 0xF];
  return path;
}

std::string marker_path_in_blobs_directory(const KeyDigest& digest, std::uint64_t version) {
  return blob_path_in_blobs_directory(digest, version).append(kMarkerSuffix);
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The 16 hex digits of a version.
std::optional<std::uint64_t> parse_version_digits(std::string_view digits) {
  if (digits.size() != 16) return std::nullopt;
  std::uint64_t version = 0;
  for (const char c : digits) {
    const int digit = hex_digit(c);
    if (digit < 0) return std::nullopt;
    version = (version << 4) | static_cast<std::uint64_t>(digit);
  }
  return version;
}

constexpr std::size_t kDigestHexChars = 64;

}  // namespace

std::optional<std::uint64_t> blob_file_version(std::string_view file_name,
                                               std::string_view digest_hex) {
  if (file_name.size() != digest_hex.size() + 17 || !file_name.starts_with(digest_hex) ||
      file_name[digest_hex.size()] != '.') {
    return std::nullopt;
  }
  return parse_version_digits(file_name.substr(digest_hex.size() + 1));
}

std::optional<BlobFileName> parse_blob_file_name(std::string_view file_name) {
  BlobFileName parsed;
  if (file_name.ends_with(kMarkerSuffix)) {
    parsed.marker = true;
    file_name.remove_suffix(kMarkerSuffix.size());
  }
  if (file_name.size() != kDigestHexChars + 17 || file_name[kDigestHexChars] != '.') {
    return std::nullopt;
  }
  parsed.digest_hex = file_name.substr(0, kDigestHexChars);
  for (const char c : parsed.digest_hex) {
    if (hex_digit(c) < 0) return std::nullopt;
  }
  const auto version = parse_version_digits(file_name.substr(kDigestHexChars + 1));
  if (!version) return std::nullopt;
  parsed.version = *version;
  return parsed;
}

}  // namespace kalavara
