/**
 * Ingest with decoding off the event loop (server/leaf/ingest-pool.ts): batches are held "in the
 * worker" by a decode runner the test controls, so each race happens on purpose, not by luck:
 * a full decode queue refuses at once (503 + Retry-After); a retry of a batch id while the first
 * try decodes is stored once; a handoff that starts while batches decode stores none of them
 * after its save and loses nothing it acknowledged; a schema change between two batches decoded
 * against the same schema is checked again at commit, with the very error a decode now gives;
 * a deadline that passes while a batch decodes refuses it. Then the worker path, with real
 * threads, must answer every edge case exactly as the event-loop path does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { isShoalError } from '../query/errors.js';
import { decodeBody } from '../query/storage/ingest-scan.js';
import { LeafStore } from '../query/storage/leaf-store.js';
import { ShmBlockHome } from '../server/durability/shm-blocks.js';
import { removeSegments, restoreFromShm, saveToShm } from '../server/durability/shm-handoff.js';
import type { DecodeRunner } from '../server/leaf/ingest-pool.js';
import type { DecodeReply, DecodeTask } from '../server/leaf/ingest-worker.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';

/** Decodes as the worker does, in this thread, when the test lets a held task go. */
function reply(task: DecodeTask): DecodeReply {
  try {
    const d = decodeBody(task.body, task.format, new Map(task.schema.map(([n, t]) => [n, { type: t }])), task.nowSeconds);
    return { ok: d.batch, scanMs: d.scanMs, parseMs: d.parseMs, buildMs: d.buildMs, body: task.body };
  } catch (e) {
    if (!isShoalError(e)) throw e;
    return { error: { code: e.code, message: e.message, where: e.where, extra: e.extra }, body: task.body };
  }
}

/** A decode runner that holds every task until the test releases it. */
class HeldRunner implements DecodeRunner {
  readonly held: { task: DecodeTask; done: (r: DecodeReply) => void }[] = [];
  run(task: DecodeTask): Promise<DecodeReply> {
    return new Promise((done) => { this.held.push({ task, done }); });
  }
  /** Lets held task `i` (in arrival order among those still held) finish. */
  release(i = 0): void {
    const [h] = this.held.splice(i, 1);
    h!.done(reply(h!.task));
  }
  async close(): Promise<void> { /* nothing runs */ }
  /** Waits until `n` tasks are held (requests reach the pool a few ticks after inject). */
  async until(n: number): Promise<void> {
    for (let i = 0; i < 500 && this.held.length < n; i++) await new Promise((r) => setTimeout(r, 2));
    expect(this.held.length).toBe(n);
  }
}

async function heldLeaf(overrides: Parameters<typeof inProcessLeaf>[0] = {}) {
  const runner = new HeldRunner();
  const L = await inProcessLeaf({ ingestWorkers: 1, ingestQueueMax: 4, ingestInlineBytesMax: 0, ...overrides }, () => runner);
  const post = (table: string, body: string, headers: Record<string, string> = {}) => L.app.inject({
    method: 'POST', url: `/v1/tables/${table}/events`, payload: body, headers: { 'content-type': 'application/x-ndjson', ...headers },
  });
  const rows = async (sql: string) => (await L.query(sql)).json.rows;
  return { L, runner, post, rows };
}

const ndjson = (events: object[]) => events.map((e) => JSON.stringify(e)).join('\n');

const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers.splice(0)) await c(); });

describe('ingest decoded on worker threads: races made on purpose', () => {
  it('refuses a batch at once when the decode queue is full: 503 SHOAL_ERR_UNAVAILABLE with Retry-After', async () => {
    const { L, runner, post, rows } = await heldLeaf({ ingestWorkers: 1, ingestQueueMax: 1 });
    closers.push(L.close);
    const first = post('q', ndjson([{ v: 1 }]));
    const second = post('q', ndjson([{ v: 2 }]));
    await runner.until(2);
    const third = await post('q', ndjson([{ v: 3 }]));
    expect(third.statusCode).toBe(503);
    expect(third.headers['retry-after']).toBe('1');
    expect(third.json().error.code).toBe('SHOAL_ERR_UNAVAILABLE');
    expect(L.leaf.ingestStatus().refusedQueueFull).toBe(1);
    runner.release(); runner.release();
    expect((await first).json()).toEqual({ accepted: 1 });
    expect((await second).json()).toEqual({ accepted: 1 });
    // Room again: the next batch is taken.
    const fourth = post('q', ndjson([{ v: 4 }]));
    await runner.until(1);
    runner.release();
    expect((await fourth).json()).toEqual({ accepted: 1 });
    expect(await rows('SELECT count(*), sum(v) FROM q')).toEqual([[3, 7]]);
  });

  for (const order of ['first try first', 'retry first'] as const) {
    it(`stores a retry of a batch id that is still decoding once (${order} committed)`, async () => {
      const { L, runner, post, rows } = await heldLeaf();
      closers.push(L.close);
      const body = ndjson([{ k: 1 }, { k: 2 }, { k: 3 }]);
      const a = post('dup', body, { 'x-shoal-batch-id': 'same' });
      const b = post('dup', body, { 'x-shoal-batch-id': 'same' });
      await runner.until(2);
      runner.release(order === 'first try first' ? 0 : 1);
      runner.release();
      const answers = [(await a).json(), (await b).json()];
      expect(answers).toContainEqual({ accepted: 3 });
      expect(answers).toContainEqual({ accepted: 3, duplicate: true });
      expect(await rows('SELECT count(*), sum(k) FROM dup')).toEqual([[3, 6]]);
    });
  }

  it.runIf(shm.nativeAvailable())('a handoff while batches decode: none stored after the save, every acknowledged row in it', async () => {
    const leafId = `conc${process.pid}`;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-conc-'));
    const { L, runner, post } = await heldLeaf();
    closers.push(async () => { await L.close(); removeSegments(leafId); fs.rmSync(dataDir, { recursive: true, force: true }); });
    // Acknowledged before the handoff.
    const before = post('h', ndjson([{ n: 1 }, { n: 2 }]), { 'x-shoal-batch-id': 'before' });
    await runner.until(1);
    runner.release();
    expect((await before).json()).toEqual({ accepted: 2 });
    // Three batches in the worker when the handoff starts.
    const inWorker = [10, 20, 30].map((n) => post('h', ndjson([{ n }]), { 'x-shoal-batch-id': `b${n}` }));
    await runner.until(3);
    // What the lifecycle's handoff does first, synchronously: stop serving; then it saves.
    L.leaf.state = 'handing-off';
    const saved = saveToShm(leafId, L.leaf.store, null, { dataDir, ttlSeconds: null }, null);
    expect(saved.rows).toBe(2);
    while (runner.held.length > 0) runner.release();
    for (const r of await Promise.all(inWorker)) {
      expect(r.statusCode).toBe(503);
      expect(r.json().error.code).toBe('SHOAL_ERR_UNAVAILABLE');
      expect(r.headers['x-shoal-batch-stored']).toBe('never');
    }
    // A retry of the acknowledged batch is answered from what the leaf holds.
    const retry = await post('h', ndjson([{ n: 1 }, { n: 2 }]), { 'x-shoal-batch-id': 'before' });
    expect(retry.json()).toEqual({ accepted: 2, duplicate: true });
    expect(L.leaf.store.rowCount()).toBe(2);
    // The successor takes exactly the acknowledged rows.
    const next = new LeafStore(1 << 30);
    const home = new ShmBlockHome(leafId);
    next.home = home;
    const taken = restoreFromShm(leafId, next, { dataDir, ttlSeconds: null }, home);
    expect(taken.ok).toBe(true);
    expect(next.rowCount()).toBe(2);
    expect(next.duplicateRows('before')).toBe(2);
    expect(next.duplicateRows('b10')).toBeNull();
  });

  it('a new column typed differently by two batches decoded together: the second is refused at commit, with the error a decode now gives', async () => {
    for (const first of ['int', 'string'] as const) {
      const { L, runner, post, rows } = await heldLeaf();
      closers.push(L.close);
      const seed = post('race', ndjson([{ a: 1 }]));
      await runner.until(1);
      runner.release();
      await seed;
      const ints = ndjson([{ a: 2, x: 5 }, { a: 3, x: 6 }]);
      const strings = ndjson([{ a: 4 }, { a: 5, x: 'five' }]);
      const pi = post('race', ints);
      const ps = post('race', strings);
      await runner.until(2);
      runner.release(first === 'int' ? 0 : 1);
      runner.release();
      const [ri, rs] = [await pi, await ps];
      const [winner, loser, loserBody] = first === 'int' ? [ri, rs, strings] : [rs, ri, ints];
      expect(winner.statusCode).toBe(200);
      expect(loser.statusCode).toBe(400);
      // The same error a decode against the table as it is now gives: code, row, line, column.
      const table = L.leaf.store.tables.get('race')!;
      let expected: unknown = null;
      try { decodeBody(Buffer.from(loserBody), 'ndjson', table.schema, 0); } catch (e) { expected = (e as { toJSON(): unknown }).toJSON(); }
      expect(loser.json()).toEqual(expected);
      expect(loser.json().error).toMatchObject({ code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT', column: 'x' });
      expect(L.leaf.ingestStatus().redecodes).toBe(1);
      expect(table.schema.get('x')!.type).toBe(first);
      expect(await rows('SELECT count(*), sum(a) FROM race')).toEqual([[3, first === 'int' ? 6 : 10]]);
    }
  });

  it('int widened to float by one batch while another decodes against the int schema: both stored, the column float', async () => {
    const { L, runner, post, rows } = await heldLeaf();
    closers.push(L.close);
    const seed = post('widen', ndjson([{ v: 1 }]));
    await runner.until(1);
    runner.release();
    await seed;
    const pf = post('widen', ndjson([{ v: 2.5 }]));
    const pi = post('widen', ndjson([{ v: 4 }, { v: 5, w: true }]));
    await runner.until(2);
    runner.release(); runner.release();
    expect((await pf).json()).toEqual({ accepted: 1 });
    expect((await pi).json()).toEqual({ accepted: 2 });
    expect(L.leaf.store.tables.get('widen')!.schema.get('v')!.type).toBe('float');
    expect(await rows('SELECT count(*), sum(v), count(w) FROM widen')).toEqual([[4, 12.5, 1]]);
    // Two batches that create the same table while both decode: one table, both stored.
    const c1 = post('fresh', ndjson([{ s: 'a' }]));
    const c2 = post('fresh', ndjson([{ s: 'b' }, { s: 'a', t: ['x'] }]));
    await runner.until(2);
    runner.release(1); runner.release();
    expect([(await c1).statusCode, (await c2).statusCode]).toEqual([200, 200]);
    expect(await rows('SELECT s, count(*) FROM fresh GROUP BY s ORDER BY s')).toEqual([['a', 2], ['b', 1]]);
  });

  it('refuses a batch whose deadline passed while it decoded (checked right before the log)', async () => {
    const { L, runner, post } = await heldLeaf();
    closers.push(L.close);
    // Far enough ahead that a loaded machine still admits the batch before it (the check when the
    // leaf reads the body would refuse it there, and nothing would be held).
    const deadline = Date.now() + 1_000;
    const p = post('late', ndjson([{ v: 1 }]), { 'x-shoal-deadline-ms': String(deadline) });
    await runner.until(1);
    await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 20));
    runner.release();
    const r = await p;
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('SHOAL_ERR_INGEST_DEADLINE');
    expect(L.leaf.store.tables.has('late')).toBe(false);
  });
});

describe('the worker path answers exactly as the event loop does', () => {
  // Bodies of test/ingest.test.ts and test/bad-input.test.ts shapes, and some the fast scan
  // declines: each goes to a leaf decoding inline and to one decoding on real worker threads.
  const cases: [string, string, string][] = [
    ['t1', '[{"a":1},{"a":2}]', 'application/json'],
    ['t1', '{"a":3}', 'application/json'],
    ['t1', '{"a":4}\n\n{"a":5}\r\n', 'application/x-ndjson'],
    ['t1', '[{"a":2.5,"s":"x"}]', 'application/json'],
    ['t1', '[{"s":4}]', 'application/json'],
    ['t1', '[{"z":"x"},{"z":1}]', 'application/json'],
    ['t1', '{"k":1}\n{"k":2}\n{"k":3\n{"k":4}', 'application/x-ndjson'],
    ['t1', JSON.stringify(['Zürich', '東京', '🐟🦈', 'a\u0000b', 'é'.repeat(2000), ''].map((s, i) => ({ s, i }))), 'application/json'],
    ['t1', '[{"o":{"x":1}}]', 'application/json'],
    ['t1', '[{"n":9007199254740993}]', 'application/json'],
    ['t1', '[{"n":1e400}]', 'application/json'],
    ['t1', '[1,2]', 'application/json'],
    ['t1', '[{"time":"2024-03-01T12:00:00Z","x":1},{"x":2,"time":1700000000}]', 'application/json'],
    ['t1', '[{"time":"yesterday"}]', 'application/json'],
    ['t1', '\uFEFF[{"z": 2, "time": 1700000001}]', 'application/json'],
    ['t1', '{"a":1,"a":"dup"}', 'application/x-ndjson'],
    ['t1', '{"tags":["a","b"],"v":null}\n{"tags":[],"v":true}\n{"tags":["a",1]}', 'application/x-ndjson'],
    ['t1', '{"tags":["c"],"e":"\\u00e9\\n"}\n{"0":1}', 'application/x-ndjson'],
    ['t2', Array.from({ length: 3000 }, (_, i) => JSON.stringify({ time: 1_700_000_000 + i, u: `u${i % 700}`, n: i % 3 === 0 ? null : i, f: i / 7, b: i % 2 === 0, tags: i % 5 === 0 ? null : ['x', `t${i % 9}`] })).join('\n'), 'application/x-ndjson'],
  ];

  it('same answers, same schema, same rows', async () => {
    const inline = await inProcessLeaf({ ingestWorkers: 0 });
    const workers = await inProcessLeaf({ ingestWorkers: 2, ingestInlineBytesMax: 0 });
    closers.push(inline.close, workers.close);
    for (const [table, body, type] of cases) {
      const a = await inline.ingest(table, body, type);
      const b = await workers.ingest(table, body, type);
      expect(b, body.slice(0, 120)).toEqual(a);
    }
    expect(workers.leaf.ingestStatus().workerBatches).toBeGreaterThan(10);
    for (const table of ['t1', 't2']) {
      const schema = async (L: typeof inline) => (await L.app.inject({ method: 'GET', url: `/v1/tables/${table}` })).json().columns;
      expect(await schema(workers)).toEqual(await schema(inline));
      // Events without a time got their arrival time, which differs between the two leaves.
      const recent = Date.now() / 1000 - 3600;
      const all = async (L: typeof inline) => ((await L.query(`SELECT * FROM ${table} LIMIT 100000`)).json.rows as unknown[][])
        .map((r) => JSON.stringify([(r[0] as number) > recent ? 'arrival' : r[0], ...r.slice(1)])).sort();
      expect(await all(workers)).toEqual(await all(inline));
    }
  });
});
