/**
 * CSV reader (csv-parse, streaming; plain or gzip): the first record is the header; column types
 * come from the first --infer-rows records (held in memory, then released), overridable with
 * --schema. Empty fields are null (as DuckDB's read_csv reads them).
 *
 * Inference, per column over its non-empty sampled values, first match wins:
 *   the time column -> time (the time step reads it, as ISO-8601 or numbers per --time-format);
 *   all integers within 2^53 -> int; all numbers -> float; all true/false -> bool; else string.
 * A column with integers beyond 2^53 stays string, so 64-bit ids keep every digit.
 * A later value that does not fit its column's type rejects its row (reported), not the file.
 *
 * Positions are the line on which a record starts (line 1 is the header), counting the lines
 * inside quoted multi-line fields, as an editor shows them.
 *
 * Not here: the time conversion itself (time-column.ts).
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { parse, type CsvError, type Info } from 'csv-parse';
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import type { CsvType } from './options.js';
import { CHUNK_ROWS, type Row, type RowChunk, type RowProblem, type RowSource } from './source.js';
import { toSeconds } from './time-column.js';

const INT = /^[-+]?\d+$/;
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const BOOL_TRUE = new Set(['true', 't', 'yes', 'y', '1']);
const BOOL_FALSE = new Set(['false', 'f', 'no', 'n', '0']);

export interface CsvSourceOptions {
  readonly delimiter: string | null;
  readonly gzip: boolean;
  readonly inferRows: number;
  readonly schema: ReadonlyMap<string, CsvType>;
  readonly timeColumn: string;
}

/** The type of one column from its sampled values (see the module header). */
export function inferType(values: readonly string[]): CsvType {
  let ints = true;
  let numbers = true;
  let bools = true;
  let seen = 0;
  for (const v of values) {
    if (v === '') continue;
    seen++;
    if (ints && !(INT.test(v) && Number.isSafeInteger(Number(v)))) {
      ints = false;
      // An integer beyond 2^53 is an id, not a quantity: keep it exact as a string.
      if (INT.test(v)) numbers = false;
    }
    if (numbers && !(NUMBER.test(v) && Number.isFinite(Number(v)))) numbers = false;
    if (bools) {
      const l = v.toLowerCase();
      if (l !== 'true' && l !== 'false') bools = false;
    }
    if (!ints && !numbers && !bools) return 'string';
  }
  if (seen === 0) return 'string';
  return ints ? 'int' : numbers ? 'float' : bools ? 'bool' : 'string';
}

type Converter = (v: string) => unknown | Problem;
class Problem { constructor(readonly code: RowProblem['code'], readonly message: string) {} }

function converter(name: string, type: CsvType, isTimeColumn: boolean, source: string): Converter {
  const conflict = (v: string, what: string) =>
    new Problem('SHOAL_ERR_INGEST_TYPE_CONFLICT', `column "${name}": ${JSON.stringify(v.slice(0, 40))} is not ${what} (the column is ${type}, ${source}; override with --schema ${name}:string)`);
  switch (type) {
    case 'string': return (v) => v;
    case 'int':
    case 'float':
      return (v) => {
        const t = v.trim();
        if (!NUMBER.test(t)) return conflict(v, 'a number');
        const n = Number(t);
        return n;
      };
    case 'bool':
      return (v) => {
        const l = v.trim().toLowerCase();
        if (BOOL_TRUE.has(l)) return true;
        if (BOOL_FALSE.has(l)) return false;
        return conflict(v, 'a boolean');
      };
    case 'time':
      // The time column is read by the time step (it knows --time-format); another column
      // typed time is converted here, to unix seconds.
      if (isTimeColumn) return (v) => v;
      return (v) => toSeconds(v, 'auto') ?? conflict(v, 'a time (ISO-8601 or unix seconds/ms/us)');
  }
}

export async function csvSource(file: string, byteSize: number, opts: CsvSourceOptions): Promise<RowSource> {
  const delimiter = opts.delimiter ?? (/\.tsv(\.gz)?$/i.test(file) ? '\t' : ',');
  const raw = fs.createReadStream(file, { highWaterMark: 1024 * 1024 });
  const parser = parse({
    delimiter, bom: true, info: true, relax_column_count: true, skip_empty_lines: true, skip_records_with_error: true,
    // Bounds the memory of one field (csv-parse's own guard against an unclosed quote).
    max_record_size: LIMITS.loaderLineBytesMax,
  });
  if (opts.gzip) pipeline(raw, zlib.createGunzip(), parser, () => {});
  else pipeline(raw, parser, () => {});
  const skipped: RowProblem[] = [];
  parser.on('skip', (err: CsvError) => {
    const lines = (err as unknown as { lines?: number }).lines ?? 0;
    skipped.push({ position: lines, code: 'SHOAL_ERR_LOAD_ROW', message: `CSV: ${err.message.replace(/\s+at line \d+/, '')}` });
  });
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{ record: string[]; info: Info }>;
  const next = async () => {
    try {
      return await records.next();
    } catch (e) {
      raw.destroy();
      throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot read CSV: ${(e as Error).message}`);
    }
  };

  // Header.
  const first = await next();
  if (first.done) {
    return { file, format: 'csv', positionKind: 'line', byteSize, secondsColumns: new Set(), columnTypes: new Map(), columns: null, chunks: async function* () {} };
  }
  const header = first.value.record.map((h, i) => (h.trim() === '' ? `column${i + 1}` : h.trim()));
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: the header names column "${dup}" twice`);
  for (const name of opts.schema.keys()) {
    if (!header.includes(name)) throw new ShoalError('SHOAL_ERR_LOAD_OPTION', `--schema names column "${name}", which is not in the header of ${file} (${header.slice(0, 20).join(', ')})`);
  }

  // Sample.
  const sample: { record: string[]; info: Info }[] = [];
  let sampleDone = false;
  while (sample.length < opts.inferRows) {
    const r = await next();
    if (r.done) { sampleDone = true; break; }
    sample.push(r.value);
  }
  const types = new Map<string, CsvType>();
  header.forEach((name, col) => {
    const given = opts.schema.get(name);
    if (given !== undefined) types.set(name, given);
    else if (name === opts.timeColumn) types.set(name, 'time');
    else types.set(name, inferType(sample.map((s) => s.record[col] ?? '')));
  });
  const converters = header.map((name) => converter(name, types.get(name)!, name === opts.timeColumn,
    opts.schema.has(name) ? 'from --schema' : `inferred from the first ${opts.inferRows} rows`));

  let prevLines = first.value.info.lines;
  const toRow = (record: string[], info: Info, out: { rows: Row[]; positions: number[]; unreadable: RowProblem[] }) => {
    let position = info.lines;
    if (info.lines - prevLines > 1) {
      // Blank lines before it, or quoted fields spanning lines: start = end - newlines inside.
      let inside = 0;
      for (const f of record) for (let k = f.indexOf('\n'); k >= 0; k = f.indexOf('\n', k + 1)) inside++;
      position = info.lines - inside;
    }
    prevLines = info.lines;
    if (record.length !== header.length) {
      out.unreadable.push({ position, code: 'SHOAL_ERR_LOAD_ROW', message: `CSV: the record has ${record.length} fields; the header has ${header.length}` });
      return;
    }
    const row: Row = {};
    for (let c = 0; c < header.length; c++) {
      const v = record[c]!;
      if (v === '') continue;
      const value = converters[c]!(v);
      if (value instanceof Problem) {
        out.unreadable.push({ position, code: value.code, message: value.message });
        return;
      }
      row[header[c]!] = value;
    }
    out.rows.push(row);
    out.positions.push(position);
  };

  async function* chunks(): AsyncGenerator<RowChunk> {
    let out = { rows: [] as Row[], positions: [] as number[], unreadable: [] as RowProblem[] };
    const take = () => {
      out.unreadable.push(...skipped.splice(0));
      out.unreadable.sort((a, b) => a.position - b.position);
      const chunk = { ...out, raws: null, bytesDone: Math.min(raw.bytesRead, byteSize) };
      out = { rows: [], positions: [], unreadable: [] };
      return chunk;
    };
    try {
      for (const s of sample.splice(0)) toRow(s.record, s.info, out);
      if (!sampleDone) {
        for (;;) {
          if (out.rows.length + out.unreadable.length >= CHUNK_ROWS) yield take();
          const r = await next();
          if (r.done) break;
          toRow(r.value.record, r.value.info, out);
        }
      }
      yield take();
    } finally {
      raw.destroy();
    }
  }
  return { file, format: 'csv', positionKind: 'line', byteSize, secondsColumns: new Set(), columnTypes: types, columns: header, chunks };
}
