/**
 * String functions with DuckDB's semantics, on code points (a JavaScript string is UTF-16: an
 * emoji is two units here and one character in DuckDB). ASCII-only and surrogate-free text takes
 * the plain string methods; text with astral characters is split into code points first.
 * Each runs once per dictionary entry of a block when its other arguments are constants
 * (vector.ts), so the cost is per distinct string, not per row.
 */
import { ShoalError } from '../errors.js';

const SURROGATE = /[\uD800-\uDFFF]/;
const points = (s: string): string[] => Array.from(s);

/** substr(s, start[, length]) as DuckDB: 1-based, 0 is just before the first character, a
 * negative start counts from the end, a negative length takes the characters before start. */
export function substr(s: string, start: number, length: number | null): string {
  const astral = SURROGATE.test(s);
  const cps = astral ? points(s) : null;
  const total = cps ? cps.length : s.length;
  const begin = start < 0 ? total + start + 1 : start;
  let lo: number;
  let hi: number;
  if (length === null) { lo = begin; hi = total + 1; } else if (length >= 0) { lo = begin; hi = begin + length; } else { lo = begin + length; hi = begin; }
  lo = Math.max(lo, 1);
  hi = Math.min(hi, total + 1);
  if (hi <= lo) return '';
  return cps ? cps.slice(lo - 1, hi - 1).join('') : s.slice(lo - 1, hi - 1);
}

/** left(s, n): the first n characters; negative n: all but the last -n. */
export function left(s: string, n: number): string {
  const cps = SURROGATE.test(s) ? points(s) : null;
  const total = cps ? cps.length : s.length;
  const end = n >= 0 ? Math.min(n, total) : Math.max(total + n, 0);
  return cps ? cps.slice(0, end).join('') : s.slice(0, end);
}

/** right(s, n): the last n characters; negative n: all but the first -n. */
export function right(s: string, n: number): string {
  const cps = SURROGATE.test(s) ? points(s) : null;
  const total = cps ? cps.length : s.length;
  const begin = n >= 0 ? Math.max(total - n, 0) : Math.min(-n, total);
  return cps ? cps.slice(begin).join('') : s.slice(begin);
}

/** strpos(s, needle): 1-based code-point position of the first match, 0 when absent. */
export function strpos(s: string, needle: string): number {
  const at = s.indexOf(needle);
  if (at < 0) return 0;
  return (SURROGATE.test(s) ? points(s.slice(0, at)).length : at) + 1;
}

/** split_part(s, sep, n): the n-th field (1-based; negative from the end), '' when out of range;
 * an empty separator splits into characters. */
export function splitPart(s: string, sep: string, n: number): string {
  const parts = sep === '' ? points(s) : s.split(sep);
  const i = n > 0 ? n - 1 : n < 0 ? parts.length + n : -1;
  return i >= 0 && i < parts.length ? parts[i]! : '';
}

/** trim / ltrim / rtrim: removes the given characters (default: spaces only, as DuckDB). */
export function trimChars(s: string, chars: string | null, sides: 'both' | 'left' | 'right'): string {
  const set = new Set(chars === null ? [' '] : points(chars));
  const cps = points(s);
  let lo = 0;
  let hi = cps.length;
  if (sides !== 'right') while (lo < hi && set.has(cps[lo]!)) lo++;
  if (sides !== 'left') while (hi > lo && set.has(cps[hi - 1]!)) hi--;
  return lo === 0 && hi === cps.length ? s : cps.slice(lo, hi).join('');
}

/** replace(s, from, to): every occurrence; an empty `from` changes nothing. */
export function replaceAll(s: string, from: string, to: string): string {
  return from === '' ? s : s.split(from).join(to);
}

/** regexp_extract(s, re, group): the group of the first match, '' when there is none. */
export function regexpExtract(s: string, re: RegExp, group: number): string {
  const m = re.exec(s);
  if (m === null) return '';
  return m[group] ?? '';
}

/**
 * A DuckDB (RE2) replacement string in JavaScript's spelling: `\1` is a group, `\\` a backslash,
 * and `$` is literal (JavaScript would read `$1`).
 */
export function jsReplacement(repl: string): string {
  let out = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i]!;
    if (c === '$') { out += '$$'; continue; }
    if (c === '\\' && i + 1 < repl.length) {
      const d = repl[i + 1]!;
      if (d >= '0' && d <= '9') { out += d === '0' ? '$&' : `$${d}`; i++; continue; }
      out += d === '$' ? '$$' : d;
      i++;
      continue;
    }
    out += c;
  }
  return out;
}

/** Flags of regexp_replace: 'g' all matches, 'i' ignore case, 'c' case-sensitive, 's' dot-all. */
export function replaceFlags(options: string): { global: boolean; flags: string } {
  let global = false;
  let flags = 'u';
  for (const o of options) {
    if (o === 'g') global = true;
    else if (o === 'i') { if (!flags.includes('i')) flags += 'i'; } else if (o === 'c') flags = flags.replace('i', '');
    else if (o === 's') { if (!flags.includes('s')) flags += 's'; } else if (o === 'm') { if (!flags.includes('m')) flags += 'm'; } else {
      throw new ShoalError('SHOAL_ERR_QUERY_SEMANTIC', `unknown regexp_replace option '${o}'; use g, i, c, s or m`);
    }
  }
  return { global, flags: global ? flags + 'g' : flags };
}
