/**
 * The write-ahead log of a leaf: every accepted batch is appended (one writev(2) of the record's
 * header and the request body as received, synchronously, on the event loop: the body is not
 * copied) before the leaf acknowledges it, so a crash after the answer cannot lose it.
 * The record keeps the raw request body and the arrival time, and replay runs it through the
 * very same decoder, so a replayed batch becomes exactly the rows it became the first time.
 *
 *   record (v2): u32 magic 'SHW2' | u32 payload bytes | u32 rows | u32 crc32c(payload)
 *                | u32 crc32c(the 16 bytes before) | payload
 *   payload:     u8 format | f64 arrival seconds | u16 table bytes | table | u16 id bytes | batch id | body
 *
 * The header has its own CRC so a reader can tell a damaged body (skip exactly that record, and
 * say how many rows it held) from damaged framing (scan forward to the next record that checks
 * out), and can recover every record past a damaged one. v1 records ('SHWL', a 12-byte header
 * without rows or header CRC) from older builds are still read.
 *
 *   seal record: the same framing with magic 'SHS1', rows 0, payload the JSON of a `SealMark`:
 *   a block sealed into shared memory, which rows of its table it holds and the CRC of its
 *   image, so crash recovery may map it instead of replaying those rows (disk-store.ts). It is
 *   a hint: losing one only means replaying. A build before seal records reads one as damage.
 *
 * Failure rules (docs/durability.md):
 * - A failed or short write is cut back to the last complete record before anything else is
 *   appended, so no torn record ever stands before an acknowledged one; the batch is refused
 *   (SHOAL_ERR_INGEST_DISK, 503 + Retry-After) and the next batch tries again: writes resume by
 *   themselves when space returns. If the cut itself fails, every batch is refused until it works.
 * - An fsync that fails is never ignored: the log stops taking writes (fail-stop, as PostgreSQL
 *   learned: after a failed fsync the page cache cannot be trusted), and only a checkpoint that
 *   rewrites the data to fresh, fsynced files (`clearFsyncFailure`) lets writes in again.
 *   With `--fsync always` the batch whose fsync failed is cut off the log and refused.
 * - Creating a segment fsyncs the directory before the segment is used.
 *
 * Segments (wal/00000001.log, ...) rotate at a size bound; a checkpoint moves the log's start
 * forward and deletes older segments (disk-store.ts).
 */
import path from 'node:path';
import { crc32c } from '../../native/shm.js';
import { ShoalError } from '../../query/errors.js';
import { LIMITS } from '../../query/limits.js';
import type { BodyFormat } from '../../query/storage/ingest-decoder.js';
import type { IngestRecord } from '../../query/storage/leaf-store.js';
import type { ColumnType } from '../../query/storage/types.js';
import { realFs, writevAll, type DurableFs } from './durable-fs.js';

export const WAL_MAGIC_V1 = 0x4c574853; // 'SHWL'
export const WAL_MAGIC = 0x32574853; // 'SHW2'
export const SEAL_MAGIC = 0x31534853; // 'SHS1'
const PREFIX_V1_BYTES = 12;
export const PREFIX_BYTES = 20;
/** A payload longer than this is not a record (the body bound plus its small header). */
const PAYLOAD_BYTES_MAX = LIMITS.bodyBytesMax + 1024;
/** A segment is rotated past this size, bounding what one replay read holds in memory. */
export const WAL_SEGMENT_BYTES_MAX = 64 * 1024 * 1024;
const FORMATS: BodyFormat[] = ['json', 'ndjson', 'auto'];

export function segmentName(n: number): string { return String(n).padStart(8, '0') + '.log'; }

export function listSegments(walDir: string, io: DurableFs = realFs): number[] {
  if (!io.exists(walDir)) return [];
  return io.readdir(walDir).filter((f) => /^\d{8}\.log$/.test(f)).map((f) => Number(f.slice(0, 8))).sort((a, b) => a - b);
}

/**
 * A record's header: the 20-byte prefix and the payload up to the body, with both CRCs (the
 * payload's runs on from the header part into the body, so the body is never copied next to
 * it). The record is this header followed by `rec.body`, written together with writev(2).
 */
export function encodeRecordHeader(rec: IngestRecord, rows: number): Buffer {
  const table = Buffer.from(rec.table);
  const id = Buffer.from(rec.batchId ?? '');
  const metaBytes = 1 + 8 + 2 + table.length + 2 + id.length;
  const out = Buffer.allocUnsafe(PREFIX_BYTES + metaBytes);
  let at = PREFIX_BYTES;
  out.writeUInt8(FORMATS.indexOf(rec.format), at); at += 1;
  out.writeDoubleLE(rec.nowSeconds, at); at += 8;
  out.writeUInt16LE(table.length, at); at += 2;
  table.copy(out, at); at += table.length;
  out.writeUInt16LE(id.length, at); at += 2;
  id.copy(out, at); at += id.length;
  out.writeUInt32LE(WAL_MAGIC, 0);
  out.writeUInt32LE(metaBytes + rec.body.length, 4);
  out.writeUInt32LE(rows >>> 0, 8);
  out.writeUInt32LE(crc32c(rec.body, crc32c(out.subarray(PREFIX_BYTES))) >>> 0, 12);
  out.writeUInt32LE(crc32c(out.subarray(0, 16)) >>> 0, 16);
  return out;
}

/**
 * A block sealed into shared memory since the log position `base` (the first segment of the
 * checkpoint that was running or done when it was sealed): it holds rows
 * [startRow, startRow + rows) of `table`, counted over the table's records from segment `base`
 * on in log order, and its image in `segment` has `bytes` bytes with CRC-32C `crc`. `schema`
 * is the table's schema when it was sealed (block columns do not carry logical types).
 */
export interface SealMark {
  readonly base: number;
  readonly table: string;
  readonly startRow: number;
  readonly rows: number;
  readonly segment: string;
  readonly bytes: number;
  readonly crc: number;
  readonly schema: readonly (readonly [string, ColumnType])[];
}

function encodeSealRecord(mark: SealMark): Buffer {
  const payload = Buffer.from(JSON.stringify(mark));
  const out = Buffer.allocUnsafe(PREFIX_BYTES + payload.length);
  out.writeUInt32LE(SEAL_MAGIC, 0);
  out.writeUInt32LE(payload.length, 4);
  out.writeUInt32LE(0, 8);
  out.writeUInt32LE(crc32c(payload) >>> 0, 12);
  out.writeUInt32LE(crc32c(out.subarray(0, 16)) >>> 0, 16);
  payload.copy(out, PREFIX_BYTES);
  return out;
}

/** A seal record's payload, or null when it is not a well-formed mark (treated as absent). */
export function decodeSeal(payload: Buffer): SealMark | null {
  let m: SealMark;
  try { m = JSON.parse(payload.toString('utf8')) as SealMark; } catch { return null; }
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (m === null || typeof m !== 'object' || typeof m.table !== 'string' || typeof m.segment !== 'string' || !Array.isArray(m.schema)) return null;
  if (!int(m.base) || !int(m.startRow) || !int(m.rows) || !int(m.bytes) || !int(m.crc) || m.rows === 0) return null;
  return m;
}

export function decodePayload(payload: Buffer): IngestRecord {
  let p = 0;
  const format = FORMATS[payload.readUInt8(p)] ?? 'auto'; p += 1;
  const nowSeconds = payload.readDoubleLE(p); p += 8;
  const tl = payload.readUInt16LE(p); p += 2;
  const table = payload.toString('utf8', p, p + tl); p += tl;
  const il = payload.readUInt16LE(p); p += 2;
  const batchId = il > 0 ? payload.toString('utf8', p, p + il) : null; p += il;
  return { table, nowSeconds, format, batchId, body: payload.subarray(p) };
}

/** A run of bytes that held no readable record. */
export interface DamagedRange {
  readonly start: number;
  readonly end: number;
  /** Records known to be in the range (their headers checked out, their bodies did not). */
  readonly records: number;
  /** Rows of those records, from their headers; null where a header itself was unreadable. */
  readonly rows: number | null;
  readonly reason: string;
}

export interface SegmentRead {
  readonly records: IngestRecord[];
  /** Seal records, in log order (malformed ones left out). */
  readonly seals: SealMark[];
  /** Seal records whose header checks out but whose body does not: skipped, not a loss (a seal
   * record is a hint; the rows it names are in the batch records). */
  readonly badSeals: number;
  readonly totalBytes: number;
  /** Every damaged range, in order. The last one may run to the end of the file (a torn tail). */
  readonly damaged: DamagedRange[];
}

export type Framed =
  | { ok: true; next: number; payload: Buffer; kind: 'batch' | 'seal'; rows: number | null }
  | { ok: false; headerOk: true; next: number; kind: 'batch' | 'seal'; rows: number; reason: string }
  | { ok: false; headerOk: false; reason: string };

/** The record at `at`, whether its header and payload check out. */
export function frameAt(buf: Buffer, at: number): Framed {
  if (buf.length - at < 4) return { ok: false, headerOk: false, reason: `torn record header at offset ${at}` };
  const magic = buf.readUInt32LE(at);
  if (magic === WAL_MAGIC || magic === SEAL_MAGIC) {
    if (buf.length - at < PREFIX_BYTES) return { ok: false, headerOk: false, reason: `torn record header at offset ${at}` };
    if ((crc32c(buf.subarray(at, at + 16)) >>> 0) !== buf.readUInt32LE(at + 16)) return { ok: false, headerOk: false, reason: `record header checksum mismatch at offset ${at}` };
    const len = buf.readUInt32LE(at + 4);
    const rows = buf.readUInt32LE(at + 8);
    const next = at + PREFIX_BYTES + len;
    if (next > buf.length) return { ok: false, headerOk: false, reason: `torn record at offset ${at} (${len} payload bytes, ${buf.length - at - PREFIX_BYTES} present)` };
    const payload = buf.subarray(at + PREFIX_BYTES, next);
    if ((crc32c(payload) >>> 0) !== buf.readUInt32LE(at + 12)) return { ok: false, headerOk: true, next, kind: magic === SEAL_MAGIC ? 'seal' : 'batch', rows, reason: `record body checksum mismatch at offset ${at}` };
    return { ok: true, next, payload, kind: magic === SEAL_MAGIC ? 'seal' : 'batch', rows };
  }
  if (magic === WAL_MAGIC_V1) {
    if (buf.length - at < PREFIX_V1_BYTES) return { ok: false, headerOk: false, reason: `torn record header at offset ${at}` };
    const len = buf.readUInt32LE(at + 4);
    const next = at + PREFIX_V1_BYTES + len;
    if (len > PAYLOAD_BYTES_MAX || next > buf.length) return { ok: false, headerOk: false, reason: `torn or damaged v1 record at offset ${at}` };
    const payload = buf.subarray(at + PREFIX_V1_BYTES, next);
    if ((crc32c(payload) >>> 0) !== buf.readUInt32LE(at + 8)) return { ok: false, headerOk: false, reason: `v1 record checksum mismatch at offset ${at}` };
    return { ok: true, next, payload, kind: 'batch', rows: null };
  }
  return { ok: false, headerOk: false, reason: `bad magic at offset ${at}` };
}

const MAGIC_BYTES = [WAL_MAGIC, SEAL_MAGIC, WAL_MAGIC_V1].map((m) => { const b = Buffer.alloc(4); b.writeUInt32LE(m, 0); return b; });

/** The offset of the next record after `from` that checks out completely, or -1. */
function resync(buf: Buffer, from: number): number {
  let at = from;
  while (at < buf.length) {
    let cand = -1;
    for (const m of MAGIC_BYTES) { const i = buf.indexOf(m, at); if (i >= 0 && (cand < 0 || i < cand)) cand = i; }
    if (cand < 0) return -1;
    if (frameAt(buf, cand).ok) return cand;
    at = cand + 1;
  }
  return -1;
}

/** Every readable record of a segment, and every range that held none. */
export function readSegment(file: string, io: DurableFs = realFs): SegmentRead {
  const buf = io.readFile(file);
  const records: IngestRecord[] = [];
  const seals: SealMark[] = [];
  const damaged: DamagedRange[] = [];
  let badSeals = 0;
  let at = 0;
  while (at < buf.length) {
    const f = frameAt(buf, at);
    if (f.ok) {
      if (f.kind === 'batch') records.push(decodePayload(f.payload));
      else { const m = decodeSeal(f.payload); if (m !== null) seals.push(m); }
      at = f.next;
      continue;
    }
    if (f.headerOk && f.kind === 'seal') { badSeals++; at = f.next; continue; }
    // Damage: count what the range is known to hold, then find the next record that checks out.
    const start = at;
    let knownRecords = 0;
    let knownRows: number | null = 0;
    let g: Framed = f;
    let reason = f.reason;
    while (!g.ok && g.headerOk) {
      if (g.kind === 'seal') badSeals++;
      else { knownRecords++; knownRows! += g.rows; }
      at = g.next;
      if (at >= buf.length) break;
      g = frameAt(buf, at);
    }
    if (g.ok) { damaged.push({ start, end: at, records: knownRecords, rows: knownRows, reason }); continue; }
    if (at >= buf.length) { damaged.push({ start, end: at, records: knownRecords, rows: knownRows, reason }); break; }
    if (knownRecords > 0) reason = `${reason}; then ${g.reason}`;
    const next = resync(buf, at + 1);
    const end = next < 0 ? buf.length : next;
    damaged.push({ start, end, records: knownRecords, rows: null, reason });
    at = end;
  }
  return { records, seals, badSeals, totalBytes: buf.length, damaged };
}

/** Why the log does not take writes now. */
export interface LogFailure {
  readonly kind: 'write' | 'fsync';
  /** errno code ('ENOSPC', 'EIO', ...) or 'EUNKNOWN'. */
  readonly code: string;
  readonly message: string;
  readonly sinceMs: number;
  /** The segment the failure was on: a checkpoint past it clears an fsync failure. */
  readonly segmentNo: number;
}

function errCode(e: unknown): string {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' ? c : 'EUNKNOWN';
}

export class DiskLog {
  private fd: number;
  /** Bytes of the current segment that hold complete records (the file may be longer only
   * while a failed write's torn bytes could not yet be cut off: `tornTail`). */
  private segmentBytes = 0;
  private tornTail = false;
  private dirty = false;
  /** Bytes appended since the last checkpoint moved the start (drives checkpoint timing). */
  bytesSinceCheckpoint = 0;
  failure: LogFailure | null = null;
  /** Write or fsync errors seen since start (for metrics). */
  errorCount = 0;
  private fsyncTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(readonly walDir: string, public segmentNo: number, readonly fsyncPolicy: 'always' | 'interval' | 'never', fsyncIntervalMs: number, private readonly io: DurableFs = realFs) {
    io.mkdir(walDir);
    this.fd = this.openSegment(segmentNo);
    this.segmentBytes = io.fileSize(this.fd);
    if (fsyncPolicy === 'interval') {
      this.fsyncTimer = setInterval(() => { void this.flush(); }, fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  /** Opens (creating) a segment and makes its directory entry durable before it is used. */
  private openSegment(n: number): number {
    const fd = this.io.open(path.join(this.walDir, segmentName(n)), 'a');
    try {
      this.io.fsyncDir(this.walDir);
    } catch (e) {
      this.io.close(fd);
      throw e;
    }
    return fd;
  }

  private refusal(what: string): ShoalError {
    const f = this.failure;
    const why = f === null ? what : `${what}: ${f.kind === 'fsync' ? 'an fsync of the log failed' : 'a write to the log failed'} (${f.code}: ${f.message})`;
    const extra = f?.kind === 'fsync' ? '; writes resume after a checkpoint rewrites the data' : '; writes resume when the disk takes them again';
    return new ShoalError('SHOAL_ERR_INGEST_DISK', `${why}${extra}; retry (another leaf will take the batch)`, undefined, { disk: { kind: f?.kind ?? 'write', code: f?.code ?? 'EUNKNOWN' } });
  }

  private fail(kind: LogFailure['kind'], e: unknown): void {
    this.errorCount++;
    this.failure = { kind, code: errCode(e), message: (e as Error).message ?? String(e), sinceMs: this.failure?.sinceMs ?? Date.now(), segmentNo: this.segmentNo };
  }

  /** Cuts the current segment back to its last complete record. False when that fails. */
  private cutTail(): boolean {
    try {
      this.io.ftruncate(this.fd, this.segmentBytes);
      this.tornTail = false;
      return true;
    } catch (e) {
      this.tornTail = true;
      this.errorCount++;
      return false;
    }
  }

  /**
   * Appends one batch's record, or throws SHOAL_ERR_INGEST_DISK and leaves the log as it was
   * (the batch is then not acknowledged and must not be applied).
   */
  append(rec: IngestRecord, rows: number): void {
    if (this.failure?.kind === 'fsync') throw this.refusal('the disk log cannot be trusted');
    if (this.tornTail && !this.cutTail()) throw this.refusal('the end of the disk log could not be cut back to its last complete record');
    const header = encodeRecordHeader(rec, rows);
    const recordBytes = header.length + rec.body.length;
    try {
      writevAll(this.io, this.fd, [header, rec.body]);
    } catch (e) {
      this.fail('write', e);
      this.cutTail();
      throw this.refusal('the batch could not be written to the disk log');
    }
    if (this.fsyncPolicy === 'always') {
      try {
        this.io.fdatasync(this.fd);
      } catch (e) {
        this.fail('fsync', e);
        this.cutTail();
        throw this.refusal('the batch could not be made durable');
      }
    } else {
      this.dirty = true;
    }
    this.segmentBytes += recordBytes;
    this.bytesSinceCheckpoint += recordBytes;
    if (this.failure?.kind === 'write') this.failure = null; // the disk takes writes again
    if (this.segmentBytes >= WAL_SEGMENT_BYTES_MAX) {
      // The batch is logged: a rotation that fails only leaves this segment longer.
      try { this.rotate(); } catch { /* tried again after the next append */ }
    }
  }

  /**
   * Appends a seal record. Never throws and never fsyncs by itself (the next batch's fsync, or
   * the interval's, carries it): a seal record that does not make it only means its rows are
   * replayed after a crash. A failed write is cut back like a batch's.
   */
  appendSeal(mark: SealMark): boolean {
    if (this.failure?.kind === 'fsync' || (this.tornTail && !this.cutTail())) return false;
    const rec = encodeSealRecord(mark);
    try {
      writevAll(this.io, this.fd, [rec]);
    } catch (e) {
      this.fail('write', e);
      this.cutTail();
      return false;
    }
    this.dirty = true;
    this.segmentBytes += rec.length;
    this.bytesSinceCheckpoint += rec.length;
    if (this.segmentBytes >= WAL_SEGMENT_BYTES_MAX) {
      try { this.rotate(); } catch { /* tried again after the next append */ }
    }
    return true;
  }

  /** Starts a new segment; returns its number. Records before it are in older segments. On
   * failure the log stays on the current segment and the error is thrown. */
  rotate(): number {
    // After a failed fsync the old segment is not relied on (the checkpoint that rotates now
    // rewrites its data), so it is not synced again: a second fsync may "succeed" falsely.
    if (this.fsyncPolicy !== 'never' && this.failure?.kind !== 'fsync') {
      try {
        this.io.fdatasync(this.fd);
      } catch (e) {
        this.fail('fsync', e);
        throw e;
      }
    }
    const nextFd = this.openSegment(this.segmentNo + 1);
    try { this.io.close(this.fd); } catch { /* its data is synced; nothing more to lose */ }
    this.fd = nextFd;
    this.segmentNo++;
    this.segmentBytes = 0;
    this.tornTail = false;
    this.dirty = false;
    return this.segmentNo;
  }

  /** fsync now, whatever the policy (before a handoff or a stop). Throws on failure. */
  sync(): void {
    try {
      this.io.fdatasync(this.fd);
    } catch (e) {
      this.fail('fsync', e);
      throw e;
    }
    this.dirty = false;
  }

  /** The interval fsync (resolves when it is done; never rejects). A failure stops the log
   * taking writes: it is never ignored. */
  flush(): Promise<void> {
    if (!this.dirty || this.flushing !== null) return this.flushing ?? Promise.resolve();
    this.dirty = false;
    const segmentNo = this.segmentNo;
    this.flushing = this.io.fdatasyncAsync(this.fd).catch((e: unknown) => {
      this.errorCount++;
      this.failure = { kind: 'fsync', code: errCode(e), message: (e as Error).message ?? String(e), sinceMs: Date.now(), segmentNo };
    }).finally(() => { this.flushing = null; });
    return this.flushing;
  }

  /** A checkpoint wrote everything in memory to fresh, fsynced files and moved the log's
   * start to `walStart`: an fsync failure on an earlier segment no longer matters. */
  clearFsyncFailure(walStart: number): void {
    if (this.failure?.kind === 'fsync' && this.failure.segmentNo < walStart) this.failure = null;
  }

  /** Deletes segments older than `segmentNo` (their records are in checkpointed blocks), except
   * those in `keep` (damaged segments, which `keepAside` moves instead of deleting). */
  dropBefore(segmentNo: number, keepAside: (n: number) => boolean = () => false): void {
    let changed = false;
    for (const n of listSegments(this.walDir, this.io)) {
      if (n >= segmentNo || keepAside(n)) continue;
      this.io.unlink(path.join(this.walDir, segmentName(n)));
      changed = true;
    }
    if (changed) this.io.fsyncDir(this.walDir);
  }

  close(): void {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    try { if (this.fsyncPolicy !== 'never' || this.dirty) this.io.fdatasync(this.fd); } catch (e) { this.fail('fsync', e); }
    try { this.io.close(this.fd); } catch { /* closing anyway */ }
  }
}
