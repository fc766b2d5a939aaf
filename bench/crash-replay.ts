/**
 * Crash recovery of the log written since the last checkpoint (issue 13: "only the log since the
 * last seal is replayed"). A leaf takes --log-mb of NDJSON with checkpoints held off, so every
 * row is in the log alone and its sealed blocks in shared memory; then, --rounds times each:
 *
 *   seal:   kill -9, restart: the blocks named by seal records are mapped, only the rows after
 *           the last one are replayed (docs/durability.md "Blocks sealed since the checkpoint");
 *   replay: kill -9, the block segments removed, restart: the whole log is replayed (what every
 *           crash recovery did before seal records; also what happens when /dev/shm was lost).
 *
 * Seal rounds run first: a replay recovery seals its blocks without seal records, so after one
 * the log can only be replayed. Each recovery must give the answer the leaf gave before the
 * first kill. Figures: the leaf's own restart.ms (recovery alone) and spawn -> listening.
 * --cold drops the page cache before each recovery (root only).
 *
 *   node dist/bench/crash-replay.js [--log-mb 120] [--rounds 3] [--seed 42] [--cold] [--json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as shm from '../native/shm.js';
import { CONTENT_TYPE, generateColumns, renderBodies, sumBytes } from './data.js';
import { formatTable, intFlag, machineInfo, median, newPool, parseFlags, postJson, sendBatches, startLeaf, warnIfBusy, type LeafProcess } from './support.js';

const TABLE = 'events';
const BATCH_ROWS = 10_000;
const CONNECTIONS = 4;
/** Checkpoints start at 128 MiB of log (server/leaf/config.ts): stay below, or one would run. */
const LOG_MB_MAX = 120;
const SAMPLE_ROWS = 20_000;

interface Round { kind: 'seal' | 'replay'; restartMs: number; spawnToListeningMs: number; diskBytesRead: number; shmBytesReused: number; reason: string | null }

async function status(url: string): Promise<{ restart: Round & { ms: number; source: string } }> {
  return (await fetch(`${url}/v1/status`)).json() as Promise<{ restart: Round & { ms: number; source: string } }>;
}

async function answer(url: string): Promise<string> {
  const pool = newPool(url, 1);
  try {
    const r = await postJson(pool, '/v1/query', JSON.stringify({ sql: `SELECT count(*), sum(bytes), count(DISTINCT user_id) FROM ${TABLE}` }));
    if (r.status !== 200) throw new Error(`query: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return JSON.stringify((r.body as { rows: unknown[][] }).rows);
  } finally { await pool.close(); }
}

async function kill9(leaf: LeafProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => leaf.process.once('exit', () => resolve()));
  leaf.process.kill('SIGKILL');
  await exited;
}

function dropPageCache(): boolean {
  try { fs.writeFileSync('/proc/sys/vm/drop_caches', '1\n'); return true; } catch { return false; }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), [
    { name: 'log-mb', value: true, help: `MB of NDJSON ingested after the last checkpoint (1-${LOG_MB_MAX})` },
    { name: 'rounds', value: true, help: 'recoveries of each kind' },
    { name: 'seed', value: true, help: 'data seed' },
    { name: 'cold', value: false, help: 'drop the page cache before each recovery (root)' },
    { name: 'json', value: false, help: 'print JSON' },
  ]);
  const logMb = intFlag(flags, 'log-mb', 120, 1, LOG_MB_MAX);
  const rounds = intFlag(flags, 'rounds', 3, 1, 20);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 31);
  const cold = flags.has('cold');
  const log = (s: string) => process.stderr.write(`${s}\n`);
  warnIfBusy(log);

  // Rows for --log-mb: the bytes per row of a sample, scaled.
  const now = Math.floor(Date.now() / 1000);
  const sample = renderBodies(generateColumns(seed, SAMPLE_ROWS, now), 'ndjson', BATCH_ROWS);
  const bytesPerRow = sample.reduce((n, b) => n + b.length, 0) / SAMPLE_ROWS;
  const rows = Math.floor((logMb * 1e6) / bytesPerRow);
  const cols = generateColumns(seed, rows, now);
  const bodies = renderBodies(cols, 'ndjson', BATCH_ROWS);
  const bodyBytes = bodies.reduce((n, b) => n + b.length, 0);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-crash-replay-'));
  const id = `bench-crash-${process.pid}`;
  const args = ['--id', id, '--checkpoint-interval', String(3_600_000), '--memory-budget', '16GiB'];
  const problems: string[] = [];
  const samples: Round[] = [];
  let leaf: LeafProcess | null = null;
  try {
    leaf = await startLeaf({ dataDir: tmp, args });
    log(`ingesting ${rows.toLocaleString('en-US')} rows (${(bodyBytes / 1e6).toFixed(1)} MB of NDJSON) with checkpoints held off...`);
    const pool = newPool(leaf.url, CONNECTIONS);
    const accepted = await sendBatches(pool, TABLE, bodies, CONTENT_TYPE.ndjson, CONNECTIONS);
    await pool.close();
    if (accepted !== rows) problems.push(`accepted ${accepted} of ${rows} rows`);
    const expected = await answer(leaf.url);
    if (!expected.startsWith(`[[${rows},${sumBytes(cols)},`)) problems.push(`answer before the crash ${expected}, expected ${rows} rows, sum ${sumBytes(cols)}`);
    const manifest = path.join(tmp, 'manifest.json');
    if (fs.existsSync(manifest) && fs.readFileSync(manifest, 'utf8').includes('"segment"')) problems.push('a checkpoint ran during the ingest: the log is not all un-checkpointed');
    const walBytes = fs.readdirSync(path.join(tmp, 'wal')).reduce((n, f) => n + fs.statSync(path.join(tmp, 'wal', f)).size, 0);

    for (const kind of ['seal', 'replay'] as const) {
      for (let r = 0; r < rounds; r++) {
        await kill9(leaf);
        leaf = null;
        if (kind === 'replay') for (const name of shm.list(`/shoal-${id}-`)) if (!name.endsWith('-meta')) shm.unlink(name);
        if (cold && !dropPageCache()) problems.push('--cold: cannot write /proc/sys/vm/drop_caches (not root?)');
        const t0 = performance.now();
        leaf = await startLeaf({ dataDir: tmp, args });
        const spawnToListeningMs = Math.round(performance.now() - t0);
        const st = (await status(leaf.url)).restart;
        const got = await answer(leaf.url);
        if (got !== expected) problems.push(`${kind} recovery answered ${got}, expected ${expected}`);
        if (kind === 'seal' && !/blocks sealed after the checkpoint/.test(st.reason ?? '')) problems.push(`seal recovery did not map sealed blocks: ${st.reason}`);
        samples.push({ kind, restartMs: st.ms, spawnToListeningMs, diskBytesRead: st.diskBytesRead, shmBytesReused: st.shmBytesReused, reason: st.reason });
        log(`${kind} recovery ${r + 1}/${rounds}: ${st.ms} ms (spawn -> listening ${spawnToListeningMs} ms), ${(st.shmBytesReused / 1e6).toFixed(1)} MB mapped`);
      }
    }
    const med = (kind: Round['kind'], key: 'restartMs' | 'spawnToListeningMs') => median(samples.filter((s) => s.kind === kind).map((s) => s[key]));
    const result = {
      machine: machineInfo(), rows, bodyBytes, walBytes, rounds, cold,
      seal: { restartMs: med('seal', 'restartMs'), spawnToListeningMs: med('seal', 'spawnToListeningMs'), shmBytesReused: samples.find((s) => s.kind === 'seal')?.shmBytesReused ?? 0 },
      replay: { restartMs: med('replay', 'restartMs'), spawnToListeningMs: med('replay', 'spawnToListeningMs') },
      samples, ok: problems.length === 0, problems,
    };
    if (flags.has('json')) { console.log(JSON.stringify(result, null, 2)); return; }
    console.log(`crash recovery of ${(walBytes / 1e6).toFixed(1)} MB of log since the last checkpoint (${rows.toLocaleString('en-US')} rows), median of ${rounds}${cold ? ', cold page cache' : ''}:`);
    console.log(formatTable(['recovery', 'restart.ms', 'spawn -> listening ms', 'MB mapped from shm'], [
      ['seal records (blocks mapped)', String(result.seal.restartMs), String(result.seal.spawnToListeningMs), (result.seal.shmBytesReused / 1e6).toFixed(1)],
      ['whole log replayed', String(result.replay.restartMs), String(result.replay.spawnToListeningMs), '0'],
    ]));
    console.log(`ratio (replayed / seal records): ${(result.replay.restartMs / Math.max(1, result.seal.restartMs)).toFixed(1)}x recovery, ${(result.replay.spawnToListeningMs / Math.max(1, result.seal.spawnToListeningMs)).toFixed(1)}x spawn -> listening`);
    for (const p of problems) console.log(`PROBLEM: ${p}`);
  } finally {
    if (leaf !== null) await kill9(leaf).catch(() => undefined);
    for (const name of shm.list(`/shoal-${id}-`)) shm.unlink(name);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (problems.length > 0) process.exitCode = 1;
}

await main();
