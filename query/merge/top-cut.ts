/**
 * A top-n pushed down to the leaves, exact or not used (docs/engine.md, "Top-n over many
 * leaves"). For `ORDER BY count(...) DESC [, ...] LIMIT k` the aggregator asks each leaf for at
 * most `groups` of its groups, the ones with the largest counts. A leaf with more cuts its table
 * there and says so: `cut.bound` is the smallest count it sent, so every group it left out has
 * at most that count on it. The aggregator merges what came and checks, with those bounds, that
 * no group it lacks a state of could reach the k-th count; only then is the merge the answer.
 * Otherwise it asks the leaves that cut for all their groups (the first answer is never trusted
 * on hope). This is the threshold test of the three-phase top-k algorithms (TPUT, Cao and Wang
 * 2004) in one round, with the full fetch as the second.
 *
 * Counts only: they are never negative, so a group's merged count can only grow with the states
 * a leaf left out. A sum can fall, and an ascending order has no bound on what is left out.
 */
import type { AggregatePartial, GroupTable, Partial, StateColumn } from '../plan/partial.js';
import type { LogicalPlan } from '../plan/plan.js';
import { isCoded, isUtf8, type KeyColumn } from '../plan/utf8-keys.js';
import { LIMITS } from '../limits.js';

/** What the aggregator asks of a leaf: at most `groups` groups, the best by aggregate `agg`. */
export interface TopCutSpec { readonly agg: number; readonly groups: number }

/** The aggregator's side of it: also the rows the answer needs (LIMIT + OFFSET). */
export interface TopCutPlan extends TopCutSpec { readonly rows: number }

/** On a partial a leaf cut: the smallest count it sent, and how many groups it had. */
export interface GroupCut { readonly bound: number; readonly of: number }

/** The rows the answer needs (LIMIT + OFFSET), when a plan's top-n can be pushed down. */
export function topCutRows(plan: LogicalPlan): number | null {
  if (plan.mode !== 'aggregate' || plan.source !== undefined || plan.keys.length === 0) return null;
  if (plan.having !== null || plan.distinct === true || (plan.windows?.length ?? 0) > 0 || (plan.qualify ?? null) !== null) return null;
  if (plan.limit === null || plan.limit <= 0) return null;
  const rows = plan.limit + (plan.offset ?? 0);
  return rows <= LIMITS.topCutRowsMax ? rows : null;
}

/** The push-down for a plan, or null when its order is not by a count, descending (or when
 * `groupsMin`, an aggregator's --top-n-groups, is 0). */
export function topCutSpec(plan: LogicalPlan, groupsMin: number = LIMITS.topCutGroupsMin): TopCutPlan | null {
  const rows = topCutRows(plan);
  if (groupsMin <= 0) return null;
  const first = plan.orderBy[0];
  if (rows === null || first === undefined || !first.desc) return null;
  const e = first.output !== null ? plan.outputs[first.output]?.expr : first.expr;
  if (e === undefined || e === null || e.k !== 'agg') return null;
  const fn = plan.aggs[e.index]?.fn;
  if (fn !== 'count_star' && fn !== 'count') return null;
  return { agg: e.index, groups: Math.max(groupsMin, LIMITS.topCutGroupsPerRow * rows), rows };
}

/** A request's `topn` field as a spec for this plan, or null (then every group is sent, which is
 * always right: an unknown or unfit spec is ignored, not refused). */
export function parseTopCut(x: unknown, plan: LogicalPlan): TopCutSpec | null {
  if (x === null || typeof x !== 'object') return null;
  const { agg, groups } = x as { agg?: unknown; groups?: unknown };
  if (typeof agg !== 'number' || !Number.isInteger(agg) || agg < 0 || agg >= plan.aggs.length) return null;
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) return null;
  const fn = plan.aggs[agg]!.fn;
  return fn === 'count_star' || fn === 'count' ? { agg, groups } : null;
}

/** The k-th largest of values[0..n) (k >= 1, k <= n), by quickselect on a copy. */
export function kthLargest(values: Float64Array, n: number, k: number): number {
  const a = values.slice(0, n);
  let lo = 0; let hi = n - 1; const want = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo; let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j--; }
    }
    if (want <= j) hi = j; else if (want >= i) lo = i; else break;
  }
  return a[want]!;
}

/** Groups idx of t (in that order), every key and state column gathered; null when a column is
 * not one entry per group (a count(DISTINCT) without keys marks codes, not groups). */
export function takeGroups(t: GroupTable, idx: Int32Array): GroupTable | null {
  const n = idx.length;
  const keys: KeyColumn[] = t.keys.map((col) => {
    if (isCoded(col)) return { coded: true, codes: gather(col.codes, idx, new Int32Array(n)), generation: col.generation };
    if (isUtf8(col)) {
      const offsets = new Int32Array(n + 1);
      let bytes = 0;
      for (let i = 0; i < n; i++) { bytes += col.offsets[idx[i]! + 1]! - col.offsets[idx[i]!]!; offsets[i + 1] = bytes; }
      const out = new Uint8Array(bytes);
      let nullAt = -1;
      for (let i = 0; i < n; i++) {
        const g = idx[i]!;
        if (g === col.nullAt) nullAt = i;
        out.set(col.bytes.subarray(col.offsets[g]!, col.offsets[g + 1]!), offsets[i]!);
      }
      return { utf8: true, offsets, bytes: out, nullAt };
    }
    return Array.from(idx, (g) => col[g]!);
  });
  const states: StateColumn[] = [];
  for (const col of t.states) {
    const o: Record<string, Float64Array | Uint8Array | readonly unknown[] | null> = {};
    for (const [name, v] of Object.entries(col)) {
      if (name === 'leafSeen') return null;
      if (v === null) o[name] = null;
      else if (v instanceof Float64Array) o[name] = gather(v, idx, new Float64Array(n));
      else if (v instanceof Uint8Array) o[name] = gather(v, idx, new Uint8Array(n));
      else if (Array.isArray(v)) o[name] = Array.from(idx, (g) => v[g]);
      else return null;
    }
    states.push(o);
  }
  return { count: n, keys, states };
}

function gather<T extends Float64Array | Uint8Array | Int32Array>(from: T, idx: Int32Array, out: T): T {
  for (let i = 0; i < idx.length; i++) out[i] = from[idx[i]!]!;
  return out;
}

/** A leaf's partial cut to the spec's best groups, with its bound; as it is when it has no more
 * groups than that (then it is complete, and says nothing). */
export function cutGroups(part: AggregatePartial, spec: TopCutSpec): AggregatePartial {
  const t = part.groups;
  if (t.count <= spec.groups) return part;
  const n = t.states[spec.agg]?.['n'];
  if (!(n instanceof Float64Array)) return part;
  const bound = kthLargest(n, t.count, spec.groups);
  // Every group above the bound, then groups at it until there are `groups`: one left out at the
  // bound has at most the bound, which is all the aggregator assumes.
  const idx = new Int32Array(spec.groups);
  let m = 0;
  for (let g = 0; g < t.count; g++) if (n[g]! > bound) idx[m++] = g;
  for (let g = 0; g < t.count && m < spec.groups; g++) if (n[g] === bound) idx[m++] = g;
  idx.sort();
  const taken = takeGroups(t, idx);
  if (taken === null) return part;
  return { ...part, groups: taken, cut: { bound, of: t.count } };
}

/**
 * Whether the merge of partials, some of them cut, answers the top `rows` exactly. `maps[i][r]`
 * is the merged group of group r of table i, `cuts[i]` table i's cut (null: it sent every group).
 * A group every cut table sent has its exact state; any other has at most its merged count plus
 * the bounds of the cut tables that did not send it, and a group nobody sent at most the sum of
 * all bounds. Exact when at least `rows` groups are exact and none of the others can reach the
 * `rows`-th exact count: then the top rows by the plan's whole ORDER BY are among the exact ones,
 * and the inexact ones (all below) cannot enter them.
 */
export function cutIsExact(spec: TopCutPlan, merged: GroupTable, maps: readonly Int32Array[], cuts: readonly (GroupCut | null)[]): boolean {
  const rows = spec.rows;
  const n = merged.states[spec.agg]?.['n'];
  if (!(n instanceof Float64Array)) return false;
  const count = merged.count;
  const sent = new Int32Array(count);
  const covered = new Float64Array(count);
  let cutTables = 0; let all = 0;
  maps.forEach((map, i) => {
    const cut = cuts[i];
    if (cut === null || cut === undefined) return;
    cutTables++; all += cut.bound;
    for (let r = 0; r < map.length; r++) { const g = map[r]!; sent[g]!++; covered[g]! += cut.bound; }
  });
  if (cutTables === 0) return true;
  const exact = new Float64Array(count);
  let e = 0;
  for (let g = 0; g < count; g++) if (sent[g] === cutTables) exact[e++] = n[g]!;
  if (e < rows) return false;
  const kth = kthLargest(exact, e, rows);
  if (!(all < kth)) return false;
  for (let g = 0; g < count; g++) if (sent[g] !== cutTables && n[g]! + (all - covered[g]!) >= kth) return false;
  return true;
}

/** What a leaf sends for a request's `topn` (null or unfit: the whole partial). Protocol 2's one
 * object per group has no place for a cut. */
export function cutForRequest(part: Partial, topn: unknown, plan: LogicalPlan, v: number): Partial {
  if (part.mode !== 'aggregate' || v < 3) return part;
  const spec = parseTopCut(topn, plan);
  return spec === null ? part : cutGroups(part, spec);
}
