/**
 * Worker-thread entry of the scan pool (piscina). A task carries the query's plan (never its
 * SQL: the plan is the protocol, query/plan/protocol.ts, so a worker computes what the leaf and
 * the aggregator expect, with the same now()), the table schema and the sealed blocks to scan. Blocks are SharedArrayBuffer-backed, so posting them shares memory instead of copying;
 * decoded dictionaries are cached per block id (ids are never reused within a process).
 */
import { bindQuery, scanBlocks, type Partial } from '../../query/engine.js';
import type { LogicalPlan } from '../../query/plan/plan.js';
import { isShoalError } from '../../query/errors.js';
import { SealedBlock } from '../../query/storage/table.js';
import type { BlockData, ColumnType } from '../../query/storage/types.js';

export interface ScanTask {
  plan: LogicalPlan;
  nowSeconds: number;
  schema: [string, ColumnType][];
  lenient: boolean;
  blocks: BlockData[];
}

/** Decoded-dictionary cache: bounded by block count (a block's dictionaries are <= a few MB). */
const CACHE_BLOCKS_MAX = 4096;
const cache = new Map<number, SealedBlock>();

function blockOf(data: BlockData): SealedBlock {
  let b = cache.get(data.id);
  if (b === undefined) {
    b = new SealedBlock(data);
    if (cache.size >= CACHE_BLOCKS_MAX) cache.delete(cache.keys().next().value!);
    cache.set(data.id, b);
  }
  return b;
}

/** Errors cross the thread boundary as data: structured clone would drop a ShoalError's code. */
export type ScanOutcome = { ok: Partial } | { error: { code: string; message: string; where?: unknown } };

export default function runScan(task: ScanTask): ScanOutcome {
  try {
    const schema = new Map(task.schema.map(([name, type]) => [name, { type }]));
    const bound = bindQuery(task.plan, schema, task.nowSeconds, task.lenient);
    return { ok: scanBlocks(bound, task.blocks.map(blockOf)) };
  } catch (e) {
    if (isShoalError(e)) return { error: { code: e.code, message: e.message, where: e.where } };
    return { error: { code: 'SHOAL_ERR_INTERNAL', message: `scan worker: ${(e as Error).stack ?? String(e)}` } };
  }
}
