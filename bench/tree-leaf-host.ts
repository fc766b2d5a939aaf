/**
 * One "leaf host" for bench/tree.ts: a process running many leaves, each a real Leaf with its own
 * fastify app listening on its own loopback port, so an aggregator sees distinct members exactly
 * as it would see separate processes.
 *
 *   node dist/bench/tree-leaf-host.js --first 0 --leaves 25 [--rows-per-leaf 20000] [--seed 42]
 *     [--end-seconds UNIX_SECONDS]
 *
 * Why leaves share a process: 200 leaf processes on a 2-core machine would spend the cores on 200
 * event loops, 200 V8 heaps (~50 MB each before any data) and their GC, not on the fan-out under
 * study. A few hosts hold them all. What that changes: the leaves of one host share its event
 * loop, so a leaf's answer waits behind its siblings' scans (per-leaf latency includes that
 * queueing). It is the same for the flat and the tree setups (the same hosts, the same leaves),
 * so the comparison is fair; absolute latencies are pessimistic.
 *
 * Each leaf: --workers 1, no disk log, no shared memory, no ingest threads (every batch decodes on
 * the host's event loop), log level warn; 20k rows keep every scan inline on the event loop
 * (under inlineScanRowsMax), so the leaves' scan threads stay idle. Leaf i holds
 * `--rows-per-leaf` rows of bench/data.ts seeded with `seed + i` (different rows per leaf, the
 * same every run), loaded through its own HTTP route (fastify inject: the body is parsed and
 * stored as over a socket, without moving hundreds of MB between processes).
 *
 * Once every leaf serves and holds its rows this prints one JSON line on stdout:
 * `{"pid", "leaves": [{"id", "url", "rows"}, ...]}`. SIGTERM or SIGINT closes every app and its
 * threads and exits; so does the parent going away (stdin closes).
 *
 * Imports server/ directly (bench/README.md: the exceptions): the leaf code is what is hosted.
 */
import os from 'node:os';
import { CONTENT_TYPE, generateColumns, renderBodies } from './data.js';
import { defaultLeafConfig, type LeafConfig } from '../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../server/leaf/leaf.js';
import { intFlag, parseFlags } from './support.js';

const FLAGS = [
  { name: 'first', value: true, help: 'index of this host\'s first leaf (0)' },
  { name: 'leaves', value: true, help: 'leaves on this host (25)' },
  { name: 'rows-per-leaf', value: true, help: 'rows loaded into each leaf (20000)' },
  { name: 'seed', value: true, help: 'data seed; leaf i uses seed + i (42)' },
  { name: 'end-seconds', value: true, help: 'the rows\' time ends here (default: now)' },
];
/** Rows per ingest body: ~0.9 MB of NDJSON, well under the body limit. */
const BATCH_ROWS = 5_000;
/** A leaf's share of the host's memory is tiny; its budget only needs to hold its rows. */
const LEAF_MEMORY_BUDGET_BYTES = 256 * 2 ** 20;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const first = intFlag(flags, 'first', 0, 0, 100_000);
  const leafCount = intFlag(flags, 'leaves', 25, 1, 1_024);
  const rowsPerLeaf = intFlag(flags, 'rows-per-leaf', 20_000, 0, 10_000_000);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 32 - 1);
  const endSeconds = intFlag(flags, 'end-seconds', Math.floor(Date.now() / 1000), 0, 2 ** 31 - 1);

  const hosted: { leaf: Leaf; app: ReturnType<typeof buildLeafApp>; id: string; url: string; rows: number }[] = [];
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= (async () => {
    await Promise.allSettled(hosted.map(async (h) => { await h.app.close(); await h.leaf.closePools(); }));
    process.exit(0);
  })());
  process.on('SIGTERM', () => void close());
  process.on('SIGINT', () => void close());
  process.stdin.on('end', () => void close());
  process.stdin.resume();

  for (let i = first; i < first + leafCount; i++) {
    const id = `tree-leaf-${i}`;
    const config: LeafConfig = {
      ...defaultLeafConfig(), host: '127.0.0.1', port: 0, dataDir: os.tmpdir(), leafId: id,
      workers: 1, diskLog: false, shm: false, ingestWorkers: 0, memoryBudgetBytes: LEAF_MEMORY_BUDGET_BYTES, logLevel: 'warn',
    };
    const leaf = new Leaf(config, id);
    leaf.state = 'serving';
    const app = buildLeafApp(leaf);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    if (addr === null || typeof addr !== 'object') throw new Error(`${id}: no listening address`);
    const url = `http://127.0.0.1:${addr.port}`;
    let rows = 0;
    if (rowsPerLeaf > 0) {
      const bodies = renderBodies(generateColumns((seed + i) >>> 0, rowsPerLeaf, endSeconds), 'ndjson', BATCH_ROWS);
      for (const body of bodies) {
        const res = await app.inject({ method: 'POST', url: '/v1/tables/bench/events', payload: body, headers: { 'content-type': CONTENT_TYPE.ndjson } });
        if (res.statusCode !== 200) throw new Error(`${id}: ingest answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
        rows += (res.json() as { accepted: number }).accepted;
      }
    }
    hosted.push({ leaf, app, id, url, rows });
  }
  process.stdout.write(JSON.stringify({ pid: process.pid, leaves: hosted.map((h) => ({ id: h.id, url: h.url, rows: h.rows })) }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/tree-leaf-host: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
