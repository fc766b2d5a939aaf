/**
 * Reads the query corpus (`test/corpus/*.corpus`, format in test/corpus/README.md) into cases.
 *
 * A case starts at a line `query` and runs to the next blank line. Its lines are SQL, or
 * directives `word: value` (duckdb, approx, tolerance, ordered, rows, error, position, message,
 * duckdb-accepts). The `#` comment lines just before a case name it. Malformed files throw with
 * the file and line, so a typo in the corpus fails loudly instead of silently testing less.
 *
 * Not here: running cases (corpus-run.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CORPUS_DIR = fileURLToPath(new URL('../corpus', import.meta.url));

export interface ExpectedError {
  readonly code: string;
  /** Exact 0-based character offset, 'any' (must be present), or undefined (not checked). */
  readonly position?: number | 'any';
}

export interface CorpusCase {
  readonly file: string;
  /** 1-based line of the `query` header. */
  readonly line: number;
  /** The comment above the case (first line), or the SQL when there is none. */
  readonly name: string;
  readonly sql: string;
  /** DuckDB's spelling of the same query, when it differs. */
  readonly duckdbSql?: string;
  /** Per-column relative tolerance for approximate aggregates (0-based column index). */
  readonly approx: Readonly<Record<number, number>>;
  /** Relative tolerance for all other numbers (default: the comparator's). */
  readonly relTol?: number;
  /** Explicit ordered/unordered comparison; default: ordered when the SQL has ORDER BY. */
  readonly ordered?: boolean;
  /** Sample query: expect exactly this many rows, each a row of the data. */
  readonly rows?: number;
  /** The query must fail with this code. */
  readonly error?: ExpectedError;
  /** With `error`: texts the error message must contain (case-insensitive), e.g. the suggested fix. */
  readonly messageIncludes?: readonly string[];
  /** Why DuckDB accepts this query although shoal must reject it (error cases only). */
  readonly duckdbAccepts?: string;
}

const DIRECTIVE = /^(duckdb|approx|tolerance|ordered|rows|error|position|message|duckdb-accepts):\s*(.*)$/;

export class CorpusFormatError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'CorpusFormatError';
  }
}

interface Draft {
  line: number;
  comments: string[];
  sql: string[];
  duckdb: string[] | null;
  approx: Record<number, number>;
  relTol?: number;
  ordered?: boolean;
  rows?: number;
  errorCode?: string;
  position?: number | 'any';
  messages: string[];
  duckdbAccepts?: string;
}

/** Parses one corpus file's text. `file` is used in names and error messages. */
export function parseCorpus(text: string, file: string): CorpusCase[] {
  const cases: CorpusCase[] = [];
  const lines = text.split(/\r?\n/);
  let comments: string[] = [];
  let draft: Draft | null = null;
  /** Where SQL lines go: the case's SQL or an open `duckdb:` block. */
  let target: 'sql' | 'duckdb' = 'sql';
  /** SQL lines come first; after a directive, only a `duckdb:` block takes SQL. */
  let sawDirective = false;

  const finish = () => {
    if (draft) cases.push(finishCase(draft, file));
    draft = null;
  };

  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.trimEnd();
    if (line.trim() === '') {
      finish();
      comments = [];
      return;
    }
    if (line.startsWith('#')) {
      if (draft) throw new CorpusFormatError(file, lineNumber, 'comment inside a case (end the case with a blank line first)');
      comments.push(line.replace(/^#+\s?/, ''));
      return;
    }
    if (line === 'query') {
      if (draft) throw new CorpusFormatError(file, lineNumber, '`query` inside a case (separate cases with a blank line)');
      draft = { line: lineNumber, comments, sql: [], duckdb: null, approx: {}, messages: [] };
      target = 'sql';
      sawDirective = false;
      return;
    }
    if (!draft) throw new CorpusFormatError(file, lineNumber, `text outside a case: ${JSON.stringify(line)} (a case starts with a line \`query\`)`);
    const current: Draft = draft;
    const directive = DIRECTIVE.exec(line);
    const unknown = /^([a-z][a-z-]*):(\s|$)/.exec(line);
    if (!directive && unknown) throw new CorpusFormatError(file, lineNumber, `unknown directive ${unknown[1]}`);
    if (!directive) {
      if (target === 'duckdb') (current.duckdb as string[]).push(line);
      else if (sawDirective) throw new CorpusFormatError(file, lineNumber, `SQL after a directive: ${JSON.stringify(line)} (directives follow the SQL; a multi-line DuckDB spelling goes under \`duckdb:\`)`);
      else current.sql.push(line);
      return;
    }
    const [, word, value] = directive as unknown as [string, string, string];
    target = 'sql';
    sawDirective = true;
    applyDirective(current, word, value.trim(), file, lineNumber, () => {
      target = 'duckdb';
    });
  });
  finish();
  return cases;
}

function applyDirective(draft: Draft, word: string, value: string, file: string, line: number, openDuckdbBlock: () => void): void {
  const bad = (message: string) => new CorpusFormatError(file, line, message);
  const once = (present: boolean) => {
    if (present) throw bad(`\`${word}:\` given twice`);
  };
  switch (word) {
    case 'duckdb':
      once(draft.duckdb !== null);
      draft.duckdb = value ? [value] : [];
      if (!value) openDuckdbBlock();
      return;
    case 'approx': {
      const match = /^(\d+)\s+([0-9.eE+-]+)$/.exec(value);
      const relTol = match ? Number(match[2]) : NaN;
      if (!match || !(relTol > 0 && relTol < 1)) throw bad('expected `approx: <column index> <relative tolerance in (0, 1)>`');
      draft.approx[Number(match[1])] = relTol;
      return;
    }
    case 'tolerance': {
      once(draft.relTol !== undefined);
      const relTol = Number(value);
      if (!(relTol >= 0 && relTol < 1)) throw bad('expected `tolerance: <relative tolerance in [0, 1)>`');
      draft.relTol = relTol;
      return;
    }
    case 'ordered':
      once(draft.ordered !== undefined);
      if (value !== 'yes' && value !== 'no') throw bad('expected `ordered: yes` or `ordered: no`');
      draft.ordered = value === 'yes';
      return;
    case 'rows':
      once(draft.rows !== undefined);
      if (!/^\d+$/.test(value)) throw bad('expected `rows: <count>`');
      draft.rows = Number(value);
      return;
    case 'error':
      once(draft.errorCode !== undefined);
      if (!/^SHOAL_ERR_[A-Z_]+$/.test(value)) throw bad('expected `error: SHOAL_ERR_...`');
      draft.errorCode = value;
      return;
    case 'position':
      once(draft.position !== undefined);
      if (value !== 'any' && !/^\d+$/.test(value)) throw bad('expected `position: <0-based offset>` or `position: any`');
      draft.position = value === 'any' ? 'any' : Number(value);
      return;
    case 'message':
      if (!value) throw bad('`message:` needs the text the error message must contain');
      draft.messages.push(value);
      return;
    case 'duckdb-accepts':
      once(draft.duckdbAccepts !== undefined);
      if (!value) throw bad('`duckdb-accepts:` needs a reason');
      draft.duckdbAccepts = value;
      return;
    default:
      throw bad(`unknown directive ${word}`);
  }
}

function finishCase(draft: Draft, file: string): CorpusCase {
  const bad = (message: string) => new CorpusFormatError(file, draft.line, message);
  const sql = draft.sql.join('\n').trim();
  if (!sql) throw bad('case without SQL');
  const duckdbSql = draft.duckdb?.join('\n').trim();
  if (draft.duckdb !== null && !duckdbSql) throw bad('`duckdb:` without SQL');
  const isError = draft.errorCode !== undefined;
  if (isError && (duckdbSql !== undefined || Object.keys(draft.approx).length > 0 || draft.rows !== undefined || draft.relTol !== undefined || draft.ordered !== undefined)) {
    throw bad('an `error:` case takes only `position:`, `message:` and `duckdb-accepts:`');
  }
  if (!isError && (draft.position !== undefined || draft.duckdbAccepts !== undefined || draft.messages.length > 0)) throw bad('`position:`, `message:` and `duckdb-accepts:` need `error:`');
  if (draft.rows !== undefined && (Object.keys(draft.approx).length > 0 || draft.ordered !== undefined)) throw bad('a `rows:` case takes no `approx:` or `ordered:`');
  const name = draft.comments.find((comment) => comment.trim().length > 0) ?? sql.replace(/\s+/g, ' ');
  return {
    file,
    line: draft.line,
    name: name.trim(),
    sql,
    ...(duckdbSql !== undefined ? { duckdbSql } : {}),
    approx: draft.approx,
    ...(draft.relTol !== undefined ? { relTol: draft.relTol } : {}),
    ...(draft.ordered !== undefined ? { ordered: draft.ordered } : {}),
    ...(draft.rows !== undefined ? { rows: draft.rows } : {}),
    ...(isError ? { error: { code: draft.errorCode as string, ...(draft.position !== undefined ? { position: draft.position } : {}) } } : {}),
    ...(draft.messages.length > 0 ? { messageIncludes: draft.messages } : {}),
    ...(draft.duckdbAccepts !== undefined ? { duckdbAccepts: draft.duckdbAccepts } : {}),
  };
}

/** Every case of every `*.corpus` file in `dir`, files in name order. */
export function loadCorpus(dir: string = CORPUS_DIR): CorpusCase[] {
  const files = readdirSync(dir).filter((name) => name.endsWith('.corpus')).sort();
  return files.flatMap((name) => parseCorpus(readFileSync(join(dir, name), 'utf8'), basename(name)));
}

/** A test name: file, line and description, e.g. `filters.corpus:12 status range`. */
export function caseTitle(corpusCase: CorpusCase): string {
  return `${corpusCase.file}:${corpusCase.line} ${corpusCase.name}`;
}
