// Keys that one piece of background work has in hand: a maintenance job
// copying a key's value to new volumes, or the removal of one of its copies.
// The two must not interleave on a key — a removal decided before a move
// committed could reach the copy the move just made — so each takes the
// key for the length of its check-and-act. Only try_lock: nothing ever
// waits, so an io thread may use it. Thread-safe; in memory, for the one
// master that runs background work.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace kalavara {

class KeyLocks {
 public:
  // Takes `key`; false when someone has it.
  bool try_lock(std::string_view key) {
    std::lock_guard lock(mutex_);
    return keys_.emplace(key).second;
  }

  void unlock(std::string_view key) {
    std::lock_guard lock(mutex_);
    keys_.erase(std::string(key));
  }

  // Holds a key for its lifetime, if it could be taken.
  class Held {
   public:
    Held(KeyLocks& locks, std::string key)
        : locks_(locks), key_(std::move(key)), held_(locks.try_lock(key_)) {}
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
  std::unordered_set<std::string> keys_;
};

}  // namespace kalavara
