/**
 * The loader's one dependency on the outside world: posting an NDJSON batch to
 * `POST {url}/v1/tables/:table/events` and reading a table's schema. Behind an interface so a
 * test can refuse, drop or reject batches deterministically (STYLE rule 16); the HTTP
 * implementation (undici, keep-alive, one connection per batch in flight) is the only one the
 * CLI uses. Transport failures are answers with status 0, never exceptions: whether to retry is
 * the sender's decision.
 */
import { Pool } from 'undici';

export interface TransportAnswer {
  /** HTTP status, or 0 for no answer: connection refused or reset, or timed out (then the batch
   * may or may not be stored) and `error` says which. */
  readonly status: number;
  /** The parsed JSON body (or its text when not JSON); null without an answer. */
  readonly body: unknown;
  readonly retryAfterMs: number | null;
  readonly error: string | null;
}

export interface Transport {
  postEvents(table: string, body: string, batchId: string): Promise<TransportAnswer>;
  getJson(path: string): Promise<TransportAnswer>;
  close(): Promise<void>;
}

export interface HttpTransportOptions {
  readonly url: string;
  readonly token: string | null;
  readonly connections: number;
  readonly requestTimeoutMs: number;
}

/** Retry-After is seconds (or an HTTP date); capped by the caller. */
function retryAfter(header: string | string[] | undefined): number | null {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined) return null;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(v);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
}

export function httpTransport(opts: HttpTransportOptions): Transport {
  const base = new URL(opts.url);
  const prefix = base.pathname.replace(/\/$/, '');
  const pool = new Pool(base.origin, {
    connections: opts.connections,
    headersTimeout: opts.requestTimeoutMs,
    bodyTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: 30_000,
  });
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};

  async function send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string): Promise<TransportAnswer> {
    try {
      const res = await pool.request({ method, path: prefix + path, headers: { ...auth, ...headers }, body });
      const text = await res.body.text();
      let parsed: unknown = text;
      try { parsed = text.length > 0 ? JSON.parse(text) : null; } catch { /* keep the text */ }
      return { status: res.statusCode, body: parsed, retryAfterMs: retryAfter(res.headers['retry-after']), error: null };
    } catch (e) {
      const err = e as Error & { code?: string };
      return { status: 0, body: null, error: `${err.code ?? err.name}: ${err.message}`, retryAfterMs: null };
    }
  }

  return {
    postEvents: (table, body, batchId) =>
      send('POST', `/v1/tables/${encodeURIComponent(table)}/events`, { 'content-type': 'application/x-ndjson', 'x-shoal-batch-id': batchId }, body),
    getJson: (path) => send('GET', path, {}),
    close: () => pool.close(),
  };
}
