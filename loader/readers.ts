/**
 * Opens a file with the reader for its format (given, or detected from its name and first
 * bytes). The one place that knows every reader.
 */
import fs from 'node:fs/promises';
import { ShoalError } from '../query/errors.js';
import type { CsvType, InputFormat } from './options.js';
import { arrowSource } from './read-arrow.js';
import { csvSource } from './read-csv.js';
import { ndjsonSource } from './read-ndjson.js';
import { parquetSource } from './read-parquet.js';
import { detectFormat, type RowSource } from './source.js';

export interface OpenOptions {
  readonly format: InputFormat;
  readonly skipColumns: readonly string[];
  readonly timeColumn: string;
  readonly schema: ReadonlyMap<string, CsvType>;
  readonly inferRows: number;
  readonly delimiter: string | null;
}

export async function fileSize(file: string): Promise<number> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new Error('not a regular file');
    return st.size;
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_LOAD_OPTION', `cannot load ${file}: ${(e as Error).message}`);
  }
}

export async function openSource(file: string, opts: OpenOptions): Promise<RowSource> {
  const byteSize = await fileSize(file);
  const detected = await detectFormat(file);
  const format = opts.format === 'auto' ? detected.format : opts.format;
  if (format === null) {
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot tell its format from its name or first bytes; give --format ndjson|csv|parquet|arrow`);
  }
  const gzip = detected.gzip;
  if (gzip && (format === 'parquet' || format === 'arrow')) {
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: a gzip-compressed ${format} file is not supported; decompress it first (Parquet compresses inside the file)`);
  }
  switch (format) {
    case 'ndjson': return ndjsonSource(file, byteSize, gzip);
    case 'csv': return csvSource(file, byteSize, { delimiter: opts.delimiter, gzip, inferRows: opts.inferRows, schema: opts.schema, timeColumn: opts.timeColumn });
    case 'parquet': return parquetSource(file, byteSize, opts.skipColumns);
    case 'arrow': return arrowSource(file, byteSize, opts.skipColumns);
  }
}
