// The query builder's controls: each writes into the state object it was given (url-state.js
// shape), and `show(state)` writes a state back into them (a URL loaded, back/forward). Chips
// (filters, group-bys, metrics) are removed with their × button. Choosing from the `group-by` or
// `metric` select adds that column or metric; the filter editor adds a chip once its value reads
// as the column's type.
//
// Not here: running anything (app.js), the SQL (sql.js).
import { el } from './render.js';
import {
  BuildError, COMPARES, FILTER_OPS, GRANULARITIES, METRIC_FNS, RANGES, groupable, metricSql, metricTakes, opsFor, parseFilterValue,
} from './sql.js';
import { LIMIT_MAX, TOP_MAX } from './url-state.js';

const $ = (id) => document.getElementById(id);

const option = (value, label, selected = false) => el('option', { value, selected, text: label });

/** `2026-12-01T10:00:00` (a datetime-local input's value, read as UTC) for unix seconds. */
const localInput = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 19);

function filterText(f) {
  const spec = FILTER_OPS.find((o) => o.op === f.op);
  if (spec?.value === 'none') return `${f.col} ${f.op}`;
  const v = Array.isArray(f.value) ? `(${f.value.map((x) => JSON.stringify(x)).join(', ')})` : JSON.stringify(f.value);
  return f.op === 'contains' ? `${f.col} contains ${v}` : `${f.col} ${f.op} ${v}`;
}

export class Controls {
  /** `onTable(name)`: the user picked another table. */
  constructor(state, { onTable }) {
    this.state = state;
    this.schema = [];
    this.onTable = onTable;
    for (const [k, r] of Object.entries(RANGES)) $('range').append(option(k, r.label));
    $('range').append(option('custom', 'custom…'), option('all', 'all time'));
    $('granularity').append(option('auto', 'auto'), ...GRANULARITIES.map((g) => option(g.key, g.key)));
    $('compare').append(option('', 'none'), ...Object.entries(COMPARES).map(([k, c]) => option(k, c.label)));
    this.bind();
  }

  bind() {
    const s = () => this.state;
    $('table').addEventListener('change', (e) => this.onTable(e.target.value));
    $('view').addEventListener('change', (e) => { s().view = e.target.value; this.showView(); });
    $('range').addEventListener('change', (e) => {
      s().range = e.target.value;
      if (s().range === 'custom' && (!s().start || !s().end)) {
        const now = Math.floor(Date.now() / 1000);
        s().start = localInput(now - 3600);
        s().end = localInput(now);
      }
      this.showRange();
    });
    $('start').addEventListener('change', (e) => { s().start = e.target.value; });
    $('end').addEventListener('change', (e) => { s().end = e.target.value; });
    $('granularity').addEventListener('change', (e) => { s().granularity = e.target.value; });
    $('compare').addEventListener('change', (e) => { s().compare = e.target.value; });
    $('order').addEventListener('change', (e) => { s().order = e.target.value; });
    $('dir').addEventListener('change', (e) => { s().dir = e.target.value; });
    $('other').addEventListener('change', (e) => { s().other = e.target.value; });
    const intField = (id, key, max) => $(id).addEventListener('change', (e) => {
      const n = Number(e.target.value);
      if (Number.isInteger(n) && n >= 1 && n <= max) s()[key] = n;
      else e.target.value = String(s()[key]);
    });
    intField('limit', 'limit', LIMIT_MAX);
    intField('top', 'top', TOP_MAX);
    $('group-by').addEventListener('change', (e) => {
      const col = e.target.value;
      if (col !== '' && !s().groupBy.includes(col)) s().groupBy.push(col);
      this.showGroups();
    });
    $('metric').addEventListener('change', (e) => {
      const v = e.target.value;
      if (v !== '') {
        const at = v.indexOf(':');
        const m = at < 0 ? { fn: v, col: null } : { fn: v.slice(0, at), col: v.slice(at + 1) };
        if (!s().metrics.some((x) => x.fn === m.fn && x.col === m.col)) s().metrics.push(m);
      }
      this.showMetrics();
    });
    $('filter-col').addEventListener('change', () => this.showFilterOps());
    $('filter-op').addEventListener('change', () => this.showFilterValue());
    $('filter-add').addEventListener('click', () => this.addFilter());
    $('filter-value').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); this.addFilter(); } });
  }

  /** Reads the typed-in fields again (a number typed and Enter pressed may not have fired
   * `change` before the form's submit). */
  sync() {
    for (const [id, key, max] of [['limit', 'limit', LIMIT_MAX], ['top', 'top', TOP_MAX]]) {
      const n = Number($(id).value);
      if (Number.isInteger(n) && n >= 1 && n <= max) this.state[key] = n;
    }
    if (this.state.range === 'custom') {
      this.state.start = $('start').value;
      this.state.end = $('end').value;
    }
  }

  typeOf(col) { return this.schema.find((c) => c.name === col)?.type ?? 'string'; }

  setTables(tables, current) {
    const sel = $('table');
    sel.replaceChildren(...tables.map((t) => option(t.name, t.name, t.name === current)));
    if (current && !tables.some((t) => t.name === current)) sel.prepend(option(current, `${current} (not found)`, true));
  }

  setSchema(columns) {
    this.schema = columns;
    // The time column last: a filter on it is rarer than the range control.
    const ordered = [...columns.filter((c) => c.name !== 'time'), ...columns.filter((c) => c.name === 'time')];
    const cols = ordered.map((c) => option(c.name, `${c.name} (${c.type})`));
    $('filter-col').replaceChildren(...cols);
    this.showFilterOps();
    this.showGroups();
    this.showMetrics();
  }

  addFilter() {
    const col = $('filter-col').value;
    const op = $('filter-op').value;
    const box = $('filter-error');
    if (!col) return;
    try {
      const value = parseFilterValue(op, $('filter-value').value, this.typeOf(col));
      this.state.filters.push({ col, op, value });
      $('filter-value').value = '';
      box.hidden = true;
      this.showFilters();
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      box.textContent = e.message;
      box.hidden = false;
    }
  }

  showFilterOps() {
    const ops = opsFor(this.typeOf($('filter-col').value));
    const was = $('filter-op').value;
    $('filter-op').replaceChildren(...ops.map((op) => option(op, op, op === was)));
    this.showFilterValue();
  }

  showFilterValue() {
    const spec = FILTER_OPS.find((o) => o.op === $('filter-op').value);
    const input = $('filter-value');
    input.disabled = spec?.value === 'none';
    const type = this.typeOf($('filter-col').value);
    input.placeholder = spec?.value === 'none' ? '' : spec?.value === 'list' ? 'a, b, c' : spec?.value === 'text' ? (spec.op === 'contains' ? 'element' : 'pattern: % any, _ one') : type === 'time' ? 'unix seconds or 2026-12-01T10:00Z' : 'value';
  }

  chip(text, testid, onRemove) {
    return el('span', { class: 'chip', 'data-testid': testid },
      el('span', { text }),
      el('button', { type: 'button', class: 'chip-x', 'aria-label': `remove ${text}`, title: 'remove', onclick: onRemove, text: '×' }));
  }

  showFilters() {
    $('filter-chips').replaceChildren(...this.state.filters.map((f, i) => this.chip(filterText(f), 'filter-chip', () => { this.state.filters.splice(i, 1); this.showFilters(); })));
  }

  showGroups() {
    const s = this.state;
    $('group-chips').replaceChildren(...s.groupBy.map((g, i) => this.chip(g, 'group-chip', () => { s.groupBy.splice(i, 1); this.showGroups(); })));
    const free = this.schema.filter((c) => groupable(c.name, c.type) && !s.groupBy.includes(c.name));
    $('group-by').replaceChildren(option('', free.length > 0 ? 'add a column…' : 'no more columns', true), ...free.map((c) => option(c.name, c.name)));
    this.showOrder();
  }

  showMetrics() {
    const s = this.state;
    $('metric-chips').replaceChildren(...s.metrics.map((m, i) => this.chip(metricSql(m), 'metric-chip', () => { s.metrics.splice(i, 1); this.showMetrics(); })));
    if (s.metrics.length === 0) $('metric-chips').append(el('span', { class: 'muted', text: 'count(*) when none' }));
    const groups = METRIC_FNS.map((spec) => {
      if (spec.fn === 'count') return el('optgroup', { label: 'count' }, option('count', 'count(*)'));
      const cols = this.schema.filter((c) => metricTakes(spec.fn, c.type));
      return cols.length === 0 ? null : el('optgroup', { label: spec.fn }, ...cols.map((c) => option(`${spec.fn}:${c.name}`, metricSql({ fn: spec.fn, col: c.name }))));
    });
    $('metric').replaceChildren(option('', 'add a metric…', true), ...groups.filter((g) => g !== null));
    this.showOrder();
  }

  showOrder() {
    const s = this.state;
    const metrics = s.metrics.length > 0 ? s.metrics : [{ fn: 'count', col: null }];
    const opts = [...metrics.map((m, i) => option(`m${i}`, metricSql(m))), ...s.groupBy.map((g) => option(`g:${g}`, g))];
    if (!opts.some((o) => o.value === s.order)) s.order = 'm0';
    for (const o of opts) o.selected = o.value === s.order;
    $('order').replaceChildren(...opts);
  }

  showRange() {
    $('custom-range').hidden = this.state.range !== 'custom';
    $('start').value = this.state.start;
    $('end').value = this.state.end;
  }

  /** The form says which view it is for; CSS hides what that view ignores. */
  showView() {
    $('builder').dataset.view = this.state.view;
  }

  /** Writes the whole state into the controls. */
  show(state) {
    this.state = state;
    const s = state;
    $('view').value = s.view;
    $('range').value = s.range;
    $('granularity').value = s.granularity;
    $('compare').value = s.compare;
    $('dir').value = s.dir;
    $('other').value = s.other;
    $('limit').value = String(s.limit);
    $('top').value = String(s.top);
    this.showRange();
    this.showView();
    this.showFilters();
    this.showGroups();
    this.showMetrics();
  }
}
