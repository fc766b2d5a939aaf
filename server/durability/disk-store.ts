/**
 * A leaf's on-disk copy: the write-ahead log (disk-log.ts) plus checkpoints of sealed blocks,
 * and recovery from them after a crash.
 *
 * Checkpoint: rotate the log to a new segment S, seal every open block (so every row logged
 * before S is in a sealed block), write each sealed block not yet on disk as a block image file
 * (block-codec.ts) with its CRC-32C, then atomically replace manifest.json (tmp + fsync +
 * rename) with the list of live block files and `walStart = S`, then delete log segments before S
 * and block files no longer listed (evicted blocks). A crash at any point leaves either the old
 * manifest with the old log, or the new one with the new log: both complete.
 *
 * Recovery: read the manifest, read each block file into a SharedArrayBuffer (verified, then
 * viewed in place), replay log segments from walStart through the normal ingest decoder.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { crc32c } from '../../native/shm.js';
import { decodeBlock, encodeBlock } from '../../query/storage/block-codec.js';
import { allocateBlockId, SealedBlock, Table } from '../../query/storage/table.js';
import type { ColumnType } from '../../query/storage/types.js';
import { DiskLog, listSegments, readSegment, segmentName } from './disk-log.js';
import type { IngestRecord, LeafStore } from '../../query/storage/leaf-store.js';

export const MANIFEST_VERSION = 1;
/** Batch ids kept across restarts for duplicate detection. */
const BATCH_IDS_SAVED_MAX = 20_000;

export interface BlockFile { file: string; bytes: number; crc: number; rows: number }

export interface Manifest {
  version: number;
  leafId: string;
  walStart: number;
  nextFileNo: number;
  tables: Record<string, { schema: [string, ColumnType][]; blocks: BlockFile[] }>;
  /** Recent batch ids and their row counts, so a retry after a restart is still recognised. */
  batchIds: [string, number][];
}

export interface DiskOptions {
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  /** Checkpoint when this many log bytes accumulated, or checkpointIntervalMs passed with any. */
  checkpointBytes: number;
  checkpointIntervalMs: number;
}

export interface RecoveryResult { rows: number; bytes: number; blocks: number; walRecords: number; diskBytesRead: number; notes: string[] }

export class DiskStore {
  readonly files = new WeakMap<SealedBlock, BlockFile>();
  log!: DiskLog;
  manifest: Manifest;
  private checkpointing: Promise<void> | null = null;
  private lastCheckpointMs = Date.now();
  readonly blockDir: string;

  constructor(readonly dataDir: string, readonly leafId: string, readonly store: LeafStore, readonly opts: DiskOptions, readonly log_: FastifyBaseLogger) {
    this.blockDir = path.join(dataDir, 'blocks');
    this.manifest = { version: MANIFEST_VERSION, leafId, walStart: 1, nextFileNo: 1, tables: {}, batchIds: [] };
  }

  get walDir(): string { return path.join(this.dataDir, 'wal'); }
  get manifestPath(): string { return path.join(this.dataDir, 'manifest.json'); }

  private readManifest(): Manifest | null {
    if (!fs.existsSync(this.manifestPath)) return null;
    const m = JSON.parse(fs.readFileSync(this.manifestPath, 'utf8')) as Manifest;
    if (m.version !== MANIFEST_VERSION) throw new Error(`${this.manifestPath}: manifest version ${m.version}, this build reads ${MANIFEST_VERSION}`);
    if (m.leafId !== this.leafId) throw new Error(`${this.manifestPath} belongs to leaf ${m.leafId}, not ${this.leafId}`);
    return m;
  }

  /** Rebuilds every acknowledged row from the data directory. */
  recover(): RecoveryResult {
    const notes: string[] = [];
    let diskBytesRead = 0;
    const m = this.readManifest();
    if (m !== null) this.manifest = m;
    let blocks = 0;
    for (const [name, t] of Object.entries(this.manifest.tables)) {
      const table = this.tableFor(name, t.schema);
      for (const bf of t.blocks) {
        const file = path.join(this.blockDir, bf.file);
        try {
          const sab = new SharedArrayBuffer(bf.bytes);
          const view = new Uint8Array(sab);
          const fd = fs.openSync(file, 'r');
          let got = 0;
          try { while (got < bf.bytes) { const n = fs.readSync(fd, view, got, bf.bytes - got, got); if (n === 0) break; got += n; } } finally { fs.closeSync(fd); }
          diskBytesRead += got;
          if (got !== bf.bytes) throw new Error(`file has ${got} bytes, manifest says ${bf.bytes}`);
          if ((crc32c(view) >>> 0) !== bf.crc) throw new Error('checksum mismatch');
          const data = decodeBlock(sab, 0, bf.bytes, file);
          const block = new SealedBlock({ ...data, id: allocateBlockId() });
          table.addSealed(block);
          this.files.set(block, bf);
          blocks++;
        } catch (e) {
          // A damaged checkpoint loses that block, not the leaf: serve the rest and say so.
          const note = `block file ${bf.file} of table ${name} unreadable (${(e as Error).message}); its ${bf.rows} rows are missing`;
          notes.push(note);
          this.log_.error(note);
        }
      }
    }
    this.store.rememberBatchIds(this.manifest.batchIds);
    // Replay the log from walStart.
    const segments = listSegments(this.walDir).filter((n) => n >= this.manifest.walStart);
    let walRecords = 0;
    for (const n of segments) {
      const file = path.join(this.walDir, segmentName(n));
      const { records, goodBytes, totalBytes, badReason } = readSegment(file);
      diskBytesRead += totalBytes;
      for (const rec of records) {
        try {
          const { batch } = this.store.decode(rec);
          this.store.apply(rec, batch);
          walRecords++;
        } catch (e) {
          const note = `log ${segmentName(n)}: a batch for ${rec.table} no longer decodes (${(e as Error).message}); skipped`;
          notes.push(note);
          this.log_.error(note);
        }
      }
      if (badReason !== null) {
        // A torn tail is what a crash mid-write leaves: that batch was never acknowledged.
        const note = `log ${segmentName(n)}: ${badReason}; ${totalBytes - goodBytes} trailing bytes dropped`;
        notes.push(note);
        this.log_.warn(note);
        fs.truncateSync(file, goodBytes);
      }
    }
    const last = Math.max(this.manifest.walStart - 1, ...segments, 0);
    this.openLog(last + 1);
    return { rows: this.store.rowCount(), bytes: this.store.byteSize(), blocks, walRecords, diskBytesRead, notes };
  }

  /** After a shared-memory restore: take the disk state as handed over, without reading the disk. */
  adopt(manifest: Manifest, walNext: number, files: Map<SealedBlock, BlockFile>): void {
    this.manifest = manifest;
    for (const [b, f] of files) this.files.set(b, f);
    this.openLog(walNext);
  }

  /** Shared memory held data but no disk state (the previous process ran without a log). */
  recoverEmptyLog(): void {
    this.openLog(Math.max(0, ...listSegments(this.walDir)) + 1);
  }

  /** Before a handoff: finish a running checkpoint and make the log durable. */
  async prepareHandoff(): Promise<void> {
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    this.log.sync();
  }

  private openLog(segmentNo: number): void {
    fs.mkdirSync(this.walDir, { recursive: true });
    fs.mkdirSync(this.blockDir, { recursive: true });
    this.log = new DiskLog(this.walDir, segmentNo, this.opts.fsync, this.opts.fsyncIntervalMs);
  }

  private tableFor(name: string, schema: [string, ColumnType][]): Table {
    let t = this.store.tables.get(name);
    if (t === undefined) { t = new Table(name); this.store.tables.set(name, t); }
    for (const [col, type] of schema) if (!t.schema.has(col)) t.schema.set(col, { name: col, type });
    return t;
  }

  append(rec: IngestRecord): void { this.log.append(rec); }

  maybeCheckpoint(): void {
    if (this.checkpointing !== null) return;
    const due = this.log.bytesSinceCheckpoint >= this.opts.checkpointBytes ||
      (this.log.bytesSinceCheckpoint > 0 && Date.now() - this.lastCheckpointMs >= this.opts.checkpointIntervalMs);
    if (due) void this.checkpoint().catch((e) => this.log_.error({ err: e }, 'checkpoint failed; the log keeps every row, will retry'));
  }

  /** Runs one checkpoint (or waits for the running one). */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.runCheckpoint().finally(() => { this.checkpointing = null; this.lastCheckpointMs = Date.now(); });
    return this.checkpointing;
  }

  private async runCheckpoint(): Promise<void> {
    // Synchronous part: nothing can be ingested between the rotation and the sealing.
    const walStart = this.log.rotate();
    this.log.bytesSinceCheckpoint = 0;
    const tables: Manifest['tables'] = {};
    const toWrite: [SealedBlock, BlockFile][] = [];
    let nextFileNo = this.manifest.nextFileNo;
    for (const t of this.store.tables.values()) {
      t.sealOpen();
      const blocks: BlockFile[] = [];
      for (const b of t.sealed) {
        let bf = this.files.get(b);
        if (bf === undefined) {
          bf = { file: `${String(nextFileNo++).padStart(10, '0')}.blk`, bytes: 0, crc: 0, rows: b.rowCount };
          toWrite.push([b, bf]);
        }
        blocks.push(bf);
      }
      tables[t.name] = { schema: t.schemaList().map((c) => [c.name, c.type]), blocks };
    }
    const batchIds = this.store.recentBatchIdList(BATCH_IDS_SAVED_MAX);
    // Asynchronous part: write the new block files, then publish the manifest.
    for (const [block, bf] of toWrite) {
      const img = encodeBlock(block.data);
      const buf = new Uint8Array(img.byteSize);
      for (const [o, bytes] of img.pieces) buf.set(bytes, o);
      bf.bytes = img.byteSize;
      bf.crc = crc32c(buf) >>> 0;
      const fh = await fs.promises.open(path.join(this.blockDir, bf.file), 'w');
      try { await fh.writeFile(buf); await fh.datasync(); } finally { await fh.close(); }
      this.files.set(block, bf);
    }
    const manifest: Manifest = { version: MANIFEST_VERSION, leafId: this.leafId, walStart, nextFileNo, tables, batchIds };
    const tmp = this.manifestPath + '.tmp';
    const fh = await fs.promises.open(tmp, 'w');
    try { await fh.writeFile(JSON.stringify(manifest)); await fh.datasync(); } finally { await fh.close(); }
    await fs.promises.rename(tmp, this.manifestPath);
    const dir = await fs.promises.open(this.dataDir, 'r');
    try { await dir.sync(); } finally { await dir.close(); }
    this.manifest = manifest;
    this.log.dropBefore(walStart);
    const live = new Set(Object.values(tables).flatMap((t) => t.blocks.map((b) => b.file)));
    for (const f of await fs.promises.readdir(this.blockDir)) if (f.endsWith('.blk') && !live.has(f)) await fs.promises.rm(path.join(this.blockDir, f), { force: true });
  }

  /** The manifest a successor would get if it took over now (for the shared-memory handoff). */
  currentState(): { manifest: Manifest; walNext: number } {
    return { manifest: this.manifest, walNext: this.log.segmentNo + 1 };
  }

  async close(): Promise<void> {
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    this.log?.close();
  }
}
