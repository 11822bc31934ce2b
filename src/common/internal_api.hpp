// The daemon-to-daemon protocol as typed messages: every URL one daemon
// builds for another, and the parser the other side reads it with, live here
// and nowhere else, so no query name or answer string is spelled twice.
//
//   write order   the master's 307 to a volume, and a primary's copy to a replica
//                 /store/<key>?master=URL&version=V[&replicas=URL,URL]
//                 /store/<key>?version=V&replica=1
//   read          the master's 302: /store/<key>?version=V
//   commit        a volume to the master, once every copy is durable:
//                 POST /internal/commit/<key>?volumes=URL,URL&version=V&size=N&checksum=HEX
//                      [&if_match=..][&if_none_match=..]  → 200 "committed" | "superseded"
//   removal       the master (or a primary) to a volume:
//                 DELETE /store/<key>?upto=V  (every version <= V)
//                 DELETE /store/<key>?version=V  (exactly V: an uncommitted copy)
//   registration  a volume to the master: POST /admin/add-volume, body: its base URL
//   stats         the master's health check of a volume: GET /stats → JSON
//   maintenance   the master (and rebuild) to a volume:
//                 GET  /admin/blobs?after=NAME&limit=N   what it holds, a page (NDJSON)
//                 POST /admin/verify/<key>?version=V     re-read a copy against its checksum
//                 POST /admin/copy/<key>?version=V&from=URL   pull a copy from another volume
//                 PUT  /admin/marker/<key>?version=T     leave a delete marker
//
// Building and parsing are pure and thread-safe; the send_* calls at the end
// are the client side, over common/http_client.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/url.hpp"

namespace kalavara {
class Signer;
}

namespace kalavara::internal {

// What a volume is told to do with an upload.
struct WriteOrder {
  std::uint64_t version = 0;
  // Where to commit. Absent on a replica's copy, and when the redirect did
  // not name one (a volume started with -m commits there anyway).
  std::optional<BaseUrl> master;
  // The other volumes the primary streams the value to, in placement order.
  std::vector<BaseUrl> replicas;
  // A copy streamed by the primary: stored and published, never committed.
  bool as_replica = false;
};

// The Location of the master's 307 for a write of `key` to `primary`:
// "http://PRIMARY/store/<key>?master=..&version=..[&replicas=..]", signed
// for a PUT with `signer` when one is given (then "&exp=..&sig=.." follow).
std::string write_location(std::string_view primary, std::string_view key, const WriteOrder& order,
                           const Signer* signer = nullptr);

// The target of a primary's copy of `key` at `version` to a replica.
std::string replica_target(std::string_view key, std::uint64_t version);

// Reads a write order from a volume PUT's query. Fails with kBadInput and a
// one-line reason when the version is missing or not a number from 1 up, or
// a URL is malformed; a missing master is not an error here (the volume may
// have -m).
Result<WriteOrder> parse_write_order(std::string_view query);

// The Location of the master's 302 for `key`'s committed `version`, and its
// target alone ("/store/<key>?version=V", for a HEAD by the master itself).
// The Location is signed for a GET with `signer` when one is given.
std::string read_location(std::string_view volume, std::string_view key, std::uint64_t version,
                          const Signer* signer = nullptr);
std::string read_target(std::string_view key, std::uint64_t version);

// The version a read asks for: nullopt when the query names none (then the
// newest present is read). Fails with kBadInput when it is not a number.
Result<std::optional<std::uint64_t>> parse_read_version(std::string_view query);

inline constexpr std::string_view kCommitPath = "/internal/commit/";

// A volume's request to commit one durable write.
struct CommitCall {
  std::string key;
  std::vector<std::string> volumes;  // canonical base URLs holding a copy, primary first
  std::uint64_t version = 0;
  std::uint64_t size = 0;
  std::string checksum;  // the value's XXH3-128, 32 lower-case hex digits
  std::string if_match;  // the client's conditions, empty when absent
  std::string if_none_match;
};

// "/internal/commit/<key>?volumes=..&version=..&size=..&checksum=..[&if_match=..][..]"
std::string commit_target(const CommitCall& call);

// Reads a commit call from its request target, checking its shape: every
// parameter present, version a number from 1 up, size a number, checksum
// exactly 32 lower-case hex digits, volumes one or more distinct canonical
// base URLs, conditions without control characters. Fails with kBadInput and
// a one-line reason naming the parameter. Whether the version was issued and
// the volumes are registered is for the master to check.
Result<CommitCall> parse_commit(std::string_view target);

// How a commit ended at the master.
enum class CommitAnswer {
  kCommitted,   // the index names this write (also when it already did)
  kSuperseded,  // ordered before a newer write or a delete of the key: never visible
};
std::string_view commit_answer_text(CommitAnswer answer);
// nullopt for anything but the texts above (a trailing newline is allowed).
std::optional<CommitAnswer> parse_commit_answer(std::string_view body);

// A volume's removal of versions of a key.
struct RemovalCall {
  enum class Scope { kUpTo, kExactly };
  std::string key;
  std::uint64_t version = 0;
  Scope scope = Scope::kUpTo;
};
// "/store/<key>?upto=V" or "/store/<key>?version=V".
std::string removal_target(const RemovalCall& call);
// Reads the scope of a volume DELETE from its query (the key comes from the
// path). Fails with kBadInput unless exactly one of upto= and version= is a
// number.
Result<RemovalCall> parse_removal(std::string key, std::string_view query);

inline constexpr std::string_view kRegisterPath = "/admin/add-volume";
// POST, body: a volume's base URL. The volume is shutting down: the master
// sends it no reads or writes until it registers again.
inline constexpr std::string_view kStoppingPath = "/internal/volume-stopping";
inline constexpr std::string_view kStatsPath = "/stats";

// What a volume reports to the master's health checks.
struct VolumeStats {
  std::uint64_t free_bytes = 0;  // available to the volume on its filesystem
  std::uint64_t files = 0;       // value files held (one per stored version)
  bool operator==(const VolumeStats&) const = default;
};
// {"free_bytes": N, "files": N} and a newline.
std::string stats_body(const VolumeStats& stats);
// Fails with kPeerFailed when `body` is not such a JSON object.
Result<VolumeStats> parse_stats(std::string_view body);

// ---------------------------------------------------------------------------
// Maintenance: what volumes hold, copies between them, delete markers.

// One file a volume holds, as its listing reports it.
struct BlobEntry {
  // "<sha256 hex>.<16 hex digits of the version>": names the file, orders
  // the listing, and is its cursor.
  std::string name;
  std::string key;
  std::uint64_t version = 0;
  std::uint64_t size = 0;   // value bytes; 0 for a marker
  std::string checksum;     // 32 hex digits; empty for a marker or a format-1 value
  std::uint64_t mtime = 0;  // the file's modification time, seconds since the epoch
  // A delete marker: the key was deleted by the delete `version`, and copies
  // at or below it elsewhere are stale (see docs/architecture.md, rebuild).
  bool marker = false;
  bool operator==(const BlobEntry&) const = default;
};

inline constexpr std::string_view kBlobsPath = "/admin/blobs";
inline constexpr std::size_t kDefaultBlobPage = 1000;
inline constexpr std::size_t kMaxBlobPage = 10000;

// A page of a volume's listing, in name order.
struct BlobPage {
  std::vector<BlobEntry> entries;
  std::string next;  // pass as after= for the following page; empty at the end
};

// "/admin/blobs?after=NAME&limit=N" (after= omitted when empty).
std::string blobs_target(std::string_view after, std::size_t limit);

// A listing's query, as the volume reads it.
struct BlobsQuery {
  std::string after;  // "" for the start
  std::size_t limit = kDefaultBlobPage;
};
// Fails with kBadInput unless limit= is absent (kDefaultBlobPage) or a
// number from 1 to kMaxBlobPage.
Result<BlobsQuery> parse_blobs_query(std::string_view query);

// The listing's body is NDJSON (application/x-ndjson): one line per entry,
//   {"name":"...","key":"<percent-encoded, lossless>","version":V,"size":N,
//    "checksum":"...","mtime":S,"marker":false}
// then one last line {"next":"NAME"} ("" at the end).
std::string blob_entry_line(const BlobEntry& entry);
std::string blob_page_end_line(std::string_view next);
// Fails with kPeerFailed unless `body` is such a page, last line included.
Result<BlobPage> parse_blob_page(std::string_view body);

inline constexpr std::string_view kVerifyPath = "/admin/verify/";
inline constexpr std::string_view kCopyPath = "/admin/copy/";
inline constexpr std::string_view kMarkerPath = "/admin/marker/";

// "/admin/verify/<key>?version=V": the volume re-reads its copy of `version`
// and checks it against the checksum in its header. Answers 200 when it
// matches; 409 when it does not (the copy is then quarantined: never served
// or listed again); 404 when the volume holds no such copy.
std::string verify_target(std::string_view key, std::uint64_t version);

// A volume's pull of a copy from another volume (rebalance, repair).
struct CopyCall {
  std::string key;
  std::uint64_t version = 0;
  BaseUrl from;
};
// "/admin/copy/<key>?version=V&from=URL". Answers 201 with the ETag once
// the copy is durable and its checksum checked against the source's; 200
// (with the ETag) when this volume already holds that version with the same
// checksum; 409 when it holds another value under that version; 404 when
// the source has no such version; 502 when the source failed.
std::string copy_target(const CopyCall& call);
// Reads the version and source from a copy's query (the key comes from the
// path). Fails with kBadInput naming the parameter.
Result<CopyCall> parse_copy(std::string key, std::string_view query);

// "/admin/marker/<key>?version=T": leave a durable delete marker for `key`
// at the delete's version T (201), so that a rebuild of a lost index sees
// the delete. Removed like a version: by a removal up to T or beyond.
std::string marker_target(std::string_view key, std::uint64_t version);

// The version= of a verify or a marker (the key comes from the path). Fails
// with kBadInput unless it is a number from 1 up.
Result<std::uint64_t> parse_admin_version(std::string_view query);

// The client side of the calls above. Errors: kNotFound (404), kConflict
// (409: for a verify, the copy is corrupt), kPeerFailed (any other answer),
// kUnavailable / kNoAnswer from the transport.
boost::asio::awaitable<Result<BlobPage>> list_blobs(const BaseUrl& volume, std::string_view after,
                                                    std::size_t limit);
boost::asio::awaitable<Status> send_verify(const BaseUrl& volume, std::string_view key,
                                           std::uint64_t version);
struct CopyOutcome {
  std::string etag;
  bool created = false;  // false: `to` held that version already (200)
};
boost::asio::awaitable<Result<CopyOutcome>> send_copy(const BaseUrl& to, const CopyCall& call);
boost::asio::awaitable<Status> send_marker(const BaseUrl& volume, std::string_view key,
                                           std::uint64_t version);

// Sends a commit to `master`. The answer, or:
//   kPreconditionFailed  a condition failed (412);
//   kConflict            the master refused the write (409: e.g. its upload took
//                        too long, or the version holds another write);
//   kPeerFailed          any other refusal or an answer that is not one;
//   kUnavailable         not delivered: the master certainly did not commit;
//   kNoAnswer            delivered, and no answer came or the master failed
//                        (5xx): it may or may not have committed.
boost::asio::awaitable<Result<CommitAnswer>> send_commit(const BaseUrl& master,
                                                         const CommitCall& call);

// Sends a removal to `volume`. Success when the volume removed the versions
// durably or held none (204, 404); otherwise kPeerFailed with the volume's
// answer, or kUnavailable / kNoAnswer from the transport.
boost::asio::awaitable<Status> send_removal(const BaseUrl& volume, const RemovalCall& call);

}  // namespace kalavara::internal
