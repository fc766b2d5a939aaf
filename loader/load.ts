/**
 * `load()`: files -> reader -> prepare (time, checks, NDJSON) -> batcher -> sender, one file
 * after another, streaming: the reader is paused whenever `inFlight` batches are outstanding, so
 * memory is a few batches and one reader chunk (or Parquet row group), whatever the file size.
 * Returns the report; throws only for a bad option, a missing file, or a URL where nothing
 * listens (contact.ts), i.e. before anything is read or sent. Any later error (an unreadable
 * file, a batch that cannot be delivered) stops the load and is in `report.error`, with the
 * counts of what was done until then.
 */
import { randomBytes } from 'node:crypto';
import { ShoalError, isShoalError } from '../query/errors.js';
import { Batcher, type Batch } from './batcher.js';
import { contactFirst } from './contact.js';
import { heapGuard } from './heap-guard.js';
import { validateLoadOptions, type LoadOptions } from './options.js';
import { RowPreparer } from './prepare.js';
import { fileSize, openSource } from './readers.js';
import { chunkRowCount } from './source.js';
import { ReportBuilder, type LoadReport } from './report.js';
import { ColumnTypes } from './row-check.js';
import { Sender, type Sleep } from './sender.js';
import { httpTransports, serversOf, type Transport } from './transport.js';

export interface LoadProgress {
  readonly file: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly rowsRead: number;
  readonly rowsAccepted: number;
  readonly rowsRejected: number;
  readonly elapsedMs: number;
}

export interface LoadHooks {
  /** Called after each chunk of rows (a few thousand): cheap, but throttle any rendering. */
  onProgress?: (p: LoadProgress) => void;
  /** Replaces HTTP (tests inject faults here). */
  transport?: Transport;
  /** Stops the load: reading ends, batches in flight finish, the report says `interrupted`. */
  signal?: AbortSignal;
  sleep?: Sleep;
  nowSeconds?: () => number;
  /** False turns off checking plain NDJSON a stretch at a time (fast-check.ts): tests compare. */
  checkAtOnce?: boolean;
  /** Counts NDJSON lines checked at once / parsed one by one into this object (tests, benches). */
  lineStats?: { atOnce: number; oneByOne: number };
}

export async function load(opts: LoadOptions, hooks: LoadHooks = {}): Promise<LoadReport> {
  validateLoadOptions(opts);
  const started = performance.now();
  const sizes: number[] = [];
  for (const f of opts.files) sizes.push(await fileSize(f));
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);

  const transport = hooks.transport ?? httpTransports(serversOf(opts), { token: opts.token, connections: opts.inFlight, requestTimeoutMs: opts.requestTimeoutMs });
  const report = new ReportBuilder(opts.table, opts.url, opts.rejectionsShown);
  const types = new ColumnTypes();
  const sender = new Sender(transport, opts, types, report, hooks.sleep);
  // Batch ids are unique per run: loading the same file twice loads it twice (on purpose);
  // only a retry within this run reuses an id.
  const batcher = new Batcher(`load-${randomBytes(6).toString('hex')}`, opts.batchRows, opts.batchBytes);
  let bytesBefore = 0;

  await contactFirst(transport, hooks.transport === undefined, opts.url, opts.table, types);
  try {
    for (let f = 0; f < opts.files.length; f++) {
      const file = opts.files[f]!;
      if (hooks.signal?.aborted) break;
      const source = await openSource(file, opts);
      if (source.columns !== null && source.columns.length > 0 && !source.columns.includes(opts.timeColumn) && opts.missingTime === 'reject') {
        // Every row would be rejected: say so once, before sending anything of this file.
        throw new ShoalError('SHOAL_ERR_LOAD_OPTION', `${file} has no column "${opts.timeColumn}" (its columns: ${source.columns.slice(0, 12).join(', ')}${source.columns.length > 12 ? ', ...' : ''}); name the time column with --time-column, or stamp rows with --missing-time now`);
      }
      const fileReport = { file, format: source.format + (source.format === 'ndjson' && /\.gz$/i.test(file) ? '.gz' : ''), rows: 0, bytes: 0 } as LoadReport['files'][number];
      report.files.push(fileReport);
      const preparer = new RowPreparer(opts, types, source.secondsColumns, (r) => report.reject(file, source.positionKind, r), hooks.nowSeconds, hooks.checkAtOnce ?? true);
      for await (const chunk of source.chunks()) {
        const rowsInChunk = chunkRowCount(chunk);
        report.rowsRead += rowsInChunk;
        fileReport.rows += rowsInChunk;
        const prepared = preparer.prepare(chunk);
        for (let i = 0; i < prepared.lines.length; i++) {
          const full: Batch | null = batcher.add(file, source.positionKind, prepared.lines[i]!, prepared.positions[i]!);
          if (full !== null) await sender.submit(full);
        }
        fileReport.bytes = chunk.bytesDone;
        report.bytesRead = bytesBefore + chunk.bytesDone;
        hooks.onProgress?.({
          file, bytesDone: report.bytesRead, bytesTotal, rowsRead: report.rowsRead,
          rowsAccepted: report.rowsAccepted, rowsRejected: report.rowsRejected, elapsedMs: performance.now() - started,
        });
        if (opts.maxRejected !== null && report.rowsRejected > opts.maxRejected) {
          throw new ShoalError('SHOAL_ERR_LOAD_ROW', `more than ${opts.maxRejected} rows were rejected (--max-rejected); stopping`);
        }
        heapGuard().check();
        if (hooks.signal?.aborted) break;
      }
      report.rowsTimeDefaulted += preparer.timeDefaulted;
      if (hooks.lineStats !== undefined) {
        hooks.lineStats.atOnce += preparer.linesChecked.atOnce;
        hooks.lineStats.oneByOne += preparer.linesChecked.oneByOne;
      }
      if (columnTypesOf(source.columnTypes) !== undefined) fileReport.columnTypes = columnTypesOf(source.columnTypes);
      const last = batcher.flush(file, source.positionKind);
      if (last !== null) await sender.submit(last);
      fileReport.bytes = sizes[f]!;
      bytesBefore += sizes[f]!;
      report.bytesRead = bytesBefore;
    }
    await sender.drain();
    if (hooks.signal?.aborted) report.interrupted = true;
  } catch (e) {
    if (!isShoalError(e)) throw e;
    report.error = { code: e.code, message: e.message };
    // Let batches already in flight finish (and be counted) before reporting.
    await sender.drain().catch(() => {});
  } finally {
    if (hooks.transport === undefined) await transport.close();
  }
  hooks.onProgress?.({
    file: opts.files[opts.files.length - 1]!, bytesDone: report.bytesRead, bytesTotal, rowsRead: report.rowsRead,
    rowsAccepted: report.rowsAccepted, rowsRejected: report.rowsRejected, elapsedMs: performance.now() - started,
  });
  return report.finish((performance.now() - started) / 1000);
}

function columnTypesOf(types: ReadonlyMap<string, string> | null): Record<string, string> | undefined {
  return types === null ? undefined : Object.fromEntries(types);
}
