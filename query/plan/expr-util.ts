/**
 * Shared expression helpers for analyze (schema-free) and bind (with a schema): text and identity
 * of AST nodes, the aggregate function names, and the one translation of scalar AST nodes into
 * typed BExpr nodes, so the typing rules live in one place.
 */
import type { Expr } from '../sql/ast.js';
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { BExpr, ScalarFn, ValueType, Scalar } from './plan.js';
import { foldConstant, likeToRegex } from './scalar.js';
import { parseIsoTime } from '../functions/time.js';
import { lowerText } from '../functions/text.js';
import { replaceFlags } from '../functions/strings.js';
import { checkStrftime } from '../functions/dates.js';
import { EXTRACT_PARTS, TRUNC_PARTS } from '../sql/sql-words.js';
export { foldConstant };

const AGGREGATES = new Set([
  'count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max', 'approx_count_distinct', 'approx_quantile', 'quantile',
  'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'median', 'count_if', 'countif', 'quantile_cont', 'quantile_disc',
]);
export function isAggregateName(name: string): boolean { return AGGREGATES.has(name); }

/** Identity of an expression for matching (positions ignored, unquoted names case-folded). */
export function exprKey(e: Expr): string {
  return JSON.stringify(e, (k, v) => (k === 'pos' ? undefined : k === 'name' && typeof v === 'string' ? v : v));
}

/** SQL-like text of an expression: result column names and messages. */
export function exprText(e: Expr): string {
  switch (e.kind) {
    case 'column': return e.quoted ? `"${e.name.replace(/"/g, '""')}"` : e.name;
    case 'star': return '*';
    case 'literal':
      if (e.float === true && typeof e.value === 'number' && Number.isInteger(e.value) && !/e/.test(String(e.value))) return `${e.value}.0`;
      return e.value === null ? 'NULL' : typeof e.value === 'string' ? `'${e.value.replace(/'/g, "''")}'` : String(e.value);
    case 'interval': return `INTERVAL '${e.text}'`;
    case 'unary': return e.op === 'not' ? `(NOT ${exprText(e.operand)})` : `-${exprText(e.operand)}`;
    case 'binary': return `(${exprText(e.left)} ${e.op.toUpperCase()} ${exprText(e.right)})`;
    case 'in': return `(${exprText(e.operand)} ${e.negated ? 'NOT IN' : 'IN'} (${e.list.map(exprText).join(', ')}))`;
    case 'like': return `(${exprText(e.operand)} ${e.negated ? 'NOT ' : ''}${e.caseInsensitive ? 'ILIKE' : 'LIKE'} ${exprText(e.pattern)})`;
    case 'isNull': return `(${exprText(e.operand)} IS ${e.negated ? 'NOT ' : ''}NULL)`;
    case 'between': return `(${exprText(e.operand)} ${e.negated ? 'NOT ' : ''}BETWEEN ${exprText(e.low)} AND ${exprText(e.high)})`;
    case 'call': {
      // DuckDB names these columns without parentheses, as they are written.
      if (e.args.length === 0 && (e.name === 'current_timestamp' || e.name === 'current_date')) return e.name;
      if (e.name === '$concat') return `(${exprText(e.args[0]!)} || ${exprText(e.args[1]!)})`;
      if (e.name === '$distinct' || e.name === '$not_distinct') return `(${exprText(e.args[0]!)} IS ${e.name === '$distinct' ? '' : 'NOT '}DISTINCT FROM ${exprText(e.args[1]!)})`;
      let text = `${e.name}(${e.distinct ? 'DISTINCT ' : ''}${e.args.map(exprText).join(', ')})`;
      if (e.filter) text += ` FILTER (WHERE ${exprText(e.filter)})`;
      if (e.over) {
        const parts: string[] = [];
        if (e.over.partitionBy.length > 0) parts.push(`PARTITION BY ${e.over.partitionBy.map(exprText).join(', ')}`);
        if (e.over.orderBy.length > 0) parts.push(`ORDER BY ${e.over.orderBy.map((o) => `${exprText(o.expr)}${o.desc ? ' DESC' : ''}${o.nullsFirst === null ? '' : o.nullsFirst ? ' NULLS FIRST' : ' NULLS LAST'}`).join(', ')}`);
        text += ` OVER (${parts.join(' ')})`;
      }
      return text;
    }
    case 'case':
      return `CASE${e.operand ? ` ${exprText(e.operand)}` : ''}${e.whens.map((w) => ` WHEN ${exprText(w.when)} THEN ${exprText(w.then)}`).join('')}${e.else ? ` ELSE ${exprText(e.else)}` : ''} END`;
    case 'cast':
      return `${e.try ? 'TRY_CAST' : 'CAST'}(${exprText(e.operand)} AS ${e.typeName})`;
  }
}

/**
 * " (did you mean x, y?)" for an unknown function: names within a small edit distance, plus the
 * spellings other databases use for shoal's functions.
 */
export function suggestFunction(name: string): string {
  const known = [...AGGREGATES, ...Object.keys(SIGNATURES), 'row_number', 'rank', 'dense_rank', 'lag', 'lead', 'first_value', 'last_value', 'ntile'];
  const hits = new Set<string>(ALIASES_ELSEWHERE[name] ?? []);
  for (const k of known) if (!k.startsWith('$') && editDistance(name, k) <= Math.max(1, Math.floor(name.length / 4))) hits.add(k);
  const list = [...hits].slice(0, 4);
  return list.length === 0 ? '' : ` (did you mean ${list.join(', ')}?)`;
}

/** Other databases' names for shoal's functions. */
const ALIASES_ELSEWHERE: Readonly<Record<string, readonly string[]>> = {
  percentile: ['approx_quantile', 'quantile_cont', 'p90'], percentile_cont: ['quantile_cont'], percentile_disc: ['quantile_disc'],
  percentile_approx: ['approx_quantile'], approx_percentile: ['approx_quantile'], quantiles: ['quantile_cont'],
  count_distinct: ['count(DISTINCT x)', 'approx_count_distinct'], ndv: ['approx_count_distinct'], uniq: ['approx_count_distinct'],
  hll: ['approx_count_distinct'], stddev: [], date_format: ['strftime'], format_datetime: ['strftime'], to_char: ['strftime'],
  datetrunc: ['date_trunc'], substring_index: ['split_part'], instr: ['strpos'], charindex: ['strpos'], locate: ['strpos'],
  ifnull: ['coalesce'], nvl: ['coalesce'], isnull: ['coalesce', 'x IS NULL'], iif: ['CASE WHEN'], if: ['CASE WHEN'],
  char_length: ['length'], character_length: ['length'], len: ['length'], size: ['length'], cardinality: ['length'],
  from_unixtime: ['to_timestamp'], unix_timestamp: ['epoch'], current_time: ['now'], getdate: ['now'], sysdate: ['now'],
};

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

const numeric = (t: ValueType) => t === 'int' || t === 'float' || t === 'time';
const typeErr = (msg: string, pos: number) => new ShoalError('SHOAL_ERR_QUERY_TYPE', msg, { position: pos });

/**
 * A constant string compared with a time becomes unix seconds, as DuckDB casts it to a timestamp:
 * ISO-8601, UTC when it has no offset (functions/time.ts), whatever the process's time zone.
 */
function coerceConst(target: ValueType, c: BExpr, pos: number, date = false): BExpr {
  if (c.k !== 'const') return c;
  if (target === 'time' && typeof c.value === 'string') {
    const seconds = parseIsoTime(c.value);
    if (seconds === null) throw typeErr(`cannot read '${c.value}' as a time (expected ISO-8601, e.g. '2024-05-01 12:00:00', UTC unless it ends in Z or an offset like +02:00)`, pos);
    // Compared with a DATE, text is read as a DATE too (DuckDB casts it so): its day.
    return { k: 'const', value: date ? Math.floor(seconds / 86_400) * 86_400 : seconds, type: 'time' };
  }
  return c;
}

/** A DATE value (CAST(... AS DATE), DATE '...'): a time at a UTC midnight. */
export const isDate = (b: BExpr): boolean => (b.k === 'cast' && b.to === 'DATE') || ((b.k === 'const' || b.k === 'col') && b.date === true);

function checkComparable(l: ValueType, r: ValueType, op: string, pos: number): void {
  if (l === 'any' || r === 'any' || l === 'null' || r === 'null') return;
  if (numeric(l) && numeric(r)) return;
  if (l === r && l !== 'set') return;
  throw typeErr(`cannot compare ${l} with ${r} using ${op}`, pos);
}

/**
 * Translates one scalar AST node whose children are translated by `child` (which knows how to
 * handle columns: bind them to a schema, or to group keys after aggregation).
 */
export function scalarFromAst(e: Expr, nowSeconds: number, child: (e: Expr) => BExpr): BExpr {
  switch (e.kind) {
    case 'literal': {
      const v = e.value;
      const type: ValueType = v === null ? 'null' : typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'bool' : Number.isInteger(v) && e.float !== true ? 'int' : 'float';
      return { k: 'const', value: v, type };
    }
    case 'interval':
      return { k: 'const', value: e.seconds, type: Number.isInteger(e.seconds) ? 'int' : 'float' };
    case 'column': case 'star':
      return child(e);
    case 'unary': {
      const a = child(e.operand);
      if (e.op === 'not') return foldConstant({ k: 'not', arg: a, type: 'bool' });
      if (!(numeric(a.type) || a.type === 'any' || a.type === 'null')) throw typeErr(`cannot negate a ${a.type}`, e.pos);
      return foldConstant({ k: 'neg', arg: a, type: a.type === 'time' ? 'float' : a.type });
    }
    case 'binary': {
      let l = child(e.left);
      let r = child(e.right);
      if (e.op === 'and' || e.op === 'or') {
        for (const [x, side] of [[l, e.left], [r, e.right]] as const) {
          if (!(x.type === 'bool' || x.type === 'any' || x.type === 'null')) throw typeErr(`${e.op.toUpperCase()} needs booleans, got ${x.type}`, side.pos);
        }
        const flat = (x: BExpr): readonly BExpr[] => (x.k === e.op ? (x as { args: readonly BExpr[] }).args : [x]);
        return foldConstant({ k: e.op, args: [...flat(l), ...flat(r)], type: 'bool' });
      }
      if (e.op === '=' || e.op === '!=' || e.op === '<' || e.op === '<=' || e.op === '>' || e.op === '>=') {
        l = coerceConst(r.type, l, e.left.pos, isDate(r));
        r = coerceConst(l.type, r, e.right.pos, isDate(l));
        checkComparable(l.type, r.type, e.op, e.pos);
        return foldConstant({ k: 'cmp', op: e.op, left: l, right: r, type: 'bool' });
      }
      // arithmetic
      for (const [x, side] of [[l, e.left], [r, e.right]] as const) {
        if (!(numeric(x.type) || x.type === 'any' || x.type === 'null')) throw typeErr(`arithmetic ${e.op} needs numbers, got ${x.type}`, side.pos);
      }
      let type: ValueType;
      if (l.type === 'any' || r.type === 'any') type = 'any';
      else if (l.type === 'null' || r.type === 'null') type = 'null';
      else if (l.type === 'time' && r.type === 'time') type = e.op === '-' ? 'float' : 'float';
      else if ((l.type === 'time' || r.type === 'time') && (e.op === '+' || e.op === '-')) type = 'time';
      else if (e.op === '/') type = 'float';
      else type = l.type === 'int' && r.type === 'int' ? 'int' : 'float';
      return foldConstant({ k: 'arith', op: e.op, left: l, right: r, type });
    }
    case 'in': {
      const a = child(e.operand);
      const values: Scalar[] = [];
      for (const item of e.list) {
        const c = coerceConst(a.type, foldConstant(child(item)), item.pos, isDate(a));
        if (c.k !== 'const') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'IN (...) takes constant values only', { position: item.pos });
        checkComparable(a.type, c.type, 'IN', item.pos);
        values.push(c.value);
      }
      return foldConstant({ k: 'in', arg: a, values, negated: e.negated, type: 'bool' });
    }
    case 'like': {
      const a = child(e.operand);
      if (!(a.type === 'string' || a.type === 'any' || a.type === 'null')) throw typeErr(`LIKE needs a string, got ${a.type}`, e.operand.pos);
      const p = foldConstant(child(e.pattern));
      if (p.k !== 'const' || typeof p.value !== 'string') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'LIKE takes a constant string pattern', { position: e.pattern.pos });
      checkPattern(p.value, e.pattern.pos);
      // ILIKE is DuckDB's lower(x) LIKE lower(p), not a regex's case folding: 'Σ' ILIKE 'ς' is
      // false there (lower('ς') is 'ς'), and /ς/iu would match.
      if (e.caseInsensitive) {
        const lowered: BExpr = { k: 'fn', name: 'lower', args: [a], type: a.type === 'null' ? 'null' : 'string' };
        return foldConstant({ k: 'match', arg: lowered, regex: likeToRegex(lowerText(p.value)), flags: 'su', negated: e.negated, type: 'bool' });
      }
      return foldConstant({ k: 'match', arg: a, regex: likeToRegex(p.value), flags: 'su', negated: e.negated, type: 'bool' });
    }
    case 'isNull':
      return foldConstant({ k: 'isnull', arg: child(e.operand), negated: e.negated, type: 'bool' });
    case 'between': {
      const a = child(e.operand);
      const lo = coerceConst(a.type, child(e.low), e.low.pos, isDate(a));
      const hi = coerceConst(a.type, child(e.high), e.high.pos, isDate(a));
      checkComparable(a.type, lo.type, 'BETWEEN', e.low.pos);
      checkComparable(a.type, hi.type, 'BETWEEN', e.high.pos);
      const both: BExpr = { k: 'and', args: [{ k: 'cmp', op: '>=', left: a, right: lo, type: 'bool' }, { k: 'cmp', op: '<=', left: a, right: hi, type: 'bool' }], type: 'bool' };
      return foldConstant(e.negated ? { k: 'not', arg: both, type: 'bool' } : both);
    }
    case 'call':
      if (e.over !== undefined) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `window function ${e.name}() OVER (...) is not allowed here`, { position: e.pos });
      if (e.filter !== undefined) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `FILTER applies to aggregate functions, not ${e.name}()`, { position: e.pos });
      return callFromAst(e, nowSeconds, child);
    case 'case':
      return caseFromAst(e, child);
    case 'cast':
      return castFromAst(e, child);
  }
}

/** The common type of CASE branches, greatest/least arguments: NULL yields, int + float is float. */
function commonType(types: readonly ValueType[], what: string, pos: number): ValueType {
  let t: ValueType = 'null';
  for (const x of types) {
    if (x === 'null' || x === t) continue;
    if (t === 'null') { t = x; continue; }
    if (x === 'any' || t === 'any') { t = 'any'; continue; }
    if ((t === 'int' && x === 'float') || (t === 'float' && x === 'int')) { t = 'float'; continue; }
    throw typeErr(`${what} mix ${t} and ${x}; CAST one of them`, pos);
  }
  return t;
}

function caseFromAst(e: Extract<Expr, { kind: 'case' }>, child: (e: Expr) => BExpr): BExpr {
  const operand = e.operand === null ? null : child(e.operand);
  const whens = e.whens.map((w) => {
    let cond: BExpr;
    if (operand !== null) {
      // CASE x WHEN a: the searched form with x = a (x is a pure expression, so evaluating it
      // once per WHEN gives the same answer).
      let r = child(w.when);
      r = coerceConst(operand.type, r, w.when.pos);
      checkComparable(operand.type, r.type, 'CASE ... WHEN', w.when.pos);
      cond = foldConstant({ k: 'cmp', op: '=', left: operand, right: r, type: 'bool' });
    } else {
      cond = child(w.when);
      if (!(cond.type === 'bool' || cond.type === 'any' || cond.type === 'null')) throw typeErr(`a condition (of CASE WHEN, FILTER or count_if) must be a boolean, got ${cond.type}`, w.when.pos);
    }
    return { when: cond, then: child(w.then) };
  });
  const otherwise = e.else === null ? null : child(e.else);
  const type = commonType([...whens.map((w) => w.then.type), ...(otherwise ? [otherwise.type] : [])], 'CASE branches', e.pos);
  return foldConstant({ k: 'case', whens, else: otherwise, type });
}

function castFromAst(e: Extract<Expr, { kind: 'cast' }>, child: (e: Expr) => BExpr): BExpr {
  const arg = child(e.operand);
  const from = arg.type;
  const type: ValueType = e.to === 'date' ? 'time' : e.to;
  const refuse = (hint: string) => { throw typeErr(`cannot cast ${from} to ${e.typeName}; ${hint}`, e.pos); };
  if (from === 'time' && (e.to === 'int' || e.to === 'float')) refuse('use epoch(time) for seconds');
  if ((from === 'int' || from === 'float') && (e.to === 'time' || e.to === 'date')) refuse('use to_timestamp(seconds)');
  if (from === 'bool' && (e.to === 'time' || e.to === 'date')) refuse('booleans are not times');
  if (from === 'time' && e.to === 'bool') refuse('times are not booleans');
  if (from === 'set' && e.to !== 'string') refuse('a string set casts only to VARCHAR');
  // A cast to the type it already has is the value itself (DuckDB: x::BIGINT of a BIGINT).
  if (from === type && !(e.to === 'int' && e.typeName !== 'BIGINT' && e.typeName !== 'HUGEINT') && e.to !== 'date') return arg;
  const folded = foldConstant({ k: 'cast', arg, to: e.typeName, try: e.try, type });
  // A DATE constant stays one when folded: it prints as a date, and text compared with it is a date.
  return folded.k === 'const' && e.to === 'date' && folded.value !== null ? { ...folded, date: true } : folded;
}

/** A group with a quantifier inside, itself quantified: the classic catastrophic-backtracking shape. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]/;

function checkPattern(p: string, pos: number): void {
  if (Buffer.byteLength(p) > LIMITS.patternBytesMax) {
    throw new ShoalError('SHOAL_ERR_QUERY_LIMIT', `pattern is longer than ${LIMITS.patternBytesMax} bytes`, { position: pos });
  }
}

const SIGNATURES: Record<string, { fn: ScalarFn | 'now' | 'current_date' | 'regexp_matches'; min: number; max: number }> = {
  time_bucket: { fn: 'time_bucket', min: 2, max: 2 },
  lower: { fn: 'lower', min: 1, max: 1 }, upper: { fn: 'upper', min: 1, max: 1 },
  length: { fn: 'length', min: 1, max: 1 }, abs: { fn: 'abs', min: 1, max: 1 },
  round: { fn: 'round', min: 1, max: 2 }, floor: { fn: 'floor', min: 1, max: 1 }, ceil: { fn: 'ceil', min: 1, max: 1 },
  list_contains: { fn: 'list_contains', min: 2, max: 2 }, array_contains: { fn: 'list_contains', min: 2, max: 2 },
  to_timestamp: { fn: 'to_timestamp', min: 1, max: 1 }, epoch: { fn: 'epoch', min: 1, max: 1 },
  coalesce: { fn: 'coalesce', min: 1, max: 16 },
  now: { fn: 'now', min: 0, max: 0 }, current_timestamp: { fn: 'now', min: 0, max: 0 },
  current_date: { fn: 'current_date', min: 0, max: 0 }, today: { fn: 'current_date', min: 0, max: 0 },
  regexp_matches: { fn: 'regexp_matches', min: 2, max: 2 },
  // protocol 4
  len: { fn: 'length', min: 1, max: 1 }, char_length: { fn: 'length', min: 1, max: 1 },
  nullif: { fn: 'nullif', min: 2, max: 2 }, concat: { fn: 'concat', min: 1, max: 64 }, $concat: { fn: 'concat', min: 2, max: 2 },
  substr: { fn: 'substr', min: 2, max: 3 }, substring: { fn: 'substr', min: 2, max: 3 },
  starts_with: { fn: 'starts_with', min: 2, max: 2 }, prefix: { fn: 'starts_with', min: 2, max: 2 },
  ends_with: { fn: 'ends_with', min: 2, max: 2 }, suffix: { fn: 'ends_with', min: 2, max: 2 },
  contains: { fn: 'contains', min: 2, max: 2 }, split_part: { fn: 'split_part', min: 3, max: 3 },
  regexp_extract: { fn: 'regexp_extract', min: 2, max: 3 }, regexp_replace: { fn: 'regexp_replace', min: 3, max: 4 },
  replace: { fn: 'replace', min: 3, max: 3 }, greatest: { fn: 'greatest', min: 1, max: 64 }, least: { fn: 'least', min: 1, max: 64 },
  strpos: { fn: 'strpos', min: 2, max: 2 }, instr: { fn: 'strpos', min: 2, max: 2 },
  left: { fn: 'left', min: 2, max: 2 }, right: { fn: 'right', min: 2, max: 2 },
  trim: { fn: 'trim', min: 1, max: 2 }, ltrim: { fn: 'ltrim', min: 1, max: 2 }, rtrim: { fn: 'rtrim', min: 1, max: 2 },
  date_trunc: { fn: 'date_trunc', min: 2, max: 2 }, datetrunc: { fn: 'date_trunc', min: 2, max: 2 },
  date_part: { fn: 'date_part', min: 2, max: 2 }, datepart: { fn: 'date_part', min: 2, max: 2 },
  strftime: { fn: 'strftime', min: 2, max: 2 },
  year: { fn: 'date_part', min: 1, max: 1 }, quarter: { fn: 'date_part', min: 1, max: 1 }, month: { fn: 'date_part', min: 1, max: 1 },
  day: { fn: 'date_part', min: 1, max: 1 }, hour: { fn: 'date_part', min: 1, max: 1 }, minute: { fn: 'date_part', min: 1, max: 1 },
  second: { fn: 'date_part', min: 1, max: 1 }, dayofweek: { fn: 'date_part', min: 1, max: 1 }, dayofyear: { fn: 'date_part', min: 1, max: 1 },
  week: { fn: 'date_part', min: 1, max: 1 }, isodow: { fn: 'date_part', min: 1, max: 1 },
  $distinct: { fn: 'is_distinct', min: 2, max: 2 }, $not_distinct: { fn: 'is_distinct', min: 2, max: 2 },
  unnest: { fn: 'unnest', min: 1, max: 1 },
};

function callFromAst(e: Extract<Expr, { kind: 'call' }>, nowSeconds: number, child: (e: Expr) => BExpr): BExpr {
  const sig = SIGNATURES[e.name];
  if (sig === undefined) {
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `unknown function ${e.name}()${suggestFunction(e.name)}`, { position: e.pos });
  }
  if (e.args.length < sig.min || e.args.length > sig.max) {
    const want = sig.min === sig.max ? `${sig.min}` : `${sig.min} to ${sig.max}`;
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() takes ${want} argument(s), got ${e.args.length}`, { position: e.pos });
  }
  if (e.distinct) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `DISTINCT is only valid in count()`, { position: e.pos });
  if (sig.fn === 'now') return { k: 'const', value: nowSeconds, type: 'time' };
  if (e.name === 'to_timestamp' && e.args.length === 1) {
    // to_timestamp of a time is the time (DuckDB would refuse; shoal's time column is seconds).
    const a = child(e.args[0]!);
    if (a.type === 'time') return a;
  }
  // DuckDB's current_date is a DATE in the session's zone; shoal's zone is UTC, and a date
  // compared with a timestamp is its midnight, so the UTC midnight of now() is the same value.
  if (sig.fn === 'current_date') return { k: 'const', value: Math.floor(nowSeconds / 86_400) * 86_400, type: 'time' };
  const args = e.args.map((a) => (a.kind === 'star' ? badStar(a.pos) : child(a)));
  const want = (i: number, ok: (t: ValueType) => boolean, what: string) => {
    const t = args[i]!.type;
    if (t !== 'any' && t !== 'null' && !ok(t)) throw typeErr(`${e.name}() argument ${i + 1} must be ${what}, got ${t}`, e.args[i]!.pos);
  };
  switch (sig.fn) {
    case 'regexp_matches': {
      want(0, (t) => t === 'string', 'a string');
      const p = foldConstant(args[1]!);
      if (p.k !== 'const' || typeof p.value !== 'string') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'regexp_matches() takes a constant pattern', { position: e.args[1]!.pos });
      checkPattern(p.value, e.args[1]!.pos);
      try { new RegExp(p.value, 'u'); } catch (err) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `invalid regular expression: ${(err as Error).message}`, { position: e.args[1]!.pos });
      }
      if (NESTED_QUANTIFIER.test(p.value)) {
        // JavaScript's regex engine backtracks: (a+)+ style patterns take exponential time on
        // some inputs, and parts of a scan run on the event loop where no timeout can stop them.
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'regular expression has a quantified group that contains a quantifier (like (a+)+), which can take exponential time; rewrite it without the nesting', { position: e.args[1]!.pos });
      }
      return foldConstant({ k: 'match', arg: args[0]!, regex: p.value, flags: 'u', negated: false, type: 'bool' });
    }
    case 'time_bucket': {
      const width = foldConstant(args[0]!);
      if (width.k !== 'const' || typeof width.value !== 'number' || !(width.value > 0)) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', "time_bucket() needs a positive constant INTERVAL first, e.g. time_bucket(INTERVAL '5 minutes', time)", { position: e.args[0]!.pos });
      }
      want(1, (t) => t === 'time' || t === 'int' || t === 'float', 'a time');
      return foldConstant({ k: 'fn', name: 'time_bucket', args: [width, args[1]!], type: 'time' });
    }
    case 'lower': case 'upper':
      want(0, (t) => t === 'string', 'a string');
      return foldConstant({ k: 'fn', name: sig.fn, args, type: 'string' });
    case 'length':
      want(0, (t) => t === 'string' || t === 'set', 'a string or set');
      return foldConstant({ k: 'fn', name: 'length', args, type: 'int' });
    case 'abs': case 'floor': case 'ceil': case 'round': {
      want(0, (t) => t === 'int' || t === 'float', 'a number');
      if (args[1]) want(1, (t) => t === 'int', 'an integer');
      const t = args[0]!.type;
      const type: ValueType = sig.fn === 'abs' ? t : sig.fn === 'round' && args[1] ? (t === 'int' ? 'int' : 'float') : t === 'int' ? 'int' : 'float';
      return foldConstant({ k: 'fn', name: sig.fn, args, type });
    }
    case 'list_contains': {
      want(0, (t) => t === 'set', 'a string set');
      const v = foldConstant(args[1]!);
      if (v.k !== 'const') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'list_contains() takes a constant value', { position: e.args[1]!.pos });
      return foldConstant({ k: 'fn', name: 'list_contains', args: [args[0]!, v], type: 'bool' });
    }
    case 'to_timestamp':
      want(0, (t) => t === 'int' || t === 'float', 'a number of seconds');
      return foldConstant({ k: 'fn', name: 'to_timestamp', args, type: 'time' });
    case 'epoch':
      want(0, (t) => t === 'time', 'a time');
      return foldConstant({ k: 'fn', name: 'epoch', args, type: 'float' });
    case 'coalesce': {
      const first = args.find((a) => a.type !== 'null');
      return foldConstant({ k: 'fn', name: 'coalesce', args, type: first ? first.type : 'null' });
    }
    default:
      return newCallFromAst(e, sig.fn, args, want);
  }
  throw new ShoalError('SHOAL_ERR_INTERNAL', `function ${e.name} has no translation`, { position: e.pos });
}

const isText = (t: ValueType) => t === 'string';
const isInt = (t: ValueType) => t === 'int';

/** Protocol-4 scalar functions: argument checks and result types (evaluation: scalar.ts). */
function newCallFromAst(e: Extract<Expr, { kind: 'call' }>, fn: string, args: BExpr[], want: (i: number, ok: (t: ValueType) => boolean, what: string) => void): BExpr {
  const constString = (i: number, what: string): string => {
    const c = foldConstant(args[i]!);
    if (c.k !== 'const' || typeof c.value !== 'string') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `${e.name}() takes ${what} as a constant string`, { position: e.args[i]!.pos });
    return c.value;
  };
  const make = (type: ValueType, a: BExpr[] = args) => foldConstant({ k: 'fn', name: fn as ScalarFn, args: a, type });
  switch (fn) {
    case 'nullif':
      checkComparable(args[0]!.type, coerceConst(args[0]!.type, args[1]!, e.args[1]!.pos).type, 'nullif', e.pos);
      return make(args[0]!.type, [args[0]!, coerceConst(args[0]!.type, args[1]!, e.args[1]!.pos)]);
    case 'concat':
      args.forEach((a, i) => { if (a.type === 'set') throw typeErr(`${e.name === '$concat' ? '||' : 'concat()'} does not take a string set (argument ${i + 1})`, e.args[i]!.pos); });
      // || is NULL when either side is; concat() skips NULLs (DuckDB).
      return make('string', e.name === '$concat' ? [{ k: 'const', value: true, type: 'bool' }, ...args] : [{ k: 'const', value: false, type: 'bool' }, ...args]);
    case 'substr':
      want(0, isText, 'a string'); want(1, isInt, 'an integer'); if (args[2]) want(2, isInt, 'an integer');
      return make('string');
    case 'starts_with': case 'ends_with':
      want(0, isText, 'a string'); want(1, isText, 'a string');
      return make('bool');
    case 'contains':
      if (args[0]!.type === 'set') {
        // contains(set, 'x') is list_contains, as in DuckDB.
        const v = foldConstant(args[1]!);
        if (v.k !== 'const') throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'contains() of a string set takes a constant value', { position: e.args[1]!.pos });
        return foldConstant({ k: 'fn', name: 'list_contains', args: [args[0]!, v], type: 'bool' });
      }
      want(0, isText, 'a string'); want(1, isText, 'a string');
      return make('bool');
    case 'split_part':
      want(0, isText, 'a string'); want(1, isText, 'a string'); want(2, isInt, 'an integer');
      return make('string');
    case 'strpos':
      want(0, isText, 'a string'); want(1, isText, 'a string');
      return make('int');
    case 'left': case 'right':
      want(0, isText, 'a string'); want(1, isInt, 'an integer');
      return make('string');
    case 'trim': case 'ltrim': case 'rtrim':
      want(0, isText, 'a string'); if (args[1]) want(1, isText, 'a string');
      return make('string');
    case 'replace':
      want(0, isText, 'a string'); want(1, isText, 'a string'); want(2, isText, 'a string');
      return make('string');
    case 'regexp_extract': case 'regexp_replace': {
      want(0, isText, 'a string');
      const pattern = constString(1, 'the pattern');
      checkPattern(pattern, e.args[1]!.pos);
      let flags = 'u';
      if (fn === 'regexp_replace') {
        want(2, isText, 'a string');
        const options = args[3] ? constString(3, 'the options') : '';
        try { flags = replaceFlags(options).flags; } catch (err) { throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', (err as Error).message, { position: e.args[3]!.pos }); }
      } else if (args[2]) {
        const g = foldConstant(args[2]);
        if (g.k !== 'const' || typeof g.value !== 'number' || !Number.isInteger(g.value) || g.value < 0) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'regexp_extract() takes a constant group number', { position: e.args[2]!.pos });
      }
      try { new RegExp(pattern, flags); } catch (err) {
        throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `invalid regular expression: ${(err as Error).message}`, { position: e.args[1]!.pos });
      }
      if (NESTED_QUANTIFIER.test(pattern)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', 'regular expression has a quantified group that contains a quantifier (like (a+)+), which can take exponential time; rewrite it without the nesting', { position: e.args[1]!.pos });
      const rest = fn === 'regexp_replace' ? [args[0]!, { k: 'const', value: pattern, type: 'string' } as BExpr, args[2]!, { k: 'const', value: flags, type: 'string' } as BExpr] : [args[0]!, { k: 'const', value: pattern, type: 'string' } as BExpr, args[2] ?? { k: 'const', value: 0, type: 'int' }];
      return make('string', rest);
    }
    case 'greatest': case 'least': {
      const c = args.map((a) => coerceConst(args.find((x) => x.type === 'time') ? 'time' : a.type, a, e.pos));
      const type = commonType(c.map((a) => (a.type === 'time' ? 'time' : a.type)), `${e.name}() arguments`, e.pos);
      if (type === 'set') throw typeErr(`${e.name}() does not take string sets`, e.pos);
      return make(type, c);
    }
    case 'date_trunc': {
      const part = constString(0, 'the unit').toLowerCase();
      if (!TRUNC_PARTS.has(part)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `unknown date_trunc unit '${part}'; use ${[...TRUNC_PARTS].join(', ')}`, { position: e.args[0]!.pos });
      want(1, (t) => t === 'time', 'a time');
      return make('time', [{ k: 'const', value: part, type: 'string' }, args[1]!]);
    }
    case 'date_part': {
      // year(t), hour(t), ... are date_part('year', t), ...
      const named = e.args.length === 1;
      const part = named ? (e.name === 'dayofweek' ? 'dow' : e.name === 'dayofyear' ? 'doy' : e.name) : constString(0, 'the part').toLowerCase();
      if (!EXTRACT_PARTS.has(part)) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `unknown date part '${part}'; use ${[...EXTRACT_PARTS].join(', ')}`, { position: e.args[0]!.pos });
      const t = named ? args[0]! : args[1]!;
      if (t.type !== 'time' && t.type !== 'any' && t.type !== 'null') throw typeErr(`${e.name}() needs a time, got ${t.type}`, e.args[named ? 0 : 1]!.pos);
      return make(part === 'epoch' ? 'float' : 'int', [{ k: 'const', value: part, type: 'string' }, t]);
    }
    case 'strftime': {
      want(0, (t) => t === 'time', 'a time');
      const format = constString(1, 'the format');
      const bad = checkStrftime(format);
      if (bad !== null) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', bad, { position: e.args[1]!.pos });
      return make('string');
    }
    case 'unnest':
      // Only as a whole GROUP BY key (bind checks where it stands): one group per set member.
      want(0, (t) => t === 'set', 'a string set');
      return { k: 'fn', name: 'unnest', args, type: 'string' };
    case 'is_distinct': {
      const l = coerceConst(args[1]!.type, args[0]!, e.args[0]!.pos);
      const r = coerceConst(l.type, args[1]!, e.args[1]!.pos);
      checkComparable(l.type, r.type, 'IS DISTINCT FROM', e.pos);
      // args[0] says which: true = IS DISTINCT FROM, false = IS NOT DISTINCT FROM.
      return make('bool', [{ k: 'const', value: e.name === '$distinct', type: 'bool' }, l, r]);
    }
  }
  throw new ShoalError('SHOAL_ERR_INTERNAL', `function ${e.name} has no translation`, { position: e.pos });
}

function badStar(pos: number): never {
  throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', '* is only valid in count(*)', { position: pos });
}
