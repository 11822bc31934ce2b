// Keys that background work has in hand: a maintenance job moving a key's
// value to new volumes (exclusive), or removals of its copies (shared:
// removals on different volumes never conflict with each other). A move
// and a removal must not interleave on a key — a removal decided before a
// move committed could reach the copy the move just made — so each holds
// the key for the length of its check-and-act. Only try-locks: nothing ever
// waits, so an io thread may use them. Thread-safe; in memory, for the one
// master that runs background work.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kalavara {

class KeyLocks {
 public:
  enum class Mode { kShared, kExclusive };

  // Takes `key` in `mode`; false when that conflicts with a holder.
  bool try_lock(std::string_view key, Mode mode) {
    std::lock_guard lock(mutex_);
    auto [it, added] = holders_.try_emplace(std::string(key), 0);
    if (mode == Mode::kExclusive) {
      if (it->second != 0) return false;
      it->second = -1;
      return true;
    }
    if (it->second < 0) return false;
    ++it->second;
    return true;
  }

  void unlock(std::string_view key) {
    std::lock_guard lock(mutex_);
    const auto it = holders_.find(std::string(key));
    if (it == holders_.end()) return;
    if (it->second > 1) {
      --it->second;
    } else {
      holders_.erase(it);
    }
  }

  // Holds a key for its lifetime, if it could be taken.
  class Held {
   public:
    Held(KeyLocks& locks, std::string key, Mode mode = Mode::kExclusive)
        : locks_(locks), key_(std::move(key)), held_(locks.try_lock(key_, mode)) {}
    ~Held() {
      if (held_) locks_.unlock(key_);
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    explicit operator bool() const { return held_; }

   private:
    KeyLocks& locks_;
    std::string key_;
    bool held_;
  };

 private:
  std::mutex mutex_;
  // Exclusive: -1; shared: how many hold it. A key nobody holds is absent.
  std::unordered_map<std::string, int> holders_;
};

}  // namespace kalavara
