/**
 * Ingest edge cases through the leaf's HTTP API: atomic batches, schema growth, type conflicts,
 * unicode, long strings, nulls, block boundaries. Every expected value is computed here from the
 * events the test sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../query/limits.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';

let L: Awaited<ReturnType<typeof inProcessLeaf>>;
beforeAll(async () => { L = await inProcessLeaf(); });
afterAll(async () => { await L.close(); });

const count = async (table: string, where = '') => (await L.query(`SELECT count(*) FROM "${table}" ${where}`)).json.rows[0][0];

describe('ingest', () => {
  it('accepts an empty batch without creating the table', async () => {
    expect(await L.ingest('empty_t', '[]')).toEqual({ status: 200, json: { accepted: 0 } });
    expect((await L.query('SELECT count(*) FROM empty_t')).json.error.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_TABLE');
  });

  it('takes JSON arrays, single objects and NDJSON', async () => {
    expect((await L.ingest('fmt', '[{"a":1},{"a":2}]')).json.accepted).toBe(2);
    expect((await L.ingest('fmt', '{"a":3}')).json.accepted).toBe(1);
    expect((await L.ingest('fmt', '{"a":4}\n\n{"a":5}\r\n', 'application/x-ndjson')).json.accepted).toBe(2);
    expect((await L.query('SELECT sum(a) FROM fmt')).json.rows).toEqual([[15]]);
  });

  it('grows the schema: new columns later, missing fields are NULL', async () => {
    await L.ingest('grow', JSON.stringify([{ a: 1 }, { a: 2 }]));
    await L.ingest('grow', JSON.stringify([{ b: 'x' }, { a: 3, b: 'y', c: true }]));
    const r = await L.query('SELECT a, b, c FROM grow ORDER BY a');
    expect(r.json.rows).toEqual([[1, null, null], [2, null, null], [3, 'y', true], [null, 'x', null]]);
    const t = (await L.app.inject({ method: 'GET', url: '/v1/tables/grow' })).json();
    expect(t.columns.map((c: { name: string; type: string }) => `${c.name}:${c.type}`)).toEqual(['time:time', 'a:int', 'b:string', 'c:bool']);
  });

  it('promotes an int column to float when a fraction arrives', async () => {
    await L.ingest('promo', JSON.stringify([{ v: 1 }, { v: 2 }]));
    await L.ingest('promo', JSON.stringify([{ v: 2.5 }]));
    expect((await L.query('SELECT sum(v), max(v) FROM promo')).json.rows).toEqual([[5.5, 2.5]]);
  });

  it('rejects a type conflict atomically, naming row and column', async () => {
    await L.ingest('conflict', JSON.stringify([{ s: 'a', n: 1 }]));
    const bad = await L.ingest('conflict', JSON.stringify([{ s: 'b', n: 2 }, { s: 'c', n: 3 }, { s: 4, n: 4 }]));
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT', row: 2, column: 's' });
    // Conflicts inside one batch (no table type yet) are caught too.
    const bad2 = await L.ingest('conflict', JSON.stringify([{ z: 'x' }, { z: 1 }]));
    expect(bad2.json.error).toMatchObject({ code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT', row: 1, column: 'z' });
    expect(await count('conflict')).toBe(1);
    expect((await L.query('SELECT sum(n) FROM conflict')).json.rows).toEqual([[1]]);
  });

  it('names the NDJSON line of a malformed event and stores nothing of the batch', async () => {
    const body = '{"k":1}\n{"k":2}\n{"k":3\n{"k":4}';
    const r = await L.ingest('nd', body, 'application/x-ndjson');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'SHOAL_ERR_INGEST_BODY', line: 3 });
    expect((await L.query('SELECT count(*) FROM nd')).json.error.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_TABLE');
  });

  it('keeps unicode and very long strings exactly', async () => {
    const long = 'é'.repeat(20_000) + '🐟';
    const values = ['Zürich', '東京', '🐟🦈', 'a\u0000b', long, ''];
    await L.ingest('uni', JSON.stringify(values.map((s, i) => ({ s, i }))));
    const r = await L.query('SELECT s FROM uni ORDER BY i');
    expect(r.json.rows.map((x: string[]) => x[0])).toEqual(values);
    const lens = await L.query("SELECT length(s) FROM uni WHERE s LIKE '%🐟'");
    expect(lens.json.rows).toEqual([[20_001]]);
  });

  it('rejects a string over the byte limit', async () => {
    const r = await L.ingest('big', JSON.stringify([{ s: 'x'.repeat(LIMITS.stringBytesMax + 1) }]));
    expect(r.json.error.code).toBe('SHOAL_ERR_INGEST_VALUE');
  });

  it('stores nulls everywhere and counts them right', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => ({ a: i % 3 === 0 ? null : i, b: i % 5 === 0 ? null : `v${i % 7}`, c: null, d: i % 2 === 0 ? null : ['x'] }));
    await L.ingest('nulls', JSON.stringify(events));
    const expected = {
      a: events.filter((e) => e.a !== null).length,
      b: events.filter((e) => e.b !== null).length,
      d: events.filter((e) => e.d !== null).length,
      sumA: events.reduce((s, e) => s + (e.a ?? 0), 0),
    };
    const r = await L.query('SELECT count(*), count(a), count(b), count(d), sum(a) FROM nulls');
    expect(r.json.rows).toEqual([[1000, expected.a, expected.b, expected.d, expected.sumA]]);
    // A column that only ever held null has no type and no column.
    expect((await L.query('SELECT count(c) FROM nulls')).json.error.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_COLUMN');
  });

  it('splits rows across the 65,536-row block boundary without loss', async () => {
    const total = LIMITS.blockRowsMax * 2 + 123;
    let sent = 0;
    let sum = 0;
    while (sent < total) {
      const n = Math.min(40_000, total - sent);
      const batch = Array.from({ length: n }, (_, i) => ({ time: 1_700_000_000 + sent + i, k: (sent + i) % 1000 }));
      for (const e of batch) sum += e.k;
      expect((await L.ingest('blocks', JSON.stringify(batch))).json.accepted).toBe(n);
      sent += n;
    }
    const r = await L.query('SELECT count(*), sum(k), min(time), max(time) FROM blocks');
    expect(r.json.rows).toEqual([[total, sum, 1_700_000_000, 1_700_000_000 + total - 1]]);
    const table = L.leaf.store.tables.get('blocks')!;
    expect(table.sealed.length).toBe(2);
    expect(table.sealed.every((b) => b.rowCount === LIMITS.blockRowsMax)).toBe(true);
    expect(table.open.rowCount).toBe(123);
  });

  it('accepts ISO-8601 times and defaults a missing time to arrival', async () => {
    const before = Date.now() / 1000;
    await L.ingest('times', JSON.stringify([{ time: '2024-03-01T12:00:00Z', x: 1 }, { x: 2 }]));
    const r = await L.query('SELECT x, time FROM times ORDER BY x');
    expect(r.json.rows[0]).toEqual([1, Date.parse('2024-03-01T12:00:00Z') / 1000]);
    expect(r.json.rows[1][1]).toBeGreaterThanOrEqual(Math.floor(before));
    const bad = await L.ingest('times', JSON.stringify([{ time: 'yesterday' }]));
    expect(bad.json.error.code).toBe('SHOAL_ERR_INGEST_TIME');
    const ms = await L.ingest('times', JSON.stringify([{ time: 1_700_000_000_000 }]));
    expect(ms.json.error.code).toBe('SHOAL_ERR_INGEST_TIME');
  });

  it('rejects nested objects, numbers beyond float64 and wrong content types; stores an integer beyond 2^53 as a float', async () => {
    expect((await L.ingest('bad', '[{"o":{"x":1}}]')).json.error.code).toBe('SHOAL_ERR_INGEST_VALUE');
    expect((await L.ingest('huge', '[{"n":9007199254740993}]')).json).toEqual({ accepted: 1 });
    const huge = await L.query('SELECT n FROM huge');
    expect(huge.json.columns).toEqual([{ name: 'n', type: 'float' }]);
    expect(huge.json.rows).toEqual([[9007199254740992]]);
    expect((await L.ingest('bad', '[{"n":1e400}]')).json.error.code).toBe('SHOAL_ERR_INGEST_VALUE');
    expect((await L.ingest('bad', '[1,2]')).json.error.code).toBe('SHOAL_ERR_INGEST_EVENT');
    const ct = await L.ingest('bad', '[{"a":1}]', 'text/csv');
    expect(ct.status).toBe(415);
    expect(ct.json.error.code).toBe('SHOAL_ERR_INGEST_CONTENT_TYPE');
    expect((await L.ingest('bad table', '[]')).json.error.code).toBe('SHOAL_ERR_TABLE_NAME');
  });

  it('drops a retried batch with the same batch id', async () => {
    const body = JSON.stringify([{ v: 1 }, { v: 2 }]);
    expect((await L.ingest('dedupe', body, 'application/json', { 'x-shoal-batch-id': 'b-1' })).json).toEqual({ accepted: 2 });
    expect((await L.ingest('dedupe', body, 'application/json', { 'x-shoal-batch-id': 'b-1' })).json).toEqual({ accepted: 2, duplicate: true });
    expect(await count('dedupe')).toBe(2);
  });
});

describe('ingest while handing off', () => {
  it('answers a retry from what the leaf holds: duplicate if stored, else 503 saying it never will be', async () => {
    const T = await inProcessLeaf({ token: 'secret' });
    try {
      const post = (id: string, auth = 'Bearer secret') => T.app.inject({
        method: 'POST', url: '/v1/tables/h/events', payload: '[{"v":1},{"v":2},{"v":3}]',
        headers: { 'content-type': 'application/json', 'x-shoal-batch-id': id, authorization: auth },
      });
      expect((await post('kept')).json()).toEqual({ accepted: 3 });
      T.leaf.state = 'handing-off';
      const kept = await post('kept');
      expect(kept.statusCode).toBe(200);
      expect(kept.json()).toEqual({ accepted: 3, duplicate: true });
      const fresh = await post('fresh');
      expect(fresh.statusCode).toBe(503);
      expect(fresh.json().error.code).toBe('SHOAL_ERR_UNAVAILABLE');
      expect(fresh.headers['x-shoal-batch-stored']).toBe('never');
      // Without the token nothing is said about which batches the leaf holds.
      const stranger = await post('kept', 'Bearer wrong');
      expect(stranger.statusCode).toBe(503);
      expect(stranger.headers['x-shoal-batch-stored']).toBeUndefined();
      // A leaf still starting may yet take batches over from its predecessor: it says nothing.
      T.leaf.state = 'starting';
      const starting = await post('fresh');
      expect(starting.statusCode).toBe(503);
      expect(starting.headers['x-shoal-batch-stored']).toBeUndefined();
      T.leaf.state = 'serving';
      expect((await post('fresh')).json()).toEqual({ accepted: 3 });
    } finally {
      T.leaf.state = 'serving';
      await T.close();
    }
  });
});
