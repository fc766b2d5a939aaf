// The page's state and its URL: every choice of the query builder is a search parameter, so a
// reload or a shared link shows the same query (and runs it again). Defaults are left out of the
// URL. Never the token: it stays in sessionStorage (api.js).
//
// Parameters: table, view, range, start, end (custom range, UTC), f (a filter, repeated: JSON
// [column, op, value]), g (a group-by column, repeated, in order), m (a metric, repeated: `fn`
// or `fn:column`), order (m<i> or g:<column>), dir, limit, gran, compare, top, other, sql (raw
// SQL mode).
//
// Not here: the controls (controls.js) or the SQL (sql.js).
import { COMPARES, FILTER_OPS, GRANULARITIES, METRIC_FNS, RANGES } from './sql.js';

export const VIEWS = ['table', 'timeseries', 'samples'];

/** Filters, group-bys and metrics one URL may carry (a URL is typed and shared by people). */
export const URL_ITEMS_MAX = 64;
/** Rows a table or samples query may ask for (query/limits.ts resultRowsMax). */
export const LIMIT_MAX = 100_000;
/** Series drawn at most (top N groups); more lines than this are unreadable anyway. */
export const TOP_MAX = 50;

export function defaultState() {
  return {
    table: '', view: 'timeseries', range: '1h', start: '', end: '',
    filters: [], groupBy: [], metrics: [{ fn: 'count', col: null }],
    order: 'm0', dir: 'desc', limit: 100, granularity: 'auto', compare: '', top: 10, other: 'sum', sql: '',
  };
}

const intIn = (text, min, max, fallback) => {
  const n = Number(text);
  return Number.isInteger(n) && n >= min && n <= max ? n : fallback;
};

/** The state a URL's search string says, and what in it could not be read. */
export function stateFromSearch(search) {
  const p = new URLSearchParams(search);
  const s = defaultState();
  const problems = [];
  const pick = (name, allowed) => {
    const v = p.get(name);
    if (v === null) return null;
    if (allowed.includes(v)) return v;
    problems.push(`${name}=${v} is not one of ${allowed.join(', ')}`);
    return null;
  };
  s.table = p.get('table') ?? '';
  s.view = pick('view', VIEWS) ?? s.view;
  s.range = pick('range', [...Object.keys(RANGES), 'custom', 'all']) ?? s.range;
  s.start = p.get('start') ?? '';
  s.end = p.get('end') ?? '';
  s.granularity = pick('gran', ['auto', ...GRANULARITIES.map((g) => g.key)]) ?? s.granularity;
  s.compare = pick('compare', Object.keys(COMPARES)) ?? '';
  s.dir = pick('dir', ['asc', 'desc']) ?? s.dir;
  s.other = pick('other', ['sum', 'hide']) ?? s.other;
  s.order = p.get('order') ?? s.order;
  s.limit = intIn(p.get('limit'), 1, LIMIT_MAX, s.limit);
  s.top = intIn(p.get('top'), 1, TOP_MAX, s.top);
  s.sql = p.get('sql') ?? '';
  s.groupBy = p.getAll('g').filter((g) => g !== '').slice(0, URL_ITEMS_MAX);
  const ms = p.getAll('m').slice(0, URL_ITEMS_MAX).map((text) => {
    const at = text.indexOf(':');
    const fn = at < 0 ? text : text.slice(0, at);
    const col = at < 0 ? null : text.slice(at + 1);
    if (!METRIC_FNS.some((x) => x.fn === fn) || (fn !== 'count' && !col)) { problems.push(`m=${text} is not a metric`); return null; }
    return { fn, col: fn === 'count' ? null : col };
  }).filter((m) => m !== null);
  if (p.has('m')) s.metrics = ms;
  s.filters = p.getAll('f').slice(0, URL_ITEMS_MAX).map((text) => {
    try {
      const [col, op, value] = JSON.parse(text);
      if (typeof col === 'string' && FILTER_OPS.some((o) => o.op === op)) return { col, op, value: value ?? null };
    } catch { /* reported below */ }
    problems.push(`f=${text} is not a filter`);
    return null;
  }).filter((f) => f !== null);
  return { state: s, problems };
}

/** The search string (with its `?`, or '' for the defaults) of a state. */
export function searchFromState(s) {
  const d = defaultState();
  const p = new URLSearchParams();
  if (s.table) p.set('table', s.table);
  if (s.sql) {
    // Raw SQL: the text is the query; only the view (how to draw it) goes with it.
    p.set('sql', s.sql);
    if (s.view !== d.view) p.set('view', s.view);
    return `?${p}`;
  }
  if (s.view !== d.view) p.set('view', s.view);
  if (s.range !== d.range) p.set('range', s.range);
  if (s.range === 'custom') { p.set('start', s.start); p.set('end', s.end); }
  for (const f of s.filters) p.append('f', JSON.stringify([f.col, f.op, f.value]));
  for (const g of s.groupBy) p.append('g', g);
  // No metric at all runs count(*), the same as the default, so neither is written.
  const justCount = s.metrics.length === 0 || (s.metrics.length === 1 && s.metrics[0].fn === 'count');
  if (!justCount) for (const m of s.metrics) p.append('m', m.fn === 'count' ? 'count' : `${m.fn}:${m.col}`);
  if (s.order !== d.order) p.set('order', s.order);
  if (s.dir !== d.dir) p.set('dir', s.dir);
  if (s.limit !== d.limit) p.set('limit', String(s.limit));
  if (s.granularity !== d.granularity) p.set('gran', s.granularity);
  if (s.compare) p.set('compare', s.compare);
  if (s.top !== d.top) p.set('top', String(s.top));
  if (s.other !== d.other) p.set('other', s.other);
  const text = p.toString();
  return text === '' ? '' : `?${text}`;
}
