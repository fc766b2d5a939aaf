/**
 * A small HTTP client for the CLI and tools (undici): JSON in, JSON out, shoal errors turned
 * into readable messages that keep the error code.
 */
import { request } from 'undici';

export class ClientError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly body: unknown) { super(message); }
}

export interface ClientOptions { token?: string | null; timeoutMs?: number }

export async function call(url: string, method: 'GET' | 'POST', body?: { json?: unknown; raw?: Buffer | string; contentType?: string },
  opts: ClientOptions = {}): Promise<unknown> {
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
    throw new ClientError(0, 'SHOAL_ERR_CONNECT', `cannot reach ${new URL(url).origin}: ${(e as Error).message}`, null);
  }
  const text = await res.body.text();
  let parsed: unknown = text;
  try { parsed = text.length ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  if (res.statusCode >= 400) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ClientError(res.statusCode, err?.code ?? `HTTP_${res.statusCode}`, `${err?.code ?? 'HTTP ' + res.statusCode}: ${err?.message ?? text.slice(0, 300)}`, parsed);
  }
  return parsed;
}
