/**
 * Growable column builders for the open (appendable) row block. Each builder keeps the same
 * layout as a sealed column so the open block can be scanned in place, and `seal()` produces
 * the compact, immutable, SharedArrayBuffer-backed ColumnData (numbers narrowed to int32 where
 * exact, string codes narrowed to 8 bits when the dictionary is small). String dictionaries are
 * kept as UTF-8 bytes (byte-dict.ts): a batch's distinct values are looked up by their bytes and
 * the hash their decoder computed, and sealing copies the bytes as they are.
 *
 * Capacity starts small and doubles up to the block's row limit, so a table that receives a few
 * rows does not pay for 65,536.
 */
import { assert } from '../errors.js';
import { ByteDict } from './byte-dict.js';
import type { BatchColumn } from './batch.js';
import type { ColumnData, NumberColumnData, StringColumnData, BoolColumnData, SetColumnData } from './types.js';
import { sharedArray } from './types.js';

const INITIAL_CAPACITY = 1024;

/** Batch code -> block code while one batch is appended (-1: not looked up yet); reused, so an
 * append allocates nothing per column. It grows to the largest batch dictionary seen: 4 bytes
 * per distinct value of one column of one batch (a body of bodyBytesMax holds fewer than 2^25). */
let scratchMap = new Int32Array(1024);
function codeMap(entries: number): Int32Array {
  if (scratchMap.length < entries) scratchMap = new Int32Array(Math.max(entries, scratchMap.length * 2));
  scratchMap.fill(-1, 0, entries);
  return scratchMap;
}

function grow<T extends Float64Array | Uint8Array | Uint16Array | Int32Array>(arr: T, length: number): T {
  if (length <= arr.length) return arr;
  let cap = Math.max(arr.length * 2, INITIAL_CAPACITY);
  while (cap < length) cap *= 2;
  const next = new (arr.constructor as new (n: number) => T)(cap);
  next.set(arr);
  return next;
}

/** Null tracking shared by all builders: a validity bitmap materialised on the first null. */
class Validity {
  bits: Uint8Array | null = null;
  nullCount = 0;

  setNull(rowIndex: number, rowCapacity: number, rowsBefore: number): void {
    if (this.bits === null) {
      this.bits = new Uint8Array(Math.ceil(rowCapacity / 8));
      // Every earlier row was valid.
      for (let i = 0; i < rowsBefore; i++) this.bits[i >>> 3]! |= 1 << (i & 7);
    } else if (this.bits.length * 8 < rowCapacity) {
      this.bits = grow(this.bits, Math.ceil(rowCapacity / 8));
    }
    this.nullCount++;
  }

  setValid(rowIndex: number, rowCapacity: number): void {
    if (this.bits === null) return;
    if (this.bits.length * 8 < rowCapacity) this.bits = grow(this.bits, Math.ceil(rowCapacity / 8));
    this.bits[rowIndex >>> 3]! |= 1 << (rowIndex & 7);
  }

  isNull(rowIndex: number): boolean {
    return this.bits !== null && (this.bits[rowIndex >>> 3]! & (1 << (rowIndex & 7))) === 0;
  }

  view(rowCount: number): Uint8Array | null {
    return this.bits === null ? null : this.bits.subarray(0, Math.ceil(rowCount / 8));
  }

  seal(rowCount: number): Uint8Array | null {
    if (this.bits === null || this.nullCount === 0) return null;
    const out = sharedArray(Uint8Array, Math.ceil(rowCount / 8));
    out.set(this.bits.subarray(0, out.length));
    return out;
  }
}

export interface ColumnBuilder {
  readonly kind: ColumnData['kind'];
  /** Appends rows [from, to) of a batch column (or nulls when `col` is undefined). */
  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void;
  /** A view of rows [0, rowCount) for scanning the open block in place. */
  view(rowCount: number): ColumnData;
  /** Dictionary strings of a string/set builder (the open block keeps them decoded). */
  strings(): readonly string[];
  seal(rowCount: number): ColumnData;
}

export class NumberBuilder implements ColumnBuilder {
  readonly kind = 'number' as const;
  values = new Float64Array(0);
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.values = grow(this.values, end);
    if (col === undefined) {
      for (let r = rowStart; r < end; r++) this.validity.setNull(r, this.values.length, r);
      return;
    }
    assert(col.type === 'int' || col.type === 'float' || col.type === 'time', 'number builder got ' + col.type);
    this.values.set(col.values.subarray(from, to), rowStart);
    for (let i = from, r = rowStart; i < to; i++, r++) {
      if (col.nulls[i] === 1) this.validity.setNull(r, this.values.length, r);
      else this.validity.setValid(r, this.values.length);
    }
  }

  view(rowCount: number): NumberColumnData {
    return { kind: 'number', values: this.values.subarray(0, rowCount), validity: this.validity.view(rowCount) };
  }

  strings(): readonly string[] { return []; }

  seal(rowCount: number): NumberColumnData {
    const src = this.values.subarray(0, rowCount);
    let int32 = true;
    for (let i = 0; i < rowCount; i++) {
      const v = src[i]!;
      // `v | 0` equals v only for int32 values; -0 must stay float to round-trip exactly.
      if ((v | 0) !== v || (v === 0 && 1 / v < 0)) {
        if (!this.validity.isNull(i)) { int32 = false; break; }
      }
    }
    let values: Int32Array | Float64Array;
    if (int32) {
      values = sharedArray(Int32Array, rowCount);
      for (let i = 0; i < rowCount; i++) values[i] = this.validity.isNull(i) ? 0 : src[i]!;
    } else {
      values = sharedArray(Float64Array, rowCount);
      values.set(src);
    }
    return { kind: 'number', values, validity: this.validity.seal(rowCount) };
  }
}

export class StringBuilder implements ColumnBuilder {
  readonly kind = 'string' as const;
  codes = new Uint16Array(0);
  readonly dict = new ByteDict();
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.codes = grow(this.codes, end);
    if (col === undefined) {
      for (let r = rowStart; r < end; r++) this.validity.setNull(r, this.codes.length, r);
      return;
    }
    assert(col.type === 'string', 'string builder got ' + col.type);
    // The batch's dictionary is mapped into this block's lazily: each distinct value is looked
    // up once (on its first row here), in row order, so the block's dictionary comes out in
    // the order the rows first used each value.
    const batchCodes = col.codes;
    const { bytes, offsets, hashes } = col.dict;
    const map = codeMap(hashes.length);
    const codes = this.codes;
    for (let i = from, r = rowStart; i < to; i++, r++) {
      const c = batchCodes[i]!;
      if (c < 0) {
        this.validity.setNull(r, codes.length, r);
        codes[r] = 0;
        continue;
      }
      let code = map[c]!;
      if (code < 0) { code = this.dict.code(bytes, offsets[c]!, offsets[c + 1]!, hashes[c]!); map[c] = code; }
      codes[r] = code;
      this.validity.setValid(r, codes.length);
    }
  }

  view(rowCount: number): StringColumnData {
    return { kind: 'string', codes: this.codes.subarray(0, rowCount), validity: this.validity.view(rowCount), dict: EMPTY_DICT };
  }

  strings(): readonly string[] { return this.dict.strings(); }

  seal(rowCount: number): StringColumnData {
    const codes = this.dict.count <= 256 ? sharedArray(Uint8Array, rowCount) : sharedArray(Uint16Array, rowCount);
    codes.set(this.codes.subarray(0, rowCount));
    return { kind: 'string', codes, validity: this.validity.seal(rowCount), dict: this.dict.toShared() };
  }
}

export class BoolBuilder implements ColumnBuilder {
  readonly kind = 'bool' as const;
  bits = new Uint8Array(0);
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.bits = grow(this.bits, Math.ceil(end / 8));
    if (col === undefined) {
      for (let r = rowStart; r < end; r++) this.validity.setNull(r, this.bits.length * 8, r);
      return;
    }
    assert(col.type === 'bool', 'bool builder got ' + col.type);
    for (let i = from, r = rowStart; i < to; i++, r++) {
      if (col.nulls[i] === 1) { this.validity.setNull(r, this.bits.length * 8, r); continue; }
      this.validity.setValid(r, this.bits.length * 8);
      if (col.values[i] === 1) this.bits[r >>> 3]! |= 1 << (r & 7);
    }
  }

  view(rowCount: number): BoolColumnData {
    return { kind: 'bool', bits: this.bits.subarray(0, Math.ceil(rowCount / 8)), validity: this.validity.view(rowCount) };
  }

  strings(): readonly string[] { return []; }

  seal(rowCount: number): BoolColumnData {
    const bits = sharedArray(Uint8Array, Math.ceil(rowCount / 8));
    bits.set(this.bits.subarray(0, bits.length));
    return { kind: 'bool', bits, validity: this.validity.seal(rowCount) };
  }
}

export class SetBuilder implements ColumnBuilder {
  readonly kind = 'set' as const;
  offsets = new Int32Array(1);
  codes = new Int32Array(0);
  codeCount = 0;
  readonly dict = new ByteDict();
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.offsets = grow(this.offsets, end + 1);
    if (col === undefined) {
      for (let r = rowStart; r < end; r++) {
        this.validity.setNull(r, this.offsets.length, r);
        this.offsets[r + 1] = this.codeCount;
      }
      return;
    }
    assert(col.type === 'set', 'set builder got ' + col.type);
    const { bytes, offsets: dictOffsets, hashes } = col.dict;
    const map = codeMap(hashes.length);
    const elementCount = col.offsets[to]! - col.offsets[from]!;
    this.codes = grow(this.codes, this.codeCount + elementCount);
    for (let i = from, r = rowStart; i < to; i++, r++) {
      if (col.nulls[i] === 1) {
        this.validity.setNull(r, this.offsets.length, r);
        this.offsets[r + 1] = this.codeCount;
        continue;
      }
      this.validity.setValid(r, this.offsets.length);
      for (let j = col.offsets[i]!; j < col.offsets[i + 1]!; j++) {
        const c = col.codes[j]!;
        let code = map[c]!;
        if (code < 0) { code = this.dict.code(bytes, dictOffsets[c]!, dictOffsets[c + 1]!, hashes[c]!); map[c] = code; }
        this.codes[this.codeCount++] = code;
      }
      this.offsets[r + 1] = this.codeCount;
    }
  }

  view(rowCount: number): SetColumnData {
    return {
      kind: 'set', offsets: this.offsets.subarray(0, rowCount + 1), codes: this.codes.subarray(0, this.codeCount),
      validity: this.validity.view(rowCount), dict: EMPTY_DICT,
    };
  }

  strings(): readonly string[] { return this.dict.strings(); }

  seal(rowCount: number): SetColumnData {
    const offsets = sharedArray(Int32Array, rowCount + 1);
    offsets.set(this.offsets.subarray(0, rowCount + 1));
    const codeCount = offsets[rowCount]!;
    const codes = sharedArray(Int32Array, codeCount);
    codes.set(this.codes.subarray(0, codeCount));
    return { kind: 'set', offsets, codes, validity: this.validity.seal(rowCount), dict: this.dict.toShared() };
  }
}

const EMPTY_DICT = { offsets: new Int32Array(1), bytes: new Uint8Array(0) };

export function newBuilder(kind: ColumnData['kind']): ColumnBuilder {
  switch (kind) {
    case 'number': return new NumberBuilder();
    case 'string': return new StringBuilder();
    case 'bool': return new BoolBuilder();
    case 'set': return new SetBuilder();
  }
}
