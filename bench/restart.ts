/**
 * Restart time of a leaf holding 0.5-4 GB (issue 4): a planned restart through shared memory
 * and a crash recovery from disk, both quoted against a C memcpy of the same bytes measured in
 * the same run; and ingest with the disk log on vs off.
 *
 *   node dist/bench/restart.js [--sizes 0.5,1,2,4] [--repeats 1] [--seed 42] [--cold]
 *     [--ingest-events 1000000] [--ingest-rounds 2] [--skip-ingest] [--json]
 *
 * Per size (GB = 10^9 bytes of block images, what a handoff moves):
 *   1. A data directory holding that much is written with the leaf's own decoder and checkpoint
 *      code (restart-datadir.ts says why and how); this is setup, not measured.
 *   2. memcpy of the same byte count between two warm buffers (native memcpyBench), the baseline.
 *   3. A real leaf starts on it (recovers from disk), is queried (answer hashed), then gets
 *      SIGTERM: handoff = SIGTERM -> process exit, with the leaf's own save time from its log.
 *      Peak memory during the handoff: the leaf's anonymous RSS plus the system's shared memory
 *      growth (/proc/meminfo Shmem), against the anonymous RSS before: ~1.0x means the heap was
 *      released as the segments filled, 2.0x that the data was held twice.
 *   4. The successor is spawned the moment the old process exits (as a supervisor would): shm
 *      restore = the leaf's own restart.ms (restore only), spawn -> GET /healthz 200 (process
 *      start included), and SIGTERM -> successor serving (the whole planned restart). The same
 *      query must give the same hash; the background checksum pass's time comes from its log.
 *   5. kill -9, then a new process recovers from disk: restart.ms, diskBytesRead / restart.ms as
 *      GB/s, spawn -> /healthz 200. --cold drops the page cache first (root only); otherwise the
 *      block files are in the page cache, as after a process crash on a live machine.
 *   Steps 3-5 run --repeats times (the disk recovery leaves the data on the heap for the next
 *   round); the table shows the best of each figure (the worst memory peak), JSON every sample.
 *
 * Ingest: the same NDJSON bodies (data.ts, 10,000 rows each, 4 connections) into a fresh leaf
 * with the default disk log (fsync every 200 ms, checkpoints as they fall due) and one with
 * --no-disk-log, alternating which goes first, --ingest-rounds times; medians and their ratio.
 *
 * Goals (issue 4): SIGTERM -> serving <= 2 s for 2 GB; shm restore < one memcpy of its bytes;
 * disk recovery >= 0.5 GB/s; ingest with the log >= 0.7x without. Printed with the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as shm from '../native/shm.js';
import { CONTENT_TYPE, generateColumns, renderBodies, sumBytes } from './data.js';
import {
  answerHash, CLI_PATH, formatTable, intFlag, machineInfo, median, newPool, parseFlags, postJson, round2, round3, sendBatches,
  startLeaf, warnIfBusy,
} from './support.js';

const DATADIR_SCRIPT = fileURLToPath(new URL('./restart-datadir.js', import.meta.url));
const TABLE = 'events';
const SIZES_GB_DEFAULT = [0.5, 2, 8];
const SIZE_GB_MAX = 16;
const LEAF_START_TIMEOUT_MS = 300_000;
const LEAF_EXIT_TIMEOUT_MS = 300_000;
const HEALTHZ_POLL_MS = 2;
const MEMORY_POLL_MS = Number(process.env.BENCH_MEMORY_POLL_MS ?? 20);
const INGEST_BATCH_ROWS = 10_000;
const INGEST_CONNECTIONS = 4;
const INGEST_WARMUP_EVENTS = 100_000;
const VERIFY_SQL = `SELECT count(*) AS n, sum(bytes) AS b, sum(status) AS s, min(time) AS t0, max(time) AS t1, max(latency_ms) AS l FROM ${TABLE}`;
const GOALS = { servingMs8GB: 600, sameWithinFraction: 0.2, ingestRatioMin: 0.7 };

interface Options { sizesGB: number[]; seed: number; repeats: number; cold: boolean; ingestEvents: number; ingestRounds: number; skipIngest: boolean; json: boolean }

function parseOptions(argv: string[]): Options {
  const flags = parseFlags(argv, [
    { name: 'sizes', value: true, help: 'leaf sizes in GB, comma-separated (default 0.5,1,2,4)' },
    { name: 'seed', value: true, help: 'data seed (default 42)' },
    { name: 'repeats', value: true, help: 'restart rounds per size; the best of each figure is printed (default 1)' },
    { name: 'cold', value: false, help: 'drop the page cache before each disk recovery (root only)' },
    { name: 'ingest-events', value: true, help: 'timed events per ingest case (default 1,000,000)' },
    { name: 'ingest-rounds', value: true, help: 'ingest rounds, each with and without the disk log (default 2)' },
    { name: 'skip-ingest', value: false, help: 'only the restart part' },
    { name: 'json', value: false, help: 'results as JSON on stdout (progress on stderr)' },
  ]);
  const raw = flags.get('sizes');
  const sizesGB = raw === undefined ? SIZES_GB_DEFAULT : String(raw).split(',').map(Number);
  for (const s of sizesGB) if (!(s > 0 && s <= SIZE_GB_MAX)) throw new Error(`--sizes: each size must be in (0, ${SIZE_GB_MAX}] GB, got "${String(raw)}"`);
  return {
    sizesGB, seed: intFlag(flags, 'seed', 42, 0, 2 ** 31), repeats: intFlag(flags, 'repeats', 1, 1, 10), cold: flags.has('cold'),
    ingestEvents: intFlag(flags, 'ingest-events', 1_000_000, 10_000, 50_000_000), ingestRounds: intFlag(flags, 'ingest-rounds', 2, 1, 20),
    skipIngest: flags.has('skip-ingest'), json: flags.has('json'),
  };
}

// ---- processes -------------------------------------------------------------------------------

interface Leaf {
  readonly child: ChildProcess;
  readonly url: string;
  readonly spawnedAt: number;
  /** performance.now() when GET /healthz first answered 200. */
  readonly servingAt: number;
  output(): string;
  exited: Promise<void>;
}

/** Spawns a leaf and waits until /healthz answers 200 (the URL comes from its stdout line). */
async function spawnLeaf(dir: string, id: string, extra: readonly string[] = []): Promise<Leaf> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [CLI_PATH, 'leaf', '--port', '0', '--data-dir', dir, '--id', id, '--memory-budget', '64GiB', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`leaf did not start in ${LEAF_START_TIMEOUT_MS} ms:\n${out.slice(-4000)}`)); }, LEAF_START_TIMEOUT_MS);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) { clearTimeout(timer); child.stdout!.off('data', check); resolve(m[1]!); }
    };
    child.stdout!.on('data', check);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`leaf exited before listening:\n${out.slice(-4000)}`)); });
  });
  for (;;) {
    const ok = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, HEALTHZ_POLL_MS));
  }
  return { child, url, spawnedAt, servingAt: performance.now(), output: () => out, exited };
}

async function waitExit(leaf: Leaf): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([leaf.exited, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`leaf did not exit in ${LEAF_EXIT_TIMEOUT_MS} ms`)), LEAF_EXIT_TIMEOUT_MS); })]);
  clearTimeout(timer);
}

async function kill9(leaf: Leaf): Promise<void> {
  leaf.child.kill('SIGKILL');
  await waitExit(leaf);
}

interface RestartInfo { source: string; ms: number; bytes: number; rows: number; reason: string | null; diskBytesRead: number; shmBytesReused: number }

async function statusOf(leaf: Leaf): Promise<{ restart: RestartInfo; rows: number; bytes: number }> {
  return (await fetch(`${leaf.url}/v1/status`)).json() as Promise<{ restart: RestartInfo; rows: number; bytes: number }>;
}

async function verifyQuery(leaf: Leaf): Promise<{ hash: string; rows: unknown[][]; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${leaf.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: VERIFY_SQL }) });
  const body = await res.json() as { rows: unknown[][] };
  if (res.status !== 200) throw new Error(`verify query: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return { hash: answerHash(body.rows), rows: body.rows, ms: performance.now() - t0 };
}

/** A number from the leaf's log: the first capture group of `re`, or null. */
function fromLog(leaf: Leaf, re: RegExp): number | null {
  const m = re.exec(leaf.output());
  return m === null ? null : Number(m[1]);
}

async function waitForLog(leaf: Leaf, re: RegExp, timeoutMs: number): Promise<number | null> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const v = fromLog(leaf, re);
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}

// ---- memory ----------------------------------------------------------------------------------

function meminfoShmemBytes(): number {
  const m = /^Shmem:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** RssAnon and RssShmem of a process (0 once it has exited). */
function rssBytes(pid: number): { anon: number; shmem: number } {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { anon: kib('RssAnon'), shmem: kib('RssShmem') };
  } catch {
    return { anon: 0, shmem: 0 };
  }
}

function dropPageCache(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1\n');
    return true;
  } catch {
    return false;
  }
}

// ---- one size --------------------------------------------------------------------------------

/** One planned restart: SIGTERM the leaf, spawn its successor when it exits, check the answer. */
interface HandoffRound {
  /** The leaf that handed off: 'disk-start' recovered from disk (reading block files straight
   * into new segments), 'shm-start' took an earlier handoff. Either way its blocks are in shm. */
  from: 'disk-start' | 'shm-start';
  /** Blocks the save copied (not in shared memory already) and those it only listed. */
  copiedBlocks: number | null;
  inPlaceBlocks: number | null;
  sigtermToExitMs: number;
  saveMs: number | null;
  /** Peak of (leaf RSS + the shared memory it wrote) / leaf RSS before the handoff. */
  memoryPeakRatio: number;
  memoryBeforeBytes: number;
  source: string;
  restartMs: number;
  spawnToServingMs: number;
  sigtermToServingMs: number;
  diskBytesRead: number;
  /** The successor's checksum pass over what it took (after it serves), from its log. */
  verifyMs: number | null;
  firstQueryMs: number;
}

/** A recovery after kill -9: 'reuse' maps the checkpointed blocks still in shared memory (their
 * checksums checked first); 'disk' has had the leaf's segments removed (a reboot, a cleared
 * /dev/shm): every block file is read, from a cold page cache with --cold. */
interface DiskRound { kind: 'reuse' | 'disk'; source: string; restartMs: number; spawnToServingMs: number; diskBytesRead: number; shmBytesReused: number; gbPerS: number; cold: boolean }

interface SizeResult {
  sizeGB: number; rows: number; blocks: number; imageBytes: number; tableBytes: number; generateMs: number;
  memcpyMs: number;
  firstStart: { restartMs: number; spawnToServingMs: number; queryMs: number };
  /** Every sample, in order (per repeat: a handoff from the heap, one from mapped shm, a disk recovery). */
  handoffs: HandoffRound[];
  disks: DiskRound[];
  /** Best of the repeats, per figure (lowest time; highest memory peak: the worst case). */
  best: { diskStart: HandoffRound; shmStart: HandoffRound; reuse: DiskRound; disk: DiskRound };
  hash: string; ok: boolean; problems: string[];
}

/** Per figure, the best sample: lowest times and GB/s-defining times, highest memory peak. */
function bestOf<T extends object>(samples: readonly T[], worstIsHigh: readonly (keyof T)[] = []): T {
  const out = { ...samples[0]! } as Record<string, unknown>;
  for (const s of samples.slice(1)) {
    for (const [k, v] of Object.entries(s)) {
      const cur = out[k];
      if (typeof v !== 'number' || typeof cur !== 'number') {
        if (cur === null && typeof v === 'number') out[k] = v;
        continue;
      }
      out[k] = (worstIsHigh as readonly string[]).includes(k) ? Math.max(cur, v) : k === 'gbPerS' ? Math.max(cur, v) : Math.min(cur, v);
    }
  }
  return out as T;
}

async function handoffRound(leaf: Leaf, from: HandoffRound['from'], dir: string, id: string, expect: { rows: number; hash: string }, problems: string[]): Promise<{ round: HandoffRound; successor: Leaf }> {
  // The leaf's memory over time: its anonymous RSS, plus the shared memory it holds: mapped
  // segments of an earlier handoff (RssShmem at the start; freed only when collected) and the
  // segments it writes (not mapped: seen as the growth of the system's Shmem).
  const rss0 = rssBytes(leaf.child.pid!);
  const shmemBefore = meminfoShmemBytes();
  const beforeBytes = rss0.anon + rss0.shmem;
  let peakBytes = beforeBytes;
  const poll = setInterval(() => {
    peakBytes = Math.max(peakBytes, rssBytes(leaf.child.pid!).anon + meminfoShmemBytes() - shmemBefore + rss0.shmem);
  }, MEMORY_POLL_MS);
  const sigtermAt = performance.now();
  leaf.child.kill('SIGTERM');
  await waitExit(leaf);
  const exitAt = performance.now();
  clearInterval(poll);
  const saveMs = fromLog(leaf, /handed off \d+ rows \(\d+ bytes, \d+ blocks\) to shared memory in (\d+) ms/);
  const copiedBlocks = fromLog(leaf, /"copiedBlocks":(\d+)/);
  const inPlaceBlocks = fromLog(leaf, /"inPlaceBlocks":(\d+)/);
  if (saveMs === null) problems.push(`no handoff line in the leaf's log:\n${leaf.output().slice(-2000)}`);

  const successor = await spawnLeaf(dir, id);
  const status = await statusOf(successor);
  const query = await verifyQuery(successor);
  const verifyMs = await waitForLog(successor, /taken from shared memory verified in (\d+) ms/, 60_000);
  if (status.restart.source !== 'shm') problems.push(`successor restored from ${status.restart.source}: ${status.restart.reason}`);
  if (status.restart.rows !== expect.rows) problems.push(`successor holds ${status.restart.rows} rows, expected ${expect.rows}`);
  if (query.hash !== expect.hash) problems.push(`answer after the shm restore ${JSON.stringify(query.rows)} differs`);
  if (verifyMs === null) problems.push('no checksum line in the successor\'s log');
  return {
    successor,
    round: {
      from, copiedBlocks, inPlaceBlocks, sigtermToExitMs: Math.round(exitAt - sigtermAt), saveMs, memoryPeakRatio: round2(peakBytes / beforeBytes), memoryBeforeBytes: beforeBytes,
      source: status.restart.source, restartMs: status.restart.ms, spawnToServingMs: Math.round(successor.servingAt - successor.spawnedAt),
      sigtermToServingMs: Math.round(successor.servingAt - sigtermAt), diskBytesRead: status.restart.diskBytesRead, verifyMs, firstQueryMs: round2(query.ms),
    },
  };
}

async function runSize(sizeGB: number, index: number, opt: Options, tmp: string, log: (s: string) => void): Promise<SizeResult> {
  const id = `bench-restart-${process.pid}-${index}`;
  const dir = path.join(tmp, id);
  const problems: string[] = [];
  const leaves: Leaf[] = [];
  try {
    // 1. The data directory (setup).
    log(`${sizeGB} GB: writing the data directory...`);
    const gen = await new Promise<{ rows: number; blocks: number; imageBytes: number; tableBytes: number; ms: number }>((resolve, reject) => {
      const child = spawn(process.execPath, [DATADIR_SCRIPT, '--dir', dir, '--id', id, '--bytes', String(Math.round(sizeGB * 1e9)), '--seed', String(opt.seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
      child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`restart-datadir exited with ${code}`))));
    });

    // 2. The baseline, before any leaf holds memory.
    const memcpyMs = shm.memcpyBench(gen.imageBytes, 2) / 1e6;

    // 3. First start (from disk, block files read into new segments), the reference answer.
    let leaf = await spawnLeaf(dir, id);
    leaves.push(leaf);
    const first = await statusOf(leaf);
    if (first.restart.rows !== gen.rows) problems.push(`first start holds ${first.restart.rows} rows, expected ${gen.rows}`);
    await verifyQuery(leaf); // warm-up
    const before = await verifyQuery(leaf);
    const expect = { rows: gen.rows, hash: before.hash };
    // The checkpoint after that recovery names the blocks' new segments in the manifest (what
    // crash recovery reuses): wait for it.
    const manifestFile = path.join(dir, 'manifest.json');
    const named = () => { try { const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { tables: Record<string, { blocks: { segment?: string }[] }> }; return Object.values(m.tables).every((t) => t.blocks.every((b) => b.segment !== undefined)); } catch { return false; } };
    const waitNamed = async () => { for (let waited = 0; !named() && waited < 60_000; waited += 100) await new Promise((r) => setTimeout(r, 100)); };
    await waitNamed();
    if (!named()) problems.push('the manifest never named the blocks\' segments');

    // 4. Per repeat: two planned restarts (from the leaf that recovered from disk, then from its
    //    successor, which took the first handoff: a rolling restart does both), then kill -9 and
    //    recovery twice: reusing the segments, then with them removed, from disk alone.
    const handoffs: HandoffRound[] = [];
    const disks: DiskRound[] = [];
    const crash = async (kind: DiskRound['kind']) => {
      const label = kind === 'reuse' ? 'reusing the segments' : `from disk alone${opt.cold ? ', cold page cache' : ''}`;
      log(`${sizeGB} GB: kill -9, recovering ${label}...`);
      await kill9(leaf);
      if (kind === 'disk') for (const name of shm.list(`/shoal-${id}-`)) shm.unlink(name);
      const cold = kind === 'disk' && opt.cold && dropPageCache();
      if (kind === 'disk' && opt.cold && !cold) problems.push('--cold: cannot write /proc/sys/vm/drop_caches (not root?)');
      leaf = await spawnLeaf(dir, id);
      leaves.push(leaf);
      const st = await statusOf(leaf);
      const after = await verifyQuery(leaf);
      if (st.restart.source !== 'disk') problems.push(`after kill -9 restored from ${st.restart.source}`);
      if (after.hash !== before.hash) problems.push(`answer after the ${kind} recovery ${JSON.stringify(after.rows)} != before`);
      if (kind === 'reuse' && st.restart.shmBytesReused !== gen.imageBytes) problems.push(`crash recovery reused ${st.restart.shmBytesReused} of ${gen.imageBytes} bytes from shm: ${st.restart.reason}`);
      disks.push({
        kind, source: st.restart.source, restartMs: st.restart.ms, spawnToServingMs: Math.round(leaf.servingAt - leaf.spawnedAt),
        diskBytesRead: st.restart.diskBytesRead, shmBytesReused: st.restart.shmBytesReused, gbPerS: round3((st.restart.diskBytesRead + st.restart.shmBytesReused) / 1e6 / Math.max(1, st.restart.ms)), cold,
      });
      // The next round needs the manifest to name the segments this recovery placed.
      if (kind === 'disk') await waitNamed();
    };
    for (let repeat = 0; repeat < opt.repeats; repeat++) {
      for (const from of ['disk-start', 'shm-start'] as const) {
        log(`${sizeGB} GB${opt.repeats > 1 ? ` (${repeat + 1}/${opt.repeats})` : ''}: handing off (a leaf that ${from === 'disk-start' ? 'recovered from disk' : 'took a handoff'})...`);
        const r = await handoffRound(leaf, from, dir, id, expect, problems);
        handoffs.push(r.round);
        leaf = r.successor;
        leaves.push(leaf);
      }
      await crash('reuse');
      await crash('disk');
    }
    await kill9(leaf);

    const memoryWorst = ['memoryPeakRatio', 'memoryBeforeBytes'] as (keyof HandoffRound)[];
    return {
      sizeGB, rows: gen.rows, blocks: gen.blocks, imageBytes: gen.imageBytes, tableBytes: gen.tableBytes, generateMs: gen.ms,
      memcpyMs: round3(memcpyMs),
      firstStart: { restartMs: first.restart.ms, spawnToServingMs: Math.round(leaves[0]!.servingAt - leaves[0]!.spawnedAt), queryMs: round2(before.ms) },
      handoffs, disks,
      best: {
        diskStart: bestOf(handoffs.filter((h) => h.from === 'disk-start'), memoryWorst),
        shmStart: bestOf(handoffs.filter((h) => h.from === 'shm-start'), memoryWorst),
        reuse: bestOf(disks.filter((d) => d.kind === 'reuse')),
        disk: bestOf(disks.filter((d) => d.kind === 'disk')),
      },
      hash: before.hash, ok: problems.length === 0, problems,
    };
  } finally {
    for (const l of leaves) if (l.child.exitCode === null && l.child.signalCode === null) await kill9(l);
    for (const name of shm.list(`/shoal-${id}-`)) shm.unlink(name);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- ingest with and without the disk log ----------------------------------------------------

interface IngestResult { rounds: { disk: number[]; memory: number[] }; diskEventsPerS: number; memoryEventsPerS: number; ratio: number; hash: string; ok: boolean; problems: string[] }

async function runIngest(opt: Options, tmp: string, log: (s: string) => void): Promise<IngestResult> {
  const total = INGEST_WARMUP_EVENTS + opt.ingestEvents;
  const cols = generateColumns(opt.seed, total, Math.floor(Date.now() / 1000));
  const warm = renderBodies(cols, 'ndjson', INGEST_BATCH_ROWS, 0, INGEST_WARMUP_EVENTS);
  const timed = renderBodies(cols, 'ndjson', INGEST_BATCH_ROWS, INGEST_WARMUP_EVENTS, total);
  const expected = [[total, sumBytes(cols)]];
  const rounds = { disk: [] as number[], memory: [] as number[] };
  const problems: string[] = [];
  let hash = '';
  for (let round = 0; round < opt.ingestRounds; round++) {
    const order: ('disk' | 'memory')[] = round % 2 === 0 ? ['memory', 'disk'] : ['disk', 'memory'];
    for (const mode of order) {
      const dataDir = fs.mkdtempSync(path.join(tmp, `ingest-${mode}-`));
      const leaf = await startLeaf({ dataDir, args: ['--no-shm', ...(mode === 'memory' ? ['--no-disk-log'] : [])] });
      try {
        const pool = newPool(leaf.url, INGEST_CONNECTIONS);
        await sendBatches(pool, TABLE, warm, CONTENT_TYPE.ndjson, INGEST_CONNECTIONS);
        const t0 = performance.now();
        const accepted = await sendBatches(pool, TABLE, timed, CONTENT_TYPE.ndjson, INGEST_CONNECTIONS);
        const ms = performance.now() - t0;
        const q = await postJson(pool, '/v1/query', JSON.stringify({ sql: `SELECT count(*), sum(bytes) FROM ${TABLE}` }));
        const rows = (q.body as { rows: unknown[][] }).rows;
        if (accepted !== opt.ingestEvents || JSON.stringify(rows) !== JSON.stringify(expected)) problems.push(`${mode}: accepted ${accepted}, answer ${JSON.stringify(rows)}, expected ${JSON.stringify(expected)}`);
        hash = answerHash(rows);
        rounds[mode].push(Math.round(opt.ingestEvents / (ms / 1000)));
        log(`ingest round ${round + 1} ${mode.padEnd(6)}: ${rounds[mode].at(-1)!.toLocaleString('en-US')} events/s`);
        await pool.close();
      } finally {
        await leaf.stop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
  const diskEventsPerS = median(rounds.disk);
  const memoryEventsPerS = median(rounds.memory);
  return { rounds, diskEventsPerS, memoryEventsPerS, ratio: round3(diskEventsPerS / memoryEventsPerS), hash, ok: problems.length === 0, problems };
}

// ---- output ----------------------------------------------------------------------------------

const ms1 = (x: number | null) => (x === null ? '-' : x.toFixed(0));
const gbps = (bytes: number, ms: number | null) => (ms === null || ms <= 0 ? '-' : (bytes / 1e6 / ms).toFixed(2));
const xm = (ms: number | null, memcpyMs: number) => (ms === null ? '-' : `${(ms / memcpyMs).toFixed(2)}x`);

function printSize(r: SizeResult, repeats: number): void {
  const b = r.imageBytes;
  console.log(`\n${r.sizeGB} GB: ${r.rows.toLocaleString('en-US')} rows, ${r.blocks} blocks, ${(b / 1e9).toFixed(3)} GB of block images (table ${(r.tableBytes / 1e9).toFixed(3)} GB); answer ${r.hash}; ${r.ok ? 'verified' : 'FAILED: ' + r.problems.join('; ')}${repeats > 1 ? `; best of ${repeats}` : ''}`);
  const rows: string[][] = [['memcpy of the same bytes (C, warm buffers)', ms1(r.memcpyMs), gbps(b, r.memcpyMs), '1.00x']];
  for (const h of [r.best.diskStart, r.best.shmStart]) {
    const tag = h.from === 'disk-start' ? 'by a leaf that recovered from disk' : 'by a leaf that took a handoff';
    rows.push(
      [`handoff ${tag}: SIGTERM -> exit`, ms1(h.sigtermToExitMs), '', ''],
      [`  of which the save (leaf log; ${h.copiedBlocks ?? '?'} blocks copied, ${h.inPlaceBlocks ?? '?'} in place)`, ms1(h.saveMs), '', ''],
      ['  shm restore (successor restart.ms)', ms1(h.restartMs), '', xm(h.restartMs, r.memcpyMs)],
      ['  successor: spawn -> /healthz 200', ms1(h.spawnToServingMs), '', ''],
      ['  SIGTERM -> successor serving', ms1(h.sigtermToServingMs), '', ''],
      ['  successor checksum pass (after serving)', ms1(h.verifyMs), gbps(b, h.verifyMs), xm(h.verifyMs, r.memcpyMs)],
    );
  }
  for (const d of [r.best.reuse, r.best.disk]) {
    const tag = d.kind === 'reuse' ? 'kill -9, recovery reusing shm (checksums first)' : `kill -9, recovery from disk alone (${d.cold ? 'cold' : 'page cache warm'})`;
    rows.push(
      [tag, ms1(d.restartMs), gbps(d.diskBytesRead + d.shmBytesReused, d.restartMs), xm(d.restartMs, r.memcpyMs)],
      ['  spawn -> /healthz 200', ms1(d.spawnToServingMs), '', ''],
    );
  }
  console.log(formatTable(['step', 'ms', 'GB/s', 'vs memcpy'], rows));
  for (const h of [r.best.diskStart, r.best.shmStart]) {
    console.log(`handoff from ${h.from}: peak memory (leaf RSS + shm it wrote) ${h.memoryPeakRatio.toFixed(2)}x of ${(h.memoryBeforeBytes / 1e9).toFixed(2)} GB before${repeats > 1 ? ' (worst)' : ''}; ` +
      `first query after it ${h.firstQueryMs.toFixed(0)} ms (before: ${r.firstStart.queryMs.toFixed(0)} ms)`);
  }
  if (repeats > 1) {
    console.log(`samples, SIGTERM -> successor serving (ms): ${r.handoffs.map((h) => `${h.from} ${h.sigtermToServingMs}`).join(', ')}; crash recovery (ms): ${r.disks.map((x) => `${x.kind} ${x.restartMs}`).join(', ')}`);
  }
}

function goals(sizes: SizeResult[], ingest: IngestResult | null): { goal: string; target: string; measured: string; met: boolean }[] {
  const out: { goal: string; target: string; measured: string; met: boolean }[] = [];
  const serving = sizes.flatMap((r) => [r.best.diskStart.sigtermToServingMs, r.best.shmStart.sigtermToServingMs]);
  if (sizes.length > 1) {
    const mid = (Math.max(...serving) + Math.min(...serving)) / 2;
    const spread = (Math.max(...serving) - Math.min(...serving)) / 2 / mid;
    out.push({ goal: `SIGTERM -> serving, the same at ${sizes.map((r) => r.sizeGB).join(' / ')} GB`, target: `within +-${GOALS.sameWithinFraction * 100}%`, measured: `${Math.min(...serving)}-${Math.max(...serving)} ms (+-${(spread * 100).toFixed(0)}%)`, met: spread <= GOALS.sameWithinFraction });
  }
  for (const r of sizes) {
    for (const h of [r.best.diskStart, r.best.shmStart]) {
      if (r.sizeGB >= 8) out.push({ goal: `${r.sizeGB} GB, handoff ${h.from}: SIGTERM -> successor serving`, target: `<= ${GOALS.servingMs8GB} ms`, measured: `${h.sigtermToServingMs} ms`, met: h.sigtermToServingMs <= GOALS.servingMs8GB });
      out.push({ goal: `${r.sizeGB} GB, handoff ${h.from}: blocks copied by the save`, target: '0', measured: String(h.copiedBlocks ?? '?'), met: h.copiedBlocks === 0 });
    }
    out.push({ goal: `${r.sizeGB} GB: crash recovery reusing shm vs from disk alone`, target: 'faster', measured: `${r.best.reuse.restartMs} vs ${r.best.disk.restartMs} ms (${(r.best.disk.restartMs / Math.max(1, r.best.reuse.restartMs)).toFixed(1)}x)`, met: r.best.reuse.restartMs < r.best.disk.restartMs });
  }
  if (ingest !== null) out.push({ goal: 'ingest, disk log on / off', target: `>= ${GOALS.ingestRatioMin.toFixed(2)}x`, measured: `${ingest.ratio.toFixed(2)}x`, met: ingest.ratio >= GOALS.ingestRatioMin });
  return out;
}

async function main(): Promise<void> {
  const opt = parseOptions(process.argv.slice(2));
  const loadError = shm.nativeLoadError();
  if (loadError !== undefined) throw loadError;
  if (!fs.existsSync(DATADIR_SCRIPT)) throw new Error(`${DATADIR_SCRIPT} not found: run \`npm run build\` first`);
  const log = opt.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  const machine = machineInfo();
  log(`restart bench: sizes ${opt.sizesGB.join(', ')} GB, seed ${opt.seed}; machine ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}, load ${machine.loadAvg1m}`);
  warnIfBusy(log);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-restart-'));
  const sizes: SizeResult[] = [];
  let ingest: IngestResult | null = null;
  try {
    for (const [i, sizeGB] of opt.sizesGB.entries()) {
      const r = await runSize(sizeGB, i, opt, tmp, log);
      sizes.push(r);
      if (!opt.json) printSize(r, opt.repeats);
    }
    if (!opt.skipIngest) ingest = await runIngest(opt, tmp, log);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const goalRows = goals(sizes, ingest);
  const loadAtEnd = machineInfo().loadAvg1m;
  const ok = sizes.every((r) => r.ok) && (ingest?.ok ?? true);
  if (opt.json) {
    console.log(JSON.stringify({ bench: 'restart', date: new Date().toISOString(), seed: opt.seed, repeats: opt.repeats, machine, loadAvg1mAtEnd: loadAtEnd, sizes, ingest, goals: goalRows, ok }, null, 2));
  } else {
    if (ingest !== null) {
      console.log(`\ningest, ${opt.ingestEvents.toLocaleString('en-US')} events in NDJSON bodies of ${INGEST_BATCH_ROWS.toLocaleString('en-US')}, ${INGEST_CONNECTIONS} connections, median of ${opt.ingestRounds}: ` +
        `disk log ${ingest.diskEventsPerS.toLocaleString('en-US')} events/s, no disk log ${ingest.memoryEventsPerS.toLocaleString('en-US')} events/s, ratio ${ingest.ratio.toFixed(2)}x ` +
        `(rounds: disk ${ingest.rounds.disk.join(', ')}; memory ${ingest.rounds.memory.join(', ')}); answer ${ingest.hash}${ingest.ok ? '' : '; FAILED: ' + ingest.problems.join('; ')}`);
    }
    console.log('\n' + formatTable(['goal (issues 4, 13)', 'target', 'measured', 'met'], goalRows.map((g) => [g.goal, g.target, g.measured, g.met ? 'yes' : 'NO'])));
    console.log(`\n1-minute load average: ${machine.loadAvg1m} before, ${loadAtEnd} after`);
  }
  if (!ok) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(`bench/restart: ${(e as Error).stack ?? String(e)}`);
  process.exitCode = 2;
});
