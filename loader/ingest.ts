/**
 * `ingest()`: NDJSON lines from a stream (a file, stdin) sent to a table as they are, in batches,
 * one batch at a time: the work of `shoal ingest`. Unlike load(), lines are not parsed, converted
 * or checked here: the server judges each event (one without `time` gets its arrival time).
 * Memory is one batch (and its parts while a rejection is isolated) and one piece of the input
 * (`shoal ingest` reads 1 MiB at a time), plus a line that straddles two pieces (at most
 * LIMITS.loaderLineBytesMax; a longer one is rejected without being held), whatever the
 * input's size.
 *
 * Bad lines: a leaf rejects a whole batch, naming its first bad line. The sender (sender.ts, the
 * same isolation as load's) reports that line with its line number in the input, and sends the
 * lines before and after it again as parts of the batch, until every good line is stored and
 * every bad one reported. The input goes on to its end; rejections are handed out in line order.
 *
 * Batch ids (batchIdFor) are a function of the table, the input id, the batch's number and its
 * content, not of the run: a rerun of the same input (same --batch-rows) sends the same ids, and a
 * leaf answers a batch it already stored `duplicate` instead of storing it twice, so a rerun after
 * a failure stores only what the first run did not. The number keeps two identical batches of one
 * input apart. The parts of a rejected batch get `<id>.<k>`: the same split, so the same ids, on a
 * rerun. What the caller picks as the input id decides what counts as "the same input".
 *
 * Not here: sending and retries (sender.ts), the first contact (contact.ts), the command line
 * (server/cli/cmd-ingest.ts).
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { ShoalError, isShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { Batcher, type Batch } from './batcher.js';
import { contactFirst } from './contact.js';
import { defaultSendOptions, validateSendOptions, type SendOptions } from './options.js';
import { LineSplitter } from './read-ndjson.js';
import { ReportBuilder, type RejectedRow } from './report.js';
import { ColumnTypes } from './row-check.js';
import { Sender, type Sleep } from './sender.js';
import { httpTransports, serversOf, type Transport } from './transport.js';

export interface IngestOptions extends SendOptions {
  /** The input's name in rejections and messages: its path, or "stdin". */
  name: string;
  /** Part of every batch id: inputs with the same id and the same content send the same ids.
   * "" leaves the ids a function of the table and the content alone. */
  inputId: string;
}

export function defaultIngestOptions(name: string, table: string): IngestOptions {
  return {
    ...defaultSendOptions(),
    table,
    name,
    inputId: '',
    // One batch at a time (memory holds one), of the size `shoal ingest` always used.
    batchRows: 5_000,
    inFlight: 1,
  };
}

export interface IngestHooks {
  /** Each rejected line, in line order, once the batch it was in has been sent. */
  onReject?: (r: RejectedRow) => void;
  /** Replaces HTTP (tests inject faults here). */
  transport?: Transport;
  sleep?: Sleep;
}

export interface IngestSummary {
  readonly table: string;
  readonly name: string;
  /** Lines read, blank ones included. */
  readonly linesRead: number;
  /** Events the server holds from this input: stored now, or before (rowsDuplicate). */
  readonly rowsAccepted: number;
  /** Events of batches the server had already stored (an earlier run of the same input); not
   * those a resend of this run's own found stored after a lost answer (counted as accepted). */
  readonly rowsDuplicate: number;
  readonly rowsRejected: number;
  /** The rejected line with the lowest line number, or null. */
  readonly firstRejected: RejectedRow | null;
  readonly batches: number;
  readonly retries: number;
  /** Why the input was not sent to its end (a batch could not be delivered, a read error), or null. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** `ingest-<96 bits of sha256>-<batch number>`: well under the leaf's 128-byte id limit, with
 * room for the `.<k>` of a rejected batch's parts. */
export function batchIdFor(table: string, inputId: string, seq: number, body: string): string {
  const h = createHash('sha256').update(`shoal-ingest/1\0${table}\0${inputId}\0${seq}\0`).update(body).digest('hex');
  return `ingest-${h.slice(0, 24)}-${seq}`;
}

/** Reads the input's lines and sends them; throws only for a bad option or a URL where nothing
 * listens (before reading anything). Any later error ends the ingest and is in `error`, with the
 * counts of what was done until then. */
export async function ingest(opts: IngestOptions, input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, hooks: IngestHooks = {}): Promise<IngestSummary> {
  validateSendOptions(opts);
  const transport = hooks.transport ?? httpTransports(serversOf(opts), { token: opts.token, connections: 1, requestTimeoutMs: opts.requestTimeoutMs });
  const report = new ReportBuilder(opts.table, opts.url, 0);
  const types = new ColumnTypes();
  const splitter = new LineSplitter();
  let firstRejected: RejectedRow | null = null;
  // Rejections of the batch being sent: the leaf names a batch's bad lines in no fixed order (a
  // line that is not JSON before a type conflict above it), so they are sorted before going
  // out. Bounded by one batch's lines (plus over-long lines read before it).
  const waiting: RejectedRow[] = [];
  report.onReject = (r) => { waiting.push(r); };
  const release = () => {
    waiting.sort((a, b) => a.position - b.position);
    for (const r of waiting) {
      firstRejected ??= r;
      hooks.onReject?.(r);
    }
    waiting.length = 0;
  };
  await contactFirst(transport, hooks.transport === undefined, opts.url, opts.table, types);
  try {
    const sender = new Sender(transport, { ...opts, inFlight: 1 }, types, report, hooks.sleep);
    const batcher = new Batcher('ingest', opts.batchRows, opts.batchBytes);
    let seq = 0;
    const send = async (b: Batch) => {
      await sender.send({ ...b, id: batchIdFor(opts.table, opts.inputId, seq++, b.body) });
      release();
    };
    const decoder = new StringDecoder('utf8');
    let lines: { text: string; lineNo: number }[] = [];
    const onLine = (text: string, lineNo: number) => { lines.push({ text, lineNo }); };
    const onTooLong = (lineNo: number) => {
      report.reject(opts.name, 'line', { position: lineNo, code: 'SHOAL_ERR_LOAD_ROW', message: `line is longer than ${LIMITS.loaderLineBytesMax} characters` });
    };
    const take = async () => {
      for (const l of lines) {
        let text = l.text;
        if (l.lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        // The leaf's own test for a blank line (it skips those): a line sent is an event.
        if (text.trim() === '') continue;
        const full = batcher.add(opts.name, 'line', text, l.lineNo);
        if (full !== null) await send(full);
      }
      lines = [];
    };
    for await (const piece of readable(input, opts.name, () => splitter.lineNo)) {
      splitter.push(typeof piece === 'string' ? piece : decoder.write(piece), onLine, onTooLong);
      await take();
    }
    splitter.push(decoder.end(), onLine, onTooLong);
    splitter.end(onLine);
    await take();
    const last = batcher.flush(opts.name, 'line');
    if (last !== null) await send(last);
    release();
  } catch (e) {
    if (!isShoalError(e)) throw e;
    report.error = { code: e.code, message: e.message };
    release();
  } finally {
    if (hooks.transport === undefined) await transport.close();
  }
  return {
    table: opts.table, name: opts.name, linesRead: splitter.lineNo, rowsAccepted: report.rowsAccepted, rowsDuplicate: report.rowsDuplicate - report.rowsDuplicateOwn,
    rowsRejected: report.rowsRejected, firstRejected, batches: report.batches, retries: report.retries, error: report.error,
  };
}

/** The input's pieces; a read error becomes SHOAL_ERR_LOAD_FORMAT naming how far it got. */
async function* readable(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, name: string, lineNo: () => number): AsyncGenerator<Buffer | string> {
  try {
    for await (const piece of input) yield piece as Buffer | string;
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `cannot read ${name} after line ${lineNo()}: ${(e as Error).message}`);
  }
}
