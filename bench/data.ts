/**
 * Seeded Scuba-style events for the benchmarks, generated column-wise (typed arrays, ~1 s per 10M
 * rows) and then rendered as the request bodies a client would send (NDJSON or a JSON array) and
 * as a CSV file for DuckDB. The same (seed, rowCount, endSeconds) always gives the same rows.
 *
 * Columns: `time` (unix seconds over the 7 days before endSeconds, mostly ascending as events
 * arrive, +-5 minutes of jitter and 0.5% late arrivals from any earlier time in the week, so a
 * block's min/max time stays narrow at its upper end as real streams are), `service` (5
 * values, skewed), `endpoint` (60, Zipf 0.8), `user_id` (100,000 ids, index = 10^5 * u^2, so a
 * few heavy users and a long tail; nearly all appear in 10M rows), `country` (30, Zipf 1.0),
 * `status` (14 HTTP codes, 75% 200), `latency_ms` (log-normal around 40 ms, x3 for 5xx, 3
 * decimals), `bytes` (0..10^7, skewed small), `tags` (a string set of 0-8 of 8 tags, each with
 * probability 1/4; absent in ~3% of rows).
 *
 * This is not test/support/gen.ts: that one builds objects with nulls, unicode and a late column
 * for correctness; this one must make 10M rows quickly and identically for two engines.
 */
import fs from 'node:fs';

export const SERVICES = ['api', 'web', 'auth', 'search', 'billing'] as const;
const SERVICE_WEIGHTS = [40, 25, 15, 12, 8];
const RESOURCES = ['users', 'orders', 'items', 'carts', 'payments', 'sessions', 'search', 'reports', 'settings', 'invoices', 'products', 'reviews'];
const ENDPOINT_PATTERNS = ['/api/v1/%s', '/api/v1/%s/:id', '/api/v2/%s', '/api/v2/%s/:id', '/internal/%s/_bulk'];
export const ENDPOINTS: readonly string[] = ENDPOINT_PATTERNS.flatMap((p) => RESOURCES.map((r) => p.replace('%s', r)));
export const COUNTRIES = ['US', 'IN', 'BR', 'DE', 'GB', 'FR', 'JP', 'CA', 'MX', 'ID', 'NG', 'IT', 'ES', 'KR', 'AU', 'TR', 'PL', 'NL', 'AR', 'ZA', 'SE', 'CH', 'EG', 'VN', 'PH', 'TH', 'CO', 'KE', 'NO', 'NZ'] as const;
const STATUS_CODES = [200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504];
const STATUS_WEIGHTS = [750, 40, 30, 10, 25, 25, 15, 10, 40, 10, 20, 10, 10, 5];
/** Sorted, so a set renders in the same order everywhere. */
export const TAGS = ['beta', 'bot', 'cached', 'canary', 'desktop', 'gzip', 'mobile', 'retry'] as const;
export const USER_COUNT = 100_000;
export const SPAN_SECONDS = 7 * 86_400;
const JITTER_SECONDS = 300;
const LATE_ARRIVAL_FRACTION = 0.005;
const TAGS_ABSENT_FRACTION = 0.03;
const BYTES_MAX = 10_000_000;
/** Codes stored in `tags` for a row without the field. */
export const TAGS_ABSENT = -1;

/**
 * Which values the string columns take. `scuba` (the default): 60 endpoints, 100,000 users.
 * `web`: `endpoint` is a URL path of 200,000 (Zipf 1.1: a few hot pages, a long tail seen a few
 * times each) and `user_id` one of 1,000,000 (index = 10^6 * u^3: heavier skew). The other
 * columns are drawn the same way.
 */
export type DataShape = 'scuba' | 'web';
export const WEB_URL_COUNT = 200_000;
export const WEB_USER_COUNT = 1_000_000;

/** The values of `endpoint` and how many users a shape has. */
export interface ShapeValues { readonly shape: DataShape; readonly endpoints: readonly string[]; readonly userCount: number }

let webUrls: string[] | null = null;
export function shapeValues(shape: DataShape): ShapeValues {
  if (shape === 'scuba') return { shape, endpoints: ENDPOINTS, userCount: USER_COUNT };
  // Paths of a shop: a section, an item id and a slug; deterministic from the index.
  webUrls ??= Array.from({ length: WEB_URL_COUNT }, (_, k) => `/${['p', 'c', 'search', 'cart', 'blog'][k % 5]}/${(k * 2654435761) % 1000003}/item-${k.toString(36)}`);
  return { shape, endpoints: webUrls, userCount: WEB_USER_COUNT };
}

export interface EventColumns {
  readonly rowCount: number;
  readonly endSeconds: number;
  readonly values: ShapeValues;
  readonly time: Int32Array;
  readonly service: Uint8Array;
  readonly endpoint: Uint8Array | Int32Array;
  readonly user: Int32Array;
  readonly country: Uint8Array;
  readonly status: Uint16Array;
  /** latency_ms x 1000: the value is latencyMillis / 1000, written with up to 3 decimals. */
  readonly latencyMillis: Int32Array;
  readonly bytes: Int32Array;
  /** Bit i set = TAGS[i] present; TAGS_ABSENT = no `tags` field. */
  readonly tags: Int16Array;
}

/**
 * A weighted draw as a 65,536-entry lookup table indexed by the top 16 bits of a random word:
 * one load per draw. Weights are quantised to 1/65,536, which no benchmark can see.
 */
function drawTable(weights: readonly number[]): Uint8Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const table = new Uint8Array(65_536);
  let at = 0;
  let cumulative = 0;
  weights.forEach((w, i) => {
    cumulative += w;
    const end = i === weights.length - 1 ? 65_536 : Math.round((cumulative / total) * 65_536);
    table.fill(i, at, end);
    at = end;
  });
  return table;
}

const zipf = (count: number, s: number) => Array.from({ length: count }, (_, k) => 1 / Math.pow(k + 1, s));

/** Inverse CDF over many weights (more than drawTable's 65,536 slots can tell apart). */
function cumulative(weights: readonly number[]): Float64Array {
  const c = new Float64Array(weights.length);
  let total = 0;
  weights.forEach((w, i) => { total += w; c[i] = total; });
  for (let i = 0; i < c.length; i++) c[i]! /= total;
  return c;
}
function drawCumulative(c: Float64Array, u: number): number {
  let lo = 0; let hi = c.length - 1;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (c[mid]! < u) lo = mid + 1; else hi = mid; }
  return lo;
}

export function generateColumns(seed: number, rowCount: number, endSeconds: number, shape: DataShape = 'scuba'): EventColumns {
  const values = shapeValues(shape);
  // mulberry32, inlined: this loop makes ~12 draws per row.
  let state = seed >>> 0;
  const next32 = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next01 = () => next32() / 4294967296;
  const serviceTable = drawTable(SERVICE_WEIGHTS);
  const endpointTable = drawTable(zipf(ENDPOINTS.length, 0.8));
  const urlCdf = shape === 'web' ? cumulative(zipf(WEB_URL_COUNT, 1.1)) : null;
  const countryTable = drawTable(zipf(COUNTRIES.length, 1.0));
  const statusTable = drawTable(STATUS_WEIGHTS);
  const cols: EventColumns = {
    rowCount,
    endSeconds,
    values,
    time: new Int32Array(rowCount),
    service: new Uint8Array(rowCount),
    endpoint: urlCdf === null ? new Uint8Array(rowCount) : new Int32Array(rowCount),
    user: new Int32Array(rowCount),
    country: new Uint8Array(rowCount),
    status: new Uint16Array(rowCount),
    latencyMillis: new Int32Array(rowCount),
    bytes: new Int32Array(rowCount),
    tags: new Int16Array(rowCount),
  };
  const start = endSeconds - SPAN_SECONDS;
  const logMedian = Math.log(40);
  for (let i = 0; i < rowCount; i++) {
    // Where the row arrives in the stream, as seconds into the week.
    const arrival = Math.floor((SPAN_SECONDS * (i + next01())) / rowCount);
    let offset: number;
    // A late arrival happened earlier than it arrives, at any time since the week began.
    if (next01() < LATE_ARRIVAL_FRACTION) offset = Math.floor(next01() * arrival);
    else offset = Math.min(SPAN_SECONDS - 1, Math.max(0, arrival + Math.floor(next01() * (2 * JITTER_SECONDS + 1)) - JITTER_SECONDS));
    cols.time[i] = start + offset;
    cols.service[i] = serviceTable[next32() >>> 16]!;
    cols.endpoint[i] = urlCdf === null ? endpointTable[next32() >>> 16]! : drawCumulative(urlCdf, next01());
    cols.country[i] = countryTable[next32() >>> 16]!;
    const u = next01();
    cols.user[i] = urlCdf === null ? Math.floor(USER_COUNT * u * u) : Math.floor(WEB_USER_COUNT * u * u * u);
    const status = STATUS_CODES[statusTable[next32() >>> 16]!]!;
    cols.status[i] = status;
    // Box-Muller; 1 - u keeps log() away from 0.
    const z = Math.sqrt(-2 * Math.log(1 - next01())) * Math.cos(2 * Math.PI * next01());
    cols.latencyMillis[i] = Math.round(Math.exp(logMedian + 0.9 * z) * (status >= 500 ? 3 : 1) * 1000);
    const b = next01();
    cols.bytes[i] = Math.floor(b * b * b * BYTES_MAX);
    const t = next32();
    cols.tags[i] = (t >>> 24) / 256 < TAGS_ABSENT_FRACTION ? TAGS_ABSENT : (t & 0xff) & ((t >>> 8) & 0xff);
  }
  return cols;
}

/**
 * Renders rows straight into bytes: pre-encoded fragments for every dictionary value and digit
 * loops for the numbers. Building the same text with template strings costs ~4 us a row, which
 * at 10M rows makes the benchmark wait longer for its data than for its answers.
 */
class ByteWriter {
  buf: Buffer;
  pos = 0;
  private readonly digits = new Uint8Array(24);
  constructor(capacityBytes: number) { this.buf = Buffer.allocUnsafe(capacityBytes); }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  byte(c: number): void { this.buf[this.pos++] = c; }

  /** A non-negative integer, in decimal. */
  uint(n: number): void {
    let k = 0;
    do { this.digits[k++] = 48 + (n % 10); n = Math.floor(n / 10); } while (n > 0);
    while (k > 0) this.buf[this.pos++] = this.digits[--k]!;
  }

  /** millis / 1000 with up to 3 decimals and no trailing zeros: the shortest text of that double. */
  millis(m: number): void {
    this.uint(Math.floor(m / 1000));
    let frac = m % 1000;
    if (frac === 0) return;
    this.byte(46); // '.'
    let width = 3;
    while (frac % 10 === 0) { frac /= 10; width--; }
    const digits = String(frac).padStart(width, '0');
    for (let i = 0; i < digits.length; i++) this.byte(digits.charCodeAt(i));
  }

  /** A copy of exactly the bytes written. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
/** Upper bound of one rendered row (the longest endpoint and all 8 tags come to ~230). */
const ROW_BYTES_MAX = 320;

interface Fragments {
  time: Uint8Array;
  service: Uint8Array[];
  endpoint: Uint8Array[];
  user: Uint8Array[];
  country: Uint8Array[];
  status: Uint8Array;
  latency: Uint8Array;
  bytes: Uint8Array;
  tags: Uint8Array[];
  end: Uint8Array;
}

let jsonFragments: Fragments | null = null;
let jsonShape: DataShape | null = null;
function fragmentsJson(values: ShapeValues): Fragments {
  if (jsonFragments === null || jsonShape !== values.shape) {
    jsonShape = values.shape;
    const tagList = (mask: number) => TAGS.filter((_, bit) => (mask >> bit) & 1).map((t) => `"${t}"`).join(',');
    jsonFragments = {
      time: enc('{"time":'),
      service: SERVICES.map((s) => enc(`,"service":"${s}"`)),
      endpoint: values.endpoints.map((e) => enc(`,"endpoint":"${e}"`)),
      user: Array.from({ length: values.userCount }, (_, u) => enc(`,"user_id":"u${u}"`)),
      country: COUNTRIES.map((c) => enc(`,"country":"${c}"`)),
      status: enc(',"status":'),
      latency: enc(',"latency_ms":'),
      bytes: enc(',"bytes":'),
      tags: Array.from({ length: 256 }, (_, m) => enc(`,"tags":[${tagList(m)}]}`)),
      end: enc('}'),
    };
  }
  return jsonFragments;
}

/** Row i as one JSON object, without a separator. */
function jsonRow(w: ByteWriter, c: EventColumns, f: Fragments, i: number): void {
  w.bytes(f.time); w.uint(c.time[i]!);
  w.bytes(f.service[c.service[i]!]!);
  w.bytes(f.endpoint[c.endpoint[i]!]!);
  w.bytes(f.user[c.user[i]!]!);
  w.bytes(f.country[c.country[i]!]!);
  w.bytes(f.status); w.uint(c.status[i]!);
  w.bytes(f.latency); w.millis(c.latencyMillis[i]!);
  w.bytes(f.bytes); w.uint(c.bytes[i]!);
  const tags = c.tags[i]!;
  w.bytes(tags === TAGS_ABSENT ? f.end : f.tags[tags]!);
}

export type BodyFormat = 'ndjson' | 'json';

export const CONTENT_TYPE: Record<BodyFormat, string> = { ndjson: 'application/x-ndjson', json: 'application/json' };

/**
 * Request bodies of `batchRows` rows each (the last may be shorter) covering rows [from, to):
 * NDJSON (one object per line) or a JSON array.
 */
export function renderBodies(c: EventColumns, format: BodyFormat, batchRows: number, from = 0, to = c.rowCount): Buffer[] {
  const f = fragmentsJson(c.values);
  const bodies: Buffer[] = [];
  const w = new ByteWriter(Math.min(batchRows, to - from) * ROW_BYTES_MAX + 2);
  for (let start = from; start < to; start += batchRows) {
    const end = Math.min(to, start + batchRows);
    w.pos = 0;
    if (format === 'json') w.byte(91); // '['
    for (let i = start; i < end; i++) {
      if (format === 'json' && i > start) w.byte(44); // ','
      jsonRow(w, c, f, i);
      if (format === 'ndjson') w.byte(10);
    }
    if (format === 'json') w.byte(93); // ']'
    bodies.push(w.take());
  }
  return bodies;
}

/** The CSV header, in the column order of writeCsv. */
export const CSV_COLUMNS = ['time', 'service', 'endpoint', 'user_id', 'country', 'status', 'latency_ms', 'bytes', 'tags'] as const;
/** How an empty tag set is written in the CSV (an empty field is NULL). */
export const CSV_EMPTY_SET = '~';
const CSV_ROWS_PER_WRITE = 100_000;

/**
 * Writes the rows as CSV: `tags` as `a|b`, CSV_EMPTY_SET for an empty set, an empty field when
 * absent (NULL). No value needs quoting. Returns the bytes written.
 */
export function writeCsv(c: EventColumns, file: string): number {
  const service = SERVICES.map((s) => enc(`,${s}`));
  const endpoint = c.values.endpoints.map((e) => enc(`,${e}`));
  const user = Array.from({ length: c.values.userCount }, (_, u) => enc(`,u${u}`));
  const country = COUNTRIES.map((x) => enc(`,${x}`));
  const tagText = Array.from({ length: 256 }, (_, m) => enc(',' + (TAGS.filter((_, bit) => (m >> bit) & 1).join('|') || CSV_EMPTY_SET) + '\n'));
  const noTags = enc(',\n');
  const fd = fs.openSync(file, 'w');
  let written = 0;
  const w = new ByteWriter(CSV_ROWS_PER_WRITE * ROW_BYTES_MAX);
  try {
    written += fs.writeSync(fd, CSV_COLUMNS.join(',') + '\n');
    for (let start = 0; start < c.rowCount; start += CSV_ROWS_PER_WRITE) {
      const end = Math.min(c.rowCount, start + CSV_ROWS_PER_WRITE);
      w.pos = 0;
      for (let i = start; i < end; i++) {
        w.uint(c.time[i]!);
        w.bytes(service[c.service[i]!]!);
        w.bytes(endpoint[c.endpoint[i]!]!);
        w.bytes(user[c.user[i]!]!);
        w.bytes(country[c.country[i]!]!);
        w.byte(44); w.uint(c.status[i]!);
        w.byte(44); w.millis(c.latencyMillis[i]!);
        w.byte(44); w.uint(c.bytes[i]!);
        const tags = c.tags[i]!;
        w.bytes(tags === TAGS_ABSENT ? noTags : tagText[tags]!);
      }
      let at = 0;
      while (at < w.pos) at += fs.writeSync(fd, w.buf, at, w.pos - at);
      written += w.pos;
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** Sum of `bytes` over rows [from, to): a cheap exact check of what a leaf stored. */
export function sumBytes(c: EventColumns, from = 0, to = c.rowCount): number {
  let s = 0;
  for (let i = from; i < to; i++) s += c.bytes[i]!;
  return s;
}
