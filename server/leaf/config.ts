/**
 * Runtime configuration of leaf and aggregator processes: one validated object with commented
 * defaults. Compile-time bounds are in query/limits.ts; what an operator may tune is here, and
 * every value is checked against a sane range at startup (a bad value stops the process with a
 * message naming the option, rather than failing later).
 */
import os from 'node:os';
import { LIMITS } from '../../query/limits.js';

export interface LeafConfig {
  /** Address to listen on. Loopback by default: exposing a leaf is a decision, not an accident. */
  host: string;
  /** TCP port; 0 picks a free one (printed at startup). */
  port: number;
  /** Directory for the disk log, checkpoints and the leaf identity. */
  dataDir: string;
  /** Stable identity of this leaf (persisted in dataDir); shared-memory segments carry it. */
  leafId: string | null;
  /** Scan worker threads. Default: one per core (a leaf's scans use all of its cores). */
  workers: number;
  /** Heap bytes of table data this leaf keeps; past it the oldest sealed blocks are dropped. */
  memoryBudgetBytes: number;
  /** Queries running at once; more get 503 SHOAL_ERR_QUERY_OVERLOADED. */
  queriesMax: number;
  /** Default and maximum query time. */
  queryTimeoutMs: number;
  queryTimeoutMsMax: number;
  /** Ingest requests admitted at once (from their first byte: bodies are buffered, so this times
   * the body limit bounds upload memory); more get 503 + Retry-After. */
  ingestInFlightMax: number;
  /** Ingest decode threads (server/leaf/ingest-pool.ts): request bodies are parsed, validated
   * and dictionary-encoded there, off the event loop. Default: one per core, at most 4
   * (bench/RESULTS.md, "Ingest (issue 15)"); 0 decodes every batch on the event loop. */
  ingestWorkers: number;
  /** Batches waiting for an ingest decode thread beyond those decoding; one more gets 503 +
   * Retry-After. Each holds its body (the ingestInFlightMax bound covers that memory). */
  ingestQueueMax: number;
  /** Bodies up to this many bytes are decoded on the event loop, larger ones on an ingest
   * thread. With the fast decoder (query/storage/ingest-scan.ts) a worker hop costs ~1 us of
   * CPU per event at 1,000 narrow events (another isolate's GC, the transfers, two thread
   * wake-ups), more than the decode it moves: measured on 2 cores, 256 KiB puts 1,000-event
   * batches of 173 B events inline and 10,000-event or wide batches on the threads (bench/RESULTS.md,
   * "Ingest (issue 15)"). */
  ingestInlineBytesMax: number;
  /** Queries first (server/leaf/query-first.ts): an ingest batch waits to start while a query
   * runs and for queryFirstGraceMs after the last one, at most queryFirstWaitMaxMs (0: off). */
  queryFirstGraceMs: number;
  queryFirstWaitMaxMs: number;
  /** Scans of fewer rows than this run inline on the event loop (a worker hop costs more). */
  inlineScanRowsMax: number;
  /** Bearer token for ingest and query routes (null: open). */
  token: string | null;
  /** Bearer token for admin routes (handoff). Null: admin routes are open to whoever can reach
   * the leaf (loopback by default); set one whenever the leaf listens beyond loopback. */
  adminToken: string | null;
  /** Disk log fsync policy: 'always' fsyncs before acknowledging; 'interval' every fsyncIntervalMs; 'never' leaves it to the OS. */
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  /** Disable the disk log entirely (benchmarks of the in-memory path only). */
  diskLog: boolean;
  /** Use shared memory for planned restarts. */
  shm: boolean;
  /** Seconds a handoff waits in shared memory for its successor; after that, any leaf start on
   * the machine (or `shoal shm --remove-expired`) frees it: the disk has the data. A planned
   * restart takes seconds, so an hour-old handoff is far more likely an orphan (a leaf stopped
   * with Ctrl-C and never started again) than a successor about to come. Null: never expires. */
  handoffTtlSeconds: number | null;
  /** Checkpoint sealed blocks to disk when the log has grown this much since the last one... */
  checkpointBytes: number;
  /** ...or when this much time has passed with anything logged. Each checkpoint seals open
   * blocks, so a short interval makes small blocks; the log keeps every row in between. */
  checkpointIntervalMs: number;
  /** Optional maximum age of rows (seconds, by their time); older sealed blocks are dropped. */
  retentionSeconds: number | null;
  /** Aggregators this leaf announces itself to (--join; empty: none), the URL it gives them
   * (--advertise; null: http://host:port), and the heartbeat interval (server/leaf/join.ts). */
  join: string[];
  advertiseUrl: string | null;
  joinIntervalMs: number;
  logLevel: string;
}

export function defaultLeafConfig(): LeafConfig {
  return {
    host: '127.0.0.1',
    port: 7001,
    dataDir: './data/leaf',
    leafId: null,
    workers: Math.max(1, Math.min(os.availableParallelism(), 8)),
    memoryBudgetBytes: Math.floor(Math.min(8 * 2 ** 30, os.totalmem() / 4)),
    queriesMax: 32,
    queryTimeoutMs: 30_000,
    queryTimeoutMsMax: 600_000,
    ingestInFlightMax: 16,
    ingestWorkers: defaultIngestWorkers(),
    ingestQueueMax: 8,
    ingestInlineBytesMax: 256 * 1024,
    queryFirstGraceMs: 5,
    queryFirstWaitMaxMs: 250,
    inlineScanRowsMax: 200_000,
    token: null,
    adminToken: null,
    fsync: 'interval',
    fsyncIntervalMs: 200,
    diskLog: true,
    shm: true,
    handoffTtlSeconds: 3600,
    checkpointBytes: 128 * 1024 * 1024,
    checkpointIntervalMs: 120_000,
    retentionSeconds: null,
    join: [],
    advertiseUrl: null,
    joinIntervalMs: 1_000,
    logLevel: 'info',
  };
}

/** One ingest decode thread per core (at most 4). `SHOAL_INGEST_WORKERS` overrides it until
 * `shoal leaf` has a flag for it (the benchmarks compare thread counts with it). */
function defaultIngestWorkers(): number {
  const env = process.env.SHOAL_INGEST_WORKERS;
  if (env !== undefined && env !== '') return Number(env);
  return Math.max(1, Math.min(os.availableParallelism(), 4));
}

export class ConfigError extends Error {}

function check(cond: boolean, option: string, message: string): void {
  if (!cond) throw new ConfigError(`invalid ${option}: ${message}`);
}

export function validateLeafConfig(c: LeafConfig): LeafConfig {
  check(Number.isInteger(c.port) && c.port >= 0 && c.port <= 65535, '--port', `${c.port} is not a TCP port (0-65535)`);
  check(typeof c.host === 'string' && c.host.length > 0, '--host', 'empty');
  check(Number.isInteger(c.workers) && c.workers >= 1 && c.workers <= 64, '--workers', `${c.workers} is not in 1..64`);
  check(Number.isFinite(c.memoryBudgetBytes) && c.memoryBudgetBytes >= 16 * 2 ** 20, '--memory-budget', 'must be at least 16 MiB');
  check(Number.isInteger(c.queriesMax) && c.queriesMax >= 1 && c.queriesMax <= 10_000, 'queriesMax', 'not in 1..10000');
  check(c.queryTimeoutMs >= 1 && c.queryTimeoutMs <= c.queryTimeoutMsMax, '--query-timeout', `must be 1..${c.queryTimeoutMsMax} ms`);
  check(['always', 'interval', 'never'].includes(c.fsync), '--fsync', 'must be always, interval or never');
  check(c.leafId === null || /^[A-Za-z0-9_-]{1,64}$/.test(c.leafId), '--id', 'letters, digits, _ and - only, at most 64');
  check(Number.isInteger(c.ingestInFlightMax) && c.ingestInFlightMax >= 1 && c.ingestInFlightMax <= 10_000, '--ingest-in-flight', 'must be 1..10000');
  check(Number.isInteger(c.ingestWorkers) && c.ingestWorkers >= 0 && c.ingestWorkers <= 64, 'ingestWorkers (SHOAL_INGEST_WORKERS)', `${c.ingestWorkers} is not in 0..64`);
  check(Number.isInteger(c.ingestQueueMax) && c.ingestQueueMax >= 0 && c.ingestQueueMax <= 10_000, 'ingestQueueMax', 'must be 0..10000');
  check(Number.isInteger(c.ingestInlineBytesMax) && c.ingestInlineBytesMax >= 0, 'ingestInlineBytesMax', 'must be a byte count');
  check(Number.isInteger(c.queryFirstGraceMs) && c.queryFirstGraceMs >= 0 && c.queryFirstGraceMs <= 1_000, 'queryFirstGraceMs', 'must be 0..1000 ms');
  check(Number.isInteger(c.queryFirstWaitMaxMs) && c.queryFirstWaitMaxMs >= 0 && c.queryFirstWaitMaxMs <= 10_000, 'queryFirstWaitMaxMs', 'must be 0..10000 ms');
  check(c.checkpointBytes >= 1024 * 1024, 'checkpointBytes', 'must be at least 1 MiB');
  check(c.checkpointIntervalMs >= 100, '--checkpoint-interval', 'must be at least 100 ms');
  check(c.handoffTtlSeconds === null || (Number.isFinite(c.handoffTtlSeconds) && c.handoffTtlSeconds > 0 && c.handoffTtlSeconds <= 365 * 86_400), '--handoff-ttl', 'must be 1 second .. 365 days (0 = never expires)');
  check(c.retentionSeconds === null || c.retentionSeconds > 0, '--retention', 'must be positive seconds');
  check(c.join.length <= LIMITS.joinTargetsMax, '--join', `at most ${LIMITS.joinTargetsMax} aggregators`);
  for (const u of [...c.join, ...(c.advertiseUrl === null ? [] : [c.advertiseUrl])]) check(/^https?:\/\/[^/?#\s]+$/.test(u), u === c.advertiseUrl ? '--advertise' : '--join', `${JSON.stringify(u)} must be http(s)://HOST:PORT with no path`);
  check(Number.isInteger(c.joinIntervalMs) && c.joinIntervalMs >= 100 && c.joinIntervalMs <= 60_000, '--join-interval', 'must be 100..60000 ms');
  return c;
}

/** "4GiB", "512MB", "1000000" -> bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`cannot read "${text}" as a size (e.g. 512MiB, 4GiB)`);
  const unit = (m[2] ?? '').toLowerCase().replace(/b$/, '').replace(/i$/, '');
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit];
  if (mult === undefined) throw new ConfigError(`unknown size unit in "${text}"`);
  return Math.floor(Number(m[1]) * mult);
}
