/**
 * String dictionaries keyed by UTF-8 bytes: a batch's dictionary as it crosses from an ingest
 * thread (bytes, offsets and each entry's hash, all transferable), and the open block's
 * dictionary that the event loop appends into. Looking a value up by its bytes and a hash
 * computed where it was decoded means the event loop makes no JS string and hashes nothing per
 * value, and sealing a block copies the bytes as they are (they are the sealed block's Arrow
 * Utf8 dictionary already). JS strings are made only when a query reads the open block.
 *
 * Bytes are the identity: two strings are one entry exactly when their UTF-8 is the same. That
 * is string equality, except for lone surrogates (a JSON escape like "\ud800"), which UTF-8
 * cannot hold: they become U+FFFD here, as they always did once a block was sealed.
 *
 * Not here: what a column is or how codes are stored (column-builder.ts, batch.ts).
 */
import { decodeUtf8 } from './dictionary.js';
import type { DictData } from './types.js';
import { sharedArray } from './types.js';

/** A batch's dictionary: entry i is bytes[offsets[i] .. offsets[i+1]) with hash hashes[i]. */
export interface BatchDict {
  readonly bytes: Uint8Array;
  readonly offsets: Int32Array;
  readonly hashes: Int32Array;
}

/** FNV-1a over bytes [s, e): the one hash every producer and the block dictionary use. */
export function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  for (let k = s; k < e; k++) h = Math.imul(h ^ b[k]!, 16777619);
  return h;
}

/** Open addressing over an arena of entry bytes; entries are never removed. */
export class ByteDict {
  count = 0;
  private slots = new Int32Array(64).fill(-1);
  private hashes = new Int32Array(32);
  private starts = new Int32Array(33);
  private arena = new Uint8Array(1024);
  private used = 0;
  /** Entries decoded so far (strings()), in code order. */
  private decoded: string[] = [];

  /** The code of bytes [s, e) of `buf` with hash `h`, added when new (in first-seen order). */
  code(buf: Uint8Array, s: number, e: number, h: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const len = e - s;
    let i = h & mask;
    for (;;) {
      const c = slots[i]!;
      if (c < 0) break;
      if (this.hashes[c] === h) {
        const a = this.starts[c]!;
        if (this.starts[c + 1]! - a === len) {
          const arena = this.arena;
          let k = 0;
          while (k < len && arena[a + k] === buf[s + k]) k++;
          if (k === len) return c;
        }
      }
      i = (i + 1) & mask;
    }
    const c = this.count++;
    if (c + 1 >= this.hashes.length) {
      const h2 = new Int32Array(this.hashes.length * 2); h2.set(this.hashes); this.hashes = h2;
      const s2 = new Int32Array(this.hashes.length + 1); s2.set(this.starts); this.starts = s2;
    }
    if (this.used + len > this.arena.length) {
      let size = this.arena.length * 2;
      while (size < this.used + len) size *= 2;
      const a2 = new Uint8Array(size); a2.set(this.arena.subarray(0, this.used)); this.arena = a2;
    }
    const arena = this.arena;
    const at = this.used;
    if (len > 64) arena.set(buf.subarray(s, e), at);
    else for (let k = 0; k < len; k++) arena[at + k] = buf[s + k]!;
    this.used += len;
    this.hashes[c] = h;
    this.starts[c + 1] = this.used;
    slots[i] = c;
    if (this.count * 2 > slots.length) this.rehash();
    return c;
  }

  /** The code of bytes [s, e) with hash `h`, or -1 when absent (nothing is added). */
  find(buf: Uint8Array, s: number, e: number, h: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const len = e - s;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const c = slots[i]!;
      if (c < 0) return -1;
      if (this.hashes[c] !== h) continue;
      const a = this.starts[c]!;
      if (this.starts[c + 1]! - a !== len) continue;
      const arena = this.arena;
      let k = 0;
      while (k < len && arena[a + k] === buf[s + k]) k++;
      if (k === len) return c;
    }
  }

  /** Entry c as a JS string (decoded now; strings() keeps them). */
  entry(c: number): string { return decodeUtf8(this.arena, this.starts[c]!, this.starts[c + 1]!); }
  entryLength(c: number): number { return this.starts[c + 1]! - this.starts[c]!; }

  private rehash(): void {
    const size = this.slots.length * 2;
    const slots = new Int32Array(size).fill(-1);
    const mask = size - 1;
    for (let c = 0; c < this.count; c++) {
      let i = this.hashes[c]! & mask;
      while (slots[i]! >= 0) i = (i + 1) & mask;
      slots[i] = c;
    }
    this.slots = slots;
  }

  /** Bytes held (arena and tables), for the open block's byte size. */
  get byteSize(): number { return this.used + 4 * (this.slots.length + this.hashes.length + this.starts.length); }

  /** Empties the dictionary, keeping its storage (a decoding thread reuses one per column). */
  reset(): void {
    this.count = 0;
    this.used = 0;
    this.slots.fill(-1);
    this.decoded = [];
  }

  /** Views of the entries as they are now (valid until the next code() or reset()). */
  view(): BatchDict {
    return { bytes: this.arena.subarray(0, this.used), offsets: this.starts.subarray(0, this.count + 1), hashes: this.hashes.subarray(0, this.count) };
  }

  /** Exact-length copies in plain ArrayBuffers: a batch's dictionary, to transfer. */
  toBatch(): BatchDict {
    return { bytes: this.arena.slice(0, this.used), offsets: this.starts.slice(0, this.count + 1), hashes: this.hashes.slice(0, this.count) };
  }

  /** The sealed block's dictionary (SharedArrayBuffer copies). */
  toShared(): DictData {
    const offsets = sharedArray(Int32Array, this.count + 1);
    offsets.set(this.starts.subarray(0, this.count + 1));
    const bytes = sharedArray(Uint8Array, this.used);
    bytes.set(this.arena.subarray(0, this.used));
    return { offsets, bytes };
  }

  /** Every entry as a JS string (decoded once each, as they are first asked for). */
  strings(): readonly string[] {
    for (let c = this.decoded.length; c < this.count; c++) this.decoded.push(decodeUtf8(this.arena, this.starts[c]!, this.starts[c + 1]!));
    return this.decoded;
  }
}

/** A batch dictionary of distinct JS strings (the general decoder's), in their order. */
export function batchDictOf(strings: readonly string[]): BatchDict {
  const offsets = new Int32Array(strings.length + 1);
  const parts: Buffer[] = new Array(strings.length);
  let at = 0;
  for (let i = 0; i < strings.length; i++) {
    const b = Buffer.from(strings[i]!, 'utf8');
    parts[i] = b;
    offsets[i] = at;
    at += b.length;
  }
  offsets[strings.length] = at;
  const bytes = new Uint8Array(at);
  const hashes = new Int32Array(strings.length);
  for (let i = 0; i < parts.length; i++) {
    bytes.set(parts[i]!, offsets[i]!);
    hashes[i] = hashBytes(bytes, offsets[i]!, offsets[i + 1]!);
  }
  return { bytes, offsets, hashes };
}

/** Entry i of a batch dictionary as a JS string (tests, error messages). */
export function batchDictEntry(d: BatchDict, i: number): string {
  return decodeUtf8(d.bytes, d.offsets[i]!, d.offsets[i + 1]!);
}
