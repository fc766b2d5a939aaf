/**
 * `shoal load` throughput and memory: a ~1 GB NDJSON file and the same rows as Parquet, loaded
 * by the CLI (a child process, as a user runs it) into a fresh local leaf or a local cluster.
 *
 *   node dist/bench/load.js [--rows 6000000] [--formats ndjson,parquet] [--modes disk,memory]
 *     [--target leaf|cluster] [--batch-rows 10000] [--in-flight 4] [--seed 42] [--json] [--no-append]
 *     [--loader-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * - Data: `--rows` rows from data.ts (seeded; ~165 bytes of NDJSON per row, so 6M rows is ~1 GB):
 *   time, service, endpoint, user_id, country, status, latency_ms, bytes, tags (a string set).
 *   The Parquet file is written by DuckDB from the NDJSON (`time` as TIMESTAMP, snappy, DuckDB's
 *   default row groups of 122,880 rows).
 * - Target: `leaf` = one leaf (`--no-shm`; `disk` mode = the default disk log, `memory` =
 *   `--no-disk-log`); `cluster` = an aggregator over 2 such leaves (the router places batches).
 * - Baselines measured in the same run, each on its own fresh target:
 *   `leaf alone`: the NDJSON bodies pre-rendered in this process and posted by a minimal client
 *   (4 connections), i.e. the target's ingest ceiling without any loader work;
 *   `loader alone`: the loader into a null server in this process (answers `{accepted: n}` at
 *   once), i.e. the loader's ceiling. Both share the machine's 2 cores with the measured run's
 *   other side, so loader+leaf cannot exceed either.
 * - Reported per case: rows/s (the loader's own clock, from its report), MB/s of input file,
 *   the loader's peak RSS (VmHWM from /proc/self/status, in its report) and CPU seconds, and the
 *   ratio to the leaf-alone ceiling. Check: the target must hold every row, and count(*),
 *   sum(bytes) must equal the generated data (hash printed). A mismatch exits 1.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { generateColumns, renderBodies, sumBytes } from './data.js';
import {
  answerHash, CLI_PATH, formatBytes, formatTable, intFlag, machineInfo, newPool, parseFlags, postJson, round2, sendBatches, startLeaf, warnIfBusy,
  type LeafProcess,
} from './support.js';

const RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const SECTION = '## Load (issue 6)';
const END_SECONDS = 1_767_225_600; // 2026-01-01: fixed, so files are identical across runs
const WRITE_ROWS = 100_000;

const FLAGS = [
  { name: 'rows', value: true, help: 'rows in the files (6000000, ~1 GB of NDJSON)' },
  { name: 'formats', value: true, help: 'ndjson,parquet' },
  { name: 'modes', value: true, help: 'disk,memory (leaf disk log on / off)' },
  { name: 'target', value: true, help: 'leaf or cluster (an aggregator over 2 leaves)' },
  { name: 'batch-rows', value: true, help: 'loader --batch-rows (10000)' },
  { name: 'in-flight', value: true, help: 'loader --in-flight (4)' },
  { name: 'seed', value: true, help: 'data seed (42)' },
  { name: 'dir', value: true, help: 'work directory (default: a new one under the OS temp dir, removed after)' },
  { name: 'json', value: false, help: 'results as JSON on stdout' },
  { name: 'no-append', value: false, help: 'do not append to bench/RESULTS.md' },
  { name: 'loader-node-args', value: true, help: 'node flags for the loader, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"' },
];

/** Node flags for each `shoal load` child (--loader-node-args; NODE_OPTIONS refuses --cpu-prof). */
let loaderNodeArgs: string[] = [];

interface Target { url: string; stop(): Promise<void> }

interface LoadRun {
  rowsAccepted: number; rowsRejected: number; seconds: number; rowsPerSecond: number; cpuSeconds: number;
  rssPeakBytes: number | null; error: unknown; wallSeconds: number;
}

const log = (s: string) => process.stderr.write(s + '\n');

async function startAggregator(clusterFile: string): Promise<Target> {
  const child = spawn(process.execPath, [CLI_PATH, 'aggregator', '--cluster', clusterFile, '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`aggregator did not start:\n${out}`)); }, 30_000);
    const onData = (c: Buffer) => {
      out = (out + c.toString()).slice(-8_000);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`aggregator exited:\n${out}`)); });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function startTarget(kind: 'leaf' | 'cluster', mode: string, dir: string): Promise<Target> {
  const args = ['--no-shm', ...(mode === 'memory' ? ['--no-disk-log'] : [])];
  if (kind === 'leaf') return startLeaf({ dataDir: path.join(dir, 'leaf'), args });
  const leaves: LeafProcess[] = [];
  for (let i = 1; i <= 2; i++) leaves.push(await startLeaf({ dataDir: path.join(dir, `leaf-${i}`), args: [...args, '--workers', '1'] }));
  const clusterFile = path.join(dir, 'cluster.json');
  fs.writeFileSync(clusterFile, JSON.stringify({ leaves: leaves.map((l, i) => ({ id: `leaf-${i + 1}`, url: l.url })) }));
  const agg = await startAggregator(clusterFile);
  // Let the aggregator's first health round see both leaves (it routes by their free memory).
  await new Promise((r) => setTimeout(r, 1_500));
  return { url: agg.url, stop: async () => { await agg.stop(); await Promise.all(leaves.map((l) => l.stop())); } };
}

/** Runs `shoal load` as a child process and returns its JSON report. */
async function runLoader(file: string, url: string, table: string, extra: string[]): Promise<LoadRun> {
  const started = performance.now();
  const child = spawn(process.execPath, [...loaderNodeArgs, CLI_PATH, 'load', file, '--table', table, '--url', url, '--json', '--quiet', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4_000); });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`shoal load exited ${code}:\n${err}\n${out.slice(-2_000)}`);
  const report = JSON.parse(out) as LoadRun;
  return { ...report, wallSeconds: (performance.now() - started) / 1000 };
}

async function query(url: string, sql: string): Promise<unknown[][]> {
  const res = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
  const body = await res.json() as { rows?: unknown[][] };
  if (res.status !== 200) throw new Error(`${sql}: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body.rows!;
}

/** A server that answers every batch at once, counting its lines: the loader's ceiling. */
async function nullServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let lines = 0;
    let any = false;
    req.on('data', (c: Buffer) => { any = true; for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) lines++; });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method !== 'POST') { res.statusCode = 404; res.end('{"error":{"code":"SHOAL_ERR_NOT_FOUND","message":"no table"}}'); return; }
      res.end(JSON.stringify({ accepted: any ? lines + 1 : 0 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  loaderNodeArgs = String(flags.get('loader-node-args') ?? '').split(/\s+/).filter((a) => a.length > 0);
  const rows = intFlag(flags, 'rows', 6_000_000, 1_000, 100_000_000);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 31);
  const batchRows = intFlag(flags, 'batch-rows', 10_000, 1, 100_000);
  const inFlight = intFlag(flags, 'in-flight', 4, 1, 64);
  const formats = String(flags.get('formats') ?? 'ndjson,parquet').split(',');
  const modes = String(flags.get('modes') ?? 'disk,memory').split(',');
  const target = String(flags.get('target') ?? 'leaf') as 'leaf' | 'cluster';
  if (target !== 'leaf' && target !== 'cluster') throw new Error('--target must be leaf or cluster');
  for (const f of formats) if (f !== 'ndjson' && f !== 'parquet') throw new Error(`--formats: unknown format ${f}`);
  for (const m of modes) if (m !== 'disk' && m !== 'memory') throw new Error(`--modes: unknown mode ${m}`);
  const json = flags.has('json');
  const machine = machineInfo();
  warnIfBusy(log);
  const ownDir = !flags.has('dir');
  const dir = ownDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-load-')) : String(flags.get('dir'));
  fs.mkdirSync(dir, { recursive: true });
  const loaderArgs = ['--batch-rows', String(batchRows), '--in-flight', String(inFlight)];

  try {
    // ---- data ----
    let t = performance.now();
    const cols = generateColumns(seed, rows, END_SECONDS);
    const expected = [[rows, sumBytes(cols)]];
    const hash = answerHash(expected);
    const ndjson = path.join(dir, 'events.ndjson');
    const fd = fs.openSync(ndjson, 'w');
    for (let start = 0; start < rows; start += WRITE_ROWS) {
      for (const b of renderBodies(cols, 'ndjson', WRITE_ROWS, start, Math.min(rows, start + WRITE_ROWS))) fs.writeSync(fd, b);
    }
    fs.closeSync(fd);
    const ndjsonBytes = fs.statSync(ndjson).size;
    log(`wrote ${rows.toLocaleString('en-US')} rows, ${formatBytes(ndjsonBytes)} of NDJSON in ${round2((performance.now() - t) / 1000)} s`);
    const files: Record<string, { file: string; bytes: number; args: string[] }> = { ndjson: { file: ndjson, bytes: ndjsonBytes, args: [] } };
    if (formats.includes('parquet')) {
      t = performance.now();
      const parquet = path.join(dir, 'events.parquet');
      const instance = await DuckDBInstance.create(':memory:');
      const c = await instance.connect();
      await c.run("SET TimeZone = 'UTC'");
      await c.run(`COPY (SELECT to_timestamp(time)::TIMESTAMP AS time, * EXCLUDE (time) FROM read_json('${ndjson}', format = 'newline_delimited',
        columns = {time: 'BIGINT', service: 'VARCHAR', endpoint: 'VARCHAR', user_id: 'VARCHAR', country: 'VARCHAR', status: 'INTEGER', latency_ms: 'DOUBLE', bytes: 'BIGINT', tags: 'VARCHAR[]'}))
        TO '${parquet}' (FORMAT parquet)`);
      c.closeSync();
      instance.closeSync();
      files.parquet = { file: parquet, bytes: fs.statSync(parquet).size, args: [] };
      log(`wrote ${formatBytes(files.parquet.bytes)} of Parquet (DuckDB) in ${round2((performance.now() - t) / 1000)} s`);
    }

    // ---- baselines ----
    const results: { name: string; rowsPerSecond: number; mbPerSecond: number; rssPeakBytes: number | null; cpuSeconds: number | null; hash: string | null; ok: boolean }[] = [];
    const ceiling = new Map<string, number>();
    for (const mode of modes) {
      const targetDir = path.join(dir, `base-${mode}`);
      const tgt = await startTarget(target, mode, targetDir);
      try {
        const bodies = renderBodies(cols, 'ndjson', batchRows);
        const pool = newPool(tgt.url, inFlight);
        t = performance.now();
        const accepted = await sendBatches(pool, 'bench', bodies, 'application/x-ndjson', inFlight);
        const seconds = (performance.now() - t) / 1000;
        await pool.close();
        const got = await query(tgt.url, 'SELECT count(*), sum(bytes) FROM bench');
        const ok = accepted === rows && answerHash(got) === hash;
        ceiling.set(mode, rows / seconds);
        results.push({ name: `${target} alone (${mode}): pre-rendered NDJSON bodies`, rowsPerSecond: rows / seconds, mbPerSecond: ndjsonBytes / 1e6 / seconds, rssPeakBytes: null, cpuSeconds: null, hash: answerHash(got), ok });
        log(`baseline ${target} alone (${mode}): ${Math.round(rows / seconds)} rows/s`);
      } finally {
        await tgt.stop();
        fs.rmSync(targetDir, { recursive: true, force: true });
      }
    }
    for (const format of formats) {
      const sink = await nullServer();
      try {
        const r = await runLoader(files[format]!.file, sink.url, 'bench', loaderArgs);
        results.push({ name: `loader alone: ${format} -> null server`, rowsPerSecond: r.rowsPerSecond, mbPerSecond: files[format]!.bytes / 1e6 / r.seconds, rssPeakBytes: r.rssPeakBytes, cpuSeconds: r.cpuSeconds, hash: null, ok: r.rowsAccepted === rows });
        log(`baseline loader alone (${format}): ${r.rowsPerSecond} rows/s, peak RSS ${formatBytes(r.rssPeakBytes ?? 0)}`);
      } finally {
        await sink.close();
      }
    }

    // ---- the measured runs ----
    for (const format of formats) {
      for (const mode of modes) {
        const targetDir = path.join(dir, `run-${format}-${mode}`);
        const tgt = await startTarget(target, mode, targetDir);
        try {
          const r = await runLoader(files[format]!.file, tgt.url, 'bench', [...loaderArgs, ...files[format]!.args]);
          const got = await query(tgt.url, 'SELECT count(*), sum(bytes) FROM bench');
          const ok = r.rowsAccepted === rows && r.rowsRejected === 0 && answerHash(got) === hash;
          results.push({ name: `shoal load ${format} -> ${target} (${mode})`, rowsPerSecond: r.rowsPerSecond, mbPerSecond: files[format]!.bytes / 1e6 / r.seconds, rssPeakBytes: r.rssPeakBytes, cpuSeconds: r.cpuSeconds, hash: answerHash(got), ok });
          log(`shoal load ${format} -> ${target} (${mode}): ${r.rowsPerSecond} rows/s, peak RSS ${formatBytes(r.rssPeakBytes ?? 0)}, ${r.seconds} s (wall ${round2(r.wallSeconds)} s)${ok ? '' : ' CHECK FAILED ' + JSON.stringify(got)}`);
        } finally {
          await tgt.stop();
          fs.rmSync(targetDir, { recursive: true, force: true });
        }
      }
    }

    const table = formatTable(['case', 'rows/s', 'MB/s', 'loader peak RSS', 'loader CPU s', `vs ${target} alone`, 'check'], results.map((r) => {
      const mode = /\((disk|memory)\)/.exec(r.name)?.[1];
      const base = mode !== undefined && r.name.startsWith('shoal load') ? ceiling.get(mode) : undefined;
      return [r.name, Math.round(r.rowsPerSecond).toLocaleString('en-US'), r.mbPerSecond.toFixed(1), r.rssPeakBytes === null ? '-' : formatBytes(r.rssPeakBytes),
        r.cpuSeconds === null ? '-' : r.cpuSeconds.toFixed(1), base === undefined ? '-' : `${(r.rowsPerSecond / base).toFixed(2)}x`, r.ok ? 'ok' : 'MISMATCH'];
    }));
    const summary = `${rows.toLocaleString('en-US')} rows; NDJSON ${formatBytes(ndjsonBytes)}${files.parquet ? `, Parquet ${formatBytes(files.parquet.bytes)}` : ''}; answer hash ${hash} (count, sum(bytes)); 1-minute load average ${machine.loadAvg1m} before, ${round2(os.loadavg()[0]!)} after`;
    if (json) process.stdout.write(JSON.stringify({ machine, rows, ndjsonBytes, parquetBytes: files.parquet?.bytes ?? null, target, results, hash }) + '\n');
    else log(`\n${table}\n${summary}`);

    if (!flags.has('no-append')) {
      const command = ['node dist/bench/load.js', ...process.argv.slice(2)].join(' ');
      let doc = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
      if (!doc.includes(SECTION)) doc = doc.replace(/\n*$/, '\n\n') + `${SECTION}\n\n(bench/load.ts; see docs/loader.md.)\n`;
      const entry = `\n### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}\n\n` +
        `\`${command}\`\n\n\`\`\`\n${table}\n\`\`\`\n\n${summary}.\n`;
      const at = doc.indexOf(SECTION);
      const next = doc.indexOf('\n## ', at + SECTION.length);
      doc = next < 0 ? doc.replace(/\n*$/, '\n') + entry : doc.slice(0, next) + entry + doc.slice(next);
      fs.writeFileSync(RESULTS, doc);
      log(`appended to ${path.relative(process.cwd(), RESULTS)}`);
    }
    if (results.some((r) => !r.ok)) process.exitCode = 1;
  } finally {
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/load: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
