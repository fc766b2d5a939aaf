/**
 * The aggregator in-process against scripted fake members (node:http on loopback), so faults are
 * injected, not hoped for (STYLE rule 16): a leaf that refuses (503), one that stores a batch and
 * drops the connection before answering, one that rejects a batch, ports where nothing listens,
 * members that all report the same query error. Also the cluster file validation and the
 * coverage arithmetic. The real-process paths are in cluster.test.ts.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ShoalError } from '../query/errors.js';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig } from '../server/cluster/aggregator.js';
import { childTimeoutMs, combineCoverage, type Coverage } from '../server/cluster/cluster-query.js';
import { Member, parseClusterFile, type MemberSpec } from '../server/cluster/membership.js';
import { coverageLine } from '../server/cli/cmd-query.js';
import { batchRandom, pickTwo, Placements } from '../server/cluster/router.js';
import { deadUrl } from './support/cluster.js';

type Behaviour = 'ok' | 'refuse' | 'drop-after-store' | 'reject' | 'query-error' | 'slow' | 'drop-then-refuse' | 'drop-then-final';

interface Fake { id: string; url: string; batches: string[]; tries: string[]; behaviour: Behaviour; freeBytes: number; close(): Promise<void> }

const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

async function fakeMember(id: string, behaviour: Behaviour, freeBytes = 1_000, token: string | null = null): Promise<Fake> {
  const fake: Fake = { id, url: '', batches: [], tries: [], behaviour, freeBytes, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (token !== null && req.headers.authorization !== `Bearer ${token}`) return send(401, { error: { code: 'SHOAL_ERR_UNAUTHORIZED', message: 'token' } });
      if (req.url === '/v1/status') {
        return send(200, { role: 'leaf', leafId: id, state: 'serving', rows: 10, bytes: 100, memoryFreeBytes: fake.freeBytes, memoryBudgetBytes: 10_000, tables: { t: { rows: 10, bytes: 100 } } });
      }
      if (req.url === '/v1/query') {
        return send(400, { error: { code: 'SHOAL_ERR_QUERY_TYPE', message: 'sum() needs a number, "s" is a string', column: 's' } });
      }
      const batchId = String(req.headers['x-shoal-batch-id']);
      const firstTry = !fake.tries.includes(batchId);
      fake.tries.push(batchId);
      if (fake.behaviour === 'slow') {
        // Answers late: a client's resend arrives while this placement is still in progress.
        setTimeout(() => { const dup = fake.batches.includes(batchId); fake.batches.push(batchId); send(200, dup ? { accepted: 0, duplicate: true } : { accepted: 1 }); }, 300);
        return;
      }
      if (fake.behaviour === 'drop-then-refuse' || fake.behaviour === 'drop-then-final') {
        // Goes away with the first try unanswered and unstored (an ambiguous failure), then
        // refuses: plainly, or saying it holds no copy and stores nothing more (a leaf handing off).
        if (firstTry) { req.socket.destroy(); return; }
        if (fake.behaviour === 'drop-then-final') res.setHeader('x-shoal-batch-stored', 'never');
        return send(503, { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'handing off' } });
      }
      const duplicate = fake.batches.includes(batchId);
      if (fake.behaviour === 'refuse') return send(503, { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'handing off' } });
      if (fake.behaviour === 'reject') return send(400, { error: { code: 'SHOAL_ERR_INGEST_BODY', message: 'not JSON', line: 1 } });
      fake.batches.push(batchId);
      if (fake.behaviour === 'drop-after-store' && !duplicate) { req.socket.destroy(); return; }
      return send(200, duplicate ? { accepted: 0, duplicate: true } : { accepted: 1 });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  fake.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  closers.push(fake.close);
  return fake;
}

async function aggregatorOver(members: MemberSpec[], random?: () => number, token: string | null = null) {
  const agg = new Aggregator({ ...defaultAggregatorConfig(), port: 0, logLevel: 'silent', leafTimeoutMs: 500, ingestTimeoutMs: 500, token, memberToken: token }, members);
  if (random) agg.random = random;
  await agg.membership.checkAll();
  const app = buildAggregatorApp(agg);
  closers.push(async () => { await app.close(); await agg.close(); });
  const ingest = (batchId?: string, extra: Record<string, string> = {}) => app.inject({
    method: 'POST', url: '/v1/tables/t/events', payload: '{"a":1}',
    headers: { 'content-type': 'application/x-ndjson', ...(batchId ? { 'x-shoal-batch-id': batchId } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra },
  });
  return { agg, app, ingest };
}

describe('ingest router', () => {
  it('moves a refused batch (503) to another leaf', async () => {
    const busy = await fakeMember('busy', 'refuse', 2_000);
    const ok = await fakeMember('ok', 'ok', 1_000);
    const { ingest } = await aggregatorOver([busy, ok]);
    const res = await ingest('b-1');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ accepted: 1, leaf: 'ok' });
    expect(ok.batches).toEqual(['b-1']);
  });

  it('retries the same leaf with the same batch id after an ambiguous failure, so its dedupe drops the copy', async () => {
    const flaky = await fakeMember('flaky', 'drop-after-store', 2_000);
    const other = await fakeMember('other', 'ok', 1_000);
    const { ingest } = await aggregatorOver([flaky, other], () => 0);
    const res = await ingest();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 0, duplicate: true, leaf: 'flaky' });
    expect(flaky.batches).toHaveLength(2);
    expect(flaky.batches[0]).toBe(flaky.batches[1]);
    expect(flaky.batches[0]).toMatch(/^agg-/);
    expect(other.batches).toEqual([]);
  });

  it('returns a leaf\'s 4xx (a bad batch) to the client unchanged', async () => {
    const strict = await fakeMember('strict', 'reject');
    const { ingest } = await aggregatorOver([strict]);
    const res = await ingest();
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'SHOAL_ERR_INGEST_BODY', line: 1 });
  });

  it('answers 503 SHOAL_ERR_CLUSTER_NO_LEAF with every reason when no leaf takes the batch', async () => {
    const busy = await fakeMember('busy', 'refuse');
    const { ingest } = await aggregatorOver([{ id: 'gone', url: await deadUrl() }, busy]);
    const res = await ingest();
    expect(res.statusCode).toBe(503);
    const err = res.json().error;
    expect(err.code).toBe('SHOAL_ERR_CLUSTER_NO_LEAF');
    expect(err.failures).toEqual(expect.arrayContaining([
      { leaf: 'gone', reason: 'connection refused' },
      { leaf: 'busy', reason: 'HTTP 503: SHOAL_ERR_UNAVAILABLE: handing off' },
    ]));
    expect(res.headers['retry-after']).toBe('1');
  });

  it('sends a retried batch id to the leaf that took it, whose dedupe drops the copy', async () => {
    const fakes = await Promise.all(['p', 'q', 'r', 's'].map((id) => fakeMember(id, 'ok')));
    const { ingest } = await aggregatorOver(fakes);
    for (let i = 0; i < 8; i++) {
      const first = await ingest(`client-${i}`);
      const again = await ingest(`client-${i}`);
      expect(again.json()).toEqual({ accepted: 0, duplicate: true, leaf: first.json().leaf });
    }
    expect(fakes.reduce((n, f) => n + f.batches.length, 0)).toBe(16);
  });

  it('answers a resend of a batch still being placed from that placement, not with a second one', async () => {
    const slow = await fakeMember('slow', 'slow', 2_000);
    const other = await fakeMember('other', 'ok', 1_000);
    const { ingest } = await aggregatorOver([slow, other], () => 0);
    const first = ingest('resent-1');
    await new Promise((r) => setTimeout(r, 100));
    const [a, b] = await Promise.all([first, ingest('resent-1')]);
    expect(a.json()).toEqual({ accepted: 1, leaf: 'slow' });
    expect(b.json()).toEqual({ accepted: 1, duplicate: true, leaf: 'slow' });
    // One try in all: the resend never reached a member.
    expect([...slow.tries, ...other.tries]).toEqual(['resent-1']);
  });

  it('moves a batch on at once when the leaf of an ambiguous try says it holds no copy and stores nothing more', async () => {
    // The parent's deadline ends with this try's budget: waiting out the ambiguous try (its
    // deadline plus the margin) would pass it, so only the leaf's word lets the batch move on.
    const run = async (behaviour: Behaviour) => {
      const leaving = await fakeMember(`leaving-${behaviour}`, behaviour, 2_000);
      const other = await fakeMember(`other-${behaviour}`, 'ok', 1_000);
      const { ingest } = await aggregatorOver([leaving, other], () => 0);
      const res = await ingest(`b-${behaviour}`, { 'x-shoal-deadline-ms': String(Date.now() + 400) });
      return { res, leaving, other };
    };
    const final = await run('drop-then-final');
    expect(final.res.statusCode).toBe(200);
    expect(final.res.json()).toEqual({ accepted: 1, leaf: 'other-drop-then-final' });
    expect(final.other.batches).toEqual(['b-drop-then-final']);
    // Without it, the router may not send the batch anywhere else before the deadline.
    const plain = await run('drop-then-refuse');
    expect(plain.res.statusCode).toBe(503);
    expect(JSON.stringify(plain.res.json().error.failures)).toContain('an earlier try may still be stored');
    expect(plain.other.batches).toEqual([]);
  });

  it('draws the same pair for the same batch id, and spreads different ids', () => {
    const draws = (id: string) => { const r = batchRandom(id); return [r(), r()]; };
    expect(draws('batch-7')).toEqual(draws('batch-7'));
    expect(draws('batch-7')).not.toEqual(draws('batch-8'));
    const m = (id: string) => new Member({ id, url: `http://${id}` });
    const members = [m('a'), m('b'), m('c'), m('d')];
    const counts = new Map<string, number>();
    for (let i = 0; i < 4_000; i++) { const id = pickTwo(members, batchRandom(`b-${i}`))!.id; counts.set(id, (counts.get(id) ?? 0) + 1); }
    // Equal (unknown) free memory: the first of the pair wins, so each member gets about a quarter.
    for (const id of ['a', 'b', 'c', 'd']) expect(counts.get(id)).toBeGreaterThan(800);
  });

  it('remembers a bounded number of placements, newest kept', () => {
    const p = new Placements(3);
    for (const id of ['1', '2', '3', '4']) p.set(id, `leaf-${id}`);
    expect([p.size, p.get('1'), p.get('4')]).toEqual([3, undefined, 'leaf-4']);
  });

  it('picks the freer of two random members', () => {
    const m = (id: string, free: number | null) => Object.assign(new Member({ id, url: `http://${id}` }), { memoryFreeBytes: free });
    const members = [m('a', 10), m('b', 30), m('c', 20)];
    expect(pickTwo(members, () => 0)!.id).toBe('c'); // draws a, then a again -> the last one, c: 20 > 10
    expect(pickTwo(members, () => 0.99)!.id).toBe('b'); // draws c, then b: 30 > 20
    expect(pickTwo([members[0]!], () => 0.5)!.id).toBe('a');
    expect(pickTwo([], () => 0.5)).toBeNull();
  });

  it('prefers a member whose disk log takes writes, whatever its free memory; status sets it', () => {
    const m = (id: string, free: number, disk: boolean | null) => Object.assign(new Member({ id, url: `http://${id}` }), { memoryFreeBytes: free, diskWritable: disk });
    const members = [m('a', 10, true), m('b', 30, false), m('c', 20, null)];
    expect(pickTwo(members, () => 0.99)!.id).toBe('c'); // draws c, then b: b is freer but refuses writes
    expect(pickTwo([members[1]!, m('d', 5, false)], () => 0)!.id).toBe('b'); // both refuse: the freer is still tried
    const fromStatus = new Member({ id: 'x', url: 'http://x' });
    fromStatus.noteStatus({ role: 'leaf', state: 'serving', disk: { log: true, writable: false } });
    expect(fromStatus.diskWritable).toBe(false);
    fromStatus.noteStatus({ role: 'leaf', state: 'serving', disk: { log: false } });
    expect(fromStatus.diskWritable).toBeNull();
  });
});

describe('tokens', () => {
  it('requires the token on status and ingest, and sends it to the members (health checks included)', async () => {
    const secure = await fakeMember('secure', 'ok', 1_000, 's3cret');
    const { agg, app, ingest } = await aggregatorOver([secure], undefined, 's3cret');
    expect(agg.membership.members[0]!.health).toBe('healthy');
    expect((await app.inject({ method: 'GET', url: '/v1/status' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const status = await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: 'Bearer s3cret' } });
    expect(status.json().leaves[0]).toMatchObject({ id: 'secure', state: 'healthy', rows: 10 });
    expect((await ingest('t-1')).json()).toEqual({ accepted: 1, leaf: 'secure' });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('query fan-out', () => {
  it('returns a query error every member reports alike as that error', async () => {
    const a = await fakeMember('a', 'query-error');
    const b = await fakeMember('b', 'query-error');
    const { app } = await aggregatorOver([a, b]);
    const res = await app.inject({ method: 'POST', url: '/v1/query', payload: { sql: 'SELECT sum(s) FROM t' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'SHOAL_ERR_QUERY_TYPE', column: 's' });
  });

  it('answers 503 SHOAL_ERR_CLUSTER_NO_ANSWER, with the coverage, when no leaf answers', async () => {
    const { app } = await aggregatorOver([{ id: 'x', url: await deadUrl() }, { id: 'y', url: await deadUrl() }]);
    const res = await app.inject({ method: 'POST', url: '/v1/query', payload: { sql: 'SELECT count(*) FROM t' } });
    expect(res.statusCode).toBe(503);
    const err = res.json().error;
    expect(err.code).toBe('SHOAL_ERR_CLUSTER_NO_ANSWER');
    expect(err.coverage).toMatchObject({ percent: 0, leavesQueried: 2, leavesResponded: 0 });
    expect(err.coverage.failures.map((f: { leaf: string }) => f.leaf)).toEqual(['x', 'y']);
  });

  it('rejects a parse error before any fan-out', async () => {
    const { app } = await aggregatorOver([{ id: 'x', url: await deadUrl() }]);
    const res = await app.inject({ method: 'POST', url: '/v1/query', payload: { sql: 'SELEC 1' } });
    expect(res.json().error.code).toBe('SHOAL_ERR_QUERY_PARSE');
  });

  it('gives a child less time than its parent waits', () => {
    expect(childTimeoutMs(5_000)).toBe(4_750);
    expect(childTimeoutMs(1_000)).toBe(900);
    expect(childTimeoutMs(1)).toBe(1);
  });
});

describe('coverage', () => {
  const leaf = (rows: number): Coverage => ({ percent: 100, basis: 'rows', leavesQueried: 1, leavesResponded: 1, rowsScanned: rows, rowsHeld: rows, rowsExpected: rows, failures: [] });
  const dead = (id: string, rows: number | null) => {
    const m = new Member({ id, url: `http://${id}` });
    if (rows !== null) m.noteAnswer('t', rows);
    return { member: m, reason: 'connection refused' };
  };

  it('weighs a dead leaf by its last known row count', () => {
    const c = combineCoverage([leaf(300), leaf(100)], [dead('d', 100)], 't');
    expect(c).toMatchObject({ percent: 80, basis: 'rows', leavesQueried: 3, leavesResponded: 2, rowsHeld: 400, rowsExpected: 500 });
    expect(c.failures).toEqual([{ leaf: 'd', reason: 'connection refused' }]);
  });

  it('falls back to counting leaves when a dead leaf was never seen', () => {
    expect(combineCoverage([leaf(300), leaf(100), leaf(5)], [dead('d', null)], 't')).toMatchObject({ percent: 75, basis: 'leaves' });
  });

  it('rounds down, so a missing sliver never shows as 100%', () => {
    expect(combineCoverage([leaf(99_999)], [dead('d', 1)], 't').percent).toBe(99.99);
  });

  it('prints a one-line summary that never rounds up to 100%', () => {
    const c = combineCoverage([leaf(99_999)], [dead('d', 1)], 't');
    expect(coverageLine(c, 3)).toBe('coverage 99.99% (1/2 leaves, 100000 rows), 3 ms\n  missing d: connection refused');
    expect(coverageLine(combineCoverage([leaf(5)], [dead('x', null)], 't'))).toMatch(/^coverage 50% \(1\/2 leaves, 5 rows, by leaf count/);
  });

  it('sums child aggregators like the leaves beneath them', () => {
    const child = combineCoverage([leaf(300)], [dead('d', 100)], 't');
    const root = combineCoverage([child, leaf(100)], [], 't');
    const flat = combineCoverage([leaf(300), leaf(100)], [dead('d', 100)], 't');
    expect(root).toEqual(flat);
  });
});

describe('cluster file', () => {
  const bad = (text: string) => {
    try { parseClusterFile(text, 'c.json'); } catch (e) {
      expect(e).toBeInstanceOf(ShoalError);
      expect((e as ShoalError).code).toBe('SHOAL_ERR_CLUSTER_CONFIG');
      return (e as ShoalError).message;
    }
    throw new Error('no error');
  };

  it('accepts a list of leaves and normalises URLs', () => {
    expect(parseClusterFile('{"leaves":[{"id":"leaf-1","url":"http://127.0.0.1:7001/"}]}')).toEqual([{ id: 'leaf-1', url: 'http://127.0.0.1:7001' }]);
  });

  it('names what is wrong and where', () => {
    expect(bad('{')).toMatch(/c\.json: is not valid JSON/);
    expect(bad('[]')).toMatch(/"leaves" array/);
    expect(bad('{"leaves":[]}')).toMatch(/empty/);
    expect(bad('{"leaves":[{"id":"a b","url":"http://x:1"}]}')).toMatch(/leaves\[0\]\.id/);
    expect(bad('{"leaves":[{"id":"a","url":"ftp://x:1"}]}')).toMatch(/leaves\[0\]\.url must start with http/);
    expect(bad('{"leaves":[{"id":"a","url":"http://x:1/v1"}]}')).toMatch(/without a path/);
    expect(bad('{"leaves":[{"id":"a","url":"http://x:1"},{"id":"a","url":"http://x:2"}]}')).toMatch(/leaves\[1\]\.id "a" appears twice/);
    expect(bad('{"leaves":[{"id":"a","url":"http://x:1"},{"id":"b","url":"http://x:1"}]}')).toMatch(/leaves\[1\]\.url .* appears twice/);
  });
});
