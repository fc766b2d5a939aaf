/**
 * The CLI's result formatting (server/cli/format.ts): numbers keep every digit of the double,
 * table columns line up in display columns (CJK, emoji, combining marks), long cells are cut
 * between graphemes, times print as ISO-8601 UTC, and the CSV reads back into DuckDB as the same
 * values. Expected texts and widths are written out here from Unicode and the calendar, never
 * taken from the code under test; the random round trips are seeded (SHOAL_TEST_SEED replays one).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { formatCsv, formatTable, type ResultLike } from '../server/cli/format.js';
import { mulberry32, randomSeed } from './support/gen.js';

const SEED = Number(process.env.SHOAL_TEST_SEED ?? randomSeed());
console.log(`cli-format: seed ${SEED} (SHOAL_TEST_SEED=${SEED} replays it)`);

type Cell = ResultLike['rows'][number][number];
const one = (type: string, values: Cell[]): ResultLike => ({ columns: [{ name: 'v', type }], rows: values.map((v) => [v]) });
/** The cells of a one-column table view, header and rule line dropped, padding trimmed. */
const tableCells = (out: string) => out.split('\n').slice(2).map((line) => line.trim());
const csvCells = (out: string) => out.split('\n').slice(1);

/** Finite doubles across all magnitudes: random bit patterns, decimal-looking values, fractions. */
function randomDoubles(seed: number, count: number): number[] {
  const draw = mulberry32(seed);
  const view = new DataView(new ArrayBuffer(8));
  const out: number[] = [];
  while (out.length < count) {
    const kind = out.length % 3;
    let v: number;
    if (kind === 0) {
      view.setUint32(0, Math.floor(draw() * 2 ** 32));
      view.setUint32(4, Math.floor(draw() * 2 ** 32));
      v = view.getFloat64(0);
    } else if (kind === 1) {
      v = (draw() - 0.5) * 10 ** Math.floor(draw() * 44 - 14); // 1e-15 .. 1e29
    } else {
      v = Math.floor(draw() * 1e6) / (1 + Math.floor(draw() * 999));
    }
    if (Number.isFinite(v)) out.push(v);
  }
  return out;
}

/** Display width of a line whose only non-ASCII text is one of `known` (strings with known widths). */
function columnsOf(line: string, known: [string, number][]): string {
  let plain = line;
  for (const [text, width] of [...known].sort((a, b) => b[0].length - a[0].length)) plain = plain.split(text).join('X'.repeat(width));
  expect(plain, `unmeasured text in ${JSON.stringify(line)}`).toMatch(/^[\x20-\x7e]*$/);
  return plain;
}

describe('numbers', () => {
  it('keep every digit: 123456789012.5 is not 123456789000', () => {
    const r = one('float', [123456789012.5, -123456789012.5, 0.1 + 0.2]);
    expect(tableCells(formatTable(r))).toEqual(['123456789012.5', '-123456789012.5', '0.30000000000000004']);
    expect(csvCells(formatCsv(r))).toEqual(['123456789012.5', '-123456789012.5', '0.30000000000000004']);
  });

  it('are plain for 1e-6 <= |v| < 1e16 and in exponent form outside', () => {
    const cases: [number, string][] = [
      [0.000001, '0.000001'], [-0.0000015, '-0.0000015'], [1.5e-7, '1.5e-7'], [9.99e-7, '9.99e-7'],
      [5e-324, '5e-324'], [2.2250738585072014e-308, '2.2250738585072014e-308'],
      [9.5e15, '9500000000000000'], [2 ** 53, '9007199254740992'], [1e16, '1e+16'],
      [123456789012345680, '1.2345678901234568e+17'], [1e21, '1e+21'], [-1.7976931348623157e308, '-1.7976931348623157e+308'],
      [-0, '0'], [0, '0'], [42, '42'], [-7, '-7'], [2 ** 53 - 1, '9007199254740991'],
    ];
    const r = one('float', cases.map(([v]) => v));
    expect(tableCells(formatTable(r))).toEqual(cases.map(([, text]) => text));
    expect(csvCells(formatCsv(r))).toEqual(cases.map(([, text]) => text));
  });

  it('read back as the same double for random values of every magnitude', () => {
    const values = randomDoubles(SEED, 600);
    const r = one('float', values);
    for (const cells of [tableCells(formatTable(r)), csvCells(formatCsv(r))]) {
      expect(cells).toHaveLength(values.length);
      values.forEach((v, i) => {
        const cell = cells[i]!;
        const why = `seed ${SEED}: ${v} printed as ${cell}`;
        expect(Number(cell), why).toBe(v === 0 ? 0 : v);
        const plain = v === 0 || (Math.abs(v) >= 1e-6 && Math.abs(v) < 1e16);
        expect(/^-?\d+(\.\d+)?$/.test(cell), why).toBe(plain);
        if (!plain) expect(cell, why).toMatch(/^-?\d(\.\d+)?e[+-]\d+$/);
      });
    }
  });

  it('print non-finite floats and ints beyond 2^53 (strings in the API) as DuckDB does', () => {
    const floats = one('float', ['NaN', 'Infinity', '-Infinity', Number.NaN, 1.5]);
    expect(tableCells(formatTable(floats))).toEqual(['nan', 'inf', '-inf', 'nan', '1.5']);
    expect(csvCells(formatCsv(floats))).toEqual(['nan', 'inf', '-inf', 'nan', '1.5']);
    const ints = one('int', ['18014398509481984123', -5, 9007199254740991]);
    expect(tableCells(formatTable(ints))).toEqual(['18014398509481984123', '-5', '9007199254740991']);
    expect(csvCells(formatCsv(ints))).toEqual(['18014398509481984123', '-5', '9007199254740991']);
    // A string column keeps the text "NaN": only float cells are numbers in disguise.
    expect(tableCells(formatTable(one('string', ['NaN'])))).toEqual(['NaN']);
  });

  it('are right-aligned in the table', () => {
    const lines = formatTable(one('float', [1.5, 123456789012.5])).split('\n');
    expect(lines).toEqual(['v'.padStart(14), '-'.repeat(14), '1.5'.padStart(14), '123456789012.5']);
  });
});

describe('table alignment in display columns', () => {
  const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}';
  // Widths from Unicode (East Asian Width, emoji presentation, combining marks), as a terminal draws them.
  const known: [string, number][] = [
    ['東京', 4], ['🙂', 2], [family, 2], ['e\u0301te\u0301', 3], ['ｱｲｳ', 3], ['한국어', 6], ['ＡＢ', 4], ['ü', 1],
  ];

  it('puts every | at the same column, whatever the scripts', () => {
    const names = ['ascii', ...known.map(([text]) => text), 'tab\there', 'cr\r\nlf', 'esc\x1b[1m\u009b'];
    const r: ResultLike = {
      columns: [{ name: 'name', type: 'string' }, { name: 'n', type: 'int' }, { name: 'tail', type: 'string' }],
      rows: names.map((name, i) => [name, i * 1111, `${name}!`]),
    };
    const lines = formatTable(r).split('\n').map((line) => columnsOf(line, known));
    const widest = Math.max(...known.map(([, width]) => width), 'ascii'.length, 'tab here'.length, 'cr  lf'.length);
    expect(widest).toBe(8);
    const nWidth = String((names.length - 1) * 1111).length;
    const bars = (line: string) => [...line.matchAll(/[|+]/g)].map((m) => m.index);
    expect(bars(lines[0]!)).toEqual([widest + 1, widest + 1 + 1 + nWidth + 2]);
    for (const line of lines) expect(bars(line), line).toEqual(bars(lines[0]!));
    // Control characters became spaces, one for one, and nothing else moved.
    expect(lines).toContain(`tab here | ${String(9 * 1111).padStart(nWidth)} | tab here!`);
    expect(lines).toContain(`cr  lf   | ${String(10 * 1111).padStart(nWidth)} | cr  lf!`);
    // An escape sequence is shown, not obeyed: the terminal would have turned the text bold.
    expect(lines).toContain(`esc [1m  | ${String(11 * 1111).padStart(nWidth)} | esc [1m !`);
    expect(lines[3]).toBe(`XXXX     | ${'1111'.padStart(nWidth)} | XXXX!`); // 東京
  });

  it('cuts long text at 60 columns between graphemes, never inside one', () => {
    const cjk = '東京都大阪府京都府北海道'.repeat(10); // every character 2 columns wide
    const cases: { text: string; cell: string }[] = [
      { text: cjk, cell: [...cjk].slice(0, 29).join('') + '… ' }, // 58 + 1 for the ellipsis, 1 pad
      { text: 'a' + '東'.repeat(40), cell: 'a' + '東'.repeat(29) + '…' }, // exactly 60
      { text: family.repeat(40), cell: family.repeat(29) + '… ' },
      { text: 'e\u0301'.repeat(80), cell: 'e\u0301'.repeat(59) + '…' },
      { text: 'x'.repeat(100), cell: 'x'.repeat(59) + '…' },
      { text: '東'.repeat(30), cell: '東'.repeat(30) }, // 60 columns fit whole
    ];
    const r: ResultLike = {
      columns: [{ name: 'text', type: 'string' }, { name: 'k', type: 'int' }],
      rows: cases.map(({ text }, i) => [text, i]),
    };
    const lines = formatTable(r).split('\n');
    expect(lines[1]).toBe('-'.repeat(60) + '-+--');
    cases.forEach(({ cell }, i) => expect(lines[i + 2]).toBe(`${cell} | ${i}`));
  });

  it('shows NULL, sets and booleans', () => {
    const r: ResultLike = {
      columns: [{ name: 's', type: 'string' }, { name: 'f', type: 'float' }, { name: 't', type: 'time' }, { name: 'tags', type: 'set' }, { name: 'b', type: 'bool' }],
      rows: [[null, null, null, null, null], ['x', 2.5, 0, ['a', 'b'], true]],
    };
    const row = (cells: string[]) => [cells[0]!.padEnd(4), cells[1]!.padStart(4), cells[2]!.padEnd(20), cells[3]!.padEnd(6), cells[4]!].join(' | ');
    expect(formatTable(r).split('\n')).toEqual([
      row(['s', 'f', 't', 'tags', 'b']),
      '-----+------+----------------------+--------+-----',
      row(['NULL', 'NULL', 'NULL', 'NULL', 'NULL']),
      row(['x', '2.5', '1970-01-01T00:00:00Z', '[a, b]', 'true']),
    ]);
  });
});

describe('times', () => {
  // Unix seconds and their UTC instants, worked out from the calendar (2024-06-01 is day 19,875).
  const cases: [number, string][] = [
    [1_717_243_200, '2024-06-01T12:00:00Z'],
    [1_717_243_200.5, '2024-06-01T12:00:00.5Z'],
    [1_717_243_200.1, '2024-06-01T12:00:00.1Z'],
    [1_717_243_200.123456, '2024-06-01T12:00:00.123456Z'],
    [1_717_243_200.000001, '2024-06-01T12:00:00.000001Z'],
    [1_717_243_199.9999996, '2024-06-01T12:00:00Z'], // rounds up into the next second
    [0, '1970-01-01T00:00:00Z'],
    [-0.5, '1969-12-31T23:59:59.5Z'],
    [-2_208_988_800, '1900-01-01T00:00:00Z'],
    [7_258_118_400, '2200-01-01T00:00:00Z'],
    [951_782_400, '2000-02-29T00:00:00Z'],
  ];

  it('print as ISO-8601 UTC in CSV and table, with a fraction only when there is one', () => {
    const r = one('time', [...cases.map(([seconds]) => seconds), null]);
    expect(csvCells(formatCsv(r))).toEqual([...cases.map(([, iso]) => iso), '']);
    expect(tableCells(formatTable(r))).toEqual([...cases.map(([, iso]) => iso), 'NULL']);
  });

  it('agree with Date for random millisecond instants in 1900..2200', () => {
    const draw = mulberry32(SEED ^ 0x71e);
    const ms = Array.from({ length: 300 }, () => Math.floor(-2_208_988_800_000 + draw() * 9_467_107_200_000));
    const cells = csvCells(formatCsv(one('time', ms.map((m) => m / 1000))));
    ms.forEach((m, i) => {
      const [whole, millis] = new Date(m).toISOString().slice(0, -1).split('.');
      const fraction = millis!.replace(/0+$/, '');
      const iso = `${whole}${fraction === '' ? '' : '.' + fraction}Z`;
      expect(cells[i], `seed ${SEED}: ${m} ms`).toBe(iso);
    });
  });
});

describe('CSV', () => {
  it('quotes as RFC 4180 and tells NULL from the empty string', () => {
    const r: ResultLike = {
      columns: [{ name: 'a,b', type: 'string' }, { name: 'tags', type: 'set' }, { name: 'n', type: 'int' }],
      rows: [['say "hi", twice', ['x', 'y,z'], 1], ['', [], null], [null, null, null], ['two\nlines', ['q"'], -2]],
    };
    expect(formatCsv(r).split('\n')).toEqual([
      '"a,b",tags,n',
      '"say ""hi"", twice","[""x"",""y,z""]",1',
      '"",[],',
      ',,',
      '"two',
      'lines","[""q\\""""]",-2',
    ]);
  });

  it('reads back into DuckDB as the same values', async () => {
    const draw = mulberry32(SEED ^ 0xd0c);
    const floats: Cell[] = [...randomDoubles(SEED ^ 0xf10a7, 200), 'NaN', 'Infinity', '-Infinity', null, -0, 123456789012.5];
    const micros = floats.map(() => Math.floor(-2_208_988_800e6 + draw() * 9_467_107_200e6));
    const strings = floats.map((_, i) => (i % 7 === 0 ? null : i % 7 === 1 ? '' : `s${i}, "q" ${[...'東京🙂'].slice(0, i % 4).join('')}\n${i}`));
    const sets = floats.map((_, i) => (i % 5 === 0 ? null : Array.from({ length: i % 3 }, (_, k) => `t${k},${i}`)));
    const r: ResultLike = {
      columns: [{ name: 'f', type: 'float' }, { name: 'time', type: 'time' }, { name: 's', type: 'string' }, { name: 'tags', type: 'set' }, { name: 'b', type: 'bool' }],
      rows: floats.map((f, i) => [f, micros[i]! / 1e6, strings[i]!, sets[i]!, i % 4 === 0 ? null : i % 2 === 0]),
    };
    const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-format-'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      const file = join(dir, 'out.csv');
      await writeFile(file, formatCsv(r) + '\n');
      const reader = await connection.runAndReadAll(
        `SELECT f, epoch_us("time") AS us, s, tags, b FROM read_csv('${file}', header = true, allow_quoted_nulls = false, ` +
        `columns = {'f': 'DOUBLE', 'time': 'TIMESTAMPTZ', 's': 'VARCHAR', 'tags': 'VARCHAR', 'b': 'BOOLEAN'})`);
      const rows = reader.getRows();
      expect(rows).toHaveLength(floats.length);
      rows.forEach((row, i) => {
        const why = `seed ${SEED}, row ${i}: ${JSON.stringify(r.rows[i])}`;
        const f = floats[i]!;
        const expected = f === null ? null : typeof f === 'string' ? Number(f) : f === 0 ? 0 : f;
        expect(row[0], why).toBe(expected);
        expect(row[1], why).toBe(BigInt(micros[i]!));
        expect(row[2], why).toBe(strings[i]);
        const tags = sets[i]!;
        expect(row[3] === null ? null : JSON.parse(String(row[3])), why).toEqual(tags);
        expect(row[4], why).toBe(r.rows[i]![4]);
      });
      // Read without a declared type, DuckDB takes the column for the instant it is.
      const sniffed = await connection.runAndReadAll(`SELECT typeof("time") FROM read_csv('${file}') LIMIT 1`);
      expect(sniffed.getRows()[0]![0]).toBe('TIMESTAMP WITH TIME ZONE');
    } finally {
      connection.closeSync();
      instance.closeSync();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
