/**
 * The plan is the protocol (query/plan/protocol.ts): an aggregator plans once and sends the plan;
 * a leaf executes the plan it is given (never its SQL text), refuses a version it does not know
 * or a plan whose hash does not match, and an aggregator counts a member that answers another
 * protocol version (a leaf on other code mid-roll) as a coverage failure naming the versions,
 * never merging its states.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planQuery, sealPlan, envelopeJson, PLAN_VERSION } from '../query/engine.js';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig } from '../server/cluster/aggregator.js';
import { defaultLeafConfig } from '../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../server/leaf/leaf.js';

const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers.reverse()) await c(); });

let leafUrl = '';
let leafApp: ReturnType<typeof buildLeafApp>;
const rows = Array.from({ length: 300 }, (_, i) => ({ time: 1_790_000_000 + i, g: `g${i % 3}`, v: i }));

/** A member that answers every query with a well-formed partial of the given protocol version. */
async function otherVersionMember(protocol: number | undefined): Promise<string> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/v1/status') return res.end(JSON.stringify({ role: 'leaf', leafId: 'other', state: 'serving', rows: 100, bytes: 1, memoryFreeBytes: 1, memoryBudgetBytes: 2, tables: { t: { rows: 100, bytes: 1 } } }));
      // Old code's sum state [sum, count]: merged by position it would be read as [hi, lo, ...].
      const partial = { mode: 'aggregate', tableFound: true, columns: [{ name: 'g', type: 'string' }, { name: 's', type: 'int' }], groups: [{ keys: ['g0'], states: [[1e6, 7]] }], unknownColumns: [], stats: { rowsHeld: 100, rowsScanned: 100, rowsMatched: 100, blocksScanned: 1, blocksSkipped: 0 } };
      res.end(JSON.stringify(protocol === undefined ? { partial } : { partial, protocol }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function aggregatorOver(members: { id: string; url: string }[]) {
  const a = new Aggregator({ ...defaultAggregatorConfig(), port: 0, logLevel: 'silent' }, members);
  await a.membership.checkAll();
  const app = buildAggregatorApp(a);
  closers.push(async () => { await app.close(); await a.close(); });
  return async (sql: string) => {
    const res = await app.inject({ method: 'POST', url: '/v1/query', payload: JSON.stringify({ sql }), headers: { 'content-type': 'application/json' } });
    return { status: res.statusCode, body: res.json() as any };
  };
}

const postLeaf = async (body: string) => {
  const res = await leafApp.inject({ method: 'POST', url: '/v1/query', payload: body, headers: { 'content-type': 'application/json' } });
  return { status: res.statusCode, body: res.json() as any };
};

beforeAll(async () => {
  const leaf = new Leaf({ ...defaultLeafConfig(), port: 0, workers: 1, diskLog: false, shm: false, logLevel: 'silent' }, 'leaf-1');
  leaf.state = 'serving';
  leafApp = buildLeafApp(leaf);
  leafUrl = await leafApp.listen({ port: 0, host: '127.0.0.1' });
  closers.push(async () => { await leafApp.close(); await leaf.pool.close(); });
  const res = await fetch(`${leafUrl}/v1/tables/t/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rows) });
  expect(res.status).toBe(200);
});

describe('the plan is the protocol', () => {
  it('a leaf executes the plan it is sent, not the SQL text beside it, with the plan\'s now()', async () => {
    const now = 1_790_000_100;
    const env = sealPlan(planQuery('SELECT count(*) AS n FROM t WHERE time > now() - 50', now), now, 'SELECT 1 AS decoy FROM t');
    const got = await postLeaf(`{"partial":true,"plan":${envelopeJson(env)}}`);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.protocol).toBe(PLAN_VERSION);
    expect(got.body.planHash).toBe(env.hash);
    // time > now - 50 = 1_790_000_050: rows 51..299 of the 300.
    const want = rows.filter((r) => r.time > now - 50).length;
    expect(got.body.partial.groups).toEqual([{ keys: [], states: [want] }]);
  });

  it('a leaf refuses a plan version it does not execute, and a plan whose hash does not match', async () => {
    const env = sealPlan(planQuery('SELECT count(*) FROM t', 1_790_000_000), 1_790_000_000, 'SELECT count(*) FROM t');
    const future = await postLeaf(`{"partial":true,"plan":${envelopeJson({ ...env, v: PLAN_VERSION + 1 })}}`);
    expect(future.status).toBe(409);
    expect(future.body.error.code).toBe('SHOAL_ERR_PLAN_VERSION');
    expect(future.body.error.message).toContain(`version ${PLAN_VERSION + 1}`);
    const tampered = JSON.parse(envelopeJson(env));
    tampered.plan.table = 'other';
    const bad = await postLeaf(JSON.stringify({ partial: true, plan: tampered }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('SHOAL_ERR_QUERY_REQUEST');
    expect(bad.body.error.message).toContain('does not match');
  });

  for (const protocol of [undefined, PLAN_VERSION + 1]) {
    it(`an aggregator never merges the states of a member answering protocol ${protocol ?? '1 (SQL text)'}: coverage failure naming both versions`, async () => {
      const query = await aggregatorOver([{ id: 'leaf-1', url: leafUrl }, { id: 'leaf-old', url: await otherVersionMember(protocol) }]);
      const got = await query('SELECT g, sum(v) AS s FROM t GROUP BY g ORDER BY g');
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      const want = ['g0', 'g1', 'g2'].map((g) => [g, rows.filter((r) => r.g === g).reduce((s, r) => s + r.v, 0)]);
      expect(got.body.rows).toEqual(want);
      expect(got.body.coverage.leavesResponded).toBe(1);
      expect(got.body.coverage.percent).toBeLessThan(100);
      const failure = got.body.coverage.failures.find((f: { leaf: string }) => f.leaf === 'leaf-old');
      expect(failure.reason).toContain(`plan protocol ${protocol ?? 1}; this query is version ${PLAN_VERSION}`);
    });
  }

  it('non-finite constants travel in the plan intact', async () => {
    const env = sealPlan(planQuery('SELECT count(*) AS n, 1e308 * 10 AS x FROM t', 1_790_000_000), 1_790_000_000, 'x');
    expect(envelopeJson(env)).toContain('"$f":"Infinity"');
    const got = await postLeaf(`{"plan":${envelopeJson(env)}}`);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.rows).toEqual([[rows.length, 'Infinity']]);
  });
});
