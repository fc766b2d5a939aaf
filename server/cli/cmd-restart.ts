/**
 * `shoal restart`: rolls every leaf of a cluster onto new code through the shared-memory handoff
 * (server/ops/rolling-restart.ts), printing each leaf's progress and a closing summary. Exits non-zero when
 * the roll stops early.
 */
import type { Command } from 'commander';
import { request } from 'undici';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';
import { formatTable } from './format.js';
import { rollingRestart, type LeafReport, type RollEvent } from '../ops/rolling-restart.js';

function progressLine(l: LeafReport): string {
  switch (l.phase) {
    case 'handing-off': return `${l.id}: handing off (${l.rowsBefore} rows)`;
    case 'restarting': return `${l.id}: handed off, waiting for the new process`;
    case 'restored': return `${l.id}: serving again from ${l.source} (restore ${l.restoreMs} ms, down ${l.downMs} ms, ${l.rowsAfter} rows)`;
    case 'healthy': return `${l.id}: healthy in the aggregator after ${l.totalMs} ms`;
    case 'failed': return `${l.id}: FAILED: ${l.reason}`;
    default: return `${l.id}: ${l.phase}`;
  }
}

/** The first of several aggregators that answers its status: a roll is driven through one
 * aggregator (any of them sees every leaf), the first reachable. */
async function firstAnswering(urls: readonly string[], token: string | null): Promise<string> {
  if (urls.length === 1) return urls[0]!;
  const tried: string[] = [];
  for (const url of urls) {
    try {
      const res = await request(`${url}/v1/status`, { headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: 5_000, bodyTimeout: 5_000 });
      await res.body.text();
      if (res.statusCode === 200) return url;
      tried.push(`${url}: HTTP ${res.statusCode}`);
    } catch (e) {
      tried.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new CliError(`no aggregator answered (${tried.join('; ')})`);
}

export function registerRestart(program: Command): void {
  const cmd = program.command('restart');
  urlOption(cmd, 'aggregator', { aggregatorAlias: true, several: true });
  cmd
    .description('roll every leaf of a cluster onto new code, K at a time, through shared memory')
    .option('--batch <k>', 'leaves restarted at once', '1')
    .option('--by-host', 'restart one host at a time: every leaf of a host together (leaves are grouped by the host of their URL)')
    .option('--leaf-timeout <ms>', 'time one leaf may take to serve and be healthy again', '120000')
    .option('--allow-disk', 'go on when a leaf comes back from disk instead of shared memory')
    .option('--probe-table <table>', 'table the coverage probe counts (default: the largest)')
    .option('--token <token>', 'bearer token for queries and status (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .option('--admin-token <token>', 'admin token for the handoff call (or SHOAL_ADMIN_TOKEN)', process.env.SHOAL_ADMIN_TOKEN)
    .addHelpText('after', `
Every leaf must run under a supervisor that starts it again when it exits (shoal up does; see
docs/operations.md for systemd and Kubernetes).

Example:
  $ shoal restart --batch 1
  $ shoal restart --by-host --url http://agg-1:7000,http://agg-2:7000`)
    .action(async (o: { url?: string; aggregator?: string; batch: string; byHost?: boolean; leafTimeout: string; allowDisk?: boolean; probeTable?: string; token?: string; adminToken?: string }) => {
      const batch = Number(o.batch);
      const leafTimeoutMs = Number(o.leafTimeout);
      if (!Number.isInteger(batch) || batch < 1) throw new CliError('--batch must be a positive integer');
      if (!(leafTimeoutMs >= 1000)) throw new CliError('--leaf-timeout must be at least 1000 ms');
      const aggregatorUrl = await firstAnswering(resolveUrls(o), o.token ?? null);
      const tty = process.stdout.isTTY === true;
      let lastProbe = '';
      const onEvent = (e: RollEvent) => {
        if (e.kind === 'leaf') {
          if (tty && lastProbe) process.stdout.write('\r\x1b[K');
          process.stdout.write(progressLine(e.leaf) + '\n');
        } else if (e.kind === 'note') {
          process.stdout.write(`note: ${e.message}\n`);
        } else if (tty) {
          lastProbe = e.coveragePercent === null ? `probe: ${e.error}` : `coverage now ${e.coveragePercent}%`;
          process.stdout.write('\r\x1b[K' + lastProbe);
        }
      };
      const s = await rollingRestart({
        aggregatorUrl, batch, byHost: o.byHost === true, leafTimeoutMs, allowDisk: o.allowDisk === true,
        token: o.token ?? null, adminToken: o.adminToken ?? null, probeTable: o.probeTable ?? null, probeIntervalMs: 250, onEvent,
      });
      if (tty) process.stdout.write('\r\x1b[K');
      process.stdout.write('\n' + formatTable({
        columns: ['leaf', 'result', 'source', 'restore ms', 'down ms', 'healthy after ms', 'rows before', 'rows after'].map((name) => ({ name, type: name.includes('ms') || name.includes('rows') ? 'int' : 'string' })),
        rows: s.leaves.map((l) => [l.id, l.phase === 'healthy' ? 'ok' : l.phase, l.source, l.restoreMs, l.downMs, l.totalMs, l.rowsBefore, l.rowsAfter]),
      }) + '\n\n');
      const done = s.leaves.filter((l) => l.phase === 'healthy').length;
      const fromShm = s.leaves.filter((l) => l.source === 'shm').length;
      process.stdout.write(`${s.ok ? 'rolled' : 'STOPPED after'} ${done} of ${s.leaves.length} leaves in ${(s.totalMs / 1000).toFixed(1)} s; ${fromShm} restored from shared memory\n`);
      process.stdout.write(`lowest coverage seen: ${s.probe.coverageMin === null ? 'n/a' : s.probe.coverageMin + '%'} (${s.probe.queries} probe queries on ${s.probe.table ?? '-'}, ${s.probe.failed} failed)\n`);
      process.stdout.write(`writes during the roll: ${s.writes.rowsAccepted} rows in ${s.writes.batchesAccepted} batches accepted, ${s.writes.retries} placements retried on another leaf, ${s.writes.failed} batches failed\n`);
      const lost = s.leaves.filter((l) => l.rowsAfter !== null && l.rowsAfter < l.rowsBefore).length;
      process.stdout.write(`writes lost: ${s.writes.failed + lost === 0 ? 0 : `${s.writes.failed} failed batches, ${lost} leaves came back with fewer rows`}\n`);
      if (!s.ok) {
        process.stderr.write(`shoal restart: stopped: ${s.error}\nThe other leaves were not touched and keep serving.\n`);
        process.exitCode = EXIT.failed;
      }
    });
}
