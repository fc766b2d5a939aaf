/**
 * The resend check that keeps a batch resent through another aggregator from being stored twice
 * (docs/cluster.md, "Several aggregators"), in-process, faults made on purpose:
 *
 * - The leaf's `GET /v1/batches/:id`: a stored id answers its rows; an id being decoded is waited
 *   for (a held decode, released by the test) and then answers as stored; one still held past
 *   LIMITS.batchLookupWaitMs answers `inFlight`; a refused batch or an abandoned upload leaves
 *   nothing in flight; the token is required; a leaf still starting cannot say.
 * - The router, over scripted members: a marked resend it did not place asks the members first;
 *   a member holding the id answers for it (nothing posted); a member with it in flight gets it,
 *   and no other member does until that try's deadline could have passed; an unmarked batch, or
 *   one this router placed, asks nobody; a member without the route (an older version) is
 *   counted as not knowing.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { isShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { decodeBody } from '../query/storage/ingest-scan.js';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig } from '../server/cluster/aggregator.js';
import type { MemberSpec } from '../server/cluster/membership.js';
import type { DecodeRunner } from '../server/leaf/ingest-pool.js';
import type { DecodeReply, DecodeTask } from '../server/leaf/ingest-worker.js';
import { NDJSON_RESEND_CONTENT_TYPE } from '../loader/transport.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => { for (const c of closers.reverse()) await c().catch(() => {}); });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The leaf's lookup route

/** A decode runner that holds every task until the test releases it (as ingest-concurrency's). */
class HeldRunner implements DecodeRunner {
  readonly held: { task: DecodeTask; done: (r: DecodeReply) => void }[] = [];
  run(task: DecodeTask): Promise<DecodeReply> { return new Promise((done) => { this.held.push({ task, done }); }); }
  release(): void {
    const h = this.held.shift()!;
    try {
      const d = decodeBody(h.task.body, h.task.format, new Map(h.task.schema.map(([n, t]) => [n, { type: t }])), h.task.nowSeconds);
      h.done({ ok: d.batch, scanMs: d.scanMs, parseMs: d.parseMs, buildMs: d.buildMs, body: h.task.body });
    } catch (e) {
      if (!isShoalError(e)) throw e;
      h.done({ error: { code: e.code, message: e.message, where: e.where, extra: e.extra }, body: h.task.body });
    }
  }
  async close(): Promise<void> { /* nothing runs */ }
  async until(n: number): Promise<void> {
    for (let i = 0; i < 500 && this.held.length < n; i++) await sleep(2);
    expect(this.held.length).toBe(n);
  }
}

async function heldLeaf(overrides: Parameters<typeof inProcessLeaf>[0] = {}) {
  const runner = new HeldRunner();
  const L = await inProcessLeaf({ ingestWorkers: 1, ingestQueueMax: 4, ingestInlineBytesMax: 0, ...overrides }, () => runner);
  closers.push(L.close);
  const post = (id: string, body: string, headers: Record<string, string> = {}) => L.app.inject({
    method: 'POST', url: '/v1/tables/t/events', payload: body, headers: { 'content-type': 'application/x-ndjson', 'x-shoal-batch-id': id, ...headers },
  });
  const lookup = async (id: string, headers: Record<string, string> = {}) => {
    const res = await L.app.inject({ method: 'GET', url: `/v1/batches/${encodeURIComponent(id)}`, headers });
    return { status: res.statusCode, body: res.json() as Record<string, any> };
  };
  return { L, runner, post, lookup };
}

const rows3 = '{"v":1}\n{"v":2}\n{"v":3}';

describe('GET /v1/batches/:id on a leaf', () => {
  it('answers a stored id with its rows and an unknown one with null, at once', async () => {
    const { runner, post, lookup } = await heldLeaf();
    expect(await lookup('never-sent')).toEqual({ status: 200, body: { stored: null, inFlight: false } });
    const p = post('b/1 é', rows3);
    await runner.until(1);
    runner.release();
    expect((await p).json()).toEqual({ accepted: 3 });
    expect(await lookup('b/1 é')).toEqual({ status: 200, body: { stored: 3, inFlight: false } });
  });

  it('waits for an id being decoded, then answers it stored', async () => {
    const { L, runner, post, lookup } = await heldLeaf();
    const p = post('held', rows3);
    await runner.until(1);
    expect(L.leaf.batchesInFlight.has('held')).toBe(true);
    let answered: unknown = null;
    const q = lookup('held').then((a) => { answered = a; return a; });
    await sleep(60);
    expect(answered).toBeNull();
    runner.release();
    expect(await q).toEqual({ status: 200, body: { stored: 3, inFlight: false } });
    expect((await p).json()).toEqual({ accepted: 3 });
    expect(L.leaf.batchesInFlight.size).toBe(0);
  });

  it('says inFlight when the try is still held after the wait, and stored once it is through', async () => {
    const { runner, post, lookup } = await heldLeaf();
    const p = post('slow', rows3);
    await runner.until(1);
    const started = Date.now();
    expect(await lookup('slow')).toEqual({ status: 200, body: { stored: null, inFlight: true } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(LIMITS.batchLookupWaitMs - 5);
    runner.release();
    await p;
    expect(await lookup('slow')).toEqual({ status: 200, body: { stored: 3, inFlight: false } });
  });

  it('leaves nothing in flight after a refused batch or an abandoned upload', async () => {
    const { L, runner, post, lookup } = await heldLeaf();
    const bad = post('bad', '{"v":1}\nnot json');
    await runner.until(1);
    runner.release();
    expect((await bad).statusCode).toBe(400);
    expect(await lookup('bad')).toEqual({ status: 200, body: { stored: null, inFlight: false } });
    // A real socket: headers and half a body, then the client goes away.
    await L.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (L.app.server.address() as net.AddressInfo).port;
    const sock = net.connect(port, '127.0.0.1');
    closers.push(async () => sock.destroy()); // before the leaf closes, should an expect below fail
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`POST /v1/tables/t/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\nx-shoal-batch-id: cut\r\ncontent-length: 1000\r\n\r\n{"v":1}\n`);
    for (let i = 0; i < 200 && !L.leaf.batchesInFlight.has('cut'); i++) await sleep(5);
    expect(L.leaf.batchesInFlight.has('cut')).toBe(true);
    sock.destroy();
    for (let i = 0; i < 200 && L.leaf.batchesInFlight.has('cut'); i++) await sleep(5);
    expect(L.leaf.batchesInFlight.size).toBe(0);
    expect(await lookup('cut')).toEqual({ status: 200, body: { stored: null, inFlight: false } });
  });

  it('requires the token, and refuses while the leaf is starting', async () => {
    const { L, lookup } = await heldLeaf({ token: 'sekrit' });
    expect((await lookup('x')).status).toBe(401);
    expect(await lookup('x', { authorization: 'Bearer sekrit' })).toEqual({ status: 200, body: { stored: null, inFlight: false } });
    L.leaf.state = 'starting';
    const starting = await lookup('x', { authorization: 'Bearer sekrit' });
    expect(starting.status).toBe(503);
    expect(starting.body.error.code).toBe('SHOAL_ERR_UNAVAILABLE');
  });
});

// ---------------------------------------------------------------------------------------------
// The router's check, over scripted members

interface Fake {
  readonly id: string;
  url: string;
  /** What GET /v1/batches/:id answers (null: 404, as an older version without the route). */
  lookup: { stored: number | null; inFlight: boolean } | null;
  /** What a POST of a batch gets. */
  ingest: 'ok' | 'refuse';
  readonly lookups: string[];
  readonly posts: { id: string; contentType: string | undefined; atMs: number }[];
}

async function fakeMember(id: string, lookup: Fake['lookup'], ingest: Fake['ingest'] = 'ok'): Promise<Fake> {
  const fake: Fake = { id, url: '', lookup, ingest, lookups: [], posts: [] };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const send = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (req.url === '/v1/status') {
        return send(200, { role: 'leaf', leafId: id, state: 'serving', rows: 0, bytes: 0, memoryFreeBytes: 1000, memoryBudgetBytes: 10_000, tables: {} });
      }
      if (req.method === 'GET' && req.url!.startsWith('/v1/batches/')) {
        fake.lookups.push(decodeURIComponent(req.url!.slice('/v1/batches/'.length)));
        return fake.lookup === null ? send(404, { error: { code: 'SHOAL_ERR_NOT_FOUND', message: 'no route' } }) : send(200, fake.lookup);
      }
      fake.posts.push({ id: String(req.headers['x-shoal-batch-id']), contentType: req.headers['content-type'], atMs: Date.now() });
      if (fake.ingest === 'refuse') return send(503, { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'queue full' } });
      return send(200, { accepted: 1 });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  closers.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return fake;
}

async function aggregatorOver(fakes: Fake[]) {
  const members: MemberSpec[] = fakes.map((f) => ({ id: f.id, url: f.url }));
  const agg = new Aggregator({ ...defaultAggregatorConfig(), port: 0, logLevel: 'silent', leafTimeoutMs: 500, ingestTimeoutMs: 500 }, members);
  await agg.membership.checkAll();
  const app = buildAggregatorApp(agg);
  closers.push(async () => { await app.close(); await agg.close(); });
  const send = async (batchId: string, resend: boolean) => {
    const res = await app.inject({
      method: 'POST', url: '/v1/tables/t/events', payload: '{"a":1}',
      headers: { 'content-type': resend ? NDJSON_RESEND_CONTENT_TYPE : 'application/x-ndjson', 'x-shoal-batch-id': batchId },
    });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  return { agg, send };
}

describe('the router\'s resend check', () => {
  it('answers a resend from the member that holds it, posting nothing', async () => {
    const fakes = [await fakeMember('m1', { stored: null, inFlight: false }), await fakeMember('m2', { stored: 5, inFlight: false }), await fakeMember('m3', { stored: null, inFlight: false })];
    const { send } = await aggregatorOver(fakes);
    expect(await send('r-1', true)).toEqual({ status: 200, body: { accepted: 5, duplicate: true, leaf: 'm2' } });
    expect(fakes.map((f) => f.lookups)).toEqual([['r-1'], ['r-1'], ['r-1']]);
    expect(fakes.flatMap((f) => f.posts)).toEqual([]);
    // Remembered: the next resend of the id goes to m2 without asking anyone.
    await send('r-1', true);
    expect(fakes.map((f) => f.lookups.length)).toEqual([1, 1, 1]);
    expect(fakes[1]!.posts.map((p) => p.id)).toEqual(['r-1']);
  });

  it('sends a resend to the member that has it in flight, whatever the random draw', async () => {
    for (let i = 0; i < 6; i++) {
      const fakes = [await fakeMember('m1', { stored: null, inFlight: false }), await fakeMember('m2', { stored: null, inFlight: false }), await fakeMember('m3', { stored: null, inFlight: true })];
      const { send } = await aggregatorOver(fakes);
      expect((await send(`f-${i}`, true)).body).toEqual({ accepted: 1, leaf: 'm3' });
      expect(fakes.map((f) => f.posts.length)).toEqual([0, 0, 1]);
      // The mark goes on with the batch (a child aggregator makes its own check).
      expect(fakes[2]!.posts[0]!.contentType).toBe(NDJSON_RESEND_CONTENT_TYPE);
    }
  });

  it('when the member with it in flight refuses, waits out that try\'s deadline before another member gets it', async () => {
    const fakes = [await fakeMember('m1', { stored: null, inFlight: true }, 'refuse'), await fakeMember('m2', { stored: null, inFlight: false })];
    const { send } = await aggregatorOver(fakes);
    const started = Date.now();
    expect((await send('w-1', true)).body).toEqual({ accepted: 1, leaf: 'm2' });
    expect(fakes[0]!.posts.length).toBe(1);
    // ingestTimeoutMs is 500 here: the earlier try could be stored until then (plus the margin).
    expect(fakes[1]!.posts[0]!.atMs - started).toBeGreaterThanOrEqual(500 + LIMITS.ingestDeadlineMarginMs - 20);
  });

  it('places a resend nobody holds as usual; a member without the route counts as not knowing', async () => {
    const fakes = [await fakeMember('m1', null), await fakeMember('m2', { stored: null, inFlight: false })];
    const { send } = await aggregatorOver(fakes);
    const r = await send('n-1', true);
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(fakes.map((f) => f.lookups)).toEqual([['n-1'], ['n-1']]);
    expect(fakes.flatMap((f) => f.posts).length).toBe(1);
  });

  it('asks nobody for an unmarked batch, or for a resend of one it placed itself', async () => {
    const fakes = [await fakeMember('m1', { stored: 9, inFlight: false }), await fakeMember('m2', { stored: 9, inFlight: false })];
    const { send } = await aggregatorOver(fakes);
    expect((await send('u-1', false)).body).toMatchObject({ accepted: 1 });
    expect((await send('u-1', true)).body).toMatchObject({ accepted: 1 });
    expect(fakes.flatMap((f) => f.lookups)).toEqual([]);
    // Both tries went to the same member (the placement it remembered).
    expect(fakes.filter((f) => f.posts.length > 0).map((f) => f.posts.length)).toEqual([2]);
  });
});

describe('GET /v1/batches/:id on an aggregator (a tree)', () => {
  it('answers from its members, so a parent\'s resend check sees a copy stored under a child', async () => {
    const holder = await fakeMember('leaf-a', { stored: 42, inFlight: false });
    const other = await fakeMember('leaf-b', { stored: null, inFlight: false });
    const { agg } = await aggregatorOver([holder, other]);
    const app = buildAggregatorApp(agg);
    closers.push(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/v1/batches/b-1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ stored: 42, inFlight: false, unknown: 0 });
    expect(holder.lookups).toEqual(['b-1']);
    expect(other.lookups).toEqual(['b-1']);
    holder.lookup = { stored: null, inFlight: true };
    expect((await app.inject({ method: 'GET', url: '/v1/batches/b-2' })).json()).toEqual({ stored: null, inFlight: true, unknown: 0 });
    holder.lookup = null;
    expect((await app.inject({ method: 'GET', url: '/v1/batches/b-3' })).json()).toEqual({ stored: null, inFlight: false, unknown: 1 });
  });
});
