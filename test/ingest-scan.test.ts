/**
 * The fast ingest path (query/storage/ingest-scan.ts) against the general one (parseBody +
 * buildBatch), on random and hostile bodies: whenever the fast path returns a batch, the general
 * path must accept the body and build exactly that batch (rows, times, column order and types,
 * values, dictionaries in order); whenever the general path refuses a body, the fast path must
 * decline it, so every error still comes from the general path. Seeded: SHOAL_SEED=<n> runs
 * another seed (fast-check prints the failing one); the default is fixed so CI runs repeat.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isShoalError } from '../query/errors.js';
import type { ColumnarBatch } from '../query/storage/batch.js';
import { batchDictEntry, hashBytes, type BatchDict } from '../query/storage/byte-dict.js';
import { buildBatch, parseBody } from '../query/storage/ingest-decoder.js';
import { scanBody } from '../query/storage/ingest-scan.js';
import type { ColumnType } from '../query/storage/types.js';
import { generateColumns, renderBodies } from '../bench/data.js';
import { renderWideBodies } from '../bench/data-wide.js';

const SEED = Number(process.env.SHOAL_SEED ?? 20_261_215);
const NOW = 1_700_000_000;

/** A batch as plain data, for deep equality (typed arrays as arrays; -0 kept apart from 0). */
function plain(b: ColumnarBatch): unknown {
  const arr = (a: ArrayLike<number>) => Array.from(a, (x) => (Object.is(x, -0) ? '-0' : x));
  // Entries as bytes (their identity), each with its hash checked against its bytes.
  const dict = (d: BatchDict) => Array.from(d.hashes, (h, i) => {
    expect(h).toBe(hashBytes(d.bytes, d.offsets[i]!, d.offsets[i + 1]!));
    return [batchDictEntry(d, i), Buffer.from(d.bytes.subarray(d.offsets[i]!, d.offsets[i + 1]!)).toString('hex')];
  });
  return {
    rowCount: b.rowCount,
    time: arr(b.time),
    columns: [...b.columns].map(([name, c]) => {
      switch (c.type) {
        case 'string': return [name, c.type, arr(c.codes), dict(c.dict)];
        case 'set': return [name, c.type, arr(c.offsets), arr(c.codes), dict(c.dict), arr(c.nulls)];
        default: return [name, c.type, arr(c.values), arr(c.nulls)];
      }
    }),
  };
}

type Format = 'json' | 'ndjson' | 'auto';

/** Checks one body; returns 'fast', 'declined' (general path accepted it) or the error code. */
function check(body: Buffer, format: Format, schema: ReadonlyMap<string, { type: ColumnType }> = new Map([['time', { type: 'time' }]])): string {
  let general: ColumnarBatch | null = null;
  let code: string | null = null;
  try {
    const { events, lines } = parseBody(body, format);
    general = buildBatch(events, schema, NOW, lines);
  } catch (e) {
    if (!isShoalError(e)) throw e;
    code = e.code;
  }
  const scanned = scanBody(body, format, schema, NOW);
  if (scanned === null) return code ?? 'declined';
  const fast = scanned.batch;
  expect(code, `the fast path took a body the general path refuses (${code}): ${body.toString('utf8').slice(0, 300)}`).toBeNull();
  expect(plain(fast)).toEqual(plain(general!));
  return 'fast';
}

const keyText = fc.oneof(
  fc.constantFrom('"time"', '"a"', '"b"', '"s"', '"tags"', '"n"', '""', '"0"', '"12"', '"__proto__"', '"a\\u0062"', '"é"', '"k k"'),
  fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)),
);
const numberText = fc.oneof(
  fc.integer().map(String), fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
  fc.constantFrom('-0', '0.0', '1.5', '1e2', '1E-3', '-2.5e+3', '01', '1.', '.5', '-', '1e400', '123456789012345678', '9007199254740993',
    '0.1', '0.30000000000000004', '1700000000', '1700000000.5', '-10000000000', '40000000000', '3.14159265358979', '12345678901234.5'),
);
const stringText = fc.oneof(
  fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 4 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"x"', '"a\\"b"', '"\\u00e9"', '"é"', '"\\ud800"', '"\\ud83d\\udc1f"', '"🐟"', '"tab\there"', '"\\n"', '"2024-01-01T00:00:00Z"', '"bad\\x"', '"ab"', '"a\\u0062"'),
);
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: numberText }, { weight: 4, arbitrary: stringText },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', 'tru', 'nul', '{}', '{"x":1}', '[]', '[1]', '["a",1]', '[[]]', 'truex') },
  { weight: 2, arbitrary: fc.array(stringText, { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`) },
);
const ws = fc.constantFrom('', '', '', ' ', '\t', '\r', ' \n ');
const eventText = fc.array(fc.tuple(keyText, valueText, ws, ws), { maxLength: 6 }).map((fields) => `{${fields.map(([k, v, w1, w2]) => `${w1}${k}${w2}:${w1}${v}`).join(',')}}`);
const lineText = fc.oneof({ weight: 8, arbitrary: eventText }, { weight: 1, arbitrary: fc.constantFrom('', '   ', '\r', '1', '[1]', 'null', '{"a":1}{"a":2}', '{"a":1},{"b":2}', '\u00a0', '\ufeff{"a":1}') });

describe('fast ingest path vs the general decoder', () => {
  it('random NDJSON and JSON bodies: the same batch, or declined; never a batch the general path refuses', () => {
    const seen = new Map<string, number>();
    fc.assert(fc.property(fc.array(lineText, { minLength: 1, maxLength: 12 }), fc.constantFrom<Format>('json', 'ndjson', 'auto'), fc.constantFrom('\n', '\r\n', ',', ' ,\n'),
      (lines, format, sep) => {
        const text = format === 'ndjson' || sep === '\n' || sep === '\r\n' ? lines.join(sep) : `[${lines.join(sep)}]`;
        const r = check(Buffer.from(text, 'utf8'), format);
        seen.set(r, (seen.get(r) ?? 0) + 1);
      }), { seed: SEED, numRuns: 10_000 });
    // The generator must reach both sides: batches the fast path builds, and bodies it declines.
    expect(seen.get('fast') ?? 0).toBeGreaterThan(150);
    expect([...seen.keys()].length).toBeGreaterThan(3);
  });

  it('well-formed events of every value kind (most are taken by the fast path)', () => {
    // One kind of value per key (else most batches are type conflicts), any of them null.
    const orNull = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: a }, { weight: 1, arbitrary: fc.constant(null) });
    const event = fc.record({
      a: orNull(fc.oneof(fc.integer(), fc.constantFrom(-0, 2 ** 53 - 1, 2 ** 53, 2 ** 60))),
      b: orNull(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e-7, 0.1, 5e-324, 1.7976931348623157e308))),
      s: orNull(fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 5 }))),
      'é': orNull(fc.string({ unit: 'grapheme', maxLength: 3 })),
      tags: orNull(fc.array(fc.string({ unit: 'binary', maxLength: 4 }), { maxLength: 4 })),
      v: orNull(fc.boolean()),
      time: orNull(fc.integer({ min: -2_000_000_000, max: 2_000_000_000 })),
    }, { requiredKeys: [] });
    let fast = 0;
    fc.assert(fc.property(fc.array(event, { minLength: 1, maxLength: 20 }), fc.constantFrom<Format>('json', 'ndjson'), (events, format) => {
      const text = format === 'json' ? JSON.stringify(events) : events.map((e) => JSON.stringify(e)).join('\n');
      if (check(Buffer.from(text), format) === 'fast') fast++;
    }), { seed: SEED, numRuns: 3000 });
    expect(fast).toBeGreaterThan(2500);
  });

  it('against a table schema: conflicts and widening decline or match', () => {
    const schema = new Map<string, { type: ColumnType }>([['time', { type: 'time' }], ['a', { type: 'int' }], ['s', { type: 'string' }], ['f', { type: 'float' }], ['tags', { type: 'set' }], ['ok', { type: 'bool' }]]);
    const bodies = ['{"a":1}', '{"a":1.5}', '{"a":"x"}', '{"f":2}', '{"s":"x"}', '{"s":1}', '{"tags":["a"]}', '{"tags":"a"}', '{"ok":true}', '{"ok":1}', '{"new":1,"a":2}'];
    const outcomes = bodies.map((b) => check(Buffer.from(b), 'ndjson', schema));
    expect(outcomes).toEqual(['fast', 'fast', 'SHOAL_ERR_INGEST_TYPE_CONFLICT', 'fast', 'fast', 'SHOAL_ERR_INGEST_TYPE_CONFLICT', 'fast', 'SHOAL_ERR_INGEST_TYPE_CONFLICT', 'fast', 'SHOAL_ERR_INGEST_TYPE_CONFLICT', 'fast']);
    // The column limit counts the table's columns: one more is the general path's error.
    const limited = scanBody(Buffer.from('{"x":1,"y":2}'), 'ndjson', schema, NOW, schema.size + 1);
    expect(limited).toBeNull();
  });

  it('takes the benchmark bodies whole (the shapes the bench measures)', () => {
    const scuba = renderBodies(generateColumns(7, 3_000, NOW), 'ndjson', 1_000).concat(renderBodies(generateColumns(7, 3_000, NOW), 'json', 1_000));
    const wide = renderWideBodies(7, 'ndjson', 500, 1_500, 0, NOW).timed.bodies.concat(renderWideBodies(7, 'json', 500, 1_500, 0, NOW).timed.bodies);
    for (const b of scuba) expect(check(b, b[0] === 0x5b ? 'json' : 'ndjson')).toBe('fast');
    for (const b of wide) expect(check(b, b[0] === 0x5b ? 'json' : 'ndjson')).toBe('fast');
  });
});
