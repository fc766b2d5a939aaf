/**
 * Selection vectors: the rows of a block that a WHERE keeps. Conjuncts are applied one by one,
 * each tested only on the rows the ones before kept; simple ones (a number column against a
 * constant, a string predicate per dictionary entry) run without building a whole-block vector.
 */
import type { BExpr } from '../plan/plan.js';
import { cachedRegex, compareValues } from '../plan/scalar.js';
import { cmpTest, evalVec, flip, TRUE, type BlockContext } from './vector.js';

/** The per-string truth of a predicate on a string column, when it is one (cmp with a constant
 * string, IN, a regular expression): what byDict tables per dictionary entry. */
function stringTest(e: BExpr): { column: string; test: (s: string) => boolean | null } | null {
  if (e.k === 'cmp') {
    const colLeft = e.left.k === 'col' && e.right.k === 'const' && typeof e.right.value === 'string';
    const colRight = e.right.k === 'col' && e.left.k === 'const' && typeof e.left.value === 'string';
    if (!colLeft && !colRight) return null;
    const name = (colLeft ? e.left : e.right) as { name: string };
    const k = (colLeft ? e.right : e.left) as { value: string };
    const op = colLeft ? e.op : flip(e.op);
    return { column: name.name, test: (s) => cmpTest(op, compareValues(s, k.value)) };
  }
  if (e.k === 'in' && e.arg.k === 'col') {
    const set = new Set(e.values.filter((x) => typeof x === 'string'));
    const miss = e.values.includes(null) ? null : e.negated;
    return { column: e.arg.name, test: (s) => (set.has(s) ? !e.negated : miss) };
  }
  if (e.k === 'match' && e.arg.k === 'col') {
    const re = cachedRegex(e.regex, e.flags);
    return { column: e.arg.name, test: (s) => re.test(s) !== e.negated };
  }
  return null;
}

/**
 * Keeps the rows of sel[0..count) where `e` is TRUE, writing them to `out` (which may be `sel`
 * itself: rows only move down); returns how many. Simple conjuncts (a number column against a
 * constant, a string predicate by dictionary entry) are tested only on the rows still selected;
 * anything else is evaluated over the block as evalVec does and then read at those rows.
 */
export function refineSelection(e: BExpr, ctx: BlockContext, sel: Int32Array, count: number, out: Int32Array): number {
  let n = 0;
  if (e.k === 'cmp') {
    const numLeft = e.left.k === 'col' && e.right.k === 'const' && typeof e.right.value === 'number';
    const numRight = e.right.k === 'col' && e.left.k === 'const' && typeof e.left.value === 'number';
    if (numLeft || numRight) {
      const v = ctx.column(((numLeft ? e.left : e.right) as { name: string }).name);
      if (v.t === 'num') {
        const k = ((numLeft ? e.right : e.left) as { value: number }).value;
        const op = numLeft ? e.op : flip(e.op);
        const a = v.v; const nulls = v.nulls;
        switch (op) {
          case '=': for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r] === k) out[n++] = r; } break;
          case '!=': for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r] !== k) out[n++] = r; } break;
          case '<': for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r]! < k) out[n++] = r; } break;
          case '<=': for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r]! <= k) out[n++] = r; } break;
          case '>': for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r]! > k) out[n++] = r; } break;
          default: for (let i = 0; i < count; i++) { const r = sel[i]!; if (a[r]! >= k) out[n++] = r; } break;
        }
        if (nulls === null) return n;
        let m = 0;
        for (let i = 0; i < n; i++) { const r = out[i]!; if (nulls[r] === 0) out[m++] = r; }
        return m;
      }
    }
  }
  const st = stringTest(e);
  if (st !== null) {
    const v = ctx.column(st.column);
    if (v.t === 'str') {
      const dict = v.dict;
      // Tested per dictionary entry on first sight: 0 untested, 1 false or NULL, 2 true.
      const table = new Uint8Array(dict.length);
      const codes = v.codes; const nulls = v.nulls;
      for (let i = 0; i < count; i++) {
        const r = sel[i]!;
        if (nulls !== null && nulls[r] === 1) continue;
        const c = codes[r]!;
        let t = table[c]!;
        if (t === 0) { t = st.test(dict[c]!) === true ? 2 : 1; table[c] = t; }
        if (t === 2) out[n++] = r;
      }
      return n;
    }
  }
  const p = evalVec(e, ctx);
  if (p.t === 'const') { if (p.v === true) { if (out !== sel) out.set(sel.subarray(0, count)); return count; } return 0; }
  if (p.t !== 'bool') return 0;
  const b = p.v;
  for (let i = 0; i < count; i++) { const r = sel[i]!; if (b[r] === TRUE) out[n++] = r; }
  return n;
}
