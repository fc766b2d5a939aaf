/**
 * Leaf code maps, made in the background (docs/engine.md, "Leaf codes").
 *
 * The leaf's main thread's string table is the leaf's code space: a scan worker can group by the
 * leaf's codes only for blocks whose map (dictionary entry -> leaf code) the main thread already
 * made. Making a map decodes each dictionary entry once (~40k a block for a user-id column, a few
 * ms), so it is done here, in slices of at most SLICE_MS on the event loop, never inside a
 * query: for every string column of every sealed block, after blocks are sealed, restored, or the
 * table started over. A query whose blocks are not all mapped yet uses the workers' own tables
 * for that column (as before leaf codes), so nothing waits for this.
 *
 * Bounded: no map is made once the table holds its bound (`bytesMax`); the table then starts
 * over at the next query (trimStringCodes), and the sweep begins again.
 */
import type { LeafStore } from '../../query/storage/leaf-store.js';
import { threadCodes } from '../../query/storage/string-codes.js';

/** The longest a slice of mapping holds the event loop, and the pause after one: mapping takes
 * at most a quarter of the event loop, so a load at full speed slows by no more than that (it is
 * work the first queries would otherwise repeat in every worker). */
const SLICE_MS = 4;
const PAUSE_MS = 12;
/** How often the sweep looks for new sealed blocks. */
const POLL_MS = 500;

export class CodeMapper {
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  /** What the last finished sweep saw: nothing to do while it is unchanged. */
  private seen = { blocks: -1, generation: -1 };
  /** Maps made (block columns) and slices run, for status. */
  mapsMade = 0;
  slices = 0;
  busyMs = 0;
  private readonly failed = new WeakSet<object>();

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

  private sealedCount(): number {
    let n = 0;
    for (const t of this.store.tables.values()) n += t.sealed.length;
    return n;
  }

  /** Starts a sweep unless one is running or nothing changed since the last one. */
  kick(force = false): void {
    if (this.running) return;
    if (!force && this.seen.blocks === this.sealedCount() && this.seen.generation === threadCodes.generation) return;
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
    this.slices++;
    for (const table of this.store.tables.values()) {
      const columns = [...table.schema.values()].filter((c) => c.type === 'string').map((c) => c.name);
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
          if (performance.now() > deadline) { setTimeout(() => this.sweep(), PAUSE_MS).unref(); return; }
        }
      }
    }
    this.finish(blocks, generation);
  }

  private finish(blocks: number, generation: number): void {
    this.seen = { blocks, generation };
    this.running = false;
  }
}
