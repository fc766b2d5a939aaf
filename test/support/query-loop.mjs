// A separate query process for end-to-end tests: runs SQL against URL/v1/query until STOP_FILE
// exists and prints a JSON summary: queries, errors, lowest coverage seen.
// Usage: node query-loop.mjs URL STOP_FILE SQL
import { existsSync } from 'node:fs';
import { request } from 'undici';

const [url, stopFile, sql] = process.argv.slice(2);
const summary = { queries: 0, errors: 0, coverageMin: 100, respondedMin: Infinity, coverages: [], errorSamples: [] };
while (!existsSync(stopFile) && summary.queries < 100_000) {
  try {
    const res = await request(`${url}/v1/query`, { method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json' }, headersTimeout: 15_000, bodyTimeout: 15_000 });
    const body = await res.body.json();
    summary.queries++;
    if (res.statusCode !== 200) { summary.errors++; if (summary.errorSamples.length < 5) summary.errorSamples.push(JSON.stringify(body).slice(0, 300)); }
    else {
      summary.coverageMin = Math.min(summary.coverageMin, body.coverage.percent);
      summary.respondedMin = Math.min(summary.respondedMin, body.coverage.leavesResponded);
      if (summary.coverages.length < 2000) summary.coverages.push(body.coverage.percent);
    }
  } catch (e) {
    summary.queries++;
    summary.errors++;
    if (summary.errorSamples.length < 5) summary.errorSamples.push(String(e.message));
  }
  await new Promise((r) => setTimeout(r, 50));
}
process.stdout.write(JSON.stringify(summary) + '\n');
