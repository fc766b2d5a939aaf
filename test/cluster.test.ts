/**
 * The cluster with real processes on loopback: 4 leaves and an aggregator (`node dist/server/cli/
 * cli.js`, so `npm run build` first). Ingest goes through the router; answers are checked
 * against DuckDB over the same rows; then a leaf is SIGKILLed (coverage, minCoverage, ingest
 * with no client error), restarted (coverage back to 100), a hung leaf costs at most the leaf
 * timeout, and a two-level aggregator tree answers as one level does.
 *
 * The tests run in order and share the cluster. Data is small (5,000 rows) so the file takes
 * well under a minute on 2 cores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson, portOf, postJson, runCli, startAggregator, startClusterLeaf, startHangingServer, waitFor, writeClusterFile,
  type ShoalProcess,
} from './support/cluster.js';
import { compareResults } from './support/compare.js';
import { openDuckDb, type ResultSet } from './support/duckdb.js';
import { EVENT_SCHEMA, generateEvents, type Event } from './support/gen.js';
import { leafCliExists, type LeafProcess } from './support/processes.js';

const SEED = 3_003;
const NOW_SECONDS = 1_700_000_040;
const FIRST_ROWS = 4_000;
const LATER_ROWS = 1_000;
const BATCH_ROWS = 100;
const LEAF_TIMEOUT_MS = 1_000;

const GROUPED_SQL = 'SELECT service, count(*) AS n, sum(bytes) AS total_bytes, min(latency_ms) AS lo, max(latency_ms) AS hi, avg(latency_ms) AS mean ' +
  'FROM events GROUP BY service ORDER BY service';
const SERIES_SQL = "SELECT time_bucket(INTERVAL '1 day', time) AS day, count(*) AS n, sum(bytes) AS b FROM events WHERE status >= 400 GROUP BY day ORDER BY day";

interface Placed { events: Event[]; leaf: string }

const events = generateEvents(SEED, FIRST_ROWS + LATER_ROWS, { nowSeconds: NOW_SECONDS });
const dir = mkdtempSync(join(tmpdir(), 'shoal-cluster-'));
const leafIds = [1, 2, 3, 4].map((i) => `leaf-${i}`);
const leaves = new Map<string, LeafProcess>();
/** Stops or closes whatever a test started beyond the 4 leaves and the aggregator. */
const extra: (() => Promise<unknown>)[] = [];
let agg: ShoalProcess;
const placed: Placed[] = [];

async function ingestThrough(url: string, rows: Event[]): Promise<void> {
  const batches: Event[][] = [];
  for (let i = 0; i < rows.length; i += BATCH_ROWS) batches.push(rows.slice(i, i + BATCH_ROWS));
  // A few batches in flight at once, as a real client would send them.
  for (let i = 0; i < batches.length; i += 4) {
    const answers = await Promise.all(batches.slice(i, i + 4).map((b) => postJson(`${url}/v1/tables/events/events`, b)));
    answers.forEach((a, k) => {
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body.accepted).toBe(batches[i + k]!.length);
      placed.push({ events: batches[i + k]!, leaf: a.body.leaf });
    });
  }
}

async function leafRows(id: string): Promise<number> {
  return (await getJson(`${leaves.get(id)!.url}/v1/status`)).body.rows as number;
}

async function expectLikeDuckDb(url: string, sql: string, rows: Event[]): Promise<any> {
  const answer = await postJson(`${url}/v1/query`, { sql });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  const duck = await openDuckDb(rows as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
  try {
    const expected = await duck.query(sql);
    const outcome = compareResults(answer.body as ResultSet, expected, { ordered: true, orderKeys: [0] });
    expect(outcome.ok, outcome.ok ? '' : outcome.message).toBe(true);
  } finally {
    await duck.close();
  }
  return answer.body;
}

/** Waits until the aggregator at `url` reports `id` in state `state`. */
function memberState(url: string, id: string, state: string) {
  return waitFor(`${id} ${state} at ${url}`, async () => {
    const s = (await getJson(`${url}/v1/status`)).body;
    const m = s.leaves.find((l: { id: string }) => l.id === id);
    return m?.state === state ? m : undefined;
  });
}

beforeAll(async () => {
  if (!leafCliExists()) throw new Error('dist/server/cli/cli.js is missing: run `npm run build` first');
  const started = await Promise.all(leafIds.map((id) => startClusterLeaf(join(dir, id), id)));
  started.forEach((l, i) => leaves.set(leafIds[i]!, l));
  const file = writeClusterFile(dir, 'cluster.json', leafIds.map((id) => ({ id, url: leaves.get(id)!.url })));
  agg = await startAggregator(file, ['--leaf-timeout', String(LEAF_TIMEOUT_MS), '--id', 'top']);
  for (const id of leafIds) await memberState(agg.url, id, 'healthy');
});

afterAll(async () => {
  await Promise.allSettled([agg?.stop(), ...extra.map((stop) => stop()), ...[...leaves.values()].map((l) => l.stop({ timeoutMs: 5_000 }))]);
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster over 4 leaves', () => {
  it('spreads routed batches over every leaf and answers like DuckDB', async () => {
    await ingestThrough(agg.url, events.slice(0, FIRST_ROWS));
    const counts = await Promise.all(leafIds.map(leafRows));
    for (const c of counts) expect(c).toBeGreaterThan(0);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(FIRST_ROWS);
    for (const id of leafIds) {
      expect(await leafRows(id)).toBe(placed.filter((p) => p.leaf === id).reduce((n, p) => n + p.events.length, 0));
    }
    const body = await expectLikeDuckDb(agg.url, GROUPED_SQL, events.slice(0, FIRST_ROWS));
    expect(body.coverage).toMatchObject({ percent: 100, leavesQueried: 4, leavesResponded: 4, rowsExpected: FIRST_ROWS, rowsScanned: FIRST_ROWS, failures: [] });
    await expectLikeDuckDb(agg.url, SERIES_SQL, events.slice(0, FIRST_ROWS));

    const tables = (await getJson(`${agg.url}/v1/tables`)).body;
    expect(tables.tables).toEqual([expect.objectContaining({ name: 'events', rows: FIRST_ROWS })]);
    const table = (await getJson(`${agg.url}/v1/tables/events`)).body;
    expect(table.rows).toBe(FIRST_ROWS);
    expect(table.columns.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['time', 'service', 'latency_ms']));
  });

  it('reports query errors as errors, not as coverage', async () => {
    const parse = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(* FROM events' });
    expect([parse.status, parse.body.error.code]).toEqual([400, 'SHOAL_ERR_QUERY_PARSE']);
    const table = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*) FROM nope' });
    expect([table.status, table.body.error.code]).toEqual([404, 'SHOAL_ERR_QUERY_UNKNOWN_TABLE']);
    const column = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT sum(nope) FROM events' });
    expect([column.status, column.body.error.code]).toEqual([400, 'SHOAL_ERR_QUERY_UNKNOWN_COLUMN']);
  });

  it('keeps ingesting and answers with honest coverage after a leaf is SIGKILLed', async () => {
    const victim = 'leaf-2';
    const victimRows = await leafRows(victim);
    // The aggregator knows the victim's current count (from the last query and status poll).
    await waitFor('aggregator to know leaf-2 rows', async () => {
      const m = (await getJson(`${agg.url}/v1/status`)).body.leaves.find((l: { id: string }) => l.id === victim);
      return m.rows === victimRows ? true : undefined;
    });
    await leaves.get(victim)!.stop({ signal: 'SIGKILL' });

    const before = placed.length;
    await ingestThrough(agg.url, events.slice(FIRST_ROWS));
    expect(placed.slice(before).every((p) => p.leaf !== victim)).toBe(true);

    const total = FIRST_ROWS + LATER_ROWS;
    const surviving = placed.filter((p) => p.leaf !== victim).flatMap((p) => p.events);
    expect(surviving.length).toBe(total - victimRows);
    const body = await expectLikeDuckDb(agg.url, GROUPED_SQL, surviving);
    const expectedPercent = Math.floor((10_000 * (total - victimRows)) / total) / 100;
    expect(body.coverage).toMatchObject({
      percent: expectedPercent, basis: 'rows', leavesQueried: 4, leavesResponded: 3, rowsExpected: total, rowsHeld: total - victimRows,
    });
    expect(body.coverage.percent).toBeLessThan(100);
    expect(body.coverage.failures).toEqual([{ leaf: victim, reason: expect.stringMatching(/connection refused|connection closed/) }]);

    const strict = await postJson(`${agg.url}/v1/query`, { sql: GROUPED_SQL, minCoverage: Math.min(100, expectedPercent + 1) });
    expect(strict.status).toBe(503);
    expect(strict.body.error.code).toBe('SHOAL_ERR_QUERY_COVERAGE');
    expect(strict.body.error.coverage).toMatchObject({ percent: expectedPercent, leavesResponded: 3 });
    const lenient = await postJson(`${agg.url}/v1/query`, { sql: GROUPED_SQL, minCoverage: expectedPercent - 1 });
    expect(lenient.status).toBe(200);

    const cliFail = await runCli(['query', '--url', agg.url, '--min-coverage', String(Math.min(100, expectedPercent + 1)), 'SELECT count(*) FROM events']);
    expect(cliFail.code).not.toBe(0);
    expect(cliFail.stderr).toContain('SHOAL_ERR_QUERY_COVERAGE');
    expect(cliFail.stderr).toContain(`missing ${victim}`);
    const cliOk = await runCli(['query', '--url', agg.url, 'SELECT count(*) FROM events']);
    expect(cliOk.code).toBe(0);
    expect(cliOk.stdout).toContain(`coverage ${expectedPercent}% (3/4 leaves`);
    expect(cliOk.stdout).toContain(`missing ${victim}`);
    const status = await runCli(['status', '--url', agg.url]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/leaf-2\s*\|\s*leaf\s*\|\s*unhealthy/);
  });

  it('returns to full coverage when the leaf is back', async () => {
    const victim = 'leaf-2';
    const port = portOf((await getJson(`${agg.url}/v1/status`)).body.leaves.find((l: { id: string }) => l.id === victim).url);
    leaves.set(victim, await startClusterLeaf(join(dir, victim), victim, port));
    await memberState(agg.url, victim, 'healthy');
    const counts = await Promise.all(leafIds.map(leafRows));
    const held = counts.reduce((a, b) => a + b, 0);
    const answer = await postJson(`${agg.url}/v1/query`, { sql: GROUPED_SQL });
    expect(answer.status).toBe(200);
    expect(answer.body.coverage).toMatchObject({ percent: 100, leavesQueried: 4, leavesResponded: 4, rowsExpected: held, failures: [] });
    const restart = (await getJson(`${leaves.get(victim)!.url}/v1/status`)).body.restart;
    if (restart.source === 'disk' || held === FIRST_ROWS + LATER_ROWS) {
      // The leaf's disk log brought its acknowledged rows back: the answer is the whole data.
      expect(held).toBe(FIRST_ROWS + LATER_ROWS);
      await expectLikeDuckDb(agg.url, GROUPED_SQL, events);
    }
  });

  it('loses at most the leaf timeout to a leaf that accepts connections and never answers', async () => {
    const hung = await startHangingServer();
    extra.push(() => hung.close());
    const members = [...leafIds.map((id) => ({ id, url: leaves.get(id)!.url })), { id: 'hung', url: hung.url }];
    const file = writeClusterFile(dir, 'cluster-hung.json', members);
    const withHung = await startAggregator(file, ['--leaf-timeout', String(LEAF_TIMEOUT_MS)]);
    extra.push(() => withHung.stop());
    const reference = (await postJson(`${agg.url}/v1/query`, { sql: GROUPED_SQL })).body;

    const first = await postJson(`${withHung.url}/v1/query`, { sql: GROUPED_SQL });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.ms).toBeLessThan(LEAF_TIMEOUT_MS + 1_500);
    expect(first.body.rows).toEqual(reference.rows);
    expect(first.body.coverage).toMatchObject({ percent: 80, basis: 'leaves', leavesQueried: 5, leavesResponded: 4 });
    expect(first.body.coverage.failures).toEqual([{ leaf: 'hung', reason: expect.stringMatching(/timeout after 1000 ms/) }]);

    // Once health checks mark it unhealthy, queries skip it and stop paying the timeout.
    await memberState(withHung.url, 'hung', 'unhealthy');
    const later = await postJson(`${withHung.url}/v1/query`, { sql: GROUPED_SQL });
    expect(later.body.coverage.failures).toEqual([{ leaf: 'hung', reason: expect.stringMatching(/^unhealthy: timeout after/) }]);
    expect(later.ms).toBeLessThan(LEAF_TIMEOUT_MS / 2);
  });

  it('answers through a two-level aggregator tree as through one level', async () => {
    const member = (id: string) => ({ id, url: leaves.get(id)!.url });
    const [left, right] = await Promise.all([
      startAggregator(writeClusterFile(dir, 'left.json', [member('leaf-1'), member('leaf-2')]), ['--id', 'left', '--leaf-timeout', String(LEAF_TIMEOUT_MS)]),
      startAggregator(writeClusterFile(dir, 'right.json', [member('leaf-3'), member('leaf-4')]), ['--id', 'right', '--leaf-timeout', String(LEAF_TIMEOUT_MS)]),
    ]);
    extra.push(() => left.stop(), () => right.stop());
    const root = await startAggregator(writeClusterFile(dir, 'root.json', [{ id: 'left', url: left.url }, { id: 'right', url: right.url }]), ['--id', 'root', '--leaf-timeout', String(2 * LEAF_TIMEOUT_MS)]);
    extra.push(() => root.stop());
    await waitFor('root to see 4 leaves', async () => {
      const s = (await getJson(`${root.url}/v1/status`)).body;
      return s.leafCount === 4 && s.membersHealthy === 2 && s.leaves.every((m: { role: string }) => m.role === 'aggregator') ? s : undefined;
    });

    const sameAnswer = async (sql: string) => {
      const [one, two] = await Promise.all([postJson(`${agg.url}/v1/query`, { sql }), postJson(`${root.url}/v1/query`, { sql })]);
      expect(two.status, JSON.stringify(two.body)).toBe(200);
      const outcome = compareResults(two.body, one.body, { ordered: true, orderKeys: [0], labels: ['tree', 'one level'] });
      expect(outcome.ok, outcome.ok ? '' : outcome.message).toBe(true);
      return [one.body.coverage, two.body.coverage];
    };
    for (const sql of [GROUPED_SQL, SERIES_SQL, 'SELECT service, p50(latency_ms) AS p, count(DISTINCT user_id) AS users FROM events GROUP BY service ORDER BY service']) {
      const [one, two] = await sameAnswer(sql);
      expect(two).toEqual(one);
    }

    // A dead leaf under the tree costs the same coverage as under one level.
    await leaves.get('leaf-4')!.stop({ signal: 'SIGKILL' });
    const [one, two] = await sameAnswer(GROUPED_SQL);
    const shape = (c: any) => ({ percent: c.percent, basis: c.basis, leavesQueried: c.leavesQueried, leavesResponded: c.leavesResponded, rowsExpected: c.rowsExpected, failed: c.failures.map((f: { leaf: string }) => f.leaf) });
    expect(shape(two)).toEqual(shape(one));
    expect(shape(one)).toMatchObject({ leavesResponded: 3, failed: ['leaf-4'] });
  });
});
