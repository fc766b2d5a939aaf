/**
 * `shoal restart --by-host` (docs/operations.md): the leaves of one host hand off together, one
 * host after another. Four leaves on two loopback "hosts" (127.0.0.1 and 127.0.0.2), supervised
 * here with shoal's own Supervisor (as `shoal up` does, which runs one host only) and joined to an
 * aggregator with --join. The roll must take the hosts in turn (both leaves of a host away at
 * once, never leaves of two hosts), bring every leaf back from shared memory with its rows, and
 * the coverage the probe saw must never fall below the share of rows held by the other host,
 * computed here from the leaves' own row counts before the roll.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rollGroups, rollingRestart, type RollEvent } from '../server/ops/rolling-restart.js';
import { Supervisor } from '../server/ops/supervisor.js';
import * as shm from '../native/shm.js';
import { CLI_PATH, deadUrl, freePortRange, getJson, postJson, runCli, startShoal, waitFor, type ShoalProcess } from './support/cluster.js';
import { leafCliExists } from './support/processes.js';

describe('roll groups', () => {
  it('are K leaves at a time, or every leaf of one host', () => {
    const leaves = ['http://10.0.0.1:1', 'http://10.0.0.2:1', 'http://10.0.0.1:2', 'http://[fd00::1]:1'].map((url, i) => ({ id: `l${i}`, url }));
    expect(rollGroups(leaves, { batch: 3 }).map((g) => g.map((l) => l.id))).toEqual([['l0', 'l1', 'l2'], ['l3']]);
    expect(rollGroups(leaves, { batch: 1, byHost: true }).map((g) => g.map((l) => l.id))).toEqual([['l0', 'l2'], ['l1'], ['l3']]);
  });
});

describe('shoal restart --url a,b', () => {
  it('rolls through the first aggregator that answers, and names each one when none does', async () => {
    const [a, b] = [await deadUrl(), await deadUrl()];
    const r = await runCli(['restart', '--url', `${a},${b}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`no aggregator answered \\(${a.replace(/[.:/]/g, '\\$&')}: .*; ${b.replace(/[.:/]/g, '\\$&')}: `));
  });
});

const HOSTS = ['127.0.0.1', '127.0.0.2'];
const runnable = leafCliExists() && shm.nativeAvailable();

describe.skipIf(!runnable)('shoal restart --by-host', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-byhost-'));
  const sup = new Supervisor({ log: () => undefined, backoffMsMin: 100, backoffMsMax: 1_000, stopTimeoutMs: 10_000 });
  let agg: ShoalProcess | null = null;
  const ids: string[] = [];

  afterAll(async () => {
    await sup.stopAll('SIGTERM');
    await agg?.stop();
    for (const id of ids) for (const n of shm.list(`/shoal-${id}-`)) shm.unlink(n);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('restarts one host at a time, from shared memory, with coverage never below the other host\'s share', async () => {
    agg = await startShoal(['aggregator', '--port', '0', '--log-level', 'warn']);
    const port = await freePortRange(2);
    const children = HOSTS.flatMap((host, h) => [0, 1].map((k) => {
      const id = `bh${process.pid}-${h}${k}`;
      ids.push(id);
      const url = `http://${host}:${port + k}`;
      const args = [CLI_PATH, 'leaf', '--host', host, '--port', String(port + k), '--id', id, '--workers', '1', '--data-dir', path.join(dir, id), '--log-level', 'warn', '--join', agg!.url];
      return sup.start({ name: id, command: process.execPath, args, logFile: path.join(dir, `${id}.log`), url, restart: true });
    }));
    await Promise.all(children.map((c) => sup.waitReady(c, 20_000)));
    await waitFor('all four leaves to join', async () => ((await getJson(`${agg!.url}/v1/status`)).body.leaves.filter((m: any) => m.state === 'healthy').length === 4 ? true : undefined), 15_000);
    // Rows on every leaf: batches go to random leaves; send until each holds some.
    let sent = 0;
    for (let b = 0; b < 200; b++) {
      const rows = Array.from({ length: 100 }, (_, i) => ({ time: 1_700_000_000 + b * 100 + i, v: 1 }));
      expect((await postJson(`${agg!.url}/v1/tables/t/events`, rows)).status).toBe(200);
      sent += rows.length;
      if (b >= 20) {
        const st = (await getJson(`${agg!.url}/v1/status`)).body;
        if (st.leaves.every((m: any) => (m.rows ?? 0) > 0)) break;
      }
    }
    const before = await Promise.all(children.map(async (c) => ({ url: c.spec.url, rows: (await getJson(`${c.spec.url}/v1/status`)).body.rows as number })));
    expect(before.reduce((s, l) => s + l.rows, 0)).toBe(sent);
    const hostRows = (host: string) => before.filter((l) => new URL(l.url).hostname === host).reduce((s, l) => s + l.rows, 0);
    const floor = Math.min(...HOSTS.map((h) => 100 * (sent - hostRows(h)) / sent));

    const events: RollEvent[] = [];
    const away = new Set<string>();
    let awayHostsMax = 0;
    const s = await rollingRestart({
      aggregatorUrl: agg.url, batch: 1, byHost: true, leafTimeoutMs: 30_000, allowDisk: false, token: null, adminToken: null, probeTable: 't', probeIntervalMs: 50,
      onEvent: (e) => {
        events.push(e);
        if (e.kind !== 'leaf') return;
        if (e.leaf.phase === 'handing-off') away.add(e.leaf.url);
        if (e.leaf.phase === 'healthy' || e.leaf.phase === 'failed') away.delete(e.leaf.url);
        awayHostsMax = Math.max(awayHostsMax, new Set([...away].map((u) => new URL(u).hostname)).size);
      },
    });
    expect(s.error).toBeNull();
    expect(s.ok).toBe(true);
    expect(s.leaves.map((l) => l.source)).toEqual(['shm', 'shm', 'shm', 'shm']);
    expect(s.leaves.every((l) => l.rowsAfter === l.rowsBefore)).toBe(true);
    expect(awayHostsMax).toBe(1);
    const notes = events.filter((e): e is Extract<RollEvent, { kind: 'note' }> => e.kind === 'note').map((e) => e.message).filter((m) => m.startsWith('host '));
    expect(notes.map((m) => m.split(':')[0]).sort()).toEqual(HOSTS.map((h) => `host ${h}`));
    expect(s.probe.queries).toBeGreaterThan(0);
    expect(s.probe.coverageMin).not.toBeNull();
    expect(s.probe.coverageMin!).toBeGreaterThanOrEqual(Math.floor(floor * 100) / 100);
    const q = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*), sum(v) FROM t' });
    expect(q.body.rows).toEqual([[sent, sent]]);
    expect(q.body.coverage.percent).toBe(100);
  }, 120_000);
});
