/**
 * Time text means one thing everywhere, and what DuckDB says it means:
 * - query/functions/time.ts reads every string DuckDB's TIMESTAMPTZ cast (session in UTC) reads,
 *   to the same instant, or refuses it (a listed few); it never reads a string DuckDB refuses.
 * - An ISO string without an offset is UTC in a query constant, in an ingested `time` and in the
 *   loader, also in processes whose local zone is not UTC (a real leaf and `shoal load` run with
 *   TZ=America/New_York).
 * - After aggregation, a time aggregate or key compared with a string reads the string as a time,
 *   as WHERE does (HAVING max(time) > '2026-12-02' used to compare a number with a string).
 * - Bare current_timestamp and current_date are now() and its UTC day, as in DuckDB.
 * Every expected answer is DuckDB's, computed here.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIsoTime } from '../query/functions/time.js';
import { compareResults } from './support/compare.js';
import { normaliseValue, openDuckDb, type DuckDb, type ResultSet } from './support/duckdb.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';
import { CLI_PATH, leafCliExists, REPO_ROOT, startLeaf, type LeafProcess } from './support/processes.js';
import { answerError, answerResult, ingestEvents, queryShoal } from './support/shoal-client.js';

/** Strings DuckDB reads but shoal refuses with an error (never a different instant). */
const REFUSED_BY_SHOAL = new Set([
  '02026-12-02', // years of five digits
  '2026-12-02 10:00:00+02:60', // offset minutes past 59 (DuckDB carries them into hours)
  '2026-12-02 10:00:00 UTC', // zone names
  '2026-12-02 10:00:00 America/New_York',
]);

const SAMPLES = [
  '2026-12-02', '2026-12-02 10:00:00', '2026-12-02T10:00:00', '2026-12-02 10:00', '2026-12-02T10:00', '2026-12-02 10',
  '2026-12-02T10:00:00Z', '2026-12-02T10:00:00z', '2026-12-02 10:00:00+02:00', '2026-12-02 10:00:00+0200',
  '2026-12-02 10:00:00+02', '2026-12-02 10:00:00 +02:00', '2026-12-02 10:00:00-05:30', '2026-12-02 10:00:00+02:00:30',
  '2026-12-02 10:00:00-00', '2026-12-02 10:00:00+0', '2026-12-02 10:00:00+2:00', '2026-12-02 10:00:00+14:00',
  '2026-12-02 10:00:00+02:60', '2026-12-02 10:00:00.123456789', '2026-12-02 10:00:00.5Z', '2026-12-02T10:00:00.123+01:00',
  '2026-12-02 10:00:00.', '2026-12-02 10:00:00.Z', '2026-12-02 10:00:00,5', '2026-12-02 24:00:00', '2026-12-02 24:30:00',
  '2026-12-02 23:59:60', '2026-12-02 10:60:00', '2026-02-30', '2024-02-29', '2023-02-29', '2026-2-3', '2026-12-02 1:2:3',
  '2026-12-02  10:00:00', ' 2026-12-02', '2026-12-02 ', '2026-12-02 10:00:00Z ', '2026-12-02 10:00:00+02:00 ',
  '2026-12-02T', '2026-12-02Z', '2026-12-02+02', '20261202', 'garbage', '', '0099-01-01', '1900-01-01', '2200-12-31 23:59:59.999999',
  '2026-12-02 10:00:00 UTC', '2026-12-02 10:00:00UTC', '2026-12-02 10:00:00 Z', '02026-12-02', '2026-12-02 10:00:00 America/New_York',
  '1969-12-31 23:59:59.5', '2000-03-01 00:00:00-00:01', '  2026-12-02 10:00', '2026-12-02 10:5', '2026-12-02 10:05:7.25',
];

/** DuckDB's reading of each string as TIMESTAMPTZ, in unix seconds, or null when it refuses. */
async function duckInstants(connection: DuckDBConnection, texts: readonly string[]): Promise<(number | null)[]> {
  const out: (number | null)[] = [];
  for (const text of texts) {
    try {
      const reader = await connection.runAndReadAll(`SELECT CAST('${text.replaceAll("'", "''")}' AS TIMESTAMPTZ)`);
      out.push(normaliseValue(reader.getRows()[0]![0]) as number);
    } catch {
      out.push(null);
    }
  }
  return out;
}

describe('ISO time text (query/functions/time.ts) against DuckDB', () => {
  it('reads what DuckDB reads, to the same microsecond, and never what DuckDB refuses', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    const duck = await duckInstants(connection, SAMPLES);
    connection.closeSync();
    instance.closeSync();
    const problems: string[] = [];
    SAMPLES.forEach((text, i) => {
      const want = duck[i]!;
      const got = parseIsoTime(text);
      if (got === null && (want === null || REFUSED_BY_SHOAL.has(text))) return;
      if (got === null || want === null || Math.round(got * 1e6) !== Math.round(want * 1e6)) {
        problems.push(`${JSON.stringify(text)}: shoal ${got}, duckdb ${want}`);
      }
    });
    expect(problems).toEqual([]);
    // The refusals listed are real refusals of strings DuckDB reads (the list stays honest).
    for (const text of REFUSED_BY_SHOAL) expect(duck[SAMPLES.indexOf(text)], text).not.toBeNull();
  });
});

const DAY = 86_400;
const BASE = Date.UTC(2026, 11, 1) / 1000; // 2026-12-01 00:00 UTC
/** Events over three days, several per hour; `label` lets a query pick rows. */
const EVENTS = Array.from({ length: 72 * 3 }, (_, i) => ({
  time: BASE + i * 1200,
  service: ['api', 'web', 'db'][i % 3]!,
  bytes: (i * 37) % 1000,
}));

/** A query, or a [shoal, DuckDB] pair where DuckDB needs a cast spelled out. */
const AGG_QUERIES: readonly (string | readonly [string, string])[] = [
  // HAVING / select list / ORDER BY comparing time aggregates and time keys with strings.
  "SELECT service, max(time) AS t FROM events GROUP BY service HAVING max(time) > '2026-12-02' ORDER BY service",
  "SELECT service, count(*) AS n FROM events GROUP BY service HAVING min(time) >= '2026-12-01 00:20:00' ORDER BY service",
  "SELECT service, count(*) AS n FROM events GROUP BY service HAVING max(time) < '2026-12-03T23:40:00Z' ORDER BY service",
  "SELECT service, min(time) > '2026-12-01' AS late, max(time) <= '2026-12-03 23:40:00' AS inside FROM events GROUP BY service ORDER BY service",
  "SELECT time_bucket(INTERVAL '1 day', time) AS day, count(*) AS n FROM events GROUP BY 1 HAVING time_bucket(INTERVAL '1 day', time) >= '2026-12-02' ORDER BY 1",
  "SELECT service, count(*) AS n FROM events GROUP BY service ORDER BY max(time) > '2026-12-03 23:00:00', service",
  "SELECT service, count(*) AS n FROM events GROUP BY service HAVING max(time) BETWEEN '2026-12-03 23:00' AND '2026-12-04' ORDER BY service",
  "SELECT service, count(*) AS n FROM events GROUP BY service HAVING max(time) IN ('2026-12-03 23:20:00', '2026-12-03 23:40:00') ORDER BY service",
  // WHERE constants without an offset are UTC.
  "SELECT count(*) AS n FROM events WHERE time >= '2026-12-02 10:00:00' AND time < '2026-12-03T02:30:00'",
  // An offset is applied: shoal's time is an instant, like DuckDB's TIMESTAMPTZ (a TIMESTAMP
  // column would drop the offset in DuckDB; docs/sql.md says so).
  ["SELECT count(*) AS n FROM events WHERE time < '2026-12-02 10:00:00+02:00'",
    "SELECT count(*) AS n FROM events WHERE time < CAST('2026-12-02 10:00:00+02:00' AS TIMESTAMPTZ)"],
  ["SELECT service, count(*) AS n FROM events GROUP BY service HAVING max(time) > '2026-12-03 20:30:00-03:00' ORDER BY service",
    "SELECT service, count(*) AS n FROM events GROUP BY service HAVING max(time) > CAST('2026-12-03 20:30:00-03:00' AS TIMESTAMPTZ) ORDER BY service"],
  // Bare current_timestamp / current_date (the data is before either).
  'SELECT count(*) AS n FROM events WHERE time < current_timestamp',
  'SELECT count(*) AS n FROM events WHERE time < current_date AND time > current_date - INTERVAL 100000 DAY',
];

async function compareWithDuck(duck: DuckDb, query: string | readonly [string, string], run: (sql: string) => Promise<{ status: number; body: unknown }>): Promise<string | null> {
  const [sql, duckSql] = typeof query === 'string' ? [query, query] : query;
  const answer = await run(sql);
  const got = answerResult(answer);
  if ('problem' in got) return `${sql}: ${got.problem}`;
  const want = await duck.query(duckSql);
  const outcome = compareResults(got.result, want, { ordered: /ORDER BY/i.test(sql) });
  return outcome.ok ? null : `${sql}\n${outcome.message}`;
}

describe('time strings after aggregation, current_timestamp, current_date (in-process leaf vs DuckDB)', () => {
  let leaf: Awaited<ReturnType<typeof inProcessLeaf>>;
  let duck: DuckDb;
  beforeAll(async () => {
    leaf = await inProcessLeaf();
    const ingested = await leaf.ingest('events', JSON.stringify(EVENTS));
    expect(ingested.status).toBe(200);
    duck = await openDuckDb(EVENTS);
  });
  afterAll(async () => { await leaf?.close(); await duck?.close(); });

  it('answers as DuckDB does', async () => {
    const run = async (sql: string) => { const r = await leaf.query(sql); return { status: r.status, body: r.json }; };
    const problems: string[] = [];
    for (const sql of AGG_QUERIES) {
      const p = await compareWithDuck(duck, sql, run);
      if (p !== null) problems.push(p);
    }
    expect(problems).toEqual([]);
  });

  it('names bare current_timestamp / current_date columns as DuckDB does, and quoting makes them columns', async () => {
    const r = await leaf.query('SELECT current_timestamp, current_date FROM events LIMIT 1');
    expect(r.status).toBe(200);
    expect(r.json.columns.map((c: { name: string }) => c.name)).toEqual(['current_timestamp', 'current_date']);
    const [ts, day] = r.json.rows[0] as [number, number];
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(60);
    expect(day).toBe(Math.floor(ts / DAY) * DAY);
    const quoted = await leaf.query('SELECT "current_timestamp" FROM events LIMIT 1');
    expect(quoted.json.error?.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_COLUMN');
  });

  it('refuses, rather than guesses, a string compared with a count or an unreadable time', async () => {
    for (const sql of [
      "SELECT service FROM events GROUP BY service HAVING count(*) > '2026-12-02'",
      "SELECT service FROM events GROUP BY service HAVING max(time) > 'yesterday'",
      "SELECT service FROM events GROUP BY service HAVING sum(bytes) > 'abc'",
    ]) {
      const r = await leaf.query(sql);
      expect(r.status, sql).toBe(400);
      expect(r.json.error?.code, sql).toBe('SHOAL_ERR_QUERY_TYPE');
    }
  });
});

const execFileAsync = promisify(execFile);
const FOREIGN_ZONE = 'America/New_York';

describe(`ISO strings without an offset are UTC in processes running in ${FOREIGN_ZONE}`, () => {
  let leaf: LeafProcess | null = null;
  let dir = '';
  beforeAll(async () => {
    if (!leafCliExists()) throw new Error(`${CLI_PATH} is missing: run npm run build first`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-tz-'));
    leaf = await startLeaf({ dataDir: path.join(dir, 'data'), args: ['--workers', '1', '--no-shm'], env: { ...process.env, TZ: FOREIGN_ZONE } });
  });
  afterAll(async () => {
    await leaf?.stop();
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ingest, the loader and query constants agree with DuckDB (session in UTC)', async () => {
    const url = leaf!.url;
    // The same wall-clock texts, three ways in: the ingest API, `shoal load` of an NDJSON file
    // (also running in the foreign zone), and as constants in the queries.
    const texts = Array.from({ length: 48 }, (_, i) => `2026-12-02 ${String(Math.floor(i / 2)).padStart(2, '0')}:${i % 2 === 0 ? '00' : '30'}:00`);
    await ingestEvents(url, 'api', texts.map((t, i) => ({ time: i % 3 === 0 ? t.replace(' ', 'T') : t, n: i })));
    const file = path.join(dir, 'rows.ndjson');
    fs.writeFileSync(file, texts.map((t, i) => JSON.stringify({ ts: t, n: i })).join('\n') + '\n');
    await execFileAsync(process.execPath, [CLI_PATH, 'load', file, '--aggregator', url, '--table', 'loaded', '--time-column', 'ts', '--time-format', 'iso', '--quiet'], {
      cwd: REPO_ROOT, env: { ...process.env, TZ: FOREIGN_ZONE }, timeout: 60_000,
    });

    // DuckDB reads the same texts as TIMESTAMP in a UTC session: that is the expected data.
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    const seconds = await duckInstants(connection, texts);
    connection.closeSync();
    instance.closeSync();
    const duck = await openDuckDb(texts.map((_, i) => ({ time: seconds[i]!, n: i })));
    try {
      const problems: string[] = [];
      for (const table of ['api', 'loaded']) {
        for (const sql of [
          `SELECT n, time FROM ${table} ORDER BY n LIMIT 100`,
          `SELECT count(*) AS c FROM ${table} WHERE time >= '2026-12-02 10:00:00' AND time < '2026-12-02T15:00:00'`,
          `SELECT count(*) AS c FROM ${table} WHERE time BETWEEN '2026-12-02' AND '2026-12-02 05:00'`,
          `SELECT time_bucket(INTERVAL '6 hours', time) AS b, count(*) AS c FROM ${table} GROUP BY 1 HAVING max(time) > '2026-12-02 12:00:00' ORDER BY 1`,
        ]) {
          const duckSql = sql.replace(` FROM ${table}`, ' FROM events');
          const answer = await queryShoal(url, sql);
          const got = answerResult(answer);
          if ('problem' in got) { problems.push(`${sql}: ${answerError(answer)?.message ?? got.problem}`); continue; }
          const want: ResultSet = await duck.query(duckSql);
          const outcome = compareResults(got.result, want, { ordered: true });
          if (!outcome.ok) problems.push(`${sql}\n${outcome.message}`);
        }
      }
      expect(problems).toEqual([]);
    } finally {
      await duck.close();
    }
  });
});
