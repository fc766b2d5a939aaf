/**
 * Exact count(DISTINCT x) (aggregates.ts lists the aggregate states): a set of values per group,
 * or marks by string code (this thread's, or the leaf's: docs/engine.md, "Leaf codes").
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Scalar } from '../plan/plan.js';
import type { StateColumn } from '../plan/partial.js';
import { decScalar, encScalar } from '../plan/wire.js';
import { leafSpaceSize, threadCodes } from '../storage/string-codes.js';
import { adoptByMerge, growU8, list, type AggState } from './agg-state.js';
import { rowValue, type Vec } from './vector.js';

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
export class CountDistinct implements AggState {
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

