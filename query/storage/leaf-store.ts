/**
 * The tables of one leaf and the rules that keep them within bounds: table names, the number of
 * tables, the memory budget (oldest sealed blocks are dropped first, and counted) and the optional
 * maximum row age. Ingest validates a batch completely before it touches a table, so a rejected
 * batch leaves no trace. Durability hooks in through `beforeApply` (the disk log writes the
 * batch there; the batch is acknowledged only after it returns).
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { ColumnarBatch } from './batch.js';
import { buildBatch, parseBody, type BodyFormat } from './ingest-decoder.js';
import { Table } from './table.js';

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

export class LeafStore {
  readonly tables = new Map<string, Table>();
  readonly evicted: EvictionStats = { rows: 0, blocks: 0 };
  /** Ids of recently accepted batches: a retried batch whose first try was stored is not stored twice. */
  private readonly recentBatchIds = new Map<string, number>();
  static readonly BATCH_IDS_MAX = 100_000;

  constructor(
    public memoryBudgetBytes: number,
    public retentionSeconds: number | null = null,
  ) {}

  /** Decodes and validates a batch against the table's schema, without storing it. */
  decode(rec: IngestRecord): { batch: ColumnarBatch; table: Table | undefined } {
    checkTableName(rec.table);
    const table = this.tables.get(rec.table);
    const { events, lines } = parseBody(rec.body, rec.format);
    const schema = table?.schema ?? new Map([['time', { type: 'time' as const }]]);
    const batch = buildBatch(events, schema, rec.nowSeconds, lines);
    if (table === undefined && batch.rowCount > 0 && this.tables.size >= LIMITS.tablesPerLeafMax) {
      throw new ShoalError('SHOAL_ERR_TABLE_LIMIT', `this leaf holds ${this.tables.size} tables, the limit`);
    }
    return { batch, table };
  }

  /**
   * The durable ingest of one batch: a retry of a stored batch id answers as the first time
   * did; otherwise the batch is decoded and validated whole, handed to `log` (the disk log,
   * which throws to refuse it: then nothing is applied), and only then applied.
   */
  ingest(rec: IngestRecord, log: ((rec: IngestRecord, rows: number) => void) | null): { accepted: number; duplicate: boolean } {
    const dup = this.duplicateRows(rec.batchId);
    if (dup !== null) return { accepted: dup, duplicate: true };
    const { batch } = this.decode(rec);
    if (batch.rowCount > 0 && log !== null) log(rec, batch.rowCount);
    return { accepted: this.apply(rec, batch), duplicate: false };
  }

  /** Rows the batch with this id was stored with, or null when it is not a known duplicate. */
  duplicateRows(batchId: string | null): number | null {
    if (batchId === null) return null;
    return this.recentBatchIds.get(batchId) ?? null;
  }

  /** Stores a decoded batch (the caller has made it durable first). */
  apply(rec: IngestRecord, batch: ColumnarBatch): number {
    if (batch.rowCount === 0) return 0;
    let table = this.tables.get(rec.table);
    if (table === undefined) {
      table = new Table(rec.table);
      this.tables.set(rec.table, table);
    }
    table.append(batch);
    if (rec.batchId !== null) {
      this.recentBatchIds.set(rec.batchId, batch.rowCount);
      if (this.recentBatchIds.size > LeafStore.BATCH_IDS_MAX) this.recentBatchIds.delete(this.recentBatchIds.keys().next().value!);
    }
    this.enforceBudget();
    return batch.rowCount;
  }

  /** The most recent batch ids with their row counts (newest last), saved with checkpoints and handoffs. */
  recentBatchIdList(max: number): [string, number][] {
    const ids = [...this.recentBatchIds.entries()];
    return ids.slice(Math.max(0, ids.length - max));
  }

  rememberBatchIds(ids: readonly (readonly [string, number])[]): void {
    for (const [id, rows] of ids) this.recentBatchIds.set(id, rows);
  }

  rowCount(): number { let n = 0; for (const t of this.tables.values()) n += t.rowCount; return n; }
  byteSize(): number { let n = 0; for (const t of this.tables.values()) n += t.byteSize; return n; }

  /** Drops the oldest sealed blocks (across tables) until the data fits the budget. */
  enforceBudget(): void {
    let bytes = this.byteSize();
    while (bytes > this.memoryBudgetBytes) {
      let victim: Table | null = null;
      for (const t of this.tables.values()) {
        if (t.sealed.length === 0) continue;
        const oldest = Math.min(...t.sealed.map((b) => b.timeMax));
        if (victim === null || oldest < Math.min(...victim.sealed.map((b) => b.timeMax))) victim = t;
      }
      if (victim === null) return; // only open blocks left: the ingest path refuses new writes
      const block = victim.evictOldest()!;
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
        const old = t.sealed.find((b) => b.timeMax < cutoff);
        if (!old) break;
        t.sealed.splice(t.sealed.indexOf(old), 1);
        t.sealed.push(old);
        const dropped = t.evictOldest();
        if (!dropped) break;
        this.evicted.rows += dropped.rowCount;
        this.evicted.blocks++;
      }
    }
  }

  /** True when the leaf cannot take more rows without going over its budget (open blocks only). */
  overBudget(): boolean { return this.byteSize() > this.memoryBudgetBytes; }
}
