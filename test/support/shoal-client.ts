/**
 * A minimal HTTP client for a running shoal server (leaf or aggregator), as tests use it: ingest
 * events in batches and run SQL. It reports what the server said (status and parsed body) and
 * leaves judging it to the caller; only transport failures and non-JSON bodies throw.
 *
 * Not here: starting servers (processes.ts), comparing results (compare.ts).
 */
import type { ResultSet } from './duckdb.js';

export const INGEST_BATCH_ROWS = 10_000;
const REQUEST_TIMEOUT_MS = 60_000;

export interface QueryAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface ShoalError { readonly code: string; readonly message: string; readonly position?: number }

async function postJson(url: string, body: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<QueryAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : null;
  } catch {
    throw new Error(`POST ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 500)}`);
  }
  return { status: response.status, body: parsed };
}

/** Ingests `events` into `table` in batches; throws unless every batch is fully accepted. */
export async function ingestEvents(baseUrl: string, table: string, events: readonly unknown[], batchRows = INGEST_BATCH_ROWS): Promise<void> {
  const url = `${baseUrl}/v1/tables/${encodeURIComponent(table)}/events`;
  for (let start = 0; start < events.length; start += batchRows) {
    const batch = events.slice(start, start + batchRows);
    const answer = await postJson(url, batch);
    const accepted = (answer.body as { accepted?: unknown } | null)?.accepted;
    if (answer.status !== 200 || accepted !== batch.length) {
      throw new Error(`ingest of rows ${start}..${start + batch.length - 1} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 1000)}`);
    }
  }
}

export function queryShoal(baseUrl: string, sql: string): Promise<QueryAnswer> {
  return postJson(`${baseUrl}/v1/query`, { sql });
}

/** The error of a failed answer, or null when the body has none. */
export function answerError(answer: QueryAnswer): ShoalError | null {
  const error = (answer.body as { error?: unknown } | null)?.error;
  if (typeof error !== 'object' || error === null) return null;
  return error as ShoalError;
}

/** The result of a successful answer, or an explanation of why it is not one. */
export function answerResult(answer: QueryAnswer): { result: ResultSet } | { problem: string } {
  const body = answer.body as { columns?: unknown; rows?: unknown } | null;
  if (answer.status !== 200) return { problem: `HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 1000)}` };
  if (!body || !Array.isArray(body.columns) || !Array.isArray(body.rows)) {
    return { problem: `answer has no columns/rows arrays: ${JSON.stringify(answer.body).slice(0, 1000)}` };
  }
  const columns = (body.columns as unknown[]).map((column) => {
    const c = column as { name?: unknown; type?: unknown };
    return { name: String(c?.name), type: typeof c?.type === 'string' ? c.type : '' };
  });
  return { result: { columns, rows: body.rows as unknown[][] } };
}
