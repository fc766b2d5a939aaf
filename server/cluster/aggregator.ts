/**
 * The aggregator: a fastify app speaking the leaf's HTTP API (DESIGN.md) over a cluster of
 * members. Queries fan out to every member and come back merged with their coverage
 * (cluster-query.ts); ingest is routed to one leaf per batch (router.ts); status and tables are
 * merged from the members (membership.ts keeps what is known of each). With `partial: true` a
 * query answers `{partial, coverage}`, so an aggregator can be a member of another (a tree).
 *
 * Not here: storage or scans (an aggregator holds no rows), process supervision (supervisor.ts).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import client from 'prom-client';
import type { Agent } from 'undici';
import { apiRows, partialToWire, planQuery, PLAN_VERSION, runNested, sealPlan, type CatalogTable, type Partial } from '../../query/engine.js';
import { ShoalError } from '../../query/errors.js';
import { LIMITS } from '../../query/limits.js';
import { finishClusterAnswer, runClusterQuery, type ClusterQueryContext, type Coverage } from './cluster-query.js';
import { createMemberAgent, mapBounded, memberRequest, outcomeJson, outcomeReason } from './fanout.js';
import { fastifyOptions, installCommon, jsonBody, parseQueryRequest, requireToken } from '../http/http-common.js';
import { checkTableName, deadlineError, parseIngestGuard } from '../../query/storage/leaf-store.js';
import type { ColumnType } from '../../query/storage/types.js';
import { Membership, memberOrigin, validMemberId, type MemberSpec } from './membership.js';
import { DnsDiscovery, type DnsTarget, type Resolver } from './discovery.js';
import { createMetrics } from '../http/metrics.js';
import { locateBatch, Placements, routeBatch, type RouteResult } from './router.js';
import { registerUi } from '../ui/ui-routes.js';

export interface AggregatorConfig {
  host: string;
  port: number;
  /** Name of this aggregator in its status and in a parent's failures. */
  id: string;
  /** The cluster file the members came from (reloaded on SIGHUP); null when given in code. */
  clusterFile: string | null;
  /** Wait for a member's query answer when the request gives no timeoutMs. Also the longest one
   * hung member can add to a query. */
  leafTimeoutMs: number;
  queryTimeoutMsMax: number;
  /** Wait for a leaf to acknowledge a forwarded batch (it decodes and logs it first). */
  ingestTimeoutMs: number;
  /** Health checks: interval, timeout, and failed checks in a row before a member is unhealthy. */
  /** How often every member is asked for its status (250 ms: a leaf back from a restart is
   * used again within a quarter second, and four small status calls a second cost a leaf ~nothing). */
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailuresMax: number;
  /** Groups each leaf sends for `ORDER BY count(...) DESC LIMIT k`: max(this, 8 x k), with a
   * bound that proves the answer or asks again (query/merge/top-cut.ts); 0 sends every group. */
  topNGroups: number;
  /** Queries running at once; more get 503 SHOAL_ERR_QUERY_OVERLOADED. */
  queriesMax: number;
  /** Ingest requests being forwarded at once (each holds its body, up to 64 MiB); more get 503. */
  ingestInFlightMax: number;
  /** Bearer token clients must send (null: open), and the one sent to members (default: the same). */
  token: string | null;
  memberToken: string | null;
  logLevel: string;
  /** Members found through DNS (--leaves-dns NAME:PORT; null: none), how often the name is
   * resolved again, and how long an address it stops listing stays a member. */
  leavesDns: DnsTarget | null;
  dnsIntervalMs: number;
  dnsGraceMs: number;
}

export function defaultAggregatorConfig(): AggregatorConfig {
  return {
    host: '127.0.0.1', port: 7000, id: 'aggregator', clusterFile: null,
    leafTimeoutMs: 5_000, queryTimeoutMsMax: 600_000, ingestTimeoutMs: 10_000,
    healthIntervalMs: 250, healthTimeoutMs: 1_000, healthFailuresMax: 2,
    topNGroups: LIMITS.topCutGroupsMin, queriesMax: 64, ingestInFlightMax: 64, token: null, memberToken: null, logLevel: 'info',
    leavesDns: null, dnsIntervalMs: 5_000, dnsGraceMs: 60_000,
  };
}

export function validateAggregatorConfig(c: AggregatorConfig): AggregatorConfig {
  const check = (cond: boolean, option: string, message: string) => {
    if (!cond) throw new ShoalError('SHOAL_ERR_CLUSTER_CONFIG', `invalid ${option}: ${message}`);
  };
  check(Number.isInteger(c.port) && c.port >= 0 && c.port <= 65535, '--port', `${c.port} is not a TCP port (0-65535)`);
  check(/^[A-Za-z0-9_.-]{1,64}$/.test(c.id), '--id', 'letters, digits, ., _ and - only, at most 64');
  check(Number.isInteger(c.leafTimeoutMs) && c.leafTimeoutMs >= 10 && c.leafTimeoutMs <= c.queryTimeoutMsMax, '--leaf-timeout', `must be 10..${c.queryTimeoutMsMax} ms`);
  check(Number.isInteger(c.ingestTimeoutMs) && c.ingestTimeoutMs >= 10 && c.ingestTimeoutMs <= 600_000, '--ingest-timeout', 'must be 10..600000 ms');
  check(c.healthIntervalMs >= 50 && c.healthIntervalMs <= 60_000, 'healthIntervalMs', 'must be 50..60000 ms');
  check(c.healthTimeoutMs >= 10 && c.healthTimeoutMs <= 60_000, 'healthTimeoutMs', 'must be 10..60000 ms');
  check(Number.isInteger(c.healthFailuresMax) && c.healthFailuresMax >= 1 && c.healthFailuresMax <= 100, 'healthFailuresMax', 'must be 1..100');
  check(Number.isInteger(c.topNGroups) && c.topNGroups >= 0 && c.topNGroups <= 1_000_000, '--top-n-groups', 'must be 0..1000000 (0: every group)');
  check(Number.isInteger(c.queriesMax) && c.queriesMax >= 1 && c.queriesMax <= 10_000, 'queriesMax', 'must be 1..10000');
  check(Number.isInteger(c.ingestInFlightMax) && c.ingestInFlightMax >= 1 && c.ingestInFlightMax <= 10_000, 'ingestInFlightMax', 'must be 1..10000');
  check(Number.isInteger(c.dnsIntervalMs) && c.dnsIntervalMs >= 100 && c.dnsIntervalMs <= 3_600_000, '--dns-interval', 'must be 100..3600000 ms');
  check(Number.isInteger(c.dnsGraceMs) && c.dnsGraceMs >= 0 && c.dnsGraceMs <= 86_400_000, '--dns-grace', 'must be 0..86400000 ms');
  return c;
}

export class Aggregator {
  readonly agent: Agent = createMemberAgent();
  readonly membership: Membership;
  readonly metrics = createMetrics('aggregator');
  readonly memberFailures = new client.Counter({
    name: 'shoal_member_failures_total', help: 'Failed requests to members, by kind of request',
    labelNames: ['request'], registers: [this.metrics.registry],
  });
  readonly membersGauge = new client.Gauge({
    name: 'shoal_members', help: 'Members by health state', labelNames: ['state'], registers: [this.metrics.registry],
  });
  readonly topCuts = new client.Counter({
    name: 'shoal_topn_pushdown_total', help: 'Queries whose top-n the leaves cut, by outcome: exact (answered from the cut groups) or refetched (asked again for every group)',
    labelNames: ['outcome'], registers: [this.metrics.registry],
  });
  readonly ingestTries = new client.Histogram({
    name: 'shoal_ingest_route_tries', help: 'Members tried per routed batch', buckets: [1, 2, 3, 4, 6], registers: [this.metrics.registry],
  });
  /** Where recent batch ids went (so a client's retry goes to the same leaf). */
  readonly placements = new Placements();
  queriesRunning = 0;
  ingestInFlight = 0;
  /** Batch id -> its routing in progress: a client's resend of a batch still being placed (its
   * first answer was lost or slow) waits for that placement instead of placing a second copy. */
  readonly routing = new Map<string, Promise<RouteResult>>();
  readonly startedAtMs = Date.now();
  /** Randomness of the ingest router: null = seeded by each batch id (router.ts batchRandom);
   * a test injects its own. */
  random: (() => number) | null = null;

  /** Members found through DNS (null without --leaves-dns). */
  readonly discovery: DnsDiscovery | null;

  constructor(readonly config: AggregatorConfig, members: readonly MemberSpec[], opts: { resolver?: Resolver; log?: (level: 'info' | 'warn', message: string) => void } = {}) {
    this.membership = new Membership(members, this.agent, {
      intervalMs: config.healthIntervalMs, timeoutMs: config.healthTimeoutMs, failuresMax: config.healthFailuresMax,
    }, config.memberToken);
    const log = opts.log ?? (() => undefined);
    this.membership.onDropped = (dropped) => { for (const d of dropped) log('warn', `member ${d.id} dropped: ${d.reason}`); };
    this.discovery = config.leavesDns === null ? null : new DnsDiscovery(this.membership, this.agent, {
      target: config.leavesDns, intervalMs: config.dnsIntervalMs, graceMs: config.dnsGraceMs, probeTimeoutMs: config.healthTimeoutMs,
      memberToken: config.memberToken, resolver: opts.resolver, log,
    });
  }

  /** Starts health checks and, with --leaves-dns, the name's resolution. */
  start(): void {
    this.membership.start();
    this.discovery?.start();
  }

  get queryContext(): ClusterQueryContext {
    const c = this.config;
    return { membership: this.membership, agent: this.agent, leafTimeoutMs: c.leafTimeoutMs, queryTimeoutMsMax: c.queryTimeoutMsMax, memberToken: c.memberToken, topNGroups: c.topNGroups };
  }

  /** `knownSchemaVersion`: as on a leaf, the cluster's column types are listed per table only
   * when the caller's copy is stale (a parent aggregator routes batches with them). */
  status(knownSchemaVersion: string | null = null) {
    const members = this.membership.members;
    const tables: Record<string, { rows: number; bytes: number; columns?: Record<string, ColumnType>; columnsOmitted?: true }> = {};
    for (const m of members) for (const [name, rows] of m.tablesSeen()) {
      const t = (tables[name] ??= { rows: 0, bytes: 0 });
      t.rows += rows;
      t.bytes += m.tableBytesSeen(name);
    }
    const schemaVersion = this.membership.schemaVersion();
    if (knownSchemaVersion !== schemaVersion) {
      let columnsLeft = LIMITS.statusColumnsMax;
      for (const [name, t] of Object.entries(tables)) {
        const schema = this.membership.clusterSchema(name);
        if (schema.size > columnsLeft) { t.columnsOmitted = true; continue; }
        columnsLeft -= schema.size;
        t.columns = Object.fromEntries([...schema].map(([c, col]) => [c, col.type]));
      }
    }
    const sum = (f: (m: (typeof members)[number]) => number | null, only = members) => only.reduce((s, m) => s + (f(m) ?? 0), 0);
    const healthy = members.filter((m) => m.health === 'healthy');
    return {
      role: 'aggregator' as const,
      id: this.config.id,
      state: 'serving',
      leafCount: this.membership.leafCount(),
      membersHealthy: healthy.length,
      membersTotal: members.length,
      rows: sum((m) => m.rows),
      bytes: sum((m) => m.bytes),
      memoryBudgetBytes: sum((m) => m.memoryBudgetBytes, healthy),
      memoryFreeBytes: sum((m) => m.memoryFreeBytes, this.membership.live()),
      schemaVersion,
      clockMs: Date.now(),
      tables,
      leaves: members.map((m) => m.toJSON()),
      discovery: this.discovery?.toJSON() ?? null,
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      pid: process.pid,
      queriesRunning: this.queriesRunning,
    };
  }

  /** Fans a GET out to every healthy member; returns the parsed answers and the failures. */
  async gatherGet(path: string): Promise<{ answers: { id: string; status: number; body: unknown }[]; failures: { leaf: string; reason: string }[] }> {
    const answers: { id: string; status: number; body: unknown }[] = [];
    const failures: { leaf: string; reason: string }[] = [];
    const headers: Record<string, string> = {};
    if (this.config.memberToken !== null) headers.authorization = `Bearer ${this.config.memberToken}`;
    await mapBounded(this.membership.members, LIMITS.fanoutInFlightMax, async (m) => {
      if (m.health === 'unhealthy') { failures.push({ leaf: m.id, reason: `unhealthy: ${m.lastError ?? ''}` }); return; }
      const o = await memberRequest(this.agent, `${m.url}${path}`, { method: 'GET', headers, timeoutMs: this.config.leafTimeoutMs, bytesMax: LIMITS.memberStatusBytesMax });
      if (o.kind === 'http' && (o.status === 200 || o.status === 404)) answers.push({ id: m.id, status: o.status, body: outcomeJson(o) });
      else { failures.push({ leaf: m.id, reason: outcomeReason(o) }); this.memberFailures.inc({ request: 'tables' }); }
    });
    return { answers, failures };
  }

  /**
   * The cluster's catalog for information_schema, SHOW TABLES and DESCRIBE: every table any leaf
   * that answered holds, its columns in first-seen order; the coverage says which leaves did not.
   */
  async catalog(minCoverage: number | null): Promise<{ tables: CatalogTable[]; extra: { coverage: Coverage; stats: Partial['stats'] } }> {
    const { answers, failures } = await this.gatherGet('/v1/tables?columns=1');
    const tables = new Map<string, Map<string, string>>();
    for (const a of answers) {
      for (const t of ((a.body as { tables?: { name: string; columnList?: { name: string; type: string }[] }[] } | null)?.tables ?? [])) {
        let cols = tables.get(t.name);
        if (cols === undefined) { cols = new Map(); tables.set(t.name, cols); }
        for (const c of t.columnList ?? []) {
          const seen = cols.get(c.name);
          if (seen === undefined) cols.set(c.name, c.type);
          else if (seen !== c.type && !seen.split('|').includes(c.type)) cols.set(c.name, `${seen}|${c.type}`);
        }
      }
    }
    const queried = answers.length + failures.length;
    const percent = queried === 0 ? 100 : Math.floor((10000 * answers.length) / queried) / 100;
    const coverage: Coverage = { percent, basis: 'leaves', leavesQueried: queried, leavesResponded: answers.length, rowsScanned: 0, rowsHeld: 0, rowsExpected: 0, failures };
    if (minCoverage !== null && percent < minCoverage) {
      throw new ShoalError('SHOAL_ERR_QUERY_COVERAGE', `coverage ${percent}% is below minCoverage ${minCoverage}% (${answers.length}/${queried} leaves answered)`, undefined, { coverage });
    }
    return {
      tables: [...tables].map(([name, cols]) => ({ name, columns: [...cols].map(([n, type]) => ({ name: n, type })) })),
      extra: { coverage, stats: { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0 } },
    };
  }

  async close(): Promise<void> {
    this.discovery?.stop();
    this.membership.stop();
    await this.agent.close();
  }
}

interface TableSummary { name: string; rows: number; bytes: number; columns: number }
interface ColumnSummary { name: string; type: string; [k: string]: unknown }

export function buildAggregatorApp(agg: Aggregator): FastifyInstance {
  const app = Fastify(fastifyOptions(agg.config.logLevel));
  installCommon(app);
  registerUi(app, { role: 'aggregator', id: agg.config.id });
  const cfg = agg.config;

  app.post('/v1/query', async (req, reply) => {
    requireToken(req, cfg.token, 'query');
    const started = performance.now();
    const q = parseQueryRequest(req.body);
    if (agg.queriesRunning >= cfg.queriesMax) {
      throw new ShoalError('SHOAL_ERR_QUERY_OVERLOADED', `${agg.queriesRunning} queries are running on this aggregator, its limit; retry later`);
    }
    agg.queriesRunning++;
    try {
      if (!q.partial && q.plan === null) {
        // FROM a subquery or the catalog: the table plan goes to the leaves, the rest runs here.
        const nowSeconds = q.nowSeconds ?? Date.now() / 1000;
        const plan = planQuery(q.sql, nowSeconds);
        if (plan.source !== undefined) {
          const { result, extra } = await runNested(plan, nowSeconds, async (p) => {
            const answer = await runClusterQuery(agg.queryContext, { ...q, plan: sealPlan(p, nowSeconds, q.sql), nowSeconds });
            if (answer.topCut) agg.topCuts.inc({ outcome: answer.topCut });
            return { result: finishClusterAnswer(answer, q.minCoverage), extra: { coverage: answer.coverage, stats: answer.partial.stats } };
          }, async () => agg.catalog(q.minCoverage));
          agg.metrics.queries.inc({ outcome: 'ok' });
          agg.metrics.queryLatency.observe((performance.now() - started) / 1000);
          return reply.send({
            columns: result.columns, rows: apiRows(result.rows), coverage: extra.coverage,
            stats: { elapsedMs: Math.round((performance.now() - started) * 100) / 100, rowsMatched: extra.stats.rowsMatched, blocksScanned: extra.stats.blocksScanned, blocksSkipped: extra.stats.blocksSkipped, truncated: result.truncated },
          });
        }
        q.plan = sealPlan(plan, nowSeconds, q.sql);
        q.nowSeconds = nowSeconds;
      }
      const answer = await runClusterQuery(agg.queryContext, q);
      const { coverage } = answer;
      agg.metrics.queryCoverage.observe(coverage.percent);
      if (coverage.failures.length > 0) agg.memberFailures.inc({ request: 'query' }, coverage.failures.length);
      if (answer.topCut) agg.topCuts.inc({ outcome: answer.topCut });
      if (q.partial) {
        agg.metrics.queries.inc({ outcome: 'ok' });
        const v = q.plan?.v ?? PLAN_VERSION;
        return reply.send({ partial: partialToWire(answer.partial, answer.plan, v), protocol: v, coverage, schemaVersion: agg.membership.schemaVersion() });
      }
      const result = finishClusterAnswer(answer, q.minCoverage);
      const s = answer.partial.stats;
      agg.metrics.queries.inc({ outcome: 'ok' });
      agg.metrics.queryLatency.observe((performance.now() - started) / 1000);
      return reply.send({
        columns: result.columns,
        rows: apiRows(result.rows),
        coverage,
        stats: {
          elapsedMs: Math.round((performance.now() - started) * 100) / 100,
          rowsMatched: s.rowsMatched, blocksScanned: s.blocksScanned, blocksSkipped: s.blocksSkipped, truncated: result.truncated,
        },
      });
    } catch (e) {
      agg.metrics.queries.inc({ outcome: 'error' });
      throw e;
    } finally {
      agg.queriesRunning--;
    }
  });

  app.post<{ Params: { table: string } }>('/v1/tables/:table/events', async (req, reply) => {
    requireToken(req, cfg.token, 'ingest');
    checkTableName(req.params.table);
    if (agg.ingestInFlight >= cfg.ingestInFlightMax) {
      agg.metrics.ingestBatches.inc({ outcome: 'refused' });
      throw new ShoalError('SHOAL_ERR_CLUSTER_OVERLOADED', `${agg.ingestInFlight} ingest requests are in flight on this aggregator, its limit; retry later`);
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const idHeader = req.headers['x-shoal-batch-id'];
    const batchId = typeof idHeader === 'string' && idHeader.length > 0 ? idHeader.slice(0, 128) : `agg-${randomUUID()}`;
    const ct = req.headers['content-type'];
    // From a parent aggregator: its deadline (in our clock) and its cluster's column types.
    const guard = parseIngestGuard(req.headers['x-shoal-deadline-ms'], req.headers['x-shoal-column-types']);
    if (guard.deadlineMs !== null && Date.now() > guard.deadlineMs) throw deadlineError(guard.deadlineMs, Date.now(), 'when the aggregator read it');
    agg.ingestInFlight++;
    try {
      let routing = agg.routing.get(batchId);
      const resend = routing !== undefined;
      if (routing === undefined) {
        routing = routeBatch(agg.membership, agg.agent, agg.placements, {
          table: req.params.table, body, contentType: typeof ct === 'string' ? ct : undefined, batchId,
          authorization: cfg.memberToken !== null ? `Bearer ${cfg.memberToken}` : null, timeoutMs: cfg.ingestTimeoutMs,
          deadlineMs: guard.deadlineMs, columnTypes: guard.columnTypes,
        }, agg.random ?? undefined);
        agg.routing.set(batchId, routing);
        const placed = routing;
        void placed.finally(() => { if (agg.routing.get(batchId) === placed) agg.routing.delete(batchId); }).catch(() => undefined);
      }
      const first = await routing;
      // A resend shares the first placement's outcome; once stored, it is a duplicate to it.
      const r: RouteResult = resend && first.kind === 'accepted' && first.body.duplicate !== true
        ? { ...first, body: { ...first.body, duplicate: true } } : first;
      if (r.kind === 'accepted') {
        agg.ingestTries.observe(r.tries);
        const accepted = r.body.accepted as number;
        agg.metrics.ingestBatches.inc({ outcome: r.body.duplicate === true ? 'duplicate' : 'accepted' });
        if (r.body.duplicate !== true) agg.metrics.ingestRows.inc(accepted);
        agg.metrics.ingestBytes.inc(body.length);
        return reply.send({ ...r.body, leaf: r.member.id });
      }
      if (r.kind === 'rejected') {
        agg.metrics.ingestBatches.inc({ outcome: 'rejected' });
        return reply.code(r.status).type('application/json').send(r.text);
      }
      agg.metrics.ingestBatches.inc({ outcome: 'failed' });
      agg.memberFailures.inc({ request: 'ingest' }, r.failures.length);
      const summary = r.failures.map((f) => `${f.leaf}: ${f.reason}`).join('; ');
      throw new ShoalError('SHOAL_ERR_CLUSTER_NO_LEAF',
        r.failures.length === 0 ? 'no leaf is known to this aggregator' : `no leaf accepted the batch after ${r.failures.length} tries (${summary})`,
        undefined, { failures: r.failures, batchId });
    } finally {
      agg.ingestInFlight--;
    }
  });

  app.get('/v1/tables', async (req) => {
    requireToken(req, cfg.token, 'tables');
    const { answers, failures } = await agg.gatherGet('/v1/tables');
    const merged = new Map<string, TableSummary>();
    for (const a of answers) {
      for (const t of ((a.body as { tables?: TableSummary[] } | null)?.tables ?? [])) {
        const m = merged.get(t.name) ?? { name: t.name, rows: 0, bytes: 0, columns: 0 };
        m.rows += t.rows ?? 0;
        m.bytes += t.bytes ?? 0;
        m.columns = Math.max(m.columns, t.columns ?? 0);
        merged.set(t.name, m);
      }
    }
    return { tables: [...merged.values()].sort((a, b) => a.name.localeCompare(b.name)), leavesResponded: answers.length, failures };
  });

  app.get<{ Params: { table: string } }>('/v1/tables/:table', async (req) => {
    requireToken(req, cfg.token, 'tables');
    const { answers, failures } = await agg.gatherGet(`/v1/tables/${encodeURIComponent(req.params.table)}`);
    const found = answers.filter((a) => a.status === 200 && typeof a.body === 'object' && a.body !== null);
    if (found.length === 0) {
      const note = failures.length > 0 ? ` on any of the ${answers.length} leaves that answered (${failures.length} did not)` : '';
      throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_TABLE', `table "${req.params.table}" does not exist${note}`);
    }
    const out = { name: req.params.table, rows: 0, bytes: 0, blocks: 0, timeMin: Infinity, timeMax: -Infinity, columns: [] as ColumnSummary[], evictedRows: 0 };
    const columns = new Map<string, ColumnSummary>();
    for (const a of found) {
      const t = a.body as { rows?: number; bytes?: number; blocks?: number; timeMin?: number | null; timeMax?: number | null; columns?: ColumnSummary[]; evictedRows?: number };
      out.rows += t.rows ?? 0;
      out.bytes += t.bytes ?? 0;
      out.blocks += t.blocks ?? 0;
      out.evictedRows += t.evictedRows ?? 0;
      if (typeof t.timeMin === 'number') out.timeMin = Math.min(out.timeMin, t.timeMin);
      if (typeof t.timeMax === 'number') out.timeMax = Math.max(out.timeMax, t.timeMax);
      for (const c of t.columns ?? []) {
        const seen = columns.get(c.name);
        // Leaves may disagree on a column's type (schema on write is per leaf); say so.
        if (seen === undefined) columns.set(c.name, { ...c });
        else if (seen.type !== c.type) seen.type = `${seen.type}|${c.type}`;
      }
    }
    out.columns = [...columns.values()];
    return { ...out, timeMin: Number.isFinite(out.timeMin) ? out.timeMin : null, timeMax: Number.isFinite(out.timeMax) ? out.timeMax : null, leavesResponded: answers.length, failures };
  });

  app.get<{ Querystring: { schemaVersion?: string } }>('/v1/status', async (req) => {
    requireToken(req, cfg.token, 'status');
    const known = req.query.schemaVersion;
    return agg.status(typeof known === 'string' ? known : null);
  });

  // Whether a batch id is stored under this aggregator (a parent's resend check: docs/cluster.md,
  // "Several aggregators"): the same check over this aggregator's own members, so a resend
  // through another branch of a tree finds a copy stored under this one.
  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (req) => {
    requireToken(req, cfg.token, 'ingest');
    const batchId = req.params.id.slice(0, 128);
    const authorization = cfg.memberToken !== null ? `Bearer ${cfg.memberToken}` : null;
    // Within the parent's own wait for this answer: a round trip less than it.
    const found = await locateBatch(agg.membership, agg.agent, batchId, authorization, Date.now() + LIMITS.batchLookupTimeoutMs - 100);
    return { stored: found.stored?.rows ?? null, inFlight: found.inFlight !== null, unknown: found.unknown.length };
  });

  // A leaf announces itself (shoal leaf --join): the readiness push, and membership without a
  // cluster file. Answered with what the aggregator made of it.
  app.post('/v1/cluster/join', async (req) => {
    requireToken(req, cfg.token, 'join');
    const b = jsonBody(req.body) as { id?: unknown; url?: unknown; heartbeatMs?: unknown };
    if (!validMemberId(b.id)) throw new ShoalError('SHOAL_ERR_CLUSTER_JOIN', `join: "id" must be 1-64 letters, digits, '.', '_' or '-' (got ${JSON.stringify(b.id)})`);
    const url = memberOrigin(b.url);
    if (typeof url !== 'string') throw new ShoalError('SHOAL_ERR_CLUSTER_JOIN', `join: "url" ${url.error}`);
    const heartbeatMs = b.heartbeatMs;
    if (typeof heartbeatMs !== 'number' || !Number.isInteger(heartbeatMs) || heartbeatMs < 100 || heartbeatMs > 60_000) {
      throw new ShoalError('SHOAL_ERR_CLUSTER_JOIN', `join: "heartbeatMs" must be an integer 100..60000 (got ${JSON.stringify(heartbeatMs)})`);
    }
    const { outcome, member } = agg.membership.join({ id: b.id, url, heartbeatMs });
    if (outcome !== 'known') app.log.info({ member: member.id, url, outcome }, `member ${member.id} ${outcome === 'added' ? 'joined' : 'moved'} at ${url}`);
    return { outcome, id: member.id, aggregator: cfg.id, membersTotal: agg.membership.members.length };
  });

  app.get('/healthz', async () => ({ status: 'serving', pid: process.pid, membersHealthy: agg.membership.members.filter((m) => m.health === 'healthy').length }));

  app.get('/metrics', async (req, reply) => {
    requireToken(req, cfg.token, 'metrics');
    const counts = { healthy: 0, unhealthy: 0, unknown: 0 };
    for (const m of agg.membership.members) counts[m.health]++;
    for (const [state, n] of Object.entries(counts)) agg.membersGauge.set({ state }, n);
    const s = agg.status();
    agg.metrics.rowsHeld.set(s.rows);
    agg.metrics.bytesHeld.set(s.bytes);
    return reply.type(agg.metrics.registry.contentType).send(await agg.metrics.registry.metrics());
  });

  return app;
}
