/**
 * One schema per cluster, at query time: the router refuses a batch whose types conflict with
 * the cluster's once it knows them (router.ts), but two leaves can learn different types for a
 * new column at the same moment, before either status reaches the router. A query that uses such
 * a column would mix `200` and `"200"` in one GROUP BY, or count the leaf that fails its type
 * check as an outage. So before merging, the aggregator compares the types the answering members
 * hold for every column the query names, and refuses with SHOAL_ERR_QUERY_SCHEMA_CONFLICT (409)
 * naming the column, the types and the members.
 *
 * The types come from the members' statuses; each answer carries the member's schemaVersion, and
 * a member whose answer is newer than its last status is asked for its status again first, so a
 * conflict born a moment before the query is still seen.
 *
 * Not here: the fan-out (cluster-query.ts), the ingest-time check (router.ts, leaf-store.ts).
 */
import { ShoalError } from '../../query/errors.js';
import { LIMITS } from '../../query/limits.js';
import type { LogicalPlan } from '../../query/plan/plan.js';
import type { ColumnType } from '../../query/storage/types.js';
import { mapBounded } from './fanout.js';
import { typeFamily, type Member, type Membership } from './membership.js';

interface NamedColumn { readonly name: string; readonly quoted: boolean }

/** Every column reference in the parts of a plan a leaf binds (found by walking the AST nodes,
 * so a new expression kind cannot hide a column); `star` for SELECT *. Bounded by the plan's own
 * limits (expression depth, select items). */
export function referencedColumns(plan: LogicalPlan): { columns: NamedColumn[]; star: boolean } {
  const found = new Map<string, NamedColumn>();
  const walk = (node: unknown, depth: number): void => {
    if (typeof node !== 'object' || node === null || depth > LIMITS.exprDepthMax * 2) return;
    if (Array.isArray(node)) { for (const x of node) walk(x, depth + 1); return; }
    const n = node as { kind?: unknown; name?: unknown; quoted?: unknown };
    if (n.kind === 'column' && typeof n.name === 'string') {
      const quoted = n.quoted === true;
      found.set(`${quoted}:${n.name}`, { name: n.name, quoted });
      return;
    }
    for (const v of Object.values(node)) walk(v, depth + 1);
  };
  walk(plan.where, 0);
  walk(plan.keys, 0);
  walk(plan.aggs.map((a) => a.arg), 0);
  walk(plan.projections.map((p) => p.expr), 0);
  walk(plan.rowOrder, 0);
  for (const u of plan.ungrouped) found.set(`${u.quoted}:${u.name}`, { name: u.name, quoted: u.quoted });
  return { columns: [...found.values()], star: plan.star };
}

/** The member's column a reference names, the way the binder resolves it: exact, else an
 * unquoted name matched case-insensitively when that is unambiguous. */
function resolve(schema: ReadonlyMap<string, ColumnType>, ref: NamedColumn): string | null {
  if (schema.has(ref.name)) return ref.name;
  if (ref.quoted) return null;
  const lower = ref.name.toLowerCase();
  const matches = [...schema.keys()].filter((n) => n.toLowerCase() === lower);
  return matches.length === 1 ? matches[0]! : null;
}

export interface Holder {
  readonly member: Member;
  /** The schemaVersion the member's answer carried (null: none, or it answered with an error). */
  readonly answerSchemaVersion: string | null;
}

/**
 * Refreshes the column types of members whose answer is newer than their last status, then
 * returns the first conflict among `holders` over the columns `plan` uses, or null.
 */
export async function findSchemaConflict(membership: Membership, plan: LogicalPlan, answering: readonly Holder[]): Promise<ShoalError | null> {
  if (answering.length < 2) return null;
  // Member order, not arrival order: the message and `types` must not depend on timing.
  const order = new Map(membership.members.map((m, i) => [m, i]));
  const holders = [...answering].sort((a, b) => (order.get(a.member) ?? 0) - (order.get(b.member) ?? 0));
  const stale = holders.filter((h) => h.answerSchemaVersion === null || h.answerSchemaVersion !== h.member.schemaVersion).map((h) => h.member);
  await mapBounded(stale, LIMITS.fanoutInFlightMax, (m) => membership.check(m));
  const { columns, star } = referencedColumns(plan);
  const refs = [...columns];
  if (star) {
    const all = new Set<string>();
    for (const h of holders) for (const c of h.member.tableSchema(plan.table)?.keys() ?? []) all.add(c);
    for (const name of all) refs.push({ name, quoted: true });
  }
  for (const ref of refs) {
    const byFamily = new Map<string, Map<ColumnType, string[]>>();
    let column = ref.name;
    for (const h of holders) {
      const schema = h.member.tableSchema(plan.table);
      if (schema === undefined) continue;
      const name = resolve(schema, ref);
      if (name === null) continue;
      column = name;
      const type = schema.get(name)!;
      const family = typeFamily(type);
      let types = byFamily.get(family);
      if (types === undefined) byFamily.set(family, (types = new Map()));
      const ids = types.get(type);
      if (ids === undefined) types.set(type, [h.member.id]);
      else ids.push(h.member.id);
    }
    if (byFamily.size < 2) continue;
    const types: Record<string, string[]> = {};
    for (const t of byFamily.values()) for (const [type, ids] of t) types[type] = ids;
    const listed = (ids: string[]) => ids.slice(0, 5).join(', ') + (ids.length > 5 ? ` and ${ids.length - 5} more` : '');
    const parts = Object.entries(types).map(([type, ids]) => `${type} on ${listed(ids)}`);
    return new ShoalError('SHOAL_ERR_QUERY_SCHEMA_CONFLICT',
      `column "${column}" of table "${plan.table}" is ${parts.join(' and ')}: the leaves disagree on its type, so no answer would be right (send its values with one type; see docs/cluster.md)`,
      { column }, { types });
  }
  return null;
}
