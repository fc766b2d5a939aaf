/**
 * Partials between processes (leaf -> aggregator -> parent). JSON, except that a group table's
 * typed arrays (counts, sums, min/max numbers) travel as base64 of their bytes: 11 bytes of text
 * per float64 instead of up to 24 digits, no float formatting or parsing, and NaN / Infinity as
 * they are. On the way in every column is checked before any merge: one entry per group, each
 * aggregate's state columns as STATE_FIELDS (aggregates.ts) names them.
 */
import { distinctToCoded, distinctToValues, STATE_FIELDS } from '../exec/aggregates.js';
import { PLAN_VERSION } from '../plan/protocol.js';
import { decFloat, encFloat, encScalar } from '../plan/wire.js';
import { codedToUtf8, isCoded, isUtf8, keyAt, keyValues, type KeyColumn, type Utf8Keys } from '../plan/utf8-keys.js';
import type { CodedSets, GroupTable, Partial } from '../plan/partial.js';
import type { LogicalPlan, Scalar } from '../plan/plan.js';
type Typed = Float64Array | Uint8Array;

/** Base64 of a typed array's bytes. */
const b64 = (a: Int32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** A typed array on the wire: `{"$t": "f64" | "u8", "b": base64 of its bytes}`. */
function typedToWire(a: Typed): { $t: 'f64' | 'u8'; b: string } {
  return { $t: a instanceof Float64Array ? 'f64' : 'u8', b: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') };
}

function typedFromWire(x: { $t: unknown; b: unknown }, count: number, where: string): Typed {
  if (typeof x.b !== 'string') throw new Error(`${where}: no bytes`);
  const bytes = Buffer.from(x.b, 'base64');
  const size = x.$t === 'f64' ? 8 : x.$t === 'u8' ? 1 : 0;
  if (size === 0) throw new Error(`${where}: unknown array type ${String(x.$t)}`);
  if (bytes.byteLength !== size * count) throw new Error(`${where}: ${bytes.byteLength} bytes for ${count} groups`);
  // Copied into its own buffer: Buffer's pool gives no 8-byte alignment.
  const out = size === 8 ? new Float64Array(count) : new Uint8Array(count);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** A partial as JSON can carry it (typed arrays as base64), in protocol `v` (3, or 2 for a
 * parent on older code: see legacyGroups). */
export function partialToWire(part: Partial, plan: LogicalPlan, v: number = PLAN_VERSION): unknown {
  if (part.mode === 'rows') return part;
  const p = { ...part, groups: withoutLeafCodes(part.groups, v) };
  if (v === 2) return { ...p, groups: legacyGroups(plan, p.groups) };
  const states = p.groups.states.map((col) => {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(col)) o[k] = x instanceof Float64Array || x instanceof Uint8Array ? typedToWire(x) : k === 'coded' && x !== null ? codedToWire(x as CodedSets) : x;
    return o;
  });
  const keys = p.groups.keys.map((col) => (isUtf8(col)
    ? { $utf8: { offsets: b64(col.offsets), bytes: b64(col.bytes), nullAt: col.nullAt } }
    : col));
  return { ...p, groups: { count: p.groups.count, keys, states } };
}

/** A group table as another process can read it: the leaf's string codes (keys, count(DISTINCT)
 * marks) made strings, one string key as UTF-8 (utf8-keys.ts). */
function withoutLeafCodes(t: GroupTable, v: number): GroupTable {
  const coded = t.keys.some(isCoded);
  const marks = t.states.some((col) => 'leafSeen' in col || 'leafSets' in col);
  if (!coded && !marks) return t;
  const keys = t.keys.map((col) => (!isCoded(col) ? col : (t.keys.length === 1 ? codedToUtf8(col) : null) ?? keyValues(col, t.count)));
  // Protocol 5 sends a count(DISTINCT)'s strings once each with ids per group (CodedSets);
  // before it, every group's strings in full.
  return { count: t.count, keys, states: t.states.map((col) => (v >= 5 ? distinctToCoded(col, t.count) : null) ?? distinctToValues(col, t.count)) };
}

function codedToWire(c: CodedSets): unknown {
  return { dict: { offsets: b64(c.dict.offsets), bytes: b64(c.dict.bytes) }, starts: b64(c.starts), ids: b64(c.ids) };
}

function int32FromWire(x: unknown, what: string): Int32Array {
  if (typeof x !== 'string') throw new Error(`${what} is not base64`);
  const b = Buffer.from(x, 'base64');
  if (b.byteLength % 4 !== 0) throw new Error(`${what} is not whole int32s`);
  const out = new Int32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** A count(DISTINCT) column's coded strings from the wire, checked: offsets rising over the bytes,
 * each entry valid UTF-8 on its own, `count` + 1 starts rising over the ids, every id in range. */
function codedFromWire(x: unknown, count: number, where: string): CodedSets {
  const c = x as { dict?: { offsets?: unknown; bytes?: unknown }; starts?: unknown; ids?: unknown };
  if (c === null || typeof c !== 'object' || c.dict === null || typeof c.dict !== 'object') throw new Error(`${where} has no dictionary`);
  const offsets = int32FromWire(c.dict.offsets, `${where}.dict.offsets`);
  if (typeof c.dict.bytes !== 'string') throw new Error(`${where}.dict.bytes is not base64`);
  const bytes = new Uint8Array(Buffer.from(c.dict.bytes, 'base64'));
  const k = offsets.length - 1;
  if (k < 0 || offsets[0] !== 0 || offsets[k] !== bytes.length) throw new Error(`${where}: dictionary offsets do not span its bytes`);
  for (let i = 0; i < k; i++) {
    if (offsets[i + 1]! < offsets[i]!) throw new Error(`${where}: dictionary offsets fall at entry ${i}`);
    // An entry must not start inside a character: with the whole valid, each entry is.
    if (offsets[i]! < bytes.length && (bytes[offsets[i]!]! & 0xc0) === 0x80) throw new Error(`${where}: dictionary entry ${i} starts inside a UTF-8 character`);
  }
  try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { throw new Error(`${where}: dictionary is not valid UTF-8`); }
  const starts = int32FromWire(c.starts, `${where}.starts`);
  const ids = int32FromWire(c.ids, `${where}.ids`);
  if (starts.length !== count + 1 || starts[0] !== 0 || starts[count] !== ids.length) throw new Error(`${where}: starts do not span the ids of ${count} groups`);
  for (let g = 0; g < count; g++) if (starts[g + 1]! < starts[g]!) throw new Error(`${where}: starts fall at group ${g}`);
  for (let i = 0; i < ids.length; i++) if (!(ids[i]! >= 0 && ids[i]! < k)) throw new Error(`${where}: id ${ids[i]} is not in its dictionary of ${k}`);
  return { dict: { offsets, bytes }, starts, ids };
}

/** A UTF-8 key column from the wire, checked: count + 1 offsets rising from 0 to the bytes'
 * length, valid UTF-8, and a NULL group (if any) that is a group with no bytes. */
function utf8FromWire(x: unknown, count: number): Utf8Keys {
  const u = x as { offsets?: unknown; bytes?: unknown; nullAt?: unknown };
  if (typeof u.offsets !== 'string' || typeof u.bytes !== 'string' || typeof u.nullAt !== 'number') throw new Error('a UTF-8 key column lacks offsets, bytes or nullAt');
  const ob = Buffer.from(u.offsets, 'base64');
  if (ob.byteLength !== 4 * (count + 1)) throw new Error(`a UTF-8 key column has ${ob.byteLength / 4} offsets for ${count} groups`);
  const offsets = new Int32Array(count + 1);
  new Uint8Array(offsets.buffer).set(ob);
  const bytes = new Uint8Array(Buffer.from(u.bytes, 'base64'));
  if (offsets[0] !== 0 || offsets[count] !== bytes.length) throw new Error('a UTF-8 key column\'s offsets do not span its bytes');
  for (let g = 0; g < count; g++) if (offsets[g + 1]! < offsets[g]!) throw new Error(`a UTF-8 key column's offsets fall at group ${g}`);
  const nullAt = u.nullAt;
  if (!Number.isInteger(nullAt) || nullAt < -1 || nullAt >= count || (nullAt >= 0 && offsets[nullAt] !== offsets[nullAt + 1])) throw new Error('a UTF-8 key column has a bad NULL group');
  // Invalid UTF-8 would decode to U+FFFD and merge keys that differ: refused instead.
  try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { throw new Error('a UTF-8 key column is not valid UTF-8'); }
  return { utf8: true, offsets, bytes, nullAt };
}

/**
 * A partial that came over the wire, checked to be mergeable: every key and state column has one
 * entry per group. Returns an error text instead of throwing (the caller reports the member).
 */
export function partialFromWire(raw: unknown, plan: LogicalPlan, v: number = PLAN_VERSION): { ok: Partial } | { error: string } {
  const p = raw as Partial;
  if (p.mode === 'rows') return { ok: p };
  if (v === 2) {
    try { return { ok: { ...p, groups: fromLegacyGroups(plan, (p as { groups: unknown }).groups) } }; } catch (e) { return { error: `aggregate partial (protocol 2): ${(e as Error).message}` }; }
  }
  const keyCount = plan.keys.length;
  const aggCount = plan.aggs.length;
  const g = (p as { groups?: unknown }).groups as { count?: unknown; keys?: unknown; states?: unknown } | undefined;
  if (g === undefined || g === null || typeof g !== 'object') return { error: 'aggregate partial has no groups' };
  const count = g.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) return { error: 'aggregate partial has no group count' };
  if (!Array.isArray(g.keys) || g.keys.length !== keyCount || g.keys.some((k) => (Array.isArray(k) ? k.length !== count : k === null || typeof k !== 'object' || !('$utf8' in k)))) return { error: `aggregate partial does not have ${keyCount} key columns of ${count} groups` };
  let keys: KeyColumn[];
  try {
    keys = (g.keys as unknown[]).map((k) => (Array.isArray(k) ? k as Scalar[] : utf8FromWire((k as { $utf8: unknown }).$utf8, count)));
  } catch (e) {
    return { error: `aggregate partial: ${(e as Error).message}` };
  }
  if (!Array.isArray(g.states) || g.states.length !== aggCount) return { error: `aggregate partial does not have ${aggCount} state columns` };
  try {
    const states = g.states.map((col: unknown, j: number) => {
      if (col === null || typeof col !== 'object' || Array.isArray(col)) throw new Error(`state ${j} is not a column set`);
      const fields = STATE_FIELDS[plan.aggs[j]!.fn];
      const given = col as Record<string, unknown>;
      const o: Record<string, Typed | unknown[] | null> = {};
      for (const [k, kind] of Object.entries(fields)) {
        const x = given[k];
        const where = `state ${j} (${plan.aggs[j]!.fn}) .${k}`;
        if (kind === 'f64' || kind === 'u8') {
          if (x === null || typeof x !== 'object' || (x as { $t?: unknown }).$t !== kind) throw new Error(`${where} is not a ${kind} array`);
          o[k] = typedFromWire(x as { $t: unknown; b: unknown }, count, where);
        } else if (x === null && kind === 'list?') o[k] = null;
        else if (Array.isArray(x) && x.length === count) o[k] = x;
        else throw new Error(`${where} is not a list of ${count} entries`);
      }
      // Protocol 5: a count(DISTINCT)'s strings may come coded beside its lists.
      const coded = given['coded'];
      if (plan.aggs[j]!.fn === 'count_distinct' && coded !== undefined && coded !== null) {
        if (v < 5) throw new Error(`state ${j} (count_distinct) is coded, which protocol ${v} does not have`);
        (o as Record<string, unknown>)['coded'] = codedFromWire(coded, count, `state ${j} (count_distinct) .coded`);
      }
      return o;
    });
    const cut = (p as { cut?: unknown }).cut;
    if (cut !== undefined) {
      const c = cut as { bound?: unknown; of?: unknown };
      if (cut === null || typeof cut !== 'object' || typeof c.bound !== 'number' || !Number.isFinite(c.bound) || c.bound < 0 || typeof c.of !== 'number' || !Number.isInteger(c.of) || c.of < count) throw new Error('a cut partial has no bound or group count');
    }
    return { ok: { ...p, groups: { count, keys, states } } satisfies Partial & { groups: GroupTable } };
  } catch (e) {
    return { error: `aggregate partial: ${(e as Error).message}` };
  }
}

// ---- protocol 2: one {keys, states} object per group ------------------------------------------
//
// The plan is the same in protocols 2 and 3; only aggregate partials differ. A leaf on this code
// answers a version-2 plan (an aggregator not yet rolled) in version 2, and an aggregator reads
// version-2 answers, so a roll onto this code keeps full coverage whichever side goes first.
// Version-2 states: count -> n; sum/avg -> [hi, lo, n, float (wire), sawFloat]; min/max -> the
// value (wire); count(DISTINCT) -> the list; sketches -> their serialized form or null.

type LegacyGroup = { keys: unknown[]; states: unknown[] };

function legacyGroups(plan: LogicalPlan, t: GroupTable): LegacyGroup[] {
  const out: LegacyGroup[] = new Array(t.count);
  for (let g = 0; g < t.count; g++) {
    const states = plan.aggs.map((a, j) => {
      const c = t.states[j]!;
      switch (a.fn) {
        case 'count_star': case 'count': return (c.n as Float64Array)[g]!;
        case 'sum': case 'avg': return [(c.hi as Float64Array)[g]!, (c.lo as Float64Array)[g]!, (c.n as Float64Array)[g]!, encFloat((c.f as Float64Array)[g]!), (c.sawFloat as Uint8Array)[g]!];
        case 'min': case 'max': return (c.has as Uint8Array)[g] === 1 ? encScalar((c.nums as Float64Array)[g]!) : ((c.others as unknown[] | null)?.[g] ?? null);
        case 'count_distinct': return (c.sets as unknown[])[g];
        case 'approx_count_distinct': return (c.sketches as unknown[])[g];
        case 'approx_quantile': return (c.sketches as unknown[] | null)?.[g] ?? null;
        case 'quantile_cont': case 'quantile_disc': return (c.vals as unknown[])[g];
      }
    });
    out[g] = { keys: t.keys.map((col) => keyAt(col, g)), states };
  }
  return out;
}

function fromLegacyGroups(plan: LogicalPlan, raw: unknown): GroupTable {
  if (!Array.isArray(raw)) throw new Error('no groups');
  const count = raw.length;
  const keys: Scalar[][] = plan.keys.map(() => new Array(count));
  const cols = plan.aggs.map((a) => {
    const f = (n: string) => [n, new Float64Array(count)] as const;
    switch (a.fn) {
      case 'count_star': case 'count': return Object.fromEntries([f('n')]);
      case 'sum': case 'avg': return Object.fromEntries([f('hi'), f('lo'), f('n'), f('f'), ['sawFloat', new Uint8Array(count)]]);
      case 'min': case 'max': return Object.fromEntries([f('nums'), ['has', new Uint8Array(count)], ['others', new Array(count).fill(null)]]);
      case 'count_distinct': return { sets: new Array(count) };
      default: return { sketches: new Array(count).fill(null) };
    }
  }) as Record<string, Float64Array | Uint8Array | unknown[]>[];
  raw.forEach((grp: unknown, g: number) => {
    const x = grp as LegacyGroup;
    if (x === null || typeof x !== 'object' || !Array.isArray(x.keys) || !Array.isArray(x.states) || x.keys.length !== plan.keys.length || x.states.length !== plan.aggs.length) throw new Error(`group ${g} is malformed`);
    x.keys.forEach((k, i) => { keys[i]![g] = k as Scalar; });
    plan.aggs.forEach((a, j) => {
      const c = cols[j]!; const st = x.states[j];
      switch (a.fn) {
        case 'count_star': case 'count': (c.n as Float64Array)[g] = Number(st); break;
        case 'sum': case 'avg': {
          if (!Array.isArray(st) || st.length !== 5) throw new Error(`group ${g}: a sum state is not [hi, lo, n, f, sawFloat]`);
          (c.hi as Float64Array)[g] = Number(st[0]); (c.lo as Float64Array)[g] = Number(st[1]); (c.n as Float64Array)[g] = Number(st[2]);
          (c.f as Float64Array)[g] = decFloat(st[3]); (c.sawFloat as Uint8Array)[g] = st[4] === 1 ? 1 : 0;
          break;
        }
        case 'min': case 'max': {
          const v = st === null || typeof st !== 'object' || '$f' in (st as object) ? st : null;
          if (typeof v === 'number' || (v !== null && typeof v === 'object')) { (c.nums as Float64Array)[g] = decFloat(v); (c.has as Uint8Array)[g] = 1; }
          else if (v !== null) (c.others as unknown[])[g] = v;
          break;
        }
        case 'count_distinct': if (!Array.isArray(st)) throw new Error(`group ${g}: a count(DISTINCT) state is not a list`); (c.sets as unknown[])[g] = st; break;
        default: (c.sketches as unknown[])[g] = st ?? null;
      }
    });
  });
  // A non-owner quantile's column is null in protocol 3 (only the sketch's owner carries it).
  return { count, keys, states: cols };
}
