/**
 * The loader's one dependency on the outside world: posting an NDJSON batch to
 * `POST {url}/v1/tables/:table/events` and reading a table's schema. Behind an interface so a
 * test can refuse, drop or reject batches deterministically (STYLE rule 16); the HTTP
 * implementation (undici, keep-alive, one connection per batch in flight) is the only one the
 * CLI uses, once per server, with failoverTransport over them when it is given several.
 * Transport failures are answers with status 0, never exceptions: whether to retry is the
 * sender's decision.
 *
 * Failover (several servers, `--url a,b`): a request goes to the server that answered last (the
 * first at the start) and, on a connection error, to the next, each at most once per request.
 * A batch goes on to the next server also when its answer was lost (reset after sending,
 * timeout): it carries its batch id, and the resend is marked so the next aggregator first asks
 * the leaves whether one already holds it (docs/cluster.md, "Several aggregators"). A GET goes
 * on after a reset but not after a timeout (the server is there, only slow). An HTTP answer, of
 * any status, is never failed over: it is the sender's to judge.
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
  /** An earlier try of this request, at another server, may have been received and its answer
   * lost (failoverTransport): a `duplicate` answer may be that try's doing. */
  readonly lostTries?: boolean;
}

export interface PostOptions {
  /** An earlier try of this batch id may have been stored (its answer was lost, or an earlier
   * run sent it): the request says so (RESEND_PARAMETER), and an aggregator that has not placed
   * the id itself asks its leaves before placing it again. */
  readonly resend?: boolean;
}

export interface Transport {
  postEvents(table: string, body: string, batchId: string, opts?: PostOptions): Promise<TransportAnswer>;
  getJson(path: string): Promise<TransportAnswer>;
  close(): Promise<void>;
}

/**
 * How a resend is marked on the wire: a parameter of the batch's Content-Type
 * (`application/x-ndjson; shoal-resend=1`). A parameter, not a header of its own, because the
 * Content-Type is what every aggregator already passes on, unchanged, to the member it picks:
 * the mark reaches the router of this aggregator and of each child aggregator beneath it,
 * whatever their version, and a leaf reads only the media type. The router's reader of it is
 * `resendMarked` in server/cluster/router.ts (test/client-failover.test.ts keeps them agreeing).
 */
export const RESEND_PARAMETER = 'shoal-resend=1';
export const NDJSON_RESEND_CONTENT_TYPE = `application/x-ndjson; ${RESEND_PARAMETER}`;

/**
 * What a status-0 answer says about the request, from the error code it starts with:
 * `not-sent` (the connection was never made: refused, the host not found or unreachable, a
 * connect timeout: the server cannot have seen it), `timeout` (sent, no answer in time), or
 * `dropped` (sent, the connection closed or reset before an answer; also any error not known to
 * be one of the others). Null for an HTTP answer.
 */
export type NoAnswer = 'not-sent' | 'timeout' | 'dropped';

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** The error code at the start of a transport error (`ECONNREFUSED: connect ...`). */
export function errorCodeOf(error: string | null): string {
  return (error ?? '').split(/[:\s]/, 1)[0]!;
}

export function noAnswerKind(answer: TransportAnswer): NoAnswer | null {
  if (answer.status !== 0) return null;
  const code = errorCodeOf(answer.error);
  if (NOT_SENT_CODES.has(code)) return 'not-sent';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  return 'dropped';
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
    postEvents: (table, body, batchId, post = {}) => send('POST', `/v1/tables/${encodeURIComponent(table)}/events`, {
      'content-type': post.resend === true ? NDJSON_RESEND_CONTENT_TYPE : 'application/x-ndjson', 'x-shoal-batch-id': batchId,
    }, body),
    getJson: (path) => send('GET', path, {}),
    close: () => pool.close(),
  };
}

/** One try of a failover request that got no answer: where, and why. */
export interface FailedTry { readonly url: string; readonly error: string }

/** A status-0 answer of failoverTransport: every server tried and why each failed. */
export interface FailoverAnswer extends TransportAnswer { readonly tries: readonly FailedTry[] }

/**
 * Several servers behind one Transport (see the header): `servers[i].url` names
 * `servers[i].transport` in errors. Which server answered last is shared by every request in
 * flight, so once one request has found the next server, the others start there too.
 */
export function failoverTransport(servers: readonly { readonly url: string; readonly transport: Transport }[]): Transport {
  if (servers.length === 0) throw new RangeError('failoverTransport needs at least one server');
  let current = 0;
  async function run(send: (t: Transport, resend: boolean) => Promise<TransportAnswer>, goOn: (kind: NoAnswer) => boolean, resendFirst: boolean): Promise<TransportAnswer> {
    const tries: FailedTry[] = [];
    const start = current;
    let resend = resendFirst;
    let lost = false;
    let last: TransportAnswer | null = null;
    for (let k = 0; k < servers.length; k++) {
      const i = (start + k) % servers.length;
      last = await send(servers[i]!.transport, resend);
      const kind = noAnswerKind(last);
      if (kind === null) { current = i; return lost ? { ...last, lostTries: true } : last; }
      if (kind !== 'not-sent') lost = true;
      tries.push({ url: servers[i]!.url, error: last.error ?? 'no answer' });
      // Move the shared position on, unless another request already has.
      if (current === i) current = (i + 1) % servers.length;
      if (!goOn(kind)) break;
      // The server may have received it (reset, timeout): the next one hears it is a resend.
      if (lost) resend = true;
    }
    const failed: FailoverAnswer = tries.length === 1 ? { ...last!, tries } : {
      status: 0, body: null, retryAfterMs: null, tries,
      error: `${errorCodeOf(last!.error)}: no answer from ${tries.length === servers.length ? `any of the ${servers.length} servers` : tries.map((t) => t.url).join(' or ')} (${tries.map((t) => `${t.url}: ${t.error}`).join('; ')})`,
    };
    return failed;
  }
  return {
    postEvents: (table, body, batchId, post = {}) => run((t, resend) => t.postEvents(table, body, batchId, { resend }), () => true, post.resend === true),
    getJson: (path) => run((t) => t.getJson(path), (kind) => kind !== 'timeout', false),
    close: async () => { await Promise.all(servers.map((s) => s.transport.close())); },
  };
}

/** The servers a load, tail or ingest sends to, in order: `url`, then `failoverUrls`. */
export function serversOf(o: { readonly url: string; readonly failoverUrls: readonly string[] }): string[] {
  return [o.url, ...o.failoverUrls];
}

/** One httpTransport per server; failover over them when there are several. */
export function httpTransports(urls: readonly string[], opts: Omit<HttpTransportOptions, 'url'>): Transport {
  if (urls.length === 1) return httpTransport({ ...opts, url: urls[0]! });
  return failoverTransport(urls.map((url) => ({ url, transport: httpTransport({ ...opts, url }) })));
}
