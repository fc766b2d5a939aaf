/**
 * Crash recovery's first pass over the log when blocks sealed since the checkpoint may be in
 * shared memory (docs/durability.md "Blocks sealed since the checkpoint"): walks the record
 * headers of each segment without reading the bodies, so the rows the seal records cover cost
 * neither a decode nor a read, and then reads back only the records that must be replayed.
 *
 * The walk trusts what a header's own CRC covers (magic, payload length, rows, body CRC) and
 * reads the payload's start for the table and batch id; a body is checked (CRC) only when it is
 * read for replay. A record whose rows are all in a mapped block is never read, so damage to its
 * body loses nothing. The walk gives up (null: the caller replays the whole log the ordinary
 * way, which resyncs past damage) at anything it cannot step over exactly: a header that does
 * not check out, a v1 record, a record cut short anywhere but the end of the newest segment,
 * a gap in the segment numbers.
 */
import path from 'node:path';
import { crc32c } from '../../native/shm.js';
import type { IngestRecord } from '../../query/storage/leaf-store.js';
import { decodePayload, decodeSeal, frameAt, PREFIX_BYTES, SEAL_MAGIC, segmentName, WAL_MAGIC, type SealMark } from './disk-log.js';
import type { DurableFs } from './durable-fs.js';

/** One batch record as the header walk saw it. */
export interface IndexedRecord {
  readonly offset: number;
  /** Header and payload. */
  readonly bytes: number;
  readonly rows: number;
  readonly table: string;
  readonly batchId: string | null;
}

export interface SegmentIndex {
  readonly segment: number;
  readonly records: IndexedRecord[];
  /** Seal records whose body checked out, in log order. */
  readonly seals: SealMark[];
  /** Seal records whose body did not (skipped: a hint, nothing lost). */
  readonly badSeals: number;
  readonly totalBytes: number;
  /** Where a record cut short by the end of the file starts (a torn tail), or null. */
  readonly tornAt: number | null;
}

/** The first pass: every segment's index, each table's rows logged from walStart, and the
 * seal records counting from walStart by table in row order. */
export interface SealPlan {
  readonly indexes: SegmentIndex[];
  readonly seals: Map<string, SealMark[]>;
  readonly logged: Map<string, number>;
  readonly bytesRead: number;
}

/** Bytes read at a time by the header walk: a header and its payload's start, or many small records. */
const WINDOW_BYTES = 64 * 1024;
/** format, arrival time, table length: the payload bytes before the table name. */
const META_FIXED_BYTES = 11;

/** Reads ranges of an open file through one buffer, refilled only when a range is outside it. */
class Window {
  private buf = Buffer.allocUnsafe(WINDOW_BYTES);
  private start = 0;
  private length = 0;
  bytesRead = 0;
  constructor(private readonly io: DurableFs, private readonly fd: number, private readonly size: number) {}

  /** Bytes [pos, pos + len) of the file (a view, valid until the next call). */
  at(pos: number, len: number): Buffer {
    if (pos < this.start || pos + len > this.start + this.length) {
      const want = Math.min(Math.max(len, WINDOW_BYTES), this.size - pos);
      if (want > this.buf.length) this.buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) { const n = this.io.read(this.fd, this.buf, got, want - got, pos + got); if (n === 0) break; got += n; }
      this.bytesRead += got;
      this.start = pos;
      this.length = got;
      if (got < len) throw new RangeError(`read ${got} of ${len} bytes at ${pos}`);
    }
    return this.buf.subarray(pos - this.start, pos - this.start + len);
  }
}

/** The header walk of one segment, or null when its framing cannot be stepped over exactly. */
export function indexSegment(file: string, segment: number, io: DurableFs): { index: SegmentIndex | null; bytesRead: number } {
  const fd = io.open(file, 'r');
  try {
    const size = io.fileSize(fd);
    const win = new Window(io, fd, size);
    const records: IndexedRecord[] = [];
    const seals: SealMark[] = [];
    let badSeals = 0;
    let tornAt: number | null = null;
    let at = 0;
    while (at < size) {
      if (size - at < PREFIX_BYTES) { tornAt = at; break; }
      const h = win.at(at, PREFIX_BYTES);
      const magic = h.readUInt32LE(0);
      if ((magic !== WAL_MAGIC && magic !== SEAL_MAGIC) || (crc32c(h.subarray(0, 16)) >>> 0) !== h.readUInt32LE(16)) return { index: null, bytesRead: win.bytesRead };
      const len = h.readUInt32LE(4);
      const rows = h.readUInt32LE(8);
      const bodyCrc = h.readUInt32LE(12);
      const next = at + PREFIX_BYTES + len;
      if (next > size) { tornAt = at; break; }
      if (magic === SEAL_MAGIC) {
        const payload = win.at(at + PREFIX_BYTES, len);
        const mark = (crc32c(payload) >>> 0) === bodyCrc ? decodeSeal(payload) : null;
        if (mark !== null) seals.push(mark); else badSeals++;
        at = next;
        continue;
      }
      if (len < META_FIXED_BYTES + 2) return { index: null, bytesRead: win.bytesRead };
      const tl = win.at(at + PREFIX_BYTES, META_FIXED_BYTES).readUInt16LE(9);
      if (META_FIXED_BYTES + tl + 2 > len) return { index: null, bytesRead: win.bytesRead };
      const meta = win.at(at + PREFIX_BYTES, META_FIXED_BYTES + tl + 2);
      const il = meta.readUInt16LE(META_FIXED_BYTES + tl);
      if (META_FIXED_BYTES + tl + 2 + il > len) return { index: null, bytesRead: win.bytesRead };
      const table = meta.toString('utf8', META_FIXED_BYTES, META_FIXED_BYTES + tl);
      const batchId = il > 0 ? win.at(at + PREFIX_BYTES + META_FIXED_BYTES + tl + 2, il).toString('utf8') : null;
      records.push({ offset: at, bytes: next - at, rows, table, batchId });
      at = next;
    }
    return { index: { segment, records, seals, badSeals, totalBytes: size, tornAt }, bytesRead: win.bytesRead };
  } finally {
    io.close(fd);
  }
}

/** The first pass over segments `segments` (from walStart on), or null when rows cannot be
 * counted as they were logged (see the module comment). */
export function planSeals(walDir: string, segments: readonly number[], walStart: number, io: DurableFs): SealPlan | null {
  const indexes: SegmentIndex[] = [];
  const seals = new Map<string, SealMark[]>();
  const logged = new Map<string, number>();
  let bytesRead = 0;
  for (let i = 0; i < segments.length; i++) {
    const n = segments[i]!;
    if ((i === 0 && n !== walStart) || (i > 0 && n !== segments[i - 1]! + 1)) return null;
    const r = indexSegment(path.join(walDir, segmentName(n)), n, io);
    bytesRead += r.bytesRead;
    if (r.index === null || (r.index.tornAt !== null && i !== segments.length - 1)) return null;
    for (const rec of r.index.records) logged.set(rec.table, (logged.get(rec.table) ?? 0) + rec.rows);
    for (const m of r.index.seals) {
      if (m.base !== walStart) continue;
      const list = seals.get(m.table) ?? [];
      list.push(m);
      seals.set(m.table, list);
    }
    indexes.push(r.index);
  }
  for (const list of seals.values()) list.sort((a, b) => a.startRow - b.startRow);
  return { indexes, seals, logged, bytesRead };
}

/** A record read back for replay: decoded, or why its body did not check out. */
export type ReadBack = { readonly rec: IndexedRecord } & ({ readonly ok: true; readonly logged: IngestRecord } | { readonly ok: false; readonly reason: string });

/** Reads records `recs` (consecutive in the file: one read spans them) and checks each body;
 * the answers are in the order of `recs`. */
export function readRecords(file: string, recs: readonly IndexedRecord[], io: DurableFs): { out: ReadBack[]; bytesRead: number } {
  const first = recs[0]!.offset;
  const end = recs[recs.length - 1]!.offset + recs[recs.length - 1]!.bytes;
  const buf = Buffer.allocUnsafe(end - first);
  const fd = io.open(file, 'r');
  let got = 0;
  try { while (got < buf.length) { const n = io.read(fd, buf, got, buf.length - got, first + got); if (n === 0) break; got += n; } } finally { io.close(fd); }
  const out: ReadBack[] = [];
  for (const rec of recs) {
    if (rec.offset + rec.bytes - first > got) { out.push({ rec, ok: false, reason: `record at offset ${rec.offset} is no longer there (the file is ${first + got} bytes)` }); continue; }
    const f = frameAt(buf.subarray(0, rec.offset + rec.bytes - first), rec.offset - first);
    if (f.ok && f.kind === 'batch') out.push({ rec, ok: true, logged: decodePayload(f.payload) });
    else out.push({ rec, ok: false, reason: f.ok ? `record at offset ${rec.offset} changed kind since it was indexed` : f.reason.replace(/offset \d+/, `offset ${rec.offset}`) });
  }
  return { out, bytesRead: got };
}
