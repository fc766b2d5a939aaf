/**
 * Worker-thread entry of the ingest pool (piscina, ingest-pool.ts): decodes one request body
 * (UTF-8 check, parse, validation, per-batch dictionaries) with the very decoder the event loop
 * uses (decodeBody: query/storage/ingest-scan.ts, falling back to ingest-decoder.ts), against
 * the table's schema as it was when the batch was sent here. The batch, packed into one buffer,
 * and the body go back by transfer: nothing is copied between the threads.
 *
 * Not here: anything that depends on the table's state now (dedupe, schema moves, limits, the
 * deadline, the log, the append): the leaf's commit does those on the event loop.
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import { isShoalError } from '../../query/errors.js';
import { packBatch, type ColumnarBatch } from '../../query/storage/batch.js';
import type { BodyFormat } from '../../query/storage/ingest-decoder.js';
import { decodeBody } from '../../query/storage/ingest-scan.js';
import type { ColumnType } from '../../query/storage/types.js';

/**
 * Queries first (query-first.ts): a decode thread runs at a lower priority than the scan threads,
 * so a query's scan that starts while batches decode gets the cores first. On Linux the nice
 * value is per thread and setpriority(PRIO_PROCESS, 0) sets the calling thread's; raising it
 * needs no privilege. With no query running the decodes have the cores to themselves.
 */
export const DECODE_THREAD_NICE = 10;
try {
  os.setPriority(0, DECODE_THREAD_NICE);
} catch {
  // Not permitted or not supported here: the threads run at the process's priority.
}

export interface DecodeTask {
  body: Uint8Array;
  format: BodyFormat;
  nowSeconds: number;
  /** The table's column types when the batch was sent (`time` included). */
  schema: (readonly [string, ColumnType])[];
}

/** Errors cross the thread boundary as data: structured clone would drop a ShoalError's code. */
export type DecodeReply = { body: Uint8Array } & (
  | { ok: ColumnarBatch; scanMs: number; parseMs: number; buildMs: number }
  | { error: { code: string; message: string; where?: unknown; extra?: unknown } }
  | { internal: string }
);

/** A reply whose buffers are transferred, not cloned (piscina's Transferable protocol). */
function moved(reply: DecodeReply, buffers: ArrayBuffer[]): unknown {
  const transferable = {
    get [Piscina.transferableSymbol]() { return buffers; },
    get [Piscina.valueSymbol]() { return reply; },
  };
  return Piscina.move(transferable as unknown as Parameters<typeof Piscina.move>[0]);
}

export default function decodeTask(task: DecodeTask): unknown {
  const body = task.body;
  try {
    const schema = new Map(task.schema.map(([name, type]) => [name, { type }]));
    const d = decodeBody(body, task.format, schema, task.nowSeconds);
    const packed = d.buffer !== null ? { batch: d.batch, buffer: d.buffer } : packBatch(d.batch);
    return moved({ ok: packed.batch, scanMs: d.scanMs, parseMs: d.parseMs, buildMs: d.buildMs, body }, [packed.buffer, body.buffer as ArrayBuffer]);
  } catch (e) {
    if (isShoalError(e)) return moved({ error: { code: e.code, message: e.message, where: e.where, extra: e.extra }, body }, [body.buffer as ArrayBuffer]);
    return moved({ internal: (e as Error).stack ?? String(e), body }, [body.buffer as ArrayBuffer]);
  }
}
