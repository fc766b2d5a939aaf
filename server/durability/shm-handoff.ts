/**
 * The planned-restart handoff through POSIX shared memory (DESIGN.md "Durability and restart").
 *
 * Sealed blocks are born in shared memory (shm-blocks.ts): each already sits in its own segment
 * with the CRC-32C taken when it was written. So the save (SIGTERM or POST /v1/admin/handoff,
 * after writes stopped and queries finished) seals the open blocks (which places them too),
 * copies only blocks that could not be placed (a full /dev/shm), and writes a meta segment
 * listing every block's segment and CRC, the schemas, the disk state the successor takes over,
 * and a header: magic, layout version, leaf identity, a valid flag set only once everything is
 * written, and the CRC of the metadata. Its cost is the open blocks plus the metadata, not the
 * data.
 *
 * Restore (start): a meta segment that is valid, of this layout version and this leaf, with
 * intact metadata and blocks, is taken: each block segment is mapped as a SharedArrayBuffer
 * (zero copy: restore time hardly grows with data size), its image header and bounds checked,
 * and the successor owns the segments from then on (they stay, for its own handoff and for
 * crash recovery). Anything else falls back to disk, with the reason logged; the lifecycle then
 * removes every segment of this leaf that disk recovery did not reuse.
 *
 * The CRC-32C of each block's bytes is checked right after the leaf starts serving
 * (verifyTakenBlocks, a slice at a time between turns of the event loop), not before: reading
 * every byte costs about two memcpys of the data (page faults and the CRC), which is what the
 * mapping saves. A mismatch then makes the leaf recover from disk in place (server/leaf/lifecycle.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as shm from '../../native/shm.js';
import { decodeBlock, encodeBlock } from '../../query/storage/block-codec.js';
import { allocateBlockId, SealedBlock, type EvictedRange } from '../../query/storage/table.js';
import { LIMITS } from '../../query/limits.js';
import type { ColumnType } from '../../query/storage/types.js';
import type { BlockFile, DiskStore, Manifest } from './disk-store.js';
import type { SealState } from './seal-count.js';
import { listSegments } from './disk-log.js';
import { realFs, removeFileDurable, writeSmallFileDurable, type DurableFs } from './durable-fs.js';
import { BINDING_FILE, META_FLAG_LIVE, META_FLAG_VALID, META_FLAG_WRITING, META_MAGIC, META_PREFIX_BYTES, metaSegment, removeSegments, segmentPrefix, setMetaFlag, SHM_LAYOUT_VERSION, writeMetaSegment, type Binding } from './shm-segments.js';
import { crcOfImage, ShmBlockHome } from './shm-blocks.js';
import type { LeafStore } from '../../query/storage/leaf-store.js';

export { metaSegment, removeSegments, segmentPrefix, SHM_LAYOUT_VERSION };
/** Bytes copied between full garbage collections, for blocks that were not in shared memory. A
 * block's heap memory is returned only when the collector frees its buffers, and nothing else
 * triggers a collection during the save: without these, the leaf holds that data twice at the
 * end (measured: 1.5-2x). Each costs a few ms; the data held twice is at most this much. */
const GC_HINT_BYTES = 256 * 1024 * 1024;

/** The collector, exposed on demand (`--expose-gc` set at run time) if node was not started
 * with it; undefined if that is refused. */
function collector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

/** `timeMin`, `timeMax` and `dataBytes` (the block's column bytes): optional, so a handoff
 * written before they existed still restores (decoding every block at once). */
interface BlockEntry { segment: string; bytes: number; crc: number; rows: number; timeMin?: number; timeMax?: number; dataBytes?: number; file: BlockFile | null }
interface Meta {
  leafId: string;
  gen: string;
  pid: number;
  createdAtMs: number;
  /** The data directory (absolute, resolved) whose successor may take this handoff. */
  dataDir: string;
  /** After this instant any leaf start on the machine removes the handoff; null: never. */
  expiresAtMs: number | null;
  walNext: number | null;
  manifest: Manifest | null;
  /** Where the log's seal records count from (absent in handoffs of older builds, null: not
   * counted): the successor goes on counting (disk-store.ts). */
  seal?: SealState | null;
  /** evictionLog: optional, so a handoff written before it existed still restores. */
  tables: { name: string; schema: [string, ColumnType][]; evictedRows: number; evictedBlocks: number; evictionLog?: EvictedRange[]; blocks: BlockEntry[] }[];
  batchIds: [string, number][];
  rows: number;
  bytes: number;
}

export interface HandoffResult {
  rows: number; bytes: number; blocks: number; ms: number; expiresAtMs: number | null;
  /** Blocks (and bytes) that were already in shared memory, and those copied now. */
  inPlaceBlocks: number; copiedBlocks: number; copiedBytes: number;
}

/** Where a handoff belongs: its data directory (and the file system to reach it through). */
export interface HandoffBinding {
  readonly dataDir: string;
  /** Seconds a handoff may wait for its successor before any leaf start removes it; null: forever. */
  readonly ttlSeconds: number | null;
  readonly io?: DurableFs;
}

function resolvedDir(dir: string): string {
  try { return fs.realpathSync(dir); } catch { return path.resolve(dir); }
}

/** Writes the leaf's data into shared memory. The caller has stopped writes and queries and exits
 * after. `home` holds the blocks already in shared memory (null: every block is copied). */
export function saveToShm(leafId: string, store: LeafStore, disk: DiskStore | null, binding: HandoffBinding, home: ShmBlockHome | null = null): HandoffResult {
  const started = performance.now();
  const io = binding.io ?? realFs;
  const own = home ?? new ShmBlockHome(leafId);
  // The old meta (a live claim, or a stale handoff) goes first: until the new one is valid, no
  // successor may take anything. Block segments this process does not hold are stale.
  shm.unlink(metaSegment(leafId));
  own.removeUnowned();
  const gen = randomBytes(4).toString('hex');
  const createdAtMs = Date.now();
  const expiresAtMs = binding.ttlSeconds === null ? null : createdAtMs + binding.ttlSeconds * 1000;
  const meta: Meta = { leafId, gen, pid: process.pid, createdAtMs, dataDir: resolvedDir(binding.dataDir), expiresAtMs, walNext: null, manifest: null, tables: [], batchIds: store.recentBatchIdList(20_000), rows: 0, bytes: 0 };
  if (disk !== null) { const s = disk.currentState(); meta.manifest = s.manifest; meta.walNext = s.walNext; }
  let blocks = 0;
  let inPlaceBlocks = 0;
  let copiedBlocks = 0;
  let copiedBytes = 0;
  let sinceGc = 0;
  const gc = collector();
  // Seal first (that places the open blocks), then see which of this leaf's segments exist: one
  // directory read, not one open per block.
  for (const t of store.tables.values()) t.sealOpen();
  if (disk !== null) meta.seal = disk.sealState();
  const present = new Set(shm.list(segmentPrefix(leafId)));
  for (const t of store.tables.values()) {
    const entry: Meta['tables'][number] = { name: t.name, schema: t.schemaList().map((c) => [c.name, c.type]), evictedRows: t.evictedRows, evictedBlocks: t.evictedBlocks, evictionLog: t.evictionLog, blocks: [] };
    for (let i = 0; i < t.sealed.length; i++) {
      const b = t.sealed[i]!;
      const file = disk?.files.get(b) ?? null;
      const ref = own.refOf(b);
      if (ref !== undefined && present.has(ref.segment)) {
        entry.blocks.push({ segment: ref.segment, bytes: ref.bytes, crc: ref.crc, rows: b.rowCount, timeMin: b.timeMin, timeMax: b.timeMax, dataBytes: b.byteSize, file });
        inPlaceBlocks++;
      } else {
        // Not in shared memory (it could not be placed, or someone removed its segment): copy it.
        const img = encodeBlock(b.data);
        const segment = own.newSegmentName();
        shm.create(segment, img.byteSize);
        for (const [o, bytes] of img.pieces) shm.write(segment, o, bytes);
        entry.blocks.push({ segment, bytes: img.byteSize, crc: crcOfImage(img), rows: b.rowCount, timeMin: b.timeMin, timeMax: b.timeMax, dataBytes: b.byteSize, file });
        copiedBlocks++;
        copiedBytes += img.byteSize;
        // Release the heap copy now: the handoff must not hold the data twice.
        (t.sealed as (SealedBlock | undefined)[])[i] = undefined;
        sinceGc += img.byteSize;
        if (gc !== undefined && sinceGc >= GC_HINT_BYTES) { gc(); sinceGc = 0; }
      }
      blocks++;
      meta.rows += b.rowCount;
      meta.bytes += entry.blocks[entry.blocks.length - 1]!.bytes;
    }
    t.sealed = [];
    meta.tables.push(entry);
  }
  const name = metaSegment(leafId);
  writeMetaSegment(name, Buffer.from(JSON.stringify(meta)), META_FLAG_WRITING);
  // Bind the handoff to this data directory, durably, before it is valid: a successor takes it
  // only where this file names it (not a new, empty directory under the same --id, not a
  // directory that has changed since).
  const bound: Binding = { gen, leafId, createdAtMs };
  writeSmallFileDurable(io, path.join(binding.dataDir, BINDING_FILE), Buffer.from(JSON.stringify(bound) + '\n'));
  // Everything is in place: only now does the successor see a valid handoff.
  setMetaFlag(name, META_FLAG_VALID);
  return { rows: meta.rows, bytes: meta.bytes, blocks, ms: Math.round(performance.now() - started), expiresAtMs, inPlaceBlocks, copiedBlocks, copiedBytes };
}

/** A block taken from shared memory whose bytes are still to be checked against their CRC. */
export interface UnverifiedBlock { readonly table: string; readonly block: SealedBlock; readonly segment: string; readonly bytes: Uint8Array; readonly crc: number }

export type RestoreOutcome =
  | { ok: true; rows: number; bytes: number; blocks: number; walNext: number | null; manifest: Manifest | null; seal: SealState | null; files: Map<SealedBlock, BlockFile>; unverified: UnverifiedBlock[] }
  | { ok: false; reason: string; keep: ReadonlySet<string> };

/** Bytes checksummed between turns of the event loop while verifying a restore: ~3 ms of work. */
const VERIFY_SLICE_BYTES = 32 * 1024 * 1024;

/** Checks every taken block's bytes against the CRC-32C the handoff recorded, yielding to the
 * event loop between slices. Resolves with the first block that does not match, or null. */
export async function verifyTakenBlocks(blocks: readonly UnverifiedBlock[]): Promise<UnverifiedBlock | null> {
  let sinceYield = 0;
  for (const b of blocks) {
    if ((shm.crc32c(b.bytes) >>> 0) !== b.crc) return b;
    // Bytes as written: now decode the structure too (a lazily restored block's first use), so
    // a bad image is found here, with the disk to fall back on, and not by a query.
    try { void b.block.data; } catch { return b; }
    sinceYield += b.bytes.byteLength;
    if (sinceYield >= VERIFY_SLICE_BYTES) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return null;
}

/** Takes the data of a valid handoff bound to `binding.dataDir`; on any doubt returns the
 * reason and leaves `store` empty. A taken handoff's block segments belong to `home` from then on
 * and its meta segment is removed; a refused one's meta goes too, unless it belongs to another
 * data directory whose next start can still take it (`keep` names its segments). Block
 * segments of a refused handoff stay for crash recovery to reuse; the caller removes the rest.
 * Either way the data directory's binding file is removed before this returns: a handoff serves
 * the one start right after it. */
export function restoreFromShm(leafId: string, store: LeafStore, binding: HandoffBinding, home: ShmBlockHome): RestoreOutcome {
  const io = binding.io ?? realFs;
  const name = metaSegment(leafId);
  let outcome: RestoreOutcome;
  try {
    if (!shm.exists(name)) {
      outcome = { ok: false, reason: 'no handoff segment (first start, crash, or shared memory cleared)', keep: new Set() };
    } else {
      outcome = takeHandoff(leafId, name, store, binding, io, home);
    }
  } catch (e) {
    outcome = { ok: false, reason: `handoff unreadable: ${(e as Error).message}`, keep: new Set() };
  }
  if (!outcome.ok) store.tables.clear();
  try {
    if (outcome.ok || outcome.keep.size === 0) shm.unlink(name);
    removeFileDurable(io, path.join(binding.dataDir, BINDING_FILE));
  } catch (e) {
    // A taken handoff must not outlive this start (a later start would take it again, without
    // the writes this process acknowledged): better not to start at all.
    if (outcome.ok) throw e;
    // Not taken (e.g. the addon is not built): disk recovery goes on, and the reason says more.
    outcome = { ok: false, reason: `${outcome.reason}; stale handoff not removed: ${(e as Error).message}`, keep: outcome.keep };
  }
  return outcome;
}

/** Whether `dir` (another data directory) still holds the binding of handoff `gen`. */
function boundElsewhere(dir: string, gen: string): boolean {
  try {
    const b = JSON.parse(fs.readFileSync(path.join(dir, BINDING_FILE), 'utf8')) as Binding;
    return b.gen === gen;
  } catch {
    return false;
  }
}

/** Checks that a handoff belongs to this data directory as it is now. Null when it does. */
function bindingMismatch(meta: Meta, binding: HandoffBinding, io: DurableFs): { reason: string; keepSegments: boolean } | null {
  const here = resolvedDir(binding.dataDir);
  if (typeof meta.dataDir !== 'string') return { reason: 'handoff is bound to no data directory (written by an older build)', keepSegments: false };
  if (meta.dataDir !== here) {
    const theirs = fs.existsSync(meta.dataDir) && boundElsewhere(meta.dataDir, meta.gen);
    return { reason: `handoff belongs to data directory ${meta.dataDir}, not ${here}${theirs ? ' (left for that directory\'s next start)' : ''}`, keepSegments: theirs };
  }
  if (meta.expiresAtMs !== null && meta.expiresAtMs <= Date.now()) return { reason: `handoff expired at ${new Date(meta.expiresAtMs).toISOString()} (--handoff-ttl)`, keepSegments: false };
  const bindingFile = path.join(binding.dataDir, BINDING_FILE);
  let bound: Binding | null = null;
  try { if (io.exists(bindingFile)) bound = JSON.parse(io.readFile(bindingFile).toString('utf8')) as Binding; } catch { bound = null; }
  if (bound === null || bound.gen !== meta.gen || bound.leafId !== meta.leafId) {
    return { reason: `${bindingFile} does not name this handoff (generation ${meta.gen}): the data directory is not the one that handed off`, keepSegments: false };
  }
  // The disk must be as the handoff left it: same manifest, no log written since.
  const manifestFile = path.join(binding.dataDir, 'manifest.json');
  if (io.exists(manifestFile)) {
    let onDisk: Manifest;
    try { onDisk = JSON.parse(io.readFile(manifestFile).toString('utf8')) as Manifest; } catch { return { reason: 'manifest.json unreadable; recovering from disk reports why', keepSegments: false }; }
    if (meta.manifest === null || onDisk.walStart !== meta.manifest.walStart || onDisk.nextFileNo !== meta.manifest.nextFileNo) {
      return { reason: 'manifest.json changed since the handoff (the data directory was used in between)', keepSegments: false };
    }
  }
  if (meta.walNext !== null) {
    const walDir = path.join(binding.dataDir, 'wal');
    const later = listSegments(walDir, io).filter((n) => n >= meta.walNext!);
    if (later.length > 0) return { reason: `log segment ${later[0]} was written after the handoff`, keepSegments: false };
  }
  return null;
}

function takeHandoff(leafId: string, name: string, store: LeafStore, binding: HandoffBinding, io: DurableFs, home: ShmBlockHome): RestoreOutcome {
  const no = (reason: string, keep: ReadonlySet<string> = new Set()) => ({ ok: false as const, reason, keep });
  const size = shm.size(name);
  if (size < META_PREFIX_BYTES) return no(`meta segment truncated (${size} bytes)`);
  const buf = Buffer.from(shm.map(name));
  if (buf.readUInt32LE(0) !== META_MAGIC) return no('meta segment has a bad magic number');
  const version = buf.readUInt32LE(4);
  if (version !== SHM_LAYOUT_VERSION) return no(`layout version ${version} differs from this build's ${SHM_LAYOUT_VERSION}`);
  const flag = buf.readUInt32LE(8);
  if (flag === META_FLAG_LIVE) return no('no handoff: the previous process stopped without handing off (a crash or kill -9)');
  if (flag !== META_FLAG_VALID) return no('handoff was not completed (valid flag unset: the previous process died while handing off)');
  const jsonBytes = buf.readUInt32LE(12);
  if (META_PREFIX_BYTES + jsonBytes > buf.length) return no('meta segment truncated');
  const json = buf.subarray(META_PREFIX_BYTES, META_PREFIX_BYTES + jsonBytes);
  if ((shm.crc32c(json) >>> 0) !== buf.readUInt32LE(16)) return no('meta checksum mismatch');
  const meta = JSON.parse(json.toString('utf8')) as Meta;
  if (meta.leafId !== leafId) return no(`segment belongs to leaf ${meta.leafId}, not ${leafId}`);
  const mismatch = bindingMismatch(meta, binding, io);
  if (mismatch !== null) return no(mismatch.reason, mismatch.keepSegments ? new Set([name, ...meta.tables.flatMap((t) => t.blocks.map((b) => b.segment))]) : new Set());
  const files = new Map<SealedBlock, BlockFile>();
  const unverified: UnverifiedBlock[] = [];
  let rows = 0;
  let bytes = 0;
  let blocks = 0;
  const taken: [SealedBlock, UnverifiedBlock][] = [];
  for (const t of meta.tables) {
    const table = store.createTable(t.name, false);
    for (const [col, type] of t.schema) table.schema.set(col, { name: col, type });
    table.evictedRows = t.evictedRows;
    table.evictedBlocks = t.evictedBlocks;
    if (Array.isArray(t.evictionLog)) {
      for (const e of t.evictionLog.slice(0, LIMITS.evictionRangesPerTableMax)) {
        if (typeof e?.timeMin === 'number' && typeof e.timeMax === 'number' && typeof e.rowCount === 'number') table.noteEviction(e);
      }
    }
    for (const e of t.blocks) {
      // One open per block (the trust check, fstat and mmap of one fd): a restore's cost is
      // per block, and this is most of it.
      let sab: SharedArrayBuffer;
      try {
        sab = shm.mapShared(e.segment);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return no(`block segment ${e.segment} is missing`);
        throw err;
      }
      if (sab.byteLength < e.bytes) return no(`block segment ${e.segment} truncated (${sab.byteLength} of ${e.bytes} bytes)`);
      // The structure (magic, version, every part within bounds) is checked when the block is
      // decoded: at its first scan or by the checksum pass after the leaf serves, whichever is
      // first (verifyTakenBlocks), so a restore costs a mapping per block, not a decode. A meta
      // without the summary (an older handoff) decodes here.
      const block = typeof e.timeMin === 'number' && typeof e.timeMax === 'number' && typeof e.dataBytes === 'number'
        ? SealedBlock.lazy({ id: allocateBlockId(), rowCount: e.rows, timeMin: e.timeMin, timeMax: e.timeMax, byteSize: e.dataBytes }, () => decodeBlock(sab, 0, e.bytes, e.segment))
        : new SealedBlock({ ...decodeBlock(sab, 0, e.bytes, e.segment), id: allocateBlockId() });
      table.addSealed(block);
      if (e.file !== null) files.set(block, e.file);
      const u: UnverifiedBlock = { table: t.name, block, segment: e.segment, bytes: new Uint8Array(sab, 0, e.bytes), crc: e.crc };
      unverified.push(u);
      taken.push([block, u]);
      rows += block.rowCount;
      bytes += e.bytes;
      blocks++;
    }
    store.tables.set(t.name, table);
  }
  store.rememberBatchIds(meta.batchIds);
  // Only now, with every block taken, do the segments become this process's.
  for (const [block, u] of taken) home.adopt(block, { segment: u.segment, bytes: u.bytes.byteLength, crc: u.crc, image: u.bytes });
  return { ok: true, rows, bytes, blocks, walNext: meta.walNext, manifest: meta.manifest, seal: meta.seal ?? null, files, unverified };
}
