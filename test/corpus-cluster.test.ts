/**
 * The query corpus through an aggregator over three leaf processes with the rows split at random:
 * the same cases as corpus.test.ts, every answer merged from partials sent over the wire
 * (test/support/corpus-targets.ts). Runs only when dist/ is built.
 */
import { corpusSuite } from './support/corpus-targets.js';

corpusSuite('cluster');
