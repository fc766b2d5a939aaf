/**
 * The query corpus (test/corpus/*.corpus) against a real shoal leaf process, with DuckDB over the
 * same events as the reference. One vitest test per case, named `file:line description`.
 *
 * ~200,000 seeded events are ingested through the HTTP API in batches of 10,000 and loaded into
 * DuckDB; each case's answer from `POST /v1/query` must equal DuckDB's (see corpus-run.ts for how
 * approximate columns, samples, errors and now() are judged). The data set is printed; set
 * SHOAL_CORPUS_SEED / SHOAL_CORPUS_ROWS / SHOAL_CORPUS_NOW to replay a run.
 *
 * Runs only when the leaf is built (`dist/server/cli/cli.js`, from `npm run build`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseTitle, loadCorpus } from './support/corpus.js';
import { runCase } from './support/corpus-run.js';
import { openDuckDb, type DuckDb } from './support/duckdb.js';
import { corpusDataConfig, describeDataConfig, EVENT_SCHEMA, generateEvents } from './support/gen.js';
import { CLI_PATH, leafCliExists, startLeaf, type LeafProcess } from './support/processes.js';
import { answerResult, ingestEvents, queryShoal } from './support/shoal-client.js';

const config = corpusDataConfig();
const cases = loadCorpus();
const SETUP_TIMEOUT_MS = 300_000;
const CASE_TIMEOUT_MS = 60_000;

/** Whether the leaf is still running, and if not how it ended and what it said last. */
function leafState(leaf: LeafProcess): string {
  const { exitCode, signalCode } = leaf.process;
  if (exitCode === null && signalCode === null) return '';
  const { stderr, stdout } = leaf.output();
  return `\nthe leaf exited (code ${exitCode}, signal ${signalCode})\n--- leaf stderr (tail) ---\n${stderr.slice(-4000)}\n--- leaf stdout (tail) ---\n${stdout.slice(-2000)}`;
}

if (!leafCliExists()) console.log(`corpus.test.ts: ${CLI_PATH} is missing (run \`npm run build\`); the corpus does not run`);

describe.runIf(leafCliExists())(`query corpus against a leaf and DuckDB (${describeDataConfig(config)})`, () => {
  let dataDir: string | undefined;
  let leaf: LeafProcess | undefined;
  let duck: DuckDb | undefined;

  beforeAll(async () => {
    console.log(`corpus data: ${describeDataConfig(config)}`);
    const events = generateEvents(config.seed, config.rowCount, { nowSeconds: config.nowSeconds });
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-corpus-'));
    // --no-shm: a planned stop would otherwise leave this throwaway leaf's data in /dev/shm.
    leaf = await startLeaf({ dataDir, args: ['--no-shm'] });
    const startMs = Date.now();
    await ingestEvents(leaf.url, 'events', events);
    console.log(`ingested ${events.length} events into ${leaf.url} in ${Date.now() - startMs} ms`);
    duck = await openDuckDb(events as unknown as Record<string, unknown>[], { schema: EVENT_SCHEMA });
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    try {
      await leaf?.stop();
    } finally {
      await duck?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  }, SETUP_TIMEOUT_MS);

  it('holds every ingested row, with full coverage', async () => {
    const answer = await queryShoal((leaf as LeafProcess).url, 'SELECT count(*) AS n FROM events');
    const got = answerResult(answer);
    expect('result' in got ? got.result.rows : got.problem).toEqual([[config.rowCount]]);
    const coverage = (answer.body as { coverage?: { percent?: unknown } }).coverage;
    expect(coverage?.percent).toBe(100);
  });

  it.each(cases.map((c) => [caseTitle(c), c] as const))('%s', async (_title, c) => {
    const running = leaf as LeafProcess;
    const query = async (sql: string) => {
      try {
        return await queryShoal(running.url, sql);
      } catch (error) {
        throw new Error(`${(error as Error).message} (${(error as { cause?: Error }).cause?.message ?? 'no cause'})${leafState(running)}`, { cause: error });
      }
    };
    const outcome = await runCase(c, { duck: duck as DuckDb, queryShoal: query });
    if (!outcome.ok) expect.fail(`${c.sql}\n${outcome.message}\n(data: ${describeDataConfig(config)})`);
  }, CASE_TIMEOUT_MS);
});
