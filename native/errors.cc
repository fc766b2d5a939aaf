// The errors shoal_native throws (see errors.h): one copy for all its translation units.

#include "errors.h"

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace shoal {

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case EOVERFLOW: return "EOVERFLOW";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ELOOP: return "ELOOP";
    case ENXIO: return "ENXIO";
    case ENOLCK: return "ENOLCK";
    case EDQUOT: return "EDQUOT";
    default: return "EUNKNOWN";
  }
}

// Throws `<where>: <strerror> (<ENAME>)` with code/errno/syscall/path set.
[[noreturn]] void ThrowSystemAt(Napi::Env env, const std::string& where, const std::string& path,
                                const char* syscall, int err) {
  std::string message = where + ": " + std::strerror(err) + " (" + ErrnoName(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("path", Napi::String::New(env, path));
  throw error;
}

// Throws `shm <op> "<name>": <strerror> (<ENAME>)` with code/errno/syscall/path set.
[[noreturn]] void ThrowSystem(Napi::Env env, const char* op, const std::string& name,
                              const char* syscall, int err) {
  ThrowSystemAt(env, std::string("shm ") + op + " \"" + name + "\"", name, syscall, err);
}

namespace {

[[noreturn]] void ThrowArg(Napi::Env env, const char* code, const std::string& message,
                           bool range) {
  Napi::Error error = range ? static_cast<Napi::Error>(Napi::RangeError::New(env, message))
                            : static_cast<Napi::Error>(Napi::TypeError::New(env, message));
  error.Set("code", Napi::String::New(env, code));
  throw error;
}

}  // namespace

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  ThrowArg(env, "ERR_INVALID_ARG_TYPE", message, false);
}
[[noreturn]] void ThrowValue(Napi::Env env, const std::string& message) {
  ThrowArg(env, "ERR_INVALID_ARG_VALUE", message, false);
}
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  ThrowArg(env, "ERR_OUT_OF_RANGE", message, true);
}

}  // namespace shoal
