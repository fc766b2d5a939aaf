/**
 * SQL tokenizer: turns query text into a flat array of tokens, each with its 0-based character
 * offset, for the recursive-descent parser in parser.ts.
 *
 * Not here: any grammar. The lexer knows which words are reserved (so `SELECT a FROM t` cannot
 * read FROM as an alias) but not where they may appear; words with meaning only in one place
 * (INTERVAL, NULLS, MINUTE, LEFT, ...) stay plain identifiers and the parser looks at them in
 * context, so they remain usable as column names.
 *
 * Work is linear in the text length, which parser.ts bounds by LIMITS.sqlLengthMax before calling
 * in, so the token array is bounded too.
 */

import { ShoalError } from '../errors.js';

export type TokenKind = 'ident' | 'keyword' | 'string' | 'number' | 'op' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /**
   * ident: the name as written (quotes removed, `""` unescaped); keyword: upper-cased;
   * string: the contents (`''` unescaped); number: its source text; op: the operator as written
   * (`<>` stays `<>`); eof: ''.
   */
  readonly value: string;
  /** True for a double-quoted identifier: matched exactly and never a keyword. */
  readonly quoted: boolean;
  /** Offset of the first character, and one past the last, in the SQL text. */
  readonly pos: number;
  readonly end: number;
}

/**
 * Reserved words: never an unquoted identifier. Kept short (roughly the clause words plus the
 * operators spelled as words) because every entry is a column name users must quote. A few words
 * of unsupported syntax are here only so the parser can say "not supported" instead of reading
 * them as aliases.
 */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'ORDER', 'LIMIT', 'OFFSET',
  'AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE', 'IS', 'NULL', 'BETWEEN', 'TRUE', 'FALSE',
  'AS', 'ASC', 'DESC', 'DISTINCT',
  'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'QUALIFY',
  'JOIN', 'UNION', 'INTERSECT', 'EXCEPT', 'WITH',
]);

/** Longest first, so `<=` wins over `<`. */
const OPERATORS = ['<=', '>=', '<>', '!=', '||', '::', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',', ';', '.'] as const;

/** `line L, column C` (both 1-based) for an offset: messages are read by people, offsets by code. */
export function lineColumn(sql: string, pos: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(pos, sql.length);
  for (let i = 0; i < stop; i++) {
    if (sql.charCodeAt(i) === 10) { line++; lineStart = i + 1; }
  }
  return { line, column: pos - lineStart + 1 };
}

function at(sql: string, pos: number): string {
  const { line, column } = lineColumn(sql, pos);
  return `at line ${line}, column ${column}`;
}

/** A SHOAL_ERR_QUERY_PARSE error whose message ends with the line and column of `pos`. */
export function parseError(sql: string, pos: number, message: string): ShoalError {
  return new ShoalError('SHOAL_ERR_QUERY_PARSE', `${message} ${at(sql, pos)}`, { position: pos });
}

/** A SHOAL_ERR_QUERY_LIMIT error, same shape as parseError. */
export function limitError(sql: string, pos: number, message: string): ShoalError {
  return new ShoalError('SHOAL_ERR_QUERY_LIMIT', `${message} ${at(sql, pos)}`, { position: pos });
}

/** Source text cut short for a message, so a 50 KB string literal does not flood it. */
export function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** Source text quoted for a message. */
export function quoteText(text: string): string {
  return `'${shorten(text)}'`;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 36; // $ as in Postgres
// ASCII whitespace only: a no-break space pasted from a web page is reported, not silently eaten.
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const length = sql.length;
  let i = 0;
  while (i < length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) { i++; continue; }
    const start = i;

    // -- line comment
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      while (i < length && sql.charCodeAt(i) !== 10) i++;
      continue;
    }
    // /* block comment */ (not nested, as in DuckDB)
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) throw parseError(sql, start, 'unterminated /* comment starting');
      i = close + 2;
      continue;
    }

    if (isIdentStart(c)) {
      while (i < length && isIdentPart(sql.charCodeAt(i))) i++;
      const word = sql.slice(start, i);
      const upper = word.toUpperCase();
      tokens.push(KEYWORDS.has(upper)
        ? { kind: 'keyword', value: upper, quoted: false, pos: start, end: i }
        : { kind: 'ident', value: word, quoted: false, pos: start, end: i });
      continue;
    }

    if (c === 34 /* " */ || c === 39 /* ' */) {
      const quote = sql[i]!;
      let value = '';
      i++;
      for (;;) {
        const close = sql.indexOf(quote, i);
        if (close < 0) {
          const what = c === 34 ? 'quoted identifier' : 'string literal';
          throw parseError(sql, start, `unterminated ${what} ${shorten(sql.slice(start))} starting`);
        }
        value += sql.slice(i, close);
        i = close + 1;
        if (sql[i] !== quote) break;
        value += quote; // doubled quote is one literal quote
        i++;
      }
      if (c === 39) {
        tokens.push({ kind: 'string', value, quoted: false, pos: start, end: i });
      } else {
        if (value.length === 0) throw parseError(sql, start, 'empty quoted identifier ""');
        tokens.push({ kind: 'ident', value, quoted: true, pos: start, end: i });
      }
      continue;
    }

    if (isDigit(c) || (c === 46 /* . */ && isDigit(sql.charCodeAt(i + 1)))) {
      while (isDigit(sql.charCodeAt(i))) i++;
      if (sql.charCodeAt(i) === 46) {
        i++;
        while (isDigit(sql.charCodeAt(i))) i++;
      }
      const e = sql.charCodeAt(i);
      if (e === 101 || e === 69) {
        let j = i + 1;
        const sign = sql.charCodeAt(j);
        if (sign === 43 || sign === 45) j++;
        if (!isDigit(sql.charCodeAt(j))) {
          throw parseError(sql, start, `malformed number ${quoteText(sql.slice(start, j + 1))}: exponent has no digits`);
        }
        while (isDigit(sql.charCodeAt(j))) j++;
        i = j;
      }
      // `12abc` or `1.2.3` is a typo, not the number 12 followed by the alias abc.
      if (i < length && (isIdentPart(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) {
        let j = i;
        while (j < length && (isIdentPart(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++;
        throw parseError(sql, start, `malformed number ${quoteText(sql.slice(start, j))}`);
      }
      tokens.push({ kind: 'number', value: sql.slice(start, i), quoted: false, pos: start, end: i });
      continue;
    }

    const op = OPERATORS.find((o) => sql.startsWith(o, i));
    if (op !== undefined) {
      i += op.length;
      tokens.push({ kind: 'op', value: op, quoted: false, pos: start, end: i });
      continue;
    }

    const codePoint = sql.codePointAt(i)!;
    const char = String.fromCodePoint(codePoint);
    const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
    const hint = char === '"' ? '' : char === '|' ? " (string concatenation is '||')" : char === '`' ? ' (quote names with double quotes, strings with single quotes)' : '';
    throw parseError(sql, start, `unexpected character '${char}' (U+${hex})${hint}`);
  }
  tokens.push({ kind: 'eof', value: '', quoted: false, pos: length, end: length });
  return tokens;
}
