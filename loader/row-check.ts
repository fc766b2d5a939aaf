/**
 * The leaf's value rules (query/storage/ingest-decoder.ts), applied to one row at a time on the
 * loader's side, so that a bad row is rejected alone, with its file line, instead of failing the
 * whole batch it would travel in (a batch is atomic on the leaf). test/loader-unit.test.ts checks
 * on random rows that this accepts exactly what buildBatch accepts.
 *
 * Rules: a row is a flat object; field names 1..256 characters; numbers finite, integers within
 * 2^53; strings and set elements at most LIMITS.stringBytesMax UTF-8 bytes; arrays are string
 * sets of at most LIMITS.setElementsMax elements; nested objects are rejected. Each column keeps
 * one type for the whole load (int and float mix, as on the leaf), seeded from the table's
 * schema when it exists, so a row that would conflict on the leaf is caught here. A rejected row
 * teaches nothing: its new columns are not recorded.
 *
 * Not here: the time column (prepare.ts converts it before this check sees the row).
 */
import type { ErrorCode } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { BigIntTooLarge } from './source.js';

/** Column classes as the leaf checks them: int and float are one class. */
export type ValueClass = 'number' | 'string' | 'bool' | 'set';

export interface CheckProblem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly column?: string;
}

export class ColumnTypes {
  private readonly classes = new Map<string, ValueClass>();
  /** Columns the table has (including `time`): the leaf's per-table column limit counts them. */
  get size(): number { return this.classes.size + 1; }

  get(name: string): ValueClass | undefined { return this.classes.get(name); }

  /** Takes a column type as the server names it (int, float, string, bool, set, time). */
  seed(name: string, serverType: string): void {
    const cls = classOfServerType(serverType);
    if (cls !== null && name !== 'time') this.classes.set(name, cls);
  }

  set(name: string, cls: ValueClass): void { this.classes.set(name, cls); }

  /** Every column but `time`, with its class. */
  entries(): IterableIterator<[string, ValueClass]> { return this.classes.entries(); }
}

export function classOfServerType(type: string): ValueClass | null {
  switch (type) {
    case 'int': case 'float': return 'number';
    case 'string': return 'string';
    case 'bool': return 'bool';
    case 'set': return 'set';
    default: return null;
  }
}

function conflictMessage(key: string, value: unknown, cls: ValueClass, known: ValueClass): string {
  return `column "${key}": value of type ${cls === 'number' ? (Number.isInteger(value) ? 'int' : 'float') : cls} conflicts with the column's type ${known === 'number' ? 'int/float' : known}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(JSON.stringify(v)).slice(0, 40)}`;
}

function stringTooLong(s: string): boolean {
  // Only strings long enough to possibly exceed the limit pay for a byte count.
  return s.length > LIMITS.stringBytesMax / 3 && Buffer.byteLength(s) > LIMITS.stringBytesMax;
}

/** The class of one value, or a problem. Null/undefined values are the caller's (they are skipped). */
export function classOf(value: unknown, key: string): ValueClass | CheckProblem {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": number ${value} is not finite`, column: key };
      return 'number';
    case 'string':
      if (stringTooLong(value)) return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": string of ${Buffer.byteLength(value)} bytes exceeds the limit of ${LIMITS.stringBytesMax}`, column: key };
      return 'string';
    case 'boolean':
      return 'bool';
    case 'object':
      if (Array.isArray(value)) {
        if (value.length > LIMITS.setElementsMax) return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": set has ${value.length} elements; the limit is ${LIMITS.setElementsMax}`, column: key };
        for (const e of value) {
          if (typeof e !== 'string') return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": a set holds strings only, found ${describe(e)}`, column: key };
          if (stringTooLong(e)) return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": set element exceeds ${LIMITS.stringBytesMax} bytes`, column: key };
        }
        return 'set';
      }
      if (value instanceof BigIntTooLarge) {
        return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": integer ${value.value} is beyond 2^53 and cannot be stored exactly`, column: key };
      }
      return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": nested objects are not supported; flatten the event (e.g. "a.b": value) or drop the column with --skip-columns`, column: key };
    default:
      return { code: 'SHOAL_ERR_INGEST_VALUE', message: `column "${key}": unsupported value ${describe(value)}`, column: key };
  }
}

/**
 * Checks one row (whose `time`, if any, is already unix seconds) against the rules and the
 * column types seen so far; records the types of new columns when the row is good.
 */
export function checkRow(row: unknown, types: ColumnTypes): CheckProblem | null {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    return { code: 'SHOAL_ERR_INGEST_EVENT', message: `an event must be a JSON object, got ${describe(row)}` };
  }
  let fresh: [string, ValueClass][] | null = null;
  const r = row as Record<string, unknown>;
  for (const key in r) {
    if (key === 'time') continue;
    if (key.length === 0 || key.length > LIMITS.columnNameBytesMax) {
      return { code: 'SHOAL_ERR_INGEST_EVENT', message: `field name must be 1..${LIMITS.columnNameBytesMax} characters`, column: key.slice(0, 64) };
    }
    const value = r[key];
    if (value === null || value === undefined) continue;
    const cls = classOf(value, key);
    if (typeof cls === 'object') return cls;
    const known = types.get(key);
    if (known === undefined) {
      (fresh ??= []).push([key, cls]);
    } else if (known !== cls) {
      return { code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT', message: conflictMessage(key, value, cls, known), column: key };
    }
  }
  if (fresh !== null) {
    if (types.size + fresh.length > LIMITS.columnsPerTableMax) {
      return { code: 'SHOAL_ERR_INGEST_LIMIT', message: `column "${fresh[0]![0]}" would exceed the limit of ${LIMITS.columnsPerTableMax} columns per table`, column: fresh[0]![0] };
    }
    // Within one row a key appears once, so two entries of `fresh` never name the same column.
    for (const [key, cls] of fresh) types.set(key, cls);
  }
  return null;
}
