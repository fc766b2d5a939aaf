/**
 * `shoal leaf`: runs one leaf server. Restores its data (shared memory after a planned restart,
 * else the disk log), then serves. SIGINT/SIGTERM stop it cleanly.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, defaultLeafConfig, parseBytes, validateLeafConfig, type LeafConfig } from '../leaf/config.js';
import { Leaf, buildLeafApp } from '../leaf/leaf.js';
import { startLeafLifecycle } from '../leaf/lifecycle.js';
import { DataDirInUseError, lockDataDir } from '../durability/data-dir-lock.js';

/** The leaf's identity, kept in its data directory so a restarted process is the same leaf. */
export function loadLeafId(dataDir: string, wanted: string | null): string {
  const file = path.join(dataDir, 'leaf-id');
  if (fs.existsSync(file)) {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (wanted !== null && wanted !== id) throw new ConfigError(`--id ${wanted} differs from ${id} stored in ${file}`);
    return id;
  }
  const id = wanted ?? `leaf-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(file, id + '\n');
  return id;
}

export function registerLeaf(program: Command): void {
  const d = defaultLeafConfig();
  program
    .command('leaf')
    .description('run a leaf server (holds tables in memory, answers queries)')
    .option('--host <host>', 'listen address', d.host)
    .option('--port <port>', 'listen port (0 = any free port)', String(d.port))
    .option('--data-dir <dir>', 'disk log and checkpoints', d.dataDir)
    .option('--id <id>', 'leaf identity (default: generated once, kept in the data dir)')
    .option('--workers <n>', 'scan worker threads', String(d.workers))
    .option('--memory-budget <size>', 'table data kept in memory, e.g. 4GiB', String(d.memoryBudgetBytes))
    .option('--query-timeout <ms>', 'default query timeout', String(d.queryTimeoutMs))
    .option('--fsync <policy>', 'disk log fsync: always, interval or never', d.fsync)
    .option('--no-disk-log', 'keep data in memory only (a crash loses it)')
    .option('--no-shm', 'keep sealed blocks on the heap, not in shared memory; restarts read the disk')
    .option('--handoff-ttl <seconds>', 'free a planned-restart handoff left in shared memory after this long (0 = never)', String(d.handoffTtlSeconds))
    .option('--ingest-in-flight <n>', 'ingest requests admitted at once; more get 503 + Retry-After', String(d.ingestInFlightMax))
    .option('--checkpoint-interval <ms>', 'checkpoint sealed blocks to disk at least this often (while writes arrive)', String(d.checkpointIntervalMs))
    .option('--retention <seconds>', 'drop rows older than this (by their time)')
    .option('--token <token>', 'bearer token for ingest and query (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .option('--admin-token <token>', 'bearer token for admin calls (or SHOAL_ADMIN_TOKEN)', process.env.SHOAL_ADMIN_TOKEN)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', d.logLevel)
    .addHelpText('after', `
Example:
  $ shoal leaf --port 7001 --data-dir ./data/leaf1 --memory-budget 4GiB`)
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const config: LeafConfig = validateLeafConfig({
        ...d,
        host: String(o.host),
        port: Number(o.port),
        dataDir: path.resolve(String(o.dataDir)),
        leafId: (o.id as string | undefined) ?? null,
        workers: Number(o.workers),
        memoryBudgetBytes: parseBytes(String(o.memoryBudget)),
        queryTimeoutMs: Number(o.queryTimeout),
        fsync: o.fsync as LeafConfig['fsync'],
        diskLog: o.diskLog !== false,
        shm: o.shm !== false,
        handoffTtlSeconds: Number(o.handoffTtl) === 0 ? null : Number(o.handoffTtl),
        checkpointIntervalMs: Number(o.checkpointInterval),
        ingestInFlightMax: Number(o.ingestInFlight),
        retentionSeconds: o.retention !== undefined ? Number(o.retention) : null,
        token: (o.token as string | undefined) ?? null,
        adminToken: (o.adminToken as string | undefined) ?? null,
        logLevel: String(o.logLevel),
      });
      fs.mkdirSync(config.dataDir, { recursive: true });
      // Before anything in the directory is read: one process per data directory. Held until
      // this process exits (the kernel drops it on any exit, kill -9 included).
      try {
        lockDataDir(config.dataDir);
      } catch (e) {
        if (!(e instanceof DataDirInUseError)) throw e;
        process.stderr.write(`shoal leaf: ${e.message}\n`);
        process.exit(3);
      }
      const leafId = loadLeafId(config.dataDir, config.leafId);
      const leaf = new Leaf(config, leafId);
      const app = buildLeafApp(leaf);
      await startLeafLifecycle(leaf, app);
    });
}
