/**
 * Post-aggregation constructs of issue 16 for the random SQL generator (sqlgen.ts's group-by and
 * rows shapes call these): window functions over the groups (share of total, sums, running and
 * moving sums, row_number, rank, dense_rank, percent_rank, cume_dist, ntile, lag / lead,
 * first_value / last_value / nth_value, count and avg over a partition), QUALIFY, an alias in HAVING, NULLS FIRST / LAST, OFFSET, and the
 * subquery / WITH wrapping of a grouped query.
 *
 * Comparable answers, as sqlgen.ts's header asks:
 * - A window whose value depends on which row comes first (row_number, ntile, lag, lead,
 *   first_value, last_value, nth_value, a ROWS frame) orders the groups totally: by an exact aggregate, maybe, then by
 *   every group key not in its PARTITION BY (the keys together are unique per group). rank,
 *   dense_rank, percent_rank, cume_dist and the default RANGE frame give ties equal values, so
 *   they need no tie-breaker.
 * - Windows sum, rank and compare only exact integer aggregates (sqlgen-agg.ts `exactIntAggregate`),
 *   never a float sum or a sketch, so an order never rests on float noise.
 *
 * Not here: the query shapes themselves (sqlgen.ts), aggregates (sqlgen-agg.ts).
 */
import type { Rng } from './gen.js';
import { exactIntAggregate } from './sqlgen-agg.js';
import { isExact, same, shuffle, type Ex, type SqlDraw } from './sqlgen-ex.js';

/** ` NULLS FIRST` / ` NULLS LAST` after an ORDER BY term, now and then. */
export function nullsOrder(rng: Rng): string {
  const draw = rng.next();
  return draw < 0.15 ? ' NULLS FIRST' : draw < 0.25 ? ' NULLS LAST' : '';
}

/** ` OFFSET m` after a LIMIT, now and then (past the end too). */
export function offsetClause(rng: Rng): string {
  return rng.chance(0.3) ? ` OFFSET ${rng.pick([1, 2, 5, 20, 5000])}` : '';
}

/** `PARTITION BY` some of the group keys (maybe none), and the keys it leaves to order by. */
function partition(rng: Rng, keys: readonly Ex[]): { text: string; rest: Ex[] } {
  const chosen = keys.filter(() => rng.chance(0.35));
  const rest = keys.filter((key) => !chosen.includes(key));
  return { text: chosen.length === 0 ? '' : `PARTITION BY ${chosen.map((k) => k.s).join(', ')} `, rest };
}

function direction(rng: Rng): string {
  return `${rng.pick(['', ' ASC', ' DESC'])}${nullsOrder(rng)}`;
}

/**
 * A window ORDER BY over the groups: an exact aggregate first (maybe), then, when `total`, every
 * remaining group key, so no two groups of a partition tie.
 */
function windowOrder(g: SqlDraw, rest: readonly Ex[], total: boolean): string {
  const r = g.rng;
  const terms: string[] = [];
  if (!total || r.chance(0.6)) terms.push(`${exactIntAggregate(g).s}${direction(r)}`);
  if (total) for (const key of shuffle(r, rest)) terms.push(`${key.s}${direction(r)}`);
  return terms.length === 0 ? '' : `ORDER BY ${terms.join(', ')}`;
}

function over(partitionText: string, orderText: string, frame = ''): string {
  return `OVER (${`${partitionText}${orderText}${frame}`.trim()})`;
}

/** A window function over the groups of a query grouped by `keys`, as a select item. */
export function windowItem(g: SqlDraw, keys: readonly Ex[]): Ex {
  const r = g.rng;
  const part = partition(r, keys);
  const a = exactIntAggregate(g);
  const totalOrder = () => windowOrder(g, part.rest, true);
  switch (r.int(0, 12)) {
    // Share of total (or of the partition): the most common window.
    case 0: case 1: return same(`(${a.s} / sum(${a.s}) ${over(part.text, '')})`, 'float', true);
    case 2: return same(`sum(${a.s}) ${over(part.text, '')}`, 'int', true);
    // Running sum with the default RANGE frame: peers (ties) share their value.
    case 3: return same(`sum(${a.s}) ${over(part.text, windowOrder(g, part.rest, r.chance(0.5)))}`, 'int', true);
    case 4: {
      const frame = r.pick([' ROWS BETWEEN 1 PRECEDING AND CURRENT ROW', ' ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING', ' ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW']);
      return same(`sum(${a.s}) ${over(part.text, totalOrder(), frame)}`, 'int', true);
    }
    case 5: return same(`row_number() ${over(part.text, totalOrder())}`, 'int', true);
    case 6: return same(`${r.pick(['rank', 'dense_rank'])}() ${over(part.text, `ORDER BY ${a.s}${direction(r)}`)}`, 'int', true);
    case 7: {
      const fn = r.pick(['lag', 'lead']);
      const useKey = keys.length > 0 && r.chance(0.3);
      const value = useKey ? (r.pick(keys) as Ex) : a;
      const offset = r.chance(0.5) ? '' : `, ${r.int(0, 3)}${!useKey && r.chance(0.5) ? `, ${r.pick(['0', '-1'])}` : ''}`;
      return same(`${fn}(${value.s}${offset}) ${over(part.text, totalOrder())}`, value.type, true);
    }
    case 8: {
      const value = keys.length > 0 && r.chance(0.5) ? (r.pick(keys) as Ex) : a;
      const frame = r.pick(['', '', ' ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING', ' ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING']);
      return same(`${r.pick(['first_value', 'last_value'])}(${value.s}) ${over(part.text, totalOrder(), frame)}`, value.type, true);
    }
    case 9: {
      // Distribution windows: ties share percent_rank and cume_dist; ntile and nth_value pick rows.
      const draw = r.int(0, 4);
      if (draw === 0) return same(`ntile(${r.int(1, 5)}) ${over(part.text, totalOrder())}`, 'int', true);
      if (draw === 1) return same(`nth_value(${a.s}, ${r.int(1, 4)}) ${over(part.text, totalOrder(), ' ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING')}`, 'int', true);
      if (draw === 2) return same(`${r.pick(['percent_rank', 'cume_dist'])}() ${over(part.text, `ORDER BY ${a.s}${direction(r)}`)}`, 'float', true);
      return same(`count(*) ${over(part.text, '')}`, 'int', true);
    }
    case 10: return same(`${r.pick(['min', 'max'])}(${a.s}) ${over(part.text, '')}`, 'int', true);
    default: return same(`avg(${a.s}) ${over(part.text, '')}`, 'float', true);
  }
}

/** ` QUALIFY ...`: keep groups by a window function (the top N per partition, the leaders, a share). */
export function qualifyClause(g: SqlDraw, keys: readonly Ex[]): string {
  const r = g.rng;
  const atom = (): string => {
    const part = partition(r, keys);
    const a = exactIntAggregate(g);
    switch (r.int(0, 6)) {
      // Not `<= 1`: DuckDB 1.5.5 answers `GROUP BY k QUALIFY row_number() OVER (ORDER BY k) <= 1`
      // (also `= 1`, `< 2`; without PARTITION BY) with the group of the largest k, not the smallest.
      case 0: case 1: return `row_number() ${over(part.text, windowOrder(g, part.rest, true))} <= ${r.int(2, 5)}`;
      case 2: return `${r.pick(['rank', 'dense_rank'])}() ${over(part.text, `ORDER BY ${a.s}${direction(r)}`)} ${r.pick(['= 1', '<= 2', '> 1'])}`;
      case 3: return `(${a.s} / sum(${a.s}) ${over(part.text, '')}) ${r.pick(['>', '<', '>='])} ${r.pick(['0.01', '0.1', '0.25', '0.5'])}`;
      case 4: return `count(*) ${over(part.text, '')} ${r.pick(['>', '='])} ${r.int(1, 4)}`;
      default: return `${r.pick(['lag', 'lead'])}(${a.s}) ${over(part.text, windowOrder(g, part.rest, true))} IS ${r.chance(0.5) ? 'NOT ' : ''}NULL`;
    }
  };
  return ` QUALIFY ${r.chance(0.2) ? `${atom()} ${r.pick(['AND', 'OR'])} ${atom()}` : atom()}`;
}

/** ` HAVING alias op literal` on an aliased exact aggregate of the select list, or '' when none is aliased. */
export function havingOnAlias(g: SqlDraw, aliased: readonly { item: Ex; alias: string | null }[]): string {
  const r = g.rng;
  const candidates = aliased.filter(({ item, alias }) => alias !== null && item.agg && isExact(item) && (item.type === 'int' || item.type === 'float') && !/\bover\s*\(/i.test(item.s));
  if (candidates.length === 0) return '';
  const { item, alias } = r.pick(candidates);
  const literal = item.type === 'float' ? r.pick(['0', '0.5', '-10.5', '100']) : item.s === 'count(*)' ? String(r.pick([1, 2, 5, 20])) : g.intLiteral();
  return ` HAVING ${alias} ${r.pick(['>', '>=', '<', '=', '<>'])} ${literal}`;
}

/** A grouped query wrapped: `SELECT outer FROM (inner) rest` or `WITH t AS (inner) SELECT outer FROM t rest`. */
export function wrapInner(form: 'with' | 'subquery', inner: string, outerSelect: string, outerRest: string): string {
  return form === 'with' ? `WITH t AS (${inner}) SELECT ${outerSelect} FROM t${outerRest}` : `SELECT ${outerSelect} FROM (${inner})${outerRest}`;
}

/** An outer WHERE over a wrapped query's output column `alias` of `item`'s type, or ''. */
export function outerWhere(g: SqlDraw, item: Ex, alias: string): string {
  const r = g.rng;
  if (!isExact(item)) return '';
  switch (item.type) {
    case 'int': return ` WHERE ${alias} ${r.pick(['>', '<', '>=', '<>'])} ${item.s === 'count(*)' ? r.pick([1, 3, 10]) : g.intLiteral()}`;
    case 'float': return ` WHERE ${alias} ${r.pick(['>', '<'])} ${r.pick(['0', '0.5', '-1.5', '10'])}`;
    case 'str': return ` WHERE ${alias} ${r.pick(['<', '>=', '<>'])} ${g.strLiteral()}`;
    case 'bool': return ` WHERE ${r.chance(0.5) ? 'NOT ' : ''}${alias}`;
    case 'time': return ` WHERE ${alias} ${r.pick(['<', '>='])} ${g.isoLiteral()}`;
    default: return ` WHERE ${alias} IS NOT NULL`;
  }
}
