/**
 * The batch ids a leaf is receiving, decoding or storing right now: from the moment an admitted
 * ingest request's headers are read to the moment its answer is decided (stored, duplicate or
 * refused), or the upload is abandoned. `GET /v1/batches/:id` (leaf.ts) waits on it, so an
 * aggregator checking a client's resend (docs/cluster.md, "Several aggregators") sees a batch
 * that a dead aggregator had already handed over, instead of placing it a second time.
 *
 * Counted per id: the same id may be in flight twice (a router's retry while its first try still
 * decodes). Bounded by the leaf's admission limit (ingestInFlightMax): only admitted requests are
 * tracked, and each is released once (leaf.ts releases it on its answer, its abort, or its
 * response, whichever comes first).
 *
 * Not here: whether an id is stored (LeafStore.duplicateRows).
 */

interface Entry { count: number; waiters: (() => void)[] }

export class BatchesInFlight {
  private readonly byId = new Map<string, Entry>();

  get size(): number { return this.byId.size; }

  has(batchId: string): boolean { return this.byId.has(batchId); }

  begin(batchId: string): void {
    const e = this.byId.get(batchId);
    if (e !== undefined) e.count++;
    else this.byId.set(batchId, { count: 1, waiters: [] });
  }

  end(batchId: string): void {
    const e = this.byId.get(batchId);
    if (e === undefined) return;
    if (--e.count > 0) return;
    this.byId.delete(batchId);
    for (const w of e.waiters) w();
  }

  /** Resolves true once `batchId` is not in flight (at once if it is not), false when it still is
   * after `waitMs`. */
  settled(batchId: string, waitMs: number): Promise<boolean> {
    const e = this.byId.get(batchId);
    if (e === undefined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(true); };
      const timer = setTimeout(() => {
        const i = e.waiters.indexOf(done);
        if (i >= 0) e.waiters.splice(i, 1);
        resolve(false);
      }, waitMs);
      e.waiters.push(done);
    });
  }
}
