/**
 * Result formatting for the CLI: `formatTable`, aligned for people, and `formatCsv`, RFC 4180 for
 * DuckDB, spreadsheets and scripts. `--format json` is the HTTP answer exactly as the server sent
 * it (docs/api.md), so it does not pass through here: `time` stays unix seconds there, as the API
 * promises, and the column's type says it is a time.
 *
 * Numbers never lose digits. A safe integer prints as its digits. Any other number prints as the
 * shortest decimal that reads back as the same double (ECMAScript's Number#toString, the same
 * digits JSON carries): plain for 1e-6 <= |v| < 1e16, exponent form (`1.5e-7`, `1e+16`) outside.
 * Six zeros after the point are still read at a glance. From 1e16 on (just past 2^53) a double no
 * longer holds every integer, so plain digits would end in zeros that are not the value's; DuckDB
 * switches to exponent form at 1e16 too. -0 prints as 0. An int beyond 2^53, which the API sends as
 * a string of its digits, prints as those digits. Non-finite floats, which the API sends as the
 * strings "NaN", "Infinity" and "-Infinity", print as DuckDB prints and writes them: `nan`, `inf`
 * and `-inf`. DuckDB's read_csv, pandas and Python's float() all read them back.
 *
 * Times (`time` columns, unix seconds) print as ISO-8601 UTC, like `2024-06-01T12:00:00Z`. The
 * fraction is shown only when there is one, rounded to the microsecond (the resolution of shoal and
 * of DuckDB), without trailing zeros: `2024-06-01T12:00:00.5Z`. DuckDB's read_csv reads the column
 * as TIMESTAMPTZ, the instant; with a declared TIMESTAMP type it gets the same UTC wall clock.
 *
 * Table: numbers are right-aligned. Widths are terminal display columns, as measured by
 * string-width: CJK and emoji take 2, combining marks 0, East Asian "ambiguous" characters 1
 * (Unicode's advice when the terminal is unknown). A cell is at most CELL_WIDTH_MAX columns wide.
 * A longer one is cut between grapheme clusters, never inside one (a ZWJ emoji, a letter with its
 * accents), and ends in `…`. Control characters (C0 and C1, which includes \r \n \t and ESC) print
 * as spaces, because a terminal would act on them and break the alignment. NULL prints as `NULL`
 * and a set as `[a, b]`.
 *
 * CSV: NULL is an empty field and the empty string is `""`, as DuckDB's COPY writes them (its
 * read_csv tells the two apart with allow_quoted_nulls=false). A set is its JSON array text, and
 * booleans are true/false.
 *
 * Not here: the coverage line and row count (cmd-query.ts), status layouts (cmd-status.ts).
 */
import stringWidth from 'string-width';

type Cell = number | string | boolean | null | readonly string[];
export interface ResultLike { columns: { name: string; type: string }[]; rows: Cell[][] }

/** Widest table cell, in display columns. Wider text is cut so one long string (a URL, a stack
 * trace) cannot push every other column off the screen. */
const CELL_WIDTH_MAX = 60;
/** Numbers print in plain notation for PLAIN_MIN <= |v| < PLAIN_MAX (see the header for why). */
const PLAIN_MIN = 1e-6;
const PLAIN_MAX = 1e16;
const MICROS_PER_SECOND = 1_000_000;
/** How the API spells non-finite floats (docs/api.md), mapped to how DuckDB spells them. */
const NON_FINITE = new Map([['NaN', 'nan'], ['Infinity', 'inf'], ['-Infinity', '-inf']]);
const ELLIPSIS = '…';
const ELLIPSIS_WIDTH = stringWidth(ELLIPSIS);
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f]/g;
const LONE_SURROGATE = /\p{Cs}/gu;
const graphemes = new Intl.Segmenter();

/** A number as the table and CSV print it: every digit of the double, plain or exponent form. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Number.isSafeInteger(v)) return String(v); // also -0 -> "0"
  const magnitude = Math.abs(v);
  return magnitude >= PLAIN_MIN && magnitude < PLAIN_MAX ? String(v) : v.toExponential();
}

/** Unix seconds as ISO-8601 UTC: a fraction only when there is one, to the microsecond. */
export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return formatNumber(seconds);
  // seconds - floor(seconds) is exact in floating point; only the scaling to micros rounds.
  let whole = Math.floor(seconds);
  let micros = Math.round((seconds - whole) * MICROS_PER_SECOND);
  if (micros === MICROS_PER_SECOND) { whole += 1; micros = 0; }
  const date = new Date(whole * 1000);
  if (Number.isNaN(date.getTime())) return formatNumber(seconds); // beyond Date's +-275,760 years
  const fraction = micros === 0 ? '' : '.' + String(micros).padStart(6, '0').replace(/0+$/, '');
  return date.toISOString().slice(0, -'.000Z'.length) + fraction + 'Z';
}

/** The text of a scalar cell, shared by the table and CSV. */
function scalarText(v: number | string | boolean, type: string): string {
  if (typeof v === 'number') return type === 'time' ? formatTime(v) : formatNumber(v);
  if (typeof v === 'string' && type === 'float') return NON_FINITE.get(v) ?? v;
  return String(v);
}

interface Measured { text: string; width: number }

/** Text safe to put on one terminal line, with its display width. */
function measure(s: string): Measured {
  const text = s.replace(UNPRINTABLE, ' ').replace(LONE_SURROGATE, '\uFFFD');
  return { text, width: stringWidth(text) };
}

/** The longest prefix that fits `widthMax` columns with the ellipsis, cut between graphemes. */
function cut(text: string, widthMax: number): Measured {
  let out = '';
  let width = 0;
  for (const { segment } of graphemes.segment(text)) {
    const segmentWidth = stringWidth(segment);
    if (width + segmentWidth + ELLIPSIS_WIDTH > widthMax) break;
    out += segment;
    width += segmentWidth;
  }
  return { text: out + ELLIPSIS, width: width + ELLIPSIS_WIDTH };
}

function tableText(v: Cell | undefined, type: string): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return `[${v.join(', ')}]`;
  return scalarText(v, type);
}

export function formatTable(r: ResultLike): string {
  const header = r.columns.map((c) => measure(c.name));
  const body = r.rows.map((row) => r.columns.map((c, i) => measure(tableText(row[i], c.type))));
  const widths = header.map((h) => Math.min(CELL_WIDTH_MAX, h.width));
  for (const cells of body) {
    for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, Math.min(CELL_WIDTH_MAX, cells[i]!.width));
  }
  const numeric = r.columns.map((c) => c.type === 'int' || c.type === 'float');
  const pad = (cell: Measured, i: number) => {
    const fitted = cell.width > widths[i]! ? cut(cell.text, widths[i]!) : cell;
    const fill = ' '.repeat(widths[i]! - fitted.width);
    return numeric[i] ? fill + fitted.text : fitted.text + fill;
  };
  const line = (cells: Measured[]) => cells.map(pad).join(' | ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('-+-')];
  for (const cells of body) out.push(line(cells));
  return out.join('\n');
}

function csvQuote(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvCell(v: Cell | undefined, type: string): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return csvQuote(JSON.stringify(v));
  const s = scalarText(v, type);
  return s === '' ? '""' : csvQuote(s);
}

export function formatCsv(r: ResultLike): string {
  const out = [r.columns.map((c) => csvQuote(c.name)).join(',')];
  for (const row of r.rows) out.push(r.columns.map((c, i) => csvCell(row[i], c.type)).join(','));
  return out.join('\n');
}
