/**
 * The write-ahead log of a leaf: every accepted batch is appended (write(2), synchronously, on
 * the event loop) before the leaf acknowledges it, so a crash after the answer cannot lose it.
 * The record keeps the raw request body and the arrival time, and replay runs it through the
 * very same decoder, so a replayed batch becomes exactly the rows it became the first time.
 *
 *   record: u32 magic 'SHWL' | u32 payload bytes | u32 crc32c(payload) | payload
 *   payload: u8 format | f64 arrival seconds | u16 table bytes | table | u16 id bytes | batch id | body
 *
 * Segments (wal/00000001.log, ...) rotate at a size bound; a checkpoint (checkpoint.ts) moves the
 * log's start forward and deletes older segments. fsync policy: 'always' fsyncs each record before
 * the answer (survives power loss, slowest); 'interval' (default) fsyncs every fsyncIntervalMs
 * (a process crash loses nothing, a power loss may lose that interval); 'never' leaves it to the OS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../native/shm.js';
import type { BodyFormat } from '../../query/storage/ingest-decoder.js';
import type { IngestRecord } from '../../query/storage/leaf-store.js';

export const WAL_MAGIC = 0x4c574853; // 'SHWL'
const RECORD_PREFIX_BYTES = 12;
/** A segment is rotated past this size, bounding what one replay read holds in memory. */
export const WAL_SEGMENT_BYTES_MAX = 64 * 1024 * 1024;
const FORMATS: BodyFormat[] = ['json', 'ndjson', 'auto'];

export function segmentName(n: number): string { return String(n).padStart(8, '0') + '.log'; }

export function listSegments(walDir: string): number[] {
  if (!fs.existsSync(walDir)) return [];
  return fs.readdirSync(walDir).filter((f) => /^\d{8}\.log$/.test(f)).map((f) => Number(f.slice(0, 8))).sort((a, b) => a - b);
}

export function encodeRecord(rec: IngestRecord): Buffer {
  const table = Buffer.from(rec.table);
  const id = Buffer.from(rec.batchId ?? '');
  const payloadBytes = 1 + 8 + 2 + table.length + 2 + id.length + rec.body.length;
  const out = Buffer.allocUnsafe(RECORD_PREFIX_BYTES + payloadBytes);
  let at = RECORD_PREFIX_BYTES;
  out.writeUInt8(FORMATS.indexOf(rec.format), at); at += 1;
  out.writeDoubleLE(rec.nowSeconds, at); at += 8;
  out.writeUInt16LE(table.length, at); at += 2;
  table.copy(out, at); at += table.length;
  out.writeUInt16LE(id.length, at); at += 2;
  id.copy(out, at); at += id.length;
  rec.body.copy(out, at);
  out.writeUInt32LE(WAL_MAGIC, 0);
  out.writeUInt32LE(payloadBytes, 4);
  out.writeUInt32LE(crc32c(out.subarray(RECORD_PREFIX_BYTES)) >>> 0, 8);
  return out;
}

/** Records of one segment, up to the first torn or corrupt one (whose offset is returned). */
export function readSegment(file: string): { records: IngestRecord[]; goodBytes: number; totalBytes: number; badReason: string | null } {
  const buf = fs.readFileSync(file);
  const records: IngestRecord[] = [];
  let at = 0;
  let badReason: string | null = null;
  while (at < buf.length) {
    if (buf.length - at < RECORD_PREFIX_BYTES) { badReason = 'torn record prefix at the end'; break; }
    if (buf.readUInt32LE(at) !== WAL_MAGIC) { badReason = `bad magic at offset ${at}`; break; }
    const len = buf.readUInt32LE(at + 4);
    if (at + RECORD_PREFIX_BYTES + len > buf.length) { badReason = `torn record at offset ${at}`; break; }
    const payload = buf.subarray(at + RECORD_PREFIX_BYTES, at + RECORD_PREFIX_BYTES + len);
    if ((crc32c(payload) >>> 0) !== buf.readUInt32LE(at + 8)) { badReason = `checksum mismatch at offset ${at}`; break; }
    let p = 0;
    const format = FORMATS[payload.readUInt8(p)] ?? 'auto'; p += 1;
    const nowSeconds = payload.readDoubleLE(p); p += 8;
    const tl = payload.readUInt16LE(p); p += 2;
    const table = payload.toString('utf8', p, p + tl); p += tl;
    const il = payload.readUInt16LE(p); p += 2;
    const batchId = il > 0 ? payload.toString('utf8', p, p + il) : null; p += il;
    records.push({ table, nowSeconds, format, batchId, body: payload.subarray(p) });
    at += RECORD_PREFIX_BYTES + len;
  }
  return { records, goodBytes: at, totalBytes: buf.length, badReason };
}

export class DiskLog {
  private fd: number;
  private segmentBytes = 0;
  private dirty = false;
  /** Bytes appended since the last checkpoint moved the start (drives checkpoint timing). */
  bytesSinceCheckpoint = 0;
  private fsyncTimer: NodeJS.Timeout | null = null;

  constructor(readonly walDir: string, public segmentNo: number, readonly fsyncPolicy: 'always' | 'interval' | 'never', fsyncIntervalMs: number) {
    fs.mkdirSync(walDir, { recursive: true });
    this.fd = fs.openSync(path.join(walDir, segmentName(segmentNo)), 'a');
    this.segmentBytes = fs.fstatSync(this.fd).size;
    if (fsyncPolicy === 'interval') {
      this.fsyncTimer = setInterval(() => this.flush(), fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  append(rec: IngestRecord): void {
    const buf = encodeRecord(rec);
    let written = 0;
    while (written < buf.length) written += fs.writeSync(this.fd, buf, written, buf.length - written);
    this.segmentBytes += buf.length;
    this.bytesSinceCheckpoint += buf.length;
    if (this.fsyncPolicy === 'always') fs.fdatasyncSync(this.fd);
    else this.dirty = true;
    if (this.segmentBytes >= WAL_SEGMENT_BYTES_MAX) this.rotate();
  }

  /** Starts a new segment; returns its number. Records before it are in older segments. */
  rotate(): number {
    if (this.fsyncPolicy !== 'never') fs.fdatasyncSync(this.fd);
    fs.closeSync(this.fd);
    this.segmentNo++;
    this.fd = fs.openSync(path.join(this.walDir, segmentName(this.segmentNo)), 'a');
    this.segmentBytes = 0;
    this.dirty = false;
    return this.segmentNo;
  }

  /** fsync now, whatever the policy (before a handoff or a stop). */
  sync(): void {
    fs.fdatasyncSync(this.fd);
    this.dirty = false;
  }

  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    fs.fdatasync(this.fd, () => { /* best effort between records; a failure shows at the next write */ });
  }

  /** Deletes segments older than `segmentNo` (their records are in checkpointed blocks). */
  dropBefore(segmentNo: number): void {
    for (const n of listSegments(this.walDir)) if (n < segmentNo) fs.rmSync(path.join(this.walDir, segmentName(n)), { force: true });
  }

  close(): void {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    try { fs.fdatasyncSync(this.fd); } catch { /* closing anyway */ }
    fs.closeSync(this.fd);
  }
}
