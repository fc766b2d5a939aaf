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
import { isAggregateName, scalarFromAst } from './expr-util.js';
import { childrenOf } from './scalar.js';
import { windowCall, windowType } from './window-plan.js';
import type { AggCall, BExpr, LogicalPlan, ValueType, WindowCall } from './plan.js';
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
  /** Rows mode over a subquery (relation.ts): its windows and QUALIFY, bound. */
  readonly windows?: readonly WindowCall[];
  readonly rowQualify?: BExpr | null;
}

export interface SchemaLike { get(name: string): { type: ColumnType; date?: boolean } | undefined; keys(): IterableIterator<string> }

export function bind(plan: LogicalPlan, schema: SchemaLike, nowSeconds: number, lenient: boolean): BoundPlan {
  const unknown = new Set<string>();
  const names = [...schema.keys()];
  // Windows are bound only over a subquery's rows (analyze refuses them over a table's rows).
  const windows: WindowCall[] = [];
  const bindExpr = (e: Expr): BExpr => {
    if (e.kind === 'call' && e.over !== undefined && plan.source !== undefined && plan.mode === 'rows') {
      const w = windowCall(e, bindExpr);
      windows.push(w);
      return { k: 'win', index: windows.length - 1, type: w.type };
    }
    if (e.kind === 'column') {
      let name = e.name;
      let col = schema.get(name);
      if (col === undefined && !e.quoted) {
        const matches = names.filter((n) => n.toLowerCase() === e.name.toLowerCase());
        if (matches.length === 1) { name = matches[0]!; col = schema.get(name); }
      }
      if (col === undefined) {
        if (lenient) { unknown.add(e.name); return { k: 'const', value: null, type: 'null' }; }
        throw unknownColumnError(e.name, e.quoted, names, plan.source === undefined ? `table "${plan.table}"` : 'the subquery', e.pos);
      }
      return col.date === true ? { k: 'col', name, type: col.type, date: true } : { k: 'col', name, type: col.type };
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
    checkUnnest([], [where, ...projections.map((p) => p.expr)], []);
    const rowOrder = plan.orderBy.map((o, i) => {
      if (o.output !== null) return projections[o.output]!.expr;
      const r = plan.rowOrder[i]!;
      if (plan.star && plan.source !== undefined && r.kind === 'literal' && typeof r.value === 'number') {
        // ORDER BY n over SELECT * of a subquery: the n-th of its columns.
        const p = projections[r.value - 1];
        if (!Number.isInteger(r.value) || p === undefined) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `ORDER BY position ${r.value} is not in the select list (1..${projections.length})`, { position: r.pos });
        return p.expr;
      }
      return bindExpr(r);
    });
    const rowQualify = plan.rowQualify ? bindExpr(plan.rowQualify) : null;
    return {
      logical: plan, where, keys: [], aggArgs: [], projections, rowOrder,
      columns: projections.map((p) => ({ name: p.name, type: p.expr.type })), aggTypes: [], keyTypes: [],
      unknownColumns: [...unknown], windows, rowQualify,
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
    if (b.type === 'set') throw new ShoalError('SHOAL_ERR_QUERY_TYPE', 'cannot GROUP BY a string set; GROUP BY unnest(x) groups by its members, list_contains() filters', { position: k.pos });
    return b;
  });
  const aggArgs = plan.aggs.map((a) => (a.arg === null ? null : bindAggArg(a, bindExpr(a.arg))));
  checkUnnest(keys, [where, ...aggArgs], plan.keys);
  const aggTypes = plan.aggs.map((a, i) => aggResultType(a, aggArgs[i] ?? null));
  const keyTypes = keys.map((k) => k.type);
  const winTypes = windowTypes(plan.windows ?? [], keyTypes, aggTypes);
  const columns = plan.outputs.map((o) => ({ name: o.name, type: inferType(o.expr, keyTypes, aggTypes, winTypes) }));
  return { logical: plan, where, keys, aggArgs, projections: [], rowOrder: [], columns, aggTypes, keyTypes, unknownColumns: [...unknown] };
}

const isAggName = isAggregateName;

const hasUnnest = (e: BExpr | null): boolean => e !== null && ((e.k === 'fn' && e.name === 'unnest') || childrenOf(e).some(hasUnnest));

/**
 * unnest(set) is a GROUP BY key of its own (one group per member): at most one, whole, and
 * nowhere else. A samples query over set members is not supported (DuckDB's unnest in a select
 * list makes rows; here that would be a row explosion on every leaf).
 */
function checkUnnest(keys: readonly BExpr[], others: readonly (BExpr | null)[], keyAst: readonly Expr[]): void {
  const whole = keys.filter((k) => k.k === 'fn' && k.name === 'unnest').length;
  const inside = keys.some((k) => !(k.k === 'fn' && k.name === 'unnest') && hasUnnest(k)) || others.some(hasUnnest);
  if (whole > 1) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'GROUP BY takes at most one unnest()', { position: keyAst[0]?.pos });
  if (inside) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'unnest() is supported as a GROUP BY key of its own: SELECT unnest(tags) AS tag, count(*) FROM t GROUP BY tag (to filter on a member, use list_contains(tags, \'x\'))');
  }
}

/**
 * An unknown column, with help: a double-quoted name that is no column was most likely meant as
 * a string ('...' in SQL), a near name is suggested, and a short table lists its columns.
 */
export function unknownColumnError(name: string, quoted: boolean, names: readonly string[], where: string, pos: number): ShoalError {
  const lower = name.toLowerCase();
  const near = names.filter((n) => n.toLowerCase().includes(lower) || lower.includes(n.toLowerCase())).slice(0, 3);
  let hint = near.length ? ` (did you mean ${near.map((h) => `"${h}"`).join(', ')}?)` : names.length > 0 && names.length <= 30 ? `; its columns are ${names.map((n) => `"${n}"`).join(', ')}` : '';
  if (quoted && near.length === 0) hint = `; "${name}" in double quotes is a column name: write a string in single quotes, '${name.replace(/'/g, "''")}'`;
  return new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_COLUMN', `column "${name}" does not exist in ${where}${hint}`, { position: pos, column: name });
}

/** Each window's result type, now that key and aggregate types are known. */
function windowTypes(windows: readonly WindowCall[], keyTypes: readonly ValueType[], aggTypes: readonly ValueType[]): ValueType[] {
  const out: ValueType[] = [];
  for (const w of windows) out.push(windowType(w.fn, w.args.map((a) => inferType(a, keyTypes, aggTypes, out))));
  return out;
}

function bindAggArg(a: AggCall, arg: BExpr): BExpr {
  const t = arg.type;
  const pos = a.arg!.pos;
  const numeric = t === 'int' || t === 'float' || t === 'any' || t === 'null';
  switch (a.fn) {
    case 'sum': case 'avg':
      // sum(status >= 500) counts the rows where it holds, as DuckDB sums a BOOLEAN (avg refuses).
      if (t === 'bool' && a.fn === 'sum') return { k: 'cast', arg, to: 'INTEGER', try: false, type: 'int' };
      if (!numeric) throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `${a.fn}() needs a number, got ${t} in ${a.text}${t === 'bool' ? ' (count_if(x) or avg(CASE WHEN x THEN 1 ELSE 0 END) give the share)' : ''}`, { position: pos });
      break;
    case 'approx_quantile': case 'quantile_cont': case 'quantile_disc':
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
    case 'quantile_cont': return arg!.type === 'int' ? 'float' : arg!.type;
    case 'quantile_disc': return arg!.type;
  }
}

/** Result type of a post-aggregation expression, given the types of keys, aggregates and windows. */
export function inferType(e: BExpr, keyTypes: readonly ValueType[], aggTypes: readonly ValueType[], winTypes: readonly ValueType[] = []): ValueType {
  const inferType = (x: BExpr, k: readonly ValueType[], a: readonly ValueType[]): ValueType => inferTypeOf(x, k, a, winTypes);
  return inferType(e, keyTypes, aggTypes);
}

function inferTypeOf(e: BExpr, keyTypes: readonly ValueType[], aggTypes: readonly ValueType[], winTypes: readonly ValueType[]): ValueType {
  const inferType = (x: BExpr, k: readonly ValueType[], a: readonly ValueType[]): ValueType => inferTypeOf(x, k, a, winTypes);
  switch (e.k) {
    case 'win': return winTypes[e.index] ?? e.type;
    case 'cast': return e.type;
    case 'case': {
      let t: ValueType = 'null';
      for (const x of [...e.whens.map((w) => w.then), ...(e.else ? [e.else] : [])]) {
        const u = inferType(x, keyTypes, aggTypes);
        if (u === 'null' || u === t) continue;
        t = t === 'null' ? u : (t === 'int' && u === 'float') || (t === 'float' && u === 'int') ? 'float' : 'any';
      }
      return e.type !== 'any' && e.type !== 'null' ? e.type : t;
    }
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
      if (e.name === 'abs' || e.name === 'round' || e.name === 'coalesce' || e.name === 'nullif') return inferType(e.args[0]!, keyTypes, aggTypes);
      if (e.name === 'greatest' || e.name === 'least') {
        const ts = e.args.map((x) => inferType(x, keyTypes, aggTypes)).filter((t) => t !== 'null');
        return ts.length === 0 ? 'null' : ts.every((t) => t === ts[0]) ? ts[0]! : ts.every((t) => t === 'int' || t === 'float') ? 'float' : 'any';
      }
      if (e.name === 'floor' || e.name === 'ceil') return 'int';
      return 'any';
  }
}
