/**
 * Tests of the SQL front end (query/sql/lexer.ts, query/sql/parser.ts): the tree for each construct,
 * precedence, error codes and positions for malformed input, limits, and seeded property tests
 * (random input never escapes as anything but a parse/limit error; print -> parse round trips).
 */

import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseSql } from '../query/sql/parser.js';
import { KEYWORDS, lineColumn, tokenize } from '../query/sql/lexer.js';
import { ShoalError, type ErrorCode } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import type { Expr, SelectStmt } from '../query/sql/ast.js';

// ---- helpers: trees without positions ----

/** Drops every `pos` so trees can be compared by shape. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'pos').map(([k, v]) => [k, strip(v)]));
}
type Bare<T> = T extends readonly (infer U)[] ? readonly Bare<U>[] : T extends object ? { [K in keyof T as K extends 'pos' ? never : K]: Bare<T[K]> } : T;
type E = Bare<Expr>;

const col = (name: string, quoted = false): E => ({ kind: 'column', name, quoted });
const lit = (value: number | string | boolean | null): E => ({ kind: 'literal', value });
/** A number written with a fraction or an exponent: a DOUBLE even when whole. */
const flit = (value: number): E => ({ kind: 'literal', value, float: true });
/** The literal a printed value parses back to: `1.5` and `1e+21` are floats, `3` is not. */
const litOf = (value: number | string | boolean | null): E => (typeof value === 'number' && /[.eE]/.test(String(value)) ? flit(value) : lit(value));
const bin = (op: string, left: E, right: E): E => ({ kind: 'binary', op, left, right } as E);
const not = (operand: E): E => ({ kind: 'unary', op: 'not', operand });
const neg = (operand: E): E => ({ kind: 'unary', op: 'neg', operand });
const call = (name: string, args: E[], distinct = false): E => ({ kind: 'call', name, args, distinct });

/** The WHERE expression of `SELECT x FROM t WHERE <sql>`, without positions. */
const where = (sql: string): unknown => strip(parseSql(`SELECT x FROM t WHERE ${sql}`).where);
const selectExpr = (sql: string): Expr => {
  const item = parseSql(`SELECT ${sql} FROM t`).items[0]!;
  if (item.kind !== 'expr') throw new Error('expected an expression item');
  return item.expr;
};

function errorOf(sql: string): ShoalError {
  try {
    parseSql(sql);
  } catch (e) {
    if (e instanceof ShoalError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(sql.slice(0, 80))} to be rejected`);
}

// ---- the tree ----

describe('parseSql: the constructs of issue 16', () => {
  it('parses CASE, CAST, ::, ||, IS [NOT] DISTINCT FROM and typed literals', () => {
    expect(strip(selectExpr("CASE WHEN a > 1 THEN 'x' ELSE 'y' END"))).toEqual({ kind: 'case', operand: null, whens: [{ when: bin('>', col('a'), lit(1)), then: lit('x') }], else: lit('y') });
    expect(strip(selectExpr('CASE a WHEN 1 THEN 2 END'))).toEqual({ kind: 'case', operand: col('a'), whens: [{ when: lit(1), then: lit(2) }], else: null });
    expect(strip(selectExpr('CAST(a AS bigint)'))).toEqual({ kind: 'cast', operand: col('a'), to: 'int', typeName: 'BIGINT', try: false });
    expect(strip(selectExpr('TRY_CAST(a AS varchar(20))'))).toEqual({ kind: 'cast', operand: col('a'), to: 'string', typeName: 'VARCHAR', try: true });
    // :: binds tighter than unary minus and than ||, which is looser than +.
    expect(strip(selectExpr('-a::int'))).toEqual(neg({ kind: 'cast', operand: col('a'), to: 'int', typeName: 'INTEGER', try: false } as E));
    expect(strip(selectExpr("'a' || 1 + 2"))).toEqual(call('$concat', [lit('a'), bin('+', lit(1), lit(2))]));
    expect(strip(where('a IS NOT DISTINCT FROM b'))).toEqual(call('$not_distinct', [col('a'), col('b')]));
    expect(strip(selectExpr("TIMESTAMP '2024-01-01'"))).toEqual({ kind: 'cast', operand: lit('2024-01-01'), to: 'time', typeName: 'TIMESTAMP', try: false });
  });

  it('parses FILTER, OVER with frames, extract, QUALIFY, DISTINCT, GROUP BY ALL, NULLS and OFFSET', () => {
    const f = strip(selectExpr('count(*) FILTER (WHERE a > 1)')) as { filter: unknown };
    expect(f.filter).toEqual(bin('>', col('a'), lit(1)));
    const w = strip(selectExpr('sum(a) OVER (PARTITION BY b ORDER BY c DESC NULLS FIRST ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)')) as { over: unknown };
    expect(w.over).toEqual({ partitionBy: [col('b')], orderBy: [{ expr: col('c'), desc: true, nullsFirst: true }], frame: { unit: 'rows', start: { kind: 'preceding', offset: 2 }, end: { kind: 'current', offset: 0 } } });
    expect(strip(selectExpr('extract(hour FROM time)'))).toEqual(call('date_part', [lit('hour'), col('time')]));
    const q = parseSql('SELECT DISTINCT a FROM t e WHERE e.a > 1 GROUP BY ALL QUALIFY x = 1 ORDER BY a NULLS LAST LIMIT 5 OFFSET 10');
    expect([q.distinct, q.groupByAll, q.limit, q.offset, q.orderBy[0]!.nullsFirst]).toEqual([true, true, 5, 10, false]);
    expect(strip(q.where)).toEqual(bin('>', col('a'), lit(1)));
    expect(strip(q.qualify)).toEqual(bin('=', col('x'), lit(1)));
  });

  it('parses subqueries, WITH, SHOW TABLES, DESCRIBE and information_schema', () => {
    const sub = parseSql('SELECT n FROM (SELECT count(*) AS n FROM t) AS s WHERE s.n > 1');
    expect(sub.from.kind).toBe('subquery');
    const cte = parseSql('WITH x AS (SELECT a FROM t), y AS (SELECT a FROM x) SELECT a FROM y');
    expect(cte.from.kind === 'subquery' && cte.from.query.from.kind === 'subquery').toBe(true);
    expect(parseSql('SHOW TABLES').from).toMatchObject({ kind: 'catalog', relation: 'tables' });
    const d = parseSql('DESCRIBE events');
    expect(d.from).toMatchObject({ kind: 'catalog', relation: 'columns' });
    expect(strip(d.where)).toEqual(bin('=', col('table_name', true), lit('events')));
    expect(parseSql('SELECT column_name FROM information_schema.columns').from).toMatchObject({ kind: 'catalog', relation: 'columns' });
    expect(parseSql('SELECT a FROM main.t').from).toMatchObject({ kind: 'table', name: 't' });
  });
});

describe('parseSql: statement', () => {
  it('parses every clause', () => {
    const stmt = parseSql('SELECT host, count(*) AS n FROM "web-logs" WHERE status >= 500 GROUP BY host, 1 HAVING count(*) > 10 ORDER BY n DESC, host ASC, 2 LIMIT 20;');
    expect(strip(stmt)).toEqual({
      kind: 'select',
      items: [
        { kind: 'expr', expr: col('host'), alias: null },
        { kind: 'expr', expr: call('count', [{ kind: 'star' }]), alias: 'n' },
      ],
      distinct: false,
      from: { kind: 'table', name: 'web-logs' },
      where: bin('>=', col('status'), lit(500)),
      groupBy: [col('host'), lit(1)],
      groupByAll: false,
      having: bin('>', call('count', [{ kind: 'star' }]), lit(10)),
      qualify: null,
      orderBy: [{ expr: col('n'), desc: true, nullsFirst: null }, { expr: col('host'), desc: false, nullsFirst: null }, { expr: lit(2), desc: false, nullsFirst: null }],
      limit: 20,
      offset: 0,
    });
  });

  it('parses SELECT * with only FROM, and returns frozen nodes', () => {
    const stmt = parseSql('select * from events');
    expect(strip(stmt)).toEqual({ kind: 'select', distinct: false, items: [{ kind: 'star' }], from: { kind: 'table', name: 'events' }, where: null, groupBy: [], groupByAll: false, having: null, qualify: null, orderBy: [], limit: null, offset: 0 });
    expect(Object.isFrozen(stmt)).toBe(true);
    expect(Object.isFrozen(stmt.items)).toBe(true);
    expect(Object.isFrozen(stmt.items[0])).toBe(true);
  });

  it('takes aliases with and without AS, quoted or not, keeping their spelling', () => {
    const stmt = parseSql('SELECT a AS Total, b bee, c AS "My Col", d "x""y" FROM t');
    expect(stmt.items.map((i) => (i.kind === 'expr' ? i.alias : '*'))).toEqual(['Total', 'bee', 'My Col', 'x"y']);
  });

  it('keeps identifier spelling, marks quoted identifiers, is case-insensitive for keywords', () => {
    expect(strip(selectExpr('MyCol'))).toEqual(col('MyCol'));
    expect(strip(selectExpr('"Select"'))).toEqual(col('Select', true));
    expect(strip(selectExpr('"a ""b"" c"'))).toEqual(col('a "b" c', true));
    expect(strip(parseSql('sElEcT a FrOm t wHeRe a iS nOt NuLl').where)).toEqual({ kind: 'isNull', operand: col('a'), negated: true });
  });

  it('skips comments and whitespace of every kind', () => {
    const stmt = parseSql('-- leading\nSELECT /* inline */ a\r\n\tFROM t -- trailing');
    expect(strip(stmt.items)).toEqual([{ kind: 'expr', expr: col('a'), alias: null }]);
  });

  it('records 0-based positions of each node', () => {
    const sql = 'SELECT sum(x) + 1 AS s FROM tbl WHERE NOT y IN (1, -2) ORDER BY s';
    const stmt = parseSql(sql);
    const item = stmt.items[0]!;
    expect(item.pos).toBe(7);
    if (item.kind !== 'expr' || item.expr.kind !== 'binary') throw new Error('shape');
    expect(item.expr.pos).toBe(7);
    expect(item.expr.right.pos).toBe(sql.indexOf('1 AS'));
    expect(stmt.from.pos).toBe(sql.indexOf('tbl'));
    const w = stmt.where!;
    expect(w.pos).toBe(sql.indexOf('NOT'));
    if (w.kind !== 'unary' || w.operand.kind !== 'in') throw new Error('shape');
    expect(w.operand.pos).toBe(sql.indexOf('y IN'));
    expect(w.operand.list[1]!.pos).toBe(sql.indexOf('-2'));
    expect(stmt.orderBy[0]!.pos).toBe(sql.lastIndexOf('s'));
  });
});

describe('parseSql: expressions', () => {
  it('builds every node kind', () => {
    expect(where('a')).toEqual(col('a'));
    expect(where("'it''s'")).toEqual(lit("it's"));
    expect(where('TRUE OR FALSE OR NULL')).toEqual(bin('or', bin('or', lit(true), lit(false)), lit(null)));
    expect(where('-a')).toEqual(neg(col('a')));
    expect(where('NOT a')).toEqual(not(col('a')));
    expect(where('a IN (1, 2.5, \'x\')')).toEqual({ kind: 'in', operand: col('a'), list: [lit(1), flit(2.5), lit('x')], negated: false });
    expect(where('a NOT IN (1)')).toEqual({ kind: 'in', operand: col('a'), list: [lit(1)], negated: true });
    expect(where("a LIKE 'x%'")).toEqual({ kind: 'like', operand: col('a'), pattern: lit('x%'), negated: false, caseInsensitive: false });
    expect(where("a NOT ILIKE 'x%'")).toEqual({ kind: 'like', operand: col('a'), pattern: lit('x%'), negated: true, caseInsensitive: true });
    expect(where('a IS NULL')).toEqual({ kind: 'isNull', operand: col('a'), negated: false });
    expect(where('a IS NOT NULL')).toEqual({ kind: 'isNull', operand: col('a'), negated: true });
    expect(where('a BETWEEN 1 AND 2')).toEqual({ kind: 'between', operand: col('a'), low: lit(1), high: lit(2), negated: false });
    expect(where('a NOT BETWEEN 1 AND 2')).toEqual({ kind: 'between', operand: col('a'), low: lit(1), high: lit(2), negated: true });
    expect(where('count(DISTINCT user_id) > 0')).toEqual(bin('>', call('count', [col('user_id')], true), lit(0)));
    expect(where('time >= now() - INTERVAL \'1 hour\'')).toEqual(
      bin('>=', col('time'), bin('-', call('now', []), { kind: 'interval', seconds: 3600, text: '1 hour' })));
    expect(where('REGEXP_MATCHES(path, \'^/api\') AND list_contains(tags, \'x\')')).toEqual(
      bin('and', call('regexp_matches', [col('path'), lit('^/api')]), call('list_contains', [col('tags'), lit('x')])));
    expect(where('a <> b AND a != b')).toEqual(bin('and', bin('!=', col('a'), col('b')), bin('!=', col('a'), col('b'))));
  });

  it('reads numbers in every form and folds negative literals', () => {
    expect(where('a = 42')).toEqual(bin('=', col('a'), lit(42)));
    expect(where('a = 1.5e3')).toEqual(bin('=', col('a'), flit(1500)));
    expect(where('a = .5')).toEqual(bin('=', col('a'), flit(0.5)));
    expect(where('a = 2E-2')).toEqual(bin('=', col('a'), flit(0.02)));
    expect(where('a = 7.')).toEqual(bin('=', col('a'), flit(7)));
    expect(where('a = -3')).toEqual(bin('=', col('a'), lit(-3)));
    expect(where('a = - - 3')).toEqual(bin('=', col('a'), lit(3)));
    expect(where('a - -3')).toEqual(bin('-', col('a'), lit(-3)));
  });

  it('applies precedence: OR < AND < NOT < comparison < + - < * / % < unary minus', () => {
    expect(where('a OR b AND c')).toEqual(bin('or', col('a'), bin('and', col('b'), col('c'))));
    expect(where('a AND b OR c')).toEqual(bin('or', bin('and', col('a'), col('b')), col('c')));
    expect(where('NOT a AND b')).toEqual(bin('and', not(col('a')), col('b')));
    expect(where('NOT a = b')).toEqual(not(bin('=', col('a'), col('b'))));
    expect(where('NOT NOT a')).toEqual(not(not(col('a'))));
    expect(where('a + b = c * d')).toEqual(bin('=', bin('+', col('a'), col('b')), bin('*', col('c'), col('d'))));
    expect(where('a + b * c')).toEqual(bin('+', col('a'), bin('*', col('b'), col('c'))));
    expect(where('a - b - c')).toEqual(bin('-', bin('-', col('a'), col('b')), col('c')));
    expect(where('a / b % c * d')).toEqual(bin('*', bin('%', bin('/', col('a'), col('b')), col('c')), col('d')));
    expect(where('-a * b')).toEqual(bin('*', neg(col('a')), col('b')));
    expect(where('(a + b) * c')).toEqual(bin('*', bin('+', col('a'), col('b')), col('c')));
    expect(where('a BETWEEN b + 1 AND c AND d')).toEqual(
      bin('and', { kind: 'between', operand: col('a'), low: bin('+', col('b'), lit(1)), high: col('c'), negated: false }, col('d')));
    expect(where('a + 1 IN (b) OR c IS NULL')).toEqual(
      bin('or', { kind: 'in', operand: bin('+', col('a'), lit(1)), list: [col('b')], negated: false }, { kind: 'isNull', operand: col('c'), negated: false }));
    expect(where('(a = b) = c')).toEqual(bin('=', bin('=', col('a'), col('b')), col('c')));
  });

  it('parses intervals in all their spellings', () => {
    const cases: [string, number][] = [
      ["'5 minutes'", 300], ["'1 hour'", 3600], ["'30 seconds'", 30], ["'2 days'", 172_800], ["'1 week'", 604_800],
      ["'500 milliseconds'", 0.5], ["'1 minute'", 60], ["'10s'", 10], ["'10 sec'", 10], ["'3 min'", 180], ["'3 m'", 180],
      ["'2 h'", 7200], ["'2 hr'", 7200], ["'1 d'", 86_400], ["'250 ms'", 0.25], ["'1.5 hours'", 5400],
      ["'1 hour 30 minutes'", 5400], ["'5 MINUTES'", 300], ['5 MINUTE', 300], ['2 hours', 7200], ["'5' minute", 300],
    ];
    for (const [text, seconds] of cases) {
      const e = selectExpr(`INTERVAL ${text}`);
      expect(e.kind === 'interval' && e.seconds).toBe(seconds);
    }
    expect(strip(selectExpr("interval '5 minutes'"))).toEqual({ kind: 'interval', seconds: 300, text: '5 minutes' });
    expect(strip(selectExpr('INTERVAL 5 MINUTE'))).toEqual({ kind: 'interval', seconds: 300, text: '5 MINUTE' });
    expect(strip(selectExpr("time_bucket(INTERVAL '5 minutes', time)"))).toEqual(
      call('time_bucket', [{ kind: 'interval', seconds: 300, text: '5 minutes' }, col('time')]));
    // INTERVAL is not reserved: without a literal after it, it is a column.
    expect(strip(selectExpr('interval'))).toEqual(col('interval'));
  });

  it('leaves GROUP BY / ORDER BY references to the planner', () => {
    const stmt = parseSql('SELECT a AS x, b FROM t GROUP BY x, 2 ORDER BY 1 DESC, "x"');
    expect(strip(stmt.groupBy)).toEqual([col('x'), lit(2)]);
    expect(strip(stmt.orderBy)).toEqual([{ expr: lit(1), desc: true, nullsFirst: null }, { expr: col('x', true), desc: false, nullsFirst: null }]);
  });
});

describe('tokenize', () => {
  it('gives kinds, values and offsets', () => {
    const tokens = tokenize(`a "B c" 'd' 1e3 <> select`);
    expect(tokens.map((t) => [t.kind, t.value, t.quoted, t.pos])).toEqual([
      ['ident', 'a', false, 0], ['ident', 'B c', true, 2], ['string', 'd', false, 8], ['number', '1e3', false, 12],
      ['op', '<>', false, 16], ['keyword', 'SELECT', false, 19], ['eof', '', false, 25],
    ]);
  });
  it('computes 1-based line and column', () => {
    expect(lineColumn('ab\ncd\nef', 7)).toEqual({ line: 3, column: 2 });
  });
});

// ---- errors ----

describe('parseSql: errors', () => {
  // [sql, code, the text at the error position (first occurrence; '' = end of input), message fragment]
  const cases: [string, ErrorCode, string, string][] = [
    ['SELECT a WHERE b', 'SHOAL_ERR_QUERY_PARSE', 'WHERE', "expected ',' or FROM but found 'WHERE' at line 1, column 10"],
    ['', 'SHOAL_ERR_QUERY_PARSE', '', 'expected SELECT but found end of input at line 1, column 1'],
    ['DELETE FROM t', 'SHOAL_ERR_QUERY_PARSE', 'DELETE', 'expected SELECT'],
    ['SELECT FROM t', 'SHOAL_ERR_QUERY_PARSE', 'FROM', 'expected expression'],
    ['SELECT a, FROM t', 'SHOAL_ERR_QUERY_PARSE', 'FROM', 'expected expression'],
    ['SELECT a FROM', 'SHOAL_ERR_QUERY_PARSE', '', 'expected table name but found end of input'],
    ['SELECT a FROM t WHERE', 'SHOAL_ERR_QUERY_PARSE', '', 'expected expression but found end of input'],
    ['SELECT a FROM t WHERE (a = 1', 'SHOAL_ERR_QUERY_PARSE', '', "expected ')'"],
    ['SELECT a FROM t WHERE a = 1)', 'SHOAL_ERR_QUERY_PARSE', ')', 'expected GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT or end of input'],
    ['SELECT a FROM t garbage more', 'SHOAL_ERR_QUERY_PARSE', 'more', 'expected WHERE'],
    ['SELECT u.a FROM t', 'SHOAL_ERR_QUERY_PARSE', 'u.a', 'is not the table or alias'],
    ['SELECT a::decimal(10,2) FROM t', 'SHOAL_ERR_QUERY_PARSE', 'decimal', 'DECIMAL (exact fixed-point) is not supported'],
    ['SELECT CASE WHEN a THEN 1 FROM t', 'SHOAL_ERR_QUERY_PARSE', 'FROM', 'WHEN, ELSE or END in CASE'],
    ['SELECT extract(fortnight FROM time) FROM t', 'SHOAL_ERR_QUERY_PARSE', 'fortnight', 'unknown date part'],
    ['SELECT sum(a) OVER w FROM t', 'SHOAL_ERR_QUERY_PARSE', 'w', 'named windows'],
    ['SELECT a FROM t ORDER BY a NULLS LATER', 'SHOAL_ERR_QUERY_PARSE', 'LATER', 'FIRST or LAST after NULLS'],
    ['SELECT a FROM t LIMIT 5 WHERE a', 'SHOAL_ERR_QUERY_PARSE', 'WHERE', 'clauses go in the order'],
    ['SELECT a FROM t WHERE a WHERE b', 'SHOAL_ERR_QUERY_PARSE', 'WHERE b', 'clauses go in the order'],
    ['SELECT x FROM t GROUP y', 'SHOAL_ERR_QUERY_PARSE', 'y', 'expected BY'],
    ['SELECT a FROM t\nWHERE a = = 1', 'SHOAL_ERR_QUERY_PARSE', '= 1', "found '=' at line 2, column 11"],
    ['SELECT a FROM t WHERE a = b = c', 'SHOAL_ERR_QUERY_PARSE', '= c', 'comparisons do not chain'],
    ['SELECT a FROM t WHERE a IS b', 'SHOAL_ERR_QUERY_PARSE', 'b', 'expected NULL or NOT after IS'],
    ['SELECT a FROM t WHERE a IN 1', 'SHOAL_ERR_QUERY_PARSE', '1', "expected '(' after IN"],
    ['SELECT a FROM t WHERE a IN ()', 'SHOAL_ERR_QUERY_PARSE', ')', 'expected expression'],
    ['SELECT a FROM t WHERE a IN (1 2)', 'SHOAL_ERR_QUERY_PARSE', '2', "expected ',' or ')'"],
    ['SELECT a FROM t WHERE a BETWEEN 1 OR 2', 'SHOAL_ERR_QUERY_PARSE', 'OR', 'expected AND in BETWEEN'],
    ['SELECT f(a b) FROM t', 'SHOAL_ERR_QUERY_PARSE', 'b', "expected ',' or ')'"],
    ['SELECT count(*, a) FROM t', 'SHOAL_ERR_QUERY_PARSE', ',', "expected ')'"],
    ['SELECT count(DISTINCT *) FROM t', 'SHOAL_ERR_QUERY_PARSE', '*', 'expected expression'],
    ['SELECT a AS FROM t', 'SHOAL_ERR_QUERY_PARSE', 'FROM', 'expected alias after AS'],
    ['SELECT a FROM t LIMIT x', 'SHOAL_ERR_QUERY_PARSE', 'x', 'expected a non-negative integer after LIMIT'],
    ['SELECT a FROM t LIMIT -1', 'SHOAL_ERR_QUERY_PARSE', '-', 'non-negative integer'],
    ['SELECT a FROM t LIMIT 2.5', 'SHOAL_ERR_QUERY_PARSE', '2.5', 'non-negative integer'],
    ['SELECT a FROM t; x', 'SHOAL_ERR_QUERY_PARSE', 'x', 'one statement per query'],
    ['SELECT a FROM my-table', 'SHOAL_ERR_QUERY_PARSE', '-', 'must be double-quoted'],
    // lexer
    ["SELECT 'abc FROM t", 'SHOAL_ERR_QUERY_PARSE', "'abc", "unterminated string literal 'abc FROM t"],
    ['SELECT "abc FROM t', 'SHOAL_ERR_QUERY_PARSE', '"abc', 'unterminated quoted identifier'],
    ['SELECT a /* FROM t', 'SHOAL_ERR_QUERY_PARSE', '/*', 'unterminated /* comment'],
    ['SELECT a # FROM t', 'SHOAL_ERR_QUERY_PARSE', '#', "unexpected character '#' (U+0023)"],
    ['SELECT a | b FROM t', 'SHOAL_ERR_QUERY_PARSE', '|', "string concatenation is '||'"],
    ['SELECT 12abc FROM t', 'SHOAL_ERR_QUERY_PARSE', '12abc', "malformed number '12abc'"],
    ['SELECT 1e FROM t', 'SHOAL_ERR_QUERY_PARSE', '1e', 'exponent has no digits'],
    ['SELECT 1e999 FROM t', 'SHOAL_ERR_QUERY_PARSE', '1e999', 'out of range'],
    ['SELECT "" FROM t', 'SHOAL_ERR_QUERY_PARSE', '""', 'empty quoted identifier'],
    ['SELECT a\u00a0FROM t', 'SHOAL_ERR_QUERY_PARSE', '\u00a0', 'U+00A0'],
    // intervals
    ["SELECT INTERVAL '5 fortnights' FROM t", 'SHOAL_ERR_QUERY_PARSE', "'5", "unknown interval unit 'fortnights'"],
    ["SELECT INTERVAL '1 month' FROM t", 'SHOAL_ERR_QUERY_PARSE', "'1", 'no fixed length'],
    ["SELECT INTERVAL 'soon' FROM t", 'SHOAL_ERR_QUERY_PARSE', "'soon", 'invalid interval'],
    ['SELECT INTERVAL 5 FROM t', 'SHOAL_ERR_QUERY_PARSE', 'FROM', 'interval unit'],
    // unsupported syntax
    ['SELECT a FROM t JOIN u ON a = b', 'SHOAL_ERR_QUERY_PARSE', 'JOIN', 'joins are not supported'],
    ['SELECT a FROM t LEFT JOIN u ON a = b', 'SHOAL_ERR_QUERY_PARSE', 'LEFT', 'joins are not supported'],
    ['SELECT a FROM t, u', 'SHOAL_ERR_QUERY_PARSE', ',', 'joins are not supported'],
    ['SELECT a FROM t WHERE a IN (SELECT b FROM u)', 'SHOAL_ERR_QUERY_PARSE', '(', 'subqueries in IN (...) are not supported'],
    ['SELECT (SELECT 1) FROM t', 'SHOAL_ERR_QUERY_PARSE', '(', 'scalar subqueries are not supported'],
    ['SELECT a FROM t UNION SELECT a FROM u', 'SHOAL_ERR_QUERY_PARSE', 'UNION', 'UNION is not supported'],
    ['WITH RECURSIVE x AS (SELECT 1) SELECT a FROM x', 'SHOAL_ERR_QUERY_PARSE', 'RECURSIVE', 'WITH RECURSIVE is not supported'],
    ['SELECT DISTINCT ON (a) a FROM t', 'SHOAL_ERR_QUERY_PARSE', 'ON', 'DISTINCT ON is not supported'],
    ['SELECT sum(a) OVER (GROUPS 1 PRECEDING) FROM t', 'SHOAL_ERR_QUERY_PARSE', 'GROUPS', 'GROUPS frames'],
    ['SELECT sum(a) OVER (ORDER BY a RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t', 'SHOAL_ERR_QUERY_PARSE', 'RANGE', 'RANGE frames with an offset'],
    ["SELECT a FROM t WHERE time > TIME '10:00'", 'SHOAL_ERR_QUERY_PARSE', 'TIME', "TIME '...' literals are not supported"],
    ['SELECT a FROM t WHERE a = ANY (b)', 'SHOAL_ERR_QUERY_PARSE', 'ANY', 'ANY / ALL'],
    // limits
    [`SELECT a FROM t LIMIT ${LIMITS.resultRowsMax + 1}`, 'SHOAL_ERR_QUERY_LIMIT', String(LIMITS.resultRowsMax + 1), 'over the maximum'],
  ];

  it.each(cases)('%j -> %s', (sql, code, at, fragment) => {
    const error = errorOf(sql);
    expect(error.code).toBe(code);
    expect(error.where?.position).toBe(at === '' ? sql.length : sql.indexOf(at));
    expect(error.message).toContain(fragment);
    expect(error.message).toMatch(/at line \d+, column \d+$/);
  });

  it('accepts LIMIT at its maximum and 0', () => {
    expect(parseSql(`SELECT a FROM t LIMIT ${LIMITS.resultRowsMax}`).limit).toBe(LIMITS.resultRowsMax);
    expect(parseSql('SELECT a FROM t LIMIT 0').limit).toBe(0);
  });
});

describe('parseSql: limits', () => {
  const depth = LIMITS.exprDepthMax;
  const limitAt = (sql: string): number | undefined => {
    const e = errorOf(sql);
    expect(e.code).toBe('SHOAL_ERR_QUERY_LIMIT');
    return e.where?.position;
  };

  it('rejects SQL text over sqlLengthMax', () => {
    const sql = `SELECT a FROM t WHERE a = '${'x'.repeat(LIMITS.sqlLengthMax)}'`;
    expect(limitAt(sql)).toBe(LIMITS.sqlLengthMax);
  });

  it('bounds parenthesis nesting without overflowing the stack, even 100,000 deep', () => {
    const prefix = 'SELECT a FROM t WHERE ';
    // The WHERE expression is level 1, each parenthesis one more.
    expect(where(`${'('.repeat(depth - 1)}a${')'.repeat(depth - 1)}`)).toEqual(col('a'));
    expect(limitAt(`${prefix}${'('.repeat(depth)}a${')'.repeat(depth)}`)).toBe(prefix.length + depth);
    const deep = `SELECT ${'('.repeat(LIMITS.sqlLengthMax - 7)}`;
    expect(deep.length).toBe(LIMITS.sqlLengthMax);
    expect(limitAt(deep)).toBe(7 + depth);
  });

  it('bounds NOT, unary minus, function and operator chains', () => {
    expect(() => where(`${'NOT '.repeat(depth - 1)}a`)).not.toThrow();
    expect(limitAt(`SELECT a FROM t WHERE ${'NOT '.repeat(depth)}a`)).toBeGreaterThan(0);
    expect(limitAt(`SELECT a FROM t WHERE ${'NOT '.repeat(20_000)}a`)).toBeGreaterThan(0);
    expect(limitAt(`SELECT ${'- '.repeat(30_000)}a FROM t`)).toBeGreaterThan(0);
    expect(limitAt(`SELECT ${'f('.repeat(30_000)}a FROM t`)).toBeGreaterThan(0);
    // A long flat chain is a deep tree: the evaluator recursing over it needs the same bound.
    expect(() => where(Array(depth).fill('a').join(' + '))).not.toThrow();
    const chain = `SELECT a FROM t WHERE ${Array(depth + 1).fill('a').join(' + ')}`;
    expect(limitAt(chain)).toBe(chain.lastIndexOf('+'));
    expect(limitAt(`SELECT a FROM t WHERE ${Array(20_000).fill('a = 1').join(' OR ')}`)).toBeGreaterThan(0);
  });

  it('bounds IN lists and select, GROUP BY and ORDER BY lists', () => {
    const list = (count: number): string => Array.from({ length: count }, (_, i) => String(i)).join(', ');
    expect(() => parseSql(`SELECT a FROM t WHERE a IN (${list(LIMITS.inListMax)})`)).not.toThrow();
    limitAt(`SELECT a FROM t WHERE a IN (${list(LIMITS.inListMax + 1)})`);
    expect(parseSql(`SELECT ${list(LIMITS.selectItemsMax)} FROM t`).items).toHaveLength(LIMITS.selectItemsMax);
    limitAt(`SELECT ${list(LIMITS.selectItemsMax + 1)} FROM t`);
    limitAt(`SELECT a FROM t GROUP BY ${list(LIMITS.selectItemsMax + 1)}`);
    limitAt(`SELECT a FROM t ORDER BY ${list(LIMITS.selectItemsMax + 1)}`);
  });
});

// ---- properties ----

const ALLOWED: ReadonlySet<string> = new Set(['SHOAL_ERR_QUERY_PARSE', 'SHOAL_ERR_QUERY_LIMIT']);

/** Parses or rejects cleanly: only the two query codes, with a position inside the text. */
function parsesOrRejects(sql: string): void {
  try {
    parseSql(sql);
  } catch (e) {
    if (!(e instanceof ShoalError) || !ALLOWED.has(e.code)) throw e;
    const position = e.where?.position;
    if (position === undefined || position < 0 || position > sql.length) throw new Error(`bad position ${position}`);
  }
}

const SOUP = [
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'ORDER', 'LIMIT', 'AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE',
  'IS', 'NULL', 'BETWEEN', 'TRUE', 'FALSE', 'AS', 'ASC', 'DESC', 'DISTINCT', 'INTERVAL', 'NULLS', 'OVER', 'JOIN',
  'count', 'now', 't', 'a', '"q"', '"', "'", "'s'", "'5 minutes'", '5', '1e3', '.5', '1e999', 'MINUTE', '*', '(', ')',
  ',', ';', '=', '<>', '!=', '<', '>=', '+', '-', '/', '%', '--', '/*', '*/', '.', '::', '\n',
];

const UNIT_MS: Record<string, number> = { second: 1000, seconds: 1000, minute: 60_000, minutes: 60_000, hour: 3_600_000, hours: 3_600_000, day: 86_400_000, week: 604_800_000, ms: 1 };
const RESERVED = new Set([...KEYWORDS].map((k) => k.toLowerCase()).concat(['interval', 'nulls', 'over', 'filter', 'escape', 'date', 'time', 'timestamp', 'timestamptz', 'cast']));
const identArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,7}$/).filter((s) => !RESERVED.has(s.toLowerCase()));
const nameArb = fc.string({ minLength: 1, maxLength: 8 });

const exprArb: fc.Arbitrary<E> = fc.letrec<{ expr: E }>((tie) => {
  const sub = tie('expr');
  return {
    expr: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'expr' },
      fc.oneof(
        identArb.map((name) => col(name)),
        nameArb.map((name) => col(name, true)),
        fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((v) => !Object.is(v, -0)), fc.string(), fc.boolean(), fc.constant(null)).map(litOf),
        fc.tuple(fc.nat(1000), fc.constantFrom(...Object.keys(UNIT_MS))).map(([count, unit]): E =>
          ({ kind: 'interval', seconds: (count * UNIT_MS[unit]!) / 1000, text: `${count} ${unit}` })),
      ),
      sub.map(not),
      sub.filter((e) => !(e.kind === 'literal' && typeof e.value === 'number')).map(neg),
      fc.tuple(fc.constantFrom('+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', 'and', 'or'), sub, sub).map(([op, l, r]) => bin(op, l, r)),
      fc.tuple(sub, fc.array(sub, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([operand, list, negated]): E => ({ kind: 'in', operand, list, negated })),
      fc.tuple(sub, sub, fc.boolean(), fc.boolean()).map(([operand, pattern, negated, caseInsensitive]): E => ({ kind: 'like', operand, pattern, negated, caseInsensitive })),
      fc.tuple(sub, fc.boolean()).map(([operand, negated]): E => ({ kind: 'isNull', operand, negated })),
      fc.tuple(sub, sub, sub, fc.boolean()).map(([operand, low, high, negated]): E => ({ kind: 'between', operand, low, high, negated })),
      fc.tuple(identArb.map((s) => s.toLowerCase()), fc.array(sub, { maxLength: 3 }), fc.boolean()).map(([name, args, distinct]) => call(name, args, distinct && args.length > 0)),
      identArb.map((name) => call(name.toLowerCase(), [{ kind: 'star' }])),
    ),
  };
}).expr;

/** How tightly a node binds when printed: 1 = OR ... 8 = primary (mirrors the parser). */
function level(e: E): number {
  switch (e.kind) {
    case 'binary': return e.op === 'or' ? 1 : e.op === 'and' ? 2 : '+-'.includes(e.op) ? 5 : '*/%'.includes(e.op) ? 6 : 4;
    case 'unary': return e.op === 'not' ? 3 : 7;
    case 'in': case 'like': case 'isNull': case 'between': return 4;
    case 'literal': return typeof e.value === 'number' && e.value < 0 ? 7 : 8;
    default: return 8;
  }
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Prints an expression with the fewest parentheses the precedence rules allow. */
function print(e: E, min = 1): string {
  const text = printBare(e);
  return level(e) < min ? `(${text})` : text;
}

function printBare(e: E): string {
  const not = (negated: boolean): string => (negated ? 'NOT ' : '');
  switch (e.kind) {
    case 'column': return e.quoted ? quoteIdent(e.name) : e.name;
    case 'star': return '*';
    case 'literal':
      if (e.value === null) return 'NULL';
      if (typeof e.value === 'boolean') return e.value ? 'TRUE' : 'FALSE';
      if (typeof e.value === 'number') return String(e.value);
      return `'${e.value.replaceAll("'", "''")}'`;
    case 'interval': return `INTERVAL '${e.text}'`;
    case 'unary': return e.op === 'not' ? `NOT ${print(e.operand, 3)}` : `- ${print(e.operand, 7)}`;
    case 'binary': {
      const l = level(e);
      const op = e.op === 'and' || e.op === 'or' ? e.op.toUpperCase() : e.op;
      return l === 4 ? `${print(e.left, 5)} ${op} ${print(e.right, 5)}` : `${print(e.left, l)} ${op} ${print(e.right, l + 1)}`;
    }
    case 'in': return `${print(e.operand, 5)} ${not(e.negated)}IN (${e.list.map((x) => print(x)).join(', ')})`;
    case 'like': return `${print(e.operand, 5)} ${not(e.negated)}${e.caseInsensitive ? 'ILIKE' : 'LIKE'} ${print(e.pattern, 5)}`;
    case 'isNull': return `${print(e.operand, 5)} IS ${not(e.negated)}NULL`;
    case 'between': return `${print(e.operand, 5)} ${not(e.negated)}BETWEEN ${print(e.low, 5)} AND ${print(e.high, 5)}`;
    case 'call': return `${e.name}(${e.distinct ? 'DISTINCT ' : ''}${e.args.map((x) => print(x)).join(', ')})`;
    case 'case': case 'cast': throw new Error('the round-trip generator draws no CASE or CAST');
  }
}

const stmtArb: fc.Arbitrary<Bare<SelectStmt>> = fc.record({
  kind: fc.constant('select' as const),
  distinct: fc.constant(false),
  groupByAll: fc.constant(false),
  qualify: fc.constant(null),
  offset: fc.constant(0),
  items: fc.array(fc.oneof(
    fc.constant({ kind: 'star' as const }),
    fc.record({ kind: fc.constant('expr' as const), expr: exprArb, alias: fc.option(nameArb, { nil: null }) }),
  ), { minLength: 1, maxLength: 3 }),
  from: fc.record({ kind: fc.constant('table' as const), name: nameArb }),
  where: fc.option(exprArb, { nil: null }),
  groupBy: fc.array(exprArb, { maxLength: 2 }),
  having: fc.option(exprArb, { nil: null }),
  orderBy: fc.array(fc.record({ expr: exprArb, desc: fc.boolean(), nullsFirst: fc.constant(null) }), { maxLength: 2 }),
  limit: fc.option(fc.nat(LIMITS.resultRowsMax), { nil: null }),
}) as fc.Arbitrary<Bare<SelectStmt>>;

function printStmt(s: Bare<SelectStmt>): string {
  const items = s.items.map((i) => (i.kind === 'star' ? '*' : `${print(i.expr)}${i.alias === null ? '' : ` AS ${quoteIdent(i.alias)}`}`));
  return [
    `SELECT ${items.join(', ')} FROM ${quoteIdent((s.from as { name: string }).name)}`,
    s.where === null ? '' : ` WHERE ${print(s.where)}`,
    s.groupBy.length === 0 ? '' : ` GROUP BY ${s.groupBy.map((e) => print(e)).join(', ')}`,
    s.having === null ? '' : ` HAVING ${print(s.having)}`,
    s.orderBy.length === 0 ? '' : ` ORDER BY ${s.orderBy.map((o) => `${print(o.expr)} ${o.desc ? 'DESC' : 'ASC'}`).join(', ')}`,
    s.limit === null ? '' : ` LIMIT ${s.limit}`,
  ].join('');
}

describe('parseSql: properties (seeded)', () => {
  const settings = { seed: 42, numRuns: 2000 };

  it('random text never throws anything but a parse or limit error', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (sql) => parsesOrRejects(sql)), settings);
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (sql) => parsesOrRejects(`SELECT ${sql}`)), settings);
  });

  it('random token soups never throw anything but a parse or limit error', () => {
    const soup = fc.array(fc.constantFrom(...SOUP), { maxLength: 120 }).map((words) => words.join(' '));
    fc.assert(fc.property(soup, (sql) => parsesOrRejects(sql)), settings);
    fc.assert(fc.property(soup, (sql) => parsesOrRejects(`SELECT a FROM t WHERE ${sql}`)), settings);
  });

  it('mutated valid queries never throw anything but a parse or limit error', () => {
    const mutated = fc.tuple(stmtArb.map(printStmt), fc.nat(), fc.nat(3), fc.constantFrom(...SOUP)).map(([sql, at, cut, insert]) => {
      const i = at % (sql.length + 1);
      return sql.slice(0, i) + insert + sql.slice(i + cut);
    });
    fc.assert(fc.property(mutated, (sql) => parsesOrRejects(sql)), settings);
  });

  it('print -> parse round-trips random statements', () => {
    fc.assert(fc.property(stmtArb, (stmt) => {
      expect(strip(parseSql(printStmt(stmt)))).toEqual(stmt);
    }), settings);
  });
});
