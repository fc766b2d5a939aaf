/**
 * The ingest decoder: request body -> validated ColumnarBatch. A batch is atomic, so the whole
 * batch is parsed and type-checked here, against the table's schema, before anything is stored;
 * the first problem rejects it with a code, the row (0-based index in the batch, and the line
 * for NDJSON) and the column.
 *
 * Value rules: numbers must be finite; integers within +-2^53 are ints, any other number (a
 * fraction, or an integer beyond 2^53) a float, and an int column that meets a float becomes float; strings are bounded
 * in UTF-8 bytes; arrays of strings are string sets; nested objects are rejected (flatten them
 * before sending: shoal's columns are flat, like Scuba's). `time` is unix seconds (number) or an
 * ISO-8601 string, and defaults to the arrival time.
 */
import { isUtf8 } from 'node:buffer';
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { parseIsoTime } from '../functions/time.js';
import type { BatchColumn, ColumnarBatch } from './batch.js';
import { batchDictOf } from './byte-dict.js';
import type { ColumnType } from './types.js';

export type BodyFormat = 'json' | 'ndjson' | 'auto';

/** Parses a body into a list of events (not yet validated). `line` maps event index -> line. */
export function parseBody(body: Buffer | Uint8Array | string, format: BodyFormat): { events: unknown[]; lines: number[] | null } {
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    // isUtf8 (simdutf) validates several GB/s; toString then decodes without a second check.
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (!isUtf8(buf)) throw new ShoalError('SHOAL_ERR_INGEST_BODY', `body is not valid UTF-8 (at byte ${firstInvalidUtf8(buf)})`);
    text = buf.toString('utf8');
  }
  // A UTF-8 byte-order mark is legal at the start of a body (some Windows tools write one).
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let first = 0;
  while (first < text.length && (text.charCodeAt(first) <= 32 || text.charCodeAt(first) === 0xfeff)) first++;
  if (first === text.length) return { events: [], lines: null };
  const kind = format === 'auto' ? (text[first] === '[' ? 'json' : 'ndjson') : format;
  if (kind === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new ShoalError('SHOAL_ERR_INGEST_BODY', `body is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(parsed)) return { events: parsed, lines: null };
    if (typeof parsed === 'object' && parsed !== null) return { events: [parsed], lines: null };
    throw new ShoalError('SHOAL_ERR_INGEST_BODY', `body must be a JSON array of event objects, got ${describe(parsed)}`);
  }
  const events: unknown[] = [];
  const lines: number[] = [];
  let lineNo = 0;
  let at = 0;
  while (at <= text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    lineNo++;
    const line = text.slice(at, nl);
    at = nl + 1;
    if (line.trim() === '') continue;
    if (events.length >= LIMITS.eventsPerBatchMax) {
      throw new ShoalError('SHOAL_ERR_INGEST_LIMIT', `batch has more than ${LIMITS.eventsPerBatchMax} events`, { line: lineNo });
    }
    try {
      events.push(JSON.parse(line));
    } catch (e) {
      throw new ShoalError('SHOAL_ERR_INGEST_BODY', `line ${lineNo} is not valid JSON: ${(e as Error).message}`, { line: lineNo, row: events.length });
    }
    lines.push(lineNo);
  }
  return { events, lines };
}

/**
 * One column while a batch is built. Numbers and booleans fill a typed array and a null map;
 * strings and sets are dictionary-encoded as they arrive (a Map lookup per value, here on the
 * decoding thread, so the event loop later looks up each distinct value only once).
 */
interface Building {
  type: ColumnType;
  /** int, float: the values. */
  nums: Float64Array | null;
  /** bool: 1 or 0. */
  bools: Uint8Array | null;
  /** int, float, bool, set: 1 = null. */
  nulls: Uint8Array | null;
  /** string: code per row (-1 = null); set: the codes of every element, `codeCount` used. */
  codes: Int32Array | null;
  codeCount: number;
  /** set: row i's codes are codes[offsets[i] .. offsets[i+1]); rows after `lastRow` are unset. */
  offsets: Int32Array | null;
  lastRow: number;
  lookup: Map<string, number> | null;
  dict: string[] | null;
}

/**
 * Validates events against `schema` (the table's current column types) and builds the batch.
 * Throws on the first bad value; nothing is stored by this function.
 */
export function buildBatch(
  events: readonly unknown[],
  schema: ReadonlyMap<string, { type: ColumnType }>,
  nowSeconds: number,
  lines: number[] | null = null,
  columnsMax: number = LIMITS.columnsPerTableMax,
): ColumnarBatch {
  const rowCount = events.length;
  if (rowCount > LIMITS.eventsPerBatchMax) {
    throw new ShoalError('SHOAL_ERR_INGEST_LIMIT', `batch has ${rowCount} events; the limit is ${LIMITS.eventsPerBatchMax}`);
  }
  const time = new Float64Array(rowCount);
  const cols = new Map<string, Building>();
  let newColumnCount = 0;
  const where = (row: number, column?: string) => ({ row, ...(lines ? { line: lines[row]! } : {}), ...(column !== undefined ? { column } : {}) });
  const at = (row: number) => (lines ? `line ${lines[row]} (row ${row})` : `row ${row}`);

  for (let row = 0; row < rowCount; row++) {
    const ev = events[row];
    if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) {
      throw new ShoalError('SHOAL_ERR_INGEST_EVENT', `${at(row)}: an event must be a JSON object, got ${describe(ev)}`, where(row));
    }
    let timeSet = false;
    for (const key in ev) {
      const value = (ev as Record<string, unknown>)[key];
      if (key === 'time') {
        time[row] = parseTime(value, nowSeconds, () => `${at(row)}, column "time"`, where(row, 'time'));
        timeSet = true;
        continue;
      }
      if (key.length === 0 || key.length > LIMITS.columnNameBytesMax) {
        throw new ShoalError('SHOAL_ERR_INGEST_EVENT', `${at(row)}: field name must be 1..${LIMITS.columnNameBytesMax} characters`, where(row, key.slice(0, 64)));
      }
      if (value === null || value === undefined) continue; // stays null: columns start all-null
      const type = valueType(value, key, row, at, where);
      let col = cols.get(key);
      if (col === undefined) {
        const existing = schema.get(key)?.type;
        if (existing === undefined) {
          newColumnCount++;
          if (schema.size + newColumnCount > columnsMax) {
            throw new ShoalError('SHOAL_ERR_INGEST_LIMIT', `${at(row)}: column "${key}" would exceed the limit of ${columnsMax} columns per table`, where(row, key));
          }
        }
        const base = existing === undefined ? type : existing;
        checkType(base, type, key, row, at, where, existing !== undefined ? 'the table' : 'this batch');
        col = newBuilding(base === 'int' && type === 'float' ? 'float' : base, rowCount);
        cols.set(key, col);
      } else {
        checkType(col.type, type, key, row, at, where, 'this batch');
        if (col.type === 'int' && type === 'float') col.type = 'float';
      }
      store(col, row, value);
    }
    if (!timeSet) time[row] = nowSeconds;
  }

  const columns = new Map<string, BatchColumn>();
  for (const [name, c] of cols) columns.set(name, finish(c, rowCount));
  return { rowCount, time, columns };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

function valueType(
  value: unknown, key: string, row: number, at: (r: number) => string, where: (r: number, c?: string) => object,
): ColumnType {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": number ${value} is not finite`, where(row, key));
      // Integers are exact to 2^53. A larger one (1e20, 1.5e300, 18446744073709551615) is a
      // double, and makes its column a float column: stored as the nearest double, as a JSON
      // reader that reads numbers as float64 would; never refused.
      return Number.isInteger(value) && Math.abs(value) <= LIMITS.integerAbsMax ? 'int' : 'float';
    case 'string':
      if (value.length > LIMITS.stringBytesMax / 3 && Buffer.byteLength(value) > LIMITS.stringBytesMax) {
        throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": string of ${Buffer.byteLength(value)} bytes exceeds the limit of ${LIMITS.stringBytesMax}`, where(row, key));
      }
      return 'string';
    case 'boolean':
      return 'bool';
    case 'object':
      if (Array.isArray(value)) {
        if (value.length > LIMITS.setElementsMax) {
          throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": set has ${value.length} elements; the limit is ${LIMITS.setElementsMax}`, where(row, key));
        }
        for (const e of value) {
          if (typeof e !== 'string') {
            throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": a set holds strings only, found ${describe(e)}`, where(row, key));
          }
          if (e.length > LIMITS.stringBytesMax / 3 && Buffer.byteLength(e) > LIMITS.stringBytesMax) {
            throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": set element exceeds ${LIMITS.stringBytesMax} bytes`, where(row, key));
          }
        }
        return 'set';
      }
      throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": nested objects are not supported; flatten the event (e.g. "a.b": value)`, where(row, key));
    default:
      throw new ShoalError('SHOAL_ERR_INGEST_VALUE', `${at(row)}, column "${key}": unsupported value ${describe(value)}`, where(row, key));
  }
}

function checkType(
  columnType: ColumnType, valueType: ColumnType, key: string, row: number,
  at: (r: number) => string, where: (r: number, c?: string) => object, source: string,
): void {
  const numeric = (t: ColumnType) => t === 'int' || t === 'float';
  if (columnType === valueType || (numeric(columnType) && numeric(valueType))) return;
  throw new ShoalError(
    'SHOAL_ERR_INGEST_TYPE_CONFLICT',
    `${at(row)}, column "${key}": value of type ${valueType} conflicts with the column's type ${columnType} in ${source}`,
    where(row, key),
  );
}

function newBuilding(type: ColumnType, rowCount: number): Building {
  const b: Building = { type, nums: null, bools: null, nulls: null, codes: null, codeCount: 0, offsets: null, lastRow: -1, lookup: null, dict: null };
  switch (type) {
    case 'int': case 'float': case 'time':
      b.nums = new Float64Array(rowCount);
      b.nulls = new Uint8Array(rowCount).fill(1);
      break;
    case 'bool':
      b.bools = new Uint8Array(rowCount);
      b.nulls = new Uint8Array(rowCount).fill(1);
      break;
    case 'string':
      b.codes = new Int32Array(rowCount).fill(-1);
      b.lookup = new Map();
      b.dict = [];
      break;
    case 'set':
      b.codes = new Int32Array(Math.max(16, rowCount));
      b.offsets = new Int32Array(rowCount + 1);
      b.nulls = new Uint8Array(rowCount).fill(1);
      b.lookup = new Map();
      b.dict = [];
      break;
  }
  return b;
}

function codeOf(col: Building, s: string): number {
  let code = col.lookup!.get(s);
  if (code === undefined) {
    code = col.dict!.length;
    col.dict!.push(s);
    col.lookup!.set(s, code);
  }
  return code;
}

function store(col: Building, row: number, value: unknown): void {
  if (col.nums !== null) {
    col.nums[row] = value as number;
    col.nulls![row] = 0;
  } else if (col.bools !== null) {
    col.bools[row] = value ? 1 : 0;
    col.nulls![row] = 0;
  } else if (col.offsets === null) {
    col.codes![row] = codeOf(col, value as string);
  } else {
    // Rows are stored in order: the ones skipped since the last stored row are empty (null).
    const set = value as readonly string[];
    const offsets = col.offsets;
    for (let k = col.lastRow + 1; k <= row; k++) offsets[k] = col.codeCount;
    if (col.codeCount + set.length > col.codes!.length) {
      const next = new Int32Array(Math.max(col.codes!.length * 2, col.codeCount + set.length));
      next.set(col.codes!.subarray(0, col.codeCount));
      col.codes = next;
    }
    for (const e of set) col.codes![col.codeCount++] = codeOf(col, e);
    offsets[row + 1] = col.codeCount;
    col.nulls![row] = 0;
    col.lastRow = row;
  }
}

function finish(c: Building, rowCount: number): BatchColumn {
  switch (c.type) {
    case 'int': case 'float': case 'time':
      return { type: c.type, values: c.nums!, nulls: c.nulls! };
    case 'bool':
      return { type: 'bool', values: c.bools!, nulls: c.nulls! };
    case 'string':
      return { type: 'string', codes: c.codes!, dict: batchDictOf(c.dict!) };
    case 'set': {
      for (let k = c.lastRow + 2; k <= rowCount; k++) c.offsets![k] = c.codeCount;
      // An exact-length copy: the batch may cross to another thread, and this sheds the slack.
      return { type: 'set', offsets: c.offsets!, codes: c.codes!.slice(0, c.codeCount), dict: batchDictOf(c.dict!), nulls: c.nulls! };
    }
  }
}

/** `time` as unix seconds: a number, or an ISO-8601 string (with a date part). */
export function parseTime(value: unknown, nowSeconds: number, at: () => string, where: object): number {
  let seconds: number;
  if (value === null || value === undefined) return nowSeconds;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string' && /^\d{4}-\d{1,2}-\d{1,2}/.test(value)) {
    // UTC unless the text has an offset, whatever this process's time zone (functions/time.ts).
    seconds = parseIsoTime(value) ?? NaN;
  } else {
    throw new ShoalError('SHOAL_ERR_INGEST_TIME', `${at()}: time must be unix seconds or an ISO-8601 string, got ${describe(value)}`, where);
  }
  if (!Number.isFinite(seconds)) {
    throw new ShoalError('SHOAL_ERR_INGEST_TIME', `${at()}: cannot read ${JSON.stringify(value)} as a time`, where);
  }
  if (seconds < LIMITS.timeSecondsMin || seconds > LIMITS.timeSecondsMax) {
    throw new ShoalError('SHOAL_ERR_INGEST_TIME', `${at()}: time ${value} is outside 1900..2200 (unix seconds expected; milliseconds?)`, where);
  }
  return seconds;
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (for messages). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const extra = c < 0x80 ? 0 : (c >> 5) === 6 ? 1 : (c >> 4) === 14 ? 2 : (c >> 3) === 30 ? 3 : -1;
    if (extra < 0 || i + extra >= b.length) return i;
    for (let k = 1; k <= extra; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += extra + 1;
  }
  return b.length;
}
