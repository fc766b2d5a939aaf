/**
 * `shoal query "SQL"`: sends a query to a leaf or an aggregator and prints the answer with its
 * coverage. Exits non-zero when the query fails, including when coverage is below --min-coverage.
 */
import type { Command } from 'commander';
import { call, ClientError } from './client.js';
import { formatCsv, formatTable, type ResultLike } from './format.js';

interface Coverage {
  percent: number; basis?: 'rows' | 'leaves'; leavesQueried: number; leavesResponded: number; rowsScanned: number; rowsExpected: number;
  failures: { leaf: string; reason: string }[]; failuresOmitted?: number; notes?: { leaf: string; reason: string }[];
}

export function coverageLine(c: Coverage | undefined, elapsedMs?: number): string {
  if (!c) return '';
  // Rounded down, never up: 99.996% of the rows is not "100%".
  const pct = String(Math.floor(c.percent * 100) / 100);
  const basis = c.basis === 'leaves' ? ', by leaf count: a missing leaf\'s rows are unknown' : '';
  let s = `coverage ${pct}% (${c.leavesResponded}/${c.leavesQueried} leaves, ${c.rowsExpected} rows${basis})`;
  if (elapsedMs !== undefined) s += `, ${elapsedMs} ms`;
  for (const f of c.failures ?? []) s += `\n  missing ${f.leaf}: ${f.reason}`;
  if (c.failuresOmitted) s += `\n  and ${c.failuresOmitted} more`;
  for (const n of c.notes ?? []) s += `\n  missing on ${n.leaf}: ${n.reason}`;
  return s;
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('run a SQL query against a shoal leaf or aggregator')
    .argument('<sql>', 'the query, e.g. "SELECT service, count(*) FROM events GROUP BY service"')
    .option('--url <url>', 'leaf or aggregator URL', process.env.SHOAL_URL ?? 'http://127.0.0.1:7000')
    .option('--format <format>', 'table, json or csv', 'table')
    .option('--min-coverage <percent>', 'fail unless at least this % of rows answered (0-100)')
    .option('--timeout <ms>', 'query timeout in milliseconds')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Examples:
  $ shoal query "SELECT time_bucket(INTERVAL '5 minutes', time) AS t, count(*) FROM events GROUP BY t ORDER BY t"
  $ shoal query --format csv --min-coverage 99 "SELECT service, p99(latency_ms) FROM events GROUP BY 1"`)
    .action(async (sql: string, o: { url: string; format: string; minCoverage?: string; timeout?: string; token?: string }) => {
      if (!['table', 'json', 'csv'].includes(o.format)) throw new Error(`--format must be table, json or csv, not ${o.format}`);
      const body: Record<string, unknown> = { sql };
      if (o.minCoverage !== undefined) {
        const p = Number(o.minCoverage);
        if (!(p >= 0 && p <= 100)) throw new Error('--min-coverage must be a number from 0 to 100');
        body.minCoverage = p;
      }
      if (o.timeout !== undefined) body.timeoutMs = Number(o.timeout);
      let res: ResultLike & { coverage?: Coverage; stats?: { elapsedMs?: number; truncated?: boolean } };
      try {
        res = (await call(`${o.url.replace(/\/$/, '')}/v1/query`, 'POST', { json: body }, { token: o.token ?? null })) as typeof res;
      } catch (e) {
        if (e instanceof ClientError) {
          process.stderr.write(`error: ${e.message}\n`);
          const cov = (e.body as { error?: { coverage?: Coverage } } | null)?.error?.coverage;
          if (cov) process.stderr.write(coverageLine(cov) + '\n');
          process.exitCode = 2;
          return;
        }
        throw e;
      }
      if (o.format === 'json') { process.stdout.write(JSON.stringify(res) + '\n'); return; }
      if (o.format === 'csv') { process.stdout.write(formatCsv(res) + '\n'); return; }
      process.stdout.write(formatTable(res) + '\n');
      const n = res.rows.length;
      process.stdout.write(`(${n} row${n === 1 ? '' : 's'}${res.stats?.truncated ? ', truncated' : ''}) ${coverageLine(res.coverage, res.stats?.elapsedMs)}\n`);
    });
}
