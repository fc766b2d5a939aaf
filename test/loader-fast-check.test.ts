/**
 * The loader's check of plain NDJSON a stretch at a time (loader/fast-check.ts) against the
 * general path (JSON.parse + checkRow per line): on seeded random files that mix plain rows with
 * every kind of row the fast path must not take (bad JSON, type conflicts, times to convert or
 * missing, nested objects, BOM, CRLF, escapes, long strings, blank lines, lines across the
 * reader's 1 MiB pieces), both must send the same lines in the same batches and report the same
 * rejections. Each file is loaded twice, once with the check at once turned off.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { load, type LoadHooks } from '../loader/load.js';
import { defaultLoadOptions, type LoadOptions } from '../loader/options.js';
import type { Transport } from '../loader/transport.js';
import { mulberry32 } from './support/gen.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-loader-fast-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const T0 = 1_700_000_000;

/** A plain row: one the leaf stores as it is. */
function plainRow(rnd: () => number, i: number, wide: boolean): string {
  const row: Record<string, unknown> = { time: T0 + i, service: ['api', 'web', 'db'][Math.floor(rnd() * 3)], n: Math.floor(rnd() * 1000), lat: rnd() * 100, ok: rnd() < 0.5 };
  if (rnd() < 0.7) row.tags = ['a', 'b', 'c'].filter(() => rnd() < 0.5);
  if (rnd() < 0.1) row.maybe = null;
  if (wide) for (let k = 0; k < 12; k++) row[`f${k}`] = `v${Math.floor(rnd() * 50)}-${'x'.repeat(Math.floor(rnd() * 40))}`;
  return JSON.stringify(row);
}

/** A line the fast path must decline, or take only if the general path takes it unchanged. */
function oddLine(rnd: () => number, i: number): string {
  const t = T0 + i;
  const cases: (() => string)[] = [
    () => '{not json',
    () => JSON.stringify({ time: t, service: 5 }), // type conflict with the string column
    () => JSON.stringify({ time: t, n: 'text' }),
    () => JSON.stringify({ time: (t) * 1000, service: 'ms' }), // milliseconds: converted
    () => JSON.stringify({ time: new Date(t * 1000).toISOString(), service: 'iso' }),
    () => JSON.stringify({ service: 'no time' }),
    () => JSON.stringify({ time: null, service: 'null time' }),
    () => JSON.stringify({ time: t, nested: { a: 1 } }),
    () => JSON.stringify({ time: t, tags: [1, 2] }),
    () => JSON.stringify({ time: t, service: 'quote " and \\ backslash', u: 'é\u00e9\u2028' }),
    () => `{"time":${t},"service":"\\u00e9scaped"}`,
    () => `{"time":${t},"ser\\u0076ice":"escaped key"}`,
    () => `{"time":${t},"service":"dup","service":"dup2"}`,
    () => `{"time":${t},"__proto__":1}`,
    () => `{"time":${t},"123":"integer-like key"}`,
    () => JSON.stringify({ time: t, big: 2 ** 60 }),
    () => JSON.stringify({ time: t, long: 'y'.repeat(70_000) }), // over stringBytesMax
    () => JSON.stringify({ time: t, [`new_${Math.floor(rnd() * 5)}`]: rnd() < 0.5 ? 'x' : 1 }),
    () => JSON.stringify({ time: 99_999_999_999_999, service: 'far future' }),
    () => '[1,2]',
    () => '5',
    () => '{}',
    () => '',
    () => '   \t',
    () => `  ${JSON.stringify({ time: t, service: 'indented' })}  `,
    () => `${JSON.stringify({ time: t, service: 'crlf' })}\r`,
    () => JSON.stringify({ time: t + 0.25, service: 'fraction', lat: -1.5e-7 }),
  ];
  return cases[Math.floor(rnd() * cases.length)]!();
}

function writeFile(seed: number, bytesTarget: number, oddShare: number): string {
  const rnd = mulberry32(seed);
  const wide = rnd() < 0.5;
  const lines: string[] = [];
  let bytes = 0;
  if (rnd() < 0.2) lines.push('\uFEFF' + plainRow(rnd, 0, wide));
  for (let i = 1; bytes < bytesTarget; i++) {
    const line = rnd() < oddShare ? oddLine(rnd, i) : plainRow(rnd, i, wide);
    lines.push(line);
    bytes += line.length + 1;
  }
  const file = path.join(tmp, `f-${seed}-${oddShare}.ndjson`);
  // Sometimes no newline at the end: the last line is then read at the end of the file.
  fs.writeFileSync(file, lines.join('\n') + (rnd() < 0.5 ? '\n' : ''));
  return file;
}

interface Run { batches: string[]; report: Awaited<ReturnType<typeof load>>; stats: { atOnce: number; oneByOne: number } }

async function run(file: string, opts: Partial<LoadOptions>, checkAtOnce: boolean): Promise<Run> {
  const batches: string[] = [];
  const t: Transport = {
    async postEvents(_table, body) {
      batches.push(body);
      return { status: 200, body: { accepted: body.split('\n').length }, retryAfterMs: null, error: null };
    },
    getJson: async () => ({ status: 404, body: null, retryAfterMs: null, error: null }),
    close: async () => {},
  };
  const stats = { atOnce: 0, oneByOne: 0 };
  const hooks: LoadHooks = { transport: t, checkAtOnce, lineStats: stats, nowSeconds: () => T0 };
  const report = await load({ ...defaultLoadOptions([file], 't'), batchRows: 2_000, inFlight: 1, rejectionsShown: 1_000, ...opts }, hooks);
  return { batches, report, stats };
}

function comparable(r: Run['report']): unknown {
  const { seconds: _s, rowsPerSecond: _r, cpuSeconds: _c, rssPeakBytes: _m, ...rest } = r;
  return rest;
}

describe('NDJSON checked a stretch at a time', () => {
  const seeds = [1, 2, 3, 4, 5, 6];
  const totals = { atOnce: 0, oneByOne: 0 };
  for (const seed of seeds) {
    for (const oddShare of [0, 0.0005, 0.01]) {
      it(`sends and rejects exactly what the general path does (seed ${seed}, odd lines ${oddShare})`, async () => {
        const file = writeFile(seed * 100 + Math.round(oddShare * 1e4), 2_600_000, oddShare);
        const variants: Partial<LoadOptions>[] = [{}];
        if (seed % 3 === 0) variants.push({ missingTime: 'now' });
        if (seed % 3 === 1) variants.push({ skipColumns: ['n'] });
        if (seed % 3 === 2) variants.push({ timeFormat: 'unix-ms' });
        for (const v of variants) {
          const fast = await run(file, v, true);
          const general = await run(file, v, false);
          expect(general.stats.atOnce).toBe(0);
          expect(fast.batches.length).toBe(general.batches.length);
          for (let b = 0; b < fast.batches.length; b++) expect(fast.batches[b]).toBe(general.batches[b]);
          expect(comparable(fast.report)).toEqual(comparable(general.report));
          expect(fast.report.rowsRead).toBeGreaterThan(1_000);
          if (Object.keys(v).length === 0) {
            totals.atOnce += fast.stats.atOnce;
            totals.oneByOne += fast.stats.oneByOne;
            // Plain files go the fast way as a whole.
            if (oddShare === 0 && !fs.readFileSync(file, 'latin1').startsWith('\xef\xbb\xbf')) expect(fast.stats.oneByOne).toBe(0);
          } else if (v.skipColumns !== undefined || v.timeFormat === 'unix-ms') {
            expect(fast.stats.atOnce).toBe(0);
          }
        }
      });
    }
  }
  it('took both ways over the files above', () => {
    console.log(`lines checked at once ${totals.atOnce}, parsed one by one ${totals.oneByOne}`);
    expect(totals.atOnce).toBeGreaterThan(0);
    expect(totals.oneByOne).toBeGreaterThan(0);
  });

  it('declines a stretch whose rows lack a time, and rejects them as before', async () => {
    const file = path.join(tmp, 'notime.ndjson');
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify(i === 4321 ? { service: 'x' } : { time: T0 + i, service: 'x' }));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const r = await run(file, {}, true);
    expect(r.report.rowsRejected).toBe(1);
    expect(r.report.rejected[0]).toMatchObject({ position: 4322, code: 'SHOAL_ERR_LOAD_TIME' });
    expect(r.batches.join('\n').split('\n').length).toBe(4999);
    expect(r.stats.oneByOne).toBe(5000);
  });
});
