/**
 * Seeded generator of Scuba-style events for the query-correctness harness.
 *
 * The same (seed, rowCount, nowSeconds) always gives the same events, so a failing corpus case can
 * be replayed from the seed the test prints. Events are plain JSON objects, exactly what a client
 * would POST to `/v1/tables/events/events`; the same objects are loaded into DuckDB as the
 * reference. The columns are chosen to exercise the storage and query paths: low/high cardinality
 * dictionaries, absent fields vs explicit nulls, a sparse column that appears only after the first
 * rows, string sets, unicode strings whose UTF-8 and UTF-16 orders differ, and time that is mostly
 * ascending (so time pruning of sealed blocks has something to prune) with a few late arrivals.
 *
 * Not here: loading into DuckDB (duckdb.ts) or shoal (shoal-client.ts).
 */

/** mulberry32: a tiny, fast 32-bit PRNG, good enough for test data (not for cryptography). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Convenience wrapper over mulberry32 with the draws the generator needs. */
export class Rng {
  readonly seed: number;
  private readonly next01: () => number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.next01 = mulberry32(this.seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.next01();
  }

  /** Uniform integer in [low, highExclusive). */
  int(low: number, highExclusive: number): number {
    return low + Math.floor(this.next01() * (highExclusive - low));
  }

  chance(probability: number): boolean {
    return this.next01() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next01() * items.length)] as T;
  }

  /** Standard normal (Box-Muller; one of the pair is dropped for simplicity). */
  normal(): number {
    const u1 = 1 - this.next01(); // (0, 1]: log(0) would be -Infinity
    const u2 = this.next01();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

/** A random seed for a test run (printed by the caller so the run can be replayed). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0xffffffff) >>> 0;
}

/** Picks from a fixed list by precomputed cumulative weights. */
class Weighted<T> {
  private readonly cumulative: number[] = [];
  private readonly total: number;

  constructor(readonly items: readonly T[], weights: readonly number[]) {
    let sum = 0;
    for (const weight of weights) {
      sum += weight;
      this.cumulative.push(sum);
    }
    this.total = sum;
  }

  draw(rng: Rng): T {
    const target = rng.next() * this.total;
    let low = 0;
    let high = this.cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.cumulative[mid] as number) > target) high = mid;
      else low = mid + 1;
    }
    return this.items[low] as T;
  }
}

/** Zipf-like weights 1/(k+1)^s: a few hot values and a long tail, like real dimensions. */
function zipfWeights(count: number, exponent: number): number[] {
  return Array.from({ length: count }, (_, k) => 1 / Math.pow(k + 1, exponent));
}

export const SERVICES = ['api', 'web', 'auth', 'search', 'billing'] as const;
const RESOURCES = ['users', 'orders', 'items', 'carts', 'payments', 'sessions', 'search', 'reports', 'settings', 'invoices', 'products', 'reviews'];
const ENDPOINT_PATTERNS = ['/api/v1/%s', '/api/v1/%s/:id', '/api/v2/%s', '/api/v2/%s/:id', '/internal/%s/_bulk'];
/** 60 endpoints, e.g. '/api/v1/users/:id'. */
export const ENDPOINTS: readonly string[] = ENDPOINT_PATTERNS.flatMap((p) => RESOURCES.map((r) => p.replace('%s', r)));
export const COUNTRIES = ['US', 'IN', 'BR', 'DE', 'GB', 'FR', 'JP', 'CA', 'MX', 'ID', 'NG', 'IT', 'ES', 'KR', 'AU', 'TR', 'PL', 'NL', 'AR', 'ZA', 'SE', 'CH', 'EG', 'VN', 'PH', 'TH', 'CO', 'KE', 'NO', 'NZ'] as const;
export const REGIONS = ['us-east', 'us-west', 'eu-central', 'eu-west', 'ap-south', 'ap-northeast', 'sa-east', 'af-south'] as const;
export const TAGS = ['mobile', 'desktop', 'beta', 'cached', 'retry', 'bot', 'internal', 'canary', 'ipv6', 'gzip', 'tls13', 'slow-path'] as const;
export const EXPERIMENTS = ['exp_a', 'exp_b', 'exp_c', 'control'] as const;
/**
 * Cities, including strings whose order differs between UTF-16 code units (JS `<`) and UTF-8
 * bytes / code points (DuckDB): '🌊 Atlantis' (U+1F30A, a surrogate pair 0xD83C.. in UTF-16)
 * sorts before 'ﾄｳｷｮｳ' (U+FF84) in JS but after it in DuckDB. "O'Fallon" needs quote escaping.
 */
export const CITIES = ['London', 'Paris', 'New York', 'Berlin', 'Mumbai', 'Lagos', 'Sydney', 'Toronto', 'Zürich', 'München', 'São Paulo', 'Kraków', 'Reykjavík', 'Москва', '東京', 'ﾄｳｷｮｳ', '🌊 Atlantis', "O'Fallon", 'Île-de-France', ''] as const;

const STATUS = new Weighted([200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504], [750, 40, 30, 10, 25, 25, 15, 10, 40, 10, 20, 10, 10, 5]);
const SERVICE = new Weighted(SERVICES, [40, 25, 15, 12, 8]);
const ENDPOINT = new Weighted(ENDPOINTS, zipfWeights(ENDPOINTS.length, 0.8));
const COUNTRY = new Weighted(COUNTRIES, zipfWeights(COUNTRIES.length, 1.0));
const REGION = new Weighted(REGIONS, [30, 20, 15, 12, 8, 7, 5, 3]);
const CITY = new Weighted(CITIES, [...zipfWeights(CITIES.length - 1, 0.6), 0.05]);

export const SECONDS_PER_DAY = 86_400;
/** The span of event times before `nowSeconds`. */
export const TIME_SPAN_SECONDS = 7 * SECONDS_PER_DAY;

export interface GenerateOptions {
  /** Events are spread over the 7 days before this (unix seconds); default: now rounded down to a minute. */
  nowSeconds?: number;
  /** 'mostly-ascending' (default): time grows with the row index, +-10 minutes of jitter, 0.5% late
   * arrivals from anywhere in the week. 'random': uniform over the week, in no order. */
  timeOrder?: 'mostly-ascending' | 'random';
}

/** A Scuba-style event. Optional fields are absent (not undefined) when missing. */
export interface Event {
  time: number;
  service: string;
  endpoint: string;
  country: string;
  user_id: string;
  region?: string | null;
  status: number;
  bytes: number;
  latency_ms: number;
  is_error: boolean;
  tags?: string[];
  city?: string;
  experiment?: string;
}

/** Column names and DuckDB types of generated events, in the order fields are first written. */
export const EVENT_SCHEMA: readonly { readonly name: string; readonly type: string }[] = [
  { name: 'time', type: 'TIMESTAMP' },
  { name: 'service', type: 'VARCHAR' },
  { name: 'endpoint', type: 'VARCHAR' },
  { name: 'country', type: 'VARCHAR' },
  { name: 'user_id', type: 'VARCHAR' },
  { name: 'region', type: 'VARCHAR' },
  { name: 'status', type: 'BIGINT' },
  { name: 'bytes', type: 'BIGINT' },
  { name: 'latency_ms', type: 'DOUBLE' },
  { name: 'is_error', type: 'BOOLEAN' },
  { name: 'tags', type: 'VARCHAR[]' },
  { name: 'city', type: 'VARCHAR' },
  { name: 'experiment', type: 'VARCHAR' },
];

export function defaultNowSeconds(): number {
  return Math.floor(Date.now() / 1000 / 60) * 60;
}

/** Bytes 0..10^7, skewed toward small responses. */
const BYTES_MAX = 10_000_000;
/** The first rows carry no `experiment` field at all, so the column appears mid-stream. */
const EXPERIMENT_FIRST_ROW_FRACTION = 0.1;

export function generateEvents(seed: number, rowCount: number, opts: GenerateOptions = {}): Event[] {
  const rng = new Rng(seed);
  const nowSeconds = opts.nowSeconds ?? defaultNowSeconds();
  const timeOrder = opts.timeOrder ?? 'mostly-ascending';
  const startSeconds = nowSeconds - TIME_SPAN_SECONDS;
  const experimentFirstRow = Math.floor(rowCount * EXPERIMENT_FIRST_ROW_FRACTION);
  const events: Event[] = new Array(rowCount);

  for (let rowIndex = 0; rowIndex < rowCount; rowIndex++) {
    let offsetSeconds: number;
    if (timeOrder === 'random' || rng.chance(0.005)) {
      offsetSeconds = rng.int(0, TIME_SPAN_SECONDS);
    } else {
      const base = Math.floor((TIME_SPAN_SECONDS * (rowIndex + rng.next())) / rowCount);
      offsetSeconds = Math.min(TIME_SPAN_SECONDS - 1, Math.max(0, base + rng.int(-600, 601)));
    }
    const time = startSeconds + offsetSeconds;
    const service = SERVICE.draw(rng);
    const endpoint = ENDPOINT.draw(rng);
    const country = COUNTRY.draw(rng);
    // 20% of events come from 500 heavy users; the rest spread over 60,000 ids (~50,000 distinct in 200k rows).
    const userId = `u${rng.chance(0.2) ? rng.int(0, 500) : rng.int(0, 60_000)}`;
    // region: ~10% absent, ~2% explicit null.
    const regionDraw = rng.next();
    const region = regionDraw < 0.1 ? undefined : regionDraw < 0.12 ? null : REGION.draw(rng);
    const status = STATUS.draw(rng);
    const bytes = Math.min(BYTES_MAX, Math.floor(Math.pow(rng.next(), 3) * (BYTES_MAX + 1)));
    const isError = status >= 500;
    const latencyMs = Math.exp(Math.log(40) + 0.9 * rng.normal()) * (isError ? 3 : 1);
    const tags = rng.chance(0.03) ? undefined : drawTags(rng);
    const city = rng.chance(0.03) ? undefined : CITY.draw(rng);
    const experiment = rowIndex >= experimentFirstRow && rng.chance(0.055) ? rng.pick(EXPERIMENTS) : undefined;

    // Keys in EVENT_SCHEMA order; absent fields are left out entirely (not undefined).
    const event = { time, service, endpoint, country, user_id: userId } as Event;
    if (region !== undefined) event.region = region;
    Object.assign(event, { status, bytes, latency_ms: Math.round(latencyMs * 1000) / 1000, is_error: isError });
    if (tags !== undefined) event.tags = tags;
    if (city !== undefined) event.city = city;
    if (experiment !== undefined) event.experiment = experiment;
    events[rowIndex] = event;
  }
  return events;
}

/** 0-4 distinct tags, sorted, so any canonical set order a store picks compares equal. */
function drawTags(rng: Rng): string[] {
  const count = rng.int(0, 5);
  const chosen = new Set<string>();
  while (chosen.size < count) chosen.add(rng.pick(TAGS));
  return [...chosen].sort();
}

/** The seed the corpus tests use unless SHOAL_CORPUS_SEED says otherwise. */
export const CORPUS_SEED_DEFAULT = 20_240_601;
export const CORPUS_ROWS_DEFAULT = 200_000;

export interface DataConfig { readonly seed: number; readonly rowCount: number; readonly nowSeconds: number }

/**
 * The data set of a corpus run: seed, row count and `nowSeconds`, from SHOAL_CORPUS_SEED,
 * SHOAL_CORPUS_ROWS and SHOAL_CORPUS_NOW when set (to replay a printed run), else the defaults
 * and the current minute.
 */
export function corpusDataConfig(env: NodeJS.ProcessEnv = process.env): DataConfig {
  const number = (name: string, fallback: number) => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
    return value;
  };
  return {
    seed: number('SHOAL_CORPUS_SEED', CORPUS_SEED_DEFAULT),
    rowCount: number('SHOAL_CORPUS_ROWS', CORPUS_ROWS_DEFAULT),
    nowSeconds: number('SHOAL_CORPUS_NOW', defaultNowSeconds()),
  };
}

/** How to replay a run, for logs and failure messages. */
export function describeDataConfig(config: DataConfig): string {
  return `SHOAL_CORPUS_SEED=${config.seed} SHOAL_CORPUS_ROWS=${config.rowCount} SHOAL_CORPUS_NOW=${config.nowSeconds}`;
}
