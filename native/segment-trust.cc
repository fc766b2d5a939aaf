// The trust check of existing shared-memory segments for shoal_native (segment-trust.h). Split
// from shm.cc so each file holds one concern: what may be read as this process's own data here,
// the segment operations there.
//
// /dev/shm is a world-writable directory shared with every program on the machine, and shm_open
// refuses nothing that sits there under the right name. Before this process reads a segment's
// bytes as its own data (a handoff it restores, blocks it scans), the segment must be one only
// this user could have written: a regular file, owned by geteuid(), with no group or other
// permission bits. (No ACL can grant more: with an ACL the group bits are its mask, and a mask
// of 0 disables every named entry.) The check is an fstat of the very fd that is then read or
// mapped, so nothing can be swapped in between (no TOCTOU), and the open uses O_NOFOLLOW, so a
// symbolic link planted under the name fails with ELOOP instead of leading elsewhere (glibc and
// musl add O_NOFOLLOW inside shm_open too; it is explicit here so the check does not rest on it).
// O_NONBLOCK keeps a FIFO planted under the name from blocking open() forever; on a regular file
// it changes nothing.
//
// A refusal is 'EUNTRUSTED' with `path` (the name), `uid` (owner) and `mode` (permission bits):
// `shm map "/shoal-x": not trusted: owner uid 1000 (this process runs as 0), mode 0666 (...)`.

#include "segment-trust.h"

#include <napi.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

#include "errors.h"

namespace shoal {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "an unknown file type";
}

std::string OctalMode(mode_t permission_bits) {
  char text[16];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(permission_bits));
  return text;
}

[[noreturn]] void ThrowUntrusted(Napi::Env env, const char* op, const std::string& name,
                                 const struct stat& st, const std::string& reason) {
  Napi::Error error = Napi::Error::New(
      env, std::string("shm ") + op + " \"" + name + "\": not trusted: " + reason);
  error.Set("code", Napi::String::New(env, "EUNTRUSTED"));
  error.Set("path", Napi::String::New(env, name));
  error.Set("uid", Napi::Number::New(env, static_cast<double>(st.st_uid)));
  error.Set("mode", Napi::Number::New(env, static_cast<double>(st.st_mode & 07777)));
  throw error;
}

}  // namespace

// Returns "" when the segment behind `st` may be trusted, else why not. The reason always names
// the owner and the mode, and says which of them (or the file type) is wrong:
// `owner uid 1000 (this process runs as 0), mode 0666 (readable or writable by group or others)`.
std::string UntrustedReason(const struct stat& st) {
  uid_t euid = geteuid();
  mode_t permission_bits = st.st_mode & 07777;
  bool regular = S_ISREG(st.st_mode);
  bool owner_ok = st.st_uid == euid;
  bool mode_ok = (permission_bits & 077) == 0;
  if (regular && owner_ok && mode_ok) return "";
  std::string reason;
  if (!regular) reason += std::string(FileKind(st.st_mode)) + ", not a regular file, ";
  reason += "owner uid " + std::to_string(st.st_uid);
  if (!owner_ok) reason += " (this process runs as " + std::to_string(euid) + ")";
  reason += ", mode " + OctalMode(permission_bits);
  if ((permission_bits & 066) != 0) {
    reason += " (readable or writable by group or others)";
  } else if (!mode_ok) {
    reason += " (executable by group or others)";
  }
  return reason;
}

// An existing segment, opened to read, write or map it: refused unless trusted (see above).
// Returns the fd and sets *byte_size from the same fstat.
int OpenTrustedSegment(Napi::Env env, const char* op, const std::string& name, int flags,
                       uint64_t* byte_size) {
  int fd = shm_open(name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK, 0);
  if (fd < 0) ThrowSystem(env, op, name, "shm_open", errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    ThrowSystem(env, op, name, "fstat", err);
  }
  std::string reason = UntrustedReason(st);
  if (!reason.empty()) {
    close(fd);
    ThrowUntrusted(env, op, name, st, reason);
  }
  *byte_size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace shoal
