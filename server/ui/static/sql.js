// The query builder's SQL: from the page's state (a plain object, url-state.js) to the exact text
// sent to POST /v1/query. Only SQL that shoal supports (docs/sql.md): time ranges as
// `time >= now() - INTERVAL '...'` or ISO-8601 literals, time_bucket for series, count/sum/avg/
// min/max/pNN/approx_count_distinct, `SELECT * ... ORDER BY time DESC LIMIT n` for samples.
//
// Pure functions, no DOM: the page imports it, and test/ui.test.ts imports it in Node and checks
// every shape it can build against the real planner.
//
// Not here: reading or drawing anything (controls.js, render.js, chart.js).

/** Time range presets: key -> seconds back from now() (docs/ui.md). `all` has no time filter. */
export const RANGES = Object.freeze({
  '15m': { label: 'last 15 minutes', seconds: 15 * 60 },
  '1h': { label: 'last hour', seconds: 3600 },
  '6h': { label: 'last 6 hours', seconds: 6 * 3600 },
  '1d': { label: 'last day', seconds: 86_400 },
  '7d': { label: 'last 7 days', seconds: 7 * 86_400 },
});

/** Compare periods: the same query shifted back by this much, drawn dashed. */
export const COMPARES = Object.freeze({
  '1h': { label: '1 hour before', seconds: 3600 },
  '1d': { label: '1 day before', seconds: 86_400 },
  '1w': { label: '1 week before', seconds: 7 * 86_400 },
});

/** Fixed granularities, finest first. Every one divides a day, so buckets align on the epoch
 * (time_bucket's origin is a Monday midnight, docs/sql.md) and the UI can fill a grid. */
export const GRANULARITIES = Object.freeze([
  ['1s', 1], ['5s', 5], ['10s', 10], ['30s', 30], ['1m', 60], ['5m', 300], ['10m', 600], ['15m', 900],
  ['30m', 1800], ['1h', 3600], ['3h', 10_800], ['6h', 21_600], ['12h', 43_200], ['1d', 86_400],
].map(([key, seconds]) => Object.freeze({ key, seconds })));

/** Auto granularity: the finest bucket that keeps a series at or under this many points. */
export const AUTO_POINTS_MAX = 100;

/** Rows a time series query may return (query/limits.ts resultRowsMax: a LIMIT above it is an error). */
export const SERIES_ROWS_MAX = 100_000;

/** Aggregates the builder offers; `columns` says which column types each takes. */
export const METRIC_FNS = Object.freeze([
  { fn: 'count', columns: 'none', additive: true },
  { fn: 'sum', columns: 'numeric', additive: true },
  { fn: 'avg', columns: 'numeric', additive: false },
  { fn: 'min', columns: 'ordered', additive: false },
  { fn: 'max', columns: 'ordered', additive: false },
  { fn: 'p50', columns: 'numeric', additive: false },
  { fn: 'p90', columns: 'numeric', additive: false },
  { fn: 'p99', columns: 'numeric', additive: false },
  { fn: 'approx_count_distinct', columns: 'distinct', additive: false },
]);

/** Filter operators; `value` says what the chip's value is. */
export const FILTER_OPS = Object.freeze([
  { op: '=', value: 'one' }, { op: '!=', value: 'one' },
  { op: '<', value: 'one' }, { op: '<=', value: 'one' }, { op: '>', value: 'one' }, { op: '>=', value: 'one' },
  { op: 'IN', value: 'list' }, { op: 'NOT IN', value: 'list' },
  { op: 'LIKE', value: 'text' }, { op: 'NOT LIKE', value: 'text' },
  { op: 'IS NULL', value: 'none' }, { op: 'IS NOT NULL', value: 'none' },
  { op: 'contains', value: 'text' },
]);

/** IN-list items a chip may hold (query/limits.ts allows 10,000; a chip is typed by hand). */
export const IN_ITEMS_MAX = 1000;

/**
 * Words that must be double-quoted as names: the lexer's keywords (query/sql/lexer.ts KEYWORDS,
 * test/ui.test.ts keeps this a superset) and the bare words that mean a value.
 */
export const RESERVED = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'ORDER', 'LIMIT', 'OFFSET',
  'AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE', 'IS', 'NULL', 'BETWEEN', 'TRUE', 'FALSE',
  'AS', 'ASC', 'DESC', 'DISTINCT', 'CASE', 'JOIN', 'UNION', 'INTERSECT', 'EXCEPT', 'WITH',
  'INTERVAL', 'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'WHEN', 'THEN', 'ELSE', 'END', 'ON', 'QUALIFY', 'CAST',
  'OVER', 'PARTITION', 'WINDOW', 'FILTER',
]);

export class BuildError extends Error {}

const NUMERIC = new Set(['int', 'float']);
/** A column's type as the aggregator reports it: leaves that disagree give `int|float`. */
export const isNumeric = (type) => typeof type === 'string' && type.split('|').every((t) => NUMERIC.has(t));

/** Column types a metric function takes. */
export function metricTakes(fn, type) {
  const spec = METRIC_FNS.find((m) => m.fn === fn);
  if (spec === undefined) return false;
  switch (spec.columns) {
    case 'none': return false;
    case 'numeric': return isNumeric(type);
    case 'ordered': return isNumeric(type) || type === 'string' || type === 'time';
    case 'distinct': return isNumeric(type) || type === 'string' || type === 'bool';
    default: return false;
  }
}

/** Columns one may group by: everything but string sets, floats and the time (which is the x axis). */
export const groupable = (name, type) => name !== 'time' && (type === 'string' || type === 'int' || type === 'bool');

/** Filter operators for a column type. */
export function opsFor(type) {
  if (type === 'set') return ['contains', 'IS NULL', 'IS NOT NULL'];
  if (type === 'bool') return ['=', '!=', 'IS NULL', 'IS NOT NULL'];
  if (type === 'string') return ['=', '!=', 'IN', 'NOT IN', 'LIKE', 'NOT LIKE', '<', '<=', '>', '>=', 'IS NULL', 'IS NOT NULL'];
  return ['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOT IN', 'IS NULL', 'IS NOT NULL'];
}

export function quoteIdent(name) {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !RESERVED.has(name.toUpperCase())) return name;
  return `"${name.replaceAll('"', '""')}"`;
}

export const quoteString = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** A literal of a filter value (a number, string or boolean as the chip holds it). */
export function literal(v) {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new BuildError(`${v} is not a finite number`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') return quoteString(v);
  throw new BuildError(`cannot write ${JSON.stringify(v)} as a SQL literal`);
}

/**
 * A chip's value from what was typed, for a column of `type`: numbers for numeric columns (an
 * error when it is not one), `true`/`false` for booleans, text otherwise; a list for IN
 * (comma-separated). A time takes unix seconds or ISO-8601 text (the server parses the text).
 */
export function parseFilterValue(op, text, type) {
  const spec = FILTER_OPS.find((o) => o.op === op);
  if (spec === undefined) throw new BuildError(`unknown operator ${op}`);
  if (spec.value === 'none') return null;
  const one = (raw) => {
    const s = raw.trim();
    if (spec.value === 'text') return raw;
    if (isNumeric(type)) {
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) throw new BuildError(`"${s}" is not a number (column type ${type})`);
      return n;
    }
    if (type === 'bool') {
      if (s.toLowerCase() === 'true') return true;
      if (s.toLowerCase() === 'false') return false;
      throw new BuildError(`"${s}" is not true or false`);
    }
    if (type === 'time') {
      if (s !== '' && Number.isFinite(Number(s))) return Number(s);
      if (!/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d(:?\d\d){0,2})?$/.test(s)) throw new BuildError(`"${s}" is not unix seconds or an ISO-8601 time`);
      return s;
    }
    return raw;
  };
  if (spec.value === 'list') {
    const items = text.split(',').map((x) => x.trim()).filter((x) => x !== '');
    if (items.length === 0) throw new BuildError('IN needs at least one value (comma-separated)');
    if (items.length > IN_ITEMS_MAX) throw new BuildError(`at most ${IN_ITEMS_MAX} values in one IN chip`);
    return items.map(one);
  }
  return one(text);
}

/** One filter chip `{col, op, value}` as a predicate. */
export function filterSql(f) {
  const col = quoteIdent(f.col);
  switch (f.op) {
    case 'IS NULL': case 'IS NOT NULL': return `${col} ${f.op}`;
    case 'IN': case 'NOT IN': {
      if (!Array.isArray(f.value) || f.value.length === 0) throw new BuildError(`${f.op} needs a list of values`);
      return `${col} ${f.op} (${f.value.map(literal).join(', ')})`;
    }
    case 'contains': return `list_contains(${col}, ${literal(String(f.value))})`;
    case 'LIKE': case 'NOT LIKE': return `${col} ${f.op} ${literal(String(f.value))}`;
    case '=': case '!=': case '<': case '<=': case '>': case '>=': return `${col} ${f.op} ${literal(f.value)}`;
    default: throw new BuildError(`unknown operator ${f.op}`);
  }
}

/** `n` seconds as an INTERVAL literal in the largest unit that divides it. */
export function intervalSql(seconds) {
  const units = [['week', 604_800], ['day', 86_400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [unit, size] of units) {
    if (seconds % size === 0) {
      const k = seconds / size;
      return `INTERVAL '${k} ${unit}${k === 1 ? '' : 's'}'`;
    }
  }
  throw new BuildError(`${seconds} s is not a whole number of seconds`);
}

/** ISO-8601 UTC without milliseconds when there are none: `2026-12-01T10:00:00Z`. */
export function isoSeconds(seconds) {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** A custom range's bound as unix seconds ('2026-12-01T10:00' is read as UTC). */
export function parseInstant(text) {
  const s = String(text ?? '').trim();
  const withZone = /([Zz]|[+-]\d\d:?\d\d)$/.test(s) ? s : `${s}Z`;
  const ms = Date.parse(withZone);
  if (s === '' || !Number.isFinite(ms)) throw new BuildError(`"${s}" is not a date and time (YYYY-MM-DDTHH:MM, UTC)`);
  return ms / 1000;
}

/** The time range `[start, end)` of a state, shifted back by `shift` seconds, as predicates. */
export function timePredicates(state, shift = 0) {
  if (state.range === 'all') return [];
  if (state.range === 'custom') {
    const start = parseInstant(state.start);
    const end = parseInstant(state.end);
    if (!(end > start)) throw new BuildError('the custom range must end after it starts');
    return [`time >= ${quoteString(isoSeconds(start - shift))}`, `time < ${quoteString(isoSeconds(end - shift))}`];
  }
  const r = RANGES[state.range];
  if (r === undefined) throw new BuildError(`unknown time range ${state.range}`);
  if (shift === 0) return [`time >= now() - ${intervalSql(r.seconds)}`];
  return [`time >= now() - ${intervalSql(r.seconds + shift)}`, `time < now() - ${intervalSql(shift)}`];
}

/** Seconds the state's range spans; `tableSpan` (the table's timeMax - timeMin) for `all`. */
export function rangeSeconds(state, tableSpan = 86_400) {
  if (state.range === 'custom') return Math.max(1, parseInstant(state.end) - parseInstant(state.start));
  if (state.range === 'all') return Math.max(1, tableSpan);
  return RANGES[state.range]?.seconds ?? 3600;
}

/** The bucket width: a fixed key, or the finest that keeps at most AUTO_POINTS_MAX points. */
export function bucketSeconds(state, tableSpan) {
  if (state.granularity !== 'auto') {
    const g = GRANULARITIES.find((x) => x.key === state.granularity);
    if (g === undefined) throw new BuildError(`unknown granularity ${state.granularity}`);
    return g.seconds;
  }
  const span = rangeSeconds(state, tableSpan);
  return (GRANULARITIES.find((g) => span / g.seconds <= AUTO_POINTS_MAX) ?? GRANULARITIES[GRANULARITIES.length - 1]).seconds;
}

/** A metric `{fn, col}` as its expression; also the result column's name (docs/sql.md "Names"). */
export function metricSql(m) {
  if (m.fn === 'count') return 'count(*)';
  if (!METRIC_FNS.some((x) => x.fn === m.fn)) throw new BuildError(`unknown metric ${m.fn}`);
  if (typeof m.col !== 'string' || m.col === '') throw new BuildError(`${m.fn} needs a column`);
  return `${m.fn}(${quoteIdent(m.col)})`;
}

const metricsOf = (state) => (state.metrics.length > 0 ? state.metrics : [{ fn: 'count', col: null }]);

/** A name for the bucket column that no grouped column has. */
function bucketAlias(state, columns) {
  const taken = new Set([...state.groupBy, ...columns].map((c) => c.toLowerCase()));
  for (const a of ['t', 'bucket', 'time_bucket_start']) if (!taken.has(a)) return a;
  let k = 2;
  while (taken.has(`t${k}`)) k++;
  return `t${k}`;
}

/**
 * The query a state runs, and how to read its answer: `x` (the bucket column's index, series
 * only), `keys` (group columns' indices), `values` (metric columns' indices), and `compareSql`
 * when a compare period is set (the same query shifted back, `shiftSeconds`).
 * `schema`: the table's columns `[{name, type}]` (names only matter, to avoid alias clashes).
 * `tableSpan`: seconds between the table's oldest and newest row (auto granularity of `all`).
 */
export function buildQuery(state, schema = [], tableSpan = 86_400) {
  if (state.sql) return { kind: 'sql', sql: state.sql, compareSql: null, shiftSeconds: 0 };
  if (!state.table) throw new BuildError('pick a table');
  const from = quoteIdent(state.table);
  const filters = state.filters.map(filterSql);
  const where = (shift) => {
    const preds = [...timePredicates(state, shift), ...filters];
    return preds.length > 0 ? ` WHERE ${preds.join(' AND ')}` : '';
  };
  const limit = Number.isInteger(state.limit) && state.limit > 0 ? state.limit : 100;
  const shift = state.compare ? COMPARES[state.compare]?.seconds ?? 0 : 0;
  if (state.compare && shift === 0) throw new BuildError(`unknown compare period ${state.compare}`);
  if (shift > 0 && state.range === 'all') throw new BuildError('compare needs a time range (not "all time")');
  const groups = state.groupBy.map(quoteIdent);
  const metrics = metricsOf(state).map(metricSql);

  if (state.view === 'samples') {
    const sql = `SELECT * FROM ${from}${where(0)} ORDER BY time DESC LIMIT ${limit}`;
    return { kind: 'samples', sql, compareSql: null, shiftSeconds: 0, keys: [], values: [] };
  }
  if (state.view === 'timeseries') {
    const width = bucketSeconds(state, tableSpan);
    const alias = bucketAlias(state, schema.map((c) => c.name));
    const select = [`time_bucket(${intervalSql(width)}, time) AS ${alias}`, ...groups, ...metrics].join(', ');
    const tail = ` GROUP BY ${[alias, ...groups].join(', ')} ORDER BY ${alias} LIMIT ${SERIES_ROWS_MAX}`;
    const q = (s) => `SELECT ${select} FROM ${from}${where(s)}${tail}`;
    return {
      kind: 'timeseries', sql: q(0), compareSql: shift > 0 ? q(shift) : null, shiftSeconds: shift, bucketSeconds: width,
      x: 0, keys: groups.map((_, i) => 1 + i), values: metrics.map((_, i) => 1 + groups.length + i),
    };
  }
  // table
  const select = [...groups, ...metrics].join(', ');
  let order = '';
  if (groups.length > 0) {
    const key = state.order ?? 'm0';
    const m = /^m(\d+)$/.exec(key);
    const byGroup = key.startsWith('g:') && state.groupBy.includes(key.slice(2));
    const by = m !== null ? metrics[Math.min(Number(m[1]), metrics.length - 1)] : byGroup ? quoteIdent(key.slice(2)) : metrics[0];
    order = ` ORDER BY ${by} ${state.dir === 'asc' ? 'ASC' : 'DESC'}`;
  }
  const tail = groups.length > 0 ? ` GROUP BY ${groups.join(', ')}${order}` : '';
  const q = (s, n) => `SELECT ${select} FROM ${from}${where(s)}${tail}${groups.length > 0 ? ` LIMIT ${n}` : ''}`;
  return {
    kind: 'table', sql: q(0, limit),
    // The earlier period's groups, to set beside these: every group (not only its top `limit`),
    // so a group that ranked lower then still finds its earlier value.
    compareSql: shift > 0 ? q(shift, SERIES_ROWS_MAX) : null, shiftSeconds: shift,
    keys: groups.map((_, i) => i), values: metrics.map((_, i) => groups.length + i),
  };
}

/** True when every metric of the state can be summed across groups ("other" in a series). */
export const additive = (state) => metricsOf(state).every((m) => METRIC_FNS.find((x) => x.fn === m.fn)?.additive === true);

/**
 * A POSIX shell word. SQL is full of single quotes and rarely has `"`, `$`, `` ` ``, `\` or `!`,
 * so double quotes read best (as the README writes queries); otherwise single quotes, with `'`
 * written as `'\''`.
 */
export function shellQuote(s) {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  if (!/["$`\\!]/.test(s)) return `"${s}"`;
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** The `shoal query` command line that runs the same SQL against `origin`. */
export function cliCommand(sql, origin) {
  const url = origin === 'http://127.0.0.1:7000' ? '' : ` --url ${shellQuote(origin)}`;
  return `shoal query${url} ${shellQuote(sql)}`;
}
