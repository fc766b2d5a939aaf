// A separate load-generator process for end-to-end tests (plain JS so it runs without a build):
// posts numbered batches to URL/v1/tables/TABLE/events until STOP_FILE exists, retrying a
// refused or failed batch with the same batch id (as a careful client does), and prints a JSON
// summary of what was acknowledged. Usage: node ingest-loop.mjs URL TABLE STOP_FILE PREFIX ROWS_PER_BATCH
import { existsSync } from 'node:fs';
import { request } from 'undici';

const [url, table, stopFile, prefix, rowsArg] = process.argv.slice(2);
const rowsPerBatch = Number(rowsArg ?? 200);
const summary = { batches: 0, rows: 0, sumV: 0, retries: 0, failures: 0, errors: [] };
const RETRIES_MAX = 50;

for (let seq = 0; !existsSync(stopFile) && seq < 100_000; seq++) {
  const rows = Array.from({ length: rowsPerBatch }, (_, i) => ({ src: prefix, seq, v: seq * rowsPerBatch + i, g: `g${(seq + i) % 7}` }));
  const body = JSON.stringify(rows);
  let done = false;
  for (let attempt = 0; attempt < RETRIES_MAX && !done; attempt++) {
    try {
      const res = await request(`${url}/v1/tables/${table}/events`, {
        method: 'POST', body, headers: { 'content-type': 'application/json', 'x-shoal-batch-id': `${prefix}-${seq}` },
        headersTimeout: 10_000, bodyTimeout: 10_000,
      });
      const text = await res.body.text();
      if (res.statusCode === 200) {
        done = true;
        summary.batches++;
        summary.rows += rowsPerBatch;
        for (const r of rows) summary.sumV += r.v;
      } else if (res.statusCode === 503 || res.statusCode >= 502) {
        summary.retries++;
        await new Promise((r) => setTimeout(r, 50));
      } else {
        summary.failures++;
        if (summary.errors.length < 5) summary.errors.push(`${res.statusCode} ${text.slice(0, 200)}`);
        break;
      }
    } catch (e) {
      summary.retries++;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!done) { summary.failures++; if (summary.errors.length < 5) summary.errors.push(`batch ${seq} not accepted`); }
}
process.stdout.write(JSON.stringify(summary) + '\n');
