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
import { setLogFormat } from '../http/http-common.js';
import { CliError, EXIT, serverUrl } from './common.js';
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

/** A byte count as the --memory-budget flag would take it: 6GiB, 5.8GiB, 512MiB. */
export function sizeText(bytes: number): string {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`;
  }
  return `${bytes}B`;
}

/** --join's list: URLs as a user types them (`agg:7000`), each an origin. */
function joinUrls(text: string): string[] {
  const urls = text.split(',').map((u) => u.trim()).filter((u) => u.length > 0).map((u) => serverUrl(u, '--join'));
  if (urls.length === 0) throw new CliError('--join needs at least one aggregator URL');
  return [...new Set(urls)];
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
    .option('--memory-budget <size>', `table data kept in memory, e.g. 4GiB (default: a quarter of this machine's memory, at most 8GiB: ${sizeText(d.memoryBudgetBytes)} here)`)
    .option('--query-timeout <ms>', 'default query timeout', String(d.queryTimeoutMs))
    .option('--fsync <policy>', 'disk log fsync: always, interval or never', d.fsync)
    .option('--no-disk-log', 'keep data in memory only (a crash loses it)')
    .option('--no-shm', 'keep sealed blocks on the heap, not in shared memory; restarts read the disk')
    .option('--handoff-ttl <seconds>', 'free a planned-restart handoff left in shared memory after this long (0 = never)', String(d.handoffTtlSeconds))
    .option('--ingest-in-flight <n>', 'ingest requests admitted at once; more get 503 + Retry-After', String(d.ingestInFlightMax))
    .option('--checkpoint-interval <ms>', 'checkpoint sealed blocks to disk at least this often (while writes arrive)', String(d.checkpointIntervalMs))
    .option('--retention <seconds>', 'drop rows older than this (by their time)')
    .option('--join <urls>', 'announce this leaf to these aggregators (comma-separated URLs), with a heartbeat')
    .option('--advertise <url>', 'the URL aggregators reach this leaf at (default http://HOST:PORT; needed with --host 0.0.0.0)')
    .option('--join-interval <ms>', 'heartbeat interval of --join', String(d.joinIntervalMs))
    .option('--token <token>', 'bearer token for ingest and query (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .option('--admin-token <token>', 'bearer token for admin calls (or SHOAL_ADMIN_TOKEN)', process.env.SHOAL_ADMIN_TOKEN)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', d.logLevel)
    .option('--log-format <format>', 'auto (text on a terminal, else JSON lines), json or text', 'auto')
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
        memoryBudgetBytes: o.memoryBudget === undefined ? d.memoryBudgetBytes : parseBytes(String(o.memoryBudget)),
        queryTimeoutMs: Number(o.queryTimeout),
        fsync: o.fsync as LeafConfig['fsync'],
        diskLog: o.diskLog !== false,
        shm: o.shm !== false,
        handoffTtlSeconds: Number(o.handoffTtl) === 0 ? null : Number(o.handoffTtl),
        checkpointIntervalMs: Number(o.checkpointInterval),
        ingestInFlightMax: Number(o.ingestInFlight),
        retentionSeconds: o.retention !== undefined ? Number(o.retention) : null,
        join: o.join === undefined ? [] : joinUrls(String(o.join)),
        advertiseUrl: o.advertise === undefined ? null : serverUrl(String(o.advertise), '--advertise'),
        joinIntervalMs: Number(o.joinInterval),
        token: (o.token as string | undefined) ?? null,
        adminToken: (o.adminToken as string | undefined) ?? null,
        logLevel: String(o.logLevel),
      });
      setLogFormat(String(o.logFormat) as 'auto');
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
      try {
        await startLeafLifecycle(leaf, app);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        throw new CliError(`port ${config.port} on ${config.host} is in use by another process; stop it or pick another --port`, EXIT.unhealthy);
      }
    });
}
