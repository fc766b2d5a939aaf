/**
 * The differential test's machinery: load the same events into shoal and DuckDB, run generated
 * queries on both, judge every answer, and keep every mismatch with what is needed to replay it.
 *
 * Two shoal targets:
 * - in process (`inProcessTarget`): one leaf through fastify inject(), events ingested in batches
 *   of random size with the open block sealed after each (so scans cross many blocks), scans on
 *   the worker pool (inlineScanRowsMax 0) except the open block, which a leaf always scans inline;
 * - a cluster (`clusterTarget`): an aggregator over three real leaf processes (dist/), every
 *   event sent to a random leaf, in rounds spaced so each leaf checkpoints (which seals blocks).
 *
 * Ingest refusals are findings, not setup failures: a refused batch is bisected to its refused
 * events, which are dropped from both sides (so the queries still compare like with like) and
 * reported. Refusals that docs/api.md documents (an integer beyond 2^53: JSON cannot tell 1e20
 * from an integer) are listed but do not fail the test.
 *
 * Judging: a query DuckDB rejects is not counted (the caller draws another). A shoal error where
 * DuckDB answers is a mismatch unless it is a documented limit: SHOAL_ERR_QUERY_GROUP_LIMIT, and
 * SHOAL_ERR_QUERY_OVERFLOW (integer arithmetic past +-2^53, docs/errors.md) when DuckDB confirms
 * that one of the query's row-level integer `+ - *` reaches past 2^53 on a row that counts, or
 * that a subquery the outer query reads holds an integer past 2^53 (`overflowIsReal`). The count of documented refusals is printed per run.
 *
 * Not here: generating data or SQL (diff-data.ts, sqlgen.ts).
 */
import { sleep, startTempCluster } from './cluster.js';
import { compareResults, canonical, show } from './compare.js';
import { alignColumnsByName } from './corpus-run.js';
import type { DiffEvent } from './diff-data.js';
import { normaliseValue, type DuckDb, type ResultSet } from './duckdb.js';
import { Rng } from './gen.js';
import { inProcessLeaf } from './leaf-inprocess.js';
import { answerError, answerResult, queryShoal, type QueryAnswer } from './shoal-client.js';
import type { GeneratedQuery, QueryGenerator } from './sqlgen.js';

export interface ShoalTarget {
  readonly label: string;
  query(sql: string): Promise<QueryAnswer>;
  close(): Promise<void>;
  /** An aggregator's GET /metrics, for what its run did (the top-n push-downs). */
  readonly metricsUrl?: string;
}

export interface Refusal { readonly id: unknown; readonly code: string; readonly message: string; readonly documented: boolean }

export interface Loaded {
  readonly target: ShoalTarget;
  /** The events shoal accepted: load exactly these into DuckDB. */
  readonly accepted: DiffEvent[];
  readonly refusals: Refusal[];
}

type Post = (batch: readonly DiffEvent[]) => Promise<{ status: number; body: any }>;

/** Documented ingest refusals (docs/api.md: "integers within +-2^53"). */
const DOCUMENTED_INGEST = /beyond 2\^53/;
/** Bisection stops at single events; this bounds the requests a badly broken ingest can cost. */
const BISECT_REQUESTS_MAX = 5_000;

/** Ingests `events` with `post`; refused batches are bisected down to the refused events. */
export async function ingestBisecting(post: Post, events: readonly DiffEvent[]): Promise<{ accepted: DiffEvent[]; refusals: Refusal[] }> {
  const accepted: DiffEvent[] = [];
  const refusals: Refusal[] = [];
  let requests = 0;
  const send = async (batch: readonly DiffEvent[]): Promise<void> => {
    if (batch.length === 0) return;
    if (++requests > BISECT_REQUESTS_MAX) throw new Error(`ingest bisection passed ${BISECT_REQUESTS_MAX} requests: ${refusals.slice(0, 3).map((r) => r.message).join('; ')}`);
    const answer = await post(batch);
    if (answer.status === 200 && answer.body?.accepted === batch.length) {
      accepted.push(...batch);
      return;
    }
    if (answer.status === 200) throw new Error(`ingest accepted ${String(JSON.stringify(answer.body)).slice(0, 300)} of ${batch.length} events: a batch is all or nothing`);
    if (batch.length === 1) {
      const error = answer.body?.error ?? {};
      const message = String(error.message ?? JSON.stringify(answer.body));
      refusals.push({ id: batch[0]!.id, code: String(error.code), message, documented: DOCUMENTED_INGEST.test(message) });
      return;
    }
    const middle = batch.length >> 1;
    await send(batch.slice(0, middle));
    await send(batch.slice(middle));
  };
  await send(events);
  return { accepted, refusals };
}

/** Splits events into batches of random size (seeded). */
function randomBatches(rng: Rng, events: readonly DiffEvent[], sizeMin: number, sizeMax: number): DiffEvent[][] {
  const batches: DiffEvent[][] = [];
  for (let start = 0; start < events.length;) {
    const size = rng.int(sizeMin, sizeMax + 1);
    batches.push(events.slice(start, start + size));
    start += size;
  }
  return batches;
}

export async function inProcessTarget(events: readonly DiffEvent[], seed: number): Promise<Loaded> {
  const leaf = await inProcessLeaf({ workers: 2, inlineScanRowsMax: 0 });
  const rng = new Rng(seed ^ 0x1b873593);
  const accepted: DiffEvent[] = [];
  const refusals: Refusal[] = [];
  const batches = randomBatches(rng, events, 200, 3000);
  for (const [batchIndex, batch] of batches.entries()) {
    const outcome = await ingestBisecting(async (part) => {
      const answer = await leaf.ingest('events', JSON.stringify(part));
      return { status: answer.status, body: answer.json };
    }, batch);
    accepted.push(...outcome.accepted);
    refusals.push(...outcome.refusals);
    // Seal after each batch but the last, so the open block holds the tail.
    if (batchIndex < batches.length - 1) leaf.leaf.store.tables.get('events')?.sealOpen();
  }
  const target: ShoalTarget = {
    label: 'in-process leaf (worker pool, sealed blocks)',
    query: async (sql) => {
      const answer = await leaf.query(sql);
      return { status: answer.status, body: answer.json };
    },
    close: () => leaf.close(),
  };
  return { target, accepted, refusals };
}

/** Rounds of ingest per leaf, spaced past a checkpoint so each round ends up in its own sealed block. */
const CLUSTER_INGEST_ROUNDS = 3;
/** Leaves check for a due checkpoint every 500 ms (server/leaf/lifecycle.ts). */
const CHECKPOINT_WAIT_MS = 700;

export async function clusterTarget(events: readonly DiffEvent[], seed: number, leafCount = 3): Promise<Loaded> {
  // The environment (TZ among it) is inherited: the leaves run in the test's time zone.
  // --top-n-groups 4: a leaf sends max(4, 8 x LIMIT) groups for a top-n by count, so over this
  // small data most such queries are cut on some leaf, and both outcomes of top-cut.ts are met.
  const cluster = await startTempCluster('diff', leafCount, ['--checkpoint-interval', '100'], ['--top-n-groups', '4']);
  const leaves = cluster.leaves;
  const stopAll = cluster.close;
  try {
    const rng = new Rng(seed ^ 0x2545f491);
    const shares: DiffEvent[][] = leaves.map(() => []);
    for (const event of events) shares[rng.int(0, leafCount)]!.push(event);
    const accepted: DiffEvent[] = [];
    const refusals: Refusal[] = [];
    for (let round = 0; round < CLUSTER_INGEST_ROUNDS; round++) {
      await Promise.all(shares.map(async (share, index) => {
        const from = Math.floor((share.length * round) / CLUSTER_INGEST_ROUNDS);
        const to = Math.floor((share.length * (round + 1)) / CLUSTER_INGEST_ROUNDS);
        const url = `${leaves[index]!.url}/v1/tables/events/events`;
        const outcome = await ingestBisecting(async (part) => {
          const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(part), signal: AbortSignal.timeout(30_000) });
          return { status: response.status, body: await response.json() };
        }, share.slice(from, to));
        accepted.push(...outcome.accepted);
        refusals.push(...outcome.refusals);
      }));
      if (round < CLUSTER_INGEST_ROUNDS - 1) await sleep(CHECKPOINT_WAIT_MS);
    }
    accepted.sort((a, b) => (a.id as number) - (b.id as number));
    const url = cluster.aggregator.url;
    const target: ShoalTarget = { label: `aggregator over ${leafCount} leaves (random split)`, query: (sql) => queryShoal(url, sql), close: stopAll, metricsUrl: `${url}/metrics` };
    return { target, accepted, refusals };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export interface Mismatch {
  readonly index: number;
  readonly sql: string;
  readonly duckSql: string;
  readonly shape: string;
  readonly message: string;
}

export interface RunSummary {
  readonly compared: number;
  readonly skippedByDuckDb: number;
  /** Shoal refusals that are documented limits (not mismatches). */
  readonly documentedRefusals: string[];
  /** How many of them per error code. */
  readonly documentedByCode: Record<string, number>;
  readonly mismatches: Mismatch[];
  readonly shapes: Record<string, number>;
}

/**
 * shoal error codes that are documented limits, not wrong answers. SHOAL_ERR_QUERY_OVERFLOW only
 * when `overflowIsReal` confirms it against DuckDB: shoal refuses integer arithmetic past 2^53
 * where DuckDB's BIGINT is exact, and a refusal with no such value behind it is a wrong answer.
 */
const DOCUMENTED_QUERY_LIMITS = new Set(['SHOAL_ERR_QUERY_GROUP_LIMIT', 'SHOAL_ERR_QUERY_OVERFLOW']);
const OVERFLOW_CODE = 'SHOAL_ERR_QUERY_OVERFLOW';
/** 2^53 - 1: shoal refuses an integer result outside +-this (query/exec/vector.ts). */
const EXACT_INT_MAX = '9007199254740991';

/**
 * Does DuckDB agree that one of the query's row-level integer `+ - *` subexpressions passes
 * +-2^53 on a row that counts: an expression of the select list, GROUP BY or an aggregate's
 * argument on a row the WHERE keeps, one inside the WHERE on any row (docs/errors.md: "on a row
 * the query uses")? A DuckDB overflow error in the probe means past 2^63, which is past 2^53 too.
 * Returns the reason when it does, null when it does not (then the refusal is a mismatch).
 */
export async function overflowIsReal(duck: DuckDb, query: GeneratedQuery): Promise<string | null> {
  if (query.innerSql !== undefined) {
    const beyond = await innerIntegerBeyond(duck, query.innerSql);
    if (beyond !== null) return beyond;
  }
  const probes: { exprs: readonly string[]; where: string | null }[] = [
    { exprs: query.intArith.rowExprs, where: query.intArith.where },
    { exprs: query.intArith.whereExprs, where: null },
  ];
  for (const probe of probes) {
    if (probe.exprs.length === 0) continue;
    const over = probe.exprs.map((e) => `abs(${e}) > ${EXACT_INT_MAX}`).join(' OR ');
    const sql = `SELECT ${probe.exprs.map((e) => `max(abs(${e}))`).join(', ')}, coalesce(bool_or(${over}), false) FROM events${probe.where === null ? '' : ` WHERE ${probe.where}`}`;
    try {
      const result = await queryDuckDbExact(duck, sql);
      const row = result.rows[0]!;
      if (row[row.length - 1] === true) {
        const at = row.findIndex((value, index) => index < probe.exprs.length && value !== null && Math.abs(Number(value)) > Number(EXACT_INT_MAX));
        return `${probe.exprs[at] ?? '?'} reaches ${String(row[at])} in DuckDB`;
      }
    } catch (error) {
      if (/overflow/i.test((error as Error).message)) return `DuckDB overflows (past 2^63) in ${sql}`;
    }
  }
  return null;
}
/**
 * An integer cell past +-2^53 in DuckDB's answer to a subquery (`innerSql`), which the outer query
 * would have to aggregate or compute with: shoal refuses that with SHOAL_ERR_QUERY_OVERFLOW, as it
 * refuses row-level integer arithmetic past 2^53. Null when there is none.
 */
async function innerIntegerBeyond(duck: DuckDb, innerSql: string): Promise<string | null> {
  try {
    const result = await queryDuckDbExact(duck, innerSql);
    for (const row of result.rows) {
      // queryDuckDbExact spells exactly the integers past 2^53 as digits.
      const at = row.findIndex((value, column) => typeof value === 'string' && /^-?\d+$/.test(value) && result.columns[column]?.type !== 'VARCHAR');
      if (at >= 0) return `the subquery's column ${result.columns[at]?.name ?? at} holds ${String(row[at])} in DuckDB`;
    }
  } catch {
    return null;
  }
  return null;
}

/** Draws per counted query before giving up (DuckDB rejects some draws: overflow, casts). */
const DRAWS_PER_QUERY_MAX = 10;

export async function runDifferential(gen: QueryGenerator, queryCount: number, duck: DuckDb, target: ShoalTarget): Promise<RunSummary> {
  const mismatches: Mismatch[] = [];
  const documentedRefusals: string[] = [];
  const documentedByCode: Record<string, number> = {};
  const shapes: Record<string, number> = {};
  let compared = 0;
  let skippedByDuckDb = 0;
  /** Answers that differ only within float sums' rounding bounds (ill-conditioned sums). */
  let withinSumRounding = 0;
  const slowest: { ms: number; sql: string }[] = [];
  for (let draws = 0; compared < queryCount; draws++) {
    if (draws > queryCount * DRAWS_PER_QUERY_MAX) throw new Error(`DuckDB rejected ${skippedByDuckDb} of ${draws} generated queries: the generator is broken`);
    const query = gen.next();
    let expected: ResultSet;
    try {
      expected = await queryDuckDbExact(duck, query.sampleRows !== undefined ? stripLimit(query.duckSql) : query.duckSql);
    } catch {
      skippedByDuckDb++;
      continue;
    }
    const index = compared++;
    shapes[query.shape] = (shapes[query.shape] ?? 0) + 1;
    const record = (message: string) => mismatches.push({ index, sql: query.sql, duckSql: query.duckSql, shape: query.shape, message });
    let answer: QueryAnswer;
    const startedMs = performance.now();
    try {
      answer = await target.query(query.sql);
      slowest.push({ ms: performance.now() - startedMs, sql: query.sql });
    } catch (error) {
      record(`transport failure: ${(error as Error).message}`);
      continue;
    }
    const got = answerResult(answer);
    if ('problem' in got) {
      const error = answerError(answer);
      const documented = error !== null && error !== undefined && DOCUMENTED_QUERY_LIMITS.has(error.code) &&
        (error.code !== OVERFLOW_CODE || (await overflowIsReal(duck, query)) !== null);
      if (documented) {
        documentedRefusals.push(`${error.code}: ${query.sql}`);
        documentedByCode[error.code] = (documentedByCode[error.code] ?? 0) + 1;
      } else {
        const unconfirmed = error?.code === OVERFLOW_CODE ? ' (DuckDB finds no integer + - * of the query past 2^53 on a row that counts)' : '';
        record(`shoal refused what DuckDB answers${unconfirmed}: ${error ? `${error.code}: ${error.message}` : got.problem}`);
      }
      continue;
    }
    const coverage = (answer.body as { coverage?: { percent?: unknown; failures?: unknown } }).coverage;
    if (coverage?.percent !== 100) {
      record(`coverage ${String(coverage?.percent)}% (failures: ${JSON.stringify(coverage?.failures ?? null).slice(0, 500)})`);
      continue;
    }
    let outcome = judge(query, got.result, expected);
    if (!outcome.ok && query.errSql !== undefined) {
      const bounds = await floatSumBounds(duck, query, expected.columns.length);
      if (bounds !== null) {
        const again = judge(query, got.result, expected, bounds);
        if (again.ok) withinSumRounding++;
        else outcome = { ok: false, message: `${outcome.message}\n  (also beyond the float-sum rounding bounds ${JSON.stringify(bounds)})` };
        if (again.ok) outcome = again;
      }
    }
    if (!outcome.ok) record(outcome.message);
  }
  console.log(`${target.label}: ${documentedRefusals.length} documented refusal(s) of ${compared} compared queries ${JSON.stringify(documentedByCode)}; ` +
    `${withinSumRounding} answer(s) equal only within float sums' rounding bounds`);
  if (process.env.SHOAL_DIFF_PROFILE) console.log(`shoal total ${slowest.reduce((sum, q) => sum + q.ms, 0).toFixed(0)} ms over ${slowest.length} queries`);
  if (process.env.SHOAL_DIFF_PROFILE) for (const q of slowest.sort((a, b) => b.ms - a.ms).slice(0, 8)) console.log(`${q.ms.toFixed(0)} ms  ${q.sql}`);
  return { compared, skippedByDuckDb, documentedRefusals, documentedByCode, mismatches, shapes };
}

/**
 * DuckDB's answer as duckdb.ts normalises it, except that an integer beyond +-2^53 stays exact as
 * its decimal digits: shoal's HTTP answers spell such a cell that way (query/plan/wire.ts), and a
 * number there could only be a rounded one.
 */
export async function queryDuckDbExact(duck: DuckDb, sql: string): Promise<ResultSet> {
  const reader = await duck.connection.runAndReadAll(sql);
  const columns = reader.columnNames().map((name, index) => ({ name, type: reader.columnType(index).toString() }));
  const exact = (value: unknown): unknown => {
    if (typeof value === 'bigint') return value >= -SAFE && value <= SAFE ? Number(value) : value.toString();
    return normaliseValue(value);
  };
  return { columns, rows: reader.getRows().map((row) => row.map(exact)) };
}
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** DuckDB types whose values are approximate numbers: an exact integer from shoal compares numerically. */
const DUCKDB_FLOAT_TYPE = /^(DOUBLE|FLOAT|REAL|DECIMAL.*)$/;

/**
 * Where DuckDB's column is a double (floor/ceil of an integer are DOUBLE there) and shoal's cell
 * is an exact integer beyond 2^53 spelled as digits, the digits are read as a number: the two
 * answers differ in type, not in value.
 */
function numericDigitsAsNumbers(actual: ResultSet, expected: ResultSet): ResultSet {
  const columns = expected.columns.map((column, index) => DUCKDB_FLOAT_TYPE.test(column.type) && index < actual.columns.length);
  if (!columns.some(Boolean)) return actual;
  return {
    columns: actual.columns,
    rows: actual.rows.map((row) => row.map((value, index) => (columns[index] && typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value))),
  };
}

/**
 * Per output column, the largest rounding bound DuckDB computes for the column's float sums
 * (query.errSql: the same query with the bounds as extra columns), or null when it cannot.
 */
async function floatSumBounds(duck: DuckDb, query: GeneratedQuery, columnCount: number): Promise<Record<number, number> | null> {
  let result: ResultSet;
  try {
    result = await queryDuckDbExact(duck, query.errSql!);
  } catch {
    return null;
  }
  const bounds: Record<number, number> = {};
  (query.errColumns ?? []).forEach((column, extra) => {
    let bound = 0;
    for (const row of result.rows) {
      const value = row[columnCount + extra];
      if (value === null || value === undefined) continue;
      const number = Number(value);
      bound = Number.isNaN(number) ? Infinity : Math.max(bound, number);
    }
    bounds[column] = bound;
  });
  return bounds;
}

function judge(query: GeneratedQuery, actualRaw: ResultSet, expected: ResultSet, absApprox?: Record<number, number>): { ok: true } | { ok: false; message: string } {
  const actual = numericDigitsAsNumbers(query.star ? alignColumnsByName(actualRaw, expected) : actualRaw, expected);
  if (query.star) {
    const names = (result: ResultSet) => result.columns.map((c) => c.name).sort().join(', ');
    if (names(actual) !== names(expected)) return { ok: false, message: `SELECT * columns [${names(actualRaw)}], DuckDB [${names(expected)}]` };
  }
  if (query.sampleRows !== undefined) return judgeSample(query.sampleRows, actual, expected);
  return compareResults(actual, expected, {
    ordered: query.ordered,
    approx: query.tolerances,
    ...(absApprox ? { absApprox } : {}),
    ...(query.orderKeys ? { orderKeys: query.orderKeys } : {}),
  });
}

/** min(n, matching) rows, each a row of the full answer (with multiplicity). */
function judgeSample(limit: number, actual: ResultSet, population: ResultSet): { ok: true } | { ok: false; message: string } {
  const want = Math.min(limit, population.rows.length);
  if (actual.rows.length !== want) return { ok: false, message: `expected ${want} sample rows (LIMIT ${limit}, ${population.rows.length} matching), got ${actual.rows.length}` };
  const counts = new Map<string, number>();
  for (const row of population.rows) counts.set(rowKey(row), (counts.get(rowKey(row)) ?? 0) + 1);
  for (const row of actual.rows) {
    const key = rowKey(row);
    const left = counts.get(key) ?? 0;
    if (left === 0) return { ok: false, message: `sample row is not a row of the answer (or repeats): ${show(row)}\n  first rows of DuckDB's full answer: ${population.rows.slice(0, 3).map(show).join(' | ')}` };
    counts.set(key, left - 1);
  }
  return { ok: true };
}

function rowKey(row: readonly unknown[]): string {
  const round = (value: unknown): unknown => {
    if (typeof value === 'number' && Number.isFinite(value)) return Number(value.toPrecision(12));
    if (Array.isArray(value)) return value.map(round);
    return value;
  };
  return JSON.stringify(row.map((value) => canonical(round(value))));
}

function stripLimit(sql: string): string {
  return sql.replace(/\s+LIMIT\s+\d+\s*$/i, '');
}

/** The first `shown` mismatches as readable text, each with the seed needed to replay it. */
export function describeMismatches(mismatches: readonly Mismatch[], replay: string, shown = 20): string {
  const lines = mismatches.slice(0, shown).map((m) =>
    `#${m.index} [${m.shape}] ${m.sql}${m.duckSql !== m.sql ? `\n  duckdb: ${m.duckSql}` : ''}\n  ${m.message.replaceAll('\n', '\n  ')}`);
  return `${mismatches.length} mismatch(es); replay with ${replay}\n\n${lines.join('\n\n')}${mismatches.length > shown ? `\n\n... and ${mismatches.length - shown} more` : ''}`;
}
