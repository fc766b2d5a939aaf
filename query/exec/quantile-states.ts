/**
 * Quantile states: approx_quantile over a relative-error sketch (shared by every quantile of one
 * argument) and the exact quantile_cont / quantile_disc / median over every value.
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { QuantileSketch } from '../functions/quantile.js';
import type { Scalar } from '../plan/plan.js';
import type { StateColumn } from '../plan/partial.js';
import { decScalar, encScalar } from '../plan/wire.js';
import { adoptByMerge, list, type AggState } from './agg-state.js';
import { rowValue, type Vec } from './vec.js';

/** Sketches of one argument, shared by every quantile asked of it (p50 and p99 of x: one sketch). */
export class SketchSet {
  sketches: (QuantileSketch | null)[] = [];
  ensure(n: number): void { while (this.sketches.length < n) this.sketches.push(null); }
  at(g: number): QuantileSketch { return (this.sketches[g] ??= new QuantileSketch()); }
}

export class ApproxQuantile implements AggState {
  /** `owner`: this state feeds the shared sketches; the others only read them. */
  constructor(private readonly q: number, private readonly set: SketchSet, private readonly owner: boolean) {}
  ensure(n: number): void { this.set.ensure(n); }
  private at(g: number): QuantileSketch { return this.set.at(g); }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null || !this.owner) return;
    if (v.t === 'num') {
      const vals = v.v; const nulls = v.nulls;
      if (gids === null && nulls === null) { this.at(0).addMany(vals, sel, count); return; }
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        this.at(gids === null ? 0 : gids[r]!).add(vals[r]!);
      }
      return;
    }
    for (let i = 0; i < count; i++) {
      const r = sel[i]!;
      const x = rowValue(v, r);
      if (typeof x === 'number') this.at(gids === null ? 0 : gids[r]!).add(x);
    }
  }
  // Only the owner carries the sketch in a partial; the others' states are null placeholders.
  column(n: number): StateColumn {
    if (!this.owner) return { sketches: null };
    const sketches: unknown[] = new Array(n);
    for (let g = 0; g < n; g++) sketches[g] = this.set.sketches[g]?.serialize() ?? null;
    return { sketches };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const sketches = list(col, 'sketches');
    if (!this.owner || sketches === null) return;
    for (let i = 0; i < n; i++) if (sketches[i] !== null) this.at(into[i]!).merge(QuantileSketch.deserialize(sketches[i]));
  }
  adopt(col: StateColumn, n: number): void { adoptByMerge(this, col, n); }
  final(g: number): Scalar { return this.set.sketches[g]?.quantile(this.q) ?? null; }
}

/**
 * Exact quantiles (quantile_cont, quantile_disc, median): every value of every group, merged by
 * concatenation and sorted once at the end, as DuckDB computes them. Bounded like count(DISTINCT):
 * at most LIMITS.distinctValuesMax values per query, beyond which approx_quantile is the answer.
 */
export class ExactQuantile implements AggState {
  vals: number[][] = [];
  private total = 0;
  constructor(private readonly q: number, private readonly discrete: boolean) {}
  ensure(n: number): void { while (this.vals.length < n) this.vals.push([]); }
  private grow(added: number): void {
    this.total += added;
    if (this.total > LIMITS.distinctValuesMax) {
      throw new ShoalError('SHOAL_ERR_QUERY_GROUP_LIMIT', `an exact quantile holds more than ${LIMITS.distinctValuesMax} values; use approx_quantile() (or p50 ... p999) instead`);
    }
  }
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void {
    if (v === null) return;
    let added = 0;
    if (v.t === 'num') {
      const a = v.v; const nulls = v.nulls;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        this.vals[gids === null ? 0 : gids[r]!]!.push(a[r]!);
        added++;
      }
    } else {
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        const x = rowValue(v, r);
        if (typeof x === 'number') { this.vals[gids === null ? 0 : gids[r]!]!.push(x); added++; }
      }
    }
    this.grow(added);
  }
  column(n: number): StateColumn {
    const vals: unknown[] = new Array(n);
    for (let g = 0; g < n; g++) vals[g] = this.vals[g]!.map(encScalar);
    return { vals };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const vals = list(col, 'vals')!;
    for (let i = 0; i < n; i++) {
      const s = vals[i];
      if (!Array.isArray(s)) throw new ShoalError('SHOAL_ERR_INTERNAL', `an exact quantile state of group ${i} is not a list`);
      const out = this.vals[into[i]!]!;
      for (const x of s) { const d = decScalar(x); if (typeof d !== 'number') throw new ShoalError('SHOAL_ERR_INTERNAL', 'an exact quantile state holds a value that is not a number'); out.push(d); }
      this.grow(s.length);
    }
  }
  adopt(col: StateColumn, n: number): void { adoptByMerge(this, col, n); }
  final(g: number): Scalar {
    const xs = this.vals[g]!;
    const n = xs.length;
    if (n === 0) return null;
    const sorted = Float64Array.from(xs).sort();
    // DuckDB's Interpolator: discrete takes row max(1, n - floor(n - q*n)) - 1; continuous
    // interpolates between floor and ceil of (n - 1) * q.
    if (this.discrete) return sorted[Math.max(1, n - Math.floor(n - this.q * n)) - 1]!;
    const rn = (n - 1) * this.q;
    const lo = Math.floor(rn); const hi = Math.ceil(rn);
    const a = sorted[lo]!; const b = sorted[hi]!;
    return lo === hi ? a : a + (b - a) * (rn - lo);
  }
}

