/**
 * A stand-in for shoal's `POST /v1/query`, answered by DuckDB, for testing the harness itself:
 * run every corpus case through the real driver logic (corpus-run.ts) against a "server" that is
 * right by construction (all cases must pass), or one that plants a fault (cases must fail).
 *
 * It answers the case's DuckDB spelling when the SQL is a corpus case, and goes through a JSON
 * round trip so values look as they would over HTTP (NaN becomes null, and so on).
 * Not a model of shoal: it knows nothing of coverage, limits or errors.
 */
import type { CorpusCase } from './corpus.js';
import type { DuckDb, ResultSet } from './duckdb.js';
import type { QueryAnswer } from './shoal-client.js';

/** Changes a correct result into a wrong one; returns null when it cannot (e.g. no rows). */
export type Fault = (result: ResultSet) => ResultSet | null;

export function fakeShoal(duck: DuckDb, cases: readonly CorpusCase[], fault?: Fault): (sql: string) => Promise<QueryAnswer> {
  const spelling = new Map(cases.map((corpusCase) => [corpusCase.sql, corpusCase.duckdbSql ?? corpusCase.sql]));
  return async (sql) => {
    let result: ResultSet;
    try {
      result = await duck.query(spelling.get(sql) ?? sql);
    } catch (error) {
      return { status: 400, body: { error: { code: 'SHOAL_ERR_QUERY_PARSE', message: (error as Error).message } } };
    }
    const changed = fault ? fault(result) : result;
    const body = JSON.parse(JSON.stringify(changed ?? result)) as unknown;
    return { status: 200, body };
  };
}

/** Planted faults: each makes a correct answer wrong in one way a real engine could. */
export const FAULTS: Readonly<Record<string, Fault>> = {
  /** The first numeric cell of the last row is off by half its size plus one: beyond any
   * tolerance, approximate columns' included. */
  changedNumber: (result) => {
    const rowIndex = result.rows.length - 1;
    const row = result.rows[rowIndex];
    const column = row?.findIndex((value) => typeof value === 'number' && Number.isFinite(value)) ?? -1;
    if (!row || column < 0) return null;
    const value = row[column] as number;
    const rows = result.rows.map((r, index) => (index === rowIndex ? r.map((v, c) => (c === column ? value + 1 + Math.round(Math.abs(value) / 2) : v)) : r));
    return { columns: result.columns, rows };
  },
  /** The last row is missing. */
  missingRow: (result) => (result.rows.length === 0 ? null : { columns: result.columns, rows: result.rows.slice(0, -1) }),
  /** An extra copy of the first row. */
  extraRow: (result) => (result.rows.length === 0 ? null : { columns: result.columns, rows: [...result.rows, result.rows[0] as unknown[]] }),
  /** The first two rows swapped (a fault only when the query is ordered and they differ). */
  swappedRows: (result) => (result.rows.length < 2 ? null : { columns: result.columns, rows: [result.rows[1] as unknown[], result.rows[0] as unknown[], ...result.rows.slice(2)] }),
};
