/**
 * A leaf process from start to exit: restore its data (shared memory after a planned restart,
 * else disk), listen, run housekeeping (checkpoints, retention), and leave either by handing off
 * to shared memory (SIGTERM, SIGINT or POST /v1/admin/handoff, when shared memory is enabled) or
 * by a plain stop. A crash needs nothing from here: the disk log already has every
 * acknowledged batch.
 */
import type { FastifyInstance } from 'fastify';
import { DiskStore } from './disk-store.js';
import type { Leaf } from './leaf.js';
import { restoreFromShm, saveToShm } from './shm-handoff.js';

export interface Lifecycle {
  /** Stops writes, waits for queries, saves to shared memory, exits the process. */
  handoff(reason: string): Promise<void>;
  stop(reason: string): Promise<void>;
}

/** How long a handoff waits for running queries before it goes ahead anyway. */
const HANDOFF_QUERY_WAIT_MS_MAX = 30_000;

export function restoreLeaf(leaf: Leaf, logger: FastifyInstance['log']): DiskStore | null {
  const started = performance.now();
  const cfg = leaf.config;
  const disk = cfg.diskLog
    ? new DiskStore(cfg.dataDir, leaf.leafId, leaf.store, {
      fsync: cfg.fsync, fsyncIntervalMs: cfg.fsyncIntervalMs, checkpointBytes: cfg.checkpointBytes, checkpointIntervalMs: cfg.checkpointIntervalMs,
    }, logger)
    : null;
  let reason: string | null = null;
  if (cfg.shm) {
    const r = restoreFromShm(leaf.leafId, leaf.store);
    if (r.ok) {
      if (disk !== null) {
        if (r.manifest !== null && r.walNext !== null) disk.adopt(r.manifest, r.walNext, r.files);
        else disk.recoverEmptyLog();
      }
      leaf.restart = { source: 'shm', ms: Math.round(performance.now() - started), bytes: r.bytes, rows: r.rows, reason: null, diskBytesRead: 0 };
      return disk;
    }
    reason = r.reason;
  } else {
    reason = 'shared memory disabled (--no-shm)';
  }
  if (disk !== null) {
    const res = disk.recover();
    const notes = res.notes.length ? `; ${res.notes.join('; ')}` : '';
    leaf.restart = {
      source: res.rows > 0 ? 'disk' : 'empty', ms: Math.round(performance.now() - started), bytes: res.bytes, rows: res.rows,
      reason: `${reason}${notes}`, diskBytesRead: res.diskBytesRead,
    };
  } else {
    leaf.restart = { source: 'empty', ms: Math.round(performance.now() - started), bytes: 0, rows: 0, reason: `${reason}; disk log disabled`, diskBytesRead: 0 };
  }
  return disk;
}

export async function startLeafLifecycle(leaf: Leaf, app: FastifyInstance): Promise<Lifecycle> {
  const disk = restoreLeaf(leaf, app.log);
  leaf.durability = disk;
  const r = leaf.restart;
  leaf.metrics.restartMs.set({ source: r.source }, r.ms);
  app.log.info({ leafId: leaf.leafId, restart: r }, `restored ${r.rows} rows (${r.bytes} bytes) from ${r.source} in ${r.ms} ms${r.reason && r.source !== 'shm' ? ` (not from shared memory: ${r.reason})` : ''}`);
  await app.listen({ host: leaf.config.host, port: leaf.config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : leaf.config.port;
  leaf.state = 'serving';
  process.stdout.write(`shoal leaf ${leaf.leafId} listening on http://${leaf.config.host}:${port} (restored ${r.rows} rows from ${r.source} in ${r.ms} ms)\n`);

  let exiting = false;
  const timer = setInterval(() => {
    disk?.maybeCheckpoint();
    leaf.store.enforceRetention(Date.now() / 1000);
  }, 500);
  timer.unref();

  const lifecycle: Lifecycle = {
    handoff: async (reason: string) => {
      if (exiting) return;
      exiting = true;
      clearInterval(timer);
      leaf.state = 'handing-off';
      app.log.info({ reason }, 'handing off to shared memory: refusing writes, waiting for running queries');
      const waitStart = Date.now();
      while (leaf.running.size > 0 && Date.now() - waitStart < HANDOFF_QUERY_WAIT_MS_MAX) await new Promise((res) => setTimeout(res, 10));
      try {
        if (disk !== null) await disk.prepareHandoff();
        const res = saveToShm(leaf.leafId, leaf.store, disk);
        app.log.info({ handoff: res }, `handed off ${res.rows} rows (${res.bytes} bytes, ${res.blocks} blocks) to shared memory in ${res.ms} ms`);
      } catch (e) {
        // The disk copy is complete: a failed handoff only makes the next start slower.
        app.log.error({ err: e }, 'handoff to shared memory failed; the next start recovers from disk');
      }
      leaf.state = 'stopped';
      await disk?.close();
      await app.close();
      await leaf.pool.close();
    },
    stop: async (reason: string) => {
      if (exiting) return;
      exiting = true;
      clearInterval(timer);
      leaf.state = 'stopped';
      app.log.info({ reason }, 'stopping');
      await app.close();
      await disk?.close();
      await leaf.pool.close();
    },
  };
  leaf.onHandoff = (why) => {
    lifecycle.handoff(why).then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
  };
  const onSignal = (sig: string) => {
    const run = leaf.config.shm ? lifecycle.handoff(sig) : lifecycle.stop(sig);
    run.then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  return lifecycle;
}
