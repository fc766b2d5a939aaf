// The exclusive lock of a data directory: lockFile(path) / unlockFile(fd) for JavaScript (see
// file-lock.cc for why a BSD flock and what ELOCKED carries). Not here: anything about shared
// memory segments (shm.cc).
#pragma once

#include <napi.h>

#include <cstddef>

namespace shoal {

// The lock's limits, defined and explained in file-lock.cc; Init (shm.cc) exports them.
extern const size_t kLockPathBytesMax;
extern const size_t kLockFilesMax;

/** lockFile(path) -> fd holding the lock; throws ELOCKED (holderPid) if held elsewhere. */
Napi::Value LockFile(const Napi::CallbackInfo& info);
/** unlockFile(fd): releases a lock from lockFile() and closes its fd. */
Napi::Value UnlockFile(const Napi::CallbackInfo& info);

}  // namespace shoal
