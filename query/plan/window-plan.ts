/**
 * Planning window functions (`f(...) OVER (...)`) and the AST walks analyze needs: the children
 * of any node, finding windows, and the CASE that an aggregate's FILTER becomes.
 *
 * Windows run over the query's result rows, after GROUP BY and HAVING, where the answer is
 * finished (query/merge/windows.ts), never on a leaf: that is what lets a share of the total
 * (`count(*) / sum(count(*)) OVER ()`) or a top-N per group (`row_number() OVER (PARTITION BY
 * service ORDER BY count(*) DESC)` with QUALIFY) be exact over a cluster without moving rows.
 */
import type { CallExpr, Expr, FrameBound } from '../sql/ast.js';
import { ShoalError } from '../errors.js';
import type { BExpr, ValueType, WindowCall, WindowFn } from './plan.js';

/** The direct children of an AST node (for walks that look for something). */
export function astChildren(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'column': case 'star': case 'literal': case 'interval': return [];
    case 'unary': return [e.operand];
    case 'binary': return [e.left, e.right];
    case 'in': return [e.operand, ...e.list];
    case 'like': return [e.operand, e.pattern];
    case 'isNull': return [e.operand];
    case 'between': return [e.operand, e.low, e.high];
    case 'call': return [...e.args, ...(e.filter ? [e.filter] : []), ...(e.over ? [...e.over.partitionBy, ...e.over.orderBy.map((o) => o.expr)] : [])];
    case 'case': return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'cast': return [e.operand];
  }
}

export function findWindow(e: Expr): CallExpr | null {
  if (e.kind === 'call' && e.over !== undefined) return e;
  for (const c of astChildren(e)) { const f = findWindow(c); if (f) return f; }
  return null;
}

export const containsWindow = (e: Expr): boolean => findWindow(e) !== null;

/** `CASE WHEN cond THEN x END`: what `agg(x) FILTER (WHERE cond)` aggregates. */
export function caseOf(cond: Expr, x: Expr): Expr {
  return Object.freeze({ kind: 'case', operand: null, whens: Object.freeze([Object.freeze({ when: cond, then: x })]), else: null, pos: cond.pos });
}

const RANKING = new Set(['row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile']);
const WINDOW_FNS: Readonly<Record<string, WindowFn>> = {
  row_number: 'row_number', rank: 'rank', dense_rank: 'dense_rank', percent_rank: 'percent_rank', cume_dist: 'cume_dist', ntile: 'ntile',
  lag: 'lag', lead: 'lead', first_value: 'first_value', first: 'first_value', last_value: 'last_value', last: 'last_value', nth_value: 'nth_value',
  count: 'count', sum: 'sum', avg: 'avg', mean: 'avg', min: 'min', max: 'max',
};
/** How many arguments each takes (count(*) is count_star). */
const ARITY: Readonly<Record<WindowFn, readonly [number, number]>> = {
  row_number: [0, 0], rank: [0, 0], dense_rank: [0, 0], percent_rank: [0, 0], cume_dist: [0, 0], ntile: [1, 1],
  lag: [1, 3], lead: [1, 3], first_value: [1, 1], last_value: [1, 1], nth_value: [2, 2],
  count_star: [0, 0], count: [1, 1], sum: [1, 1], avg: [1, 1], min: [1, 1], max: [1, 1],
};

function bound(b: FrameBound, side: 'start' | 'end', pos: number): number | null {
  if (b.kind === 'unbounded') {
    if ((side === 'start') !== (b.offset < 0)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `a window frame cannot ${side === 'start' ? 'start at UNBOUNDED FOLLOWING' : 'end at UNBOUNDED PRECEDING'}`, { position: pos });
    return null;
  }
  return b.kind === 'current' ? 0 : b.kind === 'preceding' ? -b.offset : b.offset;
}

/** A window call of the AST, its expressions translated by `child` (over the result row). */
export function windowCall(e: CallExpr, child: (x: Expr) => BExpr): WindowCall {
  const spec = e.over!;
  const star = e.args.length === 1 && e.args[0]!.kind === 'star';
  let fn = WINDOW_FNS[e.name];
  if (fn === undefined) {
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() is not a window function; use row_number, rank, dense_rank, percent_rank, cume_dist, ntile, lag, lead, first_value, last_value, nth_value, count, sum, avg, min or max`, { position: e.pos });
  }
  if (fn === 'count' && star) fn = 'count_star';
  if (e.distinct) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `DISTINCT in a window function is not supported (${e.name})`, { position: e.pos });
  if (e.filter !== undefined) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'FILTER on a window function is not supported; use CASE in its argument', { position: e.filter.pos });
  const argAst = star ? [] : e.args;
  const [min, max] = ARITY[fn];
  if (argAst.length < min || argAst.length > max) {
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() OVER takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${argAst.length}`, { position: e.pos });
  }
  for (const a of argAst) if (a.kind === 'star') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', '* is only valid in count(*)', { position: a.pos });
  for (const x of [...argAst, ...spec.partitionBy, ...spec.orderBy.map((o) => o.expr)]) {
    const w = findWindow(x);
    if (w !== null) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'window functions cannot be nested', { position: w.pos });
  }
  const args = argAst.map(child);
  // Offsets, bucket counts and nth positions are constants, as DuckDB requires in practice.
  const constArg = (i: number, what: string) => {
    const a = args[i];
    if (a === undefined) return;
    if (a.k !== 'const' || (a.value !== null && !(typeof a.value === 'number' && Number.isInteger(a.value) && a.value >= (fn === 'ntile' || fn === 'nth_value' ? 1 : 0)))) {
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${e.name}() needs ${what}`, { position: argAst[i]!.pos });
    }
  };
  if (fn === 'ntile') constArg(0, 'a constant positive number of buckets');
  if (fn === 'lag' || fn === 'lead') constArg(1, 'a constant non-negative offset');
  if (fn === 'nth_value') constArg(1, 'a constant position of 1 or more');
  if (fn === 'sum' || fn === 'avg') {
    const t = args[0]!.type;
    if (t !== 'int' && t !== 'float' && t !== 'any' && t !== 'null') throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `${e.name}() OVER needs a number, got ${t}`, { position: argAst[0]!.pos });
  }
  let frame: WindowCall['frame'] = null;
  if (spec.frame !== null) {
    if (RANKING.has(fn)) frame = null; // ranking functions ignore frames, as in SQL
    else frame = { unit: spec.frame.unit, start: bound(spec.frame.start, 'start', e.pos), end: bound(spec.frame.end, 'end', e.pos) };
  }
  return {
    fn, args,
    partitionBy: spec.partitionBy.map(child),
    orderBy: spec.orderBy.map((o) => ({ expr: child(o.expr), desc: o.desc, nullsFirst: o.nullsFirst === true })),
    frame,
    type: windowType(fn, args.map((a) => a.type)),
  };
}

/** The result type of a window function given its argument types (as bind infers them). */
export function windowType(fn: WindowFn, argTypes: readonly ValueType[]): ValueType {
  switch (fn) {
    case 'row_number': case 'rank': case 'dense_rank': case 'ntile': case 'count': case 'count_star': return 'int';
    case 'percent_rank': case 'cume_dist': case 'avg': return 'float';
    case 'sum': { const t = argTypes[0]; return t === 'int' ? 'int' : t === 'null' ? 'null' : t === 'any' ? 'any' : 'float'; }
    case 'lag': case 'lead': case 'first_value': case 'last_value': case 'nth_value': case 'min': case 'max': return argTypes[0] ?? 'any';
  }
}

/** A copy of `e` with every node's children replaced by `f` (f decides per node: return a node
 * to replace it, or undefined to keep it and map its children). */
export function mapAst(e: Expr, f: (x: Expr) => Expr | undefined): Expr {
  const hit = f(e);
  if (hit !== undefined) return hit;
  const m = (x: Expr) => mapAst(x, f);
  switch (e.kind) {
    case 'column': case 'star': case 'literal': case 'interval': return e;
    case 'unary': return { ...e, operand: m(e.operand) };
    case 'binary': return { ...e, left: m(e.left), right: m(e.right) };
    case 'in': return { ...e, operand: m(e.operand), list: e.list.map(m) };
    case 'like': return { ...e, operand: m(e.operand), pattern: m(e.pattern) };
    case 'isNull': return { ...e, operand: m(e.operand) };
    case 'between': return { ...e, operand: m(e.operand), low: m(e.low), high: m(e.high) };
    case 'call': return {
      ...e, args: e.args.map(m), ...(e.filter ? { filter: m(e.filter) } : {}),
      ...(e.over ? { over: { ...e.over, partitionBy: e.over.partitionBy.map(m), orderBy: e.over.orderBy.map((o) => ({ ...o, expr: m(o.expr) })) } } : {}),
    };
    case 'case': return { ...e, operand: e.operand ? m(e.operand) : null, whens: e.whens.map((w) => ({ when: m(w.when), then: m(w.then) })), else: e.else ? m(e.else) : null };
    case 'cast': return { ...e, operand: m(e.operand) };
  }
}
