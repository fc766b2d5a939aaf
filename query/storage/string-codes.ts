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
import { LIMITS } from '../limits.js';
import { decodeUtf8 } from './dictionary.js';
import type { DictData } from './types.js';


/** Estimated heap bytes of one entry: the string (header + UTF-16 or Latin-1 payload), its
 * Map entry, its slot in `strings` and its hash pair (aggregates.ts codeHashes). */
const ENTRY_OVERHEAD_BYTES = 72;

export class StringCodes {
  strings: string[] = [];
  private index = new Map<string, number>();
  /** Estimated bytes held by the table, and by the code maps built in this generation. */
  bytes = 0;
  mapBytes = 0;
  generation = 1;

  get size(): number { return this.strings.length; }

  codeOf(s: string): number {
    let c = this.index.get(s);
    if (c === undefined) {
      c = this.strings.length;
      this.strings.push(s);
      this.index.set(s, c);
      this.bytes += ENTRY_OVERHEAD_BYTES + 2 * s.length;
    }
    return c;
  }

  /** Code of `s` if the table has it, else -1 (no entry is added). */
  find(s: string): number { return this.index.get(s) ?? -1; }

  /** Maps every entry of a block dictionary (UTF-8 bytes) to its code. */
  mapDict(dict: DictData): Int32Array {
    const n = dict.offsets.length - 1;
    const out = new Int32Array(Math.max(0, n));
    const bytes = dict.bytes;
    const offsets = dict.offsets;
    for (let i = 0; i < n; i++) {
      const s = decodeUtf8(bytes, offsets[i]!, offsets[i + 1]!);
      out[i] = this.codeOf(s);
    }
    this.mapBytes += out.byteLength;
    return out;
  }

  /** Maps decoded strings (an open block's builder dictionary) to codes. */
  mapStrings(strings: readonly string[]): Int32Array {
    const out = new Int32Array(strings.length);
    for (let i = 0; i < strings.length; i++) out[i] = this.codeOf(strings[i]!);
    return out;
  }

  /** Drops every entry and starts a new generation (every older code map is stale). */
  reset(): void {
    this.strings = [];
    this.index = new Map();
    this.bytes = 0;
    this.mapBytes = 0;
    this.generation++;
  }
}

/** This thread's table (a worker thread loads its own copy of this module). */
export const threadCodes = new StringCodes();

/** Called before a scan: past the bounds, start over (see the file comment). */
export function trimStringCodes(maxBytes: number = LIMITS.threadStringBytesMax, codes: StringCodes = threadCodes): boolean {
  if (codes.bytes + codes.mapBytes <= Math.min(maxBytes, LIMITS.threadStringBytesMax) && codes.size <= LIMITS.threadStringCodesMax) return false;
  codes.reset();
  return true;
}
