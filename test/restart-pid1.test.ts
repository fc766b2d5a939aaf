/**
 * A rolling restart of a leaf whose every generation has the same pid, as in a container (the
 * process is pid 1 each time): `shoal restart` must tell the successor from its predecessor by the
 * status's `instanceId`, not by the pid. The leaf runs as pid 1 of its own PID namespace
 * (`unshare --pid --fork`, root only), restarted by a loop here whenever it exits cleanly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rollingRestart } from '../server/ops/rolling-restart.js';
import * as shm from '../native/shm.js';
import { CLI_PATH, freePortRange, getJson, postJson, startShoal, waitFor, type ShoalProcess } from './support/cluster.js';
import { leafCliExists } from './support/processes.js';

function pidNamespaceReason(): string | null {
  if (!leafCliExists() || !shm.nativeAvailable()) return 'the leaf CLI or the native addon is not built';
  if (process.getuid?.() !== 0) return 'not root: a PID namespace needs CAP_SYS_ADMIN';
  const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', 'echo $$'], { encoding: 'utf8' });
  if (r.status !== 0 || r.stdout.trim() !== '1') return `unshare --pid does not work here (${(r.stderr || r.error?.message || '').trim()})`;
  return null;
}
const skipReason = pidNamespaceReason();
if (skipReason !== null) console.log(`restart-pid1: skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('shoal restart with a leaf that is always pid 1', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-pid1-'));
  const id = `p1${process.pid}`;
  let agg: ShoalProcess | null = null;
  let current: ChildProcess | null = null;
  let stopping = false;

  afterAll(async () => {
    stopping = true;
    if (current !== null && current.exitCode === null) {
      current.kill('SIGKILL');
      await new Promise((r) => { current!.once('exit', r); setTimeout(r, 5_000); });
    }
    await agg?.stop();
    for (const n of shm.list(`/shoal-${id}-`)) shm.unlink(n);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('recognises the successor by its instance id and rolls it through shared memory', async () => {
    agg = await startShoal(['aggregator', '--port', '0', '--log-level', 'warn']);
    const port = await freePortRange(1);
    const url = `http://127.0.0.1:${port}`;
    const generations: number[] = [];
    const run = () => {
      // The namespace's pid 1 is node itself (unshare --fork execs it as the first process).
      current = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', process.execPath, CLI_PATH, 'leaf', '--port', String(port), '--id', id, '--workers', '1', '--data-dir', dir, '--log-level', 'warn', '--join', agg!.url], { stdio: 'ignore' });
      current.once('exit', (code) => { if (!stopping && code === 0) run(); });
    };
    run();
    await waitFor('the leaf to serve', async () => ((await getJson(`${url}/healthz`)).status === 200 ? true : undefined), 20_000);
    const first = (await getJson(`${url}/v1/status`)).body;
    generations.push(first.pid);
    expect(first.pid).toBe(1);
    expect(first.instanceId).toMatch(/^[0-9a-f]{16}$/);
    await waitFor('the leaf to join', async () => ((await getJson(`${agg!.url}/v1/status`)).body.leaves.some((m: any) => m.state === 'healthy' && m.instanceId === first.instanceId) ? true : undefined), 10_000);
    const rows = Array.from({ length: 300 }, (_, i) => ({ time: 1_700_000_000 + i, v: i % 7 }));
    expect((await postJson(`${agg.url}/v1/tables/t/events`, rows)).status).toBe(200);

    const s = await rollingRestart({ aggregatorUrl: agg.url, batch: 1, leafTimeoutMs: 20_000, allowDisk: false, token: null, adminToken: null, probeTable: 't', probeIntervalMs: 100, onEvent: () => undefined });
    expect(s.error).toBeNull();
    expect(s.leaves.map((l) => [l.source, l.rowsBefore, l.rowsAfter])).toEqual([['shm', 300, 300]]);
    const after = (await getJson(`${url}/v1/status`)).body;
    expect(after.pid).toBe(1);
    expect(after.instanceId).not.toBe(first.instanceId);
    const q = await postJson(`${agg.url}/v1/query`, { sql: 'SELECT count(*), sum(v) FROM t' });
    expect(q.body.rows).toEqual([[300, rows.reduce((a, r) => a + r.v, 0)]]);
  }, 60_000);
});
