/**
 * The top-n push-down over real processes: 3 leaves and an aggregator (`npm run build` first).
 * Each leaf holds more groups than it is asked for (1,024 for LIMIT 10), so every leaf cuts.
 * Skewed counts: the cut answers are provably the answer (outcome `exact` on /metrics). Counts
 * all alike: they are not, and the aggregator asks again for every group (`refetched`). Either
 * way the answer equals the one computed here from the rows that were sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startTempCluster, type TempCluster } from './support/cluster.js';
import { mulberry32 } from './support/gen.js';
import { leafCliExists } from './support/processes.js';

const NOW = Math.floor(Date.now() / 1000);
const SEED = 4_242;
interface Row { time: number; user: string; v: number }

let cluster: TempCluster;
const sent = new Map<string, Row[]>();

/** Rows of `users` users on one leaf: Zipf counts when skewed, else every user twice. */
function leafRows(seed: number, users: number, skewed: boolean): Row[] {
  const r = mulberry32(seed);
  const out: Row[] = [];
  if (!skewed) {
    for (let u = 0; u < users; u++) for (let c = 0; c < 2; c++) out.push({ time: NOW - Math.floor(r() * 3600), user: `u${u}`, v: Math.floor(r() * 100) });
    return out;
  }
  const weights = Array.from({ length: users }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  for (let u = 0; u < users; u++) {
    // Expected count, at least 1 so every user is present: the head has thousands.
    const n = Math.max(1, Math.round((weights[u]! / total) * users * 8 * (0.8 + 0.4 * r())));
    for (let c = 0; c < n; c++) out.push({ time: NOW - Math.floor(r() * 3600), user: `u${u}`, v: Math.floor(r() * 100) });
  }
  return out;
}

async function metric(outcome: string): Promise<number> {
  const text = await (await fetch(`${cluster.aggregator.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('shoal_topn_pushdown_total{') && l.includes(`outcome="${outcome}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

function topUsers(table: string, limit: number): unknown[][] {
  const m = new Map<string, { n: number; s: number }>();
  for (const row of sent.get(table)!) {
    const s = m.get(row.user) ?? { n: 0, s: 0 };
    s.n++; s.s += row.v;
    m.set(row.user, s);
  }
  return [...m.entries()].sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1)).slice(0, limit).map(([u, s]) => [u, s.n, s.s]);
}

describe.runIf(leafCliExists())('a top-n pushed down over real leaves', () => {
  beforeAll(async () => {
    cluster = await startTempCluster('topn', 3, []);
    for (const [table, skewed] of [['skew', true], ['flat', false]] as const) {
      const all: Row[] = [];
      for (const [i, leaf] of cluster.leaves.entries()) {
        const rows = leafRows(SEED + i, 1_500 + 200 * i, skewed);
        for (let at = 0; at < rows.length; at += 5_000) {
          const a = await postJson(`${leaf.url}/v1/tables/${table}/events`, rows.slice(at, at + 5_000));
          expect(a.status, JSON.stringify(a.body)).toBe(200);
        }
        all.push(...rows);
      }
      sent.set(table, all);
    }
  }, 60_000);
  afterAll(async () => { await cluster?.close(); });

  it('answers from the cut groups when the counts are skewed', async () => {
    const before = await metric('exact');
    const a = await postJson(`${cluster.aggregator.url}/v1/query`, { sql: 'SELECT user, count(*) AS n, sum(v) AS s FROM skew GROUP BY user ORDER BY n DESC, user LIMIT 10' });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.rows).toEqual(topUsers('skew', 10));
    expect(a.body.coverage.percent).toBe(100);
    expect(a.body.coverage.rowsScanned, 'every row counted once').toBe(sent.get('skew')!.length);
    expect(await metric('exact')).toBe(before + 1);
  });

  it('asks again for every group when the counts are alike', async () => {
    const before = await metric('refetched');
    const a = await postJson(`${cluster.aggregator.url}/v1/query`, { sql: 'SELECT user, count(*) AS n, sum(v) AS s FROM flat GROUP BY user ORDER BY n DESC, user LIMIT 10' });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.rows).toEqual(topUsers('flat', 10));
    expect(a.body.coverage.rowsScanned, 'the second answers replace the first').toBe(sent.get('flat')!.length);
    expect(await metric('refetched')).toBe(before + 1);
  });

  it('pushes the top-n of a subquery down too', async () => {
    const before = await metric('exact');
    const a = await postJson(`${cluster.aggregator.url}/v1/query`, { sql: 'SELECT user, n FROM (SELECT user, count(*) AS n FROM skew GROUP BY user ORDER BY n DESC, user LIMIT 5) ORDER BY user' });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.rows).toEqual(topUsers('skew', 5).map((r) => [r[0], r[1]]).sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)));
    expect(await metric('exact')).toBe(before + 1);
  });
});
