/**
 * Values JSON cannot carry, on the two wires shoal speaks.
 *
 * - **Partials** (leaf -> aggregator -> parent, worker -> leaf): every Scalar is JSON-safe except
 *   the non-finite floats. They travel as `{"$f": "NaN" | "Infinity" | "-Infinity"}`, an object no
 *   Scalar can be, so NaN never turns into null and merges as 0. Exact integer sums travel as
 *   two float words (aggregates.ts) and need nothing here.
 * - **Answers** (the HTTP API, `/v1/query`): a cell JSON cannot carry exactly is a string, as in
 *   the proto3 JSON mapping: an integer beyond +-2^53 as its decimal digits ("18446744073709551616"),
 *   a non-finite float as "NaN", "Infinity" or "-Infinity". The column's type (int, float) says
 *   the string is a number; every other cell of such a column is a JSON number.
 */
import type { Scalar } from './plan.js';

export type WireScalar = Exclude<Scalar, bigint> | { readonly $f: 'NaN' | 'Infinity' | '-Infinity' };

/** A float for a partial: itself when finite. */
export function encFloat(x: number): number | { $f: 'NaN' | 'Infinity' | '-Infinity' } {
  return Number.isFinite(x) ? x : { $f: String(x) as 'NaN' | 'Infinity' | '-Infinity' };
}

/** A float from a partial. */
export function decFloat(x: unknown): number {
  if (typeof x === 'number') return x;
  if (x !== null && typeof x === 'object' && '$f' in x) return Number((x as { $f: string }).$f);
  return x === null ? NaN : Number(x);
}

/** A Scalar for a partial (a key, a row cell, a min/max state). */
export function encScalar(v: Scalar): WireScalar {
  if (typeof v === 'number') return Number.isFinite(v) ? v : { $f: String(v) as 'NaN' };
  if (typeof v === 'bigint') return Number(v);
  return v;
}

/** A Scalar from a partial. */
export function decScalar(v: unknown): Scalar {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && '$f' in v) return Number((v as { $f: string }).$f);
  return v as Scalar;
}

/** An integer result: a number while it is exact as one, else a bigint. */
export function intResult(b: bigint): number | bigint {
  return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
}

/** A cell of an HTTP answer (see above). */
export function apiValue(v: Scalar): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

/** The rows of an HTTP answer; rows without a special value are returned as they are. */
export function apiRows(rows: readonly (readonly Scalar[])[]): unknown[][] {
  return rows.map((r) => {
    for (const v of r) if (typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v))) return r.map(apiValue);
    return r as unknown[];
  });
}
