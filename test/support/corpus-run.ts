/**
 * Runs one corpus case against shoal and judges the answer with DuckDB as the reference:
 *
 * - `query` cases: shoal's rows must equal DuckDB's for the same SQL (or the case's `duckdb:`
 *   spelling), ordered when the SQL has ORDER BY, within tolerance, approximate columns within
 *   their stated tolerance. `SELECT *` columns are matched by name (a table's column order is
 *   the order fields were first seen, which DuckDB need not share).
 * - now(): shoal's clock reading is unknown but lies between the instants just before and after
 *   its query, so DuckDB runs with now() replaced by those instants (and their whole seconds, in
 *   case shoal truncates), and the case passes when shoal matches any of them.
 * - `rows: n` (sample) cases: min(n, matching rows) rows, each of them a row of the same query
 *   without its LIMIT (counted with multiplicity).
 * - `error:` cases: the code, the HTTP status the registry gives it, the position if stated, and
 *   the texts the message must contain (`message:`, case-insensitive) if stated.
 *
 * Not here: starting the server or loading data (the driver, corpus.test.ts).
 */
import { ERRORS } from '../../query/errors.js';
import { canonical, compareResults, show, type CompareOutcome } from './compare.js';
import type { CorpusCase } from './corpus.js';
import type { DuckDb, ResultSet } from './duckdb.js';
import { answerError, answerResult, type QueryAnswer } from './shoal-client.js';
import { hasOrderBy, isSelectStar, orderKeyColumns, stripLimit, substituteNow, usesNow } from './sql-text.js';

export interface CaseContext {
  readonly duck: DuckDb;
  readonly queryShoal: (sql: string) => Promise<QueryAnswer>;
  /** Clock in milliseconds (for now() bracketing); default Date.now. */
  readonly clockMs?: () => number;
}

export async function runCase(corpusCase: CorpusCase, ctx: CaseContext): Promise<CompareOutcome> {
  const clockMs = ctx.clockMs ?? Date.now;
  const beforeSeconds = clockMs() / 1000;
  const answer = await ctx.queryShoal(corpusCase.sql);
  const afterSeconds = clockMs() / 1000;

  if (corpusCase.error) return checkError(corpusCase, answer);
  const got = answerResult(answer);
  if ('problem' in got) {
    const error = answerError(answer);
    return fail(`shoal did not answer the query: ${error ? `${error.code}: ${error.message}` : got.problem}`);
  }
  if (corpusCase.rows !== undefined) return checkSample(corpusCase, got.result, ctx.duck);

  const duckSql = corpusCase.duckdbSql ?? corpusCase.sql;
  const nowCandidates = usesNow(duckSql) ? uniqueInstants([beforeSeconds, afterSeconds, Math.floor(beforeSeconds), Math.floor(afterSeconds)]) : [null];
  const ordered = corpusCase.ordered ?? hasOrderBy(corpusCase.sql);
  const orderKeys = ordered ? orderKeyColumns(corpusCase.sql) : null;
  let firstFailure: CompareOutcome | null = null;
  for (const nowSeconds of nowCandidates) {
    const expected = await ctx.duck.query(nowSeconds === null ? duckSql : substituteNow(duckSql, nowSeconds));
    const actual = isSelectStar(corpusCase.sql) ? alignColumnsByName(got.result, expected) : got.result;
    const outcome = compareResults(actual, expected, {
      ordered,
      approx: corpusCase.approx,
      ...(corpusCase.relTol !== undefined ? { relTol: corpusCase.relTol } : {}),
      ...(orderKeys ? { orderKeys } : {}),
    });
    if (outcome.ok) return outcome;
    firstFailure ??= outcome;
  }
  const nowNote = nowCandidates[0] === null ? '' : `\n(now() tried as ${nowCandidates.join(', ')})`;
  return fail(`${(firstFailure as { message: string }).message}${nowNote}\nduckdb sql: ${duckSql}`);
}

function checkError(corpusCase: CorpusCase, answer: QueryAnswer): CompareOutcome {
  const want = corpusCase.error as NonNullable<CorpusCase['error']>;
  const error = answerError(answer);
  if (answer.status < 400 || !error) {
    return fail(`expected error ${want.code}, got HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 500)}`);
  }
  if (error.code !== want.code) return fail(`expected error ${want.code}, got ${error.code}: ${error.message}`);
  const status = (ERRORS as Record<string, { status: number }>)[want.code]?.status;
  if (status !== undefined && answer.status !== status) return fail(`${want.code} came with HTTP ${answer.status}, the registry says ${status}`);
  if (want.position === 'any' && typeof error.position !== 'number') return fail(`${want.code} has no numeric position: ${JSON.stringify(error)}`);
  if (typeof want.position === 'number' && error.position !== want.position) {
    return fail(`${want.code} at position ${String(error.position)}, expected ${want.position}: ${error.message}\n  ${corpusCase.sql.replace(/\n/g, ' ')}\n  ${' '.repeat(want.position)}^`);
  }
  const missing = (corpusCase.messageIncludes ?? []).filter((text) => !String(error.message).toLowerCase().includes(text.toLowerCase()));
  if (missing.length > 0) return fail(`${want.code} message does not mention ${missing.map((text) => JSON.stringify(text)).join(', ')}: ${error.message}`);
  return { ok: true };
}

async function checkSample(corpusCase: CorpusCase, actual: ResultSet, duck: DuckDb): Promise<CompareOutcome> {
  const fullSql = stripLimit(corpusCase.sql);
  if (fullSql === null) return fail('a `rows:` case needs a trailing LIMIT n');
  const population = await samplePopulation(duck, fullSql);
  const want = Math.min(corpusCase.rows as number, population.rowCount);
  if (actual.rows.length !== want) return fail(`expected ${want} sample rows (LIMIT ${corpusCase.rows}, ${population.rowCount} matching), got ${actual.rows.length}`);
  const aligned = alignColumnsByName(actual, population);
  const names = (result: Pick<ResultSet, 'columns'>) => result.columns.map((c) => c.name.toLowerCase()).sort().join(', ');
  if (names(aligned) !== names(population)) return fail(`sample columns [${names(actual)}], expected [${names(population)}]`);
  const used = new Map<string, number>();
  for (const [rowIndex, row] of aligned.rows.entries()) {
    const key = sampleKey(row);
    const count = used.get(key) ?? 0;
    if (count >= (population.keyCounts.get(key) ?? 0)) return fail(`sample row ${rowIndex} is not a row of the data (or is repeated more often than in the data): ${show(row)}\ncolumns: ${aligned.columns.map((c) => c.name).join(', ')}`);
    used.set(key, count + 1);
  }
  return { ok: true };
}

interface Population { readonly columns: ResultSet['columns']; readonly rowCount: number; readonly keyCounts: ReadonlyMap<string, number> }
/** Sample populations per DuckDB instance and SQL: the data never changes once loaded. */
const populations = new WeakMap<DuckDb, Map<string, Population>>();

async function samplePopulation(duck: DuckDb, sql: string): Promise<Population> {
  let bySql = populations.get(duck);
  if (!bySql) populations.set(duck, (bySql = new Map()));
  const cached = bySql.get(sql);
  if (cached) return cached;
  const result = await duck.query(sql);
  const keyCounts = new Map<string, number>();
  for (const row of result.rows) {
    const key = sampleKey(row);
    keyCounts.set(key, (keyCounts.get(key) ?? 0) + 1);
  }
  const population = { columns: result.columns, rowCount: result.rows.length, keyCounts };
  bySql.set(sql, population);
  return population;
}

/** Reorders `actual`'s columns to `expected`'s order when both have the same names. */
export function alignColumnsByName(actual: ResultSet, expected: Pick<ResultSet, 'columns'>): ResultSet {
  const index = new Map(actual.columns.map((column, position) => [column.name.toLowerCase(), position]));
  if (index.size !== actual.columns.length || expected.columns.length !== actual.columns.length) return actual;
  const order = expected.columns.map((column) => index.get(column.name.toLowerCase()));
  if (order.some((position) => position === undefined)) return actual;
  const positions = order as number[];
  return {
    columns: positions.map((position) => actual.columns[position] as ResultSet['columns'][number]),
    rows: actual.rows.map((row) => positions.map((position) => row[position])),
  };
}

/** A row's identity for sample membership: floats to 12 significant digits, -0 as 0. */
function sampleKey(row: readonly unknown[]): string {
  const round = (value: unknown): unknown => {
    if (typeof value === 'number' && Number.isFinite(value)) return Number(value.toPrecision(12));
    if (Array.isArray(value)) return value.map(round);
    return value;
  };
  return JSON.stringify(row.map((value) => canonical(round(value))));
}

function uniqueInstants(instants: number[]): number[] {
  return [...new Set(instants)];
}

function fail(message: string): CompareOutcome {
  return { ok: false, message };
}
