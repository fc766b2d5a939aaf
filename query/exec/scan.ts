/**
 * scan: run a bound plan over a list of blocks and return a Partial. This is the inner loop of
 * shoal: per block, prune by time, evaluate WHERE into a selection vector, map each selected
 * row to a group id, and update every aggregate state from the block's typed arrays. It runs on
 * the leaf's main thread for small scans and in the worker pool (scan-worker.ts) for big ones.
 */
import type { BoundPlan } from '../plan/bind.js';
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { AggregatePartial, Partial, RowsPartial, ScanStats } from '../plan/partial.js';
import type { BExpr, Scalar } from '../plan/plan.js';
import { compareForOrder } from '../plan/scalar.js';
import type { ScanBlock } from '../storage/table.js';
import { createAggStates, type AggState } from './aggregates.js';
import { exprKey } from '../plan/expr-util.js';
import { Groups, groupIds } from './group-ids.js';
import { encScalar } from '../plan/wire.js';
import { encodeKeys, type KeyColumn } from '../plan/utf8-keys.js';
import { leafSpaceGeneration, threadCodes } from '../storage/string-codes.js';
import { BlockContext, evalVec, fromValues, rowValue, type Vec } from './vector.js';
import { refineSelection } from './selection.js';

/**
 * Time bounds implied by top-level `time` comparisons with constants in WHERE. `min`/`max`
 * prune blocks (inclusive: a block touching a bound may hold a match); `minStrict`/`maxStrict`
 * say the bound itself is excluded (`time > k`), so only a block wholly past it may skip the
 * time conditions.
 */
export interface TimeRange { readonly min: number; readonly max: number; readonly minStrict: boolean; readonly maxStrict: boolean }

export function timeRangeOf(where: BExpr | null): { range: TimeRange; timeOnly: BExpr[]; rest: BExpr[] } {
  let min = -Infinity;
  let max = Infinity;
  let minStrict = false;
  let maxStrict = false;
  const lower = (k: number, strict: boolean) => { if (k > min) { min = k; minStrict = strict; } else if (k === min) minStrict ||= strict; };
  const upper = (k: number, strict: boolean) => { if (k < max) { max = k; maxStrict = strict; } else if (k === max) maxStrict ||= strict; };
  const conjuncts = where === null ? [] : where.k === 'and' ? [...where.args] : [where];
  const timeOnly: BExpr[] = [];
  const rest: BExpr[] = [];
  for (const c of conjuncts) {
    if (c.k === 'cmp') {
      const colLeft = c.left.k === 'col' && c.left.name === 'time' && c.right.k === 'const' && typeof c.right.value === 'number';
      const colRight = c.right.k === 'col' && c.right.name === 'time' && c.left.k === 'const' && typeof c.left.value === 'number';
      if (colLeft || colRight) {
        const k = (colLeft ? (c.right as { value: number }).value : (c.left as { value: number }).value);
        const op = colLeft ? c.op : ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=', '=': '=', '!=': '!=' } as const)[c.op];
        if (op === '>' || op === '>=') lower(k, op === '>');
        else if (op === '<' || op === '<=') upper(k, op === '<');
        else if (op === '=') { lower(k, false); upper(k, false); }
        if (op !== '!=') { timeOnly.push(c); continue; }
      }
    }
    rest.push(c);
  }
  return { range: { min, max, minStrict, maxStrict }, timeOnly, rest };
}

/** True when every time in [timeMin, timeMax] satisfies the range (the time conditions can go). */
export function insideRange(range: TimeRange, timeMin: number, timeMax: number): boolean {
  return (range.minStrict ? timeMin > range.min : timeMin >= range.min) && (range.maxStrict ? timeMax < range.max : timeMax <= range.max);
}

const andOf = (parts: BExpr[]): BExpr | null =>
  parts.length === 0 ? null : parts.length === 1 ? parts[0]! : { k: 'and', args: parts, type: 'bool' };

let identity = new Int32Array(0);
function identitySelection(rowCount: number): Int32Array {
  if (identity.length < rowCount) {
    identity = new Int32Array(Math.max(rowCount, LIMITS.blockRowsMax));
    for (let i = 0; i < identity.length; i++) identity[i] = i;
  }
  return identity;
}

interface BlockPass {
  ctx: BlockContext;
  sel: Int32Array;
  count: number;
}

/** Prunes and filters each block; calls `visit` for blocks with selected rows. */
function forEachBlock(plan: BoundPlan, blocks: readonly ScanBlock[], stats: ScanStats, visit: (p: BlockPass) => boolean | void): void {
  const { range, rest } = timeRangeOf(plan.where);
  const fullWhere = plan.where;
  const restWhere = andOf(rest);
  for (const block of blocks) {
    stats.rowsHeld += block.rowCount;
    if (block.rowCount === 0 || block.timeMax < range.min || block.timeMin > range.max) { stats.blocksSkipped++; continue; }
    stats.blocksScanned++;
    stats.rowsScanned += block.rowCount;
    const ctx = new BlockContext(block);
    // A block wholly inside the time range needs only the non-time conditions.
    const inside = insideRange(range, block.timeMin, block.timeMax);
    const where = inside ? restWhere : fullWhere;
    let sel: Int32Array;
    let count: number;
    if (where === null) { sel = identitySelection(block.rowCount); count = block.rowCount; }
    else {
      // Conjunct by conjunct, each tested only on the rows the ones before kept.
      const conjuncts = where.k === 'and' ? where.args : [where];
      sel = new Int32Array(block.rowCount);
      count = refineSelection(conjuncts[0]!, ctx, identitySelection(block.rowCount), block.rowCount, sel);
      for (let c = 1; c < conjuncts.length && count > 0; c++) count = refineSelection(conjuncts[c]!, ctx, sel, count, sel);
    }
    stats.rowsMatched += count;
    if (count === 0) continue;
    ctx.selected = { sel, count };
    if (visit({ ctx, sel, count }) === false) {
      // The caller has what it needs (a LIMIT without ORDER BY): count the rest as skipped.
      break;
    }
  }
}

/**
 * Which GROUP BY keys are keyed by the leaf's string codes (group-ids.ts, "coded"): a bare string
 * column, in a worker when the task gave every block's map for it (`leafColumns`), on the leaf's
 * main thread when every block holds it as strings (or not at all). Elsewhere none.
 */
function codedKeys(plan: BoundPlan, blocks: readonly ScanBlock[], leafColumns: ReadonlySet<string> | null): boolean[] {
  return plan.keys.map((k, i) => {
    if (k.k !== 'col' || plan.keyTypes[i] !== 'string') return false;
    if (leafColumns !== null) return leafColumns.has(k.name);
    if (!threadCodes.isLeafSpace) return false;
    return blocks.every((b) => { const c = b.column(k.name); return c === undefined || c.kind === 'string'; });
  });
}

export function scanAggregate(plan: BoundPlan, blocks: readonly ScanBlock[], tableFound: boolean, leafColumns: ReadonlySet<string> | null = null): AggregatePartial {
  const stats: ScanStats = { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0 };
  const aggs: AggState[] = createAggStates(plan.logical.aggs.map((a, j) => ({ fn: a.fn, q: a.q, argKey: a.arg === null ? '*' : exprKey(a.arg), intArg: plan.aggArgs[j]?.type === 'int' })));
  const noKeys = plan.keys.length === 0;
  const coded = codedKeys(plan, blocks, leafColumns);
  const groups = new Groups(plan.keys.length, aggs.length, (n) => { for (const a of aggs) a.ensure(n); }, coded);
  if (noKeys) groups.fresh([]);
  const unnestAt = plan.keys.findIndex((k) => k.k === 'fn' && k.name === 'unnest');
  forEachBlock(plan, blocks, stats, ({ ctx, sel, count }) => {
    if (unnestAt >= 0) { unnestBlock(plan, unnestAt, ctx, sel, count, groups, aggs); return; }
    const gids = noKeys ? null : groupIds(plan.keys.map((k) => evalVec(k, ctx)), groups, sel, count, ctx.rowCount);
    for (let j = 0; j < aggs.length; j++) {
      const arg = plan.aggArgs[j];
      aggs[j]!.update(gids, sel, count, arg === null || arg === undefined ? null : evalVec(arg, ctx));
    }
  });
  // Only a float key can be non-finite (wire.ts); other keys go out as they are.
  // One string key goes out as UTF-8 bytes (utf8-keys.ts), not as JS strings.
  // A coded key goes out as the leaf's codes (utf8-keys.ts, CodeKeys).
  const utf8 = groups.keys.length === 1 && plan.keyTypes[0] === 'string' && !coded[0] ? encodeKeys(groups.keys[0]!) : null;
  const generation = leafSpaceGeneration();
  const keys: KeyColumn[] = utf8 !== null ? [utf8] : groups.keys.map((col, k) => (coded[k]
    ? { coded: true, codes: Int32Array.from(col, (c) => (c === null ? -1 : c as number)), generation }
    : plan.keyTypes[k] === 'float' || plan.keyTypes[k] === 'any' ? col.map(encScalar) as Scalar[] : col));
  const out = { count: groups.count, keys, states: aggs.map((a) => a.column(groups.count)) };
  return { mode: 'aggregate', tableFound, columns: plan.columns, groups: out, unknownColumns: plan.unknownColumns, stats };
}

/**
 * GROUP BY unnest(set): each selected row counts once in the group of every member of its set (a
 * row whose set is empty or NULL in none, as DuckDB's unnest makes no row for it). The keys' and
 * the aggregates' vectors are evaluated over the block as usual, then gathered at one entry per
 * (row, member), and grouped and aggregated over those entries.
 */
function unnestBlock(plan: BoundPlan, at: number, ctx: BlockContext, sel: Int32Array, count: number, groups: Groups, aggs: AggState[]): void {
  const arg = (plan.keys[at] as Extract<BExpr, { k: 'fn' }>).args[0]!;
  const set = evalVec(arg, ctx);
  if (set.t !== 'set') {
    if (set.t === 'const' && set.v === null) return; // a column this leaf lacks: no members
    throw new ShoalError('SHOAL_ERR_QUERY_TYPE', 'unnest() needs a string set');
  }
  let total = 0;
  for (let i = 0; i < count; i++) { const r = sel[i]!; if (set.nulls === null || set.nulls[r] === 0) total += set.offsets[r + 1]! - set.offsets[r]!; }
  if (total === 0) return;
  if (total > LIMITS.blockRowsMax * 64) throw new ShoalError('SHOAL_ERR_QUERY_LIMIT', `unnest() makes ${total} rows of one block, over ${LIMITS.blockRowsMax * 64}`);
  const rows = new Int32Array(total);
  const members = new Int32Array(total);
  let k = 0;
  for (let i = 0; i < count; i++) {
    const r = sel[i]!;
    if (set.nulls !== null && set.nulls[r] === 1) continue;
    for (let j = set.offsets[r]!; j < set.offsets[r + 1]!; j++) { rows[k] = r; members[k] = set.codes[j]!; k++; }
  }
  const identity = identitySelection(total);
  const memberVec: Vec = { t: 'str', codes: members, dict: set.dict, gcodes: arg.k === 'col' ? ctx.block.codeMap(arg.name) : null, nulls: null };
  const keyVecs = plan.keys.map((key, i) => (i === at ? memberVec : gatherVec(evalVec(key, ctx), rows, total)));
  const gids = groupIds(keyVecs, groups, identity, total, total);
  for (let j = 0; j < aggs.length; j++) {
    const a = plan.aggArgs[j];
    aggs[j]!.update(gids, identity, total, a === null || a === undefined ? null : gatherVec(evalVec(a, ctx), rows, total));
  }
}

/** A vector's values at rows[0..n) (rows may repeat), as a new vector indexed 0..n-1. */
function gatherVec(v: Vec, rows: Int32Array, n: number): Vec {
  switch (v.t) {
    case 'const': return v;
    case 'num': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = v.v[rows[i]!]!;
      let nulls: Uint8Array | null = null;
      if (v.nulls !== null) { nulls = new Uint8Array(n); for (let i = 0; i < n; i++) nulls[i] = v.nulls[rows[i]!]!; }
      return { t: 'num', v: out, nulls };
    }
    case 'str': {
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = v.codes[rows[i]!]!;
      let nulls: Uint8Array | null = null;
      if (v.nulls !== null) { nulls = new Uint8Array(n); for (let i = 0; i < n; i++) nulls[i] = v.nulls[rows[i]!]!; }
      const dict = v.dict;
      return { t: 'str', codes, gcodes: v.gcodes, nulls, lcodes: v.lcodes, get dict() { return dict; } };
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = v.v[rows[i]!]!;
      return { t: 'bool', v: out };
    }
    case 'set':
      return fromValues(Array.from({ length: n }, (_, i) => rowValue(v, rows[i]!)), false);
  }
}

export function scanRows(plan: BoundPlan, blocks: readonly ScanBlock[], tableFound: boolean): RowsPartial {
  const stats: ScanStats = { rowsHeld: 0, rowsScanned: 0, rowsMatched: 0, blocksScanned: 0, blocksSkipped: 0 };
  // With OFFSET the leaf keeps limit + offset rows: the offset is taken once, from the merged order.
  const limit = Math.min(plan.logical.limit === null ? LIMITS.resultRowsMax : plan.logical.limit + (plan.logical.offset ?? 0), LIMITS.resultRowsMax);
  const order = plan.logical.orderBy;
  let rows: Scalar[][] = [];
  let orderValues: Scalar[][] = [];
  let truncated = false;
  const compare = (a: readonly Scalar[], b: readonly Scalar[]) => {
    for (let k = 0; k < order.length; k++) { const c = compareForOrder(a[k]!, b[k]!, order[k]!.desc, order[k]!.nullsFirst === true); if (c !== 0) return c; }
    return 0;
  };
  forEachBlock(plan, blocks, stats, ({ ctx, sel, count }) => {
    const proj = plan.projections.map((p) => evalVec(p.expr, ctx));
    if (order.length === 0) {
      for (let i = 0; i < count; i++) {
        if (rows.length >= limit) { truncated = true; return false; }
        const r = sel[i]!;
        rows.push(proj.map((v) => encScalar(rowValue(v, r)) as Scalar));
        orderValues.push([]);
      }
      return true;
    }
    const ov = plan.rowOrder.map((e) => evalVec(e, ctx));
    const idx = Array.from(sel.subarray(0, count));
    const keyOf = (r: number) => ov.map((v) => rowValue(v, r));
    const keyed = idx.map((r) => ({ r, k: keyOf(r) }));
    keyed.sort((a, b) => compare(a.k, b.k));
    if (keyed.length > limit) truncated = true;
    for (const { r, k } of keyed.slice(0, limit)) { rows.push(proj.map((v) => encScalar(rowValue(v, r)) as Scalar)); orderValues.push(k); }
    if (rows.length > limit) {
      const both = rows.map((row, i) => ({ row, k: orderValues[i]! }));
      both.sort((a, b) => compare(a.k, b.k));
      truncated = true;
      rows = both.slice(0, limit).map((x) => x.row);
      orderValues = both.slice(0, limit).map((x) => x.k);
    }
    return true;
  });
  return { mode: 'rows', tableFound, columns: plan.columns, rows, orderValues: orderValues.map((k) => k.map(encScalar) as Scalar[]), truncated, unknownColumns: plan.unknownColumns, stats };
}

/** `leafColumns`: in a scan worker, the columns whose leaf code maps the task gave (string-codes.ts). */
export function scan(plan: BoundPlan, blocks: readonly ScanBlock[], tableFound = true, leafColumns: ReadonlySet<string> | null = null): Partial {
  return plan.logical.mode === 'aggregate' ? scanAggregate(plan, blocks, tableFound, leafColumns) : scanRows(plan, blocks, tableFound);
}
