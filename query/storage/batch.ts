/**
 * A decoded ingest batch in columnar form: what the ingest decoder produces after validating a
 * whole batch, and what an open block appends. Missing values are nulls. Kept apart from the
 * decoder so that other producers (the loader, the disk log replay) can build batches too.
 *
 * Strings and string sets are dictionary-encoded per batch: `dict` holds each distinct value
 * once as UTF-8 bytes with its hash (byte-dict.ts), in the order the rows first use it, and
 * `codes` index into it. The decoder runs on an ingest worker thread (server/leaf/ingest-pool.ts),
 * so the per-value work happens there; the event loop, which appends, looks each distinct value
 * up once, by its bytes, in the open block's dictionary. Every array is a typed array, so a
 * batch crosses a thread boundary by transfer (packBatch puts it in one buffer for that).
 */
import type { BatchDict } from './byte-dict.js';
import type { ColumnType } from './types.js';

export type BatchColumn =
  | { readonly type: 'int' | 'float' | 'time'; readonly values: Float64Array; readonly nulls: Uint8Array }
  /** codes[row] indexes `dict`; -1 is null. */
  | { readonly type: 'string'; readonly codes: Int32Array; readonly dict: BatchDict }
  | { readonly type: 'bool'; readonly values: Uint8Array; readonly nulls: Uint8Array }
  /** Row i holds codes[offsets[i] .. offsets[i+1]) into `dict`; nulls[i] = 1 for a null set. */
  | { readonly type: 'set'; readonly offsets: Int32Array; readonly codes: Int32Array; readonly dict: BatchDict; readonly nulls: Uint8Array };

export interface ColumnarBatch {
  readonly rowCount: number;
  /** Unix seconds of every row (never null: a missing time was set to the arrival time). */
  readonly time: Float64Array;
  /** Every column other than `time`, in first-seen order. */
  readonly columns: ReadonlyMap<string, BatchColumn>;
}

/** Index of the first row where a batch column has a value (for an error's row). */
export function firstValueRow(c: BatchColumn): number {
  if (c.type === 'string') return Math.max(0, c.codes.findIndex((code) => code >= 0));
  return Math.max(0, c.nulls.indexOf(0));
}

/**
 * The same batch with every array copied into one ArrayBuffer (views at 8-byte aligned offsets):
 * what an ingest thread sends back. One buffer to transfer, not one per array: each ArrayBuffer
 * costs an allocation, a transfer and a sweep on both threads, which at 1,000-event batches cost
 * more CPU than the copy of the bytes.
 */
export function packBatch(batch: ColumnarBatch): { batch: ColumnarBatch; buffer: ArrayBuffer } {
  type Arr = Float64Array | Int32Array | Uint8Array;
  const arrays: Arr[] = [batch.time];
  for (const c of batch.columns.values()) {
    if (c.type === 'string') arrays.push(c.codes, c.dict.bytes, c.dict.offsets, c.dict.hashes);
    else if (c.type === 'set') arrays.push(c.offsets, c.codes, c.nulls, c.dict.bytes, c.dict.offsets, c.dict.hashes);
    else arrays.push(c.values, c.nulls);
  }
  let size = 0;
  for (const a of arrays) size += (a.byteLength + 7) & ~7;
  const buffer = new ArrayBuffer(size);
  let at = 0;
  const copy = <T extends Arr>(a: T): T => {
    const view = new (a.constructor as new (b: ArrayBuffer, o: number, n: number) => T)(buffer, at, a.length);
    view.set(a as never);
    at += (a.byteLength + 7) & ~7;
    return view;
  };
  const time = copy(batch.time);
  const columns = new Map<string, BatchColumn>();
  for (const [name, c] of batch.columns) {
    if (c.type === 'string') {
      const codes = copy(c.codes);
      columns.set(name, { type: 'string', codes, dict: { bytes: copy(c.dict.bytes), offsets: copy(c.dict.offsets), hashes: copy(c.dict.hashes) } });
    } else if (c.type === 'set') {
      const offsets = copy(c.offsets); const codes = copy(c.codes); const nulls = copy(c.nulls);
      columns.set(name, { type: 'set', offsets, codes, nulls, dict: { bytes: copy(c.dict.bytes), offsets: copy(c.dict.offsets), hashes: copy(c.dict.hashes) } });
    } else if (c.type === 'bool') {
      columns.set(name, { type: 'bool', values: copy(c.values), nulls: copy(c.nulls) });
    } else {
      columns.set(name, { type: c.type, values: copy(c.values), nulls: copy(c.nulls) });
    }
  }
  return { batch: { rowCount: batch.rowCount, time, columns }, buffer };
}

export type { ColumnType };
