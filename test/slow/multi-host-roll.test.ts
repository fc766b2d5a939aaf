/**
 * A rolling restart across simulated hosts (issue 19; the hosts are network namespaces,
 * test/support/hosts.ts): three hosts with two leaves each, every leaf supervised (as systemd or
 * `shoal up` would: a clean exit is followed by a new process at once) and joined to an aggregator
 * on the bridge, an ingest loop running through the aggregator. `shoal restart --by-host` takes
 * one host at a time, then `--batch 2` takes two leaves at a time across hosts. Each roll: every
 * leaf back from shared memory with at least its rows, no acknowledged batch lost or doubled
 * (counted here from the acknowledgements), and the probe's coverage never below the share of
 * rows the leaves not being restarted hold, computed here from the leaves' own counts.
 *
 * Needs root (namespaces), the native addon and `npm run build`; skipped with the reason printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as shm from '../../native/shm.js';
import { rollGroups, rollingRestart } from '../../server/ops/rolling-restart.js';
import { Supervisor, type ManagedChild } from '../../server/ops/supervisor.js';
import { CLI_PATH, getJson, postJson, sleep, startShoal, waitFor, type ShoalProcess } from '../support/cluster.js';
import { canUseNetns, createHosts, type Hosts } from '../support/hosts.js';
import { leafCliExists } from '../support/processes.js';

const skipReason = canUseNetns() ?? (leafCliExists() && shm.nativeAvailable() ? null : 'dist/ or the native addon is not built (npm run build)');
if (skipReason !== null) console.log(`multi-host-roll: skipped: ${skipReason}`);

const HOSTS = 3;
const PORTS = [7001, 7002];

describe.skipIf(skipReason !== null)('shoal restart across hosts', () => {
  let hosts: Hosts;
  let agg: ShoalProcess;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-mh-roll-'));
  const sup = new Supervisor({ log: () => undefined, backoffMsMin: 100, backoffMsMax: 1_000, stopTimeoutMs: 10_000 });
  const children: ManagedChild[] = [];
  const ids: string[] = [];
  let acked = 0;
  let sentBatches = 0;
  let ingesting = false;
  let ingestLoop: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    hosts = await createHosts(HOSTS);
    agg = await startShoal(['aggregator', '--host', hosts.bridgeAddress, '--port', '0', '--log-level', 'warn']);
    for (const h of hosts) {
      for (const port of PORTS) {
        const id = `mr${process.pid}-${h.index}-${port}`;
        ids.push(id);
        const url = `http://${h.address}:${port}`;
        const args = ['netns', 'exec', h.netns, process.execPath, CLI_PATH, 'leaf', '--host', h.address, '--port', String(port), '--id', id, '--workers', '1', '--data-dir', path.join(dir, id), '--log-level', 'warn', '--join', agg.url];
        children.push(sup.start({ name: id, command: 'ip', args, logFile: path.join(dir, `${id}.log`), url, restart: true }));
      }
    }
    await Promise.all(children.map((c) => sup.waitReady(c, 30_000)));
    await waitFor('every leaf to join', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.filter((m: any) => m.state === 'healthy').length === HOSTS * PORTS.length ? true : undefined), 20_000);
  }, 90_000);

  afterAll(async () => {
    ingesting = false;
    await ingestLoop;
    await sup.stopAll('SIGTERM');
    await agg?.stop();
    await hosts?.destroy();
    for (const id of ids) for (const n of shm.list(`/shoal-${id}-`)) shm.unlink(n);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** Batches through the aggregator, each resent with its id until acknowledged. */
  function startIngest(): void {
    ingesting = true;
    ingestLoop = (async () => {
      while (ingesting) {
        const batchId = `mr-${sentBatches++}`;
        const rows = Array.from({ length: 50 }, (_, i) => ({ time: 1_700_000_000 + i, v: 1 }));
        for (let tries = 0; ; tries++) {
          const r = await postJson(`${agg.url}/v1/tables/t/events`, rows, { 'x-shoal-batch-id': batchId }).catch(() => null);
          if (r !== null && r.status === 200) { if (r.body.duplicate !== true) acked += rows.length; else if (tries === 0) throw new Error(`a fresh batch ${batchId} was a duplicate`); break; }
          if (tries > 100) throw new Error(`batch ${batchId} was not acknowledged: ${JSON.stringify(r?.body)}`);
          await sleep(50);
        }
        await sleep(20);
      }
    })();
  }

  async function roll(opts: { batch: number; byHost: boolean }) {
    const before = await Promise.all(children.map(async (c) => ({ url: c.spec.url, rows: (await getJson(`${c.spec.url}/v1/status`)).body.rows as number })));
    const total = before.reduce((s, l) => s + l.rows, 0);
    // The lowest coverage allowed: the rows outside the group restarted, for the worst group.
    const groups = rollGroups(before, opts);
    const floor = Math.min(...groups.map((g) => (100 * (total - g.reduce((s, l) => s + l.rows, 0))) / total));
    const s = await rollingRestart({ aggregatorUrl: agg.url, ...opts, leafTimeoutMs: 30_000, allowDisk: false, token: null, adminToken: null, probeTable: 't', probeIntervalMs: 50, onEvent: () => undefined });
    expect(s.error).toBeNull();
    expect(s.leaves.map((l) => l.source)).toEqual(Array(HOSTS * PORTS.length).fill('shm'));
    for (const l of s.leaves) expect(l.rowsAfter!).toBeGreaterThanOrEqual(l.rowsBefore);
    expect(s.writes.failed).toBe(0);
    // Coverage is measured on rows held, and rows arrive during the roll: allow the writes
    // accepted meanwhile to shift the shares by a little.
    expect(s.probe.coverageMin!).toBeGreaterThanOrEqual(Math.floor(floor * 100) / 100 - 2);
    return { groups: groups.length, coverageMin: s.probe.coverageMin, floor, ms: s.totalMs };
  }

  it('rolls one host at a time, then two leaves at a time, under ingest, losing and doubling nothing', async () => {
    startIngest();
    await waitFor('rows on every leaf', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.every((m: any) => (m.rows ?? 0) > 0) ? true : undefined), 30_000);
    const byHost = await roll({ batch: 1, byHost: true });
    expect(byHost.groups).toBe(HOSTS);
    const byTwo = await roll({ batch: 2, byHost: false });
    expect(byTwo.groups).toBe((HOSTS * PORTS.length) / 2);
    ingesting = false;
    await ingestLoop;
    console.log(`multi-host-roll: --by-host ${byHost.ms} ms (coverage min ${byHost.coverageMin}%, floor ${byHost.floor.toFixed(2)}%); --batch 2 ${byTwo.ms} ms (min ${byTwo.coverageMin}%, floor ${byTwo.floor.toFixed(2)}%); ${sentBatches} batches`);
    await waitFor('every leaf healthy again', async () => ((await getJson(`${agg.url}/v1/status`)).body.leaves.every((m: any) => m.state === 'healthy') ? true : undefined), 10_000);
    const q = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*), sum(v) FROM t' });
    expect(q.body.coverage.percent).toBe(100);
    expect(q.body.rows).toEqual([[acked, acked]]);
  }, 180_000);
});
