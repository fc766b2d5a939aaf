/**
 * Writes a leaf's data directory holding about `--bytes` of table data, for bench/restart.ts, with
 * the leaf's own code: rows from data.ts (seeded) are decoded by the leaf's ingest path
 * (LeafStore.decode/apply: JSON -> columnar -> sealed 65,536-row blocks), and the checkpoint that
 * writes them is the leaf's (DiskStore.checkpoint: block image files with CRC-32C, fsync'd, then
 * manifest.json). A leaf started on the directory recovers it as it would after a crash.
 *
 *   node dist/bench/restart-datadir.js --dir DIR --id LEAF_ID --bytes N [--seed 42] [--templates 8]
 *
 * Prints one JSON line: {rows, blocks, imageBytes, tableBytes, ms}.
 *
 * Why not ingest over HTTP, as the other benchmarks do (bench/README.md: they drive the server as
 * a process only): one leaf ingests ~10-20 MB/s of columnar data over HTTP on 2 cores, so 4 GB
 * would take minutes per size before anything is measured. Here only `--templates` blocks go
 * through the decoder; every further block is a copy of one of them whose `time` column is
 * shifted back by whole weeks (so blocks cover distinct time ranges and block pruning still
 * sees different blocks). Every block gets its own file and, in the leaf, its own memory:
 * restore and handoff costs are per byte and per block, and do not depend on the values.
 *
 * This file is the one place in bench/ that imports server/ and query/; the measurements in
 * restart.ts talk to real leaf processes only.
 */
import fs from 'node:fs';
import { pino } from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { allocateBlockId, SealedBlock, Table } from '../query/storage/table.js';
import type { ColumnData } from '../query/storage/types.js';
import { DiskStore } from '../server/durability/disk-store.js';
import { LeafStore } from '../query/storage/leaf-store.js';
import { generateColumns, renderBodies, SPAN_SECONDS } from './data.js';
import { intFlag, parseFlags } from './support.js';

export const DATADIR_TABLE = 'events';
const BLOCK_ROWS = 65_536;
const TEMPLATES_MAX = 64;
/** 64 GB: more than this machine holds; catches a unit mistake. */
const BYTES_MAX = 64e9;

function shiftedTime(values: Int32Array | Float64Array, shiftSeconds: number): Int32Array | Float64Array {
  const out = values instanceof Int32Array
    ? new Int32Array(new SharedArrayBuffer(values.byteLength))
    : new Float64Array(new SharedArrayBuffer(values.byteLength));
  for (let i = 0; i < values.length; i++) out[i] = values[i]! - shiftSeconds;
  return out;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), [
    { name: 'dir', value: true, help: 'data directory to create (must not exist or be empty)' },
    { name: 'id', value: true, help: 'leaf id the directory belongs to' },
    { name: 'bytes', value: true, help: 'table bytes to write (block images), e.g. 1000000000' },
    { name: 'seed', value: true, help: 'data seed (default 42)' },
    { name: 'templates', value: true, help: 'distinct blocks decoded from rows (default 8)' },
  ]);
  const dir = flags.get('dir');
  const leafId = flags.get('id');
  if (typeof dir !== 'string' || typeof leafId !== 'string') throw new Error('--dir and --id are required');
  const targetBytes = Number(flags.get('bytes'));
  if (!Number.isFinite(targetBytes) || targetBytes < 1 || targetBytes > BYTES_MAX) throw new Error(`--bytes: expected 1..${BYTES_MAX}`);
  const seed = intFlag(flags, 'seed', 42, 0, 2 ** 31);
  const templateCount = intFlag(flags, 'templates', 8, 1, TEMPLATES_MAX);
  const started = performance.now();

  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length > 0) throw new Error(`${dir} is not empty`);
  fs.writeFileSync(`${dir}/leaf-id`, leafId + '\n');
  const store = new LeafStore(Number.MAX_SAFE_INTEGER);
  const logger = pino({ level: 'warn' }) as unknown as FastifyBaseLogger;
  const disk = new DiskStore(dir, leafId, store, { fsync: 'interval', fsyncIntervalMs: 200, checkpointBytes: 2 ** 40, checkpointIntervalMs: 2 ** 30 }, logger);
  disk.recover(); // empty directory: opens the log

  // Templates through the leaf's decoder, one 65,536-row body each (sealed when full).
  const endSeconds = Math.floor(Date.now() / 1000);
  const columns = generateColumns(seed, templateCount * BLOCK_ROWS, endSeconds);
  for (const body of renderBodies(columns, 'ndjson', BLOCK_ROWS)) {
    const rec = { table: DATADIR_TABLE, nowSeconds: endSeconds, format: 'ndjson' as const, body, batchId: null };
    const { batch } = store.decode(rec);
    store.apply(rec, batch);
  }
  const source = store.tables.get(DATADIR_TABLE)!;
  source.sealOpen();
  const templates = source.sealed;
  if (templates.length !== templateCount) throw new Error(`expected ${templateCount} template blocks, got ${templates.length}`);

  // The table the leaf will hold: copies of the templates, each its own block.
  const table = new Table(DATADIR_TABLE);
  for (const c of source.schemaList()) table.schema.set(c.name, c);
  store.tables.set(DATADIR_TABLE, table);
  let rows = 0;
  for (let i = 0; table.byteSize < targetBytes; i++) {
    const t = templates[i % templateCount]!;
    const shift = Math.floor(i / templateCount) * SPAN_SECONDS;
    const time = t.data.columns['time'] as Extract<ColumnData, { kind: 'number' }>;
    const block = new SealedBlock({
      ...t.data,
      id: allocateBlockId(),
      timeMin: t.timeMin - shift,
      timeMax: t.timeMax - shift,
      columns: { ...t.data.columns, time: { kind: 'number', values: shiftedTime(time.values, shift), validity: null } },
    });
    table.addSealed(block);
    rows += block.rowCount;
  }
  await disk.checkpoint();
  await disk.close();
  const imageBytes = Object.values(disk.manifest.tables).flatMap((t) => t.blocks).reduce((s, b) => s + b.bytes, 0);
  process.stdout.write(JSON.stringify({ rows, blocks: table.sealed.length, imageBytes, tableBytes: table.byteSize, ms: Math.round(performance.now() - started) }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/restart-datadir: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(2);
});
