/**
 * The tables of one leaf and the rules that keep them within bounds: table names, the number of
 * tables, the memory budget (oldest sealed blocks are dropped first, and counted) and the optional
 * maximum row age. Ingest validates a batch completely before it touches a table, so a rejected
 * batch leaves no trace. Durability hooks in through `beforeApply` (the disk log writes the
 * batch there; the batch is acknowledged only after it returns).
 */
import { randomBytes } from 'node:crypto';
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { firstValueRow, type ColumnarBatch } from './batch.js';
import type { BodyFormat } from './ingest-decoder.js';
import { decodeBody, type Decoded } from './ingest-scan.js';
import { Table, type BlockHome } from './table.js';
import type { ColumnType } from './types.js';

const TABLE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;

export function checkTableName(name: string): void {
  if (!TABLE_NAME.test(name) || Buffer.byteLength(name) > LIMITS.tableNameBytesMax) {
    throw new ShoalError('SHOAL_ERR_TABLE_NAME', `table name "${name.slice(0, 80)}" must be 1..${LIMITS.tableNameBytesMax} letters, digits, _ or - (not starting with -)`);
  }
}

export interface IngestRecord {
  table: string;
  nowSeconds: number;
  format: BodyFormat;
  body: Buffer;
  batchId: string | null;
}

export interface EvictionStats { rows: number; blocks: number }

/** What the router adds to a forwarded batch (docs/cluster.md): a deadline in this leaf's clock
 * (epoch ms) past which the batch must not be stored, and the cluster's types of columns. */
export interface IngestGuard {
  readonly deadlineMs: number | null;
  readonly columnTypes: ReadonlyMap<string, ColumnType> | null;
}

export function deadlineError(deadlineMs: number, nowMs: number, where: string): ShoalError {
  return new ShoalError('SHOAL_ERR_INGEST_DEADLINE', `the batch's deadline passed ${Math.round(nowMs - deadlineMs)} ms ${where}; not stored here (the router places it on another leaf)`);
}

const COLUMN_TYPES = new Set<string>(['int', 'float', 'string', 'bool', 'set', 'time']);
/** The schema of a table that does not exist yet. */
const TIME_ONLY: ReadonlyMap<string, { type: ColumnType }> = new Map([['time', { type: 'time' as const }]]);

/** Reads the guard from the router's headers: `x-shoal-deadline-ms` (epoch ms in the receiver's
 * clock) and `x-shoal-column-types` (JSON `{"column": "type"}`). A malformed one is the sender's
 * error (SHOAL_ERR_BAD_REQUEST). */
export function parseIngestGuard(deadlineHeader: unknown, typesHeader: unknown): IngestGuard {
  let deadlineMs: number | null = null;
  if (typeof deadlineHeader === 'string') {
    deadlineMs = Number(deadlineHeader);
    if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) {
      throw new ShoalError('SHOAL_ERR_BAD_REQUEST', `x-shoal-deadline-ms must be epoch milliseconds, got ${JSON.stringify(deadlineHeader.slice(0, 40))}`);
    }
  }
  let columnTypes: Map<string, ColumnType> | null = null;
  if (typeof typesHeader === 'string' && typesHeader.length > 0) {
    let parsed: unknown;
    try { parsed = JSON.parse(typesHeader); } catch { parsed = null; }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ShoalError('SHOAL_ERR_BAD_REQUEST', 'x-shoal-column-types must be a JSON object {"column": "type"}');
    }
    columnTypes = new Map();
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string' && COLUMN_TYPES.has(v)) columnTypes.set(k, v as ColumnType);
  }
  return { deadlineMs, columnTypes };
}

const numeric = (t: ColumnType) => t === 'int' || t === 'float';

/**
 * The table as a batch's decode saw it. A batch may be decoded on another thread while other
 * batches are applied; at commit, a schema that has moved since (a new column, int widened to
 * float, the table created or rebuilt) is checked again against the batch (LeafStore.commit).
 */
export interface SchemaSnapshot {
  readonly table: Table | undefined;
  /** table.schemaChanges when the snapshot was taken. */
  readonly changes: number;
  /** Column types the decode validates against (`time` included). */
  readonly schema: readonly (readonly [string, ColumnType])[];
}

/** Cumulative cost of the commit stages on this thread (the ingest stage counters of status). */
export interface CommitStages {
  /** Batches committed (stored), their rows, and those whose decode was redone here at commit. */
  batches: number;
  rows: number;
  redecodes: number;
  /** The decode of the stored batches (on whichever thread ran it): the fast scan (ingest-scan.ts),
   * or JSON.parse, then building columns, when the scan declined. */
  scanMs: number;
  parseMs: number;
  buildMs: number;
  /** Checks at commit: dedupe, schema, table limit, cluster types, deadline. */
  checkMs: number;
  /** The disk log's write of the record. */
  logMs: number;
  /** Appending the decoded columns to the table (sealing full blocks included). */
  appendMs: number;
}

/** A decode's result as it reaches the commit: the batch, or the error that ends the request. */
export type DecodeOutcome = Decoded | ShoalError;

export class LeafStore {
  readonly tables = new Map<string, Table>();
  readonly evicted: EvictionStats = { rows: 0, blocks: 0 };
  /** Ids of recently accepted batches: a retried batch whose first try was stored is not stored twice. */
  private readonly recentBatchIds = new Map<string, number>();
  static readonly BATCH_IDS_MAX = 100_000;
  /** Schema changes (tables created, columns added or widened) since this process started; with
   * the process's random epoch it makes `schemaVersion`, which status callers send back so the
   * column list is sent only when it changed. */
  private schemaChanges = 0;
  private readonly schemaEpoch = randomBytes(4).toString('hex');
  /** Where tables created from now on put their sealed blocks (null: the heap). */
  home: BlockHome | null = null;

  constructor(
    public memoryBudgetBytes: number,
    public retentionSeconds: number | null = null,
  ) {}

  /** Commit stage costs, for status (see CommitStages). */
  readonly stages: CommitStages = { batches: 0, rows: 0, redecodes: 0, scanMs: 0, parseMs: 0, buildMs: 0, checkMs: 0, logMs: 0, appendMs: 0 };

  /** Decodes and validates a batch against the table's current schema, without storing it. */
  decode(rec: IngestRecord): { batch: ColumnarBatch; table: Table | undefined } {
    checkTableName(rec.table);
    const table = this.tables.get(rec.table);
    const { batch } = decodeBody(rec.body, rec.format, table?.schema ?? TIME_ONLY, rec.nowSeconds);
    this.checkTableLimit(batch, table);
    return { batch, table };
  }

  private checkTableLimit(batch: ColumnarBatch, table: Table | undefined): void {
    if (table === undefined && batch.rowCount > 0 && this.tables.size >= LIMITS.tablesPerLeafMax) {
      throw new ShoalError('SHOAL_ERR_TABLE_LIMIT', `this leaf holds ${this.tables.size} tables, the limit`);
    }
  }

  /** The schema a decode of a batch for `table` starts from (see SchemaSnapshot). */
  snapshot(table: string): SchemaSnapshot {
    const t = this.tables.get(table);
    if (t === undefined) return { table: undefined, changes: 0, schema: [['time', 'time']] };
    return { table: t, changes: t.schemaChanges, schema: [...t.schema.values()].map((c) => [c.name, c.type] as const) };
  }

  /**
   * The durable ingest of one batch, decoded here: a retry of a stored batch id answers as the
   * first time did; otherwise the batch is decoded and validated whole, handed to `log` (the
   * disk log, which throws to refuse it: then nothing is applied), and only then applied.
   */
  ingest(rec: IngestRecord, log: ((rec: IngestRecord, rows: number) => void) | null, guard: IngestGuard | null = null): { accepted: number; duplicate: boolean } {
    const dup = this.duplicateRows(rec.batchId);
    if (dup !== null) return { accepted: dup, duplicate: true };
    checkTableName(rec.table);
    const snap = this.snapshot(rec.table);
    let outcome: DecodeOutcome;
    try {
      outcome = decodeBody(rec.body, rec.format, snap.table?.schema ?? TIME_ONLY, rec.nowSeconds);
    } catch (e) {
      if (!(e instanceof ShoalError)) throw e;
      outcome = e;
    }
    return this.commit(rec, outcome, snap, log, guard);
  }

  /**
   * Stores a batch decoded against `snap` (here or on an ingest worker thread), synchronously:
   * nothing else runs between its checks, its log write and its append, so the dedupe check
   * and the id's record, the deadline check and the log write, and the schema the batch is
   * checked against and the one it is applied to, are each one step for every other batch.
   *
   * Order: a stored batch id answers as the first time did; a schema that moved since the decode
   * is checked again (a conflict, or a decode error that a newer column might come before, is
   * decoded again here against the current schema, so the error is exactly the one a decode now
   * gives); the decode's error; the table limit; the cluster's column types; the deadline; the
   * log (which throws to refuse the batch); the append.
   */
  commit(rec: IngestRecord, outcome: DecodeOutcome, snap: SchemaSnapshot, log: ((rec: IngestRecord, rows: number) => void) | null,
    guard: IngestGuard | null = null): { accepted: number; duplicate: boolean } {
    const t0 = performance.now();
    const dup = this.duplicateRows(rec.batchId);
    if (dup !== null) return { accepted: dup, duplicate: true };
    const table = this.tables.get(rec.table);
    const moved = snap.table !== table || (table !== undefined && table.schemaChanges !== snap.changes);
    let decoded: Decoded;
    if (moved && (outcome instanceof ShoalError || !this.fits(outcome.batch, table))) {
      this.stages.redecodes++;
      decoded = decodeBody(rec.body, rec.format, table?.schema ?? TIME_ONLY, rec.nowSeconds);
    } else if (outcome instanceof ShoalError) {
      throw outcome;
    } else {
      decoded = outcome;
    }
    const batch = decoded.batch;
    this.checkTableLimit(batch, table);
    if (guard?.columnTypes) this.checkClusterTypes(batch, table, guard.columnTypes);
    // The last check before the batch is logged and applied (synchronously, nothing runs in
    // between): past the deadline, the router may already have placed it elsewhere.
    const nowMs = Date.now();
    if (guard?.deadlineMs != null && nowMs > guard.deadlineMs) throw deadlineError(guard.deadlineMs, nowMs, 'before it was logged');
    const t1 = performance.now();
    if (batch.rowCount > 0 && log !== null) log(rec, batch.rowCount);
    const t2 = performance.now();
    const accepted = this.apply(rec, batch);
    const st = this.stages;
    st.batches++;
    st.rows += accepted;
    st.scanMs += decoded.scanMs;
    st.parseMs += decoded.parseMs;
    st.buildMs += decoded.buildMs;
    st.checkMs += t1 - t0 - (decoded === outcome ? 0 : decoded.scanMs + decoded.parseMs + decoded.buildMs);
    st.logMs += t2 - t1;
    st.appendMs += performance.now() - t2;
    return { accepted, duplicate: false };
  }

  /** Whether a batch decoded against an older schema is exactly what a decode against the
   * table's current one gives: every column new or of a compatible type, within the limit. */
  private fits(batch: ColumnarBatch, table: Table | undefined): boolean {
    let added = 0;
    for (const [name, col] of batch.columns) {
      const t = table?.schema.get(name)?.type;
      if (t === undefined) { added++; continue; }
      if (t !== col.type && !(numeric(t) && numeric(col.type))) return false;
    }
    return (table?.schema.size ?? 1) + added <= LIMITS.columnsPerTableMax;
  }

  /** One schema per cluster: a column this table does not have yet must take the type the
   * cluster gave it (int and float are compatible). Columns the table has were checked by decode. */
  private checkClusterTypes(batch: ColumnarBatch, table: Table | undefined, types: ReadonlyMap<string, ColumnType>): void {
    for (const [name, col] of batch.columns) {
      if (table?.schema.has(name)) continue;
      const want = types.get(name);
      if (want === undefined || want === col.type || (numeric(want) && numeric(col.type))) continue;
      const row = firstValueRow(col);
      throw new ShoalError('SHOAL_ERR_INGEST_TYPE_CONFLICT',
        `row ${row}, column "${name}": value of type ${col.type} conflicts with the column's type ${want} in the cluster`, { row, column: name });
    }
  }

  /** Changes whenever a table or column appears or a column widens (see schemaChanges). */
  get schemaVersion(): string { return `${this.schemaEpoch}.${this.schemaChanges}`; }

  /** Rows the batch with this id was stored with, or null when it is not a known duplicate. */
  duplicateRows(batchId: string | null): number | null {
    if (batchId === null) return null;
    return this.recentBatchIds.get(batchId) ?? null;
  }

  /** Stores a decoded batch (the caller has made it durable first), from row `start` on (crash
   * recovery: the rows before it are in a block taken from shared memory). */
  apply(rec: IngestRecord, batch: ColumnarBatch, start = 0): number {
    if (batch.rowCount === 0) return 0;
    let table = this.tables.get(rec.table);
    if (table === undefined) {
      table = this.createTable(rec.table);
      this.schemaChanges++;
    }
    const changesBefore = table.schemaChanges;
    table.append(batch, start);
    if (table.schemaChanges !== changesBefore) this.schemaChanges++;
    if (rec.batchId !== null) this.rememberBatchIds([[rec.batchId, batch.rowCount]]);
    this.enforceBudget();
    return batch.rowCount - start;
  }

  /** A new, empty table that puts its sealed blocks in this store's home (not yet listed when
   * `list` is false: a restore builds tables aside and lists them once they are complete). */
  createTable(name: string, list = true): Table {
    const table = new Table(name, this.home);
    if (list) this.tables.set(name, table);
    return table;
  }

  /** The most recent batch ids with their row counts (newest last), saved with checkpoints and handoffs. */
  recentBatchIdList(max: number): [string, number][] {
    const ids = [...this.recentBatchIds.entries()];
    return ids.slice(Math.max(0, ids.length - max));
  }

  rememberBatchIds(ids: readonly (readonly [string, number])[]): void {
    for (const [id, rows] of ids) {
      this.recentBatchIds.set(id, rows);
      if (this.recentBatchIds.size > LeafStore.BATCH_IDS_MAX) this.recentBatchIds.delete(this.recentBatchIds.keys().next().value!);
    }
  }

  rowCount(): number { let n = 0; for (const t of this.tables.values()) n += t.rowCount; return n; }
  byteSize(): number { let n = 0; for (const t of this.tables.values()) n += t.byteSize; return n; }

  /** Bytes the scans' string codes hold (query/storage/string-codes.ts), set by the leaf. They
   * count in the memory budget beside the data: more of them leaves room for fewer blocks. */
  cacheBytes: () => number = () => 0;

  /** Drops the oldest sealed blocks (across tables) until the data fits the budget. */
  enforceBudget(): void {
    let bytes = this.byteSize() + this.cacheBytes();
    while (bytes > this.memoryBudgetBytes) {
      let victim: Table | null = null;
      for (const t of this.tables.values()) {
        if (t.sealed.length === 0) continue;
        const oldest = Math.min(...t.sealed.map((b) => b.timeMax));
        if (victim === null || oldest < Math.min(...victim.sealed.map((b) => b.timeMax))) victim = t;
      }
      if (victim === null) return; // only open blocks left: the ingest path refuses new writes
      const block = victim.evictOldest()!;
      victim.noteEviction(block);
      this.evicted.rows += block.rowCount;
      this.evicted.blocks++;
      bytes -= block.byteSize;
    }
  }

  /** Drops sealed blocks whose newest row is older than the retention age. */
  enforceRetention(nowSeconds: number): void {
    if (this.retentionSeconds === null) return;
    const cutoff = nowSeconds - this.retentionSeconds;
    for (const t of this.tables.values()) {
      for (;;) {
        const at = t.sealed.findIndex((b) => b.timeMax < cutoff);
        if (at < 0) break;
        const dropped = t.drop(at);
        this.evicted.rows += dropped.rowCount;
        this.evicted.blocks++;
      }
    }
  }

  /** True when the leaf cannot take more rows without going over its budget (open blocks only). */
  overBudget(): boolean { return this.byteSize() + this.cacheBytes() > this.memoryBudgetBytes; }
}
