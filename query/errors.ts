/**
 * The one error registry of shoal (fastify `FST_ERR_*` style): every error a user can see has a
 * code here, an HTTP status and a one-line description. `docs/errors.md` documents each code and
 * a test keeps the two in step. Codes are grouped by the subsystem they come from, in pipeline
 * order: ingest, query (parse -> bind -> execute), cluster, admin, server.
 *
 * Throw a ShoalError only for something that ends a request. A slow or dead leaf is data in the
 * answer (coverage), not an error. Programmer errors use `assert`, never a code.
 */

export interface ErrorSpec { readonly status: number; readonly description: string }

export const ERRORS = {
  // ingest
  SHOAL_ERR_INGEST_BODY: { status: 400, description: 'The request body is not a JSON array of objects or NDJSON (one object per line).' },
  SHOAL_ERR_INGEST_CONTENT_TYPE: { status: 415, description: 'The Content-Type is not application/json, application/x-ndjson or text/plain.' },
  SHOAL_ERR_INGEST_EVENT: { status: 400, description: 'An event is not a JSON object, or a field name is empty or too long.' },
  SHOAL_ERR_INGEST_TYPE_CONFLICT: { status: 400, description: "A value's type differs from its column's type (in the table or earlier in the batch)." },
  SHOAL_ERR_INGEST_VALUE: { status: 400, description: 'A value cannot be stored: a nested object, an integer beyond 2^53, NaN/Infinity, a string or set over its size limit.' },
  SHOAL_ERR_INGEST_TIME: { status: 400, description: 'The `time` field is neither unix seconds nor an ISO-8601 string, or is outside the accepted range.' },
  SHOAL_ERR_INGEST_LIMIT: { status: 413, description: 'The batch exceeds a size limit: body bytes, events per batch, or columns per table.' },
  SHOAL_ERR_INGEST_DISK: { status: 503, description: 'The leaf could not write the batch to its disk log (disk full, I/O error, or a failed fsync that stops writes until a checkpoint); nothing of the batch was stored; retry (see Retry-After), another leaf takes it.' },
  SHOAL_ERR_INGEST_DEADLINE: { status: 503, description: 'The batch reached the leaf after the deadline its router set (x-shoal-deadline-ms): the router has given up on this leaf and may have placed the batch elsewhere, so it was not stored here; the router tries another leaf.' },
  SHOAL_ERR_TABLE_NAME: { status: 400, description: 'The table name is empty, too long, or has characters other than letters, digits, _ and -.' },
  SHOAL_ERR_TABLE_LIMIT: { status: 400, description: 'Creating this table would exceed the number of tables a leaf holds.' },
  // query
  SHOAL_ERR_QUERY_REQUEST: { status: 400, description: 'The query request body is malformed (missing sql, bad minCoverage or timeoutMs).' },
  SHOAL_ERR_QUERY_OVERFLOW: { status: 422, description: 'An integer expression reaches beyond +-2^53, where shoal stops computing integers exactly; the query is refused rather than answered rounded.' },
  SHOAL_ERR_PLAN_VERSION: { status: 409, description: 'The query plan sent by an aggregator has a protocol version this process does not execute (a cluster mid-upgrade); the aggregator counts the leaf as failed, naming both versions.' },
  SHOAL_ERR_QUERY_PARSE: { status: 400, description: 'The SQL text does not parse; the message gives the character position.' },
  SHOAL_ERR_QUERY_LIMIT: { status: 400, description: 'The SQL exceeds a limit: text length, expression depth, list length, LIMIT value.' },
  SHOAL_ERR_QUERY_UNKNOWN_TABLE: { status: 404, description: 'The table in FROM does not exist.' },
  SHOAL_ERR_QUERY_UNKNOWN_COLUMN: { status: 400, description: 'A column named in the query does not exist in the table.' },
  SHOAL_ERR_QUERY_UNKNOWN_FUNCTION: { status: 400, description: 'A function name is not known, or is called with the wrong number of arguments.' },
  SHOAL_ERR_QUERY_TYPE: { status: 400, description: 'An operator or function is applied to a value of the wrong type.' },
  SHOAL_ERR_QUERY_SEMANTIC: { status: 400, description: 'The query is well-formed but not meaningful: an aggregate in WHERE, a non-grouped column beside aggregates, a bad GROUP BY/ORDER BY reference.' },
  SHOAL_ERR_QUERY_SCHEMA_CONFLICT: { status: 409, description: 'A column the query uses has different types on different leaves (e.g. int on one, string on another); the message names the column, the types and the leaves.' },
  SHOAL_ERR_QUERY_GROUP_LIMIT: { status: 422, description: 'The query produces more groups (or distinct values) than the limit allows.' },
  SHOAL_ERR_QUERY_TIMEOUT: { status: 504, description: 'The query did not finish within its timeout.' },
  SHOAL_ERR_QUERY_OVERLOADED: { status: 503, description: 'Too many queries are running; retry later.' },
  SHOAL_ERR_QUERY_COVERAGE: { status: 503, description: 'Fewer rows answered than the minCoverage the caller asked for; the error carries the coverage.' },
  // cluster
  SHOAL_ERR_CLUSTER_NO_LEAF: { status: 503, description: 'No leaf could accept the batch after the allowed number of tries.' },
  SHOAL_ERR_CLUSTER_CONFIG: { status: 400, description: 'The cluster file is malformed.' },
  SHOAL_ERR_CLUSTER_NO_ANSWER: { status: 503, description: 'No leaf answered the query (each refused, timed out or failed); the error carries the coverage with every failure.' },
  SHOAL_ERR_CLUSTER_JOIN: { status: 409, description: 'A leaf\'s join was refused: its id belongs to a cluster-file member at another address, the join is malformed, or the aggregator has as many members as its limit.' },
  SHOAL_ERR_CLUSTER_OVERLOADED: { status: 503, description: 'The aggregator has as many ingest requests in flight as its limit allows; retry (see Retry-After).' },
  // loader (shoal load / shoal tail): reported by the loader itself, never by a server. Row
  // codes are per row and do not stop a load; the others stop it (the report says where).
  SHOAL_ERR_LOAD_OPTION: { status: 400, description: 'A load or tail option is invalid: unknown format or time format, a bad --schema entry, a size out of range, a missing file.' },
  SHOAL_ERR_LOAD_FORMAT: { status: 400, description: 'A file is not in the format given or detected (not NDJSON, CSV, Parquet or Arrow IPC), or it is corrupt or truncated.' },
  SHOAL_ERR_LOAD_ROW: { status: 400, description: 'A row cannot be read: a line that is not a JSON object, a CSV quoting or field-count error, a line over the length limit, a value not of its column type.' },
  SHOAL_ERR_LOAD_TIME: { status: 400, description: 'A row has no usable time (missing, unparseable, or outside 1900..2200 after conversion) and --missing-time is reject.' },
  SHOAL_ERR_LOAD_SEND: { status: 503, description: 'A batch could not be delivered after the allowed retries (the server kept refusing it or could not be reached); the load stops and the report says which rows were not sent.' },
  SHOAL_ERR_LOAD_STATE: { status: 400, description: 'The tail state file is malformed, too large, or belongs to another table.' },
  // leaf lifecycle and admin
  SHOAL_ERR_UNAVAILABLE: { status: 503, description: 'The leaf is handing off, starting or over a limit (uploads in flight, its ingest decode queue, its memory budget) and does not take writes now; retry (see Retry-After).' },
  SHOAL_ERR_UNAUTHORIZED: { status: 401, description: 'A bearer token is required for this route and was missing or wrong.' },
  SHOAL_ERR_NOT_FOUND: { status: 404, description: 'No such route or table.' },
  SHOAL_ERR_BAD_REQUEST: { status: 400, description: 'The HTTP request is malformed (bad JSON, too large, wrong method).' },
  SHOAL_ERR_INTERNAL: { status: 500, description: 'A bug in shoal; the message says where. Please report it.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Where in the input the error is: a character offset in the SQL, or a row and column of a batch. */
export interface ErrorWhere {
  position?: number;
  row?: number;
  column?: string;
  line?: number;
}

export class ShoalError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly where: ErrorWhere | undefined;
  /** Extra data carried to the client (e.g. the coverage of a query below minCoverage). */
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, where?: ErrorWhere, extra?: Record<string, unknown>) {
    super(message);
    this.name = 'ShoalError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.where = where;
    this.extra = extra;
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...(this.where ?? {}), ...(this.extra ?? {}) } };
  }
}

export function isShoalError(e: unknown): e is ShoalError {
  return e instanceof ShoalError || (typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'ShoalError' && typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code in ERRORS);
}

/** Programmer errors only: a condition no user input can make false. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
