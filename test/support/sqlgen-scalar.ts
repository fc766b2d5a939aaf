/**
 * Row-level constructs of issue 16 for the random SQL generator (sqlgen.ts calls these from its
 * numeric, string, time, predicate and group-key draws): CASE (searched and simple, with and
 * without ELSE), CAST / :: / TRY_CAST, the string functions (|| and concat, substr, left/right,
 * split_part, regexp_extract / regexp_replace, replace, trim, strpos, len, starts_with /
 * ends_with / contains, greatest / least, nullif), and the time functions (date_trunc, extract,
 * date_part, strftime, TIMESTAMP literals, casts to DATE).
 *
 * Every construct is spelled the same for shoal and DuckDB, so its `s` and `d` agree (predicates
 * are used with `s` only). Arguments are drawn to corner both engines: positions and lengths that
 * are zero, negative or past the end of strings with astral code points, empty delimiters and
 * search strings, regexps that match the empty string, replacements with `\1` and `$`, floats cast
 * to text and to integers (ties round to even), and casts DuckDB refuses on some rows (CAST of a
 * float past the integer range): the caller drops what DuckDB rejects.
 *
 * Not here: aggregates (sqlgen-agg.ts), anything after aggregation (sqlgen-post.ts).
 */
import { DIFF_TIME_SPAN_SECONDS, DIFF_TIME_START_SECONDS, REGION_VALUES, SVC_VALUES, WORD_VALUES } from './diff-data.js';
import { NEST_MAX, same, sqlStringLiteral, unify, wrap, type Ex, type SqlDraw, type Type } from './sqlgen-ex.js';

const TRUNC_UNITS = ['second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year'] as const;
const EXTRACT_PARTS = ['year', 'quarter', 'month', 'day', 'hour', 'minute', 'second', 'dow', 'isodow', 'doy', 'week', 'epoch'] as const;
/** The function spelling of a part where it is not the part's name (`dayofweek(t)` is dow). */
const PART_FUNCTIONS: Readonly<Record<string, string>> = { dow: 'dayofweek', doy: 'dayofyear' };
/**
 * strftime formats: dates, clocks, names, day of year, 12-hour clock, ISO weeks, fractions,
 * unpadded numbers, a literal %. Not %U and %W (week numbers from Sunday / Monday): shoal refuses them.
 */
const STRFTIME_FORMATS = [
  '%Y-%m-%d', '%Y-%m-%d %H:%M:%S', '%H:%M', '%d/%m/%y', '%j', '%a %d %b', '%A %B %Y', '%I %p', '%Y%m%d%H', '%w %u', '%G-W%V-%u',
  '%M:%S', '100%% at %H', '%c', '%x %X %T', '%f %g', '%-d/%-m %-H:%-M:%-S %-j %-I', '%z',
] as const;
/** Regexps both RE2 (DuckDB) and JavaScript with the `u` flag read alike, with their group count. */
const REGEXPS: readonly (readonly [string, number])[] = [
  ['[0-9]+', 0], ['^u', 0], ['(.)(.)', 2], ['ß|ss', 0], ['🌊', 0], ['[a-z]+', 0], ['^(.)', 1], ['(.)$', 1], ['x*', 0],
  ['([A-Z])([a-z]*)', 2], ['é|e\u0301', 0], ['^$', 0], ['.', 0], ['[0-9]{2}', 0], ['([^a-z])', 1], ['(a)?b', 1],
];
const REPLACEMENTS_PLAIN = ['', '-', '🌊', '$1', '\\0\\0', '.'] as const;
const REPLACEMENTS_GROUP = ['\\1', '<\\1>', '\\1\\1', '[\\0]'] as const;
const SPLIT_DELIMITERS = [' ', 'a', '🌊', 'ß', '_', 'u', '', 'S'] as const;
const TRIM_CHARACTERS = [' ', 'a', '🌊', 'ße', 'xX', 'u0'] as const;
const REPLACE_FROM = ['a', 'ß', '🌊', '', 'SS', 'e\u0301', 'u'] as const;
const REPLACE_TO = ['', 'x', '🌊🌊', 'ss'] as const;

const UID_PIECES = ['u1', 'u12', 'ü3🌊', 'u', '🌊'] as const;

const cmp = (g: SqlDraw) => g.rng.pick(['=', '!=', '<', '<=', '>', '>=']);

/** Text of a string column's values, or a piece of one (for starts_with, strpos, ...). */
function fragment(g: SqlDraw, column: string): string {
  const r = g.rng;
  const pool: readonly string[] = column === 'svc' ? SVC_VALUES : column === 'region' ? REGION_VALUES : column === 'uid' ? UID_PIECES : WORD_VALUES;
  const chars = [...(r.chance(0.15) ? '' : r.pick(pool))];
  const start = r.int(0, chars.length + 1);
  const end = r.int(start, chars.length + 1);
  return chars.slice(r.chance(0.4) ? 0 : start, r.chance(0.3) ? chars.length : end).join('');
}

function strColumn(g: SqlDraw): string {
  return g.rng.pick(['svc', 'region', 'uid', 'word', 'late_s']);
}

/** A TIMESTAMP literal in (or near) the data's range: `TIMESTAMP '2025-11-21 06:13:20'`. */
export function timestampLiteral(g: SqlDraw): string {
  const text = g.isoLiteral().slice(1, -1).replace('T', ' ').replace('Z', '');
  return `TIMESTAMP '${text.length === 10 ? `${text} 00:00:00` : text}'`;
}

// ---- CASE ----

/** A branch value of `type` (a few NULLs, never the first branch: that one fixes the type). */
function branch(g: SqlDraw, type: Type, nullable: boolean): Ex {
  const r = g.rng;
  if (nullable && r.chance(0.12)) return same('NULL', type);
  switch (type) {
    case 'int': return r.chance(0.4) ? same(g.intLiteral(), 'int') : g.numExpr(1);
    case 'float': return r.chance(0.3) ? same(g.floatLiteral(), 'float') : g.numExpr(1);
    case 'str': return r.chance(0.4) ? same(g.strLiteral(), 'str') : g.strExpr(1);
    case 'bool': return r.chance(0.2) ? same(r.pick(['true', 'false']), 'bool') : g.predicate(2);
    case 'time': return r.chance(0.3) ? same(timestampLiteral(g), 'time') : g.timeExpr();
    default: return same('NULL', type);
  }
}

/** CASE WHEN .. THEN .. [ELSE ..] END, or the simple CASE x WHEN v THEN .., of the given type. */
export function caseExpr(g: SqlDraw, type: Exclude<Type, 'set'>): Ex {
  const r = g.rng;
  const whenCount = r.int(1, 4);
  const branches: Ex[] = [];
  const arms: string[] = [];
  const simple = r.chance(0.35);
  const subject = simple ? r.pick(['svc', 'region', 'code', 'n % 3', 'flag']) : '';
  for (let index = 0; index < whenCount; index++) {
    const then = branch(g, type, index > 0);
    branches.push(then);
    const when = !simple ? g.predicate(2).s
      : subject === 'svc' || subject === 'region' ? g.strLiteral(subject)
        : subject === 'code' ? g.intLiteral('code') : subject === 'flag' ? r.pick(['true', 'false', 'NULL']) : String(r.int(-2, 3));
    arms.push(`WHEN ${when} THEN ${then.s}`);
  }
  const otherwise = r.chance(0.7) ? branch(g, type, true) : null;
  if (otherwise) branches.push(otherwise);
  const text = `CASE ${simple ? `${subject} ` : ''}${arms.join(' ')}${otherwise ? ` ELSE ${otherwise.s}` : ''} END`;
  return same(text, unify(branches.filter((b) => b.s !== 'NULL').map((b) => b.type)));
}

// ---- casts ----

function castSpelled(g: SqlDraw, operand: string, typeName: string): string {
  const r = g.rng;
  const draw = r.next();
  if (draw < 0.45) return `CAST(${operand} AS ${typeName})`;
  if (draw < 0.8) return `(${operand})::${typeName}`;
  return `TRY_CAST(${operand} AS ${typeName})`;
}

/** A cast to a number: floats to integers (ties to even), booleans, numeric text (TRY_CAST). */
export function castToNumber(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 6)) {
    // floor(f) + 0.5 is a tie: DuckDB rounds it to even.
    case 0: return same(castSpelled(g, r.pick(['f', 'ratio', 'f * 10', 'fx', 'floor(f) + 0.5']), r.pick(['INTEGER', 'BIGINT', 'INT'])), 'int');
    case 1: return same(castSpelled(g, 'flag', r.pick(['INTEGER', 'BIGINT'])), 'int');
    case 2: {
      const typeName = r.pick(['INTEGER', 'BIGINT', 'DOUBLE']);
      return same(`TRY_CAST(${r.pick(['substr(uid, 2)', 'word', 'late_s', 'right(uid, 2)'])} AS ${typeName})`, typeName === 'DOUBLE' ? 'float' : 'int');
    }
    case 3: return same(castSpelled(g, r.pick(['n', 'code', 'big', 'n * 3']), 'DOUBLE'), 'float');
    case 4: return same(castSpelled(g, r.pick(['n', 'code', 'late_i']), 'BIGINT'), 'int');
    // FLOAT / REAL (32 bits) are refused by shoal, which computes in doubles (docs/sql.md).
    default: return same(castSpelled(g, r.pick(['f', 'fx', 'ratio']), 'DOUBLE'), 'float');
  }
}

/** A cast to VARCHAR: of integers, floats (DuckDB's shortest round-trip text), booleans, times, dates. */
export function castToText(g: SqlDraw): Ex {
  const r = g.rng;
  const operand = r.pick(['n', 'code', 'big', 'f', 'ratio', 'fx', 'flag', 'time', 'time_bucket(INTERVAL \'1 hour\', time)', 'CAST(time AS DATE)', 'svc', 'n / 4', 'tags']);
  return same(castSpelled(g, operand, r.pick(['VARCHAR', 'VARCHAR', 'TEXT'])), 'str');
}

/** A cast to BOOLEAN (integers: 0 is false) or a comparison of a cast. */
export function castPredicate(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 4)) {
    case 0: return same(castSpelled(g, r.pick(['n', 'code', 'n % 2']), 'BOOLEAN'), 'bool');
    case 1: return same(`TRY_CAST(${r.pick(['word', 'late_s', 'svc'])} AS BOOLEAN) IS ${r.chance(0.5) ? 'NOT ' : ''}NULL`, 'bool');
    case 2: return same(`CAST(${r.pick(['n', 'code', 'big'])} AS VARCHAR) LIKE ${sqlStringLiteral(r.pick(['1%', '-%', '%0', '_']))}`, 'bool');
    default: return same(`CAST(time AS DATE) ${cmp(g)} ${sqlStringLiteral(g.isoLiteral().slice(1, 11))}::DATE`, 'bool');
  }
}

// ---- strings ----

/** A string-valued function of strings (and a few of integers). */
export function stringFunction(g: SqlDraw, depth: number): Ex {
  const r = g.rng;
  const s = () => g.strExpr(depth + 1);
  switch (r.int(0, 16)) {
    case 0: return same(`(${s().s} || ${r.chance(0.3) ? g.strLiteral() : s().s}${r.chance(0.3) ? ` || ${r.chance(0.5) ? g.column('int').s : s().s}` : ''})`, 'str');
    case 1: return wrap('concat', Array.from({ length: r.int(1, 4) }, () => (r.chance(0.2) ? g.column('int') : r.chance(0.3) ? same(g.strLiteral(), 'str') : s())), 'str');
    case 2: {
      const fn = r.pick(['substr', 'substring']);
      const start = r.chance(0.8) ? r.int(-4, 6) : r.pick([-100, 100]);
      const length = r.chance(0.3) ? '' : `, ${r.chance(0.9) ? r.int(0, 5) : -1}`;
      return same(`${fn}(${s().s}, ${start}${length})`, 'str');
    }
    case 3: return same(`${r.pick(['left', 'right'])}(${s().s}, ${r.int(-2, 5)})`, 'str');
    case 4: return same(`split_part(${s().s}, ${sqlStringLiteral(r.pick(SPLIT_DELIMITERS))}, ${r.int(-2, 4)})`, 'str');
    case 5: {
      const [pattern, groups] = r.pick(REGEXPS);
      const group = groups > 0 && r.chance(0.6) ? `, ${r.int(0, groups + 1)}` : '';
      return same(`regexp_extract(${s().s}, ${sqlStringLiteral(pattern)}${group})`, 'str');
    }
    case 6: {
      const [pattern, groups] = r.pick(REGEXPS);
      const replacement = groups > 0 && r.chance(0.5) ? r.pick(REPLACEMENTS_GROUP) : r.pick(REPLACEMENTS_PLAIN);
      const options = r.pick(['', '', ", 'g'", ", 'g'", ", 'i'", ", 'gi'"]);
      return same(`regexp_replace(${s().s}, ${sqlStringLiteral(pattern)}, ${sqlStringLiteral(replacement)}${options})`, 'str');
    }
    case 7: return same(`replace(${s().s}, ${sqlStringLiteral(r.pick(REPLACE_FROM))}, ${sqlStringLiteral(r.pick(REPLACE_TO))})`, 'str');
    case 8: {
      const fn = r.pick(['trim', 'ltrim', 'rtrim']);
      return same(`${fn}(${s().s}${r.chance(0.6) ? `, ${sqlStringLiteral(r.pick(TRIM_CHARACTERS))}` : ''})`, 'str');
    }
    case 9: return wrap(r.pick(['greatest', 'least']), [g.column('str'), r.chance(0.5) ? g.column('str') : same(g.strLiteral(), 'str')], 'str');
    case 10: {
      const column = strColumn(g);
      return same(`nullif(${column}, ${g.strLiteral(column)})`, 'str');
    }
    case 11: case 12: return castToText(g);
    case 13: return same(`strftime(${g.timeExpr().s}, ${sqlStringLiteral(r.pick(STRFTIME_FORMATS))})`, 'str');
    default: return caseExpr(g, 'str');
  }
}

/** A number from strings, sets and times, or a numeric CASE, cast, greatest / least or nullif. */
export function numericFunction(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 11)) {
    case 0: {
      const column = strColumn(g);
      return same(`${r.pick(['strpos', 'strpos', 'instr'])}(${r.chance(0.7) ? column : g.strExpr(1).s}, ${sqlStringLiteral(fragment(g, column))})`, 'int');
    }
    case 1: return same(`${r.pick(['len', 'len', 'char_length'])}(${r.chance(0.6) ? g.strExpr(1).s : 'tags'})`, 'int');
    case 2: case 3: return extractExpr(g);
    case 4: {
      const args = Array.from({ length: r.int(2, 4) }, () => (r.chance(0.3) ? same(g.intLiteral(), 'int') : g.numExpr(1)));
      return wrap(r.pick(['greatest', 'least']), args, unify(args.map((a) => a.type)));
    }
    case 5: {
      const column = r.pick(['n', 'code', 'late_i', 'f']);
      return same(`nullif(${column}, ${column === 'code' ? g.intLiteral('code') : r.pick(['0', '1', '-1', '200'])})`, column === 'f' ? 'float' : 'int');
    }
    case 6: case 7: return castToNumber(g);
    case 8: return caseExpr(g, r.chance(0.6) ? 'int' : 'float');
    default: return same(`${r.pick(['len', 'length'])}(${stringFunction(g, 1).s})`, 'int');
  }
}

/** extract(part FROM t), date_part('part', t) or the part's own function (hour(t)); epoch is a float, the other parts integers. */
export function extractExpr(g: SqlDraw): Ex {
  const r = g.rng;
  const part = r.pick(EXTRACT_PARTS);
  const subject = r.chance(0.7) ? 'time' : g.timeExpr().s;
  const draw = r.next();
  const text = draw < 0.5 ? `extract(${part} FROM ${subject})` : draw < 0.8 ? `date_part('${part}', ${subject})` : `${PART_FUNCTIONS[part] ?? part}(${subject})`;
  return same(text, part === 'epoch' ? 'float' : 'int');
}

/** A time from time: date_trunc at every unit, a cast to DATE, greatest / least with a literal, a CASE. */
export function timeFunction(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 6)) {
    case 0: case 1: return same(`date_trunc('${r.pick(TRUNC_UNITS)}', ${r.chance(0.8) ? 'time' : `time_bucket(INTERVAL '1 hour', time)`})`, 'time');
    case 2: return same(r.chance(0.5) ? 'CAST(time AS DATE)' : 'time::DATE', 'time');
    case 3: return same(`${r.pick(['greatest', 'least'])}(time, ${timestampLiteral(g)})`, 'time');
    case 4: return same(`CAST(${g.isoLiteral()} AS TIMESTAMP)`, 'time');
    default: return caseExpr(g, 'time');
  }
}

/**
 * A predicate: starts_with / ends_with / contains, a boolean CASE, TIMESTAMP and DATE literals,
 * extracted parts, casts, IS [NOT] DISTINCT FROM, IS [NOT] TRUE / FALSE.
 */
export function predicateFunction(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 10)) {
    case 8: {
      const column = r.pick(['svc', 'region', 'code', 'n', 'flag', 'late_s']);
      const other = r.chance(0.3) ? 'NULL' : column === 'code' ? g.intLiteral('code') : column === 'n' ? g.intLiteral() : column === 'flag' ? r.pick(['true', 'false']) : g.strLiteral(column);
      return same(`${column} IS ${r.chance(0.4) ? 'NOT ' : ''}DISTINCT FROM ${other}`, 'bool');
    }
    case 9: return same(`(${g.predicate(2).s}) IS ${r.chance(0.5) ? 'NOT ' : ''}${r.pick(['TRUE', 'FALSE'])}`, 'bool');
    case 0: case 1: {
      const column = strColumn(g);
      const subject = r.chance(0.75) ? column : g.strExpr(1).s;
      return same(`${r.chance(0.15) ? 'NOT ' : ''}${r.pick(['starts_with', 'ends_with', 'contains'])}(${subject}, ${sqlStringLiteral(fragment(g, column))})`, 'bool');
    }
    case 2: return caseExpr(g, 'bool');
    case 3: return same(`time ${cmp(g)} ${timestampLiteral(g)}`, 'bool');
    case 4: {
      const e = extractExpr(g);
      const literal = e.type === 'float' ? String(DIFF_TIME_START_SECONDS + r.int(0, DIFF_TIME_SPAN_SECONDS)) : String(r.int(0, 60));
      return same(`${e.s} ${cmp(g)} ${literal}`, 'bool');
    }
    case 5: return castPredicate(g);
    case 6: return same(`date_trunc('${r.pick(TRUNC_UNITS)}', time) ${cmp(g)} ${r.chance(0.5) ? timestampLiteral(g) : `DATE '${g.isoLiteral().slice(1, 11)}'`}`, 'bool');
    default: return same(`${stringFunction(g, 1).s} ${cmp(g)} ${g.strLiteral()}`, 'bool');
  }
}

/** A group key made with the new functions. */
export function functionGroupKey(g: SqlDraw): Ex {
  const r = g.rng;
  switch (r.int(0, 10)) {
    case 0: return caseExpr(g, r.pick(['str', 'int', 'bool'] as const));
    case 1: case 2: return same(`date_trunc('${r.pick(TRUNC_UNITS)}', time)`, 'time');
    case 3: return extractExpr(g);
    case 4: return same(`strftime(time, ${sqlStringLiteral(r.pick(STRFTIME_FORMATS))})`, 'str');
    case 5: return same(r.pick(['CAST(time AS DATE)', 'time::DATE']), 'time');
    case 6: {
      const column = r.pick(['uid', 'word', 'svc']);
      return same(r.chance(0.5) ? `substr(${column}, ${r.int(1, 3)}, ${r.int(1, 3)})` : `left(${column}, ${r.int(1, 3)})`, 'str');
    }
    case 7: return same(`split_part(${r.pick(['word', 'uid', 'region'])}, ${sqlStringLiteral(r.pick(SPLIT_DELIMITERS))}, ${r.int(1, 3)})`, 'str');
    case 8: return castToText(g);
    default: return g.nestLevel < NEST_MAX ? stringFunction(g, 1) : same('svc', 'str');
  }
}
