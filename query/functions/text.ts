/**
 * Text semantics as DuckDB has them: a character is a Unicode code point (not a UTF-16 unit,
 * not a grapheme cluster: DuckDB's length('e' || U+0301) is 2, length of an emoji is 1), and
 * lower/upper map each code point to one code point (DuckDB's upper('ß') is 'ẞ', one character,
 * not 'SS'; lower('ΣΑΣ') is 'σασ', with no final-sigma rule).
 *
 * JavaScript's toLowerCase/toUpperCase apply the full Unicode mappings (one code point may become
 * several) and context rules (final sigma), so they are used only for text where they agree
 * (ASCII, or no character of the `specials` set below), and otherwise one code point at a
 * time: the mapping of a lone code point, kept when it is
 * one code point, else the code point itself, with the few exceptions below where DuckDB has a
 * one-code-point mapping that the full mapping hides. test/text-semantics.test.ts compares every
 * code point with DuckDB; the differences left are characters whose case pairs Unicode added
 * after the version DuckDB 1.5 was built with (listed in docs/sql.md).
 *
 * Not here: LIKE (plan/scalar.ts compiles it to a regular expression with the `u` flag).
 */

/** DuckDB's upper() where JavaScript's full mapping of the lone code point is not one code point. */
const UPPER_EXCEPTIONS: ReadonlyMap<number, number> = new Map<number, number>([
  [0x00df, 0x1e9e], // ß -> ẞ
  // Greek letters with ypogegrammeni: the simple mapping is the titlecase letter (ᾳ -> ᾼ).
  ...[0x1f80, 0x1f90, 0x1fa0].flatMap((base) => Array.from({ length: 8 }, (_, i) => [base + i, base + i + 8] as [number, number])),
  [0x1fb3, 0x1fbc], [0x1fc3, 0x1fcc], [0x1ff3, 0x1ffc],
]);
/** DuckDB's lower() where JavaScript's full mapping is not one code point. */
const LOWER_EXCEPTIONS: ReadonlyMap<number, number> = new Map([[0x0130, 0x0069]]); // İ -> i

/**
 * Mapped code points, filled on first use. Bounded (cleared when full) so a scan over text with
 * every code point cannot grow it without limit; 65,536 covers any one script many times over.
 */
const CASE_CACHE_ENTRIES_MAX = 65_536;
const upperCache = new Map<number, string>();
const lowerCache = new Map<number, string>();

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function mapCodePoint(cp: number, upper: boolean): string {
  const cache = upper ? upperCache : lowerCache;
  let out = cache.get(cp);
  if (out !== undefined) return out;
  const ch = String.fromCodePoint(cp);
  const exception = (upper ? UPPER_EXCEPTIONS : LOWER_EXCEPTIONS).get(cp);
  if (exception !== undefined) {
    out = String.fromCodePoint(exception);
  } else {
    const mapped = upper ? ch.toUpperCase() : ch.toLowerCase();
    const single = mapped.length === 1 || (mapped.length === 2 && mapped.codePointAt(0)! > 0xffff);
    out = single ? mapped : ch;
  }
  if (cache.size >= CASE_CACHE_ENTRIES_MAX) cache.clear();
  cache.set(cp, out);
  return out;
}

/**
 * Characters where JavaScript's mapping of a whole string differs from DuckDB's per code point:
 * those whose full mapping is several code points or is one of the exceptions, and for lower()
 * capital sigma (the final-sigma rule is the only context rule JavaScript applies without a
 * locale). Text without any of them maps natively, several times faster than code point by code
 * point. Built on first use from the BMP (about 10 ms); no astral code point has a multi-code-point
 * mapping (test/text-semantics.test.ts checks all of them through this path).
 */
let upperSpecials: RegExp | null = null;
let lowerSpecials: RegExp | null = null;

function specials(upper: boolean): RegExp {
  const built = upper ? upperSpecials : lowerSpecials;
  if (built !== null) return built;
  const exceptions = upper ? UPPER_EXCEPTIONS : LOWER_EXCEPTIONS;
  let set = upper ? '' : '\\u{3a3}';
  for (let cp = 0x80; cp <= 0xffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCharCode(cp);
    const mapped = upper ? ch.toUpperCase() : ch.toLowerCase();
    const single = mapped.length === 1 || (mapped.length === 2 && mapped.codePointAt(0)! > 0xffff);
    if (!single || exceptions.has(cp)) set += `\\u{${cp.toString(16)}}`;
  }
  const re = new RegExp(`[${set}]`, 'u');
  if (upper) upperSpecials = re; else lowerSpecials = re;
  return re;
}

function mapText(s: string, upper: boolean): string {
  if (isAscii(s) || !specials(upper).test(s)) return upper ? s.toUpperCase() : s.toLowerCase();
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x7f) {
      out += upper ? (c >= 97 && c <= 122 ? String.fromCharCode(c - 32) : s[i]!) : c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i]!;
      continue;
    }
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    // A lone surrogate (not possible in text read from UTF-8) maps to itself.
    out += cp >= 0xd800 && cp <= 0xdfff ? s[i]! : mapCodePoint(cp, upper);
  }
  return out;
}

/** DuckDB's upper(): one code point to one code point. */
export function upperText(s: string): string { return mapText(s, true); }

/** DuckDB's lower(): one code point to one code point. */
export function lowerText(s: string): string { return mapText(s, false); }

/** Number of code points (DuckDB's length()): UTF-16 units minus surrogate pairs, no allocation. */
export function codePointLength(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { count--; i++; }
    }
  }
  return count;
}
