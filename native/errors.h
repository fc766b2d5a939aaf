// The errors shoal_native throws, shared by its translation units (shm.cc, segment-trust.cc,
// file-lock.cc). Operating errors (a syscall failed) are Error objects with Node's system-error
// fields: message `shm create "/shoal-x": File exists (EEXIST)`, code 'EEXIST', errno 17,
// syscall 'shm_open', path '/shoal-x'. Bad arguments are TypeError / RangeError with code
// 'ERR_INVALID_ARG_TYPE' / 'ERR_INVALID_ARG_VALUE' / 'ERR_OUT_OF_RANGE', like Node's own.
// Not here: the two errors that are not an errno, EUNTRUSTED (segment-trust.cc) and ELOCKED
// (file-lock.cc), each next to the check that raises it.
#pragma once

#include <napi.h>

#include <string>

namespace shoal {

/** The errno's symbolic name ("EEXIST"), or "EUNKNOWN" for one not listed. */
const char* ErrnoName(int err);

/** Throws `<where>: <strerror> (<ENAME>)` with code/errno/syscall/path set. */
[[noreturn]] void ThrowSystemAt(Napi::Env env, const std::string& where, const std::string& path,
                                const char* syscall, int err);

/** Throws `shm <op> "<name>": <strerror> (<ENAME>)` with code/errno/syscall/path set. */
[[noreturn]] void ThrowSystem(Napi::Env env, const char* op, const std::string& name,
                              const char* syscall, int err);

/** TypeError, code ERR_INVALID_ARG_TYPE. */
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
/** TypeError, code ERR_INVALID_ARG_VALUE. */
[[noreturn]] void ThrowValue(Napi::Env env, const std::string& message);
/** RangeError, code ERR_OUT_OF_RANGE. */
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

}  // namespace shoal
