/**
 * Block images: one contiguous byte layout of a sealed block, shared by the disk checkpoint
 * files and the shared-memory handoff segments. Decoding makes typed-array *views* into the
 * image (no copy), so a block read into a SharedArrayBuffer, or mapped from shared memory as
 * one, is ready to scan at once.
 *
 *   offset 0   u32 magic 'SHBK'   u32 layout version   u32 header bytes   u32 reserved
 *   offset 16  header: UTF-8 JSON (block id, rows, time range, each column's parts with
 *              element type, offset and length), padded to 8 bytes
 *   then       every part's bytes, each at an 8-byte-aligned offset
 *
 * Checksums are the caller's (the image is checksummed whole where it is stored).
 */
import { ShoalError } from '../errors.js';
import type { BlockData, ColumnData, DictData } from './types.js';

export const BLOCK_MAGIC = 0x4b424853; // 'SHBK' little-endian
/** Bump when the image layout changes: an old image is then not read (disk: error; shm: disk fallback). */
export const BLOCK_LAYOUT_VERSION = 1;
const PREFIX_BYTES = 16;

type ElemType = 'u8' | 'u16' | 'i32' | 'f64';
interface PartRef { t: ElemType; o: number; n: number }
type Parts = Record<string, PartRef>;
interface Header {
  id: number; rowCount: number; timeMin: number; timeMax: number;
  columns: { name: string; kind: ColumnData['kind']; parts: Parts }[];
}

type AnyArray = Uint8Array | Uint16Array | Int32Array | Float64Array;
const ELEM_BYTES: Readonly<Record<string, number | undefined>> = { u8: 1, u16: 2, i32: 4, f64: 8 };

function elemType(a: AnyArray): ElemType {
  if (a instanceof Uint8Array) return 'u8';
  if (a instanceof Uint16Array) return 'u16';
  if (a instanceof Int32Array) return 'i32';
  return 'f64';
}

function columnParts(c: ColumnData): Record<string, AnyArray | null> {
  const dict = (d: DictData) => ({ dictOffsets: d.offsets, dictBytes: d.bytes });
  switch (c.kind) {
    case 'number': return { values: c.values, validity: c.validity };
    case 'string': return { codes: c.codes, validity: c.validity, ...dict(c.dict) };
    case 'bool': return { bits: c.bits, validity: c.validity };
    case 'set': return { offsets: c.offsets, codes: c.codes, validity: c.validity, ...dict(c.dict) };
  }
}

const align8 = (n: number) => (n + 7) & ~7;

export interface BlockImage {
  readonly byteSize: number;
  /** [offset, bytes] pieces in order; write each at its offset (gaps are zero padding). */
  readonly pieces: readonly (readonly [number, Uint8Array])[];
}

/** Lays out a block's image without copying its buffers. */
export function encodeBlock(block: BlockData): BlockImage {
  const arrays: AnyArray[] = [];
  const header: Header = { id: block.id, rowCount: block.rowCount, timeMin: block.timeMin, timeMax: block.timeMax, columns: [] };
  const refs: PartRef[] = [];
  for (const [name, c] of Object.entries(block.columns)) {
    const parts: Parts = {};
    for (const [partName, arr] of Object.entries(columnParts(c))) {
      if (arr === null) continue;
      const ref: PartRef = { t: elemType(arr), o: 0, n: arr.length };
      parts[partName] = ref;
      refs.push(ref);
      arrays.push(arr);
    }
    header.columns.push({ name, kind: c.kind, parts });
  }
  // Offsets depend on the header length, which depends on the offsets' digits: iterate to a fixpoint.
  let headerBytes = new Uint8Array(0);
  for (let guess = 0; ;) {
    let at = align8(PREFIX_BYTES + guess);
    for (let i = 0; i < refs.length; i++) { refs[i]!.o = at; at = align8(at + arrays[i]!.byteLength); }
    headerBytes = new TextEncoder().encode(JSON.stringify(header));
    if (headerBytes.length <= guess) break;
    guess = align8(headerBytes.length + 16);
  }
  const prefix = new Uint8Array(PREFIX_BYTES + headerBytes.length);
  const dv = new DataView(prefix.buffer);
  dv.setUint32(0, BLOCK_MAGIC, true);
  dv.setUint32(4, BLOCK_LAYOUT_VERSION, true);
  dv.setUint32(8, headerBytes.length, true);
  prefix.set(headerBytes, PREFIX_BYTES);
  const pieces: [number, Uint8Array][] = [[0, prefix]];
  let end = prefix.length;
  for (let i = 0; i < refs.length; i++) {
    const a = arrays[i]!;
    pieces.push([refs[i]!.o, new Uint8Array(a.buffer, a.byteOffset, a.byteLength)]);
    end = refs[i]!.o + a.byteLength;
  }
  return { byteSize: align8(end), pieces };
}

/** Copies an image into one buffer (tests, and small blocks). */
export function imageBytes(img: BlockImage, target?: Uint8Array): Uint8Array {
  const out = target ?? new Uint8Array(img.byteSize);
  for (const [o, bytes] of img.pieces) out.set(bytes, o);
  return out;
}

function corrupt(where: string, why: string): never {
  throw new ShoalError('SHOAL_ERR_INTERNAL', `block image ${where} is corrupt: ${why}`);
}

/**
 * Views a block image at `offset` of `buffer` (zero copy). The buffer should be a
 * SharedArrayBuffer so the block can go to scan workers without a copy.
 */
export function decodeBlock(buffer: ArrayBufferLike, offset: number, byteSize: number, where: string): BlockData {
  if (byteSize < PREFIX_BYTES || offset + byteSize > buffer.byteLength) corrupt(where, 'shorter than its prefix');
  const dv = new DataView(buffer, offset, byteSize);
  if (dv.getUint32(0, true) !== BLOCK_MAGIC) corrupt(where, 'bad magic');
  const version = dv.getUint32(4, true);
  if (version !== BLOCK_LAYOUT_VERSION) corrupt(where, `layout version ${version}, this build reads ${BLOCK_LAYOUT_VERSION}`);
  const headerLen = dv.getUint32(8, true);
  if (PREFIX_BYTES + headerLen > byteSize) corrupt(where, 'header runs past the end');
  let header: Header;
  try {
    // Buffer reads a view of a SharedArrayBuffer in place (TextDecoder refuses one, and a
    // TextDecoder plus a copy per block was most of a restore's time per block: ~30 us).
    header = JSON.parse(Buffer.from(buffer, offset + PREFIX_BYTES, headerLen).toString('utf8')) as Header;
  } catch (e) {
    corrupt(where, `header is not JSON (${(e as Error).message})`);
  }
  const view = (p: PartRef | undefined, name: string): AnyArray => {
    if (p === undefined) corrupt(where, `missing part ${name}`);
    const size = ELEM_BYTES[p.t];
    if (size === undefined || p.o % 8 !== 0 || p.o + p.n * size > byteSize) corrupt(where, `part ${name} out of bounds`);
    const at = offset + p.o;
    switch (p.t) {
      case 'u8': return new Uint8Array(buffer, at, p.n);
      case 'u16': return new Uint16Array(buffer, at, p.n);
      case 'i32': return new Int32Array(buffer, at, p.n);
      case 'f64': return new Float64Array(buffer, at, p.n);
    }
  };
  const columns: Record<string, ColumnData> = {};
  for (const c of header.columns) {
    const p = c.parts;
    const validity = p.validity ? (view(p.validity, 'validity') as Uint8Array) : null;
    const dict = (): DictData => ({ offsets: view(p.dictOffsets, 'dictOffsets') as Int32Array, bytes: view(p.dictBytes, 'dictBytes') as Uint8Array });
    switch (c.kind) {
      case 'number': columns[c.name] = { kind: 'number', values: view(p.values, 'values') as Int32Array | Float64Array, validity }; break;
      case 'string': columns[c.name] = { kind: 'string', codes: view(p.codes, 'codes') as Uint8Array | Uint16Array, validity, dict: dict() }; break;
      case 'bool': columns[c.name] = { kind: 'bool', bits: view(p.bits, 'bits') as Uint8Array, validity }; break;
      case 'set': columns[c.name] = { kind: 'set', offsets: view(p.offsets, 'offsets') as Int32Array, codes: view(p.codes, 'codes') as Int32Array, validity, dict: dict() }; break;
      default: corrupt(where, `unknown column kind ${String((c as { kind: unknown }).kind)}`);
    }
    const col = columns[c.name]!;
    const rows = col.kind === 'number' ? col.values.length : col.kind === 'string' ? col.codes.length
      : col.kind === 'set' ? col.offsets.length - 1 : col.bits.length * 8;
    if (col.kind === 'bool' ? rows < header.rowCount : rows !== header.rowCount) corrupt(where, `column ${c.name} has ${rows} rows, the block ${header.rowCount}`);
  }
  return { id: header.id, rowCount: header.rowCount, timeMin: header.timeMin, timeMax: header.timeMax, columns };
}
