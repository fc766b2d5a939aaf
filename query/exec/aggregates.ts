/**
 * Aggregate states (DuckDB style: init / update / merge / finalize), one object per aggregate
 * call holding the state of every group in struct-of-arrays form, so an update is a tight loop
 * over the selected rows of a block: `state[gid[row]] op= value[row]`.
 *
 * A state serialises to a JSON-safe value per group (the partial-result protocol between a leaf
 * and an aggregator) and merges from it. Merging is exact for count, sum, avg, min, max and
 * count(DISTINCT); approx_count_distinct (HyperLogLog, hll.ts) and approx_quantile (relative-
 * error sketch, quantile.ts) merge without losing accuracy beyond their stated bounds.
 */
import { hashNumber, hashOut, hashString, hashStrings } from '../functions/hash.js';
import { leafSpace, threadCodes } from '../storage/string-codes.js';
import { Hll } from '../functions/hll.js';
import type { AggFn, Scalar } from '../plan/plan.js';
import { compareValues } from '../plan/scalar.js';
import { rowValue, type Vec } from './vector.js';
import { decScalar, encScalar, intResult } from '../plan/wire.js';
import type { StateColumn } from '../plan/partial.js';
import { adoptByMerge, growU8, list, type AggState } from './agg-state.js';
import { ApproxQuantile, ExactQuantile, SketchSet } from './quantile-states.js';
import { CountDistinct } from './count-distinct.js';

export { distinctToCoded, distinctToValues } from './count-distinct.js';

export type { AggState } from './agg-state.js';

/**
 * The columns of each aggregate's state in a partial, and their kind: `f64`/`u8` typed arrays,
 * `list` an array (one entry a group) or, for `list?`, null when no group has one. A partial
 * from another process is checked against these before any merge (query/merge/partial-wire.ts).
 */
export const STATE_FIELDS: Readonly<Record<AggFn, Readonly<Record<string, 'f64' | 'u8' | 'list' | 'list?'>>>> = {
  count_star: { n: 'f64' },
  count: { n: 'f64' },
  sum: { hi: 'f64', lo: 'f64', n: 'f64', f: 'f64', sawFloat: 'u8' },
  avg: { hi: 'f64', lo: 'f64', n: 'f64', f: 'f64', sawFloat: 'u8' },
  min: { nums: 'f64', has: 'u8', others: 'list?' },
  max: { nums: 'f64', has: 'u8', others: 'list?' },
  count_distinct: { sets: 'list' },
  approx_count_distinct: { sketches: 'list' },
  approx_quantile: { sketches: 'list?' },
  quantile_cont: { vals: 'list' },
  quantile_disc: { vals: 'list' },
};

const f64 = (col: StateColumn, name: string) => col[name] as Float64Array;
const u8 = (col: StateColumn, name: string) => col[name] as Uint8Array;
const copyF64 = (a: Float64Array, n: number) => a.slice(0, n);
const copyU8 = (a: Uint8Array, n: number) => a.slice(0, n);

function growF64(a: Float64Array, n: number): Float64Array {
  if (a.length >= n) return a;
  const b = new Float64Array(Math.max(n, a.length * 2, 16));
  b.set(a);
  return b;
}

const isNull = (v: Vec, row: number): boolean =>
  v.t === 'const' ? v.v === null : v.t === 'bool' ? v.v[row] === 1 : v.nulls !== null && v.nulls[row] === 1;

/** True when sel[0..count) is 0, 1, ..., count-1 (a block without WHERE): rows index directly.
 * A selection is strictly increasing, so its ends decide. */
export const isIdentity = (sel: Int32Array, count: number) => count > 0 && sel[0] === 0 && sel[count - 1] === count - 1;

class CountStar implements AggState {
  counts: Float64Array = new Float64Array(0);
  ensure(n: number): void { this.counts = growF64(this.counts, n); }
  update(gids: Int32Array | null, sel: Int32Array, count: number): void {
    const c = this.counts;
    if (gids === null) { c[0]! += count; return; }
    if (isIdentity(sel, count)) { for (let r = 0; r < count; r++) c[gids[r]!]!++; return; }
    for (let i = 0; i < count; i++) c[gids[sel[i]!]!]!++;
  }
  column(n: number): StateColumn { return { n: copyF64(this.counts, n) }; }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void { const c = this.counts; const x = f64(col, 'n'); for (let i = 0; i < n; i++) c[into[i]!]! += x[i]!; }
  adopt(col: StateColumn, n: number): void { this.counts = copyF64(f64(col, 'n'), n); }
  final(g: number): Scalar { return this.counts[g]!; }
}

class Count implements AggState {
  counts: Float64Array = new Float64Array(0);
  ensure(n: number): void { this.counts = growF64(this.counts, n); }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    const c = this.counts;
    if (v === null || v.t === 'const') {
      if (v !== null && v.v === null) return;
      if (gids === null) { c[0]! += count; return; }
      for (let i = 0; i < count; i++) c[gids[sel[i]!]!]!++;
      return;
    }
    const nulls = v.t === 'bool' ? null : v.nulls;
    if (v.t !== 'bool' && nulls === null) {
      if (gids === null) { c[0]! += count; return; }
      for (let i = 0; i < count; i++) c[gids[sel[i]!]!]!++;
      return;
    }
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      if (isNull(v, r)) continue;
      c[gids === null ? 0 : gids[r]!]!++;
    }
  }
  column(n: number): StateColumn { return { n: copyF64(this.counts, n) }; }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void { const c = this.counts; const x = f64(col, 'n'); for (let i = 0; i < n; i++) c[into[i]!]! += x[i]!; }
  adopt(col: StateColumn, n: number): void { this.counts = copyF64(f64(col, 'n'), n); }
  final(g: number): Scalar { return this.counts[g]!; }
}

const TWO32 = 4294967296;
const EXACT = 9007199254740992; // 2^53

/**
 * sum / avg. Integer arguments are summed exactly (DuckDB sums BIGINT into a HUGEINT): per group
 * two float words, `hi` in units of 2^32 and `lo`, with every step exact. A block is added
 * with a plain `lo += x` loop while a bound on |lo| says no partial sum can pass 2^53 (Int32
 * blocks: at most 2^31 per row); otherwise the groups are first normalized (|lo| < 2^32), and
 * values too large for the bound are split into their 2^32 words row by row. Exact through
 * +-2^85; the final value is a number while exact as one, else a bigint (wire.ts).
 * Float arguments are summed in float64 (`f`), as DuckDB does; a group that saw any float is
 * a float. The state on the wire: [hi, lo, count, f, sawFloat].
 */
class Sum implements AggState {
  hi: Float64Array = new Float64Array(0);
  lo: Float64Array = new Float64Array(0);
  f: Float64Array = new Float64Array(0);
  counts: Float64Array = new Float64Array(0);
  sawFloat: Uint8Array = new Uint8Array(0);
  /** Upper bound of |lo| over every group; `small`: every |lo| < 2^32 (normalized). */
  private loBound = 0;
  private small = true;
  constructor(private readonly avg: boolean, private readonly intArg: boolean) {}
  ensure(n: number): void {
    this.hi = growF64(this.hi, n); this.lo = growF64(this.lo, n); this.f = growF64(this.f, n);
    this.counts = growF64(this.counts, n); this.sawFloat = growU8(this.sawFloat, n);
  }
  private normalize(): void {
    const hi = this.hi; const lo = this.lo;
    for (let g = 0; g < lo.length; g++) {
      const x = lo[g]!;
      if (x > -TWO32 && x < TWO32) continue;
      const carry = Math.trunc(x / TWO32);
      hi[g]! += carry; lo[g] = x - carry * TWO32;
    }
    this.loBound = TWO32;
    this.small = true;
  }
  private addExact(g: number, x: number): void {
    const h = Math.trunc(x / TWO32);
    this.hi[g]! += h;
    const l = this.lo[g]! + (x - h * TWO32);
    if (l > -TWO32 && l < TWO32) this.lo[g] = l;
    else { const c = Math.trunc(l / TWO32); this.hi[g]! += c; this.lo[g] = l - c * TWO32; }
  }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null || v.t === 'const') {
      if (v === null || typeof v.v !== 'number') return;
      const x = v.v;
      for (let i = 0; i < count; i++) {
        const g = gids === null ? 0 : gids[sel[i]!]!;
        if (this.intArg && Number.isInteger(x)) this.addExact(g, x); else { this.f[g]! += x; this.sawFloat[g] = 1; }
        this.counts[g]!++;
      }
      this.loBound = Math.max(this.loBound, TWO32);
      return;
    }
    if (v.t !== 'num') return;
    const vals = v.v; const nulls = v.nulls; const c = this.counts;
    if (!this.intArg) {
      const s = this.f; const fl = this.sawFloat;
      if (gids === null) {
        let acc = 0; let k = 0;
        if (nulls === null) { for (let i = 0; i < count; i++) acc += vals[sel[i]!]!; k = count; }
        else for (let i = 0; i < count; i++) { const r = sel[i]!; if (nulls[r] === 0) { acc += vals[r]!; k++; } }
        s[0]! += acc; c[0]! += k; if (k > 0) fl[0] = 1;
        return;
      }
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const g = gids[r]!; s[g]! += vals[r]!; c[g]!++; fl[g] = 1;
      }
      return;
    }
    // Integers: the largest |x| this block can add decides between the plain and the split loop.
    let m = 2147483648;
    if (!(vals instanceof Int32Array)) {
      m = 0;
      for (let i = 0; i < count; i++) { const x = Math.abs(vals[sel[i]!]!); if (x > m) m = x; }
    }
    if (this.loBound + count * m >= EXACT) this.normalize();
    const lo = this.lo;
    if (this.loBound + count * m < EXACT) {
      this.loBound += count * m;
      this.small = false;
      if (gids === null) {
        let acc = 0; let k = 0;
        if (nulls === null) { for (let i = 0; i < count; i++) acc += vals[sel[i]!]!; k = count; }
        else for (let i = 0; i < count; i++) { const r = sel[i]!; if (nulls[r] === 0) { acc += vals[r]!; k++; } }
        lo[0]! += acc; c[0]! += k;
        return;
      }
      if (nulls === null) for (let i = 0; i < count; i++) { const r = sel[i]!; const g = gids[r]!; lo[g]! += vals[r]!; c[g]!++; }
      else for (let i = 0; i < count; i++) { const r = sel[i]!; if (nulls[r] === 1) continue; const g = gids[r]!; lo[g]! += vals[r]!; c[g]!++; }
      return;
    }
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      if (nulls !== null && nulls[r] === 1) continue;
      const g = gids === null ? 0 : gids[r]!;
      this.addExact(g, vals[r]!); c[g]!++;
    }
    this.loBound = TWO32;
  }
  column(n: number): StateColumn {
    if (!this.small) this.normalize();
    return { hi: copyF64(this.hi, n), lo: copyF64(this.lo, n), n: copyF64(this.counts, n), f: copyF64(this.f, n), sawFloat: copyU8(this.sawFloat, n) };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const hi = f64(col, 'hi'); const lo = f64(col, 'lo'); const cn = f64(col, 'n'); const f = f64(col, 'f'); const fl = u8(col, 'sawFloat');
    for (let i = 0; i < n; i++) {
      const g = into[i]!;
      this.hi[g]! += hi[i]!;
      this.addExact(g, lo[i]!);
      this.counts[g]! += cn[i]!;
      this.f[g]! += f[i]!;
      if (fl[i] === 1) this.sawFloat[g] = 1;
    }
    if (this.loBound < TWO32) this.loBound = TWO32;
  }
  /** The exact integer part of group g. */
  private exact(g: number): number | bigint {
    const h = this.hi[g]!; const l = this.lo[g]!;
    if (h === 0) return l;
    if (Math.abs(h) < 1048576 && Math.abs(l) < TWO32) return h * TWO32 + l;
    return intResult(BigInt(h) * 4294967296n + BigInt(l));
  }
  /** The columns as they are (a merge's, exact words): finish reads them, nothing is added. */
  adopt(col: StateColumn, n: number): void {
    this.hi = copyF64(f64(col, 'hi'), n); this.lo = copyF64(f64(col, 'lo'), n); this.f = copyF64(f64(col, 'f'), n);
    this.counts = copyF64(f64(col, 'n'), n); this.sawFloat = copyU8(u8(col, 'sawFloat'), n);
    // Unknown bounds on lo: any later update normalizes first.
    this.loBound = EXACT; this.small = false;
  }
  final(g: number): Scalar {
    if (this.counts[g] === 0) return null;
    const whole = this.exact(g);
    if (this.sawFloat[g] === 1) {
      const total = Number(whole) + this.f[g]!;
      return this.avg ? total / this.counts[g]! : total;
    }
    return this.avg ? Number(whole) / this.counts[g]! : whole;
  }
}

/** min / max: numbers in a typed array; strings, booleans and times through the generic path. */
class MinMax implements AggState {
  nums: Float64Array = new Float64Array(0);
  has: Uint8Array = new Uint8Array(0);
  others: Scalar[] = [];
  constructor(private readonly isMax: boolean) {}
  ensure(n: number): void { this.nums = growF64(this.nums, n); this.has = growU8(this.has, n); while (this.others.length < n) this.others.push(null); }
  private offer(g: number, x: Scalar): void {
    if (x === null) return;
    if (typeof x === 'number' && this.others[g] === null) {
      if (this.has[g] === 0 || (this.isMax ? x > this.nums[g]! : x < this.nums[g]!)) { this.nums[g] = x; this.has[g] = 1; }
      return;
    }
    const cur = this.has[g] === 1 ? this.nums[g]! : this.others[g]!;
    if (cur === null || (this.isMax ? compareValues(x, cur) > 0 : compareValues(x, cur) < 0)) { this.others[g] = x; this.has[g] = 0; }
  }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null) return;
    if (v.t === 'num') {
      const vals = v.v; const nulls = v.nulls; const nums = this.nums; const has = this.has;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const g = gids === null ? 0 : gids[r]!;
        const x = vals[r]!;
        if (this.others[g] !== null) { this.offer(g, x); continue; }
        if (has[g] === 0) { nums[g] = x; has[g] = 1; } else if (this.isMax ? x > nums[g]! : x < nums[g]!) nums[g] = x;
      }
      return;
    }
    if (v.t === 'str') {
      // Compare per row by code; the block dictionary is decoded once.
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (v.nulls !== null && v.nulls[r] === 1) continue;
        this.offer(gids === null ? 0 : gids[r]!, v.dict[v.codes[r]!]!);
      }
      return;
    }
    for (let i = 0; i < count; i++) { const r = sel[i]!; this.offer(gids === null ? 0 : gids[r]!, rowValue(v, r)); }
  }
  column(n: number): StateColumn {
    let others: unknown[] | null = null;
    for (let g = 0; g < n; g++) if (this.others[g] !== null) { others ??= new Array(n).fill(null); others[g] = encScalar(this.others[g]!); }
    return { nums: copyF64(this.nums, n), has: copyU8(this.has, n), others };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const nums = f64(col, 'nums'); const has = u8(col, 'has'); const others = list(col, 'others');
    for (let i = 0; i < n; i++) {
      if (has[i] === 1) this.offer(into[i]!, nums[i]!);
      else if (others !== null && others[i] !== null) this.offer(into[i]!, decScalar(others[i]));
    }
  }
  adopt(col: StateColumn, n: number): void { adoptByMerge(this, col, n); }
  final(g: number): Scalar { return this.has[g] === 1 ? this.nums[g]! : this.others[g] ?? null; }
}

/** Hashes of this thread's string codes (two words each), computed once per string, when a
 * block first needs it. */
let hashed = { generation: -1, done: new Uint8Array(0), pairs: new Int32Array(0) };

/** The hash pairs of a block's dictionary entries, through the thread's string codes. */
function codeHashes(gcodes: Int32Array): Int32Array {
  if (hashed.generation !== threadCodes.generation) hashed = { generation: threadCodes.generation, done: new Uint8Array(0), pairs: new Int32Array(0) };
  const size = threadCodes.size;
  if (hashed.done.length < size) {
    const n = Math.max(size, 2 * hashed.done.length);
    const done = new Uint8Array(n); done.set(hashed.done);
    const pairs = new Int32Array(2 * n); pairs.set(hashed.pairs);
    hashed.done = done; hashed.pairs = pairs;
  }
  const out = new Int32Array(gcodes.length * 2);
  const { done, pairs } = hashed;
  for (let i = 0; i < gcodes.length; i++) {
    const c = gcodes[i]!;
    if (done[c] === 0) { hashString(threadCodes.stringAt(c)); pairs[2 * c] = hashOut[0]!; pairs[2 * c + 1] = hashOut[1]!; done[c] = 1; }
    out[2 * i] = pairs[2 * c]!; out[2 * i + 1] = pairs[2 * c + 1]!;
  }
  return out;
}

class ApproxDistinct implements AggState {
  sketches: (Hll | null)[] = [];
  ensure(n: number): void { while (this.sketches.length < n) this.sketches.push(null); }
  private at(g: number): Hll { return (this.sketches[g] ??= new Hll()); }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null || v.t === 'const') { if (v !== null && v.v !== null) for (let i = 0; i < count; i++) this.addScalar(gids === null ? 0 : gids[sel[i]!]!, v.v); return; }
    if (v.t === 'str' && v.lcodes !== undefined && leafSpace.hashes !== null && !threadCodes.isLeafSpace) {
      // The leaf's codes and their hashes, made once on the leaf's main thread.
      const pairs = leafSpace.hashes; const lc = v.lcodes; const codes = v.codes; const nulls = v.nulls;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const c = lc[codes[r]!]!;
        this.at(gids === null ? 0 : gids[r]!).addHash(pairs[2 * c]!, pairs[2 * c + 1]!);
      }
      return;
    }
    if (v.t === 'str') {
      const pairs = v.gcodes !== null ? codeHashes(v.gcodes) : new Int32Array(v.dict.length * 2);
      if (v.gcodes === null) hashStrings(v.dict, pairs);
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (v.nulls !== null && v.nulls[r] === 1) continue;
        const c = v.codes[r]!;
        this.at(gids === null ? 0 : gids[r]!).addHash(pairs[2 * c]!, pairs[2 * c + 1]!);
      }
      return;
    }
    if (v.t === 'num') {
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (v.nulls !== null && v.nulls[r] === 1) continue;
        hashNumber(v.v[r]!);
        this.at(gids === null ? 0 : gids[r]!).addHash(hashOut[0]!, hashOut[1]!);
      }
      return;
    }
    for (let i = 0; i < count; i++) { const r = sel[i]!; const x = rowValue(v, r); if (x !== null) this.addScalar(gids === null ? 0 : gids[r]!, x); }
  }
  private addScalar(g: number, x: Scalar): void {
    if (typeof x === 'number') this.at(g).addNumber(x);
    else this.at(g).addString(typeof x === 'string' ? x : JSON.stringify(x));
  }
  column(n: number): StateColumn {
    const sketches: unknown[] = new Array(n);
    for (let g = 0; g < n; g++) sketches[g] = this.sketches[g]?.serialize() ?? null;
    return { sketches };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const sketches = list(col, 'sketches')!;
    for (let i = 0; i < n; i++) if (sketches[i] !== null) this.at(into[i]!).merge(Hll.deserialize(sketches[i]));
  }
  adopt(col: StateColumn, n: number): void { adoptByMerge(this, col, n); }
  final(g: number): Scalar { return this.sketches[g] ? Math.round(this.sketches[g]!.estimate()) : 0; }
}

export function createAggState(fn: AggFn, q: number | null, intArg = false): AggState {
  switch (fn) {
    case 'count_star': return new CountStar();
    case 'count': return new Count();
    case 'sum': return new Sum(false, intArg);
    case 'avg': return new Sum(true, intArg);
    case 'min': return new MinMax(false);
    case 'max': return new MinMax(true);
    case 'count_distinct': return new CountDistinct();
    case 'approx_count_distinct': return new ApproxDistinct();
    case 'approx_quantile': return new ApproxQuantile(q!, new SketchSet(), true);
    case 'quantile_cont': return new ExactQuantile(q!, false);
    case 'quantile_disc': return new ExactQuantile(q!, true);
  }
}

/**
 * The states of a query's aggregate calls, in plan order. Quantiles of the same argument share
 * one sketch (the first call owns it): p50(x), p90(x) and p99(x) cost one sketch update per row.
 * Scans and merges must both build their states here, so the owner is the same call everywhere.
 */
export function createAggStates(aggs: readonly { fn: AggFn; q: number | null; argKey: string; intArg?: boolean }[]): AggState[] {
  const shared = new Map<string, SketchSet>();
  return aggs.map((a) => {
    if (a.fn !== 'approx_quantile') return createAggState(a.fn, a.q, a.intArg ?? false);
    const set = shared.get(a.argKey);
    if (set !== undefined) return new ApproxQuantile(a.q!, set, false);
    const fresh = new SketchSet();
    shared.set(a.argKey, fresh);
    return new ApproxQuantile(a.q!, fresh, true);
  });
}
