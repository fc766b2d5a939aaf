/**
 * Ingest rate of one shoal leaf over HTTP, with this script as the load generator in a separate
 * process from the leaf (a child process).
 *
 *   node dist/bench/ingest.js [--events 2000000] [--wide-events 500000] [--shapes scuba,wide]
 *     [--batch 1000,10000] [--formats ndjson,json] [--modes disk,memory] [--connections 4]
 *     [--warmup-events 100000] [--seed 42] [--json] [--leaf-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *     [--query-runs 0] [--query-rate 10]
 *
 * For each event shape (`scuba`: data.ts's 9-field rows, ~173 B; `wide`: data-wide.ts's 26-field
 * events, ~640 B), body format (NDJSON, JSON array) and batch size, the bodies are rendered
 * before any timing (seeded); then for each mode a fresh leaf is started (`disk`:
 * the default disk log, fsync every 200 ms, checkpoints included; `memory`: --no-disk-log; both
 * --no-shm), sent --warmup-events untimed, then the --events timed over --connections keep-alive
 * connections, each sending its next body as soon as the previous one is acknowledged.
 *
 * Reported per case: events/s and MB/s of request bodies, and memory/disk (the price of the disk
 * log). Baseline in the same run: JSON.parse alone of the same bodies in this process (one
 * thread, no HTTP, no storage), the floor of what decoding costs on one thread. The stage
 * breakdown comes from the leaf's own counters (`GET /v1/status` `ingest.stageMs`, read before
 * and after the timed part), in microseconds per event: scan (the fast byte-level decoder,
 * query/storage/ingest-scan.ts), or, for bodies it declines, parse (UTF-8 check, JSON.parse) and
 * build (validation, columns, per-batch dictionaries), on the ingest threads; hop (waiting for a thread,
 * moving body and batch: wall time, not CPU), check, log and append on the event loop; `other` is
 * the leaf's CPU per event less the others (HTTP, GC, the rest). Each case checks its answer: the leaf must hold
 * every row, and `count(*), sum(bytes)` must equal what was sent (hash printed).
 *
 * Queries under ingest (`--query-runs N`, scuba cases; issue 15 "ingest does not starve
 * queries"): after its check, the case's leaf (holding the warm-up + timed events) answers a
 * group-by (`SELECT service, count(*), avg(latency_ms) FROM bench GROUP BY service`) N times
 * idle, --query-rate a second (a dashboard's pace; one at a time, on a connection of its own,
 * the next one due 1/rate after the previous was sent, or at once if that is past); then the
 * timed bodies are sent again, at the ceiling over --connections, into another table (so the
 * queried table keeps its size) while the same query runs at the same pace; then N more idle
 * runs. Reported: p50/p99 idle (both
 * idle sets together), p50/p99 under ingest with the count of runs, their ratio (goal: p99
 * within 2x of idle), and the ingest rate meanwhile.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTENT_TYPE, generateColumns, renderBodies, sumBytes, type BodyFormat } from './data.js';
import { renderWideBodies } from './data-wide.js';
import {
  answerHash, formatTable, getJson, intFlag, machineInfo, newPool, parseFlags, postJson, processCpuMs, round2, sendBatches, startLeaf, tableInfo,
  warnIfBusy, type LeafProcess,
} from './support.js';

const TABLE = 'bench';
const EVENTS_MAX = 50_000_000;
/** query/limits.ts eventsPerBatchMax. */
const BATCH_MAX = 100_000;
const CONNECTIONS_MAX = 64;
/** Events parsed by the JSON.parse baseline: enough for a stable rate, cheap to run. */
const BASELINE_EVENTS_MAX = 500_000;
const TARGET_EVENTS_PER_S = 500_000;
/** Issue 15: wide events at this share of the JSON.parse-alone rate, at least. */
const TARGET_WIDE_VS_PARSE = 0.6;

type Mode = 'disk' | 'memory';
type Shape = 'scuba' | 'wide';

interface Options {
  events: number; wideEvents: number; shapes: Shape[]; batches: number[]; formats: BodyFormat[]; modes: Mode[]; connections: number;
  warmupEvents: number; seed: number; json: boolean; leafNodeArgs: string[]; queryRuns: number; queryRate: number;
}

/** Issue 15: a group-by's p99 while ingesting at the ceiling, at most this times its idle p99. */
const TARGET_QUERY_P99_RATIO = 2;
const QUERY_UNDER_INGEST_SQL = `SELECT service, count(*), avg(latency_ms) FROM ${TABLE} GROUP BY service`;

/** The leaf's ingest stage counters (GET /v1/status `ingest`). */
interface IngestCounters { rows: number; workers: number; stageMs: Record<Stage, number> }
const STAGES = ['yield', 'scan', 'parse', 'build', 'hop', 'check', 'log', 'append'] as const;
/** Stages that are wall time spent waiting, not CPU. */
const WAIT_STAGES: ReadonlySet<Stage> = new Set(['yield', 'hop']);
type Stage = typeof STAGES[number];

function listFlag<T extends string>(raw: string | true | undefined, fallback: T[], allowed: readonly T[], name: string): T[] {
  if (raw === undefined) return fallback;
  const items = String(raw).split(',').map((s) => s.trim());
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`--${name}: "${i}" is not one of ${allowed.join(', ')}`);
  return items as T[];
}

function parseOptions(argv: string[]): Options {
  const flags = parseFlags(argv, [
    { name: 'events', value: true, help: 'timed events per scuba case (default 2,000,000)' },
    { name: 'wide-events', value: true, help: 'timed events per wide case (default 500,000)' },
    { name: 'shapes', value: true, help: 'scuba (9 fields), wide (26 fields); default both' },
    { name: 'batch', value: true, help: 'events per request, comma-separated (default 1000,10000)' },
    { name: 'formats', value: true, help: 'ndjson,json (default both)' },
    { name: 'modes', value: true, help: 'disk (default disk log), memory (--no-disk-log); default both' },
    { name: 'connections', value: true, help: 'concurrent keep-alive connections (default 4)' },
    { name: 'warmup-events', value: true, help: 'untimed events sent first to each leaf (default 100,000)' },
    { name: 'seed', value: true, help: 'data seed (default 42)' },
    { name: 'leaf-node-args', value: true, help: 'node flags for the leaf' },
    { name: 'json', value: false, help: 'print machine-readable results' },
    { name: 'query-runs', value: true, help: 'idle runs of a group-by before and after a second ingest it runs under (scuba cases; default 0: off)' },
    { name: 'query-rate', value: true, help: 'queries per second in --query-runs (default 10)' },
  ]);
  const batchRaw = flags.get('batch');
  const batches = batchRaw === undefined ? [1_000, 10_000] : String(batchRaw).split(',').map((s) => {
    const v = Number(s.trim().replaceAll('_', ''));
    if (!Number.isSafeInteger(v) || v < 1 || v > BATCH_MAX) throw new Error(`--batch: "${s}" is not an integer from 1 to ${BATCH_MAX}`);
    return v;
  });
  const nodeArgs = flags.get('leaf-node-args');
  return {
    events: intFlag(flags, 'events', 2_000_000, 1_000, EVENTS_MAX),
    wideEvents: intFlag(flags, 'wide-events', 500_000, 1_000, EVENTS_MAX),
    shapes: listFlag(flags.get('shapes'), ['scuba', 'wide'], ['scuba', 'wide'] as const, 'shapes'),
    batches,
    formats: listFlag(flags.get('formats'), ['ndjson', 'json'], ['ndjson', 'json'] as const, 'formats'),
    modes: listFlag(flags.get('modes'), ['disk', 'memory'], ['disk', 'memory'] as const, 'modes'),
    connections: intFlag(flags, 'connections', 4, 1, CONNECTIONS_MAX),
    warmupEvents: intFlag(flags, 'warmup-events', 100_000, 0, EVENTS_MAX),
    seed: intFlag(flags, 'seed', 42, 0, 2 ** 32 - 1),
    leafNodeArgs: nodeArgs === undefined ? [] : String(nodeArgs).split(/\s+/).filter((s) => s.length > 0),
    json: flags.get('json') === true,
    queryRuns: intFlag(flags, 'query-runs', 0, 0, 10_000),
    queryRate: intFlag(flags, 'query-rate', 10, 1, 1_000),
  };
}

/** Events/s of decoding the bodies the way the leaf does (UTF-8 decode, split lines, JSON.parse). */
function parseBaseline(bodies: readonly Buffer[], format: BodyFormat, batch: number): number {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const use = bodies.slice(0, Math.max(1, Math.floor(BASELINE_EVENTS_MAX / batch)));
  let events = 0;
  const t0 = performance.now();
  for (const b of use) {
    const text = utf8.decode(b);
    if (format === 'json') { events += (JSON.parse(text) as unknown[]).length; continue; }
    let at = 0;
    while (at < text.length) {
      let nl = text.indexOf('\n', at);
      if (nl < 0) nl = text.length;
      if (nl > at) { JSON.parse(text.slice(at, nl)); events++; }
      at = nl + 1;
    }
  }
  return events / ((performance.now() - t0) / 1000);
}

interface CaseResult {
  shape: Shape; format: BodyFormat; batch: number; mode: Mode; events: number; ms: number; eventsPerS: number; mbPerS: number;
  bodyBytesPerEvent: number; dataDirBytes: number | null; ok: boolean; detail: string; hash: string;
  /** CPU time of the leaf process (all threads) during the timed part. */
  leafCpuMs: number | null;
  /** Events per second of leaf CPU time: the rate a leaf with a core to itself would reach. */
  eventsPerLeafCpuS: number | null;
  /** Microseconds per event of each ingest stage, and of the leaf's CPU outside them. */
  stageUs: Record<Stage | 'other', number> | null;
  ingestWorkers: number | null;
  /** --query-runs: the group-by's latency idle and under ingest (ms). */
  queries: QueriesUnderIngest | null;
}

interface QueriesUnderIngest {
  idleRuns: number; idleP50: number; idleP99: number; busyRuns: number; busyP50: number; busyP99: number; ingestEventsPerS: number;
  /** The same runs as the leaf timed them (its answer's stats.elapsedMs: from the route to the answer). */
  leafIdleP50: number; leafIdleP99: number; leafBusyP50: number; leafBusyP99: number;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The group-by idle, under a second ingest of `bodies` into another table, and idle again. */
async function queriesUnderIngest(url: string, pool: ReturnType<typeof newPool>, bodies: readonly Buffer[], format: BodyFormat, connections: number,
  runs: number, rate: number, events: number): Promise<QueriesUnderIngest> {
  const qpool = newPool(url, 1);
  const body = JSON.stringify({ sql: QUERY_UNDER_INGEST_SQL });
  let due = 0;
  /** The leaf's own elapsedMs of each run, by phase (idle, busy). */
  const leafMs: { idle: number[]; busy: number[] } = { idle: [], busy: [] };
  let phase: 'idle' | 'busy' = 'idle';
  const once = async (): Promise<number> => {
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    due = t0 + 1000 / rate;
    const r = await postJson(qpool, '/v1/query', body);
    if (r.status !== 200) throw new Error(`query under ingest: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    leafMs[phase].push((r.body as { stats: { elapsedMs: number } }).stats.elapsedMs);
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < 3; i++) await once();
    const idle: number[] = [];
    for (let i = 0; i < runs; i++) idle.push(await once());
    let done = false;
    phase = 'busy';
    const t0 = performance.now();
    const ingest = sendBatches(pool, `${TABLE}_load`, bodies, CONTENT_TYPE[format], connections).finally(() => { done = true; });
    const busy: number[] = [];
    while (!done) busy.push(await once());
    await ingest;
    const ingestMs = performance.now() - t0;
    phase = 'idle';
    for (let i = 0; i < runs; i++) idle.push(await once());
    idle.sort((a, b) => a - b);
    busy.sort((a, b) => a - b);
    leafMs.idle.sort((a, b) => a - b);
    leafMs.busy.sort((a, b) => a - b);
    return {
      leafIdleP50: round2(percentile(leafMs.idle, 0.5)), leafIdleP99: round2(percentile(leafMs.idle, 0.99)),
      leafBusyP50: round2(percentile(leafMs.busy, 0.5)), leafBusyP99: round2(percentile(leafMs.busy, 0.99)),
      idleRuns: idle.length, idleP50: round2(percentile(idle, 0.5)), idleP99: round2(percentile(idle, 0.99)),
      busyRuns: busy.length, busyP50: round2(percentile(busy, 0.5)), busyP99: round2(percentile(busy, 0.99)),
      ingestEventsPerS: Math.round(events / (ingestMs / 1000)),
    };
  } finally {
    await qpool.close();
  }
}

async function ingestCounters(pool: ReturnType<typeof newPool>): Promise<IngestCounters | null> {
  const r = await getJson(pool, '/v1/status');
  const ing = (r.body as { ingest?: IngestCounters }).ingest;
  return r.status === 200 && ing !== undefined ? ing : null;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

async function runCase(opt: Options, shape: Shape, format: BodyFormat, batch: number, mode: Mode, warm: Buffer[], timed: Buffer[],
  expected: { rows: number; bytesSum: number; timedRows: number }, tmp: string): Promise<CaseResult> {
  const dataDir = fs.mkdtempSync(path.join(tmp, `${shape}-${format}-${batch}-${mode}-`));
  const args = ['--no-shm', ...(mode === 'memory' ? ['--no-disk-log'] : [])];
  let leaf: LeafProcess | null = null;
  try {
    leaf = await startLeaf({ dataDir, args, nodeArgs: opt.leafNodeArgs });
    const pool = newPool(leaf.url, opt.connections);
    const warmAccepted = await sendBatches(pool, TABLE, warm, CONTENT_TYPE[format], opt.connections);
    const timedBytes = timed.reduce((s, b) => s + b.length, 0);
    const before = await ingestCounters(pool);
    const cpuStart = processCpuMs(leaf.pid);
    const t0 = performance.now();
    const accepted = await sendBatches(pool, TABLE, timed, CONTENT_TYPE[format], opt.connections);
    const ms = performance.now() - t0;
    const cpuEnd = processCpuMs(leaf.pid);
    const after = await ingestCounters(pool);
    const leafCpuMs = cpuStart === null || cpuEnd === null ? null : cpuEnd - cpuStart;
    const events = expected.timedRows;
    let stageUs: CaseResult['stageUs'] = null;
    if (before !== null && after !== null) {
      const us = {} as Record<Stage | 'other', number>;
      let sum = 0;
      for (const st of STAGES) {
        us[st] = round2((((after.stageMs[st] ?? 0) - (before.stageMs[st] ?? 0)) * 1000) / events);
        if (!WAIT_STAGES.has(st)) sum += us[st]; // wall time waiting, not CPU
      }
      us.other = leafCpuMs === null ? NaN : round2((leafCpuMs * 1000) / events - sum);
      stageUs = us;
    }
    const problems: string[] = [];
    if (accepted !== events) problems.push(`accepted ${accepted} of ${events} timed events`);
    const info = await tableInfo(pool, TABLE);
    if (info.rows !== expected.rows) problems.push(`leaf holds ${info.rows} rows, expected ${expected.rows}`);
    const q = await postJson(pool, '/v1/query', JSON.stringify({ sql: `SELECT count(*), sum(bytes) FROM ${TABLE}` }));
    const rows = (q.body as { rows: unknown[][] }).rows;
    if (q.status !== 200) problems.push(`query: HTTP ${q.status}`);
    else if (rows[0]![0] !== expected.rows || rows[0]![1] !== expected.bytesSum) {
      problems.push(`count(*), sum(bytes) = ${JSON.stringify(rows[0])}, expected [${expected.rows},${expected.bytesSum}]`);
    }
    const queries = opt.queryRuns > 0 && shape === 'scuba' && problems.length === 0
      ? await queriesUnderIngest(leaf.url, pool, timed, format, opt.connections, opt.queryRuns, opt.queryRate, events) : null;
    await pool.close();
    await leaf.stop();
    const dataDirBytes = mode === 'disk' ? dirBytes(dataDir) : null;
    return {
      shape, format, batch, mode, events, ms: Math.round(ms), eventsPerS: Math.round(events / (ms / 1000)),
      mbPerS: round2(timedBytes / 1e6 / (ms / 1000)), bodyBytesPerEvent: round2(timedBytes / events), dataDirBytes,
      leafCpuMs, eventsPerLeafCpuS: leafCpuMs === null || leafCpuMs === 0 ? null : Math.round(events / (leafCpuMs / 1000)),
      stageUs, ingestWorkers: after?.workers ?? null, queries,
      ok: problems.length === 0 && warmAccepted === expected.rows - events, detail: problems.join('; '), hash: answerHash(rows),
    };
  } finally {
    await leaf?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opt = parseOptions(process.argv.slice(2));
  const log = opt.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  const machine = machineInfo();
  log(`ingest bench: ${opt.events.toLocaleString('en-US')} timed events per scuba case, ${opt.wideEvents.toLocaleString('en-US')} per wide case, ` +
    `after ${opt.warmupEvents.toLocaleString('en-US')} warm-up, ${opt.connections} connections, seed ${opt.seed}`);
  log(`machine: ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}, load ${machine.loadAvg1m}`);
  warnIfBusy(log);
  const endSeconds = Math.floor(Date.now() / 1000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-ingest-'));
  const cases: CaseResult[] = [];
  const baselines: { shape: Shape; format: BodyFormat; batch: number; eventsPerS: number }[] = [];
  try {
    for (const shape of opt.shapes) {
      const timedRows = shape === 'wide' ? opt.wideEvents : opt.events;
      const totalRows = opt.warmupEvents + timedRows;
      const cols = shape === 'scuba' ? generateColumns(opt.seed, totalRows, endSeconds) : null;
      for (const format of opt.formats) {
        for (const batch of opt.batches) {
          let warm: Buffer[]; let timed: Buffer[]; let bytesSum: number;
          if (cols !== null) {
            warm = opt.warmupEvents > 0 ? renderBodies(cols, format, batch, 0, opt.warmupEvents) : [];
            timed = renderBodies(cols, format, batch, opt.warmupEvents, totalRows);
            bytesSum = sumBytes(cols);
          } else {
            const w = renderWideBodies(opt.seed, format, batch, totalRows, opt.warmupEvents, endSeconds);
            warm = w.warm.bodies; timed = w.timed.bodies; bytesSum = w.warm.bytesSum + w.timed.bytesSum;
          }
          const baseline = parseBaseline(timed, format, batch);
          baselines.push({ shape, format, batch, eventsPerS: Math.round(baseline) });
          for (const mode of opt.modes) {
            const r = await runCase(opt, shape, format, batch, mode, warm, timed, { rows: totalRows, bytesSum, timedRows }, tmp);
            cases.push(r);
            log(`  ${shape.padEnd(5)} ${format.padEnd(6)} batch ${String(batch).padStart(6)} ${mode.padEnd(6)}: ${r.eventsPerS.toLocaleString('en-US').padStart(10)} events/s ` +
              `${r.mbPerS.toFixed(1).padStart(7)} MB/s  (JSON.parse alone ${Math.round(baseline).toLocaleString('en-US')} events/s)  ${r.ok ? 'ok' : 'FAILED ' + r.detail}`);
          }
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const machineEnd = machineInfo();
  const out = {
    bench: 'ingest', date: new Date().toISOString(), seed: opt.seed, events: opt.events, wideEvents: opt.wideEvents, warmupEvents: opt.warmupEvents,
    connections: opt.connections, machine, loadAvg1mAtEnd: machineEnd.loadAvg1m, targetEventsPerS: TARGET_EVENTS_PER_S,
    baselines, cases, ok: cases.every((c) => c.ok),
  };
  if (opt.json) console.log(JSON.stringify(out, null, 2));
  else printText(opt, out.cases, baselines, machineEnd.loadAvg1m);
  if (!out.ok) process.exitCode = 1;
}

function printText(opt: Options, cases: CaseResult[], baselines: { shape: Shape; format: BodyFormat; batch: number; eventsPerS: number }[], loadAtEnd: number): void {
  const fmt = (x: number) => x.toLocaleString('en-US');
  const baseOf = (c: CaseResult) => baselines.find((b) => b.shape === c.shape && b.format === c.format && b.batch === c.batch)!;
  const rows = cases.map((c) => {
    const other = cases.find((o) => o.shape === c.shape && o.format === c.format && o.batch === c.batch && o.mode === 'disk');
    const base = baseOf(c);
    return [
      `${c.shape} ${c.format} x ${fmt(c.batch)}`, c.mode === 'disk' ? 'disk log' : 'no disk log', fmt(c.eventsPerS), c.mbPerS.toFixed(1),
      c.eventsPerLeafCpuS === null ? '' : fmt(c.eventsPerLeafCpuS), c.leafCpuMs === null ? '' : `${Math.round((100 * c.leafCpuMs) / c.ms)}%`,
      c.mode === 'memory' && other !== undefined ? (c.eventsPerS / other.eventsPerS).toFixed(2) : '',
      (c.eventsPerS / base.eventsPerS).toFixed(2), c.dataDirBytes === null ? '' : (c.dataDirBytes / 2 ** 20).toFixed(0),
      c.ok ? 'ok' : 'FAILED', c.hash,
    ];
  });
  console.log('');
  console.log(formatTable(['case', 'leaf', 'events/s', 'MB/s', 'per cpu-s', 'leaf cpu', 'vs disk', 'vs parse', 'disk MiB', 'check', 'hash'], rows));
  console.log('per cpu-s = events per second of leaf CPU time (all threads); leaf cpu = leaf CPU time / wall time (100% = one core busy).');
  console.log('vs disk = no-disk-log events/s / disk-log events/s; vs parse = events/s / JSON.parse alone of the same bodies (this process, 1 thread).');
  console.log('');
  const stageRows = cases.filter((c) => c.stageUs !== null).map((c) => [
    `${c.shape} ${c.format} x ${fmt(c.batch)}`, c.mode === 'disk' ? 'disk log' : 'no disk log', String(c.ingestWorkers ?? ''),
    ...STAGES.map((st) => c.stageUs![st].toFixed(2)), Number.isNaN(c.stageUs!.other) ? '' : c.stageUs!.other.toFixed(2),
    c.leafCpuMs === null ? '' : ((c.leafCpuMs * 1000) / c.events).toFixed(2),
  ]);
  console.log(formatTable(['case', 'leaf', 'threads', ...STAGES, 'other', 'cpu'], stageRows));
  console.log('us per event: yield = wall time waiting for queries to end (server/leaf/query-first.ts); parse and build on the ingest threads (or the event loop for small bodies), hop = wall time waiting for and moving to a thread,');
  console.log('check, log and append on the event loop; other = leaf CPU per event less the stages but hop (HTTP, GC, ...); cpu = leaf CPU per event.');
  const disk = cases.filter((c) => c.mode === 'disk');
  const scuba = disk.filter((c) => c.shape === 'scuba');
  const wide = disk.filter((c) => c.shape === 'wide');
  if (scuba.length > 0) console.log(`goal: >= ${fmt(TARGET_EVENTS_PER_S)} events/s with the disk log; worst scuba case ${fmt(Math.min(...scuba.map((c) => c.eventsPerS)))}, best ${fmt(Math.max(...scuba.map((c) => c.eventsPerS)))}.`);
  if (wide.length > 0) console.log(`goal: wide events >= ${TARGET_WIDE_VS_PARSE}x JSON.parse alone with the disk log; worst ${Math.min(...wide.map((c) => c.eventsPerS / baseOf(c).eventsPerS)).toFixed(2)}x, best ${Math.max(...wide.map((c) => c.eventsPerS / baseOf(c).eventsPerS)).toFixed(2)}x.`);
  const withQueries = cases.filter((c) => c.queries !== null);
  if (withQueries.length > 0) {
    console.log('');
    console.log(formatTable(['case', 'leaf', 'idle p50 ms', 'idle p99 ms', 'under ingest p50 ms', 'p99 ms', 'runs idle / busy', 'p99 ratio', 'leaf-timed idle p50 / p99', 'under ingest p50 / p99', 'ingest events/s meanwhile'], withQueries.map((c) => {
      const q = c.queries!;
      return [`${c.shape} ${c.format} x ${fmt(c.batch)}`, c.mode === 'disk' ? 'disk log' : 'no disk log', q.idleP50.toFixed(1), q.idleP99.toFixed(1),
        q.busyP50.toFixed(1), q.busyP99.toFixed(1), `${q.idleRuns} / ${q.busyRuns}`, (q.busyP99 / q.idleP99).toFixed(2),
        `${q.leafIdleP50.toFixed(1)} / ${q.leafIdleP99.toFixed(1)}`, `${q.leafBusyP50.toFixed(1)} / ${q.leafBusyP99.toFixed(1)}`, fmt(q.ingestEventsPerS)];
    })));
    console.log(`query: ${QUERY_UNDER_INGEST_SQL}, over the case's ${fmt(withQueries[0]!.events)} timed + warm-up events, ${opt.queryRate} a second on its own connection;`);
    console.log('under ingest = while the timed bodies are sent again (into another table) at the ceiling; idle = before and after that.');
    const worst = Math.max(...withQueries.map((c) => c.queries!.busyP99 / c.queries!.idleP99));
    console.log(`goal: query p99 under ingest <= ${TARGET_QUERY_P99_RATIO}x idle; worst ${worst.toFixed(2)}x.`);
  }
  console.log(`load average at the end: ${loadAtEnd}`);
  for (const c of cases.filter((x) => !x.ok)) console.log(`FAILED ${c.shape} ${c.format} x ${c.batch} ${c.mode}: ${c.detail}`);
}

main().catch((e) => {
  console.error(`bench/ingest: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exit(2);
});
