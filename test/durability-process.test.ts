/**
 * Durability rules that are about processes, tested with real leaf processes, real signals and
 * real /dev/shm (docs/durability.md): one process per data directory; a handoff is taken only by
 * the data directory it belongs to, only from segments this user owns and nobody else can write;
 * expired and orphaned handoffs are freed; stopping a leaf says what memory it leaves behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { lockDataDir } from '../server/durability/data-dir-lock.js';
import { CLI_PATH, leafCliExists, segmentsOf as ownSegments, startLeaf, type LeafProcess } from './support/processes.js';

const runnable = leafCliExists() && shm.nativeAvailable();
const leaves: LeafProcess[] = [];
const dirs: string[] = [];
const ids: string[] = [];

function leafId(label: string): string { const id = `dp${process.pid}-${label}`; ids.push(id); return id; }
function tempDir(label: string): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-dp-${label}-`)); dirs.push(d); return d; }
const segmentsOf = (id: string) => ownSegments(id, shm.list);
const shmFile = (name: string) => path.join('/dev/shm', name.slice(1));

async function start(id: string, dataDir: string, extra: readonly string[] = []): Promise<LeafProcess> {
  const leaf = await startLeaf({ dataDir, args: ['--id', id, '--workers', '1', ...extra] });
  leaves.push(leaf);
  return leaf;
}

afterEach(async () => {
  await Promise.all(leaves.splice(0).map((l) => l.stop({ signal: 'SIGKILL' }).catch(() => undefined)));
  for (const id of ids.splice(0)) for (const n of shm.list(`/shoal-${id}-`)) shm.unlink(n);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
}

/** Ingests `count` rows with seq from..from+count-1; returns the rows acknowledged. */
async function ingest(leaf: LeafProcess, from: number, count: number): Promise<number> {
  const rows = Array.from({ length: count }, (_, i) => ({ time: 1_790_000_000 + i, seq: from + i, service: `s${(from + i) % 7}` }));
  const a = await call(`${leaf.url}/v1/tables/ev/events`, 'POST', rows);
  if (a.status !== 200) throw new Error(`ingest answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.accepted as number;
}

async function countRows(leaf: LeafProcess): Promise<number> {
  const a = await call(`${leaf.url}/v1/query`, 'POST', { sql: 'SELECT count(*) FROM ev' });
  if (a.status === 404) return 0;
  if (a.status !== 200) throw new Error(`query answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.rows[0][0] as number;
}

async function restartInfo(leaf: LeafProcess): Promise<{ source: string; reason: string | null; rows: number }> {
  return (await call(`${leaf.url}/v1/status`, 'GET')).body.restart;
}

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(runnable)('one process per data directory', () => {
  it('a second leaf on a directory in use fails at once naming the holder; after kill -9 the directory is free', async () => {
    const dir = tempDir('lock');
    const id = leafId('lock');
    const first = await start(id, dir);
    const second = runCli(['leaf', '--port', '0', '--data-dir', dir, '--id', id]);
    expect(second.status).toBe(3);
    expect(second.stderr).toContain(`data directory ${dir} is in use by pid ${first.process.pid}`);
    expect(await ingest(first, 0, 50)).toBe(50);
    await first.stop({ signal: 'SIGKILL' });
    const third = await start(id, dir);
    expect(await countRows(third)).toBe(50);
  });

  it('shoal up refuses a data directory another process holds', () => {
    const dir = tempDir('up');
    const lock = lockDataDir(dir);
    try {
      const r = runCli(['up', '--leaves', '1', '--port', '17990', '--data-dir', dir]);
      expect(r.status).toBe(3);
      expect(r.stderr).toContain(`data directory ${dir} is in use by pid ${process.pid}`);
      expect(fs.existsSync(path.join(dir, 'leaf-1'))).toBe(false); // it started nothing
    } finally {
      lock.release();
    }
  });
});

describe.runIf(runnable)('a handoff belongs to its data directory and its owner', () => {
  it('the same --id on a new, empty data directory does not take the old directory\'s handoff', async () => {
    const oldDir = tempDir('bind-old');
    const newDir = tempDir('bind-new');
    const id = leafId('bind');
    const a = await start(id, oldDir);
    expect(await ingest(a, 0, 300)).toBe(300);
    await a.stop();
    expect(segmentsOf(id).length).toBeGreaterThan(1);
    const b = await start(id, newDir);
    const info = await restartInfo(b);
    expect(info.source).toBe('empty');
    expect(info.reason).toMatch(/belongs to data directory .*bind-old/);
    expect(await countRows(b)).toBe(0);
    await b.stop({ signal: 'SIGKILL' });
    // Left for the directory it belongs to, whose next start takes it.
    expect(segmentsOf(id).length).toBeGreaterThan(1);
    const again = await start(id, oldDir);
    expect((await restartInfo(again)).source).toBe('shm');
    expect(await countRows(again)).toBe(300);
  });

  it('a world-writable meta segment or a group-writable block segment is not trusted: disk recovery, nothing lost', async () => {
    for (const [label, pick, mode] of [['meta', (s: string[]) => s.find((n) => n.endsWith('-meta'))!, 0o666], ['block', (s: string[]) => s.find((n) => !n.endsWith('-meta'))!, 0o620]] as const) {
      const dir = tempDir(`trust-${label}`);
      const id = leafId(`trust-${label}`);
      const a = await start(id, dir);
      expect(await ingest(a, 0, 200)).toBe(200);
      await a.stop();
      const victim = pick(segmentsOf(id));
      fs.chmodSync(shmFile(victim), mode);
      const b = await start(id, dir);
      const info = await restartInfo(b);
      expect(info.source, label).toBe('disk');
      expect(info.reason, label).toMatch(/not trusted/);
      expect(await countRows(b), label).toBe(200);
      await b.stop({ signal: 'SIGKILL' });
    }
  });

  it('a directory written to after the handoff (another start in between) does not take it', async () => {
    const dir = tempDir('changed');
    const id = leafId('changed');
    const a = await start(id, dir);
    expect(await ingest(a, 0, 100)).toBe(100);
    await a.stop();
    // Someone copies the meta aside, a --no-shm start writes more, then the copy is put back.
    const saved = segmentsOf(id).map((n) => [n, fs.readFileSync(shmFile(n))] as const);
    const b = await start(id, dir, ['--no-shm']);
    expect(await ingest(b, 100, 10)).toBe(10);
    await b.stop();
    for (const [n, bytes] of saved) { fs.writeFileSync(shmFile(n), bytes); fs.chmodSync(shmFile(n), 0o600); }
    const c = await start(id, dir);
    const info = await restartInfo(c);
    expect(info.source).toBe('disk');
    expect(info.reason).toMatch(/does not name this handoff|changed since the handoff|written after the handoff/);
    expect(await countRows(c)).toBe(110);
  });
});

describe.runIf(runnable)('handoffs no successor takes are freed', () => {
  it('stopping says how much memory stays held and how to free it; an expired handoff is removed by any later leaf start', async () => {
    const dir = tempDir('ttl');
    const id = leafId('ttl');
    // 4 s: the listing below must see the handoff before it expires, also on a loaded machine.
    const a = await start(id, dir, ['--handoff-ttl', '4']);
    expect(await ingest(a, 0, 500)).toBe(500);
    await a.stop({ signal: 'SIGINT' });
    expect(a.output().stderr).toMatch(new RegExp(`MiB of data handed off to shared memory .*shoal shm --remove ${id}`));
    expect(segmentsOf(id).length).toBeGreaterThan(1);
    const listed = JSON.parse(runCli(['shm', '--json']).stdout) as { handoffs: { leafId: string; takeable: boolean; bytes: number }[] };
    expect(listed.handoffs.find((h) => h.leafId === id)).toMatchObject({ takeable: true });
    await new Promise((r) => setTimeout(r, 4_200));
    const other = await start(leafId('sweeper'), tempDir('sweeper'));
    expect(segmentsOf(id)).toEqual([]);
    await other.stop({ signal: 'SIGKILL' });
    const b = await start(id, dir);
    expect((await restartInfo(b)).source).toBe('disk');
    expect(await countRows(b)).toBe(500);
  });

  it('shoal shm lists a handoff whose data directory is gone as an orphan, and --remove-orphans frees it', async () => {
    const dir = tempDir('orphan');
    const id = leafId('orphan');
    const a = await start(id, dir);
    expect(await ingest(a, 0, 100)).toBe(100);
    await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    const listed = JSON.parse(runCli(['shm', '--json']).stdout) as { handoffs: { leafId: string; takeable: boolean; reason: string }[] };
    const mine = listed.handoffs.find((h) => h.leafId === id)!;
    expect(mine.takeable).toBe(false);
    expect(mine.reason).toContain('no longer exists');
    const text = runCli(['shm']).stdout;
    expect(text).toContain(id);
    expect(text).toContain('--remove-orphans');
    // --only scopes it (and keeps this test off other files' orphans, which run alongside).
    expect(runCli(['shm', '--remove-orphans', '--only', `${id}-other`]).stdout).not.toContain(id);
    expect(segmentsOf(id).length).toBeGreaterThan(0);
    const removed = runCli(['shm', '--remove-orphans', '--only', id]);
    expect(removed.status).toBe(0);
    expect(removed.stdout).toContain(`removed the handoff of leaf ${id}`);
    expect(segmentsOf(id)).toEqual([]);
  });
});
