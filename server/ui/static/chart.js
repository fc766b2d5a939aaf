// The timeseries view: an answer's rows (bucket, group keys..., metrics...) as one line per group
// and metric, drawn by uPlot (a canvas; its legend shows the values under the cursor and toggles
// a series on click). The top N groups are drawn; the rest are summed as "other" when every
// metric can be summed (count, sum), else hidden, and a note says which. A compare period's rows,
// shifted forward by the period, are drawn dashed in the colour of the group they belong to.
//
// Not here: which query ran (sql.js) or fetching it (api.js).
import uPlot from './vendor/uPlot.esm.js';
import { formatCell } from './render.js';

/** Colour-blind-friendly enough (Tableau 10), then 'other' in grey. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf'];
export const OTHER_COLOR = '#8c8c8c';
/** Points a filled grid may have; past it missing buckets are left as gaps, not zeros. */
export const GRID_POINTS_MAX = 20_000;
export const CHART_HEIGHT_PX = 320;

const toNumber = (v) => {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
};

/** Rows into groups: key -> {label, perMetric: [Map x -> value]}, and each group's rank total. */
function groupRows(columns, rows, meta, shift) {
  const groups = new Map();
  for (const row of rows) {
    const x = toNumber(row[meta.x]);
    if (x === null) continue;
    const keyValues = meta.keys.map((i) => row[i]);
    const key = JSON.stringify(keyValues);
    let g = groups.get(key);
    if (g === undefined) {
      g = { key, label: keyValues.map((v, j) => formatCell(v, columns[meta.keys[j]]?.type)).join(' · '), perMetric: meta.values.map(() => new Map()), total: 0 };
      groups.set(key, g);
    }
    meta.values.forEach((vi, mi) => {
      const v = toNumber(row[vi]);
      g.perMetric[mi].set(x + shift, v);
      if (mi === 0 && v !== null) g.total += Math.abs(v);
    });
  }
  return groups;
}

/** Sums groups per bucket ("other"). */
function sumGroups(list, metricCount) {
  const perMetric = Array.from({ length: metricCount }, () => new Map());
  for (const g of list) {
    g.perMetric.forEach((m, mi) => {
      for (const [x, v] of m) if (v !== null) perMetric[mi].set(x, (perMetric[mi].get(x) ?? 0) + v);
    });
  }
  return perMetric;
}

/**
 * The series to draw. `meta`: {x, keys, values, bucketSeconds?} (sql.js buildQuery). `opts`:
 * {top, other: 'sum'|'hide', additive, fillZero: [bool per metric], compareRows, shiftSeconds,
 * compareLabel}. Returns {xs, series: [{label, values, color, dash, metric, compare}], note}.
 */
export function buildSeries(columns, rows, meta, opts) {
  const metricNames = meta.values.map((i) => columns[i]?.name ?? `#${i}`);
  // Ties in rank go by label, so the same answer always draws the same lines.
  const groups = [...groupRows(columns, rows, meta, 0).values()].sort((a, b) => b.total - a.total || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const top = groups.slice(0, opts.top);
  const rest = groups.slice(opts.top);
  let note = '';
  const drawn = top.map((g, i) => ({ ...g, color: PALETTE[i % PALETTE.length] }));
  const rankedBy = metricNames[0];
  if (rest.length > 0) {
    if (opts.other === 'sum' && opts.additive) {
      drawn.push({ key: 'other', label: 'other', perMetric: sumGroups(rest, meta.values.length), color: OTHER_COLOR, isOther: true });
      note = `${groups.length} groups: the top ${top.length} by ${rankedBy}, the other ${rest.length} summed as "other".`;
    } else {
      const why = opts.additive ? '' : ' (these metrics cannot be summed into "other")';
      note = `${groups.length} groups: the top ${top.length} by ${rankedBy} are drawn, ${rest.length} more are hidden${why}.`;
    }
  }
  const compare = opts.compareRows ? groupRows(columns, opts.compareRows, meta, opts.shiftSeconds) : null;
  const twins = [];
  if (compare !== null) {
    const shownKeys = new Set(top.map((g) => g.key));
    for (const g of drawn) {
      const perMetric = g.isOther ? sumGroups([...compare.values()].filter((c) => !shownKeys.has(c.key)), meta.values.length) : compare.get(g.key)?.perMetric;
      if (perMetric !== undefined) twins.push({ ...g, perMetric, compare: true });
    }
  }
  // x: every bucket any series has, filled into a grid when the width is known.
  const xset = new Set();
  for (const g of [...drawn, ...twins]) for (const m of g.perMetric) for (const x of m.keys()) xset.add(x);
  let xs = [...xset].sort((a, b) => a - b);
  const w = meta.bucketSeconds;
  if (w && xs.length > 1 && (xs[xs.length - 1] - xs[0]) / w < GRID_POINTS_MAX) {
    const grid = [];
    for (let x = xs[0]; x <= xs[xs.length - 1]; x += w) grid.push(x);
    // Shifted compare buckets that do not fall on the grid (a shift that is not a multiple of
    // the width) keep their own x.
    xs = [...new Set([...grid, ...xs])].sort((a, b) => a - b);
  }
  const labelOf = (g, mi) => {
    const parts = [];
    if (meta.keys.length > 0) parts.push(g.label);
    if (meta.values.length > 1 || meta.keys.length === 0) parts.push(metricNames[mi]);
    return parts.join(' · ');
  };
  const series = [];
  for (const g of [...drawn, ...twins]) {
    g.perMetric.forEach((m, mi) => {
      const fill = opts.fillZero?.[mi] === true && w;
      series.push({
        label: g.compare ? `${labelOf(g, mi)} (${opts.compareLabel})` : labelOf(g, mi),
        values: xs.map((x) => (m.has(x) ? m.get(x) : fill ? 0 : null)),
        color: g.color, dash: g.compare ? [6, 4] : null, metric: mi, compare: g.compare === true,
      });
    });
  }
  return { xs, series, note, metricNames };
}

/** uPlot's time tick formats, in 24-hour UTC: [tick step s, format, on a new year, -, new month,
 * -, new day, -, mode] (uPlot's axis `values` table). */
const TIME_TICKS = [
  [86_400 * 365, '{YYYY}', null, null, null, null, null, null, 1],
  [86_400 * 28, '{MMM}', '\n{YYYY}', null, null, null, null, null, 1],
  [86_400, '{MM}-{DD}', '\n{YYYY}', null, null, null, null, null, 1],
  [3600, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [60, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [1, ':{ss}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
];

const fmtValue = (v) => (v === null || v === undefined ? '—' : Math.abs(v) >= 1e6 || Number.isInteger(v) ? v.toLocaleString('en-US') : v.toPrecision(6).replace(/\.?0+$/, ''));

/** Draws `built` (buildSeries) into `box`, replacing what was there; returns the uPlot or null. */
export function drawChart(box, built) {
  box.shoalChart?.observer?.disconnect();
  box.shoalChart?.uplot?.destroy();
  box.shoalChart = null;
  box.replaceChildren();
  if (built.series.length === 0 || built.xs.length === 0) {
    box.append(Object.assign(document.createElement('p'), { className: 'muted', textContent: 'no rows in this time range' }));
    return null;
  }
  const scaleOf = (mi) => `y${Math.min(mi, 1)}`;
  const opts = {
    width: Math.max(300, box.clientWidth || 800),
    height: CHART_HEIGHT_PX,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    scales: { x: { time: true }, y0: { auto: true }, y1: { auto: true } },
    series: [
      { label: 'time (UTC)', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' },
      ...built.series.map((s) => ({
        label: s.label, stroke: s.color, width: s.compare ? 1.25 : 1.75, scale: scaleOf(s.metric),
        ...(s.dash ? { dash: s.dash } : {}), spanGaps: false, points: { show: built.xs.length <= 60 },
        value: (_u, v) => fmtValue(v),
      })),
    ],
    axes: [
      { stroke: '#555', grid: { stroke: '#eee' }, values: TIME_TICKS },
      { scale: 'y0', stroke: '#555', grid: { stroke: '#eee' }, size: 64, label: built.metricNames[0] },
      ...(built.metricNames.length > 1 ? [{ scale: 'y1', side: 1, stroke: '#555', grid: { show: false }, size: 64, label: built.metricNames.slice(1).join(', ') }] : []),
    ],
    legend: { live: true },
    cursor: { focus: { prox: 24 } },
    focus: { alpha: 0.35 },
  };
  const u = new uPlot(opts, [built.xs, ...built.series.map((s) => s.values)], box);
  const observer = new ResizeObserver(() => {
    const width = Math.max(300, box.clientWidth);
    if (Math.abs(width - u.width) > 4) u.setSize({ width, height: CHART_HEIGHT_PX });
  });
  observer.observe(box);
  // For people poking in devtools and for tests: the chart's own data, scoped to its element.
  box.shoalChart = { uplot: u, observer, xs: built.xs, series: built.series };
  return u;
}
