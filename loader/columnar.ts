/**
 * The columnar readers' fast path (Parquet): a chunk's columns checked a column at a time and
 * written straight to NDJSON bytes, instead of one JS object per row, checkRow on it, and
 * JSON.stringify. Building the objects and serialising them was ~50% of the Parquet loader's
 * CPU with GC (bench/RESULTS.md "Load"); this path makes no object per row and almost no string
 * per value (numbers are written digit by digit; only those with more than 6 decimals or beyond
 * 2^32 go through String()).
 *
 * Like the NDJSON fast path (fast-check.ts) it decides nothing by itself: it takes a chunk only
 * when every row of it would pass prepare.ts unchanged in meaning and the general path would
 * write exactly these bytes, and otherwise returns null, so the chunk is made into rows and goes
 * the general way, which finds and reports the bad rows. It declines on: a time that is missing
 * or unusable in any row, any value checkRow would refuse (the same classOf decides), a column
 * with two classes or a class other than the table's, more columns than the table may have, a
 * field name out of bounds, or a value in a `time` column beside a renamed time column.
 * Byte-identical to JSON.stringify(row): keys in column order with nulls left out, `time` in
 * place (or last when --time-column renamed it, as prepare.ts appends it), strings escaped by
 * JSON.stringify whenever they hold anything but printable ASCII. test/loader-columnar.test.ts
 * compares both paths on random chunks.
 *
 * Not here: reading (read-parquet.ts), the rules (row-check.ts), times (time-column.ts).
 */
import { LIMITS } from '../query/limits.js';
import type { RowOptions } from './options.js';
import { classOf, type ColumnTypes, type ValueClass } from './row-check.js';
import type { Row, RowChunk } from './source.js';
import { inTimeRange, toSeconds } from './time-column.js';

export type Values = ArrayLike<unknown>;

/** Rows [from, to) of a reader's decoded columns, in the file's column order. */
export interface ColumnarRows {
  readonly names: readonly string[];
  readonly values: readonly Values[];
  readonly from: number;
  readonly to: number;
}

/** The chunk as row objects, for the general path (nulls left out, as the readers do). */
export function materialize(chunk: RowChunk): RowChunk {
  const { names, values, from, to } = chunk.columnar!;
  const rows: Row[] = new Array(to - from);
  for (let i = from; i < to; i++) {
    const row: Row = {};
    for (let c = 0; c < names.length; c++) {
      const v = values[c]![i];
      if (v !== null && v !== undefined) row[names[c]!] = v;
    }
    rows[i - from] = row;
  }
  return { rows, positions: chunk.positions, raws: null, unreadable: chunk.unreadable, bytesDone: chunk.bytesDone };
}

const enum Kind { Number, String, Bool, Set }
const KIND: Record<ValueClass, Kind> = { number: Kind.Number, string: Kind.String, bool: Kind.Bool, set: Kind.Set };

/** Fixed-point digits of a non-integral number when they are its shortest form (see below). */
const FRACTION_DIGITS = 6;
const FRACTION_SCALE = 1e6;
/** Below 2^32 a double's spacing is under 1e-6, so at most one 6-decimal number rounds to it. */
const FRACTION_ABS_MAX = 2 ** 32;

/** NDJSON bytes, in a buffer reused across chunks (its contents are copied into a string at the end). */
class ByteWriter {
  buf = Buffer.allocUnsafe(1 << 20);
  pos = 0;
  /** Whether anything outside ASCII was written (then the bytes are decoded as UTF-8). */
  wide = false;
  private readonly digits = new Uint8Array(24);

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = b[i]!;
    this.pos = p;
  }

  /** A JSON string: copied as it is when it is printable ASCII without `"` or `\`, else escaped
   * by JSON.stringify (which also writes lone surrogates as \u escapes, as the general path does). */
  string(s: string): void {
    const n = s.length;
    this.ensure(n + 2);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) {
        const json = JSON.stringify(s);
        this.ensure(json.length * 3);
        this.pos += this.buf.write(json, this.pos, 'utf8');
        this.wide = true;
        return;
      }
      buf[p++] = c;
    }
    buf[p++] = 0x22;
    this.pos = p;
  }

  /**
   * A finite number exactly as JSON.stringify (String) writes it. Safe integers digit by digit.
   * A non-integral v with 1e-6 <= |v| < 2^32 that equals k / 1e6 for an integer k: JavaScript
   * writes the shortest decimal that reads back as v, in fixed notation in this range; the
   * 6-decimal k/1e6 (trailing zeros cut) reads back as v (the division is correctly rounded), no
   * other number of at most 6 decimals does (two such are 1e-6 apart, more than v's spacing), and
   * one with more decimals has more digits: so it is that shortest form. Anything else: String().
   */
  number(v: number): void {
    if (Number.isSafeInteger(v)) {
      this.integer(v);
      return;
    }
    const abs = Math.abs(v);
    if (abs >= 1 / FRACTION_SCALE && abs < FRACTION_ABS_MAX) {
      const k = Math.round(abs * FRACTION_SCALE);
      if (k / FRACTION_SCALE === abs) {
        const whole = Math.floor(k / FRACTION_SCALE);
        let frac = k - whole * FRACTION_SCALE;
        this.integer(v < 0 ? -whole : whole, v < 0);
        let places = FRACTION_DIGITS;
        while (frac % 10 === 0) { frac /= 10; places--; }
        this.ensure(places + 1);
        const buf = this.buf;
        buf[this.pos] = 0x2e;
        for (let d = places; d >= 1; d--) {
          const q = Math.floor(frac / 10);
          buf[this.pos + d] = 0x30 + (frac - q * 10);
          frac = q;
        }
        this.pos += places + 1;
        return;
      }
    }
    this.ascii(String(v));
  }

  /** A safe integer's digits (with a minus sign when negative, or when `minus` says so: -0.5),
   * two at a time from a table; int32 arithmetic while the value fits. */
  private integer(v: number, minus = false): void {
    this.ensure(17);
    const buf = this.buf;
    if (v < 0 || minus) { buf[this.pos++] = 0x2d; v = Math.abs(v); }
    const digits = this.digits;
    let n = 0;
    while (v >= 2 ** 31) {
      const q = Math.floor(v / 100);
      const r = (v - q * 100) * 2;
      digits[n++] = PAIRS[r + 1]!;
      digits[n++] = PAIRS[r]!;
      v = q;
    }
    let u = v | 0;
    while (u >= 100) {
      const q = (u / 100) | 0;
      const r = (u - q * 100) * 2;
      digits[n++] = PAIRS[r + 1]!;
      digits[n++] = PAIRS[r]!;
      u = q;
    }
    if (u >= 10) {
      digits[n++] = PAIRS[u * 2 + 1]!;
      digits[n++] = PAIRS[u * 2]!;
    } else digits[n++] = 0x30 + u;
    let p = this.pos;
    while (n > 0) buf[p++] = digits[--n]!;
    this.pos = p;
  }
}

/** "00".."99" as byte pairs. */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 0x30 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10));

const out = new ByteWriter();

/**
 * NDJSON lines for every row of `rows`, or null when the chunk must go the general way (see the
 * header). On success the classes of new columns are recorded in `types`, as checkRow would.
 */
export function writeColumnar(
  rows: ColumnarRows, opts: RowOptions, types: ColumnTypes, secondsColumns: ReadonlySet<string>,
): string[] | null {
  const { names, values, from, to } = rows;
  const timeColumn = opts.timeColumn;
  const renamed = timeColumn !== 'time';
  const timeAt = names.indexOf(timeColumn);
  // (A `time` column beside a renamed time column: declined below when it holds a value; when
  // it holds none it writes nothing, and the row path's row has no `time` key either.)
  if (timeAt < 0) return null;

  // The time of every row as unix seconds, as prepare.ts reads it.
  const timeValues = values[timeAt]!;
  const typedSeconds = secondsColumns.has(timeColumn);
  const times = new Float64Array(to - from);
  for (let i = from; i < to; i++) {
    const v = timeValues[i];
    if (v === undefined || v === null || v === '') return null;
    const seconds = typedSeconds && typeof v === 'number' ? (inTimeRange(v) ? v : null) : toSeconds(v, opts.timeFormat);
    if (seconds === null) return null;
    times[i - from] = seconds;
  }

  // One class per column over the whole chunk, agreeing with the table's.
  const kinds: Kind[] = new Array(names.length);
  const fresh: [string, ValueClass][] = [];
  for (let c = 0; c < names.length; c++) {
    if (c === timeAt) continue;
    const name = names[c]!;
    const col = values[c]!;
    let cls: ValueClass | null = null;
    if (ArrayBuffer.isView(col)) {
      // A typed array: numbers, finite unless floats say otherwise (bigint arrays never reach here).
      if (col instanceof Float64Array || col instanceof Float32Array) {
        for (let i = from; i < to; i++) if (!Number.isFinite(col[i]!)) return null;
      }
      if (to > from) cls = 'number';
    } else {
      for (let i = from; i < to; i++) {
        const v = col[i];
        if (v === null || v === undefined) continue;
        const k = classOf(v, name);
        if (typeof k === 'object' || (cls !== null && k !== cls)) return null;
        cls = k;
      }
    }
    if (cls === null) continue;
    if (name === 'time' || name.length === 0 || name.length > LIMITS.columnNameBytesMax) return null;
    const known = types.get(name);
    if (known === undefined) fresh.push([name, cls]);
    else if (known !== cls) return null;
    kinds[c] = KIND[cls];
  }
  if (fresh.length > 0 && types.size + fresh.length > LIMITS.columnsPerTableMax) return null;

  // `"name":` for each column (the time column's as `time`), in the order JSON.stringify of the
  // general path's row would write them.
  const keys = names.map((n, c) => Buffer.from(JSON.stringify(c === timeAt ? 'time' : n) + ':', 'utf8'));
  const order = names.map((_, c) => c);
  if (renamed) order.push(order.splice(timeAt, 1)[0]!);
  const ordered = order.map((c) => ({ c, key: keys[c]!, kind: kinds[c]!, col: values[c]! }));
  const w = out;
  w.pos = 0;
  w.wide = keys.some((k) => k.some((b) => b >= 0x80));
  for (let i = from; i < to; i++) {
    if (i > from) w.byte(0x0a);
    w.byte(0x7b);
    let first = true;
    for (let o = 0; o < ordered.length; o++) {
      const { c, key, kind, col } = ordered[o]!;
      if (c === timeAt) {
        if (!first) w.byte(0x2c);
        first = false;
        w.bytes(key);
        w.number(times[i - from]!);
        continue;
      }
      const v = col[i];
      if (v === null || v === undefined) continue;
      if (!first) w.byte(0x2c);
      first = false;
      w.bytes(key);
      switch (kind) {
        case Kind.Number: w.number(v as number); break;
        case Kind.String: w.string(v as string); break;
        case Kind.Bool: w.ascii(v ? 'true' : 'false'); break;
        case Kind.Set: {
          const set = v as string[];
          w.byte(0x5b);
          for (let e = 0; e < set.length; e++) {
            if (e > 0) w.byte(0x2c);
            w.string(set[e]!);
          }
          w.byte(0x5d);
        }
      }
    }
    w.byte(0x7d);
  }
  for (const [name, cls] of fresh) types.set(name, cls);
  if (to === from) return [];
  return w.buf.toString(w.wide ? 'utf8' : 'latin1', 0, w.pos).split('\n');
}
