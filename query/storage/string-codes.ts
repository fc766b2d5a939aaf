/**
 * String codes that hold across blocks, one table per thread (docs/engine.md, "Codes across
 * blocks").
 *
 * A sealed block keeps its own dictionary (its image must stand alone: disk, shared memory,
 * another process). A group-by or count(DISTINCT) over a high-cardinality column would then meet
 * the same ~40k strings again in every block and hash each one. Instead each thread (the leaf's
 * main thread, every scan worker) keeps one table of every string its scans have seen, and each
 * block gets, once, a code map: its dictionary entry i -> the thread's code. Grouping then indexes
 * dense arrays by code, and no block's dictionary is decoded twice or kept as JS strings.
 *
 * Codes are only stable inside one thread and one generation. The table is bounded (bytes and
 * entries, LIMITS.threadStringBytesMax / threadStringCodesMax): a scan checks it before it starts
 * (`trimStringCodes`), and past the bound the whole table is dropped and a new generation starts;
 * every block's map from an older generation is then rebuilt on use. Never during a scan, so the
 * codes a scan groups by never change under it.
 */
import { hashOut, hashString } from '../functions/hash.js';
import { LIMITS } from '../limits.js';
import { ByteDict, hashBytes } from './byte-dict.js';
import type { DictData } from './types.js';

/** Estimated bytes of one entry beside its UTF-8: its hash, offset and two hash slots. */
const ENTRY_OVERHEAD_BYTES = 16;
/** Estimated heap bytes of a decoded string beside its payload (made only when asked for). */
const STRING_OVERHEAD_BYTES = 40;

const encoder = new TextEncoder();
let scratch = new Uint8Array(1024);

/**
 * A table of strings keyed by their UTF-8 bytes (a ByteDict: an arena, hashes and open
 * addressing), so mapping a block's dictionary hashes and compares bytes and makes no JS string;
 * a code's string is decoded when first asked for (`stringAt`) and kept.
 */
export class StringCodes {
  private dict = new ByteDict();
  private decoded: (string | undefined)[] = [];
  /** Estimated bytes held by the table, and by the code maps built in this generation. */
  bytes = 0;
  mapBytes = 0;
  generation = 1;
  /** True on the leaf's main thread: this table is the leaf's code space (see `leafSpace`), its
   * code maps live in SharedArrayBuffers so scan workers can read them. */
  isLeafSpace = false;
  /** Scans in worker threads that group by this table's codes and have not come back yet: the
   * table must not start over under them (trimStringCodes waits). */
  leafScansInFlight = 0;

  get size(): number { return this.dict.count; }

  private codeOfBytes(bytes: Uint8Array, start: number, end: number): number {
    const before = this.dict.count;
    const c = this.dict.code(bytes, start, end, hashBytes(bytes, start, end));
    if (this.dict.count !== before) this.bytes += ENTRY_OVERHEAD_BYTES + (end - start);
    return c;
  }

  private encode(s: string): number {
    if (scratch.length < 3 * s.length) scratch = new Uint8Array(Math.max(3 * s.length, 2 * scratch.length));
    return encoder.encodeInto(s, scratch).written;
  }

  codeOf(s: string): number {
    const n = this.encode(s);
    return this.codeOfBytes(scratch, 0, n);
  }

  /** Code of `s` if the table has it, else -1 (no entry is added). */
  find(s: string): number {
    const n = this.encode(s);
    return this.dict.find(scratch, 0, n, hashBytes(scratch, 0, n));
  }

  /** The string of code `c` (decoded once, on first use). */
  stringAt(c: number): string {
    let s = this.decoded[c];
    if (s === undefined) {
      s = this.dict.entry(c);
      while (this.decoded.length < c) this.decoded.push(undefined);
      this.decoded[c] = s;
      this.bytes += STRING_OVERHEAD_BYTES + 2 * s.length;
    }
    return s;
  }

  /** The table's UTF-8 bytes and entry offsets (code c is bytes[offsets[c]..offsets[c + 1]]),
   * as views valid until the next entry is added or the table starts over. */
  entries(): { readonly bytes: Uint8Array; readonly offsets: Int32Array } { return this.dict.view(); }

  /** UTF-8 length of code `c`'s string. */
  byteLength(c: number): number { return this.dict.entryLength(c); }

  /** Maps every entry of a block dictionary (UTF-8 bytes) to its code: bytes in, no strings. */
  mapDict(dict: DictData): Int32Array {
    const n = Math.max(0, dict.offsets.length - 1);
    const out = this.isLeafSpace ? new Int32Array(new SharedArrayBuffer(4 * n)) : new Int32Array(n);
    const bytes = dict.bytes;
    const offsets = dict.offsets;
    for (let i = 0; i < n; i++) out[i] = this.codeOfBytes(bytes, offsets[i]!, offsets[i + 1]!);
    this.mapBytes += out.byteLength;
    return out;
  }

  /** Maps decoded strings (an open block's builder dictionary) to codes. */
  mapStrings(strings: readonly string[]): Int32Array {
    const out = new Int32Array(strings.length);
    for (let i = 0; i < strings.length; i++) out[i] = this.codeOf(strings[i]!);
    return out;
  }

  /** On the leaf's main thread: each code's approx_count_distinct hash (two words, hash.ts),
   * for codes below `hashedCount`, in a SharedArrayBuffer the workers read (docs/engine.md). */
  hashPairs: Int32Array = new Int32Array(0);
  hashedCount = 0;

  /** Hashes codes from `hashedCount` on until `deadline` (performance.now()); true when every
   * code has its hash. Decodes each string once without keeping it. */
  hashCodes(deadline: number): boolean {
    const size = this.size;
    if (this.hashPairs.length < 2 * size) {
      const next = new Int32Array(new SharedArrayBuffer(8 * Math.max(size, this.hashPairs.length, 1024)));
      next.set(this.hashPairs.subarray(0, 2 * this.hashedCount));
      this.mapBytes += next.byteLength - this.hashPairs.byteLength;
      this.hashPairs = next;
    }
    const pairs = this.hashPairs;
    let c = this.hashedCount;
    while (c < size) {
      hashString(this.decoded[c] ?? this.dict.entry(c));
      pairs[2 * c] = hashOut[0]!; pairs[2 * c + 1] = hashOut[1]!;
      c++;
      if ((c & 1023) === 0 && performance.now() > deadline) break;
    }
    this.hashedCount = c;
    return c >= size;
  }

  /** Drops every entry and starts a new generation (every older code map is stale). */
  reset(): void {
    this.hashPairs = new Int32Array(0);
    this.hashedCount = 0;
    this.dict = new ByteDict();
    this.decoded = [];
    this.bytes = 0;
    this.mapBytes = 0;
    this.generation++;
  }
}

/** This thread's table (a worker thread loads its own copy of this module). */
export const threadCodes = new StringCodes();

/**
 * The leaf's code space (docs/engine.md, "Leaf codes"). The leaf's main thread's table is the
 * leaf's: its code maps are SharedArrayBuffers, and a scan task hands workers the maps of the
 * columns it groups or counts distinct by, so workers group by the same codes the main thread
 * does and send codes back instead of strings; the main thread merges them by array index and
 * makes strings only of what it answers with. In a worker, `size` and `generation` are the main
 * thread's as the current task gave them (the worker has no strings for these codes).
 */
export const leafSpace: { size: number; generation: number; hashes: Int32Array | null } = { size: 0, generation: 0, hashes: null };

/** Size and generation of the leaf's code space as this thread sees it. */
export function leafSpaceSize(): number { return threadCodes.isLeafSpace ? threadCodes.size : leafSpace.size; }
export function leafSpaceGeneration(): number { return threadCodes.isLeafSpace ? threadCodes.generation : leafSpace.generation; }

/** Called before a scan: past the bounds, start over (see the file comment). The leaf's table
 * does not start over while worker scans use its codes (they would come back meaning nothing). */
export function trimStringCodes(maxBytes: number = LIMITS.threadStringBytesMax, codes: StringCodes = threadCodes): boolean {
  if (codes.bytes + codes.mapBytes <= Math.min(maxBytes, LIMITS.threadStringBytesMax) && codes.size <= LIMITS.threadStringCodesMax) return false;
  if (codes.leafScansInFlight > 0) return false;
  codes.reset();
  return true;
}
