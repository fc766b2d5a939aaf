/**
 * What every aggregate state is (init / update / merge / finalize over the groups of a scan or a
 * merge, in columns) and the two helpers the states share. The states: aggregates.ts (counts,
 * sums, min/max, distinct) and quantile-states.ts (sketches and exact quantiles).
 */
import type { Scalar } from '../plan/plan.js';
import type { StateColumn } from '../plan/partial.js';
import type { Vec } from './vec.js';

export interface AggState {
  ensure(groupCount: number): void;
  /** Adds rows sel[0..count) of `v`; row r goes to group gids[r] (group 0 when gids is null). */
  update(gids: Int32Array | null, sel: Int32Array, count: number, v: Vec | null): void;
  /** The states of groups [0, count) as columns (STATE_FIELDS names them). */
  column(count: number): StateColumn;
  /** Merges group i of `col` (`count` groups, checked by the caller) into group into[i]. */
  mergeColumn(col: StateColumn, into: Int32Array, count: number): void;
  /** Takes `col` as the states of groups [0, count) of a fresh state (finish: read, not merged). */
  adopt(col: StateColumn, count: number): void;
  final(gid: number): Scalar;
}

/** A list field of a state column (null when no group has one: `list?`). */
export const list = (col: StateColumn, name: string) => col[name] as readonly unknown[] | null;

let identityIds = new Int32Array(0);
/** Adopting as merging into fresh groups 0..count-1. */
export function adoptByMerge(state: AggState, col: StateColumn, count: number): void {
  if (identityIds.length < count) { identityIds = new Int32Array(Math.max(count, 2 * identityIds.length)); for (let g = 0; g < identityIds.length; g++) identityIds[g] = g; }
  state.ensure(count);
  state.mergeColumn(col, identityIds, count);
}


/** `a` with room for `n` entries (grown at least twofold, zero-filled). */
export function growU8(a: Uint8Array, n: number): Uint8Array {
  if (a.length >= n) return a;
  const b = new Uint8Array(Math.max(n, a.length * 2, 16));
  b.set(a);
  return b;
}
