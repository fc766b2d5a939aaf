/**
 * The top-n push-down (query/merge/top-cut.ts), in process: rows split over 2..5 "leaves", each
 * leaf's partial cut to its best K groups by count, sent over the wire as a leaf sends it, merged
 * as the aggregator merges. Whenever cutIsExact says the cut merge is the answer, it must equal
 * the top rows computed here from the raw rows (and the uncut merge). Seeded; the seed is in
 * every message. Shapes: Zipf (the cut is nearly always exact), uniform and all-tied counts (it
 * must not be), groups present on only some leaves, one key or two, text or integer keys.
 */
import { describe, expect, it } from 'vitest';
import { bindQuery, cutForRequest, cutIsExact, finish, mergePartials, partialFromWire, partialToWire, planQuery, PLAN_VERSION, scanBlocks, topCutRows, topCutSpec, type Partial } from '../query/engine.js';
import { parseTopCut, cutGroups, kthLargest } from '../query/merge/top-cut.js';
import type { AggregatePartial } from '../query/plan/partial.js';
import type { LogicalPlan } from '../query/plan/plan.js';
import { buildBatch } from '../query/storage/ingest-decoder.js';
import { Table } from '../query/storage/table.js';
import { mulberry32 } from './support/gen.js';

const NOW = 1_700_000_000;
type Shape = 'zipf' | 'uniform' | 'ties' | 'sparse';
interface Row { time: number; g: string | number; h: number; x: number | null }

function overTheWire(plan: LogicalPlan, partial: Partial, v = PLAN_VERSION): Partial {
  const text = JSON.stringify({ partial: partialToWire(partial, plan, v) });
  const got = partialFromWire((JSON.parse(text) as { partial: unknown }).partial, plan, v);
  if ('error' in got) throw new Error(got.error);
  return got.ok;
}

function tableOf(rows: readonly Row[]): Table {
  const t = new Table('t');
  for (let i = 0; i < rows.length; i += 500) {
    t.append(buildBatch(rows.slice(i, i + 500) as unknown as Record<string, unknown>[], t.schema, NOW));
    t.sealOpen();
  }
  return t;
}

/** Rows of `groups` groups in `shape`, each row placed on one of `leaves` leaves. */
function makeLeaves(seed: number, shape: Shape, groups: number, leaves: number, textKeys: boolean): Row[][] {
  const r = mulberry32(seed);
  const out: Row[][] = Array.from({ length: leaves }, () => []);
  const key = (i: number) => (textKeys ? `u${i}` : i * 7 - 300);
  const push = (i: number) => {
    // Sparse: group i lives on the leaves whose index is not i mod 3 (one leaf holds all of a third).
    let leaf = Math.floor(r() * leaves);
    if (shape === 'sparse' && leaves > 1 && leaf === i % 3) leaf = (leaf + 1) % leaves;
    out[leaf]!.push({ time: NOW - Math.floor(r() * 86_400), g: key(i), h: Math.floor(r() * 2), x: r() < 0.1 ? null : Math.round(r() * 1000) / 10 });
  };
  if (shape === 'ties') {
    for (let i = 0; i < groups; i++) for (let c = 0; c < 4; c++) push(i);
  } else {
    const weights = Array.from({ length: groups }, (_, i) => (shape === 'uniform' ? 1 : 1 / (i + 1) ** 1.1));
    const total = weights.reduce((a, b) => a + b, 0);
    const cdf: number[] = [];
    let acc = 0;
    for (const w of weights) { acc += w / total; cdf.push(acc); }
    const rows = groups * 6;
    for (let n = 0; n < rows; n++) {
      const u = r();
      let lo = 0; let hi = groups - 1;
      while (lo < hi) { const mid = (lo + hi) >>> 1; if (cdf[mid]! < u) lo = mid + 1; else hi = mid; }
      push(lo);
    }
  }
  return out;
}

/** The answer computed here from the raw rows: per group count, count(x), sum(x); sorted by the
 * chosen count descending, then the keys ascending; OFFSET and LIMIT applied. */
function expected(rows: readonly Row[], twoKeys: boolean, byCountX: boolean, limit: number, offset: number): unknown[][] {
  const m = new Map<string, { keys: (string | number)[]; n: number; nx: number; sx: number }>();
  for (const row of rows) {
    const keys = twoKeys ? [row.g, row.h] : [row.g];
    const id = JSON.stringify(keys);
    let s = m.get(id);
    if (s === undefined) { s = { keys, n: 0, nx: 0, sx: 0 }; m.set(id, s); }
    s.n++;
    if (row.x !== null) { s.nx++; s.sx += row.x; }
  }
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  const all = [...m.values()].sort((a, b) => (byCountX ? b.nx - a.nx : b.n - a.n) || a.keys.reduce<number>((c, k, i) => c || cmp(k, b.keys[i]!), 0));
  return all.slice(offset, offset + limit).map((s) => [...s.keys, s.n, s.nx, s.sx]);
}

function sameRows(got: readonly (readonly unknown[])[], want: readonly unknown[][]): boolean {
  if (got.length !== want.length) return false;
  return got.every((row, i) => row.every((v, j) => {
    const w = want[i]![j];
    if (typeof v === 'number' && typeof w === 'number') return Math.abs(v - w) <= 1e-9 * Math.max(1, Math.abs(w));
    return v === w;
  }));
}

describe('a top-n pushed down to the leaves', () => {
  const outcomes = { exact: 0, notExact: 0, notExactAndCutWrong: 0, cutLeaves: 0 };
  const shapes: Shape[] = ['zipf', 'uniform', 'ties', 'sparse'];
  for (let seed = 1; seed <= 48; seed++) {
    const shape = shapes[seed % shapes.length]!;
    it(`is exact whenever it says so (seed ${seed}, ${shape})`, () => {
      const r = mulberry32(seed * 7919);
      const leaves = 2 + Math.floor(r() * 4);
      const groups = 200 + Math.floor(r() * 1500);
      const textKeys = r() < 0.5;
      const twoKeys = r() < 0.3;
      const byCountX = r() < 0.25;
      const limit = 1 + Math.floor(r() * 10);
      const offset = r() < 0.3 ? Math.floor(r() * 5) : 0;
      const k = 8 + Math.floor(r() * 120);
      const what = `seed ${seed}: ${shape}, ${leaves} leaves, ${groups} groups, K ${k}, ${textKeys ? 'text' : 'int'} keys${twoKeys ? ' x2' : ''}, LIMIT ${limit} OFFSET ${offset}${byCountX ? ', by count(x)' : ''}`;
      const order = byCountX ? 'count(x)' : 'count(*)';
      const keys = twoKeys ? 'g, h' : 'g';
      const sql = `SELECT ${keys}, count(*) AS n, count(x) AS nx, sum(x) AS sx FROM t GROUP BY ${keys} ORDER BY ${order} DESC, ${keys} LIMIT ${limit}${offset > 0 ? ` OFFSET ${offset}` : ''}`;
      const plan = planQuery(sql, NOW);
      const auto = topCutSpec(plan);
      expect(auto, `${what}: the plan's top-n can be pushed down`).not.toBeNull();
      expect(plan.aggs[auto!.agg]!.fn, what).toBe(byCountX ? 'count' : 'count_star');
      const spec = { ...auto!, groups: k };
      const rows = makeLeaves(seed, shape, groups, leaves, textKeys);
      const want = expected(rows.flat(), twoKeys, byCountX, limit, offset);

      const whole = rows.map((part) => overTheWire(plan, (() => { const t = tableOf(part); return scanBlocks(bindQuery(plan, t.schema, NOW, true), t.blocks()); })()));
      const uncut = finish(plan, mergePartials(plan, whole));
      expect(sameRows(uncut.rows, want), `${what}: the uncut merge\n got ${JSON.stringify(uncut.rows)}\nwant ${JSON.stringify(want)}`).toBe(true);

      const cut = whole.map((p) => overTheWire(plan, cutForRequest(p, spec, plan, PLAN_VERSION)) as AggregatePartial);
      const cuts = cut.map((p) => p.cut ?? null);
      cut.forEach((p, i) => {
        const all = (whole[i] as AggregatePartial).groups.count;
        if (all <= k) expect(p.cut, `${what}: leaf ${i} has ${all} groups, none cut`).toBeUndefined();
        else {
          expect(p.groups.count, `${what}: leaf ${i} sends K groups`).toBe(k);
          expect(p.cut!.of, what).toBe(all);
          // Every group it left out has at most the bound; every group it sent at least that.
          const n = p.groups.states[spec.agg]!['n'] as Float64Array;
          expect(Math.min(...n), what).toBe(p.cut!.bound);
          outcomes.cutLeaves++;
        }
      });
      const maps: Int32Array[] = [];
      const merged = mergePartials(plan, cut, maps) as AggregatePartial;
      expect(spec.rows, what).toBe(topCutRows(plan));
      const exact = cutIsExact(spec, merged.groups, maps, cuts);
      const fromCut = finish(plan, merged);
      if (exact) {
        outcomes.exact++;
        expect(sameRows(fromCut.rows, want), `${what}: said exact\n got ${JSON.stringify(fromCut.rows)}\nwant ${JSON.stringify(want)}`).toBe(true);
      } else {
        outcomes.notExact++;
        if (!sameRows(fromCut.rows, want)) outcomes.notExactAndCutWrong++;
      }
    });
  }

  it('reaches both outcomes over those seeds, and refuses cut merges that would be wrong', () => {
    // Without the second outcome the check above proves nothing; without cut merges that are
    // really wrong, the exactness test would not be needed.
    expect(outcomes.exact, JSON.stringify(outcomes)).toBeGreaterThan(5);
    expect(outcomes.notExact, JSON.stringify(outcomes)).toBeGreaterThan(5);
    expect(outcomes.notExactAndCutWrong, JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(outcomes.cutLeaves, JSON.stringify(outcomes)).toBeGreaterThan(40);
  });

  it('is not exact when a group no leaf sent can tie the k-th count', () => {
    // Each leaf: b, c, a with 5 rows each, cut to 2 groups: b and c (first at the bound) go, a
    // stays. Merged, b and c are exact at 10, but a also has 10 and sorts first by key.
    const plan = planQuery('SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n DESC, g LIMIT 1', NOW);
    const leafRows: Row[] = ['b', 'c', 'a'].flatMap((g) => Array.from({ length: 5 }, (_, i) => ({ time: NOW - i, g, h: 0, x: 1 })));
    const spec = { agg: 0, groups: 2, rows: 1 };
    const cut = [0, 1].map(() => { const t = tableOf(leafRows); return overTheWire(plan, cutGroups(scanBlocks(bindQuery(plan, t.schema, NOW, true), t.blocks()) as AggregatePartial, spec)) as AggregatePartial; });
    expect(cut.map((p) => p.cut)).toEqual([{ bound: 5, of: 3 }, { bound: 5, of: 3 }]);
    const maps: Int32Array[] = [];
    const merged = mergePartials(plan, cut, maps) as AggregatePartial;
    expect(finish(plan, merged).rows).toEqual([['b', 10]]);
    expect(cutIsExact(spec, merged.groups, maps, cut.map((p) => p.cut!))).toBe(false);
    const whole = [0, 1].map(() => { const t = tableOf(leafRows); return scanBlocks(bindQuery(plan, t.schema, NOW, true), t.blocks()); });
    expect(finish(plan, mergePartials(plan, whole)).rows).toEqual([['a', 10]]);
  });

  it('is asked only for a count, descending, under a LIMIT, with no HAVING', () => {
    const spec = (sql: string) => topCutSpec(planQuery(sql, NOW));
    expect(spec('SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 10')).toEqual({ agg: 0, groups: 1_024, rows: 10 });
    expect(spec('SELECT g, sum(x), count(*) FROM t GROUP BY g ORDER BY count(*) DESC LIMIT 500')?.groups).toBe(4_000);
    for (const sql of [
      'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n LIMIT 10',
      'SELECT g, sum(x) AS s FROM t GROUP BY g ORDER BY s DESC LIMIT 10',
      'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n DESC',
      'SELECT g, count(*) AS n FROM t GROUP BY g HAVING count(*) > 2 ORDER BY n DESC LIMIT 10',
      'SELECT g, count(*) + 1 AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 10',
      'SELECT count(*) AS n FROM t ORDER BY n DESC LIMIT 10',
      'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 20000',
    ]) expect(spec(sql), sql).toBeNull();
  });

  it('ignores a malformed or unfit spec, and never cuts a protocol-2 answer', () => {
    const plan = planQuery('SELECT g, count(*) AS n, sum(x) FROM t GROUP BY g ORDER BY n DESC LIMIT 3', NOW);
    for (const bad of [null, 5, {}, { agg: 1, groups: 5 }, { agg: 0, groups: 0 }, { agg: 0.5, groups: 5 }, { agg: 9, groups: 5 }, { agg: 0, groups: '5' }]) {
      expect(parseTopCut(bad, plan), JSON.stringify(bad)).toBeNull();
    }
    const rows = makeLeaves(5, 'zipf', 400, 1, true)[0]!;
    const t = tableOf(rows);
    const part = scanBlocks(bindQuery(plan, t.schema, NOW, true), t.blocks()) as AggregatePartial;
    expect(part.groups.count).toBeGreaterThan(20);
    expect(cutForRequest(part, { agg: 0, groups: 20 }, plan, 2)).toBe(part);
    expect(cutForRequest(part, { agg: 1, groups: 20 }, plan, PLAN_VERSION)).toBe(part);
    expect((cutForRequest(part, { agg: 0, groups: 20 }, plan, PLAN_VERSION) as AggregatePartial).groups.count).toBe(20);
    expect(cutGroups(part, { agg: 0, groups: part.groups.count })).toBe(part);
  });

  it('refuses a cut with no bound from a member', () => {
    const plan = planQuery('SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 3', NOW);
    const t = tableOf(makeLeaves(6, 'zipf', 100, 1, false)[0]!);
    const part = cutGroups(scanBlocks(bindQuery(plan, t.schema, NOW, true), t.blocks()) as AggregatePartial, { agg: 0, groups: 10 });
    const wire = JSON.parse(JSON.stringify(partialToWire(part, plan))) as { cut: unknown };
    expect(partialFromWire(wire, plan)).toHaveProperty('ok');
    for (const cut of [null, {}, { bound: -1, of: 100 }, { bound: 3, of: 5 }, { bound: 'x', of: 100 }]) {
      expect(partialFromWire({ ...wire, cut }, plan), JSON.stringify(cut)).toHaveProperty('error');
    }
  });

  it('kthLargest agrees with a sort', () => {
    const r = mulberry32(77);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(r() * 60);
      const v = Float64Array.from({ length: n }, () => Math.floor(r() * 10));
      const k = 1 + Math.floor(r() * n);
      const sorted = [...v].sort((a, b) => b - a);
      expect(kthLargest(v, n, k), `trial ${trial}: ${JSON.stringify([...v])} k=${k}`).toBe(sorted[k - 1]);
    }
  });
});
