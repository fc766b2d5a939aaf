/**
 * Groups are bounded by memory, not by a count: a top-10 over 1.33M (url, country) groups (the
 * case that failed with SHOAL_ERR_QUERY_GROUP_LIMIT at the old 1M-group limit) answers, checked
 * against counts computed here; and a grouping past the memory budget is refused with the figure.
 */
import { describe, expect, it } from 'vitest';
import { bindQuery, finish, mergePartials, planQuery, scanBlocks } from '../../query/engine.js';
import { GroupBudget } from '../../query/exec/group-key.js';
import { LeafStore } from '../../query/storage/leaf-store.js';
import { mulberry32 } from '../support/gen.js';

const SEED = Number(process.env.SHOAL_SEED ?? 20261201);

describe(`groups bounded by memory (seed ${SEED})`, () => {
  it('a top-10 over 1.33M (url, country) groups answers', () => {
    const rnd = mulberry32(SEED);
    const store = new LeafStore(16 * 2 ** 30, 0);
    const counts = new Map<string, number>();
    const N = 1_400_000;
    for (let i = 0; i < N; i += 50_000) {
      const lines: string[] = [];
      for (let j = i; j < Math.min(N, i + 50_000); j++) {
        // Most (url, country) pairs once; a few hot pages many times, so the top 10 is decided.
        const hot = rnd() < 0.05;
        const url = hot ? `/hot/${Math.floor(rnd() * 40)}` : `/p/${j}`;
        const country = hot ? 'us' : `c${j % 50}`;
        counts.set(`${url}\u0000${country}`, (counts.get(`${url}\u0000${country}`) ?? 0) + 1);
        lines.push(JSON.stringify({ time: 1_790_000_000 + (j % 86_400), url, country }));
      }
      store.ingest({ table: 'hits', nowSeconds: 1_790_000_000, format: 'ndjson', body: Buffer.from(lines.join('\n')), batchId: null }, null);
    }
    expect(counts.size).toBeGreaterThanOrEqual(1_320_000);
    const table = store.tables.get('hits')!;
    const plan = planQuery('SELECT url, country, count(*) AS n FROM hits GROUP BY url, country ORDER BY n DESC, url LIMIT 10', 1_790_000_000);
    const bound = bindQuery(plan, table.schema, 1_790_000_000, false);
    const part = scanBlocks(bound, [...table.sealed, table.open]);
    const result = finish(plan, mergePartials(plan, [part]));
    const want = [...counts].map(([k, n]) => [...k.split('\u0000'), n] as [string, string, number])
      .sort((a, b) => b[2] - a[2] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, 10);
    expect(result.rows).toEqual(want);
  });

  it('a grouping past its memory budget is refused with the figure', () => {
    const budget = new GroupBudget(1, 1024 * 1024);
    let err: unknown = null;
    try { for (let g = 0; g < 100_000; g++) budget.add([`/p/${g}`, 'us'], g + 1); } catch (e) { err = e; }
    expect((err as { code?: string }).code).toBe('SHOAL_ERR_QUERY_GROUP_LIMIT');
    expect((err as Error).message).toMatch(/more than 1 MiB of memory \(\d+ groups, about 1 MiB\)/);
  });
});
