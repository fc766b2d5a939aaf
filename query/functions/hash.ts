/**
 * Fast, well-mixed 64-bit hashes of column values for the sketches (HyperLogLog) and anything
 * else that wants good bits (e.g. a GROUP BY hash table can take one word). Not cryptographic
 * and not seeded per process: a hash is a pure function of the value, so the same value hashes
 * the same on every leaf and in every version that keeps `HASH_VERSION`. Serialized HLL states
 * hold these hashes, so changing any constant here is a wire-format change: bump HASH_VERSION
 * (and the golden values in test/sketches.test.ts).
 *
 * Output: 64 bits as two int32 words written to the shared `hashOut` ([0] = hi, [1] = lo), so a
 * hot loop allocates nothing (a function returning a non-Smi double would box it when it is not
 * inlined). Read both words before the next hash call.
 *
 * Numbers: we hash the IEEE-754 bits of the value as a float64. Storage narrows a block to int32
 * when it can, and the integer 7 read from an Int32Array is the same JS number as 7 read from a
 * Float64Array, so both hash the same; -0 is hashed as +0 (SQL equality), every NaN as the
 * canonical NaN. The 64 input bits go through a 3-round Feistel network whose round function is
 * murmur3's fmix32: a bijection on 64 bits, so distinct numbers never collide, and each output
 * bit depends on every input bit. Cost ~8 ns (measured; a serial chain of 6 Math.imul).
 *
 * Strings: we hash the UTF-16 code units of the JS string (two per 32-bit block), not UTF-8
 * bytes: the dictionary entries are JS strings already and encoding them would cost more than
 * the hash. Any other implementation (e.g. the native addon) must hash UTF-16 code units too.
 * Two lanes with different block functions (murmur3_x86_32's and xxhash32's) give 64 bits of
 * state, seeded with the length; the Feistel finalizer then mixes them. Strings and numbers
 * share no domain tag: a column has one type, so their hashes never meet in one sketch.
 */

import { assert } from '../errors.js';

/** Version of the hash functions; serialized sketch states depend on it. */
export const HASH_VERSION = 1;

/** The last hash computed: [0] = high word, [1] = low word (int32 each). */
export const hashOut = new Int32Array(2);

const scratchFloat64 = new Float64Array(1);
const scratchWords = new Int32Array(scratchFloat64.buffer);
// The float64 word order must not depend on the machine, or two leaves would disagree.
assert(new Uint8Array(new Uint16Array([1]).buffer)[0] === 1, 'hash.ts assumes a little-endian host');
const WORD_LO = 0;
const WORD_HI = 1;

/** murmur3's 32-bit finalizer: full avalanche, a bijection on 32 bits. */
function fmix32(word: number): number {
  let h = word;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** Three Feistel rounds over (hi, lo) -> hashOut. Invertible whatever the round function is;
 * the round constants keep fmix32's fixed point at 0 from showing through. After round 2 the
 * right word depends on all 64 input bits and after round 3 the left word does, so both output
 * words avalanche (a 4th round measured ~20% slower for nothing HLL can use). The rounds form
 * one serial chain of 6 imul: ~8 ns, most of the cost of hashing a number. */
function finish64(hi: number, lo: number): void {
  let left = hi | 0;
  let right = lo | 0;
  left ^= fmix32(right ^ 0x9e3779b9);
  right ^= fmix32(left ^ 0x7f4a7c15);
  left ^= fmix32(right ^ 0xbf58476d);
  hashOut[0] = left;
  hashOut[1] = right;
}

/** Hash a number (any JS number: an int32 or float64 column value) into `hashOut`. */
export function hashNumber(value: number): void {
  // `value === 0` holds for -0 too; `value !== value` only for NaN.
  scratchFloat64[0] = value === 0 ? 0 : value !== value ? NaN : value;
  finish64(scratchWords[WORD_HI]!, scratchWords[WORD_LO]!);
}

/** Hash a string's UTF-16 code units into `hashOut`. */
export function hashString(text: string): void {
  const unitCount = text.length;
  let lane1 = 0x2545f491 ^ unitCount;
  let lane2 = (0x165667b1 + Math.imul(unitCount, 0x27d4eb2f)) | 0;
  let unitIndex = 0;
  for (; unitIndex + 1 < unitCount; unitIndex += 2) {
    const block = text.charCodeAt(unitIndex) | (text.charCodeAt(unitIndex + 1) << 16);
    // lane 1: murmur3_x86_32 block step
    let k = Math.imul(block, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    lane1 ^= Math.imul(k, 0x1b873593);
    lane1 = (lane1 << 13) | (lane1 >>> 19);
    lane1 = (Math.imul(lane1, 5) + 0xe6546b64) | 0;
    // lane 2: xxhash32 round
    lane2 = (lane2 + Math.imul(block, 0x85ebca77)) | 0;
    lane2 = (lane2 << 13) | (lane2 >>> 19);
    lane2 = Math.imul(lane2, 0x9e3779b1);
  }
  if (unitIndex < unitCount) {
    // Odd tail: one code unit in the low half. The length in the seeds tells "a" from "a\0".
    const block = text.charCodeAt(unitIndex);
    let k = Math.imul(block, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    lane1 ^= Math.imul(k, 0x1b873593);
    lane2 = (lane2 + Math.imul(block, 0x85ebca77)) | 0;
    lane2 = (lane2 << 13) | (lane2 >>> 19);
    lane2 = Math.imul(lane2, 0x9e3779b1);
  }
  finish64(lane1, lane2);
}

/** hashOut as one non-negative integer below 2^53 (21 high bits of hi, all of lo). For callers
 * that want a single number; it may allocate a heap number, so not for per-row loops. */
function hashOutAs53(): number {
  return (hashOut[0]! >>> 11) * 4_294_967_296 + (hashOut[1]! >>> 0);
}

export function hash53Number(value: number): number {
  hashNumber(value);
  return hashOutAs53();
}

export function hash53String(text: string): number {
  hashString(text);
  return hashOutAs53();
}

/** Hash every value into `out` as (hi, lo) pairs: out[2i] = hi, out[2i+1] = lo. For a block's
 * dictionary: hash each entry once, then update sketches by code. */
export function hashNumbers(values: Float64Array | Int32Array, out: Int32Array): void {
  assert(out.length >= 2 * values.length, 'hashNumbers: out holds two words per value');
  for (let valueIndex = 0; valueIndex < values.length; valueIndex++) {
    hashNumber(values[valueIndex]!);
    out[2 * valueIndex] = hashOut[0]!;
    out[2 * valueIndex + 1] = hashOut[1]!;
  }
}

/** Hash every string into `out` as (hi, lo) pairs, like hashNumbers. */
export function hashStrings(texts: readonly string[], out: Int32Array): void {
  assert(out.length >= 2 * texts.length, 'hashStrings: out holds two words per string');
  for (let textIndex = 0; textIndex < texts.length; textIndex++) {
    hashString(texts[textIndex]!);
    out[2 * textIndex] = hashOut[0]!;
    out[2 * textIndex + 1] = hashOut[1]!;
  }
}
