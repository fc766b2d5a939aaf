/**
 * The loader's pieces without a server: time reading, CSV inference, the row check against the
 * leaf's own decoder (property test), line splitting, batching, and the sender's retries and
 * bad-row isolation against a scripted transport (faults injected, not hoped for).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { buildBatch } from '../query/storage/ingest-decoder.js';
import { Batcher, type Batch } from '../loader/batcher.js';
import { load } from '../loader/load.js';
import { defaultTailOptions, tail } from '../loader/tail.js';
import { defaultLoadOptions, defaultSendOptions, parseSchemaOption, parseSizeOption, type SendOptions } from '../loader/options.js';
import { inferType } from '../loader/read-csv.js';
import { LineSplitter } from '../loader/read-ndjson.js';
import { ReportBuilder } from '../loader/report.js';
import { checkRow, ColumnTypes } from '../loader/row-check.js';
import { cleanServerMessage, Sender } from '../loader/sender.js';
import { parseIsoSeconds, toSeconds } from '../loader/time-column.js';
import type { Transport, TransportAnswer } from '../loader/transport.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-loader-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('time column', () => {
  it('reads unix seconds, ms and us, by --time-format or by magnitude', () => {
    expect(toSeconds(1_700_000_000, 'auto')).toBe(1_700_000_000);
    expect(toSeconds(1_700_000_000_123, 'auto')).toBeCloseTo(1_700_000_000.123, 6);
    expect(toSeconds(1_700_000_000_123_456, 'auto')).toBeCloseTo(1_700_000_000.123456, 5);
    expect(toSeconds(1_700_000_000_123, 'unix-ms')).toBeCloseTo(1_700_000_000.123, 6);
    expect(toSeconds(1_700_000_000_123_456, 'unix-us')).toBeCloseTo(1_700_000_000.123456, 5);
    expect(toSeconds('1700000000', 'unix-s')).toBe(1_700_000_000);
    // Milliseconds read as seconds land after 2200: unusable, not silently wrong.
    expect(toSeconds(1_700_000_000_123, 'unix-s')).toBeNull();
    expect(toSeconds(1_700_000_000, 'iso')).toBeNull();
  });

  it('reads ISO-8601 with offsets as UTC, keeping microseconds', () => {
    expect(parseIsoSeconds('2024-05-01')).toBe(Date.UTC(2024, 4, 1) / 1000);
    expect(parseIsoSeconds('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseIsoSeconds('2024-05-01 12:00:00')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseIsoSeconds('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseIsoSeconds('2024-05-01T07:30:00-0430')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseIsoSeconds('2024-05-01 12:00:00+00')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(parseIsoSeconds('2024-05-01T12:00:00.123456Z')! - Date.UTC(2024, 4, 1, 12) / 1000).toBeCloseTo(0.123456, 6);
    expect(parseIsoSeconds('2024-02-30')).toBeNull();
    expect(parseIsoSeconds('yesterday')).toBeNull();
    expect(toSeconds('2024-05-01T12:00:00Z', 'auto')).toBe(Date.UTC(2024, 4, 1, 12) / 1000);
    expect(toSeconds('1899-12-31', 'auto')).toBeNull();
  });
});

describe('CSV type inference', () => {
  it('picks int, float, bool, string; big integers stay strings', () => {
    expect(inferType(['1', '-2', '', '30'])).toBe('int');
    expect(inferType(['1', '2.5', '1e3'])).toBe('float');
    expect(inferType(['true', 'FALSE', ''])).toBe('bool');
    expect(inferType(['1', 'x'])).toBe('string');
    expect(inferType(['', ''])).toBe('string');
    expect(inferType(['12345678901234567890'])).toBe('string');
    expect(inferType(['0', '1'])).toBe('int');
  });

  it('parses --schema and sizes', () => {
    expect([...parseSchemaOption('a:int, b:string,c:time')]).toEqual([['a', 'int'], ['b', 'string'], ['c', 'time']]);
    expect(() => parseSchemaOption('a:date')).toThrow(/type must be one of/);
    expect(() => parseSchemaOption('a:int,a:float')).toThrow(/twice/);
    expect(parseSizeOption('4MiB', 'x')).toBe(4 * 1024 * 1024);
    expect(parseSizeOption('512k', 'x')).toBe(512 * 1024);
  });
});

describe('row check', () => {
  const value = fc.oneof(
    fc.integer({ min: -1000, max: 1000 }),
    fc.double({ noNaN: false }),
    fc.constantFrom(2 ** 53 + 2, -(2 ** 60), 1e300, 0.5),
    fc.string({ maxLength: 8 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
    fc.array(fc.oneof(fc.string({ maxLength: 2 }), fc.integer()), { maxLength: 2 }),
    fc.constant({ nested: 1 }),
  );
  const row = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', ''), value, { maxKeys: 4 });

  it('accepts a batch exactly when the leaf decoder does, failing at the same row with the same code', () => {
    fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 12 }), (rows) => {
      const events = rows.map((r) => ({ ...r, time: 1_700_000_000 }));
      let leaf: { row: number; code: string } | null = null;
      try {
        buildBatch(events, new Map([['time', { type: 'time' as const }]]), 1_700_000_000);
      } catch (e) {
        const err = e as ShoalError;
        leaf = { row: err.where?.row ?? -1, code: err.code };
      }
      const types = new ColumnTypes();
      let ours: { row: number; code: string } | null = null;
      for (let i = 0; i < events.length; i++) {
        const p = checkRow(events[i], types);
        if (p !== null) { ours = { row: i, code: p.code }; break; }
      }
      expect(ours).toEqual(leaf);
    }), { seed: 20_240_601, numRuns: 2_000 });
  });

  it('rejects strings over the byte limit and records no types from a rejected row', () => {
    const types = new ColumnTypes();
    const long = 'é'.repeat(LIMITS.stringBytesMax / 2 + 1);
    expect(checkRow({ a: 1, s: long }, types)?.code).toBe('SHOAL_ERR_INGEST_VALUE');
    expect(types.get('a')).toBeUndefined();
    expect(checkRow({ a: 'x' }, types)).toBeNull();
    expect(checkRow({ a: 2 }, types)?.code).toBe('SHOAL_ERR_INGEST_TYPE_CONFLICT');
  });
});

describe('line splitting and batching', () => {
  it('splits across pieces, strips CR, skips an over-long line without holding it', () => {
    const got: [string, number][] = [];
    const long: number[] = [];
    const s = new LineSplitter(10);
    s.push('{"a":1}\r\n{"b"', (l, n) => got.push([l, n]), (n) => long.push(n));
    s.push(':2}\nxxxxxxxxxxxxxxxx', (l, n) => got.push([l, n]), (n) => long.push(n));
    s.push('xxxx\n{}\nlast', (l, n) => got.push([l, n]), (n) => long.push(n));
    s.end((l, n) => got.push([l, n]));
    expect(got).toEqual([['{"a":1}', 1], ['{"b":2}', 2], ['{}', 4], ['last', 5]]);
    expect(long).toEqual([3]);
  });

  it('cuts batches by rows and by size, never empty', () => {
    const b = new Batcher('x', 3, 20);
    const out: Batch[] = [];
    for (let i = 0; i < 7; i++) { const full = b.add('f', 'line', `{"i":${i}}`, i + 1); if (full) out.push(full); }
    const last = b.flush('f', 'line');
    if (last) out.push(last);
    expect(out.map((x) => x.positions)).toEqual([[1, 2], [3, 4], [5, 6], [7]]);
    expect(out.map((x) => x.id)).toEqual(['x-0', 'x-1', 'x-2', 'x-3']);
    expect(out[0]!.body).toBe('{"i":0}\n{"i":1}');
  });
});

/** A scripted server: answers per attempt, and records every request. */
class ScriptedTransport implements Transport {
  readonly requests: { body: string; batchId: string }[] = [];
  constructor(private readonly answer: (body: string, batchId: string, attempt: number) => TransportAnswer) {}
  async postEvents(_table: string, body: string, batchId: string): Promise<TransportAnswer> {
    this.requests.push({ body, batchId });
    return this.answer(body, batchId, this.requests.length);
  }
  async getJson(): Promise<TransportAnswer> { return { status: 404, body: null, retryAfterMs: null, error: null }; }
  async close(): Promise<void> {}
}

const ok = (accepted: number): TransportAnswer => ({ status: 200, body: { accepted }, retryAfterMs: null, error: null });
const answer = (status: number, body: unknown, retryAfterMs: number | null = null): TransportAnswer => ({ status, body, retryAfterMs, error: null });

/** Emulates the leaf: rejects the first row holding "bad" (or a string `n` once the table has int `n`). */
function leafLike(body: string): TransportAnswer {
  const lines = body.split('\n');
  const row = lines.findIndex((l) => l.includes('bad'));
  if (row >= 0) return answer(400, { error: { code: 'SHOAL_ERR_INGEST_VALUE', message: `line ${row + 1} (row ${row}), column "v": bad value`, row, line: row + 1, column: 'v' } });
  return ok(lines.length);
}

function batchOf(lines: string[], id = 'b'): Batch {
  return { id, file: 'f.ndjson', positionKind: 'line', body: lines.join('\n'), positions: lines.map((_, i) => 10 + i) };
}

function sender(t: Transport, opts: Partial<SendOptions> = {}): { s: Sender; report: ReportBuilder; sleeps: number[] } {
  const report = new ReportBuilder('t', 'http://x', 100);
  const sleeps: number[] = [];
  const s = new Sender(t, { ...defaultSendOptions(), table: 't', ...opts }, new ColumnTypes(), report, async (ms) => { sleeps.push(ms); }, () => 1);
  return { s, report, sleeps };
}

describe('sender', () => {
  it('retries 503 and connection errors with the same batch id and growing delays', async () => {
    const t = new ScriptedTransport((body, _id, attempt) =>
      attempt === 1 ? answer(503, { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'busy' } }, 2000)
        : attempt === 2 ? { status: 0, body: null, retryAfterMs: null, error: 'ECONNRESET' }
          : ok(body.split('\n').length));
    const { s, report, sleeps } = sender(t);
    await s.send(batchOf(['{"a":1}', '{"a":2}']));
    expect(t.requests.map((r) => r.batchId)).toEqual(['b', 'b', 'b']);
    expect(sleeps).toEqual([2000, 200]); // Retry-After honoured; then 2 x 100 ms
    expect(report.rowsAccepted).toBe(2);
    expect(report.retries).toBe(2);
  });

  it('gives up after --retries attempts with SHOAL_ERR_LOAD_SEND naming the lines', async () => {
    const t = new ScriptedTransport(() => answer(503, { error: { code: 'SHOAL_ERR_UNAVAILABLE', message: 'busy' } }));
    const { s } = sender(t, { retries: 3 });
    await expect(s.send(batchOf(['{"a":1}']))).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_SEND', message: expect.stringContaining('f.ndjson lines 10..10 after 3 attempts') });
    expect(t.requests.length).toBe(3);
  });

  it('isolates rejected rows by their position and loads the rest', async () => {
    const t = new ScriptedTransport((body) => leafLike(body));
    const { s, report } = sender(t);
    await s.send(batchOf(['{"v":1}', '{"v":"bad"}', '{"v":3}', '{"v":"bad"}', '{"v":5}']));
    expect(report.rowsAccepted).toBe(3);
    const r = report.finish(1);
    expect(r.rejected.map((x) => [x.position, x.code, x.message])).toEqual([
      [11, 'SHOAL_ERR_INGEST_VALUE', 'column "v": bad value'],
      [13, 'SHOAL_ERR_INGEST_VALUE', 'column "v": bad value'],
    ]);
    // The stored rows went out under fresh ids, so none of them reuses the rejected batch's id.
    const stored = t.requests.filter((q) => !q.body.includes('bad'));
    expect(stored.map((q) => q.batchId)).toEqual(['b.1', 'b.3', 'b.4']);
  });

  it('learns a table column type from a conflict and rejects the rest of the batch locally', async () => {
    let calls = 0;
    const t = new ScriptedTransport((body) => {
      calls++;
      const lines = body.split('\n');
      const row = lines.findIndex((l) => /"n":"/.test(l));
      if (row >= 0) return answer(400, { error: { code: 'SHOAL_ERR_INGEST_TYPE_CONFLICT', message: `line ${row + 1} (row ${row}), column "n": value of type string conflicts with the column's type int in the table`, row, column: 'n' } });
      return ok(lines.length);
    });
    const { s, report } = sender(t);
    const lines = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? `{"n":${i}}` : `{"n":"s${i}"}`));
    await s.send(batchOf(lines));
    expect(report.rowsAccepted).toBe(50);
    expect(report.rowsRejected).toBe(50);
    expect(calls).toBe(3); // the batch, then the rows before and after the first conflict
  });

  it('splits a batch in halves when the error names no row', async () => {
    const t = new ScriptedTransport((body) => (body.includes('bad') ? answer(413, { error: { code: 'SHOAL_ERR_INGEST_LIMIT', message: 'too big' } }) : ok(body.split('\n').length)));
    const { s, report } = sender(t);
    await s.send(batchOf(['{"a":1}', '{"a":2}', '{"bad":3}', '{"a":4}']));
    expect(report.rowsAccepted).toBe(3);
    expect(report.finish(1).rejected.map((x) => x.position)).toEqual([12]);
  });

  it('stops on errors about the whole load (401)', async () => {
    const t = new ScriptedTransport(() => answer(401, { error: { code: 'SHOAL_ERR_UNAUTHORIZED', message: 'token' } }));
    const { s } = sender(t);
    await expect(s.send(batchOf(['{"a":1}']))).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_SEND', message: expect.stringContaining('SHOAL_ERR_UNAUTHORIZED') });
  });

  it('strips batch-relative prefixes from leaf messages', () => {
    expect(cleanServerMessage('line 3 (row 2), column "x": bad')).toBe('column "x": bad');
    expect(cleanServerMessage('row 2: an event must be a JSON object')).toBe('an event must be a JSON object');
  });
});

describe('load (scripted server)', () => {
  it('keeps at most --in-flight batches outstanding and accounts for every row', async () => {
    const file = path.join(tmp, 'inflight.ndjson');
    const rows = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ time: 1_700_000_000 + i, i }) + '\n');
    rows[500] = '{not json\n';
    fs.writeFileSync(file, rows.join(''));
    let outstanding = 0;
    let outstandingMax = 0;
    const t: Transport = {
      async postEvents(_table, body) {
        outstanding++;
        outstandingMax = Math.max(outstandingMax, outstanding);
        await new Promise((r) => setTimeout(r, 2));
        outstanding--;
        return ok(body.split('\n').length);
      },
      getJson: async () => answer(404, null),
      close: async () => {},
    };
    const report = await load({ ...defaultLoadOptions([file], 't'), batchRows: 10, inFlight: 3 }, { transport: t });
    expect(outstandingMax).toBe(3);
    expect(report).toMatchObject({ rowsRead: 1000, rowsAccepted: 999, rowsRejected: 1, rowsNotSent: 0, batches: 100, error: null });
    expect(report.rejected[0]).toMatchObject({ position: 501, code: 'SHOAL_ERR_LOAD_ROW' });
  });

  it('refuses a columnar file without the time column before sending anything', async () => {
    const file = path.join(tmp, 'notime.csv');
    fs.writeFileSync(file, 'a,b\n1,2\n');
    const t = new ScriptedTransport(() => ok(1));
    const report = await load({ ...defaultLoadOptions([file], 't') }, { transport: t });
    expect(report.error).toMatchObject({ code: 'SHOAL_ERR_LOAD_OPTION', message: expect.stringContaining('has no column "time" (its columns: a, b)') });
    expect(t.requests).toEqual([]);
  });

  it('reports a batch that cannot be delivered, with what was done before', async () => {
    const file = path.join(tmp, 'down.ndjson');
    fs.writeFileSync(file, Array.from({ length: 50 }, (_, i) => JSON.stringify({ time: 1_700_000_000, i })).join('\n'));
    let n = 0;
    const t: Transport = {
      postEvents: async (_t, body) => (++n <= 2 ? ok(body.split('\n').length) : { status: 0, body: null, retryAfterMs: null, error: 'ECONNREFUSED' }),
      getJson: async () => answer(404, null),
      close: async () => {},
    };
    const report = await load({ ...defaultLoadOptions([file], 't'), batchRows: 10, inFlight: 1, retries: 2 }, { transport: t, sleep: async () => {} });
    expect(report.error?.code).toBe('SHOAL_ERR_LOAD_SEND');
    expect(report.rowsAccepted).toBe(20);
    // The load stopped reading at the failure: rows read but not delivered are counted as such.
    expect(report.rowsNotSent).toBeGreaterThanOrEqual(10);
    expect(report.rowsRead).toBe(report.rowsAccepted + report.rowsRejected + report.rowsNotSent);
  });
});

describe('tail (scripted server)', () => {
  /** A leaf's batch-id dedupe: a batch id it stored is answered `duplicate` and not stored again. */
  class DedupeLeaf {
    readonly stored = new Map<string, number>();
    readonly ids: string[] = [];
    rows(): number { return [...this.stored.values()].reduce((a, b) => a + b, 0); }
    post(body: string, id: string): TransportAnswer {
      this.ids.push(id);
      if (this.stored.has(id)) return answer(200, { accepted: 0, duplicate: true });
      this.stored.set(id, body.split('\n').length);
      return ok(body.split('\n').length);
    }
  }

  it('resends the batch in flight at a crash under the same id, so it is stored once', async () => {
    const file = path.join(tmp, 'crash.ndjson');
    const state = path.join(tmp, 'crash.state.json');
    const line = (i: number) => JSON.stringify({ time: 1_700_000_000 + i, i }) + '\n';
    fs.writeFileSync(file, Array.from({ length: 10 }, (_, i) => line(i)).join(''));
    const leaf = new DedupeLeaf();
    const base = { ...defaultTailOptions(file, 't'), stateFile: state, flushMs: 10, pollMs: 5 };

    // Run 1: the leaf stores the batch but the answer is lost; the tail is stopped while retrying.
    const stop1 = new AbortController();
    const lossy: Transport = {
      postEvents: async (_t, body, id) => { leaf.post(body, id); stop1.abort(); return { status: 0, body: null, retryAfterMs: null, error: 'ECONNRESET' }; },
      getJson: async () => answer(404, null),
      close: async () => {},
    };
    await expect(tail(base, { transport: lossy, signal: stop1.signal })).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_SEND' });
    const pending = JSON.parse(fs.readFileSync(state, 'utf8')).pending;
    expect(pending).toMatchObject({ start: 0, end: fs.statSync(file).size, id: leaf.ids[0] });

    // Run 2: the same batch id goes out again (answered duplicate); then new lines follow.
    fs.appendFileSync(file, line(10) + line(11));
    const stop2 = new AbortController();
    const marks: boolean[] = [];
    const good: Transport = {
      postEvents: async (_t, body, id, post) => { marks.push(post?.resend === true); const a = leaf.post(body, id); if (leaf.rows() === 12) stop2.abort(); return a; },
      getJson: async () => answer(404, null),
      close: async () => {},
    };
    const summary = await tail(base, { transport: good, signal: stop2.signal });
    expect(leaf.ids[1]).toBe(leaf.ids[0]);
    // The resent batch is marked a resend (another aggregator would look for it first); the new
    // lines after it are not.
    expect(marks).toEqual([true, false]);
    expect(leaf.rows()).toBe(12);
    expect(summary).toMatchObject({ rowsAccepted: 12, line: 12, offset: fs.statSync(file).size });
    expect(JSON.parse(fs.readFileSync(state, 'utf8')).pending).toBeNull();
  });

  it('refuses a state file of another table or file', async () => {
    const file = path.join(tmp, 'other.ndjson');
    const state = path.join(tmp, 'other.state.json');
    fs.writeFileSync(file, '');
    fs.writeFileSync(state, JSON.stringify({ version: 1, table: 'x', file, stateId: 'a', generation: 0, dev: '1', ino: '1', offset: 0, line: 0, pending: null }));
    const t: Transport = { postEvents: async () => ok(0), getJson: async () => answer(404, null), close: async () => {} };
    await expect(tail({ ...defaultTailOptions(file, 't'), stateFile: state }, { transport: t })).rejects.toMatchObject({ code: 'SHOAL_ERR_LOAD_STATE' });
  });
});
