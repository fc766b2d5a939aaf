// The trust check of an existing shared-memory segment (see segment-trust.cc for why): open it
// with O_NOFOLLOW|O_NONBLOCK and fstat the opened fd, refusing (EUNTRUSTED) anything but a
// regular file owned by geteuid() with no group or other permission bits. Used by map, mapShared,
// read, size and write (OpenTrustedSegment) and by stat (UntrustedReason, to describe, not
// refuse). Not here: the segment operations themselves (shm.cc).
#pragma once

#include <napi.h>

#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace shoal {

/** "" when the file behind `st` may be trusted, else why not (names owner and mode). */
std::string UntrustedReason(const struct stat& st);

/**
 * An existing segment, opened with `flags` to read, write or map it: refused (EUNTRUSTED, or
 * ELOOP for a symbolic link) unless trusted. Returns the fd (the caller closes it) and sets
 * *byte_size from the same fstat. `op` names the call in error messages (`shm <op> "<name>"`).
 */
int OpenTrustedSegment(Napi::Env env, const char* op, const std::string& name, int flags,
                       uint64_t* byte_size);

}  // namespace shoal
