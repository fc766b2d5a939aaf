/**
 * The query corpus (test/corpus/*.corpus) against shoal set up other ways than corpus.test.ts's
 * single leaf process, with the same cases, data and judging (corpus-run.ts):
 *
 * - `pool`: an in-process leaf whose every sealed block is scanned on the worker pool
 *   (inlineScanRowsMax 0; the leaf CLI has no flag for it) and whose open block is sealed after
 *   ingest, so no row is scanned inline. One exception remains, by the leaf's design: a rows query
 *   without ORDER BY and with LIMIT <= 1000 is scanned inline (server/leaf/leaf.ts).
 * - `cluster`: an aggregator over three leaf processes, every event sent to a random leaf, so
 *   every answer is merged from partials that crossed the JSON wire.
 *
 * Not here: the cases (corpus.ts) or how they are judged (corpus-run.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTempCluster } from './cluster.js';
import { caseTitle, loadCorpus } from './corpus.js';
import { runCase } from './corpus-run.js';
import { openDuckDb, type DuckDb } from './duckdb.js';
import { corpusDataConfig, describeDataConfig, EVENT_SCHEMA, generateEvents, Rng, type Event } from './gen.js';
import { inProcessLeaf } from './leaf-inprocess.js';
import { leafCliExists } from './processes.js';
import { answerResult, ingestEvents, queryShoal, type QueryAnswer } from './shoal-client.js';

interface Target {
  readonly query: (sql: string) => Promise<QueryAnswer>;
  readonly close: () => Promise<void>;
}

const SETUP_TIMEOUT_MS = 300_000;
const CASE_TIMEOUT_MS = 60_000;
const INGEST_BATCH_ROWS = 10_000;

/**
 * The pool variant's data: 60,000 rows unless SHOAL_CORPUS_ROWS says otherwise. Pool scans of
 * high-cardinality groups cost several times an inline scan (each task's partial carries every
 * group it saw, and is cloned back and merged): at 200,000 rows this file alone took ~80 s on two
 * cores, against ~17 s inline. The cases use no data-dependent constants, so fewer rows test the
 * same paths; the open block is sealed after every batch, so there are still 6 blocks.
 */
function poolDataConfig() {
  const config = corpusDataConfig();
  const rows = process.env.SHOAL_CORPUS_ROWS;
  return rows === undefined || rows === '' ? { ...config, rowCount: POOL_ROWS_DEFAULT } : config;
}
const POOL_ROWS_DEFAULT = 60_000;

async function poolTarget(events: readonly Event[]): Promise<Target> {
  const leaf = await inProcessLeaf({ workers: 2, inlineScanRowsMax: 0 });
  for (let start = 0; start < events.length; start += INGEST_BATCH_ROWS) {
    const batch = events.slice(start, start + INGEST_BATCH_ROWS);
    const answer = await leaf.ingest('events', JSON.stringify(batch));
    if (answer.status !== 200 || answer.json.accepted !== batch.length) throw new Error(`ingest of rows ${start}.. answered ${answer.status}: ${JSON.stringify(answer.json).slice(0, 500)}`);
    leaf.leaf.store.tables.get('events')?.sealOpen();
  }
  return {
    query: async (sql) => {
      const answer = await leaf.query(sql);
      return { status: answer.status, body: answer.json };
    },
    close: () => leaf.close(),
  };
}

async function clusterTarget(events: readonly Event[], seed: number, leafCount = 3): Promise<Target> {
  const cluster = await startTempCluster('corpus', leafCount, []);
  try {
    const rng = new Rng(seed ^ 0x2545f491);
    const shares: Event[][] = cluster.leaves.map(() => []);
    for (const event of events) shares[rng.int(0, leafCount)]!.push(event);
    await Promise.all(shares.map((share, index) => ingestEvents(cluster.leaves[index]!.url, 'events', share)));
    const url = cluster.aggregator.url;
    return { query: (sql) => queryShoal(url, sql), close: cluster.close };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

/** Defines the corpus suite against one kind of target. */
export function corpusSuite(kind: 'pool' | 'cluster'): void {
  const config = kind === 'pool' ? poolDataConfig() : corpusDataConfig();
  const cases = loadCorpus();
  const label = kind === 'pool' ? 'an in-process leaf scanning on its worker pool only' : 'an aggregator over 3 leaves (rows split at random)';
  const runs = kind === 'pool' || leafCliExists();
  if (!runs) console.log(`corpus (${kind}): dist/ is missing (run \`npm run build\`); the corpus does not run`);

  describe.runIf(runs)(`query corpus against ${label} and DuckDB (${describeDataConfig(config)})`, () => {
    let target: Target | undefined;
    let duck: DuckDb | undefined;

    beforeAll(async () => {
      console.log(`corpus data (${kind}): ${describeDataConfig(config)}`);
      const events = generateEvents(config.seed, config.rowCount, { nowSeconds: config.nowSeconds });
      target = kind === 'pool' ? await poolTarget(events) : await clusterTarget(events, config.seed);
      duck = await openDuckDb(events as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      try {
        await target?.close();
      } finally {
        await duck?.close();
      }
    }, SETUP_TIMEOUT_MS);

    it('holds every ingested row, with full coverage', async () => {
      const answer = await target!.query('SELECT count(*) AS n FROM events');
      const got = answerResult(answer);
      expect('result' in got ? got.result.rows : got.problem).toEqual([[config.rowCount]]);
      expect((answer.body as { coverage?: { percent?: unknown } }).coverage?.percent).toBe(100);
    });

    it.each(cases.map((c) => [caseTitle(c), c] as const))('%s', async (_title, c) => {
      const outcome = await runCase(c, { duck: duck!, queryShoal: target!.query });
      if (!outcome.ok) expect.fail(`${c.sql}\n${outcome.message}\n(${kind}; data: ${describeDataConfig(config)})`);
    }, CASE_TIMEOUT_MS);
  });
}
