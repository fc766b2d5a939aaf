/**
 * date_trunc, date_part (extract) and strftime over shoal's time values (unix seconds with up to
 * microsecond fractions), in UTC, as DuckDB computes them on a TIMESTAMP in a UTC session. Work is
 * done on whole microseconds so a fraction never rounds a value into the next unit.
 */
import { ShoalError } from '../errors.js';

const US = 1_000_000;
const DAY_US = 86_400 * US;
const toUs = (t: number) => Math.round(t * US);
const floorDiv = (a: number, b: number) => Math.floor(a / b);

/** Days since 1970-01-01 -> [year, month 1-12, day 1-31] (proleptic Gregorian). */
function civil(days: number): [number, number, number] {
  const d = new Date(days * 86_400_000);
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
}
const daysOf = (y: number, m: number, d: number) => Math.floor(Date.UTC(y, m - 1, d) / 86_400_000);
/** Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday). */
const mondayIndex = (days: number) => ((days + 3) % 7 + 7) % 7;

/** ISO-8601 week-numbering year and week of a day. */
function isoWeek(days: number): [number, number] {
  const thursday = days - mondayIndex(days) + 3;
  const [y] = civil(thursday);
  const jan1 = daysOf(y, 1, 1);
  return [y, Math.floor((thursday - jan1) / 7) + 1];
}

/** date_trunc units of a fixed length, in microseconds. */
export const FIXED_UNIT_US: Readonly<Record<string, number>> = { microsecond: 1, millisecond: 1000, second: US, minute: 60 * US, hour: 3600 * US, day: DAY_US };

export function dateTrunc(part: string, t: number): number {
  const us = toUs(t);
  const days = floorDiv(us, DAY_US);
  const unitUs = FIXED_UNIT_US[part];
  if (unitUs !== undefined) return (floorDiv(us, unitUs) * unitUs) / US;
  if (part === 'week') return (days - mondayIndex(days)) * 86_400;
  const [y, m] = civil(days);
  let start: number;
  switch (part) {
    case 'month': start = daysOf(y, m, 1); break;
    case 'quarter': start = daysOf(y, m - ((m - 1) % 3), 1); break;
    case 'year': start = daysOf(y, 1, 1); break;
    case 'decade': start = daysOf(Math.floor(y / 10) * 10, 1, 1); break;
    case 'century': start = daysOf(Math.floor((y - 1) / 100) * 100 + 1, 1, 1); break;
    case 'millennium': start = daysOf(Math.floor((y - 1) / 1000) * 1000 + 1, 1, 1); break;
    default: throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `unknown date_trunc unit '${part}'`);
  }
  return start * 86_400;
}

/** date_part / extract: an integer, except epoch (seconds with the fraction). */
export function datePart(part: string, t: number): number {
  if (part === 'epoch') return t;
  const us = toUs(t);
  const days = floorDiv(us, DAY_US);
  const inDay = us - days * DAY_US;
  const [y, m, d] = civil(days);
  switch (part) {
    case 'year': return y;
    case 'quarter': return Math.floor((m - 1) / 3) + 1;
    case 'month': return m;
    case 'day': case 'dayofmonth': return d;
    case 'hour': return Math.floor(inDay / (3600 * US));
    case 'minute': return Math.floor(inDay / (60 * US)) % 60;
    case 'second': return Math.floor(inDay / US) % 60;
    case 'millisecond': return Math.floor((inDay % (60 * US)) / 1000);
    case 'microsecond': return inDay % (60 * US);
    case 'dow': case 'dayofweek': return (mondayIndex(days) + 1) % 7;
    case 'isodow': return mondayIndex(days) + 1;
    case 'doy': case 'dayofyear': return days - daysOf(y, 1, 1) + 1;
    case 'week': return isoWeek(days)[1];
    case 'isoyear': return isoWeek(days)[0];
    case 'yearweek': { const [iy, w] = isoWeek(days); return iy * 100 + w; }
    case 'decade': return Math.floor(y / 10);
    case 'century': return y > 0 ? Math.floor((y - 1) / 100) + 1 : Math.floor(y / 100);
    case 'millennium': return y > 0 ? Math.floor((y - 1) / 1000) + 1 : Math.floor(y / 1000);
    default: throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `unknown date part '${part}'`);
  }
}

const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The specifiers strftime knows (the error lists them). */
export const STRFTIME_SPECIFIERS = 'aAbBcdfgHIjmMpSTuUVwWxXyYzZ%'.split('').map((c) => `%${c}`).concat(['%-d', '%-m', '%-H', '%-I', '%-M', '%-S', '%-j', '%G']);

/** Checks a format once (at planning) so an unknown specifier is an error with its name. */
export function checkStrftime(format: string): string | null {
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== '%') continue;
    const spec = format[i + 1] === '-' ? format.slice(i, i + 3) : format.slice(i, i + 2);
    if (!STRFTIME_SPECIFIERS.includes(spec)) return `strftime format specifier '${spec}' is not supported; use ${STRFTIME_SPECIFIERS.join(' ')}`;
    i += spec.length - 1;
  }
  return null;
}

export function strftime(t: number, format: string): string {
  const us = toUs(t);
  const days = floorDiv(us, DAY_US);
  const inDay = us - days * DAY_US;
  const [y, m, d] = civil(days);
  const H = Math.floor(inDay / (3600 * US));
  const M = Math.floor(inDay / (60 * US)) % 60;
  const S = Math.floor(inDay / US) % 60;
  const frac = inDay % US;
  const I = H % 12 === 0 ? 12 : H % 12;
  const dow = mondayIndex(days);
  const doy = days - daysOf(y, 1, 1) + 1;
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') { out += c; continue; }
    let spec = format[++i];
    let bare = false;
    if (spec === '-') { bare = true; spec = format[++i]; }
    const n = (v: number, w = 2) => (bare ? String(v) : pad(v, w));
    switch (spec) {
      case 'Y': out += String(y); break;
      case 'y': out += pad(y % 100); break;
      case 'm': out += n(m); break;
      case 'd': out += n(d); break;
      case 'H': out += n(H); break;
      case 'I': out += n(I); break;
      case 'M': out += n(M); break;
      case 'S': out += n(S); break;
      case 'j': out += n(doy, 3); break;
      case 'f': out += pad(frac, 6); break;
      case 'g': out += pad(Math.floor(frac / 1000), 3); break;
      case 'p': out += H < 12 ? 'AM' : 'PM'; break;
      case 'a': out += DAY_NAMES[dow]!.slice(0, 3); break;
      case 'A': out += DAY_NAMES[dow]!; break;
      case 'b': out += MONTH_NAMES[m - 1]!.slice(0, 3); break;
      case 'B': out += MONTH_NAMES[m - 1]!; break;
      case 'u': out += String(dow + 1); break;
      case 'w': out += String((dow + 1) % 7); break;
      case 'V': out += pad(isoWeek(days)[1]); break;
      // Weeks of the year as C counts them: the first Sunday (%U) or Monday (%W) starts week 1.
      case 'U': out += pad(Math.floor((doy - 1 + 7 - ((dow + 1) % 7)) / 7)); break;
      case 'W': out += pad(Math.floor((doy - 1 + 7 - dow) / 7)); break;
      case 'G': out += String(isoWeek(days)[0]); break;
      case 'z': out += '+00'; break;
      case 'Z': break;
      case 'c': case 'x': case 'X': case 'T': {
        const date = `${y}-${pad(m)}-${pad(d)}`;
        const time = `${pad(H)}:${pad(M)}:${pad(S)}`;
        out += spec === 'c' ? `${date} ${time}` : spec === 'x' ? date : time;
        break;
      }
      case '%': out += '%'; break;
      default: throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `strftime format specifier '%${spec ?? ''}' is not supported`);
    }
  }
  return out;
}

/** A time as DuckDB prints a TIMESTAMP: `YYYY-MM-DD HH:MM:SS[.ffffff]`, trailing zeros cut. */
export function timestampText(t: number): string {
  const us = toUs(t);
  const days = floorDiv(us, DAY_US);
  const inDay = us - days * DAY_US;
  const [y, m, d] = civil(days);
  const frac = inDay % US;
  const base = `${y < 0 ? '-' + pad(-y, 4) : pad(y, 4)}-${pad(m)}-${pad(d)} ${pad(Math.floor(inDay / (3600 * US)))}:${pad(Math.floor(inDay / (60 * US)) % 60)}:${pad(Math.floor(inDay / US) % 60)}`;
  return frac === 0 ? base : `${base}.${pad(frac, 6).replace(/0+$/, '')}`;
}

/** A time as DuckDB prints a DATE. */
export function dateText(t: number): string {
  return timestampText(Math.floor(t / 86_400) * 86_400).slice(0, 10);
}
