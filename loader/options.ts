/**
 * The loader's options: one validated object with commented defaults (the runtime-tunable side;
 * compile-time ceilings are in query/limits.ts). The CLI parses strings into this shape and the
 * library checks it again, so a caller from code gets the same messages as a user of the CLI.
 *
 * Not here: reading files (read-*.ts), sending (sender.ts).
 */
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';

export type InputFormat = 'auto' | 'ndjson' | 'csv' | 'parquet' | 'arrow';
export type TimeFormat = 'auto' | 'unix-s' | 'unix-ms' | 'unix-us' | 'iso';
export type MissingTimePolicy = 'reject' | 'now';
/** Types a CSV column can be given (by inference or --schema). */
export type CsvType = 'int' | 'float' | 'bool' | 'string' | 'time';

export const INPUT_FORMATS: readonly InputFormat[] = ['auto', 'ndjson', 'csv', 'parquet', 'arrow'];
export const TIME_FORMATS: readonly TimeFormat[] = ['auto', 'unix-s', 'unix-ms', 'unix-us', 'iso'];
export const CSV_TYPES: readonly CsvType[] = ['int', 'float', 'bool', 'string', 'time'];

/** How rows become time-stamped events (shared by load and tail). */
export interface RowOptions {
  /** Source column holding each row's time; it is sent as `time` (unix seconds). */
  timeColumn: string;
  /** How numbers and strings in the time column are read. Parquet/Arrow timestamp and date
   * types are converted by their own unit whatever this says. */
  timeFormat: TimeFormat;
  /** A row whose time is missing or unusable is rejected (reported), or stamped with now. */
  missingTime: MissingTimePolicy;
  /** Source columns dropped before sending (e.g. a nested column shoal cannot store). */
  skipColumns: string[];
}

/** How rows are sent (shared by load and tail). */
export interface SendOptions {
  /** Aggregator (or single leaf) base URL, with its scheme (`http://127.0.0.1:7000`). The CLI
   * resolves `--url`, its alias `--aggregator` and SHOAL_URL into this (server/cli/common.ts). */
  url: string;
  /** More servers, tried in this order after `url` when a request gets no answer (a connection
   * error, or a batch's lost answer: loader/transport.ts, failoverTransport). `--url a,b`. */
  failoverUrls: string[];
  table: string;
  /** Bearer token for ingest, or null. */
  token: string | null;
  /** A batch is sent when it holds this many rows... */
  batchRows: number;
  /** ...or this many characters of NDJSON, whichever comes first. */
  batchBytes: number;
  /** Batches sent at once. */
  inFlight: number;
  /** Attempts per batch on 503 / connection errors before the load stops. */
  retries: number;
  /** First backoff delay; doubles per attempt (with jitter) up to LIMITS.loaderRetryDelayMsMax. */
  retryDelayMs: number;
  /** Time one HTTP request may take before it counts as a (retryable, ambiguous) failure. */
  requestTimeoutMs: number;
}

export interface LoadOptions extends RowOptions, SendOptions {
  files: string[];
  format: InputFormat;
  /** CSV: column types that override inference. */
  schema: Map<string, CsvType>;
  /** CSV: rows read before the column types are decided. */
  inferRows: number;
  /** CSV: field delimiter; null picks `\t` for .tsv files and `,` otherwise. */
  delimiter: string | null;
  /** Stop the load once more rows than this were rejected (null: never). */
  maxRejected: number | null;
  /** Rejected rows listed in the report with their reasons (the rest are counted). */
  rejectionsShown: number;
}

export function defaultRowOptions(): RowOptions {
  return { timeColumn: 'time', timeFormat: 'auto', missingTime: 'reject', skipColumns: [] };
}

export function defaultSendOptions(): Omit<SendOptions, 'table'> {
  return {
    // The CLI's default too (DEFAULT_URL in server/cli/common.ts: the aggregator of `shoal up`).
    url: 'http://127.0.0.1:7000',
    failoverUrls: [],
    token: null,
    // 10k rows of ~120 bytes is ~1.2 MB: large enough that per-request costs (HTTP, the leaf's
    // batch bookkeeping, a disk-log write) are noise, small enough that 4 in flight stay a few MB.
    batchRows: 10_000,
    batchBytes: 4 * 1024 * 1024,
    // Enough to keep a leaf busy while the loader parses the next batches; more only queues.
    inFlight: 4,
    // 10 attempts with delays 0.1, 0.2, ... capped at 10 s: about a minute of refusals.
    retries: 10,
    retryDelayMs: 100,
    requestTimeoutMs: 120_000,
  };
}

export function defaultLoadOptions(files: string[], table: string): LoadOptions {
  return {
    ...defaultRowOptions(),
    ...defaultSendOptions(),
    table,
    files,
    format: 'auto',
    schema: new Map(),
    inferRows: 1_000,
    delimiter: null,
    maxRejected: null,
    rejectionsShown: 10,
  };
}

function fail(message: string): never {
  throw new ShoalError('SHOAL_ERR_LOAD_OPTION', message);
}

function intIn(value: number, name: string, min: number, max: number): void {
  if (!(Number.isInteger(value) && value >= min && value <= max)) fail(`${name} must be an integer in ${min}..${max}, got ${value}`);
}

export function validateRowOptions(o: RowOptions): void {
  if (o.timeColumn.length === 0 || o.timeColumn.length > LIMITS.columnNameBytesMax) fail('--time-column must name a column');
  if (!TIME_FORMATS.includes(o.timeFormat)) fail(`--time-format must be one of ${TIME_FORMATS.join(', ')}, got "${o.timeFormat}"`);
  if (o.missingTime !== 'reject' && o.missingTime !== 'now') fail(`--missing-time must be reject or now, got "${o.missingTime}"`);
  if (o.skipColumns.includes(o.timeColumn)) fail(`--skip-columns names the time column "${o.timeColumn}"`);
}

function checkUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail(`--url must be a URL like http://127.0.0.1:7000, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`--url must be an http(s) URL, got "${text}"`);
}

export function validateSendOptions(o: SendOptions): void {
  checkUrl(o.url);
  if (1 + o.failoverUrls.length > LIMITS.clientUrlsMax) fail(`--url names ${1 + o.failoverUrls.length} servers; at most ${LIMITS.clientUrlsMax} are allowed`);
  for (const u of o.failoverUrls) checkUrl(u);
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(o.table)) fail(`--table must be 1..${LIMITS.tableNameBytesMax} letters, digits, _ or -, got "${o.table}"`);
  intIn(o.batchRows, '--batch-rows', 1, LIMITS.eventsPerBatchMax);
  intIn(o.batchBytes, '--batch-bytes', 1024, LIMITS.loaderBatchBytesMax);
  intIn(o.inFlight, '--in-flight', 1, LIMITS.loaderInFlightMax);
  intIn(o.retries, '--retries', 1, LIMITS.loaderRetriesMax);
  intIn(o.retryDelayMs, 'retryDelayMs', 1, LIMITS.loaderRetryDelayMsMax);
  intIn(o.requestTimeoutMs, 'requestTimeoutMs', 100, 3_600_000);
}

export function validateLoadOptions(o: LoadOptions): void {
  if (o.files.length === 0) fail('give at least one file to load');
  if (!INPUT_FORMATS.includes(o.format)) fail(`--format must be one of ${INPUT_FORMATS.join(', ')}, got "${o.format}"`);
  validateRowOptions(o);
  validateSendOptions(o);
  intIn(o.inferRows, '--infer-rows', 1, LIMITS.loaderInferRowsMax);
  if (o.delimiter !== null && o.delimiter.length !== 1) fail(`--delimiter must be one character, got "${o.delimiter}"`);
  if (o.maxRejected !== null) intIn(o.maxRejected, '--max-rejected', 0, Number.MAX_SAFE_INTEGER);
  intIn(o.rejectionsShown, '--show-rejected', 0, LIMITS.loaderRejectionsKeptMax);
}

/** Parses `--schema col:type,col:type` (types: int, float, bool, string, time). */
export function parseSchemaOption(text: string): Map<string, CsvType> {
  const schema = new Map<string, CsvType>();
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const at = part.lastIndexOf(':');
    const name = at > 0 ? part.slice(0, at).trim() : '';
    const type = part.slice(at + 1).trim() as CsvType;
    if (at <= 0 || name === '') fail(`--schema entry "${part}" must be column:type`);
    if (!CSV_TYPES.includes(type)) fail(`--schema entry "${part}": type must be one of ${CSV_TYPES.join(', ')}`);
    if (schema.has(name)) fail(`--schema names column "${name}" twice`);
    schema.set(name, type);
  }
  return schema;
}

/** Parses a size such as 4MiB, 512KiB or 1048576 (bytes). */
export function parseSizeOption(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(text);
  if (!m) fail(`${name} must be a size like 4MiB, got "${text}"`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

/** Parses an integer option given as a string by the CLI. */
export function parseIntOption(text: string, name: string): number {
  if (!/^\s*\d+\s*$/.test(text)) fail(`${name} must be a whole number, got "${text}"`);
  return Number(text);
}
