// The page: loads the tables, keeps the state (url-state.js) in the URL, runs the query the
// builder or the SQL box says, and draws the answer as a table, a time series or samples, with
// its coverage and any error. One run at a time: a newer Run aborts the older one's requests.
//
// Not here: the SQL (sql.js), the controls (controls.js), drawing (render.js, chart.js), HTTP (api.js).
import { ApiError, getTable, getTables, postQuery, setTokenPrompt } from './api.js';
import { buildSeries, drawChart } from './chart.js';
import { Controls } from './controls.js';
import { clearError, el, formatCell, renderCoverage, renderError, resetCoverage, resultTable, TABLE_ROWS_SHOWN_MAX } from './render.js';
import { BuildError, COMPARES, GRANULARITIES, additive, buildQuery, cliCommand } from './sql.js';
import { defaultState, searchFromState, stateFromSearch } from './url-state.js';

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? '';

let state = defaultState();
/** The current table's columns and time span (GET /v1/tables/:table). */
let tableInfo = { columns: [], timeMin: null, timeMax: null };
let running = null;
let runSeq = 0;

const controls = new Controls(state, { onTable: (name) => void pickTable(name) });

function tokenPrompt(message) {
  const dialog = $('token-dialog');
  $('token-message').textContent = message;
  $('token-input').value = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? $('token-input').value : null), { once: true });
    dialog.showModal();
  });
}

function showNote(lines) {
  const box = $('note');
  const text = lines.filter((l) => l).join(' ');
  box.textContent = text;
  box.hidden = text === '';
}

async function loadTableInfo(name) {
  if (!name) { tableInfo = { columns: [], timeMin: null, timeMax: null }; controls.setSchema([]); return; }
  try {
    const t = await getTable(name);
    tableInfo = { columns: t.columns ?? [], timeMin: t.timeMin, timeMax: t.timeMax };
    const span = t.timeMin !== null && t.timeMax !== null ? ` · ${formatCell(Math.floor(t.timeMin), 'time')} .. ${formatCell(Math.floor(t.timeMax), 'time')}` : '';
    $('table-info').textContent = `${(t.rows ?? 0).toLocaleString('en-US')} rows · ${tableInfo.columns.length} columns${span}`;
  } catch (e) {
    tableInfo = { columns: [], timeMin: null, timeMax: null };
    $('table-info').textContent = '';
    if (e instanceof ApiError) renderError($('error'), e); else throw e;
  }
  controls.setSchema(tableInfo.columns);
}

/** The user picked another table: a fresh query on it (its columns differ). */
async function pickTable(name) {
  if (name === state.table) return;
  const view = state.view;
  const range = state.range;
  state = { ...defaultState(), table: name, view, range };
  controls.show(state);
  await loadTableInfo(name);
}

/** How to read a raw SQL answer as a series: the first time column, text keys, number values. */
function sqlSeriesMeta(columns) {
  const x = columns.findIndex((c) => c.type === 'time');
  if (x < 0) return null;
  const keys = [];
  const values = [];
  columns.forEach((c, i) => {
    if (i === x) return;
    if (c.type === 'int' || c.type === 'float') values.push(i);
    else if (c.type === 'string' || c.type === 'bool') keys.push(i);
  });
  return values.length > 0 ? { x, keys, values, bucketSeconds: null } : null;
}

/** Beside a table answer: each group's metrics in the compare period, and the change. */
function compareTable(q, main, cmp, label) {
  const keyOf = (row) => JSON.stringify(q.keys.map((i) => row[i]));
  const before = new Map(cmp.rows.map((r) => [keyOf(r), r]));
  const head = [...q.keys.map((i) => main.columns[i].name), ...q.values.flatMap((i) => [main.columns[i].name, `${label}`, 'change'])];
  const rows = main.rows.slice(0, TABLE_ROWS_SHOWN_MAX).map((r) => {
    const b = before.get(keyOf(r));
    return [...q.keys.map((i) => formatCell(r[i], main.columns[i].type)), ...q.values.flatMap((i) => {
      const now = Number(r[i]);
      const then = b === undefined ? null : Number(b[i]);
      const change = then === null || !Number.isFinite(then) || then === 0 || !Number.isFinite(now) ? '' : `${((now / then - 1) * 100).toFixed(1)}%`;
      return [formatCell(r[i], main.columns[i].type), b === undefined ? '—' : formatCell(b[i], cmp.columns[i]?.type), change];
    })];
  });
  const numeric = head.map((_, i) => i >= q.keys.length);
  return el('table', { class: 'result compare', 'data-testid': 'compare-table' },
    el('caption', { text: `compared with ${label} (each group of the answer below, beside its value then)` }),
    el('thead', {}, el('tr', {}, ...head.map((h, i) => el('th', { class: numeric[i] ? 'num' : null, text: h })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c, i) => el('td', { class: numeric[i] ? 'num' : null, text: c }))))));
}

function showSql(q) {
  $('sql').textContent = q.sql;
  $('sql-cli').textContent = q.sql === '' ? '' : cliCommand(q.sql, location.origin);
  $('sql-compare').hidden = q.compareSql === null;
  $('sql-compare').textContent = q.compareSql === null ? '' : `-- compare (${COMPARES[state.compare]?.label}):\n${q.compareSql}`;
  $('mode').textContent = q.kind === 'sql' ? 'SQL (written by hand)' : 'SQL';
}

function clearResults() {
  drawChart($('chart'), { series: [], xs: [] });
  $('chart').replaceChildren();
  $('table-box').replaceChildren();
  $('compare-box').replaceChildren();
  showNote([]);
}

/** Runs over so far, on the results element: scripts and tests wait on it (a run superseded by
 * a newer one is not counted). */
function countRun() {
  const results = document.querySelector('main.results');
  results.dataset.runs = String(Number(results.dataset.runs ?? 0) + 1);
}

/** Runs the state's query. `push`: a new history entry (false for a reload or back/forward). */
async function run({ push = true } = {}) {
  clearError($('error'));
  const span = tableInfo.timeMin !== null && tableInfo.timeMax !== null ? tableInfo.timeMax - tableInfo.timeMin : undefined;
  let q;
  try {
    q = buildQuery(state, tableInfo.columns, span);
  } catch (e) {
    if (!(e instanceof BuildError)) throw e;
    renderError($('error'), { code: 'not a query yet', message: e.message });
    countRun();
    return;
  }
  const search = searchFromState(state);
  if (push && search !== location.search) history.pushState(null, '', `${location.pathname}${search}`);
  running?.abort();
  const abort = new AbortController();
  running = abort;
  const seq = ++runSeq;
  showSql(q);
  if (!state.sql) $('sql-input').value = q.sql;
  resetCoverage($('coverage'), 'running…');
  $('run').disabled = true;
  const [main, cmp] = await Promise.allSettled([postQuery(q.sql, abort.signal), q.compareSql ? postQuery(q.compareSql, abort.signal) : Promise.resolve(null)]);
  if (seq !== runSeq) return;
  try {
    showAnswer(q, main, cmp);
  } finally {
    $('run').disabled = false;
    running = null;
    countRun();
  }
}

/** Draws one run's answers (`main`, `cmp`: settled promises of postQuery). */
function showAnswer(q, main, cmp) {
  clearResults();
  resetCoverage($('coverage'));
  if (main.status === 'rejected') {
    const e = main.reason;
    if (!(e instanceof ApiError)) { renderError($('error'), { code: 'error', message: String(e?.message ?? e) }); return; }
    renderError($('error'), e, q.sql);
    if (e.detail?.coverage) renderCoverage($('coverage'), e.detail.coverage);
    else resetCoverage($('coverage'), 'no answer');
    return;
  }
  const answer = main.value;
  renderCoverage($('coverage'), answer.coverage);
  const compareLabel = COMPARES[state.compare]?.label ?? '';
  let compareAnswer = null;
  if (cmp.status === 'fulfilled' && cmp.value !== null) {
    compareAnswer = cmp.value;
    renderCoverage($('coverage'), compareAnswer.coverage, `compare (${compareLabel})`);
  } else if (cmp.status === 'rejected') {
    renderError($('error'), Object.assign(cmp.reason, { message: `compare query: ${cmp.reason.message}` }), q.compareSql);
  }
  const notes = [];
  if (answer.stats?.truncated) notes.push(`The answer was cut at ${answer.rows.length.toLocaleString('en-US')} rows (the server's limit): narrow the range or filters.`);
  if (answer.rows.length > TABLE_ROWS_SHOWN_MAX) notes.push(`The table shows the first ${TABLE_ROWS_SHOWN_MAX.toLocaleString('en-US')} of ${answer.rows.length.toLocaleString('en-US')} rows.`);
  const seriesMeta = q.kind === 'timeseries' ? q : q.kind === 'sql' && state.view === 'timeseries' ? sqlSeriesMeta(answer.columns) : null;
  if (q.kind === 'sql' && state.view === 'timeseries' && seriesMeta === null) notes.push('Nothing to draw: a time series needs a time column and a number column; showing the rows.');
  if (seriesMeta !== null) {
    const metrics = q.kind === 'timeseries' ? (state.metrics.length > 0 ? state.metrics : [{ fn: 'count' }]) : [];
    const built = buildSeries(answer.columns, answer.rows, seriesMeta, {
      top: state.top, other: state.other, additive: q.kind === 'timeseries' && additive(state),
      fillZero: metrics.map((m) => m.fn === 'count' || m.fn === 'sum' || m.fn === 'approx_count_distinct'),
      compareRows: compareAnswer?.rows ?? null, shiftSeconds: q.shiftSeconds, compareLabel,
    });
    if (built.note) notes.push(built.note);
    drawChart($('chart'), built);
  }
  if (q.kind === 'table' && compareAnswer !== null && q.keys.length > 0) $('compare-box').append(compareTable(q, answer, compareAnswer, compareLabel));
  $('table-box').append(resultTable(answer.columns, answer.rows));
  const bucket = q.kind === 'timeseries' ? ` · ${GRANULARITIES.find((g) => g.seconds === q.bucketSeconds)?.key ?? `${q.bucketSeconds}s`} buckets` : '';
  $('table-box').append(el('p', { class: 'muted', text: `${answer.rows.length.toLocaleString('en-US')} row${answer.rows.length === 1 ? '' : 's'} · ${answer.stats?.elapsedMs ?? '?'} ms${bucket}` }));
  showNote(notes);
}

async function loadFromUrl({ runIt }) {
  const { state: s, problems } = stateFromSearch(location.search);
  let tablesFailed = false;
  const tables = await getTables().then((t) => t.tables ?? [], (e) => {
    if (!(e instanceof ApiError)) throw e;
    tablesFailed = true;
    renderError($('error'), e);
    return [];
  });
  if (!s.table && tables.length > 0) s.table = (tables.find((t) => t.name === 'events') ?? tables[0]).name;
  state = s;
  controls.setTables(tables, s.table);
  controls.show(state);
  await loadTableInfo(s.table);
  controls.show(state);
  if (runIt) {
    await run({ push: false });
  } else {
    clearResults();
    showSql({ kind: 'builder', sql: '', compareSql: null });
    resetCoverage($('coverage'), 'coverage: run a query to see how much of the data answers');
    if (tables.length === 0 && !tablesFailed) {
      $('table-box').replaceChildren(el('div', { class: 'empty' },
        el('p', { text: 'No tables yet. Send some events, then reload:' }),
        el('pre', { text: 'shoal ingest events events.ndjson        # NDJSON, one event per line\nshoal load events.parquet --table events # or CSV, Parquet, Arrow' })));
    }
  }
  if (problems.length > 0) showNote([`Ignored in the URL: ${problems.join('; ')}.`]);
}

function init() {
  const role = meta('shoal-role');
  const id = meta('shoal-id');
  $('served-by').textContent = role === 'leaf' ? `leaf ${id}` : role;
  setTokenPrompt(tokenPrompt);
  $('builder').addEventListener('submit', (e) => { e.preventDefault(); controls.sync(); state.sql = ''; void run(); });
  const runSql = () => {
    const text = $('sql-input').value.trim();
    if (text === '') return;
    state.sql = text;
    void run();
  };
  $('run-sql').addEventListener('click', runSql);
  $('sql-input').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runSql(); } });
  $('copy-cli').addEventListener('click', async () => {
    const text = $('sql-cli').textContent;
    try { await navigator.clipboard.writeText(text); } catch {
      // Not a secure context (a non-loopback http URL): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents($('sql-cli'));
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
    }
    $('copy-cli').textContent = 'copied';
    setTimeout(() => { $('copy-cli').replaceChildren('copy as ', el('code', { text: 'shoal query' })); }, 1500);
  });
  addEventListener('popstate', () => void loadFromUrl({ runIt: location.search !== '' }));
  void loadFromUrl({ runIt: new URLSearchParams(location.search).has('table') || new URLSearchParams(location.search).has('sql') });
}

init();
