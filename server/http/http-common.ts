/**
 * HTTP plumbing shared by leaf and aggregator: body parsers (raw bytes, so ingest can forward or
 * decode them without a JSON round trip), the error shape `{"error": {"code", "message", ...}}`
 * for every failure, bearer-token checks in constant time, and request bounds.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { ShoalError, isShoalError } from '../../query/errors.js';
import { openPlan, type PlanEnvelope } from '../../query/plan/protocol.js';
import { LIMITS } from '../../query/limits.js';

/**
 * How a process writes its log lines on stdout: `json` (pino's lines, for files and log
 * shippers; what `shoal up` writes to its log files) or `text` (one readable line each, for a
 * person at a terminal). `auto`, the CLI default, is text on a terminal and JSON otherwise.
 */
export type LogFormat = 'json' | 'text';
let logFormat: LogFormat = 'json';
export function setLogFormat(f: 'auto' | LogFormat): void {
  if (f !== 'auto' && f !== 'json' && f !== 'text') throw new ShoalError('SHOAL_ERR_BAD_REQUEST', `--log-format must be auto, json or text, not ${String(f)}`);
  logFormat = f === 'auto' ? (process.stdout.isTTY ? 'text' : 'json') : f;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino JSON line as `time LEVEL message {other fields}`. */
export function textLogLine(json: string): string {
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(json) as Record<string, unknown>; } catch { return json.endsWith('\n') ? json : json + '\n'; }
  const { level, time, msg, pid: _pid, hostname: _host, ...rest } = rec;
  const when = typeof time === 'number' ? new Date(time).toISOString() : '';
  const name = (LEVEL_NAMES[level as number] ?? String(level)).padEnd(5);
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${when} ${name} ${String(msg ?? '')}${extra}\n`;
}

/** Server options shared by leaf and aggregator: logs with request ids, bounded bodies. */
export function fastifyOptions(logLevel: string): FastifyServerOptions {
  const stream = logFormat === 'text' ? { write: (line: string) => { process.stdout.write(textLogLine(line)); } } : undefined;
  return {
    logger: { level: logLevel, ...(stream !== undefined ? { stream } : {}) },
    // Per-request log lines would dominate the log at ingest rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: LIMITS.bodyBytesMax,
    requestIdHeader: 'x-request-id',
    // Bounded time to receive a request, so a slow or stalled client cannot hold a socket.
    requestTimeout: 120_000,
    // Long enough that an over-long table name reaches our own check (SHOAL_ERR_TABLE_NAME)
    // instead of the router's generic 414.
    routerOptions: { maxParamLength: 1024 },
    // No route declares a JSON schema (bodies are parsed and checked by shoal's own code), so
    // fastify's default compilers (ajv, fast-json-stringify) are never used; building them
    // anyway was ~95 ms of CPU at every start, and a leaf's start is part of every restart.
    schemaController: { compilersFactory: { buildValidator: noSchemaCompiler, buildSerializer: noSchemaCompiler } },
  };
}

/** The schema compiler of a server whose routes declare no schemas: using one is a bug. */
function noSchemaCompiler(): () => never {
  return () => { throw new Error('assertion failed: shoal routes declare no JSON schemas (fastify schema compilers are not loaded)'); };
}

export const RAW_TYPES = ['application/json', 'application/x-ndjson', 'text/plain', 'application/octet-stream'];

export function installCommon(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(RAW_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Any other type: keep the bytes and let the route refuse it with a clear code.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new ShoalError('SHOAL_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  app.setErrorHandler((err: unknown, req, reply) => {
    if (isShoalError(err)) return sendError(reply, err);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new ShoalError('SHOAL_ERR_INGEST_LIMIT', `request body exceeds the limit of ${app.initialConfig.bodyLimit} bytes`));
    }
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, new ShoalError('SHOAL_ERR_BAD_REQUEST', e.message ?? 'bad request'));
    }
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, new ShoalError('SHOAL_ERR_INTERNAL', `internal error: ${e.message ?? String(err)}`));
  });
}

/** A batch id from `x-shoal-batch-id` (cut at 128 bytes), or null. */
export function ingestBatchId(header: string | string[] | undefined): string | null {
  return typeof header === 'string' && header.length > 0 ? header.slice(0, 128) : null;
}

/**
 * On a 503 to a batch with an id, `never` says the process that answered takes no more writes
 * (handing off or stopped) and did not store that batch: no earlier try of it can still be
 * stored there, so the router need not wait out that try's deadline before moving on.
 */
export const BATCH_STORED_HEADER = 'x-shoal-batch-stored';

export function sendError(reply: FastifyReply, err: ShoalError): FastifyReply {
  if (err.status === 503) reply.header('Retry-After', '1');
  return reply.code(err.status).type('application/json').send(err.toJSON());
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time bearer token check (hashing first makes the lengths equal). */
export function tokenMatches(req: FastifyRequest, token: string): boolean {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(h.slice(7)), digest(token));
}

export function requireToken(req: FastifyRequest, token: string | null, what: string): void {
  if (token === null) return;
  if (!tokenMatches(req, token)) {
    throw new ShoalError('SHOAL_ERR_UNAUTHORIZED', `${what} requires "Authorization: Bearer <token>"`);
  }
}

/** Parses a JSON request body (query and admin routes), with a clear error. */
export function jsonBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : String(body));
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export function bodyFormat(contentType: string | undefined): 'json' | 'ndjson' | 'auto' {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === 'application/json') return 'json';
  if (ct === 'application/x-ndjson') return 'ndjson';
  if (ct === '' || ct === 'text/plain' || ct === 'application/octet-stream') return 'auto';
  throw new ShoalError('SHOAL_ERR_INGEST_CONTENT_TYPE', `Content-Type ${ct} is not accepted; use application/json or application/x-ndjson`);
}

/** A query: its SQL (from a user) or its plan (from an aggregator, query/plan/protocol.ts). */
/** `topn`: an aggregator's top-n push-down, as sent (query/merge/top-cut.ts reads it against
 * the plan; a leaf that cannot use it sends every group). */
export interface QueryRequest { sql: string; plan: PlanEnvelope | null; minCoverage: number | null; timeoutMs: number | null; partial: boolean; nowSeconds: number | null; topn?: unknown }

export function parseQueryRequest(body: unknown): QueryRequest {
  const b = jsonBody(body);
  const plan = b.plan === undefined || b.plan === null ? null : openPlan(b.plan);
  if (plan === null && typeof b.sql !== 'string') throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', 'body must have "sql": a string');
  const mc = b.minCoverage;
  if (mc !== undefined && mc !== null && !(typeof mc === 'number' && mc >= 0 && mc <= 100)) {
    throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', '"minCoverage" must be a number from 0 to 100');
  }
  const t = b.timeoutMs;
  if (t !== undefined && t !== null && !(typeof t === 'number' && Number.isFinite(t) && t > 0)) {
    throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', '"timeoutMs" must be a positive number of milliseconds');
  }
  const now = b.nowSeconds;
  if (now !== undefined && now !== null && !(typeof now === 'number' && Number.isFinite(now))) {
    throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', '"nowSeconds" must be a number');
  }
  return {
    sql: plan !== null ? plan.sql : b.sql as string,
    plan,
    minCoverage: (mc as number | undefined) ?? null,
    timeoutMs: (t as number | undefined) ?? null,
    partial: b.partial === true,
    nowSeconds: (now as number | undefined) ?? null,
    topn: b.topn,
  };
}
