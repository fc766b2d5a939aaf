/**
 * The leaf server: one process holding tables in memory, answering the HTTP API of DESIGN.md.
 * Wires storage (LeafStore), durability (the disk log, when configured), the ingest and scan
 * pools and the query engine to fastify routes. Every write is decoded and validated whole (on an
 * ingest thread, or on the event loop when small), then committed on the event loop in one
 * synchronous step: checked against the table as it is now, made durable, applied. Every query
 * plans on the event loop and scans sealed blocks in the scan pool.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { apiRows, bindQuery, cutForRequest, emptyPartial, finish, mergePartials, partialToWire, planQuery, runNested, scanBlocks, sealPlan, type CatalogTable, type Partial, type PlanEnvelope } from '../../query/engine.js';
import { ShoalError } from '../../query/errors.js';
import { timeRangeOf } from '../../query/exec/scan.js';
import { evictedRowsNote } from '../../query/plan/partial.js';
import type { SealedBlock } from '../../query/storage/table.js';
import { threadCodes, trimStringCodes } from '../../query/storage/string-codes.js';
import type { DiskHealth } from '../durability/disk-store.js';
import type { ShmBlockHome } from '../durability/shm-blocks.js';
import type { LeafConfig } from './config.js';
import { BATCH_STORED_HEADER, bodyFormat, fastifyOptions, ingestBatchId, installCommon, sendError, parseQueryRequest, requireToken, tokenMatches, type QueryRequest } from '../http/http-common.js';
import { LeafStore, checkTableName, deadlineError, parseIngestGuard, type DecodeOutcome, type IngestGuard, type IngestRecord, type SchemaSnapshot } from '../../query/storage/leaf-store.js';
import type { ColumnType } from '../../query/storage/types.js';
import { LIMITS } from '../../query/limits.js';
import { createMetrics } from '../http/metrics.js';
import { ScanPool } from './scan-pool.js';
import { CodeMapper } from './code-mapper.js';
import { IngestPool, type DecodeRunner } from './ingest-pool.js';
import { BatchesInFlight } from './batches-in-flight.js';
import { QueryFirst } from './query-first.js';
import { registerUi } from '../ui/ui-routes.js';

/** Where a leaf's data came from when it started. */
export interface RestartInfo {
  source: 'shm' | 'disk' | 'empty';
  ms: number;
  bytes: number;
  rows: number;
  /** Why the data did not come from shared memory (null when it did). */
  reason: string | null;
  /** Bytes read from the data directory while restoring (0 for a shared-memory restore). */
  diskBytesRead: number;
  /** Bytes of blocks taken from shared memory: all of them after a planned restart; after a
   * crash, the checkpointed blocks whose segments were still there with matching checksums. */
  shmBytesReused: number;
}

/** Names this process among every process of this leaf, past and future (status `instanceId`). */
const PROCESS_INSTANCE_ID = randomBytes(8).toString('hex');

/** Makes batches durable before they are applied (the disk log). */
export interface Durability {
  /** Logs a batch of `rows` rows, or throws SHOAL_ERR_INGEST_DISK (then it is not applied). */
  append(rec: IngestRecord, rows: number): void;
  health(): DiskHealth;
  close(): Promise<void>;
}

export type LeafState = 'starting' | 'serving' | 'handing-off' | 'stopped';

export interface RunningQuery { id: number; sql: string; startedAtMs: number }

export class Leaf {
  readonly store: LeafStore;
  readonly metrics = createMetrics('leaf');
  readonly pool: ScanPool;
  state: LeafState = 'starting';
  restart: RestartInfo = { source: 'empty', ms: 0, bytes: 0, rows: 0, reason: null, diskBytesRead: 0, shmBytesReused: 0 };
  /** Where sealed blocks live in shared memory (set by the lifecycle; null: on the heap). */
  blockHome: ShmBlockHome | null = null;
  /** Set by the lifecycle: starts a handoff to shared memory (the admin route calls it). */
  onHandoff: ((reason: string) => void) | null = null;
  durability: Durability | null = null;
  readonly running = new Map<number, RunningQuery>();
  private nextQueryId = 1;
  /** Ingest requests admitted and not yet answered, counted from their first byte (bodies
   * are buffered in memory, so this bounds the memory that uploads in progress can take). */
  ingestRequests = 0;
  /** Requests of any kind received and not yet answered (or aborted): a handoff's drain ends
   * once none is left (lifecycle.ts). */
  openRequests = 0;
  readonly startedAtMs = Date.now();
  /** Batch ids being received, decoded or stored now (GET /v1/batches/:id waits on them). */
  readonly batchesInFlight = new BatchesInFlight();
  /** Decodes bodies off the event loop (null: ingestWorkers 0, every batch decodes inline). */
  readonly ingestPool: IngestPool | null;
  /** Holds ingest batches back while queries run (query-first.ts). */
  readonly queryFirst: QueryFirst;

  /** `makeDecodeRunner`: what runs the ingest pool's tasks (tests hold batches in it). */
  constructor(readonly config: LeafConfig, readonly leafId: string, makeDecodeRunner?: (threads: number) => DecodeRunner) {
    this.store = new LeafStore(config.memoryBudgetBytes, config.retentionSeconds);
    this.queryFirst = new QueryFirst(config.queryFirstGraceMs, config.queryFirstWaitMaxMs);
    this.ingestPool = config.ingestWorkers > 0 ? new IngestPool(config.ingestWorkers, config.ingestQueueMax, makeDecodeRunner) : null;
    // The string codes (query/storage/string-codes.ts) may take 1/8 of the budget: half for the
    // main thread's table, which is the leaf's code space (docs/engine.md, "Leaf codes"), half
    // shared by the workers' own tables; each between 8 MiB and LIMITS.threadStringBytesMax.
    const share = (bytes: number) => Math.max(8 * 2 ** 20, Math.min(LIMITS.threadStringBytesMax, Math.floor(bytes)));
    this.codesBytesMax = share(config.memoryBudgetBytes / 16);
    this.pool = new ScanPool(config.workers, share(config.memoryBudgetBytes / 16 / Math.max(1, config.workers)));
    this.store.cacheBytes = () => this.pool.cacheBytes + threadCodes.bytes + threadCodes.mapBytes;
    threadCodes.isLeafSpace = true;
    // The background maps fill the table only to 1/16 of the budget (no 8 MiB floor: on a small
    // budget they would crowd out the data they map).
    this.codeMapper = new CodeMapper(this.store, Math.min(this.codesBytesMax, Math.floor(config.memoryBudgetBytes / 16)));
    this.codeMapper.start();
  }

  /** The main thread's string-code bound (the leaf's code space). */
  readonly codesBytesMax: number;
  readonly codeMapper: CodeMapper;
  /** Queries whose worker scans grouped or counted distinct by the leaf's codes. */
  leafCodedScans = 0;

  /** Refuses a write when this leaf takes none now (not serving, or at its memory budget). */
  private checkTakesWrites(): void {
    if (this.state !== 'serving') {
      throw new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf is ${this.state} and does not take writes; retry (another leaf will take the batch)`);
    }
    if (this.store.overBudget()) {
      throw new ShoalError('SHOAL_ERR_UNAVAILABLE', 'leaf is at its memory budget with nothing it may evict; retry on another leaf');
    }
  }

  private logger(): ((rec: IngestRecord, rows: number) => void) | null {
    const d = this.durability;
    return d === null ? null : (x, rows) => d.append(x, rows);
  }

  private counted(rec: IngestRecord, r: { accepted: number; duplicate: boolean }): { accepted: number; duplicate: boolean } {
    if (!r.duplicate) {
      this.metrics.ingestRows.inc(r.accepted);
      this.metrics.ingestBytes.inc(rec.body.length);
    }
    return r;
  }

  /** Decodes and stores a batch on the event loop, in one synchronous step. */
  ingest(rec: IngestRecord, guard: IngestGuard | null = null): { accepted: number; duplicate: boolean } {
    this.checkTakesWrites();
    return this.counted(rec, this.store.ingest(rec, this.logger(), guard));
  }

  /**
   * A batch from the HTTP route: a known batch id answers at once; a small body is decoded and
   * stored on the event loop (ingest); a larger one is decoded on an ingest thread, against the
   * table's schema as it is now, and then committed (commit).
   */
  async ingestBatch(rec: IngestRecord, guard: IngestGuard | null = null): Promise<{ accepted: number; duplicate: boolean }> {
    this.checkTakesWrites();
    const wait = this.queryFirst.pass();
    if (wait !== null) {
      await wait;
      this.checkTakesWrites();
    }
    const dup = this.store.duplicateRows(rec.batchId);
    if (dup !== null) return { accepted: dup, duplicate: true };
    const pool = this.ingestPool;
    if (pool === null || rec.body.length <= this.config.ingestInlineBytesMax) return this.ingest(rec, guard);
    checkTableName(rec.table);
    const snap = this.store.snapshot(rec.table);
    const outcome = await pool.decode(rec, snap);
    return this.commit(rec, outcome, snap, guard);
  }

  /**
   * Stores a batch decoded elsewhere, synchronously (LeafStore.commit): a leaf that stopped
   * serving while the batch was decoding (a handoff began) stores nothing more, so the batch is
   * refused (or answered as a duplicate, if an earlier try of it was stored); a retry of the same
   * id that was stored meanwhile makes this one a duplicate; a schema that moved meanwhile is
   * checked again.
   */
  commit(rec: IngestRecord, outcome: DecodeOutcome, snap: SchemaSnapshot, guard: IngestGuard | null = null): { accepted: number; duplicate: boolean } {
    if (this.state !== 'serving') {
      const dup = this.store.duplicateRows(rec.batchId);
      if (dup !== null) return { accepted: dup, duplicate: true };
    }
    this.checkTakesWrites();
    return this.counted(rec, this.store.commit(rec, outcome, snap, this.logger(), guard));
  }

  /** What each ingest stage has cost so far, summed over the batches stored (status, bench). */
  ingestStatus() {
    const st = this.store.stages;
    const p = this.ingestPool;
    const ms = (x: number) => Math.round(x * 1000) / 1000;
    return {
      workers: p?.threads ?? 0, queueMax: p?.queueMax ?? 0, inlineBytesMax: this.config.ingestInlineBytesMax,
      decoding: p?.inFlight ?? 0, refusedQueueFull: p?.stages.refusedFull ?? 0,
      batches: st.batches, rows: st.rows, workerBatches: p?.stages.batches ?? 0, redecodes: st.redecodes,
      waitingForQueries: this.queryFirst.waitingNow, batchesWaitedForQueries: this.queryFirst.batchesWaited,
      stageMs: { yield: ms(this.queryFirst.waitedMs), scan: ms(st.scanMs), parse: ms(st.parseMs), build: ms(st.buildMs), hop: ms(p?.stages.hopMs ?? 0), check: ms(st.checkMs), log: ms(st.logMs), append: ms(st.appendMs) },
    };
  }

  /** Ends the worker threads (scan and ingest). */
  async closePools(): Promise<void> {
    this.codeMapper.stop();
    await Promise.all([this.pool.close(), this.ingestPool?.close()]);
  }

  /** Runs a query's plan and returns its merged Partial (what an aggregator wants). */
  /** The catalog this leaf shows (information_schema, SHOW TABLES, DESCRIBE). */
  catalogTables(): CatalogTable[] {
    return [...this.store.tables.values()].map((t) => ({ name: t.name, columns: t.schemaList().map((c) => ({ name: c.name, type: c.type })) }));
  }

  async queryPartial(req: QueryRequest, env: PlanEnvelope): Promise<Partial> {
    // During a handoff the tables are being moved to shared memory (and then are empty here): a
    // query started now would answer from part of the data, or none, as if it were all of it.
    if (this.state !== 'serving') {
      throw new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf is ${this.state} and does not take queries; retry (its successor will answer)`);
    }
    if (this.running.size >= this.config.queriesMax) {
      throw new ShoalError('SHOAL_ERR_QUERY_OVERLOADED', `${this.running.size} queries are running, the limit; retry later`);
    }
    const { nowSeconds, plan } = env;
    const table = this.store.tables.get(plan.table);
    if (table === undefined) {
      if (req.partial) return emptyPartial(plan);
      throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_TABLE', `table "${plan.table}" does not exist`, { position: plan.tablePos });
    }
    const bound = bindQuery(plan, table.schema, nowSeconds, req.partial);
    const id = this.nextQueryId++;
    this.running.set(id, { id, sql: env.sql, startedAtMs: Date.now() });
    this.queryFirst.queryBegin();
    const timeoutMs = Math.min(req.timeoutMs ?? this.config.queryTimeoutMs, this.config.queryTimeoutMsMax);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    let holdsCodes = false;
    try {
      // Snapshot: the open block is scanned now, synchronously; sealed blocks never change.
      trimStringCodes(this.codesBytesMax);
      const openPart = scanBlocks(bound, table.open.rowCount > 0 ? [table.open] : []);
      const { range } = timeRangeOf(bound.where);
      const sealed: SealedBlock[] = [];
      let skipped = 0;
      let sealedRows = 0;
      for (const b of table.sealed) {
        if (b.timeMax < range.min || b.timeMin > range.max) { skipped++; continue; }
        sealed.push(b);
        sealedRows += b.rowCount;
      }
      // Inline on the event loop only what is provably small: at most inlineScanRowsMax rows of
      // blocks. A LIMIT without ORDER BY first tries such a prefix (most such queries stop
      // there); when the prefix does not fill the LIMIT, the rest goes to the pool.
      let parts: Partial[] = [];
      let rest = sealed;
      const limitOnly = plan.mode === 'rows' && plan.orderBy.length === 0 && plan.limit !== null;
      if (sealedRows <= this.config.inlineScanRowsMax || limitOnly) {
        let n = 0; let rows = 0;
        while (n < sealed.length && rows + sealed[n]!.rowCount <= this.config.inlineScanRowsMax) rows += sealed[n++]!.rowCount;
        if (n === 0 && sealedRows <= this.config.inlineScanRowsMax) n = sealed.length;
        trimStringCodes(this.codesBytesMax);
        const first = scanBlocks(bound, sealed.slice(0, n));
        parts.push(first);
        rest = sealed.slice(n);
        if (first.mode === 'rows' && (first.truncated || first.rows.length >= (plan.limit ?? Infinity))) rest = [];
      }
      if (rest.length > 0) {
        const schema = [...table.schema.values()].map((c) => [c.name, c.type] as [string, typeof c.type]);
        const leafCodes = this.codeMapper.leafCodesFor(plan.table, bound, rest);
        if (leafCodes !== null) {
          // The table must not start over while workers hold its codes: released a turn after
          // the merge, once the caller has made strings of what it answers with.
          threadCodes.leafScansInFlight++;
          holdsCodes = true;
          this.leafCodedScans++;
        }
        parts.push(...await this.pool.scan(plan, nowSeconds, schema, req.partial, rest, abort.signal, leafCodes));
      }
      const merged = mergePartials(plan, [openPart, ...parts]);
      merged.stats.rowsHeld = table.rowCount;
      merged.stats.rowsEvicted = table.evictedRowsIn(range.min, range.max);
      merged.stats.blocksSkipped += skipped;
      return merged;
    } finally {
      clearTimeout(timer);
      this.running.delete(id);
      this.queryFirst.queryEnd();
      if (holdsCodes) setImmediate(() => { threadCodes.leafScansInFlight--; });
    }
  }

  /** The disk's state for status and health: whether writes are logged, why not, data lost. */
  diskStatus() {
    if (this.durability === null) return { log: false as const };
    const h = this.durability.health();
    return {
      log: true as const,
      writable: h.writable,
      failure: h.failure === null ? null : { kind: h.failure.kind, code: h.failure.code, message: h.failure.message, sinceMs: h.failure.sinceMs },
      errors: h.errors,
      lastCheckpointError: h.lastCheckpointError,
      losses: h.losses,
      lossesDropped: h.lossesDropped,
    };
  }

  /** `knownSchemaVersion`: the caller's last schemaVersion; column types are listed only when it
   * is stale (bounded by LIMITS.statusColumnsMax; tables past it say `columnsOmitted`). */
  status(knownSchemaVersion: string | null = null) {
    const schemaVersion = this.store.schemaVersion;
    const withColumns = knownSchemaVersion !== schemaVersion;
    let columnsLeft = LIMITS.statusColumnsMax;
    const tables: Record<string, { rows: number; bytes: number; columns?: Record<string, ColumnType>; columnsOmitted?: true }> = {};
    for (const [name, t] of this.store.tables) {
      tables[name] = { rows: t.rowCount, bytes: t.byteSize };
      if (!withColumns) continue;
      if (t.schema.size > columnsLeft) { tables[name].columnsOmitted = true; continue; }
      columnsLeft -= t.schema.size;
      const columns: Record<string, ColumnType> = {};
      for (const c of t.schema.values()) columns[c.name] = c.type;
      tables[name].columns = columns;
    }
    const bytes = this.store.byteSize();
    return {
      role: 'leaf' as const,
      leafId: this.leafId,
      state: this.state,
      rows: this.store.rowCount(),
      bytes,
      memoryBudgetBytes: this.store.memoryBudgetBytes,
      memoryFreeBytes: Math.max(0, this.store.memoryBudgetBytes - bytes - this.store.cacheBytes()),
      /** Scans' string codes and code maps, all threads (in the budget beside `bytes`). */
      scanCacheBytes: this.store.cacheBytes(),
      /** The leaf's code maps made in the background (docs/engine.md, "Leaf codes"). */
      leafCodes: { strings: threadCodes.size, hashed: threadCodes.hashedCount, mapping: this.codeMapper.mapping, mapsMade: this.codeMapper.mapsMade, queries: this.leafCodedScans, busyMs: Math.round(this.codeMapper.busyMs) },
      /** Times a scan thread's string codes started over at their bound (docs/engine.md). */
      scanCacheResets: this.pool.cacheResets + threadCodes.generation - 1,
      evicted: { ...this.store.evicted },
      schemaVersion,
      /** This process's clock (epoch ms): the router estimates the offset to send deadlines in it. */
      clockMs: Date.now(),
      tables,
      restart: this.restart,
      /** Sealed blocks in shared memory (null: --no-shm or no addon: all on the heap). */
      sharedMemory: this.blockHome?.stats() ?? null,
      disk: this.diskStatus(),
      ingest: this.ingestStatus(),
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      pid: process.pid,
      /** This process's random id: a successor differs even where pids repeat (a container's
       * process is pid 1 in every generation), which is how a rolling restart tells them apart. */
      instanceId: PROCESS_INSTANCE_ID,
      queriesRunning: [...this.running.values()].map((q) => ({ ...q, elapsedMs: Date.now() - q.startedAtMs })),
    };
  }
}

/** The coverage of one leaf answering directly: rows the memory budget evicted inside the
 * query's time range are missing (the same rule as the aggregator's, docs/cluster.md). */
function leafCoverage(s: Partial['stats'], leafId: string) {
  const evicted = s.rowsEvicted ?? 0;
  const expected = s.rowsHeld + evicted;
  const percent = expected === 0 || evicted === 0 ? 100 : Math.floor((10_000 * s.rowsHeld) / expected) / 100;
  return {
    percent, basis: 'rows' as const, leavesQueried: 1, leavesResponded: 1,
    rowsScanned: s.rowsScanned, rowsHeld: s.rowsHeld, rowsExpected: expected, rowsEvicted: evicted, failures: [],
    notes: evicted > 0 ? [{ leaf: leafId, reason: evictedRowsNote(evicted) }] : [],
  };
}

export function buildLeafApp(leaf: Leaf): FastifyInstance {
  // return503OnClosing off: while the handoff closes the server, requests still arriving on open
  // connections reach the routes, which refuse them in shoal's shape (503, Retry-After) because
  // the leaf is no longer serving; fastify's own closing answer has neither.
  const app = Fastify({ ...fastifyOptions(leaf.config.logLevel), return503OnClosing: false });
  installCommon(app);
  registerUi(app, { role: 'leaf', id: leaf.leafId });
  const cfg = leaf.config;

  // Admission for ingest happens before the body is read: a leaf that is not serving, or has
  // ingestInFlightMax uploads in progress, refuses at once with 503 + Retry-After, so the router
  // places the batch elsewhere and no unbounded number of bodies is buffered here.
  const opened = new WeakSet<object>();
  app.addHook('onRequest', async (req) => { opened.add(req); leaf.openRequests++; });
  const closed = async (req: object) => { if (opened.delete(req)) leaf.openRequests--; };
  app.addHook('onResponse', closed);
  app.addHook('onRequestAbort', closed);
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'POST' || !req.url.startsWith('/v1/tables/')) return;
    if (leaf.state !== 'serving') {
      // Going away (or restoring): the writer's next batch should go out on a new connection.
      reply.header('connection', 'close');
      // Handing off or stopped, this process stores nothing more, so what it holds is final: a
      // batch it stored is a duplicate (it goes on in the handoff and the disk log), and one it
      // did not store never will be, which the router may act on at once (docs/cluster.md).
      const batchId = ingestBatchId(req.headers['x-shoal-batch-id']);
      if (leaf.state !== 'starting' && batchId !== null && (cfg.token === null || tokenMatches(req, cfg.token))) {
        const rows = leaf.store.duplicateRows(batchId);
        if (rows !== null) {
          leaf.metrics.ingestBatches.inc({ outcome: 'duplicate' });
          return reply.send({ accepted: rows, duplicate: true });
        }
        reply.header(BATCH_STORED_HEADER, 'never');
      }
      return sendError(reply, new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf is ${leaf.state} and does not take writes; retry (another leaf will take the batch)`));
    }
    if (leaf.ingestRequests >= cfg.ingestInFlightMax) {
      leaf.metrics.ingestBatches.inc({ outcome: 'refused' });
      return sendError(reply, new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf has ${leaf.ingestRequests} ingest requests in flight, its limit; retry later`));
    }
    leaf.ingestRequests++;
    (req as { shoalAdmitted?: boolean }).shoalAdmitted = true;
  });
  const release = async (req: object) => {
    const r = req as { shoalAdmitted?: boolean };
    if (r.shoalAdmitted) { r.shoalAdmitted = false; leaf.ingestRequests--; }
  };
  app.addHook('onResponse', release);
  // A client that hangs up mid-upload gets no response: release its slot here.
  app.addHook('onRequestAbort', release);

  // The batch id of every admitted ingest request is in flight from its headers until its
  // answer is decided: onSend, which runs once the route has stored, refused or rejected it
  // (even when the client is gone) and for the error answer to an upload cut short (whose route
  // never runs). onRequestAbort and onResponse are backstops. Released once per request.
  const tracked = new WeakMap<object, string>();
  const untrack = async (req: object) => {
    const id = tracked.get(req);
    if (id === undefined) return;
    tracked.delete(req);
    leaf.batchesInFlight.end(id);
  };
  app.addHook('onRequest', async (req) => {
    if ((req as { shoalAdmitted?: boolean }).shoalAdmitted !== true) return;
    const id = ingestBatchId(req.headers['x-shoal-batch-id']);
    if (id === null) return;
    tracked.set(req, id);
    leaf.batchesInFlight.begin(id);
  });
  app.addHook('onSend', async (req) => { await untrack(req); });
  app.addHook('onRequestAbort', untrack);
  app.addHook('onResponse', untrack);

  app.post<{ Params: { table: string } }>('/v1/tables/:table/events', async (req, reply) => {
    requireToken(req, cfg.token, 'ingest');
    checkTableName(req.params.table);
    const format = bodyFormat(req.headers['content-type']);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const batchId = ingestBatchId(req.headers['x-shoal-batch-id']);
    try {
      const guard = parseIngestGuard(req.headers['x-shoal-deadline-ms'], req.headers['x-shoal-column-types']);
      // First deadline check: the body has been read (a hung or stopped leaf reads it late).
      if (guard.deadlineMs !== null && Date.now() > guard.deadlineMs) throw deadlineError(guard.deadlineMs, Date.now(), 'when the leaf read it');
      const r = await leaf.ingestBatch({ table: req.params.table, nowSeconds: Date.now() / 1000, format, body, batchId }, guard);
      leaf.metrics.ingestBatches.inc({ outcome: r.duplicate ? 'duplicate' : 'accepted' });
      return reply.send(r.duplicate ? { accepted: r.accepted, duplicate: true } : { accepted: r.accepted });
    } catch (e) {
      leaf.metrics.ingestBatches.inc({ outcome: e instanceof ShoalError && e.status === 503 ? 'refused' : 'rejected' });
      // A leaf that is going away asks the writer to drop the connection, so its next batch goes
      // out on a new one (to this leaf's successor or another leaf) instead of a socket that the
      // exit will reset.
      if (leaf.state !== 'serving') {
        reply.header('connection', 'close');
        // Refused because the leaf stopped serving while the batch was decoding: as the
        // admission hook says, a handing-off leaf never stores it (its commit checked the dedupe).
        if ((leaf.state === 'handing-off' || leaf.state === 'stopped') && batchId !== null && e instanceof ShoalError && e.code === 'SHOAL_ERR_UNAVAILABLE') reply.header(BATCH_STORED_HEADER, 'never');
      }
      throw e;
    }
  });

  // Does this leaf hold a batch id? Asked by an aggregator before it places a client's resend
  // that it did not place itself (docs/cluster.md, "Several aggregators"). A try of the id still
  // being received or stored here is waited for, at most LIMITS.batchLookupWaitMs. A leaf still
  // starting cannot say (its predecessor's batches are not in yet); handing off or stopped, what
  // it holds is final, so it answers.
  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (req) => {
    requireToken(req, cfg.token, 'batch lookups');
    if (leaf.state === 'starting') throw new ShoalError('SHOAL_ERR_UNAVAILABLE', 'leaf is starting and cannot yet say which batches it holds; retry');
    const batchId = ingestBatchId(req.params.id);
    if (batchId === null) throw new ShoalError('SHOAL_ERR_BAD_REQUEST', 'a batch id is 1-128 characters');
    await leaf.batchesInFlight.settled(batchId, LIMITS.batchLookupWaitMs);
    return { stored: leaf.store.duplicateRows(batchId), inFlight: leaf.batchesInFlight.has(batchId) };
  });

  app.post('/v1/query', async (req, reply) => {
    requireToken(req, cfg.token, 'query');
    const started = performance.now();
    const q = parseQueryRequest(req.body);
    try {
      // Planned once: here for a user's SQL, by the aggregator for a plan it sent (protocol.ts).
      const nowSeconds = q.nowSeconds ?? Date.now() / 1000;
      const planned = q.plan ?? sealPlan(planQuery(q.sql, nowSeconds), nowSeconds, q.sql);
      if (planned.plan.source !== undefined) {
        // FROM a subquery or the catalog: only a table plan is scanned; the rest runs here.
        if (q.partial) throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', 'a partial answer is for a table query; this query reads a subquery or the catalog');
        const { result, extra: s } = await runNested(planned.plan, nowSeconds, async (p) => {
          const part = await leaf.queryPartial(q, sealPlan(p, nowSeconds, q.sql));
          return { result: finish(p, part), extra: part.stats };
        }, async () => ({ tables: leaf.catalogTables(), extra: { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0 } }));
        leaf.metrics.queries.inc({ outcome: 'ok' });
        leaf.metrics.queryLatency.observe((performance.now() - started) / 1000);
        return reply.send({
          columns: result.columns, rows: apiRows(result.rows), coverage: leafCoverage(s, leaf.leafId),
          stats: { elapsedMs: Math.round((performance.now() - started) * 100) / 100, rowsMatched: s.rowsMatched, blocksScanned: s.blocksScanned, blocksSkipped: s.blocksSkipped, truncated: result.truncated },
        });
      }
      const env = planned;
      const part = await leaf.queryPartial(q, env);
      // The merge and the wire form are each one stretch of work on the event loop: a turn
      // between them lets health checks and ingest in (docs/engine.md, "Distinct by code").
      if (q.partial) await new Promise((r) => setImmediate(r));
      leaf.metrics.queries.inc({ outcome: 'ok' });
      leaf.metrics.queryLatency.observe((performance.now() - started) / 1000);
      // schemaVersion: the aggregator re-reads its column types when older; topn: merge/top-cut.ts.
      if (q.partial) return reply.send({ partial: partialToWire(cutForRequest(part, q.topn, env.plan, env.v), env.plan, env.v), protocol: env.v, planHash: env.hash, schemaVersion: leaf.store.schemaVersion });
      const result = finish(env.plan, part);
      const s = part.stats;
      return reply.send({
        columns: result.columns,
        rows: apiRows(result.rows),
        coverage: leafCoverage(s, leaf.leafId),
        stats: { elapsedMs: Math.round((performance.now() - started) * 100) / 100, rowsMatched: s.rowsMatched, blocksScanned: s.blocksScanned, blocksSkipped: s.blocksSkipped, truncated: result.truncated },
      });
    } catch (e) {
      leaf.metrics.queries.inc({ outcome: 'error' });
      throw e;
    }
  });

  app.get<{ Querystring: { columns?: string } }>('/v1/tables', async (req) => {
    requireToken(req, cfg.token, 'tables');
    // ?columns=1: each table's columns too (the aggregator's catalog, information_schema.columns).
    const withColumns = req.query.columns === '1';
    return { tables: [...leaf.store.tables.values()].map((t) => ({ name: t.name, rows: t.rowCount, bytes: t.byteSize, columns: t.schema.size, ...(withColumns ? { columnList: t.schemaList().map((c) => ({ name: c.name, type: c.type })) } : {}) })) };
  });

  app.get<{ Params: { table: string } }>('/v1/tables/:table', async (req) => {
    requireToken(req, cfg.token, 'tables');
    const t = leaf.store.tables.get(req.params.table);
    if (t === undefined) throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_TABLE', `table "${req.params.table}" does not exist`);
    return {
      name: t.name, rows: t.rowCount, bytes: t.byteSize, blocks: t.sealed.length + (t.open.rowCount > 0 ? 1 : 0),
      timeMin: Math.min(t.open.timeMin, ...t.sealed.map((b) => b.timeMin)),
      timeMax: Math.max(t.open.timeMax, ...t.sealed.map((b) => b.timeMax)),
      columns: t.schemaList(), evictedRows: t.evictedRows,
    };
  });

  app.get<{ Querystring: { schemaVersion?: string } }>('/v1/status', async (req) => {
    requireToken(req, cfg.token, 'status');
    const known = req.query.schemaVersion;
    return leaf.status(typeof known === 'string' ? known : null);
  });

  app.post('/v1/admin/handoff', async (req, reply) => {
    requireToken(req, cfg.adminToken, 'admin calls');
    if (leaf.onHandoff === null || leaf.state !== 'serving') throw new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf is ${leaf.state}; cannot hand off now`);
    const trigger = leaf.onHandoff;
    // Answer first: the handoff ends this process.
    reply.raw.once('finish', () => trigger('admin handoff'));
    return reply.send({ handingOff: true, via: cfg.shm ? 'shm' : 'disk', leafId: leaf.leafId, rows: leaf.store.rowCount() });
  });

  app.get('/healthz', async (_req, reply) => {
    // The pid lets a supervisor tell its own child from another process on the same port.
    if (leaf.state !== 'serving') return reply.code(503).send({ status: leaf.state, pid: process.pid, instanceId: PROCESS_INSTANCE_ID });
    // Serving queries: 200. A disk that refuses the log is detail, not an outage (writes go to
    // other leaves; this one still answers for the data it holds).
    const disk = leaf.diskStatus();
    if (disk.log && !disk.writable) return { status: 'serving', pid: process.pid, instanceId: PROCESS_INSTANCE_ID, ingest: 'refused', disk: disk.failure };
    return { status: 'serving', pid: process.pid, instanceId: PROCESS_INSTANCE_ID };
  });

  app.get('/metrics', async (req, reply) => {
    requireToken(req, cfg.token, 'metrics');
    leaf.metrics.rowsHeld.set(leaf.store.rowCount());
    leaf.metrics.bytesHeld.set(leaf.store.byteSize());
    leaf.metrics.evictedRows.set(leaf.store.evicted.rows);
    const disk = leaf.diskStatus();
    if (disk.log) {
      leaf.metrics.diskWritable.set(disk.writable ? 1 : 0);
      leaf.metrics.diskErrors.set(disk.errors);
      leaf.metrics.dataLossReports.set(disk.losses.length + disk.lossesDropped);
    }
    return reply.type(leaf.metrics.registry.contentType).send(await leaf.metrics.registry.metrics());
  });

  return app;
}
