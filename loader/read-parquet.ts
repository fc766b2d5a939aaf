/**
 * Parquet reader (hyparquet, with hyparquet-compressors for zstd/gzip/brotli/lz4): reads one row
 * group at a time through ranged file reads, so memory holds one row group's decoded columns
 * (plus the rows of one chunk), never the file. Row groups are typically 100k-1M rows; a writer
 * that put a whole large file in one row group makes that group the unit of memory. (Reading a
 * group in row slices was tried: hyparquet then decompresses whole pages again per slice, which
 * cost 2-3x the time for DuckDB's files.)
 *
 * Types: integers and floats -> numbers (INT64 beyond 2^53 rejects its row); strings; booleans;
 * TIMESTAMP (ms/us/ns), INT96 and DATE -> unix seconds (these columns are listed in
 * `secondsColumns`, so the time step takes them as they are); lists of strings -> string sets;
 * structs and maps are nested and reject their row (drop them with --skip-columns).
 * Positions are 1-based row numbers in the file.
 */
import fs from 'node:fs/promises';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type ColumnData, type FileMetaData, type SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ShoalError } from '../query/errors.js';
import type { Values } from './columnar.js';
import { heapGuard } from './heap-guard.js';
import { readStringLists, stringListShape, type ListShape } from './parquet-lists.js';
import { CHUNK_ROWS, plainValue, type RowChunk, type RowSource } from './source.js';

/** Heap growth since the last full collection past which one is run before decoding a row
 * group (see heap-guard.ts): keeps the peak RSS of a Parquet load under ~300 MB. */
const GROUP_HEAP_SLACK_BYTES = 24 * 1024 * 1024;

/** Timestamps as unix seconds (not Date objects): exact to the microsecond in a float64. */
const parsers = {
  timestampFromMilliseconds: (ms: bigint) => Number(ms) / 1e3,
  timestampFromMicroseconds: (us: bigint) => Number(us) / 1e6,
  timestampFromNanoseconds: (ns: bigint) => Number(ns / 1000n) / 1e6,
  dateFromDays: (days: number) => days * 86_400,
};

function isTimeType(e: SchemaElement): boolean {
  const lt = e.logical_type?.type;
  return lt === 'TIMESTAMP' || lt === 'DATE' || e.type === 'INT96' ||
    e.converted_type === 'TIMESTAMP_MILLIS' || e.converted_type === 'TIMESTAMP_MICROS' || e.converted_type === 'DATE';
}

/** Ranged reads through one open file handle (hyparquet's asyncBufferFromFile opens the file
 * again for every range, which costs more than the read for the small ranges of a row group). */
function fileBuffer(handle: fs.FileHandle, byteLength: number): AsyncBuffer {
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? byteLength, byteLength);
      const bytes = new Uint8Array(Math.max(0, stop - start));
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, start + done);
        if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${start + done}`);
        done += bytesRead;
      }
      return bytes.buffer;
    },
  };
}

export async function parquetSource(file: string, byteSize: number, skipColumns: readonly string[]): Promise<RowSource> {
  const handle = await fs.open(file, 'r');
  const buffer = fileBuffer(handle, byteSize);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(buffer, { parsers });
  } catch (e) {
    await handle.close();
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: not a readable Parquet file: ${(e as Error).message}`);
  }
  const schema = parquetSchema(metadata);
  const top = schema.children;
  const columns = top.map((c) => c.element.name).filter((n) => !skipColumns.includes(n));
  const secondsColumns = new Set(top.filter((c) => isTimeType(c.element)).map((c) => c.element.name));
  const totalRows = Number(metadata.num_rows);
  /** Columns of lists of strings in the standard shape, read by parquet-lists.ts. */
  const listShapes = new Map<string, ListShape>();
  for (const c of top) {
    const shape = stringListShape(schema, c);
    if (shape !== null) listShapes.set(c.element.name, shape);
  }

  async function* chunks(): AsyncGenerator<RowChunk> {
    try {
      yield* groups();
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async function* groups(): AsyncGenerator<RowChunk> {
    let groupStart = 0;
    for (let g = 0; g < metadata.row_groups.length; g++) {
      const groupEnd = groupStart + Number(metadata.row_groups[g]!.num_rows);
      {
        const groupRows = groupEnd - groupStart;
        // Decoding a row group is the loader's largest allocation: start it from a clean heap.
        heapGuard().check(GROUP_HEAP_SLACK_BYTES);
        const pieces = new Map<string, ColumnData[]>();
        const lists = new Map<string, Values>();
        try {
          // One column at a time: hyparquet holds a column chunk's compressed and decompressed
          // pages while decoding it, so decoding columns one by one bounds that transient memory
          // by the largest column rather than the whole row group.
          for (const name of columns) {
            const shape = listShapes.get(name);
            if (shape !== undefined) {
              lists.set(name, await readStringLists(shape, { file: buffer, metadata, group: g, groupRows, compressors, parsers }));
              continue;
            }
            await parquetRead({
              file: buffer, metadata, columns: [name], rowStart: groupStart, rowEnd: groupEnd, compressors, parsers, utf8: true,
              onChunk: (c) => {
                let list = pieces.get(c.columnName);
                if (list === undefined) pieces.set(c.columnName, (list = []));
                list.push(c);
              },
            });
          }
        } catch (e) {
          throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot read row group ${g} (rows ${groupStart + 1}..${groupEnd}): ${(e as Error).message}`);
        }
        // One flat array per column for this group (usually a single piece: no copy), compacted.
        const data = columns.map((name) => lists.get(name) ?? compact(flatten(pieces.get(name) ?? [], groupStart, groupRows)));
        lists.clear();
        pieces.clear();
        for (let from = 0; from < groupRows; from += CHUNK_ROWS) {
          const to = Math.min(groupRows, from + CHUNK_ROWS);
          const positions: number[] = new Array(to - from);
          for (let i = from; i < to; i++) positions[i - from] = groupStart + i + 1;
          yield {
            rows: [], columnar: { names: columns, values: data, from, to }, positions, raws: null, unreadable: [],
            bytesDone: totalRows === 0 ? byteSize : Math.round(byteSize * ((groupStart + to) / totalRows)),
          };
        }
        // The consumer is done with this group's chunks once it asks for the next one, but its
        // last chunk may still be reachable from its frame while the next group decodes: emptied
        // here, the group's columns can be collected before that (measured: +30 MB peak RSS
        // on the 6M-row load without this).
        data.length = 0;
      }
      groupStart = groupEnd;
    }
  }
  return { file, format: 'parquet', positionKind: 'row', byteSize, secondsColumns, columnTypes: null, columns: top.map((c) => c.element.name), chunks };
}


/**
 * A decoded column as the rows will use it, in less memory and in JSON's terms: int64 bigints
 * (a heap object each) become numbers (or BigIntTooLarge), Dates (INT96) unix seconds, and lists
 * are copied to exact-length arrays (hyparquet builds them by push, leaving spare capacity:
 * ~250 bytes per row for a short list of strings, measured, half of the loader's live heap on a
 * file with a `tags` column). Other typed arrays and arrays of plain values stay as they are.
 */
function compact(values: Values): Values {
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) return Array.from(values, plainValue);
  if (!Array.isArray(values)) return values;
  let convert = false;
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i];
    if (v === null || v === undefined) continue;
    convert = typeof v === 'bigint' || Array.isArray(v) || v instanceof Date;
    break;
  }
  if (!convert) return values;
  return values.map((v: unknown) => (v === null || v === undefined ? null : Array.isArray(v) ? v.map(plainValue) : plainValue(v)));
}

/** The values of rows [start, start + count) from the pieces hyparquet delivered (which may
 * begin before `start` and end after it: they are whole pages). */
function flatten(pieces: ColumnData[], start: number, count: number): Values {
  if (pieces.length === 1 && pieces[0]!.rowStart === start && pieces[0]!.columnData.length === count) return pieces[0]!.columnData as Values;
  if (pieces.length === 1 && pieces[0]!.rowStart <= start && pieces[0]!.rowEnd >= start + count) {
    const p = pieces[0]!;
    return (p.columnData as unknown as { slice(a: number, b: number): Values }).slice(start - p.rowStart, start - p.rowStart + count);
  }
  const out: unknown[] = new Array(count).fill(null);
  for (const p of pieces) {
    const d = p.columnData as Values;
    for (let k = 0; k < d.length; k++) {
      const at = p.rowStart - start + k;
      if (at >= 0 && at < count) out[at] = d[k];
    }
  }
  return out;
}
