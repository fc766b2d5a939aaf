/**
 * `shoal up`: the embedded default. Starts N leaves and an aggregator on loopback as child
 * processes (this same CLI: `node <dist>/server/cli/cli.js leaf|aggregator ...`), data and logs
 * under one directory, restarts a leaf that exits, and stops everything on Ctrl-C or SIGTERM.
 *
 * Layout of --data-dir D: D/cluster.json (the aggregator's members), D/leaf-i/ (leaf i's data),
 * D/logs/<name>.log (each child's stdout and stderr). Ports: the aggregator on P, leaf i on P+i; with
 * --aggregators A, aggregators 2..A on P+N+1..P+N+A-1. Every leaf joins every aggregator (--join).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { LIMITS } from '../../query/limits.js';
import { Supervisor, type ManagedChild } from '../ops/supervisor.js';
import { DataDirInUseError, lockDataDir } from '../durability/data-dir-lock.js';
import { SHM_LAYOUT_VERSION } from '../durability/shm-handoff.js';
import { listHandoffs } from '../durability/shm-segments.js';
import { nativeAvailable } from '../../native/shm.js';
import { formatBytes } from './cmd-status.js';
import { CliError, EXIT } from './common.js';

const CLI_PATH = fileURLToPath(new URL('./cli.js', import.meta.url));

interface UpOptions {
  shm?: boolean; leaves: string; aggregators: string; port: string; host: string; dataDir: string; memoryBudget?: string; leafTimeout?: string; token?: string; startTimeout: string }

/** After a stop: how much memory the leaves' handoffs still hold, and how to free it. */
function sayHeldMemory(dataDir: string, say: (line: string) => void): void {
  try {
    if (!nativeAvailable()) return;
    const real = fs.realpathSync(dataDir);
    const mine = listHandoffs(SHM_LAYOUT_VERSION).filter((h) => h.dataDir !== null && h.dataDir.startsWith(real + path.sep));
    if (mine.length === 0) return;
    const bytes = mine.reduce((s, h) => s + h.bytes, 0);
    say(`${formatBytes(bytes)} of data stays in shared memory (/dev/shm) for the next \`shoal up\` on this directory (${mine.length} lea${mine.length === 1 ? 'f' : 'ves'}; freed by itself after --handoff-ttl). The disk has it too; free it now with: shoal shm --remove ${mine.map((h) => h.leafId).join(' ')}`);
  } catch { /* a listing problem must not turn a clean stop into an error */ }
}

/** The ports of `ports` on `host` that cannot be bound now (EADDRINUSE, EACCES, ...). */
async function portsInUse(host: string, ports: readonly number[]): Promise<{ port: number; code: string }[]> {
  const tried = await Promise.all(ports.map((p) => new Promise<{ port: number; code: string } | null>((resolve) => {
    const srv = net.createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve({ port: p, code: e.code ?? e.message }));
    srv.listen({ host, port: p, exclusive: true }, () => srv.close(() => resolve(null)));
  })));
  return tried.filter((t): t is { port: number; code: string } => t !== null);
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start a local cluster: N leaves and an aggregator, supervised (Ctrl-C stops it)')
    .option('--leaves <n>', 'number of leaf processes', '4')
    .option('--aggregators <n>', 'aggregators, each over every leaf (the first on --port, the others after the leaves\' ports)', '1')
    .option('--port <port>', 'aggregator port; leaf i listens on port + i', '7000')
    .option('--host <host>', 'address every process listens on', '127.0.0.1')
    .option('--data-dir <dir>', 'data, cluster file and logs', './data')
    .option('--memory-budget <size>', 'memory budget of each leaf, e.g. 2GiB (default: the leaf default)')
    .option('--leaf-timeout <ms>', 'aggregator: wait this long for a leaf\'s answer')
    .option('--token <token>', 'bearer token for ingest and query on every process (or SHOAL_TOKEN)', process.env.SHOAL_TOKEN)
    .option('--no-shm', 'leaves do not use shared memory: planned restarts recover from disk (for comparison)')
    .option('--start-timeout <ms>', 'give up if a process does not serve within this time', '60000')
    .addHelpText('after', `
Example:
  $ shoal up --leaves 4 --data-dir ./data
  $ shoal ingest events events.ndjson          # in another terminal
  $ shoal query "SELECT service, count(*) FROM events GROUP BY service"
  $ shoal status`)
    .action(async (o: UpOptions) => {
      const leafCount = Number(o.leaves);
      const port = Number(o.port);
      const startTimeoutMs = Number(o.startTimeout);
      if (!(Number.isInteger(leafCount) && leafCount >= 1 && leafCount <= LIMITS.upLeavesMax)) throw new Error(`--leaves must be 1..${LIMITS.upLeavesMax}`);
      const aggCount = Number(o.aggregators);
      if (!(Number.isInteger(aggCount) && aggCount >= 1 && aggCount <= LIMITS.upAggregatorsMax)) throw new Error(`--aggregators must be 1..${LIMITS.upAggregatorsMax}`);
      const last = port + leafCount + aggCount - 1;
      if (!(Number.isInteger(port) && port >= 1 && last <= 65535)) throw new Error(`--port must leave room for ${leafCount + aggCount - 1} more ports after it (1..${65535 - leafCount - aggCount + 1})`);
      // Aggregator k (0-based) listens on --port for k = 0, then after the leaves' ports.
      const aggPorts = Array.from({ length: aggCount }, (_, k) => (k === 0 ? port : port + leafCount + k));
      const aggUrls = aggPorts.map((p) => `http://${o.host}:${p}`);
      if (!(Number.isInteger(startTimeoutMs) && startTimeoutMs >= 1000)) throw new Error('--start-timeout must be at least 1000 ms');
      const dataDir = path.resolve(o.dataDir);
      const logDir = path.join(dataDir, 'logs');
      fs.mkdirSync(logDir, { recursive: true });
      // One `shoal up` per data directory (each leaf also locks its own): a second one would
      // start leaves that fail on their locks and back off forever.
      try {
        lockDataDir(dataDir);
      } catch (e) {
        if (!(e instanceof DataDirInUseError)) throw e;
        process.stderr.write(`shoal up: ${e.message}\n`);
        process.exit(3);
      }
      // Every port must be free before anything starts: a leaf that cannot listen would be
      // restarted forever, and a readiness check could reach whatever holds the port.
      const busy = await portsInUse(o.host, [...aggPorts, ...Array.from({ length: leafCount }, (_, k) => port + k + 1)]);
      if (busy.length > 0) {
        const which = busy.map((b) => `${b.port} (${aggPorts.includes(b.port) ? 'an aggregator' : `leaf-${b.port - port}`}: ${b.code})`).join(', ');
        throw new CliError(`port${busy.length === 1 ? '' : 's'} ${which} on ${o.host} ${busy.length === 1 ? 'is' : 'are'} not free; ` +
          `stop what holds ${busy.length === 1 ? 'it' : 'them'} (another \`shoal up\`?) or pick another --port (it uses ${port}..${last})`, EXIT.unhealthy);
      }
      const say = (line: string) => process.stdout.write(`shoal up: ${line}\n`);
      const shown = (p: string) => path.relative(process.cwd(), p) || '.';

      // Each leaf's scans share the machine's cores with the other leaves.
      const workers = Math.max(1, Math.floor(os.availableParallelism() / leafCount));
      // The token reaches the children through their environment (SHOAL_TOKEN), not their
      // command lines, which `ps` shows to every user.
      if (o.token !== undefined) process.env.SHOAL_TOKEN = o.token;
      const common: string[] = [];
      const leaves = Array.from({ length: leafCount }, (_, k) => {
        const i = k + 1;
        const name = `leaf-${i}`;
        // No --id: the leaf keeps a generated identity in its data dir. Its shared-memory segments
        // are named by that identity, so a fixed "leaf-1" would let a second `shoal up` (another
        // data dir) or a new one over a deleted dir adopt an old handoff. The cluster file still
        // names the members leaf-1..leaf-N for people.
        // --join: each leaf tells the aggregators the moment it serves again (the readiness push
        // of a rolling restart), instead of waiting for their next health round.
        const args = [CLI_PATH, 'leaf', '--host', o.host, '--port', String(port + i), '--data-dir', path.join(dataDir, name), '--workers', String(workers), '--join', aggUrls.join(','), ...common];
        if (o.memoryBudget !== undefined) args.push('--memory-budget', o.memoryBudget);
        if (o.shm === false) args.push('--no-shm');
        return { name, url: `http://${o.host}:${port + i}`, args };
      });
      const clusterFile = path.join(dataDir, 'cluster.json');
      fs.writeFileSync(clusterFile, JSON.stringify({ leaves: leaves.map((l) => ({ id: l.name, url: l.url })) }, null, 2) + '\n');

      const sup = new Supervisor({ log: say, backoffMsMin: 250, backoffMsMax: 10_000, stopTimeoutMs: 30_000 });
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) { say('second signal: killing every process'); sup.killAll(); return; }
        say(`${sig}: stopping (SIGTERM to every process; Ctrl-C again to kill)`);
        void sup.stopAll('SIGTERM').then(() => { say('stopped'); sayHeldMemory(dataDir, say); process.exit(0); });
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // The terminal closed: the children are in their own process groups and would live on.
      process.on('SIGHUP', onSignal);

      const fail = async (e: Error) => {
        process.stderr.write(`shoal up: ${e.message}\n`);
        await sup.stopAll('SIGTERM');
        process.exit(1);
      };
      const started: ManagedChild[] = leaves.map((l) => sup.start({ name: l.name, command: process.execPath, args: l.args, logFile: path.join(logDir, `${l.name}.log`), url: l.url, restart: true }));
      try {
        await Promise.all(started.map((c) => sup.waitReady(c, startTimeoutMs)));
      } catch (e) { return fail(e as Error); }
      for (const c of started) say(`${c.spec.name} listening on ${c.spec.url} (pid ${c.pid}, log ${shown(c.spec.logFile)})`);

      const aggs = aggPorts.map((p, k) => {
        const name = k === 0 ? 'aggregator' : `aggregator-${k + 1}`;
        const aggArgs = [CLI_PATH, 'aggregator', '--cluster', clusterFile, '--host', o.host, '--port', String(p), '--id', name, ...common];
        if (o.leafTimeout !== undefined) aggArgs.push('--leaf-timeout', o.leafTimeout);
        return sup.start({ name, command: process.execPath, args: aggArgs, logFile: path.join(logDir, `${name}.log`), url: aggUrls[k]!, restart: true });
      });
      try {
        await Promise.all(aggs.map((a) => sup.waitReady(a, startTimeoutMs)));
      } catch (e) { return fail(e as Error); }
      for (const a of aggs) say(`${a.spec.name} listening on ${a.spec.url} (pid ${a.pid}, log ${shown(a.spec.logFile)}, cluster ${shown(clusterFile)})`);
      const aggUrl = aggUrls[0]!;
      if (aggCount === 1) say(`${leafCount} lea${leafCount === 1 ? 'f' : 'ves'} + aggregator ready at ${aggUrl} (web UI: open ${aggUrl}/ in a browser)`);
      else say(`${leafCount} lea${leafCount === 1 ? 'f' : 'ves'} + ${aggCount} aggregators ready at ${aggUrls.join(', ')} (any answers any query; clients: --url ${aggUrls.join(',')} or SHOAL_URL=${aggUrls.join(',')})`);
      // Run through npx (npm_command=exec), the command is not on PATH: say it the way that works.
      const shoal = process.env.npm_command === 'exec' ? 'npx shoal' : 'shoal';
      say(`stop with Ctrl-C (or kill -TERM ${process.pid}); query from another terminal: ${shoal} query --url ${aggUrl} "SELECT count(*) FROM events"`);
    });
}
