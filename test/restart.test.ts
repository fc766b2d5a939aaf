/**
 * Restart of real leaf processes (STYLE rule 17, issue 4): planned restarts through POSIX shared
 * memory, `kill -9` during steady ingest, every reason to distrust a handoff (each must fall back
 * to disk with nothing lost and say why), and writes that race a handoff.
 *
 * Every leaf is `node dist/server/cli/cli.js leaf --port 0 --id rt<pid>-<label> --data-dir <tmp>`, so
 * parallel runs never share a segment name or a directory; afterEach kills what is still running,
 * removes this test's segments and temp dirs. Data is seeded (SHOAL_TEST_SEED) and small, and
 * every float in it is a multiple of 1/8 so sums are exact whatever the block boundaries: a
 * restored leaf must give *identical* answers, not close ones.
 *
 * The shared-memory header is checked here against its documented layout (docs/durability.md),
 * not imported from server/: u32 magic 'SHMM' @0, u32 layout version @4, u32 valid flag @8,
 * u32 json bytes @12, u32 crc32c(json) @16, json @24.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';

const SEED = Number(process.env.SHOAL_TEST_SEED ?? 0x4e57);
const META = { magicAt: 0, versionAt: 4, validAt: 8, jsonBytesAt: 12, crcAt: 16, jsonAt: 24, magic: 0x4d4d4853 } as const;
/** Base of every event time: a fixed instant, so answers do not move with the clock. */
const TIME_BASE_SECONDS = 1_700_000_000;
/** Bounds on the retrying client: tries per batch, and the pause after a 503 or a refused connection. */
const RETRY_TRIES_MAX = 200;
const RETRY_PAUSE_MS = 25;
const RETRY_AFTER_MS_MAX = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;

const runnable = leafCliExists() && shm.nativeAvailable();

// ---------------------------------------------------------------------------------------------
// Processes, directories and segments owned by the running test.

const leaves: LeafProcess[] = [];
const tempDirs: string[] = [];
const leafIds: string[] = [];

function leafId(label: string): string {
  const id = `rt${process.pid}-${label}`;
  leafIds.push(id);
  return id;
}

function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-restart-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/** This leaf's segments exactly (`/shoal-<id>-meta`, `/shoal-<id>-<gen>-<n>`), not those of a
 * leaf whose id merely starts with `<id>-`. */
function segmentsOf(id: string): string[] {
  const own = new RegExp(`^/shoal-${id}-(meta|[0-9a-f]{8}-[0-9]+)$`);
  return shm.list(`/shoal-${id}-`).filter((n) => own.test(n));
}

async function start(id: string, dataDir: string, extra: readonly string[] = []): Promise<LeafProcess> {
  const leaf = await startLeaf({ dataDir, args: ['--id', id, '--workers', '1', ...extra] });
  leaves.push(leaf);
  return leaf;
}

/** Resolves once the process has exited by itself (after an admin handoff), bounded. */
function exitOf(leaf: LeafProcess, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = leaf.process;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`leaf pid ${child.pid} did not exit within ${timeoutMs} ms${tail(leaf)}`)), timeoutMs);
    child.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
  });
}

/** Waits (bounded) until the leaf's stdout matches: its pino lines and its `listening on` line
 * reach the pipe by different writers, so one may arrive after the other, or after the exit event. */
async function expectLogged(leaf: LeafProcess, re: RegExp, what: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!re.test(leaf.output().stdout) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(leaf.output().stdout, what).toMatch(re);
}

function tail(leaf: LeafProcess): string {
  const o = leaf.output();
  return `\n--- stdout ---\n${o.stdout.slice(-4000)}\n--- stderr ---\n${o.stderr.slice(-4000)}`;
}

afterEach(async () => {
  await Promise.all(leaves.splice(0).map((l) => l.stop({ signal: 'SIGKILL' }).catch(() => undefined)));
  for (const id of leafIds.splice(0)) for (const name of shm.list(`/shoal-${id}-`)) shm.unlink(name);
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// HTTP.

interface Answer { status: number; headers: Headers; body: any }

async function request(url: string, method: 'GET' | 'POST', body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, {
    method, body,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try { parsed = text.length > 0 ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: res.status, headers: res.headers, body: parsed };
}

const getJson = async (leaf: LeafProcess, p: string) => {
  const a = await request(leaf.url + p, 'GET');
  if (a.status !== 200) throw new Error(`GET ${p} answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body;
};

async function ingest(leaf: LeafProcess, table: string, rows: readonly object[], batchId?: string): Promise<void> {
  const a = await request(`${leaf.url}/v1/tables/${table}/events`, 'POST', JSON.stringify(rows), batchId ? { 'x-shoal-batch-id': batchId } : {});
  if (a.status !== 200 || a.body?.accepted !== rows.length) throw new Error(`ingest into ${table} answered ${a.status}: ${JSON.stringify(a.body)}`);
}

async function query(leaf: LeafProcess, sql: string): Promise<unknown[][]> {
  const a = await request(`${leaf.url}/v1/query`, 'POST', JSON.stringify({ sql }));
  if (a.status !== 200) throw new Error(`${sql}\nanswered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.rows as unknown[][];
}

interface RestartInfo { source: string; ms: number; bytes: number; rows: number; reason: string | null; diskBytesRead: number; shmBytesReused: number }
const restartOf = async (leaf: LeafProcess) => (await getJson(leaf, '/v1/status')).restart as RestartInfo;

// ---------------------------------------------------------------------------------------------
// Seeded data: several tables, every column kind, nulls, absent fields, sets, schema growth
// (a column that appears in a later batch) and an int column promoted to float.

function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Batch { table: string; rows: object[] }

function dataset(seed: number): Batch[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const hosts = ['web-1', 'web-2', 'db-1', 'cache-東京', 'edge-🐟'];
  const tagPool = ['a', 'b', 'c', 'retry', 'slow'];
  const batches: Batch[] = [];
  let seq = 0;
  for (let b = 0; b < 6; b++) {
    const rows: object[] = [];
    const rowCount = 500 + Math.floor(rnd() * 1500);
    for (let i = 0; i < rowCount; i++, seq++) {
      const row: Record<string, unknown> = {
        time: TIME_BASE_SECONDS + seq * 3,
        seq,
        host: rnd() < 0.05 ? null : pick(hosts),
        status: pick([200, 200, 200, 404, 500]),
        latency_ms: Math.floor(rnd() * 8000) / 8,
        // int in early batches; later batches carry halves: the column becomes float.
        bytes: b < 3 ? Math.floor(rnd() * 100_000) : Math.floor(rnd() * 200_000) / 2,
      };
      if (rnd() < 0.9) row.ok = rnd() < 0.8;
      if (rnd() < 0.7) row.tags = tagPool.filter(() => rnd() < 0.3);
      else if (rnd() < 0.5) row.tags = null;
      if (b >= 2) row.region = rnd() < 0.1 ? null : pick(['eu', 'us', 'ap']);
      rows.push(row);
    }
    batches.push({ table: 'requests', rows });
    const errors: object[] = [];
    for (let i = 0; i < 50 + Math.floor(rnd() * 100); i++) {
      errors.push({ time: TIME_BASE_SECONDS + b * 1000 + i, seq: b * 1000 + i, code: pick(['E_DISK', 'E_NET', 'E_AUTH']),
        message: pick(['disk full', 'timeout on disk read', 'connection reset', 'bad token ✗']), fatal: rnd() < 0.1 ? null : rnd() < 0.2 });
    }
    batches.push({ table: 'errors', rows: errors });
    const gauges: object[] = [];
    for (let i = 0; i < 200; i++) {
      gauges.push({ time: TIME_BASE_SECONDS + b * 200 + i + 0.5, name: pick(['cpu', 'mem', 'disk']), value: rnd() < 0.05 ? null : Math.floor(rnd() * 800) / 8 });
    }
    batches.push({ table: 'gauges', rows: gauges });
  }
  return batches;
}

const TABLES = ['requests', 'errors', 'gauges'];
const QUERIES = [
  'SELECT count(*) AS n, count(host) AS hosts, count(ok) AS oks, sum(latency_ms) AS lat, min(bytes) AS lo, max(bytes) AS hi, sum(bytes) AS b FROM requests',
  'SELECT host, count(*) AS n, sum(bytes) AS b, avg(status) AS s FROM requests GROUP BY host ORDER BY host',
  'SELECT status, p50(latency_ms) AS p50, p99(latency_ms) AS p99, approx_quantile(bytes, 0.9) AS q90 FROM requests GROUP BY status ORDER BY status',
  'SELECT count(DISTINCT host) AS hosts, count(DISTINCT seq) AS seqs, approx_count_distinct(seq) AS approx FROM requests',
  "SELECT time_bucket(INTERVAL '15 minutes', time) AS bucket, count(*) AS n, max(latency_ms) AS worst FROM requests GROUP BY bucket ORDER BY bucket",
  "SELECT count(*) AS n, sum(seq) AS s FROM requests WHERE list_contains(tags, 'retry') AND ok",
  "SELECT region, count(*) AS n FROM requests WHERE tags IS NULL OR region IS NOT NULL GROUP BY region ORDER BY region",
  'SELECT * FROM requests ORDER BY seq DESC LIMIT 7',
  "SELECT code, count(*) AS n, sum(seq) AS s, count(fatal) AS f FROM errors WHERE message LIKE '%disk%' GROUP BY code ORDER BY code",
  'SELECT name, count(value) AS n, min(value) AS lo, max(value) AS hi, sum(value) AS s, min(time) AS t0 FROM gauges GROUP BY name ORDER BY name',
  'SELECT host, sum(latency_ms) / count(*) AS mean FROM requests GROUP BY host HAVING count(*) > 10 ORDER BY mean DESC, host LIMIT 3',
  "SELECT count(*) AS n FROM requests WHERE host IN ('web-1', 'edge-🐟') AND status != 200 AND NOT (bytes < 1000)",
];

/** Ingests batches [from, to) of a dataset (batch ids `load-<index>`); returns the row count. */
async function load(leaf: LeafProcess, batches: readonly Batch[], from = 0, to = batches.length): Promise<number> {
  let rows = 0;
  for (let i = from; i < to; i++) { await ingest(leaf, batches[i]!.table, batches[i]!.rows, `load-${i}`); rows += batches[i]!.rows.length; }
  return rows;
}

interface Snapshot { tables: unknown[]; answers: unknown[][][]; rows: number }

/** What must not change across a restart: rows, schemas, time ranges and every query's answer.
 * Bytes are left out: sealing narrows the open block's columns, so a handed-off table holds
 * the same rows in fewer bytes. */
async function snapshot(leaf: LeafProcess): Promise<Snapshot> {
  const tables: unknown[] = [];
  let rows = 0;
  for (const t of TABLES) {
    const { bytes: _bytes, ...rest } = await getJson(leaf, `/v1/tables/${t}`);
    tables.push(rest);
    rows += rest.rows as number;
  }
  const answers: unknown[][][] = [];
  for (const sql of QUERIES) answers.push(await query(leaf, sql));
  return { tables, answers, rows };
}

/** `sameBlocks`: a shared-memory restore keeps the block boundaries too; disk recovery replays
 * the log into new blocks, so there only the rows must be the same. */
function expectSameData(after: Snapshot, before: Snapshot, sameBlocks: boolean): void {
  expect(after.rows).toBe(before.rows);
  const strip = (tables: unknown[]) => (sameBlocks ? tables : tables.map((t) => ({ ...(t as object), blocks: undefined })));
  expect(strip(after.tables)).toEqual(strip(before.tables));
  for (let i = 0; i < QUERIES.length; i++) expect(after.answers[i], QUERIES[i]).toEqual(before.answers[i]);
}

// ---------------------------------------------------------------------------------------------
// Shared-memory surgery for the fallback cases.

const u32 = (value: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(value >>> 0, 0); return b; };

function readSegment(name: string, byteCount = shm.size(name)): Buffer {
  const buf = Buffer.alloc(byteCount);
  shm.read(name, 0, buf);
  return buf;
}

/** Copies the first `byteCount` bytes of a segment into a new one (the addon has no truncate). */
function copySegment(from: string, to: string, byteCount = shm.size(from)): void {
  const bytes = readSegment(from, byteCount);
  shm.create(to, byteCount);
  shm.write(to, 0, bytes);
}

function metaJson(id: string): { leafId: string; tables: { blocks: { segment: string; bytes: number; rows: number }[] }[] } {
  const meta = readSegment(`/shoal-${id}-meta`);
  expect(meta.readUInt32LE(META.magicAt)).toBe(META.magic);
  expect(meta.readUInt32LE(META.validAt)).toBe(1);
  const json = meta.subarray(META.jsonAt, META.jsonAt + meta.readUInt32LE(META.jsonBytesAt));
  expect(shm.crc32c(json) >>> 0).toBe(meta.readUInt32LE(META.crcAt));
  return JSON.parse(json.toString('utf8'));
}

/**
 * What a serving leaf must hold in shared memory: exactly the block segments it reports
 * (status.sharedMemory) plus its live meta segment (flag 2, its pid), nothing stale beside them.
 * Returns the block segment names.
 */
async function expectOwnedSegments(leaf: LeafProcess, id: string, what: string): Promise<string[]> {
  const status = await getJson(leaf, '/v1/status');
  const names = segmentsOf(id);
  const meta = `/shoal-${id}-meta`;
  expect(names, what).toContain(meta);
  const flags = readSegment(meta);
  expect(flags.readUInt32LE(META.validAt), `${what}: live meta flag`).toBe(2);
  const live = JSON.parse(flags.subarray(META.jsonAt, META.jsonAt + flags.readUInt32LE(META.jsonBytesAt)).toString('utf8')) as { pid: number };
  expect(live.pid, what).toBe(status.pid);
  const blocks = names.filter((n) => n !== meta);
  expect(blocks.length, `${what}: block segments held vs reported`).toBe(status.sharedMemory.segments);
  expect(blocks.reduce((sum, n) => sum + shm.size(n), 0), `${what}: bytes`).toBe(status.sharedMemory.bytes);
  return blocks;
}

function blockSegments(id: string): { segment: string; bytes: number; rows: number }[] {
  return metaJson(id).tables.flatMap((t) => t.blocks);
}

const flipByte = (name: string, offset: number) => {
  const b = Buffer.alloc(1);
  shm.read(name, offset, b);
  b[0] = b[0]! ^ 0x5a;
  shm.write(name, offset, b);
};

// ---------------------------------------------------------------------------------------------
// Retrying writers: numbered batches, each with its own batch id, as a client of a leaf that may
// refuse (503 during a handoff) or vanish (kill -9, exit) under it.

/** acked: 200; refused: 503 (or another error answer); down: connection refused (nothing was
 * sent); unknown: no answer on a connection that took the request (stored or not, cannot tell). */
type Fate = 'acked' | 'refused' | 'down' | 'unknown';

class Writer {
  readonly fates = new Map<number, Fate>();
  readonly retryAfter: string[] = [];
  /** Answers seen other than 200 and 503 (must stay empty). */
  readonly unexpected: string[] = [];
  private next = 0;
  stopped = false;

  constructor(readonly table: string, readonly rowsPerBatch: number) {}

  rows(batch: number): object[] {
    return Array.from({ length: this.rowsPerBatch }, (_, i) => {
      const seq = batch * this.rowsPerBatch + i;
      return { time: TIME_BASE_SECONDS + seq, batch, seq, v: seq % 97, s: `s${seq % 13}` };
    });
  }

  /** Sends one batch once; records and returns its fate. */
  async send(url: string, batch: number): Promise<Fate> {
    let fate: Fate;
    try {
      const a = await request(`${url}/v1/tables/${this.table}/events`, 'POST', JSON.stringify(this.rows(batch)), { 'x-shoal-batch-id': `${this.table}-${batch}` });
      if (a.status === 200 && (a.body.accepted === this.rowsPerBatch || a.body.duplicate === true)) fate = 'acked';
      else if (a.status === 503) {
        fate = 'refused';
        this.retryAfter.push(a.headers.get('retry-after') ?? '(none)');
        if (a.body?.error?.code !== 'SHOAL_ERR_UNAVAILABLE') this.unexpected.push(`503 ${JSON.stringify(a.body)}`);
      } else {
        fate = 'refused';
        this.unexpected.push(`${a.status} ${JSON.stringify(a.body)}`);
      }
    } catch (e) {
      fate = (e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED' ? 'down' : 'unknown';
    }
    if (this.fates.get(batch) !== 'acked') this.fates.set(batch, fate);
    return fate;
  }

  /** `concurrency` loops sending new batches until stop(); returns when they all ended. After a
   * 503 a loop waits as Retry-After says (bounded), as a polite client would. */
  async run(url: () => string, concurrency: number): Promise<void> {
    const loop = async () => {
      while (!this.stopped) {
        const refusals = this.retryAfter.length;
        const fate = await this.send(url(), this.next++);
        const pauseMs = fate === 'refused' && this.retryAfter.length > refusals
          ? Math.min(RETRY_AFTER_MS_MAX, 1000 * (Number(this.retryAfter.at(-1)) || 0)) : RETRY_PAUSE_MS;
        if (fate !== 'acked') await new Promise((r) => setTimeout(r, pauseMs));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  }

  /** Re-sends every batch not acknowledged until it is (bounded tries). */
  async settle(url: string): Promise<void> {
    for (const [batch, fate] of [...this.fates]) {
      if (fate === 'acked') continue;
      let tries = 0;
      while ((await this.send(url, batch)) !== 'acked') {
        if (++tries >= RETRY_TRIES_MAX) throw new Error(`batch ${batch} still not acknowledged after ${tries} tries`);
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  batches(fate: Fate): number[] { return [...this.fates].filter(([, f]) => f === fate).map(([b]) => b); }

  /** Per-batch row counts as the leaf holds them, checked for internal consistency. */
  async held(leaf: LeafProcess): Promise<Map<number, number>> {
    const rows = await query(leaf, `SELECT batch, count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi, sum(v) AS v FROM ${this.table} GROUP BY batch ORDER BY batch`);
    const held = new Map<number, number>();
    for (const [batch, n, d, lo, hi, v] of rows as number[][]) {
      const expected = this.rows(batch!) as { seq: number; v: number }[];
      // A batch is there whole and once, or not at all: n rows means n distinct seqs of that batch.
      expect({ batch, n, d, lo, hi, v }).toEqual({ batch, n: this.rowsPerBatch, d: this.rowsPerBatch, lo: expected[0]!.seq, hi: expected.at(-1)!.seq, v: expected.reduce((s, r) => s + r.v, 0) });
      held.set(batch!, n!);
    }
    const [[total, distinct]] = await query(leaf, `SELECT count(*) AS n, count(DISTINCT seq) AS d FROM ${this.table}`) as number[][];
    expect(total).toBe(distinct);
    expect(total).toBe(held.size * this.rowsPerBatch);
    return held;
  }
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!runnable)('leaf restart (real processes, real shared memory)', () => {
  it('hands off through shared memory on SIGTERM and on the admin call: identical data, no disk read', async () => {
    const id = leafId('handoff');
    const dir = tempDir('handoff');
    const token = `admin-${SEED}`;
    // Checkpoints seal the open blocks (these tables are far from 64 Ki rows each).
    let leaf = await start(id, dir, ['--admin-token', token, '--checkpoint-interval', '200']);
    expect((await restartOf(leaf)).source).toBe('empty');
    const batches = dataset(SEED);
    const rowCount = await load(leaf, batches, 0, 12);
    const before = await snapshot(leaf);
    expect(before.rows).toBe(rowCount);
    for (let polls = 0; (await getJson(leaf, '/v1/status')).sharedMemory.segments === 0 && polls < 200; polls++) await new Promise((r) => setTimeout(r, 25));

    // SIGTERM: a planned restart.
    // Sealed blocks were born in shared memory: before the handoff they are there already.
    const born = await expectOwnedSegments(leaf, id, 'before the handoff');
    expect(born.length).toBeGreaterThan(0);
    expect(await leaf.stop({ signal: 'SIGTERM' })).toEqual({ code: 0, signal: null });
    await expectLogged(leaf, new RegExp(`handed off ${rowCount} rows`), 'handoff log line');
    // The save copied nothing that was already there: only the open blocks were sealed into new segments.
    await expectLogged(leaf, /"copiedBlocks":0,"copiedBytes":0/, 'nothing copied');
    const handedOff = blockSegments(id).map((b) => b.segment);
    for (const n of born) expect(handedOff).toContain(n);
    leaf = await start(id, dir, ['--admin-token', token]);
    const r1 = await restartOf(leaf);
    expect(r1).toMatchObject({ source: 'shm', rows: rowCount, diskBytesRead: 0, reason: null });
    await expectLogged(leaf, new RegExp(`restored ${rowCount} rows from shm in \\d+ ms`), 'listening line');
    // The successor owns the segments it took (for its own handoff and for crash recovery).
    expect((await expectOwnedSegments(leaf, id, 'after the restore')).sort()).toEqual([...handedOff].sort());
    expectSameData(await snapshot(leaf), before, true);

    // The restored leaf takes writes (its disk log continues) and hands off again, by the admin call.
    const total = rowCount + await load(leaf, batches, 12);
    const before2 = await snapshot(leaf);
    expect(before2.rows).toBe(total);
    const handoff = `${leaf.url}/v1/admin/handoff`;
    expect((await request(handoff, 'POST')).status).toBe(401);
    const wrong = await request(handoff, 'POST', undefined, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('SHOAL_ERR_UNAUTHORIZED');
    expect((await getJson(leaf, '/v1/status')).state).toBe('serving');
    const ok = await request(handoff, 'POST', undefined, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ handingOff: true, leafId: id, rows: total });
    expect(await exitOf(leaf)).toEqual({ code: 0, signal: null });
    leaf = await start(id, dir, ['--admin-token', token]);
    expect(await restartOf(leaf)).toMatchObject({ source: 'shm', rows: total, diskBytesRead: 0, reason: null });
    expectSameData(await snapshot(leaf), before2, true);
    await expectOwnedSegments(leaf, id, 'after the second restore');

    // The disk copy behind it is whole too: kill -9 and recover from disk alone.
    await leaf.stop({ signal: 'SIGKILL' });
    leaf = await start(id, dir);
    expect(await restartOf(leaf)).toMatchObject({ source: 'disk', rows: total });
    expectSameData(await snapshot(leaf), before2, false);
  });

  it('keeps every acknowledged event exactly once across kill -9 during steady ingest', async () => {
    const id = leafId('kill9');
    const dir = tempDir('kill9');
    const args = ['--checkpoint-interval', '200'];
    let leaf = await start(id, dir, args);
    const writer = new Writer('stream', 150);
    const running = writer.run(() => leaf.url, 3);
    // Three crashes at different points of the checkpoint cycle (the checkpoint timer ticks every
    // 500 ms), each followed by recovery and more ingest into the recovered leaf. Checkpointed
    // blocks still in shared memory are reused once their checksums match; the rest is read.
    let reused = 0;
    for (const runMs of [1300, 1050, 1700]) {
      await new Promise((r) => setTimeout(r, runMs));
      const ackedBefore = writer.batches('acked').length;
      expect(ackedBefore).toBeGreaterThan(0);
      await leaf.stop({ signal: 'SIGKILL' });
      leaf = await start(id, dir, args);
      const r = await restartOf(leaf);
      expect(r.source).toBe('disk');
      expect(r.reason).toMatch(/no handoff: the previous process stopped without handing off/);
      expect(r.diskBytesRead + r.shmBytesReused).toBeGreaterThan(0);
      reused += r.shmBytesReused;
      await expectOwnedSegments(leaf, id, `after crash at ${runMs} ms`);
    }
    expect(reused).toBeGreaterThan(0);
    writer.stopped = true;
    await running;
    expect(writer.unexpected).toEqual([]);

    // Before any retry: every acknowledged batch is there once; an unanswered one whole or not at all.
    const held = await writer.held(leaf);
    for (const b of writer.batches('acked')) expect(held.get(b), `acknowledged batch ${b}`).toBe(writer.rowsPerBatch);
    for (const b of [...writer.batches('refused'), ...writer.batches('down')]) expect(held.has(b), `refused batch ${b}`).toBe(false);
    const checkpointed = fs.readdirSync(path.join(dir, 'blocks')).filter((f) => f.endsWith('.blk'));
    expect(checkpointed.length).toBeGreaterThan(0);

    // The client retries what it never saw acknowledged (same batch ids): the leaf stores each
    // missing batch and recognizes the ones it already has, across the crashes.
    const acked = writer.batches('acked');
    for (const b of acked.slice(-5)) writer.fates.set(b, 'unknown'); // re-send a few acknowledged ones too
    await writer.settle(leaf.url);
    const final = await writer.held(leaf);
    expect([...final.keys()].sort((a, b) => a - b)).toEqual([...writer.fates.keys()].sort((a, b) => a - b));

    // And once more from disk alone: the retried batches are as durable as the rest.
    await leaf.stop({ signal: 'SIGKILL' });
    leaf = await start(id, dir, args);
    expect((await writer.held(leaf)).size).toBe(final.size);
  });

  it('falls back to disk, losing nothing and saying why, for every handoff it must not trust', async () => {
    const id = leafId('fb');
    const dir = tempDir('fb');
    const args = ['--checkpoint-interval', '200'];
    let leaf = await start(id, dir, args);
    await load(leaf, dataset(SEED + 1), 0, 9);
    const before = await snapshot(leaf);

    // Another leaf, whose handoff will be planted under this leaf's name. Its id extends this
    // one's, so its segment names start with this leaf's prefix: they must survive every start
    // of this leaf all the same.
    const otherId = leafId('fb-x');
    const otherDir = tempDir('fbother');
    let other = await start(otherId, otherDir);
    await load(other, dataset(SEED + 2), 0, 3);
    const otherRows = (await getJson(other, '/v1/status')).rows as number;
    await other.stop({ signal: 'SIGTERM' });
    expect(segmentsOf(otherId).length).toBeGreaterThan(1);

    const meta = `/shoal-${id}-meta`;
    // `late`: found by the checksum pass that runs once the leaf serves (reading every byte before
    // serving would cost more than the mapping saves); the leaf then recovers from disk in place.
    const cases: { name: string; damage: () => void; reason: RegExp; late?: true }[] = [
      { name: 'a flipped byte in the metadata', damage: () => flipByte(meta, META.jsonAt + 40), reason: /meta checksum mismatch/ },
      { name: 'another layout version', damage: () => shm.write(meta, META.versionAt, u32(999)), reason: /layout version 999 differs/ },
      { name: 'a bad magic number', damage: () => shm.write(meta, META.magicAt, u32(0x12345678)), reason: /bad magic/ },
      {
        name: 'a truncated block segment',
        damage: () => {
          const block = blockSegments(id).at(-1)!;
          const tmp = `/shoal-${id}-tmp`;
          copySegment(block.segment, tmp, Math.floor(block.bytes / 2));
          shm.unlink(block.segment);
          copySegment(tmp, block.segment);
          shm.unlink(tmp);
        },
        reason: /block segment \S+ truncated \(\d+ of \d+ bytes\)/,
      },
      { name: 'a missing block segment', damage: () => { shm.unlink(blockSegments(id)[0]!.segment); }, reason: /block segment \S+ is missing/ },
      {
        name: 'a flipped byte in a block',
        damage: () => { const b = blockSegments(id)[1]!; flipByte(b.segment, b.bytes - 3); },
        reason: /block segment \S+ checksum mismatch \(found by the check after the restore\)/,
        late: true,
      },
      {
        name: 'a segment of another leaf',
        damage: () => { shm.unlink(meta); copySegment(`/shoal-${otherId}-meta`, meta); },
        reason: new RegExp(`segment belongs to leaf ${otherId}, not ${id}`),
      },
      { name: 'a crash in the middle of the handoff (valid flag unset)', damage: () => shm.write(meta, META.validAt, u32(0)), reason: /handoff was not completed/ },
      { name: 'a crash before the metadata was written (stale block segments)', damage: () => { shm.unlink(meta); }, reason: /no handoff segment/ },
      { name: 'a crash while serving (the live meta left behind)', damage: () => shm.write(meta, META.validAt, u32(2)), reason: /stopped without handing off/ },
    ];
    for (const c of cases) {
      expect(await leaf.stop({ signal: 'SIGTERM' }), c.name).toEqual({ code: 0, signal: null });
      expect(segmentsOf(id), c.name).toContain(meta);
      c.damage();
      leaf = await start(id, dir, args);
      let r = await restartOf(leaf);
      for (let polls = 0; c.late && r.source === 'shm' && polls < 200; polls++) {
        await new Promise((res) => setTimeout(res, 25));
        r = await restartOf(leaf);
      }
      expect(r.source, c.name).toBe('disk');
      expect(r.reason, c.name).toMatch(c.reason);
      expect(r.rows, c.name).toBe(before.rows);
      await expectLogged(leaf, new RegExp(`not from shared memory: .*${c.reason.source}`), c.name);
      expectSameData(await snapshot(leaf), before, false);
      await expectOwnedSegments(leaf, id, c.name);
    }

    // The other leaf's own handoff was never touched: it comes back from shared memory.
    other = await start(otherId, otherDir);
    expect(await restartOf(other)).toMatchObject({ source: 'shm', rows: otherRows });
    await expectOwnedSegments(other, otherId, 'the other leaf');

    // A handoff is only good for the next start. A start with --no-shm (which recovers from disk
    // and takes more writes) must discard it, or a later start would take that stale copy.
    await leaf.stop({ signal: 'SIGTERM' });
    expect(segmentsOf(id)).toContain(meta);
    leaf = await start(id, dir, [...args, '--no-shm']);
    expect(await restartOf(leaf)).toMatchObject({ source: 'disk', rows: before.rows });
    expect(segmentsOf(id)).toEqual([]);
    await ingest(leaf, 'errors', [{ seq: -1, code: 'E_LATE', message: 'after the handoff' }]);
    await leaf.stop({ signal: 'SIGKILL' });
    leaf = await start(id, dir, args);
    expect(await restartOf(leaf)).toMatchObject({ source: 'disk', rows: before.rows + 1 });
    expect(await query(leaf, "SELECT count(*) AS n FROM errors WHERE code = 'E_LATE'")).toEqual([[1]]);

    // Without a disk log there is nothing to fall back to: a block that fails its checksum is
    // dropped, the rest served, and the status says how many rows went missing.
    const memId = leafId('fbmem');
    const memDir = tempDir('fbmem');
    let mem = await start(memId, memDir, ['--no-disk-log']);
    const memRows = await load(mem, dataset(SEED + 4), 0, 3);
    await mem.stop({ signal: 'SIGTERM' });
    const victim = metaJson(memId).tables.flatMap((t) => t.blocks)[0]!;
    flipByte(victim.segment, victim.bytes - 3);
    mem = await start(memId, memDir, ['--no-disk-log']);
    let memRestart = await restartOf(mem);
    for (let polls = 0; memRestart.reason === null && polls < 200; polls++) {
      await new Promise((res) => setTimeout(res, 25));
      memRestart = await restartOf(mem);
    }
    expect(memRestart).toMatchObject({ source: 'shm', rows: memRows - victim.rows });
    expect(memRestart.reason).toMatch(new RegExp(`checksum mismatch .*its ${victim.rows} rows are missing \\(disk log disabled\\)`));
    expect((await getJson(mem, '/v1/status')).rows).toBe(memRows - victim.rows);
    const memHeld = await expectOwnedSegments(mem, memId, 'without a disk log');
    expect(memHeld).not.toContain(victim.segment);
  });

  it('refuses writes during a handoff with 503 + Retry-After; a retrying client loses nothing', async () => {
    const id = leafId('race');
    const dir = tempDir('race');
    const token = `admin-${SEED}`;
    let leaf = await start(id, dir, ['--admin-token', token]);
    await load(leaf, dataset(SEED + 3), 0, 6);
    const baseRows = (await getJson(leaf, '/v1/status')).rows as number;
    const [[loadedRequests]] = await query(leaf, 'SELECT count(*) AS n FROM requests') as number[][];
    const writer = new Writer('race', 100);
    let url = leaf.url;
    const running = writer.run(() => url, 4);
    // A reader alongside: every answer it gets, before, during or after the handoff, counts all
    // the rows; a leaf that cannot answer says so (503), it never answers from part of its data.
    const answers: string[] = [];
    const reading = (async () => {
      while (!writer.stopped) {
        try {
          const a = await request(`${url}/v1/query`, 'POST', JSON.stringify({ sql: 'SELECT count(*) AS n FROM requests' }));
          answers.push(a.status === 200 ? `200 ${JSON.stringify(a.body.rows)}` : `${a.status} ${a.body?.error?.code}`);
        } catch { /* no answer at all: fine, the client knows it has none */ }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 400));
    const ackedBefore = writer.batches('acked').length;
    expect(ackedBefore).toBeGreaterThan(0);
    const ok = await request(`${leaf.url}/v1/admin/handoff`, 'POST', undefined, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(await exitOf(leaf)).toEqual({ code: 0, signal: null });
    // The writers keep going against the gone leaf for a moment (refused connections), then
    // switch to its successor, as a router would.
    await new Promise((r) => setTimeout(r, 100));
    leaf = await start(id, dir, ['--admin-token', token]);
    url = leaf.url;
    expect(await restartOf(leaf)).toMatchObject({ source: 'shm', diskBytesRead: 0 });
    // Long enough for writers back from their Retry-After pause to write to the successor.
    const ackedByNow = writer.batches('acked').length;
    await new Promise((r) => setTimeout(r, 1200));
    writer.stopped = true;
    await running;
    await reading;

    expect(new Set(answers)).toEqual(new Set([`200 [[${loadedRequests}]]`, ...(answers.some((a) => a.startsWith('503')) ? ['503 SHOAL_ERR_UNAVAILABLE'] : [])]));
    expect(writer.unexpected).toEqual([]);
    expect(writer.batches('acked').length, 'the successor takes writes').toBeGreaterThan(ackedByNow);
    const fates = Object.fromEntries((['acked', 'refused', 'down', 'unknown'] as const).map((f) => [f, writer.batches(f).length]));
    // Writes met the handoff: refused (503) while it saved and drained, or cut off (no answer) by
    // the exit. Which of the two depends on timing (on a loaded machine a writer's next request
    // can miss the 100 ms drain), so either counts; each 503 must carry Retry-After.
    expect(fates.refused! + fates.unknown!, `some writes met the handoff: ${JSON.stringify(fates)}`).toBeGreaterThan(0);
    expect(writer.retryAfter.length).toBe(fates.refused);
    for (const v of writer.retryAfter) expect(Number(v)).toBeGreaterThan(0);
    const held = await writer.held(leaf);
    for (const b of writer.batches('acked')) expect(held.get(b), `acknowledged batch ${b}`).toBe(writer.rowsPerBatch);
    for (const b of [...writer.batches('refused'), ...writer.batches('down')]) expect(held.has(b), `refused batch ${b}`).toBe(false);
    await writer.settle(leaf.url);
    const final = await writer.held(leaf);
    expect(final.size).toBe(writer.fates.size);
    expect((await getJson(leaf, '/v1/status')).rows).toBe(baseRows + writer.fates.size * writer.rowsPerBatch);
  });
});
