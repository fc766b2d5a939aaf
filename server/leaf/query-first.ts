/**
 * Queries first: an ingest batch waits to start (before it is decoded) while a query runs on
 * this leaf, and for a short grace after the last one ends, at most `waitMaxMs`; then it goes
 * anyway. Why (issue 15, "ingest does not starve queries"): on a leaf ingesting at its ceiling
 * the decode threads and the event loop's appends take every core, and a group-by that takes
 * 12 ms idle took 46-60 ms (p99 117-154 ms, 5-8x) with its scan threads sharing the cores with
 * ingest (bench/RESULTS.md, "Queries under ingest"). A batch is held, not refused: the writer's
 * request just takes longer, which slows a writer at the ceiling by the share of the time that
 * queries run, and never by more than waitMaxMs a batch.
 *
 * The grace: a client (a dashboard, the aggregator's next query) usually sends its next query as
 * soon as the previous answer arrives; without it every waiting batch would start in that gap
 * and run beside the next query. Batches already decoding when a query starts finish (they are
 * not interrupted; their append on the event loop is a few ms at most).
 *
 * Bounded: the waiters are ingest requests, at most ingestInFlightMax of them; each has a timer.
 * `waitMaxMs` 0 turns this off.
 */
interface Waiter { readonly since: number; readonly resolve: () => void; readonly timer: NodeJS.Timeout }

export class QueryFirst {
  private queries = 0;
  /** performance.now() when the last query ended. */
  private quietFrom = -Infinity;
  private readonly waiting = new Set<Waiter>();
  private timer: NodeJS.Timeout | null = null;
  /** Batches that waited, and the wall time they waited in all (status: ingest.stageMs.yield). */
  batchesWaited = 0;
  waitedMs = 0;

  constructor(readonly graceMs: number, readonly waitMaxMs: number) {}

  /** Whether a batch may start now. */
  get open(): boolean {
    return this.queries === 0 && performance.now() >= this.quietFrom + this.graceMs;
  }

  /** Waiting batches now (status). */
  get waitingNow(): number { return this.waiting.size; }

  queryBegin(): void { this.queries++; }

  queryEnd(): void {
    this.queries--;
    if (this.queries > 0) return;
    this.quietFrom = performance.now();
    if (this.waiting.size > 0) this.schedule(this.graceMs);
  }

  /** Null when the batch may start now, else a promise that resolves when it may (never rejects). */
  pass(): Promise<void> | null {
    if (this.waitMaxMs === 0 || this.open) return null;
    return new Promise<void>((resolve) => {
      const w: Waiter = { since: performance.now(), resolve, timer: setTimeout(() => this.release(w), this.waitMaxMs) };
      this.waiting.add(w);
      if (this.queries === 0) this.schedule(this.quietFrom + this.graceMs - performance.now());
    });
  }

  private release(w: Waiter): void {
    if (!this.waiting.delete(w)) return;
    clearTimeout(w.timer);
    this.batchesWaited++;
    this.waitedMs += performance.now() - w.since;
    w.resolve();
  }

  /** Releases every waiter once the grace has passed with no query running. */
  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.queries > 0) return; // queryEnd schedules again
      if (!this.open) { this.schedule(this.quietFrom + this.graceMs - performance.now()); return; }
      for (const w of [...this.waiting]) this.release(w);
    }, Math.max(0, ms));
  }
}
