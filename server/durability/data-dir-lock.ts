/**
 * One process per data directory: an exclusive flock(2) on `<dir>/LOCK`, taken before anything
 * in the directory is read and held for the life of the process (the kernel releases it when the
 * process dies, `kill -9` included, so a crash never leaves a stale lock). A second `shoal leaf`
 * (or `shoal up`) on a directory in use fails at once, naming the pid that holds it: two writers
 * in one `wal/` would interleave their logs, and the second one's handoff could be taken by the
 * first one's successor.
 */
import path from 'node:path';
import { isLockedError, lockFile, nativeAvailable, nativeLoadError, unlockFile } from '../../native/shm.js';

export const LOCK_FILE = 'LOCK';

export class DataDirInUseError extends Error {
  constructor(readonly dataDir: string, readonly holderPid: number | null) {
    super(`data directory ${dataDir} is in use by ${holderPid !== null ? `pid ${holderPid}` : 'another process'}; stop it first, or give this one another --data-dir`);
    this.name = 'DataDirInUseError';
  }
}

export interface DataDirLock { readonly file: string; release(): void }

/** Takes the lock of `dataDir` (which must exist) or throws DataDirInUseError. */
export function lockDataDir(dataDir: string): DataDirLock {
  if (!nativeAvailable()) throw new Error(`cannot lock ${dataDir}: the native addon is not built (${nativeLoadError()?.message ?? 'unknown reason'}); run npm install`);
  const file = path.join(dataDir, LOCK_FILE);
  let fd: number;
  try {
    fd = lockFile(file);
  } catch (e) {
    if (isLockedError(e)) throw new DataDirInUseError(dataDir, e.holderPid);
    throw e;
  }
  let held = true;
  return { file, release: () => { if (held) { held = false; unlockFile(fd); } } };
}
