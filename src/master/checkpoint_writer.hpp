// What a backup asks of an index store: a consistent copy of the whole index
// in a new folder. Apart from IndexStore because it is no part of the key
// protocol and not every engine has it in this form (the RocksDB store
// writes a checkpoint; an etcd store would save a snapshot into the folder).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.hpp"

namespace kalavara {

class CheckpointWriter {
 public:
  virtual ~CheckpointWriter() = default;

  // Writes a point-in-time copy of the index into `directory` (an absolute
  // path that must not exist; its parent must): every write acknowledged
  // before the call began is in it, and nothing that came after a write it
  // lacks. The folder, once the call returned, is what the store's restore
  // procedure takes (for RocksDB: a master started on it as its index). On
  // failure the folder is removed or left incomplete: whoever called must
  // not treat it as a copy. Returns a number that orders copies (RocksDB: a
  // sequence number the copy holds). Fails with kNoSpace when the disk
  // filled, kInternal otherwise. Blocking (on the disk, or the network):
  // call it on a blocking pool. Thread-safe, also against every other call
  // on the store, which go on meanwhile.
  virtual Result<std::uint64_t> write_checkpoint(const std::string& directory) = 0;
};

}  // namespace kalavara
