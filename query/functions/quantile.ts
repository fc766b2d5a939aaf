/**
 * A mergeable relative-error quantile sketch, the state behind `approx_quantile(col, q)` and
 * `p50(col)` .. `p99(col)`: init = `new QuantileSketch()`, update = `add` / `addMany`,
 * combine = `merge`, finalize = `quantile(q)`. It is DDSketch (Masson, Rim, Lee, VLDB 2019) with
 * the logarithmic mapping and unbounded (never collapsing) dense stores, written here rather
 * than taken from @datadog/sketches-js 2.1.1 because that version's `merge` drops the other
 * sketch's negative values, its bins are a plain JS array that `_shiftBins` regrows by
 * spreading, it serializes to protobuf only (losing min/max), and its rank (floor(q*(n-1)))
 * is not DuckDB's. Its `accept` speed (~18 ns/value) would have been fine.
 *
 * Guarantee. Let x be the exact answer: the values sorted ascending, x = sorted[quantileRank(q,
 * count)] (DuckDB's `quantile_disc(col, q)`). Then `quantile(q)` returns x' with
 * |x' - x| <= QUANTILE_RELATIVE_ACCURACY * |x| (1%), up to a few ulps of log/exp rounding at
 * bucket edges (tests allow 1% * (1 + 1e-9)). It holds for every q, every data set and every
 * split-and-merge, because bucket counts are exact; values with |v| < 2^-1022 count as 0.
 * The lowest and highest ranks return the exact min and max, and every answer is clamped into
 * [min, max]. NaN and +-Infinity are ignored (storage rejects them, so they never reach us).
 *
 * Rank definition (DuckDB 1.x `quantile_disc`, Interpolator<true>::Index; checked against
 * DuckDB in test/sketches.test.ts): 0-based index max(1, n - floor(n - q*n)) - 1, i.e.
 * ceil(q*n) - 1 clamped at 0 (the "inverted CDF" quantile): p50 of 1..4 is 2, p99 of 1..100 is 99.
 *
 * Buckets: value v > 0 goes to key ceil(ln v / ln gamma), gamma = (1 + a) / (1 - a); bucket k
 * covers (gamma^(k-1), gamma^k] and answers 2 gamma^k / (1 + gamma), within a of every value
 * in it. Negative values use the same keys on -v in their own store; zeros (and |v| < 2^-1022)
 * have a counter. Stores are Float64Array counts over a contiguous key range that grows by
 * doubling: 16 bins at first, ~460 for data spanning 10^4 (e.g. 1 ms .. 10 s), at most the whole
 * float64 range (~71,000 bins, 568 KB) per sign. Cost per value: one Math.log (~7 ns) and a
 * bounds-checked increment; `addMany` keeps the loop in this module.
 */

import { assert, ShoalError } from '../errors.js';

/** The relative error bound `a` of every answer (see the module header). */
export const QUANTILE_RELATIVE_ACCURACY = 0.01;

const GAMMA = (1 + QUANTILE_RELATIVE_ACCURACY) / (1 - QUANTILE_RELATIVE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
const KEY_MULTIPLIER = 1 / LOG_GAMMA;
/** Smallest magnitude with its own bucket: the smallest normal float64. */
const INDEXABLE_MIN = 2 ** -1022;
const INDEXABLE_MAX = Number.MAX_VALUE;
/** Keys of (INDEXABLE_MIN, INDEXABLE_MAX], with one key of slack for log rounding. */
const KEY_MIN = Math.ceil(Math.log(INDEXABLE_MIN) * KEY_MULTIPLIER) - 1;
const KEY_MAX = Math.ceil(Math.log(INDEXABLE_MAX) * KEY_MULTIPLIER) + 1;
const KEY_SPAN = KEY_MAX - KEY_MIN + 1;
const STORE_BINS_INITIAL = 16;
const FORMAT = 'dd1';
const EMPTY_COUNTS = new Float64Array(0);

/** DuckDB quantile_disc's 0-based rank of quantile q among `count` sorted values. */
export function quantileRank(q: number, count: number): number {
  return Math.max(1, count - Math.floor(count - count * q)) - 1;
}

/** The value a bucket answers with: within QUANTILE_RELATIVE_ACCURACY of all its values. */
function bucketValue(key: number): number {
  return (2 * Math.exp(key * LOG_GAMMA)) / (1 + GAMMA);
}

/** Counts of one sign's buckets over the contiguous key range [offset, offset + counts.length). */
class BucketStore {
  counts: Float64Array = EMPTY_COUNTS;
  offset = 0;
  total = 0;

  add(key: number): void {
    const binIndex = key - this.offset;
    if (binIndex >= 0 && binIndex < this.counts.length) this.counts[binIndex]! += 1;
    else this.growThenAdd(key, 1);
    this.total += 1;
  }

  /** Make room for [keyLow, keyHigh]: at least double, centre the slack, stay in the key range. */
  private grow(keyLow: number, keyHigh: number): void {
    const oldCounts = this.counts;
    let low = keyLow;
    let high = keyHigh;
    if (oldCounts.length > 0) {
      low = Math.min(low, this.offset);
      high = Math.max(high, this.offset + oldCounts.length - 1);
    }
    const needed = high - low + 1;
    let binCount = Math.max(STORE_BINS_INITIAL, 2 * oldCounts.length);
    while (binCount < needed) binCount *= 2;
    binCount = Math.min(binCount, KEY_SPAN);
    let offset = low - Math.floor((binCount - needed) / 2);
    offset = Math.min(Math.max(offset, KEY_MIN), KEY_MAX - binCount + 1);
    const counts = new Float64Array(binCount);
    if (oldCounts.length > 0) counts.set(oldCounts, this.offset - offset);
    this.counts = counts;
    this.offset = offset;
  }

  private growThenAdd(key: number, weight: number): void {
    assert(key >= KEY_MIN && key <= KEY_MAX && Number.isInteger(key), `bucket key ${key} out of range`);
    this.grow(key, key);
    this.counts[key - this.offset]! += weight;
  }

  merge(other: BucketStore): void {
    if (other.total === 0) return;
    const [firstKey, lastKey] = other.usedKeys();
    if (firstKey < this.offset || lastKey >= this.offset + this.counts.length) this.grow(firstKey, lastKey);
    for (let key = firstKey; key <= lastKey; key++) this.counts[key - this.offset]! += other.counts[key - other.offset]!;
    this.total += other.total;
  }

  /** First and last keys with a nonzero count (total > 0). */
  usedKeys(): [number, number] {
    let first = 0;
    while (this.counts[first] === 0) first++;
    let last = this.counts.length - 1;
    while (this.counts[last] === 0) last--;
    return [first + this.offset, last + this.offset];
  }

  /** Key holding the value at 0-based `rank` counting from the lowest key (or highest). */
  keyAtRank(rank: number, fromHighest: boolean): number {
    let seen = 0;
    const counts = this.counts;
    if (fromHighest) {
      for (let binIndex = counts.length - 1; binIndex >= 0; binIndex--) {
        seen += counts[binIndex]!;
        if (seen > rank) return binIndex + this.offset;
      }
    } else {
      for (let binIndex = 0; binIndex < counts.length; binIndex++) {
        seen += counts[binIndex]!;
        if (seen > rank) return binIndex + this.offset;
      }
    }
    assert(false, `keyAtRank: rank ${rank} beyond total ${this.total}`);
  }

  /** `<offset>:<counts>` over the used keys; a run of k zero bins is written `zk`. */
  serialize(): string {
    if (this.total === 0) return '';
    const [firstKey, lastKey] = this.usedKeys();
    const parts: string[] = [];
    let zeroRun = 0;
    for (let key = firstKey; key <= lastKey; key++) {
      const count = this.counts[key - this.offset]!;
      if (count === 0) {
        zeroRun++;
        continue;
      }
      if (zeroRun > 0) parts.push(zeroRun === 1 ? '0' : `z${zeroRun}`);
      zeroRun = 0;
      parts.push(String(count));
    }
    return `${firstKey}:${parts.join(',')}`;
  }

  static deserialize(text: string, sign: string): BucketStore {
    const store = new BucketStore();
    if (text === '') return store;
    const colon = text.indexOf(':');
    const offsetText = text.slice(0, colon);
    if (colon < 0 || !/^-?\d{1,6}$/.test(offsetText)) malformed(`${sign} store ${JSON.stringify(text.slice(0, 40))} is not "<offset>:<counts>"`);
    const firstKey = Number(offsetText);
    if (firstKey < KEY_MIN || firstKey > KEY_MAX) malformed(`${sign} store offset ${firstKey} is outside ${KEY_MIN}..${KEY_MAX}`);
    // One pass over the characters (a regex per item costs ~10x more), keeping the nonzero
    // counts and their bin indexes; an item takes at least 2 characters with its comma.
    const itemMax = (text.length - colon) >> 1;
    const binIndexes = new Int32Array(itemMax);
    const counts = new Float64Array(itemMax);
    const binSpan = Math.min(KEY_SPAN, KEY_MAX - firstKey + 1);
    let itemCount = 0;
    let binIndex = 0;
    let at = colon + 1;
    while (at <= text.length) {
      const isRun = text.charCodeAt(at) === 122; // 'z'
      if (isRun) at++;
      let value = 0;
      let digitCount = 0;
      for (; at < text.length; at++, digitCount++) {
        const digit = text.charCodeAt(at) - 48;
        if (digit < 0 || digit > 9) break;
        value = value * 10 + digit;
      }
      if (digitCount === 0 || digitCount > 16) malformed(`${sign} store has an item without a count or with too many digits`);
      if (at < text.length && text.charCodeAt(at) !== 44) malformed(`${sign} store has ${JSON.stringify(text[at])} where "," belongs`);
      at++; // the comma, or one past the end
      if (isRun) {
        if (value < 2) malformed(`${sign} store has a zero run of ${value}`);
        binIndex += value;
      } else {
        if (value > Number.MAX_SAFE_INTEGER) malformed(`${sign} store count ${value} is above 2^53`);
        if (value > 0) {
          binIndexes[itemCount] = binIndex;
          counts[itemCount] = value;
          itemCount++;
        }
        binIndex += 1;
      }
      if (binIndex > binSpan) malformed(`${sign} store runs past key ${KEY_MAX}`);
    }
    const binCount = binIndex;
    if (itemCount === 0 || binIndexes[0] !== 0 || binIndexes[itemCount - 1] !== binCount - 1) {
      malformed(`${sign} store does not start and end with a nonzero count`);
    }
    store.grow(firstKey, firstKey + binCount - 1);
    const shift = firstKey - store.offset;
    for (let item = 0; item < itemCount; item++) {
      store.counts[binIndexes[item]! + shift] = counts[item]!;
      store.total += counts[item]!;
    }
    if (store.total > Number.MAX_SAFE_INTEGER) malformed(`${sign} store total is above 2^53`);
    return store;
  }
}

export class QuantileSketch {
  private positive = new BucketStore();
  /** Keys of -v for negative v: the highest key is the most negative value. */
  private negative = new BucketStore();
  private zeroCount = 0;
  /** Exact extremes of the values added (Infinity / -Infinity while empty). */
  min = Infinity;
  max = -Infinity;

  /** Values counted (NaN and +-Infinity are not). */
  get count(): number {
    return this.negative.total + this.zeroCount + this.positive.total;
  }

  add(value: number): void {
    if (value > INDEXABLE_MIN) {
      if (value > INDEXABLE_MAX) return;
      this.positive.add(Math.ceil(Math.log(value) * KEY_MULTIPLIER) | 0);
    } else if (value < -INDEXABLE_MIN) {
      if (value < -INDEXABLE_MAX) return;
      this.negative.add(Math.ceil(Math.log(-value) * KEY_MULTIPLIER) | 0);
    } else if (value === value) {
      this.zeroCount += 1;
    } else {
      return; // NaN
    }
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** Add values[rows[i]] for i < rowCount, or every value when rows is omitted. */
  addMany(values: Float64Array | Int32Array, rows?: Uint32Array | Int32Array | Uint16Array, rowCount?: number): void {
    if (rows === undefined) {
      for (let rowIndex = 0; rowIndex < values.length; rowIndex++) this.add(values[rowIndex]!);
      return;
    }
    const selected = rowCount ?? rows.length;
    assert(selected <= rows.length, 'addMany: rowCount exceeds rows');
    for (let selectedIndex = 0; selectedIndex < selected; selectedIndex++) this.add(values[rows[selectedIndex]!]!);
  }

  /** Fold `other` into this sketch (other is unchanged). Exact: counts add. */
  merge(other: QuantileSketch): this {
    if (other === this) {
      // Doubling every count; go through a copy so the stores are not read while written.
      return this.merge(QuantileSketch.deserialize(other.serialize()));
    }
    this.positive.merge(other.positive);
    this.negative.merge(other.negative);
    this.zeroCount += other.zeroCount;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    return this;
  }

  /** The value at DuckDB quantile_disc's rank (see quantileRank) within 1%; null when empty. */
  quantile(q: number): number | null {
    assert(q >= 0 && q <= 1, `quantile: q=${q} is outside [0, 1] (the binder checks user input)`);
    const count = this.count;
    if (count === 0) return null;
    const rank = quantileRank(q, count);
    if (rank === 0) return this.min;
    if (rank === count - 1) return this.max;
    let value: number;
    if (rank < this.negative.total) {
      value = -bucketValue(this.negative.keyAtRank(rank, true));
    } else if (rank < this.negative.total + this.zeroCount) {
      value = 0;
    } else {
      value = bucketValue(this.positive.keyAtRank(rank - this.negative.total - this.zeroCount, false));
    }
    return Math.min(this.max, Math.max(this.min, value));
  }

  /**
   * Compact, JSON-safe and canonical (equal states give equal strings):
   * `dd1;<min>;<max>;<zeroCount>;<negative store>;<positive store>`, a store being empty or
   * `<first key>:<count>,<count>,z<zero run>,...`. min and max are empty when the sketch is.
   */
  serialize(): string {
    const empty = this.count === 0;
    return [FORMAT, empty ? '' : String(this.min), empty ? '' : String(this.max), String(this.zeroCount), this.negative.serialize(), this.positive.serialize()].join(';');
  }

  /** Parse serialize()'s output. Throws a ShoalError (SHOAL_ERR_INTERNAL) on anything else:
   * a malformed state means a bug or a version mismatch between leaf and aggregator. */
  static deserialize(state: unknown): QuantileSketch {
    if (typeof state !== 'string') malformed(`expected a string, got ${state === null ? 'null' : typeof state}`);
    const fields = state.split(';');
    if (fields.length !== 6 || fields[0] !== FORMAT) malformed(`expected "${FORMAT};min;max;zeros;negative;positive", got ${JSON.stringify(state.slice(0, 40))}`);
    const sketch = new QuantileSketch();
    const zeroText = fields[3]!;
    if (!/^\d{1,16}$/.test(zeroText) || Number(zeroText) > Number.MAX_SAFE_INTEGER) malformed(`zero count ${JSON.stringify(zeroText.slice(0, 20))} is not a count`);
    sketch.zeroCount = Number(zeroText);
    sketch.negative = BucketStore.deserialize(fields[4]!, 'negative');
    sketch.positive = BucketStore.deserialize(fields[5]!, 'positive');
    const count = sketch.count;
    if (count > Number.MAX_SAFE_INTEGER) malformed('total count is above 2^53');
    if (count === 0) {
      if (fields[1] !== '' || fields[2] !== '') malformed('an empty sketch has a min or max');
      return sketch;
    }
    sketch.min = parseFinite(fields[1]!, 'min');
    sketch.max = parseFinite(fields[2]!, 'max');
    if (!(sketch.min <= sketch.max)) malformed(`min ${sketch.min} is above max ${sketch.max}`);
    return sketch;
  }
}

function parseFinite(text: string, what: string): number {
  if (!/^-?\d+(\.\d+)?(e[+-]\d+)?$/.test(text)) malformed(`${what} ${JSON.stringify(text.slice(0, 30))} is not a number`);
  const value = Number(text);
  if (!Number.isFinite(value)) malformed(`${what} ${text.slice(0, 30)} is not finite`);
  return value;
}

function malformed(why: string): never {
  throw new ShoalError('SHOAL_ERR_INTERNAL', `approx_quantile state is malformed: ${why}`);
}
