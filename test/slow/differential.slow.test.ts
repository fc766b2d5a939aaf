/**
 * The differential test at scale (npm run test:slow): 5,000 generated queries, 1,000 per seed over
 * five seeds, each seed with its own 20,000 events, against an in-process leaf (worker pool,
 * sealed blocks), and 200 per seed through an aggregator over three leaf processes. Seeds:
 * SHOAL_DIFF_SEED (the first; the rest follow it), SHOAL_DIFF_QUERIES per seed, SHOAL_DIFF_ROWS.
 * Every mismatch is collected; each seed's test fails once with its first 20.
 */
import { describe, expect, it } from 'vitest';
import { clusterTarget, describeMismatches, inProcessTarget, runDifferential, type Loaded } from '../support/diff-run.js';
import { DIFF_SCHEMA, envNumber, generateDiffEvents } from '../support/diff-data.js';
import { openDuckDb } from '../support/duckdb.js';
import { leafCliExists } from '../support/processes.js';
import { QueryGenerator } from '../support/sqlgen.js';

process.env.TZ = process.env.SHOAL_DIFF_TZ ?? 'Asia/Kolkata';

const FIRST_SEED = envNumber('SHOAL_DIFF_SEED', 20_261_201);
const QUERIES = envNumber('SHOAL_DIFF_QUERIES', 1_000);
const ROWS = envNumber('SHOAL_DIFF_ROWS', 20_000);
const SEED_COUNT = 5;
const SEEDS = Array.from({ length: SEED_COUNT }, (_, index) => FIRST_SEED + index * 7919);

async function runSeed(seed: number, load: (events: ReturnType<typeof generateDiffEvents>, seed: number) => Promise<Loaded>, queries: number): Promise<void> {
  const replay = `SHOAL_DIFF_SEED=${seed} SHOAL_DIFF_QUERIES=${queries} SHOAL_DIFF_ROWS=${ROWS} SHOAL_DIFF_TZ=${process.env.TZ}`;
  console.log(`differential (slow) seed: ${replay}`);
  const loaded = await load(generateDiffEvents(seed, ROWS), seed);
  const duck = await openDuckDb(loaded.accepted, { schema: DIFF_SCHEMA });
  try {
    const summary = await runDifferential(new QueryGenerator(seed, ROWS), queries, duck, loaded.target);
    console.log(`${loaded.target.label}: ${summary.compared} compared, ${summary.skippedByDuckDb} rejected by DuckDB, ${summary.mismatches.length} mismatches (${replay})`);
    expect(loaded.refusals.filter((r) => !r.documented).map((r) => `${r.id}: ${r.message}`), replay).toEqual([]);
    if (summary.mismatches.length > 0) expect.fail(`${loaded.target.label}: ${describeMismatches(summary.mismatches, replay)}`);
  } finally {
    await loaded.target.close();
    await duck.close();
  }
}

describe('differential at scale: random SQL against shoal and DuckDB', () => {
  for (const seed of SEEDS) {
    it(`in-process leaf, seed ${seed}`, () => runSeed(seed, inProcessTarget, QUERIES), 1_200_000);
  }
  for (const seed of SEEDS) {
    it.runIf(leafCliExists())(`aggregator over 3 leaves, seed ${seed}`, () => runSeed(seed, clusterTarget, Math.ceil(QUERIES / 5)), 1_200_000);
  }
});
