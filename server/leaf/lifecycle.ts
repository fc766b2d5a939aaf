/**
 * A leaf process from start to exit: restore its data (shared memory after a planned restart,
 * else disk), listen, run housekeeping (checkpoints, retention), and leave either by handing off
 * to shared memory (SIGTERM, SIGINT or POST /v1/admin/handoff, when shared memory is enabled) or
 * by a plain stop. A crash needs nothing from here: the disk log already has every
 * acknowledged batch.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { advertisedUrl, JoinHeartbeat } from './join.js';
import { nativeAvailable, nativeLoadError } from '../../native/shm.js';
import { DiskStore } from '../durability/disk-store.js';
import type { Leaf } from './leaf.js';
import { removeSegments, restoreFromShm, saveToShm, SHM_LAYOUT_VERSION, verifyTakenBlocks, type HandoffBinding, type UnverifiedBlock } from '../durability/shm-handoff.js';
import { BINDING_FILE, sweepExpired } from '../durability/shm-segments.js';
import { ShmBlockHome } from '../durability/shm-blocks.js';
import { realFs, removeFileDurable } from '../durability/durable-fs.js';

export interface Lifecycle {
  /** Stops writes, waits for queries, saves to shared memory, exits the process. */
  handoff(reason: string): Promise<void>;
  stop(reason: string): Promise<void>;
}

/** How long a handoff waits for running queries before it goes ahead anyway. */
const HANDOFF_QUERY_WAIT_MS_MAX = 30_000;
/** After the save, a handing-off leaf keeps answering (503 + Retry-After + Connection: close to
 * writes and queries) until no request has been open for HANDOFF_QUIET_MS, and at most until
 * HANDOFF_DRAIN_MS after the handoff began (a long save counts toward it). Without the drain, a
 * batch already on its way meets a reset connection and its writer cannot tell whether it was
 * stored; with it, writers in flight get a clear refusal and move on. Quiet, not a fixed 100 ms:
 * the fixed wait was most of a small leaf's handoff (it waited the whole 100 ms with nothing in
 * flight), and 20 ms without a request covers any write sent before the state changed on a
 * network whose round trip is under that (a write still in the network later meets a closed
 * socket: refused, which the router knows means "not stored"). */
const HANDOFF_DRAIN_MS = 100;
const HANDOFF_QUIET_MS = 20;

export interface Restored {
  disk: DiskStore | null;
  /** Where sealed blocks live in shared memory (null: --no-shm or no addon; all on the heap). */
  home: ShmBlockHome | null;
  /** Blocks taken from shared memory whose bytes are checked after the leaf serves. */
  unverified: UnverifiedBlock[];
}

export function handoffBinding(cfg: Leaf['config']): HandoffBinding {
  return { dataDir: cfg.dataDir, ttlSeconds: cfg.handoffTtlSeconds };
}

export function restoreLeaf(leaf: Leaf, logger: FastifyInstance['log']): Restored {
  const started = performance.now();
  const cfg = leaf.config;
  const disk = cfg.diskLog
    ? new DiskStore(cfg.dataDir, leaf.leafId, leaf.store, {
      fsync: cfg.fsync, fsyncIntervalMs: cfg.fsyncIntervalMs, checkpointBytes: cfg.checkpointBytes, checkpointIntervalMs: cfg.checkpointIntervalMs,
    }, logger)
    : null;
  const home = cfg.shm && nativeAvailable() ? new ShmBlockHome(leaf.leafId, (m) => logger.warn(m)) : null;
  if (home !== null && home.hugePages === 'never') {
    logger.info('/dev/shm is mounted without huge pages: a planned restart of a large leaf maps and unmaps every 4 KiB page of its blocks (mount -o remount,huge=within_size /dev/shm; docs/operations.md)');
  }
  leaf.store.home = home;
  if (disk !== null) disk.home = home;
  let reason: string | null = null;
  if (nativeAvailable()) {
    // Handoffs of any leaf on this machine that waited past their --handoff-ttl: the disk has
    // their data, and nothing else frees that memory.
    try {
      for (const h of sweepExpired(SHM_LAYOUT_VERSION)) logger.warn({ leafId: h.leafId, bytes: h.bytes }, `removed an expired shared-memory handoff of leaf ${h.leafId} (${h.bytes} bytes, ${h.reason})`);
    } catch (e) {
      logger.warn({ err: e }, 'could not sweep expired shared-memory handoffs');
    }
  }
  let keep: ReadonlySet<string> = new Set();
  let result: Restored | null = null;
  if (home !== null) {
    const r = restoreFromShm(leaf.leafId, leaf.store, handoffBinding(cfg), home);
    if (r.ok) {
      if (disk !== null) {
        if (r.manifest !== null && r.walNext !== null) disk.adopt(r.manifest, r.walNext, r.files, r.seal);
        else disk.recoverEmptyLog();
      }
      leaf.restart = { source: 'shm', ms: Math.round(performance.now() - started), bytes: r.bytes, rows: r.rows, reason: null, diskBytesRead: 0, shmBytesReused: r.bytes };
      result = { disk, home, unverified: r.unverified };
    } else {
      reason = r.reason;
      keep = r.keep;
    }
  } else if (cfg.shm) {
    reason = `shared memory unavailable (${nativeLoadError()?.message ?? 'native addon not loaded'})`;
  } else {
    reason = 'shared memory disabled (--no-shm)';
    // A handoff left by an earlier process is only good for the start right after it: this
    // process recovers from disk and will take writes, so a later start must not find that
    // older copy and take it instead of the disk.
    removeFileDurable(disk?.io ?? realFs, path.join(cfg.dataDir, BINDING_FILE));
    if (nativeAvailable()) {
      const removed = removeSegments(leaf.leafId);
      if (removed > 0) logger.warn({ removed }, `removed ${removed} shared-memory segments of an earlier handoff (not used with --no-shm)`);
    }
  }
  if (result === null) {
    if (disk !== null) {
      leaf.restart = recoverFromDisk(disk, started, reason);
    } else {
      leaf.restart = { source: 'empty', ms: Math.round(performance.now() - started), bytes: 0, rows: 0, reason: `${reason}; disk log disabled`, diskBytesRead: 0, shmBytesReused: 0 };
    }
    result = { disk, home, unverified: [] };
  }
  if (home !== null) {
    // What this process holds is now known: every other segment of this leaf is stale (blocks
    // of a crash that recovery did not reuse, a refused handoff), unless it belongs to a
    // handoff another data directory can still take.
    const removed = home.removeUnowned((n) => keep.has(n));
    if (removed > 0) logger.info({ removed }, `removed ${removed} stale shared-memory segments of leaf ${leaf.leafId}`);
    if (keep.size === 0) home.announce(path.resolve(cfg.dataDir), cfg.handoffTtlSeconds);
    else logger.warn(`shared memory holds a handoff of leaf ${leaf.leafId} for another data directory; this process leaves it there and does not claim the leaf's segments (two leaves with one --id on one machine share segment names)`);
  }
  return result;
}

/** Rebuilds the leaf from its data directory; `reason` says why shared memory was not used. */
function recoverFromDisk(disk: DiskStore, startedMs: number, reason: string | null): Leaf['restart'] {
  const res = disk.recover();
  const notes = res.notes.length ? `; ${res.notes.join('; ')}` : '';
  return {
    source: res.rows > 0 ? 'disk' : 'empty', ms: Math.round(performance.now() - startedMs), bytes: res.bytes, rows: res.rows,
    reason: `${reason}${notes}`, diskBytesRead: res.diskBytesRead, shmBytesReused: res.shmBytes,
  };
}

function restoredMessage(leaf: Leaf): string {
  const r = leaf.restart;
  return `restored ${r.rows} rows (${r.bytes} bytes) from ${r.source} in ${r.ms} ms${r.reason && r.source !== 'shm' ? ` (not from shared memory: ${r.reason})` : ''}`;
}

/** Waits (bounded) until no query runs. */
async function queriesDone(leaf: Leaf, sinceMs: number): Promise<void> {
  while (leaf.running.size > 0 && Date.now() - sinceMs < HANDOFF_QUERY_WAIT_MS_MAX) await new Promise((res) => setTimeout(res, 10));
}

/**
 * A block taken from shared memory failed its checksum after the leaf began serving: stop
 * serving, and rebuild everything from disk in place (the disk log has every batch this process
 * acknowledged too). Without a disk log, drop that block and say so, as disk recovery does for a
 * damaged block file. Synchronous once the running queries are done, so no write slips between.
 */
async function recoverAfterBadBlock(leaf: Leaf, app: FastifyInstance, disk: DiskStore | null, home: ShmBlockHome | null, bad: UnverifiedBlock, exiting: () => boolean): Promise<boolean> {
  const reason = `block segment ${bad.segment} checksum mismatch (found by the check after the restore)`;
  app.log.error({ segment: bad.segment }, `${reason}: not trusting the shared-memory copy; ${disk !== null ? 'recovering from disk' : 'dropping that block (no disk log)'}`);
  leaf.state = 'starting';
  await queriesDone(leaf, Date.now());
  if (exiting()) return false; // a stop or handoff took over meanwhile; it knows the block is bad
  const started = performance.now();
  if (disk !== null) {
    disk.log.close();
    // None of the restore's segments is trusted any more: they go, and the disk is read.
    for (const t of leaf.store.tables.values()) for (const b of t.sealed) home?.release(b);
    leaf.store.tables.clear();
    leaf.restart = recoverFromDisk(disk, started, reason);
  } else {
    const old = leaf.store.tables.get(bad.table);
    if (old !== undefined) {
      home?.release(bad.block);
      const rebuilt = leaf.store.createTable(old.name, false);
      for (const c of old.schemaList()) rebuilt.schema.set(c.name, c);
      for (const b of old.sealed) if (b !== bad.block) rebuilt.addSealed(b);
      rebuilt.open = old.open;
      rebuilt.evictedRows = old.evictedRows;
      rebuilt.evictedBlocks = old.evictedBlocks;
      leaf.store.tables.set(old.name, rebuilt);
    }
    leaf.restart = { ...leaf.restart, rows: leaf.store.rowCount(), bytes: leaf.store.byteSize(), reason: `${reason}; its ${bad.block.rowCount} rows are missing (disk log disabled)` };
  }
  leaf.metrics.restartMs.set({ source: leaf.restart.source }, leaf.restart.ms);
  app.log.info({ leafId: leaf.leafId, restart: leaf.restart }, restoredMessage(leaf));
  leaf.state = 'serving';
  return true;
}

export async function startLeafLifecycle(leaf: Leaf, app: FastifyInstance): Promise<Lifecycle> {
  // --join: announce this leaf from before its restore (a long disk recovery keeps it a member),
  // and again the moment it serves (the readiness push). With --port 0 the address is known only
  // after listen, so the heartbeat starts then.
  const cfg = leaf.config;
  let heartbeat: JoinHeartbeat | null = null;
  /** The --join heartbeat (null without --join), started on the first call. */
  const joinHeartbeat = (port: number): JoinHeartbeat | null => {
    if (cfg.join.length === 0) return null;
    if (heartbeat === null) {
      const url = advertisedUrl(cfg.host, port, cfg.advertiseUrl);
      if (typeof url !== 'string') throw new Error(url.error);
      heartbeat = new JoinHeartbeat({ aggregators: cfg.join, id: leaf.leafId, url, intervalMs: cfg.joinIntervalMs, token: cfg.token, log: (level, m) => app.log[level](m) });
      heartbeat.start();
    }
    return heartbeat;
  };
  const stopHeartbeat = () => heartbeat?.stop();
  if (cfg.port !== 0 || cfg.advertiseUrl !== null) joinHeartbeat(cfg.port);
  const { disk, home, unverified } = restoreLeaf(leaf, app.log);
  leaf.durability = disk;
  leaf.blockHome = home;
  const r = leaf.restart;
  leaf.metrics.restartMs.set({ source: r.source }, r.ms);
  app.log.info({ leafId: leaf.leafId, restart: r }, restoredMessage(leaf));
  await app.listen({ host: leaf.config.host, port: leaf.config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : leaf.config.port;
  leaf.state = 'serving';
  joinHeartbeat(port)?.announce();

  let exiting = false;
  // Checksums of a shared-memory restore, checked while serving. Until they pass, no checkpoint
  // runs: it would write a block that may be damaged to disk under a fresh, matching CRC.
  let verified = unverified.length === 0;
  const verification = verified ? null : (async () => {
    const verifyStart = performance.now();
    const bad = await verifyTakenBlocks(unverified);
    const blocks = unverified.length;
    const bytes = unverified.reduce((sum, b) => sum + b.bytes.byteLength, 0);
    unverified.length = 0; // the blocks live on in their tables (or go with them), not here
    let recovered = false;
    if (bad === null) {
      app.log.info({ blocks, bytes }, `checksums of ${blocks} blocks (${bytes} bytes) taken from shared memory verified in ${Math.round(performance.now() - verifyStart)} ms`);
    } else if (!exiting) {
      recovered = await recoverAfterBadBlock(leaf, app, disk, home, bad, () => exiting);
    }
    verified = true;
    // What a handoff must not pass on: a damaged block still in the tables (found too late to
    // recover, because the process was already on its way out).
    return bad !== null && !recovered ? bad : null;
  })();
  verification?.catch((e: unknown) => {
    // Nothing in the check should throw; if it does, this process cannot vouch for its data.
    app.log.fatal({ err: e }, 'verifying the shared-memory restore failed; exiting (the next start recovers from disk)');
    process.exit(1);
  });
  const timer = setInterval(() => {
    if (verified && leaf.state === 'serving') disk?.maybeCheckpoint();
    leaf.store.enforceRetention(Date.now() / 1000);
  }, 500);
  timer.unref();

  // One way out: a second signal (or an admin call) during a handoff or stop waits for the first
  // instead of exiting halfway through it.
  let leaving: Promise<void> | null = null;
  const lifecycle: Lifecycle = {
    handoff: (reason: string) => (leaving ??= (async () => {
      exiting = true;
      clearInterval(timer);
      stopHeartbeat();
      leaf.state = 'handing-off';
      app.log.info({ reason }, 'handing off to shared memory: refusing writes, waiting for running queries');
      const waitStart = Date.now();
      await queriesDone(leaf, waitStart);
      // Data whose restore was never verified is not handed on: the next start reads the disk.
      const bad = verification !== null ? await verification.catch(() => null) : null;
      // The scan workers cache blocks they scanned (SharedArrayBuffers): when blocks must be
      // copied (they are on the heap), end the workers first, or the heap copies released one by
      // one during the save stay alive there and the handoff holds the data twice. Blocks in
      // shared memory are not copied: the workers end with the process.
      const onHeap = [...leaf.store.tables.values()].some((t) => t.sealed.some((b) => home?.refOf(b) === undefined));
      const poolStart = performance.now();
      if (onHeap) await leaf.pool.close().catch((e: unknown) => app.log.warn({ err: e }, 'closing the scan pool failed; handing off anyway'));
      const poolMs = Math.round(performance.now() - poolStart);
      try {
        if (disk !== null) await disk.prepareHandoff();
        if (bad !== null) throw new Error(`${bad.segment} of the restore this process took failed its checksum`);
        const res = saveToShm(leaf.leafId, leaf.store, disk, handoffBinding(leaf.config), home);
        app.log.info({ handoff: res }, `handed off ${res.rows} rows (${res.bytes} bytes, ${res.blocks} blocks) to shared memory in ${res.ms} ms`);
        // Said to whoever stopped the process: this memory stays taken after the exit.
        const mib = (res.bytes / 2 ** 20).toFixed(1);
        const until = res.expiresAtMs === null ? 'until it is removed' : `until the next start of this leaf, or until ${new Date(res.expiresAtMs).toISOString()} (--handoff-ttl)`;
        process.stderr.write(`shoal leaf ${leaf.leafId}: ${mib} MiB of data handed off to shared memory (/dev/shm), held ${until}; the disk has it too. Free it now with: shoal shm --remove ${leaf.leafId}\n`);
      } catch (e) {
        // The disk copy is complete: a failed handoff only makes the next start slower.
        app.log.error({ err: e }, 'handoff to shared memory failed; the next start recovers from disk');
      }
      leaf.state = 'stopped';
      const savedAt = Date.now();
      // Requests that arrived during the save are answered now (503); then drain the rest.
      let quietSince = Date.now();
      while (Date.now() - waitStart < HANDOFF_DRAIN_MS) {
        if (leaf.openRequests > 0) quietSince = Date.now();
        else if (Date.now() - quietSince >= HANDOFF_QUIET_MS) break;
        await new Promise((res) => setTimeout(res, 5));
      }
      const drainedAt = Date.now();
      await disk?.close();
      const diskClosedAt = Date.now();
      // Every request still open has had its answer (503) or is stuck in a client that stopped
      // reading (kill -STOP): close every socket, kept-alive ones included, so the process exits
      // now and not when the last client lets go.
      app.server.closeAllConnections();
      await app.close();
      // Where the time from the signal to the exit went (bench/restart.ts reads this line).
      app.log.info({ exitTiming: { queriesAndPoolMs: savedAt - waitStart, poolMs, drainMs: drainedAt - savedAt, diskCloseMs: diskClosedAt - drainedAt, closeMs: Date.now() - drainedAt } }, `exiting ${Date.now() - waitStart} ms after the handoff began`);
    })()),
    stop: (reason: string) => (leaving ??= (async () => {
      exiting = true;
      clearInterval(timer);
      stopHeartbeat();
      leaf.state = 'stopped';
      app.log.info({ reason }, 'stopping');
      await app.close();
      await disk?.close();
      await leaf.closePools();
      // No successor takes shared memory after a plain stop: it reads the disk.
      home?.removeAll();
    })()),
  };
  // The admin call is a planned restart: through shared memory when enabled, else a clean stop
  // (the disk log is complete; the successor recovers from disk). Either way the process exits 0
  // and its supervisor starts the successor.
  leaf.onHandoff = (why) => {
    const run = leaf.config.shm ? lifecycle.handoff(why) : lifecycle.stop(why);
    run.then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
  };
  const onSignal = (sig: string) => {
    const run = leaf.config.shm ? lifecycle.handoff(sig) : lifecycle.stop(sig);
    run.then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  // Announced only now: a supervisor that signals the leaf as soon as it reads this line must
  // reach the handlers above, not the default action (which ends the process without a handoff).
  process.stdout.write(`shoal leaf ${leaf.leafId} listening on http://${leaf.config.host}:${port} (restored ${r.rows} rows from ${r.source} in ${r.ms} ms)\n`);
  return lifecycle;
}
