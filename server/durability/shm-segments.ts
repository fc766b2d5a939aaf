/**
 * The shared-memory segments of shoal on this machine: their names, what each handoff is, whether
 * a successor can still take it, and removing those no one can (`shoal shm`, the expiry sweep at
 * every leaf start). A handoff is one meta segment `/shoal-<leaf id>-meta` plus block segments
 * `/shoal-<leaf id>-<gen>-<n>` (shm-handoff.ts writes and takes them).
 *
 * A handoff can be taken only when: its meta segment is trusted (owned by this user, no group or
 * other bits: native/shm.ts refuses anything else), complete (valid flag), of this layout, not
 * expired, and bound to a data directory that still exists and whose `handoff.json` names the
 * same generation. Anything else is an orphan: the disk holds its data, so removing it loses
 * nothing but a fast restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as shm from '../../native/shm.js';
import { BLOCK_LAYOUT_VERSION } from '../../query/storage/block-codec.js';

export const SEGMENT_PREFIX = '/shoal-';
/** Layout of the handoff: meta format 1 over block images of BLOCK_LAYOUT_VERSION. A build that
 * changes either reads no older segment (it recovers from disk instead, and says so). Blocks
 * born in shared memory (shm-blocks.ts) did not change it: their segments are the same images,
 * so builds before and after them take each other's handoffs. */
export const SHM_LAYOUT_VERSION = 1000 + BLOCK_LAYOUT_VERSION;
export const META_MAGIC = 0x4d4d4853; // 'SHMM'
export const META_PREFIX_BYTES = 24;
/** The meta header's flag word (offset 8): 0 while a handoff is being written (or the process
 * died doing it), 1 a complete handoff, 2 a running leaf's claim on its block segments. */
export const META_FLAG_WRITING = 0;
export const META_FLAG_VALID = 1;
export const META_FLAG_LIVE = 2;
/** The file in a data directory that binds it to its newest handoff. */
export const BINDING_FILE = 'handoff.json';

export function segmentPrefix(leafId: string): string { return `${SEGMENT_PREFIX}${leafId}-`; }
export function metaSegment(leafId: string): string { return `${segmentPrefix(leafId)}meta`; }

const META_NAME = /^\/shoal-(.+)-meta$/;
const BLOCK_NAME = /^\/shoal-(.+)-([0-9a-f]{8})-([0-9]+)$/;

/** The segment names of this leaf exactly: its meta segment and `<gen>-<n>` block segments. A
 * plain prefix match would also take another leaf's whose id extends this one's ("a" and "a-b"). */
export function segmentNamePattern(leafId: string): RegExp {
  const escaped = leafId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${segmentPrefix(escaped)}(meta|[0-9a-f]{8}-[0-9]+)$`);
}

/** Removes every segment of this leaf (stale ones from an earlier run, or a rejected handoff). */
export function removeSegments(leafId: string): number {
  const own = segmentNamePattern(leafId);
  let removed = 0;
  for (;;) {
    const names = shm.list(segmentPrefix(leafId));
    const mine = names.filter((n) => own.test(n));
    for (const n of mine) if (shm.unlink(n)) removed++;
    if (mine.length === 0 || names.length < shm.nativeLimits().listNamesMax) return removed;
  }
}

/** Creates meta segment `name` (which must not exist) holding `json` under a header with `flag`. */
export function writeMetaSegment(name: string, json: Buffer, flag: number): void {
  const header = Buffer.alloc(META_PREFIX_BYTES);
  header.writeUInt32LE(META_MAGIC, 0);
  header.writeUInt32LE(SHM_LAYOUT_VERSION, 4);
  header.writeUInt32LE(flag, 8);
  header.writeUInt32LE(json.length, 12);
  header.writeUInt32LE(shm.crc32c(json) >>> 0, 16);
  shm.create(name, META_PREFIX_BYTES + json.length);
  shm.write(name, 0, header);
  shm.write(name, META_PREFIX_BYTES, json);
}

/** Sets the flag word of a meta segment (the last write of a handoff: it becomes valid). */
export function setMetaFlag(name: string, flag: number): void {
  const word = Buffer.alloc(4);
  word.writeUInt32LE(flag, 0);
  shm.write(name, 8, word);
}

/** What a meta segment's JSON holds that the listing needs (shm-handoff.ts writes all of it). */
export interface MetaSummary {
  leafId: string;
  gen: string;
  pid: number;
  createdAtMs: number;
  /** Absolute path of the data directory the handoff belongs to (absent before this format). */
  dataDir?: string;
  /** After this instant any leaf start removes the handoff (null: never). */
  expiresAtMs?: number | null;
  rows: number;
  bytes: number;
  /** A running leaf's live meta: --handoff-ttl in seconds (its segments expire that long after
   * it died without handing off). */
  ttlSeconds?: number | null;
}

export type MetaRead =
  | { ok: true; valid: boolean; flag: number; version: number; meta: MetaSummary; json: Buffer; crcOk: boolean }
  | { ok: false; reason: string };

/** Reads a meta segment's header and JSON (refusing an untrusted segment, as map() does). */
export function readMeta(name: string): MetaRead {
  let buf: Buffer;
  try {
    const size = shm.size(name);
    if (size < META_PREFIX_BYTES) return { ok: false, reason: `meta segment truncated (${size} bytes)` };
    buf = Buffer.from(shm.map(name));
  } catch (e) {
    return { ok: false, reason: `meta segment unreadable: ${(e as Error).message}` };
  }
  if (buf.readUInt32LE(0) !== META_MAGIC) return { ok: false, reason: 'meta segment has a bad magic number' };
  const version = buf.readUInt32LE(4);
  const jsonBytes = buf.readUInt32LE(12);
  if (META_PREFIX_BYTES + jsonBytes > buf.length) return { ok: false, reason: 'meta segment truncated' };
  const json = buf.subarray(META_PREFIX_BYTES, META_PREFIX_BYTES + jsonBytes);
  const crcOk = (shm.crc32c(json) >>> 0) === buf.readUInt32LE(16);
  if (!crcOk) return { ok: false, reason: 'meta checksum mismatch' };
  let meta: MetaSummary;
  try { meta = JSON.parse(json.toString('utf8')) as MetaSummary; } catch { return { ok: false, reason: 'meta JSON unreadable' }; }
  const flag = buf.readUInt32LE(8);
  return { ok: true, valid: flag === META_FLAG_VALID, flag, version, meta, json, crcOk };
}

export interface Binding { gen: string; leafId: string; createdAtMs: number }

/** The binding file of a data directory, or null when it has none (or it is unreadable). */
export function readBinding(dataDir: string): Binding | null {
  try {
    const b = JSON.parse(fs.readFileSync(path.join(dataDir, BINDING_FILE), 'utf8')) as Binding;
    return typeof b.gen === 'string' && typeof b.leafId === 'string' ? b : null;
  } catch {
    return null;
  }
}

/** One leaf's segments on this machine. */
export interface HandoffInfo {
  leafId: string;
  segments: string[];
  bytes: number;
  /** Age of the newest segment (ms), from its mtime. */
  ageMs: number;
  /** live: a running leaf's blocks (never removed by --remove-orphans or a sweep); crashed: a
   * leaf that died without handing off, whose next start reuses the blocks its checkpoint lists. */
  state: 'valid' | 'live' | 'crashed' | 'incomplete' | 'expired' | 'untrusted' | 'unreadable' | 'other-layout' | 'no-meta';
  dataDir: string | null;
  dataDirExists: boolean | null;
  /** True when a successor on the bound data directory can take it (a valid handoff, or the
   * blocks of a crashed leaf whose data directory still exists). */
  takeable: boolean;
  /** Pid of the leaf that owns them (live and crashed only). */
  pid: number | null;
  /** Why not, when it is not. */
  reason: string | null;
  rows: number | null;
  expiresAtMs: number | null;
}

/** Every shoal handoff on this machine, one entry per leaf id. `layoutVersion` is this build's. */
export function listHandoffs(layoutVersion: number, nowMs = Date.now(), opts: { statBlocks?: boolean } = {}): HandoffInfo[] {
  const statBlocks = opts.statBlocks ?? true;
  const byLeaf = new Map<string, string[]>();
  // One list() returns at most listNamesMax (65,536) names: far more handoffs than one machine holds.
  for (const n of shm.list(SEGMENT_PREFIX)) {
    const m = META_NAME.exec(n) ?? BLOCK_NAME.exec(n);
    if (m === null) continue;
    const list = byLeaf.get(m[1]!) ?? [];
    list.push(n);
    byLeaf.set(m[1]!, list);
  }
  const out: HandoffInfo[] = [];
  for (const [leafId, segments] of byLeaf) {
    let bytes = 0;
    let newest = 0;
    let untrusted: string | null = null;
    // The expiry sweep of every leaf start reads only meta segments: stat'ing every block
    // segment of every leaf on the machine would make each start cost O(segments).
    const metaName0 = metaSegment(leafId);
    for (const s of segments) {
      if (!statBlocks && s !== metaName0) continue;
      try {
        const st = shm.stat(s);
        bytes += st.size;
        newest = Math.max(newest, st.mtimeMs);
        if (!st.trusted && untrusted === null) untrusted = `${s}: ${st.untrustedReason}`;
      } catch { /* removed meanwhile */ }
    }
    const info: HandoffInfo = { leafId, segments: segments.sort(), bytes, ageMs: Math.max(0, nowMs - newest), state: 'valid', dataDir: null, dataDirExists: null, takeable: false, pid: null, reason: null, rows: null, expiresAtMs: null };
    const metaName = metaSegment(leafId);
    if (untrusted !== null) {
      info.state = 'untrusted';
      info.reason = `not trusted: ${untrusted}`;
    } else if (!segments.includes(metaName)) {
      info.state = 'no-meta';
      info.reason = info.ageMs < NO_META_GRACE_MS
        ? 'block segments without a meta segment: a leaf is replacing its meta right now (kept for a minute)'
        : 'block segments without a meta segment (a handoff that did not finish)';
    } else {
      const r = readMeta(metaName);
      if (!r.ok) {
        info.state = 'unreadable';
        info.reason = r.reason;
      } else {
        info.rows = r.meta.rows;
        info.dataDir = r.meta.dataDir ?? null;
        info.expiresAtMs = r.meta.expiresAtMs ?? null;
        info.dataDirExists = info.dataDir === null ? null : fs.existsSync(info.dataDir);
        const binding = info.dataDir === null ? null : readBinding(info.dataDir);
        if (r.version !== layoutVersion) { info.state = 'other-layout'; info.reason = `layout version ${r.version}, this build reads ${layoutVersion}`; }
        else if (r.flag === META_FLAG_LIVE) {
          info.pid = r.meta.pid;
          info.rows = null;
          const ttl = r.meta.ttlSeconds ?? null;
          if (!processAlive(r.meta.pid) && !statBlocks) {
            // Dead: its TTL counts from its last seal, so the sweep needs the block segments' times.
            for (const s of segments) { try { newest = Math.max(newest, shm.stat(s).mtimeMs); } catch { /* gone */ } }
          }
          if (processAlive(r.meta.pid)) { info.state = 'live'; info.reason = `held by running leaf pid ${r.meta.pid}`; }
          else if (ttl !== null && newest + ttl * 1000 <= nowMs) { info.state = 'expired'; info.expiresAtMs = newest + ttl * 1000; info.reason = `leaf pid ${r.meta.pid} died without handing off; expired ${new Date(info.expiresAtMs).toISOString()}`; }
          else {
            info.state = 'crashed';
            info.expiresAtMs = ttl === null ? null : newest + ttl * 1000;
            if (!info.dataDirExists) info.reason = `leaf pid ${r.meta.pid} died without handing off and its data directory ${info.dataDir} no longer exists`;
            else { info.takeable = true; info.reason = `leaf pid ${r.meta.pid} died without handing off; its next start reuses the blocks its checkpoint lists, checksum by checksum`; }
          }
        } else if (!r.valid) { info.state = 'incomplete'; info.reason = 'valid flag unset (the process died while handing off)'; }
        else if (info.expiresAtMs !== null && info.expiresAtMs <= nowMs) { info.state = 'expired'; info.reason = `expired ${new Date(info.expiresAtMs).toISOString()}`; }
        else if (info.dataDir === null) info.reason = 'bound to no data directory (written by an older build)';
        else if (!info.dataDirExists) info.reason = `its data directory ${info.dataDir} no longer exists`;
        else if (binding === null || binding.gen !== r.meta.gen) info.reason = `${path.join(info.dataDir, BINDING_FILE)} does not name this handoff (generation ${r.meta.gen})`;
        else info.takeable = true;
      }
    }
    out.push(info);
  }
  return out.sort((a, b) => a.leafId.localeCompare(b.leafId));
}

/** How long block segments without a meta are taken for a handoff being written, not orphans. */
const NO_META_GRACE_MS = 60_000;

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try { process.kill(pid, 0); } catch (e) { return (e as { code?: string }).code === 'EPERM'; }
  // A zombie (killed, not yet reaped by its parent) answers the signal but holds nothing.
  try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return true; }
}

/** Whether `shoal shm --remove-orphans` removes it: nothing can use it, and no one holds it. */
export function isOrphan(h: HandoffInfo): boolean {
  if (h.takeable || h.state === 'live') return false;
  return !(h.state === 'no-meta' && h.ageMs < NO_META_GRACE_MS);
}

/** Removes one leaf's segments; returns bytes freed. */
export function removeHandoff(info: HandoffInfo): number {
  let freed = 0;
  for (const s of info.segments) {
    let size = 0;
    try { size = shm.stat(s).size; } catch { /* gone */ }
    if (shm.unlink(s)) freed += size;
  }
  return freed;
}

/** The expiry sweep every leaf start runs: removes expired handoffs of any leaf on this machine
 * (the disk has their data). Returns what it removed. */
export function sweepExpired(layoutVersion: number, nowMs = Date.now()): HandoffInfo[] {
  const removed: HandoffInfo[] = [];
  for (const h of listHandoffs(layoutVersion, nowMs, { statBlocks: false })) {
    if (h.state !== 'expired') continue;
    removeHandoff(h);
    removed.push(h);
  }
  return removed;
}
