/**
 * `shoal status`: what a cluster (or a single leaf) holds and how healthy it is, from
 * `GET /v1/status`: one line per member of an aggregator (state, rows, bytes, free memory, how
 * its data came back on its last start), or the one leaf's figures. Exits 1 when the server
 * cannot be reached, 3 when some member is not healthy (for scripts), else 0.
 */
import type { Command } from 'commander';
import { ClientError, ServerClient } from './client.js';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';
import { formatTable } from './format.js';

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return 'never';
  return ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`;
}

interface MemberStatus {
  id: string; url: string; role: string | null; state: string; memberState: string | null; lastError: string | null;
  lastSeenMsAgo: number | null; rows: number | null; bytes: number | null; memoryFreeBytes: number | null;
  leafCount: number; pid?: number | null; restart: { source: string; ms: number } | null; diskWritable?: boolean | null;
}

/** `tables: events (1200 rows, 61.2 KiB), logs (...)`, at most 20 named, on a line of its own. */
function tablesLine(s: Record<string, unknown>): string {
  const tables = Object.entries((s.tables as Record<string, { rows?: number; bytes?: number }> | undefined) ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (tables.length === 0) return '\ntables: none yet (a table is created by its first write)';
  const shown = tables.slice(0, 20).map(([name, t]) => `${name} (${t.rows ?? 0} rows, ${formatBytes(t.bytes ?? 0)})`);
  const more = tables.length > 20 ? `, and ${tables.length - 20} more (shoal tables)` : '';
  return `\ntables: ${shown.join(', ')}${more}`;
}

export function formatStatus(s: Record<string, unknown>, url: string): { text: string; allHealthy: boolean } {
  if (s.role === 'aggregator') {
    const members = (s.leaves as MemberStatus[]) ?? [];
    const healthy = members.filter((m) => m.state === 'healthy').length;
    // `--id` defaults to "aggregator": no "aggregator aggregator".
    const name = s.id === undefined || s.id === 'aggregator' ? 'aggregator' : `aggregator ${String(s.id)}`;
    const head = `${name} at ${url}: ${healthy}/${members.length} members healthy, ${String(s.leafCount)} lea${s.leafCount === 1 ? 'f' : 'ves'}, ` +
      `${String(s.rows)} rows, ${formatBytes(s.bytes as number)}, ${formatBytes(s.memoryFreeBytes as number)} free`;
    const str = (name: string) => ({ name, type: 'string' });
    const columns = [str('leaf'), str('role'), str('state'), { name: 'pid', type: 'int' }, { name: 'rows', type: 'int' }, str('bytes'), str('memory free'), str('restart'), str('last seen'), str('error')];
    const rows = members.map((m) => [
      m.id, m.role ?? '?', m.state === 'healthy' && m.memberState !== null && m.memberState !== 'serving' ? m.memberState : m.state,
      m.pid ?? null, m.rows, formatBytes(m.bytes), formatBytes(m.memoryFreeBytes),
      m.restart ? `${m.restart.source} ${m.restart.ms} ms` : '-', ago(m.lastSeenMsAgo), m.lastError ?? (m.diskWritable === false ? 'disk log refuses writes (see its status)' : ''),
    ]);
    return { text: `${head}\n${formatTable({ columns, rows })}${tablesLine(s)}`, allHealthy: healthy === members.length };
  }
  const r = s.restart as { source?: string; ms?: number } | undefined;
  const lines = [
    `leaf ${String(s.leafId)} at ${url}: ${String(s.state)}`,
    `  rows ${String(s.rows)}, ${formatBytes(s.bytes as number)} of ${formatBytes(s.memoryBudgetBytes as number)} budget, ${formatBytes(s.memoryFreeBytes as number)} free`,
    `  tables ${Object.keys((s.tables as object) ?? {}).length}, restart ${r?.source ?? '?'} in ${r?.ms ?? '?'} ms, up ${String(s.uptimeSeconds)} s, pid ${String(s.pid)}`,
  ];
  const listed = tablesLine(s);
  if (listed !== '') lines.push(`  ${listed.trim()}`);
  const disk = s.disk as { log?: boolean; writable?: boolean; failure?: { kind: string; code: string; message: string } | null; losses?: { where: string; rows: number | null }[] } | undefined;
  if (disk?.log === true && disk.writable === false && disk.failure) lines.push(`  DISK LOG REFUSES WRITES: ${disk.failure.kind} failed (${disk.failure.code}: ${disk.failure.message})`);
  for (const l of disk?.losses ?? []) lines.push(`  DATA LOST at ${l.where}: ${l.rows ?? 'unknown'} rows (see GET /v1/status disk.losses)`);
  return { text: lines.join('\n'), allHealthy: s.state === 'serving' };
}

export function registerStatus(program: Command): void {
  const cmd = program.command('status');
  urlOption(cmd, 'aggregator or leaf', { several: true });
  cmd
    .description('show the cluster (aggregator) or a leaf: members, health, rows, memory, tables')
    .option('--json', 'print the raw status JSON')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .addHelpText('after', `
Examples:
  $ shoal status
  $ shoal status --url http://127.0.0.1:7001
  $ shoal status --url 10.0.0.1:7000,10.0.0.2:7000     (the first that answers)`)
    .action(async (o: { url?: string; json?: boolean; token?: string }) => {
      const client = new ServerClient(resolveUrls(o));
      let s: Record<string, unknown>;
      try {
        s = (await client.call('/v1/status', 'GET', undefined, { timeoutMs: 10_000, token: o.token ?? null })) as Record<string, unknown>;
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        throw new CliError(e.status === 0 ? `${e.message}: is shoal running there? start one with \`shoal up\`, or pass --url` : e.message);
      }
      if (o.json) { process.stdout.write(JSON.stringify(s, null, 2) + '\n'); return; }
      // The server that answered: with several (--url a,b), not necessarily the first.
      const { text, allHealthy } = formatStatus(s, client.url);
      process.stdout.write(text + '\n');
      if (!allHealthy) process.exitCode = EXIT.unhealthy;
    });
}
