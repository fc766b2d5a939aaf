/**
 * Typed wrapper of the native addon (native/shm.cc, built into build/Release/shoal_native.node by
 * `npm install` through binding.gyp): POSIX shared-memory primitives for a leaf's planned-restart
 * handoff, the exclusive lock of a data directory, a CRC-32C for segment headers and a memcpy
 * baseline for benchmarks.
 *
 * What it is not: it knows nothing of tables, blocks, segment headers or data directories
 * (server/ builds those on top). Names are POSIX shm names: '/' then 1..199 of [A-Za-z0-9._-].
 *
 * Errors: a failed syscall throws an Error with Node's system-error fields (`code` 'EEXIST',
 * 'ENOENT', 'ENOSPC', ..., `errno`, `syscall`, `path` = the segment name) and a message such as
 * `shm create "/shoal-x": File exists (EEXIST)`. A segment this process must not trust is
 * 'EUNTRUSTED' (UntrustedError), a lock another holder has is 'ELOCKED' (LockedError). A bad
 * argument throws a TypeError or RangeError with `code` 'ERR_INVALID_ARG_TYPE' /
 * 'ERR_INVALID_ARG_VALUE' / 'ERR_OUT_OF_RANGE' (a range past the end of a segment is
 * 'ERR_OUT_OF_RANGE'). All calls are synchronous.
 *
 * The addon is loaded on first use, so importing this module never fails; `nativeAvailable()`
 * says whether it can be loaded and `nativeLoadError()` why not.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bytes accepted where the addon reads or writes memory: any view (Buffer, Uint8Array,
 * Float64Array, DataView, ...) or a whole ArrayBuffer / SharedArrayBuffer. */
export type Bytes = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

export interface NativeLimits {
  /** Bytes in a segment name, the leading '/' included. */
  readonly nameBytesMax: number;
  /** Bytes in one segment (1 TiB): catches a mistaken size; /dev/shm's size is the real bound. */
  readonly segmentBytesMax: number;
  /** Names returned by one `list()` call. */
  readonly listNamesMax: number;
  /** Locks (`lockFile`) one process holds at once; each pins an fd until unlocked or exit. */
  readonly lockFilesMax: number;
  /** Bytes in a lock file's path (Linux PATH_MAX less the NUL). */
  readonly lockPathBytesMax: number;
  /** `memcpyBench` bounds: bytes per copy, and copies per call. */
  readonly benchBytesMax: number;
  readonly benchRepeatsMax: number;
}

export interface CreateOptions {
  /** Allocate all pages now (posix_fallocate): a full /dev/shm fails here with ENOSPC rather
   * than later with SIGBUS on a write through a `writable` mapping. Default false (sparse). */
  readonly reserve?: boolean;
}

export interface MapOptions {
  /** false (default): MAP_PRIVATE copy-on-write. Reads share the segment's pages (zero-copy);
   * JS writes are allowed but stay in this process and never change the segment.
   * true: MAP_SHARED; writes go to the segment and are seen by every mapping and by `read()`. */
  readonly writable?: boolean;
  /** Fault the whole mapping in now (MADV_POPULATE_READ) instead of on first touch. */
  readonly populate?: boolean;
}

/** What `stat()` says of a segment. */
export interface SegmentStat {
  readonly size: number;
  /** Owner (st_uid). */
  readonly uid: number;
  /** Permission bits only (st_mode & 0o7777), e.g. 0o600. */
  readonly mode: number;
  readonly mtimeMs: number;
  /** Whether map / mapShared / read / size / write would accept it: a regular file owned by this
   * process's effective uid, with no group or other permission bits. */
  readonly trusted: boolean;
  /** Why not, naming the owner and the mode, e.g. `owner uid 1000 (this process runs as 0), mode
   * 0666 (readable or writable by group or others)`; null when trusted. */
  readonly untrustedReason: string | null;
}

/** Thrown by map / mapShared / read / size / write for a segment that fails the trust check:
 * message `shm map "/shoal-x": not trusted: <SegmentStat.untrustedReason>`. */
export interface UntrustedError extends Error {
  readonly code: 'EUNTRUSTED';
  /** The segment name. */
  readonly path: string;
  /** The segment's owner and permission bits, as found on the opened fd. */
  readonly uid: number;
  readonly mode: number;
}

/** Thrown by `lockFile` when another open file description (another process, or an earlier
 * lockFile in this one) holds the lock: message `lock "<path>" is held by pid 1234`. */
export interface LockedError extends Error {
  readonly code: 'ELOCKED';
  /** The pid the holder wrote into the file; null if it has not written it yet. */
  readonly holderPid: number | null;
  readonly path: string;
  readonly syscall: 'flock';
}

export function isUntrustedError(error: unknown): error is UntrustedError {
  return error instanceof Error && (error as { code?: unknown }).code === 'EUNTRUSTED';
}

export function isLockedError(error: unknown): error is LockedError {
  return error instanceof Error && (error as { code?: unknown }).code === 'ELOCKED';
}

/** What the .node file exports (native/shm.cc `Init`). */
interface NativeModule {
  create(name: string, byteSize: number, reserve: boolean): void;
  write(name: string, offset: number, bytes: Bytes): void;
  read(name: string, offset: number, target: Bytes): number;
  map(name: string, writable: boolean, populate: boolean): ArrayBuffer;
  mapShared(name: string): SharedArrayBuffer;
  size(name: string): number;
  exists(name: string): boolean;
  unlink(name: string): boolean;
  list(prefix: string): string[];
  stat(name: string): SegmentStat;
  lockFile(path: string): number;
  unlockFile(fd: number): void;
  memcpyBench(byteSize: number, repeats: number): number;
  crc32c(data: Bytes, crc?: number): number;
  crc32cSoftware(data: Bytes, crc?: number): number;
  readonly limits: NativeLimits;
  readonly crc32cImplementation: 'sse4.2' | 'software';
}

/** Directories walked up from this file to find the repository root (the one holding
 * package.json): native/ -> root under vitest, dist/native/ -> dist/ -> root after tsc. */
const ROOT_SEARCH_DEPTH_MAX = 8;

function findRepoRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (let depth = 0; depth < ROOT_SEARCH_DEPTH_MAX; depth++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`shoal native addon: no package.json found above ${start}`);
}

let addonPathCached: string | undefined;

/** Absolute path of build/Release/shoal_native.node (whether or not it exists). A Worker can
 * `createRequire(...)(nativeAddonPath())` to load the addon itself. */
export function nativeAddonPath(): string {
  addonPathCached ??= join(findRepoRoot(), 'build', 'Release', 'shoal_native.node');
  return addonPathCached;
}

let loaded: NativeModule | undefined;
let loadError: Error | undefined;

function tryLoad(): void {
  if (loaded !== undefined || loadError !== undefined) return;
  let path = '(unknown)';
  try {
    path = nativeAddonPath();
    loaded = createRequire(import.meta.url)(path) as NativeModule;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    loadError = new Error(
      `shoal native addon not available: cannot load ${path} (${reason}). ` +
        'Run "npm install" (or "npm ci") in the repository root; it builds the addon with ' +
        'node-gyp from binding.gyp and needs g++, make, python3 and the Node headers.',
      { cause },
    );
  }
}

function native(): NativeModule {
  tryLoad();
  if (loaded === undefined) throw loadError ?? new Error('shoal native addon: not loaded');
  return loaded;
}

/** Whether the addon was built and loads; never throws. */
export function nativeAvailable(): boolean {
  tryLoad();
  return loaded !== undefined;
}

/** Why the addon cannot be loaded (with what to do), or undefined when it loads. */
export function nativeLoadError(): Error | undefined {
  tryLoad();
  return loadError;
}

/** The addon's limits (why each exists: native/shm.cc; the lock's: native/file-lock.cc). */
export function nativeLimits(): NativeLimits {
  return native().limits;
}

/** 'sse4.2' when crc32c runs on the CPU's crc32 instruction, else 'software'. */
export function crc32cImplementation(): 'sse4.2' | 'software' {
  return native().crc32cImplementation;
}

/** Creates a new zero-filled segment of `byteSize` bytes, mode 0600 whatever the umask. Throws
 * EEXIST if the name is taken: unlink stale segments first, a segment is never reused by
 * accident. */
export function create(name: string, byteSize: number, options: CreateOptions = {}): void {
  native().create(name, byteSize, options.reserve === true);
}

/** Writes all of `bytes` at `offset` (pwrite); the range must lie inside the segment.
 * Throws EUNTRUSTED for a segment that fails the trust check (see `stat`). */
export function write(name: string, offset: number, bytes: Bytes): void {
  native().write(name, offset, bytes);
}

/** Copies `target.byteLength` bytes from `offset` into `target` (pread); returns that count.
 * The copy path: the result lives in memory this process owns. Throws EUNTRUSTED for a segment
 * that fails the trust check (see `stat`). */
export function read(name: string, offset: number, target: Bytes): number {
  return native().read(name, offset, target);
}

/** Maps the whole segment as an external ArrayBuffer (zero-copy; munmap when it is collected).
 * See MapOptions for the private (default) and shared semantics. The mapping stays valid after
 * `unlink()`; the memory is freed when the last mapping goes. An ArrayBuffer posted to a Worker
 * is copied: a Worker maps the segment by name itself. Throws EUNTRUSTED for a segment that
 * fails the trust check (see `stat`), ELOOP for a symbolic link. */
export function map(name: string, options: MapOptions = {}): ArrayBuffer {
  return native().map(name, options.writable === true, options.populate === true);
}

/** Maps the whole segment copy-on-write as a SharedArrayBuffer (zero-copy), which can be posted
 * to worker threads without a copy. The mapping outlives `unlink()` and is unmapped when the
 * last SharedArrayBuffer over it, in any thread, is collected. Writes stay in this process.
 * Throws EUNTRUSTED / ELOOP as `map` does. */
export function mapShared(name: string): SharedArrayBuffer {
  return native().mapShared(name);
}

/** The segment's size in bytes (fstat). Throws EUNTRUSTED / ELOOP as `map` does. */
export function size(name: string): number {
  return native().size(name);
}

/** Whether a segment of that name exists. */
export function exists(name: string): boolean {
  return native().exists(name);
}

/** Removes the name; true if it existed, false if not. */
export function unlink(name: string): boolean {
  return native().unlink(name);
}

/** Names of the segments whose name starts with `prefix` (e.g. '/shoal-'), sorted, at most
 * `nativeLimits().listNamesMax`. Linux only (reads /dev/shm). For sweeping stale segments. */
export function list(prefix: string): string[] {
  return native().list(prefix);
}

/** Size, owner, permission bits, mtime and trust verdict of a segment, without refusing an
 * untrusted one (for listing tools; pairs with `list`). Linux only (opens /dev/shm/<name> with
 * O_PATH|O_NOFOLLOW: needs no read permission, describes a symbolic link instead of following
 * it). Throws ENOENT if there is no such name. */
export function stat(name: string): SegmentStat {
  return native().stat(name);
}

/**
 * Takes the exclusive lock of a data directory: a BSD flock(LOCK_EX|LOCK_NB) on `path` (created
 * 0600 if absent; a symbolic link is refused with ELOOP), then writes this process's pid into the
 * file. Returns the fd that holds the lock. Keep it: the lock lasts until `unlockFile(fd)` or the
 * process exits, however it exits (kill -9 included: the kernel drops it). The fd is O_CLOEXEC,
 * so spawned children never inherit it. Do not close it yourself.
 *
 * Throws a LockedError (`code === 'ELOCKED'`, `holderPid`) if the lock is held, by another
 * process or by an earlier lockFile of the same path in this one (flock locks belong to the open
 * file description). Other failures are system errors (`lock "<path>": ... (EACCES)`).
 */
export function lockFile(path: string): number {
  return native().lockFile(path);
}

/** Releases a lock taken by `lockFile` and closes its fd (for tests and clean stops). Any other
 * fd is refused with ERR_INVALID_ARG_VALUE, never closed. */
export function unlockFile(fd: number): void {
  native().unlockFile(fd);
}

/** Nanoseconds per memcpy of `byteSize` bytes between two warm buffers, averaged over `repeats`
 * copies: the baseline benchmarks quote the handoff's copies against. Blocks the thread. */
export function memcpyBench(byteSize: number, repeats: number): number {
  return native().memcpyBench(byteSize, repeats);
}

/** CRC-32C (Castagnoli) of `data`, continuing from `crc` (default 0 = start):
 * crc32c(b, crc32c(a)) === crc32c(a ++ b). Hardware (SSE4.2) when available. Unsigned 32-bit. */
export function crc32c(data: Bytes, crc = 0): number {
  return native().crc32c(data, crc);
}

/** The portable table-driven CRC-32C, same values as `crc32c`; for tests and benchmarks. */
export function crc32cSoftware(data: Bytes, crc = 0): number {
  return native().crc32cSoftware(data, crc);
}
