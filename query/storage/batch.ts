/**
 * A decoded ingest batch in columnar form: what the ingest decoder produces after validating a
 * whole batch, and what an open block appends. Missing values are nulls. Kept apart from the
 * decoder so that other producers (the loader, the disk log replay) can build batches too.
 */
import type { ColumnType } from './types.js';

export type BatchColumn =
  | { readonly type: 'int' | 'float' | 'time'; readonly values: Float64Array; readonly nulls: Uint8Array }
  | { readonly type: 'string'; readonly values: (string | null)[] }
  | { readonly type: 'bool'; readonly values: Uint8Array; readonly nulls: Uint8Array }
  | { readonly type: 'set'; readonly values: (readonly string[] | null)[] };

export interface ColumnarBatch {
  readonly rowCount: number;
  /** Unix seconds of every row (never null: a missing time was set to the arrival time). */
  readonly time: Float64Array;
  /** Every column other than `time`, in first-seen order. */
  readonly columns: ReadonlyMap<string, BatchColumn>;
}

export type { ColumnType };
