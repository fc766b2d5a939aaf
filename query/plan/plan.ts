/**
 * Query plans. `LogicalPlan` is what `analyze()` makes of a SELECT without knowing any schema,
 * so a leaf and an aggregator derive the very same plan from the SQL text: the leaf binds its
 * scan parts to its table's schema, the aggregator uses only the post-aggregation parts to
 * merge and finish partial results. `BExpr` is a bound expression: every node carries the
 * logical type of its value ('null' for a literal NULL, 'any' where only run time can tell).
 */
import type { Expr } from '../sql/ast.js';
import type { ColumnType } from '../storage/types.js';

export type ValueType = ColumnType | 'null' | 'any';
/** bigint only as the final value of an exact integer sum beyond 2^53 (never stored, never a key). */
export type Scalar = number | bigint | string | boolean | null | readonly string[];

export type CmpOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type ArithOp = '+' | '-' | '*' | '/' | '%';

export type BExpr =
  | { readonly k: 'col'; readonly name: string; readonly type: ValueType }
  | { readonly k: 'const'; readonly value: Scalar; readonly type: ValueType }
  | { readonly k: 'key'; readonly index: number; readonly type: ValueType }
  | { readonly k: 'agg'; readonly index: number; readonly type: ValueType }
  | { readonly k: 'arith'; readonly op: ArithOp; readonly left: BExpr; readonly right: BExpr; readonly type: ValueType }
  | { readonly k: 'neg'; readonly arg: BExpr; readonly type: ValueType }
  | { readonly k: 'cmp'; readonly op: CmpOp; readonly left: BExpr; readonly right: BExpr; readonly type: 'bool' }
  | { readonly k: 'and' | 'or'; readonly args: readonly BExpr[]; readonly type: 'bool' }
  | { readonly k: 'not'; readonly arg: BExpr; readonly type: 'bool' }
  | { readonly k: 'in'; readonly arg: BExpr; readonly values: readonly Scalar[]; readonly negated: boolean; readonly type: 'bool' }
  | { readonly k: 'match'; readonly arg: BExpr; readonly regex: string; readonly flags: string; readonly negated: boolean; readonly type: 'bool' }
  | { readonly k: 'isnull'; readonly arg: BExpr; readonly negated: boolean; readonly type: 'bool' }
  | { readonly k: 'fn'; readonly name: ScalarFn; readonly args: readonly BExpr[]; readonly type: ValueType };

export type ScalarFn =
  | 'time_bucket' | 'lower' | 'upper' | 'length' | 'abs' | 'round' | 'floor' | 'ceil'
  | 'list_contains' | 'to_timestamp' | 'epoch' | 'coalesce';

export type AggFn =
  | 'count_star' | 'count' | 'count_distinct' | 'sum' | 'avg' | 'min' | 'max'
  | 'approx_count_distinct' | 'approx_quantile';

/** One aggregate call, deduplicated by its text: `sum(x)` twice in a query is computed once. */
export interface AggCall {
  readonly fn: AggFn;
  /** Unbound argument (null for count(*)); leaves bind it to their schema. */
  readonly arg: Expr | null;
  /** Quantile in [0, 1] for approx_quantile. */
  readonly q: number | null;
  /** SQL text of the call, for result column names. */
  readonly text: string;
}

export interface OutputColumn {
  readonly name: string;
  /** Post-aggregation expression over `key` / `agg` refs (aggregate mode). */
  readonly expr: BExpr;
}

export interface OrderKey {
  /** Index into the outputs when the ORDER BY names one (alias, ordinal or same text). */
  readonly output: number | null;
  /** Otherwise an expression (aggregate mode: post-aggregation; rows mode: unbound, see rowOrder). */
  readonly expr: BExpr | null;
  readonly desc: boolean;
}

export interface LogicalPlan {
  readonly mode: 'aggregate' | 'rows';
  readonly table: string;
  /** Character position of the table name in the SQL (for errors). */
  readonly tablePos: number;
  /**
   * Aggregate mode: column references outside aggregates that are not group keys. Whether that
   * is a misuse (SHOAL_ERR_QUERY_SEMANTIC) or a typo (SHOAL_ERR_QUERY_UNKNOWN_COLUMN) depends on
   * the schema, so the binder decides.
   */
  readonly ungrouped: readonly { readonly name: string; readonly quoted: boolean; readonly pos: number; readonly clause: string }[];
  readonly where: Expr | null;
  /** Aggregate mode: group keys (unbound) and aggregate calls. */
  readonly keys: readonly Expr[];
  readonly aggs: readonly AggCall[];
  readonly outputs: readonly OutputColumn[];
  readonly having: BExpr | null;
  readonly orderBy: readonly OrderKey[];
  readonly limit: number | null;
  /** Rows mode: the projected expressions (unbound); `star` for SELECT *. */
  readonly projections: readonly { readonly name: string; readonly expr: Expr }[];
  readonly star: boolean;
  /** Rows mode: ORDER BY expressions that are not outputs (unbound), parallel to orderBy. */
  readonly rowOrder: readonly (Expr | null)[];
}
