// The exclusive lock of a data directory for shoal_native: lockFile(path) / unlockFile(fd).
// Split from shm.cc so each file holds one concern (segments there, the lock here).
//
// lockFile(path) takes an exclusive BSD flock on a file (a data directory's lock file), so one
// process at a time owns the directory. Why flock: the lock belongs to the open file description,
// so the kernel drops it when the process dies in any way (kill -9 included) and a stale lock
// file never needs cleaning up; and, unlike fcntl (POSIX) locks, closing some other fd on the
// same file in this process does not silently drop it. Because it is per open file description,
// a second lockFile() on the same path in the same process conflicts too.
//
// The fd stays open until unlockFile() or the process exits. O_CLOEXEC keeps it out of child
// processes (`shoal up` spawns leaves): a child holding a copy of the description would keep the
// lock alive after this process died. The holder writes its pid into the file, so a refused
// caller can say who holds it; the pid is only for the message, the flock is the lock.
//
// Errors: a lock held elsewhere is 'ELOCKED' with `holderPid` (number, or null when the file does
// not name one yet), `path` and syscall 'flock'; every other failure is a system error
// (errors.h), `lock "<path>": <strerror> (<ENAME>)`.

#include "file-lock.h"

#include <napi.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "errors.h"
#include "fd.h"

namespace shoal {

// ---- limits (each: why, and the hard ceiling) ----
// The first two are declared in file-lock.h (external linkage) because Init exports them.

// Bytes in a lock file's path. Linux's PATH_MAX is 4096 with the NUL; a longer path fails in
// open() with ENAMETOOLONG anyway, this says so before the syscall. Ceiling: 4095.
const size_t kLockPathBytesMax = 4095;

// Locks one process holds at once. A process locks its one data directory (a test a few); each
// lock keeps an fd open for the life of the process, so this bounds the fds a lockFile() in a
// loop could pin. Ceiling: RLIMIT_NOFILE.
const size_t kLockFilesMax = 64;

namespace {

// Bytes of a lock file read for the holder's pid: a pid is at most 7 digits (pid_max <= 2^22),
// plus the newline; anything longer is not a pid this addon wrote.
constexpr size_t kPidTextBytesMax = 32;

std::mutex lock_fds_mutex;
std::set<int> lock_fds;  // fds returned by lockFile() and not yet unlocked; guarded by the mutex

std::string GetPath(const Napi::CallbackInfo& info, size_t index, const char* op) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsString()) {
    ThrowType(env, std::string(op) + ": the path must be a string");
  }
  std::string path = info[index].As<Napi::String>().Utf8Value();
  if (path.empty()) ThrowValue(env, std::string(op) + ": the path is empty");
  if (path.find('\0') != std::string::npos) {
    ThrowValue(env, std::string(op) + " \"" + path + "\": the path has a NUL byte");
  }
  if (path.size() > kLockPathBytesMax) {
    ThrowValue(env, std::string(op) + ": the path is " + std::to_string(path.size()) +
                        " bytes, over the limit of " + std::to_string(kLockPathBytesMax));
  }
  return path;
}

// The pid a holder wrote: decimal digits and a newline, nothing else; otherwise unknown (the
// holder has not written it yet, or the file is not one of ours).
std::optional<int32_t> ReadHolderPid(int fd) {
  char text[kPidTextBytesMax];
  ssize_t got = -1;
  for (int eintr_count = 0; eintr_count < kEintrRetriesMax; eintr_count++) {
    got = pread(fd, text, sizeof(text), 0);
    if (got >= 0 || errno != EINTR) break;
  }
  if (got <= 1) return std::nullopt;
  int64_t pid = 0;
  ssize_t at = 0;
  for (; at < got && text[at] >= '0' && text[at] <= '9'; at++) {
    pid = pid * 10 + (text[at] - '0');
    if (pid > INT32_MAX) return std::nullopt;
  }
  if (at == 0 || at >= got || text[at] != '\n' || pid == 0) return std::nullopt;
  return static_cast<int32_t>(pid);
}

[[noreturn]] void ThrowLocked(Napi::Env env, const std::string& path,
                              std::optional<int32_t> holder_pid) {
  std::string message = "lock \"" + path + "\" is held by ";
  if (holder_pid.has_value()) {
    message += "pid " + std::to_string(*holder_pid);
    if (*holder_pid == getpid()) message += " (this process)";
  } else {
    message += "a holder whose pid the file does not name (yet)";
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, "ELOCKED"));
  error.Set("holderPid", holder_pid.has_value()
                             ? Napi::Number::New(env, *holder_pid).As<Napi::Value>()
                             : env.Null());
  error.Set("syscall", Napi::String::New(env, "flock"));
  error.Set("path", Napi::String::New(env, path));
  throw error;
}

}  // namespace

// ---- lockFile / unlockFile ----

// lockFile(path): the fd holding the lock. Creates the file (0600) if absent; a symbolic link at
// `path` is refused (ELOOP). Throws ELOCKED (holderPid) if another open file description holds
// the lock, in this process or another.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = GetPath(info, 0, "lock");
  const std::string where = "lock \"" + path + "\"";
  std::lock_guard<std::mutex> guard(lock_fds_mutex);
  if (lock_fds.size() >= kLockFilesMax) {
    ThrowRange(env, where + ": this process holds " + std::to_string(lock_fds.size()) +
                        " locks already, the limit");
  }
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) ThrowSystemAt(env, where, path, "open", errno);
  int locked = -1;
  for (int eintr_count = 0; eintr_count < kEintrRetriesMax; eintr_count++) {
    locked = flock(fd.get(), LOCK_EX | LOCK_NB);
    if (locked == 0 || errno != EINTR) break;
  }
  if (locked != 0) {
    if (errno == EWOULDBLOCK) ThrowLocked(env, path, ReadHolderPid(fd.get()));
    ThrowSystemAt(env, where, path, "flock", errno);
  }
  // Ours now. Truncate first: a reader that comes between the two calls sees an empty file (pid
  // unknown), never a mix of the old and the new pid.
  std::string pid_text = std::to_string(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) != 0) ThrowSystemAt(env, where, path, "ftruncate", errno);
  ssize_t written = -1;
  for (int eintr_count = 0; eintr_count < kEintrRetriesMax; eintr_count++) {
    written = pwrite(fd.get(), pid_text.data(), pid_text.size(), 0);
    if (written >= 0 || errno != EINTR) break;
  }
  if (written < 0) ThrowSystemAt(env, where, path, "pwrite", errno);
  if (static_cast<size_t>(written) != pid_text.size()) {
    ThrowSystemAt(env, where, path, "pwrite", EIO);
  }
  lock_fds.insert(fd.get());
  return Napi::Number::New(env, fd.release());
}

// unlockFile(fd): releases a lock from lockFile() and closes its fd. Any other fd is refused
// (ERR_INVALID_ARG_VALUE) rather than closed: closing an fd this addon does not own would pull
// it from under whoever does.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowType(env, "unlock: fd must be a number");
  double value = info[0].As<Napi::Number>().DoubleValue();
  std::lock_guard<std::mutex> guard(lock_fds_mutex);
  if (!(value >= 0 && value <= INT32_MAX && value == std::floor(value)) ||
      lock_fds.count(static_cast<int>(value)) == 0) {
    ThrowValue(env, "unlock: " + info[0].ToString().Utf8Value() +
                        " is not an fd held by lockFile()");
  }
  int fd = static_cast<int>(value);
  lock_fds.erase(fd);
  // LOCK_UN first: it releases the lock even if the description was duplicated somewhere.
  int err = flock(fd, LOCK_UN) == 0 ? 0 : errno;
  close(fd);
  if (err != 0) ThrowSystemAt(env, "unlock fd " + std::to_string(fd), "", "flock", err);
  return env.Undefined();
}

}  // namespace shoal
