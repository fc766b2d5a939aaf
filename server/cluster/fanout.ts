/**
 * Transport from an aggregator to its members (leaves or child aggregators): one undici Agent
 * with keep-alive connections, a request that never throws for an operating condition (a dead,
 * slow or broken member is an outcome, STYLE rule 8), and a bounded-concurrency runner for
 * fan-outs.
 *
 * Every request has a deadline covering connect, headers and body, and a byte limit on the
 * answer. A failure is classified by whether the member can have acted on the request: `refused`
 * (nothing was sent: connection refused, host unreachable, connect timeout) versus the ambiguous
 * ones (`timeout`, `dropped`: the request may have been received and applied). The ingest router
 * retries on that distinction.
 *
 * Not here: what to send or how to merge answers (cluster-query.ts, router.ts, membership.ts).
 */
import { Agent, request, type Dispatcher } from 'undici';
import { LIMITS } from '../../query/limits.js';

/** What happened to one request. `http` is any answer, 4xx/5xx included. */
export type MemberOutcome =
  | { readonly kind: 'http'; readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly text: string; readonly ms: number }
  | { readonly kind: 'refused' | 'timeout' | 'dropped' | 'too-large'; readonly reason: string; readonly ms: number };

export interface MemberRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  readonly timeoutMs: number;
  readonly bytesMax: number;
}

export function createMemberAgent(): Agent {
  return new Agent({
    connections: LIMITS.memberConnectionsMax,
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    // Our own deadline (an AbortSignal) is the one that matters; these are backstops.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: 5_000 },
  });
}

/** Error codes that mean the request never reached the member. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(e: unknown): string | undefined {
  const x = e as { code?: unknown; cause?: { code?: unknown }; errors?: { code?: unknown }[] };
  if (typeof x?.code === 'string') return x.code;
  if (typeof x?.cause?.code === 'string') return x.cause.code;
  if (Array.isArray(x?.errors) && typeof x.errors[0]?.code === 'string') return x.errors[0].code;
  return undefined;
}

function describeNotSent(code: string, e: unknown): string {
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  return `cannot connect: ${code} ${(e as Error).message ?? ''}`.trim();
}

/** Sends one request; resolves with its outcome (never rejects for network or HTTP failures). */
export async function memberRequest(agent: Dispatcher, url: string, req: MemberRequest): Promise<MemberOutcome> {
  const started = performance.now();
  const abort = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const elapsed = () => Math.round(performance.now() - started);
  // The deadline answers by itself, whatever the request is doing: undici does not act on an
  // abort while a connection attempt is pending (nodejs/undici#386), so a request to a host cut
  // off from the network waited out the agent's 5 s connect timeout, not its own deadline
  // (found by test/slow/multi-host.test.ts). The request is still aborted and ends on its own.
  const deadline = new Promise<MemberOutcome>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
      resolve({ kind: 'timeout', reason: `timeout after ${req.timeoutMs} ms`, ms: elapsed() });
    }, req.timeoutMs);
  });
  try {
    return await Promise.race([deadline, sendAndRead(agent, url, req, abort.signal, () => timedOut, elapsed)]);
  } finally {
    clearTimeout(timer);
  }
}

async function sendAndRead(agent: Dispatcher, url: string, req: MemberRequest, signal: AbortSignal, timedOut: () => boolean, elapsed: () => number): Promise<MemberOutcome> {
  try {
    const res = await request(url, {
      dispatcher: agent, method: req.method, headers: req.headers, body: req.body, signal,
    });
    const chunks: Buffer[] = [];
    let byteCount = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      byteCount += chunk.length;
      if (byteCount > req.bytesMax) {
        res.body.destroy();
        return { kind: 'too-large', reason: `answer larger than ${req.bytesMax} bytes`, ms: elapsed() };
      }
      chunks.push(chunk);
    }
    return { kind: 'http', status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: elapsed() };
  } catch (e) {
    if (timedOut()) return { kind: 'timeout', reason: `timeout after ${req.timeoutMs} ms`, ms: elapsed() };
    const code = errorCode(e) ?? '';
    if (NOT_SENT.has(code)) return { kind: 'refused', reason: describeNotSent(code, e), ms: elapsed() };
    if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE') {
      return { kind: 'dropped', reason: 'connection closed before an answer', ms: elapsed() };
    }
    return { kind: 'dropped', reason: `request failed: ${code ? code + ' ' : ''}${(e as Error).message ?? String(e)}`, ms: elapsed() };
  }
}

/** The JSON of an HTTP outcome, or undefined when it is not JSON. */
export function outcomeJson(o: MemberOutcome): unknown {
  if (o.kind !== 'http' || o.text.length === 0) return undefined;
  try { return JSON.parse(o.text); } catch { return undefined; }
}

/** The error object of a shoal error answer (`{"error": {code, message}}`), if it is one. */
export function outcomeError(o: MemberOutcome): { code: string; message: string; [k: string]: unknown } | null {
  const body = outcomeJson(o) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const err = body?.error;
  if (typeof err !== 'object' || err === null || typeof err.code !== 'string') return null;
  return { ...err, code: err.code, message: typeof err.message === 'string' ? err.message : '' };
}

/** A one-line reason for a failed outcome: `timeout after 5000 ms`, `HTTP 503: CODE: message`. */
export function outcomeReason(o: MemberOutcome): string {
  if (o.kind !== 'http') return o.reason;
  const err = outcomeError(o);
  const text = err ? `${err.code}: ${err.message}` : o.text.slice(0, 200).replace(/\s+/g, ' ');
  return `HTTP ${o.status}: ${text}`.slice(0, 500);
}

/**
 * Runs `fn` over `items` with at most `inFlightMax` calls pending at once; results keep the
 * order of `items`. `fn` must not reject (outcomes are values here).
 */
export async function mapBounded<T, R>(items: readonly T[], inFlightMax: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  const workers = Array.from({ length: Math.min(Math.max(1, inFlightMax), items.length) }, worker);
  await Promise.all(workers);
  return results;
}
