/**
 * Window functions over a query's result rows: after the merge, GROUP BY and HAVING (aggregate
 * queries) or over a subquery's rows. Each window partitions the rows by its PARTITION BY values,
 * sorts each partition by its ORDER BY (stable, NULLs last unless NULLS FIRST), and computes its
 * function per row over the frame, as DuckDB does:
 * - the default frame is the whole partition without ORDER BY, and from the partition's start to
 *   the current row's last peer (rows with equal ORDER BY values) with it;
 * - ROWS frames count rows, RANGE frames (UNBOUNDED / CURRENT ROW only) include the peers;
 * - integer sums are exact (bigint past 2^53), sums and averages of no values are NULL.
 * Work: O(n log n) to sort plus O(n) per window for the common frames (prefix sums); min/max over
 * a sliding frame is O(n x frame), bounded by LIMITS.windowWorkMax.
 */
import { ShoalError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { tupleText } from '../exec/group-key.js';
import type { Scalar, WindowCall } from '../plan/plan.js';
import { compareForOrder, compareValues, evalScalar, type ScalarEnv } from '../plan/scalar.js';
import { intResult } from '../plan/wire.js';

/** Window values: out[row][window]. */
export function computeWindows(windows: readonly WindowCall[], envs: readonly ScalarEnv[]): Scalar[][] {
  const out: Scalar[][] = envs.map(() => new Array<Scalar>(windows.length).fill(null));
  windows.forEach((w, wi) => {
    // Earlier windows' values are visible to later ones (none refer to them; kept simple).
    const parts = new Map<string, number[]>();
    envs.forEach((env, r) => {
      const key = w.partitionBy.length === 0 ? '' : tupleText(w.partitionBy.map((p) => evalScalar(p, env)));
      let list = parts.get(key);
      if (list === undefined) { list = []; parts.set(key, list); }
      list.push(r);
    });
    for (const rows of parts.values()) computePartition(w, rows, envs, (r, v) => { out[r]![wi] = v; });
  });
  return out;
}

function computePartition(w: WindowCall, rowsIn: number[], envs: readonly ScalarEnv[], set: (row: number, v: Scalar) => void): void {
  const order = rowsIn.map((r) => ({ r, k: w.orderBy.map((o) => evalScalar(o.expr, envs[r]!)) }));
  if (w.orderBy.length > 0) {
    order.sort((a, b) => {
      for (let i = 0; i < w.orderBy.length; i++) {
        const c = compareForOrder(a.k[i]!, b.k[i]!, w.orderBy[i]!.desc, w.orderBy[i]!.nullsFirst);
        if (c !== 0) return c;
      }
      return 0;
    });
  }
  const n = order.length;
  // Peer groups: [peerStart[i], peerEnd[i]] holds the rows with i's ORDER BY values.
  const peerStart = new Int32Array(n);
  const peerEnd = new Int32Array(n);
  const same = (a: readonly Scalar[], b: readonly Scalar[]) => a.every((x, i) => (x === null || b[i] === null ? x === b[i] : compareValues(x, b[i]!) === 0));
  for (let i = 0; i < n; i++) peerStart[i] = i > 0 && same(order[i]!.k, order[i - 1]!.k) ? peerStart[i - 1]! : i;
  for (let i = n - 1; i >= 0; i--) peerEnd[i] = i < n - 1 && same(order[i]!.k, order[i + 1]!.k) ? peerEnd[i + 1]! : i;

  switch (w.fn) {
    case 'row_number': for (let i = 0; i < n; i++) set(order[i]!.r, i + 1); return;
    case 'rank': for (let i = 0; i < n; i++) set(order[i]!.r, peerStart[i]! + 1); return;
    case 'dense_rank': { let d = 0; for (let i = 0; i < n; i++) { if (peerStart[i] === i) d++; set(order[i]!.r, d); } return; }
    case 'percent_rank': for (let i = 0; i < n; i++) set(order[i]!.r, n > 1 ? peerStart[i]! / (n - 1) : 0); return;
    case 'cume_dist': for (let i = 0; i < n; i++) set(order[i]!.r, (peerEnd[i]! + 1) / n); return;
    case 'ntile': {
      const k = w.args[0]!.k === 'const' ? Number((w.args[0] as { value: Scalar }).value) : 1;
      // As Postgres and DuckDB: the first n % k buckets hold one row more.
      const size = Math.floor(n / k); const extra = n % k;
      for (let i = 0; i < n; i++) {
        const bucket = i < extra * (size + 1) ? Math.floor(i / (size + 1)) : extra + Math.floor((i - extra * (size + 1)) / Math.max(size, 1));
        set(order[i]!.r, bucket + 1);
      }
      return;
    }
    default:
  }
  const vals = w.args.length > 0 ? order.map((o) => evalScalar(w.args[0]!, envs[o.r]!)) : [];
  if (w.fn === 'lag' || w.fn === 'lead') {
    const offset = w.args[1] ? Number((w.args[1] as { value: Scalar }).value ?? 1) : 1;
    for (let i = 0; i < n; i++) {
      const j = w.fn === 'lag' ? i - offset : i + offset;
      set(order[i]!.r, j >= 0 && j < n ? vals[j]! : w.args[2] ? evalScalar(w.args[2], envs[order[i]!.r]!) : null);
    }
    return;
  }
  // Frame of row i: [lo(i), hi(i)], empty when lo > hi.
  const f = w.frame;
  const lo = (i: number): number => {
    if (f === null) return 0;
    if (f.start === null) return 0;
    if (f.unit === 'range') return peerStart[i]!;
    return Math.max(0, i + f.start);
  };
  const hi = (i: number): number => {
    if (f === null) return w.orderBy.length === 0 ? n - 1 : peerEnd[i]!;
    if (f.end === null) return n - 1;
    if (f.unit === 'range') return peerEnd[i]!;
    return Math.min(n - 1, i + f.end);
  };
  switch (w.fn) {
    case 'first_value': for (let i = 0; i < n; i++) { const a = lo(i); set(order[i]!.r, a <= hi(i) ? vals[a]! : null); } return;
    case 'last_value': for (let i = 0; i < n; i++) { const b = hi(i); set(order[i]!.r, lo(i) <= b ? vals[b]! : null); } return;
    case 'nth_value': {
      const k = Number((w.args[1] as { value: Scalar }).value ?? 1);
      for (let i = 0; i < n; i++) { const j = lo(i) + k - 1; set(order[i]!.r, j <= hi(i) ? vals[j]! : null); }
      return;
    }
    case 'count_star': for (let i = 0; i < n; i++) set(order[i]!.r, Math.max(0, hi(i) - lo(i) + 1)); return;
    case 'count': case 'sum': case 'avg': {
      // Prefix counts and sums: exact bigint sums for integers, float sums otherwise.
      const ints = vals.every((v) => v === null || typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) && w.type !== 'float';
      const cnt = new Int32Array(n + 1);
      const sumB: bigint[] = ints ? new Array(n + 1) : [];
      const sumF = new Float64Array(ints ? 0 : n + 1);
      if (ints) sumB[0] = 0n;
      for (let i = 0; i < n; i++) {
        const v = vals[i]!;
        if (v !== null && typeof v !== 'number' && typeof v !== 'bigint') throw new ShoalError('SHOAL_ERR_QUERY_TYPE', `${w.fn}() OVER needs numbers, got ${typeof v}`);
        cnt[i + 1] = cnt[i]! + (v === null ? 0 : 1);
        if (ints) sumB[i + 1] = sumB[i]! + (v === null ? 0n : BigInt(v as number | bigint));
        else sumF[i + 1] = sumF[i]! + (v === null ? 0 : Number(v));
      }
      for (let i = 0; i < n; i++) {
        const a = lo(i); const b = hi(i);
        const c = a <= b ? cnt[b + 1]! - cnt[a]! : 0;
        let v: Scalar;
        if (w.fn === 'count') v = c;
        else if (c === 0) v = null;
        else if (ints) { const s = sumB[b + 1]! - sumB[a]!; v = w.fn === 'sum' ? intResult(s) : Number(s) / c; }
        else { const s = sumF[b + 1]! - sumF[a]!; v = w.fn === 'sum' ? s : s / c; }
        set(order[i]!.r, v);
      }
      return;
    }
    case 'min': case 'max': {
      const better = (x: Scalar, best: Scalar) => best === null || (w.fn === 'min' ? compareValues(x, best) < 0 : compareValues(x, best) > 0);
      const growing = f === null || f.start === null;
      if (growing) {
        // Frames that start at the partition's start and end at a non-decreasing row: a running best.
        let best: Scalar = null; let upto = -1;
        for (let i = 0; i < n; i++) {
          const b = hi(i);
          while (upto < b) { upto++; const x = vals[upto]!; if (x !== null && better(x, best)) best = x; }
          set(order[i]!.r, best);
        }
        return;
      }
      let work = 0;
      for (let i = 0; i < n; i++) {
        const a = lo(i); const b = hi(i);
        work += Math.max(0, b - a + 1);
        if (work > LIMITS.windowWorkMax) throw new ShoalError('SHOAL_ERR_QUERY_LIMIT', `${w.fn}() OVER a sliding frame would read more than ${LIMITS.windowWorkMax} values; use a smaller frame or fewer rows`);
        let best: Scalar = null;
        for (let j = a; j <= b; j++) { const x = vals[j]!; if (x !== null && better(x, best)) best = x; }
        set(order[i]!.r, best);
      }
      return;
    }
    default:
      throw new ShoalError('SHOAL_ERR_INTERNAL', `window function ${w.fn} has no implementation`);
  }
}
