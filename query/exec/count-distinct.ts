/**
 * Exact count(DISTINCT x) (aggregates.ts lists the aggregate states): a set of values per group,
 * or marks by string code (this thread's, or the leaf's: docs/engine.md, "Leaf codes").
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Scalar } from '../plan/plan.js';
import type { CodedSets, StateColumn } from '../plan/partial.js';
import { decScalar, encScalar } from '../plan/wire.js';
import { leafSpaceSize, StringCodes, threadCodes } from '../storage/string-codes.js';
import { adoptByMerge, growU8, list, type AggState } from './agg-state.js';
import { PairSet } from './pair-table.js';
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
  /** With GROUP BY: the (group, string code) pairs seen. */
  private codePairs = new PairSet(16);
  /** Whose codes codeSeen and codePairs hold: this thread's, or (merging strings sent coded,
   * `coded` below) a table of this state's own, which no scan or trim ever touches. */
  private codes: StringCodes = threadCodes;
  private codesInSets = 0;
  /** Moves the marked codes into the groups' sets (codes are good only within this thread's scan). */
  flush(): void {
    if (this.codesMarked > 0) {
      const seen = this.codeSeen;
      this.total -= this.codesMarked;
      this.codesMarked = 0;
      for (let c = 0; c < seen.length; c++) if (seen[c] === 1) this.add(0, this.codes.stringAt(c));
      this.codeSeen = new Uint8Array(0);
    }
    if (this.codesInSets > 0) {
      this.total -= this.codesInSets;
      this.codesInSets = 0;
      const pairs = this.codePairs;
      this.codePairs = new PairSet(16);
      pairs.forEach((g, c) => this.add(g, this.codes.stringAt(c)));
    }
    this.codes = threadCodes;
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
  private leafPairs = new PairSet(16);
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
        const pairs = this.leafPairs;
        for (let i = 0; i < count; i++) {
          const r = sel[i]!;
          if (nulls !== null && nulls[r] === 1) continue;
          if (pairs.add(gids[r]!, lc[codes[r]!]!)) added++;
        }
        this.leafInSets += added;
      }
      this.total += added;
      this.checkTotal();
      return;
    }
    if (v.t === 'str' && v.gcodes !== null && this.codes !== threadCodes) this.flush();
    if (v.t === 'str' && gids !== null && v.gcodes !== null) {
      const gc = v.gcodes; const codes = v.codes; const nulls = v.nulls; const pairs = this.codePairs;
      let added = 0;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        if (pairs.add(gids[r]!, gc[codes[r]!]!)) added++;
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
    if (threadCodes.isLeafSpace && this.codes === threadCodes && (this.codesMarked > 0 || this.codesInSets > 0)) {
      // The leaf's main thread: its codes are the leaf's, and go out as marks.
      for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
      return { sets, ...leafMarks(this.codesMarked > 0 ? this.codeSeen : null, this.codesInSets > 0 ? this.codePairs : null, n) };
    }
    if (this.leafMarked > 0 || this.leafInSets > 0) {
      this.flush();
      for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
      return { sets, ...leafMarks(this.leafMarked > 0 ? this.leafSeen : null, this.leafInSets > 0 ? this.leafPairs : null, n) };
    }
    // Groups known only by codes go out as lists straight from them: distinct codes are distinct
    // strings, so no string set is built just to be read back.
    if (this.codesMarked === 0 && this.codesInSets > 0 && this.sets.every((set, g) => set.size === 0 || this.codePairs.countOf(g) === 0)) {
      const lists = this.codePairs.lists(n);
      for (let g = 0; g < n; g++) {
        const cs = lists[g];
        sets[g] = cs !== null ? Array.from(cs, (c) => this.codes.stringAt(c)) : Array.from(this.sets[g]!, encScalar);
      }
      return { sets };
    }
    this.flush();
    for (let g = 0; g < n; g++) sets[g] = Array.from(this.sets[g]!, encScalar);
    return { sets };
  }
  mergeColumn(col: StateColumn, into: Int32Array, n: number): void {
    const coded = col['coded'] as CodedSets | null | undefined;
    if (coded !== undefined && coded !== null) { this.mergeCoded(coded, list(col, 'sets')!, into, n); return; }
    const seen = col['leafSeen'] as Uint8Array | undefined;
    const codeLists = col['leafSets'] as (Int32Array | null)[] | undefined;
    if (seen !== undefined || codeLists !== undefined) {
      // Marks by the leaf's codes: this thread's codes must be the leaf's (its main thread).
      if (!threadCodes.isLeafSpace) notLeaf();
      if (this.codes !== threadCodes) this.flush();
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
        const pairs = this.codePairs;
        for (let i = 0; i < n; i++) {
          const list = codeLists[i];
          if (list === null || list === undefined) continue;
          const g = into[i]!;
          for (let k = 0; k < list.length; k++) if (pairs.add(g, list[k]!)) added++;
        }
        this.codesInSets += added; this.total += added;
      }
      this.checkTotal();
      const values = list(col, 'sets')!;
      for (let i = 0; i < n; i++) for (const x of values[i] as unknown[]) this.add(into[i]!, decScalar(x));
      return;
    }
    if (!threadCodes.isLeafSpace || this.codes !== threadCodes || (this.codesMarked === 0 && this.codesInSets === 0)) this.flush();
    const sets = list(col, 'sets')!;
    for (let i = 0; i < n; i++) {
      const s = sets[i];
      if (!Array.isArray(s)) throw new ShoalError('SHOAL_ERR_INTERNAL', `a count(DISTINCT) state of group ${i} is not a list`);
      for (const x of s) this.add(into[i]!, decScalar(x));
    }
  }
  /** Merges a column whose strings came coded (`CodedSets`): its dictionary is mapped once into
   * this state's own table, then each group's ids are pairs of integers, not strings hashed. */
  private mergeCoded(coded: CodedSets, values: readonly unknown[], into: Int32Array, n: number): void {
    if (this.codes === threadCodes) {
      if (this.codesMarked > 0 || this.codesInSets > 0) this.flush();
      this.codes = new StringCodes();
    }
    const map = this.codes.mapDict(coded.dict);
    const pairs = this.codePairs; const starts = coded.starts; const ids = coded.ids;
    let added = 0;
    for (let i = 0; i < n; i++) {
      const g = into[i]!;
      for (let k = starts[i]!; k < starts[i + 1]!; k++) if (pairs.add(g, map[ids[k]!]!)) added++;
    }
    this.codesInSets += added; this.total += added;
    this.checkTotal();
    for (let i = 0; i < n; i++) {
      const s = values[i];
      if (!Array.isArray(s)) throw new ShoalError('SHOAL_ERR_INTERNAL', `a count(DISTINCT) state of group ${i} is not a list`);
      for (const x of s) this.add(into[i]!, decScalar(x));
    }
  }
  /** A merged column's lists hold distinct values (each serialized from a set): finish reads
   * their lengths instead of hashing every value again. */
  private adopted: readonly unknown[] | null = null;
  adopt(col: StateColumn, n: number): void {
    if ('leafSeen' in col || 'leafSets' in col || (col['coded'] ?? null) !== null) { adoptByMerge(this, col, n); return; }
    this.ensure(n); this.adopted = list(col, 'sets');
  }
  final(g: number): Scalar {
    if (this.adopted !== null) return (this.adopted[g] as unknown[]).length;
    // Only marks (no values beside them): distinct codes are distinct strings.
    if (this.sets[g]!.size === 0 && (this.codesMarked === 0 || this.codesInSets === 0)) {
      return (g === 0 ? this.codesMarked : 0) + this.codePairs.countOf(g);
    }
    this.flush();
    return this.sets[g]!.size;
  }
}

/** Marks by the leaf's codes as state fields: the seen bytes, and each group's codes. */
function leafMarks(seen: Uint8Array | null, pairs: PairSet | null, n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (seen !== null) out['leafSeen'] = seen;
  if (pairs !== null) out['leafSets'] = pairs.lists(n);
  return out;
}

/**
 * A count(DISTINCT) state column as values only (what the wire carries): the leaf's marks
 * become strings on the leaf's main thread. Other columns are returned as they are.
 */
export function distinctToValues(col: StateColumn, n: number): StateColumn {
  if (!('leafSeen' in col) && !('leafSets' in col)) return col;
  const values = list(col, 'sets')!;
  const lists = col['leafSets'] as (Int32Array | null)[] | undefined;
  if (!('leafSeen' in col) && lists !== undefined && values.every((v, g) => (v as unknown[]).length === 0 || lists[g] === null)) {
    // Each group's codes are distinct leaf codes, so distinct strings: read, not hashed again.
    if (!threadCodes.isLeafSpace) notLeaf();
    const sets: unknown[] = new Array(n);
    for (let g = 0; g < n; g++) { const cs = lists[g]; sets[g] = cs === null || cs === undefined ? values[g] : Array.from(cs, (c) => threadCodes.stringAt(c)); }
    return { sets };
  }
  const state = new CountDistinct();
  adoptByMerge(state, col, n);
  state.flush();
  const sets: unknown[] = new Array(n);
  for (let g = 0; g < n; g++) sets[g] = Array.from(state.sets[g]!, encScalar);
  return { sets };
}


let idOf = new Int32Array(0);

/**
 * A leaf-coded count(DISTINCT) column (marks by the leaf's codes, on the leaf's main thread) as
 * `{ sets, coded }`: the marks become ids into one dictionary of the strings they name, made of
 * the table's UTF-8 bytes with no JS string. Null for a column that is not leaf-coded.
 */
export function distinctToCoded(col: StateColumn, n: number): { sets: unknown[]; coded: CodedSets } | null {
  const seen = col['leafSeen'] as Uint8Array | undefined;
  const lists = col['leafSets'] as (Int32Array | null)[] | undefined;
  if (seen === undefined && lists === undefined) return null;
  if (!threadCodes.isLeafSpace) notLeaf();
  const values = list(col, 'sets')!;
  const groupCodes = (g: number): ArrayLike<number> | null => {
    const l = lists?.[g] ?? null;
    if (g !== 0 || seen === undefined) return l;
    // Without GROUP BY (group 0 only): the seen bytes' codes, and the list's if any.
    const marked: number[] = [];
    for (let c = 0; c < seen.length; c++) if (seen[c] === 1) marked.push(c);
    if (l !== null) for (let k = 0; k < l.length; k++) marked.push(l[k]!);
    return marked;
  };
  if (idOf.length < threadCodes.size) { idOf = new Int32Array(Math.max(threadCodes.size, 2 * idOf.length)); idOf.fill(-1); }
  const starts = new Int32Array(n + 1);
  const perGroup: (ArrayLike<number> | null)[] = new Array(n);
  for (let g = 0; g < n; g++) { perGroup[g] = groupCodes(g); starts[g + 1] = starts[g]! + (perGroup[g]?.length ?? 0); }
  const ids = new Int32Array(starts[n]!);
  const used: number[] = [];
  let bytes = 0;
  for (let g = 0, k = 0; g < n; g++) {
    const cs = perGroup[g];
    if (cs === null) continue;
    for (let j = 0; j < cs.length; j++) {
      const c = cs[j]!;
      let id = idOf[c]!;
      if (id < 0) { id = used.length; idOf[c] = id; used.push(c); bytes += threadCodes.byteLength(c); }
      ids[k++] = id;
    }
  }
  const table = threadCodes.entries();
  const offsets = new Int32Array(used.length + 1);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < used.length; i++) {
    const c = used[i]!;
    out.set(table.bytes.subarray(table.offsets[c]!, table.offsets[c + 1]!), offsets[i]!);
    offsets[i + 1] = offsets[i]! + table.offsets[c + 1]! - table.offsets[c]!;
    idOf[c] = -1;
  }
  return { sets: values.slice(0, n), coded: { dict: { bytes: out, offsets }, starts, ids } };
}
