/**
 * Merged string keys by their UTF-8 bytes: an open-addressing table of group ids over a growing
 * byte arena (the keys of the merged groups, in group order). A key is found by its hash and then
 * compared byte for byte, so two keys merge exactly when their bytes are equal (NULL is its own
 * group). No JS string is made for a key here: merge.ts decodes only what it answers with.
 */
import { hashBytes, type Utf8Keys } from '../plan/utf8-keys.js';

export class Utf8Table {
  private bytes = new Uint8Array(1 << 16);
  private at = 0;
  private offsets = new Int32Array(1025);
  private hashes = new Int32Array(1024);
  /** Pairs [hash, group] (group -1: empty): the hash is checked before any key is touched. */
  private slots = new Int32Array(4096).fill(-1);
  count = 0;
  nullAt = -1;
  /** Whether the last idOf made its group. */
  made = false;

  /** The group of key bytes[start, end), made (as group `this.count`) when new (`made`). */
  idOf(src: Uint8Array, start: number, end: number): number {
    const h = hashBytes(src, start, end) | 0;
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const len = end - start;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const g = slots[2 * i + 1]!;
      if (g < 0) {
        const id = this.append(src, start, end, h);
        slots[2 * i] = h; slots[2 * i + 1] = id;
        if (4 * this.count > slots.length) this.rehash();
        this.made = true;
        return id;
      }
      if (slots[2 * i] !== h) continue;
      const o = this.offsets[g]!;
      if (this.offsets[g + 1]! - o !== len) continue;
      let same = true;
      for (let j = 0; j < len; j++) if (this.bytes[o + j] !== src[start + j]) { same = false; break; }
      if (same) { this.made = false; return g; }
    }
  }

  /** The NULL key's group. */
  nullId(): number {
    this.made = this.nullAt < 0;
    // An empty byte range that no lookup finds (it is not in `slots`).
    if (this.made) this.nullAt = this.append(this.bytes, 0, 0, 0);
    return this.nullAt;
  }

  private append(src: Uint8Array, start: number, end: number, h: number): number {
    const len = end - start;
    if (this.bytes.length < this.at + len) {
      const next = new Uint8Array(Math.max(this.bytes.length * 2, this.at + len));
      next.set(this.bytes.subarray(0, this.at));
      this.bytes = next;
    }
    this.bytes.set(src.subarray(start, end), this.at);
    this.at += len;
    const g = this.count++;
    if (this.offsets.length < this.count + 1) { const next = new Int32Array(this.offsets.length * 2); next.set(this.offsets); this.offsets = next; }
    if (this.hashes.length < this.count) { const next = new Int32Array(this.hashes.length * 2); next.set(this.hashes); this.hashes = next; }
    this.hashes[g] = h;
    this.offsets[g + 1] = this.at;
    return g;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = (slots.length >> 1) - 1;
    for (let g = 0; g < this.count; g++) {
      if (g === this.nullAt) continue;
      const h = this.hashes[g]!;
      let i = h & mask;
      while (slots[2 * i + 1] !== -1) i = (i + 1) & mask;
      slots[2 * i] = h; slots[2 * i + 1] = g;
    }
    this.slots = slots;
  }

  keys(): Utf8Keys {
    return { utf8: true, offsets: this.offsets.slice(0, this.count + 1), bytes: this.bytes.slice(0, this.at), nullAt: this.nullAt };
  }
}
