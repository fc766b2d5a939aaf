/**
 * Tests of the query-correctness harness itself, without shoal: the generator is deterministic
 * and shaped as documented, DuckDB loads every row faithfully, every corpus case is valid DuckDB
 * SQL with a deterministic answer, and the checker can fail (planted differences are caught, by
 * the comparator alone and through the whole driver path with a DuckDB-backed fake server).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../query/errors.js';
import { compareResults } from './support/compare.js';
import { caseTitle, loadCorpus, parseCorpus, type CorpusCase } from './support/corpus.js';
import { runCase } from './support/corpus-run.js';
import { openDuckDb, type DuckDb, type ResultSet } from './support/duckdb.js';
import { FAULTS, fakeShoal } from './support/fake-shoal.js';
import { corpusDataConfig, describeDataConfig, EVENT_SCHEMA, generateEvents, mulberry32, randomSeed, TAGS, TIME_SPAN_SECONDS, type Event } from './support/gen.js';
import { hasOrderBy, orderKeyColumns, replaceLimit, stripLimit, substituteNow, trailingLimit, usesNow } from './support/sql-text.js';

const NOW_SECONDS = 1_700_000_040;
const config = corpusDataConfig();
const cases = loadCorpus();

describe('generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    expect(generateEvents(7, 2_000, { nowSeconds: NOW_SECONDS })).toEqual(generateEvents(7, 2_000, { nowSeconds: NOW_SECONDS }));
    expect(generateEvents(8, 2_000, { nowSeconds: NOW_SECONDS })).not.toEqual(generateEvents(7, 2_000, { nowSeconds: NOW_SECONDS }));
    const draws = mulberry32(1);
    expect([draws(), draws()]).toEqual([0.6270739405881613, 0.002735721180215478]);
  });

  it('keeps its output stable (a printed seed replays the same data)', () => {
    const digest = createHash('sha256').update(JSON.stringify(generateEvents(1, 1_000, { nowSeconds: NOW_SECONDS }))).digest('hex');
    expect(digest.slice(0, 16)).toBe('4c37db450b869d84');
  });

  it('produces the documented columns and distributions', () => {
    const rowCount = 50_000;
    const events = generateEvents(12_345, rowCount, { nowSeconds: NOW_SECONDS });
    const distinct = (pick: (event: Event) => unknown) => new Set(events.map(pick)).size;
    const fraction = (test: (event: Event) => boolean) => events.filter(test).length / rowCount;
    expect(events.every((e) => Number.isInteger(e.time) && e.time >= NOW_SECONDS - TIME_SPAN_SECONDS && e.time < NOW_SECONDS)).toBe(true);
    expect(distinct((e) => e.service)).toBe(5);
    expect(distinct((e) => e.endpoint)).toBe(60);
    expect(distinct((e) => e.country)).toBe(30);
    expect(distinct((e) => e.user_id)).toBeGreaterThan(20_000);
    expect(fraction((e) => !('region' in e))).toBeCloseTo(0.1, 1);
    expect(fraction((e) => e.region === null)).toBeGreaterThan(0.01);
    expect(events.every((e) => e.is_error === e.status >= 500)).toBe(true);
    expect(fraction((e) => e.status === 200)).toBeGreaterThan(0.6);
    expect(events.every((e) => Number.isInteger(e.bytes) && e.bytes >= 0 && e.bytes <= 10_000_000)).toBe(true);
    expect(events.every((e) => e.latency_ms > 0 && Math.abs(e.latency_ms * 1000 - Math.round(e.latency_ms * 1000)) < 1e-6)).toBe(true);
    expect(events.every((e) => e.tags === undefined || (e.tags.length <= 4 && e.tags.every((t) => (TAGS as readonly string[]).includes(t)) && [...new Set(e.tags)].sort().join() === e.tags.join()))).toBe(true);
    expect(fraction((e) => e.tags === undefined)).toBeCloseTo(0.03, 1);
    expect(events.slice(0, rowCount / 10).some((e) => 'experiment' in e)).toBe(false);
    expect(fraction((e) => 'experiment' in e)).toBeCloseTo(0.05, 1);
    expect(distinct((e) => e.city)).toBe(21); // 20 cities, '' included, and absent
  });
});

describe('DuckDB reference', () => {
  let duck: DuckDb;
  let events: Event[];

  beforeAll(async () => {
    events = generateEvents(99, 20_000, { nowSeconds: NOW_SECONDS });
    duck = await openDuckDb(events as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
  });
  afterAll(async () => duck?.close());

  it('loads every row with every value intact', async () => {
    const loaded = await duck.query('SELECT * FROM events');
    expect(loaded.columns).toEqual(EVENT_SCHEMA);
    const expected: ResultSet = {
      columns: EVENT_SCHEMA,
      rows: events.map((event) => EVENT_SCHEMA.map((column) => (event as unknown as Record<string, unknown>)[column.name] ?? null)),
    };
    const outcome = compareResults(loaded, expected, { ordered: false, relTol: 0, absTol: 0 });
    expect(outcome.ok, outcome.ok ? '' : outcome.message).toBe(true);
  });

  it('loads 200,000 events in a few seconds', async () => {
    const big = generateEvents(5, 200_000, { nowSeconds: NOW_SECONDS });
    const startMs = Date.now();
    const db = await openDuckDb(big as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
    const loadMs = Date.now() - startMs;
    try {
      expect((await db.query('SELECT count(*) FROM events')).rows).toEqual([[200_000]]);
      console.log(`DuckDB loaded 200,000 events in ${loadMs} ms`);
      expect(loadMs).toBeLessThan(15_000);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('runs with the semantics the corpus assumes, normalised to JSON shapes', async () => {
    const result = await duck.query(
      "SELECT 1 / 0 AS a, 0 / 0 AS b, 7 / 2 AS c, -7 % 3 AS d, 7 % 0 AS e, sum(bytes) AS f, count(*) * 0.5 AS g, " +
        "time_bucket(INTERVAL '1 hour', min(time)) AS h, min(tags) AS i FROM events",
    );
    expect(result.columns.map((c) => c.type)).toEqual(['DOUBLE', 'DOUBLE', 'DOUBLE', 'INTEGER', 'INTEGER', 'HUGEINT', 'DECIMAL(21,1)', 'TIMESTAMP', 'VARCHAR[]']);
    const row = result.rows[0] as unknown[];
    expect(row.slice(0, 5)).toEqual([null, null, 3.5, -1, null]);
    expect(row[5]).toBe(events.reduce((sum, e) => sum + e.bytes, 0));
    expect(row[6]).toBe(10_000);
    expect(row[7]).toBe(Math.floor(Math.min(...events.map((e) => e.time)) / 3600) * 3600);
    expect(Array.isArray(row[8])).toBe(true);
    const nulls = await duck.query('SELECT region FROM events GROUP BY region ORDER BY region DESC');
    expect(nulls.rows.at(-1)).toEqual([null]);
  });
});

describe('corpus', () => {
  /** The corpus run's own data, for validity and determinism checks. */
  let duck: DuckDb;
  /** A tenth of it, for the driver self-tests, which run every case several times. */
  let smallDuck: DuckDb;

  beforeAll(async () => {
    console.log(`corpus harness data: ${describeDataConfig(config)}`);
    const events = generateEvents(config.seed, config.rowCount, { nowSeconds: config.nowSeconds });
    duck = await openDuckDb(events as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
    const fewer = generateEvents(config.seed, Math.ceil(config.rowCount / 10), { nowSeconds: config.nowSeconds });
    smallDuck = await openDuckDb(fewer as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
  }, 120_000);
  afterAll(async () => {
    await duck?.close();
    await smallDuck?.close();
  });

  it('has at least 70 cases over the documented feature files, each named uniquely', () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
    const files = new Set(cases.map((c) => c.file));
    const documented = ['filters', 'group-by', 'aggregates', 'time-series', 'having-order-limit', 'strings', 'sets', 'nulls', 'arithmetic', 'approximate', 'samples', 'errors',
      'conditionals', 'scalar-functions', 'time-functions', 'post-aggregate', 'catalog', 'quantiles'];
    for (const file of documented) {
      expect(files).toContain(`${file}.corpus`);
    }
    expect(new Set(cases.map(caseTitle)).size).toBe(cases.length);
    expect(new Set(cases.map((c) => c.sql)).size).toBe(cases.length);
    expect(cases.filter((c) => usesNow(c.sql)).length).toBeGreaterThanOrEqual(5);
  });

  it.each(cases.filter((c) => !c.error).map((c) => [caseTitle(c), c] as const))('valid DuckDB SQL with a deterministic answer: %s', async (_title, c) => {
    await checkValidCase(duck, c);
  });

  it.each(cases.filter((c) => c.error).map((c) => [caseTitle(c), c] as const))('a registered error that DuckDB also rejects: %s', async (_title, c) => {
    expect(Object.keys(ERRORS)).toContain(c.error?.code);
    const accepted = await duck.query(c.sql).then(() => true, () => false);
    expect(accepted, c.duckdbAccepts ? 'duckdb-accepts: note is stale, DuckDB rejects this' : 'DuckDB runs this query: mark it duckdb-accepts or fix it').toBe(c.duckdbAccepts !== undefined);
  });

  it('passes every case through the driver when the server is right', async () => {
    const queryShoal = fakeShoal(smallDuck, cases);
    for (const c of cases.filter((each) => !each.error)) {
      const outcome = await runCase(c, { duck: smallDuck, queryShoal });
      expect(outcome.ok, `${caseTitle(c)}\n${outcome.ok ? '' : outcome.message}`).toBe(true);
    }
  }, 120_000);

  it.each(Object.keys(FAULTS))('fails cases through the driver when the server plants a fault: %s', async (faultName) => {
    const fault = FAULTS[faultName] as NonNullable<(typeof FAULTS)[string]>;
    let caught = 0;
    for (const c of cases.filter((each) => !each.error)) {
      const correct = await smallDuck.query(c.duckdbSql ?? c.sql);
      const planted = fault(correct);
      if (!planted) continue;
      const outcome = await runCase(c, { duck: smallDuck, queryShoal: fakeShoal(smallDuck, cases, fault) });
      const ordered = c.ordered ?? hasOrderBy(c.sql);
      const keys = orderKeyColumns(c.sql) ?? correct.columns.map((_, column) => column);
      const firstTwoTie = keys.every((column) => JSON.stringify(correct.rows[0]?.[column]) === JSON.stringify(correct.rows[1]?.[column]));
      // A swap is a fault only where order matters and the rows differ; samples ignore order.
      const mustFail = faultName !== 'swappedRows' || (ordered && c.rows === undefined && !firstTwoTie);
      if (mustFail) {
        expect(outcome.ok, `${caseTitle(c)}: the ${faultName} fault went unnoticed`).toBe(false);
        caught++;
      } else expect(outcome.ok, `${caseTitle(c)}: a harmless ${faultName} was flagged\n${outcome.ok ? '' : outcome.message}`).toBe(true);
    }
    expect(caught).toBeGreaterThan(10);
  }, 120_000);
});

async function checkValidCase(duck: DuckDb, c: CorpusCase): Promise<void> {
  const sql = c.duckdbSql ?? c.sql;
  const result = await duck.query(sql);
  for (const column of Object.keys(c.approx).map(Number)) expect(column, 'approx: column index').toBeLessThan(result.columns.length);
  if (c.rows !== undefined) {
    expect(usesNow(c.sql), 'a rows: case must not depend on now()').toBe(false);
    expect(stripLimit(c.sql), 'a rows: case needs a trailing LIMIT').not.toBeNull();
    expect(c.rows, 'rows: must equal the LIMIT').toBe(Number(/limit\s+(\d+)\s*$/i.exec(c.sql)?.[1]));
    return;
  }
  const limit = trailingLimit(sql);
  if (!limit) return;
  // With a LIMIT, the answer must not depend on how ties are broken: look one row further.
  const beyond = await duck.query(replaceLimit(sql, limit.limit + 1) as string);
  const ordered = c.ordered ?? hasOrderBy(c.sql);
  if (!ordered) {
    expect(beyond.rows.length, 'LIMIT without ORDER BY must not cut rows').toBe(result.rows.length);
    return;
  }
  const keys = orderKeyColumns(c.sql);
  if (!keys || beyond.rows.length <= result.rows.length || result.rows.length === 0) return;
  const last = result.rows.at(-1) as unknown[];
  const next = beyond.rows.at(-1) as unknown[];
  expect(keys.every((column) => JSON.stringify(last[column]) === JSON.stringify(next[column])), `ORDER BY keys tie at the LIMIT: ${JSON.stringify(last)} vs ${JSON.stringify(next)}`).toBe(false);
}

describe('comparator', () => {
  const columns = [{ name: 'service', type: 'VARCHAR' }, { name: 'n', type: 'BIGINT' }, { name: 'mean', type: 'DOUBLE' }];
  const base: ResultSet = { columns, rows: [['api', 10, 1.5], ['web', 7, 2.25], ['auth', 7, 0.1]] };
  const withRows = (rows: unknown[][]): ResultSet => ({ columns, rows });
  const ok = (actual: ResultSet, opts: Parameters<typeof compareResults>[2] = { ordered: false }) => compareResults(actual, base, opts).ok;

  it('accepts equal results, in any order when unordered, and float noise', () => {
    expect(ok(base)).toBe(true);
    expect(ok(withRows([...base.rows].reverse() as unknown[][]))).toBe(true);
    expect(ok(withRows([['api', 10, 1.5 * (1 + 1e-12)], ['web', 7, 2.25], ['auth', 7, 0.1 + 1e-13]]))).toBe(true);
  });

  it('finds a changed number, a missing row, an extra row and a NULL for a value', () => {
    const changed = compareResults(withRows([['api', 11, 1.5], ['web', 7, 2.25], ['auth', 7, 0.1]]), base, { ordered: false });
    expect(changed.ok).toBe(false);
    expect(changed.ok ? '' : changed.message).toMatch(/missing from shoal:\s+\["api", 10, 1\.5\][\s\S]*not in duckdb:\s+\["api", 11, 1\.5\]/);
    expect(ok(withRows([['api', 10, 1.5 * (1 + 1e-6)], ['web', 7, 2.25], ['auth', 7, 0.1]]))).toBe(false);
    expect(ok(withRows(base.rows.slice(0, 2) as unknown[][]))).toBe(false);
    expect(ok(withRows([...base.rows, ['api', 10, 1.5]] as unknown[][]))).toBe(false);
    expect(ok(withRows([['api', 10, 1.5], ['web', 7, 2.25], ['auth', 7, null]]))).toBe(false);
    expect(ok({ columns: columns.slice(0, 2), rows: base.rows.map((row) => row.slice(0, 2)) })).toBe(false);
    expect(ok({ columns: [{ name: 'svc', type: '' }, ...columns.slice(1)], rows: base.rows })).toBe(false);
  });

  it('checks order under ORDER BY, allowing any order within ties of the sort keys', () => {
    const swapped = withRows([base.rows[1], base.rows[0], base.rows[2]] as unknown[][]);
    expect(ok(swapped, { ordered: true })).toBe(false);
    expect(ok(swapped, { ordered: false })).toBe(true);
    const tiesSwapped = withRows([base.rows[0], base.rows[2], base.rows[1]] as unknown[][]);
    expect(ok(tiesSwapped, { ordered: true, orderKeys: [1] })).toBe(true);
    expect(ok(tiesSwapped, { ordered: true, orderKeys: [1, 0] })).toBe(false);
    expect(ok(withRows([['api', 10, 1.5], ['web', 7, 2.25], ['auth', 7, 9]]), { ordered: true, orderKeys: [1] })).toBe(false);
    // Float keys a few ulps apart (two summation orders) tie as well.
    const nearTie: ResultSet = { columns, rows: [['api', 10, 0.1 + 0.2], ['web', 7, 0.3]] };
    expect(compareResults({ columns, rows: [['web', 7, 0.3], ['api', 10, 0.1 + 0.2]] }, nearTie, { ordered: true, orderKeys: [2] }).ok).toBe(true);
    expect(compareResults({ columns, rows: [['web', 7, 0.3], ['api', 10, 0.1 + 0.2]] }, nearTie, { ordered: true, orderKeys: [2, 0] }).ok).toBe(false);
  });

  it('holds approximate columns to their own tolerance', () => {
    const near = withRows([['api', 10, 1.52], ['web', 7, 2.25], ['auth', 7, 0.1]]);
    expect(ok(near)).toBe(false);
    expect(ok(near, { ordered: false, approx: { 2: 0.02 } })).toBe(true);
    expect(ok(near, { ordered: false, approx: { 2: 0.01 } })).toBe(false);
  });

  it('matches NaN and Infinity of the reference with null (JSON cannot carry them)', () => {
    const reference: ResultSet = { columns: [{ name: 'x', type: 'DOUBLE' }], rows: [[Number.NaN], [Number.POSITIVE_INFINITY]] };
    expect(compareResults({ columns: reference.columns, rows: [[null], [null]] }, reference, { ordered: true }).ok).toBe(true);
    expect(compareResults({ columns: reference.columns, rows: [[0], [null]] }, reference, { ordered: true }).ok).toBe(false);
  });

  it('property: shuffles are equal as multisets, any single changed cell is a difference', () => {
    const seed = randomSeed();
    console.log(`comparator property seed ${seed}`);
    const value = fc.oneof(fc.constant(null), fc.integer({ min: -5, max: 5 }), fc.double({ min: -100, max: 100, noNaN: true }), fc.constantFrom('a', 'b', 'ü', '東京'), fc.boolean());
    const property = fc.property(fc.array(fc.array(value, { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 30 }), fc.nat(), fc.nat(), (rows, pickRow, pickColumn) => {
      const reference: ResultSet = { columns: [{ name: 'a', type: '' }, { name: 'b', type: '' }, { name: 'c', type: '' }], rows };
      const draw = mulberry32(pickRow ^ pickColumn);
      const shuffled = rows.map((row) => ({ row, key: draw() })).sort((a, b) => a.key - b.key).map((entry) => entry.row);
      expect(compareResults({ columns: reference.columns, rows: shuffled }, reference, { ordered: false }).ok).toBe(true);
      const rowIndex = pickRow % rows.length;
      const column = pickColumn % 3;
      // 'zz' is never generated, so the changed row cannot match any other row.
      const changed = rows.map((row, index) => (index === rowIndex ? row.map((v, c) => (c === column ? 'zz' : v)) : row));
      expect(compareResults({ columns: reference.columns, rows: changed }, reference, { ordered: false }).ok).toBe(false);
    });
    fc.assert(property, { seed, numRuns: 200 });
  });
});

describe('sql text helpers and corpus format', () => {
  it('replaces now() outside string literals only', () => {
    expect(substituteNow("SELECT 'now()' AS t FROM events WHERE time > NOW() - INTERVAL '1 day'", 1.5)).toBe("SELECT 'now()' AS t FROM events WHERE time > to_timestamp(1.500000) - INTERVAL '1 day'");
  });

  it('finds ORDER BY keys among the output columns', () => {
    expect(orderKeyColumns('SELECT a, count(*) AS n FROM t GROUP BY a ORDER BY n DESC, a LIMIT 3')).toEqual([1, 0]);
    expect(orderKeyColumns('SELECT a, count(*) FROM t GROUP BY 1 ORDER BY 2, count(*)')).toEqual([1, 1]);
    expect(orderKeyColumns('SELECT a FROM t GROUP BY a ORDER BY sum(b)')).toBeNull();
    expect(stripLimit("SELECT * FROM t WHERE s = 'limit 5' LIMIT 10")).toBe("SELECT * FROM t WHERE s = 'limit 5'");
  });

  it('reads NULLS FIRST/LAST, OFFSET, DISTINCT, windows and subqueries', () => {
    expect(orderKeyColumns('SELECT a, count(*) AS n FROM t GROUP BY a ORDER BY n DESC NULLS FIRST, a NULLS LAST LIMIT 3 OFFSET 6')).toEqual([1, 0]);
    expect(orderKeyColumns('SELECT DISTINCT a, b FROM t ORDER BY b, a')).toEqual([1, 0]);
    expect(orderKeyColumns('SELECT a, row_number() OVER (PARTITION BY a ORDER BY x DESC) AS r FROM t GROUP BY a, x ORDER BY r')).toEqual([1]);
    expect(orderKeyColumns('WITH w AS (SELECT a, count(*) AS n FROM t GROUP BY a ORDER BY a) SELECT a, n FROM w ORDER BY n, a LIMIT 2')).toEqual([1, 0]);
    expect(hasOrderBy('SELECT a, sum(count(*)) OVER (ORDER BY a) AS s FROM t GROUP BY a')).toBe(false);
    expect(replaceLimit('SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 10', 6)).toBe('SELECT a FROM t ORDER BY a LIMIT 6 OFFSET 10');
    expect(trailingLimit('SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 10')).toEqual({ limit: 5, offset: 10 });
    expect(trailingLimit('SELECT a FROM (SELECT a FROM t LIMIT 5)')).toBeNull();
    expect(stripLimit('SELECT a FROM t LIMIT 5 OFFSET 10')).toBeNull();
  });

  it('parses directives and rejects malformed cases with the file and line', () => {
    const parsed = parseCorpus('# p99\nquery\nSELECT p99(x)\nFROM t\nduckdb:\nSELECT quantile_disc(x, 0.99)\nFROM t\napprox: 0 0.02\n', 'x.corpus');
    expect(parsed).toEqual([{ file: 'x.corpus', line: 2, name: 'p99', sql: 'SELECT p99(x)\nFROM t', duckdbSql: 'SELECT quantile_disc(x, 0.99)\nFROM t', approx: { 0: 0.02 } }]);
    expect(() => parseCorpus('query\nSELECT 1\nbogus: 1\n', 'y.corpus')).toThrow(/y\.corpus:3: unknown directive/);
    expect(() => parseCorpus('query\n', 'y.corpus')).toThrow(/y\.corpus:1: case without SQL/);
    expect(() => parseCorpus('SELECT 1\n', 'y.corpus')).toThrow(/y\.corpus:1: text outside a case/);
    expect(() => parseCorpus('query\nSELECT 1\nerror: SHOAL_ERR_X\napprox: 0 0.1\n', 'y.corpus')).toThrow(/takes only/);
    expect(parseCorpus('query\nSELECT 1\nerror: SHOAL_ERR_X\nmessage: single quotes\nmessage: api\n', 'y.corpus')[0]?.messageIncludes).toEqual(['single quotes', 'api']);
    expect(() => parseCorpus('query\nSELECT 1\nmessage: x\n', 'y.corpus')).toThrow(/need `error:`/);
    expect(() => parseCorpus('query\nSELECT 1\nrows: 3\nFROM t\n', 'y.corpus')).toThrow(/SQL after a directive/);
  });

  it('checks the texts an error message must contain', async () => {
    const [c] = parseCorpus('query\nSELECT 1\nerror: SHOAL_ERR_QUERY_PARSE\nmessage: Single Quotes\n', 'y.corpus') as [CorpusCase];
    const answering = (message: string) => async () => ({ status: 400, body: { error: { code: 'SHOAL_ERR_QUERY_PARSE', message } } });
    const noDuck = undefined as unknown as DuckDb;
    expect((await runCase(c, { duck: noDuck, queryShoal: answering('use single quotes for strings') })).ok).toBe(true);
    const outcome = await runCase(c, { duck: noDuck, queryShoal: answering('column "api" not found') });
    expect(outcome.ok ? '' : outcome.message).toMatch(/does not mention "Single Quotes"/);
  });
});
