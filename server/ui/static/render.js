// Drawing answers that are not charts: the result table, the coverage line, errors and notes.
// Cells are shown as the CLI's table shows them (docs/cli.md "Output"): times as ISO-8601 UTC
// (a fraction only when there is one), numbers as the digits JSON carries (never rounded), NULL
// as NULL, a set as [a, b].
//
// Not here: the chart (chart.js), the controls (controls.js).

/** Rows put in the DOM at most: a browser stays responsive; the note says how many there were. */
export const TABLE_ROWS_SHOWN_MAX = 2000;

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** Unix seconds as ISO-8601 UTC: `2026-12-01T10:00:00Z`, `...:00.25Z` (to the microsecond). */
export function isoTime(seconds) {
  let whole = Math.floor(seconds);
  let micros = Math.round((seconds - whole) * 1e6);
  if (micros === 1e6) { whole += 1; micros = 0; }
  const base = new Date(whole * 1000).toISOString().slice(0, 19);
  if (micros === 0) return `${base}Z`;
  return `${base}.${String(micros).padStart(6, '0').replace(/0+$/, '')}Z`;
}

export function formatCell(v, type) {
  if (v === null || v === undefined) return 'NULL';
  if (type === 'time' && typeof v === 'number') return isoTime(v);
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

const NUMERIC_TYPES = new Set(['int', 'float']);

/**
 * The rows of an answer as an HTML table, exactly as the server sent them (in its order). Time
 * cells carry the unix seconds in `title`.
 */
export function resultTable(columns, rows) {
  const head = el('tr', {}, ...columns.map((c) => el('th', { title: c.type, class: NUMERIC_TYPES.has(c.type) ? 'num' : null, text: c.name })));
  const body = el('tbody');
  for (const row of rows.slice(0, TABLE_ROWS_SHOWN_MAX)) {
    const tr = el('tr');
    row.forEach((v, i) => {
      const type = columns[i]?.type;
      tr.append(el('td', {
        class: [v === null ? 'null' : '', NUMERIC_TYPES.has(type) ? 'num' : ''].join(' ').trim() || null,
        title: type === 'time' && typeof v === 'number' ? String(v) : null,
        text: formatCell(v, type),
      }));
    });
    body.append(tr);
  }
  return el('table', { 'data-testid': 'result-table', class: 'result' }, el('thead', {}, head), body);
}

// Floored, never rounded: 99.996% must not read as 100%.
const pct = (p) => `${Math.floor(p * 100) / 100}%`;

/** The coverage line: percent, leaves answered / queried, rows, each missing leaf and why. */
export function renderCoverage(box, coverage, label = '') {
  if (!coverage) return;
  const partial = coverage.percent < 100 || (coverage.failures?.length ?? 0) > 0;
  const line = el('div', { class: 'coverage-line' },
    label ? el('span', { class: 'coverage-label', text: `${label}: ` }) : null,
    el('strong', { text: `coverage ${pct(coverage.percent)}` }),
    ` · ${coverage.leavesResponded}/${coverage.leavesQueried} lea${coverage.leavesQueried === 1 ? 'f' : 'ves'} answered`,
    typeof coverage.rowsScanned === 'number' ? ` · ${coverage.rowsScanned.toLocaleString('en-US')} rows scanned` : null);
  const items = [
    ...(coverage.failures ?? []).map((f) => el('li', { class: 'missing' }, 'missing ', el('strong', { text: f.leaf }), `: ${f.reason}`)),
    ...(coverage.notes ?? []).map((n) => el('li', {}, el('strong', { text: n.leaf }), `: ${n.reason}`)),
  ];
  const part = el('div', { class: partial ? 'coverage-part warn' : 'coverage-part' }, line, items.length > 0 ? el('ul', {}, ...items) : null);
  box.append(part);
  if (partial) box.classList.add('warn');
}

export function resetCoverage(box, text) {
  box.replaceChildren(text ? el('span', { class: 'muted', text }) : '');
  box.classList.remove('warn');
}

/** An error with its code, and a caret under the SQL when the server gave a position. */
export function renderError(box, err, sql) {
  const code = err.code ?? (err.status === 0 ? 'network error' : `HTTP ${err.status ?? '?'}`);
  box.replaceChildren(el('div', {}, el('strong', { class: 'code', text: code }), `: ${err.message}`));
  const pos = err.detail?.position;
  if (typeof sql === 'string' && Number.isInteger(pos) && pos >= 0 && pos <= sql.length) {
    const lineStart = sql.lastIndexOf('\n', pos - 1) + 1;
    const lineEnd = sql.indexOf('\n', pos);
    const line = sql.slice(lineStart, lineEnd < 0 ? sql.length : lineEnd);
    box.append(el('pre', { class: 'caret', text: `${line}\n${' '.repeat(pos - lineStart)}^` }));
  }
  box.hidden = false;
}

export function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}
