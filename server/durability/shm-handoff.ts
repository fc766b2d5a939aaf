/**
 * The planned-restart handoff through POSIX shared memory (DESIGN.md "Durability and restart").
 *
 * Save (SIGTERM or POST /v1/admin/handoff): the leaf has stopped taking writes and finished its
 * queries; every open block is sealed; each sealed block's image (block-codec.ts) goes into its
 * own segment, and its heap copy is released right after, so the handoff never holds twice the
 * data. Last, a meta segment lists the blocks with their CRC-32Cs, schemas, the disk state the
 * successor takes over, and a header: magic, layout version, leaf identity, a valid flag set
 * only once everything is written, and the CRC of the metadata.
 *
 * Restore (start): a meta segment that is valid, of this layout version and this leaf, with
 * intact metadata and blocks, is taken: each block segment is mapped as a SharedArrayBuffer
 * (zero copy: restore time hardly grows with data size), its image header and bounds checked,
 * and the segments are unlinked (the mappings keep the memory). Anything else falls back to
 * disk, with the reason logged, and every segment of this leaf is removed: a segment is never
 * trusted after a crash.
 *
 * The CRC-32C of each block's bytes is checked right after the leaf starts serving
 * (verifyTakenBlocks, a slice at a time between turns of the event loop), not before: reading
 * every byte costs about two memcpys of the data (page faults and the CRC), which is what the
 * mapping saves. A mismatch then makes the leaf recover from disk in place (server/leaf/lifecycle.ts).
 */
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as shm from '../../native/shm.js';
import { BLOCK_LAYOUT_VERSION, decodeBlock, encodeBlock } from '../../query/storage/block-codec.js';
import { allocateBlockId, SealedBlock, Table } from '../../query/storage/table.js';
import type { ColumnType } from '../../query/storage/types.js';
import type { BlockFile, DiskStore, Manifest } from './disk-store.js';
import type { LeafStore } from '../../query/storage/leaf-store.js';

const META_MAGIC = 0x4d4d4853; // 'SHMM'
/** Layout of the handoff: meta format 1 over block images of BLOCK_LAYOUT_VERSION. A build that
 * changes either reads no older segment (it recovers from disk instead, and says so). */
export const SHM_LAYOUT_VERSION = 1000 + BLOCK_LAYOUT_VERSION;
const META_PREFIX_BYTES = 24;
/** Bytes handed off between full garbage collections. A block's memory (heap, or the mapping of
 * an earlier handoff) is returned only when the collector frees its buffers, and nothing else
 * triggers a collection during the save: without these, the leaf holds its data twice at the
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

interface BlockEntry { segment: string; bytes: number; crc: number; rows: number; file: BlockFile | null }
interface Meta {
  leafId: string;
  gen: string;
  pid: number;
  createdAtMs: number;
  walNext: number | null;
  manifest: Manifest | null;
  tables: { name: string; schema: [string, ColumnType][]; evictedRows: number; evictedBlocks: number; blocks: BlockEntry[] }[];
  batchIds: [string, number][];
  rows: number;
  bytes: number;
}

export function segmentPrefix(leafId: string): string { return `/shoal-${leafId}-`; }
export function metaSegment(leafId: string): string { return `${segmentPrefix(leafId)}meta`; }

/** The segment names of this leaf exactly: its meta segment and `<gen>-<n>` block segments. A
 * plain prefix match would also take another leaf's whose id extends this one's ("a" and "a-b"). */
function segmentNamePattern(leafId: string): RegExp {
  return new RegExp(`^${segmentPrefix(leafId)}(meta|[0-9a-f]{8}-[0-9]+)$`);
}

/** Removes every segment of this leaf (stale ones from an earlier run, or a rejected handoff). */
export function removeSegments(leafId: string): number {
  const own = segmentNamePattern(leafId);
  let removed = 0;
  // One list() returns at most listNamesMax names; repeat while a full page had some of ours.
  for (;;) {
    const names = shm.list(segmentPrefix(leafId));
    const mine = names.filter((n) => own.test(n));
    for (const n of mine) if (shm.unlink(n)) removed++;
    if (mine.length === 0 || names.length < shm.nativeLimits().listNamesMax) return removed;
  }
}

const ZEROS = new Uint8Array(4096);
function crcOfImage(img: ReturnType<typeof encodeBlock>): number {
  let crc = 0;
  let at = 0;
  const pad = (n: number) => { while (n > 0) { const k = Math.min(n, ZEROS.length); crc = shm.crc32c(ZEROS.subarray(0, k), crc); n -= k; } };
  for (const [o, bytes] of img.pieces) { pad(o - at); crc = shm.crc32c(bytes, crc); at = o + bytes.byteLength; }
  pad(img.byteSize - at);
  return crc >>> 0;
}

export interface HandoffResult { rows: number; bytes: number; blocks: number; ms: number }

/** Writes the leaf's data into shared memory. The caller has stopped writes and queries and exits after. */
export function saveToShm(leafId: string, store: LeafStore, disk: DiskStore | null): HandoffResult {
  const started = performance.now();
  removeSegments(leafId);
  const gen = randomBytes(4).toString('hex');
  const meta: Meta = { leafId, gen, pid: process.pid, createdAtMs: Date.now(), walNext: null, manifest: null, tables: [], batchIds: store.recentBatchIdList(20_000), rows: 0, bytes: 0 };
  if (disk !== null) { const s = disk.currentState(); meta.manifest = s.manifest; meta.walNext = s.walNext; }
  let n = 0;
  let sinceGc = 0;
  const gc = collector();
  for (const t of store.tables.values()) {
    t.sealOpen();
    const entry: Meta['tables'][number] = { name: t.name, schema: t.schemaList().map((c) => [c.name, c.type]), evictedRows: t.evictedRows, evictedBlocks: t.evictedBlocks, blocks: [] };
    for (let i = 0; i < t.sealed.length; i++) {
      const b = t.sealed[i]!;
      const img = encodeBlock(b.data);
      const segment = `${segmentPrefix(leafId)}${gen}-${n++}`;
      shm.create(segment, img.byteSize);
      for (const [o, bytes] of img.pieces) shm.write(segment, o, bytes);
      entry.blocks.push({ segment, bytes: img.byteSize, crc: crcOfImage(img), rows: b.rowCount, file: disk?.files.get(b) ?? null });
      meta.rows += b.rowCount;
      meta.bytes += img.byteSize;
      // Release the heap copy now: the handoff must not hold the data twice.
      (t.sealed as (SealedBlock | undefined)[])[i] = undefined;
      sinceGc += img.byteSize;
      if (gc !== undefined && sinceGc >= GC_HINT_BYTES) { gc(); sinceGc = 0; }
    }
    t.sealed = [];
    meta.tables.push(entry);
  }
  const json = Buffer.from(JSON.stringify(meta));
  const name = metaSegment(leafId);
  const header = Buffer.alloc(META_PREFIX_BYTES);
  header.writeUInt32LE(META_MAGIC, 0);
  header.writeUInt32LE(SHM_LAYOUT_VERSION, 4);
  header.writeUInt32LE(0, 8); // valid: not yet
  header.writeUInt32LE(json.length, 12);
  header.writeUInt32LE(shm.crc32c(json) >>> 0, 16);
  shm.create(name, META_PREFIX_BYTES + json.length);
  shm.write(name, 0, header);
  shm.write(name, META_PREFIX_BYTES, json);
  // Everything is in place: only now does the successor see a valid handoff.
  const valid = Buffer.alloc(4);
  valid.writeUInt32LE(1, 0);
  shm.write(name, 8, valid);
  return { rows: meta.rows, bytes: meta.bytes, blocks: n, ms: Math.round(performance.now() - started) };
}

/** A block taken from shared memory whose bytes are still to be checked against their CRC. */
export interface UnverifiedBlock { readonly table: string; readonly block: SealedBlock; readonly segment: string; readonly bytes: Uint8Array; readonly crc: number }

export type RestoreOutcome =
  | { ok: true; rows: number; bytes: number; blocks: number; walNext: number | null; manifest: Manifest | null; files: Map<SealedBlock, BlockFile>; unverified: UnverifiedBlock[] }
  | { ok: false; reason: string };

/** Bytes checksummed between turns of the event loop while verifying a restore: ~3 ms of work. */
const VERIFY_SLICE_BYTES = 32 * 1024 * 1024;

/** Checks every taken block's bytes against the CRC-32C the handoff recorded, yielding to the
 * event loop between slices. Resolves with the first block that does not match, or null. */
export async function verifyTakenBlocks(blocks: readonly UnverifiedBlock[]): Promise<UnverifiedBlock | null> {
  let sinceYield = 0;
  for (const b of blocks) {
    if ((shm.crc32c(b.bytes) >>> 0) !== b.crc) return b;
    sinceYield += b.bytes.byteLength;
    if (sinceYield >= VERIFY_SLICE_BYTES) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return null;
}

/** Takes the data of a valid handoff; on any doubt returns the reason and leaves `store` empty. */
export function restoreFromShm(leafId: string, store: LeafStore): RestoreOutcome {
  const name = metaSegment(leafId);
  let outcome: RestoreOutcome;
  try {
    outcome = shm.exists(name) ? takeHandoff(leafId, name, store) : { ok: false, reason: 'no handoff segment (first start, crash, or shared memory cleared)' };
  } catch (e) {
    outcome = { ok: false, reason: `handoff unreadable: ${(e as Error).message}` };
  }
  if (!outcome.ok) store.tables.clear();
  // Taken or not, the segments are done with (mappings keep a taken handoff's memory alive).
  try {
    removeSegments(leafId);
  } catch (e) {
    // A taken handoff must not outlive this start (a later start would take it again, without
    // the writes this process acknowledged): better not to start at all.
    if (outcome.ok) throw e;
    // Not taken (e.g. the addon is not built): disk recovery goes on, and the reason says more.
    outcome = { ok: false, reason: `${outcome.reason}; stale segments not removed: ${(e as Error).message}` };
  }
  return outcome;
}

function takeHandoff(leafId: string, name: string, store: LeafStore): RestoreOutcome {
  const size = shm.size(name);
  if (size < META_PREFIX_BYTES) return { ok: false, reason: `meta segment truncated (${size} bytes)` };
  const buf = Buffer.from(shm.map(name));
  if (buf.readUInt32LE(0) !== META_MAGIC) return { ok: false, reason: 'meta segment has a bad magic number' };
  const version = buf.readUInt32LE(4);
  if (version !== SHM_LAYOUT_VERSION) return { ok: false, reason: `layout version ${version} differs from this build's ${SHM_LAYOUT_VERSION}` };
  if (buf.readUInt32LE(8) !== 1) return { ok: false, reason: 'handoff was not completed (valid flag unset: the previous process died while handing off)' };
  const jsonBytes = buf.readUInt32LE(12);
  if (META_PREFIX_BYTES + jsonBytes > buf.length) return { ok: false, reason: 'meta segment truncated' };
  const json = buf.subarray(META_PREFIX_BYTES, META_PREFIX_BYTES + jsonBytes);
  if ((shm.crc32c(json) >>> 0) !== buf.readUInt32LE(16)) return { ok: false, reason: 'meta checksum mismatch' };
  const meta = JSON.parse(json.toString('utf8')) as Meta;
  if (meta.leafId !== leafId) return { ok: false, reason: `segment belongs to leaf ${meta.leafId}, not ${leafId}` };
  const files = new Map<SealedBlock, BlockFile>();
  const unverified: UnverifiedBlock[] = [];
  let rows = 0;
  let bytes = 0;
  let blocks = 0;
  for (const t of meta.tables) {
    const table = new Table(t.name);
    for (const [col, type] of t.schema) table.schema.set(col, { name: col, type });
    table.evictedRows = t.evictedRows;
    table.evictedBlocks = t.evictedBlocks;
    for (const e of t.blocks) {
      if (!shm.exists(e.segment)) return { ok: false, reason: `block segment ${e.segment} is missing` };
      const segSize = shm.size(e.segment);
      if (segSize < e.bytes) return { ok: false, reason: `block segment ${e.segment} truncated (${segSize} of ${e.bytes} bytes)` };
      const sab = shm.mapShared(e.segment);
      // Structure only (magic, version, every part within bounds); the bytes are checked later.
      const data = decodeBlock(sab, 0, e.bytes, e.segment);
      const block = new SealedBlock({ ...data, id: allocateBlockId() });
      table.addSealed(block);
      if (e.file !== null) files.set(block, e.file);
      unverified.push({ table: t.name, block, segment: e.segment, bytes: new Uint8Array(sab, 0, e.bytes), crc: e.crc });
      rows += block.rowCount;
      bytes += e.bytes;
      blocks++;
    }
    store.tables.set(t.name, table);
  }
  store.rememberBatchIds(meta.batchIds);
  return { ok: true, rows, bytes, blocks, walNext: meta.walNext, manifest: meta.manifest, files, unverified };
}
