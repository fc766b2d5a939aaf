/**
 * Lists of strings in Parquet read by loader/parquet-lists.ts against hyparquet's own reading of
 * the same column (parquetRead), on files DuckDB writes: seeded random lists with missing lists,
 * empty lists, missing elements, odd strings; dictionary and plain pages (low- and
 * high-cardinality elements); snappy, zstd and uncompressed; several row groups and pages. The
 * reader's rows must equal hyparquet's, value for value, and the shapes it declines (a list of
 * integers, a struct) must still be read by hyparquet.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringListShape } from '../loader/parquet-lists.js';
import { parquetSource } from '../loader/read-parquet.js';
import { mulberry32 } from './support/gen.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-pq-lists-'));
let duck: DuckDBConnection;
beforeAll(async () => { duck = await (await DuckDBInstance.create(':memory:')).connect(); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

function randomList(rnd: () => number, wide: boolean): (string | null)[] | null {
  const r = rnd();
  if (r < 0.08) return null;
  if (r < 0.16) return [];
  const n = 1 + Math.floor(rnd() * 6);
  return Array.from({ length: n }, (_, k) => {
    if (rnd() < 0.07) return null;
    if (wide) return `u${Math.floor(rnd() * 1e9)}-${k}`;
    return ['a', 'bb', 'é', '日本', 'quote "\'', '', 'tab\t'][Math.floor(rnd() * 7)]!;
  });
}

function listSql(v: (string | null)[] | null): string {
  if (v === null) return 'NULL';
  return `[${v.map((e) => (e === null ? 'NULL' : sqlString(e))).join(', ')}]::VARCHAR[]`;
}

/** The column as our reader gives it (through parquetSource, as a load reads it). */
async function ours(file: string, column: string): Promise<unknown[]> {
  const src = await parquetSource(file, fs.statSync(file).size, []);
  const out: unknown[] = [];
  for await (const c of src.chunks()) {
    const { names, values, from, to } = c.columnar!;
    const k = names.indexOf(column);
    for (let i = from; i < to; i++) out.push(values[k]![i] ?? null);
  }
  return out;
}

async function theirs(file: string, column: string): Promise<unknown[]> {
  const out: unknown[] = [];
  await parquetRead({
    file: await asyncBufferFromFile(file), columns: [column], compressors, utf8: true,
    onComplete: (rows) => { for (const r of rows as unknown[][]) out.push(r[0] ?? null); },
  });
  return out;
}

describe('Parquet lists of strings', () => {
  it('reads what hyparquet reads, on random DuckDB files of every encoding', async () => {
    const seed = Number(process.env.SHOAL_TEST_SEED ?? 20261203);
    console.log(`parquet-lists seed ${seed}`);
    const rnd = mulberry32(seed);
    let shaped = 0;
    for (const [codec, wide, rows, groupRows] of [
      ['snappy', false, 5_000, 1_024], ['zstd', true, 4_000, 1_500], ['uncompressed', false, 30_000, 100_000], ['snappy', true, 300, 64],
    ] as const) {
      const values = Array.from({ length: rows }, () => randomList(rnd, wide));
      await duck.run('CREATE OR REPLACE TABLE t (i INTEGER, tags VARCHAR[], nums INTEGER[], s STRUCT(a VARCHAR))');
      for (let from = 0; from < rows; from += 1_000) {
        const part = values.slice(from, from + 1_000).map((v, k) => `(${from + k}, ${listSql(v)}, [${from + k}, NULL], {'a': 'x'})`);
        await duck.run(`INSERT INTO t VALUES ${part.join(', ')}`);
      }
      const file = path.join(tmp, `lists-${codec}-${wide ? 'wide' : 'narrow'}.parquet`);
      await duck.run(`COPY (SELECT * FROM t ORDER BY i) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE ${groupRows})`);
      const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
      const schema = parquetSchema(metadata);
      const byName = new Map(schema.children.map((c) => [c.element.name, c]));
      expect(stringListShape(schema, byName.get('tags')!)).not.toBeNull();
      expect(stringListShape(schema, byName.get('nums')!)).toBeNull();
      expect(stringListShape(schema, byName.get('s')!)).toBeNull();
      const got = await ours(file, 'tags');
      expect(got).toEqual(await theirs(file, 'tags'));
      // And both as the rows were written.
      expect(got).toEqual(values);
      expect(await ours(file, 'nums')).toEqual(await theirs(file, 'nums'));
      shaped++;
    }
    expect(shaped).toBe(4);
  });
});
