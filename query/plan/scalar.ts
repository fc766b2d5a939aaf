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

export interface ScalarEnv {
  keys?: readonly Scalar[];
  aggs?: readonly Scalar[];
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

/** ORDER BY comparison: NULLs last in both directions (DuckDB's default). */
export function compareForOrder(a: Scalar, b: Scalar, desc: boolean): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
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
  }
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
  let a = args[0]!;
  if (a === null) return null;
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
}

/** Replaces a subtree whose inputs are all constants by its value. */
export function foldConstant(e: BExpr): BExpr {
  if (e.k === 'const' || e.k === 'col' || e.k === 'key' || e.k === 'agg') return e;
  if (!childrenOf(e).every((c) => c.k === 'const')) return e;
  const value = evalScalar(e, {});
  return { k: 'const', value, type: value === null ? (e.type === 'bool' ? 'bool' : e.type) : e.type };
}

export function childrenOf(e: BExpr): readonly BExpr[] {
  switch (e.k) {
    case 'const': case 'col': case 'key': case 'agg': return [];
    case 'arith': case 'cmp': return [e.left, e.right];
    case 'neg': case 'not': case 'in': case 'match': case 'isnull': return [e.arg];
    case 'and': case 'or': return e.args;
    case 'fn': return e.args;
  }
}
