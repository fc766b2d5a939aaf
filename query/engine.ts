/**
 * The query engine's entry points, used by the leaf (server/leaf/leaf.ts), the aggregator and the
 * scan workers: SQL text -> plan, plan + blocks -> Partial, Partials -> answer. Everything here
 * is synchronous and knows nothing of HTTP, threads or processes.
 */
import { analyze } from './plan/analyze.js';
import { bind, type BoundPlan, type SchemaLike } from './plan/bind.js';
import { ShoalError } from './errors.js';
import { LIMITS } from './limits.js';
import { parseSql } from './sql/parser.js';
import type { LogicalPlan } from './plan/plan.js';
import type { Partial } from './plan/partial.js';
import { scan } from './exec/scan.js';
import { emptyGroups } from './merge/merge.js';
import type { ScanBlock } from './storage/table.js';

export { finish, mergePartials, type QueryResult } from './merge/merge.js';
export { runNested, type CatalogTable } from './merge/relation.js';
export { partialFromWire, partialToWire } from './merge/partial-wire.js';
export { cutForRequest, cutIsExact, topCutRows, topCutSpec, type TopCutPlan, type TopCutSpec } from './merge/top-cut.js';
export { apiRows } from './plan/wire.js';
export { envelopeJson, openPlan, PLAN_VERSION, PLAN_VERSIONS, planMinVersion, resealPlan, sealPlan, type PlanEnvelope } from './plan/protocol.js';
export type { Partial } from './plan/partial.js';

export function planQuery(sql: string, nowSeconds: number): LogicalPlan {
  if (typeof sql !== 'string' || sql.trim() === '') throw new ShoalError('SHOAL_ERR_QUERY_REQUEST', 'sql must be a non-empty string');
  if (sql.length > LIMITS.sqlLengthMax) throw new ShoalError('SHOAL_ERR_QUERY_LIMIT', `SQL text is ${sql.length} characters; the limit is ${LIMITS.sqlLengthMax}`);
  return analyze(parseSql(sql), nowSeconds);
}

export function bindQuery(plan: LogicalPlan, schema: SchemaLike, nowSeconds: number, lenient: boolean): BoundPlan {
  return bind(plan, schema, nowSeconds, lenient);
}

export function scanBlocks(bound: BoundPlan, blocks: readonly ScanBlock[], tableFound = true, leafColumns: ReadonlySet<string> | null = null): Partial {
  return scan(bound, blocks, tableFound, leafColumns);
}

/** A Partial for a table this process does not have: no rows, nothing unknown. */
export function emptyPartial(plan: LogicalPlan): Partial {
  const stats = { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0 };
  if (plan.mode === 'rows') return { mode: 'rows', tableFound: false, columns: [], rows: [], orderValues: [], truncated: false, unknownColumns: [], stats };
  return {
    mode: 'aggregate', tableFound: false, columns: plan.outputs.map((o) => ({ name: o.name, type: 'null' as const })),
    groups: emptyGroups(plan), unknownColumns: [], stats,
  };
}
