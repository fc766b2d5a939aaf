/**
 * Sealed blocks born in shared memory (docs/durability.md "Blocks in shared memory"), with real
 * leaf processes, real /dev/shm, real kill -9: every sealed block is its own segment while the
 * leaf runs; eviction and retention unlink them; after a crash the next start maps the segments
 * its checkpoint lists once their checksums match and reads the rest (tampered, untrusted, gone)
 * from disk; `shoal shm` tells a running leaf's segments from a crashed one's and from orphans;
 * a full /dev/shm (a 1 MiB tmpfs in a private mount namespace, root only) keeps blocks on the heap
 * and loses nothing.
 *
 * Expected answers are computed here from the rows the test sent, not read back from shoal.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { shmHugePages } from '../server/durability/shm-blocks.js';
import { CLI_PATH, leafCliExists, segmentsOf as ownSegments, startLeaf, type LeafProcess } from './support/processes.js';

const runnable = leafCliExists() && shm.nativeAvailable();
const META_FLAG_AT = 8;
const META_JSON_BYTES_AT = 12;
const META_JSON_AT = 24;
const ROWS_PER_BATCH = 50_000;
const NOW_S = Math.floor(Date.now() / 1000);

const leaves: LeafProcess[] = [];
const dirs: string[] = [];
const ids: string[] = [];

function leafId(label: string): string { const id = `sb${process.pid}-${label}`; ids.push(id); return id; }
function tempDir(label: string): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-sb-${label}-`)); dirs.push(d); return d; }
const segmentsOf = (id: string) => ownSegments(id, shm.list);
const blockSegmentsOf = (id: string) => segmentsOf(id).filter((n) => !n.endsWith('-meta'));

async function start(id: string, dataDir: string, extra: readonly string[] = [], wrap?: string[]): Promise<LeafProcess> {
  const leaf = await startLeaf({ dataDir, args: ['--id', id, '--workers', '1', ...extra], wrap });
  leaves.push(leaf);
  return leaf;
}

afterEach(async () => {
  await Promise.all(leaves.splice(0).map((l) => l.stop({ signal: 'SIGKILL' }).catch(() => undefined)));
  for (const id of ids.splice(0)) for (const n of shm.list(`/shoal-${id}-`)) shm.unlink(n);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
}
const status = async (leaf: LeafProcess) => (await call(`${leaf.url}/v1/status`, 'GET')).body;

/** Sends rows seq from..from+count-1 (time = timeBase + seq), batch by batch; `wide` adds a
 * unique string per row (a large dictionary: big blocks). */
async function ingest(leaf: LeafProcess, from: number, count: number, timeBase = NOW_S - 10 * 86_400, wide = false): Promise<void> {
  for (let at = from; at < from + count; at += ROWS_PER_BATCH) {
    const n = Math.min(ROWS_PER_BATCH, from + count - at);
    const rows = Array.from({ length: n }, (_, i) => ({ time: timeBase + at + i, seq: at + i, host: `h${(at + i) % 97}`, ...(wide ? { user: `user-${at + i}` } : {}) }));
    const a = await call(`${leaf.url}/v1/tables/ev/events`, 'POST', rows);
    if (a.status !== 200) throw new Error(`ingest answered ${a.status}: ${JSON.stringify(a.body)}`);
  }
}

/** count(*) and sum(seq): compared with what the test knows it sent. */
async function totals(leaf: LeafProcess): Promise<[number, number]> {
  const a = await call(`${leaf.url}/v1/query`, 'POST', { sql: 'SELECT count(*), sum(seq) FROM ev' });
  if (a.status !== 200) throw new Error(`query answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.rows[0] as [number, number];
}
/** The totals of seq in [from, to). */
const expectedTotals = (from: number, to: number): [number, number] => [to - from, ((to - 1) * to) / 2 - ((from - 1) * from) / 2];

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function metaOf(id: string): { flag: number; json: any } {
  const name = `/shoal-${id}-meta`;
  const buf = Buffer.alloc(shm.size(name));
  shm.read(name, 0, buf);
  return { flag: buf.readUInt32LE(META_FLAG_AT), json: JSON.parse(buf.subarray(META_JSON_AT, META_JSON_AT + buf.readUInt32LE(META_JSON_BYTES_AT)).toString('utf8')) };
}

interface ManifestBlock { file: string; bytes: number; crc: number; rows: number; segment?: string }
const manifestBlocks = (dir: string): ManifestBlock[] => {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { tables: Record<string, { blocks: ManifestBlock[] }> };
    return Object.values(m.tables).flatMap((t) => t.blocks);
  } catch { return []; }
};

function flipByte(name: string, offset: number): void {
  const b = Buffer.alloc(1);
  shm.read(name, offset, b);
  b[0] = b[0]! ^ 0xff;
  shm.write(name, offset, b);
}

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const listed = (id: string) => (JSON.parse(runCli(['shm', '--json']).stdout) as { handoffs: { leafId: string; state: string; takeable: boolean; reason: string }[] }).handoffs.find((h) => h.leafId === id);

describe.runIf(runnable)('sealed blocks born in shared memory', () => {
  it('each sealed block is a segment; the budget and retention evict them and their segments go', async () => {
    const id = leafId('evict');
    const dir = tempDir('evict');
    // With a unique user per row a sealed block is ~1.8 MB: the 16 MiB budget keeps about 8.
    const budget = ['--memory-budget', String(16 * 2 ** 20)];
    let leaf = await start(id, dir, budget);
    await ingest(leaf, 0, 1_000_000, undefined, true);
    const s = await status(leaf);
    expect(s.evicted.blocks).toBeGreaterThan(0);
    expect(s.sharedMemory.placeFailures).toBe(0);
    expect(s.sharedMemory.hugePages).toBe(shmHugePages());
    const held = blockSegmentsOf(id);
    // Every sealed block the table holds is one segment, and no evicted one is left behind.
    const sealedBlocks = Math.floor(1_000_000 / 65_536) - s.evicted.blocks;
    expect(held.length).toBe(sealedBlocks);
    expect(held.length).toBe(s.sharedMemory.segments);
    expect(s.sharedMemory.bytes).toBeLessThanOrEqual(16 * 2 ** 20);
    const [n, sum] = await totals(leaf);
    expect(n).toBe(1_000_000 - s.evicted.rows);
    expect([n, sum]).toEqual(expectedTotals(s.evicted.rows, 1_000_000));

    // A planned restart takes exactly those segments (and the open block's, sealed at SIGTERM).
    await leaf.stop();
    leaf = await start(id, dir, budget);
    expect((await status(leaf)).restart.source).toBe('shm');
    const after = blockSegmentsOf(id);
    for (const x of held) expect(after).toContain(x);
    expect(after.length).toBe(held.length + 1);
    expect(await totals(leaf)).toEqual([n, sum]);

    // Rows older than the retention age go with their segments (the open block stays on the heap).
    const oldId = leafId('retention');
    const old = await start(oldId, tempDir('retention'), ['--retention', String(86_400)]);
    await ingest(old, 0, 140_000, NOW_S - 30 * 86_400);
    const dropped = await waitFor('retention', () => status(old), (x) => x.sharedMemory.segments === 0 && x.evicted.blocks === 2);
    expect(blockSegmentsOf(oldId)).toEqual([]);
    expect(dropped.rows).toBe(140_000 - 2 * 65_536);
  });

  it('after kill -9 the checkpointed blocks come back from shared memory when their checksums match; a tampered, an untrusted and a removed one are read from disk', async () => {
    const id = leafId('crash');
    const dir = tempDir('crash');
    const args = ['--checkpoint-interval', '200'];
    let leaf = await start(id, dir, args);
    await ingest(leaf, 0, 400_000);
    await waitFor('a checkpoint of every sealed block', async () => manifestBlocks(dir), (b) => b.filter((x) => x.segment !== undefined).length >= 6);
    await ingest(leaf, 400_000, 30_000); // logged, not yet checkpointed: replayed from the log
    await leaf.stop({ signal: 'SIGKILL' });
    // The last checkpoint's blocks (a checkpoint may have run during the second ingest and
    // sealed the open block).
    const inShm = manifestBlocks(dir).filter((b) => b.segment !== undefined);
    expect(metaOf(id).flag).toBe(2); // the live claim a crash leaves behind
    expect(listed(id)).toMatchObject({ state: 'crashed', takeable: true });

    const [tampered, untrusted, removed] = inShm.slice(0, 3) as [ManifestBlock, ManifestBlock, ManifestBlock];
    flipByte(tampered.segment!, tampered.bytes - 5);
    fs.chmodSync(path.join('/dev/shm', untrusted.segment!.slice(1)), 0o644);
    shm.unlink(removed.segment!);
    leaf = await start(id, dir, args);
    const r = (await status(leaf)).restart;
    expect(r.source).toBe('disk');
    expect(r.reason).toMatch(/stopped without handing off/);
    expect(r.reason).toContain(`${inShm.length - 3} checkpointed blocks`);
    expect(r.reason).toContain('3 read from disk instead');
    const reusedBytes = inShm.slice(3).reduce((sum, b) => sum + b.bytes, 0);
    // Blocks sealed after that checkpoint come back through their seal records too.
    expect(r.shmBytesReused).toBeGreaterThanOrEqual(reusedBytes);
    // The three refused blocks were read from their files (and the log replayed), not from memory.
    expect(r.diskBytesRead).toBeGreaterThanOrEqual(tampered.bytes + untrusted.bytes + removed.bytes);
    expect(await totals(leaf)).toEqual(expectedTotals(0, 430_000));
    // None of the refused segments is held any more; the reused ones are.
    const held = blockSegmentsOf(id);
    for (const b of [tampered, removed]) expect(held).not.toContain(b.segment);
    for (const b of inShm.slice(3)) expect(held).toContain(b.segment);
    // The untrusted one was not this leaf's to remove or reuse... but it is under this leaf's
    // name and mode 0644 (not 0600): removed as stale like any other unowned segment.
    expect(held).not.toContain(untrusted.segment);
    expect(held.length).toBe((await status(leaf)).sharedMemory.segments);

    // And a second crash reuses what the first recovery placed (read-back blocks included): the
    // recovery's checkpoint names their new segments.
    await waitFor('the checkpoint after recovery', async () => manifestBlocks(dir), (b) => b.length >= inShm.length && b.every((x) => x.segment !== undefined && blockSegmentsOf(id).includes(x.segment)));
    await leaf.stop({ signal: 'SIGKILL' });
    leaf = await start(id, dir, args);
    const r2 = (await status(leaf)).restart;
    expect(r2.reason).not.toContain('read from disk instead');
    expect(r2.shmBytesReused).toBe(manifestBlocks(dir).reduce((sum, b) => sum + b.bytes, 0));
    expect(await totals(leaf)).toEqual(expectedTotals(0, 430_000));
  });

  /** Block segments in the order they were created (one process: `<gen>-<n>`, n counting up). */
  const bySealOrder = (names: string[]) => [...names].sort((a, b) => Number(a.slice(a.lastIndexOf('-') + 1)) - Number(b.slice(b.lastIndexOf('-') + 1)));
  const segmentBytes = (names: string[]) => names.reduce((sum, n) => sum + shm.size(n), 0);
  const BLOCK_ROWS = 65_536;
  /** A leaf that never checkpoints while the test runs, and a way to start it again. */
  function uncheckpointed(label: string): { id: string; dir: string; run: () => Promise<LeafProcess> } {
    const id = leafId(label);
    const dir = tempDir(label);
    return { id, dir, run: () => start(id, dir, ['--checkpoint-interval', String(3_600_000)]) };
  }

  it('after kill -9 the blocks sealed since the last checkpoint come back from shared memory too (their seal records): only the log after them is replayed; a damaged one ends the reuse', async () => {
    const { id, dir, run } = uncheckpointed('seal');
    let leaf = await run();
    await ingest(leaf, 0, 400_000);
    expect(manifestBlocks(dir)).toEqual([]); // no checkpoint ran: every row is in the log alone
    const first = blockSegmentsOf(id);
    expect(first.length).toBe(Math.floor(400_000 / BLOCK_ROWS));
    await leaf.stop({ signal: 'SIGKILL' });

    leaf = await run();
    let r = (await status(leaf)).restart;
    expect(r.source).toBe('disk');
    expect(r.reason).toContain(`${first.length} blocks sealed after the checkpoint (${first.length * BLOCK_ROWS} rows) taken from shared memory`);
    expect(r.reason).not.toContain('was not');
    expect(r.shmBytesReused).toBe(segmentBytes(first));
    expect(await totals(leaf)).toEqual(expectedTotals(0, 400_000));

    // The recovered leaf goes on writing seal records counted from the same log position.
    await ingest(leaf, 400_000, 300_000);
    const added = bySealOrder(blockSegmentsOf(id).filter((n) => !first.includes(n)));
    expect(first.length + added.length).toBe(Math.floor(700_000 / BLOCK_ROWS));
    await leaf.stop({ signal: 'SIGKILL' });
    // A damaged block ends its table's reused run: it and every later block are replayed.
    flipByte(added[1]!, shm.size(added[1]!) - 5);
    leaf = await run();
    r = (await status(leaf)).restart;
    const kept = [...first, added[0]!];
    expect(r.reason).toContain(`${kept.length} blocks sealed after the checkpoint (${kept.length * BLOCK_ROWS} rows) taken from shared memory`);
    expect(r.reason).toContain('in 1 table a block was not (segment gone or damaged)');
    expect(r.shmBytesReused).toBe(segmentBytes(kept));
    expect(await totals(leaf)).toEqual(expectedTotals(0, 700_000));
    const held = blockSegmentsOf(id);
    for (const n of kept) expect(held).toContain(n);
    for (const n of added.slice(1)) expect(held).not.toContain(n);
    expect(held.length).toBe(Math.floor(700_000 / BLOCK_ROWS));
  });

  it('a leaf that took a handoff, then crashed, reuses the blocks its predecessor sealed too (the handoff carries the seal count)', async () => {
    const { id, run } = uncheckpointed('sealho');
    let leaf = await run();
    await ingest(leaf, 0, 200_000);
    expect(await leaf.stop()).toEqual({ code: 0, signal: null }); // seals the open block, hands off
    leaf = await run();
    expect((await status(leaf)).restart.source).toBe('shm');
    await ingest(leaf, 200_000, 200_000);
    const sealed = blockSegmentsOf(id);
    await leaf.stop({ signal: 'SIGKILL' });
    leaf = await run();
    const r = (await status(leaf)).restart;
    // The predecessor's blocks (the last one short: sealed at the handoff) and the successor's full ones.
    const blocks = Math.ceil(200_000 / BLOCK_ROWS) + Math.floor(200_000 / BLOCK_ROWS);
    const rows = 200_000 + Math.floor(200_000 / BLOCK_ROWS) * BLOCK_ROWS;
    expect(sealed.length).toBe(blocks);
    expect(r.reason).toContain(`${blocks} blocks sealed after the checkpoint (${rows} rows) taken from shared memory`);
    expect(r.shmBytesReused).toBe(segmentBytes(sealed));
    expect(await totals(leaf)).toEqual(expectedTotals(0, 400_000));
  });

  it('shoal shm: a running leaf\'s segments are live, never orphans; a crashed leaf\'s are takeable until its data directory goes', async () => {
    const id = leafId('own');
    const dir = tempDir('own');
    const leaf = await start(id, dir, ['--checkpoint-interval', '200']);
    await ingest(leaf, 0, 140_000);
    expect(listed(id)).toMatchObject({ state: 'live', takeable: false });
    expect(runCli(['shm', '--remove-orphans', '--only', id]).status).toBe(0);
    const held = blockSegmentsOf(id);
    expect(held.length).toBeGreaterThanOrEqual(2);
    expect(held.length).toBe((await status(leaf)).sharedMemory.segments);
    expect(runCli(['shm']).stdout).toMatch(new RegExp(`${id} .*live .*held by running leaf pid ${(await status(leaf)).pid}`));
    await leaf.stop({ signal: 'SIGKILL' });
    expect(listed(id)).toMatchObject({ state: 'crashed', takeable: true });
    runCli(['shm', '--remove-orphans', '--only', id]);
    expect(blockSegmentsOf(id)).toEqual(held);
    fs.rmSync(dir, { recursive: true, force: true });
    const gone = listed(id)!;
    expect(gone).toMatchObject({ state: 'crashed', takeable: false });
    expect(gone.reason).toContain('no longer exists');
    expect(runCli(['shm', '--remove-orphans', '--only', id]).stdout).toContain(`removed the handoff of leaf ${id}`);
    expect(segmentsOf(id)).toEqual([]);
  });

  const isRoot = process.getuid?.() === 0;
  const hasUnshare = spawnSync('unshare', ['--version']).status === 0;
  if (!isRoot || !hasUnshare) console.log(`skipping the full /dev/shm test: it mounts a tmpfs in a private mount namespace, which needs root and unshare(1) (root: ${isRoot}, unshare: ${hasUnshare})`);
  it.runIf(isRoot && hasUnshare)('a full /dev/shm keeps sealed blocks on the heap: nothing is lost, the handoff falls back to disk', async () => {
    const id = leafId('full');
    const dir = tempDir('full');
    // A private 1 MiB /dev/shm for this leaf alone: room for one block and the meta segment.
    const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" "$@"'];
    let leaf = await start(id, dir, [], wrap);
    await ingest(leaf, 0, 300_000);
    const s = await status(leaf);
    expect(s.sharedMemory.placeFailures).toBeGreaterThan(0);
    expect(s.sharedMemory.segments).toBeLessThan(4);
    expect(s.sharedMemory.lastFailure).toMatch(/ENOSPC|No space/);
    expect(await totals(leaf)).toEqual(expectedTotals(0, 300_000));
    expect(await leaf.stop()).toEqual({ code: 0, signal: null });
    expect(leaf.output().stdout + leaf.output().stderr).toMatch(/handoff to shared memory failed/);
    leaf = await start(id, dir, [], wrap);
    expect((await status(leaf)).restart.source).toBe('disk');
    expect(await totals(leaf)).toEqual(expectedTotals(0, 300_000));
  });
});

describe('the huge-page option of /dev/shm', () => {
  it('is read from the last tmpfs mounted at /dev/shm; unset means never, no mount means unknown', () => {
    const dir = tempDir('mounts');
    const file = (name: string, text: string) => { const p = path.join(dir, name); fs.writeFileSync(p, text); return p; };
    expect(shmHugePages(file('none', 'proc /proc proc rw 0 0\n'))).toBeNull();
    expect(shmHugePages(file('plain', 'tmpfs /dev/shm tmpfs rw,nosuid,size=1024k 0 0\n'))).toBe('never');
    expect(shmHugePages(file('two', 'tmpfs /dev/shm tmpfs rw,size=1024k 0 0\ntmpfs /dev/shm tmpfs rw,size=2048k,huge=within_size 0 0\n'))).toBe('within_size');
    expect(shmHugePages(file('other', 'tmpfs /dev/shmx tmpfs rw,huge=always 0 0\n'))).toBeNull();
    expect(shmHugePages(path.join(dir, 'absent'))).toBeNull();
  });
});
