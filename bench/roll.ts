/**
 * Rolling restart of a whole cluster under ingest load (issue 5): `shoal up` with N leaves holding
 * G GB each (data directories written by restart-datadir.js, the leaf's own checkpoint code), an
 * ingest loop and the roll's own coverage probe running, then `shoal restart --batch 1` through
 * shared memory; then the same roll with shared memory disabled (every leaf stops cleanly and
 * recovers from disk), in the same run, for the ratio.
 *
 *   node dist/bench/roll.js [--leaves 4] [--gb 1] [--cold] [--json] [--keep-logs DIR]
 *
 * --cold (root): the disk roll drops the page cache (`echo 1 > /proc/sys/vm/drop_caches`) right
 * before each leaf's handoff call, so every successor reads its block files from the device, as
 * after a reboot or on a machine whose cache holds other data.
 *
 * Goals: the whole shared-memory roll in under N x one leaf's handoff-to-serving time plus a few
 * seconds, at least 10x faster than the disk roll, zero failed or lost writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollingRestart, type RollSummary } from '../server/ops/rolling-restart.js';
import { CLI_PATH, intFlag, machineInfo, parseFlags } from './support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATADIR_JS = path.join(here, 'restart-datadir.js');
const INGEST_LOOP = path.join(here, '..', '..', 'test', 'support', 'ingest-loop.mjs');

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => { out += c; });
    p.stderr.on('data', (c: Buffer) => { out += c; });
    p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

async function startUp(dataDir: string, leaves: number, port: number, extra: string[]): Promise<{ proc: ChildProcess; url: string; readyMs: number; out: () => string }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [CLI_PATH, 'up', '--leaves', String(leaves), '--port', String(port), '--data-dir', dataDir, '--memory-budget', '64GiB', '--start-timeout', '600000', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c; });
  proc.stderr!.on('data', (c: Buffer) => { out += c; });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (out.includes('ready at')) break;
    if (proc.exitCode !== null) throw new Error(`shoal up exited:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, url, readyMs: performance.now() - t0, out: () => out };
}

async function stopUp(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
}

async function rowsOf(url: string): Promise<number> {
  const r = await fetch(`${url}/v1/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT count(*) FROM events' }), headers: { 'content-type': 'application/json' } });
  const body = await r.json() as { rows: number[][]; coverage: { percent: number } };
  if (body.coverage.percent !== 100) throw new Error(`coverage ${body.coverage.percent} while counting rows`);
  return body.rows[0]![0]!;
}

function dropPageCache(): boolean {
  try { fs.writeFileSync('/proc/sys/vm/drop_caches', '1\n'); return true; } catch { return false; }
}

async function roll(url: string, dataDir: string, label: string, allowDisk: boolean, cold = false) {
  let drops = 0;
  const stop = path.join(dataDir, `stop-${label}`);
  const ingest = spawn(process.execPath, [INGEST_LOOP, url, 'events', stop, label, '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let ingestOut = '';
  ingest.stdout!.on('data', (c: Buffer) => { ingestOut += c; });
  const ingestDone = new Promise((r) => ingest.once('exit', r));
  await new Promise((r) => setTimeout(r, 1000));
  const summary: RollSummary = await rollingRestart({
    aggregatorUrl: url, batch: 1, leafTimeoutMs: 600_000, allowDisk, token: null, adminToken: null,
    probeTable: 'events', probeIntervalMs: 200,
    onEvent: (e) => {
      // Synchronous: the roll's handoff call waits until the cache is dropped.
      if (cold && e.kind === 'leaf' && e.leaf.phase === 'handing-off' && dropPageCache()) drops++;
      if (e.kind === 'leaf' && (e.leaf.phase === 'healthy' || e.leaf.phase === 'failed')) process.stderr.write(`  ${label}: ${e.leaf.id} ${e.leaf.phase} from ${e.leaf.source} in ${e.leaf.totalMs} ms\n`);
    },
  });
  fs.writeFileSync(stop, '');
  await ingestDone;
  const writes = JSON.parse(ingestOut.trim().split('\n').pop()!) as { batches: number; rows: number; failures: number; retries: number };
  if (cold && drops === 0) throw new Error('--cold: cannot write /proc/sys/vm/drop_caches (not root?)');
  return { summary, writes, drops };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), [
    { name: 'leaves', value: true, help: 'leaves (default 4)' },
    { name: 'gb', value: true, help: 'GB of table data per leaf (default 1)' },
    { name: 'cold', value: false, help: 'drop the page cache before each disk-roll handoff (root only)' },
    { name: 'json', value: false, help: 'print JSON' },
    { name: 'keep-logs', value: true, help: 'copy the processes\' logs to this directory before cleaning up' },
  ]);
  const leaves = intFlag(flags, 'leaves', 4, 1, 16);
  const gb = Number(flags.get('gb') ?? 1);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-roll-'));
  const dataDir = path.join(tmp, 'data');
  const ids: string[] = [];
  try {
    process.stderr.write(`writing ${leaves} data directories of ${gb} GB...\n`);
    for (let i = 1; i <= leaves; i++) {
      const id = `roll-${process.pid}-${i}`;
      ids.push(id);
      await run(process.execPath, [DATADIR_JS, '--dir', path.join(dataDir, `leaf-${i}`), '--id', id, '--bytes', String(Math.round(gb * 1e9))]);
    }
    const port = 21_000 + (process.pid % 20_000);
    // Round 1: start from disk, roll through shared memory.
    const up1 = await startUp(dataDir, leaves, port, []);
    const rowsBefore = await rowsOf(up1.url);
    const shm = await roll(up1.url, dataDir, 'shm', false);
    const rowsAfterShm = await rowsOf(up1.url);
    await stopUp(up1.proc);
    const keepLogs = typeof flags.get('keep-logs') === 'string' ? String(flags.get('keep-logs')) : '';
    if (keepLogs !== '') fs.cpSync(path.join(dataDir, 'logs'), path.join(keepLogs, 'shm'), { recursive: true });
    for (const id of ids) for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith(`shoal-${id}-`)) fs.rmSync(path.join('/dev/shm', f));
    // Round 2: the same cluster without shared memory: every leaf recovers from disk.
    const up2 = await startUp(dataDir, leaves, port, ['--no-shm']);
    const rowsBeforeDisk = await rowsOf(up2.url);
    const disk = await roll(up2.url, dataDir, 'disk', true, flags.has('cold'));
    const rowsAfterDisk = await rowsOf(up2.url);
    await stopUp(up2.proc);

    const perLeaf = (s: RollSummary) => s.leaves.map((l) => l.totalMs ?? NaN);
    const shmHandoffMax = Math.max(...shm.summary.leaves.map((l) => l.downMs ?? NaN));
    const result = {
      machine: machineInfo(), leaves, gbPerLeaf: gb, rows: rowsBefore,
      shm: { totalMs: shm.summary.totalMs, perLeafMs: perLeaf(shm.summary), sources: shm.summary.leaves.map((l) => l.source), coverageMin: shm.summary.probe.coverageMin, writes: shm.writes, lost: rowsBefore + shm.writes.rows - rowsAfterShm },
      diskCold: flags.has('cold'),
      disk: { totalMs: disk.summary.totalMs, perLeafMs: perLeaf(disk.summary), sources: disk.summary.leaves.map((l) => l.source), coverageMin: disk.summary.probe.coverageMin, writes: disk.writes, lost: rowsBeforeDisk + disk.writes.rows - rowsAfterDisk },
      startFromDiskMs: up1.readyMs,
      ratioDiskOverShm: disk.summary.totalMs / shm.summary.totalMs,
      goalShmUnderMs: leaves * shmHandoffMax + 5000,
    };
    if (flags.has('json')) { process.stdout.write(JSON.stringify(result, null, 2) + '\n'); return; }
    const line = (k: string, a: string, b: string) => `${k.padEnd(34)} ${a.padStart(14)} ${b.padStart(14)}`;
    const out = [
      `rolling restart: ${leaves} leaves x ${gb} GB (${rowsBefore} rows), ingest running, --batch 1`,
      line('', 'shared memory', flags.has('cold') ? 'disk (cold)' : 'disk (warm)'),
      line('whole roll (s)', (result.shm.totalMs / 1000).toFixed(1), (result.disk.totalMs / 1000).toFixed(1)),
      line('per leaf, handoff -> serving (s)', shm.summary.leaves.map((l) => ((l.downMs ?? NaN) / 1000).toFixed(2)).join('/'), disk.summary.leaves.map((l) => ((l.downMs ?? NaN) / 1000).toFixed(2)).join('/')),
      line('per leaf, handoff -> healthy (s)', result.shm.perLeafMs.map((m) => (m / 1000).toFixed(1)).join('/'), result.disk.perLeafMs.map((m) => (m / 1000).toFixed(1)).join('/')),
      line('restore source', result.shm.sources.join(','), result.disk.sources.join(',')),
      line('lowest coverage seen (%)', String(result.shm.coverageMin), String(result.disk.coverageMin)),
      line('writes acked / retried / failed', `${result.shm.writes.batches}/${result.shm.writes.retries}/${result.shm.writes.failures}`, `${result.disk.writes.batches}/${result.disk.writes.retries}/${result.disk.writes.failures}`),
      line('rows lost (expected - held)', String(result.shm.lost), String(result.disk.lost)),
      `disk roll / shm roll: ${result.ratioDiskOverShm.toFixed(1)}x (goal >= 10x); shm roll goal: under ${(result.goalShmUnderMs / 1000).toFixed(1)} s (N x slowest handoff-to-serving + 5 s)`,
      `cluster start from disk (all leaves in parallel): ${(result.startFromDiskMs / 1000).toFixed(1)} s`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    for (const id of ids) for (const f of fs.existsSync('/dev/shm') ? fs.readdirSync('/dev/shm') : []) if (f.startsWith(`shoal-${id}-`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/roll: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(2);
});
