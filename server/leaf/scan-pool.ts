/**
 * The leaf's scan worker pool (piscina). Splits a query's sealed blocks into coarse tasks (whole
 * blocks; a task costs ~50 us, a block ~1 ms), runs them on worker threads so the event loop
 * keeps taking ingest, and enforces the query timeout by aborting the tasks: piscina then ends
 * the worker thread, which stops a runaway scan and frees its memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ShoalError, type ErrorCode } from '../../query/errors.js';
import type { LogicalPlan } from '../../query/plan/plan.js';
import type { Partial } from '../../query/plan/partial.js';
import type { LeafCodesTask, ScanOutcome, ScanTask } from './scan-worker.js';
import { dropLog, type SealedBlock } from '../../query/storage/table.js';
import type { ColumnType } from '../../query/storage/types.js';

/** A compiled worker file of this folder (`scan-worker.js`, `ingest-worker.js`): next to this
 * module under dist/, or in dist/ when run from sources (tests). */
export function builtWorkerFile(name: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const compiled = path.join(here, name);
  if (fs.existsSync(compiled)) return compiled;
  let dir = here;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'dist', 'server', 'leaf', name);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`worker ${name} not built: run \`npm run build\``);
}

/** What a scan's tasks get of the leaf's code maps (LeafCodesTask, per block). */
export interface LeafCodes {
  readonly columns: string[];
  readonly size: number;
  readonly generation: number;
  /** Each code's approx_count_distinct hash pair, when every code has one. */
  readonly hashes: Int32Array | null;
  mapsOf(block: SealedBlock): Record<string, Int32Array>;
}

export class ScanPool {
  private readonly pool: Piscina;
  /** What each worker thread's string codes held after its last task (bytes). */
  private readonly codesBytes = new Map<number, number>();
  /** Table restarts of the workers, by thread (replaced threads keep their count here). */
  private readonly codesResets = new Map<number, number>();
  private retiredResets = 0;

  /** `codesBytesMax`: each worker's bound for its string codes and code maps. */
  constructor(readonly threads: number, private readonly codesBytesMax: number) {
    this.pool = new Piscina({
      filename: builtWorkerFile('scan-worker.js'),
      minThreads: threads,
      maxThreads: threads,
      // Bounded queue: tasks beyond it are refused (the query fails with 503) rather than piling up.
      maxQueue: threads * 64,
      idleTimeout: 60_000,
    });
  }

  /** Scans the blocks in tasks of roughly equal row counts; resolves to one Partial per task. */
  /** `leaf`: the leaf's code maps of some columns, for every block (see LeafCodesTask). */
  async scan(plan: LogicalPlan, nowSeconds: number, schema: [string, ColumnType][], lenient: boolean,
    blocks: readonly SealedBlock[], signal: AbortSignal, leaf: LeafCodes | null = null): Promise<Partial[]> {
    if (blocks.length === 0) return [];
    // One task per thread: each task's Partial holds every group it saw, so more tasks than
    // threads multiply the groups to send back and merge (a 100k-group query pays for it
    // several times over), while full-size blocks already split the work evenly.
    const taskCount = Math.min(blocks.length, this.threads);
    const groups: SealedBlock[][] = Array.from({ length: taskCount }, () => []);
    // Round-robin keeps tasks even when blocks are full-size (they nearly always are).
    blocks.forEach((b, i) => groups[i % taskCount]!.push(b));
    const runs = groups.map((g) => {
      const task: ScanTask = {
        plan, nowSeconds, schema, lenient, blocks: g.map((b) => b.data), codesBytesMax: this.codesBytesMax, dropped: dropLog.ids, dropSeq: dropLog.seq,
        leaf: leaf === null ? null : { columns: leaf.columns, size: leaf.size, generation: leaf.generation, hashes: leaf.hashes, maps: g.map(leaf.mapsOf) },
      };
      return this.pool.run(task, { signal }) as Promise<ScanOutcome>;
    });
    let outcomes: ScanOutcome[];
    try {
      outcomes = await Promise.all(runs);
    } catch (e) {
      if ((e as Error).name === 'AbortError' || signal.aborted) throw new ShoalError('SHOAL_ERR_QUERY_TIMEOUT', 'the query did not finish within its timeout and was stopped');
      if (/queue/i.test((e as Error).message)) throw new ShoalError('SHOAL_ERR_QUERY_OVERLOADED', 'the scan queue is full; retry later');
      throw e;
    }
    for (const o of outcomes) {
      // Re-inserted last, so a thread piscina replaced (after an abort) is the first to go.
      this.codesBytes.delete(o.thread);
      this.codesBytes.set(o.thread, o.codesBytes);
      this.codesResets.set(o.thread, o.codesResets);
      if (this.codesBytes.size > this.threads) {
        const gone = this.codesBytes.keys().next().value!;
        this.codesBytes.delete(gone);
        this.retiredResets += this.codesResets.get(gone) ?? 0;
        this.codesResets.delete(gone);
      }
    }
    return outcomes.map((o) => {
      if ('error' in o) throw new ShoalError(o.error.code as ErrorCode, o.error.message, o.error.where as object | undefined);
      return o.ok;
    });
  }

  get utilization(): number { return this.pool.utilization; }
  /** Bytes the workers' string codes held when last heard from (counted in the memory budget). */
  get cacheBytes(): number { let n = 0; for (const b of this.codesBytes.values()) n += b; return n; }
  /** How often the workers' string-code tables started over because they reached their bound
   * (a count that keeps rising means the bound is too small for the data: every scan maps again). */
  get cacheResets(): number { let n = this.retiredResets; for (const r of this.codesResets.values()) n += r; return n; }
  async close(): Promise<void> { await this.pool.destroy(); }
}
