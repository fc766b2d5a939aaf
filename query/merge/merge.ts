/**
 * merge and finish: combine the Partials of several scans (worker tasks, leaves, or child
 * aggregators) into one Partial, and turn a Partial into the final answer: finalize each
 * aggregate, evaluate the select list over keys and aggregate values, apply HAVING, ORDER BY
 * and LIMIT. ORDER BY + LIMIT happen only here, after the merge, so no leaf ever cuts a group
 * that could belong to the answer.
 */
import { createAggStates } from '../exec/aggregates.js';
import { exprKey } from '../plan/expr-util.js';
import { GroupBudget, singleKey, tupleText } from '../exec/group-key.js';
import { decScalar } from '../plan/wire.js';
import { LIMITS } from '../limits.js';
import type { AggregatePartial, ColumnInfo, Partial, RowsPartial } from '../plan/partial.js';
import { addStats, emptyStats, widenType } from '../plan/partial.js';
import type { LogicalPlan, Scalar } from '../plan/plan.js';
import { compareForOrder, evalScalar } from '../plan/scalar.js';

export interface QueryResult {
  columns: ColumnInfo[];
  rows: Scalar[][];
  /** True when the answer is cut short by LIMIT or the result-row limit in rows mode. */
  truncated: boolean;
}

function mergeColumns(parts: readonly Partial[]): ColumnInfo[] {
  const found = parts.filter((p) => p.tableFound);
  const base = (found[0] ?? parts[0])?.columns ?? [];
  return base.map((c, i) => ({ name: c.name, type: found.reduce((t, p) => widenType(t, p.columns[i]?.type ?? 'null'), c.type) }));
}

export function mergePartials(plan: LogicalPlan, parts: readonly Partial[]): Partial {
  const tableFound = parts.some((p) => p.tableFound);
  const stats = parts.reduce((s, p) => addStats(s, p.stats), emptyStats());
  // A column is unknown only if every part that has the table lacks it.
  const withTable = parts.filter((p) => p.tableFound);
  const unknownColumns = withTable.length === 0 ? [] :
    withTable[0]!.unknownColumns.filter((c) => withTable.every((p) => p.unknownColumns.includes(c)));
  if (plan.mode === 'rows') return mergeRows(plan, parts as RowsPartial[], tableFound, stats, unknownColumns);

  const aggs = createAggStates(plan.aggs.map((a) => ({ fn: a.fn, q: a.q, argKey: a.arg === null ? '*' : exprKey(a.arg) })));
  const keys: (readonly Scalar[])[] = [];
  // One key (the common case) is looked up as itself; several as their exact tuple text.
  const single = plan.keys.length === 1;
  const index = new Map<Scalar | string, number>();
  const budget = new GroupBudget(aggs.length);
  const ensure = (n: number) => { for (const a of aggs) a.ensure(n); };
  if (plan.keys.length === 0) { keys.push([]); index.set('', 0); ensure(1); }
  for (const p of parts as AggregatePartial[]) {
    for (const grp of p.groups) {
      const k = single ? singleKey(grp.keys[0]!) : tupleText(grp.keys);
      let g = index.get(k);
      if (g === undefined) {
        g = keys.length;
        budget.add(grp.keys, g + 1);
        keys.push(grp.keys);
        index.set(k, g);
        ensure(g + 1);
      }
      for (let j = 0; j < aggs.length; j++) aggs[j]!.merge(g, grp.states[j]);
    }
  }
  const groups = keys.map((k, g) => ({ keys: k, states: aggs.map((a) => a.serialize(g)) }));
  return { mode: 'aggregate', tableFound, columns: mergeColumns(parts), groups, unknownColumns, stats };
}

function mergeRows(plan: LogicalPlan, parts: readonly RowsPartial[], tableFound: boolean, stats: AggregatePartial['stats'], unknownColumns: string[]): RowsPartial {
  const limit = Math.min(plan.limit ?? LIMITS.resultRowsMax, LIMITS.resultRowsMax);
  // SELECT * over leaves with different schemas: the union of their columns, by name. A select
  // list is positional: `SELECT n, n` has two columns of one name, and both stay.
  let columns: ColumnInfo[] = [];
  const at = new Map<string, number>();
  if (plan.star) {
    for (const p of parts) for (const c of p.columns) {
      const i = at.get(c.name);
      if (i === undefined) { at.set(c.name, columns.length); columns.push({ ...c }); }
      else columns[i] = { name: c.name, type: widenType(columns[i]!.type, c.type) };
    }
  } else columns = mergeColumns(parts);
  let all: { row: Scalar[]; k: readonly Scalar[] }[] = [];
  let truncated = parts.some((p) => p.truncated);
  for (const p of parts) {
    const map = p.columns.map((c, j) => (plan.star ? at.get(c.name)! : j));
    p.rows.forEach((r, i) => {
      const row: Scalar[] = new Array(columns.length).fill(null);
      r.forEach((v, j) => { row[map[j]!] = v; });
      all.push({ row, k: p.orderValues[i] ?? [] });
    });
  }
  if (plan.orderBy.length > 0) {
    // Order values arrive in their wire form (wire.ts): compare them decoded.
    const keyed = all.map((x) => ({ x, d: x.k.map(decScalar) }));
    keyed.sort((a, b) => {
      for (let k = 0; k < plan.orderBy.length; k++) { const c = compareForOrder(a.d[k]!, b.d[k]!, plan.orderBy[k]!.desc); if (c !== 0) return c; }
      return 0;
    });
    all = keyed.map((y) => y.x);
  }
  if (all.length > limit) { truncated = true; all = all.slice(0, limit); }
  return { mode: 'rows', tableFound, columns, rows: all.map((x) => x.row), orderValues: all.map((x) => x.k), truncated, unknownColumns, stats };
}

/** The final answer of a merged Partial. */
export function finish(plan: LogicalPlan, part: Partial): QueryResult {
  if (part.mode === 'rows') {
    return { columns: [...part.columns], rows: part.rows.map((r) => r.map(decScalar)), truncated: part.truncated && plan.limit === null };
  }
  const aggs = createAggStates(plan.aggs.map((a) => ({ fn: a.fn, q: a.q, argKey: a.arg === null ? '*' : exprKey(a.arg) })));
  for (const a of aggs) a.ensure(part.groups.length);
  let rows: { out: Scalar[]; order: Scalar[] }[] = [];
  part.groups.forEach((grp, g) => {
    for (let j = 0; j < aggs.length; j++) aggs[j]!.merge(g, grp.states[j]);
    const env = { keys: grp.keys.map(decScalar), aggs: aggs.map((a) => a.final(g)) };
    if (plan.having !== null && evalScalar(plan.having, env) !== true) return;
    const out = plan.outputs.map((o) => evalScalar(o.expr, env));
    const order = plan.orderBy.map((o) => (o.output !== null ? out[o.output]! : evalScalar(o.expr!, env)));
    rows.push({ out, order });
  });
  if (plan.orderBy.length > 0) {
    rows.sort((a, b) => {
      for (let k = 0; k < plan.orderBy.length; k++) { const c = compareForOrder(a.order[k]!, b.order[k]!, plan.orderBy[k]!.desc); if (c !== 0) return c; }
      return 0;
    });
  }
  const limit = Math.min(plan.limit ?? LIMITS.resultRowsMax, LIMITS.resultRowsMax);
  const truncated = plan.limit === null && rows.length > limit;
  if (rows.length > limit) rows = rows.slice(0, limit);
  return { columns: [...part.columns], rows: rows.map((r) => r.out), truncated };
}
