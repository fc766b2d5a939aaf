/**
 * The SQL abstract syntax tree: what the parser produces and the planner consumes.
 *
 * A discriminated union on `kind` (Kysely style): handlers are written as
 * `Record<Expr['kind'], ...>` or exhaustive switches so a new node kind fails to compile until
 * every visitor handles it. Nodes are plain frozen data (JSON-serialisable), so a plan can be sent
 * to a worker thread or to another process unchanged. `pos` is the 0-based character offset of
 * the node's first character in the SQL text, used in error messages.
 *
 * Not here: name resolution, types, aggregates vs scalars (that is the planner's job).
 */

export type BinaryOp =
  | '+' | '-' | '*' | '/' | '%'
  | '=' | '!=' | '<' | '<=' | '>' | '>='
  | 'and' | 'or';

export type Expr =
  | ColumnRef
  | StarRef
  | Literal
  | IntervalLiteral
  | UnaryExpr
  | BinaryExpr
  | InExpr
  | LikeExpr
  | IsNullExpr
  | BetweenExpr
  | CallExpr
  | CaseExpr
  | CastExpr;

/** A column name; `quoted` when written as "Name" (then matched exactly). */
export interface ColumnRef { readonly kind: 'column'; readonly name: string; readonly quoted: boolean; readonly pos: number }
/** `*` as in `count(*)`. (`SELECT *` is a SelectItem of kind 'star'.) */
export interface StarRef { readonly kind: 'star'; readonly pos: number }
/** Numbers, strings, booleans (TRUE/FALSE) and NULL. */
/** `float`: a number written with a fraction or an exponent (`1.0`, `1e3`): a DOUBLE even when whole. */
export interface Literal { readonly kind: 'literal'; readonly value: number | string | boolean | null; readonly pos: number; readonly float?: true }
/** `INTERVAL '5 minutes'` or `INTERVAL 5 MINUTE`; normalised to seconds. */
export interface IntervalLiteral { readonly kind: 'interval'; readonly seconds: number; readonly text: string; readonly pos: number }
export interface UnaryExpr { readonly kind: 'unary'; readonly op: 'not' | 'neg'; readonly operand: Expr; readonly pos: number }
export interface BinaryExpr { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly pos: number }
/** `x [NOT] IN (a, b, ...)`: the list holds literals or constant expressions. */
export interface InExpr { readonly kind: 'in'; readonly operand: Expr; readonly list: readonly Expr[]; readonly negated: boolean; readonly pos: number }
/** `x [NOT] LIKE p` / `x [NOT] ILIKE p` (caseInsensitive). */
export interface LikeExpr { readonly kind: 'like'; readonly operand: Expr; readonly pattern: Expr; readonly negated: boolean; readonly caseInsensitive: boolean; readonly pos: number }
export interface IsNullExpr { readonly kind: 'isNull'; readonly operand: Expr; readonly negated: boolean; readonly pos: number }
/** `x [NOT] BETWEEN lo AND hi` (inclusive, like DuckDB). */
export interface BetweenExpr { readonly kind: 'between'; readonly operand: Expr; readonly low: Expr; readonly high: Expr; readonly negated: boolean; readonly pos: number }
/**
 * A function call: scalar (`time_bucket`, `now`, `regexp_matches`, `list_contains`, ...) or
 * aggregate (`count`, `sum`, `p99`, ...). `name` is lower-cased. `distinct` for `count(DISTINCT x)`.
 */
export interface CallExpr {
  readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[]; readonly distinct: boolean; readonly pos: number;
  /** `agg(x) FILTER (WHERE c)`. */
  readonly filter?: Expr;
  /** `f(...) OVER (...)`: a window function, computed over the query's result rows. */
  readonly over?: WindowSpec;
}
/** `CASE [operand] WHEN w THEN t ... [ELSE e] END`; `operand` null for the searched form. */
export interface CaseExpr {
  readonly kind: 'case'; readonly operand: Expr | null;
  readonly whens: readonly { readonly when: Expr; readonly then: Expr }[];
  readonly else: Expr | null; readonly pos: number;
}
/** Type names a CAST may name, folded to shoal's types (`date` is a time at its UTC midnight). */
export type CastType = 'int' | 'float' | 'string' | 'bool' | 'time' | 'date';
/** `CAST(x AS T)`, `x::T`, `TRY_CAST(x AS T)` (NULL instead of an error). `typeName` as written. */
export interface CastExpr { readonly kind: 'cast'; readonly operand: Expr; readonly to: CastType; readonly typeName: string; readonly try: boolean; readonly pos: number }

export interface FrameBound { readonly kind: 'unbounded' | 'preceding' | 'current' | 'following'; readonly offset: number }
export interface WindowSpec {
  readonly partitionBy: readonly Expr[];
  readonly orderBy: readonly OrderItem[];
  /** null: SQL's default (the whole partition without ORDER BY, else up to the current row's last peer). */
  readonly frame: { readonly unit: 'rows' | 'range'; readonly start: FrameBound; readonly end: FrameBound } | null;
}

export type SelectItem =
  | { readonly kind: 'star'; readonly pos: number }
  | { readonly kind: 'expr'; readonly expr: Expr; readonly alias: string | null; readonly pos: number };

/** `nullsFirst` null: the default, NULLS LAST in both directions (DuckDB's). */
export interface OrderItem { readonly expr: Expr; readonly desc: boolean; readonly nullsFirst: boolean | null; readonly pos: number }

/**
 * What a SELECT reads: a table, a subquery (`FROM (SELECT ...)`, or a WITH name, which the parser
 * replaces by its query), or a catalog relation (`information_schema.columns`, `SHOW TABLES`,
 * `DESCRIBE t`, which the parser turns into a SELECT over it).
 */
export type FromItem =
  | { readonly kind: 'table'; readonly name: string; readonly pos: number }
  | { readonly kind: 'subquery'; readonly query: SelectStmt; readonly pos: number }
  | { readonly kind: 'catalog'; readonly relation: 'tables' | 'columns'; readonly pos: number };

export interface SelectStmt {
  readonly kind: 'select';
  readonly distinct: boolean;
  readonly items: readonly SelectItem[];
  readonly from: FromItem;
  readonly where: Expr | null;
  /** Expressions, select-list aliases (as ColumnRef) or 1-based ordinals (as numeric Literal). */
  readonly groupBy: readonly Expr[];
  /** `GROUP BY ALL`: every select item without an aggregate. */
  readonly groupByAll: boolean;
  readonly having: Expr | null;
  readonly qualify: Expr | null;
  /** Same reference rules as groupBy. */
  readonly orderBy: readonly OrderItem[];
  readonly limit: number | null;
  readonly offset: number;
}
