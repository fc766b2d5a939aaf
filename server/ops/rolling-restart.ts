/**
 * Rolling restart of a live cluster (`shoal restart`): groups of K leaves in turn hand off to
 * shared memory (admin call), their supervisor (shoal up, systemd, Kubernetes) starts the new
 * code, and the roll waits until each successor serves with at least the rows its predecessor
 * held and the aggregator counts it healthy again before the next group goes. Meanwhile a probe
 * query measures the coverage that users see. The roll stops, leaving the rest of the cluster
 * serving, when a leaf does not come back in time, or comes back from disk when shared memory
 * was expected (a changed layout version, a failed handoff) unless that is allowed.
 *
 * Not here: starting processes (the supervisor's job) or printing (cmd-restart.ts).
 */
import { request } from 'undici';

export interface RollOptions {
  aggregatorUrl: string;
  /** Leaves restarted at once. */
  batch: number;
  /** Roll one host at a time instead (every leaf whose URL names that host, together; `batch`
   * is then ignored): a whole-machine restart, coverage never below (N-K)/N for K leaves on it. */
  byHost?: boolean;
  /** How long one leaf may take from the handoff call to serving and healthy again. */
  leafTimeoutMs: number;
  /** Go on when a leaf comes back from disk instead of shared memory. */
  allowDisk: boolean;
  token: string | null;
  adminToken: string | null;
  /** Table the coverage probe counts (default: the largest). */
  probeTable: string | null;
  probeIntervalMs: number;
  onEvent: (e: RollEvent) => void;
}

export type Phase = 'waiting' | 'handing-off' | 'restarting' | 'restored' | 'healthy' | 'failed';

export interface LeafReport {
  id: string;
  url: string;
  phase: Phase;
  rowsBefore: number;
  rowsAfter: number | null;
  source: string | null;
  reason: string | null;
  /** The successor's own restore time (its restart.ms). */
  restoreMs: number | null;
  /** Handoff call -> successor serving. */
  downMs: number | null;
  /** Handoff call -> healthy in the aggregator's eyes. */
  totalMs: number | null;
}

export type RollEvent =
  | { kind: 'leaf'; leaf: LeafReport }
  | { kind: 'probe'; coveragePercent: number | null; error: string | null }
  | { kind: 'note'; message: string };

export interface RollSummary {
  ok: boolean;
  error: string | null;
  totalMs: number;
  leaves: LeafReport[];
  probe: { table: string | null; queries: number; failed: number; coverageMin: number | null };
  writes: { rowsAccepted: number; batchesAccepted: number; retries: number; failed: number };
}

interface MemberStatus { id: string; url: string; role: string; state: string; rows: number | null; pid: number | null; instanceId?: string | null }
interface LeafStatus { leafId: string; state: string; rows: number; pid: number; instanceId?: string; restart: { source: string; ms: number; reason: string | null } }

/** Which process a status came from: its instance id, or its pid from builds without one. A pid
 * alone cannot tell a container's successor from its predecessor (both are pid 1). */
const processOf = (s: { pid?: number | null; instanceId?: string | null }) => s.instanceId ?? `pid ${s.pid}`;

async function getJson(url: string, token: string | null, timeoutMs = 2_000): Promise<unknown> {
  const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function postJson(url: string, body: unknown, token: string | null, timeoutMs = 30_000): Promise<{ status: number; body: any }> {
  const res = await request(url, {
    method: 'POST', body: JSON.stringify(body), headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  const text = await res.body.text();
  let parsed: unknown = null;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.statusCode, body: parsed };
}

/** Counters of the aggregator's ingest router, from its Prometheus text. */
async function routerCounters(aggregatorUrl: string, token: string | null): Promise<{ rows: number; accepted: number; failed: number; tries: number; batches: number }> {
  const res = await request(`${aggregatorUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.body.text();
  const value = (re: RegExp) => { const m = re.exec(text); return m ? Number(m[1]) : 0; };
  return {
    rows: value(/^shoal_ingest_rows_total(?:\{[^}]*\})? (\S+)$/m),
    accepted: value(/^shoal_ingest_batches_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$/m),
    failed: value(/^shoal_ingest_batches_total\{[^}]*outcome="failed"[^}]*\} (\S+)$/m),
    tries: value(/^shoal_ingest_tries_sum(?:\{[^}]*\})? (\S+)$/m),
    batches: value(/^shoal_ingest_tries_count(?:\{[^}]*\})? (\S+)$/m),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How often a roll asks again while it waits for a leaf that is down or unhealthy. */
const ROLL_WAIT_POLL_MS = 200;
/** How often a roll asks whether a restarted leaf serves again, and then whether the aggregator
 * counts it healthy (a leaf with --join tells the aggregator itself the moment it serves: the
 * roll only has to see it). Small, cheap calls on a handful of leaves at a time. */
const SUCCESSOR_POLL_MS = 20;
const HEALTHY_POLL_MS = 10;

export async function rollingRestart(o: RollOptions): Promise<RollSummary> {
  const started = Date.now();
  const agg = o.aggregatorUrl.replace(/\/$/, '');
  // The aggregator's status waits on its members: a member that hangs (kill -STOP) can make it
  // slow. Ask again, up to the leaf timeout, before giving up.
  const statusBy = Date.now() + o.leafTimeoutMs;
  let status: { role?: string; leaves?: MemberStatus[] };
  for (;;) {
    try { status = (await getJson(`${agg}/v1/status`, o.token, 5_000)) as typeof status; break; } catch (e) {
      if (Date.now() >= statusBy) throw e;
      o.onEvent({ kind: 'note', message: `waiting for the aggregator's status (${(e as Error).message})` });
      await sleep(ROLL_WAIT_POLL_MS);
    }
  }
  if (status.role !== 'aggregator' || !Array.isArray(status.leaves)) throw new Error(`${agg} is not an aggregator (shoal restart rolls the leaves of one aggregator)`);
  let members = status.leaves.filter((m) => m.role === 'leaf');
  if (members.length === 0) throw new Error('the aggregator lists no leaves');
  // A leaf that is briefly down (its own restart, a slow health check) gets the leaf timeout to
  // come back before the roll refuses to start: rolling on would lower coverage further.
  const healthyBy = Date.now() + o.leafTimeoutMs;
  for (let unhealthy = members.filter((m) => m.state !== 'healthy'); unhealthy.length > 0; unhealthy = members.filter((m) => m.state !== 'healthy')) {
    if (Date.now() >= healthyBy) throw new Error(`not every leaf is healthy after waiting ${o.leafTimeoutMs} ms (${unhealthy.map((m) => `${m.id}: ${m.state}`).join(', ')}); fix them first, a roll would lower coverage further`);
    o.onEvent({ kind: 'note', message: `waiting for ${unhealthy.map((m) => m.id).join(', ')} to be healthy before the roll starts` });
    await sleep(ROLL_WAIT_POLL_MS);
    try { members = ((await getJson(`${agg}/v1/status`, o.token, 5_000)) as { leaves: MemberStatus[] }).leaves.filter((m) => m.role === 'leaf'); } catch { /* busy: ask again */ }
  }
  if (!o.byHost && !(o.batch >= 1 && o.batch <= members.length)) throw new Error(`--batch must be 1..${members.length}`);

  // The coverage probe: a cheap count over the largest table, every probeIntervalMs.
  let probeTable = o.probeTable;
  if (probeTable === null) {
    // Bounded like every call here: a hung member can slow the aggregator's answer, and the
    // roll goes on without a probe rather than stop over it.
    try {
      const tables = ((await getJson(`${agg}/v1/tables`, o.token, 10_000)) as { tables: { name: string; rows: number }[] }).tables;
      probeTable = tables.sort((a, b) => b.rows - a.rows)[0]?.name ?? null;
    } catch (e) {
      o.onEvent({ kind: 'note', message: `no coverage probe: the aggregator did not list its tables (${(e as Error).message}); pass --probe-table` });
    }
  }
  const probe = { table: probeTable, queries: 0, failed: 0, coverageMin: null as number | null };
  let probing = probeTable !== null;
  const probeLoop = (async () => {
    while (probing) {
      try {
        const r = await postJson(`${agg}/v1/query`, { sql: `SELECT count(*) FROM "${probeTable}"`, timeoutMs: 5_000 }, o.token, 10_000);
        probe.queries++;
        const pct = (r.body?.coverage?.percent ?? r.body?.error?.coverage?.percent) as number | undefined;
        if (r.status !== 200) probe.failed++;
        if (typeof pct === 'number') probe.coverageMin = probe.coverageMin === null ? pct : Math.min(probe.coverageMin, pct);
        o.onEvent({ kind: 'probe', coveragePercent: pct ?? null, error: r.status === 200 ? null : String(r.body?.error?.message ?? r.status) });
      } catch (e) {
        probe.queries++;
        probe.failed++;
        o.onEvent({ kind: 'probe', coveragePercent: null, error: (e as Error).message });
      }
      await sleep(o.probeIntervalMs);
    }
  })();

  const before = await routerCounters(agg, o.token);
  const reports: LeafReport[] = members.map((m) => ({
    id: m.id, url: m.url, phase: 'waiting', rowsBefore: m.rows ?? 0, rowsAfter: null, source: null, reason: null, restoreMs: null, downMs: null, totalMs: null,
  }));
  let error: string | null = null;
  try {
    for (const group of rollGroups(reports, o)) {
      if (error !== null) break;
      if (o.byHost) o.onEvent({ kind: 'note', message: `host ${new URL(group[0]!.url).hostname}: ${group.map((r) => r.id).join(', ')}` });
      const results = await Promise.all(group.map((r) => restartOne(r, agg, o)));
      error = results.find((e) => e !== null) ?? null;
    }
  } finally {
    probing = false;
    await probeLoop;
  }
  const after = await routerCounters(agg, o.token);
  return {
    ok: error === null,
    error,
    totalMs: Date.now() - started,
    leaves: reports,
    probe,
    writes: {
      rowsAccepted: after.rows - before.rows,
      batchesAccepted: after.accepted - before.accepted,
      retries: (after.tries - after.batches) - (before.tries - before.batches),
      failed: after.failed - before.failed,
    },
  };
}

/** The roll's groups, in order: K leaves at a time, or (byHost) every leaf of one host. */
export function rollGroups<T extends { url: string }>(leaves: readonly T[], o: { batch: number; byHost?: boolean }): T[][] {
  if (!o.byHost) {
    const groups: T[][] = [];
    for (let i = 0; i < leaves.length; i += o.batch) groups.push(leaves.slice(i, i + o.batch));
    return groups;
  }
  const byHost = new Map<string, T[]>();
  for (const l of leaves) {
    const host = new URL(l.url).hostname;
    const g = byHost.get(host);
    if (g === undefined) byHost.set(host, [l]); else g.push(l);
  }
  return [...byHost.values()];
}

/** Hands one leaf off and waits for its successor; returns an error message or null. */
async function restartOne(r: LeafReport, agg: string, o: RollOptions): Promise<string | null> {
  const emit = (phase: Phase) => { r.phase = phase; o.onEvent({ kind: 'leaf', leaf: { ...r } }); };
  const fail = (why: string) => { r.reason = why; emit('failed'); return `${r.id} (${r.url}): ${why}`; };
  // Not yet rolled, yet it may be down for a moment (restarted by someone else, overloaded):
  // wait up to the leaf timeout for it to serve, rather than stop the roll.
  let old: LeafStatus | null = null;
  let lastError = '';
  let noted = false;
  const readyBy = Date.now() + o.leafTimeoutMs;
  while (old === null) {
    try {
      const s = (await getJson(`${r.url}/v1/status`, o.token)) as LeafStatus;
      if (s.state === 'serving') { old = s; break; }
      lastError = `its state is ${s.state}`;
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() >= readyBy) return fail(`not serving before its handoff, after waiting ${o.leafTimeoutMs} ms (${lastError})`);
    if (!noted) { o.onEvent({ kind: 'note', message: `${r.id} is not serving (${lastError}); waiting up to ${o.leafTimeoutMs} ms before its handoff` }); noted = true; }
    await sleep(ROLL_WAIT_POLL_MS);
  }
  r.rowsBefore = old.rows;
  emit('handing-off');
  const t0 = Date.now();
  let res;
  try {
    res = await postJson(`${r.url}/v1/admin/handoff`, {}, o.adminToken);
  } catch (e) {
    return fail(`handoff call failed: ${(e as Error).message}`);
  }
  if (res.status !== 200) return fail(`handoff refused: HTTP ${res.status} ${res.body?.error?.message ?? ''}`);
  emit('restarting');
  // Wait for a different process serving at the same address.
  let now: LeafStatus | null = null;
  const deadline = t0 + o.leafTimeoutMs;
  while (Date.now() < deadline) {
    try {
      const s = (await getJson(`${r.url}/v1/status`, o.token, 1_000)) as LeafStatus;
      if (processOf(s) !== processOf(old) && s.state === 'serving') { now = s; break; }
    } catch { /* down while it restarts: expected */ }
    await sleep(SUCCESSOR_POLL_MS);
  }
  if (now === null) return fail(`did not come back within ${o.leafTimeoutMs} ms (is a supervisor restarting it? see its log)`);
  r.downMs = Date.now() - t0;
  r.rowsAfter = now.rows;
  r.source = now.restart.source;
  r.restoreMs = now.restart.ms;
  emit('restored');
  if (now.restart.source !== 'shm' && old.rows > 0) {
    const why = `came back from ${now.restart.source}, not shared memory (${now.restart.reason ?? 'no reason given'})`;
    if (!o.allowDisk) return fail(`${why}; rerun with --allow-disk to roll on anyway`);
    r.reason = why;
    o.onEvent({ kind: 'note', message: `${r.id}: ${why}` });
  }
  if (now.rows < old.rows) return fail(`holds ${now.rows} rows, its predecessor held ${old.rows}`);
  // Wait until the aggregator counts it healthy again, so the next group's absence is the only gap.
  while (Date.now() < deadline) {
    try {
      const st = (await getJson(`${agg}/v1/status`, o.token)) as { leaves: MemberStatus[] };
      const m = st.leaves.find((x) => x.id === r.id);
      if (m && m.state === 'healthy' && processOf(m) === processOf(now)) {
        r.totalMs = Date.now() - t0;
        emit('healthy');
        return null;
      }
    } catch { /* the aggregator may be busy: try again */ }
    await sleep(HEALTHY_POLL_MS);
  }
  return fail(`serves again but the aggregator did not mark it healthy within ${o.leafTimeoutMs} ms`);
}
