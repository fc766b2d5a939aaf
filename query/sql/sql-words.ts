/**
 * Word lists the parser reads in context: interval units, CAST type names, date parts. Kept out of
 * parser.ts so the grammar stays readable; each list says which DuckDB spellings it accepts and
 * which it refuses (with the message the user sees).
 */
import type { CastType } from './ast.js';

/**
 * Interval units in milliseconds. Months and years are absent on purpose: they have no fixed
 * length, and an IntervalLiteral is a plain number of seconds.
 */
const INTERVAL_UNIT_MS: ReadonlyMap<string, number> = new Map([
  ...['us', 'usec', 'usecs', 'microsecond', 'microseconds'].map((u) => [u, 0.001] as const),
  ...['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'].map((u) => [u, 1] as const),
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, 1_000] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, 60_000] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, 3_600_000] as const),
  ...['d', 'day', 'days'].map((u) => [u, 86_400_000] as const),
  ...['w', 'week', 'weeks'].map((u) => [u, 604_800_000] as const),
]);
/** A signed decimal number with optional exponent, as in an interval's text. */
const NUMBER_PATTERN = '[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?';
export const BARE_NUMBER = new RegExp(`^\\s*${NUMBER_PATTERN}\\s*$`);
const VARIABLE_UNITS = new Set(['mon', 'mons', 'month', 'months', 'y', 'yr', 'yrs', 'year', 'years', 'decade', 'decades', 'century', 'centuries']);

/** Seconds in an interval's text (`'1 hour 30 minutes'`), or the error message. */
export function intervalSeconds(text: string): number | string {
  const part = new RegExp(`\\s*(${NUMBER_PATTERN})\\s*([A-Za-z]+)\\s*`, 'y');
  let totalMs = 0;
  let offset = 0;
  while (offset < text.length || offset === 0) {
    part.lastIndex = offset;
    const m = part.exec(text);
    if (m === null) return `invalid interval '${text}': expected a number and a unit, e.g. '5 minutes',`;
    const unit = m[2]!.toLowerCase();
    const unitMs = INTERVAL_UNIT_MS.get(unit);
    if (unitMs === undefined) {
      const why = VARIABLE_UNITS.has(unit) ? ' (months and years have no fixed length)' : '';
      return `unknown interval unit '${m[2]!}'${why}; use ms, seconds, minutes, hours, days or weeks,`;
    }
    totalMs += Number(m[1]) * unitMs;
    offset = part.lastIndex;
  }
  const seconds = totalMs / 1000;
  if (!Number.isFinite(seconds)) return `interval '${text}' is out of range`;
  return seconds;
}

/**
 * CAST target names -> shoal's type and the canonical DuckDB name (which fixes an integer's
 * range: CAST(3e9 AS INTEGER) is out of range as in DuckDB, BIGINT is exact only to 2^53 here).
 * FLOAT and REAL (DuckDB's 32-bit float) are refused: shoal's arithmetic is in doubles.
 */
type CastTarget = { readonly to: CastType; readonly name: string };
const ct = (to: CastType, name: string, words: readonly string[]): [string, CastTarget][] => words.map((w) => [w, { to, name }]);
const CAST_TYPES: ReadonlyMap<string, CastTarget> = new Map([
  ...ct('int', 'TINYINT', ['tinyint', 'int1']),
  ...ct('int', 'SMALLINT', ['smallint', 'int2', 'short']),
  ...ct('int', 'INTEGER', ['integer', 'int', 'int4', 'signed']),
  ...ct('int', 'BIGINT', ['bigint', 'int8', 'long', 'int64']),
  ...ct('int', 'HUGEINT', ['hugeint']),
  ...ct('float', 'DOUBLE', ['double', 'float8']),
  ...ct('string', 'VARCHAR', ['varchar', 'text', 'string', 'char', 'bpchar']),
  ...ct('bool', 'BOOLEAN', ['boolean', 'bool', 'logical']),
  ...ct('time', 'TIMESTAMP', ['timestamp', 'datetime', 'timestamptz']),
  ...ct('date', 'DATE', ['date']),
]);

/** The cast target for a type name (and its parameters, e.g. `(20)`), or the error message. */
export function castType(word: string, params: string): { to: CastType; name: string } | string {
  const w = word.toLowerCase();
  const t = CAST_TYPES.get(w);
  if (t !== undefined) {
    if (params !== '' && t.to !== 'string') return `type ${word.toUpperCase()}${params} takes no parameters`;
    return t;
  }
  if (w === 'float' || w === 'float4' || w === 'real') return `${word.toUpperCase()} is DuckDB's 32-bit float, and shoal computes in 64-bit doubles (arithmetic on it would not round as DuckDB's does); cast to DOUBLE`;
  if (w === 'decimal' || w === 'numeric') return `${word.toUpperCase()} (exact fixed-point) is not supported; cast to DOUBLE, or round(x, digits)`;
  if (w.startsWith('u') && CAST_TYPES.get(w.slice(1))?.to === 'int') return `unsigned ${word.toUpperCase()} is not supported; use BIGINT`;
  if (w === 'time' || w === 'interval' || w === 'uuid' || w === 'blob' || w === 'json') return `type ${word.toUpperCase()} is not supported in CAST; use one of ${CAST_TYPE_LIST}`;
  return `unknown type ${word}; use one of ${CAST_TYPE_LIST}`;
}
const CAST_TYPE_LIST = 'INTEGER, BIGINT, DOUBLE, VARCHAR, BOOLEAN, TIMESTAMP, DATE';

/** Parts that extract(part FROM t) and date_part('part', t) know (docs/sql.md lists them). */
export const EXTRACT_PARTS: ReadonlySet<string> = new Set([
  'year', 'quarter', 'month', 'week', 'day', 'dayofmonth', 'hour', 'minute', 'second', 'millisecond', 'microsecond',
  'dow', 'dayofweek', 'isodow', 'doy', 'dayofyear', 'epoch', 'isoyear', 'yearweek', 'decade', 'century', 'millennium',
]);
/** Units date_trunc knows. */
export const TRUNC_PARTS: ReadonlySet<string> = new Set(['microsecond', 'millisecond', 'second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year', 'decade', 'century', 'millennium']);
