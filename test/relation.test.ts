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

describe('a DATE column of a subquery', () => {
  // Two days at UTC midnight, and the text of the second at 09:30 that day.
  const day1 = 1_763_769_600;
  const day2 = day1 + 86_400;
  const iso = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);
  const over = async (sql: string, rows: unknown[][]) => (await runNested(planQuery(sql, 1_800_000_000), 1_800_000_000,
    async (p) => ({ result: { columns: p.outputs.length > 0 ? p.outputs.map((o) => ({ name: o.name, type: 'time' as const })) : p.projections.map((o) => ({ name: o.name, type: 'time' as const })), rows: rows as never, truncated: false }, extra: null }),
    async () => ({ tables: TABLES, extra: null }))).result;

  it('reads text compared with it as a DATE, and prints as one (DuckDB casts so)', async () => {
    const text = `'${iso(day2)}T09:30:00'`;
    // Grouped by a DATE key, and by an output that casts one (a plain rows subquery is flattened
    // into one table plan, flatten.ts, and compares on the leaf).
    for (const inner of ['SELECT time::DATE AS d FROM events GROUP BY d', 'SELECT CAST(max(time) AS DATE) AS d FROM events GROUP BY ok']) {
      const r = await over(`SELECT d, d::VARCHAR AS s FROM (${inner}) WHERE d >= ${text} ORDER BY d`, [[day1], [day2]]);
      expect(r.rows, inner).toEqual([[day2, iso(day2)]]);
    }
    // A timestamp is not a date: midnight is before 09:30.
    const t = await over(`SELECT t FROM (SELECT max(time) AS t FROM events GROUP BY ok) WHERE t >= ${text}`, [[day1], [day2]]);
    expect(t.rows).toEqual([]);
  });
});
