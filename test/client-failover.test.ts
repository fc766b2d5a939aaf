/**
 * Clients with several servers (`--url a,b`, SHOAL_URL=a,b; docs/cli.md, docs/cluster.md
 * "Several aggregators"):
 *
 * - resolveUrls: lists parsed like one URL each, duplicates dropped, bounded, a bad entry named.
 * - The loader's failover transport, over scripted transports (faults injected, STYLE rule 16):
 *   it moves on after a connection error and stays there; a batch whose answer was lost goes to
 *   the next server under the same id, marked a resend; an HTTP answer is never failed over; a
 *   GET is not failed over after a timeout; a request no server answers names each and why.
 * - The CLI's ServerClient over loopback servers: the same rule for queries and status.
 * - Real processes (`npm run build` first): three leaves, two aggregators over one cluster file.
 *   A resend through the second aggregator of a batch a leaf already holds is answered
 *   `duplicate` from that leaf; a dying aggregator that stored a batch and never answered costs
 *   no second copy; `shoal load --url A,B` while A is killed with SIGKILL exits 0 and the
 *   cluster holds exactly the rows sent (count and sum); `shoal query --url dead,live` and
 *   SHOAL_URL=dead,live answer from the live one; a bad entry in the list is an error naming it.
 */
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../query/limits.js';
import { ClientError, ServerClient } from '../server/cli/client.js';
import { CliError, resolveUrl, resolveUrls } from '../server/cli/common.js';
import { resendMarked } from '../server/cluster/router.js';
import { ReportBuilder } from '../loader/report.js';
import { ColumnTypes } from '../loader/row-check.js';
import { Sender } from '../loader/sender.js';
import { contact } from '../loader/contact.js';
import { ingest, defaultIngestOptions } from '../loader/ingest.js';
import { defaultSendOptions } from '../loader/options.js';
import { failoverTransport, httpTransports, NDJSON_RESEND_CONTENT_TYPE, serversOf, type FailoverAnswer, type PostOptions, type Transport, type TransportAnswer } from '../loader/transport.js';
import { deadUrl, runCli, getJson, postJson, startAggregator, startClusterLeaf, waitFor, writeClusterFile, type ShoalProcess } from './support/cluster.js';
import { leafCliExists, type LeafProcess } from './support/processes.js';

// ---------------------------------------------------------------------------------------------
// resolveUrls

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.SHOAL_URL;
  if (value === undefined) delete process.env.SHOAL_URL; else process.env.SHOAL_URL = value;
  try { return fn(); } finally { if (saved === undefined) delete process.env.SHOAL_URL; else process.env.SHOAL_URL = saved; }
}

describe('resolveUrls', () => {
  it('takes a comma-separated --url, each entry parsed as one URL, duplicates dropped, order kept', () => {
    expect(resolveUrls({ url: ':7000, localhost:7100,http://127.0.0.1:7000/,10.0.0.2:7000' }))
      .toEqual(['http://127.0.0.1:7000', 'http://localhost:7100', 'http://10.0.0.2:7000']);
    expect(resolveUrls({ url: 'http://127.0.0.1:7000' })).toEqual(['http://127.0.0.1:7000']);
  });

  it('reads SHOAL_URL=a,b when no flag is given, and the default without either', () => {
    withEnv(':7001,:7002', () => expect(resolveUrls({})).toEqual(['http://127.0.0.1:7001', 'http://127.0.0.1:7002']));
    withEnv(undefined, () => expect(resolveUrls({})).toEqual(['http://127.0.0.1:7000']));
    withEnv(':7001,:7002', () => expect(resolveUrls({ url: ':7003' })).toEqual(['http://127.0.0.1:7003']));
  });

  it('names the bad entry (and its place), an empty one, and a list over the bound', () => {
    expect(() => resolveUrls({ url: ':7000,ftp://x:1' })).toThrow(/--url entry 2 "ftp:\/\/x:1" must be http:\/\/ or https:\/\//);
    expect(() => resolveUrls({ url: ':7000,http://[bad' })).toThrow(/--url entry 2 "http:\/\/\[bad" is not a URL/);
    expect(() => resolveUrls({ url: ':7000,,:7001' })).toThrow(/--url entry 2 is empty/);
    withEnv(':7000,x y', () => expect(() => resolveUrls({})).toThrow(/SHOAL_URL entry 2 "x y"/));
    const many = Array.from({ length: LIMITS.clientUrlsMax + 1 }, (_, i) => `:${7000 + i}`).join(',');
    expect(() => resolveUrls({ url: many })).toThrow(new RegExp(`at most ${LIMITS.clientUrlsMax}`));
    expect(resolveUrls({ url: many.split(',').slice(0, LIMITS.clientUrlsMax).join(',') })).toHaveLength(LIMITS.clientUrlsMax);
    expect(() => resolveUrls({ url: ':7000,http://[bad' })).toThrow(CliError);
  });

  it('keeps --aggregator an alias (a list too) and refuses two different lists', () => {
    expect(resolveUrls({ aggregator: ':7000,:7001' })).toEqual(['http://127.0.0.1:7000', 'http://127.0.0.1:7001']);
    expect(resolveUrls({ url: ':7000,:7001', aggregator: 'http://127.0.0.1:7000,127.0.0.1:7001' })).toHaveLength(2);
    expect(() => resolveUrls({ url: ':7000,:7001', aggregator: ':7001,:7000' })).toThrow(/different servers/);
  });

  it('resolveUrl is the first of them, every entry still checked', () => {
    expect(resolveUrl({ url: ':7001,:7002' })).toBe('http://127.0.0.1:7001');
    expect(() => resolveUrl({ url: ':7001,nope://' })).toThrow(/entry 2/);
  });
});

// ---------------------------------------------------------------------------------------------
// The loader's failover transport, over scripted transports

const noAnswer = (error: string): TransportAnswer => ({ status: 0, body: null, retryAfterMs: null, error });
const http200 = (body: unknown): TransportAnswer => ({ status: 200, body, retryAfterMs: null, error: null });

/** A server that answers from a script, recording each request (kind, batch id, resend mark). */
class FakeServer implements Transport {
  readonly posts: { batchId: string; resend: boolean }[] = [];
  gets = 0;
  constructor(private readonly onPost: (n: number) => TransportAnswer, private readonly onGet: (n: number) => TransportAnswer = () => http200({})) {}
  async postEvents(_table: string, _body: string, batchId: string, opts: PostOptions = {}): Promise<TransportAnswer> {
    this.posts.push({ batchId, resend: opts.resend === true });
    return this.onPost(this.posts.length);
  }
  async getJson(): Promise<TransportAnswer> { return this.onGet(++this.gets); }
  async close(): Promise<void> {}
}

const over = (...servers: FakeServer[]) => failoverTransport(servers.map((transport, i) => ({ url: `http://agg-${String.fromCharCode(97 + i)}:7000`, transport })));

describe('failover transport', () => {
  it('moves to the next server when the connection is refused, and stays there', async () => {
    const a = new FakeServer(() => noAnswer('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1'));
    const b = new FakeServer(() => http200({ accepted: 1 }));
    const t = over(a, b);
    expect((await t.postEvents('t', '{}', 'id-1')).status).toBe(200);
    expect((await t.postEvents('t', '{}', 'id-2')).status).toBe(200);
    expect(a.posts).toEqual([{ batchId: 'id-1', resend: false }]);
    // Refused: the first server cannot have seen it, so the second hears no resend.
    expect(b.posts).toEqual([{ batchId: 'id-1', resend: false }, { batchId: 'id-2', resend: false }]);
  });

  it('resends a batch whose answer was lost (reset, timeout) to the next server, same id, marked a resend', async () => {
    for (const error of ['UND_ERR_SOCKET: other side closed', 'ECONNRESET: read ECONNRESET', 'UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error']) {
      const a = new FakeServer(() => noAnswer(error));
      const b = new FakeServer(() => http200({ accepted: 0, duplicate: true, leaf: 'leaf-2' }));
      const answer = await over(a, b).postEvents('t', '{}', 'batch-7');
      expect(answer, error).toMatchObject({ status: 200, body: { duplicate: true } });
      expect(a.posts).toEqual([{ batchId: 'batch-7', resend: false }]);
      expect(b.posts, error).toEqual([{ batchId: 'batch-7', resend: true }]);
    }
  });

  it('passes a caller\'s resend mark on, and never fails over an HTTP answer', async () => {
    for (const status of [503, 500, 400, 401]) {
      const a = new FakeServer(() => ({ status, body: { error: { code: 'X', message: 'no' } }, retryAfterMs: null, error: null }));
      const b = new FakeServer(() => http200({ accepted: 1 }));
      const answer = await over(a, b).postEvents('t', '{}', 'id', { resend: true });
      expect(answer.status).toBe(status);
      expect(a.posts).toEqual([{ batchId: 'id', resend: true }]);
      expect(b.posts).toEqual([]);
    }
  });

  it('fails a GET over after a refusal or a reset, not after a timeout', async () => {
    const refusedThenOk = over(new FakeServer(() => http200({}), () => noAnswer('ECONNREFUSED: x')), new FakeServer(() => http200({}), () => http200({ columns: [] })));
    expect((await refusedThenOk.getJson('/v1/tables/t')).status).toBe(200);
    const reset = new FakeServer(() => http200({}), () => noAnswer('UND_ERR_SOCKET: other side closed'));
    const next = new FakeServer(() => http200({}), () => http200({ columns: [] }));
    expect((await over(reset, next).getJson('/v1/tables/t')).status).toBe(200);
    const slow = new FakeServer(() => http200({}), () => noAnswer('UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error'));
    const never = new FakeServer(() => http200({}), () => http200({}));
    const answer = await over(slow, never).getJson('/v1/tables/t');
    expect(answer.status).toBe(0);
    expect(never.gets).toBe(0);
  });

  it('tries each server at most once per request and says, for each, why it failed', async () => {
    const a = new FakeServer(() => noAnswer('ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:7000'));
    const b = new FakeServer(() => noAnswer('UND_ERR_SOCKET: other side closed'));
    const c = new FakeServer(() => noAnswer('ENOTFOUND: getaddrinfo ENOTFOUND agg-c'));
    const answer = await over(a, b, c).postEvents('t', '{}', 'id') as FailoverAnswer;
    expect(answer.status).toBe(0);
    expect([a.posts.length, b.posts.length, c.posts.length]).toEqual([1, 1, 1]);
    expect(c.posts[0]!.resend).toBe(true); // b may have stored it
    expect(answer.tries.map((x) => x.url)).toEqual(['http://agg-a:7000', 'http://agg-b:7000', 'http://agg-c:7000']);
    expect(answer.error).toMatch(/no answer from any of the 3 servers \(http:\/\/agg-a:7000: ECONNREFUSED.*; http:\/\/agg-b:7000: UND_ERR_SOCKET.*; http:\/\/agg-c:7000: ENOTFOUND/);
  });

  it('the first contact stops at once only when nothing is there at any server, naming each', async () => {
    const refused = new FakeServer(() => http200({}), () => noAnswer('ECONNREFUSED: x'));
    const notFound = new FakeServer(() => http200({}), () => noAnswer('ENOTFOUND: getaddrinfo ENOTFOUND agg-b'));
    await expect(contact(over(refused, notFound), 'http://agg-a:7000', 't', null)).rejects.toThrow(
      'cannot reach any of http://agg-a:7000, http://agg-b:7000 (http://agg-a:7000: connection refused; http://agg-b:7000: host agg-b not found)');
    const up = new FakeServer(() => http200({}), () => ({ status: 404, body: null, retryAfterMs: null, error: null }));
    await expect(contact(over(new FakeServer(() => http200({}), () => noAnswer('ECONNREFUSED: x')), up), 'http://agg-a:7000', 't', null)).resolves.toBeUndefined();
  });

  it('the sender marks every try after a lost answer a resend, and the tail\'s pending batch from its first try', async () => {
    const answers = [noAnswer('ECONNRESET: x'), { status: 503, body: { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'busy' } }, retryAfterMs: null, error: null }, http200({ accepted: 1, duplicate: true })];
    const a = new FakeServer((n) => answers[n - 1]!);
    const report = new ReportBuilder('t', 'x', 0);
    const s0 = new Sender(a, { ...defaultSendOptions(), table: 't' }, new ColumnTypes(), report, async () => {}, () => 1);
    await s0.send({ id: 'b1', file: 'f', positionKind: 'line', body: '{"v":1}', positions: [1] });
    expect(a.posts).toEqual([{ batchId: 'b1', resend: false }, { batchId: 'b1', resend: true }, { batchId: 'b1', resend: true }]);
    // That duplicate is this run's own row (its first try was stored), not an earlier run's.
    expect([report.rowsAccepted, report.rowsDuplicate, report.rowsDuplicateOwn]).toEqual([1, 1, 1]);
    // Through a failover transport, whose answer says an earlier server may have stored it.
    const r2 = new ReportBuilder('t', 'x', 0);
    const t2 = over(new FakeServer(() => noAnswer('UND_ERR_SOCKET: other side closed')), new FakeServer(() => http200({ accepted: 1, duplicate: true })));
    await new Sender(t2, { ...defaultSendOptions(), table: 't' }, new ColumnTypes(), r2, async () => {}, () => 1).send({ id: 'b9', file: 'f', positionKind: 'line', body: '{"v":1}', positions: [1] });
    expect([r2.rowsAccepted, r2.rowsDuplicate, r2.rowsDuplicateOwn]).toEqual([1, 1, 1]);
    // A duplicate at the first try: stored before this run.
    const r3 = new ReportBuilder('t', 'x', 0);
    await new Sender(new FakeServer(() => http200({ accepted: 1, duplicate: true })), { ...defaultSendOptions(), table: 't' }, new ColumnTypes(), r3, async () => {}, () => 1).send({ id: 'b8', file: 'f', positionKind: 'line', body: '{"v":1}', positions: [1] });
    expect([r3.rowsAccepted, r3.rowsDuplicate, r3.rowsDuplicateOwn]).toEqual([1, 1, 0]);
    // A plain refusal stored nothing: the next try is not marked.
    const refusing = new FakeServer((n) => (n === 1 ? { status: 503, body: { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'busy' } }, retryAfterMs: null, error: null } : http200({ accepted: 1 })));
    const s2 = new Sender(refusing, { ...defaultSendOptions(), table: 't' }, new ColumnTypes(), new ReportBuilder('t', 'x', 0), async () => {}, () => 1);
    await s2.send({ id: 'b2', file: 'f', positionKind: 'line', body: '{"v":1}', positions: [1] });
    await s2.send({ id: 'b3', file: 'f', positionKind: 'line', body: '{"v":1}', positions: [1], resend: true });
    expect(refusing.posts).toEqual([{ batchId: 'b2', resend: false }, { batchId: 'b2', resend: false }, { batchId: 'b3', resend: true }]);
  });

  it('marks a resend in the Content-Type the way the router reads it', () => {
    expect(resendMarked(NDJSON_RESEND_CONTENT_TYPE)).toBe(true);
    expect(resendMarked('application/x-ndjson; charset=utf-8;  Shoal-Resend = "1"')).toBe(true);
    expect(resendMarked('application/x-ndjson')).toBe(false);
    expect(resendMarked('application/x-ndjson; shoal-resend=0')).toBe(false);
    expect(resendMarked(undefined)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI's ServerClient over loopback servers

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => { for (const c of closers.reverse()) await c().catch(() => {}); });

/** An HTTP server on loopback: `drop` destroys the connection once the request is read. */
async function loopback(behaviour: 'ok' | 'drop' | '503'): Promise<{ url: string; hits: number }> {
  const state = { url: '', hits: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.hits++;
      if (behaviour === 'drop') { req.socket.destroy(); return; }
      res.writeHead(behaviour === '503' ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(behaviour === '503' ? { error: { code: 'SHOAL_ERR_QUERY_OVERLOADED', message: 'busy' } } : { from: state.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  closers.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return state;
}

describe('ServerClient', () => {
  it('goes on past a refused server to the next, and asks that one first from then on', async () => {
    const dead = await deadUrl();
    const live = await loopback('ok');
    const client = new ServerClient([dead, live.url]);
    expect(await client.call('/v1/status', 'GET')).toEqual({ from: live.url });
    expect(client.url).toBe(live.url);
    await client.call('/v1/status', 'GET');
    expect(live.hits).toBe(2);
  });

  it('after a connection dropped before any answer: goes on for an idempotent request, not for another POST', async () => {
    const dropping = await loopback('drop');
    const live = await loopback('ok');
    expect(await new ServerClient([dropping.url, live.url]).call('/v1/query', 'POST', { json: { sql: 'SELECT 1' } }, { idempotent: true })).toEqual({ from: live.url });
    expect(await new ServerClient([dropping.url, live.url]).call('/v1/status', 'GET')).toEqual({ from: live.url });
    const before = live.hits;
    await expect(new ServerClient([dropping.url, live.url]).call('/v1/admin/handoff', 'POST')).rejects.toMatchObject({ status: 0, code: 'SHOAL_ERR_CONNECT' });
    expect(live.hits).toBe(before);
  });

  it('never fails over an HTTP answer', async () => {
    const busy = await loopback('503');
    const live = await loopback('ok');
    await expect(new ServerClient([busy.url, live.url]).call('/v1/query', 'POST', { json: {} }, { idempotent: true })).rejects.toMatchObject({ status: 503, code: 'SHOAL_ERR_QUERY_OVERLOADED' });
    expect(live.hits).toBe(0);
  });

  it('names every server tried and why when none answers', async () => {
    const [a, b] = [await deadUrl(), await deadUrl()];
    const e = await new ServerClient([a, b]).call('/v1/status', 'GET').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect((e as ClientError).message).toMatch(new RegExp(`cannot reach any of 2 servers \\(${a}: .*ECONNREFUSED.*; ${b}: .*ECONNREFUSED`));
    // One server: the message is what it always was.
    expect(((await new ServerClient([a]).call('/v1/status', 'GET').catch((x: unknown) => x)) as Error).message).toMatch(new RegExp(`^cannot reach ${a}: `));
  });
});

// ---------------------------------------------------------------------------------------------
// Real processes: three leaves, two aggregators over the same cluster file

const dir = mkdtempSync(join(tmpdir(), 'shoal-failover-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sql = (url: string, text: string) => postJson(`${url}/v1/query`, { sql: text });

/** Runs the CLI with an environment; resolves with its exit code and output. */
const cli = (args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000) => runCli(args, timeoutMs, env);

describe.skipIf(!leafCliExists())('several aggregators, real processes', () => {
  const leaves: LeafProcess[] = [];
  const members: { id: string; url: string }[] = [];
  let clusterFile = '';
  let aggA: ShoalProcess;
  let aggB: ShoalProcess;

  const healthy = (agg: ShoalProcess) => waitFor(`${agg.url}: every member healthy`, async () => {
    const s = await getJson(`${agg.url}/v1/status`);
    return s.body.membersHealthy === leaves.length ? true : undefined;
  });
  const startAgg = async () => {
    const agg = await startAggregator(clusterFile, ['--id', `agg-${Math.random().toString(36).slice(2, 6)}`]);
    closers.push(() => agg.stop({ signal: 'SIGKILL' }));
    await healthy(agg);
    return agg;
  };
  const count = async (table: string, url = aggB.url): Promise<[number, number]> => {
    const r = await sql(url, `SELECT count(*), sum(v) FROM ${table}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.coverage.percent).toBe(100);
    return r.body.rows[0] as [number, number];
  };

  beforeAll(async () => {
    for (let i = 1; i <= 3; i++) {
      const leaf = await startClusterLeaf(join(dir, `leaf-${i}`), `fo-${i}`);
      closers.push(() => leaf.stop({ signal: 'SIGKILL' }));
      leaves.push(leaf);
      members.push({ id: `leaf-${i}`, url: leaf.url });
    }
    clusterFile = writeClusterFile(dir, 'cluster.json', members);
    [aggA, aggB] = await Promise.all([startAgg(), startAgg()]);
  });

  it('a resend through the other aggregator of a batch a leaf holds is answered from that leaf, not stored again', async () => {
    // Each batch is stored on a leaf directly (as if the first aggregator had placed it and
    // died); its resend through aggregator B, marked, must find it there. Without the check B
    // would place each on a leaf of its own choosing: two thirds of them elsewhere.
    for (let i = 0; i < 9; i++) {
      const holder = members[i % 3]!;
      const body = `{"v":${i + 1}}\n{"v":${100 + i}}`;
      const first = await fetch(`${holder.url}/v1/tables/resend/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'x-shoal-batch-id': `held-${i}` }, body });
      expect(first.status).toBe(200);
      const again = await fetch(`${aggB.url}/v1/tables/resend/events`, { method: 'POST', headers: { 'content-type': NDJSON_RESEND_CONTENT_TYPE, 'x-shoal-batch-id': `held-${i}` }, body });
      expect(await again.json()).toEqual({ accepted: 2, duplicate: true, leaf: holder.id });
    }
    // Unmarked, a batch id B has not seen is placed as usual (no lookup; the leaf's dedupe is the
    // only check): it lands somewhere and is answered.
    const plain = await postJson(`${aggB.url}/v1/tables/resend/events`, [{ v: 1000 }], { 'x-shoal-batch-id': 'fresh-1' });
    expect(plain.status).toBe(200);
    expect(await count('resend')).toEqual([19, 45 + 100 * 9 + 36 + 1000]);
  });

  it('a dying aggregator that stored a batch and never answered costs no second copy', async () => {
    // In front of the cluster: an "aggregator" that hands every batch to leaf-1 and then drops
    // the client's connection without an answer: the client's loss of an answer, after the
    // batch was stored, that a killed aggregator causes at its worst moment.
    let handed = 0;
    const dying = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET') { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"error":{"code":"SHOAL_ERR_QUERY_UNKNOWN_TABLE","message":"no"}}'); return; }
        void fetch(`${members[0]!.url}${req.url}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'x-shoal-batch-id': String(req.headers['x-shoal-batch-id']) }, body: Buffer.concat(chunks) })
          .then(async (r) => { if (r.status === 200) handed++; await r.text(); req.socket.destroy(); }, () => { req.socket.destroy(); });
      });
    });
    await new Promise<void>((r) => dying.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => { dying.closeAllConnections(); dying.close(() => r()); }));
    const dyingUrl = `http://127.0.0.1:${(dying.address() as net.AddressInfo).port}`;
    // Six runs, one batch each: the first batch goes to the dying one, its resend to B.
    let sum = 0;
    for (let run = 0; run < 6; run++) {
      const lines = [1, 2, 3].map((k) => ({ v: run * 10 + k }));
      sum += lines.reduce((s, l) => s + l.v, 0);
      const opts = { ...defaultIngestOptions('stdin', 'dying'), url: dyingUrl, failoverUrls: [aggB.url], inputId: `run-${run}` };
      const inner = httpTransports(serversOf(opts), { token: null, connections: 1, requestTimeoutMs: 10_000 });
      const answers: TransportAnswer[] = [];
      const seeing: Transport = {
        postEvents: async (...a) => { const r = await inner.postEvents(...a); answers.push(r); return r; },
        getJson: (path) => inner.getJson(path), close: () => inner.close(),
      };
      const s = await ingest(opts, [lines.map((l) => JSON.stringify(l)).join('\n')], { transport: seeing });
      await inner.close();
      expect(s.error).toBeNull();
      expect(s.rowsAccepted).toBe(3);
      // B found the copy on leaf-1: `duplicate`, after this run's own lost try (so not counted
      // as an earlier run's rows).
      expect(answers.map((a) => [a.status, a.body, a.lostTries])).toEqual([[200, { accepted: 3, duplicate: true, leaf: 'leaf-1' }, true]]);
      expect(s.rowsDuplicate).toBe(0);
    }
    expect(handed).toBe(6);
    expect(await count('dying')).toEqual([18, sum]);
  });

  it('shoal load --url A,B while A is killed with SIGKILL: exit 0, and the cluster holds exactly the rows sent', async () => {
    const rows = 150_000;
    const file = join(dir, 'load.ndjson');
    let text = '';
    let sum = 0;
    for (let i = 0; i < rows; i++) { text += `{"time":${1_700_000_000 + (i % 3600)},"v":${i},"k":"k${i % 7}"}\n`; sum += i; }
    writeFileSync(file, text);
    const load = cli(['load', file, '--table', 'killed', '--url', `${aggA.url},${aggB.url}`, '--batch-rows', '1000', '--in-flight', '4', '--quiet', '--json'], {}, 60_000);
    // Kill A once part of the file is in, while batches are in flight through it.
    const before = await waitFor('part of the load to arrive', async () => {
      const r = await sql(aggB.url, 'SELECT count(*) FROM killed');
      const n = r.status === 200 ? r.body.rows[0][0] as number : 0;
      return n >= rows / 5 ? n : undefined;
    }, 30_000);
    aggA.process.kill('SIGKILL');
    // The kill came with most of the file still to send: the rest went through B.
    expect(before).toBeLessThan(rows * 0.8);
    const done = await load;
    expect(done.code, `${done.stdout}\n${done.stderr}`).toBe(0);
    const report = JSON.parse(done.stdout) as { rowsAccepted: number; rowsRejected: number; batchesDuplicate: number; error: unknown };
    expect(report.error).toBeNull();
    expect(report.rowsAccepted).toBe(rows);
    const [counted, summed] = await count('killed');
    expect(counted, `rows stored; report ${done.stdout}`).toBe(rows);
    expect(summed).toBe(sum);
  });

  it('shoal query and status with --url dead,live, and SHOAL_URL=dead,live, answer from the live one', async () => {
    const dead = await deadUrl();
    const q = await cli(['query', '--url', `${dead},${aggB.url}`, '--format', 'json', 'SELECT count(*) FROM resend']);
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout).rows).toEqual([[19]]);
    const env = await cli(['query', '--format', 'csv', 'SELECT count(*) FROM resend'], { SHOAL_URL: `${dead},${aggB.url}` });
    expect(env.code, env.stderr).toBe(0);
    expect(env.stdout.trim().split('\n').at(-1)).toBe('19');
    const st = await cli(['status', '--url', `${dead},${aggB.url}`]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(`at ${aggB.url}: 3/3 members healthy`);
    const none = await cli(['query', '--url', `${dead},${await deadUrl()}`, 'SELECT 1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/shoal query: cannot reach any of 2 servers \(.*ECONNREFUSED.*ECONNREFUSED.*\): is shoal running there\?/);
  });

  it('a bad URL in the list is an error naming it, before anything is sent', async () => {
    const r = await cli(['ingest', 'never', '-', '--url', `${aggB.url},http://[nope`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('shoal ingest: --url entry 2 "http://[nope" is not a URL');
    const env = await cli(['query', 'SELECT 1'], { SHOAL_URL: `${aggB.url},ftp://x` });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('SHOAL_URL entry 2 "ftp://x" must be http:// or https://');
  });
});
