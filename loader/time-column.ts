/**
 * Reading a row's time as unix seconds, the unit shoal stores (`time` is float seconds).
 *
 * - Numbers (and numeric strings, as CSV gives them) are seconds, milliseconds or microseconds
 *   as --time-format says; `auto` takes the first unit that puts the value inside 1900..2200
 *   (seconds, then ms, then us, then ns), which is unambiguous for any date after 1970-03.
 * - Strings are ISO-8601: `2024-05-01`, `2024-05-01T12:00:00`, `2024-05-01 12:00:00.123456`,
 *   with an optional `Z` or `+hh:mm` / `+hhmm` / `+hh` offset. A time without an offset is UTC
 *   (DuckDB reads a TIMESTAMP the same way), never the loader's local zone. Read by the engine's
 *   own parser (query/functions/time.ts), so a file's times mean what a query's and the leaf's
 *   do; microseconds survive (Date.parse stops at milliseconds).
 * - Anything that does not read as a time in 1900..2200 is "unusable": the caller applies the
 *   --missing-time policy.
 *
 * Not here: Parquet/Arrow timestamp types, which their readers convert by the type's unit.
 */
import { LIMITS } from '../query/limits.js';
import { parseIsoTime } from '../query/functions/time.js';
import type { TimeFormat } from './options.js';

const NUMERIC = /^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

export function inTimeRange(seconds: number): boolean {
  return Number.isFinite(seconds) && seconds >= LIMITS.timeSecondsMin && seconds <= LIMITS.timeSecondsMax;
}

/** Unix seconds from an ISO-8601 string (surrounding spaces ignored), or null when it is not one. */
export function parseIsoSeconds(text: string): number | null {
  return parseIsoTime(text.trim());
}

function fromNumber(value: number, format: TimeFormat): number | null {
  switch (format) {
    case 'unix-s': return value;
    case 'unix-ms': return value / 1e3;
    case 'unix-us': return value / 1e6;
    case 'iso': return null;
    case 'auto':
      for (const scale of [1, 1e3, 1e6, 1e9]) {
        const s = value / scale;
        if (inTimeRange(s)) return s;
      }
      return null;
  }
}

/**
 * `value` as unix seconds per `format`; null when it cannot be read as a time in 1900..2200.
 * (Missing values, undefined/null/'', are the caller's business.)
 */
export function toSeconds(value: unknown, format: TimeFormat): number | null {
  let seconds: number | null = null;
  if (typeof value === 'number') {
    seconds = fromNumber(value, format);
  } else if (typeof value === 'string') {
    if (format !== 'iso' && NUMERIC.test(value)) seconds = fromNumber(Number(value), format);
    else if (format === 'iso' || format === 'auto') seconds = parseIsoSeconds(value);
  } else if (value instanceof Date) {
    seconds = value.getTime() / 1000;
  }
  return seconds !== null && inTimeRange(seconds) ? seconds : null;
}

/** Whether a string looks like a time (CSV inference of the time column). */
export function looksLikeTime(text: string): boolean {
  return parseIsoSeconds(text) !== null || NUMERIC.test(text);
}
