/**
 * Queries over rows that are already answers: `SELECT ... FROM (SELECT ... GROUP BY ...)`, a WITH
 * query, and the catalog relations (information_schema.columns / tables, SHOW TABLES, DESCRIBE).
 * Whoever finishes the answer (the aggregator, or a leaf asked directly) runs the source first,
 * through the normal cluster or local path, so the leaves only ever execute table plans; then the
 * outer query runs here over the source's result rows, with the same binder, aggregate states and
 * finishing code as a table query (so its NULLs, types and exact sums are the same). The source is
 * at most LIMITS.resultRowsMax rows: a subquery cut by that limit is an error, never a silent
 * partial input.
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { bind, type SchemaLike } from '../plan/bind.js';
import { createAggStates } from '../exec/aggregates.js';
import { fromValues } from '../exec/vector.js';
import { exprKey, isDate } from '../plan/expr-util.js';
import { tupleText } from '../exec/group-key.js';
import type { ColumnInfo, Partial } from '../plan/partial.js';
import type { LogicalPlan, Scalar, ValueType } from '../plan/plan.js';
import { evalScalar, type ScalarEnv } from '../plan/scalar.js';
import type { ColumnType } from '../storage/types.js';
import { finish, finishRows, type QueryResult } from './merge.js';

/** `dates[i]`: column i holds DATE values (a subquery's `x::DATE`), compared as dates outside. */
export interface Relation { readonly columns: readonly ColumnInfo[]; readonly rows: readonly (readonly Scalar[])[]; readonly dates?: readonly boolean[] }

/** A table as the catalog shows it. */
export interface CatalogTable { readonly name: string; readonly columns: readonly { readonly name: string; readonly type: string }[] }

/** shoal's column types in DuckDB's names (what DESCRIBE and information_schema show). */
const DUCKDB_TYPE: Readonly<Record<string, string>> = { int: 'BIGINT', float: 'DOUBLE', string: 'VARCHAR', bool: 'BOOLEAN', time: 'TIMESTAMP', set: 'VARCHAR[]' };

export function catalogRelation(relation: 'tables' | 'columns', tables: readonly CatalogTable[]): Relation {
  const sorted = [...tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (relation === 'tables') {
    return {
      columns: [{ name: 'table_catalog', type: 'string' }, { name: 'table_schema', type: 'string' }, { name: 'table_name', type: 'string' }, { name: 'table_type', type: 'string' }],
      rows: sorted.map((t) => ['shoal', 'main', t.name, 'BASE TABLE']),
    };
  }
  return {
    columns: [
      { name: 'table_catalog', type: 'string' }, { name: 'table_schema', type: 'string' }, { name: 'table_name', type: 'string' },
      { name: 'column_name', type: 'string' }, { name: 'ordinal_position', type: 'int' }, { name: 'column_default', type: 'null' },
      { name: 'is_nullable', type: 'string' }, { name: 'data_type', type: 'string' },
    ],
    // A column two leaves type differently is `int|float` there: BIGINT|DOUBLE here.
    rows: sorted.flatMap((t) => t.columns.map((c, i) => ['shoal', 'main', t.name, c.name, i + 1, null, 'YES', c.type.split('|').map((x) => DUCKDB_TYPE[x] ?? x.toUpperCase()).join('|')])),
  };
}

/** Runs `plan` (whose FROM is a subquery or catalog relation) over the source's rows. */
export function runOverRelation(plan: LogicalPlan, source: Relation, nowSeconds: number): QueryResult {
  const at = new Map<string, number>();
  source.columns.forEach((c, i) => { if (!at.has(c.name)) at.set(c.name, i); });
  const schema: SchemaLike = {
    get: (name: string) => { const i = at.get(name); return i === undefined ? undefined : { type: relationType(source.columns[i]!.type), date: source.dates?.[i] === true }; },
    keys: () => at.keys(),
  };
  const bound = bind(plan, schema, nowSeconds, false);
  const envOf = (row: readonly Scalar[]): ScalarEnv => ({ column: (name: string) => { const i = at.get(name); return i === undefined ? null : row[i]!; } });
  const kept: (readonly Scalar[])[] = [];
  for (const row of source.rows) if (bound.where === null || evalScalar(bound.where, envOf(row)) === true) kept.push(row);

  if (plan.mode === 'rows') {
    const envs = kept.map(envOf);
    const withWindows: LogicalPlan = { ...plan, windows: bound.windows ?? [] };
    const { rows, truncated } = finishRows(withWindows, envs, bound.projections.map((p) => p.expr), bound.rowOrder, bound.rowQualify ?? null);
    return { columns: [...bound.columns], rows, truncated };
  }

  // Aggregate: group ids by the keys' exact tuple, then the same aggregate states as a scan.
  const ids = new Map<string, number>();
  const keys: Scalar[][] = plan.keys.map(() => []);
  const gids = new Int32Array(kept.length);
  kept.forEach((row, r) => {
    const env = envOf(row);
    const values = bound.keys.map((k) => evalScalar(k, env));
    const text = values.length === 0 ? '' : tupleText(values);
    let g = ids.get(text);
    if (g === undefined) { g = ids.size; ids.set(text, g); values.forEach((v, j) => keys[j]!.push(v)); }
    gids[r] = g;
  });
  const count = plan.keys.length === 0 ? 1 : ids.size;
  const aggs = createAggStates(plan.aggs.map((a, j) => ({ fn: a.fn, q: a.q, argKey: a.arg === null ? '*' : exprKey(a.arg), intArg: bound.aggArgs[j]?.type === 'int' })));
  const sel = Int32Array.from({ length: kept.length }, (_, i) => i);
  aggs.forEach((a, j) => {
    a.ensure(count);
    const arg = bound.aggArgs[j];
    let vec = null;
    if (arg !== null && arg !== undefined) {
      const values = kept.map((row) => evalScalar(arg, envOf(row)));
      if (values.some((v) => typeof v === 'bigint')) {
        throw new ShoalError('SHOAL_ERR_QUERY_OVERFLOW', `${plan.aggs[j]!.text} reads an integer beyond +-2^53 from the subquery, which shoal cannot aggregate again exactly`);
      }
      vec = fromValues(values, arg.type === 'bool');
    }
    a.update(plan.keys.length === 0 ? null : gids, sel, kept.length, vec);
  });
  const partial: Partial = {
    mode: 'aggregate', tableFound: true, columns: bound.columns,
    groups: { count, keys, states: aggs.map((a) => a.column(count)) },
    unknownColumns: [], stats: { rowsHeld: kept.length, rowsScanned: source.rows.length, rowsMatched: kept.length, blocksScanned: 0, blocksSkipped: 0 },
  };
  return finish(plan, partial);
}

function relationType(t: ValueType): ColumnType {
  // A column of NULLs, or of mixed types, binds as one whose operations are checked per value.
  return (t === 'null' || t === 'any' ? 'any' : t) as ColumnType;
}

/** A subquery's answer as a relation: refused when LIMITS.resultRowsMax cut it. */
export function subqueryRelation(result: QueryResult, plan?: LogicalPlan): Relation {
  if (result.truncated) {
    throw new ShoalError('SHOAL_ERR_QUERY_LIMIT', `a subquery returned more than ${LIMITS.resultRowsMax} rows, the most an outer query reads; aggregate further or add a LIMIT inside`);
  }
  return { columns: result.columns, rows: result.rows, ...(plan !== undefined ? { dates: dateColumns(plan, result.columns.length) } : {}) };
}

/**
 * Which of a plan's output columns are DATEs, from the plan (the values are times at midnight
 * either way): `x::DATE` or `DATE '...'` in the select list, or a key that is one. Outside, a
 * DATE compared with text reads the text as a DATE, as DuckDB does ('2025-11-22T09:30' is the
 * 22nd), and prints as a date.
 */
function dateColumns(plan: LogicalPlan, count: number): boolean[] {
  const astDate = (e: LogicalPlan['keys'][number]): boolean => e.kind === 'cast' && e.to === 'date';
  if (plan.mode === 'aggregate') return plan.outputs.map((o) => isDate(o.expr) || (o.expr.k === 'key' && plan.keys[o.expr.index] !== undefined && astDate(plan.keys[o.expr.index]!)));
  if (plan.star) return new Array<boolean>(count).fill(false);
  return plan.projections.map((p) => astDate(p.expr));
}

/**
 * Runs a plan whose FROM may be a subquery or catalog relation: the innermost table plan through
 * `runTable` (the cluster or the leaf; its extra, the coverage, is passed up), every level above
 * it here. Returns the answer and the innermost run's extra (null for a catalog query).
 */
export async function runNested<C>(plan: LogicalPlan, nowSeconds: number, runTable: (p: LogicalPlan) => Promise<{ result: QueryResult; extra: C }>, catalog: () => Promise<{ tables: CatalogTable[]; extra: C }>): Promise<{ result: QueryResult; extra: C }> {
  if (plan.source === undefined) return runTable(plan);
  if (plan.source.kind === 'catalog') {
    const c = await catalog();
    return { result: runOverRelation(plan, catalogRelation(plan.source.relation, c.tables), nowSeconds), extra: c.extra };
  }
  const inner = await runNested(plan.source.plan, nowSeconds, runTable, catalog);
  return { result: runOverRelation(plan, subqueryRelation(inner.result, plan.source.plan), nowSeconds), extra: inner.extra };
}
