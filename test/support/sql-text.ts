/**
 * Small textual helpers over the corpus's SQL: split the select list and ORDER BY at top-level
 * commas, find ORDER BY keys among the output columns, strip a trailing LIMIT, and replace now()
 * by a fixed instant. They understand quotes and parentheses, nothing more: clauses are found at
 * the top level only (outside parentheses), so a subquery in FROM, a WITH ahead of the SELECT or an
 * OVER (... ORDER BY ...) do not confuse them, and a helper that cannot tell returns null.
 *
 * Not a SQL parser, and not shoal's: the engine's parser lives in query/.
 */

/** The text with string literals and quoted identifiers blanked out (same length), for keyword search. */
export function maskQuoted(sql: string): string {
  let out = '';
  let quote: string | null = null;
  for (let index = 0; index < sql.length; index++) {
    const char = sql[index] as string;
    if (quote) {
      if (char === quote) {
        if (sql[index + 1] === quote) {
          out += '  ';
          index++;
          continue;
        }
        quote = null;
        out += char;
      } else out += ' ';
    } else {
      if (char === "'" || char === '"') quote = char;
      out += char;
    }
  }
  return out;
}

/** Splits at commas outside parentheses and quotes; parts are trimmed. */
export function splitTopLevel(text: string): string[] {
  const masked = maskQuoted(text);
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < masked.length; index++) {
    const char = masked[index];
    if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (char === ',' && depth === 0) {
      parts.push(text.slice(start, index).trim());
      start = index + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts.filter((part) => part.length > 0);
}

/** Index of a keyword (regex source, case-insensitive) outside quotes and parentheses, or -1. */
function findClause(sql: string, keyword: string): number {
  const masked = maskQuoted(sql);
  const pattern = new RegExp(`\\b${keyword}\\b`, 'gi');
  for (let match = pattern.exec(masked); match; match = pattern.exec(masked)) {
    let depth = 0;
    for (let index = 0; index < match.index; index++) {
      if (masked[index] === '(') depth++;
      else if (masked[index] === ')') depth--;
    }
    if (depth === 0) return match.index;
  }
  return -1;
}

export function hasOrderBy(sql: string): boolean {
  return findClause(sql, 'order\\s+by') >= 0;
}

export function isSelectStar(sql: string): boolean {
  return /^\s*select\s+\*/i.test(sql);
}

export function usesNow(sql: string): boolean {
  return /\bnow\s*\(\s*\)/i.test(maskQuoted(sql));
}

/** Replaces now() by a TIMESTAMPTZ literal instant (unix seconds, microsecond precision). */
export function substituteNow(sql: string, nowSeconds: number): string {
  const masked = maskQuoted(sql);
  const pattern = /\bnow\s*\(\s*\)/gi;
  let out = '';
  let last = 0;
  for (let match = pattern.exec(masked); match; match = pattern.exec(masked)) {
    out += sql.slice(last, match.index) + `to_timestamp(${nowSeconds.toFixed(6)})`;
    last = match.index + match[0].length;
  }
  return out + sql.slice(last);
}

/** The SQL without a trailing `LIMIT n`, or null when it has none. */
export function stripLimit(sql: string): string | null {
  const index = findClause(sql, 'limit');
  if (index < 0) return null;
  if (!/^limit\s+\d+\s*;?\s*$/i.test(sql.slice(index))) return null;
  return sql.slice(0, index).trimEnd();
}

/** The SQL with its trailing `LIMIT n [OFFSET m]` replaced by `LIMIT limit [OFFSET m]`, or null when it has none. */
export function replaceLimit(sql: string, limit: number): string | null {
  const index = findClause(sql, 'limit');
  if (index < 0) return null;
  const match = /^limit\s+\d+(\s+offset\s+\d+)?\s*;?\s*$/i.exec(sql.slice(index));
  if (!match) return null;
  return `${sql.slice(0, index).trimEnd()} LIMIT ${limit}${match[1] ?? ''}`;
}

/** The trailing `LIMIT n [OFFSET m]` of the SQL, or null when it has none. */
export function trailingLimit(sql: string): { readonly limit: number; readonly offset: number } | null {
  const index = findClause(sql, 'limit');
  if (index < 0) return null;
  const match = /^limit\s+(\d+)(?:\s+offset\s+(\d+))?\s*;?\s*$/i.exec(sql.slice(index));
  return match ? { limit: Number(match[1]), offset: Number(match[2] ?? 0) } : null;
}

export interface SelectItemText { readonly expr: string; readonly alias: string | null }

/** The select list between SELECT and FROM, each item split into expression and alias. */
export function selectItems(sql: string): SelectItemText[] | null {
  const select = findClause(sql, 'select');
  const from = findClause(sql, 'from');
  if (select < 0 || from < 0 || from < select) return null;
  const list = sql.slice(select + 'select'.length, from).replace(/^\s*distinct\s/i, ' ');
  return splitTopLevel(list).map((item) => {
    const match = /^(.*?)\s+as\s+("?)([A-Za-z_][A-Za-z0-9_]*)\2$/is.exec(item);
    return match ? { expr: (match[1] as string).trim(), alias: match[3] as string } : { expr: item, alias: null };
  });
}

/** The ORDER BY items (expression text without ASC/DESC and NULLS FIRST/LAST), or null when there is no ORDER BY. */
export function orderByItems(sql: string): string[] | null {
  const orderBy = findClause(sql, 'order\\s+by');
  if (orderBy < 0) return null;
  const rest = sql.slice(orderBy).replace(/^order\s+by/i, '');
  const ends = [findClause(rest, 'limit'), findClause(rest, 'offset')].filter((index) => index >= 0);
  const clause = ends.length > 0 ? rest.slice(0, Math.min(...ends)) : rest;
  return splitTopLevel(clause).map((item) => item.replace(/(\s+(asc|desc))?(\s+nulls\s+(first|last))?\s*$/i, '').trim());
}

/**
 * 0-based output columns of the ORDER BY keys: ordinals, aliases, or expressions written exactly
 * as in the select list (ignoring case and spaces). Null when a key is not an output column.
 */
export function orderKeyColumns(sql: string): number[] | null {
  const keys = orderByItems(sql);
  const items = selectItems(sql);
  if (!keys || !items || items.some((item) => item.expr === '*')) return null;
  const normal = (text: string) => text.replace(/\s+/g, '').toLowerCase();
  const columns: number[] = [];
  for (const key of keys) {
    let column = -1;
    if (/^\d+$/.test(key)) column = Number(key) - 1;
    else {
      const unquoted = key.replace(/^"(.*)"$/, '$1');
      column = items.findIndex((item) => item.alias !== null && item.alias.toLowerCase() === unquoted.toLowerCase());
      if (column < 0) column = items.findIndex((item) => normal(item.expr) === normal(key));
    }
    if (column < 0 || column >= items.length) return null;
    columns.push(column);
  }
  return columns;
}
