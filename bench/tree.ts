/**
 * An aggregation tree for hundreds of leaves: the same leaves queried through one aggregator over
 * all of them (flat) and through a root over C child aggregators, each over N/C leaves (tree), in
 * one run:
 *
 *   node dist/bench/tree.js [--leaves 200] [--rows-per-leaf 20000] [--children 10,14] [--hosts 4]
 *     [--queries 200] [--concurrency 2,8] [--concurrent-queries 200] [--seed 42] [--json] [--no-append]
 *
 * Leaves: --hosts "leaf host" processes (tree-leaf-host.ts) share the --leaves leaves, each a real
 * Leaf with its own port, --rows-per-leaf rows of data.ts (leaf i seeded with seed + i). They
 * share processes because 200 leaf processes on 2 cores would measure 200 event loops and heaps,
 * not the fan-out; the cost is that a leaf's answer queues behind its host siblings' scans. That
 * is the same for every setup (the same hosts answer), so the comparison is fair; absolute
 * latencies are pessimistic.
 *
 * Aggregators: every one is a real `node dist/server/cli/cli.js aggregator --cluster FILE --port 0`
 * (the point is the root's own CPU per query). One setup runs at a time (flat, then each --children
 * width), on the same leaves, and is stopped before the next starts, so health checks of idle
 * setups never compete. Per setup:
 *
 * 1. Ready: the root's status lists every leaf healthy with every row (children first, in a tree).
 * 2. Idle CPU: the aggregators' and leaf hosts' CPU over IDLE_MS with no queries: the health
 *    checks' cost (every member's status every 250 ms), which also runs under the queries.
 * 3. Sequential: per query shape WARMUP_QUERIES untimed, then --queries timed one after another;
 *    p50 / p99 of the client's wall time, and CPU ms per query from /proc/<pid>/stat before and
 *    after: the root's (gross, and net of its idle rate over the same wall time), the mean child's,
 *    all aggregators' together (gross), and the leaf hosts' together (net of their idle rate).
 * 4. Concurrent: for each --concurrency count, that many clients, each with its own keep-alive
 *    connection, send --concurrent-queries in total, the shapes in turn: queries/s, p50 / p99,
 *    root CPU per query, and coverage as data (not checked: past what 2 cores can serve, a leaf
 *    host backs up past the 1 s health-check timeout and its leaves are marked unhealthy; the
 *    run says how many answers were incomplete and why). Every leaf is healthy again before each.
 * 5. Sockets: the root's open descriptors (/proc/<pid>/fd: its sockets and ~20 others) idle, at
 *    their peak while queries run (sampled every SOCKET_SAMPLE_MS) and after; the bounds they
 *    rely on are printed. Member timeouts are LEAF_TIMEOUT_MS (the root's twice that), far past
 *    any queueing here, so a slow answer is measured rather than dropped from coverage.
 *
 * Checks: every sequential answer's coverage must be 100% with every leaf responding and every
 * row held; the answers of a shape must hash alike in every setup (hashes printed). A failure
 * exits 1.
 * Results go to stdout (a table, or JSON with --json; progress on stderr) and are appended to
 * bench/RESULTS.md under SECTION with the command (unless --no-append).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'undici';
import {
  answerHash, CLI_PATH, formatTable, getJson, intFlag, machineInfo, newPool, parseFlags, postJson, processCpuMs, round2, warnIfBusy,
} from './support.js';

const RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const HOST_SCRIPT = fileURLToPath(new URL('./tree-leaf-host.js', import.meta.url));
const SECTION = '## Aggregation tree: 200 leaves, flat vs two levels (issue 19)';
const WARMUP_QUERIES = 10;
const IDLE_MS = 4_000;
const SOCKET_SAMPLE_MS = 250;
/** Member timeouts well past any queueing here, so a slow answer is measured, not dropped. */
const LEAF_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 120_000;
const HOST_START_TIMEOUT_MS = 600_000;
const STOP_TIMEOUT_MS = 15_000;
/** Budget of aggregator CPU per query for the sizing line: 10 ms = 100 queries/s per core. */
const CPU_BUDGET_MS_PER_QUERY = 10;

const SHAPES = [
  { name: 'count', sql: 'SELECT count(*) AS n FROM bench' },
  { name: 'group low', sql: 'SELECT service, count(*) AS n, sum(bytes) AS b, avg(latency_ms) AS l FROM bench GROUP BY service ORDER BY service' },
  // 60 endpoints x 30 countries: ~1,800 groups in every leaf's partial, 10 rows out.
  { name: 'group ~1.8k top 10', sql: 'SELECT endpoint, country, count(*) AS n, sum(bytes) AS b FROM bench GROUP BY endpoint, country ORDER BY n DESC, endpoint, country LIMIT 10' },
  { name: 'p99 by service', sql: 'SELECT service, p99(latency_ms) AS p FROM bench GROUP BY service ORDER BY service' },
] as const;

const FLAGS = [
  { name: 'leaves', value: true, help: 'leaves in all (200)' },
  { name: 'rows-per-leaf', value: true, help: 'rows in each leaf (20000)' },
  { name: 'children', value: true, help: 'child aggregators of the tree setups, comma-separated (10,14)' },
  { name: 'hosts', value: true, help: 'leaf host processes (4)' },
  { name: 'queries', value: true, help: 'timed sequential runs per shape per setup (200)' },
  { name: 'concurrency', value: true, help: 'concurrent query clients, a run per count, comma-separated (2,8)' },
  { name: 'concurrent-queries', value: true, help: 'queries per concurrent run per setup (200)' },
  { name: 'seed', value: true, help: 'data seed (42)' },
  { name: 'json', value: false, help: 'results as JSON on stdout' },
  { name: 'no-append', value: false, help: 'do not append to bench/RESULTS.md' },
];

interface Proc { readonly url: string; readonly pid: number; stop(): Promise<void> }
interface HostedLeaf { id: string; url: string; rows: number }

/** Stops a child: SIGTERM, SIGKILL after STOP_TIMEOUT_MS; resolves once it has exited. */
function stopper(child: ChildProcess, exited: Promise<void>): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(t);
  };
}

async function startHost(first: number, leafCount: number, rowsPerLeaf: number, seed: number, endSeconds: number): Promise<{ proc: Proc; leaves: HostedLeaf[] }> {
  const args = [HOST_SCRIPT, '--first', String(first), '--leaves', String(leafCount), '--rows-per-leaf', String(rowsPerLeaf), '--seed', String(seed), '--end-seconds', String(endSeconds)];
  // stdin is a pipe: the host exits when it closes (this process gone), so no host outlives a crash.
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-8_000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`leaf host ${first} did not start:\n${err}`)); }, HOST_START_TIMEOUT_MS);
    readline.createInterface({ input: child.stdout! }).once('line', (l) => { clearTimeout(timer); resolve(l); });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`leaf host ${first} exited:\n${err}`)); });
  });
  const info = JSON.parse(line) as { pid: number; leaves: HostedLeaf[] };
  return { proc: { url: '', pid: child.pid!, stop: stopper(child, exited) }, leaves: info.leaves };
}

async function startAggregator(clusterFile: string, id: string, leafTimeoutMs: number): Promise<Proc> {
  const args = [CLI_PATH, 'aggregator', '--cluster', clusterFile, '--port', '0', '--id', id, '--leaf-timeout', String(leafTimeoutMs), '--log-level', 'warn'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`aggregator ${id} did not start:\n${out}`)); }, 30_000);
    const onData = (c: Buffer) => {
      out = (out + c.toString()).slice(-8_000);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`aggregator ${id} exited:\n${out}`)); });
  });
  return { url, pid: child.pid!, stop: stopper(child, exited) };
}

/**
 * Open file descriptors of a process, from /proc (-1 elsewhere). An aggregator's are its sockets
 * (listening, clients', one or more per member) plus ~20 others (epoll, pipes, its script): a
 * readdir, without a readlink per descriptor, so sampling a few thousand costs this process little.
 */
function socketCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Samples socketCount(pid) until stopped; returns the peak. */
function socketPeak(pids: readonly number[]): { stop(): number[] } {
  const peaks = pids.map(socketCount);
  const timer = setInterval(() => pids.forEach((p, i) => { peaks[i] = Math.max(peaks[i]!, socketCount(p)); }), SOCKET_SAMPLE_MS);
  return { stop: () => { clearInterval(timer); return peaks; } };
}

const cpu = (pid: number): number => processCpuMs(pid) ?? 0;
const cpuSum = (pids: readonly number[]): number => pids.reduce((s, p) => s + cpu(p), 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Expect { leaves: number; rows: number }

interface Coverage { percent: number; leavesQueried: number; leavesResponded: number; rowsHeld: number; failures: { leaf: string; reason: string }[] }

/**
 * Runs one query; returns wall ms, the answer's hash and its coverage. `strict`: anything but
 * 100% (every leaf answering, every row held) throws. Not strict (the overload runs), coverage is
 * returned as data, as a client would see it, and a 503 SHOAL_ERR_CLUSTER_NO_ANSWER is 0%.
 */
async function runQuery(pool: Pool, sql: string, expect: Expect, strict = true): Promise<{ ms: number; hash: string; coverage: Coverage; complete: boolean }> {
  const started = performance.now();
  const r = await postJson(pool, '/v1/query', JSON.stringify({ sql }));
  const ms = performance.now() - started;
  if (r.status !== 200) {
    const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
    // SHOAL_ERR_CLUSTER_NO_ANSWER: no member answered; to a client that is 0% coverage.
    if (!strict && e?.code === 'SHOAL_ERR_CLUSTER_NO_ANSWER') {
      const reason = `HTTP ${r.status} ${e.code}: ${(e.message ?? '').slice(0, 120)}`;
      return { ms, hash: '', coverage: { percent: 0, leavesQueried: expect.leaves, leavesResponded: 0, rowsHeld: 0, failures: [{ leaf: '(all)', reason }] }, complete: false };
    }
    throw new Error(`${sql}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  const a = r.body as { rows: unknown[][]; coverage: Coverage };
  const c = a.coverage;
  const complete = c.percent === 100 && c.leavesQueried === expect.leaves && c.leavesResponded === expect.leaves && c.rowsHeld === expect.rows;
  if (strict && !complete) {
    throw new Error(`${sql}: coverage ${c.percent}% (${c.leavesResponded}/${c.leavesQueried} leaves, ${c.rowsHeld} rows; expected ${expect.leaves} leaves, ${expect.rows} rows): ${JSON.stringify(c.failures).slice(0, 300)}`);
  }
  return { ms, hash: answerHash(a.rows), coverage: c, complete };
}

/** Waits until the root sees every leaf healthy (through its children, in a tree) with every row. */
async function waitReady(pool: Pool, expect: Expect, members: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const r = await getJson(pool, '/v1/status');
    const s = r.body as { membersHealthy: number; membersTotal: number; leafCount: number; rows: number };
    last = JSON.stringify({ membersHealthy: s.membersHealthy, membersTotal: s.membersTotal, leafCount: s.leafCount, rows: s.rows });
    if (r.status === 200 && s.membersHealthy === members && s.membersTotal === members && s.leafCount === expect.leaves && s.rows === expect.rows) return;
    await sleep(250);
  }
  throw new Error(`aggregator not ready within ${READY_TIMEOUT_MS} ms: ${last}`);
}

interface ShapeResult { name: string; p50Ms: number; p99Ms: number; rootCpuMs: number; rootNetCpuMs: number; childCpuMs: number | null; aggregatorsCpuMs: number; hostsNetCpuMs: number; hash: string }
interface SetupResult {
  name: string; members: number; children: number; leavesPerChild: string;
  idle: { rootCpuMsPerS: number; childCpuMsPerS: number | null; hostsCpuMsPerS: number };
  shapes: ShapeResult[];
  concurrent: ConcurrentResult[];
  sockets: { rootIdle: number; rootPeakSequential: number; rootAfter: number };
}
interface ConcurrentResult {
  clients: number; queries: number; queriesPerS: number; p50Ms: number; p99Ms: number; rootCpuMs: number; childCpuMs: number | null;
  /** Answers below 100% coverage, the lowest coverage seen, and the first failure reason. */
  incomplete: number; noAnswer: number; coverageMin: number; failureExample: string | null;
  rootFdsPeak: number; childFdsPeak: number | null;
}

/**
 * `clients` clients, each on its own keep-alive connection, send `total` queries, the shapes in
 * turn. Coverage is recorded, not required: past what the machine can serve, a leaf whose host is
 * backed up past the health-check timeout is marked unhealthy and left out (docs/cluster.md).
 */
async function runConcurrent(root: Proc, childPids: readonly number[], clients: number, total: number, expect: Expect, pools: Pool[]): Promise<ConcurrentResult> {
  const clientPools = Array.from({ length: clients }, () => newPool(root.url, 1));
  pools.push(...clientPools);
  for (const p of clientPools) await runQuery(p, SHAPES[0].sql, expect);
  const peak = socketPeak([root.pid, ...childPids]);
  const times: number[] = [];
  let next = 0;
  let incomplete = 0;
  let noAnswer = 0;
  let coverageMin = 100;
  let failureExample: string | null = null;
  const t0 = performance.now(); const rc = cpu(root.pid); const cc = cpuSum(childPids);
  await Promise.all(clientPools.map(async (p) => {
    while (next < total) {
      const i = next++;
      const r = await runQuery(p, SHAPES[i % SHAPES.length]!.sql, expect, false);
      times.push(r.ms);
      if (!r.complete) {
        incomplete++;
        if (r.coverage.leavesResponded === 0) noAnswer++;
        coverageMin = Math.min(coverageMin, r.coverage.percent);
        const f = r.coverage.failures[0];
        failureExample ??= f === undefined ? null : `${f.leaf}: ${f.reason}`;
      }
    }
  }));
  const wallS = (performance.now() - t0) / 1000;
  const rootCpu = cpu(root.pid) - rc; const childCpu = cpuSum(childPids) - cc;
  const peaks = peak.stop();
  times.sort((a, b) => a - b);
  return {
    clients, queries: total, queriesPerS: round2(total / wallS), p50Ms: round2(percentile(times, 0.5)), p99Ms: round2(percentile(times, 0.99)),
    rootCpuMs: round2(rootCpu / total), childCpuMs: childPids.length > 0 ? round2(childCpu / childPids.length / total) : null,
    incomplete, noAnswer, coverageMin, failureExample,
    rootFdsPeak: peaks[0]!, childFdsPeak: childPids.length > 0 ? Math.max(...peaks.slice(1)) : null,
  };
}

async function runSetup(name: string, root: Proc, children: readonly Proc[], members: number, leavesPerChild: string, hostPids: readonly number[], expect: Expect,
  runs: number, clientCounts: readonly number[], concurrentQueries: number, log: (s: string) => void): Promise<SetupResult> {
  const childPids = children.map((c) => c.pid);
  const pool = newPool(root.url, 1);
  const pools = [pool];
  try {
    await waitReady(pool, expect, members);
    log(`${name}: ready (${members} members, ${expect.leaves} leaves, ${expect.rows} rows)`);
    // Idle: the health checks alone.
    const idle0 = performance.now(); const r0 = cpu(root.pid); const c0 = cpuSum(childPids); const h0 = cpuSum(hostPids);
    await sleep(IDLE_MS);
    const idleS = (performance.now() - idle0) / 1000;
    const rootIdleRate = (cpu(root.pid) - r0) / idleS;
    const childIdleRate = children.length > 0 ? (cpuSum(childPids) - c0) / idleS / children.length : null;
    const hostsIdleRate = (cpuSum(hostPids) - h0) / idleS;
    const rootIdle = socketCount(root.pid);

    const shapes: ShapeResult[] = [];
    const seqPeak = socketPeak([root.pid]);
    for (const q of SHAPES) {
      let hash = '';
      for (let i = 0; i < WARMUP_QUERIES; i++) hash = (await runQuery(pool, q.sql, expect)).hash;
      const times: number[] = [];
      const t0 = performance.now(); const rc = cpu(root.pid); const cc = cpuSum(childPids); const hc = cpuSum(hostPids);
      for (let i = 0; i < runs; i++) {
        const r = await runQuery(pool, q.sql, expect);
        if (r.hash !== hash) throw new Error(`${name} ${q.name}: answer changed between runs (${hash}, then ${r.hash})`);
        times.push(r.ms);
      }
      const wallS = (performance.now() - t0) / 1000;
      const rootCpu = cpu(root.pid) - rc;
      const childrenCpu = cpuSum(childPids) - cc;
      times.sort((a, b) => a - b);
      shapes.push({
        name: q.name, p50Ms: round2(percentile(times, 0.5)), p99Ms: round2(percentile(times, 0.99)),
        rootCpuMs: round2(rootCpu / runs), rootNetCpuMs: round2(Math.max(0, rootCpu - rootIdleRate * wallS) / runs),
        childCpuMs: children.length > 0 ? round2(childrenCpu / children.length / runs) : null,
        aggregatorsCpuMs: round2((rootCpu + childrenCpu) / runs),
        hostsNetCpuMs: round2(Math.max(0, cpuSum(hostPids) - hc - hostsIdleRate * wallS) / runs), hash,
      });
      const s = shapes.at(-1)!;
      log(`  ${q.name}: p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, root CPU ${s.rootCpuMs} ms/query${s.childCpuMs === null ? '' : `, child ${s.childCpuMs}`}, hash ${hash}`);
    }
    const [rootPeakSequential] = seqPeak.stop();

    // Concurrent clients, fewest first; every leaf healthy again before each level.
    const concurrent: ConcurrentResult[] = [];
    for (const clients of clientCounts) {
      await waitReady(pool, expect, members);
      const c = await runConcurrent(root, childPids, clients, concurrentQueries, expect, pools);
      concurrent.push(c);
      log(`  ${clients} clients: ${c.queriesPerS} queries/s, p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms, root CPU ${c.rootCpuMs} ms/query, root fds peak ${c.rootFdsPeak}` +
        (c.incomplete > 0 ? `; ${c.incomplete} answers below 100% coverage, ${c.noAnswer} with none (lowest ${c.coverageMin}%: ${c.failureExample})` : '; coverage 100%'));
    }
    await sleep(1_000);
    const sockets = { rootIdle, rootPeakSequential: rootPeakSequential!, rootAfter: socketCount(root.pid) };
    log(`  root open fds: idle ${sockets.rootIdle}, peak ${sockets.rootPeakSequential} sequential, ${sockets.rootAfter} after`);
    return {
      name, members, children: children.length, leavesPerChild,
      idle: { rootCpuMsPerS: round2(rootIdleRate), childCpuMsPerS: childIdleRate === null ? null : round2(childIdleRate), hostsCpuMsPerS: round2(hostsIdleRate) },
      shapes, concurrent, sockets,
    };
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}

/** Splits `items` into `parts` slices whose sizes differ by at most one. */
function split<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(items.length / parts) + (i < items.length % parts ? 1 : 0);
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const leafCount = intFlag(flags, 'leaves', 200, 2, 1_024);
  const rowsPerLeaf = intFlag(flags, 'rows-per-leaf', 20_000, 1, 10_000_000);
  const hostCount = intFlag(flags, 'hosts', 4, 1, 64);
  const runs = intFlag(flags, 'queries', 200, 10, 100_000);
  const clientCounts = String(flags.get('concurrency') ?? '2,8').split(',').map((v) => {
    const c = Number(v);
    if (!Number.isInteger(c) || c < 1 || c > 64) throw new Error(`--concurrency: "${v}" is not an integer from 1 to 64`);
    return c;
  }).sort((a, b) => a - b);
  const concurrentQueries = intFlag(flags, 'concurrent-queries', 200, 1, 1_000_000);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 32 - 1);
  const childWidths = String(flags.get('children') ?? '10,14').split(',').map((s) => {
    const c = Number(s);
    if (!Number.isInteger(c) || c < 2 || c >= leafCount) throw new Error(`--children: "${s}" is not an integer from 2 to ${leafCount - 1}`);
    return c;
  });
  const json = flags.has('json');
  const log = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  warnIfBusy(log);
  const machine = machineInfo();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-tree-'));
  const procs: Proc[] = [];
  try {
    const started = performance.now();
    const endSeconds = Math.floor(Date.now() / 1000);
    const perHost = split(Array.from({ length: leafCount }, (_, i) => i), Math.min(hostCount, leafCount));
    const hosts = await Promise.all(perHost.map((ids) => startHost(ids[0]!, ids.length, rowsPerLeaf, seed, endSeconds)));
    procs.push(...hosts.map((h) => h.proc));
    const leaves = hosts.flatMap((h) => h.leaves);
    const hostPids = hosts.map((h) => h.proc.pid);
    const expect: Expect = { leaves: leafCount, rows: leaves.reduce((s, l) => s + l.rows, 0) };
    log(`${leafCount} leaves in ${hosts.length} host processes, ${rowsPerLeaf} rows each, ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const writeCluster = (file: string, members: readonly { id: string; url: string }[]) => {
      const p = path.join(dir, file);
      fs.writeFileSync(p, JSON.stringify({ leaves: members.map((m) => ({ id: m.id, url: m.url })) }));
      return p;
    };

    const setups: SetupResult[] = [];
    {
      const flat = await startAggregator(writeCluster('flat.json', leaves), 'flat', LEAF_TIMEOUT_MS);
      procs.push(flat);
      setups.push(await runSetup('flat', flat, [], leafCount, '-', hostPids, expect, runs, clientCounts, concurrentQueries, log));
      await flat.stop();
    }
    for (const width of childWidths) {
      const slices = split(leaves, width);
      const children = await Promise.all(slices.map((s, j) => startAggregator(writeCluster(`tree${width}-child${j}.json`, s), `child-${j}`, LEAF_TIMEOUT_MS)));
      procs.push(...children);
      // The root waits longer than its children (docs/cluster.md, "Tree aggregation").
      const root = await startAggregator(writeCluster(`tree${width}-root.json`, children.map((c, j) => ({ id: `child-${j}`, url: c.url }))), 'root', 2 * LEAF_TIMEOUT_MS);
      procs.push(root);
      const sizes = [...new Set(slices.map((s) => s.length))].sort((a, b) => a - b).join('-');
      setups.push(await runSetup(`tree ${width}x${sizes}`, root, children, width, sizes, hostPids, expect, runs, clientCounts, concurrentQueries, log));
      await Promise.allSettled([root, ...children].map((p) => p.stop()));
    }

    // Every setup must give each shape the same answer.
    for (const [i, q] of SHAPES.entries()) {
      const hashes = setups.map((s) => s.shapes[i]!.hash);
      if (new Set(hashes).size !== 1) throw new Error(`answers differ for ${q.name}: ${setups.map((s, j) => `${s.name} ${hashes[j]}`).join(', ')}`);
    }

    // Root CPU per query against its member count, per shape: a least-squares line a + b x members
    // through every setup's root (flat: N leaves; each tree: C children). The sizing figure is b.
    const flat = setups[0]!;
    const fits = SHAPES.map((q, i) => {
      const xs = setups.map((s) => s.members);
      const ys = setups.map((s) => s.shapes[i]!.rootNetCpuMs);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      const perMemberMs = xs.reduce((a, x, j) => a + (x - mx) * (ys[j]! - my), 0) / sxx;
      const fixedMs = my - perMemberMs * mx;
      const membersAtBudget = perMemberMs > 0 ? Math.max(0, Math.floor((CPU_BUDGET_MS_PER_QUERY - fixedMs) / perMemberMs)) : Infinity;
      return { name: q.name, perMemberUs: Math.round(perMemberMs * 1000), fixedMs: round2(fixedMs), membersAtBudget };
    });

    // As in query/limits.ts and AggregatorConfig (bench/ imports neither: see bench/README.md).
    const bounds = {
      fanoutInFlightMax: 1_024, memberConnectionsMax: 64, aggregatorQueriesMax: 64, clusterMembersMax: 1_024,
      fdLimit: (() => { try { return Number(/Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1]); } catch { return null; } })(),
    };
    const result = { bench: 'tree', leaves: leafCount, rowsPerLeaf, rows: expect.rows, hosts: hosts.length, queryRuns: runs, clientCounts, concurrentQueries, seed, machine, setups, fits, bounds };

    const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const incompleteRuns = setups.flatMap((s) => s.concurrent.filter((c) => c.incomplete > 0).map((c) => `${s.name} at ${c.clients} clients: ${c.incomplete}/${c.queries} answers below 100%, ${c.noAnswer} of them 503 SHOAL_ERR_CLUSTER_NO_ANSWER (lowest ${c.coverageMin}%; e.g. ${c.failureExample})`));
    const incompleteNote = incompleteRuns.length === 0 ? '; and in every concurrent one' : `; concurrent answers below 100%: ${incompleteRuns.join('; ')}`;
    const opt = (v: number | null) => (v === null ? '-' : v.toFixed(2));
    const table = formatTable(['setup / shape', 'p50 ms', 'p99 ms', 'root CPU ms/q', 'net of health', 'child CPU ms/q', 'all aggs ms/q', 'leaves net ms/q'], setups.flatMap((s) => [
      ...s.shapes.map((q) => [`${s.name}: ${q.name}`, q.p50Ms.toFixed(2), q.p99Ms.toFixed(2), q.rootCpuMs.toFixed(2), q.rootNetCpuMs.toFixed(2), opt(q.childCpuMs), q.aggregatorsCpuMs.toFixed(2), q.hostsNetCpuMs.toFixed(2)]),
      ...s.concurrent.map((c) => [`${s.name}: ${c.clients} clients, ${c.queriesPerS} q/s${c.incomplete > 0 ? `, ${c.incomplete}/${c.queries} < 100%, ${c.noAnswer} 503` : ''}`, c.p50Ms.toFixed(2), c.p99Ms.toFixed(2), c.rootCpuMs.toFixed(2), '', opt(c.childCpuMs), '', '']),
    ]));
    const side = formatTable(['setup', 'members', 'idle CPU ms/s: root', 'child', 'leaf hosts', `root fds idle / peak seq / ${clientCounts.map((c) => `peak ${c}c`).join(' / ')} / after`, `child fds ${clientCounts.map((c) => `peak ${c}c`).join(' / ')}`], setups.map((s) => [
      s.name, String(s.members), s.idle.rootCpuMsPerS.toFixed(1), s.idle.childCpuMsPerS === null ? '-' : s.idle.childCpuMsPerS.toFixed(1), s.idle.hostsCpuMsPerS.toFixed(1),
      [s.sockets.rootIdle, s.sockets.rootPeakSequential, ...s.concurrent.map((c) => c.rootFdsPeak), s.sockets.rootAfter].join(' / '), s.children === 0 ? '-' : s.concurrent.map((c) => c.childFdsPeak).join(' / '),
    ]));
    const ratios = setups.slice(1).map((s) => `${s.name} vs flat: p50 ${SHAPES.map((_, i) => x(s.shapes[i]!.p50Ms, flat.shapes[i]!.p50Ms)).join(' / ')}, p99 ${SHAPES.map((_, i) => x(s.shapes[i]!.p99Ms, flat.shapes[i]!.p99Ms)).join(' / ')}, root CPU ${SHAPES.map((_, i) => x(s.shapes[i]!.rootCpuMs, flat.shapes[i]!.rootCpuMs)).join(' / ')}, throughput ${s.concurrent.map((c, j) => `${x(c.queriesPerS, flat.concurrent[j]!.queriesPerS)} at ${c.clients} clients`).join(', ')}`);
    const fitLines = fits.map((f) => `${f.name}: ${f.perMemberUs} us per member + ${f.fixedMs} ms (members within ${CPU_BUDGET_MS_PER_QUERY} ms/query: ${f.membersAtBudget})`);
    const hashes = SHAPES.map((q, i) => `${q.name} ${flat.shapes[i]!.hash}`).join(', ');
    const boundsLine = `bounds: fanoutInFlightMax ${bounds.fanoutInFlightMax} per fan-out, memberConnectionsMax ${bounds.memberConnectionsMax} per member, aggregator queriesMax ${bounds.aggregatorQueriesMax}; open files limit ${bounds.fdLimit}`;
    if (json) process.stdout.write(JSON.stringify(result) + '\n');
    else log(`\n${table}\n\n${side}\n\n${ratios.join('\n')}\nroot CPU (net) vs members: ${fitLines.join('; ')}\n${boundsLine}\nanswer hashes (equal in every setup): ${hashes}; coverage 100% (${leafCount}/${leafCount} leaves, ${expect.rows} rows) in every sequential answer${incompleteNote}`);

    if (!flags.has('no-append')) {
      const command = ['node dist/bench/tree.js', ...process.argv.slice(2)].join(' ');
      let doc = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
      if (!doc.includes(SECTION)) {
        doc = doc.replace(/\n*$/, '\n\n') + `${SECTION}\n\nThe same leaves queried through one aggregator over all of them and through a root over C child aggregators (bench/tree.ts). Leaves share a few host processes (bench/tree-leaf-host.ts), so a leaf's answer queues behind its host siblings' scans: the same in every setup, pessimistic in absolute terms. Every aggregator is its own process; "net of health" subtracts the CPU the aggregator spends on health checks when idle (every member's status every 250 ms) over the same wall time.\n`;
      }
      const load = `1-minute load average ${machine.loadAvg1m} before, ${round2(os.loadavg()[0]!)} after`;
      const entry = `\n### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}\n\n` +
        `\`npm run build && ${command}\`\n\n${leafCount} leaves x ${rowsPerLeaf} rows in ${hosts.length} host processes; ${runs} sequential runs per shape after ${WARMUP_QUERIES} warm-ups; ${concurrentQueries} queries from each of ${clientCounts.join(', ')} concurrent clients.\n\n` +
        `\`\`\`\n${table}\n\n${side}\n\`\`\`\n\n${ratios.map((r) => `- ${r}`).join('\n')}\n- root CPU (net) vs members, per shape: ${fitLines.join('; ')}\n- ${boundsLine}\n\nAnswer hashes (equal in every setup): ${hashes}; coverage 100% in every sequential answer${incompleteNote}. ${load}.\n`;
      const at = doc.indexOf(SECTION);
      const nextSection = doc.indexOf('\n## ', at + SECTION.length);
      doc = nextSection < 0 ? doc.replace(/\n*$/, '\n') + entry : doc.slice(0, nextSection) + entry + doc.slice(nextSection);
      fs.writeFileSync(RESULTS, doc);
      log(`appended to ${path.relative(process.cwd(), RESULTS)}`);
    }
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/tree: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
