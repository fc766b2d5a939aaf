/**
 * String codes across blocks (query/storage/string-codes.ts, docs/engine.md): grouping and
 * count(DISTINCT) index a thread's code table instead of hashing each block's strings. The
 * answers must not depend on the table: blocks with different dictionaries, nulls, a column a
 * block lacks, the open block (a growing dictionary), and a table that starts over between scans
 * all give the answer computed here from the rows. A leaf counts its workers' tables in its
 * memory budget and reports them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bindQuery, finish, mergePartials, planQuery, scanBlocks } from '../query/engine.js';
import { buildBatch } from '../query/storage/ingest-decoder.js';
import { PairTable } from '../query/exec/pair-table.js';
import { Utf8Table } from '../query/merge/utf8-table.js';
import { partialFromWire, partialToWire } from '../query/engine.js';
import { encodeKeys, keyAt } from '../query/plan/utf8-keys.js';
import { threadCodes, trimStringCodes } from '../query/storage/string-codes.js';
import { Table } from '../query/storage/table.js';
import { defaultLeafConfig } from '../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../server/leaf/leaf.js';
import { mulberry32 } from './support/gen.js';

const NOW = 1_700_000_000;
const SEED = 20261201;

function makeRows(n: number): Record<string, unknown>[] {
  const r = mulberry32(SEED);
  return Array.from({ length: n }, (_, i) => {
    const row: Record<string, unknown> = { time: NOW - i, h: Math.floor(r() * 4) };
    // A Zipf-ish user: a few hot values and a long tail, so blocks share some strings and not others.
    const u = r() < 0.5 ? Math.floor(r() * 10) : Math.floor(r() * 5000);
    if (r() >= 0.05) row.u = `user-${u}`;
    // The second column exists only in the later rows (older blocks lack it: nulls).
    if (i >= 3000) row.c = ['de', 'fr', 'jp', 'us', 'ñandú'][Math.floor(r() * 5)];
    return row;
  });
}

/** Rows in sealed blocks of `chunk` rows, and the last `open` rows left in the open block. */
function tableOf(rows: Record<string, unknown>[], chunk: number, open: number): Table {
  const t = new Table('t');
  const sealedRows = rows.length - open;
  for (let i = 0; i < sealedRows; i += chunk) {
    t.append(buildBatch(rows.slice(i, Math.min(i + chunk, sealedRows)), t.schema, NOW));
    t.sealOpen();
  }
  t.append(buildBatch(rows.slice(sealedRows), t.schema, NOW));
  return t;
}

function run(t: Table, sql: string) {
  const plan = planQuery(sql, NOW);
  return finish(plan, mergePartials(plan, [scanBlocks(bindQuery(plan, t.schema, NOW, false), t.blocks())])).rows;
}

const keyOf = (...v: unknown[]) => JSON.stringify(v);

describe('string codes across blocks', () => {
  const rows = makeRows(12_000);
  const table = tableOf(rows, 1_000, 700);

  const expected = {
    byUser: new Map<string, number>(),
    byUserCountry: new Map<string, number>(),
    distinctUsers: new Set<unknown>(),
    distinctByH: new Map<number, Set<unknown>>(),
  };
  for (const r of rows) {
    const u = (r.u as string | undefined) ?? null;
    const c = (r.c as string | undefined) ?? null;
    expected.byUser.set(keyOf(u), (expected.byUser.get(keyOf(u)) ?? 0) + 1);
    expected.byUserCountry.set(keyOf(u, c, r.h), (expected.byUserCountry.get(keyOf(u, c, r.h)) ?? 0) + 1);
    if (u !== null) expected.distinctUsers.add(u);
    const s = expected.distinctByH.get(r.h as number) ?? new Set();
    if (u !== null) s.add(u);
    expected.distinctByH.set(r.h as number, s);
  }

  const check = (label: string) => {
    const byUser = run(table, 'SELECT u, count(*) FROM t GROUP BY u');
    expect(new Map(byUser.map(([u, n]) => [keyOf(u), n])), label).toEqual(expected.byUser);
    const multi = run(table, 'SELECT u, c, h, count(*) FROM t GROUP BY u, c, h');
    expect(new Map(multi.map(([u, c, h, n]) => [keyOf(u, c, h), n])), label).toEqual(expected.byUserCountry);
    expect(run(table, 'SELECT count(DISTINCT u) FROM t'), label).toEqual([[expected.distinctUsers.size]]);
    const perH = run(table, 'SELECT h, count(DISTINCT u) FROM t GROUP BY h ORDER BY h');
    expect(perH, label).toEqual([...expected.distinctByH.entries()].sort((a, b) => a[0] - b[0]).map(([h, s]) => [h, s.size]));
    // A top-n over many groups (kept while going, not sorted whole) equals sorting them all.
    const top = run(table, 'SELECT u, count(*) AS n FROM t GROUP BY u ORDER BY n DESC, u LIMIT 7');
    const all = [...expected.byUser.entries()].map(([k, n]) => [JSON.parse(k)[0], n] as [string | null, number])
      .sort((a, b) => b[1] - a[1] || (a[0] === null ? 1 : b[0] === null ? -1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    expect(top, label).toEqual(all.slice(0, 7));
  };

  it('group-by, multi-key group-by, count(DISTINCT) and top-n equal the rows, sealed and open blocks together', () => {
    expect(table.sealed.length).toBeGreaterThan(10);
    expect(table.open.rowCount).toBe(700);
    check('first scan');
    // Every distinct string of both columns is in the table once.
    const strings = new Set([...rows.map((r) => r.u), ...rows.map((r) => r.c)].filter((x) => typeof x === 'string'));
    for (const s of strings) expect(threadCodes.find(s as string)).toBeGreaterThanOrEqual(0);
  });

  it('answers the same after the table starts over (a new generation: every block maps again)', () => {
    const before = threadCodes.generation;
    expect(trimStringCodes(1)).toBe(true);
    expect(threadCodes.generation).toBe(before + 1);
    expect(threadCodes.size).toBe(0);
    check('after a reset');
    // New strings in the open block after the maps were built extend its map.
    table.append(buildBatch([{ time: NOW, u: 'late-comer', h: 1 }, { time: NOW, u: 'late-comer', h: 1 }], table.schema, NOW));
    const late = run(table, "SELECT count(*) FROM t WHERE u = 'late-comer'");
    expect(late).toEqual([[2]]);
    expect(run(table, 'SELECT u, count(*) FROM t GROUP BY u').find(([u]) => u === 'late-comer')).toEqual(['late-comer', 2]);
  });
});

describe('a leaf counts its scans\' string codes in its memory budget', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => { for (const c of closers.reverse()) await c(); });

  it('reports scanCacheBytes after a pool scan and takes them off memoryFreeBytes', async () => {
    const leaf = new Leaf({ ...defaultLeafConfig(), port: 0, workers: 1, diskLog: false, shm: false, logLevel: 'silent', inlineScanRowsMax: 0 }, 'codes');
    leaf.state = 'serving';
    const app = buildLeafApp(leaf);
    closers.push(async () => { await app.close(); await leaf.closePools(); });
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ time: NOW - i, u: `user-${i % 9000}-${'x'.repeat(i % 40)}` }));
    for (let i = 0; i < rows.length; i += 5000) {
      const res = await app.inject({ method: 'POST', url: '/v1/tables/t/events', payload: JSON.stringify(rows.slice(i, i + 5000)), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(200);
      leaf.store.tables.get('t')!.sealOpen();
    }
    const q = await app.inject({ method: 'POST', url: '/v1/query', payload: JSON.stringify({ sql: 'SELECT count(DISTINCT u) AS n FROM t' }), headers: { 'content-type': 'application/json' } });
    expect(q.statusCode, q.body).toBe(200);
    expect((q.json() as { rows: unknown[][] }).rows).toEqual([[new Set(rows.map((r) => r.u)).size]]);
    const s = (await app.inject({ method: 'GET', url: '/v1/status' })).json() as { bytes: number; memoryBudgetBytes: number; memoryFreeBytes: number; scanCacheBytes: number };
    // 9,000 distinct strings of ~30 characters: at least their UTF-16 payload, at most a few MB.
    expect(s.scanCacheBytes).toBeGreaterThan(9000 * 2 * 30);
    expect(s.scanCacheBytes).toBeLessThan(8 * 2 ** 20);
    expect(s.memoryFreeBytes).toBe(s.memoryBudgetBytes - s.bytes - s.scanCacheBytes);
    // Nothing reached its bound: the worker's table has not started over.
    expect((s as unknown as { scanCacheResets: number }).scanCacheResets).toBe(threadCodes.generation - 1);
  });
});

describe('the pair table multi-key grouping combines ids through', () => {
  it('finds every pair it was given across many grows, and no other', () => {
    const r = mulberry32(SEED ^ 0x9e37);
    const table = new PairTable(4);
    const want = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      // Ids up to 2^26 (what the key ids reach) and many repeats of small ones.
      const x = r() < 0.5 ? Math.floor(r() * 64) : Math.floor(r() * 2 ** 26);
      const y = Math.floor(r() * (r() < 0.5 ? 30 : 2 ** 26));
      const k = `${x},${y}`;
      const got = table.get(x, y);
      expect(got).toBe(want.get(k) ?? -1);
      if (got < 0) { table.insert(x, y, want.size); want.set(k, want.size); }
    }
    expect(table.size).toBe(want.size);
    for (const [k, v] of want) { const [x, y] = k.split(',').map(Number); expect(table.get(x!, y!)).toBe(v); }
    expect(table.get(2 ** 26 + 5, 0)).toBe(-1);
  });
});

describe('string keys as UTF-8 bytes', () => {
  it('the byte table merges equal keys across tables and grows: empty string and NULL stay apart', () => {
    const r = mulberry32(SEED ^ 0x51);
    const table = new Utf8Table();
    const want = new Map<string | null, number>();
    for (let round = 0; round < 4; round++) {
      const values = Array.from({ length: 5000 }, () => {
        const k = Math.floor(r() * 9000);
        return k === 0 ? null : k === 1 ? '' : k % 7 === 0 ? `ключ-${k}-ñ` : `k${k}`;
      });
      // One table holds at most one NULL group, like a scan's.
      const unique = [...new Set(values)];
      const col = encodeKeys(unique)!;
      unique.forEach((v, i) => {
        const id = i === col.nullAt ? table.nullId() : table.idOf(col.bytes, col.offsets[i]!, col.offsets[i + 1]!);
        const got = { id, isNew: table.made };
        expect(keyAt(col, i)).toBe(v);
        if (!want.has(v)) { expect(got).toEqual({ id: want.size, isNew: true }); want.set(v, want.size); }
        else expect(got).toEqual({ id: want.get(v), isNew: false });
      });
    }
    const merged = table.keys();
    expect(table.count).toBe(want.size);
    for (const [v, id] of want) expect(keyAt(merged, id)).toBe(v);
  });

  it('a UTF-8 key column from the wire is checked: offsets, NULL group and valid UTF-8', () => {
    const plan = planQuery('SELECT u, count(*) AS n FROM t GROUP BY u', NOW);
    const keys = encodeKeys(['a', null, 'bé'])!;
    const part = { mode: 'aggregate', tableFound: true, columns: [], unknownColumns: [], stats: { rowsHeld: 3 }, groups: { count: 3, keys: [keys], states: [{ n: new Float64Array([1, 2, 3]) }] } };
    const wire = JSON.parse(JSON.stringify(partialToWire(part as never, plan))) as { groups: { keys: { $utf8: { offsets: string; bytes: string; nullAt: number } }[] } };
    const ok = partialFromWire(wire, plan);
    expect('ok' in ok && ok.ok.mode === 'aggregate' ? [0, 1, 2].map((g) => keyAt((ok.ok as unknown as { groups: { keys: never[] } }).groups.keys[0]!, g)) : ok).toEqual(['a', null, 'bé']);
    const edit = (f: (u: { offsets: string; bytes: string; nullAt: number }) => void) => { const w = JSON.parse(JSON.stringify(wire)) as typeof wire; f(w.groups.keys[0]!.$utf8); return partialFromWire(w, plan); };
    expect(edit((u) => { u.nullAt = 0; })).toMatchObject({ error: expect.stringContaining('bad NULL group') });
    expect(edit((u) => { u.bytes = Buffer.from([0x61, 0x62, 0xff, 0x65]).toString('base64'); })).toMatchObject({ error: expect.stringContaining('not valid UTF-8') });
    expect(edit((u) => { u.offsets = Buffer.from(new Int32Array([0, 1, 1]).buffer).toString('base64'); })).toMatchObject({ error: expect.stringContaining('offsets for 3 groups') });
    expect(edit((u) => { u.offsets = Buffer.from(new Int32Array([0, 3, 1, 4]).buffer).toString('base64'); })).toMatchObject({ error: expect.stringContaining('fall at group') });
  });
});
