/**
 * DuckDB as the reference engine: load events into an in-memory table `events` and run SQL,
 * returning results in the shape shoal answers with (`{ columns: [{name, type}], rows }`), with
 * values normalised to what JSON carries: 64/128-bit integers and DECIMAL as numbers, TIMESTAMP
 * and TIMESTAMPTZ as unix seconds (shoal reports time as seconds), lists as arrays. NaN stays NaN.
 *
 * The session is set up so DuckDB's semantics are the ones shoal promises: UTC time zone (a
 * TIMESTAMP compared with now(), a TIMESTAMPTZ, is read as UTC) and `ieee_floating_point_ops =
 * false`, so x/0 is NULL (DuckDB 1.5 defaults to IEEE: 1/0 = Infinity, 0/0 = NaN, which JSON
 * cannot carry anyway).
 *
 * Loading writes NDJSON to a temp file and reads it with `read_json` and an explicit column spec,
 * which takes about a second for 200k events (the appender would cost a JS call per value).
 * Not here: comparing results (compare.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DuckDBArrayValue,
  DuckDBConnection,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBIntervalValue,
  DuckDBListValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
} from '@duckdb/node-api';

export interface ColumnInfo { readonly name: string; readonly type: string }
/** A query result as shoal's HTTP API returns it (after JSON parsing). */
export interface ResultSet { readonly columns: readonly ColumnInfo[]; readonly rows: readonly (readonly unknown[])[] }

export interface DuckDb {
  readonly connection: DuckDBConnection;
  /** Columns of `events` with their DuckDB types, in table order. */
  readonly schema: readonly ColumnInfo[];
  readonly rowCount: number;
  query(sql: string): Promise<ResultSet>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Column types; inferred from the events when absent (`time` is always TIMESTAMP). */
  schema?: readonly ColumnInfo[];
  /** Table name (default 'events'). */
  table?: string;
}

const MICROS_PER_SECOND = 1_000_000;
const SECONDS_PER_DAY = 86_400;

/** Loads `events` (plain JSON objects; `time` in unix seconds) into a fresh in-memory DuckDB. */
export async function openDuckDb(events: readonly Record<string, unknown>[], opts: OpenOptions = {}): Promise<DuckDb> {
  const table = opts.table ?? 'events';
  const schema = opts.schema ?? inferSchema(events);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run("SET TimeZone = 'UTC'");
  await connection.run('SET ieee_floating_point_ops = false');

  const dir = await mkdtemp(join(tmpdir(), 'shoal-duckdb-'));
  try {
    const file = join(dir, 'events.ndjson');
    await writeFile(file, toNdjson(events));
    // Read everything as the JSON-level type, then convert time (seconds) to TIMESTAMP.
    const readSpec = schema.map((c) => `${sqlString(c.name)}: ${sqlString(c.type === 'TIMESTAMP' ? 'DOUBLE' : c.type)}`).join(', ');
    const selectList = schema.map((c) => {
      const id = quoteIdent(c.name);
      return c.type === 'TIMESTAMP' ? `make_timestamp(CAST(round(${id} * ${MICROS_PER_SECOND}) AS BIGINT)) AS ${id}` : id;
    }).join(', ');
    await connection.run(
      `CREATE TABLE ${quoteIdent(table)} AS SELECT ${selectList} FROM read_json(${sqlString(file)}, ` +
        `format = 'newline_delimited', columns = {${readSpec}}, maximum_object_size = 16777216)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const db: DuckDb = {
    connection,
    schema,
    rowCount: events.length,
    query: (sql) => queryDuckDb(db, sql),
    close: async () => {
      connection.closeSync();
      instance.closeSync();
    },
  };
  return db;
}

/** Runs `sql` and returns normalised columns and rows. DuckDB errors are thrown as they come. */
export async function queryDuckDb(db: DuckDb, sql: string): Promise<ResultSet> {
  const reader = await db.connection.runAndReadAll(sql);
  const columns = reader.columnNames().map((name, index) => ({ name, type: reader.columnType(index).toString() }));
  const rows = reader.getRows().map((row) => row.map(normaliseValue));
  return { columns, rows };
}

/** One DuckDB value to its JSON-shaped equivalent (see the module header). */
export function normaliseValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'object') return value;
  if (value instanceof DuckDBDecimalValue) return value.toDouble();
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) return Number(value.micros) / MICROS_PER_SECOND;
  if (value instanceof DuckDBTimestampSecondsValue) return Number(value.seconds);
  if (value instanceof DuckDBTimestampMillisecondsValue) return Number(value.millis) / 1000;
  if (value instanceof DuckDBTimestampNanosecondsValue) return Number(value.nanos) / 1e9;
  if (value instanceof DuckDBDateValue) return value.days * SECONDS_PER_DAY;
  if (value instanceof DuckDBIntervalValue) return (value.months * 30 + value.days) * SECONDS_PER_DAY + Number(value.micros) / MICROS_PER_SECOND;
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) return value.items.map(normaliseValue);
  return String(value);
}

/** Column types from the values: integers -> BIGINT, other numbers -> DOUBLE, arrays -> VARCHAR[]. */
export function inferSchema(events: readonly Record<string, unknown>[]): ColumnInfo[] {
  const kinds = new Map<string, Set<string>>();
  for (const event of events) {
    for (const [name, value] of Object.entries(event)) {
      if (value === null || value === undefined) {
        if (!kinds.has(name)) kinds.set(name, new Set());
        continue;
      }
      const kind = Array.isArray(value) ? 'list' : typeof value === 'number' ? (Number.isInteger(value) ? 'int' : 'float') : typeof value;
      let set = kinds.get(name);
      if (!set) kinds.set(name, (set = new Set()));
      set.add(kind);
    }
  }
  return [...kinds].map(([name, set]) => {
    if (name === 'time') return { name, type: 'TIMESTAMP' };
    if (set.has('list')) return { name, type: 'VARCHAR[]' };
    if (set.has('string')) return { name, type: 'VARCHAR' };
    if (set.has('float')) return { name, type: 'DOUBLE' };
    if (set.has('int')) return { name, type: 'BIGINT' };
    if (set.has('boolean')) return { name, type: 'BOOLEAN' };
    return { name, type: 'VARCHAR' }; // only nulls seen
  });
}

function toNdjson(events: readonly Record<string, unknown>[]): string {
  const lines: string[] = new Array(events.length);
  for (let index = 0; index < events.length; index++) lines[index] = JSON.stringify(events[index]);
  return lines.join('\n') + '\n';
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
