/**
 * `shoal aggregator --cluster FILE`: runs an aggregator over the leaves (or aggregators) the
 * cluster file lists. Health checks start at once; SIGHUP re-reads the cluster file; SIGINT and
 * SIGTERM stop it.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { setLogFormat } from '../http/http-common.js';
import { CliError, EXIT } from './common.js';
import { isShoalError } from '../../query/errors.js';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig, validateAggregatorConfig, type AggregatorConfig } from '../cluster/aggregator.js';
import { loadClusterFile, type MemberSpec } from '../cluster/membership.js';
import { parseDnsTarget, type DnsTarget } from '../cluster/discovery.js';

export function registerAggregator(program: Command): void {
  const d = defaultAggregatorConfig();
  program
    .command('aggregator')
    .description('run an aggregator: fans queries out to leaves, routes ingest, reports coverage')
    .option('--cluster <file>', 'cluster file: {"leaves": [{"id": "leaf-1", "url": "http://127.0.0.1:7001"}, ...]}')
    .option('--leaves-dns <name:port>', 'members: every address the name resolves to (re-resolved; e.g. a Kubernetes headless Service)')
    .option('--dns-interval <ms>', 'resolve the --leaves-dns name again this often', String(d.dnsIntervalMs))
    .option('--dns-grace <ms>', 'keep a member whose address the name stopped listing this long', String(d.dnsGraceMs))
    .option('--host <host>', 'address to listen on', d.host)
    .option('--port <port>', 'TCP port (0 = any free port)', String(d.port))
    .option('--id <id>', 'name of this aggregator (in status, and in a parent aggregator\'s failures)', d.id)
    .option('--leaf-timeout <ms>', 'wait this long for a leaf\'s answer to a query', String(d.leafTimeoutMs))
    .option('--top-n-groups <n>', 'groups each leaf sends for ORDER BY count(...) DESC LIMIT k: at least n (8 x k if more); 0 sends every group', String(d.topNGroups))
    .option('--ingest-timeout <ms>', 'wait this long for a leaf to acknowledge a batch', String(d.ingestTimeoutMs))
    .option('--token <token>', 'bearer token for ingest and query (or SHOAL_TOKEN); also sent to the leaves', process.env.SHOAL_TOKEN)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', d.logLevel)
    .option('--log-format <format>', 'auto (text on a terminal, else JSON lines), json or text', 'auto')
    .addHelpText('after', `
Example:
  $ cat cluster.json
  {"leaves": [{"id": "leaf-1", "url": "http://127.0.0.1:7001"}, {"id": "leaf-2", "url": "http://127.0.0.1:7002"}]}
  $ shoal aggregator --cluster cluster.json --port 7000
  $ shoal aggregator --leaves-dns shoal-leaf.shoal.svc.cluster.local:7001 --host 0.0.0.0
  $ shoal aggregator --port 7000          # members join it: shoal leaf --join http://agg:7000

Members can come from all three at once (docs/cluster.md, "Membership").`)
    .action(async (o: Record<string, string | undefined>) => {
      const clusterFile = o.cluster === undefined ? null : path.resolve(String(o.cluster));
      let leavesDns: DnsTarget | null = null;
      if (o.leavesDns !== undefined) {
        const t = parseDnsTarget(String(o.leavesDns));
        if ('error' in t) throw new CliError(`--leaves-dns ${t.error}`);
        leavesDns = t;
      }
      let config: AggregatorConfig;
      let members: MemberSpec[] = [];
      try {
        config = validateAggregatorConfig({
          ...d,
          host: String(o.host), port: Number(o.port), id: String(o.id), clusterFile,
          leafTimeoutMs: Number(o.leafTimeout), ingestTimeoutMs: Number(o.ingestTimeout), topNGroups: Number(o.topNGroups),
          token: o.token ?? null, memberToken: o.token ?? null, logLevel: String(o.logLevel),
          leavesDns, dnsIntervalMs: Number(o.dnsInterval), dnsGraceMs: Number(o.dnsGrace),
        });
        if (clusterFile !== null) members = loadClusterFile(clusterFile);
      } catch (e) {
        if (isShoalError(e)) throw new Error(`${e.code}: ${e.message}`);
        throw e;
      }
      setLogFormat(String(o.logFormat) as 'auto');
      let log: (level: 'info' | 'warn', message: string) => void = (level, message) => process.stderr.write(`${level}: ${message}\n`);
      const agg = new Aggregator(config, members, { log: (level, message) => log(level, message) });
      const app = buildAggregatorApp(agg);
      try {
        await app.listen({ host: config.host, port: config.port });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        throw new CliError(`port ${config.port} on ${config.host} is in use by another process; stop it or pick another --port`, EXIT.unhealthy);
      }
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : config.port;
      log = (level, message) => app.log[level](message);
      agg.start();
      const sources = [clusterFile !== null ? `${members.length} members from ${clusterFile}` : null, leavesDns !== null ? `members from DNS ${leavesDns.name}:${leavesDns.port}` : null, 'joins (shoal leaf --join)'].filter((x) => x !== null);
      app.log.info({ members: members.map((m) => m.id), clusterFile, leavesDns }, `aggregator ${config.id}: ${sources.join(', ')}`);
      process.stdout.write(`shoal aggregator listening on http://${config.host}:${port}\n`);
      if (clusterFile === null && leavesDns === null) process.stdout.write(`no cluster file or --leaves-dns: waiting for leaves to join (shoal leaf --join http://${config.host}:${port})\n`);

      process.on('SIGHUP', () => {
        if (clusterFile === null) { app.log.info('SIGHUP: no cluster file to reload'); return; }
        try {
          const { added, removed } = agg.membership.replace(loadClusterFile(clusterFile));
          app.log.info({ added, removed }, 'cluster file reloaded');
        } catch (e) {
          app.log.error({ err: e }, 'cluster file reload failed; keeping the previous members');
        }
      });
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        app.log.info({ reason: sig }, 'stopping');
        agg.membership.stop();
        app.close().then(() => agg.close()).then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
