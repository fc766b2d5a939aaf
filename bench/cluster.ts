/**
 * What the cluster layer costs, against the same work without it, in one run:
 *
 *   node dist/bench/cluster.js [--rows 200000] [--batch 1000] [--connections 16] [--queries 200]
 *     [--seed 42] [--json] [--no-append]
 *
 * 1. Ingest: the same seeded NDJSON batches at the same concurrency, sent (a) straight to the 4
 *    leaves round-robin, (b) through the aggregator's router. After an untimed warm-up of each,
 *    rounds alternate (direct, routed, direct, routed) into fresh tables and the better round of
 *    each is kept. Reported: rows/s, the ratio routed/direct (goal >= 0.8), and the CPU time per
 *    batch of the router process next to that of the 4 leaves together (/proc, Linux): on a
 *    machine where everything shares the cores, the router's CPU comes out of the leaves' budget.
 * 2. Query latency: the same rows held by 4 leaves behind an aggregator, and by one leaf, queried
 *    directly and through an aggregator over it alone (the hop without the fan-out). p50 and p99
 *    of --queries sequential runs of each query after 5 warm-ups; the difference is the fan-out
 *    cost. The answers of all three must hash alike (checked; the hashes are printed).
 *
 * Every process is a real `node dist/server/cli/cli.js` on loopback: leaves with --workers 1,
 * --no-shm and the default disk log. This process is the load generator (concurrent keep-alive
 * requests). Results go to stdout (a table, or JSON with --json; progress on stderr) and are
 * appended to bench/RESULTS.md under "## Cluster (issue 3)" with the command (unless --no-append).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { CONTENT_TYPE, generateColumns, renderBodies } from './data.js';
import {
  answerHash, CLI_PATH, formatTable, intFlag, machineInfo, newPool, parseFlags, postJson, round2, startLeaf, warnIfBusy, type LeafProcess,
} from './support.js';

const RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const SECTION = '## Cluster (issue 3)';
const LEAVES = 4;
const WARMUP_QUERIES = 5;
const QUERIES = [
  { name: 'group by', sql: 'SELECT service, count(*) AS n, sum(bytes) AS b, avg(latency_ms) AS l FROM bench GROUP BY service ORDER BY service' },
  { name: 'time series', sql: "SELECT time_bucket(INTERVAL '1 hour', time) AS t, count(*) AS n, max(latency_ms) AS m FROM bench WHERE status >= 400 GROUP BY t ORDER BY t" },
  { name: 'p99 + distinct', sql: 'SELECT endpoint, p99(latency_ms) AS p, count(DISTINCT user_id) AS u FROM bench GROUP BY endpoint ORDER BY endpoint' },
  // Issue 14: every leaf sends all of its ~100k user groups; the partials must be compact.
  { name: 'top users (high card)', sql: 'SELECT user_id, count(*) AS n, sum(bytes) AS b FROM bench GROUP BY user_id ORDER BY n DESC, user_id LIMIT 10' },
  // The push-down's fall-back: counts per second are alike (a few rows each), so the leaves'
  // bounds cannot prove the top 10 and the aggregator asks them again for every group.
  { name: 'top seconds (flat counts)', sql: 'SELECT time, count(*) AS n FROM bench GROUP BY time ORDER BY n DESC, time LIMIT 10' },
];

const FLAGS = [
  { name: 'rows', value: true, help: 'rows per ingest round and in the query table (200000)' },
  { name: 'batch', value: true, help: 'rows per request body (1000)' },
  { name: 'connections', value: true, help: 'ingest requests in flight (16)' },
  { name: 'queries', value: true, help: 'timed runs of each query per setup (200)' },
  { name: 'seed', value: true, help: 'data seed (42)' },
  { name: 'top-n-groups', value: true, help: 'the aggregators\' --top-n-groups (1024; 0: no top-n push-down, for an A/B)' },
  { name: 'json', value: false, help: 'results as JSON on stdout' },
  { name: 'no-append', value: false, help: 'do not append to bench/RESULTS.md' },
];

interface Proc { readonly url: string; readonly pid: number; stop(): Promise<void> }

/** An aggregator child process over `clusterFile`, ready once it prints its listening line. */
async function startAggregator(clusterFile: string, topNGroups: number): Promise<Proc> {
  const child: ChildProcess = spawn(process.execPath, [CLI_PATH, 'aggregator', '--cluster', clusterFile, '--port', '0', '--log-level', 'warn', '--top-n-groups', String(topNGroups)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`aggregator did not start:\n${out}`)); }, 30_000);
    const onData = (c: Buffer) => {
      out = (out + c.toString()).slice(-8_000);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`aggregator exited:\n${out}`)); });
  });
  return {
    url, pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** CPU milliseconds (user + system) a process has used, from /proc (Linux); 0 elsewhere. */
function cpuMs(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ = 100
  } catch {
    return 0;
  }
}

/** Sends every body with `connections` in flight; pool(i) and table name the target. Returns rows/s. */
async function ingest(bodies: readonly Buffer[], rowsPerBody: readonly number[], connections: number, pool: (i: number) => Pool, table: string): Promise<number> {
  let next = 0;
  let rows = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(connections, bodies.length) }, async () => {
    while (next < bodies.length) {
      const i = next++;
      const r = await postJson(pool(i), `/v1/tables/${table}/events`, bodies[i]!, CONTENT_TYPE.ndjson);
      if (r.status !== 200) throw new Error(`batch ${i} into ${table}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      rows += rowsPerBody[i]!;
    }
  }));
  return rows / ((performance.now() - started) / 1000);
}

interface Latency { p50: number; p99: number; hash: string }

async function latency(pool: Pool, sql: string, runs: number): Promise<Latency> {
  const times: number[] = [];
  let hash = '';
  const body = JSON.stringify({ sql });
  for (let i = 0; i < runs + WARMUP_QUERIES; i++) {
    const started = performance.now();
    const r = await postJson(pool, '/v1/query', body);
    const ms = performance.now() - started;
    if (r.status !== 200) throw new Error(`query answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    const answer = r.body as { rows: unknown[][]; coverage?: { percent: number } };
    if (answer.coverage !== undefined && answer.coverage.percent !== 100) {
      throw new Error(`coverage ${answer.coverage.percent}% in a healthy cluster (run ${i + 1}, ${Math.round(ms)} ms): ${JSON.stringify(answer.coverage).slice(0, 600)}`);
    }
    if (i === 0) hash = answerHash(answer.rows);
    if (i >= WARMUP_QUERIES) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  return { p50: round2(at(0.5)), p99: round2(at(0.99)), hash };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const rows = intFlag(flags, 'rows', 200_000, 1_000, 50_000_000);
  const batchRows = intFlag(flags, 'batch', 1_000, 1, 100_000);
  const connections = intFlag(flags, 'connections', 16, 1, 256);
  const runs = intFlag(flags, 'queries', 200, 10, 100_000);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 32 - 1);
  const topNGroups = intFlag(flags, 'top-n-groups', 1_024, 0, 1_000_000);
  const json = flags.has('json');
  const log = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  warnIfBusy(log);
  const machine = machineInfo();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-cluster-'));
  const procs: Proc[] = [];
  const pools: Pool[] = [];
  const pool = (url: string) => { const p = newPool(url, connections); pools.push(p); return p; };
  const leafOf = (name: string) => startLeaf({ dataDir: path.join(dir, name), args: ['--id', `bench-${process.pid}-${name}`, '--workers', '1', '--no-shm'] });
  try {
    const leaves: LeafProcess[] = await Promise.all(Array.from({ length: LEAVES }, (_, i) => leafOf(`leaf-${i + 1}`)));
    const single = await leafOf('single');
    procs.push(...leaves, single);
    const clusterFile = path.join(dir, 'cluster.json');
    fs.writeFileSync(clusterFile, JSON.stringify({ leaves: leaves.map((l, i) => ({ id: `leaf-${i + 1}`, url: l.url })) }));
    const singleFile = path.join(dir, 'single.json');
    fs.writeFileSync(singleFile, JSON.stringify({ leaves: [{ id: 'single', url: single.url }] }));
    const agg = await startAggregator(clusterFile, topNGroups);
    const hop = await startAggregator(singleFile, topNGroups);
    procs.push(agg, hop);
    const leafPools = leaves.map((l) => pool(l.url));
    const aggPool = pool(agg.url);
    const singlePool = pool(single.url);
    const hopPool = pool(hop.url);
    // Let the first health checks report free memory (the router's criterion).
    await new Promise((r) => setTimeout(r, 1_500));

    const columns = generateColumns(seed, rows, 1_700_000_000);
    const bodies = renderBodies(columns, 'ndjson', batchRows);
    const rowsPerBody = bodies.map((_, i) => Math.min(batchRows, rows - i * batchRows));
    log(`ingest: ${rows} rows in ${bodies.length} batches of ${batchRows}, ${connections} in flight, ${LEAVES} leaves`);
    const warm = bodies.slice(0, Math.min(50, bodies.length));
    await ingest(warm, rowsPerBody, connections, (i) => leafPools[i % LEAVES]!, 'warm');
    await ingest(warm, rowsPerBody, connections, () => aggPool, 'warm');
    const direct: number[] = [];
    const routed: number[] = [];
    let routerCpuMs = 0;
    let leavesCpuMs = 0;
    for (let round = 0; round < 2; round++) {
      direct.push(await ingest(bodies, rowsPerBody, connections, (i) => leafPools[i % LEAVES]!, `direct${round}`));
      const leaves0 = leaves.map((l) => cpuMs(l.pid));
      const router0 = cpuMs(agg.pid);
      routed.push(await ingest(bodies, rowsPerBody, connections, () => aggPool, `routed${round}`));
      leavesCpuMs += leaves.reduce((sum, l, i) => sum + cpuMs(l.pid) - leaves0[i]!, 0);
      routerCpuMs += cpuMs(agg.pid) - router0;
      log(`  round ${round + 1}: direct ${Math.round(direct[round]!)} rows/s, routed ${Math.round(routed[round]!)} rows/s`);
    }
    const routedBatches = 2 * bodies.length;

    log(`query: the same ${rows} rows on ${LEAVES} leaves and on one leaf, ${runs} runs per query`);
    await ingest(bodies, rowsPerBody, connections, () => aggPool, 'bench');
    await ingest(bodies, rowsPerBody, connections, () => singlePool, 'bench');
    const queries = [];
    for (const q of QUERIES) {
      const one = await latency(singlePool, q.sql, runs);
      const hopped = await latency(hopPool, q.sql, runs);
      const cluster = await latency(aggPool, q.sql, runs);
      if (cluster.hash !== one.hash || hopped.hash !== one.hash) throw new Error(`answers differ for ${q.name}: cluster ${cluster.hash}, hop ${hopped.hash}, one leaf ${one.hash}`);
      queries.push({ name: q.name, sql: q.sql, oneLeaf: one, hop: hopped, cluster });
      log(`  ${q.name}: p50 ${cluster.p50} ms over ${LEAVES} leaves, ${one.p50} ms on one leaf`);
    }

    // How the aggregator answered the top-n by count (query/merge/top-cut.ts): from the leaves'
    // cut groups, or by asking them again for every group.
    const metricsText = await (await fetch(`${agg.url}/metrics`)).text();
    const pushed = (outcome: string) => Number(metricsText.split('\n').find((l) => l.startsWith('shoal_topn_pushdown_total{') && l.includes(`outcome="${outcome}"`))?.split(' ').pop() ?? 0);
    const topCut = { exact: pushed('exact'), refetched: pushed('refetched') };
    log(`  top-n push-downs over ${LEAVES} leaves: ${topCut.exact} exact, ${topCut.refetched} refetched`);

    const ingestDirect = Math.max(...direct);
    const ingestRouted = Math.max(...routed);
    const result = {
      bench: 'cluster', rows, batchRows, connections, queryRuns: runs, seed, leaves: LEAVES, machine,
      ingest: {
        directRowsPerS: Math.round(ingestDirect), routedRowsPerS: Math.round(ingestRouted), ratio: round2(ingestRouted / ingestDirect),
        routerCpuMsPerBatch: round2(routerCpuMs / routedBatches), leavesCpuMsPerBatch: round2(leavesCpuMs / routedBatches),
      },
      queries, topCut,
    };
    const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const plus = (a: number, b: number) => `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(2)} ms`;
    const table = formatTable(['metric', 'cluster', 'baseline', 'ratio'], [
      ['ingest rows/s: router vs straight to 4 leaves', String(result.ingest.routedRowsPerS), String(result.ingest.directRowsPerS), x(ingestRouted, ingestDirect)],
      [`ingest CPU ms per ${batchRows}-row batch: router vs 4 leaves`, result.ingest.routerCpuMsPerBatch.toFixed(2), result.ingest.leavesCpuMsPerBatch.toFixed(2), x(result.ingest.routerCpuMsPerBatch, result.ingest.leavesCpuMsPerBatch)],
      ...queries.flatMap((q) => [
        [`${q.name}: p50 ms, aggregator + 4 leaves vs 1 leaf`, q.cluster.p50.toFixed(2), q.oneLeaf.p50.toFixed(2), plus(q.cluster.p50, q.oneLeaf.p50)],
        [`${q.name}: p99 ms, aggregator + 4 leaves vs 1 leaf`, q.cluster.p99.toFixed(2), q.oneLeaf.p99.toFixed(2), plus(q.cluster.p99, q.oneLeaf.p99)],
        [`${q.name}: p50 ms, aggregator + 1 leaf vs 1 leaf (hop)`, q.hop.p50.toFixed(2), q.oneLeaf.p50.toFixed(2), plus(q.hop.p50, q.oneLeaf.p50)],
      ]),
    ]);
    const hashes = queries.map((q) => `${q.name} ${q.cluster.hash}`).join(', ');
    if (json) process.stdout.write(JSON.stringify(result) + '\n');
    else log(`\n${table}\nanswer hashes (equal on 4 leaves, 1 leaf, hop): ${hashes}`);

    if (!flags.has('no-append')) {
      const command = ['node dist/bench/cluster.js', ...process.argv.slice(2)].join(' ');
      let doc = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
      if (!doc.includes(SECTION)) {
        doc = doc.replace(/\n*$/, '\n\n') + `${SECTION}\n\nIngest through the router vs straight into the leaves, and query latency through the aggregator over ${LEAVES} leaves vs one leaf holding the same rows (bench/cluster.ts). Every process runs on the same machine: on 2 cores, the router's CPU and the 4 leaves' per-request overhead come out of one budget, so the ratios here are a floor; the CPU-per-batch line shows the router's own cost. The hop line (aggregator over the one leaf) isolates the extra HTTP round trip and merge.\n`;
      }
      const rounds = `ingest rounds (rows/s): direct ${direct.map(Math.round).join(', ')}; routed ${routed.map(Math.round).join(', ')}`;
      const load = `1-minute load average ${machine.loadAvg1m} before, ${round2(os.loadavg()[0]!)} after`;
      const entry = `\n### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}\n\n` +
        `\`${command}\`\n\n\`\`\`\n${table}\n\`\`\`\n\nAnswer hashes (equal on 4 leaves, 1 leaf, hop): ${hashes}. ${rounds}; ${load}.\n`;
      const at = doc.indexOf(SECTION);
      const nextSection = doc.indexOf('\n## ', at + SECTION.length);
      doc = nextSection < 0 ? doc.replace(/\n*$/, '\n') + entry : doc.slice(0, nextSection) + entry + doc.slice(nextSection);
      fs.writeFileSync(RESULTS, doc);
      log(`appended to ${path.relative(process.cwd(), RESULTS)}`);
    }
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()));
    await Promise.allSettled(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/cluster: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
