/**
 * Retention (issue 7): a leaf over its memory budget drops its oldest sealed blocks, counts them,
 * and shows them in status and metrics; a table's maximum age drops blocks whose newest row is
 * older than it. What stays is exactly the newest data (checked against the rows sent).
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../query/limits.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';

const ROWS = LIMITS.blockRowsMax;

function batch(start: number, n: number) {
  return JSON.stringify(Array.from({ length: n }, (_, i) => ({ time: 1_700_000_000 + start + i, v: start + i, s: `k${(start + i) % 50}` })));
}

describe('retention', () => {
  it('drops the oldest sealed blocks past the memory budget and counts them', async () => {
    const L = await inProcessLeaf({ memoryBudgetBytes: 2 * 1024 * 1024 });
    try {
      // Five full blocks of ~0.5-1 MB each: more than the 2 MiB budget holds.
      for (let b = 0; b < 5; b++) {
        for (let off = 0; off < ROWS; off += 16_384) expect((await L.ingest('t', batch(b * ROWS + off, 16_384))).status).toBe(200);
      }
      const st = L.leaf.status();
      expect(st.bytes).toBeLessThanOrEqual(st.memoryBudgetBytes);
      expect(st.evicted.rows).toBeGreaterThan(0);
      expect(st.evicted.rows % ROWS).toBe(0);
      expect(st.rows + st.evicted.rows).toBe(5 * ROWS);
      // What is left is the newest rows, contiguous up to the last one sent.
      const r = await L.query('SELECT count(*), min(v), max(v) FROM t');
      const kept = r.json.rows[0][0];
      expect(r.json.rows).toEqual([[kept, 5 * ROWS - kept, 5 * ROWS - 1]]);
      const metrics = await L.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(new RegExp(`shoal_evicted_rows\\{role="leaf"\\} ${st.evicted.rows}`));
      expect(metrics.body).toMatch(new RegExp(`shoal_rows\\{role="leaf"\\} ${st.rows}`));
    } finally {
      await L.close();
    }
  });

  it('drops sealed blocks older than the maximum age', async () => {
    const L = await inProcessLeaf({ retentionSeconds: 3600 });
    try {
      const now = Math.floor(Date.now() / 1000);
      const old = Array.from({ length: ROWS }, (_, i) => ({ time: now - 86_400 + i % 100, v: 1 }));
      const fresh = Array.from({ length: ROWS }, (_, i) => ({ time: now - 60 + (i % 50), v: 2 }));
      for (const events of [old, fresh]) {
        for (let off = 0; off < ROWS; off += 16_384) await L.ingest('aged', JSON.stringify(events.slice(off, off + 16_384)));
      }
      L.leaf.store.enforceRetention(Date.now() / 1000);
      const r = await L.query('SELECT count(*), min(v), max(v) FROM aged');
      expect(r.json.rows).toEqual([[ROWS, 2, 2]]);
      expect(L.leaf.status().evicted.rows).toBe(ROWS);
    } finally {
      await L.close();
    }
  });
});
