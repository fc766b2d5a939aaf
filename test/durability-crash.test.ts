/**
 * Crash points (SQLite's crash tests, in small): one ingest + checkpoint + retry + handoff cycle of the
 * durability code is run once to number every call it makes that changes the disk, then once per
 * call and fault: that call fails (EIO), writes half and runs out of space ('short'), or the
 * process stops there ('crash', and 'torn': half a write, then the stop). Then a new DiskStore
 * recovers from what is on disk, and the test checks that every acknowledged row is there exactly
 * once and no refused batch is. Runs with `--fsync always` and `interval`.
 *
 * The batches (sizes, tables, which are retried) come from a seeded PRNG: the seed is printed,
 * and SHOAL_SEED=<n> replays it. A failure names the seed, the fault and the call it hit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { LeafStore, type IngestRecord } from '../query/storage/leaf-store.js';
import { bindQuery, finish, planQuery, scanBlocks } from '../query/engine.js';
import { DiskStore } from '../server/durability/disk-store.js';
import { removeSegments, restoreFromShm, saveToShm, verifyTakenBlocks } from '../server/durability/shm-handoff.js';
import { ShmBlockHome } from '../server/durability/shm-blocks.js';
import * as shm from '../native/shm.js';
import type { DurableFs } from '../server/durability/durable-fs.js';
import { realFs } from '../server/durability/durable-fs.js';
import { mulberry32 } from './support/gen.js';
import { FaultyFs, SimulatedCrash, type Fault, type FaultKind } from './support/faulty-fs.js';

const SEED = Number(process.env.SHOAL_SEED ?? 20261201);
const LEAF_ID = `crash${process.pid}`;
const silent = pino({ level: 'silent' });

type Step = { batch: number } | { retry: number } | 'checkpoint' | 'flush';
interface Batch { readonly table: string; readonly rows: number }

/** The script of one cycle and its batches, from the seed. */
function makeScript(seed: number): { steps: Step[]; batches: Batch[] } {
  const rnd = mulberry32(seed);
  const batches: Batch[] = [];
  const steps: Step[] = [];
  for (let k = 0; k < 9; k++) {
    batches.push({ table: rnd() < 0.3 ? 'other' : 'ev', rows: 1 + Math.floor(rnd() * 40) });
    steps.push({ batch: k });
    if (k === 2 || k === 6) steps.push('checkpoint');
    if (k === 4) steps.push('flush');
    if (k >= 1 && rnd() < 0.3) steps.push({ retry: Math.floor(rnd() * k) });
  }
  steps.push('flush');
  return { steps, batches };
}

function record(k: number, b: Batch): IngestRecord {
  const lines: string[] = [];
  for (let j = 0; j < b.rows; j++) lines.push(JSON.stringify({ time: 1_790_000_000 + k, seq: k * 1000 + j, k }));
  return { table: b.table, nowSeconds: 1_790_000_000, format: 'ndjson', body: Buffer.from(lines.join('\n')), batchId: `b${k}` };
}

/** A leaf's store and disk with its sealed blocks born in shared memory, as in the product: a
 * simulated crash leaves the segments behind, and recovery may reuse those its manifest names. */
function diskFor(dir: string, io: DurableFs, fsync: 'always' | 'interval'): { store: LeafStore; disk: DiskStore; home: ShmBlockHome } {
  const store = new LeafStore(1 << 30);
  const home = new ShmBlockHome(LEAF_ID);
  store.home = home;
  const disk = new DiskStore(dir, LEAF_ID, store, { fsync, fsyncIntervalMs: 3_600_000, checkpointBytes: 2 ** 40, checkpointIntervalMs: 2 ** 40 }, silent, io);
  disk.home = home;
  return { store, disk, home };
}

interface Outcome { acked: Set<number>; refused: Set<number>; inflight: Set<number>; crashed: boolean; writableAtEnd: boolean | null; handedOff: boolean }

/** Runs the cycle on `io`; never throws for an injected fault. */
async function runCycle(dir: string, io: FaultyFs, fsync: 'always' | 'interval', script: ReturnType<typeof makeScript>): Promise<Outcome> {
  const out: Outcome = { acked: new Set(), refused: new Set(), inflight: new Set(), crashed: false, writableAtEnd: null, handedOff: false };
  const { store, disk, home } = diskFor(dir, io, fsync);
  const ingest = (k: number): void => {
    try {
      store.ingest(record(k, script.batches[k]!), (r, rows) => disk.append(r, rows));
      // Code that runs on after the crash point (catching the crash as an I/O error) stands for
      // nothing: the process is dead there, and no answer reached the client.
      if (io.crashed) throw new SimulatedCrash('after the crash point');
      out.acked.add(k);
      out.refused.delete(k);
    } catch (e) {
      if (e instanceof SimulatedCrash) { if (!out.acked.has(k)) out.inflight.add(k); throw e; }
      if (io.crashed) { if (!out.acked.has(k)) out.inflight.add(k); throw new SimulatedCrash('after the crash point'); }
      if (!isShoalError(e) || e.code !== 'SHOAL_ERR_INGEST_DISK') throw e;
      if (!out.acked.has(k)) out.refused.add(k);
    }
  };
  try {
    try { disk.recover(); } catch (e) { if (e instanceof SimulatedCrash || io.crashed) throw e; return out; /* did not start: nothing acknowledged */ }
    for (const step of script.steps) {
      if (step === 'checkpoint') { await disk.checkpoint().catch(() => undefined); if (io.crashed) throw new SimulatedCrash('checkpoint'); continue; }
      if (step === 'flush') { await disk.log.flush(); if (io.crashed) throw new SimulatedCrash('flush'); continue; }
      ingest('batch' in step ? step.batch : step.retry);
    }
    // An operating error must not stop the leaf for good: a checkpoint (the second, if the
    // fault hit the first) lets writes back in, and the next batch is taken. The fault may hit
    // this very batch: a refused batch is retried, as a router would.
    const last = script.batches.length;
    script.batches.push({ table: 'ev', rows: 2 });
    for (let i = 0; i < 3 && !out.acked.has(last); i++) {
      if (!disk.health().writable) await disk.checkpoint().catch(() => undefined);
      if (io.crashed) throw new SimulatedCrash('checkpoint');
      ingest(last);
    }
    out.writableAtEnd = disk.health().writable && out.acked.has(last);
    // A planned restart: make the log durable, write the handoff and bind it to this directory.
    // A failure here leaves the successor to the disk (as the lifecycle does).
    try {
      await disk.prepareHandoff();
      saveToShm(LEAF_ID, store, disk, { dataDir: dir, ttlSeconds: null, io }, home);
      out.handedOff = !io.crashed;
    } catch (e) {
      if (io.crashed) throw e;
    }
    if (io.crashed) throw new SimulatedCrash('handoff');
  } catch (e) {
    if (!(e instanceof SimulatedCrash)) throw e;
    out.crashed = true;
  } finally {
    await disk.close().catch(() => undefined);
  }
  return out;
}

/** Rows per batch number found after the successor's start, with the real file system: from
 * shared memory when a valid handoff bound to this directory is there (its checksums verified),
 * else from disk. */
async function recoveredRows(dir: string, fsync: 'always' | 'interval', stats = { sealBlocks: 0 }): Promise<Map<number, number[]>> {
  const { store, disk, home } = diskFor(dir, realFs, fsync);
  const taken = restoreFromShm(LEAF_ID, store, { dataDir: dir, ttlSeconds: null }, home);
  if (taken.ok) {
    if ((await verifyTakenBlocks(taken.unverified)) !== null) throw new Error('a block taken from shared memory failed its checksum');
    if (taken.manifest !== null && taken.walNext !== null) disk.adopt(taken.manifest, taken.walNext, taken.files, taken.seal); else disk.recoverEmptyLog();
  } else {
    stats.sealBlocks += disk.recover().sealBlocks;
  }
  const seqs: number[] = [];
  for (const t of store.tables.values()) {
    const plan = planQuery(`SELECT seq FROM ${t.name} LIMIT 100000`, 0);
    const bound = bindQuery(plan, t.schema, 0, false);
    const blocks = [...t.sealed, ...(t.open.rowCount > 0 ? [t.open] : [])];
    for (const row of finish(plan, scanBlocks(bound, blocks)).rows) seqs.push(row[0] as number);
  }
  disk.log.close();
  const byBatch = new Map<number, number[]>();
  for (const s of seqs) { const k = Math.floor(s / 1000); byBatch.set(k, [...(byBatch.get(k) ?? []), s]); }
  return byBatch;
}

function verify(found: Map<number, number[]>, out: Outcome, batches: readonly Batch[]): string[] {
  const problems: string[] = [];
  const expectRows = (k: number) => Array.from({ length: batches[k]!.rows }, (_, j) => k * 1000 + j);
  for (const k of out.acked) {
    const got = [...(found.get(k) ?? [])].sort((a, b) => a - b);
    if (JSON.stringify(got) !== JSON.stringify(expectRows(k))) problems.push(`acknowledged batch ${k}: ${got.length} of ${batches[k]!.rows} rows found (each must be there exactly once)`);
  }
  for (const [k, rows] of found) {
    if (out.acked.has(k)) continue;
    if (out.refused.has(k)) problems.push(`refused batch ${k} is present after recovery (${rows.length} rows)`);
    else if (out.inflight.has(k)) { if (rows.length !== batches[k]!.rows) problems.push(`in-flight batch ${k} half present (${rows.length} rows)`); }
    else problems.push(`batch ${k} was never acknowledged but is present`);
  }
  return problems;
}

describe.runIf(shm.nativeAvailable())(`durability crash points (seed ${SEED}; replay with SHOAL_SEED=${SEED})`, () => {
  // Full-size blocks: every row of the cycle stays in the open block until a checkpoint seals it.
  // Blocks of 16 rows: batches straddle blocks sealed between checkpoints, each with its seal
  // record in the log, and a crash's recovery maps those blocks and replays only what follows.
  const cases = [{ fsync: 'always', blockRows: LIMITS.blockRowsMax }, { fsync: 'interval', blockRows: LIMITS.blockRowsMax }, { fsync: 'always', blockRows: 16 }, { fsync: 'interval', blockRows: 16 }] as const;
  for (const { fsync, blockRows } of cases) {
    it(`fsync ${fsync}, blocks of ${blockRows} rows: every write, fsync, rename and unlink failed or crashed in turn loses no acknowledged row`, async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-crash-'));
      const limits = LIMITS as { blockRowsMax: number };
      const blockRowsBefore = limits.blockRowsMax;
      limits.blockRowsMax = blockRows;
      const stats = { sealBlocks: 0 };
      try {
        // Number the calls of a clean run.
        const clean = new FaultyFs(null);
        const cleanDir = path.join(root, 'clean');
        const cleanOut = await runCycle(cleanDir, clean, fsync, makeScript(SEED));
        expect(cleanOut.writableAtEnd).toBe(true);
        expect(cleanOut.handedOff).toBe(true);
        expect(verify(await recoveredRows(cleanDir, fsync), cleanOut, makeScript(SEED).batches.concat([{ table: 'ev', rows: 2 }]))).toEqual([]);
        const callCount = clean.calls.length;
        expect(callCount).toBeGreaterThan(40);
        const failures: string[] = [];
        let runs = 0;
        const kinds: FaultKind[] = ['EIO', 'crash', 'short', 'torn'];
        for (let at = 0; at < callCount; at++) {
          for (const kind of kinds) {
            const isWrite = clean.calls[at]!.includes(' write ');
            if ((kind === 'short' || kind === 'torn') && !isWrite) continue;
            const fault: Fault = { at, kind };
            const dir = path.join(root, `run-${at}-${kind}`);
            const io = new FaultyFs(fault);
            const script = makeScript(SEED);
            const out = await runCycle(dir, io, fsync, script);
            runs++;
            const where = `seed ${SEED}, fsync ${fsync}, fault ${kind} at ${io.hit ?? `#${at} (not reached)`}`;
            // A fault the code survives must leave the leaf taking writes again without a restart.
            if (!out.crashed && out.writableAtEnd === false) failures.push(`${where}: the log did not take writes again after the fault`);
            let found: Map<number, number[]>;
            try { found = await recoveredRows(dir, fsync, stats); } catch (e) { failures.push(`${where}: recovery failed: ${(e as Error).message}`); continue; } finally { removeSegments(LEAF_ID); }
            for (const p of verify(found, out, script.batches)) failures.push(`${where}: ${p}`);
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }
        console.log(`crash points, fsync ${fsync}, blocks of ${blockRows} rows, seed ${SEED}: ${callCount} calls, ${runs} faulted runs, ${failures.length} failures; ${stats.sealBlocks} blocks sealed after a checkpoint mapped by the recoveries`);
        expect(failures).toEqual([]);
        // Small blocks: the recoveries did map blocks by their seal records (the path under test).
        if (blockRows < 1000) expect(stats.sealBlocks).toBeGreaterThan(0);
      } finally {
        limits.blockRowsMax = blockRowsBefore;
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
