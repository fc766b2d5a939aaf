/**
 * A DurableFs that fails one chosen call: the fault injector of the crash-point tests (SQLite's
 * crash and io_error tests, in small). Every call that changes the disk (open for writing, write
 * or writev, fsync, truncate, rename, unlink, mkdir) is numbered; call `at` then fails as the
 * fault says:
 *
 * - 'EIO' / 'ENOSPC': that call throws an errno error, the next ones run normally (an operating
 *   error the code must survive);
 * - 'short': a write writes half its bytes for real and returns that count, and the write that
 *   continues it throws ENOSPC (a disk filling up in the middle of a record);
 * - 'crash': that call and every later one throw SimulatedCrash (the process died there; what was
 *   written before stays, as it does in the page cache after a real process crash);
 * - 'torn': a write writes half its bytes, then the process dies (a crash in the middle of a write).
 *
 * Reads are never failed. `calls` lists every numbered call, for the report of a failing run.
 */
import type { DurableFs } from '../../server/durability/durable-fs.js';
import { realFs } from '../../server/durability/durable-fs.js';

export type FaultKind = 'EIO' | 'ENOSPC' | 'short' | 'crash' | 'torn';
export interface Fault { readonly at: number; readonly kind: FaultKind }

export class SimulatedCrash extends Error {
  constructor(where: string) { super(`simulated crash at ${where}`); this.name = 'SimulatedCrash'; }
}

function errnoError(code: 'EIO' | 'ENOSPC', op: string, file: string): Error {
  const e = new Error(`${code === 'EIO' ? 'i/o error' : 'no space left on device'}, ${op} '${file}' (injected)`) as Error & { code: string; syscall: string };
  e.code = code;
  e.syscall = op;
  return e;
}

export class FaultyFs implements DurableFs {
  readonly calls: string[] = [];
  crashed = false;
  /** The numbered call the fault hit, once it has. */
  hit: string | null = null;
  private readonly fdFiles = new Map<number, string>();
  private enospcNextWrite = false;
  private tornNext = false;

  constructor(private readonly fault: Fault | null) {}

  /** Numbers a call and applies the fault; returns true when the call is to be a short write. */
  private gate(op: string, file: string): boolean {
    const index = this.calls.length;
    const label = `#${index} ${op} ${file.replace(/^.*\/(wal|blocks|damaged)\//, '$1/').replace(/^.*\//, '')}`;
    this.calls.push(label);
    if (this.crashed) throw new SimulatedCrash(label);
    if (op === 'write' && this.enospcNextWrite) { this.enospcNextWrite = false; throw errnoError('ENOSPC', op, file); }
    if (this.fault === null || index !== this.fault.at) return false;
    this.hit = label;
    switch (this.fault.kind) {
      case 'crash': this.crashed = true; throw new SimulatedCrash(label);
      case 'torn': if (op === 'write') { this.tornNext = true; return true; } this.crashed = true; throw new SimulatedCrash(label);
      case 'short': if (op === 'write') return true; throw errnoError('ENOSPC', op, file);
      default: throw errnoError(this.fault.kind, op, file);
    }
  }

  private fileOf(fd: number): string { return this.fdFiles.get(fd) ?? `fd ${fd}`; }

  open(file: string, flags: 'a' | 'w' | 'r'): number {
    if (flags !== 'r') this.gate(`open-${flags}`, file);
    else if (this.crashed) throw new SimulatedCrash(`open-r ${file}`);
    const fd = realFs.open(file, flags);
    this.fdFiles.set(fd, file);
    return fd;
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number): number {
    if (this.gate('write', this.fileOf(fd))) {
      const half = realFs.write(fd, buf, offset, Math.max(1, Math.floor(length / 2)));
      if (this.tornNext) { this.crashed = true; throw new SimulatedCrash(this.hit!); }
      this.enospcNextWrite = true;
      return half;
    }
    return realFs.write(fd, buf, offset, length);
  }
  writev(fd: number, bufs: readonly Uint8Array[]): number {
    // One numbered 'write', like write(): a short or torn one writes the first half of all the bytes.
    if (this.gate('write', this.fileOf(fd))) {
      const total = bufs.reduce((n, b) => n + b.length, 0);
      let left = Math.max(1, Math.floor(total / 2));
      const head: Uint8Array[] = [];
      for (const b of bufs) { if (left === 0) break; const part = b.subarray(0, Math.min(b.length, left)); head.push(part); left -= part.length; }
      const half = realFs.writev(fd, head);
      if (this.tornNext) { this.crashed = true; throw new SimulatedCrash(this.hit!); }
      this.enospcNextWrite = true;
      return half;
    }
    return realFs.writev(fd, bufs);
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number { return realFs.read(fd, buf, offset, length, position); }
  fdatasync(fd: number): void { this.gate('fdatasync', this.fileOf(fd)); realFs.fdatasync(fd); }
  async fdatasyncAsync(fd: number): Promise<void> { this.gate('fdatasync', this.fileOf(fd)); await realFs.fdatasyncAsync(fd); }
  ftruncate(fd: number, length: number): void { this.gate('ftruncate', this.fileOf(fd)); realFs.ftruncate(fd, length); }
  fileSize(fd: number): number { return realFs.fileSize(fd); }
  close(fd: number): void { this.fdFiles.delete(fd); realFs.close(fd); }
  readFile(file: string): Buffer { return realFs.readFile(file); }
  rename(from: string, to: string): void { this.gate('rename', from); realFs.rename(from, to); }
  unlink(file: string): void { this.gate('unlink', file); realFs.unlink(file); }
  truncate(file: string, length: number): void { this.gate('truncate', file); realFs.truncate(file, length); }
  mkdir(dir: string): void { this.gate('mkdir', dir); realFs.mkdir(dir); }
  readdir(dir: string): string[] { return realFs.readdir(dir); }
  exists(file: string): boolean { return realFs.exists(file); }
  fsyncDir(dir: string): void { this.gate('fsync-dir', dir); realFs.fsyncDir(dir); }
}
