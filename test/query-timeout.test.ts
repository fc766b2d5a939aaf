/**
 * A runaway query (issue 7) is stopped at its timeout with SHOAL_ERR_QUERY_TIMEOUT, its scan
 * worker is ended and replaced, the running-queries list in status empties, and the next query
 * on the same leaf answers correctly.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inProcessLeaf } from './support/leaf-inprocess.js';

let L: Awaited<ReturnType<typeof inProcessLeaf>>;
const ROWS = 400_000;

beforeAll(async () => {
  // Scans of more than inlineScanRowsMax rows go to the worker pool, where a timeout can stop them.
  L = await inProcessLeaf({ inlineScanRowsMax: 10_000, workers: 1 });
  for (let at = 0; at < ROWS; at += 50_000) {
    const batch = Array.from({ length: 50_000 }, (_, i) => ({ time: 1_700_000_000 + at + i, s: `user-${(at + i) % 50_000}-${'x'.repeat(40)}`, v: (at + i) % 10 }));
    expect((await L.ingest('big', JSON.stringify(batch))).status).toBe(200);
  }
});
afterAll(async () => { await L.close(); });

it('stops a query at its timeout and keeps serving', async () => {
  // Exact distinct counting of 50,000 long strings per block in the worker: far more than 5 ms.
  const slow = await L.app.inject({
    method: 'POST', url: '/v1/query', headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ sql: 'SELECT v, count(DISTINCT s), approx_count_distinct(s) FROM big GROUP BY v', timeoutMs: 5 }),
  });
  expect(slow.statusCode).toBe(504);
  expect(slow.json().error.code).toBe('SHOAL_ERR_QUERY_TIMEOUT');
  expect(L.leaf.status().queriesRunning).toEqual([]);
  const ok = await L.query('SELECT count(*), sum(v) FROM big');
  const expectedSum = Array.from({ length: ROWS }, (_, i) => i % 10).reduce((a, b) => a + b, 0);
  expect(ok.json.rows).toEqual([[ROWS, expectedSum]]);
}, 60_000);

it('refuses regular expressions with nested quantifiers (exponential backtracking)', async () => {
  for (const re of ['(x+x+)+y', '(a*)*b', '(\\w+\\s?)+$', '(ab{1,3})+c']) {
    const r = await L.query(`SELECT count(*) FROM big WHERE regexp_matches(s, '${re}')`);
    expect(r.json.error?.code, re).toBe('SHOAL_ERR_QUERY_SEMANTIC');
  }
  for (const re of ['^user-1', '(ab)+c', 'x{3}$', '[a-z]+-[0-9]+']) {
    expect((await L.query(`SELECT count(*) FROM big WHERE regexp_matches(s, '${re}')`)).status, re).toBe(200);
  }
});
