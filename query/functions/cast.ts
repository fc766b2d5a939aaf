/**
 * CAST and TRY_CAST between shoal's types, with DuckDB's rules: a double becomes an integer by
 * rounding half to even (DuckDB's nearbyint), a string by reading it as a decimal and rounding
 * half away from zero; integer targets have their DuckDB ranges (INTEGER is 32 bits) and BIGINT
 * stops at +-2^53 here, where shoal's integers stop being exact (refused, never rounded); a
 * double prints as DuckDB prints it (`1e+20`, `1.0`, `0.30000000000000004`); a time prints as a
 * TIMESTAMP. A value that does not convert is an error for CAST and NULL for TRY_CAST.
 */
import { ShoalError } from '../errors.js';
import { parseIsoTime } from './time.js';
import { dateText, timestampText } from './dates.js';

const INT_RANGE: Readonly<Record<string, readonly [number, number]>> = {
  TINYINT: [-128, 127], SMALLINT: [-32768, 32767], INTEGER: [-2147483648, 2147483647],
  BIGINT: [-9007199254740991, 9007199254740991], HUGEINT: [-9007199254740991, 9007199254740991],
};

/** Round half to even, as C's nearbyint in the default rounding mode. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A double as DuckDB's VARCHAR cast prints it: shortest round-trip digits, exponent form
 * below 1e-4 and from 1e16 up (two exponent digits at least), `.0` on whole numbers. */
export function doubleText(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, e] = x.toExponential().split('e') as [string, string];
  const e10 = Number(e);
  if (e10 < -4 || e10 >= 16) return `${mant}e${e10 < 0 ? '-' : '+'}${String(Math.abs(e10)).padStart(2, '0')}`;
  // In [1e-4, 1e16) String() prints the same shortest digits without an exponent.
  const fixed = String(x);
  return fixed.includes('.') ? fixed : `${fixed}.0`;
}

const fail = (isTry: boolean, message: string): null => {
  if (isTry) return null;
  throw new ShoalError('SHOAL_ERR_QUERY_TYPE', message);
};

const NUMBER_TEXT = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Half away from zero, as DuckDB reads a decimal string into an integer. */
const roundHalfAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

/** CAST of one non-null value. `to` is a canonical name from sql-words.ts. */
export function castValue(v: unknown, to: string, isTry: boolean, fromType: string): unknown {
  if (v === null) return null;
  const range = INT_RANGE[to];
  if (range !== undefined) {
    let n: number;
    if (typeof v === 'boolean') n = v ? 1 : 0;
    else if (typeof v === 'bigint') return v >= BigInt(range[0]) && v <= BigInt(range[1]) ? Number(v) : fail(isTry, `${v} is out of range for ${to}${to === 'BIGINT' || to === 'HUGEINT' ? " (shoal's integers are exact to +-2^53)" : ''}`);
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return fail(isTry, `cannot cast ${v} to ${to}`);
      n = roundHalfEven(v);
    } else if (typeof v === 'string') {
      if (!NUMBER_TEXT.test(v)) return fail(isTry, `could not convert string '${v.slice(0, 40)}' to ${to}`);
      n = roundHalfAway(Number(v));
    } else return fail(isTry, `cannot cast a ${Array.isArray(v) ? 'string set' : typeof v} to ${to}`);
    if (n < range[0] || n > range[1]) return fail(isTry, `${n} is out of range for ${to}${to === 'BIGINT' || to === 'HUGEINT' ? " (shoal's integers are exact to +-2^53)" : ''}`);
    return n === 0 ? 0 : n;
  }
  switch (to) {
    case 'DOUBLE': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (typeof v === 'bigint') n = Number(v);
      else if (typeof v === 'boolean') n = v ? 1 : 0;
      else if (typeof v === 'string') {
        const t = v.trim().toLowerCase();
        if (NUMBER_TEXT.test(v)) n = Number(v);
        else if (t === 'inf' || t === 'infinity' || t === '+inf' || t === '+infinity') n = Infinity;
        else if (t === '-inf' || t === '-infinity') n = -Infinity;
        else if (t === 'nan') n = NaN;
        else return fail(isTry, `could not convert string '${v.slice(0, 40)}' to ${to}`);
      } else return fail(isTry, `cannot cast a string set to ${to}`);
      return n;
    }
    case 'VARCHAR':
      return textOf(v, fromType);
    case 'BOOLEAN': {
      if (typeof v === 'boolean') return v;
      if (typeof v === 'number') return v !== 0;
      if (typeof v === 'bigint') return v !== 0n;
      if (typeof v === 'string') {
        const t = v.toLowerCase();
        if (t === 'true' || t === 't' || t === 'yes' || t === 'y' || t === '1') return true;
        if (t === 'false' || t === 'f' || t === 'no' || t === 'n' || t === '0') return false;
        return fail(isTry, `could not convert string '${v.slice(0, 40)}' to BOOLEAN`);
      }
      return fail(isTry, 'cannot cast a string set to BOOLEAN');
    }
    case 'TIMESTAMP': case 'DATE': {
      let t: number | null;
      if (typeof v === 'number') t = v; // already a time (bind refuses numbers)
      else if (typeof v === 'string') t = parseIsoTime(v.trim());
      else t = null;
      if (t === null) return fail(isTry, `could not convert '${String(v).slice(0, 40)}' to ${to} (expected ISO-8601, e.g. '2024-05-01 12:00:00')`);
      return to === 'DATE' ? Math.floor(t / 86_400) * 86_400 : t;
    }
    default:
      throw new ShoalError('SHOAL_ERR_INTERNAL', `no cast to ${to}`);
  }
}

/** A value of a given shoal type as text (concat, ||, CAST to VARCHAR): times as TIMESTAMP,
 * floats as DuckDB prints doubles. */
export function textOf(v: unknown, type: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (type === 'time') return timestampText(v);
    if (type === 'date') return dateText(v);
    if (type === 'float' || !Number.isInteger(v)) return doubleText(v);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}
