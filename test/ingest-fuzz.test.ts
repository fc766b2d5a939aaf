/**
 * Property-based fuzzing of the ingest decoder (issue 7): arbitrary bodies and arbitrary event
 * shapes never crash it and never throw anything but a registered ShoalError; whatever it accepts
 * is stored with exactly as many rows as events. Seeded: the seed is printed by fast-check on
 * failure and fixed here so CI runs are reproducible.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERRORS, isShoalError } from '../query/errors.js';
import { buildBatch, parseBody } from '../query/storage/ingest-decoder.js';
import { Table } from '../query/storage/table.js';

const SEED = 20_261_122;
const NOW = 1_700_000_000;

function decodeAndStore(body: Uint8Array | string, format: 'json' | 'ndjson' | 'auto', table: Table): number | string {
  try {
    const { events, lines } = parseBody(typeof body === 'string' ? body : Buffer.from(body), format);
    const batch = buildBatch(events, table.schema, NOW, lines);
    table.append(batch);
    return batch.rowCount;
  } catch (e) {
    if (!isShoalError(e)) throw e;
    expect(Object.keys(ERRORS)).toContain(e.code);
    return e.code;
  }
}

const fieldName = fc.oneof(fc.constantFrom('time', 'a', 'b', 's', 'tags', ''), fc.string({ maxLength: 8 }));
const value = fc.oneof(
  fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 20 }),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }), fc.array(fc.anything(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
  fc.constantFrom('2024-01-01T00:00:00Z', '2024-13-01', 1e300, -0, 2 ** 60),
);
const event = fc.oneof(fc.dictionary(fieldName, value, { maxKeys: 6 }), fc.anything());

describe('ingest decoder fuzzing', () => {
  it('random events: only registered errors, and accepted batches store every event', () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 20 }), fc.constantFrom<'json' | 'ndjson'>('json', 'ndjson'), (events, format) => {
      const table = new Table('fuzz');
      const body = format === 'json' ? JSON.stringify(events) : events.map((e) => JSON.stringify(e) ?? 'null').join('\n');
      const before = table.rowCount;
      const r = decodeAndStore(body, format, table);
      if (typeof r === 'number') expect(table.rowCount).toBe(before + r);
      else expect(table.rowCount).toBe(before);
    }), { seed: SEED, numRuns: 1500 });
  });

  it('random bytes and strings never crash the body parser', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 200 })), fc.constantFrom<'json' | 'ndjson' | 'auto'>('json', 'ndjson', 'auto'), (body, format) => {
      decodeAndStore(body, format, new Table('fuzz'));
    }), { seed: SEED, numRuns: 3000 });
  });

  it('a table survives a stream of mixed good and bad batches with its schema consistent', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.dictionary(fc.constantFrom('a', 'b', 's'), value, { maxKeys: 3 }), { maxLength: 5 }), { maxLength: 15 }), (batches) => {
      const table = new Table('fuzz');
      let rows = 0;
      for (const b of batches) {
        const r = decodeAndStore(JSON.stringify(b), 'json', table);
        if (typeof r === 'number') rows += r;
      }
      expect(table.rowCount).toBe(rows);
      for (const block of table.blocks()) for (const [name, col] of table.schema) {
        const data = block.column(name);
        if (data === undefined) continue;
        const kind = col.type === 'int' || col.type === 'float' || col.type === 'time' ? 'number' : col.type;
        expect(data.kind).toBe(kind);
      }
    }), { seed: SEED, numRuns: 500 });
  });
});
