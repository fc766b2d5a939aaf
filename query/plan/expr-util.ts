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
export { foldConstant };

const AGGREGATES = new Set([
  'count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max', 'approx_count_distinct', 'approx_quantile', 'quantile',
  'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'median',
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
    case 'call':
      // DuckDB names these columns without parentheses, as they are written.
      if (e.args.length === 0 && (e.name === 'current_timestamp' || e.name === 'current_date')) return e.name;
      return `${e.name}(${e.distinct ? 'DISTINCT ' : ''}${e.args.map(exprText).join(', ')})`;
  }
}

const numeric = (t: ValueType) => t === 'int' || t === 'float' || t === 'time';
const typeErr = (msg: string, pos: number) => new ShoalError('SHOAL_ERR_QUERY_TYPE', msg, { position: pos });

/**
 * A constant string compared with a time becomes unix seconds, as DuckDB casts it to a timestamp:
 * ISO-8601, UTC when it has no offset (functions/time.ts), whatever the process's time zone.
 */
function coerceConst(target: ValueType, c: BExpr, pos: number): BExpr {
  if (c.k !== 'const') return c;
  if (target === 'time' && typeof c.value === 'string') {
    const seconds = parseIsoTime(c.value);
    if (seconds === null) throw typeErr(`cannot read '${c.value}' as a time (expected ISO-8601, e.g. '2024-05-01 12:00:00', UTC unless it ends in Z or an offset like +02:00)`, pos);
    return { k: 'const', value: seconds, type: 'time' };
  }
  return c;
}

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
        l = coerceConst(r.type, l, e.left.pos);
        r = coerceConst(l.type, r, e.right.pos);
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
        const c = coerceConst(a.type, foldConstant(child(item)), item.pos);
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
      const lo = coerceConst(a.type, child(e.low), e.low.pos);
      const hi = coerceConst(a.type, child(e.high), e.high.pos);
      checkComparable(a.type, lo.type, 'BETWEEN', e.low.pos);
      checkComparable(a.type, hi.type, 'BETWEEN', e.high.pos);
      const both: BExpr = { k: 'and', args: [{ k: 'cmp', op: '>=', left: a, right: lo, type: 'bool' }, { k: 'cmp', op: '<=', left: a, right: hi, type: 'bool' }], type: 'bool' };
      return foldConstant(e.negated ? { k: 'not', arg: both, type: 'bool' } : both);
    }
    case 'call':
      return callFromAst(e, nowSeconds, child);
  }
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
};

function callFromAst(e: Extract<Expr, { kind: 'call' }>, nowSeconds: number, child: (e: Expr) => BExpr): BExpr {
  const sig = SIGNATURES[e.name];
  if (sig === undefined) {
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `unknown function ${e.name}()`, { position: e.pos });
  }
  if (e.args.length < sig.min || e.args.length > sig.max) {
    const want = sig.min === sig.max ? `${sig.min}` : `${sig.min} to ${sig.max}`;
    throw new ShoalError('SHOAL_ERR_QUERY_UNKNOWN_FUNCTION', `${e.name}() takes ${want} argument(s), got ${e.args.length}`, { position: e.pos });
  }
  if (e.distinct) throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `DISTINCT is only valid in count()`, { position: e.pos });
  if (sig.fn === 'now') return { k: 'const', value: nowSeconds, type: 'time' };
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
  }
  throw new ShoalError('SHOAL_ERR_INTERNAL', `function ${e.name} has no translation`, { position: e.pos });
}

function badStar(pos: number): never {
  throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', '* is only valid in count(*)', { position: pos });
}
