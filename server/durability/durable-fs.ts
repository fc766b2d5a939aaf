/**
 * The one door from durability to the file system. The write-ahead log, checkpoints, the
 * manifest, recovery and the handoff's binding file make every file-system call through a
 * `DurableFs`, so a test can fail any write, fsync, rename or unlink (or stop the "process"
 * there) and then check what recovery brings back (SQLite's crash tests, TigerBeetle's
 * simulator). `realFs` is the only implementation the product uses.
 *
 * Calls are synchronous except the two fsyncs that run while the leaf keeps serving
 * (`fdatasyncAsync`: the interval flush and checkpoint files), which go to libuv's threads.
 * Not here: the data-directory lock (a native flock, server/durability/data-dir-lock.ts) and
 * shared memory (native/shm.ts): neither is a file whose bytes recovery reads.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DurableFs {
  /** 'a': append, create if missing; 'w': create or truncate; 'r': read. Returns an fd. */
  open(file: string, flags: 'a' | 'w' | 'r'): number;
  /** Writes up to `length` bytes of `buf` from `offset` at the file's position; returns bytes written. */
  write(fd: number, buf: Uint8Array, offset: number, length: number): number;
  /** writev(2): the buffers one after another at the file's position, in one call; returns the
   * bytes written (a short write stops anywhere, even inside a buffer). */
  writev(fd: number, bufs: readonly Uint8Array[]): number;
  /** Reads up to `length` bytes into `buf` at `offset` from file position `position`. */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasync(fd: number): void;
  fdatasyncAsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): void;
  fileSize(fd: number): number;
  close(fd: number): void;
  readFile(file: string): Buffer;
  rename(from: string, to: string): void;
  unlink(file: string): void;
  truncate(file: string, length: number): void;
  mkdir(dir: string): void;
  readdir(dir: string): string[];
  exists(file: string): boolean;
  /** fsync of a directory: makes a create, rename or unlink inside it durable. */
  fsyncDir(dir: string): void;
}

export const realFs: DurableFs = {
  open: (file, flags) => fs.openSync(file, flags),
  write: (fd, buf, offset, length) => fs.writeSync(fd, buf, offset, length),
  writev: (fd, bufs) => fs.writevSync(fd, bufs as Uint8Array[]),
  read: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  fdatasync: (fd) => fs.fdatasyncSync(fd),
  fdatasyncAsync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  fileSize: (fd) => fs.fstatSync(fd).size,
  close: (fd) => fs.closeSync(fd),
  readFile: (file) => fs.readFileSync(file),
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (file) => fs.rmSync(file, { force: true }),
  truncate: (file, length) => fs.truncateSync(file, length),
  mkdir: (dir) => { fs.mkdirSync(dir, { recursive: true }); },
  readdir: (dir) => fs.readdirSync(dir),
  exists: (file) => fs.existsSync(file),
  fsyncDir: (dir) => {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  },
};

/** Writes a whole buffer (a short write is continued; an error is thrown as is). */
export function writeAll(io: DurableFs, fd: number, buf: Uint8Array): void {
  let written = 0;
  while (written < buf.length) written += io.write(fd, buf, written, buf.length - written);
}

/** Writes whole buffers in order with writev (a short write is continued from where it stopped). */
export function writevAll(io: DurableFs, fd: number, bufs: readonly Uint8Array[]): void {
  let pending = bufs.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let written = io.writev(fd, pending);
    let i = 0;
    while (i < pending.length && written >= pending[i]!.length) written -= pending[i++]!.length;
    pending = pending.slice(i);
    if (written > 0) pending[0] = pending[0]!.subarray(written);
  }
}

/** Creates (or replaces) `file` with `data`, durably: write, fdatasync, close. The caller fsyncs
 * the directory once after all its creates. A failure removes the partial file (best effort). */
export async function writeFileDurable(io: DurableFs, file: string, data: Uint8Array): Promise<void> {
  const fd = io.open(file, 'w');
  let ok = false;
  try {
    writeAll(io, fd, data);
    await io.fdatasyncAsync(fd);
    ok = true;
  } finally {
    try { io.close(fd); } catch { /* the error that matters is the one already thrown */ }
    if (!ok) { try { io.unlink(file); } catch { /* left for the next checkpoint's sweep */ } }
  }
}

/** Writes a small file durably: the file's fdatasync, then its directory's fsync. */
export function writeSmallFileDurable(io: DurableFs, file: string, data: Uint8Array): void {
  const fd = io.open(file, 'w');
  try { writeAll(io, fd, data); io.fdatasync(fd); } finally { io.close(fd); }
  io.fsyncDir(path.dirname(file));
}

/** Removes a file durably (unlink, then its directory's fsync); nothing when it is absent. */
export function removeFileDurable(io: DurableFs, file: string): void {
  if (!io.exists(file)) return;
  io.unlink(file);
  io.fsyncDir(path.dirname(file));
}
