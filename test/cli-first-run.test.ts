/**
 * What a new user meets in the first hour (issue 17), with the real `shoal` binary against real
 * processes: `shoal up` on a port that is taken, partial answers in csv/json and `--strict`,
 * errors as JSON, `shoal tables` / `shoal describe` / tables in `shoal status`, a URL typed
 * without its scheme, one error shape and exit code per kind of failure, the leaf's help and
 * log format. Expected values are computed here from the rows sent.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../server/ops/supervisor.js';
import { serverUrl } from '../server/cli/common.js';
import { CLI_PATH, REPO_ROOT, deadUrl, freePortRange, getJson, portOf, postJson, runCli, startAggregator, startClusterLeaf, writeClusterFile, type ShoalProcess } from './support/cluster.js';
import type { LeafProcess } from './support/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
let leaf: LeafProcess;
let agg: ShoalProcess;
/** An aggregator over the leaf and a member where nothing listens: every answer is partial. */
let partialAgg: ShoalProcess;
const rows = Array.from({ length: 120 }, (_, i) => ({ time: 1_700_000_000 + i, service: ['api', 'web', 'db'][i % 3]!, latency_ms: i * 1.5, city: i % 2 ? '東京' : 'Zürich' }));

beforeAll(async () => {
  leaf = await startClusterLeaf(join(dir, 'leaf'), 'cli-leaf');
  agg = await startAggregator(writeClusterFile(dir, 'one.json', [{ id: 'cli-leaf', url: leaf.url }]), ['--leaf-timeout', '2000']);
  partialAgg = await startAggregator(writeClusterFile(dir, 'two.json', [{ id: 'cli-leaf', url: leaf.url }, { id: 'gone', url: await deadUrl() }]), ['--leaf-timeout', '2000']);
  expect((await postJson(`${leaf.url}/v1/tables/events/events`, rows)).status).toBe(200);
  // The aggregators learn the table from their members' status polls.
  for (let i = 0; i < 100; i++) {
    const st = (await getJson(`${agg.url}/v1/status`)).body;
    if (st.tables?.events?.rows === rows.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  await partialAgg?.stop();
  await agg?.stop();
  await leaf?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('shoal up', () => {
  it('refuses at once, naming the port, when one of its ports is taken', async () => {
    const port = await freePortRange(2);
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port + 2, '127.0.0.1', r));
    try {
      const r = await runCli(['up', '--leaves', '2', '--port', String(port), '--data-dir', join(dir, 'up-data')], 20_000);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toContain(`shoal up: port ${port + 2} (leaf-2: EADDRINUSE) on 127.0.0.1 is not free`);
      expect(r.stdout).not.toContain('ready');
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });

  it('does not take another process answering on its child\'s port for its child', async () => {
    const other = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ status: 'serving', pid: 1 })); });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(other.address() as net.AddressInfo).port}`;
    const sup = new Supervisor({ log: () => {}, backoffMsMin: 250, backoffMsMax: 1000, stopTimeoutMs: 2000 });
    const child = sup.start({ name: 'sleeper', command: process.execPath, args: ['-e', 'setTimeout(() => {}, 20000)'], logFile: join(dir, 'sleeper.log'), url, restart: false });
    try {
      await expect(sup.waitReady(child, 5_000)).rejects.toThrow(`sleeper: another process answers at ${url} (shoal, pid 1); its port is in use`);
    } finally {
      await sup.stopAll('SIGKILL');
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});

/** A leaf's stdout up to its listening line (it is killed then). */
async function leafStdout(args: string[], name: string): Promise<string> {
  const child = spawn(process.execPath, [CLI_PATH, 'leaf', '--port', '0', '--data-dir', join(dir, name), '--no-shm', '--workers', '1', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
  try {
    for (let i = 0; i < 300 && !out.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
    return out;
  } finally {
    child.kill('SIGKILL');
  }
}

describe('shoal leaf and aggregator', () => {
  it('refuse a port in use with exit 3 and the port named', async () => {
    const r = await runCli(['leaf', '--port', String(portOf(leaf.url)), '--data-dir', join(dir, 'second-leaf'), '--no-shm', '--workers', '1'], 20_000);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toContain(`shoal leaf: port ${portOf(leaf.url)} on 127.0.0.1 is in use by another process`);
    const a = await runCli(['aggregator', '--cluster', join(dir, 'one.json'), '--port', String(portOf(agg.url))], 20_000);
    expect(a.code, a.stdout + a.stderr).toBe(3);
    expect(a.stderr).toContain(`shoal aggregator: port ${portOf(agg.url)} on 127.0.0.1 is in use`);
  });

  it('shows the memory budget in units in --help, and logs readable lines with --log-format text', async () => {
    const help = await runCli(['leaf', '--help']);
    expect(help.stdout).toMatch(/at most\s+8GiB:\s+\d+(\.\d)?(GiB|MiB)\s+here/);
    expect(help.stdout).not.toMatch(/\d{9,}/); // no byte count of a budget anywhere
    const text = await leafStdout(['--log-format', 'text'], 'text-leaf');
    const logLines = text.split('\n').filter((l) => / INFO /.test(l));
    expect(logLines.length, text).toBeGreaterThan(0);
    for (const l of logLines) {
      expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  /);
      expect(() => JSON.parse(l)).toThrow();
    }
    // Not on a terminal (as here) the default is JSON lines, for files and log shippers.
    const auto = await leafStdout([], 'auto-leaf');
    const jsonLines = auto.split('\n').filter((l) => l.startsWith('{'));
    expect(jsonLines.length, auto).toBeGreaterThan(0);
    for (const l of jsonLines) expect(JSON.parse(l)).toHaveProperty('level');
    const bad = await runCli(['leaf', '--log-format', 'yaml', '--data-dir', join(dir, 'bad-leaf')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--log-format must be auto, json or text');
  });
});

describe('shoal query', () => {
  const expectedPerService = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(r.service, (m.get(r.service) ?? 0) + 1);
    return m;
  };

  it('says on stderr that a csv or json answer is partial, and --strict makes it fail with exit 2', async () => {
    const sql = 'SELECT service, count(*) AS n FROM events GROUP BY service ORDER BY service';
    const csv = await runCli(['query', '--url', partialAgg.url, '--format', 'csv', sql]);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('service,n');
    expect(new Map(lines.slice(1).map((l) => [l.split(',')[0]!, Number(l.split(',')[1])]))).toEqual(expectedPerService());
    expect(csv.stderr).toMatch(/^shoal query: partial answer: coverage \d+(\.\d+)?% \(1\/2 leaves/);
    expect(csv.stderr).toContain('missing gone');
    const json = await runCli(['query', '--url', partialAgg.url, '--format', 'json', sql]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).coverage.leavesResponded).toBe(1);
    expect(json.stderr).toContain('partial answer');
    // A whole answer says nothing on stderr.
    const whole = await runCli(['query', '--url', agg.url, '--format', 'csv', sql]);
    expect(whole.code).toBe(0);
    expect(whole.stderr).toBe('');
    const strict = await runCli(['query', '--url', partialAgg.url, '--format', 'csv', '--strict', sql]);
    expect(strict.code).toBe(2);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toMatch(/^shoal query: SHOAL_ERR_QUERY_COVERAGE/);
    expect(strict.stderr).toContain('missing gone');
    const both = await runCli(['query', '--url', partialAgg.url, '--strict', '--min-coverage', '50', sql]);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--strict means --min-coverage 100');
  });

  it('prints a refused query as JSON on stdout with --format json, and as one line on stderr', async () => {
    const r = await runCli(['query', '--url', agg.url, '--format', 'json', 'SELECT nosuch FROM events']);
    expect(r.code).toBe(2);
    const body = JSON.parse(r.stdout);
    expect(body.error.code).toBe('SHOAL_ERR_QUERY_UNKNOWN_COLUMN');
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^shoal query: SHOAL_ERR_QUERY_UNKNOWN_COLUMN: /);
  });

  it('takes a URL without its scheme, and says how to start shoal when nothing listens', async () => {
    const host = new URL(agg.url).host; // 127.0.0.1:PORT
    const r = await runCli(['query', '--url', host, 'SELECT count(*) FROM events']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`\\b${rows.length}\\b`));
    const env = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI_PATH, 'query', 'SELECT count(*) FROM events'], { cwd: REPO_ROOT, env: { ...process.env, SHOAL_URL: `:${portOf(agg.url)}` }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
      child.once('exit', (code) => resolve({ code, stdout }));
    });
    expect(env.code).toBe(0);
    expect(env.stdout).toMatch(new RegExp(`\\b${rows.length}\\b`));
    const dead = await deadUrl();
    const none = await runCli(['query', '--url', dead, 'SELECT 1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`shoal query: cannot reach ${dead}`);
    expect(none.stderr).toContain('is shoal running there? start one with `shoal up`, or pass --url');
    const junk = await runCli(['query', '--url', 'http://exa mple', 'SELECT 1']);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain('--url "http://exa mple" is not a URL');
  });

  it('parses what a user types as a URL', () => {
    expect(serverUrl('127.0.0.1:7000')).toBe('http://127.0.0.1:7000');
    expect(serverUrl('localhost:7001/')).toBe('http://localhost:7001');
    expect(serverUrl(':7002')).toBe('http://127.0.0.1:7002');
    expect(serverUrl('https://db.example:443/')).toBe('https://db.example');
    expect(() => serverUrl('ftp://x')).toThrow('must be http:// or https://');
    expect(() => serverUrl('http://x/?a=1')).toThrow('query string');
  });
});

describe('shoal tables, describe and status', () => {
  it('list the tables with rows and bytes from an aggregator, the same as the leaf holds', async () => {
    const leafTables = (await getJson(`${leaf.url}/v1/tables`)).body.tables as { name: string; rows: number; bytes: number }[];
    const events = leafTables.find((t) => t.name === 'events')!;
    expect(events.rows).toBe(rows.length);
    expect(events.bytes).toBeGreaterThan(0);
    const json = await runCli(['tables', '--url', agg.url, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).tables).toEqual([{ name: 'events', rows: rows.length, bytes: events.bytes, columns: 4 }]);
    const text = await runCli(['tables', '--url', agg.url]);
    expect(text.stdout).toMatch(new RegExp(`events \\| +${rows.length} \\| `));
    // The aggregator's status carries the bytes too (it showed 0 before).
    const st = (await getJson(`${agg.url}/v1/status`)).body;
    expect(st.tables.events).toMatchObject({ rows: rows.length, bytes: events.bytes });
    const partial = await runCli(['tables', '--url', partialAgg.url]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain('shoal tables: partial answer: 1 leaf did not answer');
    expect(partial.stderr).toContain('missing gone');
  });

  it('describe a table: columns with types and the time range', async () => {
    const r = await runCli(['describe', '--url', agg.url, 'events']);
    expect(r.code, r.stderr).toBe(0);
    const tMin = new Date(Math.min(...rows.map((x) => x.time)) * 1000).toISOString().replace('.000Z', 'Z');
    const tMax = new Date(Math.max(...rows.map((x) => x.time)) * 1000).toISOString().replace('.000Z', 'Z');
    expect(r.stdout).toContain(`table events: ${rows.length} rows`);
    expect(r.stdout).toContain(`time ${tMin} .. ${tMax}`);
    for (const [col, type] of [['time', 'time'], ['service', 'string'], ['latency_ms', 'float'], ['city', 'string']]) {
      expect(r.stdout).toMatch(new RegExp(`^${col} +\\| ${type}$`, 'm'));
    }
    const missing = await runCli(['describe', '--url', agg.url, 'nosuch']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^shoal describe: SHOAL_ERR_QUERY_UNKNOWN_TABLE: table "nosuch" does not exist/);
  });

  it('status names the aggregator once and lists the tables', async () => {
    const r = await runCli(['status', '--url', agg.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^aggregator at ${agg.url.replace(/[.]/g, '\\.')}: 1/1 members healthy`));
    expect(r.stdout).toMatch(new RegExp(`^tables: events \\(${rows.length} rows, [\\d.]+ (B|KiB|MiB)\\)$`, 'm'));
    const l = await runCli(['status', '--url', leaf.url]);
    expect(l.stdout).toMatch(new RegExp(`tables: events \\(${rows.length} rows`));
    const p = await runCli(['status', '--url', partialAgg.url]);
    expect(p.code).toBe(3);
  });
});
