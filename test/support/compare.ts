/**
 * Compares a shoal result with the reference (DuckDB) result and, on mismatch, says how in a few
 * readable lines (the first differing rows, both sides).
 *
 * - Without ORDER BY, rows are compared as multisets. With ORDER BY they are compared in order;
 *   when the sort-key columns are known (`orderKeys`), rows whose keys tie (within the numeric
 *   tolerance) may come in any order, so the key sequence is compared in order and rows are
 *   compared as multisets within each tie.
 * - Numbers compare within a tolerance: float sums differ in the last bits with summation order
 *   (default relTol 1e-9). Approximate aggregates (HyperLogLog, sketches) get their own stated
 *   relative tolerance per column.
 * - A reference value that JSON cannot carry (NaN, +-Infinity) matches null or its own spelling.
 *
 * Not here: producing either result, or deciding which query is ordered (corpus-run.ts).
 */
import type { ResultSet } from './duckdb.js';

export interface CompareOptions {
  /** The query has ORDER BY: compare in order. */
  readonly ordered: boolean;
  /** Relative tolerance for numbers (default 1e-9). */
  readonly relTol?: number;
  /** Absolute tolerance for numbers near zero (default 1e-9). */
  readonly absTol?: number;
  /** Per-column relative tolerance for approximate aggregates, by 0-based column index. */
  readonly approx?: Readonly<Record<number, number>>;
  /** Per-column absolute tolerance (a float sum's rounding bound), by 0-based column index; replaces absTol there when larger. */
  readonly absApprox?: Readonly<Record<number, number>>;
  /** 0-based indices of the ORDER BY key columns, when they are all in the output. */
  readonly orderKeys?: readonly number[];
  /** Compare column names where the reference name is a plain identifier (default true). */
  readonly checkNames?: boolean;
  /** Labels used in messages (default 'shoal' and 'duckdb'). */
  readonly labels?: readonly [string, string];
}

export type CompareOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

type Row = readonly unknown[];

const DIFF_ROWS_SHOWN = 5;
/** Greedy multiset matching is quadratic within a bucket; past this, report the sorted diff. */
const GREEDY_BUCKET_ROWS_MAX = 20_000;
const EXACT_TYPE = /^(VARCHAR|BOOLEAN|(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?)|TIMESTAMP.*|DATE|.*\[\])$/;

export function compareResults(actual: ResultSet, expected: ResultSet, opts: CompareOptions): CompareOutcome {
  const [actualLabel, expectedLabel] = opts.labels ?? ['shoal', 'duckdb'];
  const header = () => `columns: ${actualLabel} [${actual.columns.map((c) => c.name).join(', ')}], ${expectedLabel} [${expected.columns.map((c) => c.name).join(', ')}]`;

  if (actual.columns.length !== expected.columns.length) {
    return fail(`column count differs: ${actualLabel} ${actual.columns.length}, ${expectedLabel} ${expected.columns.length}`, header());
  }
  if (opts.checkNames ?? true) {
    for (let index = 0; index < expected.columns.length; index++) {
      const want = (expected.columns[index] as { name: string }).name;
      const got = (actual.columns[index] as { name: string }).name;
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(want) && want.toLowerCase() !== String(got).toLowerCase()) {
        return fail(`column ${index} is named ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`, header());
      }
    }
  }
  for (const [label, rows] of [[actualLabel, actual.rows], [expectedLabel, expected.rows]] as const) {
    const bad = rows.findIndex((row) => !Array.isArray(row) || row.length !== expected.columns.length);
    if (bad >= 0) return fail(`${label} row ${bad} is not an array of ${expected.columns.length} values: ${show(rows[bad])}`, header());
  }

  const cell = new CellComparer(opts);
  const rowsEqual = (a: Row, b: Row) => a.every((value, column) => cell.equal(value, b[column], column));
  const countLine = `rows: ${actualLabel} ${actual.rows.length}, ${expectedLabel} ${expected.rows.length}`;

  if (opts.ordered) {
    const keys = opts.orderKeys;
    if (!keys || keys.length === 0) {
      const diffs: string[] = [];
      const rowCount = Math.max(actual.rows.length, expected.rows.length);
      for (let rowIndex = 0; rowIndex < rowCount && diffs.length < DIFF_ROWS_SHOWN; rowIndex++) {
        const a = actual.rows[rowIndex];
        const b = expected.rows[rowIndex];
        if (a === undefined || b === undefined || !rowsEqual(a, b)) {
          diffs.push(`  row ${rowIndex}: ${actualLabel} ${a === undefined ? '(none)' : show(a)}\n  ${' '.repeat(String(rowIndex).length + 6)}${expectedLabel} ${b === undefined ? '(none)' : show(b)}`);
        }
      }
      if (diffs.length === 0) return { ok: true };
      return fail(`ordered rows differ (${countLine})`, header(), ...diffs);
    }
    if (actual.rows.length !== expected.rows.length) return fail(`row count differs (${countLine})`, header(), ...sideBySide(actual.rows, expected.rows, actualLabel, expectedLabel));
    // Sort-key sequence in order, then multisets within runs of equal keys.
    for (let rowIndex = 0; rowIndex < expected.rows.length; rowIndex++) {
      const a = actual.rows[rowIndex] as Row;
      const b = expected.rows[rowIndex] as Row;
      if (!keys.every((column) => cell.equal(a[column], b[column], column))) {
        return fail(`order differs at row ${rowIndex} (sort keys: columns ${keys.join(', ')})`, header(), `  ${actualLabel} ${show(a)}`, `  ${expectedLabel} ${show(b)}`);
      }
    }
    let runStart = 0;
    while (runStart < expected.rows.length) {
      // A run is the rows whose keys tie within the tolerance: two float means a few ulps apart
      // (summation order) may come in either order, as exactly equal ones may.
      const first = expected.rows[runStart] as Row;
      let runEnd = runStart + 1;
      while (runEnd < expected.rows.length && keys.every((column) => cell.equal((expected.rows[runEnd] as Row)[column], first[column], column))) runEnd++;
      const outcome = compareMultiset(actual.rows.slice(runStart, runEnd), expected.rows.slice(runStart, runEnd), cell, expected, opts, actualLabel, expectedLabel);
      if (!outcome.ok) return fail(`rows ${runStart}..${runEnd - 1} (equal sort keys) differ`, header(), outcome.message);
      runStart = runEnd;
    }
    return { ok: true };
  }

  const outcome = compareMultiset(actual.rows, expected.rows, cell, expected, opts, actualLabel, expectedLabel);
  return outcome.ok ? outcome : fail(`rows differ as multisets (${countLine})`, header(), outcome.message);
}

/** Compares two row lists as multisets: sort both, compare pairwise, then match greedily. */
function compareMultiset(actualRows: readonly Row[], expectedRows: readonly Row[], cell: CellComparer, expected: ResultSet, opts: CompareOptions, actualLabel: string, expectedLabel: string): CompareOutcome {
  const columnCount = expected.columns.length;
  const exactColumns: number[] = [];
  const floatColumns: number[] = [];
  for (let column = 0; column < columnCount; column++) {
    const approx = opts.approx?.[column] !== undefined || opts.absApprox?.[column] !== undefined;
    const type = (expected.columns[column] as { type: string }).type ?? '';
    const exact = type ? EXACT_TYPE.test(type) : expectedRows.every((row) => typeof row[column] !== 'number' || Number.isInteger(row[column]));
    (exact && !approx ? exactColumns : floatColumns).push(column);
  }
  const sortOrder = [...exactColumns, ...floatColumns];
  const byKey = (a: Row, b: Row) => {
    for (const column of sortOrder) {
      const order = compareValues(a[column], b[column]);
      if (order !== 0) return order;
    }
    return 0;
  };
  const sortedActual = [...actualRows].sort(byKey);
  const sortedExpected = [...expectedRows].sort(byKey);
  const rowsEqual = (a: Row, b: Row) => a.every((value, column) => cell.equal(value, b[column], column));
  if (sortedActual.length === sortedExpected.length && sortedActual.every((row, index) => rowsEqual(row, sortedExpected[index] as Row))) return { ok: true };

  // Sorting may misalign rows whose float columns differ by less than the tolerance: match
  // greedily within buckets of equal exact columns before declaring a difference.
  const buckets = new Map<string, Row[]>();
  for (const row of sortedActual) {
    const key = exactKey(row, exactColumns);
    let bucket = buckets.get(key);
    if (!bucket) buckets.set(key, (bucket = []));
    bucket.push(row);
  }
  const missing: Row[] = [];
  for (const row of sortedExpected) {
    const bucket = buckets.get(exactKey(row, exactColumns));
    const matchIndex = bucket && bucket.length <= GREEDY_BUCKET_ROWS_MAX ? bucket.findIndex((candidate) => rowsEqual(candidate, row)) : -1;
    if (bucket && matchIndex >= 0) bucket.splice(matchIndex, 1);
    else missing.push(row);
  }
  const unexpected = [...buckets.values()].flat();
  if (missing.length === 0 && unexpected.length === 0) return { ok: true };
  const lines: string[] = [];
  if (missing.length > 0) lines.push(`  ${missing.length} row(s) of ${expectedLabel} missing from ${actualLabel}:`, ...missing.slice(0, DIFF_ROWS_SHOWN).map((row) => `    ${show(row)}`));
  if (unexpected.length > 0) lines.push(`  ${unexpected.length} row(s) of ${actualLabel} not in ${expectedLabel}:`, ...unexpected.slice(0, DIFF_ROWS_SHOWN).map((row) => `    ${show(row)}`));
  return { ok: false, message: lines.join('\n') };
}

/** Equality of single values, with the numeric tolerances of one comparison. */
class CellComparer {
  private readonly relTol: number;
  private readonly absTol: number;

  constructor(private readonly opts: CompareOptions) {
    this.relTol = opts.relTol ?? 1e-9;
    this.absTol = opts.absTol ?? 1e-9;
  }

  equal(actual: unknown, expected: unknown, column: number): boolean {
    const relTol = this.opts.approx?.[column] ?? this.relTol;
    return valuesEqual(actual, expected, relTol, Math.max(this.absTol, this.opts.absApprox?.[column] ?? 0));
  }
}

export function valuesEqual(actual: unknown, expected: unknown, relTol: number, absTol: number): boolean {
  if (expected === null || expected === undefined) return actual === null || actual === undefined;
  if (typeof expected === 'number') {
    if (!Number.isFinite(expected)) {
      // JSON has no NaN/Infinity: accept null or the value's spelling as well as the value itself.
      return Object.is(actual, expected) || actual === null || actual === String(expected);
    }
    if (typeof actual !== 'number') return false;
    const diff = Math.abs(actual - expected);
    return diff <= absTol || diff <= relTol * Math.max(Math.abs(actual), Math.abs(expected));
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, index) => valuesEqual(actual[index], item, relTol, absTol));
  }
  return actual === expected;
}

/** A total order over JSON-ish values for sorting: null < boolean < number < string < array. */
export function compareValues(a: unknown, b: unknown): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA - rankB;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : Number.isNaN(b) ? -1 : a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let index = 0; index < Math.min(a.length, b.length); index++) {
      const order = compareValues(a[index], b[index]);
      if (order !== 0) return order;
    }
    return a.length - b.length;
  }
  return 0;
}

function typeRank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  if (typeof value === 'string') return 3;
  if (Array.isArray(value)) return 4;
  return 5;
}

/** A string key of the given columns, exact (no tolerance): for buckets and tie runs. */
export function exactKey(row: Row, columns: readonly number[]): string {
  return JSON.stringify(columns.map((column) => canonical(row[column])));
}

/** Canonical form of a value for keys: -0 is 0, undefined is null, NaN/Infinity spelled out. */
export function canonical(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : String(value);
  if (Array.isArray(value)) return value.map(canonical);
  return value;
}

/** One row (or value) for messages: strings quoted, NULL spelled out. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function sideBySide(actualRows: readonly Row[], expectedRows: readonly Row[], actualLabel: string, expectedLabel: string): string[] {
  const lines: string[] = [];
  for (let rowIndex = 0; rowIndex < Math.min(DIFF_ROWS_SHOWN, Math.max(actualRows.length, expectedRows.length)); rowIndex++) {
    const a = actualRows[rowIndex];
    const b = expectedRows[rowIndex];
    lines.push(`  row ${rowIndex}: ${actualLabel} ${a === undefined ? '(none)' : show(a)} | ${expectedLabel} ${b === undefined ? '(none)' : show(b)}`);
  }
  return lines;
}

function fail(summary: string, ...details: string[]): CompareOutcome {
  return { ok: false, message: [summary, ...details].join('\n') };
}
