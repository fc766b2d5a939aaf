/**
 * Seeded data for the differential test (test/differential.test.ts): events for table `events`
 * built to corner both engines rather than to look like traffic. Every column but `id` and `time`
 * has explicit nulls and absent fields; ints run to +-2^50 (so a few dozen of them sum past 2^53);
 * floats are negative, tiny, subnormal, fractional near 2^52, 1e20 and 1e70 (which JSON cannot
 * tell from integers), and +-1.7e308 in a column that queries never sum; strings carry astral code points, combining marks and the letters whose case
 * mapping is not one-to-one ('ß', 'İ', 'ı', final sigma, 'ǅ', 'ﬁ'); `ratio` is int in early
 * events and float later; `late_s` / `late_i` appear only in later events.
 *
 * The same (seed, rowCount) always gives the same events. `time` is integer unix seconds over six
 * days from a fixed instant (not the clock), so ISO literals in queries mean the same rows on
 * every run.
 *
 * Not here: queries (sqlgen.ts), running them (diff-run.ts).
 */
import type { ColumnInfo } from './duckdb.js';
import { Rng } from './gen.js';

/** 2025-11-20T00:00:00Z: the first instant of the data. */
export const DIFF_TIME_START_SECONDS = 1_763_596_800;
export const DIFF_TIME_SPAN_SECONDS = 6 * 86_400;

export const SVC_VALUES = ['api', 'web', 'auth', 'batch', 'Api', ''] as const;
export const REGION_VALUES = ['us-east', 'eu-west', 'ap-south', 'sa-east'] as const;
/**
 * Strings where UTF-16 and code points disagree (astral), where NFC and NFD spellings differ
 * ('é' two ways), where case mapping changes length or is context-dependent, and the LIKE
 * wildcards as data.
 */
export const WORD_VALUES = [
  'ß', 'SS', 'straße', 'STRASSE', 'İstanbul', 'istanbul', 'ISTANBUL', 'ı', 'ΣΑΣ', 'σας', 'Σ', 'ﬁle', 'FILE',
  'é', 'e\u0301', 'E\u0301', '🌊', '🌊wave', 'a🌊b', 'a😀😀b', '𝔘nicode', 'ǅ', 'ǆ', 'Ǆ', 'ÅNGSTRÖM', 'ångström',
  'ﾄｳｷｮｳ', '東京', "O'Brien", 'Zürich', 'zürich', '100%', 'a_b', 'axb', 'x', 'X', '', ' lead', 'trail ',
] as const;
export const TAG_VALUES = ['red', 'green', 'blue', 'ß', '🌊', 'x_y'] as const;
export const LATE_VALUES = ['new', 'NEW', 'ñu', '🌊late', 'σ'] as const;

/** DuckDB types of the columns, in the order fields are first written. */
export const DIFF_SCHEMA: readonly ColumnInfo[] = [
  { name: 'id', type: 'BIGINT' },
  { name: 'time', type: 'TIMESTAMP' },
  { name: 'svc', type: 'VARCHAR' },
  { name: 'region', type: 'VARCHAR' },
  { name: 'uid', type: 'VARCHAR' },
  { name: 'word', type: 'VARCHAR' },
  { name: 'code', type: 'BIGINT' },
  { name: 'n', type: 'BIGINT' },
  { name: 'big', type: 'BIGINT' },
  { name: 'f', type: 'DOUBLE' },
  { name: 'fx', type: 'DOUBLE' },
  { name: 'ratio', type: 'DOUBLE' },
  { name: 'fbig', type: 'DOUBLE' },
  { name: 'flag', type: 'BOOLEAN' },
  { name: 'tags', type: 'VARCHAR[]' },
  { name: 'late_s', type: 'VARCHAR' },
  { name: 'late_i', type: 'BIGINT' },
];

export type DiffEvent = Record<string, unknown>;

const TWO_POW_50 = 2 ** 50;
/** Fraction of events after which `late_s` (then `late_i`) first appear; `ratio` turns float. */
const LATE_S_FIRST_FRACTION = 0.55;
const LATE_I_FIRST_FRACTION = 0.7;
const RATIO_FLOAT_FRACTION = 0.4;

/** A value, null (explicit) or undefined (the field is left out), at the given rates. */
function maybe<T>(rng: Rng, value: () => T, nullRate = 0.06, absentRate = 0.04): T | null | undefined {
  const draw = rng.next();
  if (draw < nullRate) return null;
  if (draw < nullRate + absentRate) return undefined;
  return value();
}

function bigInt(rng: Rng): number {
  const draw = rng.next();
  if (draw < 0.35) return TWO_POW_50 - rng.int(0, 1000); // near the top: ~8 of them pass 2^53
  if (draw < 0.45) return -(TWO_POW_50 - rng.int(0, 1000));
  if (draw < 0.8) return rng.int(-1_000_000, 1_000_000) * rng.int(1, 1_000_000);
  return rng.int(-100, 100);
}

/**
 * Summable extremes: tiny and subnormal (both signs), fractional just under 2^52, 1e20 and 1e70.
 * Large magnitudes are positive only: sums of +-1e20 cancel catastrophically, and then the exact
 * bits of a float sum depend on the order of addition, in which two correct engines differ. 1e70
 * is small enough that a product of four of them and a sum over all rows stay finite.
 */
function extremeFloat(rng: Rng): number {
  const draw = rng.next();
  if (draw < 0.01) return rng.pick([1e20, 1.5e20, 1e70]);
  if (draw < 0.1) return rng.pick([5e-324, -5e-324, 1e-300, 2.2250738585072014e-308]);
  if (draw < 0.3) return rng.int(1, 1000) * 1e-12 + 1e-9;
  if (draw < 0.5) return (2 ** 52 - rng.int(1, 100_000)) + 0.5; // fractional, near the top of exact floats
  return (rng.next() - 0.5) * 10 ** rng.int(-5, 4);
}

/** Extremes that are never summed or multiplied (sqlgen.ts): +-1.7e308 beside ordinary values. */
function unsummableFloat(rng: Rng): number {
  if (rng.chance(0.03)) return rng.pick([1.7e308, -1.7e308, -1e20, 1e300]);
  return Math.round(rng.normal() * 1e6) / 1e3;
}

export function generateDiffEvents(seed: number, rowCount: number): DiffEvent[] {
  const rng = new Rng(seed);
  const events: DiffEvent[] = new Array(rowCount);
  const hotUsers = 200;
  for (let rowIndex = 0; rowIndex < rowCount; rowIndex++) {
    const progress = rowIndex / rowCount;
    const jitter = rng.int(-1800, 1801);
    const offset = rng.chance(0.02) ? rng.int(0, DIFF_TIME_SPAN_SECONDS) : Math.min(DIFF_TIME_SPAN_SECONDS - 1, Math.max(0, Math.floor(progress * DIFF_TIME_SPAN_SECONDS) + jitter));
    const event: DiffEvent = { id: rowIndex, time: DIFF_TIME_START_SECONDS + offset };
    const set = (name: string, value: unknown) => {
      if (value !== undefined) event[name] = value;
    };
    set('svc', maybe(rng, () => rng.pick(SVC_VALUES), 0.03, 0.02));
    set('region', maybe(rng, () => rng.pick(REGION_VALUES), 0.1, 0.1));
    set('uid', maybe(rng, () => (rng.chance(0.3) ? `u${rng.int(0, hotUsers)}` : rng.chance(0.05) ? `ü${rng.int(0, 50)}🌊` : `u${rng.int(0, 8000)}`)));
    set('word', maybe(rng, () => rng.pick(WORD_VALUES)));
    set('code', maybe(rng, () => rng.pick([200, 200, 200, 201, 404, 500, 503, -1, 0])));
    set('n', maybe(rng, () => rng.int(-1000, 1001)));
    set('big', maybe(rng, () => bigInt(rng)));
    set('f', maybe(rng, () => Math.round(rng.normal() * 100 * 1e6) / 1e6));
    set('fx', maybe(rng, () => extremeFloat(rng)));
    set('fbig', maybe(rng, () => unsummableFloat(rng)));
    set('ratio', maybe(rng, () => (progress < RATIO_FLOAT_FRACTION ? rng.int(-50, 51) : rng.int(-5000, 5001) / 100 + 0.001)));
    set('flag', maybe(rng, () => rng.chance(0.4)));
    set('tags', maybe(rng, () => drawTags(rng)));
    if (progress >= LATE_S_FIRST_FRACTION) set('late_s', maybe(rng, () => rng.pick(LATE_VALUES), 0.2, 0.2));
    if (progress >= LATE_I_FIRST_FRACTION) set('late_i', maybe(rng, () => rng.int(-3, 4) * 1_000_000_007, 0.2, 0.2));
    events[rowIndex] = event;
  }
  return events;
}

/** 0-3 distinct tags, sorted (a set's order is not part of its value). */
function drawTags(rng: Rng): string[] {
  const count = rng.int(0, 4);
  const chosen = new Set<string>();
  while (chosen.size < count) chosen.add(rng.pick(TAG_VALUES));
  return [...chosen].sort();
}

/** Seeds and sizes from the environment (SHOAL_DIFF_SEED, SHOAL_DIFF_QUERIES, SHOAL_DIFF_ROWS). */
export function envNumber(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}
