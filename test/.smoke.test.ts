import { it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { generateEvents, EVENT_SCHEMA } from './support/gen.js';
import { DuckDBInstance } from '@duckdb/node-api';
it('smoke', async () => {
  const ev = generateEvents(42, 200_000, { nowSeconds: 1_700_000_040 });
  let t = Date.now();
  writeFileSync('/tmp/scratch/e.ndjson', ev.map((e) => JSON.stringify(e)).join('\n'));
  console.log('write ms', Date.now() - t);
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  for (const q of [
   "CREATE TABLE a AS SELECT * FROM read_json('/tmp/scratch/e.ndjson', format='newline_delimited', columns={time: 'DOUBLE', service: 'VARCHAR', endpoint: 'VARCHAR', country: 'VARCHAR', user_id: 'VARCHAR', region: 'VARCHAR', status: 'BIGINT', bytes: 'BIGINT', latency_ms: 'DOUBLE', is_error: 'BOOLEAN', tags: 'VARCHAR[]', city: 'VARCHAR', experiment: 'VARCHAR'})",
   "CREATE TABLE b AS SELECT * FROM read_json('/tmp/scratch/e.ndjson', format='newline_delimited', columns={time: 'DOUBLE', service: 'VARCHAR', endpoint: 'VARCHAR', country: 'VARCHAR', user_id: 'VARCHAR', region: 'VARCHAR', status: 'BIGINT', bytes: 'BIGINT', latency_ms: 'DOUBLE', is_error: 'BOOLEAN', tags: 'VARCHAR[]', city: 'VARCHAR', experiment: 'VARCHAR'}, maximum_object_size = 16777216)",
  ]) { t = Date.now(); await c.run(q); console.log(Date.now() - t, q.slice(0, 30)); }
}, 60000);
