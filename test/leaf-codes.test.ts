/**
 * Leaf codes (docs/engine.md, "Leaf codes"): the leaf's main thread's string table is the leaf's
 * code space, its code maps are made in the background and handed to the scan workers, which
 * group and count distinct by those codes and send codes back. The answers must be the ones
 * computed here from the rows, before the maps exist (the workers' own tables), after (leaf
 * codes), as a partial for an aggregator (strings on the wire), and after the table starts over.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { envelopeJson, finish, mergePartials, partialFromWire, planQuery, PLAN_VERSION, sealPlan, type Partial } from '../query/engine.js';
import { Hll } from '../query/functions/hll.js';
import { keyAt } from '../query/plan/utf8-keys.js';
import { threadCodes, trimStringCodes } from '../query/storage/string-codes.js';
import { defaultLeafConfig } from '../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../server/leaf/leaf.js';
import { mulberry32 } from './support/gen.js';

const NOW = 1_700_000_000;
const SEED = 20261202;

function makeRows(n: number): Record<string, unknown>[] {
  const r = mulberry32(SEED);
  console.log(`leaf codes: seed ${SEED}`);
  return Array.from({ length: n }, (_, i) => {
    const row: Record<string, unknown> = { time: NOW - i, h: Math.floor(r() * 5) };
    const u = r() < 0.3 ? Math.floor(r() * 20) : Math.floor(r() * 8000);
    if (r() >= 0.05) row.u = u % 11 === 0 ? `ユーザー-${u}` : `user-${u}`;
    if (i >= 6000) row.c = ['de', 'fr', 'jp', 'us', 'ñandú'][Math.floor(r() * 5)];
    return row;
  });
}

const keyOf = (...v: unknown[]) => JSON.stringify(v);
type Answer = { rows: unknown[][] };

describe('leaf codes: worker scans group by the leaf\'s string codes', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => { for (const c of closers.reverse()) await c(); });

  it('answers as the rows say before the maps exist, with them, as a partial, and after the table starts over', async () => {
    const leaf = new Leaf({ ...defaultLeafConfig(), port: 0, workers: 2, diskLog: false, shm: false, logLevel: 'silent', inlineScanRowsMax: 0 }, 'codes');
    leaf.state = 'serving';
    const app = buildLeafApp(leaf);
    closers.push(async () => { await app.close(); await leaf.closePools(); });
    const rows = makeRows(30_000);
    // Blocks of 4,000 rows; the last 2,000 stay in the open block (scanned on the main thread).
    for (let i = 0; i < rows.length; i += 4000) {
      const res = await app.inject({ method: 'POST', url: '/v1/tables/t/events', payload: JSON.stringify(rows.slice(i, i + 4000)), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, res.body).toBe(200);
      if (i + 4000 < rows.length) leaf.store.tables.get('t')!.sealOpen();
    }
    const query = async (sql: string, partial = false) => {
      const q = await app.inject({ method: 'POST', url: '/v1/query', payload: JSON.stringify({ sql, partial }), headers: { 'content-type': 'application/json' } });
      expect(q.statusCode, q.body).toBe(200);
      return q.json() as Answer & { partial?: unknown };
    };
    const status = async () => ((await app.inject({ method: 'GET', url: '/v1/status' })).json() as { leafCodes: { strings: number; hashed: number; mapsMade: number; queries: number } }).leafCodes;

    const expected = { byUser: new Map<string, number>(), multi: new Map<string, number>(), distinct: new Set<unknown>(), perH: new Map<number, Set<unknown>>() };
    for (const r of rows) {
      const u = (r.u as string | undefined) ?? null;
      const c = (r.c as string | undefined) ?? null;
      expected.byUser.set(keyOf(u), (expected.byUser.get(keyOf(u)) ?? 0) + 1);
      expected.multi.set(keyOf(c, u, r.h), (expected.multi.get(keyOf(c, u, r.h)) ?? 0) + 1);
      if (u !== null) expected.distinct.add(u);
      const s = expected.perH.get(r.h as number) ?? new Set();
      if (u !== null) s.add(u);
      expected.perH.set(r.h as number, s);
    }
    // approx_count_distinct is deterministic for a set of strings: the sketch of the rows' values.
    const sketchOf = (values: Iterable<unknown>) => { const h = new Hll(); for (const v of values) h.addString(v as string); return Math.round(h.estimate()); };
    const approx = sketchOf(expected.distinct);
    const approxByH = [...expected.perH.entries()].sort((a, b) => a[0] - b[0]).map(([h, s]) => [h, sketchOf(s)]);
    const top = [...expected.byUser.entries()].map(([k, n]) => [JSON.parse(k)[0], n] as [string | null, number])
      .sort((a, b) => b[1] - a[1] || (a[0] === null ? 1 : b[0] === null ? -1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, 9);

    const check = async (label: string) => {
      const byUser = await query('SELECT u, count(*) FROM t GROUP BY u');
      expect(new Map(byUser.rows.map(([u, n]) => [keyOf(u), n])), label).toEqual(expected.byUser);
      const multi = await query('SELECT c, u, h, count(*) FROM t GROUP BY c, u, h');
      expect(new Map(multi.rows.map(([c, u, h, n]) => [keyOf(c, u, h), n])), label).toEqual(expected.multi);
      expect((await query('SELECT count(DISTINCT u) FROM t')).rows, label).toEqual([[expected.distinct.size]]);
      const perH = await query('SELECT h, count(DISTINCT u) FROM t GROUP BY h ORDER BY h');
      expect(perH.rows, label).toEqual([...expected.perH.entries()].sort((a, b) => a[0] - b[0]).map(([h, s]) => [h, s.size]));
      expect((await query('SELECT u, count(*) AS n FROM t GROUP BY u ORDER BY n DESC, u LIMIT 9')).rows, label).toEqual(top);
      expect((await query('SELECT approx_count_distinct(u) FROM t')).rows, label).toEqual([[approx]]);
      expect((await query('SELECT h, approx_count_distinct(u) FROM t GROUP BY h ORDER BY h')).rows, label).toEqual(approxByH);
      // As a partial for an aggregator: strings on the wire, merged and finished elsewhere. In
      // protocol 5 a count(DISTINCT)'s strings go once each with ids per group ("coded"), in 4
      // every group's strings in full: both must finish, and merge with each other, alike.
      const perHRows = [...expected.perH.entries()].sort((a, b) => a[0] - b[0]).map(([h, s]) => [h, s.size]);
      const partials = [
        { sql: 'SELECT u, count(*) AS n FROM t GROUP BY u ORDER BY n DESC, u LIMIT 9', rows: top },
        { sql: 'SELECT count(DISTINCT u) FROM t', rows: [[expected.distinct.size]] },
        { sql: 'SELECT h, count(DISTINCT u) FROM t GROUP BY h ORDER BY h', rows: perHRows },
      ];
      for (const { sql, rows: want } of partials) {
        const plan = planQuery(sql, NOW);
        const decoded: Partial[] = [];
        for (const v of [PLAN_VERSION, 4]) {
          const body = v === PLAN_VERSION ? JSON.stringify({ sql, partial: true }) : `{"partial":true,"plan":${envelopeJson(sealPlan(plan, NOW, sql, v))}}`;
          const res = await app.inject({ method: 'POST', url: '/v1/query', payload: body, headers: { 'content-type': 'application/json' } });
          expect(res.statusCode, res.body).toBe(200);
          const answer = res.json() as { partial: unknown; protocol: number };
          expect(answer.protocol).toBe(v);
          const text = JSON.stringify(answer.partial);
          expect(text, label).not.toContain('leafSeen');
          expect(text.includes('"coded"'), `${label}: ${sql} in protocol ${v}`).toBe(sql.includes('DISTINCT') && v >= 5);
          const back = partialFromWire(JSON.parse(text), plan, v);
          expect('ok' in back, JSON.stringify(back).slice(0, 300)).toBe(true);
          const p = (back as { ok: Partial }).ok;
          expect(finish(plan, p).rows, `${label}: ${sql} in protocol ${v}`).toEqual(want);
          decoded.push(p);
          if (v >= 5 && sql.includes('GROUP BY h')) {
            // Coded states are checked before any merge: ids in range, entries whole characters,
            // and only in a protocol that has them.
            type Coded = { dict: { offsets: string; bytes: string }; ids: string };
            const w0 = JSON.parse(text) as { groups: { states: { coded?: Coded }[] } };
            const bad = (edit: (c: { dict: { offsets: string; bytes: string }; ids: string }) => void, v2 = v) => {
              const w = JSON.parse(text) as { groups: { states: { coded?: { dict: { offsets: string; bytes: string }; ids: string } }[] } };
              edit(w.groups.states[0]!.coded!);
              return partialFromWire(w, plan, v2);
            };
            const b64 = (a: Int32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
            expect(bad((c) => { c.ids = b64(Int32Array.of(1e6)); })).toMatchObject({ error: expect.stringContaining('ids') });
            expect(bad((c) => { const ids = new Int32Array(Buffer.from(c.ids, 'base64').buffer.slice(0)); ids[0] = 1e6; c.ids = b64(ids); })).toMatchObject({ error: expect.stringContaining('not in its dictionary') });
            expect(bad((c) => { c.dict = { offsets: b64(Int32Array.of(0, 1, 2)), bytes: b64(Uint8Array.of(0xc3, 0xb1)) }; })).toMatchObject({ error: expect.stringContaining('inside a UTF-8 character') });
            expect(bad(() => {}, 4)).toMatchObject({ error: expect.stringContaining('protocol 4') });
            // The same sets with the dictionary in reverse (another leaf's order): each side's ids
            // are read through its own dictionary, so the union is the sets themselves.
            const reversed = JSON.parse(text) as typeof w0;
            const c = reversed.groups.states[0]!.coded!;
            const offs = new Int32Array(Buffer.from(c.dict.offsets, 'base64').buffer.slice(0));
            const bytes = Buffer.from(c.dict.bytes, 'base64');
            const k = offs.length - 1;
            const parts: Buffer[] = []; const nextOffs = new Int32Array(k + 1);
            for (let i = 0; i < k; i++) { const e = bytes.subarray(offs[k - 1 - i]!, offs[k - i]!); parts.push(e); nextOffs[i + 1] = nextOffs[i]! + e.length; }
            const ids = new Int32Array(Buffer.from(c.ids, 'base64').buffer.slice(0)).map((id) => k - 1 - id);
            c.dict = { offsets: b64(nextOffs), bytes: b64(new Uint8Array(Buffer.concat(parts))) }; c.ids = b64(ids);
            const other = partialFromWire(reversed, plan, v);
            expect('ok' in other, JSON.stringify(other).slice(0, 300)).toBe(true);
            expect(finish(plan, mergePartials(plan, [p, (other as { ok: Partial }).ok])).rows, `${label}: reversed dictionary`).toEqual(want);
          }
        }
        // Merged: the same rows twice, coded with uncoded and coded with coded. Counts double (so
        // the top 9 keep their order); a set's union with itself is itself.
        const twice = sql.includes('DISTINCT') ? want : want.map(([u, n]) => [u, 2 * (n as number)]);
        expect(finish(plan, mergePartials(plan, decoded)).rows, `${label}: ${sql} merged`).toEqual(twice);
        expect(finish(plan, mergePartials(plan, [decoded[0]!, decoded[0]!])).rows, `${label}: ${sql} coded twice`).toEqual(twice);
      }
    };

    // Right after the load the background maps may not exist yet: the workers' own tables.
    await check('before the maps');
    // Then the maps are made (in slices) and the workers use the leaf's codes.
    // 7 sealed blocks with `u`, 6 with `c` (the first block has none): 13 maps.
    const maps = 13;
    const before = (await status()).queries;
    for (let i = 0; i < 200 && (await status()).mapsMade < maps; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await status()).mapsMade).toBe(maps);
    // And every code's hash, for approx_count_distinct.
    for (let i = 0; i < 200 && (await status()).hashed < (await status()).strings; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await status()).hashed).toBe((await status()).strings);
    await check('with leaf codes');
    expect((await status()).queries - before).toBeGreaterThanOrEqual(8);
    // The table starts over (a new generation): every map is stale, the answers stay.
    // (The last scan's hold on the table is let go a turn of the event loop after its answer.)
    await new Promise((r) => setImmediate(r));
    expect(threadCodes.leafScansInFlight).toBe(0);
    expect(trimStringCodes(1)).toBe(true);
    await check('after the table started over');
    for (let i = 0; i < 200 && (await status()).mapsMade < 2 * maps; i++) await new Promise((r) => setTimeout(r, 25));
    const again = (await status()).queries;
    for (let i = 0; i < 200 && (await status()).hashed < (await status()).strings; i++) await new Promise((r) => setTimeout(r, 25));
    await check('with the new generation\'s maps');
    expect((await status()).queries - again).toBeGreaterThanOrEqual(8);
  });

  it('codes of another generation are refused, never read as other strings; the table waits for scans in flight', async () => {
    await new Promise((r) => setImmediate(r));
    const wasLeaf = threadCodes.isLeafSpace;
    threadCodes.isLeafSpace = true;
    try {
      const c = threadCodes.codeOf('some-string');
      const stale = { coded: true as const, codes: Int32Array.of(c, -1), generation: threadCodes.generation - 1 };
      expect(() => keyAt(stale, 0)).toThrow(/generation/);
      expect(keyAt({ ...stale, generation: threadCodes.generation }, 0)).toBe('some-string');
      expect(keyAt({ ...stale, generation: threadCodes.generation }, 1)).toBe(null);
      threadCodes.leafScansInFlight++;
      expect(trimStringCodes(1)).toBe(false);
      threadCodes.leafScansInFlight--;
      expect(trimStringCodes(1)).toBe(true);
    } finally {
      threadCodes.isLeafSpace = wasLeaf;
    }
  });
});
