/**
 * What every format reader produces: a file as a sequence of RowChunks (a few thousand rows
 * each, in file order), each row a flat object plus its position in the file, so that a bad row
 * can be reported as "events.csv:1234". Chunks keep per-row overhead (promises, callbacks) off
 * the hot path and bound what is held at once: a reader holds one chunk (NDJSON, CSV, Arrow) or
 * one Parquet row group, never the file.
 *
 * Also here: choosing the reader by the file's name and first bytes.
 * Not here: time conversion and value checks (prepare.ts), batching (batcher.ts).
 */
import fs from 'node:fs/promises';
import type { ErrorCode } from '../query/errors.js';
import { ShoalError } from '../query/errors.js';
import type { ColumnarRows } from './columnar.js';
import type { CsvType, InputFormat } from './options.js';

export type Row = Record<string, unknown>;

/** A row the reader could not turn into an object. */
export interface RowProblem {
  readonly position: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly column?: string;
}

export interface RowChunk {
  /** The rows read, in file order. */
  readonly rows: Row[];
  /** Where each row is: a 1-based line (NDJSON, CSV) or row number (Parquet, Arrow). */
  readonly positions: number[];
  /** NDJSON only: each row's original text, sent unchanged when the row needs no change (this
   * saves a JSON.stringify per row, the loader's largest cost after parsing). */
  readonly raws: string[] | null;
  /** Rows of this stretch of the file that could not be read. */
  readonly unreadable: RowProblem[];
  /** Bytes of the file consumed up to the end of this chunk (for progress). */
  readonly bytesDone: number;
  /** NDJSON: set when the lines are not parsed yet. `rows` is then empty, `raws` and
   * `positions` are the non-blank lines, and these are their bytes (whole lines), for the
   * preparer to check all at once (fast-check.ts) or else parse line by line. */
  readonly text?: Buffer;
  /** Columnar readers (Parquet): set when the rows are not built yet. `rows` is then empty and
   * these are the decoded columns, for the preparer to write at once (columnar.ts) or else to
   * make into rows. */
  readonly columnar?: ColumnarRows;
}

/** Rows in a chunk, readable or not. */
export function chunkRowCount(chunk: RowChunk): number {
  const rows = chunk.text !== undefined ? chunk.raws!.length : chunk.columnar !== undefined ? chunk.columnar.to - chunk.columnar.from : chunk.rows.length;
  return rows + chunk.unreadable.length;
}

export type ConcreteFormat = Exclude<InputFormat, 'auto'>;

export interface RowSource {
  readonly file: string;
  readonly format: ConcreteFormat;
  /** What a position counts: lines of text, or rows of a columnar file. */
  readonly positionKind: 'line' | 'row';
  readonly byteSize: number;
  /** Columns whose values are already unix seconds (Parquet/Arrow timestamp and date types):
   * the time step takes them as they are, whatever --time-format says. */
  readonly secondsColumns: ReadonlySet<string>;
  /** CSV: the column types used (inferred or from --schema), for the report. */
  readonly columnTypes: ReadonlyMap<string, CsvType> | null;
  /** The file's columns when its format declares them (CSV header, Parquet/Arrow schema). */
  readonly columns: readonly string[] | null;
  chunks(): AsyncIterable<RowChunk>;
}

/** Rows a reader puts in one chunk. */
export const CHUNK_ROWS = 4_096;

const PARQUET_MAGIC = Buffer.from('PAR1');
const ARROW_MAGIC = Buffer.from('ARROW1');
const ARROW_CONTINUATION = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/**
 * The format of `file`: by its first bytes when they are unambiguous (Parquet, Arrow, gzip),
 * else by its extension, else NDJSON when it starts with `{`; null when none of these tells.
 */
export async function detectFormat(file: string): Promise<{ format: ConcreteFormat | null; gzip: boolean }> {
  const head = Buffer.alloc(8);
  let bytesRead = 0;
  const handle = await openOrFail(file);
  try {
    ({ bytesRead } = await handle.read(head, 0, head.length, 0));
  } finally {
    await handle.close();
  }
  const start = head.subarray(0, bytesRead);
  const name = file.toLowerCase();
  const gzip = start.length >= 2 && start[0] === 0x1f && start[1] === 0x8b;
  if (start.subarray(0, 4).equals(PARQUET_MAGIC)) return { format: 'parquet', gzip: false };
  if (start.subarray(0, 6).equals(ARROW_MAGIC) || start.subarray(0, 4).equals(ARROW_CONTINUATION)) return { format: 'arrow', gzip: false };
  const base = name.endsWith('.gz') ? name.slice(0, -3) : name;
  if (/\.(ndjson|jsonl|json|log)$/.test(base)) return { format: 'ndjson', gzip };
  if (/\.(csv|tsv)$/.test(base)) return { format: 'csv', gzip };
  if (/\.parquet$/.test(base)) return { format: 'parquet', gzip };
  if (/\.(arrow|arrows|feather|ipc)$/.test(base)) return { format: 'arrow', gzip };
  if (gzip) return { format: 'ndjson', gzip: true };
  const first = start.toString('latin1').trimStart()[0];
  if (first === '{' || bytesRead === 0) return { format: 'ndjson', gzip: false };
  return { format: null, gzip: false };
}

export async function openOrFail(file: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_LOAD_OPTION', `cannot open ${file}: ${(e as Error).message}`);
  }
}

/** A value from a columnar reader as JSON can carry it: bigints to numbers when exact,
 * Dates to unix seconds. Throws a RowProblem-shaped error for an int64 beyond 2^53. */
export function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : new BigIntTooLarge(value);
  }
  if (value instanceof Date) return value.getTime() / 1000;
  return value;
}

/** Marks an int64 beyond 2^53 so the row check rejects it with a clear message. */
export class BigIntTooLarge {
  constructor(readonly value: bigint) {}
  toJSON(): string { return this.value.toString(); }
}
