/**
 * Property (STYLE rule 15): for every aggregate, merging the partial states of a random split of
 * the rows equals the state of all rows. Seeded; the seed is printed on failure. The split
 * crosses both worker tasks (blocks scanned separately) and leaves (tables built from disjoint
 * row subsets), which are the two places shoal merges. Blocks are sealed (as a leaf seals them
 * before handing them to its worker pool), and every partial crosses the wire as a leaf sends it:
 * JSON.stringify on the leaf, JSON.parse on the aggregator.
 */
import { describe, expect, it } from 'vitest';
import { bindQuery, finish, mergePartials, partialFromWire, partialToWire, planQuery, PLAN_VERSION, scanBlocks, type Partial } from '../query/engine.js';
import type { LogicalPlan } from '../query/plan/plan.js';
import { buildBatch } from '../query/storage/ingest-decoder.js';
import { Table } from '../query/storage/table.js';
import { mulberry32 } from './support/gen.js';

const NOW = 1_700_000_000;

function makeRows(seed: number, n: number): Record<string, unknown>[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({
    time: NOW - Math.floor(r() * 86_400 * 3),
    g: ['a', 'b', 'c', 'd'][Math.floor(r() * 4)],
    h: r() < 0.1 ? null : Math.floor(r() * 5),
    x: r() < 0.05 ? null : Math.round((r() * 2000 - 1000) * 1000) / 1000,
    k: Math.floor(r() * 300),
    s: r() < 0.1 ? null : `u${Math.floor(r() * 2000)}`,
    id: i,
  }));
}

/** A table whose rows are in sealed blocks of `chunk` rows (the last one, too). */
function tableOf(rows: Record<string, unknown>[], chunk: number): Table {
  const t = new Table('t');
  for (let i = 0; i < rows.length; i += chunk) {
    t.append(buildBatch(rows.slice(i, i + chunk), t.schema, NOW));
    t.sealOpen();
  }
  return t;
}

/** A partial as the aggregator receives it: encoded for protocol `v` (typed arrays as base64,
 * or version 2's one object per group), sent as JSON (fastify's reply.send), checked and decoded. */
function overTheWire(plan: LogicalPlan, partial: Partial, v = PLAN_VERSION): Partial {
  const text = JSON.stringify({ partial: partialToWire(partial, plan, v) });
  const got = partialFromWire((JSON.parse(text) as { partial: unknown }).partial, plan, v);
  if ('error' in got) throw new Error(got.error);
  return got.ok;
}

const QUERIES = [
  'SELECT count(*), count(x), sum(x), avg(x), min(x), max(x), min(s), max(s) FROM t',
  'SELECT g, count(*), sum(k), avg(x), min(x), max(k) FROM t GROUP BY g',
  'SELECT g, h, count(DISTINCT s), count(DISTINCT k), approx_count_distinct(s), approx_count_distinct(k) FROM t GROUP BY g, h',
  'SELECT g, p50(x), p90(x), p99(k), approx_quantile(x, 0.25) FROM t GROUP BY g',
  "SELECT time_bucket(INTERVAL '6 hours', time) AS b, count(*), sum(x) FROM t WHERE x > 0 GROUP BY b",
  'SELECT h, sum(x) / count(*) AS r, max(x) - min(x) FROM t GROUP BY h HAVING count(*) > 10',
];

function close(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return a === b;
}

function sortRows(rows: unknown[][]): unknown[][] {
  return [...rows].sort((p, q) => JSON.stringify(p.map((v) => (typeof v === 'number' ? 0 : v))).localeCompare(JSON.stringify(q.map((v) => (typeof v === 'number' ? 0 : v)))) || JSON.stringify(p).localeCompare(JSON.stringify(q)));
}

describe('merging partial aggregate states', () => {
  for (const seed of [1, 7, 42, 1234, 99_991]) {
    it(`equals the direct result for a random split (seed ${seed})`, () => {
      const rows = makeRows(seed, 5_000);
      const r = mulberry32(seed ^ 0x5bd1e995);
      // A random split into 2..5 parts, each part its own "leaf" table.
      const parts = 2 + Math.floor(r() * 4);
      const buckets: Record<string, unknown>[][] = Array.from({ length: parts }, () => []);
      for (const row of rows) buckets[Math.floor(r() * parts)]!.push(row);
      const whole = tableOf(rows, 5_000);
      const pieces = buckets.map((b) => tableOf(b, 97));
      for (const sql of QUERIES) {
        const plan = planQuery(sql, NOW);
        const direct = finish(plan, mergePartials(plan, [scanBlocks(bindQuery(plan, whole.schema, NOW, false), whole.blocks())]));
        // Each piece scanned block by block (as worker tasks would), then merged as leaves.
        const partials = pieces.flatMap((t) => t.blocks().map((b) => scanBlocks(bindQuery(plan, t.schema, NOW, true), [b])));
        expect(pieces.every((t) => t.open.rowCount === 0 && t.sealed.length > 1), 'every piece is in several sealed blocks').toBe(true);
        // Two "leaves" merge their blocks' partials; the aggregator merges what they send.
        // Leaf B speaks protocol 2 (older code mid-roll): its answer must merge the same.
        const leafA = overTheWire(plan, mergePartials(plan, partials.slice(0, 1).map((p) => overTheWire(plan, p))));
        const leafB = overTheWire(plan, mergePartials(plan, partials.slice(1).map((p) => overTheWire(plan, p, 2))), 2);
        const merged = finish(plan, mergePartials(plan, [leafA, leafB]));
        const a = sortRows(direct.rows);
        const b = sortRows(merged.rows);
        expect(b.length, `seed ${seed}: ${sql}`).toBe(a.length);
        for (let i = 0; i < a.length; i++) {
          const same = a[i]!.every((v, j) => close(v, b[i]![j]));
          expect(same, `seed ${seed}: ${sql}\n direct ${JSON.stringify(a[i])}\n merged ${JSON.stringify(b[i])}`).toBe(true);
        }
      }
    });
  }
});
