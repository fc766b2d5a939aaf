/**
 * The first request of a load, a tail or an ingest: `GET /v1/tables/:table`, before any input is
 * read. It seeds the column types from the table's schema when the table exists, and it is where
 * "nothing is there" fails fast: a connection refused (or a host name that does not resolve) on
 * this first contact stops at once with a message saying what to do, instead of retrying for a
 * minute (load) or hours (tail) in silence. Any other outcome (an answer of any status, a reset,
 * a timeout) goes on: a server that answers, or is in the middle of a restart, gets the retries
 * of sender.ts, so a rolling restart never fails a load.
 *
 * Not here: the retries themselves (sender.ts).
 */
import { ShoalError } from '../query/errors.js';
import type { ColumnTypes } from './row-check.js';
import type { Transport, TransportAnswer } from './transport.js';

/** Why a no-answer means nothing serves at the URL, or null when it may be a passing failure. */
export function nothingThere(answer: TransportAnswer): 'connection refused' | 'host not found' | null {
  if (answer.status !== 0 || answer.error === null) return null;
  if (answer.error.startsWith('ECONNREFUSED')) return 'connection refused';
  if (answer.error.startsWith('ENOTFOUND')) return 'host not found';
  return null;
}

/** Contacts the server (see the header); `types`, when given, is seeded from the table's schema. */
export async function contact(transport: Transport, url: string, table: string, types: ColumnTypes | null): Promise<void> {
  const answer = await transport.getJson(`/v1/tables/${encodeURIComponent(table)}`);
  const why = nothingThere(answer);
  if (why === 'connection refused') {
    throw new ShoalError('SHOAL_ERR_LOAD_SEND', `cannot reach ${url} (connection refused): is shoal running? start one with \`shoal up\`, or pass --url`);
  }
  if (why === 'host not found') {
    throw new ShoalError('SHOAL_ERR_LOAD_SEND', `cannot reach ${url} (host ${new URL(url).hostname} not found): check --url`);
  }
  if (types === null || answer.status !== 200) return;
  const columns = (answer.body as { columns?: { name?: unknown; type?: unknown }[] } | null)?.columns;
  if (!Array.isArray(columns)) return;
  for (const c of columns) {
    // "int|string" (leaves that disagree) seeds nothing: the leaves will judge.
    if (typeof c?.name === 'string' && typeof c.type === 'string') types.seed(c.name, c.type);
  }
}

/** contact(), closing the transport on failure when this run opened it (`owned`). */
export async function contactFirst(transport: Transport, owned: boolean, url: string, table: string, types: ColumnTypes | null): Promise<void> {
  try {
    await contact(transport, url, table, types);
  } catch (e) {
    if (owned) await transport.close();
    throw e;
  }
}
