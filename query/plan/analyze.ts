/**
 * analyze: SelectStmt -> LogicalPlan, without a schema. Decides the query's mode (aggregate or
 * rows), finds the group keys and the aggregate calls, resolves GROUP BY / ORDER BY aliases and
 * ordinals, and rewrites the select list, HAVING and ORDER BY over key and aggregate refs. The
 * same SQL gives the same plan on every leaf and on the aggregator, which is what lets the
 * aggregator merge leaf states by position.
 *
 * Name rules (documented in docs/sql.md): in GROUP BY and ORDER BY an identifier that equals a
 * select-list alias means that select item; an integer literal n means the n-th select item.
 */
import type { CallExpr, Expr, SelectStmt } from '../sql/ast.js';
import { ShoalError } from '../errors.js';
import type { AggCall, AggFn, BExpr, LogicalPlan, OrderKey, OutputColumn, ValueType, WindowCall } from './plan.js';
import { exprText, exprKey, foldConstant, isAggregateName, scalarFromAst, suggestFunction } from './expr-util.js';
import { childrenOf } from './scalar.js';
import { astChildren, caseOf, findWindow, containsWindow, windowCall } from './window-plan.js';
import { flattenSubquery } from './flatten.js';

/** Approximate quantile shorthands (median is exact: quantile_cont(x, 0.5), as in DuckDB). */
const QUANTILE_SHORTHANDS: Record<string, number> = {
  p50: 0.5, p75: 0.75, p90: 0.9, p95: 0.95, p99: 0.99, p999: 0.999,
};

export function analyze(original: SelectStmt, nowSeconds: number): LogicalPlan {
  // A subquery that is a plain projection of a table is folded into this query (flatten.ts).
  const stmt = flattenSubquery(original, containsAggregate) ?? original;
  // What FROM reads: a table (the leaves scan it), or a subquery / catalog relation that the
  // runner computes first and this query then reads as rows (relation.ts).
  let source: LogicalPlan['source'];
  let table = '';
  if (stmt.from.kind === 'table') table = stmt.from.name;
  else if (stmt.from.kind === 'subquery') source = { kind: 'subquery', plan: analyze(stmt.from.query, nowSeconds) };
  else source = { kind: 'catalog', relation: stmt.from.relation };
  const overRelation = source !== undefined;

  const hasStar = stmt.items.some((i) => i.kind === 'star');
  const selectExprs = stmt.items.filter((i) => i.kind === 'expr');
  // Output names: alias, else the expression's text (DuckDB names columns the same way).
  const items = stmt.items.flatMap((i) => (i.kind === 'expr' ? [{ expr: i.expr, name: i.alias ?? exprText(i.expr), alias: i.alias, pos: i.pos }] : []));
  let groupByList: readonly Expr[] = stmt.groupBy;
  // GROUP BY ALL: every select item that holds no aggregate (and no window), as DuckDB does.
  if (stmt.groupByAll) groupByList = items.filter((i) => !containsAggregate(i.expr) && !containsWindow(i.expr)).map((i) => i.expr);
  let aggregate = groupByList.length > 0 || stmt.groupByAll || selectExprs.some((i) => containsAggregate(i.expr)) ||
    stmt.having !== null || (stmt.qualify !== null && containsAggregate(stmt.qualify));
  if (stmt.where !== null && containsAggregate(stmt.where)) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'aggregate functions are not allowed in WHERE; use HAVING', { position: findAggregate(stmt.where)!.pos });
  }
  if (stmt.where !== null && containsWindow(stmt.where)) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'window functions are not allowed in WHERE; use QUALIFY', { position: findWindow(stmt.where)!.pos });
  }
  if (hasStar && (aggregate || stmt.items.length > 1)) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'SELECT * cannot be combined with other select items, aggregates or GROUP BY', { position: stmt.items[0]!.pos });
  }
  let distinct = false;
  if (stmt.distinct) {
    if (hasStar) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'SELECT DISTINCT * is not supported; list the columns (SELECT DISTINCT a, b ...)', { position: stmt.items[0]!.pos });
    // DISTINCT over plain columns is a GROUP BY of them (merged across leaves like any group);
    // over an aggregate's (or a window's) result rows it drops repeated rows at the end.
    if (!aggregate && !items.some((i) => containsWindow(i.expr))) { groupByList = items.map((i) => i.expr); aggregate = true; }
    else distinct = true;
  }
  if (stmt.qualify !== null && !containsWindow(stmt.qualify) && !items.some((i) => containsWindow(i.expr))) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'QUALIFY needs a window function in the select list or in QUALIFY (use HAVING to filter groups)', { position: stmt.qualify.pos });
  }
  const offset = stmt.offset;

  const resolveRef = (e: Expr, clause: string): Expr => {
    if (e.kind === 'literal' && typeof e.value === 'number') {
      if (!Number.isInteger(e.value) || e.value < 1 || e.value > items.length) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${clause} position ${e.value} is not in the select list (1..${items.length})`, { position: e.pos });
      }
      return items[e.value - 1]!.expr;
    }
    if (e.kind === 'column') {
      const byAlias = items.find((i) => i.alias !== null && (e.quoted ? i.alias === e.name : i.alias.toLowerCase() === e.name.toLowerCase()));
      if (byAlias) return byAlias.expr;
    }
    return e;
  };

  if (!aggregate) {
    const windowed = items.some((i) => containsWindow(i.expr)) || stmt.orderBy.some((o) => containsWindow(o.expr)) || stmt.qualify !== null;
    if (windowed && !overRelation) {
      const at = items.map((i) => findWindow(i.expr)).find((w) => w !== null) ?? stmt.orderBy.map((o) => findWindow(o.expr)).find((w) => w !== null);
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', "window functions run over a query's result rows: use them with GROUP BY (e.g. count(*) / sum(count(*)) OVER ()), or over a subquery (SELECT ..., row_number() OVER (...) FROM (SELECT ...))", { position: at?.pos ?? stmt.items[0]!.pos });
    }
    const projections = hasStar ? [] : items.map((i) => ({ name: i.name, expr: i.expr }));
    const orderBy: OrderKey[] = [];
    const rowOrder: (Expr | null)[] = [];
    for (const o of stmt.orderBy) {
      // SELECT * over a subquery: its columns are known once it has run, so bind takes the ordinal.
      if (hasStar && overRelation && o.expr.kind === 'literal' && typeof o.expr.value === 'number') {
        orderBy.push({ output: null, expr: null, desc: o.desc, ...nulls(o.nullsFirst) });
        rowOrder.push(o.expr);
        continue;
      }
      const idx = outputIndex(o.expr, items);
      orderBy.push({ output: hasStar ? null : idx, expr: null, desc: o.desc, ...nulls(o.nullsFirst) });
      rowOrder.push(hasStar || idx === null ? resolveRef(o.expr, 'ORDER BY') : null);
    }
    return {
      mode: 'rows', table, tablePos: stmt.from.pos, ungrouped: [], where: stmt.where, keys: [], aggs: [], outputs: [], having: null,
      orderBy, limit: stmt.limit, projections, star: hasStar, rowOrder,
      ...extras({ offset, distinct, rowQualify: stmt.qualify, source }),
    };
  }

  const keys: Expr[] = [];
  const keyIndex = new Map<string, number>();
  for (const g of groupByList) {
    const e = resolveRef(g, 'GROUP BY');
    if (containsAggregate(e)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'GROUP BY cannot contain an aggregate', { position: g.pos });
    if (containsWindow(e)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'GROUP BY cannot contain a window function', { position: g.pos });
    const k = exprKey(e);
    if (!keyIndex.has(k)) { keyIndex.set(k, keys.length); keys.push(e); }
  }
  // In HAVING, QUALIFY and window specs a select alias means its item (DuckDB), unless a GROUP BY
  // column has that name.
  const keyColumns = new Set(keys.filter((k) => k.kind === 'column').map((k) => (k as { name: string }).name.toLowerCase()));
  const aliasOf = (e: Expr, windows: boolean): Expr | null => {
    if (e.kind !== 'column' || keyColumns.has(e.name.toLowerCase())) return null;
    const byAlias = items.find((i) => i.alias !== null && (e.quoted ? i.alias === e.name : i.alias.toLowerCase() === e.name.toLowerCase()));
    return byAlias && (windows || !containsWindow(byAlias.expr)) ? byAlias.expr : null;
  };

  const aggs: AggCall[] = [];
  const windows: WindowCall[] = [];
  const ungrouped: { name: string; quoted: boolean; pos: number; clause: string }[] = [];
  const aggIndex = new Map<string, number>();
  // aliases: in HAVING and window specs, a select alias of a plain expression; in QUALIFY and
  // ORDER BY also one of a window (QUALIFY rn <= 3).
  const rewrite = (e: Expr, clause: string, aliases: boolean): BExpr => {
    if (aliases) { const a = aliasOf(e, clause === 'QUALIFY' || clause === 'ORDER BY'); if (a !== null) return rewrite(a, clause, false); }
    const k = exprKey(e);
    const ki = keyIndex.get(k);
    if (ki !== undefined) return { k: 'key', index: ki, type: staticType(e) };
    if (e.kind === 'call' && e.over !== undefined) {
      const w = windowCall(e, (x) => rewrite(x, 'a window', true));
      windows.push(w);
      return { k: 'win', index: windows.length - 1, type: w.type };
    }
    if (e.kind === 'call' && isAggregateName(e.name)) {
      const call = toAggCall(e);
      const ak = `${call.fn}|${call.q}|${call.arg ? exprKey(call.arg) : '*'}`;
      let ai = aggIndex.get(ak);
      if (ai === undefined) { ai = aggs.length; aggIndex.set(ak, ai); aggs.push(call); }
      return { k: 'agg', index: ai, type: staticType(e) };
    }
    if (e.kind === 'column') {
      ungrouped.push({ name: e.name, quoted: e.quoted, pos: e.pos, clause });
      return { k: 'const', value: null, type: 'any' };
    }
    return scalarFromAst(e, nowSeconds, (child) => rewrite(child, clause, aliases));
  };

  const outputs: OutputColumn[] = items.map((i) => ({ name: i.name, expr: foldConstant(rewrite(i.expr, 'the select list', false)) }));
  const having = stmt.having === null ? null : foldConstant(rewrite(stmt.having, 'HAVING', true));
  const qualify = stmt.qualify === null ? null : foldConstant(rewrite(stmt.qualify, 'QUALIFY', true));
  const orderBy: OrderKey[] = stmt.orderBy.map((o) => {
    const idx = outputIndex(o.expr, items);
    if (idx !== null) return { output: idx, expr: null, desc: o.desc, ...nulls(o.nullsFirst) };
    return { output: null, expr: foldConstant(rewrite(resolveRef(o.expr, 'ORDER BY'), 'ORDER BY', true)), desc: o.desc, ...nulls(o.nullsFirst) };
  });
  if (having !== null && containsWin(having)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'window functions are not allowed in HAVING; use QUALIFY', { position: stmt.having!.pos });
  return {
    mode: 'aggregate', table, tablePos: stmt.from.pos, ungrouped, where: stmt.where, keys, aggs, outputs, having, orderBy,
    limit: stmt.limit, projections: [], star: false, rowOrder: [],
    ...extras({ offset, distinct, windows, qualify, source }),
  };
}

/** The protocol-4 fields, only when used: a plan without them is a version-3 plan (protocol.ts). */
function extras(x: { offset: number; distinct: boolean; windows?: WindowCall[]; qualify?: BExpr | null; rowQualify?: Expr | null; source: LogicalPlan['source'] }): Partial<LogicalPlan> {
  const out: { -readonly [K in keyof LogicalPlan]?: LogicalPlan[K] } = {};
  if (x.offset > 0) out.offset = x.offset;
  if (x.distinct) out.distinct = true;
  if (x.windows !== undefined && x.windows.length > 0) out.windows = x.windows;
  if (x.qualify !== undefined && x.qualify !== null) out.qualify = x.qualify;
  if (x.rowQualify !== undefined && x.rowQualify !== null) out.rowQualify = x.rowQualify;
  if (x.source !== undefined) out.source = x.source;
  return out;
}

const nulls = (nullsFirst: boolean | null): { nullsFirst?: boolean } => (nullsFirst === true ? { nullsFirst: true } : {});

function containsWin(e: BExpr): boolean {
  return e.k === 'win' || childrenOf(e).some(containsWin);
}

/** The select item an ORDER BY term names: an ordinal, an alias, or the same expression. */
function outputIndex(e: Expr, items: readonly { expr: Expr; alias: string | null }[]): number | null {
  if (e.kind === 'literal' && typeof e.value === 'number') {
    if (!Number.isInteger(e.value) || e.value < 1 || e.value > items.length) {
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `ORDER BY position ${e.value} is not in the select list (1..${items.length})`, { position: e.pos });
    }
    return e.value - 1;
  }
  if (e.kind === 'column') {
    const i = items.findIndex((it) => it.alias !== null && (e.quoted ? it.alias === e.name : it.alias.toLowerCase() === e.name.toLowerCase()));
    if (i >= 0) return i;
  }
  const k = exprKey(e);
  const i = items.findIndex((it) => exprKey(it.expr) === k);
  return i >= 0 ? i : null;
}

function toAggCall(call: CallExpr): AggCall {
  const text = exprText(call);
  // count_if(c) is sum(c) (a boolean sums as 0/1); agg(x) FILTER (WHERE c) is agg(CASE WHEN c THEN x
  // END): every aggregate skips NULLs, so the rewrite is exact, and it runs on the leaves.
  let e = call;
  if (e.name === 'count_if' || e.name === 'countif') {
    // DuckDB's count_if is the sum of its condition: NULL over no (non-NULL) rows, not 0.
    if (e.args.length !== 1 || e.args[0]!.kind === 'star') throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() takes 1 condition, got ${e.args.length}`, { position: e.pos });
    const c = e.args[0]!;
    e = { ...e, name: 'sum', args: [{ kind: 'case', operand: null, whens: [{ when: c, then: { kind: 'literal', value: 1, pos: c.pos } }, { when: { kind: 'unary', op: 'not', operand: c, pos: c.pos }, then: { kind: 'literal', value: 0, pos: c.pos } }], else: null, pos: c.pos }] };
  }
  if (e.filter !== undefined) {
    if (containsAggregate(e.filter)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'aggregate functions cannot be nested (in FILTER)', { position: e.filter.pos });
    const f = e.filter;
    const guard = (x: Expr): Expr => caseOf(f, x);
    const star = e.args.length === 1 && e.args[0]!.kind === 'star';
    e = { ...e, name: star ? 'count' : e.name, args: star ? [guard({ kind: 'literal', value: 1, pos: e.pos })] : e.args.length > 0 ? [guard(e.args[0]!), ...e.args.slice(1)] : e.args, filter: undefined };
  }
  const arity = (n: number) => {
    if (e.args.length !== n) {
      throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() takes ${n} argument${n === 1 ? '' : 's'}, got ${e.args.length}`, { position: e.pos });
    }
  };
  for (const a of e.args) {
    if (containsAggregate(a)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'aggregate functions cannot be nested', { position: a.pos });
  }
  const argOf = (): Expr => {
    arity(1);
    const a = e.args[0]!;
    if (a.kind === 'star') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${e.name}(*) is not valid; only count(*) takes *`, { position: a.pos });
    return a;
  };
  let fn: AggFn;
  let q: number | null = null;
  let arg: Expr | null;
  if (e.distinct && e.name !== 'count') {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `DISTINCT is supported only in count(DISTINCT x), not in ${e.name}()`, { position: e.pos });
  }
  switch (e.name) {
    case 'count':
      arity(1);
      if (e.args[0]!.kind === 'star') {
        if (e.distinct) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'count(DISTINCT *) is not supported', { position: e.pos });
        fn = 'count_star'; arg = null;
      } else {
        fn = e.distinct ? 'count_distinct' : 'count'; arg = e.args[0]!;
      }
      break;
    case 'count_star':
      arity(0); fn = 'count_star'; arg = null; break;
    case 'sum': case 'avg': case 'min': case 'max': case 'approx_count_distinct':
      fn = e.name; arg = argOf(); break;
    case 'mean':
      fn = 'avg'; arg = argOf(); break;
    case 'approx_quantile': case 'quantile': case 'quantile_cont': case 'quantile_disc': {
      arity(2);
      arg = e.args[0]!;
      const qe = e.args[1]!;
      const qv = qe.kind === 'literal' ? qe.value : null;
      if (typeof qv !== 'number' || !(qv >= 0 && qv <= 1)) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${e.name}() needs a constant quantile between 0 and 1 as its second argument`, { position: qe.pos });
      }
      // DuckDB's quantile() is quantile_disc; approx_quantile is the sketch.
      fn = e.name === 'approx_quantile' ? 'approx_quantile' : e.name === 'quantile_cont' ? 'quantile_cont' : 'quantile_disc'; q = qv; break;
    }
    case 'median':
      fn = 'quantile_cont'; q = 0.5; arg = argOf(); break;
    default: {
      const shorthand = QUANTILE_SHORTHANDS[e.name];
      if (shorthand === undefined) throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `unknown aggregate function ${e.name}()${suggestFunction(e.name)}`, { position: e.pos });
      fn = 'approx_quantile'; q = shorthand; arg = argOf();
    }
  }
  return { fn, arg, q, text };
}

/**
 * The type of a group key or aggregate where it follows from the SQL alone, else 'any' (bind
 * knows the rest, but the aggregator finishes a query without a schema). What matters is 'time':
 * HAVING max(time) > '2026-12-02' must read the string as a time, as WHERE does, and not compare
 * a number with a string. Time values come only from the time column and the functions that make
 * times, so this is exact for them; count and avg are typed so a string compared with them is a
 * type error instead of a meaningless comparison.
 */
function staticType(e: Expr): ValueType {
  switch (e.kind) {
    case 'column': return (e.quoted ? e.name === 'time' : e.name.toLowerCase() === 'time') ? 'time' : 'any';
    case 'binary': {
      if (e.op !== '+' && e.op !== '-') return 'any';
      const l = staticType(e.left);
      const r = staticType(e.right);
      return (l === 'time') !== (r === 'time') ? 'time' : 'any';
    }
    case 'call':
      switch (e.name) {
        case 'time_bucket': case 'to_timestamp': case 'now': case 'current_timestamp': case 'current_date': case 'today':
          return 'time';
        case 'count': case 'count_star': case 'approx_count_distinct': return 'int';
        case 'avg': case 'mean': return 'float';
        case 'count_if': case 'countif': return 'int';
        case 'min': case 'max': case 'approx_quantile': case 'quantile': case 'quantile_cont': case 'quantile_disc': case 'median': case 'coalesce': case 'first_value': case 'last_value': case 'lag': case 'lead':
          return e.args.length > 0 && staticType(e.args[0]!) === 'time' ? 'time' : 'any';
        default:
          return e.name in QUANTILE_SHORTHANDS && e.args.length === 1 && staticType(e.args[0]!) === 'time' ? 'time' : 'any';
      }
    default: return 'any';
  }
}

function findAggregate(e: Expr): CallExpr | null {
  // A window call is not an aggregate of the query, but its arguments may hold one:
  // sum(count(*)) OVER () sums the groups' counts.
  if (e.kind === 'call' && isAggregateName(e.name) && e.over === undefined) return e;
  for (const c of astChildren(e)) { const f = findAggregate(c); if (f) return f; }
  return null;
}

export function containsAggregate(e: Expr): boolean { return findAggregate(e) !== null; }

export { QUANTILE_SHORTHANDS };
