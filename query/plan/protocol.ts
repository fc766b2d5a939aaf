/**
 * The plan is the protocol. Whoever first takes a query's SQL (an aggregator, or a leaf asked
 * directly) plans it once, fixes `now()` once, and from then on only the plan travels: to the
 * leaves, to child aggregators, to the scan workers. Nobody re-plans the text, so every process
 * computes the same aggregates in the same order with the same clock, and partial states are
 * merged by position into the aggregates they belong to.
 *
 * A plan travels in an envelope: `{ v, hash, nowSeconds, sql, plan }`.
 * - `v` is the protocol version: the shape of the plan and of the partial states answering it.
 *   A process executes only versions it knows (PLAN_VERSIONS) and refuses any other with
 *   SHOAL_ERR_PLAN_VERSION, which an aggregator reports as a coverage failure of that leaf,
 *   naming both versions. Never a merge of states it does not understand.
 * - `hash` is the first 16 hex digits of SHA-256 over the canonical text of the rest; a receiver
 *   recomputes it, so a plan damaged or rewritten on the way is refused, and logs can tie the
 *   partials of one query together.
 * - `sql` is the query's text, cut to 200 characters, for the running-queries list only.
 *
 * Numbers a JSON text cannot hold (a constant folded to Infinity) travel as wire.ts encodes them.
 *
 * Version history: 1 was SQL text (each process planned it). 2: this envelope; sum states are
 * [hi, lo, count, float, sawFloat] (exact integer sums); non-finite floats as {"$f": ...}.
 * 3: aggregate partials are group tables in columns (partial.ts GroupTable), typed arrays as
 * base64 (query/merge/partial-wire.ts). The plan itself did not change, so this code executes
 * version-2 plans too and answers them in version 2: a roll onto it keeps full coverage with the
 * leaves rolled first (an old aggregator's plans) or the aggregator first (it reads old answers,
 * and old leaves execute its plans only if sent as version 2: see docs/cluster.md).
 * 4: CASE, CAST, new scalar functions, exact quantiles, and rows-mode OFFSET / NULLS FIRST in the
 * plan; the partial states of version 3 plus `vals` lists for the exact quantiles. A plan using
 * none of them is a version-3 plan (planMinVersion), so old leaves keep answering the old SQL.
 * 5: the plan of version 4; a count(DISTINCT) state may carry its strings coded (each distinct
 * string once, ids per group: partial.ts CodedSets) instead of every group's strings in full. A
 * leaf answers a version-4 plan in version 4, and a version-4 leaf refuses version 5 naming 4,
 * which the aggregator then sends (cluster-query.ts), so a roll keeps full coverage either way.
 */
import { createHash } from 'node:crypto';
import { ShoalError } from '../errors.js';
import type { LogicalPlan } from './plan.js';

export const PLAN_VERSION = 5;
/** Versions this code executes. */
export const PLAN_VERSIONS: readonly number[] = [2, 3, 4, 5];

/** Function names a version-2 or 3 leaf knows (in WHERE, keys, aggregate arguments, projections). */
const V3_CALLS = new Set([
  'count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max', 'approx_count_distinct', 'approx_quantile', 'quantile',
  'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'median', 'time_bucket', 'lower', 'upper', 'length', 'abs', 'round', 'floor', 'ceil',
  'list_contains', 'array_contains', 'to_timestamp', 'epoch', 'coalesce', 'now', 'current_timestamp', 'current_date', 'today', 'regexp_matches',
]);
const V3_AGGS = new Set(['count_star', 'count', 'count_distinct', 'sum', 'avg', 'min', 'max', 'approx_count_distinct', 'approx_quantile']);

/**
 * The oldest protocol whose leaves execute this plan the same way. Version 4 added CASE, CAST,
 * the string and time functions, exact quantiles, and in rows mode OFFSET and NULLS FIRST (a
 * leaf cuts its rows by them). A plan that uses none of these is sent as version 3 or 2 to a member
 * that asks for it (cluster-query.ts); one that does is never sent to older code, whose answer
 * would be wrong, not partial.
 */
export function planMinVersion(plan: LogicalPlan): number {
  // Versions 2 and 3 share the plan's shape (only the partials differ).
  let v = 2;
  const visit = (x: unknown): void => {
    if (v === 4 || x === null || typeof x !== 'object') return;
    if (Array.isArray(x)) { for (const y of x) visit(y); return; }
    const o = x as { kind?: unknown; name?: unknown };
    if (o.kind === 'case' || o.kind === 'cast' || (o.kind === 'call' && typeof o.name === 'string' && !V3_CALLS.has(o.name))) { v = 4; return; }
    for (const y of Object.values(o)) visit(y);
  };
  visit([plan.where, plan.keys, plan.aggs.map((a) => a.arg), plan.projections, plan.rowOrder]);
  if (plan.aggs.some((a) => !V3_AGGS.has(a.fn))) v = 4;
  if (plan.mode === 'rows' && ((plan.offset ?? 0) > 0 || plan.orderBy.some((o) => o.nullsFirst === true))) v = 4;
  return v;
}

export interface PlanEnvelope {
  readonly v: number;
  readonly hash: string;
  readonly nowSeconds: number;
  readonly sql: string;
  readonly plan: LogicalPlan;
}

// A constant folded to a non-finite float travels as {"$f": "Infinity"}, one folded to an exact
// integer beyond 2^53 (2^52 * 4) as {"$i": "18014398509481984"}.
const replacer = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? { $f: String(v) } : typeof v === 'bigint' ? { $i: v.toString() } : v);
const reviver = (_k: string, v: unknown) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length !== 1) return v;
  const o = v as { $f?: unknown; $i?: unknown };
  if (typeof o.$f === 'string') return Number(o.$f);
  if (typeof o.$i === 'string' && /^-?\d+$/.test(o.$i)) return BigInt(o.$i);
  return v;
};

function hashOf(v: number, nowSeconds: number, planText: string): string {
  return createHash('sha256').update(`${v}\n${nowSeconds}\n${planText}`).digest('hex').slice(0, 16);
}

export function sealPlan(plan: LogicalPlan, nowSeconds: number, sql: string, v: number = PLAN_VERSION): PlanEnvelope {
  const text = JSON.stringify(plan, replacer);
  return { v, hash: hashOf(v, nowSeconds, text), nowSeconds, sql: sql.slice(0, 200), plan };
}

/** The same plan in another protocol version this code speaks (a member on older code). */
export function resealPlan(env: PlanEnvelope, v: number): PlanEnvelope {
  if (planMinVersion(env.plan) > v) throw new ShoalError('SHOAL_ERR_PLAN_VERSION', `this query needs plan protocol ${planMinVersion(env.plan)}; version ${v} cannot express it`);
  return sealPlan(env.plan, env.nowSeconds, env.sql, v);
}

/** The JSON text of an envelope (non-finite constants encoded). */
export function envelopeJson(env: PlanEnvelope): string {
  return JSON.stringify(env, replacer);
}

/**
 * Checks an envelope that arrived as parsed JSON: its version, its hash, its shape. Returns it
 * with the plan's encoded numbers restored. Throws SHOAL_ERR_PLAN_VERSION for a version this
 * code does not execute, SHOAL_ERR_QUERY_REQUEST for anything malformed.
 */
export function openPlan(raw: unknown): PlanEnvelope {
  const bad = (what: string) => new ShoalError('SHOAL_ERR_QUERY_REQUEST', `"plan" ${what}`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('must be an object');
  const e = raw as Record<string, unknown>;
  if (typeof e.v !== 'number' || !Number.isInteger(e.v)) throw bad('has no protocol version "v"');
  if (!PLAN_VERSIONS.includes(e.v)) {
    throw new ShoalError('SHOAL_ERR_PLAN_VERSION', `this process executes plan protocol ${PLAN_VERSIONS.join(', ')}; the query's plan is version ${e.v} (a cluster mid-upgrade: the leaf answers again once both run the same code)`, undefined, { planVersion: e.v, supported: PLAN_VERSIONS });
  }
  if (typeof e.hash !== 'string' || typeof e.nowSeconds !== 'number' || !Number.isFinite(e.nowSeconds) || typeof e.sql !== 'string') throw bad('is missing hash, nowSeconds or sql');
  const p = e.plan as Record<string, unknown> | null;
  if (p === null || typeof p !== 'object' || (p.mode !== 'aggregate' && p.mode !== 'rows') || typeof p.table !== 'string' || !Array.isArray(p.aggs) || !Array.isArray(p.keys) || !Array.isArray(p.outputs) || !Array.isArray(p.orderBy) || !Array.isArray(p.projections)) {
    throw bad('is not a query plan');
  }
  // The hash is over the canonical text, which JSON.parse -> JSON.stringify reproduces.
  const text = JSON.stringify(p);
  if (hashOf(e.v, e.nowSeconds, text) !== e.hash) throw bad(`hash ${e.hash} does not match its content (damaged or rewritten on the way)`);
  return { v: e.v, hash: e.hash, nowSeconds: e.nowSeconds, sql: e.sql, plan: JSON.parse(text, reviver) as LogicalPlan };
}
