/**
 * Seeded wide events for the ingest benchmark: 26 fields, ~646 bytes of NDJSON per event, the
 * shape of a Honeycomb-style "wide event" (one row per request with everything known about it),
 * where data.ts makes Scuba's narrow 9-field rows. Rendered straight into request bodies.
 *
 * Fields: `time`, `service` (5), `endpoint` (60), `method` (5), `status` (14 codes), `latency_ms`
 * (float), `bytes` (int: the checked sum), `user_id` (100,000), `country` (30), `region` (8),
 * `zone` (24), `host` (500), `pod` (2,000), `version` (20), `trace_id` (32 hex digits, unique per
 * event), `span_id` (16 hex, unique), `user_agent` (40 values, ~60 characters), `referrer` (200),
 * `request_bytes` (int), `db_ms` (float), `db_queries` (int), `cache_hit` (bool), `retries`
 * (int), `flags` (a string set of 0-4 of 16), `build` (12 hex digits, 50 values) and `error`
 * (a string in 5% of the events, null otherwise). Two unique ids per event make the string
 * dictionaries grow as fast as they can: the hard case for dictionary encoding.
 *
 * Not data.ts: that one is column-wise and shared with DuckDB runs; this one only feeds ingest.
 */
import { COUNTRIES, ENDPOINTS, SERVICES, SPAN_SECONDS, type BodyFormat } from './data.js';

const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH'];
const STATUS = [200, 200, 200, 200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500];
const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'ap-northeast-1', 'sa-east-1', 'ca-central-1'];
const FLAGS = ['new-checkout', 'dark-mode', 'search-v2', 'fast-cart', 'beta-api', 'grpc', 'http3', 'edge-cache',
  'rec-v3', 'ml-rank', 'promo', 'geo-route', 'tls13', 'brotli', 'prefetch', 'shadow'];
const AGENTS = Array.from({ length: 40 }, (_, k) => `Mozilla/5.0 (${['Windows NT 10.0; Win64', 'Macintosh; Mac OS X 14', 'X11; Linux x86_64', 'iPhone; iOS 17_4'][k % 4]}) Chrome/${110 + k}.0.${5000 + k * 13}.${k * 7}`);
const REFERRERS = Array.from({ length: 200 }, (_, k) => `https://${['www.google.com', 'news.example.org', 'shop.example.com', 't.co', 'www.bing.com'][k % 5]}/article/${(k * 7919) % 10007}`);
const HEX = '0123456789abcdef';
const ERRORS = ['TimeoutError: upstream did not answer within 2000 ms', 'ConnectionReset: peer closed the connection', 'ValidationError: field "qty" must be positive', 'RateLimited: 429 from payments'];

/** mulberry32: the same seed always gives the same events. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function hex(next: () => number, digits: number): string {
  let s = '';
  while (s.length < digits) { let w = next(); for (let k = 0; k < 8 && s.length < digits; k++) { s += HEX[w & 15]; w >>>= 4; } }
  return s;
}

export interface WideBodies {
  readonly bodies: Buffer[];
  /** Sum of `bytes` over the rows rendered (the bench's check). */
  readonly bytesSum: number;
}

/**
 * Renders `rowCount` wide events in bodies of `batchRows`; the warm-up bodies (the first
 * `warmRows` rows) and the timed ones come from one seeded stream, so both halves together are
 * the same rows whatever the batch size.
 */
export function renderWideBodies(seed: number, format: BodyFormat, batchRows: number, rowCount: number, warmRows: number, endSeconds: number): { warm: WideBodies; timed: WideBodies } {
  const next = prng(seed ^ 0x5eed);
  const u01 = () => next() / 4294967296;
  const builds = Array.from({ length: 50 }, () => hex(next, 12));
  const hosts = Array.from({ length: 500 }, (_, k) => `ip-10-${k >> 8}-${k & 255}-${(k * 37) % 250}.cluster.internal`);
  const pods = Array.from({ length: 2_000 }, (_, k) => `${SERVICES[k % 5]}-${hex(next, 6)}-${hex(next, 5)}`);
  const start = endSeconds - SPAN_SECONDS;
  const out = { warm: { bodies: [] as Buffer[], bytesSum: 0 }, timed: { bodies: [] as Buffer[], bytesSum: 0 } };
  let lines: string[] = [];
  let lineOf: 'warm' | 'timed' = 'warm';
  const flush = () => {
    if (lines.length === 0) return;
    out[lineOf].bodies.push(Buffer.from(format === 'json' ? `[${lines.join(',')}]` : lines.join('\n') + '\n'));
    lines = [];
  };
  for (let i = 0; i < rowCount; i++) {
    const half = i < warmRows ? 'warm' : 'timed';
    if (half !== lineOf || lines.length === batchRows) { flush(); lineOf = half; }
    const status = STATUS[next() % STATUS.length]!;
    const region = next() % REGIONS.length;
    const bytes = Math.floor(u01() ** 3 * 10_000_000);
    out[half].bytesSum += bytes;
    const u = u01();
    const flagMask = next() & next() & next() & 0xffff;
    const flags = FLAGS.filter((_, bit) => (flagMask >> bit) & 1).slice(0, 4);
    const ev: Record<string, unknown> = {
      time: start + Math.floor((SPAN_SECONDS * i) / rowCount),
      service: SERVICES[next() % SERVICES.length],
      endpoint: ENDPOINTS[Math.floor(ENDPOINTS.length * u01() ** 2)],
      method: METHODS[next() % METHODS.length],
      status,
      latency_ms: Math.round(Math.exp(Math.log(40) + 0.9 * (u01() * 2 - 1)) * (status >= 500 ? 3 : 1) * 1000) / 1000,
      bytes,
      user_id: `u${Math.floor(100_000 * u * u)}`,
      country: COUNTRIES[Math.floor(COUNTRIES.length * u01() ** 2)],
      region: REGIONS[region],
      zone: `${REGIONS[region]}${'abc'[next() % 3]}`,
      host: hosts[next() % hosts.length],
      pod: pods[next() % pods.length],
      version: `v2.${next() % 20}.${next() % 10}`,
      trace_id: hex(next, 32),
      span_id: hex(next, 16),
      user_agent: AGENTS[next() % AGENTS.length],
      referrer: REFERRERS[next() % REFERRERS.length],
      request_bytes: next() % 65_536,
      db_ms: Math.round(u01() * 50_000) / 1000,
      db_queries: next() % 40,
      cache_hit: (next() & 1) === 1,
      retries: (next() % 16) === 0 ? 1 + (next() % 3) : 0,
      flags,
      build: builds[next() % builds.length],
      error: next() % 20 === 0 ? ERRORS[next() % ERRORS.length] : null,
    };
    lines.push(JSON.stringify(ev));
  }
  flush();
  return out;
}
