// The on-disk format of a volume. Pure; thread-safe.
//
// Each write of a value is one file, named by the SHA-256 of its key (never by
// the key itself, so no key can name a path outside the data folder) and the
// write's version; several versions of a key may exist for a while:
//   <data-dir>/blobs/<hex[0:2]>/<hex[2:4]>/<hex>.<version>
//     hex = sha256(key), 64 chars; version = 16 hex digits
// The file is a header followed by the value's bytes. Header, little-endian:
//   offset 0   4 bytes   magic "KLVB"
//          4   u16       format (2; format 1 lacks the checksum, key at 24)
//          6   u16       header length H: the value starts at byte H
//          8   u16       key length K
//         10   6 bytes   reserved, zero
//         16   u64       write version (0 until versioned writes exist)
//         24   16 bytes  XXH3-128 of the value, canonical (big-endian) order
//         40   K bytes   the key
// The key is kept in the file so that the index can be rebuilt by scanning
// the volume; readers skip to H, so later formats can add fields before it.
//
// A delete marker, <hex>.<version>.marker beside the key's values, is the
// same header at the delete's version with an empty value: a sign, for a
// rebuild of a lost index, that the key was deleted at that version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/checksum.hpp"
#include "common/digest.hpp"
#include "common/key_codec.hpp"
#include "common/result.hpp"

namespace kalavara {

inline constexpr std::uint16_t kBlobFormat = 2;
inline constexpr std::size_t kBlobChecksumOffset = 24;
inline constexpr std::size_t kBlobFixedHeaderBytes = 40;
inline constexpr std::size_t kMaxBlobHeaderBytes = kBlobFixedHeaderBytes + kMaxKeyBytes;

struct BlobHeader {
  std::string key;
  std::uint64_t version = 0;
  std::uint16_t length = 0;          // H: where the value starts
  std::optional<Checksum> checksum;  // absent in format 1
};

// The header for `key` (at most kMaxKeyBytes long). The checksum is usually
// unknown when the header is written; the writer fills it in at
// kBlobChecksumOffset once the value is complete.
std::string encode_blob_header(std::string_view key, std::uint64_t version,
                               const Checksum& checksum = {});

// Decodes a header from the first bytes of a file (at least the whole
// header). Fails with kInternal ("corrupt blob header: ...") on anything else.
Result<BlobHeader> decode_blob_header(std::string_view bytes);

// The folder under the data folder that holds every value file.
inline constexpr std::string_view kBlobsDirectory = "blobs";

// The folder under the data folder that corrupt copies are moved to, under
// their own names: out of the tree, so never served, listed or counted, but
// kept for a person to look at.
inline constexpr std::string_view kQuarantineDirectory = "quarantine";

// "blobs/ab/cd": the folder holding every version of the key.
std::string blob_directory(const KeyDigest& digest);

// "blobs/ab/cd/abcd....0000018bcdef0123": the file of one version.
std::string blob_relative_path(const KeyDigest& digest, std::uint64_t version);

// "ab/cd/abcd....0000018bcdef0123": the same file relative to kBlobsDirectory.
std::string blob_path_in_blobs_directory(const KeyDigest& digest, std::uint64_t version);

// "ab/cd/abcd....0000018bcdef0123.marker": a delete marker at `version`.
std::string marker_path_in_blobs_directory(const KeyDigest& digest, std::uint64_t version);

inline constexpr std::string_view kMarkerSuffix = ".marker";

// The version in `file_name` when it is a value file (not a marker) of the
// key whose digest's hex is `digest_hex`; nullopt for anything else.
std::optional<std::uint64_t> blob_file_version(std::string_view file_name,
                                               std::string_view digest_hex);

// What the name of a file in the tree says, when it is a kalavara file:
// "<64 hex>.<16 hex>" (a value) or the same plus ".marker". Lower-case hex
// only, as the store writes them.
struct BlobFileName {
  std::string_view digest_hex;  // points into the name parsed
  std::uint64_t version = 0;
  bool marker = false;
};
std::optional<BlobFileName> parse_blob_file_name(std::string_view file_name);

}  // namespace kalavara
