/**
 * A table on one leaf: its schema, its sealed row blocks and its one open block.
 *
 * Appends go to the open block; when it reaches LIMITS.blockRowsMax rows (or is sealed on
 * demand: age, handoff, checkpoint) it becomes an immutable SealedBlock with narrowed,
 * SharedArrayBuffer-backed columns. Schema changes are additive: a new field adds a column
 * (null in older rows); an int column that receives a non-integer becomes float.
 *
 * Not here: decoding or validating batches (ingest-decoder.ts), durability (server/), scans.
 */
import { assert } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { ColumnarBatch } from './batch.js';
import { newBuilder, type ColumnBuilder } from './column-builder.js';
import { threadCodes } from './string-codes.js';
import type { BlockData, ColumnData, ColumnType } from './types.js';
import { columnByteSize, physicalKind, sharedArray } from './types.js';

export interface ColumnSchema { readonly name: string; type: ColumnType }

/**
 * Where sealed blocks live. Without one they stay on the heap (SharedArrayBuffers); the leaf
 * process installs server/durability/shm-blocks.ts, which moves each block into its own
 * shared-memory segment the moment it is sealed, so a planned restart has nothing to copy.
 * Storage knows nothing of segments: it only hands every new sealed block over and says when a
 * table lets one go.
 */
export interface BlockHome {
  /** A block just sealed (its rows are the last `block.rowCount` of `table.appendedRows`);
   * returns the block the table keeps (the same one when it cannot be moved). */
  place(table: Table, block: SealedBlock): SealedBlock;
  /** A block the table no longer holds (evicted, dropped by retention). */
  release(block: SealedBlock): void;
}

/** What a scan needs of a block, whether sealed (shared buffers) or open (builders in place). */
export interface ScanBlock {
  readonly id: number;
  readonly rowCount: number;
  readonly timeMin: number;
  readonly timeMax: number;
  column(name: string): ColumnData | undefined;
  /** Dictionary of a string or set column as JS strings (built on each call: cache the result). */
  strings(name: string): readonly string[];
  /** Dictionary entry -> this thread's string code (string-codes.ts), null for other columns. */
  codeMap(name: string): Int32Array | null;
  /** Dictionary entry -> the leaf's string code, when a scan worker's task gave it (`leafSpace`). */
  leafCodes?(name: string): Int32Array | null;
}

let nextBlockId = 1;
export function allocateBlockId(): number { return nextBlockId++; }

/** Ids of the blocks tables dropped lately (newest last, at most DROP_LOG_MAX) and how many were
 * ever dropped: the scan pool sends them to its workers, which forget their copies. */
export const dropLog = { seq: 0, ids: [] as number[] };
const DROP_LOG_MAX = 4096;
function logDrop(id: number): void {
  dropLog.seq++;
  dropLog.ids.push(id);
  if (dropLog.ids.length > DROP_LOG_MAX) dropLog.ids.splice(0, dropLog.ids.length - DROP_LOG_MAX);
}

/** What is known of a block without decoding its columns (a restore's meta carries it). */
export interface BlockSummary { readonly id: number; readonly rowCount: number; readonly timeMin: number; readonly timeMax: number; readonly byteSize: number }

export class SealedBlock implements ScanBlock {
  readonly byteSize: number;
  readonly id: number;
  readonly rowCount: number;
  readonly timeMin: number;
  readonly timeMax: number;
  /** Code maps of this block's string and set columns, for threadCodes' `generation`. */
  private maps = new Map<string, Int32Array>();
  private mapsGeneration = 0;
  private decoded: BlockData | null;
  private decode: (() => BlockData) | null = null;

  constructor(data: BlockData);
  constructor(data: null, lazy: { summary: BlockSummary; decode: () => BlockData });
  constructor(data: BlockData | null, lazy?: { summary: BlockSummary; decode: () => BlockData }) {
    if (data !== null) {
      let bytes = 0;
      for (const c of Object.values(data.columns)) bytes += columnByteSize(c);
      this.byteSize = bytes;
      this.decoded = data;
      this.id = data.id;
      this.rowCount = data.rowCount;
      this.timeMin = data.timeMin;
      this.timeMax = data.timeMax;
      return;
    }
    const { summary, decode } = lazy!;
    this.byteSize = summary.byteSize;
    this.decoded = null;
    this.id = summary.id;
    this.rowCount = summary.rowCount;
    this.timeMin = summary.timeMin;
    this.timeMax = summary.timeMax;
    this.decode = () => {
      const d = decode();
      let bytes = 0;
      for (const c of Object.values(d.columns)) bytes += columnByteSize(c);
      if (d.rowCount !== summary.rowCount || d.timeMin !== summary.timeMin || d.timeMax !== summary.timeMax || bytes !== summary.byteSize) {
        throw new Error(`block ${summary.id}: its image (${d.rowCount} rows, ${bytes} bytes) does not match what the handoff recorded (${summary.rowCount} rows, ${summary.byteSize} bytes)`);
      }
      return { ...d, id: summary.id };
    };
  }

  /**
   * A block whose columns are decoded on first use. A shared-memory restore makes its blocks
   * this way: decoding an image's header (JSON) and its views cost ~30 us a block, most of a
   * restore's time per block, and the table needs only the summary to serve (time pruning, row
   * counts, memory). `decode` must produce data matching `summary`; a mismatch is an error of
   * that block's first use, never a silently different block.
   */
  static lazy(summary: BlockSummary, decode: () => BlockData): SealedBlock { return new SealedBlock(null, { summary, decode }); }

  /** The columns (decoded now if this block was restored lazily). */
  get data(): BlockData {
    if (this.decoded === null) {
      this.decoded = this.decode!();
      this.decode = null;
    }
    return this.decoded;
  }

  /** Whether the columns have been decoded (a lazily restored block's first use decodes them). */
  get isDecoded(): boolean { return this.decoded !== null; }

  column(name: string): ColumnData | undefined { return this.data.columns[name]; }

  codeMap(name: string): Int32Array | null {
    if (this.mapsGeneration !== threadCodes.generation) { this.maps.clear(); this.mapsGeneration = threadCodes.generation; }
    let m = this.maps.get(name);
    if (m === undefined) {
      const c = this.data.columns[name];
      if (c === undefined || (c.kind !== 'string' && c.kind !== 'set')) return null;
      m = threadCodes.mapDict(c.dict);
      this.maps.set(name, m);
    }
    return m;
  }

  /** The code map of a column if this thread already made it in its table's generation (the
   * leaf's main thread hands these to scan workers; none is made here). */
  readyCodeMap(name: string): Int32Array | null {
    return this.mapsGeneration === threadCodes.generation ? this.maps.get(name) ?? null : null;
  }

  /** In a scan worker, the leaf's code maps of the current task's columns (set per task). */
  leafMaps: Readonly<Record<string, Int32Array>> | null = null;
  leafCodes(name: string): Int32Array | null { return this.leafMaps?.[name] ?? null; }

  /** Lets go of this block's code maps, and takes their bytes off the thread's count. */
  forgetCodes(): void {
    if (this.mapsGeneration === threadCodes.generation) for (const m of this.maps.values()) threadCodes.mapBytes -= m.byteLength;
    this.maps.clear();
  }

  strings(name: string): readonly string[] {
    const m = this.codeMap(name);
    if (m === null) return [];
    const out: string[] = new Array(m.length);
    for (let i = 0; i < m.length; i++) out[i] = threadCodes.stringAt(m[i]!);
    return out;
  }
}

export class OpenBlock implements ScanBlock {
  readonly id = allocateBlockId();
  rowCount = 0;
  timeMin = Infinity;
  timeMax = -Infinity;
  readonly createdAtMs = Date.now();
  time = new Float64Array(1024);
  readonly builders = new Map<string, ColumnBuilder>();

  column(name: string): ColumnData | undefined {
    if (name === 'time') return { kind: 'number', values: this.time.subarray(0, this.rowCount), validity: null };
    return this.builders.get(name)?.view(this.rowCount);
  }

  strings(name: string): readonly string[] { return this.builders.get(name)?.strings() ?? []; }

  /** Open dictionaries only grow: a map is extended by the entries added since it was built. */
  private maps = new Map<string, { generation: number; map: Int32Array; length: number }>();
  codeMap(name: string): Int32Array | null {
    const b = this.builders.get(name);
    if (b === undefined || (b.kind !== 'string' && b.kind !== 'set')) return null;
    const dict = b.strings();
    let m = this.maps.get(name);
    if (m === undefined || m.generation !== threadCodes.generation) m = { generation: threadCodes.generation, map: new Int32Array(Math.max(16, dict.length)), length: 0 };
    if (m.length < dict.length) {
      if (m.map.length < dict.length) { const next = new Int32Array(Math.max(dict.length, m.map.length * 2)); next.set(m.map.subarray(0, m.length)); m.map = next; }
      for (let i = m.length; i < dict.length; i++) m.map[i] = threadCodes.codeOf(dict[i]!);
      m.length = dict.length;
    }
    this.maps.set(name, m);
    return m.map.subarray(0, m.length);
  }

  /** Appends rows [from, to) of the batch; the caller keeps the block within blockRowsMax. */
  append(batch: ColumnarBatch, schema: ReadonlyMap<string, ColumnSchema>, from: number, to: number): void {
    assert(this.rowCount + (to - from) <= LIMITS.blockRowsMax, 'open block overflow');
    const start = this.rowCount;
    if (this.time.length < start + (to - from)) {
      const next = new Float64Array(Math.min(LIMITS.blockRowsMax, Math.max(this.time.length * 2, start + (to - from))));
      next.set(this.time.subarray(0, start));
      this.time = next;
    }
    for (let i = from, r = start; i < to; i++, r++) {
      const t = batch.time[i]!;
      this.time[r] = t;
      if (t < this.timeMin) this.timeMin = t;
      if (t > this.timeMax) this.timeMax = t;
    }
    for (const [name, col] of batch.columns) {
      let b = this.builders.get(name);
      if (b === undefined) {
        const kind = physicalKind(schema.get(name)!.type);
        b = newBuilder(kind);
        if (start > 0) b.append(0, undefined, 0, start);
        this.builders.set(name, b);
      }
      b.append(start, col, from, to);
    }
    // Columns of the block that this batch lacks get nulls.
    for (const [name, b] of this.builders) if (!batch.columns.has(name)) b.append(start, undefined, from, to);
    this.rowCount = start + (to - from);
  }

  seal(): SealedBlock {
    const columns: Record<string, ColumnData> = {};
    const time = sharedArray(Float64Array, this.rowCount);
    time.set(this.time.subarray(0, this.rowCount));
    // Time is narrowed like any number column when every value is a whole int32 second.
    let int32 = true;
    for (let i = 0; i < time.length; i++) if ((time[i]! | 0) !== time[i]) { int32 = false; break; }
    if (int32) {
      const t32 = sharedArray(Int32Array, this.rowCount);
      for (let i = 0; i < time.length; i++) t32[i] = time[i]!;
      columns['time'] = { kind: 'number', values: t32, validity: null };
    } else {
      columns['time'] = { kind: 'number', values: time, validity: null };
    }
    for (const [name, b] of this.builders) columns[name] = b.seal(this.rowCount);
    return new SealedBlock({ id: this.id, rowCount: this.rowCount, timeMin: this.timeMin, timeMax: this.timeMax, columns });
  }

  /** Approximate bytes held (capacity, not length: that is what the heap pays). */
  byteSize(): number {
    let bytes = this.time.byteLength;
    for (const b of this.builders.values()) {
      const v = b.view(this.rowCount);
      bytes += columnByteSize(v);
    }
    return bytes;
  }
}

/** Rows the memory budget dropped from a table, and the time range they covered (one evicted
 * block, or several merged once the log is full). */
export interface EvictedRange { timeMin: number; timeMax: number; rowCount: number }

export class Table {
  readonly schema = new Map<string, ColumnSchema>([['time', { name: 'time', type: 'time' }]]);
  sealed: SealedBlock[] = [];
  open = new OpenBlock();
  /** Rows dropped by retention (memory budget or max age), for status and metrics. */
  evictedRows = 0;
  evictedBlocks = 0;
  /** Memory-budget evictions by time range, sorted by timeMin, at most
   * LIMITS.evictionRangesPerTableMax entries (the oldest merge first). Retention drops are not
   * logged: rows past the retention age are gone by policy, not missing from an answer. */
  evictionLog: EvictedRange[] = [];
  /** Columns added or widened by append() (the leaf's schemaVersion moves with it). */
  schemaChanges = 0;
  /** Rows ever passed to append() on this object, in order: the open block holds the last ones.
   * Crash recovery's seal records count rows with it (server/durability/seal-count.ts). */
  appendedRows = 0;
  private sealedRowCount = 0;
  private sealedByteSize = 0;

  constructor(readonly name: string, readonly home: BlockHome | null = null) {}

  get rowCount(): number { return this.sealedRowCount + this.open.rowCount; }
  get byteSize(): number { return this.sealedByteSize + this.open.byteSize(); }

  /** Applies the schema changes a validated batch carries, then appends its rows from `start` on
   * (crash recovery skips the rows a block it took from shared memory already holds). */
  append(batch: ColumnarBatch, start = 0): void {
    this.mergeSchema([...batch.columns].map(([name, col]) => [name, col.type]));
    let from = start;
    while (from < batch.rowCount) {
      const room = LIMITS.blockRowsMax - this.open.rowCount;
      const to = Math.min(batch.rowCount, from + room);
      this.open.append(batch, this.schema, from, to);
      this.appendedRows += to - from;
      from = to;
      if (this.open.rowCount >= LIMITS.blockRowsMax) this.sealOpen();
    }
  }

  /** Adds columns this table lacks and widens int to float where `columns` says so. */
  mergeSchema(columns: Iterable<readonly [string, ColumnType]>): void {
    for (const [name, type] of columns) {
      const existing = this.schema.get(name);
      if (existing === undefined) { this.schema.set(name, { name, type }); this.schemaChanges++; }
      else if (existing.type === 'int' && type === 'float') { existing.type = 'float'; this.schemaChanges++; }
    }
  }

  /** Seals the open block if it has rows. Returns the new sealed block, if any. */
  sealOpen(): SealedBlock | null {
    if (this.open.rowCount === 0) return null;
    const sealed = this.open.seal();
    const block = this.home === null ? sealed : this.home.place(this, sealed);
    this.addSealed(block);
    this.open = new OpenBlock();
    return block;
  }

  addSealed(block: SealedBlock): void {
    this.sealed.push(block);
    this.sealedRowCount += block.rowCount;
    this.sealedByteSize += block.byteSize;
  }

  /** Drops the oldest sealed block (by max time); returns it, or null when none is sealed. */
  evictOldest(): SealedBlock | null {
    if (this.sealed.length === 0) return null;
    let oldest = 0;
    for (let i = 1; i < this.sealed.length; i++) if (this.sealed[i]!.timeMax < this.sealed[oldest]!.timeMax) oldest = i;
    return this.drop(oldest);
  }

  /** Drops sealed block `index`, counted as evicted, and lets its home free it. */
  drop(index: number): SealedBlock {
    const [block] = this.sealed.splice(index, 1);
    this.sealedRowCount -= block!.rowCount;
    this.sealedByteSize -= block!.byteSize;
    this.evictedRows += block!.rowCount;
    this.evictedBlocks++;
    this.home?.release(block!);
    block!.forgetCodes();
    logDrop(block!.id);
    return block!;
  }

  /** Logs a block the memory budget dropped (see evictionLog). */
  noteEviction(block: { timeMin: number; timeMax: number; rowCount: number }): void {
    const log = this.evictionLog;
    let at = log.length;
    while (at > 0 && log[at - 1]!.timeMin > block.timeMin) at--;
    log.splice(at, 0, { timeMin: block.timeMin, timeMax: block.timeMax, rowCount: block.rowCount });
    while (log.length > LIMITS.evictionRangesPerTableMax) {
      const [a, b] = log.splice(0, 2) as [EvictedRange, EvictedRange];
      log.unshift({ timeMin: Math.min(a.timeMin, b.timeMin), timeMax: Math.max(a.timeMax, b.timeMax), rowCount: a.rowCount + b.rowCount });
    }
  }

  /** Rows the memory budget dropped whose time lies in [min, max]. A logged range that only
   * overlaps the interval counts in proportion to the overlap (rows assumed spread evenly),
   * rounded up, so any overlap of positive width counts at least one row. */
  evictedRowsIn(min: number, max: number): number {
    let rows = 0;
    for (const e of this.evictionLog) {
      if (e.timeMax < min || e.timeMin > max) continue;
      if (e.timeMin >= min && e.timeMax <= max) { rows += e.rowCount; continue; }
      const width = e.timeMax - e.timeMin;
      const overlap = Math.min(max, e.timeMax) - Math.max(min, e.timeMin);
      rows += width > 0 ? Math.ceil((e.rowCount * overlap) / width) : e.rowCount;
    }
    return rows;
  }

  /** Every block a scan should visit: sealed ones and the open one when it has rows. */
  blocks(): ScanBlock[] {
    return this.open.rowCount > 0 ? [...this.sealed, this.open] : [...this.sealed];
  }

  schemaList(): ColumnSchema[] { return [...this.schema.values()].map((c) => ({ ...c })); }
}
