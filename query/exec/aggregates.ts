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
import { ShoalError } from '../errors.js';
import { hashNumber, hashOut, hashString, hashStrings } from '../functions/hash.js';
import { leafSpaceSize, threadCodes } from '../storage/string-codes.js';
import { Hll } from '../functions/hll.js';
import { LIMITS } from '../limits.js';
import type { AggFn, Scalar } from '../plan/plan.js';
import { compareValues } from '../plan/scalar.js';
import { rowValue, type Vec } from './vector.js';
import { decScalar, encScalar, intResult } from '../plan/wire.js';
import type { StateColumn } from '../plan/partial.js';
import { adoptByMerge, list, type AggState } from './agg-state.js';
import { ApproxQuantile, ExactQuantile, SketchSet } from './quantile-states.js';

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
function growU8(a: Uint8Array, n: number): Uint8Array {
  if (a.length >= n) return a;
  const b = new Uint8Array(Math.max(n, a.length * 2, 16));
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

/** A leaf-coded count(DISTINCT) column (CountDistinct) outside the leaf's main thread. */
function notLeaf(): never {
  throw new ShoalError('SHOAL_ERR_INTERNAL', 'a count(DISTINCT) state holds the leaf\'s string codes on a thread that cannot read them');
}

/**
 * Exact count(DISTINCT x): a set per group, bounded by LIMITS.distinctValuesMax in all. Without
 * GROUP BY, a string column's values are marked by their thread string code in a byte array
 * (one array write a row), and become strings once, when the state is read.
 *
 * Leaf codes (string-codes.ts, `leafSpace`): in a scan worker given the leaf's map of the column
 * the marks are the leaf's codes (`leafSeen`, `leafSets`), and the state column carries them as
 * they are; on the leaf's main thread the thread's codes are the leaf's, so its marks go out the
 * same way, and merging ORs them by index. Strings are made only for the wire (`distinctToValues`).
 * A group's count is read straight from its marks when it has no values besides them.
 */
class CountDistinct implements AggState {
  sets: Set<Scalar>[] = [];
  private total = 0;
  private codeSeen: Uint8Array = new Uint8Array(0);
  private codesMarked = 0;
  ensure(n: number): void { while (this.sets.length < n) this.sets.push(new Set()); }
  /** With GROUP BY: per group, the thread string codes seen (a set of small integers). */
  private codeSets: (Set<number> | undefined)[] = [];
  private codesInSets = 0;
  /** Moves the marked codes into the groups' sets (codes are good only within this thread's scan). */
  flush(): void {
    if (this.codesMarked > 0) {
      const seen = this.codeSeen;
      this.total -= this.codesMarked;
      this.codesMarked = 0;
      for (let c = 0; c < seen.length; c++) if (seen[c] === 1) this.add(0, threadCodes.stringAt(c));
      this.codeSeen = new Uint8Array(0);
    }
    if (this.codesInSets > 0) {
      this.total -= this.codesInSets;
      this.codesInSets = 0;
      const sets = this.codeSets;
      this.codeSets = [];
      sets.forEach((set, g) => { if (set !== undefined) for (const c of set) this.add(g, threadCodes.stringAt(c)); });
    }
  }
  private checkTotal(): void {
    if (this.total > LIMITS.distinctValuesMax) {
      throw new ShoalError('SHOAL_ERR_QUERY_GROUP_LIMIT', `count(DISTINCT ...) holds more than ${LIMITS.distinctValuesMax} distinct values; use approx_count_distinct() instead`);
    }
  }
  private add(g: number, x: Scalar): void {
    const s = this.sets[g]!;
    if (s.has(x)) return;
    s.add(x);
    this.total++;
    this.checkTotal();
  }
  /** Marks by the leaf's codes in a scan worker (given maps): no GROUP BY, and by group. */
  private leafSeen: Uint8Array = new Uint8Array(0);
  private leafMarked = 0;
  private leafSets: (Set<number> | undefined)[] = [];
  private leafInSets = 0;

  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null) return;
    if (v.t === 'str' && v.lcodes !== undefined && !threadCodes.isLeafSpace) {
      const lc = v.lcodes; const codes = v.codes; const nulls = v.nulls;
      let added = 0;
      if (gids === null) {
        if (this.leafSeen.length < leafSpaceSize()) this.leafSeen = growU8(this.leafSeen, leafSpaceSize());
        const seen = this.leafSeen;
        for (let i = 0; i < count; i++) {
          const r = sel[i]!;
          if (nulls !== null && nulls[r] === 1) continue;
          const c = lc[codes[r]!]!;
          if (seen[c] === 0) { seen[c] = 1; added++; }
        }
        this.leafMarked += added;
      } else {
        const sets = this.leafSets;
        for (let i = 0; i < count; i++) {
          const r = sel[i]!;
          if (nulls !== null && nulls[r] === 1) continue;
          const g = gids[r]!;
          const c = lc[codes[r]!]!;
          let set = sets[g];
          if (set === undefined) { set = new Set(); sets[g] = set; }
          if (!set.has(c)) { set.add(c); added++; }
        }
        this.leafInSets += added;
      }
      this.total += added;
      this.checkTotal();
      return;
    }
    if (v.t === 'str' && gids !== null && v.gcodes !== null) {
      const gc = v.gcodes; const codes = v.codes; const nulls = v.nulls; const sets = this.codeSets;
      let added = 0;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const g = gids[r]!;
        const c = gc[codes[r]!]!;
        let set = sets[g];
        if (set === undefined) { set = new Set(); sets[g] = set; }
        if (!set.has(c)) { set.add(c); added++; }
      }
      this.codesInSets += added;
      this.total += added;
      this.checkTotal();
      return;
    }
    if (v.t === 'str' && gids === null && v.gcodes !== null) {
      if (this.codeSeen.length < threadCodes.size) this.codeSeen = growU8(this.codeSeen, threadCodes.size);
      const seen = this.codeSeen; const gc = v.gcodes; const codes = v.codes; const nulls = v.nulls;
      let marked = 0;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const c = gc[codes[r]!]!;
        if (seen[c] === 0) { seen[c] = 1; marked++; }
      }
      this.codesMarked += marked;
      this.total += marked;
      this.checkTotal();
      return;
    }
    if (v.t === 'str' && gids === null) {
      // One pass over codes, then add each seen dictionary entry once.
      const seen = new Uint8Array(v.dict.length);
      for (let i = 0; i < count; i++) { const r = sel[i]!; if (v.nulls === null || v.nulls[r] === 0) seen[v.codes[r]!] = 1; }
      for (let d = 0; d < seen.length; d++) if (seen[d] === 1) this.add(0, v.dict[d]!);
      return;
    }
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      const x = rowValue(v, r);
      if (x !== null) this.add(gids === null ? 0 : gids[r]!, x);
    }
  }
  column(n: number): StateColumn {
    const sets: unknown[] = new Array(n);
    if (threadCodes.isLeafSpace && (this.codesMarked > 0 || this.codesInSets > 0)) {
      // The leaf's main thread: its codes are the leaf's, and go out as marks.
      for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
      return { sets, ...leafMarks(this.codesMarked > 0 ? this.codeSeen : null, this.codesInSets > 0 ? this.codeSets : null, n) };
    }
    if (this.leafMarked > 0 || this.leafInSets > 0) {
      this.flush();
      for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
      return { sets, ...leafMarks(this.leafMarked > 0 ? this.leafSeen : null, this.leafInSets > 0 ? this.leafSets : null, n) };
    }
    // Groups known only by codes go out as lists straight from them: distinct codes are distinct
    // strings, so no string set is built just to be read back.
    if (this.codesMarked === 0 && this.codesInSets > 0 && this.sets.every((set, g) => set.size === 0 || this.codeSets[g] === undefined)) {
      for (let g = 0; g < n; g++) {
        const cs = this.codeSets[g];
        sets[g] = cs !== undefined ? Array.from(cs, (c) => threadCodes.stringAt(c)) : Array.from(this.sets[g]!, encScalar);
      }
      return { sets };
    }
    this.flush();
    for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
    return { sets };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const seen = col['leafSeen'] as Uint8Array | undefined;
    const codeLists = col['leafSets'] as (Int32Array | null)[] | undefined;
    if (seen !== undefined || codeLists !== undefined) {
      // Marks by the leaf's codes: this thread's codes must be the leaf's (its main thread).
      if (!threadCodes.isLeafSpace) notLeaf();
      if (seen !== undefined) {
        if (this.codeSeen.length < seen.length) this.codeSeen = growU8(this.codeSeen, seen.length);
        const mine = this.codeSeen;
        let added = 0;
        for (let c = 0; c < seen.length; c++) if (seen[c] === 1 && mine[c] === 0) { mine[c] = 1; added++; }
        this.codesMarked += added; this.total += added;
        if (n > 0 && into[0] !== 0) notLeaf();
      }
      if (codeLists !== undefined) {
        let added = 0;
        for (let i = 0; i < n; i++) {
          const list = codeLists[i];
          if (list === null || list === undefined) continue;
          const g = into[i]!;
          let set = this.codeSets[g];
          if (set === undefined) { set = new Set(); this.codeSets[g] = set; }
          for (let k = 0; k < list.length; k++) { const c = list[k]!; if (!set.has(c)) { set.add(c); added++; } }
        }
        this.codesInSets += added; this.total += added;
      }
      this.checkTotal();
      const values = list(col, 'sets')!;
      for (let i = 0; i < n; i++) for (const x of values[i] as unknown[]) this.add(into[i]!, decScalar(x));
      return;
    }
    if (!threadCodes.isLeafSpace || (this.codesMarked === 0 && this.codesInSets === 0)) this.flush();
    const sets = list(col, 'sets')!;
    for (let i = 0; i < n; i++) {
      const s = sets[i];
      if (!Array.isArray(s)) throw new ShoalError('SHOAL_ERR_INTERNAL', `a count(DISTINCT) state of group ${i} is not a list`);
      for (const x of s) this.add(into[i]!, decScalar(x));
    }
  }
  /** A merged column's lists hold distinct values (each serialized from a set): finish reads
   * their lengths instead of hashing every value again. */
  private adopted: readonly unknown[] | null = null;
  adopt(col: StateColumn, n: number): void {
    if ('leafSeen' in col || 'leafSets' in col) { adoptByMerge(this, col, n); return; }
    this.ensure(n); this.adopted = list(col, 'sets');
  }
  final(g: number): Scalar {
    if (this.adopted !== null) return (this.adopted[g] as unknown[]).length;
    // Only marks (no values beside them): distinct codes are distinct strings.
    if (this.sets[g]!.size === 0 && (this.codesMarked === 0 || this.codesInSets === 0)) {
      return (g === 0 ? this.codesMarked : 0) + (this.codeSets[g]?.size ?? 0);
    }
    this.flush();
    return this.sets[g]!.size;
  }
}

/** Marks by the leaf's codes as state fields: the seen bytes, and each group's codes. */
function leafMarks(seen: Uint8Array | null, sets: readonly (Set<number> | undefined)[] | null, n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (seen !== null) out['leafSeen'] = seen;
  if (sets !== null) {
    const lists: (Int32Array | null)[] = new Array(n);
    for (let g = 0; g < n; g++) { const s = sets[g]; lists[g] = s === undefined ? null : Int32Array.from(s); }
    out['leafSets'] = lists;
  }
  return out;
}

/**
 * A count(DISTINCT) state column as values only (what the wire carries): the leaf's marks
 * become strings on the leaf's main thread. Other columns are returned as they are.
 */
export function distinctToValues(col: StateColumn, n: number): StateColumn {
  if (!('leafSeen' in col) && !('leafSets' in col)) return col;
  const state = new CountDistinct();
  adoptByMerge(state, col, n);
  state.flush();
  const sets: unknown[] = new Array(n);
  for (let g = 0; g < n; g++) sets[g] = Array.from(state.sets[g]!, encScalar);
  return { sets };
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
