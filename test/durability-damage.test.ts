/**
 * Damage on disk, each with its documented outcome (docs/durability.md, "What recovery does"):
 * a torn tail of the newest log segment is cut (never acknowledged); damage anywhere else in the
 * log loses exactly the damaged records, every record past them is replayed, the segment is kept
 * aside in damaged/, and the loss (where, batches, rows) is reported and survives later
 * checkpoints and restarts; a damaged block file loses that block, reported the same way.
 * Row counts are checked against the batches the test wrote, not against fixed numbers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';
import { crc32c } from '../native/shm.js';
import { bindQuery, finish, planQuery, scanBlocks } from '../query/engine.js';
import { LeafStore, type IngestRecord } from '../query/storage/leaf-store.js';
import { LIMITS } from '../query/limits.js';
import { readSegment, segmentName, WAL_MAGIC, WAL_MAGIC_V1 } from '../server/durability/disk-log.js';
import { DiskStore } from '../server/durability/disk-store.js';
import { ShmBlockHome } from '../server/durability/shm-blocks.js';
import { removeSegments } from '../server/durability/shm-handoff.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

function tmp(): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-damage-')); dirs.push(d); return d; }

function open(dir: string): { store: LeafStore; disk: DiskStore } {
  const store = new LeafStore(1 << 30);
  const disk = new DiskStore(dir, 'dmg', store, { fsync: 'always', fsyncIntervalMs: 200, checkpointBytes: 2 ** 40, checkpointIntervalMs: 2 ** 40 }, silent);
  return { store, disk };
}

function batch(k: number, rows: number): IngestRecord {
  const lines = Array.from({ length: rows }, (_, j) => JSON.stringify({ time: 1_790_000_000 + k, seq: k * 1000 + j }));
  return { table: 'ev', nowSeconds: 1_790_000_000, format: 'ndjson', body: Buffer.from(lines.join('\n')), batchId: `b${k}` };
}

function seqs(store: LeafStore): number[] {
  const t = store.tables.get('ev');
  if (t === undefined) return [];
  const plan = planQuery('SELECT seq FROM ev LIMIT 100000', 0);
  const blocks = [...t.sealed, ...(t.open.rowCount > 0 ? [t.open] : [])];
  return finish(plan, scanBlocks(bindQuery(plan, t.schema, 0, false), blocks)).rows.map((r) => r[0] as number).sort((a, b) => a - b);
}

const expected = (ks: number[], rowsOf: (k: number) => number) => ks.flatMap((k) => Array.from({ length: rowsOf(k) }, (_, j) => k * 1000 + j)).sort((a, b) => a - b);
const rowsOf = (k: number) => 10 + k;

/** Writes batches 0..count-1, `perSegment` to a log segment; returns the data dir. */
function writeLog(count: number, perSegment: number): string {
  const dir = tmp();
  const { store, disk } = open(dir);
  disk.recover();
  for (let k = 0; k < count; k++) {
    store.ingest(batch(k, rowsOf(k)), (r, rows) => disk.append(r, rows));
    if ((k + 1) % perSegment === 0 && k + 1 < count) disk.log.rotate();
  }
  disk.log.close();
  return dir;
}

/** Offsets of each record in a segment file (v2 framing: 20-byte header + payload). */
function recordOffsets(file: string): number[] {
  const buf = fs.readFileSync(file);
  const out: number[] = [];
  for (let at = 0; at < buf.length; at += 20 + buf.readUInt32LE(at + 4)) out.push(at);
  return out;
}

function flip(file: string, offset: number): void {
  const buf = fs.readFileSync(file);
  buf[offset] = buf[offset]! ^ 0xff;
  fs.writeFileSync(file, buf);
}

describe('log damage', () => {
  it('a damaged record in a middle segment loses exactly that batch, replays the rest, and says so', async () => {
    const dir = writeLog(9, 3); // segments 1, 2, 3 with batches 0-2, 3-5, 6-8
    const seg2 = path.join(dir, 'wal', segmentName(2));
    const offs = recordOffsets(seg2);
    flip(seg2, offs[1]! + 40); // inside batch 4's body
    const seg2Bytes = fs.statSync(seg2).size;
    const { store, disk } = open(dir);
    const res = disk.recover();
    expect(seqs(store)).toEqual(expected([0, 1, 2, 3, 5, 6, 7, 8], rowsOf));
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]).toMatchObject({ kind: 'log', batches: 1, rows: rowsOf(4), where: `wal/${segmentName(2)} bytes ${offs[1]}-${offs[2]}` });
    expect(res.notes.join('\n')).toContain(`DATA LOST: ${rowsOf(4)} rows in 1 batch`);
    // The damaged segment is not cut: every byte of it is still there.
    expect(fs.statSync(seg2).size).toBe(seg2Bytes);
    // The next checkpoint moves it aside (never deletes it) and keeps the report.
    store.ingest(batch(20, 3), (r, rows) => disk.append(r, rows));
    await disk.checkpoint();
    expect(fs.existsSync(seg2)).toBe(false);
    const kept = fs.readdirSync(path.join(dir, 'damaged'));
    expect(kept.some((f) => f.startsWith(segmentName(2)))).toBe(true);
    expect(disk.health().losses[0]!.keptAs).toMatch(/^damaged\/00000002\.log\./);
    await disk.close();
    // A later start (and a later checkpoint) still reports it.
    const again = open(dir);
    const res2 = again.disk.recover();
    expect(res2.losses).toEqual([]); // nothing new found
    expect(again.disk.health().losses).toHaveLength(1);
    expect(again.disk.health().losses[0]).toMatchObject({ rows: rowsOf(4), batches: 1 });
    again.store.ingest(batch(21, 3), (r, rows) => again.disk.append(r, rows));
    await again.disk.checkpoint();
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.losses).toHaveLength(1);
    expect(seqs(again.store)).toEqual(expected([0, 1, 2, 3, 5, 6, 7, 8, 20, 21], (k) => (k >= 20 ? 3 : rowsOf(k))));
    await again.disk.close();
  });

  it('damaged framing (a record header) resyncs at the next good record: later records are recovered', () => {
    const dir = writeLog(6, 6);
    const seg = path.join(dir, 'wal', segmentName(1));
    const offs = recordOffsets(seg);
    flip(seg, offs[2]!); // batch 2's magic
    const { store, disk } = open(dir);
    const res = disk.recover();
    expect(seqs(store)).toEqual(expected([0, 1, 3, 4, 5], rowsOf));
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]).toMatchObject({ kind: 'log', rows: null, where: `wal/${segmentName(1)} bytes ${offs[2]}-${offs[3]}` });
    disk.log.close();
  });

  it('a torn tail of the newest segment is cut without a loss report (it was never acknowledged)', () => {
    const dir = writeLog(4, 2);
    const seg = path.join(dir, 'wal', segmentName(2));
    const offs = recordOffsets(seg);
    const size = fs.statSync(seg).size;
    fs.truncateSync(seg, size - 7); // the last record is cut short
    const { store, disk } = open(dir);
    const res = disk.recover();
    expect(seqs(store)).toEqual(expected([0, 1, 2], rowsOf));
    expect(res.losses).toEqual([]);
    expect(res.notes.join('\n')).toContain('never acknowledged');
    expect(fs.statSync(seg).size).toBe(offs[1]);
    disk.log.close();
  });

  it('bad bytes at the end of an older segment are a loss, not a torn tail', () => {
    const dir = writeLog(4, 2);
    const seg1 = path.join(dir, 'wal', segmentName(1));
    const offs = recordOffsets(seg1);
    fs.truncateSync(seg1, fs.statSync(seg1).size - 5);
    const { store, disk } = open(dir);
    const res = disk.recover();
    expect(seqs(store)).toEqual(expected([0, 2, 3], rowsOf));
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]!.where).toBe(`wal/${segmentName(1)} bytes ${offs[1]}-${fs.statSync(seg1).size}`);
    disk.log.close();
  });

  it('a missing segment in the middle of the log is reported', () => {
    const dir = writeLog(6, 2);
    fs.rmSync(path.join(dir, 'wal', segmentName(2)));
    const { store, disk } = open(dir);
    const res = disk.recover();
    expect(seqs(store)).toEqual(expected([0, 1, 4, 5], rowsOf));
    expect(res.losses.map((l) => [l.where, l.reason])).toEqual([[`wal/${segmentName(2)}`, 'log segment missing']]);
    disk.log.close();
  });

  it('a seal record with a damaged body is skipped, not a loss (a hint: the rows it names are in the batch records)', () => {
    const dir = tmp();
    const { store, disk } = open(dir);
    disk.recover();
    const mark = (k: number) => ({ base: 1, table: 'ev', startRow: 0, rows: rowsOf(k), segment: `/shoal-dmg-00000000-${k}`, bytes: 64, crc: 0, schema: [['time', 'time'], ['seq', 'int']] as [string, 'time' | 'int'][] });
    for (let k = 0; k < 4; k++) {
      store.ingest(batch(k, rowsOf(k)), (r, rows) => disk.append(r, rows));
      expect(disk.log.appendSeal(mark(k))).toBe(true);
      if (k === 1) disk.log.rotate();
    }
    disk.log.close();
    const seg1 = path.join(dir, 'wal', segmentName(1));
    expect(readSegment(seg1).seals.map((m) => m.segment)).toEqual([mark(0).segment, mark(1).segment]);
    const offs = recordOffsets(seg1); // batch 0, seal 0, batch 1, seal 1
    expect(offs).toHaveLength(4);
    flip(seg1, offs[1]! + 25); // inside seal 0's body, in an older segment
    const read = readSegment(seg1);
    expect(read).toMatchObject({ badSeals: 1, damaged: [] });
    expect(read.seals.map((m) => m.segment)).toEqual([mark(1).segment]);
    const again = open(dir);
    const res = again.disk.recover();
    expect(res.losses).toEqual([]);
    expect(res.notes.join('\n')).toContain('1 damaged seal record skipped');
    expect(seqs(again.store)).toEqual(expected([0, 1, 2, 3], rowsOf));
    again.disk.log.close();
  });

  it('reads records of the v1 format (older builds) as before', () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'wal'), { recursive: true });
    const rec = batch(0, 5);
    const table = Buffer.from(rec.table);
    const id = Buffer.from(rec.batchId!);
    const payload = Buffer.concat([Buffer.from([1]), Buffer.alloc(8), Buffer.from([table.length, 0]), table, Buffer.from([id.length, 0]), id, rec.body]);
    payload.writeDoubleLE(rec.nowSeconds, 1);
    const head = Buffer.alloc(12);
    head.writeUInt32LE(WAL_MAGIC_V1, 0);
    head.writeUInt32LE(payload.length, 4);
    head.writeUInt32LE(crc32c(payload) >>> 0, 8);
    fs.writeFileSync(path.join(dir, 'wal', segmentName(1)), Buffer.concat([head, payload]));
    expect(readSegment(path.join(dir, 'wal', segmentName(1))).records).toHaveLength(1);
    const { store, disk } = open(dir);
    disk.recover();
    expect(seqs(store)).toEqual(expected([0], () => 5));
    disk.log.close();
  });
});

describe('block file damage', () => {
  it('a damaged block file loses that block: reported with its rows, file kept aside, the rest served', async () => {
    const dir = tmp();
    const { store, disk } = open(dir);
    disk.recover();
    store.ingest(batch(0, 30), (r, rows) => disk.append(r, rows));
    await disk.checkpoint(); // block 1 holds batch 0
    store.ingest(batch(1, 20), (r, rows) => disk.append(r, rows));
    await disk.checkpoint(); // block 2 holds batch 1
    store.ingest(batch(2, 5), (r, rows) => disk.append(r, rows)); // in the log only
    await disk.close();
    const blk = path.join(dir, 'blocks', '0000000001.blk');
    flip(blk, fs.statSync(blk).size - 3);
    const again = open(dir);
    const res = again.disk.recover();
    expect(seqs(again.store)).toEqual(expected([1, 2], (k) => [30, 20, 5][k]!));
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]).toMatchObject({ kind: 'block', where: 'blocks/0000000001.blk', rows: 30, table: 'ev' });
    expect(res.losses[0]!.keptAs).toMatch(/^damaged\/0000000001\.blk\./);
    expect(fs.existsSync(blk)).toBe(false);
    await again.disk.checkpoint();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).losses).toHaveLength(1);
    await again.disk.close();
  });
});

/**
 * With shared memory, recovery first walks the record headers (log-index.ts) and maps the blocks
 * sealed since the checkpoint: damage to a record whose rows are all in a mapped block loses
 * nothing (its body is never read); damage to one it must replay loses that batch, named with
 * its rows; damaged framing turns the walk off and the log is replayed as in the cases above.
 */
describe.runIf(shm.nativeAvailable())('log damage with blocks sealed since the checkpoint (the header walk)', () => {
  const LEAF = `dmgseal${process.pid}`;
  const BLOCK_ROWS = 32;
  const limits = LIMITS as { blockRowsMax: number };
  let blockRowsBefore = 0;
  beforeEach(() => { blockRowsBefore = limits.blockRowsMax; limits.blockRowsMax = BLOCK_ROWS; });
  afterEach(() => { limits.blockRowsMax = blockRowsBefore; removeSegments(LEAF); });

  function openWithHome(dir: string): { store: LeafStore; disk: DiskStore } {
    const store = new LeafStore(1 << 30);
    const home = new ShmBlockHome(LEAF);
    store.home = home;
    const disk = new DiskStore(dir, LEAF, store, { fsync: 'always', fsyncIntervalMs: 200, checkpointBytes: 2 ** 40, checkpointIntervalMs: 2 ** 40 }, silent);
    disk.home = home;
    return { store, disk };
  }

  /** Batches 0..8 into one segment with blocks of 32 rows sealing as they go, then a "crash"
   * (the log closed, nothing sealed or checkpointed, the segments left in shared memory). */
  function crashedLog(): { dir: string; seg: string; batchAt: number[] } {
    const dir = tmp();
    const { store, disk } = openWithHome(dir);
    disk.recover();
    for (let k = 0; k < 9; k++) store.ingest(batch(k, rowsOf(k)), (r, rows) => disk.append(r, rows));
    disk.log.close();
    const seg = path.join(dir, 'wal', segmentName(1));
    const buf = fs.readFileSync(seg);
    return { dir, seg, batchAt: recordOffsets(seg).filter((at) => buf.readUInt32LE(at) === WAL_MAGIC) };
  }
  const all = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  let total = 0;
  for (const k of all) total += rowsOf(k);
  const sealedRows = Math.floor(total / BLOCK_ROWS) * BLOCK_ROWS;

  it('maps the sealed blocks and replays only the rows after them', () => {
    const { dir } = crashedLog();
    const { store, disk } = openWithHome(dir);
    const res = disk.recover();
    expect(res).toMatchObject({ sealBlocks: sealedRows / BLOCK_ROWS, sealRows: sealedRows, losses: [] });
    expect(seqs(store)).toEqual(expected(all, rowsOf));
    disk.log.close();
  });

  it('a damaged body of a record whose rows are all in a mapped block loses nothing', () => {
    const { dir, seg, batchAt } = crashedLog();
    flip(seg, batchAt[0]! + 40); // batch 0: rows 0-9, in the first block
    const { store, disk } = openWithHome(dir);
    const res = disk.recover();
    expect(res.losses).toEqual([]);
    expect(res.sealBlocks).toBe(sealedRows / BLOCK_ROWS);
    expect(seqs(store)).toEqual(expected(all, rowsOf));
    disk.log.close();
  });

  it('a damaged body of a record it must replay loses exactly that batch, with its rows', () => {
    const { dir, seg, batchAt } = crashedLog();
    flip(seg, batchAt[8]! + 40); // batch 8: the last rows, after every sealed block
    const { store, disk } = openWithHome(dir);
    const res = disk.recover();
    expect(res.sealBlocks).toBe(sealedRows / BLOCK_ROWS);
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]).toMatchObject({ kind: 'log', batches: 1, rows: rowsOf(8), where: `wal/${segmentName(1)} bytes ${batchAt[8]}-${fs.statSync(seg).size}` });
    expect(seqs(store)).toEqual(expected(all.filter((k) => k !== 8), rowsOf));
    disk.log.close();
  });

  it('damaged framing turns the header walk off: the log is replayed past it as without shared memory', () => {
    const { dir, seg, batchAt } = crashedLog();
    flip(seg, batchAt[2]!); // batch 2's magic
    const { store, disk } = openWithHome(dir);
    const res = disk.recover();
    expect(res.sealBlocks).toBe(0);
    expect(res.losses).toHaveLength(1);
    expect(res.losses[0]).toMatchObject({ kind: 'log', rows: null });
    expect(seqs(store)).toEqual(expected(all.filter((k) => k !== 2), rowsOf));
    disk.log.close();
  });
});
