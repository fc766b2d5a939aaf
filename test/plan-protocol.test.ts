/**
 * The plan is the protocol (query/plan/protocol.ts): an aggregator plans once and sends the plan;
 * a leaf executes the plan it is given (never its SQL text), refuses a version it does not know
 * or a plan whose hash does not match, and an aggregator counts a member that answers another
 * protocol version (a leaf on other code mid-roll) as a coverage failure naming the versions,
 * never merging its states. Version 3 carries group tables in columns (typed arrays as base64);
 * this code still speaks version 2 both ways, so a roll onto it keeps full coverage.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planQuery, sealPlan, envelopeJson, partialFromWire, partialToWire, PLAN_VERSION, type Partial } from '../query/engine.js';
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

/** A member on version-2 code: refuses other versions naming [2], answers version 2 plans. */
async function versionTwoMember(): Promise<string> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/status') return res.end(JSON.stringify({ role: 'leaf', leafId: 'v2', state: 'serving', rows: 7, bytes: 1, memoryFreeBytes: 1, memoryBudgetBytes: 2, tables: { t: { rows: 7, bytes: 1 } } }));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { plan: { v: number } };
      if (body.plan.v !== 2) {
        res.statusCode = 409;
        return res.end(JSON.stringify({ error: { code: 'SHOAL_ERR_PLAN_VERSION', message: `this process executes plan protocol 2; the query's plan is version ${body.plan.v}`, planVersion: body.plan.v, supported: [2] } }));
      }
      const partial = { mode: 'aggregate', tableFound: true, columns: [{ name: 'g', type: 'string' }, { name: 'n', type: 'int' }, { name: 's', type: 'int' }], groups: [{ keys: ['g0'], states: [7, [0, 1e6, 7, 0, 0]] }], unknownColumns: [], stats: { rowsHeld: 7, rowsScanned: 7, rowsMatched: 7, blocksScanned: 1, blocksSkipped: 0 } };
      res.end(JSON.stringify({ partial, protocol: 2 }));
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
  closers.push(async () => { await leafApp.close(); await leaf.closePools(); });
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
    const decoded = partialFromWire(got.body.partial, env.plan);
    expect('ok' in decoded, JSON.stringify(decoded)).toBe(true);
    const groups = ((decoded as { ok: Partial }).ok as Extract<Partial, { mode: 'aggregate' }>).groups;
    expect(groups.count).toBe(1);
    expect(Array.from(groups.states[0]!.n as Float64Array)).toEqual([want]);
  });

  it('a leaf answers a version-2 plan (an aggregator not yet rolled) in version 2: one {keys, states} per group', async () => {
    const now = 1_790_000_100;
    const plan = planQuery('SELECT g, count(*) AS n, sum(v) AS s, min(v) AS lo, max(g) AS hi FROM t GROUP BY g', now);
    const got = await postLeaf(`{"partial":true,"plan":${envelopeJson(sealPlan(plan, now, 'x', 2))}}`);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.protocol).toBe(2);
    const byKey = new Map((got.body.partial.groups as { keys: string[]; states: unknown[] }[]).map((x) => [x.keys[0], x.states]));
    for (const g of ['g0', 'g1', 'g2']) {
      const mine = rows.filter((r) => r.g === g);
      const sum = mine.reduce((a, r) => a + r.v, 0);
      expect(byKey.get(g)).toEqual([mine.length, [0, sum, mine.length, 0, 0], Math.min(...mine.map((r) => r.v)), g]);
    }
  });

  it('a member partial whose columns do not fit the plan is refused before any merge', async () => {
    const plan = planQuery('SELECT g, count(*) AS n, sum(v) AS s FROM t GROUP BY g', 1_790_000_000);
    const good = { mode: 'aggregate', tableFound: true, columns: [], unknownColumns: [], stats: { rowsHeld: 1 }, groups: { count: 2, keys: [['a', 'b']], states: [{ n: new Float64Array([1, 2]) }, { hi: new Float64Array(2), lo: new Float64Array([3, 4]), n: new Float64Array([1, 2]), f: new Float64Array(2), sawFloat: new Uint8Array(2) }] } } as unknown as Partial;
    const wire = JSON.parse(JSON.stringify(partialToWire(good, plan))) as { groups: { keys: unknown[][]; states: Record<string, unknown>[] } };
    expect('ok' in partialFromWire(wire, plan)).toBe(true);
    const broken = (edit: (w: typeof wire) => void) => { const w = JSON.parse(JSON.stringify(wire)) as typeof wire; edit(w); return partialFromWire(w, plan); };
    expect(broken((w) => { w.groups.keys[0]!.pop(); })).toMatchObject({ error: expect.stringContaining('key columns') });
    expect(broken((w) => { w.groups.states[0]!.n = { $t: 'f64', b: Buffer.from(new Float64Array([1]).buffer).toString('base64') }; })).toMatchObject({ error: expect.stringContaining('8 bytes for 2 groups') });
    expect(broken((w) => { delete w.groups.states[1]!.sawFloat; })).toMatchObject({ error: expect.stringContaining('sawFloat is not a u8 array') });
    expect(broken((w) => { w.groups.states.pop(); })).toMatchObject({ error: expect.stringContaining('2 state columns') });
  });

  it('an aggregator asks a member on older code again in the version it speaks, and merges its answer', async () => {
    const query = await aggregatorOver([{ id: 'leaf-1', url: leafUrl }, { id: 'leaf-v2', url: await versionTwoMember() }]);
    const got = await query('SELECT g, count(*) AS n, sum(v) AS s FROM t GROUP BY g ORDER BY g');
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.coverage.failures).toEqual([]);
    expect(got.body.coverage.leavesResponded).toBe(2);
    // The version-2 member holds 7 rows of g0 summing to 1,000,000, beside leaf-1's rows.
    const want = ['g0', 'g1', 'g2'].map((g) => {
      const mine = rows.filter((r) => r.g === g);
      const sum = mine.reduce((a, r) => a + r.v, 0);
      return g === 'g0' ? [g, mine.length + 7, sum + 1e6] : [g, mine.length, sum];
    });
    expect(got.body.rows).toEqual(want);
  });

  it('a plan that needs protocol 4 (count_if is a sum over CASE) is never sent to older code: that member is a coverage failure', async () => {
    const query = await aggregatorOver([{ id: 'leaf-1', url: leafUrl }, { id: 'leaf-v2', url: await versionTwoMember() }]);
    const got = await query('SELECT g, count_if(v > 1) AS n FROM t GROUP BY g ORDER BY g');
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.coverage.leavesResponded).toBe(1);
    const failure = got.body.coverage.failures.find((f: { leaf: string }) => f.leaf === 'leaf-v2');
    expect(failure.reason).toContain('protocol 2');
    const want = ['g0', 'g1', 'g2'].map((g) => [g, rows.filter((r) => r.g === g && r.v > 1).length]);
    expect(got.body.rows).toEqual(want);
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
