// An LD_PRELOAD shim that makes a daemon's file I/O fail (EIO) or slow on
// demand, for the fault suite (docs/reliability.md). It wraps write, pwrite,
// fsync, fdatasync, open, openat, renameat2, link and pread, and touches only
// files under KALAVARA_IO_FAULTS_PREFIX (the data folder): logs and sockets
// are left alone.
//
// KALAVARA_IO_FAULTS names a control file, re-read whenever it changes
// (replace it by a rename, so that every change is a new inode), one rule
// per line:
//   <call> off
//   <call> always           every call fails
//   <call> once <tag>       the next call fails; a new <tag> arms it again
//   <call> every <n>        every n-th call fails
//   <call> random <percent> calls fail at random
//   <call> delay <ms>       every call waits first, then runs
// where <call> is write (also pwrite), fsync (also fdatasync), open (also
// openat), rename (renameat2 and link), or read (pread). Each injected
// failure appends "<call> <path>" to the control file's name + ".log", so a
// test knows which operation it hit.
//
// Test code only: never part of the daemons.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <string>

namespace {

enum Call { kWrite, kFsync, kOpen, kRename, kRead, kCalls };
constexpr const char* kCallNames[kCalls] = {"write", "fsync", "open", "rename", "read"};

enum class Mode { kOff, kAlways, kOnce, kEvery, kRandom, kDelay };

struct Rule {
  Mode mode = Mode::kOff;
  long arg = 0;
  std::string tag;     // kOnce: the tag last armed
  bool armed = false;  // kOnce: the next call fails
  unsigned long calls = 0;
};

struct State {
  std::mutex mutex;
  bool loaded = false;
  const char* control = nullptr;
  std::string prefix;
  timespec mtime{};
  off_t size = -1;
  ino_t inode = 0;
  Rule rules[kCalls];
  std::string seen_tags[kCalls];
  std::mt19937 random{12345};
};

State& state() {
  static State s;
  return s;
}

// The control file's text, read with raw syscalls (the wrappers are ours).
std::string read_control(const char* path) {
  std::string text;
  const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return text;
  char buffer[4096];
  for (;;) {
    const long n = ::syscall(SYS_read, fd, buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::syscall(SYS_close, fd);
  return text;
}

void reload(State& s) {
  if (!s.loaded) {
    s.loaded = true;
    s.control = std::getenv("KALAVARA_IO_FAULTS");
    if (const char* prefix = std::getenv("KALAVARA_IO_FAULTS_PREFIX")) s.prefix = prefix;
  }
  if (s.control == nullptr) return;
  struct stat st {};
  if (::syscall(SYS_newfstatat, AT_FDCWD, s.control, &st, 0) != 0) return;
  if (st.st_mtim.tv_sec == s.mtime.tv_sec && st.st_mtim.tv_nsec == s.mtime.tv_nsec &&
      st.st_size == s.size && st.st_ino == s.inode) {
    return;
  }
  s.mtime = st.st_mtim;
  s.size = st.st_size;
  s.inode = st.st_ino;
  for (auto& rule : s.rules) rule.mode = Mode::kOff;
  const std::string text = read_control(s.control);
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    char call[32] = {};
    char mode[32] = {};
    char arg[64] = {};
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (std::sscanf(line.c_str(), "%31s %31s %63s", call, mode, arg) < 2) continue;
    for (int c = 0; c < kCalls; ++c) {
      if (std::strcmp(call, kCallNames[c]) != 0) continue;
      Rule& rule = s.rules[c];
      rule.arg = std::atol(arg);
      rule.calls = 0;
      if (std::strcmp(mode, "always") == 0) {
        rule.mode = Mode::kAlways;
      } else if (std::strcmp(mode, "once") == 0) {
        rule.mode = Mode::kOnce;
        if (s.seen_tags[c] != arg) {
          s.seen_tags[c] = arg;
          rule.armed = true;
        }
      } else if (std::strcmp(mode, "every") == 0 && rule.arg > 0) {
        rule.mode = Mode::kEvery;
      } else if (std::strcmp(mode, "random") == 0) {
        rule.mode = Mode::kRandom;
      } else if (std::strcmp(mode, "delay") == 0) {
        rule.mode = Mode::kDelay;
      }
    }
  }
}

std::string fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[4096];
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return {};
  return std::string(target, static_cast<std::size_t>(n));
}

void log_failure(const State& s, Call call, const std::string& path) {
  const std::string log = std::string(s.control) + ".log";
  const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, log.c_str(),
                                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd < 0) return;
  const std::string line = std::string(kCallNames[call]) + " " + path + "\n";
  ::syscall(SYS_write, fd, line.data(), line.size());
  ::syscall(SYS_close, fd);
}

// Whether this call on `path` is to fail (errno is then set); waits first
// under a delay rule.
bool inject(Call call, const std::string& path) {
  State& s = state();
  long delay_ms = 0;
  {
    std::lock_guard lock(s.mutex);
    reload(s);
    if (s.control == nullptr || path.empty()) return false;
    if (!s.prefix.empty() && path.compare(0, s.prefix.size(), s.prefix) != 0) return false;
    Rule& rule = s.rules[call];
    bool fail = false;
    switch (rule.mode) {
      case Mode::kOff:
        break;
      case Mode::kAlways:
        fail = true;
        break;
      case Mode::kOnce:
        fail = rule.armed;
        rule.armed = false;
        break;
      case Mode::kEvery:
        fail = ++rule.calls % static_cast<unsigned long>(rule.arg) == 0;
        break;
      case Mode::kRandom:
        fail = static_cast<long>(s.random() % 100) < rule.arg;
        break;
      case Mode::kDelay:
        delay_ms = rule.arg;
        break;
    }
    if (fail) {
      log_failure(s, call, path);
      errno = EIO;
      return true;
    }
  }
  if (delay_ms > 0) {
    const timespec pause{delay_ms / 1000, (delay_ms % 1000) * 1000000};
    ::nanosleep(&pause, nullptr);
  }
  return false;
}

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

std::string absolute(int dirfd, const char* path) {
  if (path == nullptr) return {};
  if (path[0] == '/') return path;
  if (dirfd == AT_FDCWD) {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
    return std::string(cwd) + "/" + path;
  }
  return fd_path(dirfd) + "/" + path;
}

}  // namespace

// Reads the mode argument of open and openat into `mode`: there only when
// the flags create a file. A macro, as va_start must be in the function.
#define KALAVARA_OPEN_MODE(flags, mode)                               \
  do {                                                                \
    if (((flags)&O_CREAT) != 0 || ((flags)&O_TMPFILE) == O_TMPFILE) { \
      va_list args;                                                   \
      va_start(args, flags);                                          \
      (mode) = static_cast<mode_t>(va_arg(args, int));                \
      va_end(args);                                                   \
    }                                                                 \
  } while (false)

extern "C" {

ssize_t write(int fd, const void* buffer, size_t count) {
  static auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  if (fd > 2 && inject(kWrite, fd_path(fd))) return -1;
  return next(fd, buffer, count);
}

ssize_t pwrite(int fd, const void* buffer, size_t count, off_t offset) {
  static auto next = real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  if (inject(kWrite, fd_path(fd))) return -1;
  return next(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void* buffer, size_t count, off_t offset) {
  return pwrite(fd, buffer, count, offset);
}

int fsync(int fd) {
  static auto next = real<int (*)(int)>("fsync");
  if (inject(kFsync, fd_path(fd))) return -1;
  return next(fd);
}

int fdatasync(int fd) {
  static auto next = real<int (*)(int)>("fdatasync");
  if (inject(kFsync, fd_path(fd))) return -1;
  return next(fd);
}

ssize_t pread(int fd, void* buffer, size_t count, off_t offset) {
  static auto next = real<ssize_t (*)(int, void*, size_t, off_t)>("pread");
  if (inject(kRead, fd_path(fd))) return -1;
  return next(fd, buffer, count, offset);
}

ssize_t pread64(int fd, void* buffer, size_t count, off_t offset) {
  return pread(fd, buffer, count, offset);
}

int open(const char* path, int flags, ...) {
  static auto next = real<int (*)(const char*, int, ...)>("open");
  mode_t mode = 0;
  KALAVARA_OPEN_MODE(flags, mode);
  if (inject(kOpen, absolute(AT_FDCWD, path))) return -1;
  return next(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  KALAVARA_OPEN_MODE(flags, mode);
  return open(path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  static auto next = real<int (*)(int, const char*, int, ...)>("openat");
  mode_t mode = 0;
  KALAVARA_OPEN_MODE(flags, mode);
  if (inject(kOpen, absolute(dirfd, path))) return -1;
  return next(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  KALAVARA_OPEN_MODE(flags, mode);
  return openat(dirfd, path, flags, mode);
}

int renameat2(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
              unsigned int flags) {
  static auto next = real<int (*)(int, const char*, int, const char*, unsigned)>("renameat2");
  if (inject(kRename, absolute(newdirfd, newpath))) return -1;
  return next(olddirfd, oldpath, newdirfd, newpath, flags);
}

int link(const char* oldpath, const char* newpath) {
  static auto next = real<int (*)(const char*, const char*)>("link");
  if (inject(kRename, absolute(AT_FDCWD, newpath))) return -1;
  return next(oldpath, newpath);
}

}  // extern "C"
