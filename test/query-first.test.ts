/**
 * Queries first (server/leaf/query-first.ts): an ingest batch waits while a query runs and for
 * the grace after it, never longer than the bound; off when the bound is 0.
 */
import { describe, expect, it } from 'vitest';
import { QueryFirst } from '../server/leaf/query-first.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QueryFirst', () => {
  it('lets a batch through at once when no query runs', () => {
    const q = new QueryFirst(5, 250);
    expect(q.pass()).toBeNull();
  });

  it('holds a batch while a query runs and releases it after the grace', async () => {
    const q = new QueryFirst(20, 5_000);
    q.queryBegin();
    const p = q.pass();
    expect(p).not.toBeNull();
    let released = false;
    void p!.then(() => { released = true; });
    await sleep(40);
    expect(released).toBe(false);
    expect(q.waitingNow).toBe(1);
    const ended = performance.now();
    q.queryEnd();
    // Within the grace a new batch waits too.
    const p2 = q.pass();
    expect(p2).not.toBeNull();
    await Promise.all([p, p2]);
    expect(performance.now() - ended).toBeGreaterThanOrEqual(18);
    expect(released).toBe(true);
    expect(q.batchesWaited).toBe(2);
    expect(q.waitedMs).toBeGreaterThan(40);
    expect(q.pass()).toBeNull();
  });

  it('never holds a batch longer than the bound, even under queries that never end', async () => {
    const q = new QueryFirst(5, 60);
    q.queryBegin();
    const t0 = performance.now();
    await q.pass();
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(1_000);
    expect(q.waitingNow).toBe(0);
  });

  it('a query that starts during the grace keeps the batches waiting', async () => {
    const q = new QueryFirst(30, 5_000);
    q.queryBegin();
    const p = q.pass()!;
    let released = false;
    void p.then(() => { released = true; });
    q.queryEnd();
    await sleep(10);
    q.queryBegin();
    await sleep(60);
    expect(released).toBe(false);
    q.queryEnd();
    await p;
    expect(released).toBe(true);
  });

  it('is off with a bound of 0', () => {
    const q = new QueryFirst(5, 0);
    q.queryBegin();
    expect(q.pass()).toBeNull();
  });
});
