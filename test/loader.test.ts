/**
 * `shoal load` and `shoal tail` against a real leaf process (`--no-shm`), checked against DuckDB
 * reading the same files directly: for each format (NDJSON, NDJSON.gz, CSV, Parquet snappy and
 * zstd, Arrow file and stream) a seeded file generated here loads, and count, sums, min/max time
 * and a grouped query through shoal equal DuckDB's (for Arrow, which DuckDB cannot read without
 * an extension, the values computed from what was generated). Then bad rows, and the tail:
 * appends, rotation, truncation, and restarts (SIGKILL and SIGTERM) without duplicates.
 *
 * Runs only when the CLI is built (`npm run build`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableToIPC, tableFromArrays, vectorFromArray, Table, TimestampMillisecond, Dictionary, Utf8, Int32 } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load } from '../loader/load.js';
import { defaultLoadOptions, type LoadOptions } from '../loader/options.js';
import type { LoadReport } from '../loader/report.js';
import { normaliseValue } from './support/duckdb.js';
import { Rng } from './support/gen.js';
import { CLI_PATH, REPO_ROOT, leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';

const SEED = Number(process.env.SHOAL_LOADER_SEED ?? 20_240_611);
const ROWS = 20_000;
const T0 = 1_700_000_000;
const SERVICES = ['api', 'web', 'auth', 'search', 'billing', 'feed'];
const REGIONS = ['us-east', 'eu-west', 'ap-south'];
const NOTES = ['plain', 'with, comma', 'with "quotes"', 'naïve café ☕', 'line\nbreak'];

interface Ev { time: number; id: number; service: string; status: number; latency_ms: number; bytes: number; ok: boolean; region?: string; note?: string; tags?: string[] }

function generate(seed: number, rows: number): Ev[] {
  const rng = new Rng(seed);
  const out: Ev[] = [];
  for (let i = 0; i < rows; i++) {
    const e: Ev = {
      // Mostly ascending, with millisecond fractions.
      time: T0 + i * 3 + rng.int(0, 1000) / 1000,
      id: i,
      service: rng.pick(SERVICES),
      status: rng.pick([200, 200, 200, 404, 500]),
      latency_ms: Math.round(rng.next() * 2_000_000) / 1000,
      bytes: rng.int(0, 5_000_000),
      ok: rng.chance(0.8),
    };
    if (rng.chance(0.7)) e.region = rng.pick(REGIONS);
    if (rng.chance(0.3)) e.note = rng.pick(NOTES);
    if (rng.chance(0.5)) e.tags = SERVICES.filter(() => rng.chance(0.3));
    out.push(e);
  }
  return out;
}

let dir = '';
let leaf: LeafProcess | undefined;
let duck: DuckDBConnection;
let events: Ev[] = [];
let url = '';

async function shoal(sql: string): Promise<unknown[][]> {
  const res = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
  const body = await res.json() as { rows?: unknown[][]; error?: unknown };
  if (res.status !== 200) throw new Error(`shoal: ${sql}: ${JSON.stringify(body)}`);
  return body.rows!;
}

async function duckRows(sql: string): Promise<unknown[][]> {
  const reader = await duck.runAndReadAll(sql);
  return reader.getRows().map((r) => r.map(normaliseValue));
}

function near(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return a === b;
}

function expectRowsNear(actual: unknown[][], expected: unknown[][], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((row, i) => row.forEach((v, j) => {
    if (!near(v, expected[i]![j])) throw new Error(`${what}: row ${i} column ${j}: shoal ${JSON.stringify(v)} != DuckDB ${JSON.stringify(expected[i]![j])}\nshoal ${JSON.stringify(actual)}\nduckdb ${JSON.stringify(expected)}`);
  }));
}

/** The same questions to shoal (table) and DuckDB (a FROM clause over the file, with `t` the time in seconds). */
async function compare(table: string, duckFrom: string, duckTime: string): Promise<void> {
  const totals = await shoal(`SELECT count(*), sum(bytes), sum(latency_ms), min(time), max(time), count(region) FROM ${table}`);
  const dTotals = await duckRows(`SELECT count(*), sum(bytes), sum(latency_ms), min(${duckTime}), max(${duckTime}), count(region) FROM ${duckFrom}`);
  expectRowsNear(totals, dTotals, `${table} totals`);
  const grouped = await shoal(`SELECT service, count(*), sum(bytes), max(latency_ms), sum(status) FROM ${table} WHERE ok = true GROUP BY service ORDER BY service`);
  const dGrouped = await duckRows(`SELECT service, count(*), sum(bytes), max(latency_ms), sum(status) FROM ${duckFrom} WHERE ok = true GROUP BY service ORDER BY service`);
  expectRowsNear(grouped, dGrouped, `${table} grouped`);
}

function opts(files: string[], table: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  return { ...defaultLoadOptions(files, table), url, batchRows: 3_000, ...extra };
}

function expectClean(r: LoadReport, rows: number): void {
  expect(r.error, JSON.stringify(r.error)).toBeNull();
  expect(r.rejected).toEqual([]);
  expect(r).toMatchObject({ rowsRead: rows, rowsAccepted: rows, rowsRejected: 0, rowsNotSent: 0 });
}

const sqlPath = (p: string) => `'${p.replaceAll("'", "''")}'`;

if (!leafCliExists()) console.log(`loader.test.ts: ${CLI_PATH} is missing (run \`npm run build\`); the loader tests do not run`);

describe.runIf(leafCliExists())(`shoal load and tail against a leaf (seed ${SEED})`, () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-loader-'));
    leaf = await startLeaf({ dataDir: path.join(dir, 'leaf'), args: ['--no-shm', '--log-level', 'warn'] });
    url = leaf.url;
    const instance = await DuckDBInstance.create(':memory:');
    duck = await instance.connect();
    await duck.run("SET TimeZone = 'UTC'");
    events = generate(SEED, ROWS);
    fs.writeFileSync(path.join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  });

  afterAll(async () => {
    duck?.closeSync();
    await leaf?.stop({ signal: 'SIGKILL' });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads NDJSON, and the same file gzip-compressed', async () => {
    const file = path.join(dir, 'events.ndjson');
    expectClean(await load(opts([file], 'nd')), ROWS);
    await compare('nd', `read_json(${sqlPath(file)}, format = 'newline_delimited')`, 'time');
    // String sets survive: list_contains over the tags.
    expect(await shoal("SELECT count(*) FROM nd WHERE list_contains(tags, 'web')")).toEqual(
      await duckRows(`SELECT count(*) FROM read_json(${sqlPath(file)}, format = 'newline_delimited') WHERE list_contains(tags, 'web')`));

    const gz = path.join(dir, 'events.ndjson.gz');
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(file)));
    const r = await load(opts([gz], 'ndgz'));
    expectClean(r, ROWS);
    expect(r.files[0]!.format).toBe('ndjson.gz');
    await compare('ndgz', `read_json(${sqlPath(gz)}, format = 'newline_delimited')`, 'time');
  });

  it('loads CSV with inferred types and an ISO time column renamed to time', async () => {
    const file = path.join(dir, 'events.csv');
    const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    const lines = ['ts,id,service,status,latency_ms,bytes,ok,region,note'];
    for (const e of events) {
      const iso = new Date(e.time * 1000).toISOString().replace('T', ' ').replace('Z', '');
      lines.push([iso, e.id, e.service, e.status, e.latency_ms, e.bytes, e.ok, e.region ?? '', q(e.note ?? '')].join(','));
    }
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const r = await load(opts([file], 'csv', { timeColumn: 'ts' }));
    expectClean(r, ROWS);
    expect(r.files[0]!.columnTypes).toMatchObject({ ts: 'time', id: 'int', service: 'string', status: 'int', latency_ms: 'float', bytes: 'int', ok: 'bool', region: 'string' });
    await compare('csv', `read_csv(${sqlPath(file)}, header = true)`, 'epoch(ts)');
    // Quoted fields with commas, quotes and newlines arrive whole.
    expect(await shoal("SELECT count(*) FROM csv WHERE note = 'line\nbreak'")).toEqual([[events.filter((e) => e.note === 'line\nbreak').length]]);
  });

  it('loads Parquet (several row groups, snappy and zstd) with a TIMESTAMP column', async () => {
    const nd = path.join(dir, 'events.ndjson');
    for (const [name, codec] of [['events.parquet', 'snappy'], ['events_zstd.parquet', 'zstd']] as const) {
      const file = path.join(dir, name);
      await duck.run(`COPY (SELECT make_timestamp(CAST(round(time * 1e6) AS BIGINT)) AS ts, * EXCLUDE (time, tags) FROM read_json(${sqlPath(nd)}, format = 'newline_delimited'))
        TO ${sqlPath(file)} (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE 4096)`);
      const table = name.replace('.parquet', '');
      expectClean(await load(opts([file], table, { timeColumn: 'ts' })), ROWS);
      await compare(table, `read_parquet(${sqlPath(file)})`, 'epoch(ts)');
    }
  });

  it('loads Arrow IPC files and streams, timestamps converted by their unit', async () => {
    const rows = events.slice(0, 5_000);
    const table = tableFromArrays({
      id: Int32Array.from(rows, (e) => e.id),
      bytes: BigInt64Array.from(rows, (e) => BigInt(e.bytes)),
      latency_ms: Float64Array.from(rows, (e) => e.latency_ms),
      service: rows.map((e) => e.service),
      ok: rows.map((e) => e.ok),
    });
    const withTime = new Table({
      ...Object.fromEntries(table.schema.fields.map((f, i) => [f.name, table.getChildAt(i)!])),
      // Whole milliseconds (the unit of the type).
      at: vectorFromArray(rows.map((e) => new Date(Math.round(e.time * 1000))), new TimestampMillisecond()),
      region: vectorFromArray(rows.map((e) => e.region ?? null), new Dictionary(new Utf8(), new Int32())),
    });
    const fileFormat = path.join(dir, 'events.arrow');
    const streamFormat = path.join(dir, 'events.arrows');
    fs.writeFileSync(fileFormat, tableToIPC(withTime, 'file'));
    fs.writeFileSync(streamFormat, tableToIPC(withTime, 'stream'));
    const r = await load(opts([fileFormat, streamFormat], 'arrow', { timeColumn: 'at' }));
    expectClean(r, 2 * rows.length);
    const sum = (f: (e: Ev) => number) => 2 * rows.reduce((a, e) => a + f(e), 0);
    const [totals] = await shoal('SELECT count(*), sum(bytes), sum(latency_ms), min(time), max(time), count(region) FROM arrow');
    expectRowsNear([totals!], [[2 * rows.length, sum((e) => e.bytes), sum((e) => e.latency_ms),
      Math.round(rows[0]!.time * 1000) / 1000, Math.max(...rows.map((e) => Math.round(e.time * 1000) / 1000)), 2 * rows.filter((e) => e.region).length]], 'arrow totals');
    const grouped = await shoal('SELECT service, count(*), sum(bytes) FROM arrow WHERE ok = true GROUP BY service ORDER BY service');
    const expected = SERVICES.slice().sort().map((s) => {
      const g = rows.filter((e) => e.ok && e.service === s);
      return [s, 2 * g.length, 2 * g.reduce((a, e) => a + e.bytes, 0)];
    }).filter((row) => (row[1] as number) > 0);
    expectRowsNear(grouped, expected, 'arrow grouped');
  });

  it('reports bad rows with their lines and loads the good ones (CLI, --missing-time reject)', () => {
    const file = path.join(dir, 'bad.ndjson');
    const good = (i: number) => JSON.stringify({ time: T0 + i, id: i, n: i, s: 'x' });
    const lines = [
      good(1), good(2),
      '{"time": 1700000003, "id": 3, "n": ',              // 3: malformed JSON
      good(4),
      JSON.stringify({ time: T0 + 5, id: 5, n: 'five' }), // 5: wrong type (n is int)
      '',                                                  // 6: blank, skipped
      JSON.stringify({ id: 7, n: 7 }),                     // 7: no time
      JSON.stringify({ time: T0 + 8, id: 8, n: 8, o: { a: 1 } }), // 8: nested object
      JSON.stringify({ time: 'soon', id: 9, n: 9 }),       // 9: unusable time
      good(10),
    ];
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const run = spawnSync(process.execPath, [CLI_PATH, 'load', file, '--table', 'bad', '--aggregator', url, '--json'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    const r = JSON.parse(run.stdout) as LoadReport;
    expect(r).toMatchObject({ rowsRead: 9, rowsAccepted: 4, rowsRejected: 5, rowsNotSent: 0, error: null });
    expect(r.rejected.map((x) => [x.position, x.code])).toEqual([
      [3, 'SHOAL_ERR_LOAD_ROW'],
      [5, 'SHOAL_ERR_INGEST_TYPE_CONFLICT'],
      [7, 'SHOAL_ERR_LOAD_TIME'],
      [8, 'SHOAL_ERR_INGEST_VALUE'],
      [9, 'SHOAL_ERR_LOAD_TIME'],
    ]);
    // The text report names file:line for a person.
    const text = spawnSync(process.execPath, [CLI_PATH, 'load', file, '--table', 'bad_text', '--aggregator', url, '--quiet'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(text.stdout).toContain(`${file}:5: SHOAL_ERR_INGEST_TYPE_CONFLICT`);
    expect(text.stdout).toMatch(/rows rejected\s+5/);
  });

  it('stamps rows without time with now under --missing-time now; CSV rows of the wrong shape are reported', async () => {
    const file = path.join(dir, 'notime.ndjson');
    fs.writeFileSync(file, '{"id":1}\n{"id":2,"time":null}\n{"id":3,"time":1700000000}\n');
    const before = Date.now() / 1000;
    const r = await load(opts([file], 'notime', { missingTime: 'now' }));
    expect(r).toMatchObject({ rowsAccepted: 3, rowsTimeDefaulted: 2 });
    const [[minT, maxT]] = (await shoal('SELECT min(time), max(time) FROM notime WHERE id < 3')) as [[number, number]];
    expect(minT).toBeGreaterThanOrEqual(before - 1);
    expect(maxT).toBeLessThanOrEqual(Date.now() / 1000 + 1);

    const csv = path.join(dir, 'bad.csv');
    fs.writeFileSync(csv, 'time,n,s\n1700000000,1,a\n1700000001,2\n1700000002,x,c\n1700000003,4,d\n');
    // Types are inferred from the first 2 rows (n: int), so "x" on line 4 is a conflict.
    const c = await load(opts([csv], 'badcsv', { inferRows: 2 }));
    expect(c.rejected.map((x) => [x.position, x.code])).toEqual([[3, 'SHOAL_ERR_LOAD_ROW'], [4, 'SHOAL_ERR_INGEST_TYPE_CONFLICT']]);
    expect(await shoal('SELECT sum(n) FROM badcsv')).toEqual([[5]]);
  });

  describe('tail', () => {
    const line = (id: number) => JSON.stringify({ time: T0 + id, id, service: SERVICES[id % SERVICES.length] }) + '\n';
    const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => line(from + k)).join('');
    let child: ChildProcess | null = null;
    let output = '';

    function startTail(file: string, state: string): Promise<void> {
      output = '';
      child = spawn(process.execPath, [CLI_PATH, 'tail', file, '--table', 'tailed', '--aggregator', url, '--state-file', state,
        '--flush-ms', '100', '--poll-ms', '30', '--batch-rows', '40'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.setEncoding('utf8').on('data', (s: string) => { output += s; });
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { output += s; });
      return waitFor(() => output.includes('following'), 'the tail to start');
    }

    async function stopTail(signal: NodeJS.Signals): Promise<void> {
      const c = child!;
      child = null;
      if (c.exitCode !== null) return;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill(signal);
      await exited;
    }

    async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
      const until = Date.now() + timeoutMs;
      while (!(await cond())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; tail output:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    const counts = async () => {
      const rows = await shoal('SELECT count(*), count(DISTINCT id) FROM tailed').catch(() => [[0, 0]]);
      return rows[0] as [number, number];
    };
    const waitCount = (n: number, what: string) => waitFor(async () => (await counts())[0] >= n, `${n} rows (${what})`);

    afterAll(async () => { if (child) await stopTail('SIGKILL'); });

    it('follows appends, rotation and truncation, and resumes after SIGKILL and SIGTERM without duplicates', async () => {
      const file = path.join(dir, 'app.log');
      const state = path.join(dir, 'app.tail.json');
      fs.writeFileSync(file, lines(0, 100));
      await startTail(file, state);
      await waitCount(100, 'existing lines');
      fs.appendFileSync(file, lines(100, 150));
      await waitCount(150, 'appended lines');

      // Rotation: rename, late writes to the old file (the last one unterminated), new file.
      fs.renameSync(file, `${file}.1`);
      fs.appendFileSync(`${file}.1`, lines(150, 154) + line(154).trimEnd());
      await waitCount(154, 'late writes to the rotated file');
      fs.writeFileSync(file, lines(155, 185));
      await waitCount(185, 'the new file after rotation');
      expect(output).toContain('a new file is at the path');

      // A crash: SIGKILL right after appending (a batch may be in flight), then lines written while down.
      fs.appendFileSync(file, lines(185, 200));
      await stopTail('SIGKILL');
      fs.appendFileSync(file, lines(200, 225));
      await startTail(file, state);
      await waitCount(225, 'lines after a SIGKILL restart');

      // A clean stop, lines written while stopped, then truncation while running.
      await stopTail('SIGTERM');
      fs.appendFileSync(file, lines(225, 245));
      await startTail(file, state);
      await waitCount(245, 'lines after a SIGTERM restart');
      fs.truncateSync(file, 0);
      fs.appendFileSync(file, lines(245, 255));
      await waitCount(255, 'the truncated file');

      // Nothing arrives twice, even a little later.
      await new Promise((r) => setTimeout(r, 500));
      expect(await counts()).toEqual([255, 255]);
      await stopTail('SIGTERM');
      const saved = JSON.parse(fs.readFileSync(state, 'utf8'));
      expect(saved).toMatchObject({ table: 'tailed', pending: null, offset: fs.statSync(file).size, line: 10 });
    });
  });
});
