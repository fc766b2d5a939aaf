/**
 * The vector type the kernels pass around (one block's values of one expression) and the ways
 * to make one from plain values: per row (fromValues) or per dictionary entry of a string column
 * (perDictEntry, the trick that makes string functions cost per distinct string). Kept apart from
 * the kernels (vector.ts) so both they and the aggregate states can build vectors.
 */
import { ShoalError } from '../errors.js';
import type { BExpr, Scalar } from '../plan/plan.js';
import type { BlockContext } from './vector.js';

export const FALSE = 0;
export const NULL = 1;
export const TRUE = 2;

export type Vec =
  | { readonly t: 'num'; readonly v: Float64Array | Int32Array; readonly nulls: Uint8Array | null }
  /** `gcodes`: dictionary entry -> this thread's string code (string-codes.ts), when the strings
   * are a column's own; null for computed strings. `dict` may be built on first read (and
   * `gcodes`, for a column's strings).
   * `lcodes`: dictionary entry -> the leaf's string code, in a scan worker that was given the
   * block's map for this column (string-codes.ts, `leafSpace`); read by grouping and
   * count(DISTINCT), which then make codes rather than strings. */
  | { readonly t: 'str'; readonly codes: Uint8Array | Uint16Array | Int32Array; readonly dict: readonly string[]; readonly gcodes: Int32Array | null; readonly nulls: Uint8Array | null; readonly lcodes?: Int32Array }
  | { readonly t: 'bool'; readonly v: Uint8Array }
  | { readonly t: 'set'; readonly offsets: Int32Array; readonly codes: Int32Array; readonly dict: readonly string[]; readonly nulls: Uint8Array | null }
  | { readonly t: 'const'; readonly v: Scalar };

/** The JS value of row i of a vector. */
export function rowValue(v: Vec, i: number): Scalar {
  switch (v.t) {
    case 'const': return v.v;
    case 'num': return v.nulls !== null && v.nulls[i] === 1 ? null : v.v[i]!;
    case 'str': return v.nulls !== null && v.nulls[i] === 1 ? null : v.dict[v.codes[i]!]!;
    case 'bool': return v.v[i] === NULL ? null : v.v[i] === TRUE;
    case 'set': {
      if (v.nulls !== null && v.nulls[i] === 1) return null;
      const out: string[] = [];
      for (let j = v.offsets[i]!; j < v.offsets[i + 1]!; j++) out.push(v.dict[v.codes[j]!]!);
      return out;
    }
  }
}

export function boolConst(value: Scalar, rowCount: number): Vec {
  return { t: 'bool', v: new Uint8Array(rowCount).fill(value === null ? NULL : value ? TRUE : FALSE) };
}

/**
 * A function of one string column (the other arguments constant), evaluated once per dictionary
 * entry and mapped to rows by code: substr, split_part, regexp_extract, strftime of a string ...
 */
export function perDictEntry(e: BExpr, v: Extract<Vec, { t: 'str' }>, f0: (s: string | null) => Scalar, n: number, ctx: BlockContext): Vec {
  // An entry that fails (CAST('n/a' AS INTEGER)) is an error only if a row that counts has it:
  // WHERE may have excluded every such row, and DuckDB evaluates the select list after WHERE.
  const failed = new Map<number, unknown>();
  let entry = -1;
  const f = (s: string | null): Scalar => {
    try { return f0(s); } catch (err) { if (!(err instanceof ShoalError)) throw err; failed.set(entry, err); return null; }
  };
  const checkFailed = (nullEntry: number) => {
    if (failed.size === 0) return;
    const codeOf = (r: number) => (v.nulls !== null && v.nulls[r] === 1 ? nullEntry : v.codes[r]!);
    const at = ctx.selected;
    if (at === null) { for (let r = 0; r < n; r++) { const c = codeOf(r); if (failed.has(c)) throw failed.get(c); } return; }
    for (let j = 0; j < at.count; j++) { const c = codeOf(at.sel[j]!); if (failed.has(c)) throw failed.get(c); }
  };
  const evalAll = (dict: readonly (string | null)[]) => dict.map((s, d) => { entry = d; return f(s); });
  // A NULL row is evaluated too: coalesce, IS DISTINCT FROM and CASE do not return NULL for it.
  if (v.nulls !== null) {
    entry = v.dict.length;
    const atNull = f(null);
    if (atNull !== null) {
      const results = evalAll([...v.dict, null]);
      checkFailed(v.dict.length);
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = v.nulls[i] === 1 ? v.dict.length : v.codes[i]!;
      return mapResults(e, results, codes, null, n);
    }
  }
  const results = evalAll(v.dict);
  checkFailed(-1);
  return mapResults(e, results, v.codes, v.nulls, n);
}

function mapResults(e: BExpr, results: readonly Scalar[], vcodes: Uint8Array | Uint16Array | Int32Array, vnulls: Uint8Array | null, n: number): Vec {
  const v = { codes: vcodes, nulls: vnulls };
  if (results.some((x) => typeof x === 'bigint')) throw overflowError(e);
  const sample = results.find((x) => x !== null);
  if (e.type === 'bool' || typeof sample === 'boolean') {
    const table = Uint8Array.from(results, (x) => (x === null ? NULL : x ? TRUE : FALSE));
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = v.nulls !== null && v.nulls[i] === 1 ? NULL : table[v.codes[i]!]!;
    return { t: 'bool', v: out };
  }
  if (typeof sample === 'number' || (sample === undefined && e.type !== 'string')) {
    const out = new Float64Array(n);
    const nulls = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = v.nulls !== null && v.nulls[i] === 1 ? null : results[v.codes[i]!]!;
      if (x === null || typeof x !== 'number') nulls[i] = 1; else out[i] = x;
    }
    return { t: 'num', v: out, nulls };
  }
  if (sample !== undefined && typeof sample !== 'string') return fromValues(Array.from({ length: n }, (_, i) => (v.nulls !== null && v.nulls[i] === 1 ? null : results[v.codes[i]!]!)), false);
  // Strings: a new dictionary of the distinct results, codes mapped through.
  const dict: string[] = [];
  const at = new Map<string, number>();
  const map = new Int32Array(results.length);
  let anyNull = v.nulls !== null;
  results.forEach((x, d) => {
    if (x === null) { map[d] = -1; anyNull = true; return; }
    const s = x as string;
    let c = at.get(s);
    if (c === undefined) { c = dict.length; dict.push(s); at.set(s, c); }
    map[d] = c;
  });
  const codes = new Int32Array(n);
  const nulls = anyNull ? new Uint8Array(n) : null;
  for (let i = 0; i < n; i++) {
    const c = v.nulls !== null && v.nulls[i] === 1 ? -1 : map[v.codes[i]!]!;
    if (c < 0) nulls![i] = 1; else codes[i] = c;
  }
  return { t: 'str', codes, dict, gcodes: null, nulls };
}

export function brief(e: BExpr): string {
  switch (e.k) {
    case 'col': return e.name;
    case 'const': return String(e.value);
    case 'arith': return `(${brief(e.left)} ${e.op} ${brief(e.right)})`;
    case 'neg': return `-${brief(e.arg)}`;
    case 'fn': return `${e.name}(...)`;
    default: return '(...)';
  }
}

export function overflowError(e: BExpr): ShoalError {
  return new ShoalError('SHOAL_ERR_QUERY_OVERFLOW', `integer arithmetic in ${brief(e)} passes +-2^53, where shoal's integers stop being exact (an operand divided by 1 makes it float arithmetic, approximate)`);
}

export function fromValues(values: readonly Scalar[], asBool: boolean): Vec {
  const n = values.length;
  const sample = values.find((x) => x !== null);
  if (asBool || typeof sample === 'boolean') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = values[i] === null ? NULL : values[i] ? TRUE : FALSE;
    return { t: 'bool', v: out };
  }
  if (sample === undefined) return { t: 'const', v: null };
  if (typeof sample === 'number') {
    const out = new Float64Array(n);
    const nulls = new Uint8Array(n);
    for (let i = 0; i < n; i++) { const x = values[i]; if (x === null) nulls[i] = 1; else out[i] = x as number; }
    return { t: 'num', v: out, nulls };
  }
  // strings (and anything else) as a fresh dictionary
  const dict: string[] = [];
  const lookup = new Map<string, number>();
  const codes = new Int32Array(n);
  const nulls = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    if (x === null) { nulls[i] = 1; continue; }
    const s = typeof x === 'string' ? x : JSON.stringify(x);
    let c = lookup.get(s);
    if (c === undefined) { c = dict.length; dict.push(s); lookup.set(s, c); }
    codes[i] = c;
  }
  return { t: 'str', codes, dict, gcodes: null, nulls };
}
