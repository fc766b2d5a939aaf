/**
 * Answers that used to be silently wrong (issue: no silent wrong answers, parts 1 and 3): several
 * group keys whose packed ids pass 2^53, integer sums past 2^53, non-finite floats through the
 * partial wire, a repeated select item, the type of a quantile of ints, and large doubles on
 * ingest. Two leaves listen on real sockets and an aggregator merges their partials over HTTP, so
 * every answer crosses the real wire format; expected values come from DuckDB on the same rows,
 * read raw (HUGEINT as a bigint), or are computed here.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig } from '../server/cluster/aggregator.js';
import { defaultLeafConfig } from '../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../server/leaf/leaf.js';
import { mulberry32 } from './support/gen.js';

const SEED = Number(process.env.SHOAL_SEED ?? 20261201);
const closers: (() => Promise<void>)[] = [];
let leafUrls: string[] = [];
let agg: Awaited<ReturnType<typeof startAggregator>>;
let duck: DuckDBConnection;
const allRows: Record<string, unknown>[] = [];
const leafOfRow = new Map<Record<string, unknown>, number>();

async function startLeaf(id: string): Promise<string> {
  const leaf = new Leaf({ ...defaultLeafConfig(), port: 0, workers: 1, diskLog: false, shm: false, logLevel: 'silent' }, id);
  leaf.state = 'serving';
  const app = buildLeafApp(leaf);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(async () => { await app.close(); await leaf.closePools(); });
  return url;
}

async function startAggregator(members: { id: string; url: string }[]) {
  const a = new Aggregator({ ...defaultAggregatorConfig(), port: 0, logLevel: 'silent' }, members);
  await a.membership.checkAll();
  const app = buildAggregatorApp(a);
  closers.push(async () => { await app.close(); await a.close(); });
  return {
    query: async (sql: string) => {
      const res = await app.inject({ method: 'POST', url: '/v1/query', payload: JSON.stringify({ sql }), headers: { 'content-type': 'application/json' } });
      return { status: res.statusCode, body: res.json() as any };
    },
  };
}

/** Sends rows to one leaf (table t) and remembers them for DuckDB. */
async function put(leaf: number, rows: Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${leafUrls[leaf]}/v1/tables/t/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: rows.map((r) => JSON.stringify(r)).join('\n') });
  expect(res.status, await res.clone().text()).toBe(200);
  for (const r of rows) leafOfRow.set(r, leaf);
  allRows.push(...rows);
}

/** DuckDB's answer with 64/128-bit integers kept exact (as bigint). */
async function duckRows(sql: string): Promise<unknown[][]> {
  return (await duck.runAndReadAll(sql)).getRows() as unknown[][];
}

/** An API cell as an exact value: a digit string in an int column is a bigint. */
const exact = (v: unknown): unknown => (typeof v === 'string' && /^-?\d+$/.test(v) ? BigInt(v) : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v);

beforeAll(async () => {
  leafUrls = [await startLeaf('leaf-1'), await startLeaf('leaf-2')];
  agg = await startAggregator(leafUrls.map((url, i) => ({ id: `leaf-${i + 1}`, url })));
  const rnd = mulberry32(SEED);
  const base = 1_790_000_000;
  // Six keys of 2,000+ distinct values each in one block (2000^6 = 6.4e19 > 2^53 as packed ids),
  // then 1,000 tuples that differ only in the last key: packed into one float64 they round
  // together (the ulp there is 8,192).
  const tuples: Record<string, unknown>[] = [];
  for (let i = 0; i < 2000; i++) {
    tuples.push({ time: base + i, kind: 'tuple', k1: `a${i}`, k2: i, k3: `c${(i * 7) % 2000}`, k4: (i * 13) % 2000, k5: `e${(i * 31) % 2000}`, k6: (i * 17) % 2000, big: 0, f: 0 });
  }
  for (let i = 0; i < 1000; i++) tuples.push({ time: base + i, kind: 'tuple', k1: 'last', k2: 5000, k3: 'last', k4: 5000, k5: 'last', k6: 3000 + i, big: 0, f: 0 });
  await put(0, tuples);
  // Integer sums past 2^53: 40 values near 2^50 per group, split over both leaves, plus a running
  // total that passes 2^53 and comes back.
  for (let leaf = 0; leaf < 2; leaf++) {
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < 20; i++) rows.push({ time: base + i, kind: 'big', g: 'up', big: 2 ** 50 + Math.floor(rnd() * 1000) });
    for (let i = 0; i < 20; i++) rows.push({ time: base + i, kind: 'big', g: 'down', big: -(2 ** 50) - Math.floor(rnd() * 1000) });
    rows.push({ time: base, kind: 'big', g: 'back', big: Number.MAX_SAFE_INTEGER }, { time: base, kind: 'big', g: 'back', big: 3 }, { time: base, kind: 'big', g: 'back', big: -Number.MAX_SAFE_INTEGER });
    await put(leaf, rows);
  }
  // Floats that overflow: +Inf on leaf 1, -Inf on leaf 2 for group "nan" (merged: NaN).
  await put(0, [{ time: base, kind: 'inf', g: 'inf', f: 1e308 }, { time: base, kind: 'inf', g: 'inf', f: 1e308 }, { time: base, kind: 'inf', g: 'nan', f: 1e308 }, { time: base, kind: 'inf', g: 'nan', f: 1e308 }]);
  await put(1, [{ time: base, kind: 'inf', g: 'ninf', f: -1e308 }, { time: base, kind: 'inf', g: 'ninf', f: -1e308 }, { time: base, kind: 'inf', g: 'nan', f: -1e308 }, { time: base, kind: 'inf', g: 'nan', f: -1e308 }]);
  // Large doubles and an integer beyond 2^53: all valid JSON numbers, a float column.
  await put(1, [{ time: base, kind: 'huge', h: 1e20 }, { time: base, kind: 'huge', h: 1.5e300 }, { time: base, kind: 'huge', h: 12345678901234567890 }, { time: base, kind: 'huge', h: 2 }]);

  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run("SET TimeZone = 'UTC'");
  await duck.run('CREATE TABLE t (time BIGINT, kind VARCHAR, k1 VARCHAR, k2 BIGINT, k3 VARCHAR, k4 BIGINT, k5 VARCHAR, k6 BIGINT, g VARCHAR, big BIGINT, f DOUBLE, h DOUBLE)');
  const cols = ['time', 'kind', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'g', 'big', 'f', 'h'];
  const lit = (v: unknown) => (v === undefined || v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : typeof v === 'number' && !Number.isInteger(v) ? `${v}::DOUBLE` : String(v));
  for (let i = 0; i < allRows.length; i += 500) {
    const chunk = allRows.slice(i, i + 500).map((r) => `(${cols.map((c) => lit(r[c])).join(', ')})`).join(',\n');
    await duck.run(`INSERT INTO t VALUES ${chunk}`);
  }
}, 60_000);

afterAll(async () => { for (const c of closers.reverse()) await c(); });

describe(`exact answers (seed ${SEED})`, () => {
  it('GROUP BY six keys whose packed ids pass 2^53 keeps every group apart', async () => {
    const sql = "SELECT k1, k2, k3, k4, k5, k6, count(*) AS n FROM t WHERE kind = 'tuple' GROUP BY k1, k2, k3, k4, k5, k6";
    const got = await agg.query(sql);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const want = await duckRows(sql);
    expect(got.body.rows.length).toBe(want.length);
    expect(want.length).toBe(3000);
    const key = (r: unknown[]) => r.slice(0, 6).join('|');
    expect(new Set(got.body.rows.map(key))).toEqual(new Set(want.map((r) => key(r.map((v) => (typeof v === 'bigint' ? Number(v) : v))))));
    expect(got.body.rows.every((r: unknown[]) => r[6] === 1)).toBe(true);
  });

  it('integer sums are exact past 2^53, as DuckDB\'s HUGEINT', async () => {
    const sql = "SELECT g, sum(big) AS s, count(*) AS n FROM t WHERE kind = 'big' GROUP BY g ORDER BY g";
    const got = await agg.query(sql);
    expect(got.status).toBe(200);
    expect(got.body.columns.map((c: { type: string }) => c.type)).toEqual(['string', 'int', 'int']);
    const want = await duckRows(sql);
    expect(got.body.rows.map((r: unknown[]) => r.map(exact))).toEqual(want.map((r) => r.map(exact)));
    // The sums do pass 2^53, so the exact answer must be the digit string, not a rounded number.
    const up = got.body.rows.find((r: unknown[]) => r[0] === 'up');
    expect(typeof up[1]).toBe('string');
    const back = got.body.rows.find((r: unknown[]) => r[0] === 'back');
    expect(back[1]).toBe(6);
  });

  it('an exact big sum takes part in arithmetic, HAVING and ORDER BY exactly', async () => {
    const sql = "SELECT g, sum(big) + 1 AS s1, sum(big) * 2 AS s2 FROM t WHERE kind = 'big' GROUP BY g HAVING sum(big) > 9007199254740993 ORDER BY sum(big) DESC";
    const got = await agg.query(sql);
    expect(got.status).toBe(200);
    const want = await duckRows(sql);
    expect(got.body.rows.map((r: unknown[]) => r.map(exact))).toEqual(want.map((r) => r.map(exact)));
    expect(want.length).toBe(1);
  });

  it('Infinity, -Infinity and NaN survive partials and the HTTP answer', async () => {
    const got = await agg.query("SELECT g, sum(f) AS s, max(f) AS mx, min(f) AS mn FROM t WHERE kind = 'inf' GROUP BY g ORDER BY g");
    expect(got.status).toBe(200);
    // Each leaf sums its own rows in float64, the aggregator adds the leaves' sums.
    const inf = allRows.filter((x) => x.kind === 'inf');
    const expected = ['inf', 'nan', 'ninf'].map((g) => {
      const fs = inf.filter((x) => x.g === g);
      const perLeaf = [0, 1].map((leaf) => fs.filter((x) => leafOfRow.get(x) === leaf).reduce((s, x) => s + (x.f as number), 0));
      const api = (x: number) => (Number.isFinite(x) ? x : String(x));
      return [g, api(perLeaf[0]! + perLeaf[1]!), Math.max(...fs.map((x) => x.f as number)), Math.min(...fs.map((x) => x.f as number))];
    });
    expect(got.body.rows).toEqual(expected);
    expect(got.body.rows.map((r: unknown[]) => r[1])).toEqual(['Infinity', 'NaN', '-Infinity']);
  });

  it('a computed key that is Infinity is its own group, not the NULL group', async () => {
    const got = await agg.query("SELECT f * 10 AS k, count(*) AS n FROM t WHERE kind = 'inf' OR kind = 'huge' GROUP BY f * 10 ORDER BY n");
    expect(got.status).toBe(200);
    const counts = new Map<string, number>();
    for (const r of allRows.filter((x) => x.kind === 'inf' || x.kind === 'huge')) {
      const k = r.f === undefined ? 'null' : String((r.f as number) * 10);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const gotCounts = new Map(got.body.rows.map((r: unknown[]) => [r[0] === null ? 'null' : String(r[0]), r[1]]));
    expect(gotCounts).toEqual(counts);
  });

  it('a repeated select item is kept, in order, in rows and aggregate mode', async () => {
    const rows = await agg.query("SELECT g, big, g FROM t WHERE kind = 'big' AND g = 'back' ORDER BY big");
    expect(rows.status).toBe(200);
    expect(rows.body.columns.map((c: { name: string }) => c.name)).toEqual(['g', 'big', 'g']);
    const want = await duckRows("SELECT g, big, g FROM t WHERE kind = 'big' AND g = 'back' ORDER BY big");
    expect(rows.body.rows.map((r: unknown[]) => r.map(exact))).toEqual(want.map((r) => r.map(exact)));
    const aggRows = await agg.query("SELECT count(*), g, count(*) FROM t WHERE kind = 'big' GROUP BY g ORDER BY g");
    const wantAgg = await duckRows("SELECT count(*), g, count(*) FROM t WHERE kind = 'big' GROUP BY g ORDER BY g");
    expect(aggRows.body.rows.map((r: unknown[]) => r.map(exact))).toEqual(wantAgg.map((r) => r.map(exact)));
  });

  it('a strict time bound excludes rows at the bound even when the whole block lies on it', async () => {
    const k = 1_790_500_000;
    const times = [k, k, k, k + 1, k + 2, k + 2];
    const res = await fetch(`${leafUrls[0]}/v1/tables/edge/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(times.map((time) => ({ time }))) });
    expect(res.status).toBe(200);
    const cases: [string, (t: number) => boolean][] = [
      [`time > ${k}`, (t) => t > k], [`time >= ${k}`, (t) => t >= k], [`time < ${k + 2}`, (t) => t < k + 2],
      [`time > ${k} AND time < ${k + 2}`, (t) => t > k && t < k + 2], [`time >= ${k} AND time > ${k}`, (t) => t > k], [`${k + 2} > time`, (t) => t < k + 2],
    ];
    for (const [where, keep] of cases) {
      const got = await agg.query(`SELECT count(*) FROM edge WHERE ${where}`);
      expect(got.body.rows, where).toEqual([[times.filter(keep).length]]);
    }
  });

  it('a quantile of ints is typed float', async () => {
    const got = await agg.query("SELECT median(k2) AS m, approx_quantile(k2, 0.25) AS q FROM t WHERE kind = 'tuple'");
    expect(got.status).toBe(200);
    expect(got.body.columns.map((c: { type: string }) => c.type)).toEqual(['float', 'float']);
  });

  it('large doubles and integers beyond 2^53 are stored as floats, never refused', async () => {
    const got = await agg.query("SELECT sum(h) AS s, max(h) AS mx, count(h) AS n FROM t WHERE kind = 'huge'");
    expect(got.status).toBe(200);
    expect(got.body.columns.map((c: { type: string }) => c.type)).toEqual(['float', 'float', 'int']);
    const [want] = await duckRows("SELECT sum(h), max(h), count(h) FROM t WHERE kind = 'huge'");
    expect(got.body.rows[0][0]).toBeCloseTo(want![0] as number, -290);
    expect(got.body.rows[0].slice(1)).toEqual([want![1], Number(want![2])]);
  });

  it('a whole double past 2^53 times an int is float arithmetic after aggregation, not an exact integer', async () => {
    const got = await agg.query("SELECT max(h) * 2147483648 AS x, max(h) * 2 AS y FROM t WHERE kind = 'huge'");
    expect(got.status).toBe(200);
    const max = Math.max(...allRows.filter((r) => r.kind === 'huge').map((r) => r.h as number));
    expect(got.body.rows).toEqual([[String(max * 2147483648), max * 2]]);
    expect(got.body.rows[0][0]).toBe('Infinity');
  });
});

