/**
 * The first request of a load, a tail or an ingest: `GET /v1/tables/:table`, before any input is
 * read. It seeds the column types from the table's schema when the table exists, and it is where
 * "nothing is there" fails fast: a connection refused (or a host name that does not resolve) on
 * this first contact stops at once with a message saying what to do, instead of retrying for a
 * minute (load) or hours (tail) in silence. Any other outcome (an answer of any status, a reset,
 * a timeout) goes on: a server that answers, or is in the middle of a restart, gets the retries
 * of sender.ts, so a rolling restart never fails a load. With several servers (`--url a,b`) it
 * stops only when nothing is there at any of them, and says so for each.
 *
 * Not here: the retries themselves (sender.ts).
 */
import { ShoalError } from '../query/errors.js';
import type { ColumnTypes } from './row-check.js';
import type { FailoverAnswer, Transport, TransportAnswer } from './transport.js';

type NothingThere = 'connection refused' | 'host not found';

function nothingThereOne(error: string | null): NothingThere | null {
  if (error === null) return null;
  if (error.startsWith('ECONNREFUSED')) return 'connection refused';
  if (error.startsWith('ENOTFOUND')) return 'host not found';
  return null;
}

/** Why a no-answer means nothing serves at the URL (at any of them, for several), or null when
 * it may be a passing failure. */
export function nothingThere(answer: TransportAnswer): NothingThere | null {
  if (answer.status !== 0 || answer.error === null) return null;
  const tries = (answer as Partial<FailoverAnswer>).tries;
  if (tries === undefined || tries.length <= 1) return nothingThereOne(tries?.[0]?.error ?? answer.error);
  const whys = tries.map((t) => nothingThereOne(t.error));
  if (whys.some((w) => w === null)) return null;
  return whys.includes('connection refused') ? 'connection refused' : 'host not found';
}

/** Contacts the server (see the header); `types`, when given, is seeded from the table's schema. */
export async function contact(transport: Transport, url: string, table: string, types: ColumnTypes | null): Promise<void> {
  const answer = await transport.getJson(`/v1/tables/${encodeURIComponent(table)}`);
  const why = nothingThere(answer);
  const tries = (answer as Partial<FailoverAnswer>).tries;
  if (why !== null && tries !== undefined && tries.length > 1) {
    const each = tries.map((t) => `${t.url}: ${nothingThereOne(t.error) === 'host not found' ? `host ${new URL(t.url).hostname} not found` : 'connection refused'}`);
    throw new ShoalError('SHOAL_ERR_LOAD_SEND', `cannot reach any of ${tries.map((t) => t.url).join(', ')} (${each.join('; ')}): is shoal running? start one with \`shoal up\`, or check --url`);
  }
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
