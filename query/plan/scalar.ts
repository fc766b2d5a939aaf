/**
 * Row-at-a-time evaluation of bound expressions over JS values. Used after aggregation (select
 * list, HAVING and ORDER BY over merged groups: few rows), for constant folding, and as the
 * fallback of the vector kernels for rare functions. The SQL semantics live here once:
 * three-valued logic, NULL propagation, `/` as float division with x/0 = NULL, time_bucket
 * aligned like DuckDB's, round half away from zero.
 */
import { ShoalError } from '../errors.js';
import type { ArithOp, BExpr, Scalar } from './plan.js';
import { intResult } from './wire.js';
import { codePointLength, lowerText, upperText } from '../functions/text.js';
import { castValue, textOf } from '../functions/cast.js';
import { dateTrunc, datePart, strftime } from '../functions/dates.js';
import { jsReplacement, left, regexpExtract, replaceAll, right, splitPart, strpos, substr, trimChars } from '../functions/strings.js';

export interface ScalarEnv {
  keys?: readonly Scalar[];
  aggs?: readonly Scalar[];
  /** Window function values of the current result row (merge/windows.ts). */
  wins?: readonly Scalar[];
  column?: (name: string) => Scalar;
}

/** DuckDB's default time_bucket origin for sub-month widths: 2000-01-03 00:00:00 UTC (a Monday). */
export const TIME_BUCKET_ORIGIN_SECONDS = 946_857_600;

export function timeBucket(widthSeconds: number, t: number): number {
  return TIME_BUCKET_ORIGIN_SECONDS + Math.floor((t - TIME_BUCKET_ORIGIN_SECONDS) / widthSeconds) * widthSeconds;
}

export function roundHalfAway(x: number, digits: number): number {
  const f = 10 ** digits;
  const scaled = Math.abs(x) * f;
  // Past 2^52 a double has no fraction left to round at this precision (and x * 10^d may
  // overflow: round(1.7e308, 2) is 1.7e308, not Infinity).
  if (!Number.isFinite(scaled) || scaled >= 4503599627370496) return x;
  return (Math.sign(x) * Math.round(scaled)) / f;
}

const regexCache = new Map<string, RegExp>();
export function cachedRegex(source: string, flags: string): RegExp {
  const key = flags + '/' + source;
  let re = regexCache.get(key);
  if (re === undefined) {
    if (regexCache.size > 256) regexCache.clear();
    re = new RegExp(source, flags);
    regexCache.set(key, re);
  }
  return re;
}

/**
 * LIKE pattern -> anchored regex source: % = any run, _ = any one code point (compiled with the
 * `u` flag, so an emoji is one character as in DuckDB), the rest literal.
 */
export function likeToRegex(pattern: string): string {
  let out = '^';
  for (const ch of pattern) {
    if (ch === '%') out += '.*';
    else if (ch === '_') out += '.';
    else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return out + '$';
}

/**
 * Strings compare by Unicode code point, as DuckDB's UTF-8 byte order does. JS `<` compares
 * UTF-16 code units, which puts astral characters (surrogate pairs) below U+E000..U+FFFF.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate starts a code point above U+FFFF: greater than any single code unit.
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** SQL comparison of two non-null values: <0, 0, >0. */
export function compareValues(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  // An exact sum beyond 2^53 (bigint) compares with numbers exactly, as JS does across the two.
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  if (typeof a === 'boolean' && typeof b === 'boolean') return (a ? 1 : 0) - (b ? 1 : 0);
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** ORDER BY comparison: NULLs last in both directions (DuckDB's default) unless NULLS FIRST. */
export function compareForOrder(a: Scalar, b: Scalar, desc: boolean, nullsFirst = false): number {
  if (a === null || b === null) return a === b ? 0 : (a === null) !== nullsFirst ? 1 : -1;
  const c = compareValues(a, b);
  return desc ? -c : c;
}

function truth(v: Scalar): boolean | null {
  return v === null ? null : v === true;
}

export function evalScalar(e: BExpr, env: ScalarEnv): Scalar {
  switch (e.k) {
    case 'const': return e.value;
    case 'col': return env.column ? env.column(e.name) : null;
    case 'key': return env.keys![e.index]!;
    case 'agg': return env.aggs![e.index]!;
    case 'neg': {
      const v = evalScalar(e.arg, env);
      return v === null ? null : typeof v === 'bigint' ? intResult(-v) : -(v as number);
    }
    case 'arith': {
      const l = evalScalar(e.left, env);
      const r = evalScalar(e.right, env);
      if (l === null || r === null) return null;
      if (typeof l === 'bigint' || typeof r === 'bigint') return bigArith(e.op, l, r);
      if (typeof l !== 'number' || typeof r !== 'number') {
        throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `arithmetic ${e.op} needs numbers, got ${typeof l} and ${typeof r}`);
      }
      if (e.type !== 'float' && e.op !== '/' && e.op !== '%' && Number.isSafeInteger(l) && Number.isSafeInteger(r)) {
        // Integers past 2^53 (sum(x) * 1000 after aggregation) stay exact, as bigints. Only
        // safe integers qualify: a double of 1e300 is whole but a float (1e300 * 2^31 is
        // Infinity in IEEE arithmetic, not a 310-digit integer).
        const x = e.op === '+' ? l + r : e.op === '-' ? l - r : l * r;
        return x > -9007199254740992 && x < 9007199254740992 ? x : bigArith(e.op, l, r);
      }
      switch (e.op) {
        case '+': return l + r;
        case '-': return l - r;
        case '*': return l * r;
        case '/': return r === 0 ? null : l / r;
        case '%': return r === 0 ? null : l % r;
      }
    }
    // falls through: unreachable, every op returns
    case 'cmp': {
      const l = evalScalar(e.left, env);
      const r = evalScalar(e.right, env);
      if (l === null || r === null) return null;
      if (typeof l !== typeof r && (typeof l === 'string' || typeof r === 'string')) {
        // Binding coerces or refuses these; one left over (a value whose type was unknown
        // when planning) has no meaningful order, so it is an error, never a silent answer.
        throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `cannot compare ${typeof l === 'number' ? 'a number' : typeof l} with ${typeof r === 'number' ? 'a number' : typeof r} using ${e.op}`);
      }
      const c = compareValues(l, r);
      switch (e.op) {
        case '=': return c === 0;
        case '!=': return c !== 0;
        case '<': return c < 0;
        case '<=': return c <= 0;
        case '>': return c > 0;
        case '>=': return c >= 0;
      }
    }
    // falls through: unreachable
    case 'and': {
      let sawNull = false;
      for (const a of e.args) {
        const t = truth(evalScalar(a, env));
        if (t === false) return false;
        if (t === null) sawNull = true;
      }
      return sawNull ? null : true;
    }
    case 'or': {
      let sawNull = false;
      for (const a of e.args) {
        const t = truth(evalScalar(a, env));
        if (t === true) return true;
        if (t === null) sawNull = true;
      }
      return sawNull ? null : false;
    }
    case 'not': {
      const t = truth(evalScalar(e.arg, env));
      return t === null ? null : !t;
    }
    case 'in': {
      const v = evalScalar(e.arg, env);
      if (v === null) return null;
      let sawNull = false;
      for (const x of e.values) {
        if (x === null) { sawNull = true; continue; }
        if (compareValues(v, x) === 0) return !e.negated;
      }
      return sawNull ? null : e.negated;
    }
    case 'match': {
      const v = evalScalar(e.arg, env);
      if (v === null) return null;
      const hit = cachedRegex(e.regex, e.flags).test(String(v));
      return e.negated ? !hit : hit;
    }
    case 'isnull': {
      const isNull = evalScalar(e.arg, env) === null;
      return e.negated ? !isNull : isNull;
    }
    case 'fn': return evalFn(e, env);
    case 'win': return env.wins![e.index]!;
    case 'case': {
      // Lazy, as SQL: a branch not taken is not evaluated.
      for (const w of e.whens) if (evalScalar(w.when, env) === true) return evalScalar(w.then, env);
      return e.else === null ? null : evalScalar(e.else, env);
    }
    case 'cast': {
      const v = evalScalar(e.arg, env);
      return castValue(v, e.to, e.try, typeName(textType(e.arg), v)) as Scalar;
    }
  }
}

/** The type a value prints as: a DATE cast is a time printed as a date. */
export function textType(b: BExpr): string {
  return (b.k === 'cast' && b.to === 'DATE') || ((b.k === 'const' || b.k === 'col') && b.date === true) ? 'date' : b.type;
}

/** A value's type for text conversion when the plan could not tell ('any'). */
function typeName(t: string, v: Scalar): string {
  if (t !== 'any') return t;
  return typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'float') : typeof v === 'string' ? 'string' : 'any';
}

/**
 * Arithmetic with an exact integer beyond 2^53 (a big sum): + - * % stay exact when both sides
 * are integers; anything with a fraction, and `/`, is float arithmetic.
 */
function bigArith(op: ArithOp, l: Scalar, r: Scalar): Scalar {
  const isInt = (x: Scalar) => typeof x === 'bigint' || (typeof x === 'number' && Number.isInteger(x));
  if (op !== '/' && isInt(l) && isInt(r)) {
    const a = BigInt(l as number | bigint);
    const b = BigInt(r as number | bigint);
    switch (op) {
      case '+': return intResult(a + b);
      case '-': return intResult(a - b);
      case '*': return intResult(a * b);
      case '%': return b === 0n ? null : intResult(a % b);
    }
  }
  if (typeof l !== 'number' && typeof l !== 'bigint' || typeof r !== 'number' && typeof r !== 'bigint') {
    throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `arithmetic ${op} needs numbers, got ${typeof l} and ${typeof r}`);
  }
  const x = Number(l); const y = Number(r);
  switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return y === 0 ? null : x / y;
    case '%': return y === 0 ? null : x % y;
  }
}

function evalFn(e: Extract<BExpr, { k: 'fn' }>, env: ScalarEnv): Scalar {
  const args = e.args.map((a) => evalScalar(a, env));
  if (e.name === 'coalesce') return args.find((a) => a !== null) ?? null;
  const special = evalNullAware(e, args);
  if (special !== undefined) return special;
  if (args.some((x) => x === null)) return null;
  const more = evalNewFn(e, args);
  if (more !== undefined) return more;
  let a = args[0]!;
  // A big exact integer is already whole; other functions take it as a float.
  if (typeof a === 'bigint') {
    if (e.name === 'floor' || e.name === 'ceil' || e.name === 'round' || e.name === 'abs') return e.name === 'abs' && a < 0n ? -a : a;
    a = Number(a);
  }
  switch (e.name) {
    case 'time_bucket': {
      const t = args[1];
      return t === null || t === undefined ? null : timeBucket(a as number, t as number);
    }
    case 'lower': return lowerText(a as string);
    case 'upper': return upperText(a as string);
    case 'length': return Array.isArray(a) ? a.length : codePointLength(a as string);
    case 'abs': return typeof a === 'bigint' ? (a < 0n ? -a : a) : Math.abs(a as number);
    case 'floor': return Math.floor(a as number);
    case 'ceil': return Math.ceil(a as number);
    case 'round': {
      const d = args[1];
      if (d === null) return null;
      return roundHalfAway(a as number, d === undefined ? 0 : (d as number));
    }
    case 'list_contains': {
      const v = args[1];
      if (v === null || v === undefined) return null;
      return (a as readonly string[]).includes(v as string);
    }
    case 'to_timestamp': case 'epoch': return a;
  }
  return null;
}

/** Functions whose NULL handling is not "NULL in, NULL out": undefined for the others. */
function evalNullAware(e: Extract<BExpr, { k: 'fn' }>, args: Scalar[]): Scalar | undefined {
  switch (e.name) {
    case 'concat': {
      // args[0]: true for || (NULL if any side is), false for concat() (NULLs skipped).
      const parts = args.slice(1);
      if (args[0] === true && parts.some((x) => x === null)) return null;
      return parts.map((x, i) => (x === null ? '' : textOf(x, typeName(textType(e.args[i + 1]!), x)))).join('');
    }
    case 'greatest': case 'least': {
      let best: Scalar = null;
      for (const x of args) {
        if (x === null) continue;
        if (best === null || (e.name === 'greatest' ? compareValues(x, best) > 0 : compareValues(x, best) < 0)) best = x;
      }
      return best;
    }
    case 'is_distinct': {
      const l = args[1]!; const r = args[2]!;
      const same = l === null || r === null ? l === r : compareValues(l, r) === 0;
      return args[0] === true ? !same : same;
    }
    case 'nullif':
      if (args[0] === null) return null;
      return args[1] !== null && compareValues(args[0]!, args[1]!) === 0 ? null : args[0]!;
    default: return undefined;
  }
}

/** Protocol-4 functions, every argument non-null. */
function evalNewFn(e: Extract<BExpr, { k: 'fn' }>, args: Scalar[]): Scalar | undefined {
  const str = (i: number) => args[i] as string;
  const num = (i: number) => Number(args[i]);
  switch (e.name) {
    case 'substr': return substr(str(0), num(1), args.length > 2 ? num(2) : null);
    case 'starts_with': return str(0).startsWith(str(1));
    case 'ends_with': return str(0).endsWith(str(1));
    case 'contains': return str(0).includes(str(1));
    case 'split_part': return splitPart(str(0), str(1), num(2));
    case 'strpos': return strpos(str(0), str(1));
    case 'left': return left(str(0), num(1));
    case 'right': return right(str(0), num(1));
    case 'trim': case 'ltrim': case 'rtrim': return trimChars(str(0), args.length > 1 ? str(1) : null, e.name === 'trim' ? 'both' : e.name === 'ltrim' ? 'left' : 'right');
    case 'replace': return replaceAll(str(0), str(1), str(2));
    case 'regexp_extract': return regexpExtract(str(0), cachedRegex(str(1), 'u'), num(2));
    case 'regexp_replace': return str(0).replace(cachedRegex(str(1), str(3)), jsReplacement(str(2)));
    case 'date_trunc': return dateTrunc(str(0), num(1));
    case 'date_part': return datePart(str(0), num(1));
    case 'strftime': return strftime(num(0), str(1));
    case 'unnest': throw new ShoalError('SHOAL_ERR_INTERNAL', 'unnest() evaluated outside GROUP BY');
    default: return undefined;
  }
}

/** Replaces a subtree whose inputs are all constants by its value. */
export function foldConstant(e: BExpr): BExpr {
  if (e.k === 'const' || e.k === 'col' || e.k === 'key' || e.k === 'agg' || e.k === 'win') return e;
  if (!childrenOf(e).every((c) => c.k === 'const')) return e;
  const value = evalScalar(e, {});
  return { k: 'const', value, type: value === null ? (e.type === 'bool' ? 'bool' : e.type) : e.type };
}

export function childrenOf(e: BExpr): readonly BExpr[] {
  switch (e.k) {
    case 'const': case 'col': case 'key': case 'agg': return [];
    case 'arith': case 'cmp': return [e.left, e.right];
    case 'neg': case 'not': case 'in': case 'match': case 'isnull': case 'cast': return [e.arg];
    case 'and': case 'or': return e.args;
    case 'fn': return e.args;
    case 'case': return [...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'win': return [];
  }
}
