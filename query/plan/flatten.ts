/**
 * Subquery flattening: `SELECT ... FROM (SELECT a, f(b) AS c FROM t WHERE p) WHERE q GROUP BY c`
 * is the query `SELECT ... FROM t WHERE p AND q' GROUP BY f(b)` with the inner names replaced by
 * their expressions. The inner query must be a plain projection (no aggregate, window, DISTINCT,
 * ORDER BY, LIMIT or OFFSET), so every inner row is one table row and the rewrite is exact. Then
 * the whole query runs on the leaves like any table query, with no bound on the inner rows: this
 * is what makes DuckDB's spelling of counting by set member,
 * `SELECT tag, count(*) FROM (SELECT unnest(tags) AS tag FROM events) GROUP BY tag`, a grouped
 * scan instead of 100,000 rows sent to the aggregator (and a refusal past them).
 */
import type { Expr, SelectItem, SelectStmt } from '../sql/ast.js';
import { ShoalError } from '../errors.js';
import { exprText } from './expr-util.js';
import { containsWindow, mapAst } from './window-plan.js';

type Contains = (e: Expr) => boolean;

/** The flattened statement, or null when `stmt` does not read a flattenable subquery. */
export function flattenSubquery(stmt: SelectStmt, containsAggregate: Contains): SelectStmt | null {
  if (stmt.from.kind !== 'subquery') return null;
  let inner = stmt.from.query;
  inner = flattenSubquery(inner, containsAggregate) ?? inner;
  if (inner.from.kind !== 'table') return null;
  const plain = !inner.distinct && inner.groupBy.length === 0 && !inner.groupByAll && inner.having === null && inner.qualify === null &&
    inner.orderBy.length === 0 && inner.limit === null && inner.offset === 0 &&
    inner.items.every((i) => i.kind === 'star' || (!containsAggregate(i.expr) && !containsWindow(i.expr)));
  if (!plain) return null;
  const innerStar = inner.items.some((i) => i.kind === 'star');
  if (innerStar && inner.items.length > 1) return null;
  const outerItems = stmt.items.filter((i) => i.kind === 'expr') as Extract<SelectItem, { kind: 'expr' }>[];
  const outerAggregate = stmt.groupBy.length > 0 || stmt.groupByAll || stmt.having !== null || stmt.distinct || outerItems.some((i) => containsAggregate(i.expr));
  // Windows over the rows of the subquery need them at one place: keep the subquery.
  if (!outerAggregate && (stmt.qualify !== null || outerItems.some((i) => containsWindow(i.expr)) || stmt.orderBy.some((o) => containsWindow(o.expr)))) return null;
  if (stmt.items.some((i) => i.kind === 'star') && stmt.items.length > 1 && !innerStar) return null;

  const names = new Map<string, Expr>();
  const exact = new Map<string, Expr>();
  for (const i of inner.items) {
    if (i.kind !== 'expr') continue;
    const name = i.alias ?? (i.expr.kind === 'column' ? i.expr.name : exprText(i.expr));
    if (!exact.has(name)) exact.set(name, i.expr);
    if (!names.has(name.toLowerCase())) names.set(name.toLowerCase(), i.expr);
  }
  const outerAliases = new Set(outerItems.filter((i) => i.alias !== null).map((i) => i.alias!.toLowerCase()));
  const subst = (e: Expr, aliasesWin: boolean): Expr => mapAst(e, (x) => {
    if (x.kind !== 'column') return undefined;
    if (aliasesWin && outerAliases.has(x.name.toLowerCase())) return x;
    const hit = x.quoted ? exact.get(x.name) : names.get(x.name.toLowerCase());
    if (hit !== undefined) return hit;
    if (innerStar) return x;
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_COLUMN', `column "${x.name}" does not exist in the subquery; its columns are ${[...exact.keys()].map((n) => `"${n}"`).join(', ')}`, { position: x.pos, column: x.name });
  });

  let items: SelectItem[];
  if (stmt.items.length === 1 && stmt.items[0]!.kind === 'star') {
    items = innerStar ? [stmt.items[0]!] : inner.items.map((i) => (i.kind === 'expr' ? { ...i, alias: i.alias ?? (i.expr.kind === 'column' ? i.expr.name : exprText(i.expr)) } : i));
  } else {
    // A bare inner name keeps its name as the output column's.
    items = stmt.items.map((i) => (i.kind === 'expr' ? { ...i, expr: subst(i.expr, false), alias: i.alias ?? (i.expr.kind === 'column' ? i.expr.name : null) } : i));
  }
  const outerWhere = stmt.where === null ? null : subst(stmt.where, false);
  const where: Expr | null = inner.where === null ? outerWhere : outerWhere === null ? inner.where : { kind: 'binary', op: 'and', left: inner.where, right: outerWhere, pos: inner.where.pos };
  return Object.freeze({
    ...stmt, items, from: inner.from, where,
    groupBy: stmt.groupBy.map((g) => subst(g, true)),
    having: stmt.having === null ? null : subst(stmt.having, true),
    qualify: stmt.qualify === null ? null : subst(stmt.qualify, true),
    orderBy: stmt.orderBy.map((o) => ({ ...o, expr: subst(o.expr, true) })),
  });
}
