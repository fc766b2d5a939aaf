/**
 * Seeded random SQL over the subset docs/sql.md documents, for the differential test: every query
 * comes in shoal's spelling and DuckDB's (they differ only for the approximate aggregates, which
 * DuckDB computes exactly: approx_count_distinct -> count(DISTINCT), approx_quantile / pNN ->
 * quantile_disc; median is exact, as in DuckDB), with what the comparison needs to know: ordered
 * or not, which output columns are the sort keys, which columns are approximate and within what,
 * and whether the query is a sample (LIMIT without ORDER BY: any matching rows).
 *
 * Expressions are typed as the docs type them, so every query is one shoal promises to answer;
 * whatever DuckDB still rejects (integer overflow, a cast it will not do) the caller drops and
 * draws again. Results must be comparable: a LIMIT always comes with an ORDER BY that is a total
 * order (every output column of an aggregate query whose keys are all selected; rows queries end
 * their ORDER BY with the unique `id`, DISTINCT rows are ordered by every column), and approximate
 * columns are never sorted or filtered on.
 *
 * The constructs of issue 16 are drawn in their own files, each a few small functions:
 * sqlgen-scalar.ts (CASE, casts, string and time functions, TIMESTAMP literals), sqlgen-agg.ts
 * (count_if, FILTER, sum of a CASE or a boolean, exact quantiles, CASE over aggregates) and
 * sqlgen-post.ts (windows over the groups, QUALIFY, an alias in HAVING, NULLS FIRST / LAST,
 * OFFSET, subqueries and WITH over a grouped query). This file draws the query shapes (global,
 * group-by, rows, DISTINCT rows, star) and mixes them in; GROUP BY ALL stands for the key list
 * when the select list holds every key.
 *
 * Number literals: shoal reads a literal with a fraction or exponent as a DOUBLE (docs/sql.md),
 * DuckDB reads `2.675` as DECIMAL(4,3) (exact), so `(n % 334) % 2.675` is -2.625 there and
 * -2.625000000000015 in shoal, and near-ties sort differently. The DuckDB spelling therefore casts
 * every such literal: `2.675::DOUBLE` (`duckDoubleLiterals`), the same double shoal parses.
 *
 * The generator is not weakened around shoal's known bugs: it draws big-int sums, multi-key
 * groups, duplicate select items, astral strings under LIKE '_', case mapping of 'ß'/'İ'/sigma,
 * ISO literals without a zone, HAVING on max(time), bare current_timestamp and integer quantiles
 * as often as anything else.
 *
 * Not here: the data (diff-data.ts), running and judging (diff-run.ts).
 */
import { DIFF_TIME_SPAN_SECONDS, DIFF_TIME_START_SECONDS, LATE_VALUES, REGION_VALUES, SVC_VALUES, TAG_VALUES, WORD_VALUES } from './diff-data.js';
import { Rng } from './gen.js';
import { aggregateCase, conditionalAggregate, FLOAT_SUM_REL_TOL } from './sqlgen-agg.js';
import { binary, duckDoubleLiterals, errQuery, floatSumErr, isExact, NEST_MAX, same, shuffle, sqlStringLiteral, tolerancesOf, wrap, type Drawn, type Ex, type GeneratedQuery, type SqlDraw, type Type } from './sqlgen-ex.js';
import { havingOnAlias, nullsOrder, offsetClause, outerWhere, qualifyClause, windowItem, wrapInner } from './sqlgen-post.js';
import { functionGroupKey, numericFunction, predicateFunction, stringFunction, timeFunction } from './sqlgen-scalar.js';

export { duckDoubleLiterals, sqlStringLiteral, type GeneratedQuery };

const COLUMNS: Readonly<Record<Type, readonly string[]>> = {
  int: ['id', 'code', 'n', 'big', 'late_i'],
  float: ['f', 'fx', 'ratio'],
  str: ['svc', 'region', 'uid', 'word', 'late_s'],
  bool: ['flag'],
  time: ['time'],
  set: ['tags'],
};
const ALL_COLUMNS = [...Object.values(COLUMNS).flat(), 'fbig'];
/** HyperLogLog p = 14: 0.81% standard error; this is over 4 standard errors (no flaky runs). */
const HLL_REL_TOL = 0.035;
/** The quantile sketch is within 1% of the exact value at the same rank (docs/sql.md). */
const QUANTILE_REL_TOL = 0.0101;
const INTERVALS = ["INTERVAL '1 minute'", "INTERVAL '5 minutes'", "INTERVAL '15 minutes'", "INTERVAL '1 hour'", "INTERVAL '6 hours'", "INTERVAL '90 seconds'", "INTERVAL '1 day'", "INTERVAL '2 days'", "INTERVAL '1 week'", 'INTERVAL 30 MINUTE'];
const QUANTILES: readonly [string, number][] = [['p50', 0.5], ['p75', 0.75], ['p90', 0.9], ['p95', 0.95], ['p99', 0.99], ['p999', 0.999]];

export class QueryGenerator implements SqlDraw {
  readonly rng: Rng;
  /** How many construct files' draws enclose the current one (see SqlDraw.nested). */
  nestLevel = 0;
  /** Row-level integer `+ - *` drawn for the current query (some may be dropped: filtered in next()). */
  private intArith: { d: string; inWhere: boolean }[] = [];
  private inWhere = false;
  /** The current query's WHERE condition (shoal spelling), null without one. */
  private whereText: string | null = null;

  constructor(seed: number, private readonly rowCount: number) {
    this.rng = new Rng(seed);
  }

  nested<T>(draw: () => T): T {
    this.nestLevel++;
    try {
      return draw();
    } finally {
      this.nestLevel--;
    }
  }

  /** Whether to draw one of issue 16's constructs here, with the given chance. */
  private construct(probability: number): boolean {
    return this.nestLevel < NEST_MAX && this.rng.chance(probability);
  }

  // ---- literals ----

  intLiteral(column?: string): string {
    const r = this.rng;
    switch (column) {
      case 'id': return String(r.int(0, this.rowCount));
      case 'code': return String(r.pick([200, 201, 404, 500, 503, -1, 0, 302]));
      case 'big': return String(r.pick([2 ** 50, 2 ** 50 - 500, -(2 ** 50), 0, 1_000_000_000_000, -5_000_000, 2 ** 53 + 1, 123]));
      case 'late_i': return String(r.int(-3, 4) * 1_000_000_007);
      default: return String(r.chance(0.8) ? r.int(-1000, 1001) : r.pick([0, 1, -1, 7, 100_000, 2 ** 31, -(2 ** 31) - 1]));
    }
  }

  floatLiteral(): string {
    return this.rng.pick(['0.5', '-0.25', '1.5', '100.125', '-37.5', '1e-300', '1e-9', '4503599627370496.5', '1e20', '0.0', '2.675', String(Math.round(this.rng.normal() * 10000) / 100)]);
  }

  strLiteral(column?: string): string {
    const r = this.rng;
    const pool: readonly string[] =
      column === 'svc' ? SVC_VALUES : column === 'region' ? REGION_VALUES : column === 'late_s' ? LATE_VALUES
        : column === 'uid' ? [`u${r.int(0, 200)}`, `u${r.int(0, 8000)}`, `ü${r.int(0, 50)}🌊`, 'u', 'v'] : WORD_VALUES;
    return sqlStringLiteral(r.chance(0.85) ? r.pick(pool) : r.pick(WORD_VALUES));
  }

  /** An ISO-8601 instant in (or just outside) the data's range, in one of the spellings both accept. */
  isoLiteral(): string {
    const r = this.rng;
    const seconds = DIFF_TIME_START_SECONDS + r.int(-3600, DIFF_TIME_SPAN_SECONDS + 3600);
    const iso = new Date(seconds * 1000).toISOString(); // 2025-11-21T06:13:20.000Z
    const date = iso.slice(0, 10);
    const clock = iso.slice(11, 19);
    return sqlStringLiteral(r.pick([date, `${date} ${clock}`, `${date}T${clock}`, `${date}T${clock}Z`, `${date} ${clock.slice(0, 5)}`]));
  }

  // ---- scalar expressions ----

  private anyColumn(): Ex {
    const type = this.rng.pick(Object.keys(COLUMNS) as Type[]);
    return this.column(type);
  }

  column(type: Type): Ex {
    return same(this.rng.pick(COLUMNS[type]), type);
  }

  numExpr(depth = 0): Ex {
    const r = this.rng;
    const draw = r.next();
    if (depth >= 2 || draw < 0.45) return this.column(r.chance(0.6) ? 'int' : 'float');
    if (draw < 0.7) {
      const left = this.numExpr(depth + 1);
      const op = r.pick(['+', '-', '*', '/', '%']);
      const literal = r.chance(0.6);
      const right = literal ? same(r.chance(0.7) ? this.intLiteral() : this.floatLiteral(), 'int') : this.numExpr(depth + 1);
      // A literal with a fraction or exponent is a float; an expression has its type (a test of
      // its text would take `late_i` and `code`, whose names hold an `e`, for floats).
      const rightType: Type = literal ? (/[.eE]/.test(right.s) ? 'float' : 'int') : right.type;
      const type: Type = op === '/' || left.type === 'float' || rightType === 'float' ? 'float' : 'int';
      const ex = binary(left, op, right, type);
      if (type === 'int' && (op === '+' || op === '-' || op === '*')) this.intArith.push({ d: ex.d, inWhere: this.inWhere });
      return ex;
    }
    if (draw < 0.78) return same(`-${this.column('int').s}`, 'int');
    if (this.construct(0.45)) return this.nested(() => numericFunction(this));
    const fn = r.pick(['abs', 'round', 'round2', 'floor', 'ceil', 'coalesce', 'length', 'epoch']);
    switch (fn) {
      case 'round2': {
        const arg = this.numExpr(depth + 1);
        const digits = r.int(-1, 4);
        return { s: `round(${arg.s}, ${digits})`, d: `round(${arg.d}, ${digits})`, type: arg.type, agg: false };
      }
      case 'coalesce': {
        const column = r.pick(['late_i', 'n', 'big', 'f', 'ratio']);
        const type: Type = COLUMNS.float.includes(column) ? 'float' : 'int';
        const fallback = r.chance(0.5) ? this.intLiteral() : r.pick(COLUMNS.int);
        return wrap('coalesce', [same(column, type), same(fallback, 'int')], type);
      }
      case 'length': return wrap('length', [r.chance(0.85) ? this.strExpr(depth + 1) : same('tags', 'set')], 'int');
      case 'epoch': return wrap('epoch', [this.timeExpr()], 'int');
      default: {
        const arg = this.numExpr(depth + 1);
        return wrap(fn, [arg], arg.type);
      }
    }
  }

  /** `fbig` holds +-1.7e308: only under functions that cannot overflow a sum (see diff-data.ts). */
  fbigExpr(): Ex {
    const r = this.rng;
    const draw = r.int(0, 5);
    if (draw === 0) return same('fbig', 'float');
    if (draw === 1) return same(`round(fbig, ${r.int(-2, 4)})`, 'float');
    return same(`${r.pick(['abs', 'floor', 'ceil', 'round'])}(fbig)`, 'float');
  }

  strExpr(depth = 0): Ex {
    const r = this.rng;
    const draw = r.next();
    if (depth >= 2 || draw < 0.6) return this.column('str');
    if (this.construct(0.5)) return this.nested(() => stringFunction(this, depth));
    if (draw < 0.9) return wrap(r.pick(['lower', 'upper']), [this.strExpr(depth + 1)], 'str');
    return wrap('coalesce', [this.column('str'), r.chance(0.5) ? this.column('str') : same(this.strLiteral(), 'str')], 'str');
  }

  timeExpr(): Ex {
    if (this.construct(0.25)) return this.nested(() => timeFunction(this));
    return this.rng.chance(0.7) ? same('time', 'time') : same(`time_bucket(${this.rng.pick(INTERVALS)}, time)`, 'time');
  }

  // ---- predicates ----

  predicate(depth = 0): Ex {
    const r = this.rng;
    const draw = r.next();
    if (depth < 2 && draw < 0.18) {
      const op = r.pick([' AND ', ' OR ']);
      const left = this.predicate(depth + 1);
      const right = this.predicate(depth + 1);
      return same(`(${left.s}${op}${right.s})`, 'bool');
    }
    if (depth < 2 && draw < 0.24) return same(`NOT (${this.predicate(depth + 1).s})`, 'bool');
    return this.atom();
  }

  private atom(): Ex {
    const r = this.rng;
    const cmp = () => r.pick(['=', '!=', '<>', '<', '<=', '>', '>=']);
    if (this.construct(0.15)) return this.nested(() => predicateFunction(this));
    switch (r.int(0, 14)) {
      case 0: case 1: {
        const column = r.pick(COLUMNS.int);
        const left = r.chance(0.7) ? same(column, 'int') : this.numExpr(1);
        return same(`${left.s} ${cmp()} ${r.chance(0.8) ? this.intLiteral(column) : this.floatLiteral()}`, 'bool');
      }
      case 2: return same(`${r.chance(0.8) ? this.column('float').s : this.fbigExpr().s} ${cmp()} ${r.chance(0.5) ? this.floatLiteral() : this.intLiteral()}`, 'bool');
      case 3: {
        const column = r.pick(COLUMNS.str);
        const left = r.chance(0.7) ? same(column, 'str') : this.strExpr(1);
        return same(`${left.s} ${cmp()} ${this.strLiteral(column)}`, 'bool');
      }
      case 4: return same(`time ${cmp()} ${this.isoLiteral()}`, 'bool');
      case 5: {
        const [a, b] = [this.isoLiteral(), this.isoLiteral()].sort();
        return same(`time ${r.chance(0.2) ? 'NOT ' : ''}BETWEEN ${a} AND ${b}`, 'bool');
      }
      case 6: return same(`${r.pick(ALL_COLUMNS)} IS ${r.chance(0.4) ? 'NOT ' : ''}NULL`, 'bool');
      case 7: {
        if (r.chance(0.5)) {
          const column = r.pick(COLUMNS.str);
          const items = Array.from({ length: r.int(1, 6) }, () => this.strLiteral(column));
          return same(`${r.chance(0.3) ? this.strExpr(1).s : column} ${r.chance(0.25) ? 'NOT ' : ''}IN (${items.join(', ')})`, 'bool');
        }
        const column = r.pick(COLUMNS.int);
        const items = Array.from({ length: r.int(1, 6) }, () => this.intLiteral(column));
        return same(`${column} ${r.chance(0.25) ? 'NOT ' : ''}IN (${items.join(', ')})`, 'bool');
      }
      case 8: case 9: {
        const column = r.pick(COLUMNS.str);
        const subject = r.chance(0.75) ? same(column, 'str') : this.strExpr(1);
        const op = r.pick(['LIKE', 'LIKE', 'ILIKE', 'NOT LIKE', 'NOT ILIKE']);
        return same(`${subject.s} ${op} ${sqlStringLiteral(this.likePattern(column, op.includes('ILIKE')))}`, 'bool');
      }
      case 10: {
        const pattern = r.pick(['^u1', '^.$', 'ß', '[0-9]{3}$', 'a.b', '^[a-z]+$', '🌊', '^.🌊', 'é', 'e\u0301', 'İ|ı', '^$']);
        return same(`regexp_matches(${r.pick(COLUMNS.str)}, ${sqlStringLiteral(pattern)})`, 'bool');
      }
      case 11: return same(`${r.chance(0.2) ? 'NOT ' : ''}list_contains(tags, ${sqlStringLiteral(r.pick([...TAG_VALUES, 'none']))})`, 'bool');
      case 12: {
        const draw = r.int(0, 5);
        if (draw === 0) return same('flag', 'bool');
        if (draw === 1) return same('NOT flag', 'bool');
        if (draw === 2) return same(`flag = ${r.pick(['true', 'false'])}`, 'bool');
        if (draw === 3) return same(r.pick(['time < current_timestamp', 'time <= now()', "time > now() - INTERVAL '36500 days'", 'time > current_timestamp']), 'bool');
        return same(`(${this.column('int').s} > 0) = flag`, 'bool');
      }
      default: {
        const column = r.pick([...COLUMNS.int, ...COLUMNS.float]);
        const isInt = COLUMNS.int.includes(column);
        const [a, b] = [isInt ? this.intLiteral(column) : this.floatLiteral(), isInt ? this.intLiteral(column) : this.floatLiteral()].sort((x, y) => Number(x) - Number(y));
        return same(`${column} ${r.chance(0.2) ? 'NOT ' : ''}BETWEEN ${r.chance(0.1) ? b : a} AND ${r.chance(0.1) ? a : b}`, 'bool');
      }
    }
  }

  /** A LIKE pattern made from a value of the column: parts replaced by `_` or `%`, maybe recased. */
  private likePattern(column: string, ilike: boolean): string {
    const r = this.rng;
    const literal = this.strLiteral(column);
    let chars = [...literal.slice(1, -1).replaceAll("''", "'")];
    if (r.chance(0.1)) return r.pick(['%', '_', '__', '%_%', '', '_%🌊%']);
    chars = chars.map((char) => (r.chance(0.2) ? '_' : char));
    if (chars.length > 2 && r.chance(0.4)) {
      const start = r.int(0, chars.length - 1);
      chars.splice(start, r.int(1, chars.length - start), '%');
    }
    if (r.chance(0.3)) chars.unshift('%');
    if (r.chance(0.3)) chars.push('%');
    const pattern = chars.join('');
    if (!ilike) return pattern;
    return r.chance(0.5) ? pattern.toUpperCase() : pattern.toLowerCase();
  }

  // ---- aggregates ----

  private aggregate(allowApprox: boolean): Ex {
    const r = this.rng;
    if (this.construct(0.25)) return this.nested(() => conditionalAggregate(this));
    const draw = r.next();
    if (draw < 0.12) return same('count(*)', 'int', true);
    if (draw < 0.2) return wrap('count', [same(r.pick(ALL_COLUMNS), 'int')], 'int', { agg: true });
    if (draw < 0.3) {
      const arg = r.pick<() => Ex>([() => this.column('str'), () => this.column('int'), () => this.strExpr(1), () => same('time', 'time'), () => this.column('float'), () => same('flag', 'bool')])();
      return { s: `count(DISTINCT ${arg.s})`, d: `count(DISTINCT ${arg.d})`, type: 'int', agg: true };
    }
    if (draw < 0.5) {
      const arg = this.numExpr(1);
      const fn = r.pick(['sum', 'sum', 'avg', 'mean']);
      const type: Type = fn === 'sum' ? arg.type : 'float';
      return wrap(fn, [arg], type, { agg: true, ...(arg.type === 'float' ? { tol: FLOAT_SUM_REL_TOL, err: floatSumErr(fn, arg.d) } : {}) });
    }
    if (draw < 0.75) {
      const arg = r.pick<() => Ex>([() => this.numExpr(1), () => this.strExpr(1), () => same('time', 'time'), () => same('flag', 'bool'), () => this.timeExpr(), () => this.fbigExpr()])();
      return wrap(r.pick(['min', 'max']), [arg], arg.type, { agg: true });
    }
    if (draw < 0.82) {
      // Arithmetic between aggregates.
      // DuckDB's max(time) - min(time) is an INTERVAL, and INTERVAL / n rounds to microseconds
      // (-229.466667 where shoal's float seconds are -229.46666666666667): spell it as seconds.
      if (r.chance(0.3)) return { s: '(max(time) - min(time))', d: '(epoch(max(time)) - epoch(min(time)))', type: 'float', agg: true };
      const left = this.aggregate(false);
      const right = r.chance(0.5) ? same('count(*)', 'int', true) : same(this.intLiteral(), 'int');
      if (!['int', 'float'].includes(left.type)) return same('count(*)', 'int', true);
      const op = r.pick(['+', '-', '*', '/']);
      const ex = binary(left, op, right, op === '/' || left.type === 'float' ? 'float' : 'int');
      // The right side is exact (count(*) or an integer): + - keep the bound, * and / scale it.
      if (left.err === undefined) return ex;
      return { ...ex, err: op === '+' || op === '-' ? left.err : `(${left.err} ${op} abs(${right.d}))` };
    }
    if (!allowApprox) return same('count(*)', 'int', true);
    if (draw < 0.88) {
      const arg = r.pick<() => Ex>([() => this.column('str'), () => this.column('int'), () => this.column('float')])();
      return { s: `approx_count_distinct(${arg.s})`, d: `count(DISTINCT ${arg.d})`, type: 'int', agg: true, tol: HLL_REL_TOL, approx: true };
    }
    const arg = r.chance(0.6) ? this.column(r.chance(0.5) ? 'float' : 'int') : this.numExpr(1);
    if (r.chance(0.5)) {
      const q = r.pick([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]);
      return { s: `approx_quantile(${arg.s}, ${q})`, d: `quantile_disc(${arg.d}, ${q})`, type: arg.type, agg: true, tol: QUANTILE_REL_TOL, approx: true };
    }
    const [name, q] = r.pick(QUANTILES);
    return { s: `${name}(${arg.s})`, d: `quantile_disc(${arg.d}, ${q})`, type: arg.type, agg: true, tol: QUANTILE_REL_TOL, approx: true };
  }

  private groupKey(): Ex {
    const r = this.rng;
    if (this.construct(0.25)) return this.nested(() => functionGroupKey(this));
    return r.pick<() => Ex>([
      () => this.column('str'), () => this.column('str'), () => same(r.pick(['code', 'n', 'late_i', 'big', 'id']), 'int'),
      () => same('flag', 'bool'), () => same('time', 'time'), () => same(`time_bucket(${r.pick(INTERVALS)}, time)`, 'time'),
      () => wrap(r.pick(['lower', 'upper']), [this.column('str')], 'str'), () => same(`(n % ${r.int(2, 20)})`, 'int'),
      () => same('f', 'float'), () => same('round(f)', 'float'), () => same('coalesce(late_s, svc)', 'str'),
      () => wrap('length', [this.column('str')], 'int'), () => same('(n > 0)', 'bool'), () => same('(big % 1000)', 'int'),
      () => same('ratio', 'float'), () => same('fbig', 'float'),
    ])();
  }

  private havingPredicate(): Ex {
    const r = this.rng;
    const atom = (): Ex => {
      switch (r.int(0, 6)) {
        case 0: return same(`count(*) ${r.pick(['>', '>=', '<', '='])} ${r.pick([1, 2, 5, 10, 50, 200])}`, 'bool');
        case 1: return same(`sum(${r.pick(['n', 'code', 'big'])}) ${r.pick(['>', '<'])} ${this.intLiteral()}`, 'bool');
        case 2: return same(`max(time) ${r.pick(['>', '<', '>='])} ${this.isoLiteral()}`, 'bool');
        case 3: return same(`min(${r.pick(COLUMNS.str)}) ${r.pick(['<', '>', '='])} ${this.strLiteral()}`, 'bool');
        case 4: return same(`count(DISTINCT ${r.pick(['uid', 'word', 'n'])}) ${r.pick(['>', '<='])} ${r.pick([1, 2, 3, 10])}`, 'bool');
        default: return same(`avg(${r.pick(['f', 'n', 'ratio'])}) ${r.pick(['>', '<'])} ${r.pick(['0', '-10.5', '20', '0.25'])}`, 'bool');
      }
    };
    return r.chance(0.2) ? same(`(${atom().s} ${r.pick(['AND', 'OR'])} ${atom().s})`, 'bool') : atom();
  }

  // ---- whole queries ----

  next(): GeneratedQuery {
    this.intArith = [];
    this.whereText = null;
    const draw = this.rng.next();
    const query = draw < 0.15 ? this.globalAggregate() : draw < 0.7 ? this.groupBy() : draw < 0.95 ? this.rows() : this.star();
    // Only subexpressions that made it into the query (an aggregate drawn and then replaced does not).
    const where = this.whereText;
    const present = (e: { d: string; inWhere: boolean }) => (e.inWhere ? (where ?? '').includes(e.d) : query.duckSql.includes(e.d));
    const kept = this.intArith.filter(present);
    const intArith = {
      where: where === null ? null : duckDoubleLiterals(where),
      rowExprs: [...new Set(kept.filter((e) => !e.inWhere).map((e) => duckDoubleLiterals(e.d)))],
      whereExprs: [...new Set(kept.filter((e) => e.inWhere).map((e) => duckDoubleLiterals(e.d)))],
    };
    return {
      ...query, duckSql: duckDoubleLiterals(query.duckSql), intArith,
      ...(query.errSql !== undefined ? { errSql: duckDoubleLiterals(query.errSql) } : {}),
      ...(query.innerSql !== undefined ? { innerSql: duckDoubleLiterals(query.innerSql) } : {}),
    };
  }

  private where(probability = 0.7): string {
    if (!this.rng.chance(probability)) return '';
    this.inWhere = true;
    try {
      this.whereText = this.predicate().s;
    } finally {
      this.inWhere = false;
    }
    return ` WHERE ${this.whereText}`;
  }

  private globalAggregate(): Drawn {
    const r = this.rng;
    const items = Array.from({ length: r.int(1, 6) }, () => this.aggregate(true));
    if (r.chance(0.15)) items.push(items[r.int(0, items.length)] as Ex);
    const select = this.selectList(items, 'a');
    const where = this.where();
    return {
      sql: `SELECT ${select.s} FROM events${where}`,
      duckSql: `SELECT ${select.d} FROM events${where}`,
      ...errQuery(items, (extra) => `SELECT ${select.d}${extra} FROM events${where}`),
      ordered: false, tolerances: tolerancesOf(items), star: false, shape: 'global',
    };
  }

  private groupBy(): Drawn {
    const r = this.rng;
    const keyCount = r.chance(0.5) ? r.int(1, 3) : r.int(3, 7);
    const keys: Ex[] = [];
    while (keys.length < keyCount) {
      const key = this.groupKey();
      if (!keys.some((k) => k.s === key.s)) keys.push(key);
    }
    const selectedKeys = keys.filter(() => r.chance(0.85));
    const aggs = Array.from({ length: r.int(1, 5) }, () => this.aggregate(true));
    if (this.construct(0.1)) aggs.push(this.nested(() => aggregateCase(this)));
    const windows = this.construct(0.25) ? Array.from({ length: r.int(1, 3) }, () => this.nested(() => windowItem(this, keys))) : [];
    const items: Ex[] = [...selectedKeys, ...aggs, ...windows];
    // Shuffle a little: keys need not come first.
    if (r.chance(0.3)) items.reverse();
    if (r.chance(0.15)) items.splice(r.int(0, items.length + 1), 0, items[r.int(0, items.length)] as Ex);
    // A grouped query inside a subquery or WITH names every column, for the outer query.
    const wrapped = this.construct(0.12);
    const aliased = items.map((item, index) => ({ item, alias: wrapped || r.chance(0.6) ? `c${index}` : null }));
    const selectS = aliased.map(({ item, alias }) => (alias ? `${item.s} AS ${alias}` : item.s)).join(', ');
    const selectD = aliased.map(({ item, alias }) => (alias ? `${item.d} AS ${alias}` : item.d)).join(', ');
    const allKeysSelected = selectedKeys.length === keys.length;
    const qualify = this.construct(windows.length > 0 ? 0.3 : 0.1) ? this.nested(() => qualifyClause(this, keys)) : '';
    // GROUP BY ALL groups by every item without an aggregate: the keys, when all are selected.
    // (DuckDB refuses it beside QUALIFY, and would take a window item for a key.)
    const groupAll = allKeysSelected && windows.length === 0 && qualify === '' && this.construct(0.15);
    // GROUP BY: the expression, its alias or its ordinal.
    const groupTerms = groupAll ? ['ALL'] : keys.map((key) => {
      const index = items.findIndex((item) => item.s === key.s);
      const choice = r.next();
      if (index >= 0 && choice < 0.25) return String(index + 1);
      if (index >= 0 && choice < 0.5 && aliased[index]!.alias) return aliased[index]!.alias as string;
      return key.s;
    });
    const where = this.where(0.6);
    const having = !r.chance(0.25) ? '' : (this.construct(0.35) ? havingOnAlias(this, aliased) : '') || ` HAVING ${this.havingPredicate().s}`;
    const features = `${windows.length > 0 ? '+window' : ''}${qualify ? '+qualify' : ''}${groupAll ? '+all' : ''}`;
    const inner = (select: string) => `SELECT ${select} FROM events${where} GROUP BY ${groupTerms.join(', ')}${having}${qualify}`;
    if (wrapped) return this.wrappedGroupBy(aliased, allKeysSelected, inner(selectS), inner(selectD), errQuery(items, (extra) => inner(`${selectD}${extra}`)).errSql, features);
    // The top groups by a count: what an aggregator pushes down to its leaves (top-cut.ts).
    const topN = allKeysSelected && windows.length === 0 && qualify === '' && having === '' && this.construct(0.6) ? this.topNOrder(aliased) : null;
    const order = topN ?? this.orderBy(aliased, r.chance(0.5), allKeysSelected);
    const base = (select: string) => `${inner(select)}${order.text}`;
    return {
      sql: base(selectS), duckSql: base(selectD), ...errQuery(items, (extra) => base(`${selectD}${extra}`)), ordered: order.keys.length > 0,
      ...(order.keys.length > 0 ? { orderKeys: order.keys } : {}),
      tolerances: tolerancesOf(items), star: false, shape: `group-by/${keyCount}${features}${topN !== null ? '+topn' : ''}`,
    };
  }

  /**
   * A grouped query as a subquery in FROM or a WITH, every column named (c0, c1, ...): filtered
   * and ordered outside, or aggregated again (how many groups, the largest exact value).
   */
  private wrappedGroupBy(aliased: readonly { item: Ex; alias: string | null }[], allKeysSelected: boolean, innerS: string, innerD: string, innerErr: string | undefined, features: string): Drawn {
    const r = this.rng;
    const form = r.chance(0.5) ? 'with' : 'subquery';
    const exact = aliased.filter(({ item }) => isExact(item) && item.type !== 'set');
    if (r.chance(0.25)) {
      const outer = ['count(*) AS groups', ...exact.filter(() => r.chance(0.5)).map(({ item, alias }, index) =>
        `${item.type === 'int' ? r.pick(['sum', 'max', 'min', 'count']) : r.pick(['max', 'min', 'count'])}(${alias}) AS o${index}`)];
      const sql = (inner: string) => wrapInner(form, inner, outer.join(', '), '');
      return { sql: sql(innerS), duckSql: sql(innerD), innerSql: innerD, ordered: false, tolerances: {}, star: false, shape: `wrapped/${form}/aggregate${features}` };
    }
    const filterOn = exact.length > 0 && r.chance(0.6) ? (r.pick(exact) as (typeof exact)[number]) : null;
    const where = filterOn ? outerWhere(this, filterOn.item, filterOn.alias as string) : '';
    const order = this.orderBy(aliased, r.chance(0.6), allKeysSelected, true);
    const sql = (inner: string) => wrapInner(form, inner, '*', `${where}${order.text}`);
    const items = aliased.map(({ item }) => item);
    return {
      sql: sql(innerS), duckSql: sql(innerD), innerSql: innerD, ...(innerErr !== undefined ? { errSql: sql(innerErr), errColumns: errQuery(items, () => '').errColumns ?? [] } : {}),
      ordered: order.keys.length > 0, ...(order.keys.length > 0 ? { orderKeys: order.keys } : {}),
      tolerances: tolerancesOf(items), star: false, shape: `wrapped/${form}${features}`,
    };
  }

  /**
   * ORDER BY over output columns (alias, ordinal or expression text; only the first two when
   * `namesOnly`, outside a subquery), each maybe with NULLS FIRST / LAST, and maybe a LIMIT (and
   * OFFSET). With a LIMIT the order must be total: every exact output column is a key, and that is
   * only total when every group key is among them.
   */
  private orderBy(aliased: readonly { item: Ex; alias: string | null }[], wanted: boolean, canLimit: boolean, namesOnly = false): { text: string; keys: number[] } {
    const r = this.rng;
    if (!wanted) return { text: '', keys: [] };
    const sortable = aliased.map((a, index) => index).filter((index) => !aliased[index]!.item.approx && aliased[index]!.item.type !== 'set');
    const limit = canLimit && sortable.length === aliased.length && r.chance(0.6);
    const chosen = limit ? shuffle(r, sortable) : shuffle(r, sortable).slice(0, r.int(1, Math.max(2, sortable.length)));
    if (chosen.length === 0) return { text: '', keys: [] };
    const terms = chosen.map((index) => {
      const { item, alias } = aliased[index]!;
      const choice = r.next();
      const spelled = alias && choice < 0.4 ? alias : choice < 0.7 || namesOnly ? String(index + 1) : item.s;
      return `${spelled}${r.pick(['', ' ASC', ' DESC'])}${nullsOrder(r)}`;
    });
    return { text: ` ORDER BY ${terms.join(', ')}${limit ? ` LIMIT ${r.pick([1, 3, 10, 50, 1000])}${offsetClause(r)}` : ''}`, keys: chosen };
  }

  /**
   * `ORDER BY <a count> DESC, <every other column> LIMIT n`: null when no output is a plain
   * count(*) or count(column), or some output cannot be sorted on (then the order is not total).
   */
  private topNOrder(aliased: readonly { item: Ex; alias: string | null }[]): { text: string; keys: number[] } | null {
    const r = this.rng;
    const counts = aliased.map((a, index) => index).filter((index) => /^count\((\*|[a-z_]+)\)$/.test(aliased[index]!.item.s));
    if (counts.length === 0 || aliased.some((a) => a.item.approx === true || a.item.type === 'set')) return null;
    const first = r.pick(counts);
    const keys = [first, ...shuffle(r, aliased.map((a, index) => index).filter((index) => index !== first))];
    const terms = keys.map((index, at) => {
      const { item, alias } = aliased[index]!;
      const choice = r.next();
      const spelled = alias && choice < 0.4 ? alias : choice < 0.7 ? String(index + 1) : item.s;
      return `${spelled}${at === 0 ? ' DESC' : r.pick(['', ' DESC'])}`;
    });
    return { text: ` ORDER BY ${terms.join(', ')} LIMIT ${r.pick([1, 3, 10, 50])}${offsetClause(r)}`, keys };
  }

  private rows(): Drawn {
    const r = this.rng;
    if (this.construct(0.2)) return this.distinctRows();
    const items = Array.from({ length: r.int(1, 6) }, () =>
      r.pick<() => Ex>([() => this.anyColumn(), () => this.numExpr(), () => this.strExpr(), () => this.timeExpr(), () => this.predicate(1), () => this.fbigExpr()])());
    if (r.chance(0.2)) items.push(items[r.int(0, items.length)] as Ex);
    const aliased = items.map((item, index) => ({ item, alias: r.chance(0.4) ? `e${index}` : null }));
    const select = aliased.map(({ item, alias }) => (alias ? `${item.s} AS ${alias}` : item.s)).join(', ');
    const where = this.where(0.8);
    const tolerances = tolerancesOf(items);
    const draw = r.next();
    if (draw < 0.6) {
      // Ordered and cut: the order ends with the unique id, so it is total.
      const order = this.orderBy(aliased, true, false);
      const terms = order.text === '' ? [] : [order.text.replace(' ORDER BY ', '')];
      const sql = `SELECT ${select} FROM events${where} ORDER BY ${[...terms, `id${r.pick(['', ' DESC'])}`].join(', ')} LIMIT ${r.pick([1, 5, 20, 100])}${offsetClause(r)}`;
      return { sql, duckSql: sql, ordered: true, tolerances, star: false, shape: 'rows/ordered' };
    }
    if (draw < 0.8) {
      const limit = r.pick([1, 5, 20]);
      const sql = `SELECT ${select} FROM events${where} LIMIT ${limit}`;
      return { sql, duckSql: sql, ordered: false, tolerances, sampleRows: limit, star: false, shape: 'rows/sample' };
    }
    // Every matching row: keep it selective so the answer stays small.
    const modulus = r.int(20, 200);
    const remainder = r.int(0, 20);
    this.whereText = `id % ${modulus} = ${remainder}${where.replace(' WHERE ', ' AND ')}`;
    const sql = `SELECT ${select} FROM events WHERE ${this.whereText}`;
    return { sql, duckSql: sql, ordered: false, tolerances, star: false, shape: 'rows/all' };
  }

  /** SELECT DISTINCT: every distinct row, ordered (by every column under a LIMIT: distinct rows differ in one), or a sample. */
  private distinctRows(): Drawn {
    const r = this.rng;
    const items = Array.from({ length: r.int(1, 4) }, () =>
      r.pick<() => Ex>([() => this.column(r.pick(['int', 'str', 'str', 'bool', 'time', 'float'] as const)), () => this.strExpr(), () => this.numExpr(1), () => this.timeExpr(), () => this.predicate(1)])());
    const aliased = items.map((item, index) => ({ item, alias: r.chance(0.4) ? `e${index}` : null }));
    const select = aliased.map(({ item, alias }) => (alias ? `${item.s} AS ${alias}` : item.s)).join(', ');
    const base = `SELECT DISTINCT ${select} FROM events${this.where(0.6)}`;
    const tolerances = tolerancesOf(items);
    const draw = r.next();
    if (draw < 0.5) {
      const order = this.orderBy(aliased, true, true);
      const sql = `${base}${order.text}`;
      return { sql, duckSql: sql, ordered: order.keys.length > 0, ...(order.keys.length > 0 ? { orderKeys: order.keys } : {}), tolerances, star: false, shape: 'distinct/ordered' };
    }
    if (draw < 0.7) {
      const limit = r.pick([1, 5, 20]);
      const sql = `${base} LIMIT ${limit}`;
      return { sql, duckSql: sql, ordered: false, tolerances, sampleRows: limit, star: false, shape: 'distinct/sample' };
    }
    return { sql: base, duckSql: base, ordered: false, tolerances, star: false, shape: 'distinct/all' };
  }

  private star(): Drawn {
    const r = this.rng;
    const where = this.where(0.8);
    if (r.chance(0.5)) {
      const sql = `SELECT * FROM events${where} ORDER BY id${r.pick(['', ' DESC'])} LIMIT ${r.pick([1, 10, 50])}${offsetClause(r)}`;
      return { sql, duckSql: sql, ordered: true, tolerances: {}, star: true, shape: 'star/ordered' };
    }
    const limit = r.pick([1, 10]);
    const sql = `SELECT * FROM events${where} LIMIT ${limit}`;
    return { sql, duckSql: sql, ordered: false, sampleRows: limit, tolerances: {}, star: true, shape: 'star/sample' };
  }

  private selectList(items: readonly Ex[], prefix: string): { s: string; d: string } {
    const aliases = items.map((_, index) => (this.rng.chance(0.6) ? `${prefix}${index}` : null));
    return {
      s: items.map((item, index) => (aliases[index] ? `${item.s} AS ${aliases[index]}` : item.s)).join(', '),
      d: items.map((item, index) => (aliases[index] ? `${item.d} AS ${aliases[index]}` : item.d)).join(', '),
    };
  }
}
