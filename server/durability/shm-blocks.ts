/**
 * Sealed blocks born in shared memory (DESIGN.md "Durability and restart", docs/durability.md
 * "Blocks in shared memory"). The moment a block is sealed, its image (block-codec.ts) goes into
 * its own POSIX segment `/shoal-<leaf>-<gen>-<n>` and the table keeps a copy-on-write mapping of
 * it instead of the heap copy, which the collector then frees. So a planned restart has nothing
 * left to copy: it lists the segments in the meta segment and exits, and the successor maps them.
 *
 * Why a private (copy-on-write) mapping and not PROT_READ: V8 assumes every ArrayBuffer is
 * writable, so a read-only mapping turns a stray write into a SIGSEGV; a private one keeps the
 * write in this process and never lets it reach the segment. Either way the segment holds exactly
 * the bytes whose CRC-32C was taken when it was written, which is what the successor (planned
 * restart) and crash recovery check before trusting it.
 *
 * Ownership: a running leaf owns the segments it created or took over, and says so with a live
 * meta segment (flag LIVE, its pid and data directory) so `shoal shm` and other leaves' sweeps
 * leave them alone. Eviction and retention unlink a block's segment (the mapping keeps its pages
 * until the collector drops the last reference). A block that cannot be placed (a full /dev/shm,
 * the segment limit) stays on the heap, is counted, and is copied at the next handoff as before.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as shm from '../../native/shm.js';
import { decodeBlock, encodeBlock, type BlockImage } from '../../query/storage/block-codec.js';
import { allocateBlockId, SealedBlock, type BlockHome, type Table } from '../../query/storage/table.js';
import { LIMITS } from '../../query/limits.js';
import type { BlockData } from '../../query/storage/types.js';
import { META_FLAG_LIVE, metaSegment, segmentNamePattern, segmentPrefix, writeMetaSegment } from './shm-segments.js';

/** A block's segment: its name, the image's byte count and CRC-32C, and a view of the image. */
export interface SegmentRef {
  readonly segment: string;
  readonly bytes: number;
  readonly crc: number;
  /** The whole image, in this process's mapping (what a checkpoint writes to disk). */
  readonly image: Uint8Array;
}

export interface HomeStats {
  /** Blocks held in shared memory, and their bytes. */
  segments: number;
  bytes: number;
  /** Blocks sealed on the heap because they could not be placed, and the last reason. */
  placeFailures: number;
  lastFailure: string | null;
  /** The `huge=` option of the tmpfs at /dev/shm ("never" when unset, null when unknown): with
   * huge pages a process maps and unmaps its blocks 512 times fewer pages (docs/operations.md). */
  hugePages: string | null;
}

/** The `huge=` mount option of /dev/shm, from /proc/mounts (the last mount there wins). */
export function shmHugePages(mounts = '/proc/mounts'): string | null {
  let text: string;
  try { text = fs.readFileSync(mounts, 'utf8'); } catch { return null; }
  let found: string | null = null;
  for (const line of text.split('\n')) {
    const [, where, type, options] = line.split(' ');
    if (where !== '/dev/shm' || type !== 'tmpfs' || options === undefined) continue;
    found = /(?:^|,)huge=([a-z_]+)/.exec(options)?.[1] ?? 'never';
  }
  return found;
}

const ZEROS = new Uint8Array(4096);

/** CRC-32C of an image as laid out (pieces at their offsets, zero gaps), without assembling it. */
export function crcOfImage(img: BlockImage): number {
  let crc = 0;
  let at = 0;
  const pad = (n: number) => { while (n > 0) { const k = Math.min(n, ZEROS.length); crc = shm.crc32c(ZEROS.subarray(0, k), crc); n -= k; } };
  for (const [o, bytes] of img.pieces) { pad(o - at); crc = shm.crc32c(bytes, crc); at = o + bytes.byteLength; }
  pad(img.byteSize - at);
  return crc >>> 0;
}

/** What the live meta segment says of its owner (shm-segments.ts reads it for listings). */
export interface LiveMeta { leafId: string; gen: string; pid: number; createdAtMs: number; dataDir: string; ttlSeconds: number | null; live: true; rows: 0; bytes: 0; expiresAtMs: null; tables: [] }

export class ShmBlockHome implements BlockHome {
  /** Names this process's new segments: `<gen>-<n>`, never reused (create is O_EXCL). */
  readonly gen = randomBytes(4).toString('hex');
  private next = 0;
  private readonly refs = new WeakMap<SealedBlock, SegmentRef>();
  /** Segment names owned now (what a sweep keeps), with their bytes. */
  private readonly owned = new Map<string, number>();
  private ownedBytes = 0;
  private placeFailures = 0;
  private lastFailure: string | null = null;

  /** Told of every block placed at its seal (the disk store logs a seal record for it). */
  onPlaced: ((table: Table, block: SealedBlock, ref: SegmentRef) => void) | null = null;

  constructor(readonly leafId: string, private readonly warn: (message: string) => void = () => undefined) {}

  /** A fresh segment name of this leaf. */
  newSegmentName(): string { return `${segmentPrefix(this.leafId)}${this.gen}-${this.next++}`; }

  place(table: Table, block: SealedBlock): SealedBlock {
    if (this.owned.size >= LIMITS.shmBlockSegmentsMax) return this.failed(block, `${this.owned.size} blocks are in shared memory, the limit (LIMITS.shmBlockSegmentsMax)`);
    const img = encodeBlock(block.data);
    const segment = this.newSegmentName();
    let created = false;
    let placed: SealedBlock;
    let ref: SegmentRef;
    try {
      shm.create(segment, img.byteSize);
      created = true;
      for (const [o, bytes] of img.pieces) shm.write(segment, o, bytes);
      const crc = crcOfImage(img);
      const sab = shm.mapShared(segment);
      const data = decodeBlock(sab, 0, img.byteSize, segment);
      placed = new SealedBlock({ ...data, id: block.id });
      ref = { segment, bytes: img.byteSize, crc, image: new Uint8Array(sab, 0, img.byteSize) };
      this.adopt(placed, ref);
    } catch (e) {
      if (created) { try { shm.unlink(segment); } catch { /* nothing more to do */ } }
      return this.failed(block, (e as Error).message);
    }
    this.onPlaced?.(table, placed, ref);
    return placed;
  }

  private failed<B extends SealedBlock | null>(block: B, why: string): B {
    this.placeFailures++;
    // Said once per kind of failure, not per block: a full /dev/shm fails every seal.
    if (this.lastFailure !== why.replace(/"[^"]*"/g, '')) this.warn(`a sealed block stays on the heap, not in shared memory (${why}); a planned restart copies such blocks`);
    this.lastFailure = why.replace(/"[^"]*"/g, '');
    return block;
  }

  release(block: SealedBlock): void {
    const ref = this.refs.get(block);
    if (ref === undefined) return;
    this.refs.delete(block);
    this.disown(ref.segment);
    try { shm.unlink(ref.segment); } catch (e) { this.warn(`could not unlink ${ref.segment}: ${(e as Error).message}`); }
  }

  /** Records that `block` lives in `ref`'s segment (placed here, or taken over at a restore). */
  adopt(block: SealedBlock, ref: SegmentRef): void {
    this.refs.set(block, ref);
    if (!this.owned.has(ref.segment)) { this.owned.set(ref.segment, ref.bytes); this.ownedBytes += ref.bytes; }
  }

  private disown(segment: string): void {
    const bytes = this.owned.get(segment);
    if (bytes === undefined) return;
    this.owned.delete(segment);
    this.ownedBytes -= bytes;
  }

  refOf(block: SealedBlock): SegmentRef | undefined { return this.refs.get(block); }

  owns(segment: string): boolean { return this.owned.has(segment); }

  readonly hugePages = shmHugePages();

  stats(): HomeStats { return { segments: this.owned.size, bytes: this.ownedBytes, placeFailures: this.placeFailures, lastFailure: this.lastFailure, hugePages: this.hugePages }; }

  /**
   * A block segment left by an earlier process of this leaf, taken only if it is trusted (owner
   * and mode, checked by the addon on the fd it maps), at least `bytes` long, its first `bytes`
   * bytes checksum to `crc` (recorded when the image was written, before anything could read it)
   * and the image decodes. Returns the block, or why not.
   */
  reuse(segment: string, bytes: number, crc: number): { block: SealedBlock } | { reason: string } {
    if (!segmentNamePattern(this.leafId).test(segment) || segment === metaSegment(this.leafId)) return { reason: `${segment} is not a block segment of leaf ${this.leafId}` };
    try {
      if (!shm.exists(segment)) return { reason: `${segment} is gone` };
      const size = shm.size(segment);
      if (size < bytes) return { reason: `${segment} has ${size} bytes, the block ${bytes}` };
      const sab = shm.mapShared(segment);
      const image = new Uint8Array(sab, 0, bytes);
      if ((shm.crc32c(image) >>> 0) !== crc) return { reason: `${segment} checksum mismatch` };
      const data: BlockData = decodeBlock(sab, 0, bytes, segment);
      const block = new SealedBlock({ ...data, id: allocateBlockId() });
      this.adopt(block, { segment, bytes, crc, image });
      return { block };
    } catch (e) {
      return { reason: `${segment}: ${(e as Error).message}` };
    }
  }

  /**
   * A new segment of `bytes` to fill through `target` (a writable shared mapping): how disk
   * recovery reads a block file straight into shared memory, one copy as into the heap. The pages
   * are allocated up front (a full /dev/shm is ENOSPC here, never SIGBUS on a write), so null
   * means "read into the heap instead", with the reason counted as a placement failure.
   */
  reserve(bytes: number): { segment: string; target: Uint8Array } | null {
    if (this.owned.size >= LIMITS.shmBlockSegmentsMax || bytes === 0) return null;
    const segment = this.newSegmentName();
    try {
      shm.create(segment, bytes, { reserve: true });
      return { segment, target: new Uint8Array(shm.map(segment, { writable: true })) };
    } catch (e) {
      try { shm.unlink(segment); } catch { /* nothing more to do */ }
      this.failed(null, (e as Error).message);
      return null;
    }
  }

  /** A reserved segment, filled and checked against `crc`: maps it for scans and adopts the
   * block decoded from it. The writable mapping is dropped with `target`. */
  complete(slot: { segment: string }, bytes: number, crc: number, id: number): SealedBlock {
    const sab = shm.mapShared(slot.segment);
    const data = decodeBlock(sab, 0, bytes, slot.segment);
    const block = new SealedBlock({ ...data, id });
    this.adopt(block, { segment: slot.segment, bytes, crc, image: new Uint8Array(sab, 0, bytes) });
    return block;
  }

  /** A reserved segment that will not be used (the file was damaged). */
  discard(slot: { segment: string }): void {
    try { shm.unlink(slot.segment); } catch { /* gone */ }
  }

  /** Publishes the live meta segment: this process owns the leaf's segments from now on. */
  announce(dataDir: string, ttlSeconds: number | null): void {
    const meta: LiveMeta = { leafId: this.leafId, gen: this.gen, pid: process.pid, createdAtMs: Date.now(), dataDir, ttlSeconds, live: true, rows: 0, bytes: 0, expiresAtMs: null, tables: [] };
    const name = metaSegment(this.leafId);
    shm.unlink(name);
    writeMetaSegment(name, Buffer.from(JSON.stringify(meta)), META_FLAG_LIVE);
  }

  /** Removes every block segment of this leaf this process does not own, except those `keep`
   * names (the meta segment is replaced by `announce`, never removed here). Returns how many. */
  removeUnowned(keep: (segment: string) => boolean = () => false): number {
    const pattern = segmentNamePattern(this.leafId);
    const meta = metaSegment(this.leafId);
    let removed = 0;
    for (const n of shm.list(segmentPrefix(this.leafId))) {
      if (!pattern.test(n) || n === meta || this.owned.has(n) || keep(n)) continue;
      // Another user's file under this name (sticky /dev/shm: EPERM) is not ours to remove.
      try { if (shm.unlink(n)) removed++; } catch (e) { this.warn(`could not remove stale segment ${n}: ${(e as Error).message}`); }
    }
    return removed;
  }

  /** A stop without a handoff: the successor reads the disk, so every segment goes. */
  removeAll(): void {
    for (const n of [...this.owned.keys()]) { try { shm.unlink(n); } catch { /* gone */ } }
    this.owned.clear();
    this.ownedBytes = 0;
    try { shm.unlink(metaSegment(this.leafId)); } catch { /* gone */ }
  }
}
