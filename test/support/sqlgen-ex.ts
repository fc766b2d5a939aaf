/**
 * The pieces the random SQL generator's files share (sqlgen.ts draws whole queries; the
 * constructs of issue 16 are drawn in sqlgen-scalar.ts, sqlgen-agg.ts and sqlgen-post.ts): the
 * query as the judge receives it (`GeneratedQuery`), an expression in both spellings with its
 * type (`Ex`), small builders for it, `SqlDraw` (the part of the generator those files may call
 * back into), and DuckDB's spelling of number literals (`duckDoubleLiterals`).
 *
 * Not here: any drawing (the generator and its construct files), the data (diff-data.ts).
 */
import type { Rng } from './gen.js';

export type Type = 'int' | 'float' | 'str' | 'bool' | 'time' | 'set';

export interface GeneratedQuery {
  readonly sql: string;
  readonly duckSql: string;
  readonly ordered: boolean;
  /** Output columns that the ORDER BY sorts on, when all its keys are output columns. */
  readonly orderKeys?: readonly number[];
  /** Per-column relative tolerance. */
  readonly tolerances: Readonly<Record<number, number>>;
  /**
   * The DuckDB query again with one more output column per float-sum item (after the others):
   * the absolute bound on its rounding, by output column index. Asked only when the answers
   * differ (diff-run.ts): a sum of +-7.5e14 values that cancels to -27 has no digits that two
   * summation orders must agree on, and a relative tolerance cannot say so.
   */
  readonly errSql?: string;
  readonly errColumns?: readonly number[];
  /**
   * A query over a subquery or WITH: the inner query (DuckDB spelling), for judging a
   * SHOAL_ERR_QUERY_OVERFLOW refusal of an integer the outer query reads from it (diff-run.ts).
   */
  readonly innerSql?: string;
  /** A sample: LIMIT n without ORDER BY; any min(n, matching) rows of the query without LIMIT. */
  readonly sampleRows?: number;
  readonly star: boolean;
  /** Which shape and features the query has, for summaries. */
  readonly shape: string;
  /**
   * The query's row-level integer `+ - *` subexpressions (DuckDB spelling), for judging a
   * SHOAL_ERR_QUERY_OVERFLOW refusal (diff-run.ts): `rowExprs` count on the rows the WHERE keeps,
   * `whereExprs` (inside the WHERE) on every row; `where` is the whole WHERE condition, if any.
   */
  readonly intArith: { readonly where: string | null; readonly rowExprs: readonly string[]; readonly whereExprs: readonly string[] };
}

/** A query as a shape draws it, before next() adds what the judge needs. */
export type Drawn = Omit<GeneratedQuery, 'intArith'>;

/** An expression in both spellings, with its type and what it contains. */
export interface Ex {
  readonly s: string;
  readonly d: string;
  readonly type: Type;
  /** Contains an aggregate. */
  readonly agg: boolean;
  /** Relative tolerance when the value is approximate (sketches) or order-dependent (float sums). */
  readonly tol?: number;
  /** Approximate (a sketch): never sorted or filtered on. */
  readonly approx?: boolean;
  /**
   * A float sum or mean inside: DuckDB aggregate SQL for a bound on how far two correct engines'
   * answers can be apart (summation order), absolute, per group (see `floatSumErr`).
   */
  readonly err?: string;
}

/**
 * What the construct files may ask of the generator: its seeded draws of columns, literals and
 * typed subexpressions. `nested` runs a draw one construct level deeper; the construct files draw
 * nothing new at `nestLevel >= NEST_MAX`, so a CASE inside a CASE inside a CASE is as deep as it
 * gets (a predicate inside a CASE could otherwise draw another CASE without end).
 */
export interface SqlDraw {
  readonly rng: Rng;
  readonly nestLevel: number;
  nested<T>(draw: () => T): T;
  column(type: Type): Ex;
  numExpr(depth?: number): Ex;
  strExpr(depth?: number): Ex;
  timeExpr(): Ex;
  predicate(depth?: number): Ex;
  intLiteral(column?: string): string;
  floatLiteral(): string;
  strLiteral(column?: string): string;
  isoLiteral(): string;
}
export const NEST_MAX = 2;

/** Twice the unit roundoff, rounded up: see floatSumErr. */
const SUM_ROUNDING = '2.5e-16';

export function sqlStringLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function same(text: string, type: Type, agg = false): Ex {
  return { s: text, d: text, type, agg };
}

export function wrap(fn: string, args: readonly Ex[], type: Type, extra: Partial<Ex> = {}): Ex {
  return { s: `${fn}(${args.map((a) => a.s).join(', ')})`, d: `${fn}(${args.map((a) => a.d).join(', ')})`, type, agg: args.some((a) => a.agg), ...extra };
}

export function binary(left: Ex, op: string, right: Ex, type: Type): Ex {
  const tol = Math.max(left.tol ?? 0, right.tol ?? 0);
  return { s: `(${left.s} ${op} ${right.s})`, d: `(${left.d} ${op} ${right.d})`, type, agg: left.agg || right.agg, ...(tol > 0 ? { tol } : {}), ...(left.approx || right.approx ? { approx: true } : {}) };
}

/** The type of a CASE's or greatest()'s branches: an int and a float make a float; otherwise they agree (drawn so). */
export function unify(types: readonly Type[]): Type {
  const numeric = types.every((t) => t === 'int' || t === 'float');
  return numeric && types.includes('float') ? 'float' : (types[0] as Type);
}

/** Exactly comparable between two correct engines: neither a sketch nor an order-dependent float sum. */
export function isExact(ex: Ex): boolean {
  return !ex.approx && ex.tol === undefined && ex.type !== 'set';
}

/**
 * Recursive summation of n doubles in any order is off the exact sum by at most (n-1)·u·Σ|x|
 * (u = 2^-53); two engines summing in different orders, by twice that. 2.5e-16 > 2u. The bound
 * for sum / avg / mean of float `arg` (DuckDB SQL, per group), over the rows `filter` keeps
 * (` FILTER (WHERE ...)`, or '' for all).
 */
export function floatSumErr(fn: string, arg: string, filter = ''): string {
  return `(${SUM_ROUNDING} * count(${arg})${filter} * ${fn === 'sum' ? 'sum' : 'avg'}(abs(${arg}))${filter})`;
}

/** errSql / errColumns for the items that carry a float-sum bound (none: no fields). */
export function errQuery(items: readonly Ex[], build: (extraSelect: string) => string): { errSql?: string; errColumns?: number[] } {
  const columns = items.map((item, index) => (item.err !== undefined ? index : -1)).filter((index) => index >= 0);
  if (columns.length === 0) return {};
  return { errSql: build(columns.map((index) => `, ${items[index]!.err}`).join('')), errColumns: columns };
}

export function tolerancesOf(items: readonly Ex[]): Record<number, number> {
  const tolerances: Record<number, number> = {};
  items.forEach((item, index) => {
    if (item.tol !== undefined) tolerances[index] = item.tol;
  });
  return tolerances;
}

export function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let index = out.length - 1; index > 0; index--) {
    const other = rng.int(0, index + 1);
    [out[index], out[other]] = [out[other] as T, out[index] as T];
  }
  return out;
}

/**
 * `sql` with every number literal that has a fraction or an exponent (`2.675`, `-0.25`, `1e-300`)
 * cast to DOUBLE (`2.675::DOUBLE`): shoal's reading of such a literal, where DuckDB's would be a
 * DECIMAL. `::` binds tighter than any operator, so `-0.25::DOUBLE` is -(0.25::DOUBLE), and the
 * cast of a DECIMAL literal gives the double nearest the written decimal, as parsing it would.
 * String literals, quoted and bare identifiers (`c0`, `p999`, `e1`) are left alone.
 */
export function duckDoubleLiterals(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?/g, (token) => {
    if (!/^[0-9.]/.test(token)) return token;
    return /[.eE]/.test(token) ? `${token}::DOUBLE` : token;
  });
}

