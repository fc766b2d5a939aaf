/**
 * A key column of strings as UTF-8 bytes (Arrow Utf8 layout: offsets + bytes), with at most one
 * NULL group: how a group table carries a single string key (partial.ts). A scan worker's 100k
 * group keys then cross to the main thread as two typed arrays, not 100k JS strings (a structured
 * clone of 1.4M short strings took ~250 ms, merging them by string in a Map ~800 ms), and the
 * leaf merges by bytes through its own hash table (merge.ts), decoding only the keys it answers
 * with. Between processes the two arrays travel as base64 (merge/partial-wire.ts).
 */
import { ShoalError } from '../errors.js';
import { decodeUtf8 } from '../storage/dictionary.js';
import { leafSpaceGeneration, threadCodes } from '../storage/string-codes.js';
import type { Scalar } from './plan.js';

export interface Utf8Keys {
  readonly utf8: true;
  /** count + 1 offsets into `bytes`; group g's key is bytes[offsets[g], offsets[g + 1]). */
  readonly offsets: Int32Array;
  readonly bytes: Uint8Array;
  /** The group whose key is NULL (its byte range is empty), or -1. */
  readonly nullAt: number;
}

/**
 * A string key column as the leaf's string codes (storage/string-codes.ts, `leafSpace`), -1 for
 * NULL: what scans on a leaf, in its workers and on its main thread, make of a GROUP BY on a
 * string column, so the leaf merges groups by array index and makes strings only of the groups it
 * answers with (docs/engine.md, "Leaf codes"). Only inside a leaf process: it is read with the
 * leaf's table (`generation` must still be the table's), and partial-wire.ts sends UTF-8 keys.
 */
export interface CodeKeys {
  readonly coded: true;
  readonly codes: Int32Array;
  readonly generation: number;
}

export type KeyColumn = readonly Scalar[] | Utf8Keys | CodeKeys;

const encoder = new TextEncoder();

export function isUtf8(col: KeyColumn): col is Utf8Keys { return !Array.isArray(col) && 'utf8' in col; }
export function isCoded(col: KeyColumn): col is CodeKeys { return !Array.isArray(col) && 'coded' in col; }

/** Checks that a coded column's codes are this thread's table's: refused if the table started
 * over since (never a string of another generation). */
export function codedStrings(col: CodeKeys): void {
  if (!threadCodes.isLeafSpace || col.generation !== leafSpaceGeneration()) {
    throw new ShoalError('SHOAL_ERR_INTERNAL', `group keys are string codes of generation ${col.generation}, which this thread cannot read (its table is at ${threadCodes.generation}); retry the query`);
  }
}

/** Group g's key. */
export function keyAt(col: KeyColumn, g: number): Scalar {
  if (isCoded(col)) { codedStrings(col); const c = col.codes[g]!; return c < 0 ? null : threadCodes.stringAt(c); }
  if (!isUtf8(col)) return (col as readonly Scalar[])[g]!;
  if (g === col.nullAt) return null;
  return decodeUtf8(col.bytes, col.offsets[g]!, col.offsets[g + 1]!);
}

/** Every key of a column as values. */
export function keyValues(col: KeyColumn, count: number): Scalar[] {
  if (!isUtf8(col) && !isCoded(col)) return col as Scalar[];
  const out: Scalar[] = new Array(count);
  for (let g = 0; g < count; g++) out[g] = keyAt(col, g);
  return out;
}

/** Number of groups a key column holds. */
export function keyCount(col: KeyColumn): number { return isCoded(col) ? col.codes.length : isUtf8(col) ? col.offsets.length - 1 : col.length; }

/** A coded column as UTF-8 keys (for the wire), or null when it has more than one NULL group. */
export function codedToUtf8(col: CodeKeys): Utf8Keys | null { return encodeKeys(keyValues(col, col.codes.length)); }

/** Strings (and at most one NULL) as UTF-8 keys; null when the values are anything else. */
export function encodeKeys(values: readonly Scalar[]): Utf8Keys | null {
  let nullAt = -1;
  let bytes = new Uint8Array(Math.max(64, values.length * 24));
  const offsets = new Int32Array(values.length + 1);
  let at = 0;
  for (let g = 0; g < values.length; g++) {
    const v = values[g];
    offsets[g] = at;
    if (v === null) { if (nullAt >= 0) return null; nullAt = g; continue; }
    if (typeof v !== 'string') return null;
    if (bytes.length - at < 3 * v.length) {
      const next = new Uint8Array(Math.max(bytes.length * 2, at + 3 * v.length + 64));
      next.set(bytes.subarray(0, at));
      bytes = next;
    }
    at += encoder.encodeInto(v, bytes.subarray(at)).written;
  }
  offsets[values.length] = at;
  return { utf8: true, offsets, bytes: bytes.slice(0, at), nullAt };
}

/** A 32-bit hash of a byte range (FNV-1a with a final mix), the same in every process. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let j = start; j < end; j++) h = Math.imul(h ^ bytes[j]!, 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
