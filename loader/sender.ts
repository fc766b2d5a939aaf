/**
 * Sends batches with a bounded number in flight, retrying refusals, and isolating bad rows.
 *
 * - In flight: submit() returns once the batch is on its way and a slot is free, so the reader
 *   is paused while `inFlight` batches are outstanding: memory stays at inFlight x batch size.
 * - Retries: 503 / 429 / 5xx and transport failures are retried with the same batch id, after
 *   an exponential, jittered delay (or the server's Retry-After), at most `retries` attempts;
 *   then the load stops with SHOAL_ERR_LOAD_SEND. The same id makes a retry after a lost answer
 *   harmless on a leaf (it answers `duplicate`); through an aggregator see docs/loader.md. A
 *   retry after a try that may have been stored (no answer, a 5xx that is not a plain refusal)
 *   is marked a resend, so an aggregator that did not place the first try (another one, after a
 *   failover) asks the leaves before placing it (docs/cluster.md, "Several aggregators").
 * - Bad rows: a batch is atomic on the leaf, which rejects it naming the first bad row. That row
 *   is reported (with its file position) and the rows before and after it are sent again as
 *   new batches (ids `<id>.<k>`); the rows before it were valid, so each round trip moves on. A
 *   type conflict with the table's existing column teaches the loader that type, and the rest
 *   of the batch is re-checked locally, so a file that disagrees with the table costs one round
 *   trip per batch, not one per row. An answer naming no row splits the batch in halves.
 * - Errors that concern the whole load (unauthorized, bad table name, table limit) stop it.
 *
 * Not here: HTTP itself (transport.ts), batch building (batcher.ts).
 */
import { ShoalError, assert } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import type { Batch } from './batcher.js';
import type { SendOptions } from './options.js';
import type { ReportBuilder } from './report.js';
import { classOfServerType, type ColumnTypes, type ValueClass } from './row-check.js';
import type { Transport, TransportAnswer } from './transport.js';

/** Rows sent in one request: the batch, or a part of it after a rejection. The first request
 * sends the batch's body as it is; the rows are split out only if the server rejects one. */
interface Segment {
  readonly id: string;
  readonly body: string | null;
  readonly lines: string[] | null;
  readonly positions: number[];
}

function linesOf(seg: Segment): string[] {
  return seg.lines ?? seg.body!.split('\n');
}

export interface ServerError {
  readonly code: string;
  readonly message: string;
  readonly row?: number;
  readonly column?: string;
}

export type Sleep = (ms: number) => Promise<void>;
const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const RETRYABLE = new Set([0, 408, 429, 500, 502, 503, 504]);

/** Strips the batch-relative position ("line 3 (row 2), ", "row 2: ", "line 3 is ") from a
 * leaf's message: the report gives the row's position in the file instead, and two numbers for
 * one row, one of them relative to a batch the user never sees, would contradict each other. */
export function cleanServerMessage(message: string): string {
  return message.replace(/^(line \d+ \(row \d+\)|row \d+)(, |: )?/, '').replace(/^line \d+ is /, '');
}

function serverError(answer: TransportAnswer): ServerError {
  if (answer.status === 0) return { code: 'SHOAL_ERR_CONNECT', message: answer.error ?? 'no answer' };
  const e = (answer.body as { error?: Partial<ServerError> } | null)?.error;
  if (typeof e === 'object' && e !== null && typeof e.code === 'string') {
    return { code: e.code, message: String(e.message ?? ''), row: typeof e.row === 'number' ? e.row : undefined, column: typeof e.column === 'string' ? e.column : undefined };
  }
  return { code: `HTTP_${answer.status}`, message: typeof answer.body === 'string' ? answer.body.slice(0, 300) : JSON.stringify(answer.body)?.slice(0, 300) ?? '' };
}

/**
 * Whether a failed try may still have stored the batch somewhere: no answer (a reset or timeout
 * after sending), a 5xx other than 503, or an aggregator's 503 saying no leaf took it (its tries
 * may have been ambiguous). A 503 refusal or a 429 stored nothing.
 */
function mayBeStored(answer: TransportAnswer): boolean {
  if (answer.status === 0 || (answer.status >= 500 && answer.status !== 503)) return true;
  return answer.status === 503 && (answer.body as { error?: { code?: unknown } } | null)?.error?.code === 'SHOAL_ERR_CLUSTER_NO_LEAF';
}

/** Errors about a row of the batch (the rest of the batch can still load). */
function isRowError(status: number, code: string): boolean {
  return (status === 400 || status === 413) && code.startsWith('SHOAL_ERR_INGEST_') && code !== 'SHOAL_ERR_INGEST_CONTENT_TYPE';
}

function valueClass(v: unknown): ValueClass | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'set';
  return null;
}

export class Sender {
  private readonly running = new Set<Promise<void>>();
  private fatal: ShoalError | null = null;

  constructor(
    private readonly transport: Transport,
    private readonly opts: SendOptions,
    private readonly types: ColumnTypes,
    private readonly report: ReportBuilder,
    private readonly sleep: Sleep = realSleep,
    private readonly random: () => number = Math.random,
    /** When aborted, a failed attempt is not retried (the tail stops; its state keeps the batch
     * as pending, and a restart resends it). Requests already made are not cut short. */
    private readonly signal?: AbortSignal,
  ) {}

  /** The first error that stopped sending, if any. */
  get failed(): ShoalError | null { return this.fatal; }

  /** Starts sending `batch` once fewer than inFlight batches are outstanding. */
  async submit(batch: Batch): Promise<void> {
    while (this.running.size >= this.opts.inFlight) await Promise.race(this.running);
    if (this.fatal !== null) throw this.fatal;
    const task: Promise<void> = this.send(batch)
      .catch((e: unknown) => { this.fatal ??= e instanceof ShoalError ? e : new ShoalError('SHOAL_ERR_LOAD_SEND', (e as Error).message); })
      .finally(() => { this.running.delete(task); });
    this.running.add(task);
  }

  /** Waits for every batch in flight; throws the first error that stopped sending. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.fatal !== null) throw this.fatal;
  }

  /** Sends one batch now, to the end (used directly by the tail, which sends one at a time). */
  async send(batch: Batch): Promise<void> {
    this.report.batches++;
    const queue: Segment[] = [{ id: batch.id, body: batch.body, lines: null, positions: batch.positions }];
    let sub = 0;
    // Each round trip either stores a segment or removes at least one row from it (rejects it,
    // or splits it in two smaller ones), so this ends within 2 x rows round trips.
    let roundsLeft = 2 * batch.positions.length + 1;
    while (queue.length > 0) {
      assert(roundsLeft-- > 0, 'bad-row isolation makes progress');
      const seg = queue.shift()!;
      const { answer, ownLoss } = await this.post(seg, batch);
      if (answer.status === 200) {
        const body = answer.body as { accepted?: unknown; duplicate?: unknown } | null;
        if (body?.duplicate === true) {
          this.report.batchesDuplicate++;
          this.report.rowsDuplicate += seg.positions.length;
          if (ownLoss) this.report.rowsDuplicateOwn += seg.positions.length;
          this.report.rowsAccepted += seg.positions.length;
        } else {
          this.report.rowsAccepted += typeof body?.accepted === 'number' ? body.accepted : seg.positions.length;
        }
        continue;
      }
      const err = serverError(answer);
      if (!isRowError(answer.status, err.code)) {
        throw new ShoalError('SHOAL_ERR_LOAD_SEND', `the server refused the batch of ${batch.file} ${batch.positionKind}s ${seg.positions[0]}..${seg.positions[seg.positions.length - 1]}: HTTP ${answer.status} ${err.code}: ${err.message}`);
      }
      const nextId = () => `${batch.id}.${++sub}`;
      const rowCount = seg.positions.length;
      const lines = linesOf(seg);
      assert(lines.length === rowCount, 'a segment has one line per position');
      if (err.row !== undefined && err.row >= 0 && err.row < rowCount && Number.isInteger(err.row)) {
        const r = err.row;
        this.report.reject(batch.file, batch.positionKind, { position: seg.positions[r]!, code: err.code, message: cleanServerMessage(err.message) });
        const learned = this.learn(err);
        for (const [from, to] of [[0, r], [r + 1, rowCount]] as const) {
          if (to <= from) continue;
          let part: Segment = { id: nextId(), body: null, lines: lines.slice(from, to), positions: seg.positions.slice(from, to) };
          if (learned !== null) part = this.recheck(part, batch, learned.column, learned.cls);
          if (part.positions.length > 0) queue.push(part);
        }
      } else if (rowCount === 1) {
        this.report.reject(batch.file, batch.positionKind, { position: seg.positions[0]!, code: err.code, message: cleanServerMessage(err.message) });
      } else {
        const half = rowCount >> 1;
        queue.push({ id: nextId(), body: null, lines: lines.slice(0, half), positions: seg.positions.slice(0, half) });
        queue.push({ id: nextId(), body: null, lines: lines.slice(half), positions: seg.positions.slice(half) });
      }
    }
  }

  /** A table's column type named in a type-conflict message ("... the column's type int in the table"). */
  private learn(err: ServerError): { column: string; cls: ValueClass } | null {
    if (err.code !== 'SHOAL_ERR_INGEST_TYPE_CONFLICT' || err.column === undefined) return null;
    const m = /column's type (\w+) in the table/.exec(err.message);
    const cls = m ? classOfServerType(m[1]!) : null;
    if (cls === null) return null;
    this.types.set(err.column, cls);
    return { column: err.column, cls };
  }

  /** Rejects, locally, the rows of `seg` whose `column` does not match `cls`. */
  private recheck(seg: Segment, batch: Batch, column: string, cls: ValueClass): Segment {
    const lines: string[] = [];
    const positions: number[] = [];
    const all = linesOf(seg);
    for (let i = 0; i < all.length; i++) {
      // The loader's own lines are objects; `shoal ingest` forwards lines unchecked, so one that
      // is not an object (or not JSON) is kept here and left to the leaf to judge.
      let row: unknown = null;
      try { row = JSON.parse(all[i]!); } catch { /* the leaf will say */ }
      const got = typeof row === 'object' && row !== null ? valueClass((row as Record<string, unknown>)[column]) : null;
      if (got !== null && got !== cls) {
        this.report.reject(batch.file, batch.positionKind, {
          position: seg.positions[i]!, code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT',
          message: `column "${column}": value of type ${got} conflicts with the column's type ${cls} in the table`,
        });
        continue;
      }
      lines.push(all[i]!);
      positions.push(seg.positions[i]!);
    }
    return { id: seg.id, body: null, lines, positions };
  }

  /** Posts a segment, retrying refusals and transport failures with backoff. `ownLoss`: a try
   * of it in this run may have been stored before the answer that is returned (a failover
   * transport's own resends count: their answer carries the tries that failed). */
  private async post(seg: Segment, batch: Batch): Promise<{ answer: TransportAnswer; ownLoss: boolean }> {
    const body = seg.body ?? seg.lines!.join('\n');
    let delayMs = this.opts.retryDelayMs;
    // The parts of a rejected batch have ids of their own, never sent before.
    let resend = batch.resend === true && seg.id === batch.id;
    let ownLoss = false;
    for (let attempt = 1; ; attempt++) {
      const answer = await this.transport.postEvents(this.opts.table, body, seg.id, { resend });
      if (answer.lostTries === true) ownLoss = true;
      if (!RETRYABLE.has(answer.status)) return { answer, ownLoss };
      if (mayBeStored(answer)) { resend = true; ownLoss = true; }
      if (this.signal?.aborted === true) {
        throw new ShoalError('SHOAL_ERR_LOAD_SEND', `stopped while retrying the batch of ${batch.file} ${batch.positionKind}s ${seg.positions[0]}..${seg.positions[seg.positions.length - 1]} (${serverError(answer).message})`);
      }
      if (attempt >= this.opts.retries) {
        const err = serverError(answer);
        throw new ShoalError('SHOAL_ERR_LOAD_SEND',
          `gave up on the batch of ${batch.file} ${batch.positionKind}s ${seg.positions[0]}..${seg.positions[seg.positions.length - 1]} after ${attempt} attempts; last: ${answer.status === 0 ? '' : `HTTP ${answer.status} `}${err.code}: ${err.message}`);
      }
      this.report.retries++;
      // Full jitter between half and all of the delay, so retrying loaders do not march in step.
      let waitMs = delayMs * (0.5 + this.random() / 2);
      if (answer.retryAfterMs !== null) waitMs = Math.max(waitMs, answer.retryAfterMs);
      await this.sleep(Math.min(waitMs, LIMITS.loaderRetryDelayMsMax));
      delayMs = Math.min(delayMs * 2, LIMITS.loaderRetryDelayMsMax);
    }
  }
}
