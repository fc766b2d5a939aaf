/**
 * Queries over rows that are already answers (query/merge/relation.ts): the catalog relations and
 * the refusal of a subquery cut by the result-row limit, without a server. The corpus checks the
 * same paths against DuckDB end to end (catalog.corpus, post-aggregate.corpus).
 */
import { describe, expect, it } from 'vitest';
import { planQuery } from '../query/engine.js';
import { catalogRelation, runNested, subqueryRelation, type CatalogTable } from '../query/merge/relation.js';
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';

const TABLES: CatalogTable[] = [
  { name: 'zeta', columns: [{ name: 'time', type: 'time' }] },
  { name: 'events', columns: [{ name: 'time', type: 'time' }, { name: 'n', type: 'int|float' }, { name: 'tags', type: 'set' }, { name: 'ok', type: 'bool' }] },
];
const run = async (sql: string) => (await runNested(planQuery(sql, 1_800_000_000), 1_800_000_000, async () => { throw new Error('no table query expected'); }, async () => ({ tables: TABLES, extra: null }))).result;

describe('catalog relations', () => {
  it('name DuckDB types, both of a column two leaves type differently, in column order', async () => {
    const r = await run("SELECT column_name, data_type, ordinal_position FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position");
    expect(r.rows).toEqual([['time', 'TIMESTAMP', 1], ['n', 'BIGINT|DOUBLE', 2], ['tags', 'VARCHAR[]', 3], ['ok', 'BOOLEAN', 4]]);
    expect(catalogRelation('tables', TABLES).rows.map((row) => row[2])).toEqual(['events', 'zeta']);
  });

  it('SHOW TABLES and DESCRIBE answer in DuckDB\'s columns', async () => {
    const show = await run('SHOW TABLES');
    expect(show.columns.map((c) => c.name)).toEqual(['name']);
    expect(show.rows).toEqual([['events'], ['zeta']]);
    const d = await run('DESCRIBE zeta');
    expect(d.columns.map((c) => c.name)).toEqual(['column_name', 'column_type', 'null', 'key', 'default', 'extra']);
    expect(d.rows).toEqual([['time', 'TIMESTAMP', 'YES', null, null, null]]);
  });
});

describe('a subquery cut by the result-row limit', () => {
  it('is refused as the outer query\'s input, never read short', () => {
    const cut = { columns: [{ name: 'a', type: 'int' as const }], rows: [[1]], truncated: true };
    let error: unknown;
    try { subqueryRelation(cut); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('SHOAL_ERR_QUERY_LIMIT');
    expect((error as ShoalError).message).toContain(String(LIMITS.resultRowsMax));
    expect(subqueryRelation({ ...cut, truncated: false }).rows).toEqual([[1]]);
  });
});
