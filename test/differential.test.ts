/**
 * Seeded differential test: random SQL over the documented subset (test/support/sqlgen.ts) run
 * against shoal and DuckDB over the same seeded events (test/support/diff-data.ts); every answer
 * must match (test/support/compare.ts: exact for ints and strings, 1e-9 relative for floats,
 * stated tolerances for sketches and float sums, multisets unless ORDER BY).
 *
 * Two targets: an in-process leaf (scans on the worker pool over many sealed blocks) for most
 * queries, and an aggregator over three real leaf processes with the events split at random
 * (partials through the JSON wire format). Shoal runs in a non-UTC time zone (SHOAL_DIFF_TZ,
 * default Asia/Kolkata, +05:30): answers must not depend on the server's zone.
 *
 * Replay: SHOAL_DIFF_SEED (data and queries), SHOAL_DIFF_QUERIES, SHOAL_DIFF_ROWS. The seed is
 * printed at the start and in every failure. Every mismatch is collected; the test fails once
 * with the first 20.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMismatches, clusterTarget, inProcessTarget, runDifferential, type Loaded, type RunSummary } from './support/diff-run.js';
import { DIFF_SCHEMA, envNumber, generateDiffEvents } from './support/diff-data.js';
import { openDuckDb, type DuckDb } from './support/duckdb.js';
import { leafCliExists } from './support/processes.js';
import { QueryGenerator } from './support/sqlgen.js';

process.env.TZ = process.env.SHOAL_DIFF_TZ ?? 'Asia/Kolkata';

const SEED = envNumber('SHOAL_DIFF_SEED', 20_261_201);
const QUERIES = envNumber('SHOAL_DIFF_QUERIES', 300);
const ROWS = envNumber('SHOAL_DIFF_ROWS', 4_000);
/** The cluster variant runs a third as many queries (HTTP to four processes per query). */
const CLUSTER_QUERIES = Math.ceil(QUERIES / 3);
const REPLAY = `SHOAL_DIFF_SEED=${SEED} SHOAL_DIFF_QUERIES=${QUERIES} SHOAL_DIFF_ROWS=${ROWS} SHOAL_DIFF_TZ=${process.env.TZ}`;

function report(label: string, loaded: Loaded, summary: RunSummary): string[] {
  console.log(`${label}: ${summary.compared} queries compared, ${summary.skippedByDuckDb} drawn queries DuckDB rejected (not counted), ` +
    `${summary.mismatches.length} mismatches, shapes ${JSON.stringify(summary.shapes)} (${REPLAY})`);
  for (const refusal of summary.documentedRefusals) console.log(`  documented limit: ${refusal}`);
  const failures: string[] = [];
  const documented = loaded.refusals.filter((r) => r.documented);
  if (documented.length > 0) console.log(`  ${documented.length} event(s) refused at ingest (documented: integers beyond 2^53), e.g. id ${documented[0]!.id}: ${documented[0]!.message}`);
  for (const refusal of loaded.refusals.filter((r) => !r.documented)) failures.push(`ingest refused event id ${refusal.id}: ${refusal.code}: ${refusal.message}`);
  return failures;
}

describe(`differential: random SQL against shoal and DuckDB (${REPLAY})`, () => {
  const events = generateDiffEvents(SEED, ROWS);

  describe('in-process leaf', () => {
    let loaded: Loaded | undefined;
    let duck: DuckDb | undefined;
    beforeAll(async () => {
      console.log(`differential seed: ${REPLAY}`);
      loaded = await inProcessTarget(events, SEED);
      duck = await openDuckDb(loaded.accepted, { schema: DIFF_SCHEMA });
    });
    afterAll(async () => {
      await loaded?.target.close();
      await duck?.close();
    });

    it(`${QUERIES} queries match DuckDB`, async () => {
      const summary = await runDifferential(new QueryGenerator(SEED, ROWS), QUERIES, duck!, loaded!.target);
      const ingestFailures = report(loaded!.target.label, loaded!, summary);
      expect(ingestFailures, `seed ${REPLAY}`).toEqual([]);
      if (summary.mismatches.length > 0) expect.fail(`${loaded!.target.label}: ${describeMismatches(summary.mismatches, REPLAY)}`);
    }, 120_000);
  });

  describe.runIf(leafCliExists())('aggregator over 3 leaves', () => {
    let loaded: Loaded | undefined;
    let duck: DuckDb | undefined;
    beforeAll(async () => {
      loaded = await clusterTarget(events, SEED);
      duck = await openDuckDb(loaded.accepted, { schema: DIFF_SCHEMA });
    });
    afterAll(async () => {
      await loaded?.target.close();
      await duck?.close();
    });

    it(`${CLUSTER_QUERIES} queries match DuckDB`, async () => {
      // A different query stream from the in-process run: more of the subset gets covered.
      const summary = await runDifferential(new QueryGenerator(SEED + 1, ROWS), CLUSTER_QUERIES, duck!, loaded!.target);
      const ingestFailures = report(loaded!.target.label, loaded!, summary);
      // The top-n shapes reach the push-down (the aggregator asks for max(4, 8 x LIMIT) groups).
      const metrics = await (await fetch(loaded!.target.metricsUrl!)).text();
      const pushed = (outcome: string) => Number(/shoal_topn_pushdown_total\{[^}]*outcome="(\w+)"[^}]*\} (\d+)/g.exec(metrics.split('\n').find((l) => l.includes(`outcome="${outcome}"`)) ?? '')?.[2] ?? 0);
      const topnQueries = Object.entries(summary.shapes).filter(([shape]) => shape.includes('+topn')).reduce((n, [, c]) => n + c, 0);
      console.log(`  top-n push-downs: ${pushed('exact')} exact, ${pushed('refetched')} refetched, of ${topnQueries} top-n queries drawn`);
      if (topnQueries >= 5) expect(pushed('exact') + pushed('refetched'), 'some drawn top-n query was cut on a leaf').toBeGreaterThan(0);
      expect(ingestFailures, `seed ${REPLAY}`).toEqual([]);
      if (summary.mismatches.length > 0) expect.fail(`${loaded!.target.label}: ${describeMismatches(summary.mismatches, REPLAY)}`);
    }, 120_000);
  });
});
