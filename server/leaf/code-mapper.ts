/**
 * Leaf code maps, made in the background (docs/engine.md, "Leaf codes").
 *
 * The leaf's main thread's string table is the leaf's code space: a scan worker can group by the
 * leaf's codes only for blocks whose map (dictionary entry -> leaf code) the main thread already
 * made. Making a map hashes and looks up each dictionary entry's bytes once (~40k a block for a
 * user-id column, several ms), so it is done here, in slices of at most SLICE_MS on the event
 * loop, never inside a query: for the string columns queries asked for (`want`: a GROUP BY key,
 * count(DISTINCT) or approx_count_distinct argument that had no maps), in every sealed block,
 * after blocks are sealed, restored, or the table started over. Columns no query needs are never
 * mapped (they would cost ingest CPU). A query whose blocks are not all mapped yet uses the
 * workers' own tables for that column (as before leaf codes), so nothing waits for this.
 *
 * Bounded: no map is made once the table holds its bound (`bytesMax`); the table then starts
 * over at the next query (trimStringCodes), and the sweep begins again.
 */
import type { bindQuery } from '../../query/engine.js';
import type { LeafStore } from '../../query/storage/leaf-store.js';
import { threadCodes } from '../../query/storage/string-codes.js';
import { dropLog, type SealedBlock } from '../../query/storage/table.js';
import type { LeafCodes } from './scan-pool.js';

type BoundQuery = ReturnType<typeof bindQuery>;

/** The longest a slice of mapping holds the event loop, and the pause after one while the event
 * loop has other work (more than IDLE_SHARE of the pause was busy): mapping then takes at most a
 * quarter of it. While the loop is idle the next slice follows at once. */
const SLICE_MS = 4;
const PAUSE_MS = 12;
const IDLE_SHARE = 0.2;
/** Columns asked for at most (the oldest ask is forgotten first). */
const WANTED_MAX = 64;
/** How often the sweep looks for new sealed blocks. */
const POLL_MS = 500;

export class CodeMapper {
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  /** What the last finished sweep saw: nothing to do while it is unchanged. */
  private seen = { blocks: -1, generation: -1 };
  /** Maps made (block columns) and the event-loop time spent, for status. */
  mapsMade = 0;
  busyMs = 0;
  private readonly failed = new WeakSet<object>();
  /** Columns queries asked maps for ("table\u0000column"): only these are mapped, so columns no
   * query groups or counts distinct by cost ingest nothing. */
  private readonly wanted = new Set<string>();

  constructor(private readonly store: LeafStore, private readonly bytesMax: number) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
    this.kick();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Changes when a block is sealed or dropped (a drop and a seal together leave the count). */
  private sealedCount(): number {
    let n = dropLog.seq;
    for (const t of this.store.tables.values()) n += t.sealed.length;
    return n;
  }

  /** A query asked for approx_count_distinct over the leaf's codes: hash every code too. */
  private hashWanted = false;
  wantHashes(): void { this.hashWanted = true; this.kick(true); }
  private hashesBehind(): boolean { return this.hashWanted && threadCodes.hashedCount < threadCodes.size; }

  /** Whether a sweep is under way (maps are being made). */
  get mapping(): boolean { return this.running; }

  /** A query would have used the maps of these columns: map them from now on. */
  want(table: string, columns: readonly string[]): void {
    let added = false;
    for (const c of columns) {
      const k = `${table}\u0000${c}`;
      if (this.wanted.has(k)) continue;
      this.wanted.add(k);
      added = true;
      if (this.wanted.size > WANTED_MAX) this.wanted.delete(this.wanted.values().next().value!);
    }
    if (added) this.kick(true);
  }

  /** Starts a sweep unless one is running or nothing changed since the last one. */
  kick(force = false): void {
    if (this.running) return;
    if (!force && this.seen.blocks === this.sealedCount() && this.seen.generation === threadCodes.generation && !this.hashesBehind()) return;
    this.running = true;
    setImmediate(() => this.sweep());
  }

  private full(): boolean { return threadCodes.bytes + threadCodes.mapBytes >= this.bytesMax; }

  /** One slice of mapping; schedules the next while there is work and room. */
  private sweep(): void {
    const started = performance.now();
    try { this.slice(started + SLICE_MS); } finally { this.busyMs += performance.now() - started; }
  }

  private slice(deadline: number): void {
    const generation = threadCodes.generation;
    const blocks = this.sealedCount();
    for (const table of this.store.tables.values()) {
      const columns = [...table.schema.values()].filter((c) => c.type === 'string' && this.wanted.has(`${table.name}\u0000${c.name}`)).map((c) => c.name);
      if (columns.length === 0) continue;
      for (const block of table.sealed) {
        for (const name of columns) {
          if (block.readyCodeMap(name) !== null) continue;
          if (this.full() || this.timer === null) { this.finish(blocks, generation); return; }
          const c = block.column(name);
          if (c === undefined || c.kind !== 'string') continue;
          // A block that cannot be mapped (a damaged image the restore's checksums have not
          // caught yet) is left to the workers' own tables; never a thrown error here.
          if (this.failed.has(block)) continue;
          try { block.codeMap(name); this.mapsMade++; } catch { this.failed.add(block); }
          if (performance.now() > deadline) { this.pause(); return; }
        }
      }
    }
    // Then the codes' hashes, when approx_count_distinct asked for them.
    if (this.hashesBehind() && !threadCodes.hashCodes(deadline)) { this.pause(); return; }
    this.finish(blocks, generation);
  }

  /** The next slice: at once while the event loop is idle, after PAUSE_MS while it is busy. */
  private elu = performance.eventLoopUtilization();
  private pause(): void {
    const since = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    // The share of the time since the last pause that the loop was busy, this slice excluded.
    const busyOther = since.utilization - SLICE_MS / Math.max(SLICE_MS, since.idle + since.active);
    if (busyOther < IDLE_SHARE) setImmediate(() => this.sweep());
    else setTimeout(() => this.sweep(), PAUSE_MS).unref();
  }

  private finish(blocks: number, generation: number): void {
    this.seen = { blocks, generation };
    this.running = false;
  }

  /**
   * The leaf's code maps a worker scan can group or count distinct by (docs/engine.md, "Leaf
   * codes"): the bare string columns among the GROUP BY keys and count(DISTINCT) arguments whose
   * map every block holding them already has. A column some block lacks a map for is left to the
   * workers' own tables this time, and the background mapper is asked to catch up.
   */
  leafCodesFor(table: string, bound: BoundQuery, blocks: readonly SealedBlock[]): LeafCodes | null {
    const wanted = new Set<string>();
    bound.keys.forEach((k, i) => { if (k.k === 'col' && bound.keyTypes[i] === 'string') wanted.add(k.name); });
    // approx_count_distinct reads each code's hash (string-codes.ts, hashCodes): only once every
    // code has one.
    const hashed = threadCodes.hashedCount >= threadCodes.size;
    let hashesWanted = false;
    bound.logical.aggs.forEach((a, j) => {
      const arg = bound.aggArgs[j];
      if (arg === null || arg === undefined || arg.k !== 'col' || arg.type !== 'string') return;
      if (a.fn === 'count_distinct') wanted.add(arg.name);
      if (a.fn === 'approx_count_distinct') { hashesWanted = true; if (hashed) wanted.add(arg.name); }
    });
    if (hashesWanted && !hashed) this.wantHashes();
    if (wanted.size === 0) return null;
    const columns = [...wanted].filter((name) => blocks.every((b) => {
      const c = b.column(name);
      return c === undefined || (c.kind === 'string' && b.readyCodeMap(name) !== null);
    }));
    if (columns.length < wanted.size) this.want(table, [...wanted].filter((c) => !columns.includes(c)));
    if (columns.length === 0) return null;
    return {
      columns, size: threadCodes.size, generation: threadCodes.generation, hashes: hashed ? threadCodes.hashPairs : null,
      mapsOf: (b) => { const out: Record<string, Int32Array> = {}; for (const name of columns) { const m = b.readyCodeMap(name); if (m !== null) out[name] = m; } return out; },
    };
  }
}
