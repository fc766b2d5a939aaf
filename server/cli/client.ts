/**
 * A small HTTP client for the CLI and tools (undici): JSON in, JSON out, shoal errors turned
 * into readable messages that keep the error code.
 *
 * Several servers (`--url a,b`, docs/cli.md): ServerClient tries them in order, starting with
 * the one that answered last (the first at the start), and moves to the next only when a
 * request got no answer because of the connection: refused, the host not found or unreachable,
 * a connect timeout (the server cannot have seen the request), or, for a request that may be
 * sent twice (`idempotent`: a GET, a query), a connection reset or closed before any answer.
 * Never after an HTTP answer, whatever its status, and never after a timeout (the server is
 * there, only slow; a second try would double its work). Each server is tried at most once per
 * request. Batches are not sent here: the loader's transport (loader/transport.ts) has the same
 * rule and also resends a batch whose answer was lost, which its batch id makes safe.
 *
 * Not here: which servers (common.ts, resolveUrls).
 */
import { request } from 'undici';
import { noAnswerKind, type NoAnswer } from '../../loader/transport.js';

export class ClientError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly body: unknown) { super(message); }
}

export interface ClientOptions {
  token?: string | null;
  timeoutMs?: number;
  /** The request may reach the server twice without harm (default: GET yes, POST no): then a
   * connection reset before any answer also moves it on to the next server. */
  idempotent?: boolean;
}

export interface CallBody { json?: unknown; raw?: Buffer | string; contentType?: string }

/** No answer from one server: why, and whether the next one may be tried. */
class NoAnswerError extends Error {
  constructor(readonly kind: NoAnswer, message: string) { super(message); }
}

async function callOnce(url: string, method: 'GET' | 'POST', body: CallBody | undefined, opts: ClientOptions): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | Buffer | undefined;
  if (body?.json !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body.json); }
  else if (body?.raw !== undefined) { headers['content-type'] = body.contentType ?? 'application/x-ndjson'; payload = body.raw; }
  let res;
  try {
    res = await request(url, {
      method, headers, body: payload,
      headersTimeout: opts.timeoutMs ?? 120_000, bodyTimeout: opts.timeoutMs ?? 120_000,
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    const error = `${err.code ?? err.name}: ${err.message}`;
    throw new NoAnswerError(noAnswerKind({ status: 0, body: null, retryAfterMs: null, error }) ?? 'dropped', err.message);
  }
  let text: string;
  try {
    text = await res.body.text();
  } catch (e) {
    // The answer began (a status line came back): the server has the request; not failed over.
    throw new ClientError(0, 'SHOAL_ERR_CONNECT', `${new URL(url).origin} answered HTTP ${res.statusCode} but the connection broke while reading it: ${(e as Error).message}`, null);
  }
  let parsed: unknown = text;
  try { parsed = text.length ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  if (res.statusCode >= 400) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ClientError(res.statusCode, err?.code ?? `HTTP_${res.statusCode}`, `${err?.code ?? 'HTTP ' + res.statusCode}: ${err?.message ?? text.slice(0, 300)}`, parsed);
  }
  return parsed;
}

/** The servers of one command, with failover between them (see the header). */
export class ServerClient {
  private current = 0;

  constructor(readonly urls: readonly string[]) {
    if (urls.length === 0) throw new RangeError('ServerClient needs at least one URL');
  }

  /** The server that answered last (the first until one did not answer). */
  get url(): string { return this.urls[this.current]!; }

  /** `path` (`/v1/query`) on the current server, failing over as the header says. Throws a
   * ClientError: status 0 and SHOAL_ERR_CONNECT when no server answered, naming each. */
  async call(path: string, method: 'GET' | 'POST', body?: CallBody, opts: ClientOptions = {}): Promise<unknown> {
    const idempotent = opts.idempotent ?? method === 'GET';
    const tries: { url: string; why: string }[] = [];
    const start = this.current;
    for (let k = 0; k < this.urls.length; k++) {
      const i = (start + k) % this.urls.length;
      const url = this.urls[i]!;
      try {
        const answer = await callOnce(`${url}${path}`, method, body, opts);
        this.current = i;
        return answer;
      } catch (e) {
        if (!(e instanceof NoAnswerError)) throw e;
        tries.push({ url, why: e.message });
        const goOn = e.kind === 'not-sent' || (e.kind === 'dropped' && idempotent);
        if (!goOn || k === this.urls.length - 1) break;
        this.current = (i + 1) % this.urls.length;
      }
    }
    if (tries.length === 1) throw new ClientError(0, 'SHOAL_ERR_CONNECT', `cannot reach ${new URL(tries[0]!.url).origin}: ${tries[0]!.why}`, null);
    const each = tries.map((t) => `${new URL(t.url).origin}: ${t.why}`).join('; ');
    const which = tries.length === this.urls.length ? `any of ${this.urls.length} servers` : tries.map((t) => new URL(t.url).origin).join(' or ');
    throw new ClientError(0, 'SHOAL_ERR_CONNECT', `cannot reach ${which} (${each})`, null);
  }
}

/** One request to one server (no failover): `call(url, ...)` as before ServerClient. */
export async function call(url: string, method: 'GET' | 'POST', body?: CallBody, opts: ClientOptions = {}): Promise<unknown> {
  const u = new URL(url);
  return new ServerClient([u.origin]).call(`${u.pathname}${u.search}`, method, body, opts);
}
