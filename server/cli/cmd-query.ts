/**
 * `shoal query "SQL"`: sends a query to a leaf or an aggregator and prints the answer with its
 * coverage. Exits non-zero when the query fails, including when coverage is below --min-coverage.
 */
import type { Command } from 'commander';
import { ClientError, ServerClient } from './client.js';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';
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
  const cmd = program.command('query');
  urlOption(cmd, 'leaf or aggregator', { several: true });
  cmd
    .description('run a SQL query against a shoal leaf or aggregator')
    .argument('<sql>', 'the query, e.g. "SELECT service, count(*) FROM events GROUP BY service"')
    .option('--format <format>', 'table, json or csv', 'table')
    .option('--min-coverage <percent>', 'fail (exit 2) unless at least this % of rows answered (0-100)')
    .option('--strict', 'fail (exit 2) unless every row answered: the same as --min-coverage 100')
    .option('--timeout <ms>', 'query timeout in milliseconds')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Examples:
  $ shoal query "SELECT time_bucket(INTERVAL '5 minutes', time) AS t, count(*) FROM events GROUP BY t ORDER BY t"
  $ shoal query --format csv --strict "SELECT service, p99(latency_ms) FROM events GROUP BY 1"
  $ shoal query --url 10.0.0.1:7000,10.0.0.2:7000 "SELECT count(*) FROM events"

Exit codes: 0 answered; 2 the server refused the query (its error on stderr; with --format json
also as {"error": ...} on stdout) or coverage was below --min-coverage / --strict; 1 it could
not be sent (e.g. the server is unreachable). A partial answer without those flags exits 0: the
table view shows its coverage, and csv/json print the coverage line on stderr.`)
    .action(async (sql: string, o: { url?: string; format: string; minCoverage?: string; strict?: boolean; timeout?: string; token?: string }) => {
      if (!['table', 'json', 'csv'].includes(o.format)) throw new CliError(`--format must be table, json or csv, not ${o.format}`);
      const client = new ServerClient(resolveUrls(o));
      const body: Record<string, unknown> = { sql };
      if (o.minCoverage !== undefined) {
        const p = Number(o.minCoverage);
        if (!(p >= 0 && p <= 100)) throw new CliError('--min-coverage must be a number from 0 to 100');
        if (o.strict && p !== 100) throw new CliError('--strict means --min-coverage 100; give one of them');
        body.minCoverage = p;
      }
      if (o.strict) body.minCoverage = 100;
      if (o.timeout !== undefined) body.timeoutMs = Number(o.timeout);
      let res: ResultLike & { coverage?: Coverage; stats?: { elapsedMs?: number; truncated?: boolean } };
      try {
        // A query changes nothing: after a reset it may be asked of the next server (client.ts).
        res = (await client.call('/v1/query', 'POST', { json: body }, { token: o.token ?? null, idempotent: true })) as typeof res;
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        if (e.status === 0) throw new CliError(`${e.message}: is shoal running there? start one with \`shoal up\`, or pass --url`);
        if (o.format === 'json') {
          const errBody = typeof e.body === 'object' && e.body !== null ? e.body : { error: { code: e.code, message: e.message } };
          process.stdout.write(JSON.stringify(errBody) + '\n');
        }
        const cov = (e.body as { error?: { coverage?: Coverage } } | null)?.error?.coverage;
        throw new CliError(cov ? `${e.message}\n${coverageLine(cov)}` : e.message, EXIT.refused);
      }
      // A script reading csv or json must still learn that the answer is partial.
      const partial = res.coverage !== undefined && res.coverage.percent < 100;
      const warnPartial = () => {
        if (partial) process.stderr.write(`shoal query: partial answer: ${coverageLine(res.coverage)}\n  (--strict or --min-coverage makes a partial answer fail with exit 2)\n`);
      };
      if (o.format === 'json') { process.stdout.write(JSON.stringify(res) + '\n'); warnPartial(); return; }
      if (o.format === 'csv') { process.stdout.write(formatCsv(res) + '\n'); warnPartial(); return; }
      process.stdout.write(formatTable(res) + '\n');
      const n = res.rows.length;
      process.stdout.write(`(${n} row${n === 1 ? '' : 's'}${res.stats?.truncated ? ', truncated' : ''}) ${coverageLine(res.coverage, res.stats?.elapsedMs)}\n`);
    });
}
