/**
 * The query corpus with every scan on the leaf's worker pool (no inline scans): the same cases
 * as corpus.test.ts, judged against DuckDB the same way (test/support/corpus-targets.ts).
 */
import { corpusSuite } from './support/corpus-targets.js';

corpusSuite('pool');
