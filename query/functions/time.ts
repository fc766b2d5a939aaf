/**
 * The one reader of ISO-8601 time text, shared by the planner (a string compared with a time),
 * the ingest decoder (a `time` given as a string) and the loader (a time column in a file), so
 * that the three never disagree about what a string means.
 *
 * Accepted, as DuckDB's TIMESTAMPTZ cast accepts it (checked by test/time-text.test.ts):
 *   YYYY-M[M]-D[D]
 *   YYYY-M[M]-D[D](T| +)H[H]:M[M][:S[S][.fraction]]  then optionally Z, ±HH, ±HHMM, ±HH:MM or ±HH:MM:SS
 * with optional leading spaces, and trailing spaces after a time (DuckDB's quirks: it refuses
 * `'2026-12-02 '` but reads `' 2026-12-02'`). Without an offset the text is UTC, never the process's
 * local zone (Date.parse reads `2026-12-02 10:00:00` as local time: the bug this module exists
 * to avoid). 24:00:00 is the end of the day, as in DuckDB; a leap second (:60) is refused, as in
 * DuckDB. The fraction is cut to microseconds (DuckDB's resolution).
 *
 * Not accepted (null, and the caller says what it could not read): zone names, a space before
 * the offset, lowercase `z`, days that do not exist (Feb 30), years other than four digits.
 * Not here: unix-number times and the 1900..2200 range check, which are the callers' rules.
 */

const ISO_TIME = / *(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:T| +)(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d*))?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2})(?::(\d{2}))?)?)? *)?$/y;

const SECONDS_PER_DAY = 86_400;
const MICROS_PER_SECOND = 1_000_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Unix seconds (fraction to the microsecond) of an ISO-8601 date or date-time; null when it is not one. */
export function parseIsoTime(text: string): number | null {
  ISO_TIME.lastIndex = 0;
  const m = ISO_TIME.exec(text);
  if (m === null) return null;
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, omis, oss] = m;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = hs === undefined ? 0 : Number(hs);
  const minute = mis === undefined ? 0 : Number(mis);
  const second = ss === undefined ? 0 : Number(ss);
  const micros = frac === undefined || frac === '' ? 0 : Number(frac.slice(0, 6).padEnd(6, '0'));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (minute > 59 || second > 59) return null;
  if (hour > 24 || (hour === 24 && (minute !== 0 || second !== 0 || micros !== 0))) return null;
  let offsetSeconds = 0;
  if (zulu === undefined && sign !== undefined) {
    const oh = Number(ohs);
    const om = omis === undefined ? 0 : Number(omis);
    const os = oss === undefined ? 0 : Number(oss);
    if (om > 59 || os > 59) return null;
    offsetSeconds = (sign === '-' ? -1 : 1) * (oh * 3600 + om * 60 + os);
  }
  const whole = daysFromCivil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offsetSeconds;
  return micros === 0 ? whole : whole + micros / MICROS_PER_SECOND;
}
