/**
 * `shoal ingest`, and the URL and fail-fast behaviour of `shoal load` / `shoal tail`, through the
 * built binary (`dist/server/cli/cli.js`) against a real leaf process (`--no-shm`):
 *
 * - a file with bad lines in the middle: each reported once with its file line and the leaf's
 *   code, every good event stored (count and a sum checked against what the test generated),
 *   exit 2; a rerun stores nothing twice and says so;
 * - a failure part-way (a proxy in front of the leaf that starts refusing): exit 1 with how far
 *   it got; the rerun stores the rest, each event once;
 * - stdin: a new id per run unless --input-id names it;
 * - `--url` without a scheme, `--aggregator` as its alias, and nothing listening at the URL:
 *   exit 1 at once with the message (no minute of silent retries).
 *
 * Plus the library pieces without processes: batch ids, and the first contact (contact.ts).
 * Runs only when the CLI is built (`npm run build`).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchIdFor, defaultIngestOptions, ingest } from '../loader/ingest.js';
import { load } from '../loader/load.js';
import { defaultLoadOptions } from '../loader/options.js';
import type { Transport, TransportAnswer } from '../loader/transport.js';
import { freePortRange, runCli } from './support/cluster.js';
import { Rng } from './support/gen.js';
import { CLI_PATH, REPO_ROOT, leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';

const SEED = Number(process.env.SHOAL_INGEST_SEED ?? 20_260_117);
const T0 = 1_700_000_000;
const LINES = 2_000;
const BATCH_ROWS = 300;

/** Bad lines (1-based file lines) and what the leaf says about each. */
const BAD: Record<number, { text: string; code: string }> = {
  777: { text: '{"time": 1700000777, "id": 777, "n": ', code: 'SHOAL_ERR_INGEST_BODY' },
  1000: { text: JSON.stringify({ time: T0 + 1000, id: 1000, n: 'one thousand' }), code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT' },
  1500: { text: '[1, 2, 3]', code: 'SHOAL_ERR_INGEST_EVENT' },
};
const BLANK_LINE = 1_200;

interface Generated { text: string; goodCount: number; sumN: number }

/** LINES lines of events {time, id, n}: the bad ones of BAD, a blank line, the rest good. */
function generate(seed: number): Generated {
  const rng = new Rng(seed);
  const out: string[] = [];
  let goodCount = 0;
  let sumN = 0;
  for (let line = 1; line <= LINES; line++) {
    const bad = BAD[line];
    if (bad !== undefined) { out.push(bad.text); continue; }
    if (line === BLANK_LINE) { out.push(''); continue; }
    const n = rng.int(0, 1_000_000);
    out.push(JSON.stringify({ time: T0 + line, id: line, n, s: rng.pick(['api', 'web', 'db']) }));
    goodCount++;
    sumN += n;
  }
  return { text: out.join('\n') + '\n', goodCount, sumN };
}

let dir = '';
let leaf: LeafProcess | undefined;
let url = '';

async function query(sql: string): Promise<unknown[][]> {
  const res = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
  const body = await res.json() as { rows?: unknown[][] };
  if (res.status !== 200) throw new Error(`${sql}: ${JSON.stringify(body)}`);
  return body.rows!;
}

const noScheme = (u: string) => u.replace(/^http:\/\//, '');

/** A proxy in front of the leaf that forwards everything until `eventPostsMax` event posts went
 * through, then refuses every further post with 503 (a cluster that went away mid-ingest). */
async function startRefusingProxy(target: string, eventPostsMax: number): Promise<{ url: string; close(): Promise<void> }> {
  let posts = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'POST' && req.url!.includes('/events') && ++posts > eventPostsMax) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'the proxy stopped forwarding' } }));
          return;
        }
        const headers: Record<string, string> = {};
        for (const h of ['content-type', 'x-shoal-batch-id']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h] as string;
        const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
      })().catch((e: unknown) => { res.writeHead(500).end(String(e)); });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

if (!leafCliExists()) console.log(`cli-ingest.test.ts: ${CLI_PATH} is missing (run \`npm run build\`); the CLI ingest tests do not run`);

describe.runIf(leafCliExists())(`shoal ingest against a leaf (seed ${SEED})`, () => {
  const data = generate(SEED);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-cli-ingest-'));
    leaf = await startLeaf({ dataDir: path.join(dir, 'leaf'), args: ['--no-shm', '--log-level', 'warn'] });
    url = leaf.url;
  });

  afterAll(async () => {
    await leaf?.stop({ signal: 'SIGKILL' });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports each bad line once with its file line, stores every good event, exits 2; a rerun stores nothing twice', async () => {
    const file = path.join(dir, 'events.ndjson');
    fs.writeFileSync(file, data.text);
    // --url without a scheme.
    const run = await runCli(['ingest', 'ev', file, '--url', noScheme(url), '--batch-rows', String(BATCH_ROWS)], 30_000);
    expect(run.code, run.stderr).toBe(2);
    const reported = [...run.stderr.matchAll(/^shoal ingest: (.+):(\d+): (SHOAL_ERR_\w+): (.*)$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(reported).toEqual(Object.entries(BAD).map(([line, b]) => [file, Number(line), b.code]));
    // One line number per rejection: the leaf's batch-relative one is not in the message.
    expect(run.stderr).not.toMatch(/\(row \d+\)|line \d+ is/);
    expect(run.stdout.trim()).toBe(`accepted ${data.goodCount.toLocaleString('en-US')} events into ev; 3 lines rejected (first: line 777: SHOAL_ERR_INGEST_BODY: not valid JSON: ${errorOf(BAD[777]!.text)})`);
    expect(await query('SELECT count(*), sum(n), count(DISTINCT id) FROM ev')).toEqual([[data.goodCount, data.sumN, data.goodCount]]);

    const again = await runCli(['ingest', 'ev', file, '--url', url, '--batch-rows', String(BATCH_ROWS)], 30_000);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stdout).toContain(`(${data.goodCount.toLocaleString('en-US')} of them already stored by an earlier run of the same input: not stored again)`);
    expect(await query('SELECT count(*), sum(n) FROM ev')).toEqual([[data.goodCount, data.sumN]]);
  });

  it('a clean file exits 0; the same lines into another table are stored there too', async () => {
    const file = path.join(dir, 'clean.ndjson');
    fs.writeFileSync(file, Array.from({ length: 50 }, (_, i) => JSON.stringify({ time: T0 + i, n: i })).join('\n'));
    for (const table of ['clean_a', 'clean_b']) {
      const run = await runCli(['ingest', table, file, '--url', url, '--batch-rows', '20']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout.trim()).toBe(`accepted 50 events into ${table}`);
      expect(run.stderr).toBe('');
      expect(await query(`SELECT count(*), sum(n) FROM ${table}`)).toEqual([[50, 1225]]);
    }
  });

  it('stops with exit 1 when the server goes away part-way, and the rerun stores the rest, each event once', async () => {
    const file = path.join(dir, 'partial.ndjson');
    fs.writeFileSync(file, data.text);
    // 2 posts get through: batch 1 (lines 1..300) and batch 2 (301..600); batch 3 is refused.
    const proxy = await startRefusingProxy(url, 2);
    try {
      const run = await runCli(['ingest', 'partial', file, '--url', proxy.url, '--batch-rows', String(BATCH_ROWS), '--retries', '1'], 30_000);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim()).toMatch(new RegExp(`^shoal ingest: SHOAL_ERR_LOAD_SEND: gave up on the batch of ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} lines 601\\.\\.900 after 1 attempts; last: HTTP 503 SHOAL_ERR_UNAVAILABLE: the proxy stopped forwarding; before that: accepted 600 events into partial; run the same command again`));
    } finally {
      await proxy.close();
    }
    expect(await query('SELECT count(*) FROM partial')).toEqual([[600]]);
    const rerun = await runCli(['ingest', 'partial', file, '--url', url, '--batch-rows', String(BATCH_ROWS)], 30_000);
    expect(rerun.code, rerun.stderr).toBe(2);
    expect(rerun.stdout).toContain('(600 of them already stored by an earlier run of the same input');
    expect(await query('SELECT count(*), sum(n), count(DISTINCT id) FROM partial')).toEqual([[data.goodCount, data.sumN, data.goodCount]]);
  });

  it('stdin: a new id per run, unless --input-id names the input', () => {
    const ingestStdin = (table: string, extra: string[]) => spawnSync(process.execPath, [CLI_PATH, 'ingest', table, '-', '--url', url, ...extra],
      { cwd: REPO_ROOT, encoding: 'utf8', input: '{"host":"a","up":1}\n{"host":"b","up":1}\n' });
    for (let k = 0; k < 2; k++) expect(ingestStdin('beats', []).status).toBe(0);
    const first = ingestStdin('named', ['--input-id', 'hosts-2026-01-17']);
    const second = ingestStdin('named', ['--input-id', 'hosts-2026-01-17']);
    expect([first.status, second.status]).toEqual([0, 0]);
    expect(second.stdout.trim()).toBe('accepted 2 events into named (2 of them already stored by an earlier run of the same input: not stored again)');
    return Promise.all([query('SELECT count(*) FROM beats'), query('SELECT count(*) FROM named')]).then(([beats, named]) => {
      expect(beats).toEqual([[4]]);
      expect(named).toEqual([[2]]);
    });
  });

  it('load: --url without a scheme, and --aggregator as its alias', async () => {
    const file = path.join(dir, 'load.ndjson');
    fs.writeFileSync(file, Array.from({ length: 30 }, (_, i) => JSON.stringify({ time: T0 + i, n: i })).join('\n'));
    const byUrl = await runCli(['load', file, '--table', 'by_url', '--url', noScheme(url), '--quiet']);
    expect(byUrl.code, byUrl.stderr).toBe(0);
    const byAlias = await runCli(['load', file, '--table', 'by_alias', '--aggregator', url, '--quiet']);
    expect(byAlias.code, byAlias.stderr).toBe(0);
    expect(await query('SELECT count(*), sum(n) FROM by_url')).toEqual([[30, 435]]);
    expect(await query('SELECT count(*), sum(n) FROM by_alias')).toEqual([[30, 435]]);
    const both = await runCli(['load', file, '--table', 'both', '--url', url, '--aggregator', 'http://127.0.0.1:1', '--quiet']);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('shoal load: --url and --aggregator name different servers');
  });

  it('load, ingest and tail with nothing listening at the URL fail at once with exit 1', async () => {
    const port = await freePortRange(0);
    const nowhere = `http://127.0.0.1:${port}`;
    const message = `cannot reach ${nowhere} (connection refused): is shoal running? start one with \`shoal up\`, or pass --url`;
    const file = path.join(dir, 'nowhere.ndjson');
    fs.writeFileSync(file, '{"time": 1700000000, "n": 1}\n');
    const state = path.join(dir, 'nowhere.tail.json');
    const runs = await Promise.all([
      runCli(['load', file, '--table', 'nowhere', '--url', nowhere, '--quiet'], 10_000),
      runCli(['ingest', 'nowhere', file, '--url', noScheme(nowhere)], 10_000),
      runCli(['tail', file, '--table', 'nowhere', '--url', nowhere, '--state-file', state], 10_000),
    ]);
    expect(runs.map((r) => [r.code, r.stderr.trim()])).toEqual([
      [1, `shoal load: ${message}`],
      [1, `shoal ingest: ${message}`],
      [1, `shoal tail: ${message}`],
    ]);
    // The tail stopped before it started following: no state file.
    expect(fs.existsSync(state)).toBe(false);
  }, 15_000);
});

/** What JSON.parse says about a text (the leaf's message for a line that is not JSON). */
function errorOf(text: string): string {
  try { JSON.parse(text); } catch (e) { return (e as Error).message; }
  throw new Error(`${text} parses`);
}

describe('ingest library: batch ids and the first contact', () => {
  const ok = (accepted: number): TransportAnswer => ({ status: 200, body: { accepted }, retryAfterMs: null, error: null });
  const refused: TransportAnswer = { status: 0, body: null, retryAfterMs: null, error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9' };

  it('batch ids depend on table, input id, batch number and content, not on the run', () => {
    const id = batchIdFor('t', '', 3, '{"a":1}');
    expect(id).toMatch(/^ingest-[0-9a-f]{24}-3$/);
    expect(batchIdFor('t', '', 3, '{"a":1}')).toBe(id);
    // Two identical batches of one input are two batches.
    expect(batchIdFor('t', '', 4, '{"a":1}')).not.toBe(id);
    expect(batchIdFor('u', '', 3, '{"a":1}')).not.toBe(id);
    expect(batchIdFor('t', 'x', 3, '{"a":1}')).not.toBe(id);
    expect(batchIdFor('t', '', 3, '{"a":2}')).not.toBe(id);
  });

  it('sends the same ids for the same input, with each part of a rejected batch under <id>.<k>', async () => {
    const runIds = async () => {
      const ids: string[] = [];
      const rejected: number[] = [];
      const t: Transport = {
        async postEvents(_table, body, batchId) {
          ids.push(batchId);
          const lines = body.split('\n');
          const bad = lines.findIndex((l) => l.includes('bad'));
          if (bad >= 0) return { status: 400, body: { error: { code: 'SHOAL_ERR_INGEST_VALUE', message: `line ${bad + 1} (row ${bad}), column "v": bad value`, row: bad, line: bad + 1, column: 'v' } }, retryAfterMs: null, error: null };
          return ok(lines.length);
        },
        getJson: async () => ({ status: 404, body: null, retryAfterMs: null, error: null }),
        close: async () => {},
      };
      const input = ['{"v":1}', '{"v":1}', '', '{"v":"bad"}', '{"v":1}', '{"v":1}'].join('\n');
      const summary = await ingest({ ...defaultIngestOptions('in', 't'), batchRows: 4 }, [Buffer.from(input)], { transport: t, onReject: (r) => rejected.push(r.position) });
      return { ids, rejected, summary };
    };
    const a = await runIds();
    const b = await runIds();
    expect(b.ids).toEqual(a.ids);
    expect(a.rejected).toEqual([4]);
    // Batch 0 (lines 1, 2, 4, 5) is rejected at line 4, then sent as two parts; batch 1 is line 6.
    expect(a.ids.map((id) => id.replace(/^ingest-[0-9a-f]{24}-/, ''))).toEqual(['0', '0.1', '0.2', '1']);
    expect(a.summary).toMatchObject({ linesRead: 6, rowsAccepted: 4, rowsRejected: 1, firstRejected: { position: 4, code: 'SHOAL_ERR_INGEST_VALUE', message: 'column "v": bad value' }, error: null });
  });

  it('a refused first contact fails at once; a reset or a 503 there goes on to the retries', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-contact-'));
    try {
      const file = path.join(tmp, 'one.ndjson');
      fs.writeFileSync(file, '{"time": 1700000000, "n": 1}\n');
      let posts = 0;
      const transport = (first: TransportAnswer): Transport => ({
        postEvents: async () => { posts++; return ok(1); },
        getJson: async () => first,
        close: async () => {},
      });
      await expect(load(defaultLoadOptions([file], 't'), { transport: transport(refused) })).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_SEND', message: expect.stringContaining('(connection refused): is shoal running?') });
      await expect(ingest(defaultIngestOptions('in', 't'), [Buffer.from('{"n":1}\n')], { transport: transport(refused) })).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_SEND' });
      expect(posts).toBe(0);
      const reset: TransportAnswer = { status: 0, body: null, retryAfterMs: null, error: 'ECONNRESET: socket hang up' };
      const unavailable: TransportAnswer = { status: 503, body: { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'starting' } }, retryAfterMs: 1000, error: null };
      for (const first of [reset, unavailable]) {
        expect((await load(defaultLoadOptions([file], 't'), { transport: transport(first) })).rowsAccepted).toBe(1);
      }
      expect(posts).toBe(2);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
