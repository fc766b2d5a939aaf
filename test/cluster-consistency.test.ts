/**
 * "No silent wrong answers" across a cluster, with real processes (`npm run build` first):
 *
 * 1. One schema per cluster: a column the cluster knows as int refuses a string through the
 *    router (400, both types named), even on a leaf that has never seen the column; two leaves
 *    that learned different types behind the router's back make a query that uses the column
 *    fail with SHOAL_ERR_QUERY_SCHEMA_CONFLICT (409), not answer with both 200 and "200".
 * 2. No duplicates from a hung leaf: a leaf SIGSTOPped while batches are routed to it, then
 *    resumed, stores none of the batches the router placed elsewhere in the meantime; the
 *    cluster holds exactly the rows sent.
 * 3. Honest coverage of evictions: a leaf whose memory budget dropped rows reports them, and the
 *    coverage (through the aggregator, and from the leaf directly) is below 100 and names it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, postJson, sleep, startAggregator, startClusterLeaf, waitFor, writeClusterFile, type ShoalProcess } from './support/cluster.js';
import { leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';
import { LIMITS } from '../query/limits.js';
import { Table } from '../query/storage/table.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-consistency-'));
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function cluster(name: string, leafArgs: readonly string[][], aggArgs: readonly string[] = []) {
  const leaves: LeafProcess[] = [];
  for (let i = 0; i < leafArgs.length; i++) {
    const extraArgs = leafArgs[i]!;
    const leaf = extraArgs.length === 0
      ? await startClusterLeaf(join(dir, `${name}-leaf-${i + 1}`), `${name}-${i + 1}`)
      : await startLeaf({ dataDir: join(dir, `${name}-leaf-${i + 1}`), args: ['--id', `${name}-${i + 1}`, '--workers', '1', '--no-shm', '--log-level', 'warn', ...extraArgs] });
    cleanup.push(() => leaf.stop({ signal: 'SIGKILL' }));
    leaves.push(leaf);
  }
  const file = writeClusterFile(dir, `${name}.json`, leaves.map((l, i) => ({ id: `leaf-${i + 1}`, url: l.url })));
  const agg: ShoalProcess = await startAggregator(file, aggArgs);
  cleanup.push(() => agg.stop({ signal: 'SIGKILL' }));
  await waitFor('every member healthy', async () => {
    const s = await getJson(`${agg.url}/v1/status`);
    return s.body.membersHealthy === leaves.length ? true : undefined;
  });
  return { leaves, agg };
}

const query = (url: string, sql: string) => postJson(`${url}/v1/query`, { sql });

describe.skipIf(!leafCliExists())('one schema per cluster', () => {
  it('refuses through the router a type the cluster already has otherwise, naming both types', async () => {
    const { leaves, agg } = await cluster('schema', [[], []]);
    const first = await postJson(`${agg.url}/v1/tables/t/events`, [{ time: 1_700_000_000, status: 200 }]);
    expect(first.status).toBe(200);
    const holder = first.body.leaf as string;
    // The router learns the column from the holder's next status (every 250 ms), the one that
    // also brings the holder's row count.
    await waitFor('the holder\'s status to reach the aggregator', async () => {
      const s = await getJson(`${agg.url}/v1/status`);
      return s.body.tables?.t?.rows === 1 ? true : undefined;
    });
    // With two leaves the router sends each batch to the freer one: the one without the column.
    for (let i = 0; i < 4; i++) {
      const r = await postJson(`${agg.url}/v1/tables/t/events`, [{ time: 1_700_000_001, status: '200' }]);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.code).toBe('SHOAL_ERR_INGEST_TYPE_CONFLICT');
      expect(r.body.error.column).toBe('status');
      expect(r.body.error.message).toMatch(/string/);
      expect(r.body.error.message).toMatch(/int/);
    }
    // int and float are one family: a float is accepted anywhere and widens the column.
    const f = await postJson(`${agg.url}/v1/tables/t/events`, [{ time: 1_700_000_002, status: 200.5 }]);
    expect(f.status, JSON.stringify(f.body)).toBe(200);
    expect(f.body.leaf).not.toBe(holder);
    // Nothing of the refused batches is anywhere: no leaf holds a string status.
    const other = leaves[holder === 'leaf-1' ? 1 : 0]!;
    const cols = await getJson(`${other.url}/v1/tables/t`);
    expect(cols.body.columns.find((c: { name: string }) => c.name === 'status').type).toBe('float');
    const q = await query(agg.url, 'SELECT status, count(*) AS n FROM t GROUP BY status ORDER BY status');
    expect(q.status, JSON.stringify(q.body)).toBe(200);
    expect(q.body.rows).toEqual([[200, 1], [200.5, 1]]);
  }, 30_000);

  it('refuses a query over a column two leaves learned with different types (409, not partial coverage)', async () => {
    const { leaves, agg } = await cluster('race', [[], []]);
    // Behind the router's back, at the same moment: what two aggregators (or one before the
    // statuses came in) can do.
    const [a, b] = await Promise.all([
      postJson(`${leaves[0]!.url}/v1/tables/t/events`, [{ time: 1_700_000_000, status: 200, n: 1 }]),
      postJson(`${leaves[1]!.url}/v1/tables/t/events`, [{ time: 1_700_000_000, status: '200', n: 2 }]),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const grouped = await query(agg.url, 'SELECT status, count(*) FROM t GROUP BY status');
    expect(grouped.status, JSON.stringify(grouped.body)).toBe(409);
    expect(grouped.body.error.code).toBe('SHOAL_ERR_QUERY_SCHEMA_CONFLICT');
    expect(grouped.body.error.column).toBe('status');
    expect(grouped.body.error.types).toEqual({ int: ['leaf-1'], string: ['leaf-2'] });
    expect(grouped.body.error.message).toMatch(/int on leaf-1 and string on leaf-2/);
    // A type error on one leaf is the same conflict, not a missing leaf.
    const filtered = await query(agg.url, 'SELECT count(*) FROM t WHERE status = 200');
    expect(filtered.status, JSON.stringify(filtered.body)).toBe(409);
    // Queries that do not touch the column still answer, in full.
    const other = await query(agg.url, 'SELECT count(*), sum(n) FROM t');
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    expect(other.body.rows).toEqual([[2, 3]]);
    expect(other.body.coverage.percent).toBe(100);
  }, 30_000);
});

describe.skipIf(!leafCliExists())('no duplicates from a hung leaf', () => {
  it('stores every batch exactly once when a leaf hangs past the router timeout and resumes', async () => {
    const INGEST_TIMEOUT_MS = 400;
    const { leaves, agg } = await cluster('hang', [[], []], ['--ingest-timeout', String(INGEST_TIMEOUT_MS)]);
    const hung = leaves[0]!;
    const BATCHES = 8;
    const ROWS = 50;
    let id = 0;
    const batch = () => Array.from({ length: ROWS }, () => ({ time: 1_700_000_000, id: id++ }));
    hung.process.kill('SIGSTOP');
    let resumed = false;
    cleanup.push(async () => { if (!resumed) hung.process.kill('SIGCONT'); });
    try {
      // Sent while the aggregator still thinks the stopped leaf is healthy: about half go there.
      const answers = await Promise.all(Array.from({ length: BATCHES }, () => postJson(`${agg.url}/v1/tables/t/events`, batch())));
      for (const a of answers) {
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        expect(a.body.leaf, JSON.stringify(answers.map((x) => x.body))).toBe('leaf-2');
      }
    } finally {
      hung.process.kill('SIGCONT');
      resumed = true;
    }
    // The resumed leaf now reads the requests it was sent while stopped, and must refuse them.
    await waitFor('the resumed leaf to be healthy again', async () => {
      const s = await getJson(`${agg.url}/v1/status`);
      return s.body.membersHealthy === 2 ? true : undefined;
    });
    await sleep(300);
    const direct = await query(hung.url, 'SELECT count(*) FROM t');
    // The table may not even exist there: every batch it got arrived past its deadline.
    if (direct.status === 200) expect(direct.body.rows).toEqual([[0]]);
    else expect(direct.body.error.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_TABLE');
    const total = await query(agg.url, 'SELECT count(*), count(DISTINCT id) FROM t');
    expect(total.status, JSON.stringify(total.body)).toBe(200);
    expect(total.body.rows).toEqual([[BATCHES * ROWS, BATCHES * ROWS]]);
    expect(total.body.coverage.percent).toBe(100);
  }, 30_000);
});

describe('eviction log', () => {
  it('stays bounded, merging the oldest ranges, and counts rows by time range', () => {
    const t = new Table('t');
    const entries = LIMITS.evictionRangesPerTableMax * 3;
    for (let i = entries - 1; i >= 0; i--) t.noteEviction({ timeMin: i * 100, timeMax: i * 100 + 99, rowCount: 10 });
    expect(t.evictionLog.length).toBe(LIMITS.evictionRangesPerTableMax);
    expect(t.evictedRowsIn(-Infinity, Infinity)).toBe(entries * 10);
    // The newest ranges are kept exact; a range that only half overlaps counts half, rounded up.
    const last = (entries - 1) * 100;
    expect(t.evictedRowsIn(last, last + 99)).toBe(10);
    expect(t.evictedRowsIn(last + 50, Infinity)).toBe(5);
    expect(t.evictedRowsIn(entries * 100, Infinity)).toBe(0);
  });
});

describe.skipIf(!leafCliExists())('coverage counts evicted rows', () => {
  it('reports rows dropped by the memory budget as missing, naming the leaf', async () => {
    const { leaves, agg } = await cluster('evict', [['--memory-budget', '16MiB', '--no-disk-log'], []]);
    const small = leaves[0]!;
    // Four full blocks (65,536 rows, ~7 MB of distinct strings each) into a 16 MiB budget: the
    // oldest blocks go. Each block covers its own day.
    const ROWS = 65_536;
    const DAY = 86_400;
    const base = 1_700_000_000;
    let sent = 0;
    for (let k = 0; k < 4; k++) {
      const lines: string[] = [];
      for (let i = 0; i < ROWS; i++) lines.push(JSON.stringify({ time: base + k * DAY + (i % DAY), s: `${k}-${i}-${'x'.repeat(90)}` }));
      const r = await fetch(`${small.url}/v1/tables/t/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
      expect(r.status, await r.clone().text()).toBe(200);
      sent += ROWS;
    }
    const status = await getJson(`${small.url}/v1/status`);
    const evicted = status.body.evicted.rows as number;
    expect(evicted).toBeGreaterThan(0);

    const all = await query(agg.url, 'SELECT count(*) FROM t');
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body.rows).toEqual([[sent - evicted]]);
    const c = all.body.coverage;
    expect(c.rowsEvicted).toBe(evicted);
    expect(c.rowsExpected).toBe(sent);
    expect(c.percent).toBeLessThan(100);
    expect(c.percent).toBe(Math.floor((10_000 * (sent - evicted)) / sent) / 100);
    expect(c.notes).toEqual([{ leaf: 'leaf-1', reason: `${evicted} rows evicted by the memory budget inside the queried time range` }]);

    // The same from the leaf itself.
    const direct = await query(small.url, 'SELECT count(*) FROM t');
    expect(direct.body.coverage.percent).toBe(c.percent);
    expect(direct.body.coverage.rowsEvicted).toBe(evicted);

    // A time range the evictions do not touch (the newest day) is complete.
    const newest = await query(agg.url, `SELECT count(*) FROM t WHERE time >= ${base + 3 * DAY}`);
    expect(newest.body.rows).toEqual([[ROWS]]);
    expect(newest.body.coverage.percent).toBe(100);
    expect(newest.body.coverage.rowsEvicted).toBe(0);
    // The oldest day only: its rows are all gone, and the coverage says so.
    const oldest = await query(agg.url, `SELECT count(*) FROM t WHERE time < ${base + DAY}`);
    expect(oldest.body.rows).toEqual([[0]]);
    expect(oldest.body.coverage.rowsEvicted).toBe(ROWS);
    expect(oldest.body.coverage.percent).toBeLessThan(100);
  }, 40_000);
});
