// IndexStore on etcd (v3, over its JSON gateway: master/etcd_client.hpp),
// shared by every master started with the same --etcd and --etcd-prefix.
// Keys, all under the prefix P (byte order matters, as in RocksDB's layout):
//
//   P "k/" key                                     the key's IndexRecord
//   P "q/" volume NUL be64(not_before) be32(len) key be64(up_to)
//                                                  a pending removal ("")
//   P "c/" be64(not_before) be32(len) key be64(version)
//                                                  a tombstone collection ("")
//   P "v/" volume                                  a registered volume: "" or "draining"
//   P "j/" job id                                  a maintenance job's state (JSON)
//   P "m/version-floor", P "m/absent-floor"        be64 each
//   P "x/..."                                      the masters' coordination (leases:
//                                                  master/etcd_coordination.hpp)
//
// A removal's up_to is part of its key, so queueing one never needs to read
// what is queued: the same removal queued twice with different up_to is two
// entries, which due_removals() returns as one (the higher), and clearing
// one clears those at or below its up_to — a removal queued again higher in
// the meantime stays. That is the interface's contract, with no read before
// the write. A collection's version is part of its key likewise: one queued
// twice with two versions is returned twice, each handled (and cleared) on
// its own, which decide_collection() makes harmless.
//
// apply() is one etcd transaction: the compare is the record's mod_revision
// (0 for no record), which RecordRead::revision carries from read() to
// apply(). Raising the floor of absent records compares on the floor's own
// revision too, and is retried here when only the floor moved. A
// transaction whose answer was lost is sent again (its compare makes the
// second a no-op if the first landed); when the compare then fails, the
// record is read back, and one that holds exactly what this mutation wrote
// means the first landed: applied. Every write is durable when etcd answers
// (a quorum has it in its WAL), so `durable` changes nothing here.
//
// list() reads every page at one revision: a consistent snapshot per page.
//
// Errors: etcd unreachable, or without quorum, is kUnavailable ("index
// unavailable: ..."); a corrupt record or a request etcd refused is
// kInternal. A failed write may have landed only when the error says so
// (kUnavailable after a lost answer on every member).
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/metrics.hpp"
#include "master/etcd_client.hpp"
#include "master/index_store.hpp"

namespace kalavara {

class EtcdLayout;

struct EtcdStoreSettings {
  etcd::Settings client;
  std::string prefix = "kalavara/";
};

class EtcdIndexStore final : public IndexStore {
 public:
  // Connects and reads the prefix once, so a wrong URL fails at start-up:
  // kUnavailable when no member answers.
  static boost::asio::awaitable<Result<std::unique_ptr<EtcdIndexStore>>> open(
      EtcdStoreSettings settings);
  ~EtcdIndexStore() override;

  Async<RecordRead> read(std::string_view key) override;
  Async<bool> apply(const KeyMutation& mutation) override;
  Async<KeyPage> list(std::string_view prefix, std::string_view start, std::size_t limit) override;
  Async<std::vector<PendingRemoval>> due_removals(
      std::string_view volume, std::uint64_t now, std::size_t limit,
      const std::optional<PendingRemoval>& after) override;
  Async<std::vector<PendingCollection>> due_collections(std::uint64_t now,
                                                        std::size_t limit) override;
  Async<std::vector<KeyRecord>> scan(std::string_view after, std::size_t limit) override;
  Async<std::vector<RegisteredVolume>> volumes() override;
  boost::asio::awaitable<Status> put_volume(const RegisteredVolume& volume) override;
  boost::asio::awaitable<Status> remove_volume(std::string_view url) override;
  Async<std::vector<std::string>> jobs() override;
  boost::asio::awaitable<Status> put_job(std::string_view id, std::string_view state) override;
  Async<std::uint64_t> version_floor() override;
  Async<std::uint64_t> raise_version_floor(std::uint64_t floor) override;

  // The client and prefix, for the masters' coordination (leases) that
  // lives beside the index.
  etcd::Client& client() { return client_; }
  const std::string& prefix() const { return prefix_; }

  // Writes kalavara_index_etcd_*: requests, fail-overs to another member,
  // failed calls. Thread-safe, cheap.
  void collect_metrics(metrics::Writer& out) const;

 private:
  explicit EtcdIndexStore(EtcdStoreSettings settings);
  // One transaction: true or false as apply() answers; nullopt when only
  // the floor of absent records moved (compare again).
  Async<std::optional<bool>> apply_once(const KeyMutation& mutation, bool earlier_attempt_lost);
  // A be64 number at `key` (0 when absent), and its mod_revision.
  Async<std::uint64_t> read_number(const std::string& key, std::int64_t* mod_revision);

  etcd::Client client_;
  const std::string prefix_;
  std::unique_ptr<const EtcdLayout> layout_;
};

}  // namespace kalavara
