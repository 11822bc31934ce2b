// Which master runs the background work — maintenance jobs, the retries of
// queued removals, tombstone collection — when several share one index:
// exactly one at a time, the holder of an etcd lease (see
// master/etcd_coordination.hpp). A master alone always leads.
//
// Handing over is not instant: a leader that cannot renew its lease stops
// leading well before the lease can expire, and background work checks
// leading() before each step, so two masters never run it at once unless a
// process stalls for longer than that margin (docs/scaling.md).
#pragma once

namespace kalavara {

class Leadership {
 public:
  virtual ~Leadership() = default;
  // Whether this master runs the background work now. Thread-safe, cheap.
  virtual bool leading() const = 0;
  // Whether other masters share the index (the etcd index): background
  // state other masters write must then be read back from the store.
  virtual bool shared() const = 0;
};

// The one master of an embedded index.
class SoleMaster final : public Leadership {
 public:
  bool leading() const override { return true; }
  bool shared() const override { return false; }
};

// One SoleMaster for defaults: stateless, so shared freely.
inline const Leadership& sole_master() {
  static const SoleMaster instance;
  return instance;
}

}  // namespace kalavara
