/**
 * The columnar readers' fast path (loader/columnar.ts) against the general path (row objects,
 * checkRow, JSON.stringify): on seeded random chunks of decoded columns, mostly good with some
 * chunks holding what the fast path must decline (missing or unusable times, non-finite
 * numbers, int64 past 2^53, nested values, sets of non-strings, over-long strings, a column of
 * two types, a column conflicting with the table's), both preparers must send the same lines
 * with the same positions, report the same rejections and learn the same column types. Numbers
 * are drawn to exercise the digit writer: random doubles, 6-decimal values, integers past 2^31
 * and 2^53, tiny and huge magnitudes, -0; strings with quotes, controls, non-ASCII, lone
 * surrogates.
 */
import { describe, expect, it } from 'vitest';
import { RowPreparer, type Rejection } from '../loader/prepare.js';
import { ColumnTypes } from '../loader/row-check.js';
import { BigIntTooLarge, type RowChunk } from '../loader/source.js';
import type { RowOptions } from '../loader/options.js';
import { mulberry32 } from './support/gen.js';

const T0 = 1_700_000_000;

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomNumber(rnd: () => number): number {
  const buf = new DataView(new ArrayBuffer(8));
  switch (Math.floor(rnd() * 10)) {
    case 0: return Math.floor(rnd() * 1000) - 500;
    case 1: return Math.floor(rnd() * 2 ** 53) * (rnd() < 0.5 ? -1 : 1);
    case 2: return Math.floor(rnd() * 2 ** 40);
    case 3: return Math.round(rnd() * 1e9) / 1e6 * (rnd() < 0.3 ? -1 : 1); // 6 decimals
    case 4: return Math.round(rnd() * 1e6) / pick(rnd, [10, 100, 1e3, 1e4, 1e5, 1e6, 1e7]);
    case 5: return pick(rnd, [-0, 0.5, -0.25, 1e-6, -1e-6, 1e-7, 1e21, 2 ** 53, 2 ** 53 + 2, 2 ** 32 - 0.5, 2 ** 32 + 0.5, 4294967295.999999, 0.000001, 123456.7890125]);
    case 6: return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20);
    case 7: {
      buf.setUint32(0, Math.floor(rnd() * 2 ** 32));
      buf.setUint32(4, Math.floor(rnd() * 2 ** 32));
      const v = buf.getFloat64(0);
      return Number.isFinite(v) ? v : 1.5;
    }
    case 8: return T0 + rnd() * 1e6;
    default: return rnd() * 100;
  }
}

function randomString(rnd: () => number): string {
  const parts = ['api', 'web', 'x', '', 'quote "', 'back\\slash', 'tab\t', 'nl\n', '\u0001', 'é', '日本', '😀', '\ud800', '\udc00x', '\u2028', '\u007f', '\u001f', '\u0000', ' '];
  let s = '';
  const n = Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) s += rnd() < 0.75 ? pick(rnd, ['api', 'web', 'db', 'u123', '/v1/x']) : pick(rnd, parts);
  return s;
}

type Gen = (rnd: () => number) => unknown;

/** Column makers by class; `bad` holds values some chunks slip in, which the fast path declines. */
const GOOD: Record<string, Gen> = {
  number: randomNumber,
  string: randomString,
  bool: (rnd) => rnd() < 0.5,
  set: (rnd) => Array.from({ length: Math.floor(rnd() * 4) }, () => randomString(rnd)),
};
const BAD: Gen[] = [
  () => NaN, () => Infinity, () => new BigIntTooLarge(2n ** 60n), () => ({ a: 1 }), () => [1, 2], () => 'z'.repeat(70_000),
];

interface Shape { names: string[]; classes: (keyof typeof GOOD)[]; timeAt: number }

function randomShape(rnd: () => number, timeName: string): Shape {
  const n = 2 + Math.floor(rnd() * 6);
  const names: string[] = [];
  const classes: (keyof typeof GOOD)[] = [];
  for (let c = 0; c < n; c++) {
    names.push(pick(rnd, ['a', 'b', 'service', 'é', 'q"k', `c${c}`]) + c);
    classes.push(pick(rnd, ['number', 'string', 'bool', 'set'] as const));
  }
  const timeAt = Math.floor(rnd() * (n + 1));
  names.splice(timeAt, 0, timeName);
  classes.splice(timeAt, 0, 'number');
  return { names, classes, timeAt };
}

function randomChunk(rnd: () => number, shape: Shape, start: number, rows: number, typedTime: boolean): RowChunk {
  // An odd chunk holds one kind of thing the fast path must decline, so that each is the only
  // reason to decline in some chunks.
  const odd = rnd() < 0.4 ? pick(rnd, ['time', 'bad', 'class', 'nan', 'conflict'] as const) : null;
  const values = shape.names.map((_, c) => {
    if (c === shape.timeAt) {
      return Array.from({ length: rows }, (_, i) => {
        if (odd === 'time' && rnd() < 0.02) return pick(rnd, [null, undefined, '', -1e12, 'not a time', (T0 + i) * 1000]);
        return typedTime ? T0 + start + i + (rnd() < 0.5 ? 0 : Math.round(rnd() * 1e6) / 1e6) : T0 + start + i;
      });
    }
    // 'conflict': a column of another class than in the chunks before (the table's by then).
    const cls = odd === 'conflict' && c === (shape.timeAt === 0 ? 1 : 0) ? pick(rnd, ['number', 'string', 'bool', 'set'] as const) : shape.classes[c]!;
    if (cls === 'number' && rnd() < 0.3) {
      const typed = rnd() < 0.5 ? new Float64Array(rows) : new Int32Array(rows);
      for (let i = 0; i < rows; i++) typed[i] = typed instanceof Int32Array ? Math.floor(rnd() * 2 ** 31) * (rnd() < 0.5 ? -1 : 1) : randomNumber(rnd);
      if (odd === 'nan' && typed instanceof Float64Array) typed[Math.floor(rnd() * rows)] = NaN;
      return typed;
    }
    return Array.from({ length: rows }, () => {
      if (rnd() < 0.1) return null;
      if (odd === 'bad' && rnd() < 0.01) return pick(rnd, BAD)(rnd);
      if (odd === 'class' && rnd() < 0.01) return GOOD[pick(rnd, ['number', 'string', 'bool', 'set'] as const)]!(rnd); // another class
      return GOOD[cls]!(rnd);
    });
  });
  const positions = Array.from({ length: rows }, (_, i) => start + i + 1);
  return { rows: [], columnar: { names: shape.names, values, from: 0, to: rows }, positions, raws: null, unreadable: [], bytesDone: 0 };
}

function run(chunks: RowChunk[], opts: RowOptions, typedTime: boolean, fast: boolean) {
  const rejected: Rejection[] = [];
  const types = new ColumnTypes();
  const p = new RowPreparer(opts, types, new Set(typedTime ? [opts.timeColumn] : []), (r) => rejected.push(r), () => 1_800_000_000, fast);
  const lines: string[] = [];
  const positions: number[] = [];
  for (const c of chunks) {
    const out = p.prepare(c);
    lines.push(...out.lines);
    positions.push(...out.positions);
  }
  return { lines, positions, rejected, types: [...types.entries()], stats: p.linesChecked };
}

describe('loader columnar fast path', () => {
  it('sends exactly what the general path sends, on random columnar chunks', () => {
    const seed = Number(process.env.SHOAL_TEST_SEED ?? 20261203);
    console.log(`loader-columnar seed ${seed}`);
    const rnd = mulberry32(seed);
    let atOnce = 0;
    let oneByOne = 0;
    for (let file = 0; file < 24; file++) {
      const renamed = rnd() < 0.5;
      const timeName = renamed ? 'ts' : 'time';
      const typedTime = rnd() < 0.6;
      const opts: RowOptions = {
        timeColumn: timeName, timeFormat: pick(rnd, ['auto', 'unix-s', 'unix-ms'] as const),
        missingTime: rnd() < 0.5 ? 'reject' : 'now', skipColumns: [],
      };
      const shape = randomShape(rnd, timeName);
      if (renamed && rnd() < 0.4) { shape.names.push('time'); shape.classes.push('number'); }
      const chunks: RowChunk[] = [];
      let start = 0;
      for (let k = 0; k < 6; k++) {
        const rows = 1 + Math.floor(rnd() * 300);
        chunks.push(randomChunk(rnd, shape, start, rows, typedTime));
        start += rows;
      }
      const fast = run(chunks, opts, typedTime, true);
      const slow = run(chunks, opts, typedTime, false);
      expect(fast.lines).toEqual(slow.lines);
      expect(fast.positions).toEqual(slow.positions);
      expect(fast.rejected).toEqual(slow.rejected);
      // The classes learnt, not the order they were learnt in (row by row it follows the rows).
      expect(new Map(fast.types)).toEqual(new Map(slow.types));
      expect(slow.stats.atOnce).toBe(0);
      atOnce += fast.stats.atOnce;
      oneByOne += fast.stats.oneByOne;
    }
    // Both ways must have been taken, or the comparison proves nothing.
    expect(atOnce).toBeGreaterThan(1000);
    expect(oneByOne).toBeGreaterThan(1000);
  });

  it('writes each number as String() does', () => {
    const rnd = mulberry32(7);
    const types = new ColumnTypes();
    const opts: RowOptions = { timeColumn: 'time', timeFormat: 'auto', missingTime: 'reject', skipColumns: [] };
    const rows = 20_000;
    const n = Array.from({ length: rows }, () => randomNumber(rnd));
    const chunk: RowChunk = {
      rows: [], columnar: { names: ['time', 'n'], values: [Array.from({ length: rows }, (_, i) => T0 + i), n], from: 0, to: rows },
      positions: Array.from({ length: rows }, (_, i) => i + 1), raws: null, unreadable: [], bytesDone: 0,
    };
    const p = new RowPreparer(opts, types, new Set(), () => { throw new Error('no rejections expected'); });
    const out = p.prepare(chunk);
    expect(p.linesChecked.atOnce).toBe(rows);
    for (let i = 0; i < rows; i++) expect(out.lines[i]).toBe(`{"time":${T0 + i},"n":${String(n[i])}}`);
  });
});
