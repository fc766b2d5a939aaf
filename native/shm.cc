// shoal_native: the POSIX shared-memory primitives behind a leaf's planned-restart handoff
// (DESIGN.md "Durability and restart"), the JS side of the CRC-32C in crc32c.cc, a memcpy
// baseline for benchmarks, and the module Init that registers every export of the addon.
// Elsewhere: the data-directory lock (file-lock.cc), the trust check of an existing segment
// (segment-trust.cc), the errors every file throws (errors.cc), the owning Fd (fd.h).
//
// What this is: a handful of synchronous syscalls wrapped with argument validation, bounds checks
// and errors that name the segment and the errno. What it is not: it knows nothing of tables,
// blocks, headers, layouts or data directories; that lives in TypeScript (server/).
// native/shm.ts is the typed wrapper; nothing else should load this addon directly.
//
// Errors (errors.h). Operating errors (a syscall failed) are Error objects with Node's
// system-error fields:
//   message `shm create "/shoal-x": File exists (EEXIST)`, code 'EEXIST', errno 17,
//   syscall 'shm_open', path '/shoal-x'.
// Two operating errors are not an errno: a segment this process must not trust ('EUNTRUSTED',
// with `uid` and `mode`; see segment-trust.cc) and a lock held elsewhere ('ELOCKED', with
// `holderPid`; see file-lock.cc).
// Bad arguments (wrong type, a bad name, a range outside the segment) are TypeError / RangeError
// with code 'ERR_INVALID_ARG_TYPE' / 'ERR_INVALID_ARG_VALUE' / 'ERR_OUT_OF_RANGE', like Node's own.
//
// Everything runs on the calling JS thread: a 1 GiB pwrite takes ~0.4 s (native/README.md).

#include <napi.h>
#include "crc32c.h"
#include "errors.h"
#include "fd.h"
#include "file-lock.h"
#include "segment-trust.h"
// V8's own API, for the one thing N-API cannot do: a SharedArrayBuffer over external memory
// (mapShared below). The addon is built against the running Node's headers at install time.
#include <v8.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

// The helpers this file shares with the others (one copy each, in namespace shoal).
using shoal::Fd;
using shoal::kEintrRetriesMax;
using shoal::OpenTrustedSegment;
using shoal::ThrowRange;
using shoal::ThrowSystem;
using shoal::ThrowType;
using shoal::ThrowValue;
using shoal::UntrustedReason;

// ---- limits (each: why, and the hard ceiling) ----
//
// The lock's limits are in file-lock.cc, the EINTR retry bound in fd.h.

// Bytes in a segment name, leading '/' included. POSIX leaves the name's length to NAME_MAX (255
// on Linux, where the name becomes a file in /dev/shm); 200 leaves room for a suffix a caller may
// add (".tmp") and catches names built from unbounded input. Ceiling: 255.
constexpr size_t kNameBytesMax = 200;

// Bytes in one segment. Catches a mistaken size (a bit count, a negative number) before
// ftruncate; a leaf hands off one column or block per segment, far below this. The real ceiling
// is the tmpfs behind /dev/shm (by default half of RAM) and Number.MAX_SAFE_INTEGER.
constexpr uint64_t kSegmentBytesMax = uint64_t{1} << 40;  // 1 TiB

// Names returned by one list() call. /dev/shm is shared with every other program on the machine;
// this bounds the array built for a stale-segment sweep. A caller that gets exactly this many
// unlinks them and lists again. Ceiling: the tmpfs inode count.
constexpr size_t kListNamesMax = 65536;

// Copies in one memcpyBench() call: it blocks the JS thread; 10^4 copies of 1 MiB is ~1 s.
constexpr uint64_t kBenchRepeatsMax = 10000;

// Bytes copied by one memcpyBench() call: it allocates two buffers of this size.
constexpr uint64_t kBenchBytesMax = uint64_t{8} << 30;  // 8 GiB

// pread/pwrite move at most this much per call (Linux moves at most 0x7ffff000 bytes anyway).
constexpr size_t kIoChunkBytesMax = size_t{1} << 30;

constexpr double kSafeIntegerMax = 9007199254740991.0;  // 2^53 - 1

// Where glibc keeps POSIX segments on Linux (list() and stat() read it directly).
constexpr const char* kShmDirectory = "/dev/shm";

// ---- arguments ----

// Segment names: '/' then 1..199 of [A-Za-z0-9._-], not "." or "..". POSIX only requires the
// leading '/' and no other; the narrow alphabet keeps names safe as /dev/shm file names, in logs
// and in shell commands, and matches shoal's table-name alphabet.
bool NameCharOk(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Returns "" when `name` is valid, else the reason. A prefix (for list) may be just "/".
std::string NameProblem(const std::string& name, bool is_prefix) {
  if (name.empty() || name[0] != '/') return "must start with '/'";
  if (name.size() > kNameBytesMax) {
    return "is " + std::to_string(name.size()) + " bytes, over the limit of " +
           std::to_string(kNameBytesMax);
  }
  if (!is_prefix && name.size() == 1) return "is empty after the '/'";
  for (size_t i = 1; i < name.size(); i++) {
    if (name[i] == '/') return "has a '/' after the first character";
    if (!NameCharOk(name[i])) {
      return "has a character outside [A-Za-z0-9._-] at byte " + std::to_string(i);
    }
  }
  if (!is_prefix && (name == "/." || name == "/..")) return "is '.' or '..'";
  return "";
}

std::string GetName(const Napi::CallbackInfo& info, size_t index, const char* op,
                    bool is_prefix = false) {
  Napi::Env env = info.Env();
  const char* what = is_prefix ? "prefix" : "name";
  if (index >= info.Length() || !info[index].IsString()) {
    ThrowType(env, std::string("shm ") + op + ": the segment " + what + " must be a string");
  }
  std::string name = info[index].As<Napi::String>().Utf8Value();
  std::string problem = NameProblem(name, is_prefix);
  if (!problem.empty()) {
    ThrowValue(env, std::string("shm ") + op + " \"" + name + "\": the segment " + what + " " +
                        problem);
  }
  return name;
}

// A non-negative safe integer no larger than `max`.
uint64_t GetCount(const Napi::CallbackInfo& info, size_t index, const char* op,
                  const std::string& name, const char* what, uint64_t max) {
  Napi::Env env = info.Env();
  std::string where = std::string("shm ") + op + (name.empty() ? "" : " \"" + name + "\"");
  if (index >= info.Length() || !info[index].IsNumber()) {
    ThrowType(env, where + ": " + what + " must be a number");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value) || value != std::floor(value) || value < 0 || value > kSafeIntegerMax) {
    ThrowRange(env, where + ": " + what + " must be a non-negative integer, got " +
                        info[index].ToString().Utf8Value());
  }
  if (value > static_cast<double>(max)) {
    ThrowRange(env, where + ": " + what + " " + info[index].ToString().Utf8Value() +
                        " is over the limit of " + std::to_string(max));
  }
  return static_cast<uint64_t>(value);
}

struct Bytes {
  uint8_t* data;
  size_t byte_length;
};

// Any ArrayBufferView (Buffer, Uint8Array, Float64Array, DataView, ...) or an ArrayBuffer.
// Uses the C API so views over a SharedArrayBuffer work too.
Bytes GetBytes(const Napi::CallbackInfo& info, size_t index, const char* op,
               const std::string& name, const char* what) {
  Napi::Env env = info.Env();
  napi_value value = index < info.Length() ? static_cast<napi_value>(info[index]) : nullptr;
  void* data = nullptr;
  size_t byte_length = 0;
  if (value != nullptr && info[index].IsTypedArray()) {
    napi_typedarray_type type;
    size_t element_count = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &element_count, &data,
                                                       nullptr, nullptr),
                         Bytes{});
    byte_length = info[index].As<Napi::TypedArray>().ByteLength();
  } else if (value != nullptr && info[index].IsDataView()) {
    NAPI_THROW_IF_FAILED(
        env, napi_get_dataview_info(env, value, &byte_length, &data, nullptr, nullptr), Bytes{});
  } else if (value != nullptr && info[index].IsArrayBuffer()) {
    NAPI_THROW_IF_FAILED(env, napi_get_arraybuffer_info(env, value, &data, &byte_length),
                         Bytes{});
  } else {
    std::string where = std::string("shm ") + op + (name.empty() ? "" : " \"" + name + "\"");
    ThrowType(env, where + ": " + what + " must be a TypedArray, DataView or ArrayBuffer");
  }
  return Bytes{static_cast<uint8_t*>(data), byte_length};
}

// ---- opening and bounds (the trust check of an existing segment is in segment-trust.cc) ----

// A new segment: O_CREAT|O_EXCL, so it is always a fresh file owned by this process.
int CreateSegment(Napi::Env env, const std::string& name) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) ThrowSystem(env, "create", name, "shm_open", errno);
  return fd;
}

void CheckRange(Napi::Env env, const char* op, const std::string& name, uint64_t offset,
                uint64_t byte_length, uint64_t segment_size) {
  if (offset > segment_size || byte_length > segment_size - offset) {
    ThrowRange(env, std::string("shm ") + op + " \"" + name + "\": offset " +
                        std::to_string(offset) + " + length " + std::to_string(byte_length) +
                        " exceeds the segment size " + std::to_string(segment_size));
  }
}

// ---- create / write / read / size / exists / unlink / list ----

// create(name, byteSize, reserve): a new segment, zero-filled, mode 0600. Fails with EEXIST if
// the name is taken (callers unlink stale segments first: a segment must never be reused by
// accident). reserve=true allocates the pages now (posix_fallocate), so a full /dev/shm fails
// here with ENOSPC instead of later, with SIGBUS, on a write through a writable mapping.
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "create");
  uint64_t byte_size = GetCount(info, 1, "create", name, "byteSize", kSegmentBytesMax);
  bool reserve = info.Length() > 2 && info[2].ToBoolean().Value();
  Fd fd(CreateSegment(env, name));
  // From here on the segment exists: remove it again if it cannot be sized, so a failed create
  // leaves nothing behind.
  int err = 0;
  const char* syscall = nullptr;
  // The umask can only narrow 0600 (e.g. to 0400, which a later write() could not open) and a
  // default ACL on /dev/shm could widen it: pin the mode the trust check expects.
  if (fchmod(fd.get(), 0600) != 0) {
    err = errno;
    syscall = "fchmod";
  } else if (ftruncate(fd.get(), static_cast<off_t>(byte_size)) != 0) {
    err = errno;
    syscall = "ftruncate";
  } else if (reserve && byte_size > 0) {
    err = posix_fallocate(fd.get(), 0, static_cast<off_t>(byte_size));  // returns the error
    syscall = "posix_fallocate";
  }
  if (err != 0) {
    shm_unlink(name.c_str());
    ThrowSystem(env, "create", name, syscall, err);
  }
  return env.Undefined();
}

// write(name, offset, bytes): pwrite all of `bytes` at `offset`; the range must lie inside the
// segment (a write never grows it). Refuses an untrusted segment: writing into another user's
// segment would hand it data of this process.
Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "write");
  uint64_t offset = GetCount(info, 1, "write", name, "offset", kSegmentBytesMax);
  Bytes bytes = GetBytes(info, 2, "write", name, "bytes");
  uint64_t segment_size = 0;
  Fd fd(OpenTrustedSegment(env, "write", name, O_RDWR, &segment_size));
  CheckRange(env, "write", name, offset, bytes.byte_length, segment_size);
  size_t done = 0;
  int eintr_count = 0;
  while (done < bytes.byte_length) {
    size_t chunk = std::min(bytes.byte_length - done, kIoChunkBytesMax);
    ssize_t moved = pwrite(fd.get(), bytes.data + done, chunk, static_cast<off_t>(offset + done));
    if (moved < 0) {
      if (errno == EINTR && ++eintr_count < kEintrRetriesMax) continue;
      ThrowSystem(env, "write", name, "pwrite", errno);
    }
    if (moved == 0) ThrowSystem(env, "write", name, "pwrite", EIO);
    done += static_cast<size_t>(moved);
  }
  return env.Undefined();
}

// read(name, offset, target): pread target.byteLength bytes from `offset` into `target` (the copy
// path, into memory the JS heap owns). Returns the byte count.
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "read");
  uint64_t offset = GetCount(info, 1, "read", name, "offset", kSegmentBytesMax);
  Bytes target = GetBytes(info, 2, "read", name, "target");
  uint64_t segment_size = 0;
  Fd fd(OpenTrustedSegment(env, "read", name, O_RDONLY, &segment_size));
  CheckRange(env, "read", name, offset, target.byte_length, segment_size);
  size_t done = 0;
  int eintr_count = 0;
  while (done < target.byte_length) {
    size_t chunk = std::min(target.byte_length - done, kIoChunkBytesMax);
    ssize_t moved = pread(fd.get(), target.data + done, chunk, static_cast<off_t>(offset + done));
    if (moved < 0) {
      if (errno == EINTR && ++eintr_count < kEintrRetriesMax) continue;
      ThrowSystem(env, "read", name, "pread", errno);
    }
    // 0 means end of file: someone truncated the segment since fstat. Never return short.
    if (moved == 0) ThrowSystem(env, "read", name, "pread", EIO);
    done += static_cast<size_t>(moved);
  }
  return Napi::Number::New(env, static_cast<double>(done));
}

// size(name): the size of a trusted segment (a size is read to decide what to map).
Napi::Value Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "size");
  uint64_t segment_size = 0;
  Fd fd(OpenTrustedSegment(env, "size", name, O_RDONLY, &segment_size));
  return Napi::Number::New(env, static_cast<double>(segment_size));
}

// stat(name): size, owner, permission bits, mtime and the trust verdict of a segment, for a
// listing tool: unlike the calls above it never refuses an untrusted segment, it describes it.
// Opens /dev/shm/<name> with O_PATH|O_NOFOLLOW: no read permission is needed (another user's
// 0600 segment is described, not EACCES), a FIFO cannot block, and a symbolic link is described
// as itself instead of followed.
Napi::Value Stat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "stat");
  std::string path = std::string(kShmDirectory) + name;
  Fd fd(open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) ThrowSystem(env, "stat", name, "open", errno);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) ThrowSystem(env, "stat", name, "fstat", errno);
  std::string reason = UntrustedReason(st);
  Napi::Object result = Napi::Object::New(env);
  result.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  result.Set("uid", Napi::Number::New(env, static_cast<double>(st.st_uid)));
  result.Set("mode", Napi::Number::New(env, static_cast<double>(st.st_mode & 07777)));
  result.Set("mtimeMs", Napi::Number::New(env, static_cast<double>(st.st_mtim.tv_sec) * 1e3 +
                                                   static_cast<double>(st.st_mtim.tv_nsec) / 1e6));
  result.Set("trusted", Napi::Boolean::New(env, reason.empty()));
  result.Set("untrustedReason",
             reason.empty() ? env.Null() : Napi::String::New(env, reason).As<Napi::Value>());
  return result;
}

// exists(name): no trust check (it reads nothing); O_NONBLOCK so a FIFO cannot block it.
Napi::Value Exists(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "exists");
  int fd = shm_open(name.c_str(), O_RDONLY | O_NONBLOCK, 0);
  if (fd >= 0) {
    close(fd);
    return Napi::Boolean::New(env, true);
  }
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowSystem(env, "exists", name, "shm_open", errno);
}

// unlink(name): true if removed, false if there was no such segment. Mappings made before stay
// valid; the memory is freed when the last of them is unmapped.
Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "unlink");
  if (shm_unlink(name.c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowSystem(env, "unlink", name, "shm_unlink", errno);
}

// list(prefix): names ("/shoal-...") of the segments whose name starts with `prefix`, sorted, at
// most kListNamesMax. Linux only: it reads /dev/shm, where glibc keeps POSIX segments.
Napi::Value List(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string prefix = GetName(info, 0, "list", /*is_prefix=*/true);
  const char* dir_path = kShmDirectory;
  DIR* dir = opendir(dir_path);
  if (dir == nullptr) ThrowSystem(env, "list", dir_path, "opendir", errno);
  std::vector<std::string> names;
  const std::string bare_prefix = prefix.substr(1);
  errno = 0;
  while (names.size() < kListNamesMax) {
    struct dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) continue;
    std::string name = std::string("/") + entry->d_name;
    if (name.compare(1, bare_prefix.size(), bare_prefix) != 0) continue;
    if (!NameProblem(name, false).empty()) continue;  // not a name this addon could open
    names.push_back(std::move(name));
  }
  int err = errno;
  closedir(dir);
  if (err != 0) ThrowSystem(env, "list", dir_path, "readdir", err);
  std::sort(names.begin(), names.end());
  Napi::Array result = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) result.Set(i, Napi::String::New(env, names[i]));
  return result;
}

// ---- map ----

struct Mapping {
  void* address;
  size_t byte_length;
};

void Unmap(Napi::Env, void*, Mapping* mapping) {
  munmap(mapping->address, mapping->byte_length);
  delete mapping;
}

// map(name, writable, populate): the whole segment as an external ArrayBuffer, zero-copy; the
// mapping is released (munmap) when the ArrayBuffer is garbage-collected. Refuses an untrusted
// segment (see "trust"); the fd checked is the fd mapped.
//
// Why MAP_PRIVATE by default: V8 assumes every ArrayBuffer is writable, so an ArrayBuffer over a
// PROT_READ mapping turns any stray JS write into a SIGSEGV that kills the process. A private
// (copy-on-write) mapping is writable yet never changes the segment: reads share the segment's
// pages (zero-copy, no extra memory), and a write copies only the page it touches into memory of
// this process. So a restored leaf can never corrupt the segment a later restart would read, and
// a bug cannot crash it. Caveat: on Linux, pages this process has not written still show later
// changes made to the segment by others (POSIX leaves that unspecified); the handoff never
// writes a segment after publishing it, so this does not matter there.
//
// writable=true: MAP_SHARED, PROT_READ|PROT_WRITE. Writes go to the segment and are seen by every
// other mapping and by read(). On a segment created without `reserve`, a write that needs a new
// page while /dev/shm is full raises SIGBUS: create such segments with reserve=true.
//
// populate=true: fault the page tables in now (MADV_POPULATE_READ, Linux 5.14+; ignored where
// unsupported) so first touches are cheap; costs time proportional to the size, as a scan would.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "map");
  bool writable = info.Length() > 1 && info[1].ToBoolean().Value();
  bool populate = info.Length() > 2 && info[2].ToBoolean().Value();
  uint64_t byte_size = 0;
  Fd fd(OpenTrustedSegment(env, "map", name, writable ? O_RDWR : O_RDONLY, &byte_size));
  if (byte_size > kSegmentBytesMax) {
    ThrowRange(env, "shm map \"" + name + "\": the segment size " + std::to_string(byte_size) +
                        " is over the limit of " + std::to_string(kSegmentBytesMax));
  }
  // mmap rejects a zero length; an empty segment maps to an empty (ordinary) ArrayBuffer.
  if (byte_size == 0) return Napi::ArrayBuffer::New(env, 0);
  int flags = writable ? MAP_SHARED : MAP_PRIVATE;
  void* address = mmap(nullptr, byte_size, PROT_READ | PROT_WRITE, flags, fd.get(), 0);
  if (address == MAP_FAILED) ThrowSystem(env, "map", name, "mmap", errno);
#ifdef MADV_POPULATE_READ
  // Read-populate: for a private mapping it maps the shared pages without breaking copy-on-write
  // (MAP_POPULATE would copy every page of a private writable mapping).
  if (populate && madvise(address, byte_size, MADV_POPULATE_READ) != 0 && errno != EINVAL) {
    int err = errno;
    munmap(address, byte_size);
    ThrowSystem(env, "map", name, "madvise", err);
  }
#else
  (void)populate;
#endif
  Mapping* mapping = new Mapping{address, static_cast<size_t>(byte_size)};
  try {
    return Napi::ArrayBuffer::New(env, address, mapping->byte_length, Unmap, mapping);
  } catch (...) {
    munmap(address, byte_size);
    delete mapping;
    throw;
  }
}

// mapShared(name): like map() (MAP_PRIVATE, copy-on-write), but returns a SharedArrayBuffer.
// Why: a leaf scans its blocks on worker threads, and only a SharedArrayBuffer crosses to a worker
// without a copy. N-API can only make ordinary external ArrayBuffers, so this one function uses
// V8's BackingStore API: the backing store owns the mapping and munmaps it when the last
// SharedArrayBuffer over it (in any thread) is collected. The segment may be unlinked at once;
// the mapping keeps the pages alive. Refuses an untrusted segment, as map() does.
void UnmapBackingStore(void* data, size_t length, void* /*deleter_data*/) {
  if (data != nullptr && length > 0) munmap(data, length);
}

Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetName(info, 0, "mapShared");
  uint64_t byte_size = 0;
  Fd fd(OpenTrustedSegment(env, "mapShared", name, O_RDONLY, &byte_size));
  if (byte_size == 0 || byte_size > kSegmentBytesMax) {
    ThrowRange(env, "shm mapShared \"" + name + "\": the segment size " + std::to_string(byte_size) +
                        " is not in 1.." + std::to_string(kSegmentBytesMax));
  }
  void* address = mmap(nullptr, byte_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  if (address == MAP_FAILED) ThrowSystem(env, "mapShared", name, "mmap", errno);
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      address, static_cast<size_t>(byte_size), UnmapBackingStore, nullptr);
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(store));
  // A napi_value is a v8::Local in Node's implementation (v8impl::JsValueFromV8LocalValue).
  napi_value result;
  static_assert(sizeof(result) == sizeof(sab), "napi_value and v8::Local differ in size");
  std::memcpy(&result, &sab, sizeof(result));
  return Napi::Value(env, result);
}

// ---- memcpy baseline ----

// memcpyBench(byteSize, repeats): ns per memcpy of byteSize bytes between two buffers already
// faulted in, averaged over `repeats` copies after one warm-up copy. The baseline the handoff's
// copies are quoted against.
Napi::Value MemcpyBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t byte_size = GetCount(info, 0, "memcpyBench", "", "byteSize", kBenchBytesMax);
  uint64_t repeats = GetCount(info, 1, "memcpyBench", "", "repeats", kBenchRepeatsMax);
  if (byte_size == 0 || repeats == 0) {
    ThrowRange(env, "shm memcpyBench: byteSize and repeats must be at least 1");
  }
  uint8_t* source = static_cast<uint8_t*>(std::malloc(byte_size));
  uint8_t* target = static_cast<uint8_t*>(std::malloc(byte_size));
  if (source == nullptr || target == nullptr) {
    std::free(source);
    std::free(target);
    ThrowSystem(env, "memcpyBench", "", "malloc", ENOMEM);
  }
  for (uint64_t i = 0; i < byte_size; i++) source[i] = static_cast<uint8_t>(i * 131 + 7);
  std::memset(target, 0, byte_size);
  std::memcpy(target, source, byte_size);  // warm-up
  auto start = std::chrono::steady_clock::now();
  for (uint64_t r = 0; r < repeats; r++) {
    std::memcpy(target, source, byte_size);
    // Tell the compiler the copy is observed, so it cannot drop or merge the copies.
    asm volatile("" : : "r"(target) : "memory");
  }
  auto end = std::chrono::steady_clock::now();
  bool same = std::memcmp(source, target, byte_size) == 0;
  std::free(source);
  std::free(target);
  if (!same) ThrowSystem(env, "memcpyBench", "", "memcpy", EIO);
  double ns = std::chrono::duration<double, std::nano>(end - start).count();
  return Napi::Number::New(env, ns / static_cast<double>(repeats));
}

// ---- CRC-32C (the algorithm is in crc32c.cc) ----
Napi::Value Crc32cCommon(const Napi::CallbackInfo& info, const char* op, bool software) {
  Napi::Env env = info.Env();
  Bytes bytes = GetBytes(info, 0, op, "", "data");
  uint32_t crc = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    crc = static_cast<uint32_t>(GetCount(info, 1, op, "", "crc", 0xFFFFFFFFu));
  }
  uint32_t result = software ? shoal::Crc32cSoftware(crc, bytes.data, bytes.byte_length)
                             : shoal::Crc32c(crc, bytes.data, bytes.byte_length);
  return Napi::Number::New(env, result);
}

// crc32c(data, crc = 0): CRC-32C of `data`, continuing from `crc` (the result of the previous
// piece). Uses SSE4.2 when the CPU has it.
Napi::Value Crc32cJs(const Napi::CallbackInfo& info) { return Crc32cCommon(info, "crc32c", false); }

// crc32cSoftware(data, crc = 0): the portable version, always; for tests and benchmarks.
Napi::Value Crc32cSoftwareJs(const Napi::CallbackInfo& info) {
  return Crc32cCommon(info, "crc32cSoftware", true);
}

// ---- module ----

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Process-wide CRC tables, computed once even when several Workers load the addon at once.
  shoal::Crc32cInit();

  exports.Set("create", Napi::Function::New(env, Create, "create"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("mapShared", Napi::Function::New(env, MapShared, "mapShared"));
  exports.Set("size", Napi::Function::New(env, Size, "size"));
  exports.Set("exists", Napi::Function::New(env, Exists, "exists"));
  exports.Set("unlink", Napi::Function::New(env, Unlink, "unlink"));
  exports.Set("list", Napi::Function::New(env, List, "list"));
  exports.Set("stat", Napi::Function::New(env, Stat, "stat"));
  exports.Set("lockFile", Napi::Function::New(env, shoal::LockFile, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, shoal::UnlockFile, "unlockFile"));
  exports.Set("memcpyBench", Napi::Function::New(env, MemcpyBench, "memcpyBench"));
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  exports.Set("crc32cSoftware", Napi::Function::New(env, Crc32cSoftwareJs, "crc32cSoftware"));

  Napi::Object limits = Napi::Object::New(env);
  limits.Set("nameBytesMax", Napi::Number::New(env, static_cast<double>(kNameBytesMax)));
  limits.Set("segmentBytesMax", Napi::Number::New(env, static_cast<double>(kSegmentBytesMax)));
  limits.Set("listNamesMax", Napi::Number::New(env, static_cast<double>(kListNamesMax)));
  limits.Set("lockFilesMax", Napi::Number::New(env, static_cast<double>(shoal::kLockFilesMax)));
  limits.Set("lockPathBytesMax",
             Napi::Number::New(env, static_cast<double>(shoal::kLockPathBytesMax)));
  limits.Set("benchBytesMax", Napi::Number::New(env, static_cast<double>(kBenchBytesMax)));
  limits.Set("benchRepeatsMax", Napi::Number::New(env, static_cast<double>(kBenchRepeatsMax)));
  limits.Freeze();
  exports.Set("limits", limits);
  exports.Set("crc32cImplementation", Napi::String::New(env, shoal::Crc32cHardware() ? "sse4.2" : "software"));
  return exports;
}

}  // namespace

NODE_API_MODULE(shoal_native, Init)
