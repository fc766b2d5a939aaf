/**
 * bind: the scan parts of a LogicalPlan -> typed BExpr over one table's schema (on a leaf).
 * Resolves column names (exact, then case-insensitive when unambiguous and unquoted), checks
 * operand and aggregate argument types, and derives the result column types.
 *
 * In a cluster, leaves hold different subsets of the columns (a sparse field may have landed on
 * one leaf only), so a leaf bound `lenient` treats a column it does not have as all-NULL and
 * reports it; the aggregator fails the query only if no leaf knows the column.
 */
import type { Expr } from '../sql/ast.js';
import { ShoalError } from '../errors.js';
import { scalarFromAst } from './expr-util.js';
import type { AggCall, BExpr, LogicalPlan, ValueType } from './plan.js';
import type { ColumnType } from '../storage/types.js';

export interface BoundPlan {
  readonly logical: LogicalPlan;
  readonly where: BExpr | null;
  readonly keys: readonly BExpr[];
  readonly aggArgs: readonly (BExpr | null)[];
  /** Rows mode: projected expressions and their names (SELECT * expands to the schema). */
  readonly projections: readonly { readonly name: string; readonly expr: BExpr }[];
  /** Rows mode: one expression per ORDER BY term (an output's expression or its own). */
  readonly rowOrder: readonly BExpr[];
  /** Result columns with types. */
  readonly columns: readonly { readonly name: string; readonly type: ValueType }[];
  readonly aggTypes: readonly ValueType[];
  readonly keyTypes: readonly ValueType[];
  /** Columns the query names that this table lacks (lenient binding only). */
  readonly unknownColumns: readonly string[];
}

export interface SchemaLike { get(name: string): { type: ColumnType } | undefined; keys(): IterableIterator<string> }

export function bind(plan: LogicalPlan, schema: SchemaLike, nowSeconds: number, lenient: boolean): BoundPlan {
  const unknown = new Set<string>();
  const names = [...schema.keys()];
  const bindExpr = (e: Expr): BExpr => {
    if (e.kind === 'column') {
      let name = e.name;
      let col = schema.get(name);
      if (col === undefined && !e.quoted) {
        const matches = names.filter((n) => n.toLowerCase() === e.name.toLowerCase());
        if (matches.length === 1) { name = matches[0]!; col = schema.get(name); }
      }
      if (col === undefined) {
        if (lenient) { unknown.add(e.name); return { k: 'const', value: null, type: 'null' }; }
        const hint = names.filter((n) => n.toLowerCase().includes(e.name.toLowerCase()) || e.name.toLowerCase().includes(n.toLowerCase())).slice(0, 3);
        throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_COLUMN',
          `column "${e.name}" does not exist in table "${plan.table}"${hint.length ? ` (did you mean ${hint.map((h) => `"${h}"`).join(', ')}?)` : ''}`,
          { position: e.pos, column: e.name });
      }
      return { k: 'col', name, type: col.type };
    }
    if (e.kind === 'call' && isAggName(e.name)) {
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `aggregate ${e.name}() is not allowed here`, { position: e.pos });
    }
    return scalarFromAst(e, nowSeconds, bindExpr);
  };

  const where = plan.where === null ? null : bindExpr(plan.where);
  if (where !== null && !(where.type === 'bool' || where.type === 'null' || where.type === 'any')) {
    throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `WHERE needs a boolean condition, got ${where.type}`, { position: plan.where!.pos });
  }

  if (plan.mode === 'rows') {
    const projections = plan.star
      ? names.map((n) => ({ name: n, expr: { k: 'col', name: n, type: schema.get(n)!.type } as BExpr }))
      : plan.projections.map((p) => ({ name: p.name, expr: bindExpr(p.expr) }));
    const rowOrder = plan.orderBy.map((o, i) => (o.output !== null ? projections[o.output]!.expr : bindExpr(plan.rowOrder[i]!)));
    return {
      logical: plan, where, keys: [], aggArgs: [], projections, rowOrder,
      columns: projections.map((p) => ({ name: p.name, type: p.expr.type })), aggTypes: [], keyTypes: [],
      unknownColumns: [...unknown],
    };
  }

  for (const u of plan.ungrouped) {
    // Resolve the name exactly like a column reference: unknown -> UNKNOWN_COLUMN (or lenient
    // NULL), known -> it is a real column used outside GROUP BY.
    const b = bindExpr({ kind: 'column', name: u.name, quoted: u.quoted, pos: u.pos });
    if (b.k === 'col') {
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `column "${u.name}" must appear in GROUP BY or be used in an aggregate function (in ${u.clause})`, { position: u.pos });
    }
  }
  const keys = plan.keys.map((k) => {
    const b = bindExpr(k);
    if (b.type === 'set') throw new ShoalError('SHOAL_ERR_QUERY_TYPE', 'cannot GROUP BY a string set; use list_contains() to filter instead', { position: k.pos });
    return b;
  });
  const aggArgs = plan.aggs.map((a) => (a.arg === null ? null : bindAggArg(a, bindExpr(a.arg))));
  const aggTypes = plan.aggs.map((a, i) => aggResultType(a, aggArgs[i] ?? null));
  const keyTypes = keys.map((k) => k.type);
  const columns = plan.outputs.map((o) => ({ name: o.name, type: inferType(o.expr, keyTypes, aggTypes) }));
  return { logical: plan, where, keys, aggArgs, projections: [], rowOrder: [], columns, aggTypes, keyTypes, unknownColumns: [...unknown] };
}

const AGG_NAMES = new Set(['count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max', 'approx_count_distinct', 'approx_quantile', 'quantile', 'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'median']);
function isAggName(n: string): boolean { return AGG_NAMES.has(n); }

function bindAggArg(a: AggCall, arg: BExpr): BExpr {
  const t = arg.type;
  const pos = a.arg!.pos;
  const numeric = t === 'int' || t === 'float' || t === 'any' || t === 'null';
  switch (a.fn) {
    case 'sum': case 'avg':
      if (!numeric) throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `${a.fn}() needs a number, got ${t} in ${a.text}`, { position: pos });
      break;
    case 'approx_quantile':
      if (!(numeric || t === 'time')) throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `quantiles need a number or time, got ${t} in ${a.text}`, { position: pos });
      break;
    case 'min': case 'max': case 'count_distinct': case 'approx_count_distinct':
      if (t === 'set') throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `${a.fn}() does not take a string set (${a.text})`, { position: pos });
      break;
    default:
  }
  return arg;
}

export function aggResultType(a: AggCall, arg: BExpr | null): ValueType {
  switch (a.fn) {
    case 'count_star': case 'count': case 'count_distinct': case 'approx_count_distinct': return 'int';
    case 'avg': return 'float';
    case 'sum': return arg!.type === 'int' ? 'int' : arg!.type === 'null' ? 'null' : 'float';
    case 'min': case 'max': return arg!.type;
    // The sketch interpolates: a quantile of ints holds fractions, so it is a float (DuckDB's
    // median of an INTEGER is a DOUBLE too); a quantile of time is a time.
    case 'approx_quantile': return arg!.type === 'int' ? 'float' : arg!.type;
  }
}

/** Result type of a post-aggregation expression, given the types of keys and aggregates. */
export function inferType(e: BExpr, keyTypes: readonly ValueType[], aggTypes: readonly ValueType[]): ValueType {
  switch (e.k) {
    case 'key': return keyTypes[e.index] ?? 'any';
    case 'agg': return aggTypes[e.index] ?? 'any';
    case 'const': case 'col': return e.type;
    case 'neg': return inferType(e.arg, keyTypes, aggTypes);
    case 'arith': {
      const l = inferType(e.left, keyTypes, aggTypes);
      const r = inferType(e.right, keyTypes, aggTypes);
      if (l === 'null' || r === 'null') return 'null';
      if (e.op === '/') return 'float';
      if (l === 'time' && r === 'time') return 'float';
      if ((l === 'time' || r === 'time') && (e.op === '+' || e.op === '-')) return 'time';
      return l === 'int' && r === 'int' ? 'int' : 'float';
    }
    case 'cmp': case 'and': case 'or': case 'not': case 'in': case 'match': case 'isnull': return 'bool';
    case 'fn':
      if (e.type !== 'any') return e.type;
      if (e.name === 'abs' || e.name === 'round' || e.name === 'coalesce') return inferType(e.args[0]!, keyTypes, aggTypes);
      if (e.name === 'floor' || e.name === 'ceil') return 'int';
      return 'any';
  }
}
