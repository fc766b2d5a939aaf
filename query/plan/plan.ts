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
  /** `date`: a subquery's column of DATE values (relation.ts), compared and printed as dates. */
  | { readonly k: 'col'; readonly name: string; readonly type: ValueType; readonly date?: true }
  /** `date`: a DATE constant (a time at a UTC midnight that prints as a date). */
  | { readonly k: 'const'; readonly value: Scalar; readonly type: ValueType; readonly date?: true }
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
  | { readonly k: 'fn'; readonly name: ScalarFn; readonly args: readonly BExpr[]; readonly type: ValueType }
  /** CASE WHEN ... THEN ... ELSE ... END (the simple form is planned as the searched one). */
  | { readonly k: 'case'; readonly whens: readonly { readonly when: BExpr; readonly then: BExpr }[]; readonly else: BExpr | null; readonly type: ValueType }
  /** CAST / TRY_CAST; `to` is the canonical DuckDB type name (sql-words.ts). */
  | { readonly k: 'cast'; readonly arg: BExpr; readonly to: string; readonly try: boolean; readonly type: ValueType }
  /** A window function's value for the current result row (LogicalPlan.windows[index]). */
  | { readonly k: 'win'; readonly index: number; readonly type: ValueType };

export type ScalarFn =
  | 'time_bucket' | 'lower' | 'upper' | 'length' | 'abs' | 'round' | 'floor' | 'ceil'
  | 'list_contains' | 'to_timestamp' | 'epoch' | 'coalesce'
  // protocol 4 (protocol.ts):
  | 'nullif' | 'concat' | 'substr' | 'starts_with' | 'ends_with' | 'contains' | 'split_part'
  | 'regexp_extract' | 'regexp_replace' | 'replace' | 'greatest' | 'least' | 'strpos' | 'left' | 'right'
  | 'trim' | 'ltrim' | 'rtrim' | 'reverse' | 'lpad' | 'rpad' | 'date_trunc' | 'date_part' | 'strftime'
  | 'is_distinct' | 'unnest';

export type AggFn =
  | 'count_star' | 'count' | 'count_distinct' | 'sum' | 'avg' | 'min' | 'max'
  | 'approx_count_distinct' | 'approx_quantile'
  // protocol 4: exact quantiles over every value (bounded like count(DISTINCT)).
  | 'quantile_cont' | 'quantile_disc';

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
  /** NULLS FIRST; absent or false: NULLS LAST, DuckDB's default in both directions. */
  readonly nullsFirst?: boolean;
}

export type WindowFn =
  | 'row_number' | 'rank' | 'dense_rank' | 'percent_rank' | 'cume_dist' | 'ntile'
  | 'lag' | 'lead' | 'first_value' | 'last_value' | 'nth_value'
  | 'count_star' | 'count' | 'sum' | 'avg' | 'min' | 'max';

/**
 * A window function over the query's result rows (after GROUP BY and HAVING), computed where
 * the answer is finished (merge.ts / relation.ts), never on a leaf. Expressions are over the
 * result row (key/agg refs in aggregate mode, columns of a subquery's rows).
 */
export interface WindowCall {
  readonly fn: WindowFn;
  readonly args: readonly BExpr[];
  readonly partitionBy: readonly BExpr[];
  readonly orderBy: readonly { readonly expr: BExpr; readonly desc: boolean; readonly nullsFirst: boolean }[];
  /** null: the default frame. Bounds: offset rows before (<0) / after (>0) the current row,
   * null for unbounded, 0 for the current row; `range` frames include the current row's peers. */
  readonly frame: { readonly unit: 'rows' | 'range'; readonly start: number | null; readonly end: number | null } | null;
  readonly type: ValueType;
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
  // ---- protocol 4; absent in older plans. Applied where the answer is finished. ----
  /** Rows to skip after ORDER BY (rows mode: leaves send limit + offset rows). */
  readonly offset?: number;
  /** SELECT DISTINCT over an aggregate's result rows. */
  readonly distinct?: boolean;
  /** Aggregate mode: window functions and QUALIFY over the result rows. */
  readonly windows?: readonly WindowCall[];
  readonly qualify?: BExpr | null;
  /** Rows mode over a subquery or catalog: QUALIFY, unbound (relation.ts binds it). */
  readonly rowQualify?: Expr | null;
  /** What FROM reads when it is not a table: the plan of a subquery, or a catalog relation. The
   * leaves only ever get table plans: the runner executes `source` first (relation.ts). */
  readonly source?: { readonly kind: 'subquery'; readonly plan: LogicalPlan } | { readonly kind: 'catalog'; readonly relation: 'tables' | 'columns' };
}
