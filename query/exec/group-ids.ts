/**
 * Group ids of a scan: each selected row of a block -> a dense group id, with the key tuple of
 * every group kept once (docs/engine.md, "Grouping").
 *
 * - One string column key: its dictionary entries carry this thread's string codes
 *   (query/storage/string-codes.ts), so a row's group is `byCode[gcode[code[row]]]`, two array
 *   reads; a key string is touched only when its group is created.
 * - Several keys: each key value gets an id that holds for the whole scan (`KeyIds`: string
 *   codes, or a map of the values seen), and the ids are combined pairwise through a typed-array
 *   hash table (pair-table.ts). No tuple text is built per row or per block.
 * - Other single keys (numbers, times, booleans, computed strings): through a map of values,
 *   skipping runs of equal values.
 *
 * A key position may be *coded* (scan.ts decides, per scan): a string column whose groups are
 * keyed by the leaf's string codes (string-codes.ts, `leafSpace`) rather than by strings, so the
 * partial carries codes and the leaf merges them by index. Its keys are codes, or null.
 *
 * Every new group is counted against LIMITS.queryGroupBytesMax (group-key.ts).
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Scalar } from '../plan/plan.js';
import { leafSpaceSize, threadCodes } from '../storage/string-codes.js';
import { GroupBudget, singleKey } from './group-key.js';
import { PairTable } from './pair-table.js';
import { rowValue, type Vec } from './vector.js';

/** Ids combined per key: 2^26 (LIMITS.threadStringCodesMax is at most this). */
const ID_BITS = 26;
const ID_RADIX = 2 ** ID_BITS;

function growFilled(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  const b = new Int32Array(Math.max(n, a.length * 2, 1024)).fill(-1);
  b.set(a);
  return b;
}

/** Global group table of one scan: key tuples -> dense group ids, bounded by memory. */
export class Groups {
  /** Key values by key position: keys[k][g] is key k of group g. */
  readonly keys: Scalar[][];
  count = 0;
  private readonly single = new Map<Scalar, number>();
  private readonly budget: GroupBudget;
  /** One string key: thread string code -> group id, -1 when none yet. */
  byCode: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Several keys: the ids of each key position, and the pairwise combination maps. */
  readonly keyIds: KeyIds[];
  readonly stages: PairTable[];
  stageCounts: number[];

  /** Key positions keyed by the leaf's string codes (see the file comment). */
  readonly coded: readonly boolean[];

  constructor(keyCount: number, aggCount: number, private readonly onNew: (count: number) => void, coded: readonly boolean[] = []) {
    this.budget = new GroupBudget(aggCount);
    this.coded = Array.from({ length: keyCount }, (_, k) => coded[k] === true);
    this.keys = Array.from({ length: keyCount }, () => []);
    this.keyIds = keyCount > 1 ? Array.from({ length: keyCount }, (_, k) => new KeyIds(this.coded[k]!)) : [];
    this.stages = keyCount > 1 ? Array.from({ length: keyCount - 1 }, () => new PairTable()) : [];
    this.stageCounts = this.stages.map(() => 0);
  }

  /** The group of one key value (the value path: numbers, computed keys, NULL). */
  id(values: Scalar[]): number {
    const k = singleKey(values[0]!);
    let g = this.single.get(k);
    if (g === undefined) { g = this.push(values); this.single.set(k, g); }
    return g;
  }

  /** A group for a tuple known to be new (the combination maps or the code table say so). */
  fresh(values: Scalar[]): number { return this.push(values); }

  private push(values: Scalar[]): number {
    const g = this.count++;
    this.budget.add(values, g + 1);
    for (let k = 0; k < values.length; k++) this.keys[k]!.push(values[k]!);
    this.onNew(g + 1);
    return g;
  }
}

/** Ids of one key position over a whole scan: a value keeps its id from block to block. */
export class KeyIds {
  readonly values: Scalar[] = [];
  private readonly index = new Map<Scalar, number>();
  private byCode: Int32Array<ArrayBuffer> = new Int32Array(0);
  private nullId = -1;
  /** Coded: ids by the leaf's code, and a value is the code. */
  constructor(private readonly coded = false) {}

  private add(x: Scalar): number {
    const id = this.values.length;
    if (id >= ID_RADIX) throw new ShoalError('SHOAL_ERR_QUERY_GROUP_LIMIT', `a GROUP BY key has more than ${ID_RADIX} distinct values in one scan; group by fewer or coarser keys`);
    this.values.push(x);
    return id;
  }

  private ofValue(x: Scalar): number {
    if (x === null) { if (this.nullId < 0) this.nullId = this.add(null); return this.nullId; }
    const k = singleKey(x);
    let id = this.index.get(k);
    if (id === undefined) { id = this.add(x === 0 ? 0 : x); this.index.set(k, id); }
    return id;
  }

  /** Writes the id of each selected row's value into `out[row]`. */
  fill(v: Vec, sel: Int32Array, count: number, out: Int32Array): void {
    if (this.coded && v.t === 'str') {
      const lc = leafCodesOf(v);
      this.byCode = growFilled(this.byCode, leafSpaceSize());
      const byCode = this.byCode; const codes = v.codes; const nulls = v.nulls;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) { out[r] = this.ofValue(null); continue; }
        const code = lc[codes[r]!]!;
        let id = byCode[code]!;
        if (id < 0) { id = this.add(code); byCode[code] = id; }
        out[r] = id;
      }
      return;
    }
    if (this.coded) checkCodedConst(v);
    if (v.t === 'str' && v.gcodes !== null) {
      this.byCode = growFilled(this.byCode, threadCodes.size);
      const byCode = this.byCode; const gc = v.gcodes; const codes = v.codes; const nulls = v.nulls;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) { out[r] = this.ofValue(null); continue; }
        const code = gc[codes[r]!]!;
        let id = byCode[code]!;
        if (id < 0) {
          const s = threadCodes.stringAt(code);
          id = this.index.get(s) ?? -1;
          if (id < 0) { id = this.add(s); this.index.set(s, id); }
          byCode[code] = id;
        }
        out[r] = id;
      }
      return;
    }
    if (v.t === 'const') { const id = this.ofValue(v.v); for (let i = 0; i < count; i++) out[sel[i]!] = id; return; }
    let last: Scalar = undefined as unknown as Scalar;
    let lastId = -1;
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      const x = rowValue(v, r);
      if (x !== last || lastId < 0) { last = x; lastId = this.ofValue(x); }
      out[r] = lastId;
    }
  }
}

/** The leaf's codes of a coded key's vector: on the leaf's main thread its own code map (its
 * table is the leaf's), in a worker the map the task gave. */
function leafCodesOf(v: Extract<Vec, { t: 'str' }>): Int32Array {
  const lc = threadCodes.isLeafSpace ? v.gcodes : v.lcodes ?? null;
  if (lc === null) throw new ShoalError('SHOAL_ERR_INTERNAL', 'a string key grouped by the leaf\'s codes has no code map in one block');
  return lc;
}

/** A coded key position meets only its strings or, in a block without the column, NULL. */
function checkCodedConst(v: Vec): void {
  if (v.t !== 'const' || v.v !== null) throw new ShoalError('SHOAL_ERR_INTERNAL', `a string key grouped by the leaf's codes met a ${v.t} vector`);
}

/** Reused per-row buffers: a block has at most blockRowsMax rows. */
let gidBuffer = new Int32Array(0);
let localIds = new Int32Array(0);
function localBuffer(n: number): Int32Array {
  if (localIds.length < n) localIds = new Int32Array(Math.max(n, 4096));
  return localIds;
}
let idBuffers: Int32Array[] = [];

function buffer(rowCount: number): Int32Array {
  if (gidBuffer.length < rowCount) gidBuffer = new Int32Array(Math.max(rowCount, LIMITS.blockRowsMax));
  return gidBuffer;
}

/** Group id per selected row (indexed by row), creating groups for new key tuples. */
export function groupIds(keys: readonly Vec[], groups: Groups, sel: Int32Array, count: number, rowCount: number): Int32Array {
  const gids = buffer(rowCount);
  if (keys.length === 1) {
    const v = keys[0]!;
    const coded = groups.coded[0]!;
    if (coded && v.t !== 'str') checkCodedConst(v);
    if (v.t === 'str' && (coded || v.gcodes !== null)) {
      // Coded: the group's key is the leaf's code, else the thread's string.
      // The map first: reading it may add codes (a column's map is made on first read).
      const gc = coded ? leafCodesOf(v) : v.gcodes!;
      groups.byCode = growFilled(groups.byCode, coded ? leafSpaceSize() : threadCodes.size);
      const byCode = groups.byCode; const codes = v.codes; const nulls = v.nulls;
      const keyOf = (code: number): Scalar => (coded ? code : threadCodes.stringAt(code));
      let nullG = -1;
      if (count === rowCount && nulls === null) {
        // Every row selected: every dictionary entry is some row's value, so map the entries to
        // groups first (a small table that stays in cache), then one read a row.
        const local = localBuffer(gc.length);
        for (let d = 0; d < gc.length; d++) {
          const code = gc[d]!;
          let g = byCode[code]!;
          if (g < 0) { g = groups.fresh([keyOf(code)]); byCode[code] = g; }
          local[d] = g;
        }
        for (let r = 0; r < rowCount; r++) gids[r] = local[codes[r]!]!;
        return gids;
      }
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) { if (nullG < 0) nullG = groups.id([null]); gids[r] = nullG; continue; }
        const code = gc[codes[r]!]!;
        let g = byCode[code]!;
        if (g < 0) { g = groups.fresh([keyOf(code)]); byCode[code] = g; }
        gids[r] = g;
      }
      return gids;
    }
    // Numbers (time buckets, ints) and computed keys: consecutive rows often share a key.
    let last: Scalar = undefined as unknown as Scalar;
    let lastG = -1;
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      const x = rowValue(v, r);
      if (x !== last || lastG < 0) { last = x; lastG = groups.id([x === 0 ? 0 : x]); }
      gids[r] = lastG;
    }
    return gids;
  }
  // Several keys: stable ids per key, combined pairwise into dense ids; the last stage's ids are
  // group ids.
  while (idBuffers.length < keys.length) idBuffers.push(new Int32Array(0));
  for (let k = 0; k < keys.length; k++) {
    if (idBuffers[k]!.length < rowCount) idBuffers[k] = new Int32Array(Math.max(rowCount, LIMITS.blockRowsMax));
    groups.keyIds[k]!.fill(keys[k]!, sel, count, idBuffers[k]!);
  }
  const last = keys.length - 2;
  const ids0 = idBuffers[0]!;
  let prevA = -1; let prevB = -1; let prevOut = -1;
  for (let i = 0; i < count; i++) {
    const r = sel[i]!;
    let cur = ids0[r]!;
    for (let s = 0; s <= last; s++) {
      const next = idBuffers[s + 1]![r]!;
      // Runs of equal keys are common (sorted or bursty data): skip the map for a repeat.
      if (s === 0 && cur === prevA && next === prevB) { cur = prevOut; continue; }
      const stage = groups.stages[s]!;
      let out = stage.get(cur, next);
      if (out < 0) {
        if (s === last) out = groups.fresh(groups.keyIds.map((kid, k) => kid.values[idBuffers[k]![r]!]!));
        else {
          out = groups.stageCounts[s]!;
          if (out >= ID_RADIX) throw new ShoalError('SHOAL_ERR_QUERY_GROUP_LIMIT', `a GROUP BY has more than ${ID_RADIX} distinct key prefixes in one scan; group by fewer or coarser keys`);
          groups.stageCounts[s] = out + 1;
        }
        stage.insert(cur, next, out);
      }
      if (s === 0) { prevA = cur; prevB = next; prevOut = out; }
      cur = out;
    }
    gids[r] = cur;
  }
  return gids;
}
