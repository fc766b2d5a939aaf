/**
 * Growable column builders for the open (appendable) row block. Each builder keeps the same
 * layout as a sealed column so the open block can be scanned in place, and `seal()` produces
 * the compact, immutable, SharedArrayBuffer-backed ColumnData (numbers narrowed to int32 where
 * exact, string codes narrowed to 8 bits when the dictionary is small).
 *
 * Capacity starts small and doubles up to the block's row limit, so a table that receives a few
 * rows does not pay for 65,536.
 */
import { assert } from '../errors.js';
import { encodeDict } from './dictionary.js';
import type { BatchColumn } from './batch.js';
import type { ColumnData, NumberColumnData, StringColumnData, BoolColumnData, SetColumnData } from './types.js';
import { sharedArray } from './types.js';

const INITIAL_CAPACITY = 1024;

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
  readonly dict: string[] = [];
  readonly lookup = new Map<string, number>();
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.codes = grow(this.codes, end);
    if (col === undefined) {
      for (let r = rowStart; r < end; r++) this.validity.setNull(r, this.codes.length, r);
      return;
    }
    assert(col.type === 'string', 'string builder got ' + col.type);
    const values = col.values;
    for (let i = from, r = rowStart; i < to; i++, r++) {
      const s = values[i];
      if (s === null || s === undefined) {
        this.validity.setNull(r, this.codes.length, r);
        this.codes[r] = 0;
        continue;
      }
      let code = this.lookup.get(s);
      if (code === undefined) {
        code = this.dict.length;
        this.dict.push(s);
        this.lookup.set(s, code);
      }
      this.codes[r] = code;
      this.validity.setValid(r, this.codes.length);
    }
  }

  view(rowCount: number): StringColumnData {
    return { kind: 'string', codes: this.codes.subarray(0, rowCount), validity: this.validity.view(rowCount), dict: EMPTY_DICT };
  }

  strings(): readonly string[] { return this.dict; }

  seal(rowCount: number): StringColumnData {
    const codes = this.dict.length <= 256 ? sharedArray(Uint8Array, rowCount) : sharedArray(Uint16Array, rowCount);
    codes.set(this.codes.subarray(0, rowCount));
    return { kind: 'string', codes, validity: this.validity.seal(rowCount), dict: encodeDict(this.dict) };
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
  readonly dict: string[] = [];
  readonly lookup = new Map<string, number>();
  readonly validity = new Validity();

  append(rowStart: number, col: BatchColumn | undefined, from: number, to: number): void {
    const end = rowStart + (to - from);
    this.offsets = grow(this.offsets, end + 1);
    if (col !== undefined) assert(col.type === 'set', 'set builder got ' + col.type);
    for (let i = from, r = rowStart; i < to; i++, r++) {
      const set = col === undefined ? null : (col.values[i] as readonly string[] | null);
      if (set === null || set === undefined) {
        this.validity.setNull(r, this.offsets.length, r);
        this.offsets[r + 1] = this.codeCount;
        continue;
      }
      this.validity.setValid(r, this.offsets.length);
      this.codes = grow(this.codes, this.codeCount + set.length);
      for (const s of set) {
        let code = this.lookup.get(s);
        if (code === undefined) {
          code = this.dict.length;
          this.dict.push(s);
          this.lookup.set(s, code);
        }
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

  strings(): readonly string[] { return this.dict; }

  seal(rowCount: number): SetColumnData {
    const offsets = sharedArray(Int32Array, rowCount + 1);
    offsets.set(this.offsets.subarray(0, rowCount + 1));
    const codeCount = offsets[rowCount]!;
    const codes = sharedArray(Int32Array, codeCount);
    codes.set(this.codes.subarray(0, codeCount));
    return { kind: 'set', offsets, codes, validity: this.validity.seal(rowCount), dict: encodeDict(this.dict) };
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
