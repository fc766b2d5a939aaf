/**
 * The tail's state file: which file (by device and inode) it follows, the byte offset and line
 * up to which every line is acknowledged, and the batch in flight, if any. Written atomically
 * (temp file, fsync, rename) before a batch is sent (recording it as pending) and after it is
 * acknowledged (advancing the offset), so after a crash at any point a restart either resends
 * the pending batch with the same batch id (the leaf drops it if it stored it) or starts after
 * it: no line is sent twice, and none is skipped.
 *
 * Batch ids are `tail-<stateId>-<generation>-<start>-<end>`: the random stateId is fixed when
 * the state file is created, and the generation counts rotations and truncations, so the same
 * byte range of a different file never reuses an id.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';

export const TAIL_STATE_VERSION = 1;

export interface PendingBatch {
  readonly start: number;
  readonly end: number;
  /** Line number of the last line before `start` (lines in the batch are startLine+1 ..). */
  readonly startLine: number;
  readonly id: string;
}

export interface TailState {
  version: number;
  table: string;
  /** The path followed (as given, resolved). */
  file: string;
  stateId: string;
  generation: number;
  /** Identity of the file being read: device and inode numbers, as decimal strings. */
  dev: string;
  ino: string;
  /** Every line before this byte offset is acknowledged (or was rejected and reported). */
  offset: number;
  /** Lines before `offset`. */
  line: number;
  pending: PendingBatch | null;
  updatedAt: string;
}

export function newTailState(table: string, file: string): TailState {
  return {
    version: TAIL_STATE_VERSION, table, file: path.resolve(file), stateId: randomBytes(6).toString('hex'), generation: 0,
    dev: '', ino: '', offset: 0, line: 0, pending: null, updatedAt: new Date().toISOString(),
  };
}

export function batchId(state: TailState, start: number, end: number): string {
  return `tail-${state.stateId}-${state.generation}-${start}-${end}`;
}

function bad(file: string, why: string): never {
  throw new ShoalError('SHOAL_ERR_LOAD_STATE', `tail state file ${file}: ${why} (delete it to start over from the beginning of the file)`);
}

/** Reads the state file; null when it does not exist. */
export function readTailState(file: string, table: string): TailState | null {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > LIMITS.tailStateBytesMax) bad(file, `is ${st.size} bytes, more than a state file can be`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let s: TailState;
  try {
    s = JSON.parse(text) as TailState;
  } catch {
    bad(file, 'is not JSON');
  }
  const isInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (typeof s !== 'object' || s === null || s.version !== TAIL_STATE_VERSION) bad(file, `has no version ${TAIL_STATE_VERSION}`);
  if (typeof s.table !== 'string' || typeof s.file !== 'string' || typeof s.stateId !== 'string' || typeof s.dev !== 'string' || typeof s.ino !== 'string') bad(file, 'lacks table, file, stateId, dev or ino');
  if (!isInt(s.generation) || !isInt(s.offset) || !isInt(s.line)) bad(file, 'has a bad generation, offset or line');
  if (s.pending !== null && !(typeof s.pending === 'object' && isInt(s.pending.start) && isInt(s.pending.end) && isInt(s.pending.startLine) && typeof s.pending.id === 'string' && s.pending.start <= s.pending.end)) {
    bad(file, 'has a malformed pending batch');
  }
  if (s.table !== table) bad(file, `belongs to table "${s.table}", not "${table}"`);
  return s;
}

/** Writes the state atomically: a reader (or a restart after a crash) sees the old or the new. */
export function writeTailState(file: string, state: TailState): void {
  state.updatedAt = new Date().toISOString();
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(state, null, 1) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
