/**
 * The approximate aggregates' sketches: query/functions/hash.ts, query/functions/hll.ts (approx_count_distinct) and
 * query/functions/quantile.ts (approx_quantile, p50..p99). Properties are seeded: the seed is printed, and
 * SHOAL_TEST_SEED=<n> replays a run. Checked here:
 * - merging the sketches of a random split equals the sketch of everything (byte-identical
 *   serialized state, identical answers), also across serialize/deserialize;
 * - HLL: exact up to HLL_EXACT_MAX, within 3 standard errors at 10^4..10^6;
 * - quantiles within QUANTILE_RELATIVE_ACCURACY of the exact answer at quantileRank, and that
 *   rank is DuckDB's quantile_disc (checked against DuckDB itself);
 * - deserializing garbage throws a ShoalError, never anything else.
 */

import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isShoalError } from '../query/errors.js';
import { hash53Number, hash53String, hashNumber, hashNumbers, hashOut, hashString, hashStrings } from '../query/functions/hash.js';
import { Hll, HLL_EXACT_MAX, HLL_REGISTER_COUNT, HLL_RELATIVE_STANDARD_ERROR } from '../query/functions/hll.js';
import { QUANTILE_RELATIVE_ACCURACY, QuantileSketch, quantileRank } from '../query/functions/quantile.js';

const SEED = Number(process.env.SHOAL_TEST_SEED ?? 20_251_122);
console.log(`test/sketches.test.ts seed=${SEED} (replay with SHOAL_TEST_SEED=${SEED})`);
const FC = { seed: SEED, numRuns: 60 } as const;

/** mulberry32: a small seeded PRNG in [0, 1). */
function prng(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Assign each row to one of `partCount` parts at random. */
function splitRows(rowCount: number, partCount: number, random: () => number): number[][] {
  const parts: number[][] = Array.from({ length: partCount }, () => []);
  for (let rowIndex = 0; rowIndex < rowCount; rowIndex++) parts[Math.floor(random() * partCount)]!.push(rowIndex);
  return parts;
}

function expectShoalErrorOrValue(parse: () => unknown): void {
  try {
    parse();
  } catch (error) {
    if (!isShoalError(error)) throw error;
    expect(error.code).toBe('SHOAL_ERR_INTERNAL');
  }
}

// ---------------------------------------------------------------------------------------------

describe('hash', () => {
  it('keeps its golden values (serialized HLL states depend on them)', () => {
    expect([0, 1, -1.5, 2 ** 53, 1e-300].map(hash53Number)).toEqual([6230361939196387, 4274003527195800, 2346819104029264, 1623227261160436, 4561479979604005]);
    expect(['', 'a', 'a\0', 'shoal', 'héllo 🐟'].map(hash53String)).toEqual([2244420882640612, 6761303526655002, 2011922395552900, 4167123484297119, 8527612331214986]);
  });

  it('hashes an integer the same from Int32Array and Float64Array, -0 as 0, every NaN alike', () => {
    const random = prng(SEED);
    const ints = new Int32Array(10_000);
    for (let index = 0; index < ints.length; index++) ints[index] = Math.floor(random() * 2 ** 32) - 2 ** 31;
    ints.set([0, -1, 1, 2 ** 31 - 1, -(2 ** 31)]);
    const fromInt32 = new Int32Array(2 * ints.length);
    const fromFloat64 = new Int32Array(2 * ints.length);
    hashNumbers(ints, fromInt32);
    hashNumbers(Float64Array.from(ints), fromFloat64);
    expect(fromInt32).toEqual(fromFloat64);
    expect(hash53Number(-0)).toBe(hash53Number(0));
    const payloadNaN = new Float64Array(new Uint32Array([1, 0x7ff80000]).buffer)[0]!;
    expect(Number.isNaN(payloadNaN)).toBe(true);
    expect(hash53Number(payloadNaN)).toBe(hash53Number(NaN));
  });

  it('gives distinct numbers and strings distinct 64-bit hashes', () => {
    const random = prng(SEED + 1);
    // The PRNG draws 32 bits, so its doubles can repeat: count distinct inputs, not draws.
    const numbers = new Set<number>();
    for (let index = 0; index < 100_000; index++) numbers.add(index % 2 === 0 ? index : random() * 1e6);
    const texts = new Set<string>(['', 'a', 'a\0', '\0', '\0\0', 'ab', 'ba', '\u{1F41F}', '\uD83D']);
    for (let index = 0; index < 100_000; index++) texts.add(`k${index}`);
    const seen = new Set<string>();
    for (const value of numbers) {
      hashNumber(value);
      seen.add(`${hashOut[0]},${hashOut[1]}`);
    }
    for (const text of texts) {
      hashString(text);
      seen.add(`${hashOut[0]},${hashOut[1]}`);
    }
    expect(seen.size).toBe(numbers.size + texts.size);
  });

  it('sets every output bit about half the time on sequential input', () => {
    const sampleCount = 65_536;
    for (const hashOne of [(index: number) => hashNumber(index), (index: number) => hashString(`user-${index}`)]) {
      const ones = new Array<number>(64).fill(0);
      for (let index = 0; index < sampleCount; index++) {
        hashOne(index);
        for (let bit = 0; bit < 32; bit++) {
          ones[bit]! += (hashOut[0]! >>> bit) & 1;
          ones[32 + bit]! += (hashOut[1]! >>> bit) & 1;
        }
      }
      const sigma = Math.sqrt(sampleCount) / 2;
      for (const count of ones) expect(Math.abs(count - sampleCount / 2)).toBeLessThan(5 * sigma);
    }
  });

  it('hashStrings and hashNumbers write (hi, lo) pairs like hashString and hashNumber', () => {
    const texts = ['x', 'yy', 'zzz'];
    const pairs = new Int32Array(6);
    hashStrings(texts, pairs);
    hashString('yy');
    expect([pairs[2], pairs[3]]).toEqual([hashOut[0], hashOut[1]]);
  });
});

// ---------------------------------------------------------------------------------------------

/** Rows of a random column: `rowCount` draws from a domain of `distinctMax` values. */
function hllRows(dataSeed: number, distinctMax: number, rowCount: number, strings: boolean): Array<number | string> {
  const random = prng(dataSeed);
  const rows: Array<number | string> = [];
  for (let rowIndex = 0; rowIndex < rowCount; rowIndex++) {
    const code = Math.floor(random() * distinctMax);
    rows.push(strings ? `v${code}` : code % 3 === 0 ? code : code * 0.25 - 100);
  }
  return rows;
}

function hllOf(rows: ReadonlyArray<number | string>, rowIndexes?: readonly number[]): Hll {
  const sketch = new Hll();
  for (const rowIndex of rowIndexes ?? rows.keys()) {
    const value = rows[rowIndex]!;
    if (typeof value === 'string') sketch.addString(value);
    else sketch.addNumber(value);
  }
  return sketch;
}

describe('Hll', () => {
  it('merging the sketches of a random split gives the sketch of all rows', () => {
    fc.assert(
      fc.property(
        fc.record({
          dataSeed: fc.integer(),
          distinctMax: fc.oneof(fc.integer({ min: 1, max: 1_300 }), fc.integer({ min: 1, max: 10_000 })),
          rowFactor: fc.double({ min: 0, max: 3, noNaN: true }),
          partCount: fc.integer({ min: 1, max: 8 }),
          strings: fc.boolean(),
          viaSerialize: fc.boolean(),
        }),
        ({ dataSeed, distinctMax, rowFactor, partCount, strings, viaSerialize }) => {
          const rows = hllRows(dataSeed, distinctMax, Math.floor(distinctMax * rowFactor), strings);
          const whole = hllOf(rows);
          const parts = splitRows(rows.length, partCount, prng(dataSeed + 1)).map((rowIndexes) => hllOf(rows, rowIndexes));
          const merged = new Hll();
          for (const part of parts) merged.merge(viaSerialize ? Hll.deserialize(JSON.parse(JSON.stringify(part.serialize()))) : part);
          expect(merged.serialize()).toBe(whole.serialize());
          expect(merged.denseRegisters()).toEqual(whole.denseRegisters());
          expect(merged.isExact).toBe(whole.isExact);
          expect(merged.estimate()).toBe(whole.estimate());
        },
      ),
      FC,
    );
  });

  it(`counts exactly up to ${HLL_EXACT_MAX} distinct values`, () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: HLL_EXACT_MAX }), fc.boolean(), (dataSeed, distinctCount, strings) => {
        const random = prng(dataSeed);
        const sketch = new Hll();
        for (let code = 0; code < distinctCount; code++) {
          const repeats = 1 + Math.floor(random() * 3);
          for (let repeat = 0; repeat < repeats; repeat++) (strings ? sketch.addString(`s${code}`) : sketch.addNumber(code - 17.5));
        }
        expect(sketch.isExact).toBe(true);
        expect(sketch.estimate()).toBe(distinctCount);
      }),
      FC,
    );
    const sketch = new Hll();
    for (let code = 0; code <= HLL_EXACT_MAX; code++) sketch.addNumber(code);
    expect(sketch.isExact).toBe(false);
  });

  // Deterministic for a given seed; with other seeds each dense checkpoint misses 3 sigma with
  // probability ~0.3%, so about 1 seed in 50 fails here without anything being wrong.
  it('estimates 1 .. 10^6 distinct values within 3 standard errors', () => {
    const offset = Math.floor(prng(SEED)() * 2 ** 40);
    const checkpoints = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
    const numbers = new Hll();
    const strings = new Hll();
    const values = new Float64Array(1_000_000);
    for (let index = 0; index < values.length; index++) values[index] = offset + index;
    let added = 0;
    for (const cardinality of checkpoints) {
      numbers.addNumbers(values.subarray(added, cardinality));
      for (let index = added; index < cardinality; index++) strings.addString(`user-${offset}-${index}`);
      added = cardinality;
      for (const sketch of [numbers, strings]) {
        const error = Math.abs(sketch.estimate() / cardinality - 1);
        if (cardinality <= HLL_EXACT_MAX) expect(error).toBe(0);
        else expect(error, `cardinality ${cardinality}`).toBeLessThan(3 * HLL_RELATIVE_STANDARD_ERROR);
      }
    }
  });

  it('adds by dictionary code and by row selection like value by value', () => {
    const dictionary = Array.from({ length: 3_000 }, (_, code) => `name-${code}`);
    const pairs = new Int32Array(2 * dictionary.length);
    hashStrings(dictionary, pairs);
    const random = prng(SEED + 2);
    const codes = new Uint16Array(20_000).map(() => Math.floor(random() * dictionary.length));
    const rows = new Uint32Array(5_000).map((_, index) => index * 3);
    const byCode = new Hll();
    byCode.addCodes(pairs, codes, rows, 4_000);
    const byValue = new Hll();
    for (let index = 0; index < 4_000; index++) byValue.addString(dictionary[codes[rows[index]!]!]!);
    expect(byCode.serialize()).toBe(byValue.serialize());
    const numbers = Float64Array.from(codes, (code) => code / 7);
    const bySelection = new Hll();
    bySelection.addNumbers(numbers, rows, 4_000);
    const byNumber = new Hll();
    for (let index = 0; index < 4_000; index++) byNumber.addNumber(numbers[rows[index]!]!);
    expect(bySelection.serialize()).toBe(byNumber.serialize());
  });

  it('round-trips serialize/deserialize in every form', () => {
    for (const [cardinality, mode] of [[0, 'x'], [1, 'x'], [1_024, 'x'], [1_025, 'r'], [4_000, 'r'], [50_000, 'd']] as const) {
      const sketch = new Hll();
      for (let index = 0; index < cardinality; index++) sketch.addNumber(index * 1.5);
      const state = sketch.serialize();
      expect(state.startsWith(`hll1:${mode}:`)).toBe(true);
      const copy = Hll.deserialize(JSON.parse(JSON.stringify(state)));
      expect(copy.serialize()).toBe(state);
      expect(copy.estimate()).toBe(sketch.estimate());
      expect(copy.denseRegisters()).toEqual(sketch.denseRegisters());
    }
    const dense = new Hll();
    for (let index = 0; index < 50_000; index++) dense.addNumber(index);
    expect(dense.serialize().length).toBeLessThan(16_400);
    expect(dense.denseRegisters().length).toBe(HLL_REGISTER_COUNT);
  });

  it('rejects malformed states with a ShoalError', () => {
    const valid = (() => {
      const sketch = new Hll();
      for (let index = 0; index < 50_000; index++) sketch.addNumber(index);
      return sketch.serialize(); // the packed dense form
    })();
    const garbage: unknown[] = [
      undefined, null, 42, {}, [], '', 'hll1', 'hll2:x:', 'hll1:q:', 'hll1:x:!!!!', 'hll1:x:AAAA',
      'hll1:x:AAAAAAAAAAAAAAAAAAAAAA==' /* two equal hashes */, 'hll1:r:AAA', 'hll1:r:AAAA' /* value 0 */,
      'hll1:r:D///' /* index 16383, value 63 */, 'hll1:d:AAAA', valid.slice(0, -4), `${valid}AAAA`, valid.replace(/.$/, '!'),
    ];
    for (const state of garbage) {
      expect(() => Hll.deserialize(state), JSON.stringify(state)?.slice(0, 40)).toThrow(/approx_count_distinct state is malformed/);
      try {
        Hll.deserialize(state);
      } catch (error) {
        expect(isShoalError(error)).toBe(true);
      }
    }
    fc.assert(fc.property(fc.anything(), (state) => expectShoalErrorOrValue(() => Hll.deserialize(state))), FC);
    fc.assert(
      fc.property(fc.nat(), fc.string({ minLength: 1, maxLength: 3 }), (at, text) => {
        const index = at % valid.length;
        expectShoalErrorOrValue(() => Hll.deserialize(valid.slice(0, index) + text + valid.slice(index + 1)));
      }),
      FC,
    );
  });
});

// ---------------------------------------------------------------------------------------------

const QUANTILES = [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
/** The bound stated in query/functions/quantile.ts: a relative, plus rounding at bucket edges, plus the
 * values below 2^-1022 that the sketch counts as zero. */
function withinBound(answer: number, exact: number): boolean {
  return Math.abs(answer - exact) <= QUANTILE_RELATIVE_ACCURACY * (1 + 1e-9) * Math.abs(exact) + 2 ** -1022;
}

type Distribution = (random: () => number) => number;
const DISTRIBUTIONS: Record<string, Distribution> = {
  uniform: (random) => random() * 1_000,
  lognormal: (random) => Math.exp(2 * gaussian(random)),
  negativesAndZeros: (random) => {
    const pick = random();
    return pick < 0.2 ? 0 : pick < 0.6 ? -Math.exp(3 * gaussian(random)) : Math.exp(gaussian(random));
  },
  latencyMs: (random) => Math.round(random() < 0.95 ? 5 + 20 * Math.exp(0.5 * gaussian(random)) : 1_000 + 9_000 * random()),
  hugeAndTiny: (random) => (random() < 0.5 ? -1 : 1) * 10 ** (600 * random() - 300),
  constant: () => 42,
};

function sample(distribution: Distribution, rowCount: number, seed: number): Float64Array {
  const random = prng(seed);
  return Float64Array.from({ length: rowCount }, () => distribution(random));
}

function sketchOf(values: Float64Array, rowIndexes?: readonly number[]): QuantileSketch {
  const sketch = new QuantileSketch();
  if (rowIndexes === undefined) sketch.addMany(values);
  else sketch.addMany(values, Uint32Array.from(rowIndexes));
  return sketch;
}

describe('QuantileSketch', () => {
  it('answers within the stated relative error of the exact quantile_disc', () => {
    for (const [name, distribution] of Object.entries(DISTRIBUTIONS)) {
      for (const rowCount of [1, 2, 3, 10, 1_000, 50_000]) {
        const values = sample(distribution, rowCount, SEED + rowCount);
        const sketch = sketchOf(values);
        const sorted = values.slice().sort();
        expect(sketch.count).toBe(rowCount);
        for (const q of QUANTILES) {
          const exact = sorted[quantileRank(q, rowCount)]!;
          const answer = sketch.quantile(q)!;
          expect(withinBound(answer, exact), `${name} n=${rowCount} q=${q}: ${answer} vs ${exact}`).toBe(true);
        }
        expect(sketch.quantile(0)).toBe(sorted[0]);
        expect(sketch.quantile(1)).toBe(sorted[rowCount - 1]);
      }
    }
    expect(new QuantileSketch().quantile(0.5)).toBeNull();
  });

  it('answers within the stated relative error for arbitrary doubles', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (list, q) => {
        const values = Float64Array.from(list);
        const sorted = values.slice().sort();
        const answer = sketchOf(values).quantile(q)!;
        const exact = sorted[quantileRank(q, values.length)]!;
        expect(withinBound(answer, exact), `${answer} vs ${exact}`).toBe(true);
      }),
      { ...FC, numRuns: 300 },
    );
  });

  it('merging the sketches of a random split gives the sketch of all rows', () => {
    const names = Object.keys(DISTRIBUTIONS);
    fc.assert(
      fc.property(
        fc.record({
          dataSeed: fc.integer(),
          distribution: fc.constantFrom(...names),
          rowCount: fc.integer({ min: 0, max: 5_000 }),
          partCount: fc.integer({ min: 1, max: 8 }),
          viaSerialize: fc.boolean(),
        }),
        ({ dataSeed, distribution, rowCount, partCount, viaSerialize }) => {
          const values = sample(DISTRIBUTIONS[distribution]!, rowCount, dataSeed);
          const whole = sketchOf(values);
          const merged = new QuantileSketch();
          for (const rowIndexes of splitRows(rowCount, partCount, prng(dataSeed + 1))) {
            const part = sketchOf(values, rowIndexes);
            merged.merge(viaSerialize ? QuantileSketch.deserialize(JSON.parse(JSON.stringify(part.serialize()))) : part);
          }
          expect(merged.serialize()).toBe(whole.serialize());
          expect(merged.count).toBe(rowCount);
          for (const q of QUANTILES) expect(merged.quantile(q)).toBe(whole.quantile(q));
        },
      ),
      FC,
    );
  });

  it('adds Int32Array columns and row selections like value by value', () => {
    const random = prng(SEED + 3);
    const ints = Int32Array.from({ length: 10_000 }, () => Math.floor(random() * 2_000_000) - 1_000_000);
    const rows = Uint16Array.from({ length: 3_000 }, (_, index) => index * 3);
    const bySelection = new QuantileSketch();
    bySelection.addMany(ints, rows, 2_500);
    const byValue = new QuantileSketch();
    for (let index = 0; index < 2_500; index++) byValue.add(ints[rows[index]!]!);
    expect(bySelection.serialize()).toBe(byValue.serialize());
    const doubled = QuantileSketch.deserialize(byValue.serialize()).merge(byValue);
    const self = QuantileSketch.deserialize(byValue.serialize());
    expect(self.merge(self).serialize()).toBe(doubled.serialize());
    expect(self.count).toBe(5_000);
  });

  it('round-trips serialize/deserialize, compactly', () => {
    for (const [name, distribution] of Object.entries(DISTRIBUTIONS)) {
      for (const rowCount of [0, 1, 7, 20_000]) {
        const sketch = sketchOf(sample(distribution, rowCount, SEED));
        const state = sketch.serialize();
        const copy = QuantileSketch.deserialize(JSON.parse(JSON.stringify(state)));
        expect(copy.serialize(), name).toBe(state);
        expect(copy.count).toBe(sketch.count);
        for (const q of QUANTILES) expect(copy.quantile(q)).toBe(sketch.quantile(q));
      }
    }
    const latencies = sketchOf(sample(DISTRIBUTIONS.latencyMs!, 100_000, SEED));
    expect(latencies.serialize().length).toBeLessThan(4_000);
  });

  it('rejects malformed states with a ShoalError', () => {
    const valid = sketchOf(sample(DISTRIBUTIONS.negativesAndZeros!, 500, SEED)).serialize();
    const garbage: unknown[] = [
      undefined, null, 3, {}, '', 'dd1', 'dd2;;;0;;', 'dd1;;;0;;;', 'dd1;;;x;;', 'dd1;1;;0;;', 'dd1;;;1;;' /* count 1 without min */,
      'dd1;2;1;1;;' /* min > max */, 'dd1;0;0;1;;5:', 'dd1;0;0;1;;5:0', 'dd1;0;0;1;;5:1,z1,1', 'dd1;0;0;1;;99999999:1',
      'dd1;0;0;1;;5:1,0', 'dd1;Infinity;0;1;;', 'dd1;0;0;99999999999999999;;', `dd1;0;0;1;;0:1,z${10 ** 6 - 1},1`,
    ];
    for (const state of garbage) {
      expect(() => QuantileSketch.deserialize(state), String(state)).toThrow(/approx_quantile state is malformed/);
    }
    fc.assert(fc.property(fc.anything(), (state) => expectShoalErrorOrValue(() => QuantileSketch.deserialize(state))), FC);
    fc.assert(
      fc.property(fc.nat(), fc.string({ minLength: 0, maxLength: 3 }), (at, text) => {
        const index = at % valid.length;
        expectShoalErrorOrValue(() => QuantileSketch.deserialize(valid.slice(0, index) + text + valid.slice(index + 1)));
      }),
      { ...FC, numRuns: 500 },
    );
  });

  it("uses DuckDB's quantile_disc rank and stays within the bound of DuckDB's answer", async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run('CREATE TABLE t (g INTEGER, x DOUBLE)');
      const appender = await connection.createAppender('t');
      const groups: Float64Array[] = [];
      const names = Object.keys(DISTRIBUTIONS);
      for (let group = 0; group < 24; group++) {
        const rowCount = [1, 2, 3, 4, 5, 7, 10, 99, 100, 101, 1_000, 4_321][group % 12]!;
        const values = sample(DISTRIBUTIONS[names[group % names.length]!]!, rowCount, SEED + group);
        groups.push(values);
        for (const value of values) {
          appender.appendInteger(group);
          appender.appendDouble(value);
          appender.endRow();
        }
      }
      appender.closeSync();
      const columns = QUANTILES.map((q, index) => `quantile_disc(x, ${q}) AS q${index}, quantile_disc(x, ${q}::DOUBLE) AS d${index}`).join(', ');
      const reader = await connection.runAndReadAll(`SELECT g, ${columns} FROM t GROUP BY g ORDER BY g`);
      const rows = reader.getRowObjects();
      expect(rows.length).toBe(groups.length);
      for (const row of rows) {
        const values = groups[Number(row.g)]!;
        const sorted = values.slice().sort();
        const sketch = sketchOf(values);
        QUANTILES.forEach((q, index) => {
          const duck = Number(row[`q${index}`]);
          expect(Number(row[`d${index}`])).toBe(duck);
          expect(sorted[quantileRank(q, values.length)], `group ${row.g} n=${values.length} q=${q}`).toBe(duck);
          expect(withinBound(sketch.quantile(q)!, duck)).toBe(true);
        });
      }
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
