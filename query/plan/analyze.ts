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
import type { AggCall, AggFn, BExpr, LogicalPlan, OrderKey, OutputColumn, ValueType } from './plan.js';
import { exprText, exprKey, foldConstant, isAggregateName, scalarFromAst } from './expr-util.js';

const QUANTILE_SHORTHANDS: Record<string, number> = {
  p50: 0.5, p75: 0.75, p90: 0.9, p95: 0.95, p99: 0.99, p999: 0.999, median: 0.5,
};

export function analyze(stmt: SelectStmt, nowSeconds: number): LogicalPlan {
  const hasStar = stmt.items.some((i) => i.kind === 'star');
  const selectExprs = stmt.items.filter((i) => i.kind === 'expr');
  const aggregate = stmt.groupBy.length > 0 || selectExprs.some((i) => containsAggregate(i.expr)) ||
    (stmt.having !== null);
  if (stmt.where !== null && containsAggregate(stmt.where)) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'aggregate functions are not allowed in WHERE; use HAVING', { position: findAggregate(stmt.where)!.pos });
  }
  if (hasStar && (aggregate || stmt.items.length > 1)) {
    throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'SELECT * cannot be combined with other select items, aggregates or GROUP BY', { position: stmt.items[0]!.pos });
  }

  // Output names: alias, else the expression's text (DuckDB names columns the same way).
  const items = stmt.items.flatMap((i) => (i.kind === 'expr' ? [{ expr: i.expr, name: i.alias ?? exprText(i.expr), alias: i.alias, pos: i.pos }] : []));
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
    const projections = hasStar ? [] : items.map((i) => ({ name: i.name, expr: i.expr }));
    const orderBy: OrderKey[] = [];
    const rowOrder: (Expr | null)[] = [];
    for (const o of stmt.orderBy) {
      const idx = outputIndex(o.expr, items);
      orderBy.push({ output: hasStar ? null : idx, expr: null, desc: o.desc });
      rowOrder.push(hasStar || idx === null ? resolveRef(o.expr, 'ORDER BY') : null);
    }
    return {
      mode: 'rows', table: stmt.from.name, tablePos: stmt.from.pos, ungrouped: [], where: stmt.where, keys: [], aggs: [], outputs: [], having: null,
      orderBy, limit: stmt.limit, projections, star: hasStar, rowOrder,
    };
  }

  const keys: Expr[] = [];
  const keyIndex = new Map<string, number>();
  for (const g of stmt.groupBy) {
    const e = resolveRef(g, 'GROUP BY');
    if (containsAggregate(e)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'GROUP BY cannot contain an aggregate', { position: g.pos });
    const k = exprKey(e);
    if (!keyIndex.has(k)) { keyIndex.set(k, keys.length); keys.push(e); }
  }

  const aggs: AggCall[] = [];
  const ungrouped: { name: string; quoted: boolean; pos: number; clause: string }[] = [];
  const aggIndex = new Map<string, number>();
  const rewrite = (e: Expr, clause: string): BExpr => {
    const k = exprKey(e);
    const ki = keyIndex.get(k);
    if (ki !== undefined) return { k: 'key', index: ki, type: staticType(e) };
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
    return scalarFromAst(e, nowSeconds, (child) => rewrite(child, clause));
  };

  const outputs: OutputColumn[] = items.map((i) => ({ name: i.name, expr: foldConstant(rewrite(i.expr, 'the select list')) }));
  const having = stmt.having === null ? null : foldConstant(rewrite(stmt.having, 'HAVING'));
  const orderBy: OrderKey[] = stmt.orderBy.map((o) => {
    const idx = outputIndex(o.expr, items);
    if (idx !== null) return { output: idx, expr: null, desc: o.desc };
    return { output: null, expr: foldConstant(rewrite(resolveRef(o.expr, 'ORDER BY'), 'ORDER BY')), desc: o.desc };
  });
  return {
    mode: 'aggregate', table: stmt.from.name, tablePos: stmt.from.pos, ungrouped, where: stmt.where, keys, aggs, outputs, having, orderBy,
    limit: stmt.limit, projections: [], star: false, rowOrder: [],
  };
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

function toAggCall(e: CallExpr): AggCall {
  const text = exprText(e);
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
    case 'approx_quantile': case 'quantile': {
      arity(2);
      arg = e.args[0]!;
      const qe = e.args[1]!;
      const qv = qe.kind === 'literal' ? qe.value : null;
      if (typeof qv !== 'number' || !(qv >= 0 && qv <= 1)) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${e.name}() needs a constant quantile between 0 and 1 as its second argument`, { position: qe.pos });
      }
      fn = 'approx_quantile'; q = qv; break;
    }
    default: {
      const shorthand = QUANTILE_SHORTHANDS[e.name];
      if (shorthand === undefined) throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `unknown aggregate function ${e.name}()`, { position: e.pos });
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
        case 'min': case 'max': case 'approx_quantile': case 'quantile': case 'coalesce':
          return e.args.length > 0 && staticType(e.args[0]!) === 'time' ? 'time' : 'any';
        default:
          return e.name in QUANTILE_SHORTHANDS && e.args.length === 1 && staticType(e.args[0]!) === 'time' ? 'time' : 'any';
      }
    default: return 'any';
  }
}

function findAggregate(e: Expr): CallExpr | null {
  switch (e.kind) {
    case 'call':
      if (isAggregateName(e.name)) return e;
      for (const a of e.args) { const f = findAggregate(a); if (f) return f; }
      return null;
    case 'unary': return findAggregate(e.operand);
    case 'binary': return findAggregate(e.left) ?? findAggregate(e.right);
    case 'in': return findAggregate(e.operand) ?? e.list.map(findAggregate).find((x) => x !== null) ?? null;
    case 'like': return findAggregate(e.operand) ?? findAggregate(e.pattern);
    case 'isNull': return findAggregate(e.operand);
    case 'between': return findAggregate(e.operand) ?? findAggregate(e.low) ?? findAggregate(e.high);
    case 'column': case 'star': case 'literal': case 'interval': return null;
  }
}

export function containsAggregate(e: Expr): boolean { return findAggregate(e) !== null; }

export { QUANTILE_SHORTHANDS };
