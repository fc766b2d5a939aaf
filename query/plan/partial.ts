/**
 * The partial-result protocol: what a scan of some blocks returns, what a leaf sends to an
 * aggregator, and what an aggregator sends up to its parent. States are positional: states[j]
 * belongs to plan.aggs[j] of the shared LogicalPlan. In a process (worker -> leaf) a partial is
 * posted as it is; between processes query/merge/partial-wire.ts carries its typed arrays as
 * base64 and checks every column on the way in.
 */
import type { Scalar, ValueType } from './plan.js';
import type { KeyColumn } from './utf8-keys.js';

export interface ScanStats {
  /** Rows the table holds (on the leaves that answered). */
  rowsHeld: number;
  /** Rows in the blocks that were read (after time pruning). */
  rowsScanned: number;
  /** Rows that passed WHERE. */
  rowsMatched: number;
  blocksScanned: number;
  blocksSkipped: number;
  /** Rows of the table inside the query's time range that the memory budget dropped (they were
   * acknowledged, and are missing from this answer); coverage counts them as missing. Optional
   * on the wire: a partial from an older leaf has none. */
  rowsEvicted?: number;
}

export interface ColumnInfo { readonly name: string; readonly type: ValueType }

/**
 * A count(DISTINCT) column's strings as protocol 5 sends them (query/merge/partial-wire.ts): each
 * distinct string once, in `dict` (UTF-8), and each group's strings as ids into it, group i's
 * being ids[starts[i]..starts[i + 1]). Values that are not leaf strings stay in its `sets`.
 */
export interface CodedSets { readonly dict: { readonly offsets: Int32Array; readonly bytes: Uint8Array }; readonly starts: Int32Array; readonly ids: Int32Array }

/** One aggregate's state for every group, in columns (aggregates.ts gives each aggregate's
 * fields): typed arrays for numbers, arrays for values, sets and sketches; a count(DISTINCT)'s
 * `coded` strings (CodedSets). */
export type StateColumn = Readonly<Record<string, Float64Array | Uint8Array | readonly unknown[] | CodedSets | null>>;

/**
 * The groups of an aggregate partial, column by column: `keys[k][g]` is key k of group g (floats
 * in wire form, wire.ts), `states[j]` aggregate j's states of all groups. Columns, not one object
 * per group: a worker posts typed arrays (a copy, not a walk), a leaf sends them as base64, and a
 * merge reads state arrays in one loop (docs/engine.md, "Partials").
 */
export interface GroupTable {
  readonly count: number;
  /** Key columns: values, or one string key's UTF-8 bytes (utf8-keys.ts; read with keyAt). */
  readonly keys: readonly KeyColumn[];
  readonly states: readonly StateColumn[];
}

export interface AggregatePartial {
  readonly mode: 'aggregate';
  readonly tableFound: boolean;
  readonly columns: readonly ColumnInfo[];
  readonly groups: GroupTable;
  readonly unknownColumns: readonly string[];
  readonly stats: ScanStats;
  /** Set by a leaf that sent only its best groups for a pushed-down top-n (merge/top-cut.ts):
   * the smallest count it sent, and how many groups it had. Absent: every group is here. */
  readonly cut?: { readonly bound: number; readonly of: number };
}

export interface RowsPartial {
  readonly mode: 'rows';
  readonly tableFound: boolean;
  readonly columns: readonly ColumnInfo[];
  readonly rows: readonly (readonly Scalar[])[];
  /** ORDER BY values of each row, parallel to rows (empty arrays without ORDER BY). */
  readonly orderValues: readonly (readonly Scalar[])[];
  /** True when rows were left out only because of a LIMIT or the result row limit. */
  readonly truncated: boolean;
  readonly unknownColumns: readonly string[];
  readonly stats: ScanStats;
}

export type Partial = AggregatePartial | RowsPartial;

/** How a coverage note words ScanStats.rowsEvicted of one leaf (leaf and aggregator alike). */
export function evictedRowsNote(rows: number): string {
  return `${rows} rows evicted by the memory budget inside the queried time range`;
}

export function emptyStats(): ScanStats {
  return { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0, rowsEvicted: 0 };
}

export function addStats(a: ScanStats, b: ScanStats): ScanStats {
  return {
    rowsHeld: a.rowsHeld + b.rowsHeld,
    rowsScanned: a.rowsScanned + b.rowsScanned,
    rowsMatched: a.rowsMatched + b.rowsMatched,
    blocksScanned: a.blocksScanned + b.blocksScanned,
    blocksSkipped: a.blocksSkipped + b.blocksSkipped,
    rowsEvicted: (a.rowsEvicted ?? 0) + (b.rowsEvicted ?? 0),
  };
}

/** Wider of two result types seen on different leaves (int + float -> float; NULL yields). */
export function widenType(a: ValueType, b: ValueType): ValueType {
  if (a === b || b === 'null' || b === 'any') return a;
  if (a === 'null' || a === 'any') return b;
  if ((a === 'int' && b === 'float') || (a === 'float' && b === 'int')) return 'float';
  return 'any';
}

