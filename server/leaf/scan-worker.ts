/**
 * Worker-thread entry of the scan pool (piscina). A task carries the query's plan (never its
 * SQL: the plan is the protocol, query/plan/protocol.ts, so a worker computes what the leaf and
 * the aggregator expect, with the same now()), the table schema and the sealed blocks to scan.
 * Blocks are SharedArrayBuffer-backed, so posting them shares memory instead of copying. A worker
 * keeps each block it has seen (by id: ids are never reused within a process) with its string
 * code maps (query/storage/string-codes.ts), until the block is dropped by its table (the task
 * lists recent drops), pushed out by CACHE_BLOCKS_MAX, or the code table starts over. A task may
 * also carry the leaf's code maps for some columns (LeafCodesTask): those the worker groups by
 * without its own table.
 */
import { threadId } from 'node:worker_threads';
import { bindQuery, scanBlocks, type Partial } from '../../query/engine.js';
import type { LogicalPlan } from '../../query/plan/plan.js';
import { isShoalError } from '../../query/errors.js';
import { leafSpace, threadCodes, trimStringCodes } from '../../query/storage/string-codes.js';
import { SealedBlock } from '../../query/storage/table.js';
import type { BlockData, ColumnType } from '../../query/storage/types.js';

export interface ScanTask {
  plan: LogicalPlan;
  nowSeconds: number;
  schema: [string, ColumnType][];
  lenient: boolean;
  blocks: BlockData[];
  /** Bound of this thread's string codes and code maps (bytes), from the leaf's memory budget. */
  codesBytesMax: number;
  /** Blocks the leaf's tables dropped: the last ids of its drop log, and how many ever. */
  dropped: number[];
  dropSeq: number;
  /** The leaf's code maps (string-codes.ts, `leafSpace`) of the columns this scan groups or
   * counts distinct by, one record per block (shared memory: posting does not copy), with the
   * size and generation of the main thread's table when they were handed out. */
  leaf: LeafCodesTask | null;
}

export interface LeafCodesTask {
  columns: string[];
  size: number;
  generation: number;
  /** Each leaf code's approx_count_distinct hash pair (shared), or null. */
  hashes: Int32Array | null;
  maps: Record<string, Int32Array>[];
}

/** Blocks known to this worker (a code map is 4 bytes per dictionary entry; the data is shared). */
const CACHE_BLOCKS_MAX = 4096;
const cache = new Map<number, SealedBlock>();
let seenDropSeq = 0;

function forget(id: number): void {
  const b = cache.get(id);
  if (b === undefined) return;
  b.forgetCodes();
  cache.delete(id);
}

/** Forgets the blocks dropped since the last task; all of them if the log no longer reaches back. */
function applyDrops(task: ScanTask): void {
  const missed = task.dropSeq - seenDropSeq;
  if (missed > task.dropped.length) { for (const id of [...cache.keys()]) forget(id); }
  else for (let i = task.dropped.length - missed; i < task.dropped.length; i++) forget(task.dropped[i]!);
  seenDropSeq = task.dropSeq;
}

function blockOf(data: BlockData): SealedBlock {
  let b = cache.get(data.id);
  if (b === undefined) {
    b = new SealedBlock(data);
    if (cache.size >= CACHE_BLOCKS_MAX) forget(cache.keys().next().value!);
    cache.set(data.id, b);
  }
  return b;
}

/** Errors cross the thread boundary as data: structured clone would drop a ShoalError's code.
 * `codesBytes`: what this worker's string codes and code maps hold after the task. */
export type ScanOutcome = ({ ok: Partial } | { error: { code: string; message: string; where?: unknown } }) & { thread: number; codesBytes: number; codesResets: number };

/** `codesResets`: how often this worker's table has started over (its generation - 1). */
const codes = () => ({ thread: threadId, codesBytes: threadCodes.bytes + threadCodes.mapBytes, codesResets: threadCodes.generation - 1 });

export default function runScan(task: ScanTask): ScanOutcome {
  applyDrops(task);
  trimStringCodes(task.codesBytesMax);
  try {
    const schema = new Map(task.schema.map(([name, type]) => [name, { type }]));
    const bound = bindQuery(task.plan, schema, task.nowSeconds, task.lenient);
    const blocks = task.blocks.map(blockOf);
    const leaf = task.leaf;
    if (leaf === null) return { ok: scanBlocks(bound, blocks), ...codes() };
    leafSpace.size = leaf.size;
    leafSpace.generation = leaf.generation;
    leafSpace.hashes = leaf.hashes;
    blocks.forEach((b, i) => { b.leafMaps = leaf.maps[i]!; });
    try {
      return { ok: scanBlocks(bound, blocks, true, new Set(leaf.columns)), ...codes() };
    } finally {
      // The maps belong to this task's generation: never read by a later task.
      for (const b of blocks) b.leafMaps = null;
    }
  } catch (e) {
    if (isShoalError(e)) return { error: { code: e.code, message: e.message, where: e.where }, ...codes() };
    return { error: { code: 'SHOAL_ERR_INTERNAL', message: `scan worker: ${(e as Error).stack ?? String(e)}` }, ...codes() };
  }
}
