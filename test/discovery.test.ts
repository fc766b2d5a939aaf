/**
 * Membership beyond the cluster file (docs/cluster.md, "Membership"): leaves that join an
 * aggregator (`shoal leaf --join`) and members found through DNS (`--leaves-dns`). A member is its
 * id, not its address: a leaf that comes back elsewhere is the same member, with what was known of
 * it. Joined members that miss their heartbeats and DNS members the name stopped listing are
 * dropped after their grace, and not before (until then a query counts them as missing).
 *
 * Members here are small HTTP servers answering `GET /v1/status` as a leaf does, on loopback
 * addresses 127.0.0.1 and 127.0.0.2; the last test runs real leaf and aggregator processes.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemberAgent } from '../server/cluster/fanout.js';
import { Membership, type MemberSpec } from '../server/cluster/membership.js';
import { DnsDiscovery, parseDnsTarget } from '../server/cluster/discovery.js';
import { advertisedUrl } from '../server/leaf/join.js';
import { LIMITS } from '../query/limits.js';
import { getJson, postJson, sleep, startHangingServer, startShoal, waitFor, type ShoalProcess } from './support/cluster.js';
import { leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';

interface FakeLeaf { url: string; port: number; host: string; hits: number; close(): Promise<void> }
const servers: FakeLeaf[] = [];
const agent = createMemberAgent();

/** A stand-in leaf: its status names `leafId` and holds `rows` rows of table t. */
async function fakeLeaf(leafId: string, rows: number, host = '127.0.0.1', port = 0): Promise<FakeLeaf> {
  const f = { hits: 0 } as FakeLeaf;
  const server = http.createServer((req, res) => {
    f.hits++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ role: 'leaf', leafId, state: 'serving', rows, bytes: rows * 10, pid: 1, tables: { t: { rows, bytes: rows * 10 } } }));
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  f.port = (server.address() as { port: number }).port;
  f.host = host;
  f.url = `http://${host}:${f.port}`;
  f.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  servers.push(f);
  return f;
}

function membership(specs: MemberSpec[] = []): Membership {
  return new Membership(specs, agent, { intervalMs: 60_000, timeoutMs: 1_000, failuresMax: 2 }, null);
}

afterEach(async () => { await Promise.all(servers.splice(0).map((s) => s.close())); });

describe('joins', () => {
  it('add a leaf by its id, check it at once, and move it (same member) when it comes back elsewhere', async () => {
    const m = membership();
    const a = await fakeLeaf('leaf-a', 40);
    const first = m.join({ id: 'leaf-a', url: a.url, heartbeatMs: 1_000 });
    expect(first.outcome).toBe('added');
    expect(first.member.source).toBe('join');
    await waitFor('the join to be checked', async () => (first.member.health === 'healthy' ? true : undefined), 5_000);
    expect(first.member.knownTableRows('t')).toBe(40);
    await a.close();
    const b = await fakeLeaf('leaf-a', 40, '127.0.0.2');
    const moved = m.join({ id: 'leaf-a', url: b.url, heartbeatMs: 1_000 });
    expect(moved.outcome).toBe('moved');
    expect(moved.member).toBe(first.member);
    expect(m.members.map((x) => [x.id, x.url])).toEqual([['leaf-a', b.url]]);
    await waitFor('the moved member to be checked at its new address', async () => (b.hits > 0 && moved.member.health === 'healthy' ? true : undefined), 5_000);
  });

  it('of a cluster-file member\'s address is the readiness push: checked now, not added', async () => {
    const a = await fakeLeaf('leaf-3f2a', 7);
    const m = membership([{ id: 'leaf-1', url: a.url }]);
    const r = m.join({ id: 'leaf-3f2a', url: a.url, heartbeatMs: 1_000 });
    expect(r.outcome).toBe('known');
    expect(r.member.id).toBe('leaf-1');
    await waitFor('the push to trigger a check', async () => (a.hits > 0 && r.member.health === 'healthy' ? true : undefined), 5_000);
    expect(m.members).toHaveLength(1);
  });

  it('refuse a cluster-file member\'s id from another address', async () => {
    const a = await fakeLeaf('leaf-1', 1);
    const m = membership([{ id: 'leaf-1', url: 'http://127.0.0.1:1' }]);
    expect(() => m.join({ id: 'leaf-1', url: a.url, heartbeatMs: 1_000 })).toThrow(/"leaf-1" is in the cluster file at http:\/\/127\.0\.0\.1:1/);
  });

  it('drop a member after LIMITS.joinMissesMax missed heartbeats, not before; a reload of the file keeps it', async () => {
    const a = await fakeLeaf('leaf-b', 1);
    const m = membership([]);
    const dropped: string[] = [];
    m.onDropped = (d) => dropped.push(...d.map((x) => x.id));
    const t0 = 1_000_000;
    m.join({ id: 'leaf-b', url: a.url, heartbeatMs: 200 }, t0);
    m.replace([{ id: 'leaf-f', url: 'http://127.0.0.1:2' }]);
    expect(m.members.map((x) => x.id).sort()).toEqual(['leaf-b', 'leaf-f']);
    expect(m.expire(t0 + 200 * LIMITS.joinMissesMax)).toEqual([]);
    const out = m.expire(t0 + 200 * LIMITS.joinMissesMax + 1);
    expect(out.map((d) => d.id)).toEqual(['leaf-b']);
    expect(out[0]!.reason).toMatch(/no heartbeat for 1001 ms/);
    expect(dropped).toEqual(['leaf-b']);
    expect(m.members.map((x) => x.id)).toEqual(['leaf-f']);
  });

  it('need an address others can reach', () => {
    expect(advertisedUrl('127.0.0.1', 7001, null)).toBe('http://127.0.0.1:7001');
    expect(advertisedUrl('::1', 7001, null)).toBe('http://[::1]:7001');
    expect(advertisedUrl('0.0.0.0', 7001, null)).toEqual({ error: expect.stringMatching(/needs --advertise/) });
    expect(advertisedUrl('0.0.0.0', 7001, 'http://10.1.2.3:7001')).toBe('http://10.1.2.3:7001');
  });
});

describe('health checks', () => {
  it('do not count a timed-out check against a member that answered something else meanwhile', async () => {
    const hung = await startHangingServer();
    try {
      const m = new Membership([{ id: 'busy', url: hung.url }, { id: 'silent', url: hung.url.replace('127.0.0.1', 'localhost') }], agent, { intervalMs: 60_000, timeoutMs: 150, failuresMax: 2 }, null);
      const [busy, silent] = m.members as [typeof m.members[0], typeof m.members[0]];
      for (let round = 0; round < 3; round++) {
        // A query answer from `busy` arrives while its check waits (an aggregator whose event
        // loop runs behind sees exactly this): it is alive.
        const checks = m.checkAll();
        await sleep(20);
        busy.noteAnswer('t', 10);
        await checks;
      }
      expect(busy.health).not.toBe('unhealthy');
      expect(busy.consecutiveFailures).toBe(0);
      expect(silent.health).toBe('unhealthy');
      expect(silent.lastError).toMatch(/timeout after 150 ms/);
    } finally {
      await hung.close();
    }
  });
});

describe('--leaves-dns', () => {
  it('parses NAME:PORT', () => {
    expect(parseDnsTarget('shoal-leaf.shoal.svc.cluster.local:7001')).toEqual({ name: 'shoal-leaf.shoal.svc.cluster.local', port: 7001 });
    expect(parseDnsTarget('[fd00::1]:7001')).toEqual({ name: 'fd00::1', port: 7001 });
    expect(parseDnsTarget('leaves')).toEqual({ error: expect.stringMatching(/not NAME:PORT/) });
    expect(parseDnsTarget('leaves:70000')).toEqual({ error: expect.stringMatching(/not 1-65535/) });
  });

  it('adds every address the name lists under the id its status gives; keeps the member when the address changes; drops it after the grace', async () => {
    const x = await fakeLeaf('leaf-x', 10, '127.0.0.1');
    const port = x.port;
    const y = await fakeLeaf('leaf-y', 20, '127.0.0.2', port);
    let listed = ['127.0.0.1', '127.0.0.2', '127.0.0.4'];
    const m = membership();
    const d = new DnsDiscovery(m, agent, { target: { name: 'leaves.test', port }, intervalMs: 60_000, graceMs: 0, probeTimeoutMs: 500, memberToken: null, resolver: async () => listed, log: () => undefined });
    await d.refresh();
    expect(m.members.map((mm) => [mm.id, mm.url, mm.source]).sort()).toEqual([['leaf-x', x.url, 'dns'], ['leaf-y', y.url, 'dns']]);
    // Nothing answers at 127.0.0.4: pending, with the reason, never a member.
    expect(d.toJSON().pending.map((p) => p.url)).toEqual([`http://127.0.0.4:${port}`]);
    expect(d.toJSON().pending[0]!.error).toMatch(/refused/i);
    // leaf-y comes back at another address, and the name lists only that one now.
    const yMember = m.members.find((mm) => mm.id === 'leaf-y')!;
    await waitFor('leaf-y to be checked', async () => (yMember.knownTableRows('t') === 20 ? true : undefined), 5_000);
    await y.close();
    const yMoved = await fakeLeaf('leaf-y', 20, '127.0.0.3', port);
    listed = ['127.0.0.3'];
    await d.refresh();
    expect(m.members.find((mm) => mm.id === 'leaf-y')).toBe(yMember);
    expect(yMember.url).toBe(yMoved.url);
    expect(yMember.knownTableRows('t')).toBe(20);
    expect(d.toJSON().pending).toEqual([]);
    // leaf-x is no longer listed: a member until its grace (0 ms here) has passed, then dropped.
    const xMember = m.members.find((mm) => mm.id === 'leaf-x')!;
    expect(xMember.goneFromDnsMs).not.toBeNull();
    await sleep(5);
    expect(m.expire(Date.now()).map((dd) => dd.id)).toEqual(['leaf-x']);
    expect(m.members.map((mm) => mm.id)).toEqual(['leaf-y']);
  });

  it('keeps its members when a lookup fails', async () => {
    const a = await fakeLeaf('leaf-z', 1);
    let fail = false;
    const m = membership();
    const d = new DnsDiscovery(m, agent, { target: { name: 'leaves.test', port: a.port }, intervalMs: 60_000, graceMs: 0, probeTimeoutMs: 500, memberToken: null, resolver: async () => { if (fail) throw new Error('ENOTFOUND leaves.test'); return ['127.0.0.1']; }, log: () => undefined });
    await d.refresh();
    expect(m.members.map((x) => x.id)).toEqual(['leaf-z']);
    fail = true;
    await d.refresh();
    m.expire(Date.now() + 10_000);
    expect(m.members.map((x) => x.id)).toEqual(['leaf-z']);
    expect(d.toJSON().lastError).toMatch(/ENOTFOUND/);
  });
});

describe.skipIf(!leafCliExists())('processes: a leaf that joins', () => {
  const started: (LeafProcess | ShoalProcess)[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.stop({ signal: 'SIGKILL' }).catch(() => undefined)));
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('is a member of an aggregator with no cluster file, is missed by queries when killed, dropped after its heartbeats, and is the same member when it comes back on another port', async () => {
    const agg = await startShoal(['aggregator', '--port', '0', '--log-level', 'warn']);
    started.push(agg);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-join-'));
    dirs.push(dir);
    const args = ['--id', 'joiner', '--workers', '1', '--no-shm', '--log-level', 'warn', '--join', agg.url, '--join-interval', '200'];
    const leaf = await startLeaf({ dataDir: dir, args });
    started.push(leaf);
    await waitFor('the leaf to join', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.some((m: any) => m.id === 'joiner' && m.state === 'healthy') ? true : undefined), 10_000);
    const rows = Array.from({ length: 50 }, (_, i) => ({ time: 1_700_000_000 + i, v: i }));
    const put = await postJson(`${agg.url}/v1/tables/t/events`, rows);
    expect(put.status).toBe(200);
    const q1 = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*) AS n, sum(v) AS s FROM t' });
    expect(q1.body.rows).toEqual([[50, rows.reduce((s, r) => s + r.v, 0)]]);
    await leaf.stop({ signal: 'SIGKILL' });
    const q2 = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*) FROM t' });
    expect(q2.body.error?.coverage?.failures ?? q2.body.coverage?.failures).toEqual([expect.objectContaining({ leaf: 'joiner' })]);
    await waitFor('the silent leaf to be dropped', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.length === 0 ? true : undefined), 10_000);
    // Back from its disk log, on another (free) port: the same member id.
    const again = await startLeaf({ dataDir: dir, args });
    started.push(again);
    expect(again.url).not.toBe(leaf.url);
    await waitFor('the leaf to join again', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.some((m: any) => m.id === 'joiner' && m.url === again.url && m.state === 'healthy') ? true : undefined), 10_000);
    const q3 = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*) FROM t' });
    expect(q3.body.rows).toEqual([[50]]);
    expect(q3.body.coverage.percent).toBe(100);
  });
});
