/**
 * Aggregates of issue 16 for the random SQL generator (sqlgen.ts's aggregate draw calls these):
 * conditional aggregates (count_if, `agg(x) FILTER (WHERE ...)`, sum of a CASE, sum of a
 * boolean), the exact quantiles (quantile_cont, quantile_disc, median: compared exactly, so they
 * may be sorted and filtered on), a CASE over aggregates, and the exact integer aggregates that
 * window functions are drawn over (sqlgen-post.ts).
 *
 * Over no rows (a global aggregate whose WHERE keeps nothing, or a FILTER that keeps nothing in a
 * group) DuckDB's count_if and sum are NULL and count(*) FILTER is 0; both are drawn as often as
 * anything else. A float sum under FILTER carries the rounding bound of the rows it keeps.
 *
 * Not here: row-level functions (sqlgen-scalar.ts), windows and query shapes (sqlgen-post.ts).
 */
import { floatSumErr, same, type Ex, type SqlDraw } from './sqlgen-ex.js';

/** Float sums and means depend on summation order: both engines are right within this. */
export const FLOAT_SUM_REL_TOL = 1e-6;
const QUANTILE_FRACTIONS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1] as const;
const NUMERIC_COLUMNS = ['id', 'code', 'n', 'big', 'late_i', 'f', 'fx', 'ratio'] as const;
const FLOAT_COLUMNS: readonly string[] = ['f', 'fx', 'ratio'];
/** Columns any aggregate takes (no `fbig`: its +-1.7e308 would overflow sums). */
const COUNTABLE = ['id', 'svc', 'region', 'uid', 'word', 'code', 'n', 'big', 'f', 'fx', 'ratio', 'flag', 'tags', 'time', 'late_s', 'late_i'] as const;

/** One of the conditional aggregates, or an exact quantile. */
export function conditionalAggregate(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 8)) {
    case 0: return same(`count_if(${g.predicate(1).s})`, 'int', true);
    // The error-rate question: a conditional count over the count.
    case 1: return same(`(count_if(${g.predicate(1).s}) / count(*))`, 'float', true);
    case 2: case 3: return filteredAggregate(g);
    case 4: return sumOfCase(g);
    case 5: return same(`sum(${g.predicate(1).s})`, 'int', true);
    default: return exactQuantile(g);
  }
}

/** `agg(x) FILTER (WHERE p)` for count(*), count(x), sum, avg, min, max, count(DISTINCT x) and median. */
export function filteredAggregate(g: SqlDraw): Ex {
  const r = g.rng;
  // DuckDB lets the WHERE be left out: FILTER (cond).
  const filter = ` FILTER (${r.chance(0.85) ? 'WHERE ' : ''}${g.predicate(1).s})`;
  switch (r.int(0, 7)) {
    case 0: return same(`count(*)${filter}`, 'int', true);
    case 1: return same(`count(${r.pick(COUNTABLE)})${filter}`, 'int', true);
    case 2: case 3: {
      const arg = g.numExpr(1);
      const fn = r.pick(['sum', 'avg']);
      const type = fn === 'sum' ? arg.type : 'float';
      const extra = arg.type === 'float' ? { tol: FLOAT_SUM_REL_TOL, err: floatSumErr(fn, arg.d, filter) } : {};
      return { s: `${fn}(${arg.s})${filter}`, d: `${fn}(${arg.d})${filter}`, type, agg: true, ...extra };
    }
    case 4: {
      const arg = r.pick([() => g.numExpr(1), () => g.strExpr(1), () => g.timeExpr(), () => same('flag', 'bool')])();
      return same(`${r.pick(['min', 'max'])}(${arg.s})${filter}`, arg.type, true);
    }
    case 5: return same(`count(DISTINCT ${r.pick(['svc', 'uid', 'word', 'n', 'code', 'region'])})${filter}`, 'int', true);
    default: {
      const quantile = exactQuantile(g);
      return { ...quantile, s: `${quantile.s}${filter}`, d: `${quantile.d}${filter}` };
    }
  }
}

/** sum(CASE WHEN p THEN 1 ELSE 0 END), or of a value and NULL. */
function sumOfCase(g: SqlDraw): Ex {
  const r = g.rng;
  const when = g.predicate(1).s;
  if (r.chance(0.6)) return same(`sum(CASE WHEN ${when} THEN 1 ELSE 0 END)`, 'int', true);
  const value = g.numExpr(1);
  const arg = `CASE WHEN ${when} THEN ${value.s} END`;
  const extra = value.type === 'float' ? { tol: FLOAT_SUM_REL_TOL, err: floatSumErr('sum', arg) } : {};
  return { ...same(`sum(${arg})`, value.type, true), ...extra };
}

/**
 * quantile_cont (interpolates: a float, also of integers), quantile_disc (a value of the data, the
 * column's type) or median (= quantile_cont(x, 0.5)), of a number or, now and then, of time.
 */
export function exactQuantile(g: SqlDraw): Ex {
  const r = g.rng;
  const fn = r.pick(['quantile_cont', 'quantile_disc', 'median']);
  if (r.chance(0.1)) {
    const q = r.pick(QUANTILE_FRACTIONS);
    return same(fn === 'median' ? 'median(time)' : `${fn}(time, ${q})`, 'time', true);
  }
  const arg = r.chance(0.6) ? same(r.pick(NUMERIC_COLUMNS), 'int') : g.numExpr(1);
  const argType = arg.s.match(/^[a-z_]+$/) ? (FLOAT_COLUMNS.includes(arg.s) ? 'float' : 'int') : arg.type;
  const type = fn === 'quantile_disc' ? argType : 'float';
  const text = fn === 'median' ? `median(${arg.s})` : `${fn}(${arg.s}, ${r.pick(QUANTILE_FRACTIONS)})`;
  return same(text, type, true);
}

/**
 * An integer aggregate both engines compute exactly (counts, count_if, integer sums, min/max of
 * integers): what windows sum, rank and compare, so a window's order never rests on float noise.
 */
export function exactIntAggregate(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 7)) {
    case 0: case 1: return same('count(*)', 'int', true);
    case 2: return same(`count(${r.pick(COUNTABLE)})`, 'int', true);
    case 3: return same(`count_if(${g.predicate(1).s})`, 'int', true);
    case 4: return same(`sum(${r.pick(['n', 'code', 'big', 'late_i'])})`, 'int', true);
    case 5: return same(`count(DISTINCT ${r.pick(['uid', 'word', 'n'])})`, 'int', true);
    default: return same(`${r.pick(['min', 'max'])}(${r.pick(['n', 'code', 'id'])})`, 'int', true);
  }
}

/** A CASE over aggregates, after grouping: a label or a number per group. */
export function aggregateCase(g: SqlDraw): Ex {
  const r = g.rng;
  const agg = exactIntAggregate(g);
  const threshold = agg.s === 'count(*)' ? String(r.pick([1, 2, 5, 20, 100])) : g.intLiteral();
  if (r.chance(0.6)) return same(`CASE WHEN ${agg.s} ${r.pick(['>', '>=', '<', '='])} ${threshold} THEN 'high' WHEN ${agg.s} IS NULL THEN 'none' ELSE 'low' END`, 'str', true);
  return same(`CASE WHEN count(*) > ${r.pick([1, 3, 10])} THEN ${agg.s} ELSE ${r.pick(['0', 'NULL', '-1'])} END`, 'int', true);
}
