/**
 * Turns a reader's rows into NDJSON lines ready to batch: drops --skip-columns, reads the time
 * column as unix seconds into `time` (or applies --missing-time), checks the row against the
 * leaf's rules (row-check.ts), and serialises it. A row that fails is handed to `reject` with its
 * position and reason and goes no further; the rest of the chunk is unaffected.
 *
 * The fast paths: plain NDJSON lines are checked a stretch at a time by the leaf's byte scanner
 * and sent as they are, never parsed (fast-check.ts); failing that, an NDJSON row that needed no
 * change is sent as its original text (parsed once, never re-serialised); a Parquet chunk whose
 * columns all pass is written to NDJSON bytes column-aware, with no object per row
 * (columnar.ts). Other rows go through JSON.stringify. (Serialising columnar rows by string
 * concatenation instead was tried: the concatenations are ropes that live until the batch is
 * joined, and the extra garbage made it slower, 5.7 vs 4.5 CPU s per million Parquet rows.)
 *
 * Not here: reading (read-*.ts), batching (batcher.ts).
 */
import type { ErrorCode } from '../query/errors.js';
import type { RowOptions } from './options.js';
import { materialize, writeColumnar } from './columnar.js';
import { acceptsAsIs, fastPathApplies } from './fast-check.js';
import { parseText } from './read-ndjson.js';
import { checkRow, type ColumnTypes } from './row-check.js';
import type { RowChunk } from './source.js';
import { inTimeRange, toSeconds } from './time-column.js';

export interface Rejection {
  readonly position: number;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface Prepared {
  readonly lines: string[];
  readonly positions: number[];
}

export class RowPreparer {
  /** Rows whose time was missing or unusable and were stamped with now (policy `now`). */
  timeDefaulted = 0;
  /** Rows of unparsed chunks (NDJSON text, Parquet columns) taken at once (fast-check.ts,
   * columnar.ts), and those that went row by row instead. */
  readonly linesChecked = { atOnce: 0, oneByOne: 0 };
  private readonly skip: readonly string[];
  private readonly fast: boolean;
  private readonly fastColumnar: boolean;

  constructor(
    private readonly opts: RowOptions,
    private readonly types: ColumnTypes,
    private readonly secondsColumns: ReadonlySet<string>,
    private readonly reject: (r: Rejection) => void,
    private readonly nowSeconds: () => number = () => Date.now() / 1000,
    /** Tests turn the check at once off, to compare it with the general path. */
    fast = true,
  ) {
    this.skip = opts.skipColumns;
    this.fast = fast && fastPathApplies(opts);
    this.fastColumnar = fast;
  }

  /**
   * A row's time as unix seconds, or null when it was rejected (and reported). `value` is the
   * time column's value; `typedSeconds` says the reader already converted it by its type.
   */
  private timeOf(value: unknown, typedSeconds: boolean, position: number): number | null {
    const missing = value === undefined || value === null || value === '';
    let seconds: number | null;
    if (missing) seconds = null;
    else if (typedSeconds && typeof value === 'number') seconds = inTimeRange(value) ? value : null;
    else seconds = toSeconds(value, this.opts.timeFormat);
    if (seconds !== null) return seconds;
    if (this.opts.missingTime === 'now') {
      this.timeDefaulted++;
      return this.nowSeconds();
    }
    const { timeColumn, timeFormat } = this.opts;
    this.reject({
      position, code: 'SHOAL_ERR_LOAD_TIME',
      message: missing
        ? `no time: column "${timeColumn}" is missing or empty (name the time column with --time-column, or use --missing-time now)`
        : `column "${timeColumn}": ${String(JSON.stringify(value)).slice(0, 60)} is not a ${timeFormat === 'auto' ? 'time' : timeFormat + ' time'} in 1900..2200`,
    });
    return null;
  }

  prepare(chunk: RowChunk): Prepared {
    if (chunk.text !== undefined) {
      if (this.fast && chunk.unreadable.length === 0 && acceptsAsIs(chunk.text, this.types)) {
        this.linesChecked.atOnce += chunk.raws!.length;
        return { lines: chunk.raws!, positions: chunk.positions };
      }
      this.linesChecked.oneByOne += chunk.raws!.length;
      chunk = parseText(chunk);
    }
    if (chunk.columnar !== undefined) {
      const n = chunk.positions.length;
      const lines = this.fastColumnar ? writeColumnar(chunk.columnar, this.opts, this.types, this.secondsColumns) : null;
      if (lines !== null) {
        this.linesChecked.atOnce += n;
        return { lines, positions: chunk.positions };
      }
      this.linesChecked.oneByOne += n;
      chunk = materialize(chunk);
    }
    for (const p of chunk.unreadable) this.reject(p);
    const { rows, positions, raws } = chunk;
    const lines: string[] = [];
    const outPositions: number[] = [];
    const timeColumn = this.opts.timeColumn;
    const renamed = timeColumn !== 'time';
    const typedSeconds = this.secondsColumns.has(timeColumn);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const position = positions[i]!;
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        this.reject({ position, code: 'SHOAL_ERR_INGEST_EVENT', message: `an event must be a JSON object, got ${Array.isArray(row) ? 'an array' : String(row)}` });
        continue;
      }
      let changed = false;
      // Columns are removed by setting them undefined, never with `delete`, which would turn
      // the row into a slow dictionary-mode object (and JSON.stringify omits undefined values).
      for (const name of this.skip) {
        if (row[name] !== undefined) { row[name] = undefined; changed = true; }
      }
      const value = row[timeColumn];
      const seconds = this.timeOf(value, typedSeconds, position);
      if (seconds === null) continue;
      if (renamed) {
        row[timeColumn] = undefined;
        row.time = seconds;
        changed = true;
      } else if (seconds !== value) {
        row.time = seconds;
        changed = true;
      }
      const problem = checkRow(row, this.types);
      if (problem !== null) {
        this.reject({ position, code: problem.code, message: problem.message });
        continue;
      }
      lines.push(!changed && raws !== null ? raws[i]! : JSON.stringify(row));
      outPositions.push(position);
    }
    return { lines, positions: outPositions };
  }
}
