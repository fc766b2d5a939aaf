/**
 * Vector kernels: evaluate a bound expression over every row of one block at once, reading the
 * block's typed arrays in place. Predicates over dictionary-encoded strings are evaluated once
 * per dictionary entry and then looked up by code, which is why LIKE and regexp filters cost
 * about as much as an integer compare. Booleans use one byte per row in SQL's three-valued
 * logic: 0 = false, 1 = NULL, 2 = true, so AND is min, OR is max and NOT is 2 - x.
 *
 * Rare shapes fall back to row-at-a-time evaluation through scalar.ts: slower, same answers.
 * Not here: grouping and aggregate state (aggregates.ts, scan.ts).
 */
import { ShoalError } from '../errors.js';
import type { BExpr, Scalar } from '../plan/plan.js';
import { cachedRegex, compareValues, evalScalar, timeBucket } from '../plan/scalar.js';
import { codePointLength, lowerText, upperText } from '../functions/text.js';
import { dateTrunc, datePart, FIXED_UNIT_US } from '../functions/dates.js';
import type { ScanBlock } from '../storage/table.js';
import type { ColumnData } from '../storage/types.js';
import { boolConst, brief, FALSE, fromValues, NULL, overflowError, perDictEntry, rowValue, TRUE, type Vec } from './vec.js';

export { FALSE, fromValues, NULL, rowValue, TRUE, type Vec } from './vec.js';

/** Per-block evaluation context: caches each column's vector (nulls unpacked once). */
export class BlockContext {
  private readonly cols = new Map<string, Vec>();
  /** The rows WHERE kept, once known: checks on values (integer overflow) look only at them. */
  selected: { readonly sel: Int32Array; readonly count: number } | null = null;
  /** Vectors of computed expressions, by the expression's text: a condition that appears in
   * several places (count_if(c) and avg(x) FILTER (WHERE c)) is evaluated once per block. */
  readonly computed = new Map<string, Vec>();
  constructor(readonly block: ScanBlock) {}
  get rowCount(): number { return this.block.rowCount; }

  column(name: string): Vec {
    let v = this.cols.get(name);
    if (v === undefined) {
      const c = this.block.column(name);
      v = c === undefined ? { t: 'const', v: null } : columnVec(c, this.block, name);
      this.cols.set(name, v);
    }
    return v;
  }
}

function unpackNulls(validity: Uint8Array | null, rowCount: number): Uint8Array | null {
  if (validity === null) return null;
  const nulls = new Uint8Array(rowCount);
  for (let i = 0; i < rowCount; i++) nulls[i] = (validity[i >>> 3]! >>> (i & 7)) & 1 ? 0 : 1;
  return nulls;
}

function columnVec(c: ColumnData, block: ScanBlock, name: string): Vec {
  const rowCount = block.rowCount;
  switch (c.kind) {
    case 'number': return { t: 'num', v: c.values, nulls: unpackNulls(c.validity, rowCount) };
    case 'string': {
      // Strings are looked up only when a kernel reads `dict` (grouping reads codes instead).
      // The thread's code map too is made on first read: a scan that groups by the leaf's codes
      // (`lcodes`) never maps the block into this thread's table.
      let dict: readonly string[] | null = null;
      let gcodes: Int32Array | null | undefined;
      const lcodes = block.leafCodes?.(name) ?? undefined;
      return {
        t: 'str', codes: c.codes, nulls: unpackNulls(c.validity, rowCount), lcodes,
        get gcodes() { return gcodes === undefined ? (gcodes = block.codeMap(name)) : gcodes; },
        get dict() { return (dict ??= block.strings(name)); },
      };
    }
    case 'set': return { t: 'set', offsets: c.offsets, codes: c.codes, dict: block.strings(name), nulls: unpackNulls(c.validity, rowCount) };
    case 'bool': {
      const out = new Uint8Array(rowCount);
      for (let i = 0; i < rowCount; i++) {
        const valid = c.validity === null || ((c.validity[i >>> 3]! >>> (i & 7)) & 1) === 1;
        out[i] = !valid ? NULL : ((c.bits[i >>> 3]! >>> (i & 7)) & 1) === 1 ? TRUE : FALSE;
      }
      return { t: 'bool', v: out };
    }
  }
}

/** Truth of a predicate per dictionary entry, mapped to rows by code. */
function byDict(v: Extract<Vec, { t: 'str' }>, rowCount: number, test: (s: string) => boolean | null): Vec {
  const table = new Uint8Array(v.dict.length);
  for (let d = 0; d < v.dict.length; d++) {
    const r = test(v.dict[d]!);
    table[d] = r === null ? NULL : r ? TRUE : FALSE;
  }
  const out = new Uint8Array(rowCount);
  const codes = v.codes;
  for (let i = 0; i < rowCount; i++) out[i] = table[codes[i]!]!;
  if (v.nulls !== null) for (let i = 0; i < rowCount; i++) if (v.nulls[i] === 1) out[i] = NULL;
  return { t: 'bool', v: out };
}

export function cmpTest(op: string, c: number): boolean {
  switch (op) {
    case '=': return c === 0;
    case '!=': return c !== 0;
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '>': return c > 0;
    default: return c >= 0;
  }
}

export function flip(op: string): string {
  return op === '<' ? '>' : op === '>' ? '<' : op === '<=' ? '>=' : op === '>=' ? '<=' : op;
}

function cmpNumConst(v: Extract<Vec, { t: 'num' }>, op: string, k: number, rowCount: number): Vec {
  const out = new Uint8Array(rowCount);
  const a = v.v;
  // One loop per operator keeps the comparison out of the loop body (the JIT specialises each).
  switch (op) {
    case '=': for (let i = 0; i < rowCount; i++) out[i] = a[i] === k ? TRUE : FALSE; break;
    case '!=': for (let i = 0; i < rowCount; i++) out[i] = a[i] !== k ? TRUE : FALSE; break;
    case '<': for (let i = 0; i < rowCount; i++) out[i] = a[i]! < k ? TRUE : FALSE; break;
    case '<=': for (let i = 0; i < rowCount; i++) out[i] = a[i]! <= k ? TRUE : FALSE; break;
    case '>': for (let i = 0; i < rowCount; i++) out[i] = a[i]! > k ? TRUE : FALSE; break;
    default: for (let i = 0; i < rowCount; i++) out[i] = a[i]! >= k ? TRUE : FALSE; break;
  }
  if (v.nulls !== null) for (let i = 0; i < rowCount; i++) if (v.nulls[i] === 1) out[i] = NULL;
  return { t: 'bool', v: out };
}

const exprTexts = new WeakMap<BExpr, string>();
const textOfExpr = (e: BExpr): string => {
  let t = exprTexts.get(e);
  if (t === undefined) { t = JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)); exprTexts.set(e, t); }
  return t;
};

export function evalVec(e: BExpr, ctx: BlockContext): Vec {
  if (e.k === 'const' || e.k === 'col') return evalVecOnce(e, ctx);
  // The vectors a kernel returns are never written to by their readers, so one may be shared.
  const key = textOfExpr(e);
  let v = ctx.computed.get(key);
  if (v === undefined) { v = evalVecOnce(e, ctx); ctx.computed.set(key, v); }
  return v;
}

function evalVecOnce(e: BExpr, ctx: BlockContext): Vec {
  const n = ctx.rowCount;
  switch (e.k) {
    case 'const': return { t: 'const', v: e.value };
    case 'col': return ctx.column(e.name);
    case 'cmp': {
      const l = evalVec(e.left, ctx);
      const r = evalVec(e.right, ctx);
      if (l.t === 'const' && r.t === 'const') return boolConst(l.v === null || r.v === null ? null : cmpTest(e.op, compareValues(l.v, r.v)), n);
      if ((l.t === 'const' && l.v === null) || (r.t === 'const' && r.v === null)) return boolConst(null, n);
      if (l.t === 'num' && r.t === 'const' && typeof r.v === 'number') return cmpNumConst(l, e.op, r.v, n);
      if (r.t === 'num' && l.t === 'const' && typeof l.v === 'number') return cmpNumConst(r, flip(e.op), l.v, n);
      if (l.t === 'str' && r.t === 'const' && typeof r.v === 'string') { const k = r.v; return byDict(l, n, (s) => cmpTest(e.op, compareValues(s, k))); }
      if (r.t === 'str' && l.t === 'const' && typeof l.v === 'string') { const k = l.v; return byDict(r, n, (s) => cmpTest(flip(e.op), compareValues(s, k))); }
      if (l.t === 'num' && r.t === 'num') {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          const a = l.v[i]!; const b = r.v[i]!;
          out[i] = cmpTest(e.op, a < b ? -1 : a > b ? 1 : 0) ? TRUE : FALSE;
          if ((l.nulls !== null && l.nulls[i] === 1) || (r.nulls !== null && r.nulls[i] === 1)) out[i] = NULL;
        }
        return { t: 'bool', v: out };
      }
      return rowwise(e, ctx, [l, r]);
    }
    case 'and': case 'or': {
      let acc: Uint8Array | null = null;
      for (const a of e.args) {
        const v = evalVec(a, ctx);
        const b = v.t === 'bool' ? v.v : (boolConst(v.t === 'const' ? v.v : null, n) as { v: Uint8Array }).v;
        if (acc === null) { acc = b === (v as { v: unknown }).v ? new Uint8Array(b) : b; continue; }
        if (e.k === 'and') for (let i = 0; i < n; i++) { const x = b[i]!; if (x < acc[i]!) acc[i] = x; }
        else for (let i = 0; i < n; i++) { const x = b[i]!; if (x > acc[i]!) acc[i] = x; }
      }
      return { t: 'bool', v: acc ?? new Uint8Array(n).fill(TRUE) };
    }
    case 'not': {
      const v = evalVec(e.arg, ctx);
      if (v.t === 'const') return boolConst(v.v === null ? null : !v.v, n);
      if (v.t !== 'bool') return rowwise(e, ctx, [v]);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = 2 - v.v[i]!;
      return { t: 'bool', v: out };
    }
    case 'isnull': {
      const v = evalVec(e.arg, ctx);
      if (v.t === 'const') return boolConst((v.v === null) !== e.negated, n);
      const out = new Uint8Array(n);
      const yes = e.negated ? FALSE : TRUE;
      const no = e.negated ? TRUE : FALSE;
      if (v.t === 'bool') { for (let i = 0; i < n; i++) out[i] = v.v[i] === NULL ? yes : no; return { t: 'bool', v: out }; }
      const nulls = v.nulls;
      if (nulls === null) out.fill(no);
      else for (let i = 0; i < n; i++) out[i] = nulls[i] === 1 ? yes : no;
      return { t: 'bool', v: out };
    }
    case 'in': {
      const v = evalVec(e.arg, ctx);
      const hasNull = e.values.includes(null);
      const miss = hasNull ? null : e.negated;
      if (v.t === 'str') {
        const set = new Set(e.values.filter((x) => typeof x === 'string'));
        return byDict(v, n, (s) => (set.has(s) ? !e.negated : miss));
      }
      if (v.t === 'num') {
        const set = new Set(e.values.filter((x) => typeof x === 'number'));
        const out = new Uint8Array(n);
        const hit = e.negated ? FALSE : TRUE;
        const other = miss === null ? NULL : miss ? TRUE : FALSE;
        for (let i = 0; i < n; i++) out[i] = set.has(v.v[i]!) ? hit : other;
        if (v.nulls !== null) for (let i = 0; i < n; i++) if (v.nulls[i] === 1) out[i] = NULL;
        return { t: 'bool', v: out };
      }
      return rowwise(e, ctx, [v]);
    }
    case 'match': {
      const v = evalVec(e.arg, ctx);
      const re = cachedRegex(e.regex, e.flags);
      if (v.t === 'str') return byDict(v, n, (s) => re.test(s) !== e.negated);
      return rowwise(e, ctx, [v]);
    }
    case 'arith': {
      const l = evalVec(e.left, ctx);
      const r = evalVec(e.right, ctx);
      if ((l.t === 'num' || l.t === 'const') && (r.t === 'num' || r.t === 'const') && !(l.t === 'const' && r.t === 'const')) {
        const out = arithNum(e.op, l, r, n);
        if (e.type === 'int' && (e.op === '+' || e.op === '-' || e.op === '*')) checkExactInts(out, ctx, e);
        return out;
      }
      return rowwise(e, ctx, [l, r]);
    }
    case 'neg': {
      const v = evalVec(e.arg, ctx);
      if (v.t !== 'num') return rowwise(e, ctx, [v]);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = -v.v[i]!;
      return { t: 'num', v: out, nulls: v.nulls };
    }
    case 'fn': return evalFnVec(e, ctx);
    case 'case': return evalCaseVec(e, ctx);
    case 'cast': {
      const v = evalVec(e.arg, ctx);
      if (v.t === 'const') return { t: 'const', v: evalScalar({ ...e, arg: { k: 'const', value: v.v, type: e.arg.type } }, {}) };
      // Numbers to DOUBLE need no work; strings convert once per dictionary entry.
      if (v.t === 'num' && e.to === 'DOUBLE') return v;
      if (v.t === 'str') { const fe: BExpr = { ...e, arg: { k: 'col', name: '$s', type: e.arg.type } }; return perDictEntry(e, v, (s) => evalScalar(fe, { column: () => s }), n, ctx); }
      return rowwise(e, ctx, [v]);
    }
    case 'key': case 'agg': case 'win':
      throw new Error(`assertion failed: ${e.k} ref in a scan expression`);
  }
}

/**
 * CASE over a block: each condition once as a vector, then per row the first TRUE branch. When
 * every branch is a number (or NULL), rows take values from the branches' vectors; other shapes
 * (strings, sets) go row by row, with only the taken branch evaluated.
 */
function evalCaseVec(e: Extract<BExpr, { k: 'case' }>, ctx: BlockContext): Vec {
  const n = ctx.rowCount;
  const branches = [...e.whens.map((w) => w.then), ...(e.else ? [e.else] : [])];
  const numericOut = e.type === 'int' || e.type === 'float' || e.type === 'time' || e.type === 'null';
  // Constant string branches (CASE WHEN status >= 500 THEN 'error' ELSE 'ok' END): a dictionary
  // of the branch values, each row's code the branch it takes.
  if (e.type === 'string' && branches.every((b) => b.k === 'const' && (b.value === null || typeof b.value === 'string'))) {
    const taken = caseBranches(e, ctx);
    const values = branches.map((b) => (b as { value: string | null }).value);
    const codes = new Int32Array(n);
    const nulls = new Uint8Array(n);
    for (let i = 0; i < n; i++) { const b = taken[i]!; if (b < 0 || values[b] === null) nulls[i] = 1; else codes[i] = b; }
    return { t: 'str', codes, dict: values.map((v) => v ?? ''), gcodes: null, nulls };
  }
  // Branches that are columns or constants cannot fail; anything else might (an overflow on a
  // row whose branch is not taken must not be an error), so it goes row by row.
  if (!numericOut || !branches.every((b) => b.k === 'col' || b.k === 'const')) return rowwise(e, ctx, null);
  const values = branches.map((b) => evalVec(b, ctx));
  if (!values.every((v) => v.t === 'num' || (v.t === 'const' && (v.v === null || typeof v.v === 'number')))) return rowwise(e, ctx, null);
  const taken = caseBranches(e, ctx);
  const out = new Float64Array(n);
  const nulls = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = taken[i]!;
    if (b < 0) { nulls[i] = 1; continue; }
    const v = values[b]!;
    if (v.t === 'const') { if (v.v === null) nulls[i] = 1; else out[i] = v.v as number; continue; }
    const nv = v as Extract<Vec, { t: 'num' }>;
    if (nv.nulls !== null && nv.nulls[i] === 1) nulls[i] = 1;
    else out[i] = nv.v[i]!;
  }
  return { t: 'num', v: out, nulls };
}

/** The branch each row takes: the first WHEN that is TRUE, else the ELSE (-1 without one). */
function caseBranches(e: Extract<BExpr, { k: 'case' }>, ctx: BlockContext): Int32Array {
  const n = ctx.rowCount;
  const conds = e.whens.map((w) => { const c = evalVec(w.when, ctx); return c.t === 'bool' ? c.v : (boolConst(c.t === 'const' ? c.v : null, n) as { v: Uint8Array }).v; });
  const elseAt = e.else ? conds.length : -1;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let b = elseAt;
    for (let j = 0; j < conds.length; j++) if (conds[j]![i] === TRUE) { b = j; break; }
    out[i] = b;
  }
  return out;
}

/**
 * Integers are float64 values, exact to 2^53. An integer expression whose value passes it on a
 * row that counts (every row in WHERE, the selected rows after it) is refused rather than
 * rounded: DuckDB's BIGINT would be exact up to 2^63 (and refuse beyond).
 */
function checkExactInts(v: Vec, ctx: BlockContext, e: BExpr): void {
  if (v.t !== 'num') return;
  const vals = v.v; const nulls = v.nulls;
  const over = (i: number) => (vals[i]! > 9007199254740991 || vals[i]! < -9007199254740991) && (nulls === null || nulls[i] === 0);
  const at = ctx.selected;
  let bad = -1;
  if (at === null) { for (let i = 0; i < vals.length; i++) if (over(i)) { bad = i; break; } }
  else for (let j = 0; j < at.count; j++) if (over(at.sel[j]!)) { bad = at.sel[j]!; break; }
  if (bad >= 0) {
    throw new ShoalError('SHOAL_ERR_QUERY_OVERFLOW', `integer arithmetic ${brief(e)} reaches ${vals[bad]!}, beyond +-2^53 where shoal's integers stop being exact (an operand divided by 1 makes it float arithmetic, approximate)`);
  }
}

function arithNum(op: string, l: Vec, r: Vec, n: number): Vec {
  const out = new Float64Array(n);
  let nulls: Uint8Array | null = null;
  const lv = l.t === 'num' ? l.v : null; const lk = l.t === 'const' ? l.v : 0;
  const rv = r.t === 'num' ? r.v : null; const rk = r.t === 'const' ? r.v : 0;
  if (lk === null || rk === null) return { t: 'const', v: null };
  const a = (i: number) => (lv !== null ? lv[i]! : (lk as number));
  const b = (i: number) => (rv !== null ? rv[i]! : (rk as number));
  switch (op) {
    case '+': for (let i = 0; i < n; i++) out[i] = a(i) + b(i); break;
    case '-': for (let i = 0; i < n; i++) out[i] = a(i) - b(i); break;
    case '*': for (let i = 0; i < n; i++) out[i] = a(i) * b(i); break;
    case '/': case '%':
      nulls = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const d = b(i);
        if (d === 0) { nulls[i] = 1; continue; }
        out[i] = op === '/' ? a(i) / d : a(i) % d;
      }
      break;
  }
  const ln = l.t === 'num' ? l.nulls : null;
  const rn = r.t === 'num' ? r.nulls : null;
  if (ln !== null || rn !== null) {
    nulls ??= new Uint8Array(n);
    for (let i = 0; i < n; i++) if ((ln !== null && ln[i] === 1) || (rn !== null && rn[i] === 1)) nulls[i] = 1;
  }
  return { t: 'num', v: out, nulls };
}

function evalFnVec(e: Extract<BExpr, { k: 'fn' }>, ctx: BlockContext): Vec {
  const n = ctx.rowCount;
  const args = e.args.map((a) => evalVec(a, ctx));
  const a0 = args[0]!;
  switch (e.name) {
    case 'time_bucket': {
      const w = args[0]!; const t = args[1]!;
      if (w.t === 'const' && typeof w.v === 'number' && t.t === 'num') {
        const out = new Float64Array(n);
        const width = w.v;
        for (let i = 0; i < n; i++) out[i] = timeBucket(width, t.v[i]!);
        return { t: 'num', v: out, nulls: t.nulls };
      }
      break;
    }
    case 'lower': case 'upper':
      if (a0.t === 'str') {
        const dict = a0.dict.map(e.name === 'lower' ? lowerText : upperText);
        return { t: 'str', codes: a0.codes, dict, gcodes: null, nulls: a0.nulls };
      }
      break;
    case 'length':
      // Once per dictionary entry, then by code (a string set falls through to the row path).
      if (a0.t === 'str') {
        const lengths = a0.dict.map(codePointLength);
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) out[i] = lengths[a0.codes[i]!]!;
        return { t: 'num', v: out, nulls: a0.nulls };
      }
      break;
    case 'list_contains': {
      const k = args[1]!;
      if (a0.t === 'set' && k.t === 'const') {
        const out = new Uint8Array(n);
        const want = a0.dict.indexOf(k.v as string);
        for (let i = 0; i < n; i++) {
          if (a0.nulls !== null && a0.nulls[i] === 1) { out[i] = NULL; continue; }
          let hit = false;
          if (want >= 0) for (let j = a0.offsets[i]!; j < a0.offsets[i + 1]!; j++) if (a0.codes[j] === want) { hit = true; break; }
          out[i] = hit ? TRUE : FALSE;
        }
        return { t: 'bool', v: out };
      }
      break;
    }
    case 'to_timestamp': case 'epoch':
      return a0;
    case 'date_trunc': case 'date_part': {
      const p = args[0]!; const t = args[1]!;
      if (p.t === 'const' && typeof p.v === 'string' && t.t === 'num') {
        const part = p.v;
        const out = new Float64Array(n);
        const tv = t.v;
        const unitUs = e.name === 'date_trunc' ? FIXED_UNIT_US[part] : undefined;
        if (unitUs !== undefined) {
          // Units of fixed length: on whole microseconds, inline (what dateTrunc does per value).
          for (let i = 0; i < n; i++) out[i] = (Math.floor(Math.round(tv[i]! * 1e6) / unitUs) * unitUs) / 1e6;
        } else {
          const f = e.name === 'date_trunc' ? dateTrunc : datePart;
          for (let i = 0; i < n; i++) out[i] = f(part, tv[i]!);
        }
        return { t: 'num', v: out, nulls: t.nulls };
      }
      break;
    }
    default:
  }
  // One string column and constants: once per dictionary entry.
  const strAt = args.findIndex((a) => a.t === 'str');
  if (strAt >= 0 && args.every((a, i) => i === strAt || a.t === 'const') && e.name !== 'concat' && e.name !== 'greatest' && e.name !== 'least') {
    const consts = args.map((a) => (a.t === 'const' ? a.v : null));
    const fe: BExpr = { ...e, args: e.args.map((a, i) => (i === strAt ? { k: 'col', name: '$s', type: a.type } : { k: 'const', value: consts[i]!, type: a.type })) };
    return perDictEntry(e, args[strAt] as Extract<Vec, { t: 'str' }>, (s) => evalScalar(fe, { column: () => s }), n, ctx);
  }
  return rowwise(e, ctx, null);
}

/** Row-at-a-time fallback: evaluates `e` per row through the scalar evaluator. */
function rowwise(e: BExpr, ctx: BlockContext, _args: Vec[] | null): Vec {
  const n = ctx.rowCount;
  const values: Scalar[] = new Array(n);
  let row = 0;
  const env = { column: (name: string) => rowValue(ctx.column(name), row) };
  let big: number[] | null = null;
  let failed: Map<number, unknown> | null = null;
  for (row = 0; row < n; row++) {
    let x: Scalar;
    // A row that fails (a cast, an overflow) is an error only if it counts (see perDictEntry).
    try { x = evalScalar(e, env); } catch (err) { if (!(err instanceof ShoalError)) throw err; (failed ??= new Map()).set(row, err); values[row] = null; continue; }
    // An integer past 2^53 (the row evaluator keeps it exact, as a bigint): refused where it
    // counts, as checkExactInts does for the vector kernels, never rounded into a double.
    if (typeof x === 'bigint') { (big ??= []).push(row); values[row] = Number(x); } else values[row] = x;
  }
  if (failed !== null) {
    const at = ctx.selected;
    if (at === null) throw failed.values().next().value;
    for (let j = 0; j < at.count; j++) { const err = failed.get(at.sel[j]!); if (err !== undefined) throw err; }
  }
  if (big !== null) {
    const at = ctx.selected;
    if (at === null) throw overflowError(e);
    const bad = new Set(big);
    for (let j = 0; j < at.count; j++) if (bad.has(at.sel[j]!)) throw overflowError(e);
  }
  return fromValues(values, e.type === 'bool');
}
