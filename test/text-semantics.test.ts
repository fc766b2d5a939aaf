/**
 * Text semantics against DuckDB: a character is a code point (LIKE's `_`, length()), and
 * lower/upper map one code point to one code point. The case test runs over every code point
 * and compares query/functions/text.ts with DuckDB's lower()/upper(); the only differences
 * allowed are the case pairs Unicode added after the version DuckDB 1.5 was built with (docs/sql.md
 * lists them). Queries run through an in-process leaf and DuckDB over the same rows.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codePointLength, lowerText, upperText } from '../query/functions/text.js';
import { compareResults } from './support/compare.js';
import { openDuckDb, type DuckDb } from './support/duckdb.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';
import { answerResult } from './support/shoal-client.js';

/**
 * Code points whose case mapping Unicode 16 and 17 added (Node's ICU maps them; DuckDB 1.5,
 * Unicode 15, leaves them as they are). Inclusive ranges.
 */
const NEWER_UNICODE_RANGES: readonly (readonly [number, number])[] = [
  [0x019b, 0x019b], [0x0264, 0x0264], // ƛ, ɤ gained uppercase letters (U+A7DC, U+A7CB)
  [0x1c89, 0x1c8a], // Cyrillic TJE
  [0xa7cb, 0xa7dc], // Latin additions
  [0x10d50, 0x10d85], // Garay
  [0x16ea0, 0x16ed3], // Beria Erfe
];
const inNewerUnicode = (cp: number) => NEWER_UNICODE_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi);

describe('lower / upper per code point, as DuckDB', () => {
  it('agree with DuckDB on every code point (but the listed newer Unicode additions)', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    // Code points DuckDB changes, with what it changes them to (one code point each).
    const reader = await connection.runAndReadAll(
      'SELECT i, unicode(upper(chr(i::INTEGER))), unicode(lower(chr(i::INTEGER))), length(upper(chr(i::INTEGER))), length(lower(chr(i::INTEGER))) ' +
      'FROM range(1, 1114112) t(i) WHERE (i < 55296 OR i > 57343) AND (upper(chr(i::INTEGER)) <> chr(i::INTEGER) OR lower(chr(i::INTEGER)) <> chr(i::INTEGER))');
    const duck = new Map<number, [number, number]>();
    for (const row of reader.getRows()) {
      const [cp, up, low, upLength, lowLength] = row.map(Number) as [number, number, number, number, number];
      expect(upLength === 1 && lowLength === 1, `DuckDB maps U+${cp.toString(16)} to one code point`).toBe(true);
      duck.set(cp, [up, low]);
    }
    connection.closeSync();
    instance.closeSync();
    expect(duck.size).toBeGreaterThan(2500);

    const differences: string[] = [];
    let checked = 0;
    for (let cp = 1; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      const [wantUpper, wantLower] = duck.get(cp) ?? [cp, cp];
      const gotUpper = upperText(ch);
      const gotLower = lowerText(ch);
      checked++;
      if (gotUpper === String.fromCodePoint(wantUpper) && gotLower === String.fromCodePoint(wantLower)) continue;
      if (inNewerUnicode(cp)) continue;
      differences.push(`U+${cp.toString(16).toUpperCase()} ${ch}: shoal upper ${gotUpper} lower ${gotLower}, duckdb upper ${String.fromCodePoint(wantUpper)} lower ${String.fromCodePoint(wantLower)}`);
    }
    expect(checked).toBe(0x110000 - 1 - 0x800);
    expect(differences.slice(0, 20)).toEqual([]);
  });
});

/** Rows with the hard cases: astral characters, combining marks, special casings. */
const WORDS = [
  '😀', '😀😀', 'a😀', 'e\u0301', '\u00e9', '🇺🇸', '👨‍👩‍👧', 'ß', 'straße', 'STRASSE', 'ẞ', 'İstanbul', 'ı', 'ΣΑΣ', 'σας', 'ς', 'Σ',
  'ǅ', 'ǆ', 'ǈ', 'ﬀ', 'ﬁne', 'ŉ', 'ა', 'Ა', 'Ꭰ', 'ꭰ', 'ᾳ', 'ᾼ', 'K', 'ſ', 'Ω', 'ǰ', 'Zürich', 'ZÜRICH', 'abc', 'ABC', '',
  'x\ny', '𝒜', '𐐀', '𐐨', 'ñ', 'n\u0303',
];
const EVENTS = WORDS.map((w, i) => ({ time: 1_700_000_000 + i, w, i }));

const QUERIES = [
  'SELECT i, length(w) AS n, lower(w) AS lo, upper(w) AS up FROM events ORDER BY i LIMIT 1000',
  'SELECT i, w LIKE \'_\' AS one, w LIKE \'__\' AS two, w LIKE \'a_\' AS a1, w ILIKE \'_\' AS ione FROM events ORDER BY i LIMIT 1000',
  "SELECT i FROM events WHERE w LIKE '%_😀' ORDER BY i LIMIT 1000",
  "SELECT i FROM events WHERE w LIKE 'x_y' ORDER BY i LIMIT 1000",
  "SELECT i, w ILIKE 'STRASSE' AS a, w ILIKE 'ẞ' AS b, w ILIKE 'ς' AS c, w ILIKE 'İSTANBUL' AS d, w ILIKE 'ǅ' AS e, w ILIKE 'k' AS f, w ILIKE 's' AS g, w ILIKE 'zürich' AS h FROM events ORDER BY i LIMIT 1000",
  "SELECT i FROM events WHERE w NOT ILIKE '%S%' ORDER BY i LIMIT 1000",
  'SELECT length(w) AS n, count(*) AS c FROM events GROUP BY 1 ORDER BY 1',
  'SELECT lower(w) AS lo, count(*) AS c FROM events GROUP BY 1 ORDER BY 1',
  'SELECT upper(w) AS up, count(*) AS c FROM events GROUP BY 1 ORDER BY 1',
  'SELECT max(length(w)) AS m, sum(length(upper(w))) AS s FROM events',
];

describe('LIKE, ILIKE, length, lower, upper through the engine, as DuckDB', () => {
  let leaf: Awaited<ReturnType<typeof inProcessLeaf>>;
  let duck: DuckDb;
  beforeAll(async () => {
    leaf = await inProcessLeaf();
    expect((await leaf.ingest('events', JSON.stringify(EVENTS))).status).toBe(200);
    duck = await openDuckDb(EVENTS);
  });
  afterAll(async () => { await leaf?.close(); await duck?.close(); });

  it('answers as DuckDB does', async () => {
    const problems: string[] = [];
    for (const sql of QUERIES) {
      const r = await leaf.query(sql);
      const got = answerResult({ status: r.status, body: r.json });
      if ('problem' in got) { problems.push(`${sql}: ${got.problem}`); continue; }
      const outcome = compareResults(got.result, await duck.query(sql), { ordered: true });
      if (!outcome.ok) problems.push(`${sql}\n${outcome.message}`);
    }
    expect(problems).toEqual([]);
  });

  it('counts code points without allocating, surrogate pairs as one', () => {
    for (const w of [...WORDS, '\ud800', 'a\udc00b', '\ud83d\ud83d\ude00']) expect(codePointLength(w), JSON.stringify(w)).toBe([...w].length);
  });
});
