/**
 * Storage types: the column layouts of a row block. These are the bytes that the scan kernels
 * read, that the shared-memory handoff moves, and that map 1:1 onto Arrow arrays (validity
 * bitmaps are Arrow's: bit i of byte i>>3, LSB first, 1 = valid). All buffers of a sealed block
 * are backed by SharedArrayBuffer so a worker thread reads them without a copy.
 *
 * Not here: how blocks are built (open-block.ts) or scanned (query/kernels.ts).
 */

/** Logical column types, as users see them in schemas and result columns. */
export type ColumnType = 'int' | 'float' | 'string' | 'bool' | 'set' | 'time';

/** Numbers: narrowed per block to Int32Array when every value is an int32, else Float64Array. */
export interface NumberColumnData {
  readonly kind: 'number';
  readonly values: Int32Array | Float64Array;
  readonly validity: Uint8Array | null;
}

/** UTF-8 dictionary: entry i is bytes[offsets[i] .. offsets[i+1]) (Arrow Utf8 layout). */
export interface DictData {
  readonly offsets: Int32Array;
  readonly bytes: Uint8Array;
}

/** Strings, dictionary-encoded per block. A block has at most 65,536 rows, so codes fit 16 bits. */
export interface StringColumnData {
  readonly kind: 'string';
  readonly codes: Uint8Array | Uint16Array;
  readonly validity: Uint8Array | null;
  readonly dict: DictData;
}

export interface BoolColumnData {
  readonly kind: 'bool';
  /** Bit-packed values, same bit order as validity. */
  readonly bits: Uint8Array;
  readonly validity: Uint8Array | null;
}

/** String sets: row i holds codes[offsets[i] .. offsets[i+1]) into the block's dictionary. */
export interface SetColumnData {
  readonly kind: 'set';
  readonly offsets: Int32Array;
  readonly codes: Int32Array;
  readonly validity: Uint8Array | null;
  readonly dict: DictData;
}

export type ColumnData = NumberColumnData | StringColumnData | BoolColumnData | SetColumnData;

/** The physical kind a logical type is stored as. */
export function physicalKind(type: ColumnType): ColumnData['kind'] {
  switch (type) {
    case 'int': case 'float': case 'time': return 'number';
    case 'string': return 'string';
    case 'bool': return 'bool';
    case 'set': return 'set';
  }
}

/** A sealed (immutable) row block as it travels to workers, to shared memory and to disk. */
export interface BlockData {
  readonly id: number;
  readonly rowCount: number;
  readonly timeMin: number;
  readonly timeMax: number;
  /** Columns absent from this block (added to the table later) are all null here. */
  readonly columns: Readonly<Record<string, ColumnData>>;
}

export function isValid(validity: Uint8Array | null, rowIndex: number): boolean {
  return validity === null || (validity[rowIndex >>> 3]! & (1 << (rowIndex & 7))) !== 0;
}

/** Allocates a zeroed typed array over a SharedArrayBuffer (so workers can read it in place). */
export function sharedArray<T extends Int32Array | Float64Array | Uint8Array | Uint16Array>(
  ctor: { new (buffer: SharedArrayBuffer, byteOffset?: number, length?: number): T; BYTES_PER_ELEMENT: number },
  length: number,
): T {
  return new ctor(new SharedArrayBuffer(Math.max(1, length) * ctor.BYTES_PER_ELEMENT), 0, length);
}

/** Bytes a column occupies (buffers only). */
export function columnByteSize(c: ColumnData): number {
  const v = c.validity ? c.validity.byteLength : 0;
  switch (c.kind) {
    case 'number': return v + c.values.byteLength;
    case 'string': return v + c.codes.byteLength + c.dict.offsets.byteLength + c.dict.bytes.byteLength;
    case 'bool': return v + c.bits.byteLength;
    case 'set': return v + c.offsets.byteLength + c.codes.byteLength + c.dict.offsets.byteLength + c.dict.bytes.byteLength;
  }
}
