/**
 * merge and finish: combine the Partials of several scans (worker tasks, leaves, or child
 * aggregators) into one Partial, and turn a Partial into the final answer: finalize each
 * aggregate, evaluate the select list over keys and aggregate values, apply HAVING, ORDER BY
 * and LIMIT. ORDER BY + LIMIT happen only here, after the merge, so no leaf ever cuts a group
 * that could belong to the answer.
 */
import { createAggStates } from '../exec/aggregates.js';
import { PairTable } from '../exec/pair-table.js';
import { codedStrings, encodeKeys, isCoded, isUtf8, keyAt, keyValues, type KeyColumn } from '../plan/utf8-keys.js';
import { decodeUtf8 } from '../storage/dictionary.js';
import { threadCodes } from '../storage/string-codes.js';
import { Utf8Table } from './utf8-table.js';
import { ShoalError } from '../errors.js';
import { exprKey } from '../plan/expr-util.js';
import { GroupBudget, singleKey, tupleText } from '../exec/group-key.js';
import { decScalar } from '../plan/wire.js';
import { LIMITS } from '../limits.js';
import type { AggregatePartial, ColumnInfo, GroupTable, Partial, RowsPartial } from '../plan/partial.js';
import { addStats, emptyStats, widenType } from '../plan/partial.js';
import type { BExpr, LogicalPlan, Scalar } from '../plan/plan.js';
import { compareForOrder, evalScalar, type ScalarEnv } from '../plan/scalar.js';
import { computeWindows } from './windows.js';

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

/** `maps`, when given, gets for each part the merged group of each of its groups (top-cut.ts). */
export function mergePartials(plan: LogicalPlan, parts: readonly Partial[], maps?: Int32Array[]): Partial {
  const tableFound = parts.some((p) => p.tableFound);
  const stats = parts.reduce((s, p) => addStats(s, p.stats), emptyStats());
  // A column is unknown only if every part that has the table lacks it.
  const withTable = parts.filter((p) => p.tableFound);
  const unknownColumns = withTable.length === 0 ? [] :
    withTable[0]!.unknownColumns.filter((c) => withTable.every((p) => p.unknownColumns.includes(c)));
  if (plan.mode === 'rows') return mergeRows(plan, parts as RowsPartial[], tableFound, stats, unknownColumns);

  const groups = mergeGroups(plan, (parts as AggregatePartial[]).map((p) => p.groups), maps);
  return { mode: 'aggregate', tableFound, columns: mergeColumns(parts), groups, unknownColumns, stats };
}

/** Ids combined per key position: 2^26 each, as in a scan (group-ids.ts). */
const COMBINE_RADIX = 2 ** 26;

/** Dense ids of the distinct values of one key position (wire values: -0 and 0 are one). */
class ValueIds {
  private readonly ids = new Map<Scalar, number>();
  idOf(v: Scalar): number {
    const k = typeof v === 'string' ? v : singleKey(v);
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.ids.size;
      if (id >= COMBINE_RADIX) throw new ShoalError('SHOAL_ERR_QUERY_GROUP_LIMIT', `a GROUP BY key has more than ${COMBINE_RADIX} distinct values; group by fewer or coarser keys`);
      this.ids.set(k, id);
    }
    return id;
  }
}

const statesOf = (plan: LogicalPlan) => createAggStates(plan.aggs.map((a) => ({ fn: a.fn, q: a.q, argKey: a.arg === null ? '*' : exprKey(a.arg) })));

/** A group table with no groups (a member without the table). */
export function emptyGroups(plan: LogicalPlan): GroupTable {
  return { count: 0, keys: plan.keys.map(() => []), states: statesOf(plan).map((a) => a.column(0)) };
}

/**
 * Merges group tables by key: one key is looked up as itself, several as their exact tuple text
 * (group-key.ts); then each aggregate merges a whole state column through the group map. One
 * table is returned as it is (a leaf's own answer, an aggregator with one member).
 */
export function mergeGroups(plan: LogicalPlan, tables: readonly GroupTable[], maps?: Int32Array[]): GroupTable {
  const noKeys = plan.keys.length === 0;
  if (tables.length === 1 && (!noKeys || tables[0]!.count === 1)) {
    if (maps !== undefined) maps[0] = Int32Array.from({ length: tables[0]!.count }, (_, i) => i);
    return tables[0]!;
  }
  if (plan.keys.length > 1 || plan.keys.some((_, k) => tables.some((t) => isCoded(t.keys[k]!)))) return mergeByIds(plan, tables, maps);
  const aggs = statesOf(plan);
  const keys: Scalar[][] = plan.keys.map(() => []);
  const single = plan.keys.length === 1;
  // One string key in every table (UTF-8 columns, or string arrays that encode as one): merged by
  // bytes. Anything else (numbers, a mix): by value.
  const utf8Cols = single ? tables.map((t) => { const c = t.keys[0]!; return isUtf8(c) ? c : encodeKeys(c as readonly Scalar[]); }) : [];
  const byBytes = single && utf8Cols.every((c) => c !== null);
  const utf8 = byBytes ? new Utf8Table() : null;
  const index = new Map<Scalar | string, number>();
  const budget = new GroupBudget(aggs.length);
  let count = 0;
  const ensure = (n: number) => { for (const a of aggs) a.ensure(n); };
  if (noKeys) { count = 1; ensure(1); }
  tables.forEach((t, ti) => {
    const into = new Int32Array(t.count);
    if (maps !== undefined) maps[ti] = into;
    if (utf8 !== null) {
      const col = utf8Cols[ti]!;
      for (let i = 0; i < t.count; i++) {
        const start = col.offsets[i]!; const end = col.offsets[i + 1]!;
        const id = i === col.nullAt ? utf8.nullId() : utf8.idOf(col.bytes, start, end);
        if (utf8.made) budget.addKeyBytes(end - start, id + 1);
        into[i] = id;
      }
      count = utf8.count;
    } else if (single) {
      const k0 = keyValues(t.keys[0]!, t.count);
      const out = keys[0]!;
      for (let i = 0; i < t.count; i++) {
        const v = k0[i]!;
        const k = typeof v === 'string' ? v : singleKey(v);
        let g = index.get(k);
        if (g === undefined) {
          g = count++;
          budget.addOne(v, count);
          out.push(v);
          index.set(k, g);
        }
        into[i] = g;
      }
    }
    ensure(count);
    for (let j = 0; j < aggs.length; j++) aggs[j]!.mergeColumn(t.states[j]!, into, t.count);
  });
  return { count, keys: utf8 !== null ? [utf8.keys()] : keys, states: aggs.map((a) => a.column(count)) };
}

/**
 * A key column as the leaf's codes (-1: NULL), on the leaf's main thread: codes as they are,
 * strings through the leaf's table (new strings get codes). Null when it holds anything else.
 */
function leafCodesOf(col: KeyColumn, count: number): Int32Array | null {
  if (isCoded(col)) { codedStrings(col); return col.codes; }
  if (!threadCodes.isLeafSpace) return null;
  const out = new Int32Array(count);
  if (isUtf8(col)) {
    for (let g = 0; g < count; g++) out[g] = g === col.nullAt ? -1 : threadCodes.codeOf(decodeUtf8(col.bytes, col.offsets[g]!, col.offsets[g + 1]!));
    return out;
  }
  const values = col as readonly Scalar[];
  for (let g = 0; g < count; g++) {
    const v = values[g];
    if (v === null) out[g] = -1;
    else if (typeof v === 'string') out[g] = threadCodes.codeOf(v);
    else return null;
  }
  return out;
}

/**
 * Merges group tables by ids per key position, combined pairwise through typed-array tables when
 * there are several keys (as a scan does, group-ids.ts), so no tuple text is built per group. A
 * position whose keys are the leaf's codes (utf8-keys.ts, CodeKeys: only on the leaf's main
 * thread) or strings there is merged by code, by array index, and its merged keys stay codes;
 * any other position by value.
 */
function mergeByIds(plan: LogicalPlan, tables: readonly GroupTable[], maps?: Int32Array[]): GroupTable {
  const aggs = statesOf(plan);
  const budget = new GroupBudget(aggs.length);
  const keyCount = plan.keys.length;
  // Per table and key position: codes (coded positions) or values.
  const cols: (Int32Array | Scalar[])[][] = tables.map(() => []);
  const coded: boolean[] = [];
  for (let k = 0; k < keyCount; k++) {
    // By code only where some table has codes (other strings are not added to the leaf's table).
    const asCodes = tables.some((t) => isCoded(t.keys[k]!)) ? tables.map((t) => leafCodesOf(t.keys[k]!, t.count)) : [null];
    coded[k] = asCodes.every((c) => c !== null);
    tables.forEach((t, ti) => { cols[ti]![k] = coded[k] ? asCodes[ti]! : keyValues(t.keys[k]!, t.count); });
  }
  const size = threadCodes.size;
  const keyBytes = (k: number, x: number | Scalar) => (coded[k] ? ((x as number) < 0 ? 0 : threadCodes.byteLength(x as number)) : 0);
  // Ids of each key position: a code's id by index, a value's through a map.
  const byCode = coded.map((c) => (c ? new Int32Array(size).fill(-1) : null));
  const nullIds = coded.map(() => -1);
  const positions = coded.map(() => new ValueIds());
  const values: (number | Scalar)[][] = coded.map(() => []);
  const idOf = (k: number, x: number | Scalar): number => {
    const table = byCode[k];
    if (table === null) { const id = positions[k]!.idOf(x as Scalar); if (id === values[k]!.length) values[k]!.push(x); return id; }
    const c = x as number;
    if (c < 0) { if (nullIds[k]! < 0) { nullIds[k] = values[k]!.length; values[k]!.push(-1); } return nullIds[k]!; }
    let id = table[c]!;
    if (id < 0) { id = values[k]!.length; values[k]!.push(c); table[c] = id; }
    return id;
  };
  const stages = coded.slice(1).map(() => new PairTable());
  const stageCounts = stages.map(() => 0);
  const keys: (number | Scalar)[][] = coded.map(() => []);
  let count = 0;
  const ensure = (n: number) => { for (const a of aggs) a.ensure(n); };
  const generation = threadCodes.generation;
  if (keyCount === 1 && coded[0]) {
    // One coded key (the common case): a group per code, found by index.
    const byC = byCode[0]!;
    const out: number[] = [];
    let nullG = -1;
    tables.forEach((t, ti) => {
      const codes = cols[ti]![0] as Int32Array;
      const into = new Int32Array(t.count);
      if (maps !== undefined) maps[ti] = into;
      for (let i = 0; i < t.count; i++) {
        const c = codes[i]!;
        let g: number;
        if (c < 0) {
          if (nullG < 0) { nullG = count++; budget.addKeyBytes(0, count); out.push(-1); }
          g = nullG;
        } else {
          g = byC[c]!;
          if (g < 0) { g = count++; byC[c] = g; budget.addKeyBytes(threadCodes.byteLength(c), count); out.push(c); }
        }
        into[i] = g;
      }
      ensure(count);
      for (let j = 0; j < aggs.length; j++) aggs[j]!.mergeColumn(t.states[j]!, into, t.count);
    });
    return { count, keys: [{ coded: true, codes: Int32Array.from(out), generation }], states: aggs.map((a) => a.column(count)) };
  }
  tables.forEach((t, ti) => {
    const into = new Int32Array(t.count);
    if (maps !== undefined) maps[ti] = into;
    const tc = cols[ti]!;
    for (let i = 0; i < t.count; i++) {
      let cur = idOf(0, tc[0]![i]!);
      if (keyCount === 1) {
        if (cur === count) {
          count++;
          const x = tc[0]![i]!;
          if (coded[0]) budget.addKeyBytes(keyBytes(0, x), count); else budget.addOne(x, count);
          keys[0]!.push(x);
        }
        into[i] = cur;
        continue;
      }
      for (let s = 0; s < keyCount - 1; s++) {
        const id = idOf(s + 1, tc[s + 1]![i]!);
        let next = stages[s]!.get(cur, id);
        if (next < 0) {
          if (s === keyCount - 2) {
            next = count++;
            const tuple = tc.map((col) => col[i]!);
            budget.add(tuple.map((x, k) => (coded[k] ? ((x as number) < 0 ? null : threadCodes.stringAt(x as number)) : x)), count);
            for (let k = 0; k < keyCount; k++) keys[k]!.push(tuple[k]!);
          } else next = stageCounts[s]!++;
          stages[s]!.insert(cur, id, next);
        }
        cur = next;
      }
      into[i] = cur;
    }
    ensure(count);
    for (let j = 0; j < aggs.length; j++) aggs[j]!.mergeColumn(t.states[j]!, into, t.count);
  });
  const out: KeyColumn[] = keys.map((col, k) => (coded[k] ? { coded: true, codes: Int32Array.from(col as number[]), generation } : col as Scalar[]));
  return { count, keys: out, states: aggs.map((a) => a.column(count)) };
}

function mergeRows(plan: LogicalPlan, parts: readonly RowsPartial[], tableFound: boolean, stats: AggregatePartial['stats'], unknownColumns: string[]): RowsPartial {
  // The offset is taken once, by finish: a merge (here or in a child aggregator) keeps limit + offset.
  const limit = Math.min(plan.limit === null ? LIMITS.resultRowsMax : plan.limit + (plan.offset ?? 0), LIMITS.resultRowsMax);
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
      for (let k = 0; k < plan.orderBy.length; k++) { const c = compareForOrder(a.d[k]!, b.d[k]!, plan.orderBy[k]!.desc, plan.orderBy[k]!.nullsFirst === true); if (c !== 0) return c; }
      return 0;
    });
    all = keyed.map((y) => y.x);
  }
  if (all.length > limit) { truncated = true; all = all.slice(0, limit); }
  return { mode: 'rows', tableFound, columns, rows: all.map((x) => x.row), orderValues: all.map((x) => x.k), truncated, unknownColumns, stats };
}

/** The final answer of a merged Partial. */
export function finish(plan: LogicalPlan, part: Partial): QueryResult {
  const offset = plan.offset ?? 0;
  if (part.mode === 'rows') {
    const rows = part.rows.map((r) => r.map(decScalar));
    return { columns: [...part.columns], rows: offset > 0 ? rows.slice(offset) : rows, truncated: part.truncated && plan.limit === null };
  }
  const t = part.groups;
  const aggs = statesOf(plan);
  for (let j = 0; j < aggs.length; j++) aggs[j]!.adopt(t.states[j]!, t.count);
  const envOf = (g: number) => ({ keys: t.keys.map((col) => decScalar(keyAt(col, g))), aggs: aggs.map((a) => a.final(g)) });
  if ((plan.windows?.length ?? 0) > 0 || plan.distinct === true || (plan.qualify ?? null) !== null) {
    const envs: ScalarEnv[] = [];
    for (let g = 0; g < t.count; g++) {
      const env = envOf(g);
      if (plan.having === null || evalScalar(plan.having, env) === true) envs.push(env);
    }
    return { columns: [...part.columns], ...finishRows(plan, envs) };
  }
  const limit = Math.min(plan.limit === null ? LIMITS.resultRowsMax : plan.limit + offset, LIMITS.resultRowsMax);
  const compare = (a: { order: Scalar[] }, b: { order: Scalar[] }) => {
    for (let k = 0; k < plan.orderBy.length; k++) { const c = compareForOrder(a.order[k]!, b.order[k]!, plan.orderBy[k]!.desc, plan.orderBy[k]!.nullsFirst === true); if (c !== 0) return c; }
    return 0;
  };
  const rowOf = (g: number, env = envOf(g)) => {
    const out = plan.outputs.map((o) => evalScalar(o.expr, env));
    return { out, order: plan.orderBy.map((o) => (o.output !== null ? out[o.output]! : evalScalar(o.expr!, env))), g };
  };
  // ORDER BY ... LIMIT n over many groups keeps only the n best while it goes (a top-n, not a
  // sort of every group); ties keep group order, as the full stable sort would. When every
  // ORDER BY term is a key or an aggregate and there is no HAVING, the order values are read
  // straight from the columns and only the n winners are evaluated.
  const topN = plan.orderBy.length > 0 && plan.limit !== null && limit > 0 && t.count > 4 * limit;
  const direct = topN && plan.having === null ? plan.orderBy.map((o) => {
    const e = o.output !== null ? plan.outputs[o.output]!.expr : o.expr!;
    if (e.k === 'agg') { const a = aggs[e.index]!; return (g: number) => a.final(g); }
    if (e.k === 'key') { const col = t.keys[e.index]!; return (g: number) => decScalar(keyAt(col, g)); }
    return null;
  }) : null;
  let rows: { out: Scalar[]; order: Scalar[]; g: number }[] = [];
  const offer = (row: { out: Scalar[]; order: Scalar[]; g: number }) => {
    if (rows.length === limit && compare(row, rows[limit - 1]!) >= 0) return;
    let at = rows.length;
    while (at > 0 && compare(row, rows[at - 1]!) < 0) at--;
    rows.splice(at, 0, row);
    if (rows.length > limit) rows.pop();
  };
  if (direct !== null && direct.every((f) => f !== null)) {
    const terms = direct as ((g: number) => Scalar)[];
    const first = terms[0]!;
    const o0 = plan.orderBy[0]!;
    for (let g = 0; g < t.count; g++) {
      // Once n are kept, a group worse on the first term than the n-th is out (a tie is not).
      if (rows.length === limit && compareForOrder(first(g), rows[limit - 1]!.order[0]!, o0.desc, o0.nullsFirst === true) > 0) continue;
      offer({ out: [], order: terms.map((f) => f(g)), g });
    }
    rows = rows.map((r) => rowOf(r.g));
  } else {
    for (let g = 0; g < t.count; g++) {
      const env = envOf(g);
      if (plan.having !== null && evalScalar(plan.having, env) !== true) continue;
      const row = rowOf(g, env);
      if (topN) offer(row); else rows.push(row);
    }
  }
  if (plan.orderBy.length > 0 && !topN) rows.sort(compare);
  const truncated = plan.limit === null && rows.length > limit;
  if (rows.length > limit) rows = rows.slice(0, limit);
  if (offset > 0) rows = rows.slice(offset);
  return { columns: [...part.columns], rows: rows.map((r) => r.out), truncated };
}

/**
 * The end of a query over result rows (one env per row: groups after HAVING, or a subquery's
 * rows): windows, the select list, QUALIFY, DISTINCT, ORDER BY, OFFSET, LIMIT, in SQL's order.
 */
export function finishRows(plan: LogicalPlan, envs: ScalarEnv[], outputs: readonly BExpr[] = plan.outputs.map((o) => o.expr), order: readonly (BExpr | null)[] = plan.orderBy.map((o) => o.expr), qualify: BExpr | null = plan.qualify ?? null): { rows: Scalar[][]; truncated: boolean } {
  const windows = plan.windows ?? [];
  if (windows.length > 0) {
    const wins = computeWindows(windows, envs);
    envs.forEach((env, i) => { env.wins = wins[i]; });
  }
  let rows: { out: Scalar[]; order: Scalar[] }[] = [];
  for (const env of envs) {
    if (qualify !== null && evalScalar(qualify, env) !== true) continue;
    const out = outputs.map((o) => evalScalar(o, env));
    rows.push({ out, order: plan.orderBy.map((o, k) => (o.output !== null ? out[o.output]! : evalScalar(order[k]!, env))) });
  }
  if (plan.distinct === true) {
    const seen = new Set<string>();
    rows = rows.filter((r) => { const k = tupleText(r.out); if (seen.has(k)) return false; seen.add(k); return true; });
  }
  if (plan.orderBy.length > 0) {
    rows.sort((a, b) => {
      for (let k = 0; k < plan.orderBy.length; k++) { const c = compareForOrder(a.order[k]!, b.order[k]!, plan.orderBy[k]!.desc, plan.orderBy[k]!.nullsFirst === true); if (c !== 0) return c; }
      return 0;
    });
  }
  const offset = plan.offset ?? 0;
  const limit = Math.min(plan.limit ?? LIMITS.resultRowsMax, LIMITS.resultRowsMax);
  const truncated = plan.limit === null && rows.length - offset > limit;
  return { rows: rows.slice(offset, offset + limit).map((r) => r.out), truncated };
}
