/**
 * A leaf's on-disk copy: the write-ahead log (disk-log.ts) plus checkpoints of sealed blocks,
 * and recovery from them after a crash. Every file-system call goes through `DurableFs`.
 *
 * Checkpoint: rotate the log to a new segment S, seal every open block (so every row logged
 * before S is in a sealed block), write each sealed block not yet on disk as a block image file
 * (block-codec.ts) with its CRC-32C (fdatasync each, then fsync the directory), then atomically
 * replace manifest.json (tmp + fdatasync + rename + fsync of the directory) with the list of live
 * block files, `walStart = S` and every data loss found so far, then move damaged log segments
 * before S aside (damaged/), delete the other segments before S and block files no longer listed.
 * A crash at any point leaves either the old manifest with the old log, or the new one with the
 * new log: both complete.
 *
 * Recovery: read the manifest, read each block file (verified against its CRC), replay log
 * segments from walStart through the normal ingest decoder. Only the tail of the last segment may
 * be cut as a torn write (nothing after it was ever acknowledged). Any other damage is data loss:
 * every readable record past it is still replayed, the damaged file is kept aside (never deleted),
 * and the loss (where, batches, rows) goes into `restart.reason`, `GET /v1/status`, the log at
 * error level, and every later manifest, so no checkpoint erases the report.
 */
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { crc32c } from '../../native/shm.js';
import { decodeBlock, encodeBlock } from '../../query/storage/block-codec.js';
import { allocateBlockId, SealedBlock, Table } from '../../query/storage/table.js';
import type { ColumnType } from '../../query/storage/types.js';
import { DiskLog, listSegments, readSegment, segmentName, type LogFailure } from './disk-log.js';
import { planSeals, readRecords, type IndexedRecord, type SealPlan } from './log-index.js';
import { SealCount, type SealState } from './seal-count.js';
import { realFs, writeFileDurable, type DurableFs } from './durable-fs.js';
import type { SegmentRef, ShmBlockHome } from './shm-blocks.js';
import type { IngestRecord, LeafStore } from '../../query/storage/leaf-store.js';

export const MANIFEST_VERSION = 1;
/** Batch ids kept across restarts for duplicate detection. */
const BATCH_IDS_SAVED_MAX = 20_000;
/** Data-loss reports kept in the manifest (oldest dropped first, and counted). Each is a few
 * hundred bytes; a leaf with more than this many separate damages has a disk to replace. */
const LOSSES_KEPT_MAX = 256;
/** Blocks whose shared-memory copy was refused that recovery logs one by one (the rest: a count). */
/** Consecutive records replay reads at once (one read(2); a segment is at most 64 MiB). */
const REPLAY_RUN_RECORDS_MAX = 4096;

const badSealsNote = (n: number, count: number) => `log ${segmentName(n)}: ${count} damaged seal ${count === 1 ? 'record' : 'records'} skipped (a hint for crash recovery: no rows lost; their blocks' rows were replayed)`;

const SHM_REFUSALS_LOGGED_MAX = 20;
/** How soon a checkpoint is tried again while it is what lets writes back in (an fsync failure). */
const FAILED_LOG_CHECKPOINT_RETRY_MS = 1_000;

/** A block file of the manifest. `segment`: the shared-memory segment holding the same image
 * (shm-blocks.ts), which crash recovery may map instead of reading the file once its bytes match
 * `crc`; absent for blocks that were on the heap when checkpointed, and in older manifests. */
export interface BlockFile { file: string; bytes: number; crc: number; rows: number; segment?: string }

/** One piece of acknowledged data that recovery could not bring back. */
export interface DataLoss {
  /** When recovery found it (unix ms). */
  readonly foundAtMs: number;
  readonly kind: 'log' | 'block';
  /** The file and, for a log, the byte range: `wal/00000003.log bytes 120-4096`. */
  readonly where: string;
  /** Batches known lost (at least this many; null when unknown). */
  readonly batches: number | null;
  /** Rows known lost (null when unknown: the damage hit a record's header). */
  readonly rows: number | null;
  readonly table: string | null;
  readonly reason: string;
  /** Where the damaged file was moved (relative to the data directory), once it was. */
  keptAs: string | null;
}

export interface Manifest {
  version: number;
  leafId: string;
  walStart: number;
  nextFileNo: number;
  tables: Record<string, { schema: [string, ColumnType][]; blocks: BlockFile[] }>;
  /** Recent batch ids and their row counts, so a retry after a restart is still recognised. */
  batchIds: [string, number][];
  /** Every data loss recovery has found (absent in manifests of older builds). */
  losses?: DataLoss[];
  /** Loss reports dropped because there were more than LOSSES_KEPT_MAX. */
  lossesDropped?: number;
}

export interface DiskOptions {
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  /** Checkpoint when this many log bytes accumulated, or checkpointIntervalMs passed with any. */
  checkpointBytes: number;
  checkpointIntervalMs: number;
}

export interface RecoveryResult {
  rows: number; bytes: number; blocks: number; walRecords: number; diskBytesRead: number; notes: string[]; losses: DataLoss[];
  /** Blocks (and their bytes) taken from shared memory after their checksums matched. */
  shmBlocks: number; shmBytes: number;
  /** Blocks whose segment was listed but not taken (gone, damaged, untrusted): read from disk. */
  shmRefused: number;
  /** Of shmBlocks, those sealed after the checkpoint (found by their seal records), and the
   * logged rows they held, which were not replayed. */
  sealBlocks: number; sealRows: number;
}

/** What status, health and metrics say of the disk. */
export interface DiskHealth {
  writable: boolean;
  failure: LogFailure | null;
  errors: number;
  losses: readonly DataLoss[];
  lossesDropped: number;
  lastCheckpointError: string | null;
}

function lossText(l: DataLoss): string {
  const what = l.rows !== null ? `${l.rows} rows` : 'an unknown number of rows';
  const batches = l.batches !== null ? ` in ${l.batches} batch${l.batches === 1 ? '' : 'es'}` : '';
  return `DATA LOST: ${what}${batches}${l.table !== null ? ` of table ${l.table}` : ''} at ${l.where} (${l.reason})${l.keptAs !== null ? `; file kept as ${l.keptAs}` : ''}`;
}

export class DiskStore {
  readonly files = new WeakMap<SealedBlock, BlockFile>();
  log!: DiskLog;
  manifest: Manifest;
  private checkpointing: Promise<void> | null = null;
  private lastCheckpointMs = Date.now();
  private lastCheckpointError: string | null = null;
  readonly blockDir: string;
  /** Every loss known (from the manifest, and found by this process's recovery). */
  private losses: DataLoss[] = [];
  private lossesDropped = 0;
  /** Damaged log segments still in wal/: the checkpoint that passes them moves them aside. */
  private readonly damagedSegments = new Set<number>();
  /** Losses found since the last checkpoint saved them. */
  private lossesUnsaved = false;
  /** The next block file number. Never reused, not even after a checkpoint that failed before
   * its manifest was published: its files may be listed by the next one. */
  private nextFileNo = 1;
  private home_: ShmBlockHome | null = null;
  /** The row count seal records are written with (seal-count.ts). */
  private readonly seals = new SealCount();
  /** Blocks changed segments since the manifest was written (read back from disk at recovery):
   * the next checkpoint is due even with nothing logged. */
  private segmentsMoved = false;

  constructor(readonly dataDir: string, readonly leafId: string, readonly store: LeafStore, readonly opts: DiskOptions, readonly log_: FastifyBaseLogger, readonly io: DurableFs = realFs) {
    this.blockDir = path.join(dataDir, 'blocks');
    this.manifest = { version: MANIFEST_VERSION, leafId, walStart: 1, nextFileNo: 1, tables: {}, batchIds: [] };
  }

  /** Where sealed blocks live in shared memory (null: all on the heap). Recovery reuses the
   * segments the manifest and the seal records name; checkpoints write a block's file straight
   * from its segment; every block placed at its seal gets a seal record in the log. */
  get home(): ShmBlockHome | null { return this.home_; }
  set home(home: ShmBlockHome | null) {
    this.home_ = home;
    if (home !== null) home.onPlaced = (table, block, ref) => this.logSeal(table, block, ref);
  }

  /** Logs that `block` (just sealed into `ref`'s segment, holding the last rows appended to
   * `table`) exists, so crash recovery may map it instead of replaying its rows. No log yet
   * (recovery replaying), no count (after a recovery that lost rows), or a table that is not the
   * listed one (a restore building tables aside): nothing to record. */
  private logSeal(table: Table, block: SealedBlock, ref: SegmentRef): void {
    if (this.log === undefined || this.store.tables.get(table.name) !== table) return;
    const mark = this.seals.markFor(table, block, ref);
    if (mark !== null) this.log.appendSeal(mark);
  }

  /** What a successor needs to go on writing seal records (null: it writes none until its first
   * checkpoint). Taken after the handoff sealed the open blocks. */
  sealState(): SealState | null { return this.seals.state(this.store.tables.values()); }

  get walDir(): string { return path.join(this.dataDir, 'wal'); }
  get manifestPath(): string { return path.join(this.dataDir, 'manifest.json'); }
  get damagedDir(): string { return path.join(this.dataDir, 'damaged'); }

  private readManifest(): Manifest | null {
    if (!this.io.exists(this.manifestPath)) return null;
    let m: Manifest;
    try {
      m = JSON.parse(this.io.readFile(this.manifestPath).toString('utf8')) as Manifest;
    } catch (e) {
      // Written atomically (tmp + rename), so damage here is the disk's: refuse to start rather
      // than serve the log alone as if it were everything.
      throw new Error(`${this.manifestPath} is unreadable (${(e as Error).message}); the leaf will not start on a data directory it cannot account for: restore the file, or move the directory aside to start empty`);
    }
    if (m.version !== MANIFEST_VERSION) throw new Error(`${this.manifestPath}: manifest version ${m.version}, this build reads ${MANIFEST_VERSION}`);
    if (m.leafId !== this.leafId) throw new Error(`${this.manifestPath} belongs to leaf ${m.leafId}, not ${this.leafId}`);
    return m;
  }

  private addLoss(loss: DataLoss): void {
    if (this.losses.some((l) => l.where === loss.where)) return;
    this.losses.push(loss);
    while (this.losses.length > LOSSES_KEPT_MAX) { this.losses.shift(); this.lossesDropped++; }
    this.lossesUnsaved = true;
    this.log_.error({ loss }, lossText(loss));
  }

  /** Moves a damaged file into damaged/ (never deletes it); returns its new relative path. */
  private keepAside(file: string): string | null {
    try {
      this.io.mkdir(this.damagedDir);
      const name = `${path.basename(file)}.${Date.now()}`;
      this.io.rename(file, path.join(this.damagedDir, name));
      this.io.fsyncDir(this.damagedDir);
      this.io.fsyncDir(path.dirname(file));
      return path.join('damaged', name);
    } catch (e) {
      this.log_.error({ err: e, file }, `could not move damaged file ${file} aside; it stays where it is`);
      return null;
    }
  }

  /** Rebuilds every acknowledged row from the data directory. */
  recover(): RecoveryResult {
    const notes: string[] = [];
    const found: DataLoss[] = [];
    const lose = (l: DataLoss) => { found.push(l); this.addLoss(l); };
    let diskBytesRead = 0;
    const m = this.readManifest();
    if (m !== null) this.manifest = m;
    this.nextFileNo = this.manifest.nextFileNo;
    this.losses = [...(this.manifest.losses ?? [])];
    this.lossesDropped = this.manifest.lossesDropped ?? 0;
    let blocks = 0;
    let shmBlocks = 0;
    let shmBytes = 0;
    let shmRefused = 0;
    for (const [name, t] of Object.entries(this.manifest.tables)) {
      const table = this.tableFor(name, t.schema);
      for (const bf of t.blocks) {
        // The same image may still be in shared memory (the process died; the machine did not):
        // taken only if its bytes checksum to the CRC this manifest recorded for the file.
        if (bf.segment !== undefined && this.home !== null) {
          const r = this.home.reuse(bf.segment, bf.bytes, bf.crc);
          if ('block' in r) {
            table.addSealed(r.block);
            this.files.set(r.block, bf);
            blocks++;
            shmBlocks++;
            shmBytes += bf.bytes;
            continue;
          }
          shmRefused++;
          if (shmRefused <= SHM_REFUSALS_LOGGED_MAX) this.log_.warn({ file: bf.file, segment: bf.segment }, `block ${bf.file}: not taken from shared memory (${r.reason}); reading the file`);
        }
        const file = path.join(this.blockDir, bf.file);
        // Read straight into a shared-memory segment when there is one to be had, so the next
        // planned restart has nothing to copy; else into the heap.
        const slot = this.home?.reserve(bf.bytes) ?? null;
        try {
          const view = slot?.target ?? new Uint8Array(new SharedArrayBuffer(bf.bytes));
          const fd = this.io.open(file, 'r');
          let got = 0;
          try { while (got < bf.bytes) { const n = this.io.read(fd, view, got, bf.bytes - got, got); if (n === 0) break; got += n; } } finally { this.io.close(fd); }
          diskBytesRead += got;
          if (got !== bf.bytes) throw new Error(`file has ${got} bytes, manifest says ${bf.bytes}`);
          if ((crc32c(view) >>> 0) !== bf.crc) throw new Error('checksum mismatch');
          let block: SealedBlock;
          if (slot !== null) {
            block = this.home!.complete(slot, bf.bytes, bf.crc, allocateBlockId());
          } else {
            const data = decodeBlock(view.buffer, 0, bf.bytes, file);
            block = new SealedBlock({ ...data, id: allocateBlockId() });
          }
          table.addSealed(block);
          this.files.set(block, bf);
          blocks++;
        } catch (e) {
          if (slot !== null) this.home!.discard(slot);
          // A damaged checkpoint loses that block, not the leaf: serve the rest and say so. Its
          // rows are gone from the log too (the checkpoint that wrote it dropped those segments).
          const keptAs = this.io.exists(file) ? this.keepAside(file) : null;
          lose({ foundAtMs: Date.now(), kind: 'block', where: `blocks/${bf.file}`, batches: null, rows: bf.rows, table: name, reason: `block file unreadable: ${(e as Error).message}`, keptAs });
          t.blocks = t.blocks.filter((b) => b !== bf);
        }
      }
    }
    if (shmRefused > SHM_REFUSALS_LOGGED_MAX) this.log_.warn(`${shmRefused} blocks in all were read from disk instead of shared memory`);
    // Blocks read back from files now live in new segments: the next manifest must name them
    // (or a second crash would read them from disk again).
    if (this.home !== null && blocks > shmBlocks) this.segmentsMoved = true;
    if (shmBlocks > 0 || shmRefused > 0) notes.push(`${shmBlocks} checkpointed blocks (${shmBytes} bytes) taken from shared memory after their checksums matched${shmRefused > 0 ? `, ${shmRefused} read from disk instead (segment gone or damaged)` : ''}`);
    this.store.rememberBatchIds(this.manifest.batchIds);
    // Replay the log from walStart. Segments must run on without a gap.
    const segments = listSegments(this.walDir, this.io).filter((n) => n >= this.manifest.walStart);
    // With shared memory, first walk the record headers (log-index.ts): blocks sealed since the
    // checkpoint whose seal records run on from a table's first row are mapped, and the records
    // they cover are neither read nor decoded. Without a plan, the whole log is read and replayed.
    const plan = this.home !== null ? planSeals(this.walDir, segments, this.manifest.walStart, this.io) : null;
    const seal = plan !== null ? this.reuseSealed(plan) : { covered: new Map<string, number>(), blocks: 0, rows: 0, bytes: 0, refused: 0 };
    shmBlocks += seal.blocks;
    shmBytes += seal.bytes;
    shmRefused += seal.refused;
    const replay = plan !== null ? this.replayIndexed(plan, seal.covered, lose, notes) : this.replaySegments(segments, lose, notes);
    diskBytesRead += (plan?.bytesRead ?? 0) + replay.bytesRead;
    if (seal.blocks > 0 || seal.refused > 0) {
      notes.push(`${seal.blocks} blocks sealed after the checkpoint (${seal.rows} rows) taken from shared memory after their checksums matched: their rows were not replayed` +
        (seal.refused > 0 ? `; in ${seal.refused} ${seal.refused === 1 ? 'table' : 'tables'} a block was not (segment gone or damaged): the rows from it on were replayed` : ''));
    }
    for (const l of found) notes.push(lossText(l));
    const last = Math.max(this.manifest.walStart - 1, ...segments, 0);
    this.openLog(last + 1);
    // Seal records go on counting from walStart only when this replay counted every logged row
    // as a later one will (no damage, no batch that failed to decode); else from the next checkpoint.
    this.seals.start(plan !== null && replay.lostRecords === 0 ? this.manifest.walStart : null, this.store.tables.values(), Object.fromEntries(plan?.logged ?? []));
    return { rows: this.store.rowCount(), bytes: this.store.byteSize(), blocks, walRecords: replay.walRecords, diskBytesRead, notes, losses: found, shmBlocks, shmBytes, shmRefused, sealBlocks: seal.blocks, sealRows: seal.rows };
  }

  /** Maps each table's run of blocks named by seal records (from its first row on, no gap, within
   * the logged rows, every segment passing reuse's checks); returns the rows covered per table. */
  private reuseSealed(plan: SealPlan): { covered: Map<string, number>; blocks: number; rows: number; bytes: number; refused: number } {
    const out = { covered: new Map<string, number>(), blocks: 0, rows: 0, bytes: 0, refused: 0 };
    for (const [name, marks] of plan.seals) {
      let expected = 0;
      for (const m of marks) {
        // A run with a gap, or a mark past the rows logged (never acknowledged), ends the reuse.
        if (m.startRow !== expected || m.startRow + m.rows > (plan.logged.get(name) ?? 0)) break;
        const r = this.home!.reuse(m.segment, m.bytes, m.crc);
        if (!('block' in r)) {
          out.refused++;
          if (out.refused <= SHM_REFUSALS_LOGGED_MAX) this.log_.warn({ table: name, segment: m.segment }, `a block of ${name} sealed after the checkpoint: not taken from shared memory (${r.reason}); replaying its rows from the log`);
          break;
        }
        const table = this.tableFor(name, []);
        table.mergeSchema(m.schema);
        table.addSealed(r.block);
        expected += m.rows;
        out.blocks++;
        out.bytes += m.bytes;
      }
      if (expected > 0) out.covered.set(name, expected);
      out.rows += expected;
    }
    return out;
  }

  /** Replays one logged batch from row `start` on; a batch that no longer decodes is a loss. */
  private replayRecord(rec: IngestRecord, start: number, where: string, lose: (l: DataLoss) => void): boolean {
    try {
      const { batch } = this.store.decode(rec);
      this.store.apply(rec, batch, start);
      return true;
    } catch (e) {
      lose({ foundAtMs: Date.now(), kind: 'log', where: `${where} batch ${rec.batchId ?? '(no id)'}`, batches: 1, rows: null, table: rec.table, reason: `a logged batch no longer decodes: ${(e as Error).message}`, keptAs: null });
      return false;
    }
  }

  /** A torn tail of the newest segment is what a crash in the middle of a write leaves: that
   * batch was never acknowledged (a failed write is cut back before the next). Cut and noted. */
  private cutTornTail(n: number, file: string, start: number, end: number, reason: string, notes: string[]): void {
    const note = `log ${segmentName(n)}: ${reason}; ${end - start} trailing bytes of an unfinished write dropped (never acknowledged)`;
    notes.push(note);
    this.log_.warn(note);
    this.io.truncate(file, start);
  }

  /** The replay after a header walk: covered records keep only their batch ids; the rest are read
   * in runs of consecutive records, checked, and applied (a straddling one from its first
   * uncovered row). */
  private replayIndexed(plan: SealPlan, covered: ReadonlyMap<string, number>, lose: (l: DataLoss) => void, notes: string[]): { walRecords: number; lostRecords: number; bytesRead: number } {
    const at = new Map<string, number>();
    let walRecords = 0;
    let lostRecords = 0;
    let bytesRead = 0;
    for (const [i, idx] of plan.indexes.entries()) {
      const file = path.join(this.walDir, segmentName(idx.segment));
      if (idx.badSeals > 0) notes.push(badSealsNote(idx.segment, idx.badSeals));
      // Per record: the rows before it in its table, so the first row to apply.
      let run: { rec: IndexedRecord; start: number }[] = [];
      const flush = () => {
        if (run.length === 0) return;
        const read = readRecords(file, run.map((x) => x.rec), this.io);
        bytesRead += read.bytesRead;
        for (const [k, r] of read.out.entries()) {
          if (r.ok) {
            if (this.replayRecord(r.logged, run[k]!.start, `wal/${segmentName(idx.segment)}`, lose)) walRecords++; else lostRecords++;
            continue;
          }
          lostRecords++;
          this.damagedSegments.add(idx.segment);
          lose({ foundAtMs: Date.now(), kind: 'log', where: `wal/${segmentName(idx.segment)} bytes ${r.rec.offset}-${r.rec.offset + r.rec.bytes}`, batches: 1, rows: r.rec.rows, table: null, reason: r.reason, keptAs: null });
        }
        run = [];
      };
      for (const rec of idx.records) {
        const before = at.get(rec.table) ?? 0;
        at.set(rec.table, before + rec.rows);
        const skip = covered.get(rec.table) ?? 0;
        if (before + rec.rows <= skip) {
          // Every row is in a block taken from shared memory: only the batch id is kept.
          flush();
          if (rec.batchId !== null) this.store.rememberBatchIds([[rec.batchId, rec.rows]]);
          continue;
        }
        run.push({ rec, start: before < skip ? skip - before : 0 });
        if (run.length >= REPLAY_RUN_RECORDS_MAX) flush();
      }
      flush();
      if (idx.tornAt !== null && i === plan.indexes.length - 1) this.cutTornTail(idx.segment, file, idx.tornAt, idx.totalBytes, `torn record at offset ${idx.tornAt}`, notes);
    }
    return { walRecords, lostRecords, bytesRead };
  }

  /** The replay of every record of every segment (no header walk: no shared memory, or a log
   * the walk could not step through), resyncing past damage. */
  private replaySegments(segments: readonly number[], lose: (l: DataLoss) => void, notes: string[]): { walRecords: number; lostRecords: number; bytesRead: number } {
    let walRecords = 0;
    let lostRecords = 0;
    let bytesRead = 0;
    for (let i = 0; i < segments.length; i++) {
      const n = segments[i]!;
      if (i > 0 && n !== segments[i - 1]! + 1) {
        for (let g = segments[i - 1]! + 1; g < n; g++) {
          lose({ foundAtMs: Date.now(), kind: 'log', where: `wal/${segmentName(g)}`, batches: null, rows: null, table: null, reason: 'log segment missing', keptAs: null });
        }
      }
      const file = path.join(this.walDir, segmentName(n));
      const read = readSegment(file, this.io);
      bytesRead += read.totalBytes;
      if (read.badSeals > 0) notes.push(badSealsNote(n, read.badSeals));
      for (const rec of read.records) {
        if (this.replayRecord(rec, 0, `wal/${segmentName(n)}`, lose)) walRecords++; else lostRecords++;
      }
      const last = i === segments.length - 1;
      for (const d of read.damaged) {
        if (last && d.end === read.totalBytes) { this.cutTornTail(n, file, d.start, d.end, d.reason, notes); continue; }
        this.damagedSegments.add(n);
        lose({ foundAtMs: Date.now(), kind: 'log', where: `wal/${segmentName(n)} bytes ${d.start}-${d.end}`, batches: d.records > 0 ? d.records : null, rows: d.rows, table: null, reason: d.reason, keptAs: null });
      }
    }
    return { walRecords, lostRecords, bytesRead };
  }

  /** After a shared-memory restore: take the disk state as handed over, without reading the disk. */
  adopt(manifest: Manifest, walNext: number, files: Map<SealedBlock, BlockFile>, seal: SealState | null = null): void {
    this.manifest = manifest;
    this.seals.adopt(seal, manifest.walStart, this.store.tables.values());
    this.nextFileNo = manifest.nextFileNo;
    this.losses = [...(manifest.losses ?? [])];
    this.lossesDropped = manifest.lossesDropped ?? 0;
    for (const [b, f] of files) this.files.set(b, f);
    this.openLog(walNext);
  }

  /** Shared memory held data but no disk state (the previous process ran without a log). */
  recoverEmptyLog(): void {
    this.openLog(Math.max(0, ...listSegments(this.walDir, this.io)) + 1);
  }

  /** Before a handoff: finish a running checkpoint and make the log durable. */
  async prepareHandoff(): Promise<void> {
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    this.log.sync();
  }

  private openLog(segmentNo: number): void {
    this.io.mkdir(this.walDir);
    this.io.mkdir(this.blockDir);
    this.log = new DiskLog(this.walDir, segmentNo, this.opts.fsync, this.opts.fsyncIntervalMs, this.io);
  }

  private tableFor(name: string, schema: [string, ColumnType][]): Table {
    const t = this.store.tables.get(name) ?? this.store.createTable(name);
    for (const [col, type] of schema) if (!t.schema.has(col)) t.schema.set(col, { name: col, type });
    return t;
  }

  /** Logs a batch of `rows` rows, or throws SHOAL_ERR_INGEST_DISK (then it must not be applied). */
  append(rec: IngestRecord, rows: number): void { this.log.append(rec, rows); }

  health(): DiskHealth {
    return { writable: this.log.failure === null, failure: this.log.failure, errors: this.log.errorCount, losses: this.losses, lossesDropped: this.lossesDropped, lastCheckpointError: this.lastCheckpointError };
  }

  maybeCheckpoint(): void {
    if (this.checkpointing !== null) return;
    const sinceMs = Date.now() - this.lastCheckpointMs;
    const due = this.log.bytesSinceCheckpoint >= this.opts.checkpointBytes ||
      (this.log.bytesSinceCheckpoint > 0 && sinceMs >= this.opts.checkpointIntervalMs) ||
      ((this.lossesUnsaved || this.damagedSegments.size > 0) && sinceMs >= FAILED_LOG_CHECKPOINT_RETRY_MS) ||
      (this.log.failure?.kind === 'fsync' && sinceMs >= FAILED_LOG_CHECKPOINT_RETRY_MS) ||
      this.segmentsMoved;
    if (due) void this.checkpoint().catch((e) => this.log_.error({ err: e }, 'checkpoint failed; the log keeps every row, will retry'));
  }

  /** Runs one checkpoint (or waits for the running one). */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.runCheckpoint().then(
      () => { this.lastCheckpointError = null; },
      (e: unknown) => { this.lastCheckpointError = `${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}`; throw e; },
    ).finally(() => { this.checkpointing = null; this.lastCheckpointMs = Date.now(); });
    return this.checkpointing;
  }

  private async runCheckpoint(): Promise<void> {
    // Synchronous part: nothing can be ingested between the rotation and the sealing.
    const walStart = this.log.rotate();
    const bytesBefore = this.log.bytesSinceCheckpoint;
    this.log.bytesSinceCheckpoint = 0;
    const restoreSeals = this.seals.saved();
    try {
      await this.writeCheckpoint(walStart);
    } catch (e) {
      this.log.bytesSinceCheckpoint += bytesBefore; // still due
      // The manifest still says the old walStart: seal records go on counting from there.
      if (this.manifest.walStart !== walStart) restoreSeals();
      throw e;
    }
  }

  private async writeCheckpoint(walStart: number): Promise<void> {
    const tables: Manifest['tables'] = {};
    const toWrite: [SealedBlock, BlockFile][] = [];
    for (const t of this.store.tables.values()) {
      t.sealOpen();
      const blocks: BlockFile[] = [];
      for (const b of t.sealed) {
        let bf = this.files.get(b);
        const segment = this.home?.refOf(b)?.segment;
        if (bf === undefined) {
          bf = { file: `${String(this.nextFileNo++).padStart(10, '0')}.blk`, bytes: 0, crc: 0, rows: b.rowCount };
          if (segment !== undefined) bf.segment = segment;
          toWrite.push([b, bf]);
        } else if (bf.segment !== segment) {
          // Placed in shared memory since it was written (read back from disk), or its segment
          // was dropped: the manifest names where the same bytes are now.
          bf = { ...bf };
          if (segment !== undefined) bf.segment = segment; else delete bf.segment;
          this.files.set(b, bf);
        }
        blocks.push(bf);
      }
      tables[t.name] = { schema: t.schemaList().map((c) => [c.name, c.type]), blocks };
    }
    // Every row logged before walStart is in a block sealed by now: seal records count from here
    // (a recovery uses them once this checkpoint's manifest names walStart).
    this.seals.start(walStart, this.store.tables.values());
    const batchIds = this.store.recentBatchIdList(BATCH_IDS_SAVED_MAX);
    // Asynchronous part: write the new block files, make their names durable, publish the manifest.
    for (const [block, bf] of toWrite) {
      // A block in shared memory is its image already, with its CRC: the file gets those bytes.
      const ref = this.home?.refOf(block);
      let buf: Uint8Array;
      if (ref !== undefined) {
        buf = ref.image;
        bf.bytes = ref.bytes;
        bf.crc = ref.crc;
      } else {
        const img = encodeBlock(block.data);
        buf = new Uint8Array(img.byteSize);
        for (const [o, bytes] of img.pieces) buf.set(bytes, o);
        bf.bytes = img.byteSize;
        bf.crc = crc32c(buf) >>> 0;
      }
      await writeFileDurable(this.io, path.join(this.blockDir, bf.file), buf);
      this.files.set(block, bf);
    }
    if (toWrite.length > 0) this.io.fsyncDir(this.blockDir);
    const manifest: Manifest = { version: MANIFEST_VERSION, leafId: this.leafId, walStart, nextFileNo: this.nextFileNo, tables, batchIds, losses: this.losses, lossesDropped: this.lossesDropped };
    const tmp = this.manifestPath + '.tmp';
    await writeFileDurable(this.io, tmp, Buffer.from(JSON.stringify(manifest)));
    this.io.rename(tmp, this.manifestPath);
    this.io.fsyncDir(this.dataDir);
    this.manifest = manifest;
    this.lossesUnsaved = false;
    this.segmentsMoved = false;
    // Everything in memory is now in fsynced block files: a failed fsync of the old log no
    // longer matters, and the old segments go (damaged ones aside, never deleted).
    this.log.clearFsyncFailure(walStart);
    for (const n of [...this.damagedSegments]) {
      if (n >= walStart) continue;
      const keptAs = this.keepAside(path.join(this.walDir, segmentName(n)));
      if (keptAs === null) continue;
      this.damagedSegments.delete(n);
      for (const l of this.losses) if (l.keptAs === null && l.where.startsWith(`wal/${segmentName(n)}`)) l.keptAs = keptAs;
      this.lossesUnsaved = true; // the next manifest records where the file went
    }
    this.log.dropBefore(walStart, (n) => this.damagedSegments.has(n));
    const live = new Set(Object.values(tables).flatMap((t) => t.blocks.map((b) => b.file)));
    let removed = false;
    for (const f of this.io.readdir(this.blockDir)) {
      if (f.endsWith('.blk') && !live.has(f)) { this.io.unlink(path.join(this.blockDir, f)); removed = true; }
    }
    if (removed) this.io.fsyncDir(this.blockDir);
  }

  /** The manifest a successor would get if it took over now (for the shared-memory handoff). */
  currentState(): { manifest: Manifest; walNext: number } {
    return { manifest: { ...this.manifest, losses: this.losses, lossesDropped: this.lossesDropped }, walNext: this.log.segmentNo + 1 };
  }

  async close(): Promise<void> {
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    this.log?.close();
  }
}
