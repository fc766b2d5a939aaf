/**
 * The row count behind seal records (docs/durability.md "Blocks sealed since the checkpoint"):
 * the log segment rows are counted from (`base`: the walStart of the checkpoint in force), and
 * per table the offset that turns `Table.appendedRows` into the rows logged from `base` on, so a
 * block just sealed knows which rows of that count it holds. Not counting (base null) means no
 * seal records are written until the next checkpoint starts a count.
 */
import type { SealedBlock, Table } from '../../query/storage/table.js';
import type { SealMark } from './disk-log.js';
import type { SegmentRef } from './shm-blocks.js';

/** What a successor needs to go on counting: handed over in the meta segment. */
export interface SealState { base: number; rows: Record<string, number> }

export class SealCount {
  private base: number | null = null;
  private readonly offset = new Map<string, number>();

  /** Rows of `table` logged since the base (null: not counting). */
  private rowsSince(table: Table): number | null {
    return this.base === null ? null : table.appendedRows + (this.offset.get(table.name) ?? 0);
  }

  /** The seal record of `block`, just sealed into `ref` and holding the last rows appended to
   * `table` (null: not counting). */
  markFor(table: Table, block: SealedBlock, ref: SegmentRef): SealMark | null {
    const end = this.rowsSince(table);
    if (end === null) return null;
    return { base: this.base!, table: table.name, startRow: end - block.rowCount, rows: block.rowCount, segment: ref.segment, bytes: ref.bytes, crc: ref.crc, schema: table.schemaList().map((c) => [c.name, c.type]) };
  }

  /** Counts from log segment `base` (null: stops counting), with `rows` of each table logged
   * from it on; `tables` are the tables as they are now. */
  start(base: number | null, tables: Iterable<Table>, rows: Readonly<Record<string, number>> = {}): void {
    this.base = base;
    this.offset.clear();
    if (base === null) return;
    for (const t of tables) this.offset.set(t.name, (rows[t.name] ?? 0) - t.appendedRows);
    for (const [name, n] of Object.entries(rows)) if (!this.offset.has(name)) this.offset.set(name, n);
  }

  /** Counts on from a handed-over state when it is well-formed and counts from `walStart`; else
   * stops counting. */
  adopt(state: SealState | null, walStart: number, tables: Iterable<Table>): void {
    const ok = state !== null && state.base === walStart && typeof state.rows === 'object' && state.rows !== null &&
      Object.values(state.rows).every((n) => Number.isSafeInteger(n) && n >= 0);
    this.start(ok ? state.base : null, tables, ok ? state.rows : {});
  }

  /** The state to hand over (null: not counting). */
  state(tables: Iterable<Table>): SealState | null {
    if (this.base === null) return null;
    const rows: Record<string, number> = {};
    for (const t of tables) rows[t.name] = this.rowsSince(t)!;
    return { base: this.base, rows };
  }

  /** A function that puts the count back as it is now (a checkpoint that failed). */
  saved(): () => void {
    const base = this.base;
    const offset = new Map(this.offset);
    return () => {
      this.base = base;
      this.offset.clear();
      for (const [k, v] of offset) this.offset.set(k, v);
    };
  }
}
