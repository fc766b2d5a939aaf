/**
 * The fast path of the ingest decoder: request body bytes straight to a ColumnarBatch, without
 * building a JS object per event. One pass over the bytes checks the JSON grammar and the
 * decoder's value rules, writes numbers into typed arrays and looks each string up by its bytes
 * in the column's batch dictionary (byte-dict.ts): no JS string is made for a value at all
 * (JSON.parse makes one per value, then the decoder hashes it again). Measured here: ~2x the
 * events per second of JSON.parse + buildBatch on narrow events (bench/RESULTS.md, issue 15).
 *
 * It takes only what it can take exactly: flat objects of strings, numbers, booleans, nulls and
 * string arrays, NDJSON or a JSON array of objects. Anything else (an error of any kind, a
 * nested object, an escaped field name, a duplicate or integer-like key, a byte-order mark, a
 * time string) makes it return null, and decodeBody runs the general path (JSON.parse +
 * buildBatch), which gives the batch or the exact error, row, line and column. So errors and
 * their order always come from the general path, and the batch this path returns must equal the
 * general path's, value for value and in the same column and dictionary order
 * (test/ingest-scan.test.ts checks that on random and hostile bodies).
 *
 * Not here: the rules themselves (ingest-decoder.ts is their definition; this mirrors them).
 */
import { isUtf8 } from 'node:buffer';
import { LIMITS } from '../limits.js';
import { packBatch, type BatchColumn, type ColumnarBatch } from './batch.js';
import { ByteDict, hashBytes } from './byte-dict.js';
import { buildBatch, parseBody, parseTime, type BodyFormat } from './ingest-decoder.js';
import type { ColumnType } from './types.js';

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a, LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;
const SPACE = 0x20, TAB = 0x09, LF = 0x0a, CR = 0x0d, MINUS = 0x2d, PLUS = 0x2b, DOT = 0x2e, ZERO = 0x30, NINE = 0x39;
/** Integers of at most this many digits are exact when accumulated digit by digit (< 2^53). */
const EXACT_DIGITS_MAX = 15;
/** 10^0 .. 10^15, each exact as a double. */
const POW10: number[] = [1];
for (let k = 1; k <= EXACT_DIGITS_MAX; k++) POW10.push(POW10[k - 1]! * 10);

/** A field name seen in this batch, whether or not it has a column (null values make none). */
interface Key {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The row that last had this key: a second one in the same row is a duplicate key. */
  seenRow: number;
  column: Column | null;
}

interface Column {
  type: ColumnType;
  /** Where its arrays come from (and where a grown one goes back). */
  readonly slot: Slot;
  nums: Float64Array | null;
  bools: Uint8Array | null;
  nulls: Uint8Array | null;
  codes: Int32Array | null;
  codeCount: number;
  offsets: Int32Array | null;
  lastRow: number;
  dict: ByteDict | null;
}

/**
 * Arrays a column's values are scanned into, kept from one scan to the next on this thread (the
 * n-th column of every batch uses the n-th slot); the finished batch is copied out of them into
 * one new buffer (packBatch). Reuse keeps a decode from allocating, and a decoding thread from
 * sweeping, a dozen ArrayBuffers per batch. Bounded by the largest batch seen: at most
 * columnsPerTableMax slots of eventsPerBatchMax rows.
 */
interface Slot { f64: Float64Array; u8: Uint8Array; nulls: Uint8Array; i32: Int32Array; offsets: Int32Array; dict: ByteDict }
const slots: Slot[] = [];
let timeScratch = new Float64Array(0);
function atLeast<T extends Float64Array | Uint8Array | Int32Array>(a: T, n: number): T {
  return a.length >= n ? a : new (a.constructor as new (n: number) => T)(Math.max(n, a.length * 2));
}

function newColumn(type: ColumnType, rows: number, index: number): Column {
  const s = (slots[index] ??= { f64: new Float64Array(0), u8: new Uint8Array(0), nulls: new Uint8Array(0), i32: new Int32Array(0), offsets: new Int32Array(0), dict: new ByteDict() });
  const c: Column = { type, slot: s, nums: null, bools: null, nulls: null, codes: null, codeCount: 0, offsets: null, lastRow: -1, dict: null };
  if (type === 'int' || type === 'float' || type === 'bool' || type === 'set') { s.nulls = atLeast(s.nulls, rows); s.nulls.fill(1, 0, rows); c.nulls = s.nulls; }
  if (type === 'int' || type === 'float') { s.f64 = atLeast(s.f64, rows); s.f64.fill(0, 0, rows); c.nums = s.f64; }
  else if (type === 'bool') { s.u8 = atLeast(s.u8, rows); s.u8.fill(0, 0, rows); c.bools = s.u8; }
  else if (type === 'string') { s.i32 = atLeast(s.i32, rows); s.i32.fill(-1, 0, rows); c.codes = s.i32; s.dict.reset(); c.dict = s.dict; }
  else { s.i32 = atLeast(s.i32, Math.max(16, rows)); c.codes = s.i32; s.offsets = atLeast(s.offsets, rows + 1); s.offsets.fill(0, 0, rows + 1); c.offsets = s.offsets; s.dict.reset(); c.dict = s.dict; }
  return c;
}

const numeric = (t: ColumnType) => t === 'int' || t === 'float';

/** What column creation needs: the batch's columns so far and the table's schema. */
interface Ctx {
  readonly columns: Map<string, Column>;
  readonly schema: ReadonlyMap<string, { type: ColumnType }>;
  readonly columnsMax: number;
  /** Rows the column arrays are sized for. */
  readonly rows: number;
  /** Columns of this batch the table does not have yet. */
  newColumns: number;
}

/** A decoded batch and what its stages cost (the leaf's ingest stage counters): the fast scan,
 * or (when the scan declined, its time included in scanMs) JSON.parse and building columns.
 * `buffer`: the one buffer holding all of the batch's arrays, when it is packed (scanBody's). */
export interface Decoded { readonly batch: ColumnarBatch; readonly buffer: ArrayBuffer | null; readonly scanMs: number; readonly parseMs: number; readonly buildMs: number }

/**
 * The whole decode of one request body against `schema`: the fast path when it takes the body,
 * else parseBody + buildBatch, which also give every error. Throws what buildBatch throws.
 */
export function decodeBody(body: Uint8Array, format: BodyFormat, schema: ReadonlyMap<string, { type: ColumnType }>, nowSeconds: number): Decoded {
  const t0 = performance.now();
  const fast = scanBody(body, format, schema, nowSeconds);
  const t1 = performance.now();
  if (fast !== null) return { batch: fast.batch, buffer: fast.buffer, scanMs: t1 - t0, parseMs: 0, buildMs: 0 };
  const { events, lines } = parseBody(body, format);
  const t2 = performance.now();
  const batch = buildBatch(events, schema, nowSeconds, lines);
  return { batch, buffer: null, scanMs: t1 - t0, parseMs: t2 - t1, buildMs: performance.now() - t2 };
}

/** Thrown inside the scan for anything the fast path does not take; never leaves this module. */
class NotFast extends Error {}
const NOT_FAST = new NotFast('not for the fast path');

/**
 * The batch the general decoder would build from `body` against `schema` (packed into one new
 * buffer), or null when the body is anything but plain (see the module header): then the caller
 * runs the general path.
 */
export function scanBody(
  body: Uint8Array, format: BodyFormat, schema: ReadonlyMap<string, { type: ColumnType }>, nowSeconds: number,
  columnsMax: number = LIMITS.columnsPerTableMax,
): { batch: ColumnarBatch; buffer: ArrayBuffer } | null {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const n = buf.length;
  if (n === 0 || !isUtf8(buf)) return null;
  // Every event starts with '{' outside a string: their count bounds the rows.
  let bound = 0;
  for (let at = buf.indexOf(LBRACE); at >= 0 && bound <= LIMITS.eventsPerBatchMax; at = buf.indexOf(LBRACE, at + 1)) bound++;
  if (bound === 0 || bound > LIMITS.eventsPerBatchMax) return null;
  try {
    return scan(buf, format, schema, nowSeconds, columnsMax, bound);
  } catch (e) {
    if (e instanceof NotFast) return null;
    throw e;
  }
}

function scan(buf: Buffer, format: BodyFormat, schema: ReadonlyMap<string, { type: ColumnType }>, nowSeconds: number,
  columnsMax: number, bound: number): { batch: ColumnarBatch; buffer: ArrayBuffer } {
  const n = buf.length;
  let p = 0;
  while (p < n && buf[p]! <= SPACE) p++;
  if (p === n) throw NOT_FAST;
  const json = format === 'json' || (format === 'auto' && buf[p] === LBRACKET);
  if (json) {
    if (buf[p] !== LBRACKET) throw NOT_FAST;
    p++;
  }
  timeScratch = atLeast(timeScratch, bound);
  const time = timeScratch;
  const keys = new Map<string, Key>();
  const columns = new Map<string, Column>();
  const ctx: Ctx = { columns, schema, columnsMax, rows: bound, newColumns: 0 };
  /** The keys of the previous row by position: the next row's are usually the same. */
  const order: Key[] = [];
  let row = 0;
  for (;;) {
    // Between events: whitespace (newlines included), then '{', or the end.
    let b = buf[p];
    while (b === SPACE || b === LF || b === CR || b === TAB) b = buf[++p];
    if (p >= n) { if (json) throw NOT_FAST; break; }
    if (json && row > 0) {
      if (b === RBRACKET) break;
      if (b !== COMMA) throw NOT_FAST;
      b = buf[++p];
      while (b === SPACE || b === LF || b === CR || b === TAB) b = buf[++p];
    } else if (json && b === RBRACKET) {
      throw NOT_FAST; // an empty array: the general path answers it
    }
    if (b !== LBRACE) throw NOT_FAST;
    if (row >= bound) throw NOT_FAST;
    p++;
    let timeSet = false;
    let field = 0;
    // Inside an NDJSON line a newline ends the line: it is not whitespace there.
    b = buf[p];
    while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
    if (b === RBRACE) { p++; }
    else {
      for (;;) {
        if (b !== QUOTE) throw NOT_FAST;
        const ks = ++p;
        let digitsOnly = true;
        let asciiKey = true;
        for (;;) {
          const x = buf[p];
          if (x === QUOTE) break;
          // Escapes and control bytes in names: the general path.
          if (x === undefined || x === BACKSLASH || x < SPACE) throw NOT_FAST;
          if (x < ZERO || x > NINE) digitsOnly = false;
          if (x >= 0x80) asciiKey = false;
          p++;
        }
        const ke = p++;
        // An integer-like name is enumerated out of text order by for..in (the general path's
        // order); an empty or over-long one is an error.
        if (ke === ks || digitsOnly) throw NOT_FAST;
        let key: Key | undefined = order[field];
        if (key === undefined || key.bytes.length !== ke - ks || !sameBytes(buf, ks, key.bytes)) {
          const name = buf.toString(asciiKey ? 'latin1' : 'utf8', ks, ke);
          if (name === '__proto__' || name.length > LIMITS.columnNameBytesMax) throw NOT_FAST;
          key = keys.get(name);
          if (key === undefined) { key = { name, bytes: buf.subarray(ks, ke), seenRow: -1, column: null }; keys.set(name, key); }
          order[field] = key;
        }
        field++;
        if (key.seenRow === row) throw NOT_FAST; // a duplicate key: JSON.parse keeps the last
        key.seenRow = row;
        b = buf[p];
        while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
        if (b !== COLON) throw NOT_FAST;
        b = buf[++p];
        while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
        const isTime = key.name === 'time';
        // ---- the value ----
        if (b === QUOTE) {
          if (isTime) throw NOT_FAST; // an ISO time string: the general path parses it
          const col = columnFor(key, 'string', ctx);
          col.codes![row] = stringCode(buf, p, col.dict!);
          p = tokenEnd + 1;
        } else if (b === MINUS || (b !== undefined && b >= ZERO && b <= NINE)) {
          const s = p;
          let neg = false;
          if (b === MINUS) { neg = true; b = buf[++p]; }
          // Digits accumulate into an integer m; with at most 15 of them and no exponent the value
          // is m / 10^k, one correctly rounded division of two exact doubles: the double nearest
          // the decimal, as JSON.parse gives (Clinger's fast path). Else Number() of the text.
          let m = 0;
          let digits = 0;
          let fraction = 0;
          if (b === ZERO) { p++; digits = 1; }
          else if (b !== undefined && b >= ZERO && b <= NINE) {
            while (b !== undefined && b >= ZERO && b <= NINE) { m = m * 10 + (b - ZERO); digits++; b = buf[++p]; }
          } else throw NOT_FAST;
          b = buf[p];
          let exponent = false;
          if (b === DOT) {
            b = buf[++p];
            if (b === undefined || b < ZERO || b > NINE) throw NOT_FAST;
            while (b !== undefined && b >= ZERO && b <= NINE) { m = m * 10 + (b - ZERO); digits++; fraction++; b = buf[++p]; }
          }
          if (b === 0x65 || b === 0x45) {
            exponent = true;
            b = buf[++p];
            if (b === PLUS || b === MINUS) b = buf[++p];
            if (b === undefined || b < ZERO || b > NINE) throw NOT_FAST;
            while (b !== undefined && b >= ZERO && b <= NINE) b = buf[++p];
          }
          let value: number;
          if (!exponent && digits <= EXACT_DIGITS_MAX) {
            const abs = fraction === 0 ? m : m / POW10[fraction]!;
            value = neg ? -abs : abs;
          } else {
            value = Number(buf.toString('latin1', s, p));
          }
          if (!Number.isFinite(value)) throw NOT_FAST;
          if (isTime) {
            time[row] = timeOf(value, nowSeconds);
            timeSet = true;
          } else {
            const type: ColumnType = Number.isInteger(value) && Math.abs(value) <= LIMITS.integerAbsMax ? 'int' : 'float';
            const col = columnFor(key, type, ctx);
            col.nums![row] = value;
            col.nulls![row] = 0;
          }
        } else if (b === 0x74 || b === 0x66) { // true, false
          const t = b === 0x74;
          if (t ? !(buf[p + 1] === 0x72 && buf[p + 2] === 0x75 && buf[p + 3] === 0x65) : !(buf[p + 1] === 0x61 && buf[p + 2] === 0x6c && buf[p + 3] === 0x73 && buf[p + 4] === 0x65)) throw NOT_FAST;
          p += t ? 4 : 5;
          if (isTime) throw NOT_FAST;
          const col = columnFor(key, 'bool', ctx);
          col.bools![row] = t ? 1 : 0;
          col.nulls![row] = 0;
        } else if (b === 0x6e) { // null: no value (time: the arrival time)
          if (!(buf[p + 1] === 0x75 && buf[p + 2] === 0x6c && buf[p + 3] === 0x6c)) throw NOT_FAST;
          p += 4;
          if (isTime) { time[row] = nowSeconds; timeSet = true; }
        } else if (b === LBRACKET) {
          if (isTime) throw NOT_FAST;
          p = setValue(buf, p, json, columnFor(key, 'set', ctx), row);
        } else {
          throw NOT_FAST; // a nested object, or not JSON
        }
        // Bare words run on ('truex', '12a'): the next byte must end the value.
        b = buf[p];
        while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
        if (b === COMMA) {
          b = buf[++p];
          while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
          continue;
        }
        if (b === RBRACE) { p++; break; }
        throw NOT_FAST;
      }
    }
    if (!timeSet) time[row] = nowSeconds;
    row++;
    if (!json) {
      // The rest of an NDJSON line: whitespace only.
      b = buf[p];
      while (b === SPACE || b === CR || b === TAB) b = buf[++p];
      if (p < n && b !== LF) throw NOT_FAST;
    }
  }
  if (json) {
    p++; // the ']'
    while (p < n && (buf[p] === SPACE || buf[p] === LF || buf[p] === CR || buf[p] === TAB)) p++;
    if (p !== n) throw NOT_FAST;
  }
  if (row === 0) throw NOT_FAST;
  return finish(row, time, columns);
}

function sameBytes(buf: Buffer, at: number, bytes: Uint8Array): boolean {
  for (let k = 0; k < bytes.length; k++) if (buf[at + k] !== bytes[k]) return false;
  return true;
}

function timeOf(value: number, nowSeconds: number): number {
  try {
    return parseTime(value, nowSeconds, () => '', {});
  } catch {
    throw NOT_FAST;
  }
}

/** The key's column for a value of `type`, created as buildBatch creates it; a type conflict or
 * the column limit is the general path's error. */
function columnFor(key: Key, type: ColumnType, ctx: Ctx): Column {
  const c = key.column;
  if (c !== null) {
    if (c.type !== type) {
      if (!(numeric(c.type) && numeric(type))) throw NOT_FAST;
      if (c.type === 'int' && type === 'float') c.type = 'float';
    }
    return c;
  }
  const existing = ctx.schema.get(key.name)?.type;
  if (existing === undefined) {
    ctx.newColumns++;
    if (ctx.schema.size + ctx.newColumns > ctx.columnsMax) throw NOT_FAST;
  }
  const base = existing ?? type;
  if (base !== type && !(numeric(base) && numeric(type))) throw NOT_FAST;
  const col = newColumn(base === 'int' && type === 'float' ? 'float' : base, ctx.rows, ctx.columns.size);
  key.column = col;
  ctx.columns.set(key.name, col);
  return col;
}

/** Where the last string token scanned ended (at its closing quote), and what it held: results
 * of stringToken kept here, not in an object per value (a wide event has ~17 strings). */
let tokenEnd = 0;
let tokenHash = 0;
let tokenEscaped = false;

/** Scans the string at buf[p] ('"') into the token fields above. */
function stringToken(buf: Buffer, p: number): void {
  let q = p + 1;
  let h = 0x811c9dc5 | 0;
  let escaped = false;
  for (;;) {
    const x = buf[q];
    if (x === QUOTE) break;
    if (x === undefined || x < SPACE) throw NOT_FAST;
    if (x === BACKSLASH) { escaped = true; q += 2; continue; }
    h = Math.imul(h ^ x, 16777619);
    q++;
  }
  tokenEnd = q;
  tokenHash = h;
  tokenEscaped = escaped;
}

const SURROGATE = /[\ud800-\udfff]/;

/** The code in `dict` of the string at buf[p]; the token ends at tokenEnd (its closing quote).
 * Escapes are decoded by JSON.parse of the token (the general path's own reading). */
function stringCode(buf: Buffer, p: number, dict: ByteDict): number {
  stringToken(buf, p);
  const s = p + 1;
  const end = tokenEnd;
  if (end - s > LIMITS.stringBytesMax) throw NOT_FAST; // maybe over the limit: the general path says
  if (!tokenEscaped) return dict.code(buf, s, end, tokenHash);
  let value: string;
  try { value = JSON.parse(buf.toString('utf8', p, end + 1)) as string; } catch { throw NOT_FAST; }
  // Keyed by the value's UTF-8 bytes; a lone surrogate has none of its own (it would meet U+FFFD).
  if (SURROGATE.test(value)) throw NOT_FAST;
  const bytes = Buffer.from(value, 'utf8');
  const code = dict.code(bytes, 0, bytes.length, hashBytes(bytes, 0, bytes.length));
  tokenEnd = end;
  return code;
}

/** A string array at buf[p] ('[') into set column `col`; returns where it ends (after ']'). */
function setValue(buf: Buffer, p: number, json: boolean, col: Column, row: number): number {
  const offsets = col.offsets!;
  for (let k = col.lastRow + 1; k <= row; k++) offsets[k] = col.codeCount;
  let b = buf[++p];
  while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
  let count = 0;
  if (b !== RBRACKET) {
    for (;;) {
      if (b !== QUOTE) throw NOT_FAST; // a non-string element: the general path's error
      if (++count > LIMITS.setElementsMax) throw NOT_FAST;
      const code = stringCode(buf, p, col.dict!);
      if (col.codeCount >= col.codes!.length) {
        const grown = new Int32Array(col.codes!.length * 2);
        grown.set(col.codes!);
        col.codes = grown;
        col.slot.i32 = grown;
      }
      col.codes![col.codeCount++] = code;
      p = tokenEnd + 1;
      b = buf[p];
      while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
      if (b === RBRACKET) break;
      if (b !== COMMA) throw NOT_FAST;
      b = buf[++p];
      while (b === SPACE || b === CR || b === TAB || (json && b === LF)) b = buf[++p];
    }
  }
  offsets[row + 1] = col.codeCount;
  col.nulls![row] = 0;
  col.lastRow = row;
  return p + 1;
}

/** The batch, copied out of the scratch arrays into one new buffer (packBatch). */
function finish(rowCount: number, time: Float64Array, columns: Map<string, Column>): { batch: ColumnarBatch; buffer: ArrayBuffer } {
  const out = new Map<string, BatchColumn>();
  for (const [name, c] of columns) {
    switch (c.type) {
      case 'int': case 'float': case 'time':
        out.set(name, { type: c.type, values: c.nums!.subarray(0, rowCount), nulls: c.nulls!.subarray(0, rowCount) });
        break;
      case 'bool':
        out.set(name, { type: 'bool', values: c.bools!.subarray(0, rowCount), nulls: c.nulls!.subarray(0, rowCount) });
        break;
      case 'string':
        out.set(name, { type: 'string', codes: c.codes!.subarray(0, rowCount), dict: c.dict!.view() });
        break;
      case 'set':
        for (let k = c.lastRow + 2; k <= rowCount; k++) c.offsets![k] = c.codeCount;
        out.set(name, { type: 'set', offsets: c.offsets!.subarray(0, rowCount + 1), codes: c.codes!.subarray(0, c.codeCount), dict: c.dict!.view(), nulls: c.nulls!.subarray(0, rowCount) });
        break;
    }
  }
  return packBatch({ rowCount, time: time.subarray(0, rowCount), columns: out });
}
