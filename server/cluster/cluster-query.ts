/**
 * A query over the cluster: plan once (so every member gets the same `nowSeconds`), send the
 * partial-result request to every member at once, merge the partial states that come back, and
 * account for what did not: the coverage object of DESIGN.md.
 *
 * Coverage: percent = 100 x rows held (of the queried table) by the leaves that answered / rows
 * held by all leaves, using a failed leaf's last known count (from its last status or answer).
 * When any failed leaf's count is unknown (never seen), or no rows are expected at all, percent
 * falls back to leaves answered / leaves queried and `basis` says "leaves". A child aggregator
 * answers `{partial, coverage}`; its coverage is summed into the parent's (rows held and expected,
 * leaves, failures), so a tree reports the same coverage as one level over the same leaves.
 *
 * Members marked unhealthy by the health checks are not sent the query: they count as failures
 * at once (reason `unhealthy: <last error>`) instead of costing every query a timeout; the health
 * check notices within a second when they are back.
 *
 * Not here: HTTP routes (aggregator.ts), transport (fanout.ts).
 */
import type { Dispatcher } from 'undici';
import { cutIsExact, emptyPartial, envelopeJson, finish, mergePartials, partialFromWire, planQuery, PLAN_VERSIONS, planMinVersion, resealPlan, sealPlan, topCutSpec, type PlanEnvelope, type Partial, type QueryResult } from '../../query/engine.js';
import { ERRORS, ShoalError, type ErrorCode } from '../../query/errors.js';
import { LIMITS } from '../../query/limits.js';
import type { LogicalPlan } from '../../query/plan/plan.js';
import { evictedRowsNote } from '../../query/plan/partial.js';
import { unknownColumnError } from '../../query/plan/bind.js';
import { mapBounded, memberRequest, outcomeError, outcomeJson, outcomeReason } from './fanout.js';
import { findSchemaConflict } from './schema-check.js';
import type { QueryRequest } from '../http/http-common.js';
import type { Member, Membership } from './membership.js';

export interface Failure { leaf: string; reason: string }

export interface Coverage {
  percent: number;
  /** 'rows': percent is by rows held; 'leaves': by leaves (some failed leaf's row count is unknown). */
  basis: 'rows' | 'leaves';
  leavesQueried: number;
  leavesResponded: number;
  rowsScanned: number;
  /** Rows of the table held by the leaves that answered. */
  rowsHeld: number;
  /** Rows of the table held by all leaves (last known counts for those that did not answer). */
  rowsExpected: number;
  failures: Failure[];
  failuresOmitted?: number;
  /** Rows the answering leaves' memory budgets evicted inside the queried time range: counted
   * in rowsExpected (they were acknowledged) and not in rowsHeld. */
  rowsEvicted?: number;
  /** Why rows are missing other than a failed leaf (`N rows evicted by the memory budget ...`),
   * one per leaf; bounded like failures. */
  notes?: Failure[];
}

export interface ClusterQueryContext {
  readonly membership: Membership;
  readonly agent: Dispatcher;
  /** Default wait for a member's answer when the request gives no timeoutMs. */
  readonly leafTimeoutMs: number;
  readonly queryTimeoutMsMax: number;
  readonly memberToken: string | null;
  /** The least groups a leaf is asked for in a pushed-down top-n; 0: none is (AggregatorConfig). */
  readonly topNGroups?: number;
}

export interface ClusterAnswer {
  readonly plan: LogicalPlan;
  readonly partial: Partial;
  readonly coverage: Coverage;
  /** The table's column names as the members' statuses last said (for an unknown column's hint). */
  readonly columnNames?: readonly string[];
  /** A top-n pushed down to the leaves (query/merge/top-cut.ts): their cut answers were exact,
   * or some were asked again for every group; null when nobody cut. */
  readonly topCut?: 'exact' | 'refetched' | null;
}

interface Answered { member: Member; partial: Partial; coverage: Coverage; schemaVersion: string | null }

/** How much sooner a member must give up than we do, so its own answer (with its coverage, or a
 * clean timeout error) arrives before our deadline: 10% of the wait, at most 250 ms. */
export function childTimeoutMs(waitMs: number): number {
  return Math.max(1, Math.floor(waitMs - Math.min(250, waitMs / 10)));
}

function isCoverage(c: unknown): c is Coverage {
  const x = c as Coverage;
  return typeof x === 'object' && x !== null && typeof x.leavesQueried === 'number' && typeof x.rowsExpected === 'number' && Array.isArray(x.failures);
}

/** Checks the shape of a member's partial enough that merging it cannot go astray. */
function checkPartial(p: unknown, plan: LogicalPlan): string | null {
  const x = p as Partial;
  if (typeof x !== 'object' || x === null) return 'answer has no partial';
  if (x.mode !== plan.mode) return `answer is a ${String(x.mode)} partial, expected ${plan.mode}`;
  if (x.mode === 'rows' && (!Array.isArray(x.rows) || !Array.isArray(x.orderValues))) return 'rows partial has no rows';
  if (typeof x.stats !== 'object' || x.stats === null || typeof x.stats.rowsHeld !== 'number') return 'partial has no stats';
  if (!Array.isArray(x.columns) || !Array.isArray(x.unknownColumns)) return 'partial has no columns';
  return null;
}

export function combineCoverage(answered: readonly Coverage[], failed: readonly { member: Member; reason: string }[], table: string): Coverage {
  let basisLeaves = answered.some((c) => c.basis === 'leaves');
  const c: Coverage = { percent: 0, basis: 'rows', leavesQueried: 0, leavesResponded: 0, rowsScanned: 0, rowsHeld: 0, rowsExpected: 0, failures: [], rowsEvicted: 0, notes: [] };
  let omitted = 0;
  const addFailure = (f: Failure) => {
    if (c.failures.length < LIMITS.coverageFailuresMax) c.failures.push(f);
    else omitted++;
  };
  for (const a of answered) {
    c.rowsEvicted! += a.rowsEvicted ?? 0;
    for (const n of a.notes ?? []) if (c.notes!.length < LIMITS.coverageFailuresMax) c.notes!.push(n);
    c.leavesQueried += a.leavesQueried;
    c.leavesResponded += a.leavesResponded;
    c.rowsScanned += a.rowsScanned;
    c.rowsHeld += a.rowsHeld ?? a.rowsExpected;
    c.rowsExpected += a.rowsExpected;
    for (const f of a.failures) addFailure(f);
    omitted += a.failuresOmitted ?? 0;
  }
  for (const f of failed) {
    c.leavesQueried += f.member.leafCount;
    const known = f.member.knownTableRows(table);
    if (known === null) basisLeaves = true;
    else c.rowsExpected += known;
    addFailure({ leaf: f.member.id, reason: f.reason });
  }
  if (omitted > 0) c.failuresOmitted = omitted;
  const byLeaves = c.leavesQueried === 0 ? 100 : (100 * c.leavesResponded) / c.leavesQueried;
  if (basisLeaves || c.rowsExpected === 0) {
    c.basis = 'leaves';
    c.percent = byLeaves;
  } else {
    c.percent = (100 * c.rowsHeld) / c.rowsExpected;
  }
  // Round down to 2 decimals: 99.999% must not print as 100%.
  c.percent = c.percent >= 100 ? 100 : Math.floor(c.percent * 100) / 100;
  return c;
}

/** The newest version below `v` that both this code and a member refusing `v` speak, if any. */
function olderVersion(o: Parameters<typeof outcomeError>[0], v: number, minVersion: number): number | null {
  if (o.kind !== 'http' || o.status !== 409) return null;
  const err = outcomeError(o);
  if (err?.code !== 'SHOAL_ERR_PLAN_VERSION' || !Array.isArray(err.supported)) return null;
  const both = (err.supported as unknown[]).filter((x): x is number => typeof x === 'number' && x < v && PLAN_VERSIONS.includes(x) && x >= minVersion);
  return both.length === 0 ? null : Math.max(...both);
}

/** Runs the fan-out and merge. Throws a ShoalError only for an error that ends the query. */
export async function runClusterQuery(ctx: ClusterQueryContext, req: QueryRequest): Promise<ClusterAnswer> {
  // The plan is the protocol (query/plan/protocol.ts): planned once, here or by a parent
  // aggregator, with one now(); the members execute it and never see the SQL text.
  const nowSeconds = req.nowSeconds ?? Date.now() / 1000;
  const env = req.plan ?? sealPlan(planQuery(req.sql, nowSeconds), nowSeconds, req.sql);
  const plan = env.plan;
  // A member on older code gets the plan in its version only if that version expresses it.
  const minVersion = planMinVersion(plan);
  const waitMs = req.timeoutMs !== null ? Math.min(req.timeoutMs, ctx.queryTimeoutMsMax) : ctx.leafTimeoutMs;
  const started = performance.now();
  // A top-n is pushed down only at the top: a child aggregator's answer is merged again above it.
  const spec = req.partial ? null : topCutSpec(plan, ctx.topNGroups);
  const topn = spec === null ? '' : `"topn":{"agg":${spec.agg},"groups":${spec.groups}},`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (ctx.memberToken !== null) headers.authorization = `Bearer ${ctx.memberToken}`;

  const answered: Answered[] = [];
  const failed: { member: Member; reason: string }[] = [];
  const queryErrors: { member: Member; status: number; error: { code: string; message: string; [k: string]: unknown } }[] = [];
  const members = ctx.membership.members;
  const ask = async (m: Member, wait: number, cutAsked: string): Promise<void> => {
    const bodyFor = (e: PlanEnvelope) => `{"partial":true,"timeoutMs":${childTimeoutMs(wait)},${cutAsked}"plan":${envelopeJson(e)}}`;
    let o = await memberRequest(ctx.agent, `${m.url}/v1/query`, { method: 'POST', headers, body: bodyFor(env), timeoutMs: wait, bytesMax: LIMITS.memberAnswerBytesMax });
    let v = env.v;
    // A member on older code that executes an older version this code also speaks (it says
    // which in its refusal) is asked once more in that version: a roll keeps its coverage.
    const older = olderVersion(o, env.v, minVersion);
    if (older !== null) {
      v = older;
      o = await memberRequest(ctx.agent, `${m.url}/v1/query`, { method: 'POST', headers, body: bodyFor(resealPlan(env, older)), timeoutMs: wait, bytesMax: LIMITS.memberAnswerBytesMax });
    }
    if (o.kind === 'http' && o.status === 200) {
      const body = outcomeJson(o) as { partial?: unknown; coverage?: unknown; protocol?: unknown } | undefined;
      // States are merged by position: only an answer to this very protocol version may be.
      if (body?.protocol !== v) { failed.push({ member: m, reason: `answered plan protocol ${String(body?.protocol ?? 1)}; this query is version ${v}` }); return; }
      const problem = checkPartial(body?.partial, plan);
      if (problem !== null) { failed.push({ member: m, reason: `bad answer: ${problem}` }); return; }
      const decoded = partialFromWire(body!.partial, plan, v);
      if ('error' in decoded) { failed.push({ member: m, reason: `bad answer: ${decoded.error}` }); return; }
      const p = decoded.ok;
      if (cutAsked === '' && p.mode === 'aggregate' && p.cut !== undefined) { failed.push({ member: m, reason: 'bad answer: it cut its groups unasked' }); return; }
      let cov: Coverage;
      if (body!.coverage !== undefined) {
        if (!isCoverage(body!.coverage)) { failed.push({ member: m, reason: 'bad answer: malformed coverage' }); return; }
        cov = body!.coverage;
        m.noteAnswer(plan.table, cov.rowsExpected);
      } else {
        const rows = p.stats.rowsHeld;
        const evicted = typeof p.stats.rowsEvicted === 'number' && p.stats.rowsEvicted > 0 ? p.stats.rowsEvicted : 0;
        cov = {
          percent: 100, basis: 'rows', leavesQueried: 1, leavesResponded: 1, rowsScanned: p.stats.rowsScanned, rowsHeld: rows,
          rowsExpected: rows + evicted, failures: [], rowsEvicted: evicted, notes: evicted > 0 ? [{ leaf: m.id, reason: evictedRowsNote(evicted) }] : [],
        };
        m.noteAnswer(plan.table, rows);
      }
      const schemaVersion = typeof (body as { schemaVersion?: unknown }).schemaVersion === 'string' ? (body as { schemaVersion: string }).schemaVersion : null;
      answered.push({ member: m, partial: p, coverage: cov, schemaVersion });
      return;
    }
    const err = outcomeError(o);
    if (o.kind === 'http' && o.status >= 400 && o.status < 500 && err !== null && err.code.startsWith('SHOAL_ERR_QUERY_')) {
      queryErrors.push({ member: m, status: o.status, error: err });
    }
    if (o.kind === 'refused') m.noteFailure(o.reason, true, 1);
    failed.push({ member: m, reason: outcomeReason(o) });
  };
  await mapBounded(members, LIMITS.fanoutInFlightMax, async (m) => {
    if (m.health === 'unhealthy') { failed.push({ member: m, reason: `unhealthy: ${m.lastError ?? 'failed its health check'}` }); return; }
    await ask(m, waitMs, topn);
  });

  // One schema per cluster: a column the query uses with two types across members is the
  // query's error (409), not an outage of the members whose type check failed.
  const relay = (error: { code: string; message: string; [k: string]: unknown }) => {
    const { code, message, ...rest } = error;
    const { position, row, column, line, ...extra } = rest as { position?: number; row?: number; column?: string; line?: number };
    return new ShoalError(code as ErrorCode, message, { position, row, column, line }, Object.keys(extra).length > 0 ? extra : undefined);
  };
  const checkSchemas = async () => {
    const childConflict = queryErrors.find((q) => q.error.code === 'SHOAL_ERR_QUERY_SCHEMA_CONFLICT');
    if (childConflict !== undefined) throw relay(childConflict.error);
    const conflict = await findSchemaConflict(ctx.membership, plan, [
      ...answered.filter((a) => a.partial.tableFound).map((a) => ({ member: a.member, answerSchemaVersion: a.schemaVersion })),
      ...queryErrors.map((q) => ({ member: q.member, answerSchemaVersion: null })),
    ]);
    if (conflict !== null) throw conflict;
  };
  await checkSchemas();

  // A query error every answering member reports alike is the query's error, not an outage.
  if (answered.length === 0 && queryErrors.length > 0 && queryErrors.every((q) => q.error.code === queryErrors[0]!.error.code)) {
    const { code, message, ...rest } = queryErrors[0]!.error;
    if (code in ERRORS) {
      const { position, row, column, line, ...extra } = rest as { position?: number; row?: number; column?: string; line?: number };
      throw new ShoalError(code as ErrorCode, message, { position, row, column, line }, Object.keys(extra).length > 0 ? extra : undefined);
    }
  }

  // Stable order (the members' order) so the merge, and float sums, do not depend on timing.
  const order = new Map(members.map((m, i) => [m, i]));
  const sortAnswers = () => {
    answered.sort((a, b) => order.get(a.member)! - order.get(b.member)!);
    failed.sort((a, b) => order.get(a.member)! - order.get(b.member)!);
  };
  sortAnswers();
  const merge = (maps?: Int32Array[]): Partial => {
    try {
      return mergePartials(plan, answered.length > 0 ? answered.map((a) => a.partial) : [emptyPartial(plan)], maps);
    } catch (e) {
      if (e instanceof ShoalError) throw e;
      throw new ShoalError('SHOAL_ERR_INTERNAL', `merging the members' answers failed: ${(e as Error).message}`);
    }
  };
  let partial: Partial | null = null;
  let topCut: ClusterAnswer['topCut'] = null;
  const cutOf = (a: Answered) => (a.partial.mode === 'aggregate' ? a.partial.cut ?? null : null);
  if (spec !== null && answered.some((a) => cutOf(a) !== null)) {
    // Some leaves sent only their best groups (query/merge/top-cut.ts): the merge is the answer
    // only if their bounds prove it; otherwise those leaves are asked for every group.
    const maps: Int32Array[] = [];
    const merged = merge(maps);
    if (merged.mode === 'aggregate' && cutIsExact(spec, merged.groups, maps, answered.map(cutOf))) {
      partial = merged;
      topCut = 'exact';
    } else {
      topCut = 'refetched';
      const cutMembers = answered.filter((a) => cutOf(a) !== null).map((a) => a.member);
      answered.splice(0, answered.length, ...answered.filter((a) => cutOf(a) === null));
      await mapBounded(cutMembers, LIMITS.fanoutInFlightMax, async (m) => {
        const left = Math.floor(waitMs - (performance.now() - started));
        if (left < 1) { failed.push({ member: m, reason: `timed out after ${waitMs} ms (asked again for every group after a top-n cut)` }); return; }
        await ask(m, left, '');
      });
      await checkSchemas();
      sortAnswers();
    }
  }
  partial ??= merge();
  const coverage = combineCoverage(answered.map((a) => a.coverage), failed, plan.table);
  const columnNames = new Set<string>();
  for (const m of members) for (const c of m.tableSchema(plan.table)?.keys() ?? []) columnNames.add(c);
  return { plan, partial, coverage, columnNames: [...columnNames], topCut };
}

/**
 * The checks a top-level answer gets (a child aggregator leaves them to its parent, which sees
 * every leaf): nobody answered, no leaf has the table, a column no leaf has, minCoverage.
 */
export function finishClusterAnswer(a: ClusterAnswer, minCoverage: number | null): QueryResult {
  const { plan, partial, coverage } = a;
  const noAnswerSummary = () => coverage.failures.slice(0, 5).map((f) => `${f.leaf}: ${f.reason}`).join('; ');
  if (coverage.leavesResponded === 0) {
    throw new ShoalError('SHOAL_ERR_CLUSTER_NO_ANSWER', `none of the ${coverage.leavesQueried} leaves answered (${noAnswerSummary()})`, undefined, { coverage });
  }
  if (!partial.tableFound && coverage.rowsExpected === 0) {
    const missing = coverage.leavesQueried - coverage.leavesResponded;
    const note = missing > 0 ? ` on any of the ${coverage.leavesResponded} leaves that answered (${missing} did not)` : '';
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_TABLE', `table "${plan.table}" does not exist${note}`, { position: plan.tablePos }, missing > 0 ? { coverage } : undefined);
  }
  if (partial.unknownColumns.length === 1) {
    const name = partial.unknownColumns[0]!;
    throw unknownColumnError(name, columnQuoted(plan, name), a.columnNames ?? [], `table "${plan.table}"`, columnPosition(plan, name) ?? 0);
  }
  if (partial.unknownColumns.length > 0) {
    const names = partial.unknownColumns.map((c) => `"${c}"`).join(', ');
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_COLUMN', `column${partial.unknownColumns.length > 1 ? 's' : ''} ${names} ${partial.unknownColumns.length > 1 ? 'do' : 'does'} not exist in table "${plan.table}"`, { position: columnPosition(plan, partial.unknownColumns[0]!), column: partial.unknownColumns[0] });
  }
  if (minCoverage !== null && coverage.percent < minCoverage) {
    throw new ShoalError('SHOAL_ERR_QUERY_COVERAGE', `coverage ${coverage.percent}% is below minCoverage ${minCoverage}% (${coverage.leavesResponded}/${coverage.leavesQueried} leaves answered)`, undefined, { coverage });
  }
  return finish(plan, partial);
}

/** Whether the first reference to a column was double-quoted. */
function columnQuoted(plan: LogicalPlan, name: string): boolean {
  let quoted = false;
  let best = Infinity;
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    if (Array.isArray(x)) { for (const y of x) visit(y); return; }
    const o = x as { kind?: unknown; name?: unknown; pos?: unknown; quoted?: unknown };
    if (o.kind === 'column' && o.name === name && typeof o.pos === 'number' && o.pos < best) { best = o.pos; quoted = o.quoted === true; }
    for (const v of Object.values(o)) visit(v);
  };
  visit(plan);
  return quoted;
}

/** Where the SQL first names a column: the smallest position of a reference to it in the plan. */
function columnPosition(plan: LogicalPlan, name: string): number | undefined {
  let best: number | undefined;
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    if (Array.isArray(x)) { for (const y of x) visit(y); return; }
    const o = x as { kind?: unknown; name?: unknown; pos?: unknown };
    if (o.kind === 'column' && o.name === name && typeof o.pos === 'number' && (best === undefined || o.pos < best)) best = o.pos;
    for (const v of Object.values(o)) visit(v);
  };
  visit(plan);
  // A name outside aggregates that is not a key is kept in `ungrouped` (with its position).
  for (const u of plan.ungrouped) if (u.name === name && (best === undefined || u.pos < best)) best = u.pos;
  return best;
}
