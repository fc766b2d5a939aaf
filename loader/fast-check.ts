/**
 * The NDJSON loader's fast path: a stretch of whole lines (~1 MiB) checked at once by the leaf's
 * own byte scanner (query/storage/ingest-scan.ts) instead of JSON.parse + checkRow per line.
 * JSON.parse was 58% of the loader's CPU on the bench's rows (~2 us a line here, bench/RESULTS.md
 * "Load"); the scanner checks the same rules on the bytes without making a JS value per field.
 *
 * The scanner accepts only what the leaf would store unchanged and returns null for anything
 * else (an error of any kind, a time string, a BOM, an escaped key, a type conflict with the
 * columns seen so far, ...); then the lines go the general way (parse, prepare, checkRow), which
 * finds and reports the exact bad rows. So the fast path decides nothing by itself: when it
 * accepts, every line is one the general path would also send as its original text, unchanged.
 * That holds only when the loader would change nothing in a row, hence `fastPathApplies`: no
 * --skip-columns, the time column is `time`, and numbers in it are seconds (`auto` keeps an
 * in-range number as it is; anything out of range makes the scanner decline). A row without a
 * time (which the loader rejects or stamps, by --missing-time) is seen as a NaN time: declined.
 *
 * Not here: reading and splitting lines (read-ndjson.ts), the rules (row-check.ts, and
 * ingest-decoder.ts on the leaf, which the scanner mirrors; test/ingest-scan.test.ts).
 */
import { scanBody } from '../query/storage/ingest-scan.js';
import type { ColumnType } from '../query/storage/types.js';
import type { RowOptions } from './options.js';
import { classOfServerType, type ColumnTypes, type ValueClass } from './row-check.js';

/** Whether rows pass through the loader unchanged under these options (see the header). */
export function fastPathApplies(opts: RowOptions): boolean {
  return opts.skipColumns.length === 0 && opts.timeColumn === 'time' && (opts.timeFormat === 'auto' || opts.timeFormat === 'unix-s');
}

/** The scanner's type for a column class: any numeric type takes ints and floats alike. */
const SERVER_TYPE: Record<ValueClass, ColumnType> = { number: 'float', string: 'string', bool: 'bool', set: 'set' };

/**
 * True when every line of `bytes` (whole NDJSON lines) is a row the leaf takes exactly as it
 * is, given the column types seen so far; the types of new columns are then recorded, as
 * checkRow records them. False (and nothing recorded) otherwise.
 */
export function acceptsAsIs(bytes: Buffer, types: ColumnTypes): boolean {
  // `time` is in the schema so that the column limit counts it, as ColumnTypes.size does.
  const schema = new Map<string, { type: ColumnType }>([['time', { type: 'time' }]]);
  for (const [name, cls] of types.entries()) schema.set(name, { type: SERVER_TYPE[cls] });
  // NaN as "now": a row without a time gets NaN, which the loop below declines.
  const scanned = scanBody(bytes, 'ndjson', schema, NaN);
  if (scanned === null) return false;
  const time = scanned.batch.time;
  for (let i = 0; i < time.length; i++) if (Number.isNaN(time[i])) return false;
  for (const [name, col] of scanned.batch.columns) {
    if (types.get(name) === undefined) types.set(name, classOfServerType(col.type)!);
  }
  return true;
}
