/**
 * `shoal tables` and `shoal describe TABLE`: what a cluster (or one leaf) holds, from
 * `GET /v1/tables` and `GET /v1/tables/:table`: each table's rows and bytes, and one table's
 * columns with their types and its time range. An aggregator's answer also says which leaves did
 * not answer (their tables are then missing or short), on stderr, and the exit code is 2.
 */
import type { Command } from 'commander';
import { ClientError, ServerClient } from './client.js';
import { formatBytes } from './cmd-status.js';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';
import { formatTable } from './format.js';

interface Failure { leaf: string; reason: string }

async function get(urls: string[], path: string, token: string | null): Promise<Record<string, unknown>> {
  try {
    return (await new ServerClient(urls).call(path, 'GET', undefined, { timeoutMs: 30_000, token })) as Record<string, unknown>;
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    if (e.status === 0) throw new CliError(`${e.message}: is shoal running there? start one with \`shoal up\`, or pass --url`);
    throw new CliError(e.message, EXIT.refused);
  }
}

/** Leaves that did not answer: said on stderr, and the answer counts as partial (exit 2). */
function reportMissing(command: string, body: Record<string, unknown>): void {
  const failures = (body.failures as Failure[] | undefined) ?? [];
  if (failures.length === 0) return;
  process.stderr.write(`shoal ${command}: partial answer: ${failures.length} lea${failures.length === 1 ? 'f' : 'ves'} did not answer, so what they hold is missing above\n`);
  for (const f of failures) process.stderr.write(`  missing ${f.leaf}: ${f.reason}\n`);
  process.exitCode = EXIT.refused;
}

const iso = (t: unknown) => (typeof t === 'number' && Number.isFinite(t) ? new Date(t * 1000).toISOString().replace('.000Z', 'Z') : '-');

export function registerTables(program: Command): void {
  const cmd = program.command('tables');
  urlOption(cmd, 'aggregator or leaf', { several: true });
  cmd
    .description('list the tables: rows, bytes in memory, columns')
    .option('--json', 'print the raw answer of GET /v1/tables')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Example:
  $ shoal tables
  name   |    rows | bytes    | columns
  -------+---------+----------+--------
  events | 1200000 | 61.2 MiB |       9`)
    .action(async (o: { url?: string; json?: boolean; token?: string }) => {
      const body = await get(resolveUrls(o), '/v1/tables', o.token ?? null);
      if (o.json) process.stdout.write(JSON.stringify(body, null, 2) + '\n');
      else {
        const tables = (body.tables as { name: string; rows: number; bytes: number; columns: number }[] | undefined) ?? [];
        if (tables.length === 0) process.stdout.write('no tables yet: a table is created by its first write (shoal ingest TABLE FILE)\n');
        else {
          process.stdout.write(formatTable({
            columns: [{ name: 'name', type: 'string' }, { name: 'rows', type: 'int' }, { name: 'bytes', type: 'string' }, { name: 'columns', type: 'int' }],
            rows: tables.map((t) => [t.name, t.rows, formatBytes(t.bytes), t.columns]),
          }) + '\n');
        }
      }
      reportMissing('tables', body);
    });
}

export function registerDescribe(program: Command): void {
  const cmd = program.command('describe');
  urlOption(cmd, 'aggregator or leaf', { several: true });
  cmd
    .description('show one table: its columns with their types, rows, bytes and time range')
    .argument('<table>', 'table name')
    .option('--json', 'print the raw answer of GET /v1/tables/TABLE')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Example:
  $ shoal describe events`)
    .action(async (table: string, o: { url?: string; json?: boolean; token?: string }) => {
      const body = await get(resolveUrls(o), `/v1/tables/${encodeURIComponent(table)}`, o.token ?? null);
      if (o.json) process.stdout.write(JSON.stringify(body, null, 2) + '\n');
      else {
        const columns = (body.columns as { name: string; type: string }[] | undefined) ?? [];
        const evicted = Number(body.evictedRows ?? 0);
        const lines = [
          `table ${String(body.name)}: ${String(body.rows)} rows, ${formatBytes(body.bytes as number)}, ${String(body.blocks)} block${body.blocks === 1 ? '' : 's'}` +
            (evicted > 0 ? `, ${evicted} rows evicted (retention or memory budget)` : ''),
          `time ${iso(body.timeMin)} .. ${iso(body.timeMax)}`,
          formatTable({ columns: [{ name: 'column', type: 'string' }, { name: 'type', type: 'string' }], rows: columns.map((c) => [c.name, c.type]) }),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }
      reportMissing('describe', body);
    });
}
