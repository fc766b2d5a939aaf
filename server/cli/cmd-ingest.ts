/**
 * `shoal ingest TABLE [FILE|-]`: streams NDJSON (one event per line) from a file or stdin to a
 * leaf or aggregator in batches, each with a batch id so a retry after a lost answer is not
 * stored twice. Memory stays flat: at most one batch is held at a time.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Command } from 'commander';
import { call, ClientError } from './client.js';

const RETRIES_MAX = 8;

export async function sendBatch(url: string, table: string, lines: string[], batchId: string, token: string | null): Promise<number> {
  let delayMs = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = (await callWithId(`${url}/v1/tables/${encodeURIComponent(table)}/events`, lines.join('\n'), batchId, token)) as { accepted: number };
      return res.accepted;
    } catch (e) {
      const retryable = e instanceof ClientError && (e.status === 503 || e.status === 0 || e.status >= 502);
      if (!retryable || attempt >= RETRIES_MAX) throw e;
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 5_000);
    }
  }
}

async function callWithId(url: string, body: string, batchId: string, token: string | null): Promise<unknown> {
  const { request } = await import('undici');
  const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'x-shoal-batch-id': batchId };
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try { res = await request(url, { method: 'POST', headers, body }); } catch (e) {
    throw new ClientError(0, 'SHOAL_ERR_CONNECT', `cannot reach ${new URL(url).origin}: ${(e as Error).message}`, null);
  }
  const text = await res.body.text();
  const parsed = text ? JSON.parse(text) : null;
  if (res.statusCode >= 400) {
    const err = parsed?.error;
    throw new ClientError(res.statusCode, err?.code ?? 'HTTP', `${err?.code ?? res.statusCode}: ${err?.message ?? text}`, parsed);
  }
  return parsed;
}

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('send NDJSON events from a file or stdin into a table')
    .argument('<table>', 'table name (created by its first write)')
    .argument('[file]', 'NDJSON file, or - for stdin', '-')
    .option('--url <url>', 'leaf or aggregator URL', process.env.SHOAL_URL ?? 'http://127.0.0.1:7000')
    .option('--batch-rows <n>', 'events per batch', '5000')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Examples:
  $ shoal ingest events events.ndjson
  $ echo '{"service":"api","latency_ms":12.5}' | shoal ingest events -`)
    .action(async (table: string, file: string, o: { url: string; batchRows: string; token?: string }) => {
      const batchRows = Number(o.batchRows);
      if (!(Number.isInteger(batchRows) && batchRows >= 1 && batchRows <= 100_000)) throw new Error('--batch-rows must be 1..100000');
      const input = file === '-' ? process.stdin : fs.createReadStream(file);
      const rl = readline.createInterface({ input, crlfDelay: Infinity });
      const url = o.url.replace(/\/$/, '');
      const runId = randomUUID();
      let batch: string[] = [];
      let seq = 0;
      let accepted = 0;
      let firstLine = 1;
      let lineNo = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        try {
          accepted += await sendBatch(url, table, batch, `${runId}-${seq++}`, o.token ?? null);
        } catch (e) {
          const err = e as ClientError;
          const line = (err.body as { error?: { line?: number } } | null)?.error?.line;
          const where = line !== undefined ? ` (input line ${firstLine + line - 1})` : ` (batch of input lines ${firstLine}-${lineNo})`;
          throw new Error(`${err.message}${where}; ${accepted} events were accepted before it`);
        }
        batch = [];
        firstLine = lineNo + 1;
      };
      for await (const line of rl) {
        lineNo++;
        batch.push(line);
        if (batch.length >= batchRows) await flush();
      }
      await flush();
      process.stdout.write(`accepted ${accepted} events into ${table}\n`);
    });
}
