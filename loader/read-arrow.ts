/**
 * Arrow IPC reader (apache-arrow RecordBatchReader over a file handle): the file format is read
 * one record batch at a time by random access, the stream format sequentially; memory holds one
 * record batch. Rows are built in chunks of CHUNK_ROWS from a batch's columns.
 *
 * Types: ints and floats -> numbers (Int64 beyond 2^53 rejects its row); Utf8 and dictionaries
 * of strings -> strings; Bool; Timestamp (any unit) and Date -> unix seconds (listed in
 * `secondsColumns`); List<Utf8> -> string sets; Struct/Map/Binary/Decimal are not storable and
 * reject their row (drop them with --skip-columns).
 * Positions are 1-based row numbers across the file's batches.
 *
 * Numeric columns are read from the batch's typed arrays (`data.values`), not Vector.get(),
 * which costs ~10x more per value.
 */
import fs from 'node:fs/promises';
import { Precision, RecordBatchReader, TimeUnit, Type, type Vector } from 'apache-arrow';
import { ShoalError } from '../query/errors.js';
import { CHUNK_ROWS, plainValue, type Row, type RowChunk, type RowSource } from './source.js';

type Accessor = (i: number) => unknown;

const TIMESTAMP_DIVISOR: Record<number, number> = { [TimeUnit.SECOND]: 1, [TimeUnit.MILLISECOND]: 1e3, [TimeUnit.MICROSECOND]: 1e6, [TimeUnit.NANOSECOND]: 1e9 };

function accessor(vec: Vector): Accessor {
  const type = vec.type;
  const single = vec.data.length === 1 ? vec.data[0]! : null;
  const valid = single !== null && single.nullCount > 0 ? (i: number) => vec.isValid(i) : null;
  switch (type.typeId) {
    case Type.Int:
    case Type.Float: {
      // Int64 values are bigints and half floats are stored as uint16 bits: both go through get().
      const wide = type.typeId === Type.Int ? (type as { bitWidth: number }).bitWidth > 32 : (type as { precision: number }).precision === Precision.HALF;
      if (single !== null && !wide) {
        const values = single.values as ArrayLike<number>;
        return valid === null ? (i) => values[i] : (i) => (valid(i) ? values[i] : null);
      }
      return (i) => plainValue(vec.get(i));
    }
    case Type.Timestamp: {
      const divisor = TIMESTAMP_DIVISOR[(type as { unit: number }).unit] ?? 1e3;
      if (single !== null) {
        const values = single.values as BigInt64Array;
        const read = (i: number) => {
          const v = values[i]!;
          // Split so nanosecond values keep microsecond precision in a float64.
          return divisor === 1e9 ? Number(v / 1000n) / 1e6 : Number(v) / divisor;
        };
        return valid === null ? read : (i) => (valid(i) ? read(i) : null);
      }
      return (i) => { const v = vec.get(i) as number | null; return v === null ? null : v / 1e3; };
    }
    case Type.Date:
      // Vector.get gives milliseconds since the epoch for both units.
      return (i) => { const v = vec.get(i) as number | Date | null; return v === null ? null : (v instanceof Date ? v.getTime() : v) / 1e3; };
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList:
      return (i) => { const v = vec.get(i) as Vector | null; return v === null ? null : Array.from(v as Iterable<unknown>, plainValue); };
    default:
      return (i) => plainValue(vec.get(i));
  }
}

export async function arrowSource(file: string, byteSize: number, skipColumns: readonly string[]): Promise<RowSource> {
  const handle = await fs.open(file, 'r');
  let reader: RecordBatchReader;
  try {
    reader = await RecordBatchReader.from(handle);
    reader = await reader.open();
  } catch (e) {
    await handle.close();
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: not a readable Arrow IPC file or stream: ${(e as Error).message}`);
  }
  const fields = reader.schema.fields.filter((f) => !skipColumns.includes(f.name));
  const secondsColumns = new Set(fields.filter((f) => f.type.typeId === Type.Timestamp || f.type.typeId === Type.Date).map((f) => f.name));
  const names = fields.map((f) => f.name);

  async function* chunks(): AsyncGenerator<RowChunk> {
    let rowsBefore = 0;
    let bytesDone = 0;
    try {
      for (;;) {
        let next;
        try {
          next = await reader.next();
        } catch (e) {
          throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot read the record batch after row ${rowsBefore}: ${(e as Error).message}`);
        }
        if (next.done) break;
        const batch = next.value;
        const access = names.map((name) => {
          const vec = batch.getChild(name);
          return vec === null ? () => null : accessor(vec);
        });
        const batchBytes = batch.data.byteLength;
        for (let from = 0; from < batch.numRows; from += CHUNK_ROWS) {
          const to = Math.min(batch.numRows, from + CHUNK_ROWS);
          const rows: Row[] = new Array(to - from);
          const positions: number[] = new Array(to - from);
          for (let i = from; i < to; i++) {
            const row: Row = {};
            for (let c = 0; c < names.length; c++) {
              const v = access[c]!(i);
              if (v === null || v === undefined) continue;
              row[names[c]!] = v;
            }
            rows[i - from] = row;
            positions[i - from] = rowsBefore + i + 1;
          }
          const done = bytesDone + (batch.numRows === 0 ? 0 : Math.round(batchBytes * (to / batch.numRows)));
          yield { rows, positions, raws: null, unreadable: [], bytesDone: Math.min(byteSize, done) };
        }
        bytesDone += batchBytes;
        rowsBefore += batch.numRows;
      }
    } finally {
      await reader.return?.();
      await handle.close().catch(() => {});
    }
  }
  return { file, format: 'arrow', positionKind: 'row', byteSize, secondsColumns, columnTypes: null, columns: reader.schema.fields.map((f) => f.name), chunks };
}
