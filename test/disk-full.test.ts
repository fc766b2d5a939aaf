/**
 * Disk full on a real file system: a leaf whose data directory is on a small tmpfs is written to
 * until the log refuses a batch (ENOSPC), keeps serving queries and says why in status, /healthz
 * and /metrics, takes writes again without a restart once space is freed, and after kill -9
 * recovers exactly the rows it acknowledged: 0 lost, 0 extra. Needs root (mount); without it the
 * test prints why and checks nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';

const TMPFS_BYTES = 4 * 1024 * 1024;
const BATCH_ROWS = 200;
const BATCHES_MAX = 2_000;

function mountTmpfs(): { dir: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    return `mount -t tmpfs failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return { dir, unmount: () => { try { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); } catch { /* already gone */ } fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let parsed: any = null;
  try { parsed = JSON.parse(text); } catch { parsed = null; }
  return { status: res.status, body: parsed, text };
}

function rowsOf(k: number): object[] {
  // ~100 bytes per row, with a payload that does not compress into nothing.
  return Array.from({ length: BATCH_ROWS }, (_, j) => ({ time: 1_790_000_000 + k, seq: k * 1000 + j, note: `batch ${k} row ${j} ${'x'.repeat(40 + ((k * 7 + j) % 23))}` }));
}

const cleanups: (() => void)[] = [];
afterAll(() => { for (const c of cleanups.splice(0)) c(); });

describe.runIf(leafCliExists() && shm.nativeAvailable())('disk full', () => {
  it('refuses with SHOAL_ERR_INGEST_DISK while full, serves on, resumes when space returns, loses nothing acknowledged', async () => {
    const mounted = mountTmpfs();
    if (typeof mounted === 'string') { console.log(`disk-full test skipped: ${mounted}`); return; }
    cleanups.push(mounted.unmount);
    const dataDir = path.join(mounted.dir, 'leaf');
    fs.mkdirSync(dataDir);
    // Leave ~1.5 MiB free for the leaf: the rest is ballast, freed later.
    const ballast = path.join(mounted.dir, 'ballast');
    fs.writeFileSync(ballast, Buffer.alloc(TMPFS_BYTES - 1536 * 1024, 7));
    const leaves: LeafProcess[] = [];
    cleanups.unshift(() => { for (const l of leaves) l.process.kill('SIGKILL'); });
    const start = async () => { const l = await startLeaf({ dataDir, args: ['--id', `full${process.pid}`, '--workers', '1', '--no-shm'] }); leaves.push(l); return l; };
    const leaf = await start();
    const acked = new Set<number>();
    let refusal: any = null;
    let k = 0;
    for (; k < BATCHES_MAX && refusal === null; k++) {
      const a = await call(`${leaf.url}/v1/tables/ev/events`, 'POST', rowsOf(k));
      if (a.status === 200) acked.add(k);
      else refusal = { status: a.status, body: a.body };
    }
    expect(refusal, 'the disk never filled').not.toBeNull();
    expect(refusal.status).toBe(503);
    expect(refusal.body.error.code).toBe('SHOAL_ERR_INGEST_DISK');
    expect(refusal.body.error.disk.code).toBe('ENOSPC');
    const status = (await call(`${leaf.url}/v1/status`, 'GET')).body;
    expect(status.disk).toMatchObject({ log: true, writable: false, failure: { kind: 'write', code: 'ENOSPC' } });
    const health = await call(`${leaf.url}/healthz`, 'GET');
    expect(health.status).toBe(200);
    expect(health.body.ingest).toBe('refused');
    expect((await call(`${leaf.url}/metrics`, 'GET')).text).toMatch(/shoal_disk_log_writable\{[^}]*\} 0/);
    // Still serving queries, over exactly the acknowledged rows.
    // count(DISTINCT) is exact at this size (docs/sql.md), so it catches a duplicate as well.
    const count = async (l: LeafProcess) => (await call(`${l.url}/v1/query`, 'POST', { sql: 'SELECT count(*), count(DISTINCT seq) FROM ev' })).body.rows[0];
    expect(await count(leaf)).toEqual([acked.size * BATCH_ROWS, acked.size * BATCH_ROWS]);
    // Space returns: writes resume without a restart.
    fs.rmSync(ballast);
    let resumed = 0;
    for (let i = 0; i < 5; i++, k++) {
      const a = await call(`${leaf.url}/v1/tables/ev/events`, 'POST', rowsOf(k));
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      acked.add(k);
      resumed++;
    }
    expect(resumed).toBe(5);
    expect((await call(`${leaf.url}/v1/status`, 'GET')).body.disk.writable).toBe(true);
    // kill -9 and recover from the log: every acknowledged row, once.
    leaf.process.kill('SIGKILL');
    await new Promise((r) => leaf.process.once('exit', r));
    const after = await start();
    expect(await count(after)).toEqual([acked.size * BATCH_ROWS, acked.size * BATCH_ROWS]);
    const sumSeq = [...acked].reduce((s, b) => s + b * 1000 * BATCH_ROWS + (BATCH_ROWS * (BATCH_ROWS - 1)) / 2, 0);
    expect((await call(`${after.url}/v1/query`, 'POST', { sql: 'SELECT sum(seq) FROM ev' })).body.rows[0][0]).toBe(sumSeq);
    console.log(`disk full: ${acked.size} batches (${acked.size * BATCH_ROWS} rows) acknowledged across full / free / kill -9; ${acked.size * BATCH_ROWS} found after recovery`);
  });
});
