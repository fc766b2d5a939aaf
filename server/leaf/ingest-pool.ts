/**
 * The leaf's ingest decode pool: request bodies are decoded (UTF-8, JSON.parse, validation,
 * per-batch dictionaries) on worker threads (ingest-worker.ts), so the event loop only receives
 * bodies, logs them and appends decoded columns. The pool is bounded: at most `threads` batches
 * decode at once and `queueMax` more wait; a batch beyond that is refused at once with 503
 * SHOAL_ERR_UNAVAILABLE + Retry-After (the router places it on another leaf), never queued
 * without bound.
 *
 * The body travels to the worker by transfer when it owns its ArrayBuffer (fastify's bodies over
 * 4 KiB do), else as a copy, and comes back with the batch, so the log writes the very bytes
 * received. What runs the tasks is a `DecodeRunner`: piscina threads in the product; tests put
 * in one that holds batches "in the worker" until they let go, to make races happen on purpose.
 *
 * Not here: the commit (dedupe, schema re-check, deadline, log, append): leaf.ts, on the event loop.
 */
import { Piscina } from 'piscina';
import { ShoalError, type ErrorCode, type ErrorWhere } from '../../query/errors.js';
import type { DecodeOutcome, IngestRecord, SchemaSnapshot } from '../../query/storage/leaf-store.js';
import type { DecodeReply, DecodeTask } from './ingest-worker.js';
import { builtWorkerFile } from './scan-pool.js';

/** Runs one decode task somewhere else (a worker thread); `transfer` lists the buffers to move. */
export interface DecodeRunner {
  run(task: DecodeTask, transfer: ArrayBuffer[]): Promise<DecodeReply>;
  close(): Promise<void>;
}

export function piscinaRunner(threads: number): DecodeRunner {
  const pool = new Piscina({
    filename: builtWorkerFile('ingest-worker.js'),
    minThreads: threads,
    maxThreads: threads,
    // IngestPool bounds what is sent here; this is only a second fence.
    maxQueue: 1024,
    idleTimeout: 2 ** 31 - 1,
  });
  return {
    run: (task, transfer) => pool.run(task, { transferList: transfer }) as Promise<DecodeReply>,
    close: () => pool.destroy(),
  };
}

/** Cumulative cost of the worker hop, for the ingest stage counters of status. */
export interface PoolStages {
  /** Batches decoded on a worker, and those refused because the pool was full. */
  batches: number;
  refusedFull: number;
  /** Round trip less the decode itself: waiting for a thread, moving the body and the batch. */
  hopMs: number;
}

export class IngestPool {
  /** Batches sent and not yet back (decoding or waiting for a thread). */
  inFlight = 0;
  readonly stages: PoolStages = { batches: 0, refusedFull: 0, hopMs: 0 };

  private runner: DecodeRunner | null = null;

  /** `makeRunner` is called on the first batch: a leaf that only ever gets small batches
   * starts no threads. */
  constructor(readonly threads: number, readonly queueMax: number, private readonly makeRunner: (threads: number) => DecodeRunner = piscinaRunner) {}

  /** Batches this pool holds at most (decoding plus waiting). */
  get capacity(): number { return this.threads + this.queueMax; }

  /**
   * Decodes `rec.body` against `snap` on a worker. The record's body is replaced by the bytes
   * that come back (the same bytes: the original may have been moved away). Throws
   * SHOAL_ERR_UNAVAILABLE at once when the pool is full.
   */
  async decode(rec: IngestRecord, snap: SchemaSnapshot): Promise<DecodeOutcome> {
    if (this.inFlight >= this.capacity) {
      this.stages.refusedFull++;
      throw new ShoalError('SHOAL_ERR_UNAVAILABLE', `leaf has ${this.inFlight} batches decoding or waiting to (its ingest queue holds ${this.capacity}); retry later`);
    }
    this.inFlight++;
    const started = performance.now();
    try {
      const own = rec.body.byteOffset === 0 && rec.body.byteLength === rec.body.buffer.byteLength && rec.body.buffer instanceof ArrayBuffer;
      const body = own ? rec.body : new Uint8Array(rec.body);
      const task: DecodeTask = { body, format: rec.format, nowSeconds: rec.nowSeconds, schema: snap.schema.map(([n, t]) => [n, t] as const) };
      this.runner ??= this.makeRunner(this.threads);
      const reply = await this.runner.run(task, [body.buffer as ArrayBuffer]);
      rec.body = Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength);
      if ('internal' in reply) throw new ShoalError('SHOAL_ERR_INTERNAL', `ingest worker: ${reply.internal}`);
      this.stages.batches++;
      if ('error' in reply) {
        const e = reply.error;
        return new ShoalError(e.code as ErrorCode, e.message, e.where as ErrorWhere | undefined, e.extra as Record<string, unknown> | undefined);
      }
      this.stages.hopMs += performance.now() - started - reply.scanMs - reply.parseMs - reply.buildMs;
      return { batch: reply.ok, buffer: null, scanMs: reply.scanMs, parseMs: reply.parseMs, buildMs: reply.buildMs };
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    const r = this.runner;
    this.runner = null;
    await r?.close();
  }
}
