/**
 * Scan speed of one shoal leaf against DuckDB, same rows, same thread count, same run.
 *
 *   node dist/bench/scan.js [--shape scuba|web] [--rows 10000000] [--threads 2] [--repeats 5] [--seed 42] [--json]
 *     [--load-batch 50000] [--load-connections 3] [--now UNIX_SECONDS] [--only id,id]
 *     [--leaf-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * 1. Generates --rows seeded Scuba-style rows (data.ts), ending at --now (default: now).
 * 2. Starts a real leaf (`--no-disk-log --no-shm --workers T`) and loads the rows as NDJSON
 *    batches over HTTP on a few keep-alive connections (that is also an ingest measurement).
 * 3. Loads the same rows into an in-process DuckDB (@duckdb/node-api, `SET threads = T`, `time`
 *    as TIMESTAMP) from a temp CSV with read_csv, the fastest of the loaders tried.
 * 4. Runs each query on both: one warm-up, then the median of --repeats runs. shoal's time is the
 *    client's wall time of POST /v1/query on a keep-alive connection (the server's own
 *    stats.elapsedMs is reported next to it); DuckDB's is runAndReadAll + reading the rows.
 *    ratio = DuckDB ms / shoal ms, so >= 1.0 means shoal is at least as fast.
 * 5. Checks the answers: exact ones must be equal on both engines (floats to 1e-9); approximate
 *    ones (HyperLogLog, quantile sketches) are checked against an exact DuckDB reference query
 *    within their stated error. Prints a hash of every answer.
 *
 * `now()`: DuckDB's now() is the start of the transaction, so every DuckDB query runs in one
 * transaction, and shoal is sent that same instant as the request's `nowSeconds`; the time range
 * query then selects the very same rows on both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DuckDBDecimalValue, DuckDBInstance, DuckDBListValue, DuckDBTimestampTZValue, DuckDBTimestampValue, type DuckDBConnection,
} from '@duckdb/node-api';
import { CSV_COLUMNS, CSV_EMPTY_SET, CONTENT_TYPE, generateColumns, renderBodies, writeCsv, type DataShape } from './data.js';
import {
  answerHash, formatBytes, formatTable, getJson, intFlag, machineInfo, median, newPool, parseFlags, postJson, processCpuMs, processMemory,
  round2, round3, sendBatches, startLeaf, tableInfo, warnIfBusy, type LeafProcess,
} from './support.js';

const TABLE = 'events';
/** Bounds on the flags (STYLE rule 11): a leaf's memory budget, not this script, is the real cap. */
const ROWS_MAX = 200_000_000;
const REPEATS_MAX = 50;
/** The leaf accepts at most 100,000 events per batch (query/limits.ts eventsPerBatchMax). */
const LOAD_BATCH_MAX = 100_000;
const LOAD_CONNECTIONS_MAX = 16;
/** Sent with each query: the leaf's ceiling (server/leaf/config.ts queryTimeoutMsMax). */
const QUERY_TIMEOUT_MS = 600_000;
/** Float answers of exact aggregates (avg) may differ in the last bits between engines. */
const FLOAT_REL_TOLERANCE = 1e-9;

/** How one answer column is checked against the reference. */
type ColumnCheck = 'exact' | { readonly rel: number; readonly why: string };

interface QuerySpec {
  readonly id: string;
  readonly what: string;
  readonly sql: string;
  /** DuckDB's text when it differs (the same answer, spelled the way DuckDB runs it best). */
  readonly duckdbSql?: string;
  /** Exact DuckDB query whose answer the approximate columns are checked against. */
  readonly reference?: string;
  /** Per answer column; absent = all exact. */
  readonly checks?: readonly ColumnCheck[];
}

/** 1%: DDSketch relative accuracy of shoal's approx_quantile (query/functions/quantile.ts), vs quantile_disc. */
const QUANTILE_CHECK: ColumnCheck = { rel: 0.01 * (1 + 1e-9), why: 'quantile sketch: 1% relative error vs quantile_disc' };
/** 3%: HyperLogLog p=14 has a 0.81% standard error (query/functions/hll.ts); 3% is ~3.7 sigma. */
const HLL_CHECK: ColumnCheck = { rel: 0.03, why: 'HyperLogLog: 0.81% standard error, checked at 3%' };

const QUERIES: readonly QuerySpec[] = [
  // SQL of issue 16 (docs/sql.md): conditional aggregates, date_trunc, windows after the merge,
  // exact quantiles.
  {
    id: 'error-rate', what: 'error rate per service: count_if / count(*), avg FILTER',
    sql: 'SELECT service, count_if(status >= 500) / count(*) AS rate, avg(latency_ms) FILTER (WHERE status >= 500) AS l FROM events GROUP BY service ORDER BY service',
  },
  {
    id: 'date-trunc', what: "date_trunc('hour') buckets with a CASE class",
    sql: "SELECT date_trunc('hour', time) AS h, CASE WHEN status >= 500 THEN 'error' ELSE 'ok' END AS class, count(*) AS c FROM events GROUP BY h, class ORDER BY h, class",
  },
  {
    id: 'top-per-group', what: 'top 3 endpoints per service: row_number() OVER ... QUALIFY',
    sql: 'SELECT service, endpoint, count(*) AS c, row_number() OVER (PARTITION BY service ORDER BY count(*) DESC, endpoint) AS rn FROM events GROUP BY service, endpoint QUALIFY rn <= 3 ORDER BY service, rn',
  },
  {
    id: 'share', what: 'share of total per country: count(*) / sum(count(*)) OVER ()',
    sql: 'SELECT country, count(*) / sum(count(*)) OVER () AS share FROM events GROUP BY country ORDER BY country',
  },
  {
    // Of the error rows: an exact quantile holds every value, at most 5,000,000 per query
    // (LIMITS.distinctValuesMax), so over all 10M rows it is refused (use approx_quantile).
    id: 'median-exact', what: 'exact median per service of the error rows (every value held)',
    sql: 'SELECT service, median(latency_ms) AS m, quantile_disc(latency_ms, 0.9) AS p90 FROM events WHERE status >= 500 GROUP BY service ORDER BY service',
  },
  {
    id: 'filter-count', what: 'filter + count',
    sql: "SELECT count(*) AS c FROM events WHERE status >= 500 AND service = 'api'",
  },
  {
    id: 'group-low', what: 'group by low-card string (5)',
    sql: 'SELECT service, count(*) AS c, avg(latency_ms) AS latency_ms_avg FROM events GROUP BY service ORDER BY service',
  },
  {
    id: 'group-high', what: 'group by high-card string (~100k), top 10',
    sql: 'SELECT user_id, count(*) AS c FROM events GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10',
  },
  {
    id: 'time-bucket', what: 'time_bucket 1 hour over 7 days',
    sql: "SELECT time_bucket(INTERVAL '1 hour', time) AS hour, count(*) AS c, sum(bytes) AS bytes FROM events GROUP BY hour ORDER BY hour",
  },
  {
    id: 'quantiles', what: 'p50/p99 latency by service',
    sql: 'SELECT service, approx_quantile(latency_ms, 0.5) AS p50, approx_quantile(latency_ms, 0.99) AS p99 FROM events GROUP BY service ORDER BY service',
    reference: 'SELECT service, quantile_disc(latency_ms, 0.5), quantile_disc(latency_ms, 0.99) FROM events GROUP BY service ORDER BY service',
    checks: ['exact', QUANTILE_CHECK, QUANTILE_CHECK],
  },
  {
    id: 'approx-distinct', what: 'approx_count_distinct(user_id)',
    sql: 'SELECT approx_count_distinct(user_id) AS users FROM events',
    reference: 'SELECT count(DISTINCT user_id) FROM events',
    checks: [HLL_CHECK],
  },
  {
    id: 'count-distinct', what: 'count(DISTINCT user_id), exact',
    sql: 'SELECT count(DISTINCT user_id) AS users FROM events',
  },
  {
    id: 'like', what: "LIKE '%users%' filter + count",
    sql: "SELECT count(*) AS c FROM events WHERE endpoint LIKE '%users%'",
  },
  {
    id: 'time-range', what: 'last hour (time >= now() - 1h)',
    sql: "SELECT count(*) AS c, avg(latency_ms) AS latency_ms_avg FROM events WHERE time >= now() - INTERVAL '1 hour'",
  },
  {
    // DuckDB's now() is a TIMESTAMPTZ: against a TIMESTAMP column it casts the column row by row
    // and cannot prune by min/max. Casting now() instead is how a DuckDB user would write it.
    id: 'time-range-cast', what: 'last hour, DuckDB spelled CAST(now() AS TIMESTAMP)',
    sql: "SELECT count(*) AS c, avg(latency_ms) AS latency_ms_avg FROM events WHERE time >= now() - INTERVAL '1 hour'",
    duckdbSql: "SELECT count(*) AS c, avg(latency_ms) AS latency_ms_avg FROM events WHERE time >= CAST(now() AS TIMESTAMP) - INTERVAL '1 hour'",
  },
  {
    id: 'set-contains', what: "string set: list_contains(tags, 'mobile')",
    sql: "SELECT count(*) AS c FROM events WHERE list_contains(tags, 'mobile')",
  },
];

/**
 * The `web` shape (data.ts): 200,000 URLs (Zipf 1.1) in `endpoint`, 1,000,000 users. Scuba's
 * everyday questions on high-cardinality columns, written before any tuning to them: top pages,
 * distinct users, multi-key top-n, a time-pruned high-cardinality group-by, a multi-predicate
 * filter, per-group approximate distinct, and a top-n on an exact integer sum.
 */
const WEB_QUERIES: readonly QuerySpec[] = [
  {
    id: 'web-top-urls', what: 'top 10 URLs by count (200k URLs)',
    sql: 'SELECT endpoint AS url, count(*) AS c FROM events GROUP BY url ORDER BY c DESC, url LIMIT 10',
  },
  {
    id: 'web-distinct-users', what: 'count(DISTINCT user_id), 1M users, exact',
    sql: 'SELECT count(DISTINCT user_id) AS users FROM events',
  },
  {
    id: 'web-url-country', what: 'top 10 (URL, country) by count, with avg latency',
    sql: 'SELECT endpoint AS url, country, count(*) AS c, avg(latency_ms) AS l FROM events GROUP BY url, country ORDER BY c DESC, url, country LIMIT 10',
  },
  {
    id: 'web-6h-urls', what: 'last 6 hours, top 10 URLs (pruned by time)',
    sql: "SELECT endpoint AS url, count(*) AS c FROM events WHERE time >= now() - INTERVAL '6 hours' GROUP BY url ORDER BY c DESC, url LIMIT 10",
    duckdbSql: "SELECT endpoint AS url, count(*) AS c FROM events WHERE time >= CAST(now() AS TIMESTAMP) - INTERVAL '6 hours' GROUP BY url ORDER BY c DESC, url LIMIT 10",
  },
  {
    id: 'web-3-predicates', what: 'status >= 500 AND country IN (3) AND latency_ms > 100',
    sql: "SELECT count(*) AS c, avg(latency_ms) AS l FROM events WHERE status >= 500 AND country IN ('US', 'DE', 'JP') AND latency_ms > 100",
  },
  {
    id: 'web-users-by-country', what: 'approx_count_distinct(user_id) by country',
    sql: 'SELECT country, approx_count_distinct(user_id) AS users FROM events GROUP BY country ORDER BY country',
    reference: 'SELECT country, count(DISTINCT user_id) FROM events GROUP BY country ORDER BY country',
    checks: ['exact', HLL_CHECK],
  },
  {
    id: 'web-top-users-bytes', what: 'top 10 users by sum(bytes) (1M users)',
    sql: 'SELECT user_id, sum(bytes) AS b, count(*) AS c FROM events GROUP BY user_id ORDER BY b DESC, user_id LIMIT 10',
  },
];

interface Options {
  shape: DataShape;
  rows: number; threads: number; repeats: number; seed: number; json: boolean;
  loadBatch: number; loadConnections: number; nowSeconds: number; only: Set<string> | null; leafNodeArgs: string[];
}

const queriesOf = (shape: DataShape) => (shape === 'web' ? WEB_QUERIES : QUERIES);

function parseOptions(argv: string[]): Options {
  const flags = parseFlags(argv, [
    { name: 'shape', value: true, help: 'data and queries: scuba (default) or web (200k URLs, 1M users; data.ts)' },
    { name: 'rows', value: true, help: 'rows to generate (default 10,000,000)' },
    { name: 'threads', value: true, help: 'leaf --workers and DuckDB threads (default 2)' },
    { name: 'repeats', value: true, help: 'timed runs per query after one warm-up; the median is reported (default 5)' },
    { name: 'seed', value: true, help: 'data seed (default 42)' },
    { name: 'load-batch', value: true, help: 'rows per NDJSON ingest request (default 50,000)' },
    { name: 'load-connections', value: true, help: 'concurrent ingest connections (default 3)' },
    { name: 'now', value: true, help: 'unix seconds the data ends at (default: now)' },
    { name: 'only', value: true, help: 'comma-separated query ids to run' },
    { name: 'leaf-node-args', value: true, help: 'node flags for the leaf, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"' },
    { name: 'json', value: false, help: 'print machine-readable results' },
  ]);
  const shape = String(flags.get('shape') ?? 'scuba');
  if (shape !== 'scuba' && shape !== 'web') throw new Error(`--shape: scuba or web, got "${shape}"`);
  const only = flags.get('only');
  const ids = new Set(queriesOf(shape).map((q) => q.id));
  const onlySet = only === undefined ? null : new Set(String(only).split(',').map((s) => s.trim()));
  for (const id of onlySet ?? []) if (!ids.has(id)) throw new Error(`--only: unknown query "${id}" (known: ${[...ids].join(', ')})`);
  const nodeArgs = flags.get('leaf-node-args');
  return {
    shape,
    rows: intFlag(flags, 'rows', 10_000_000, 1_000, ROWS_MAX),
    threads: intFlag(flags, 'threads', 2, 1, 64),
    repeats: intFlag(flags, 'repeats', 5, 1, REPEATS_MAX),
    seed: intFlag(flags, 'seed', 42, 0, 2 ** 32 - 1),
    loadBatch: intFlag(flags, 'load-batch', 50_000, 1, LOAD_BATCH_MAX),
    loadConnections: intFlag(flags, 'load-connections', 3, 1, LOAD_CONNECTIONS_MAX),
    nowSeconds: intFlag(flags, 'now', Math.floor(Date.now() / 1000), 1_000_000_000, 4_000_000_000),
    only: onlySet,
    leafNodeArgs: nodeArgs === undefined ? [] : String(nodeArgs).split(/\s+/).filter((s) => s.length > 0),
    json: flags.get('json') === true,
  };
}

// ---- DuckDB ----

/** A DuckDB value as JSON would carry it (shoal's shape): bigints as numbers, time as unix seconds. */
function duckValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'object') return v;
  if (v instanceof DuckDBTimestampValue || v instanceof DuckDBTimestampTZValue) return Number(v.micros) / 1e6;
  if (v instanceof DuckDBDecimalValue) return v.toDouble();
  if (v instanceof DuckDBListValue) return v.items.map(duckValue);
  return String(v);
}

async function duckRows(conn: DuckDBConnection, sql: string): Promise<unknown[][]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRows().map((r) => r.map(duckValue));
}

async function loadDuckDb(conn: DuckDBConnection, csvFile: string): Promise<void> {
  const types: Record<(typeof CSV_COLUMNS)[number], string> = {
    time: 'BIGINT', service: 'VARCHAR', endpoint: 'VARCHAR', user_id: 'VARCHAR', country: 'VARCHAR',
    status: 'BIGINT', latency_ms: 'DOUBLE', bytes: 'BIGINT', tags: 'VARCHAR',
  };
  const spec = CSV_COLUMNS.map((c) => `'${c}': '${types[c]}'`).join(', ');
  await conn.run(
    `CREATE TABLE ${TABLE} AS SELECT make_timestamp(time * 1000000) AS time, service, endpoint, user_id, country, status, latency_ms, bytes, ` +
      `CASE WHEN tags IS NULL THEN NULL WHEN tags = '${CSV_EMPTY_SET}' THEN []::VARCHAR[] ELSE string_split(tags, '|') END AS tags ` +
      `FROM read_csv('${csvFile.replaceAll("'", "''")}', header = true, delim = ',', quote = '', escape = '', columns = {${spec}})`,
  );
}

// ---- checking answers ----

interface CheckResult { ok: boolean; detail: string; shoalRelErrMax: number | null; duckdbRelErrMax: number | null }

function relErr(a: number, b: number): number {
  return a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), Number.MIN_VALUE);
}

/**
 * Compares shoal's answer with DuckDB's: with the reference answer for approximate columns
 * (each engine's own error against it is reported), with DuckDB's answer for the others.
 */
function checkAnswer(spec: QuerySpec, shoal: unknown[][], duck: unknown[][], reference: unknown[][] | null): CheckResult {
  const problems: string[] = [];
  let shoalErr: number | null = null;
  let duckErr: number | null = null;
  if (shoal.length !== duck.length) problems.push(`${shoal.length} rows from shoal, ${duck.length} from DuckDB`);
  if (reference !== null && reference.length !== shoal.length) problems.push(`${shoal.length} rows from shoal, ${reference.length} in the reference`);
  const rowCount = Math.min(shoal.length, duck.length, reference?.length ?? Infinity);
  for (let r = 0; r < rowCount && problems.length < 5; r++) {
    const width = shoal[r]!.length;
    if (width !== duck[r]!.length) { problems.push(`row ${r}: ${width} columns from shoal, ${duck[r]!.length} from DuckDB`); continue; }
    for (let c = 0; c < width; c++) {
      const check = spec.checks?.[c] ?? 'exact';
      const s = shoal[r]![c];
      const d = duck[r]![c];
      if (check === 'exact') {
        const same = s === d || (typeof s === 'number' && typeof d === 'number' && relErr(s, d) <= FLOAT_REL_TOLERANCE);
        if (!same) problems.push(`row ${r} column ${c}: shoal ${JSON.stringify(s)}, DuckDB ${JSON.stringify(d)}`);
        continue;
      }
      const x = reference![r]![c];
      if (typeof s !== 'number' || typeof x !== 'number' || typeof d !== 'number') {
        problems.push(`row ${r} column ${c}: non-numeric approximate value (${JSON.stringify(s)}, ${JSON.stringify(d)}, ${JSON.stringify(x)})`);
        continue;
      }
      const e = relErr(s, x);
      shoalErr = Math.max(shoalErr ?? 0, e);
      duckErr = Math.max(duckErr ?? 0, relErr(d, x));
      if (e > check.rel) problems.push(`row ${r} column ${c}: shoal ${s} vs exact ${x}: relative error ${e.toExponential(2)} > ${check.rel} (${check.why})`);
    }
  }
  return { ok: problems.length === 0, detail: problems.join('; '), shoalRelErrMax: shoalErr, duckdbRelErrMax: duckErr };
}

// ---- the run ----

interface QueryResult {
  id: string;
  what: string;
  sql: string;
  duckdbSql: string;
  shoalMs: number;
  shoalMsMin: number;
  shoalServerMs: number;
  duckdbMs: number;
  duckdbMsMin: number;
  /** DuckDB ms / shoal ms (medians): >= 1 means shoal is at least as fast. */
  ratio: number;
  /** CPU time per run (mean over the timed runs): the leaf process (all threads), this process for DuckDB. */
  shoalCpuMs: number | null;
  duckdbCpuMs: number;
  /** DuckDB CPU ms / shoal CPU ms: steadier than the wall-time ratio on a busy machine. */
  cpuRatio: number | null;
  rowsMatched: number;
  /** Wait for the background code maps after the warm-up run (ms). */
  mapWaitMs: number;
  ok: boolean;
  detail: string;
  shoalRelErrMax: number | null;
  duckdbRelErrMax: number | null;
  shoalHash: string;
  duckdbHash: string;
  answerRows: number;
}

interface ShoalAnswer { rows: unknown[][]; stats: { elapsedMs: number; rowsMatched: number } }

/**
 * Waits (at most 120 s) until the leaf's background code mapper has made the maps the warm-up
 * run asked for (docs/engine.md, "Leaf codes"): the timed runs are warm, and what mapping cost
 * is reported on its own (the `leaf codes:` line, and `mapWaitMs` per query in --json).
 */
let mapWaitMs = 0;
async function mapperSettled(pool: ReturnType<typeof newPool>): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < 2400; i++) {
    const s = (await getJson(pool, '/v1/status')).body as { leafCodes?: { mapping: boolean } };
    if (s.leafCodes === undefined || !s.leafCodes.mapping) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  mapWaitMs = performance.now() - t0;
}

async function timeShoal(pool: ReturnType<typeof newPool>, pid: number, sql: string, nowSeconds: number, repeats: number) {
  // The leaf's default timeout (30 s) is for interactive use; a slow query here is a figure, not an error.
  const body = JSON.stringify({ sql, nowSeconds, timeoutMs: QUERY_TIMEOUT_MS });
  const wall: number[] = [];
  const server: number[] = [];
  let answer: ShoalAnswer | null = null;
  let cpuStart: number | null = null;
  for (let i = 0; i <= repeats; i++) {
    if (i === 1) { await mapperSettled(pool); cpuStart = processCpuMs(pid); }
    const t0 = performance.now();
    const r = await postJson(pool, '/v1/query', body);
    const ms = performance.now() - t0;
    if (r.status !== 200) throw new Error(`shoal: HTTP ${r.status} for ${sql}: ${JSON.stringify(r.body)}`);
    answer = r.body as ShoalAnswer;
    if (i === 0) continue; // warm-up
    wall.push(ms);
    server.push(answer.stats.elapsedMs);
  }
  const cpuEnd = processCpuMs(pid);
  const cpuMs = cpuStart === null || cpuEnd === null ? null : (cpuEnd - cpuStart) / repeats;
  return { wall, server, cpuMs, answer: answer! };
}

async function timeDuckDb(conn: DuckDBConnection, sql: string, repeats: number) {
  const wall: number[] = [];
  let rows: unknown[][] = [];
  let cpuStart = process.cpuUsage();
  for (let i = 0; i <= repeats; i++) {
    if (i === 1) cpuStart = process.cpuUsage();
    const t0 = performance.now();
    rows = await duckRows(conn, sql);
    const ms = performance.now() - t0;
    if (i > 0) wall.push(ms);
  }
  const cpu = process.cpuUsage(cpuStart);
  return { wall, rows, cpuMs: (cpu.user + cpu.system) / 1000 / repeats };
}

async function main(): Promise<void> {
  const opt = parseOptions(process.argv.slice(2));
  const log = opt.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  const machine = machineInfo();
  log(`scan bench: ${opt.rows.toLocaleString('en-US')} rows, seed ${opt.seed}, ${opt.threads} threads, median of ${opt.repeats} after 1 warm-up`);
  log(`machine: ${machine.cpuCount} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}, load ${machine.loadAvg1m}`);
  warnIfBusy(log);

  let t0 = performance.now();
  const cols = generateColumns(opt.seed, opt.rows, opt.nowSeconds, opt.shape);
  const generateMs = performance.now() - t0;
  t0 = performance.now();
  let bodies: Buffer[] | null = renderBodies(cols, 'ndjson', opt.loadBatch);
  const renderMs = performance.now() - t0;
  const ndjsonBytes = bodies.reduce((s, b) => s + b.length, 0);
  log(`generated in ${(generateMs / 1000).toFixed(1)} s; NDJSON ${formatBytes(ndjsonBytes)} in ${bodies.length} bodies rendered in ${(renderMs / 1000).toFixed(1)} s`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-scan-'));
  let leaf: LeafProcess | null = null;
  let instance: DuckDBInstance | null = null;
  let conn: DuckDBConnection | null = null;
  try {
    // ---- shoal: start and load ----
    leaf = await startLeaf({ dataDir: path.join(tmp, 'leaf'), args: ['--no-disk-log', '--no-shm', '--workers', String(opt.threads)], nodeArgs: opt.leafNodeArgs });
    const pool = newPool(leaf.url, Math.max(opt.loadConnections, 1));
    t0 = performance.now();
    const accepted = await sendBatches(pool, TABLE, bodies, CONTENT_TYPE.ndjson, opt.loadConnections);
    const shoalLoadMs = performance.now() - t0;
    bodies = null; // let the ~GBs of bodies go before the queries
    if (accepted !== opt.rows) throw new Error(`shoal accepted ${accepted} rows of ${opt.rows}`);
    const info = await tableInfo(pool, TABLE);
    if (info.rows !== opt.rows) throw new Error(`shoal holds ${info.rows} rows of ${opt.rows}`);
    const memAfterLoad = processMemory(leaf.pid);
    log(`shoal: loaded in ${(shoalLoadMs / 1000).toFixed(1)} s (${Math.round(opt.rows / (shoalLoadMs / 1000)).toLocaleString('en-US')} rows/s, ${opt.loadConnections} connections, ${opt.loadBatch} rows per NDJSON batch); ${info.blocks} blocks, ${formatBytes(info.bytes)}`);

    // ---- DuckDB: write CSV, load ----
    const csvFile = path.join(tmp, 'events.csv');
    t0 = performance.now();
    const csvBytes = writeCsv(cols, csvFile);
    const csvMs = performance.now() - t0;
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
    await conn.run(`SET threads = ${opt.threads}`);
    await conn.run("SET TimeZone = 'UTC'");
    const duckVersion = String((await duckRows(conn, 'SELECT version()'))[0]![0]);
    t0 = performance.now();
    await loadDuckDb(conn, csvFile);
    const duckLoadMs = performance.now() - t0;
    fs.rmSync(csvFile);
    const duckCount = Number((await duckRows(conn, `SELECT count(*) FROM ${TABLE}`))[0]![0]);
    if (duckCount !== opt.rows) throw new Error(`DuckDB holds ${duckCount} rows of ${opt.rows}`);
    const duckMemBytes = Number((await duckRows(conn, 'SELECT sum(memory_usage_bytes) FROM duckdb_memory()'))[0]![0]);
    log(`DuckDB ${duckVersion}: CSV ${formatBytes(csvBytes)} written in ${(csvMs / 1000).toFixed(1)} s (not timed), read_csv load ${(duckLoadMs / 1000).toFixed(1)} s; ${formatBytes(duckMemBytes)} in duckdb_memory()`);

    // ---- queries ----
    await conn.run('BEGIN TRANSACTION');
    const nowMicros = Number((await duckRows(conn, 'SELECT epoch_us(now())'))[0]![0]);
    const nowSeconds = nowMicros / 1e6;
    const results: QueryResult[] = [];
    for (const q of queriesOf(opt.shape)) {
      if (opt.only !== null && !opt.only.has(q.id)) continue;
      const s = await timeShoal(pool, leaf.pid, q.sql, nowSeconds, opt.repeats);
      const d = await timeDuckDb(conn, q.duckdbSql ?? q.sql, opt.repeats);
      const reference = q.reference === undefined ? null : await duckRows(conn, q.reference);
      const check = checkAnswer(q, s.answer.rows, d.rows, reference);
      const shoalMs = median(s.wall);
      const duckdbMs = median(d.wall);
      const r: QueryResult = {
        id: q.id, what: q.what, sql: q.sql, duckdbSql: q.duckdbSql ?? q.sql,
        shoalMs: round2(shoalMs), shoalMsMin: round2(Math.min(...s.wall)), shoalServerMs: round2(median(s.server)),
        duckdbMs: round2(duckdbMs), duckdbMsMin: round2(Math.min(...d.wall)), ratio: round3(duckdbMs / shoalMs),
        shoalCpuMs: s.cpuMs === null ? null : round2(s.cpuMs), duckdbCpuMs: round2(d.cpuMs),
        cpuRatio: s.cpuMs === null || s.cpuMs === 0 ? null : round3(d.cpuMs / s.cpuMs),
        rowsMatched: s.answer.stats.rowsMatched, mapWaitMs: Math.round(mapWaitMs), ...check,
        shoalHash: answerHash(s.answer.rows), duckdbHash: answerHash(d.rows), answerRows: s.answer.rows.length,
      };
      results.push(r);
      log(`  ${q.id.padEnd(16)} shoal ${r.shoalMs.toFixed(1).padStart(8)} ms  DuckDB ${r.duckdbMs.toFixed(1).padStart(8)} ms  ratio ${r.ratio.toFixed(2).padStart(5)}  ${r.ok ? 'ok' : 'MISMATCH ' + r.detail}${r.mapWaitMs >= 100 ? `  (waited ${(r.mapWaitMs / 1000).toFixed(1)} s for the leaf's code maps after the warm-up)` : ''}`);
    }
    await conn.run('COMMIT');
    const memAfterQueries = processMemory(leaf.pid);
    // The leaf's code maps made in the background (docs/engine.md, "Leaf codes"): what they cost.
    const status = (await getJson(pool, '/v1/status')).body as { leafCodes?: { strings: number; mapsMade: number; busyMs: number }; scanCacheBytes?: number; scanCacheResets?: number };
    if (status.leafCodes !== undefined) log(`leaf codes: ${status.leafCodes.strings.toLocaleString('en-US')} strings, ${status.leafCodes.mapsMade} block maps made in ${status.leafCodes.busyMs} ms of the event loop; scan caches ${formatBytes(status.scanCacheBytes ?? 0)}, restarted ${status.scanCacheResets ?? 0} times`);
    const machineEnd = machineInfo();

    const out = {
      bench: 'scan', date: new Date().toISOString(), seed: opt.seed, rows: opt.rows, threads: opt.threads, repeats: opt.repeats,
      dataEndSeconds: opt.nowSeconds, queryNowSeconds: nowSeconds, machine, loadAvg1mAtEnd: machineEnd.loadAvg1m, duckdbVersion: duckVersion,
      load: {
        shoalMs: Math.round(shoalLoadMs), shoalRowsPerS: Math.round(opt.rows / (shoalLoadMs / 1000)), batchRows: opt.loadBatch,
        connections: opt.loadConnections, duckdbMs: Math.round(duckLoadMs), generateMs: Math.round(generateMs), renderMs: Math.round(renderMs),
      },
      memory: {
        tableBytes: info.bytes, tableBlocks: info.blocks, bytesPerRow: round2(info.bytes / opt.rows),
        ndjsonBytes, ndjsonBytesPerRow: round2(ndjsonBytes / opt.rows), csvBytesPerRow: round2(csvBytes / opt.rows),
        leafRssBytesAfterLoad: memAfterLoad?.rssBytes ?? null, leafRssBytesAfterQueries: memAfterQueries?.rssBytes ?? null,
        leafRssPeakBytes: memAfterQueries?.rssPeakBytes ?? null,
        duckdbMemoryBytes: duckMemBytes, duckdbBytesPerRow: round2(duckMemBytes / opt.rows),
      },
      queries: results,
      ok: results.every((r) => r.ok),
    };
    if (opt.json) console.log(JSON.stringify(out, null, 2));
    else printText(out);
    if (!out.ok) process.exitCode = 1;
    await pool.close();
  } finally {
    conn?.closeSync();
    instance?.closeSync();
    await leaf?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function printText(out: {
  rows: number; threads: number; load: { shoalMs: number; shoalRowsPerS: number; duckdbMs: number };
  memory: Record<string, number | null>; queries: QueryResult[]; loadAvg1mAtEnd: number; ok: boolean;
}): void {
  const ms = (x: number) => x.toFixed(1);
  console.log('');
  console.log(formatTable(
    ['query', 'shoal ms', 'server ms', 'DuckDB ms', 'ratio', 'shoal cpu', 'DuckDB cpu', 'cpu ratio', 'matched', 'check', 'shoal hash', 'DuckDB hash'],
    out.queries.map((q) => [
      `${q.id} (${q.what})`, ms(q.shoalMs), ms(q.shoalServerMs), ms(q.duckdbMs), q.ratio.toFixed(2),
      q.shoalCpuMs === null ? '' : ms(q.shoalCpuMs), ms(q.duckdbCpuMs), q.cpuRatio === null ? '' : q.cpuRatio.toFixed(2), q.rowsMatched.toLocaleString('en-US'),
      q.ok ? (q.shoalRelErrMax !== null ? `ok (err ${(q.shoalRelErrMax * 100).toFixed(2)}% / DuckDB ${((q.duckdbRelErrMax ?? 0) * 100).toFixed(2)}%)` : 'ok') : 'MISMATCH',
      q.shoalHash, q.duckdbHash,
    ]),
  ));
  console.log('ratio = DuckDB ms / shoal ms (medians; >= 1.00: shoal at least as fast). cpu = CPU ms per run, all threads (leaf process;');
  console.log('this process for DuckDB), 10 ms ticks for the leaf; cpu ratio = DuckDB / shoal. err = max relative error vs the exact answer.');
  const slower = out.queries.filter((q) => q.ratio < 1).map((q) => q.id);
  console.log(slower.length === 0 ? 'shoal is at least as fast as DuckDB on every query' : `shoal slower than DuckDB on: ${slower.join(', ')}`);
  const m = out.memory;
  console.log('');
  console.log(`load: shoal ${(out.load.shoalMs / 1000).toFixed(1)} s (${out.load.shoalRowsPerS.toLocaleString('en-US')} rows/s over HTTP), DuckDB read_csv ${(out.load.duckdbMs / 1000).toFixed(1)} s`);
  console.log(`memory: shoal table ${formatBytes(m.tableBytes!)} = ${m.bytesPerRow} B/row; NDJSON ${m.ndjsonBytesPerRow} B/row (${(m.ndjsonBytesPerRow! / m.bytesPerRow!).toFixed(1)}x); ` +
    `leaf RSS ${formatBytes(m.leafRssBytesAfterLoad ?? 0)} after load, ${formatBytes(m.leafRssBytesAfterQueries ?? 0)} after queries (peak ${formatBytes(m.leafRssPeakBytes ?? 0)}); ` +
    `DuckDB ${m.duckdbBytesPerRow} B/row`);
  console.log(`load average at the end: ${out.loadAvg1mAtEnd}`);
  for (const q of out.queries.filter((x) => !x.ok)) console.log(`MISMATCH ${q.id}: ${q.detail}`);
}

main().catch((e) => {
  console.error(`bench/scan: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exit(2);
});
