/**
 * How long a leaf's event loop stays shut while it answers one heavy partial query:
 *
 *   node dist/bench/query-stall.js [--rows 500000] [--runs 4] [--sql "..."] [--seed 42]
 *
 * One leaf (--workers 1, --no-shm, the default disk log) gets --rows of the bench's events; then
 * the query (default: per endpoint, p99 and count(DISTINCT user_id), the one that starved health
 * checks in bench/cluster.ts) runs --runs times as an aggregator asks it (`partial: true`), once
 * first as a user's query. Meanwhile a worker thread of this process polls the leaf's
 * /v1/status every 10 ms (as an aggregator's health check would) and keeps its longest answer;
 * the poller runs outside this thread, so parsing the big answer here does not count. Printed
 * per run: the query's time, the longest status answer, the answer's bytes. Nothing is appended
 * to bench/RESULTS.md (quote a run there with its command).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CONTENT_TYPE, generateColumns, renderBodies } from './data.js';
import { intFlag, newPool, parseFlags, postJson, sendBatches, startLeaf } from './support.js';

const FLAGS = [
  { name: 'rows', value: true, help: 'events in the table (500000)' },
  { name: 'runs', value: true, help: 'partial queries measured (4)' },
  { name: 'sql', value: true, help: 'the query (per endpoint: p99 and count(DISTINCT user_id))' },
  { name: 'seed', value: true, help: 'data seed (42)' },
];

// The poller: a thread of its own with plain node:http (keep-alive), so this thread's work
// (sending, parsing answers) does not delay its requests.
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let maxMs = 0; let running = false;
parentPort.on('message', (m) => { if (m === 'start') { maxMs = 0; running = true; } else { running = false; parentPort.postMessage(maxMs); } });
const once = () => new Promise((resolve) => {
  const t = performance.now();
  http.get(workerData.url + '/v1/status', { agent }, (res) => { res.resume(); res.on('end', () => { maxMs = Math.max(maxMs, performance.now() - t); resolve(); }); }).on('error', () => resolve());
});
(async () => { for (;;) { if (running) await once(); await new Promise((r) => setTimeout(r, 10)); } })();
`;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const rows = intFlag(flags, 'rows', 500_000, 1_000, 100_000_000);
  const runs = intFlag(flags, 'runs', 4, 1, 1_000);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 31);
  const sqlFlag = flags.get('sql');
  const sql = typeof sqlFlag === 'string' ? sqlFlag : 'SELECT endpoint, p99(latency_ms) AS p, count(DISTINCT user_id) AS u FROM bench GROUP BY endpoint ORDER BY endpoint';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-stall-'));
  const leaf = await startLeaf({ dataDir: dir, args: ['--workers', '1', '--no-shm'] });
  const poller = new Worker(POLLER, { eval: true, workerData: { url: leaf.url } });
  try {
    const pool = newPool(leaf.url, 4);
    const c = generateColumns(seed, rows, Math.floor(Date.now() / 1000));
    await sendBatches(pool, 'bench', renderBodies(c, 'ndjson', 1000), CONTENT_TYPE.ndjson, 4);
    console.log(`${rows} rows, query: ${sql}`);
    for (let i = 0; i <= runs; i++) {
      const partial = i > 0;
      poller.postMessage('start');
      await new Promise((r) => setTimeout(r, 50));
      const t = performance.now();
      const r = await postJson(pool, '/v1/query', JSON.stringify({ sql, partial }));
      const ms = performance.now() - t;
      const longest = new Promise<number>((resolve) => poller.once('message', resolve));
      poller.postMessage('stop');
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
      console.log(`${partial ? 'partial' : 'user   '} query ${ms.toFixed(0)} ms, longest /v1/status ${(await longest).toFixed(0)} ms, answer ${JSON.stringify(r.body).length} B`);
    }
    await pool.close();
  } finally {
    await poller.terminate();
    await leaf.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
