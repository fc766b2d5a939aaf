/**
 * The web UI (issue 18), fast part:
 * - through inject(): `GET /` is the page on an aggregator and on a leaf, every asset it loads
 *   (and every module those import) answers with its content type, unknown paths still get the
 *   JSON 404, the page needs no token while the data does;
 * - the query builder's SQL (server/ui/static/sql.js) in Node: every shape it builds is planned by
 *   the real planner, and run on an in-process leaf its answers equal what this test counts from
 *   the rows it sent; names are quoted where the lexer needs it; the URL state round-trips; the
 *   `shoal query` line survives a real shell;
 * - one smoke test in headless chromium against a real `shoal up` (the rest of the browser tests
 *   are in test/slow/ui-browser.test.ts): a time series built with the controls is drawn, its
 *   table equals POST /v1/query for the SQL shown, a reload shows the same, a bad query shows its
 *   error code and leaves the page usable, a `kill -STOP`ped leaf is named in the coverage.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aggregator, buildAggregatorApp, defaultAggregatorConfig } from '../server/cluster/aggregator.js';
import { planQuery } from '../query/engine.js';
import { KEYWORDS } from '../query/sql/lexer.js';
import { LIMITS } from '../query/limits.js';
import { UI_FILES } from '../server/ui/ui-routes.js';
import { inProcessLeaf } from './support/leaf-inprocess.js';
import { postJson } from './support/cluster.js';
import {
  SERVICES, chromiumMissing, clickRun, colouredPixels, expectedTable, ingestSpread, launchBrowser, legendLabels, makeEvents, runWithLeafStopped, shownTable, startUp, waitRuns,
  type QueryAnswer, type UiEvent, type UpCluster,
} from './support/browser.js';

// The page's modules are plain browser JavaScript; Node imports them as they are.
const ui: any = await import(new URL('../server/ui/static/sql.js', import.meta.url).href);
const urlState: any = await import(new URL('../server/ui/static/url-state.js', import.meta.url).href);

describe('serving the page (inject)', () => {
  const agg = new Aggregator({ ...defaultAggregatorConfig(), port: 0, logLevel: 'silent' }, []);
  const app = buildAggregatorApp(agg);
  afterAll(async () => { await app.close(); await agg.close(); });

  it('GET / is the page, with every data-testid of the contract', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    for (const id of ['table', 'view', 'range', 'group-by', 'metric', 'run', 'sql', 'chart', 'coverage', 'error']) {
      expect(res.body, id).toContain(`data-testid="${id}"`);
    }
    // result-table is built per answer (render.js); the view select offers exactly the three views.
    const viewSelect = /<select id="view" data-testid="view">([\s\S]*?)<\/select>/.exec(res.body)![1]!;
    expect([...viewSelect.matchAll(/value="([a-z]+)"/g)].map((m) => m[1]).sort()).toEqual(['samples', 'table', 'timeseries']);
    expect(res.body).toContain('<meta name="shoal-role" content="aggregator">');
    // With a query string (a shared URL) it is the same page.
    const shared = await app.inject({ method: 'GET', url: '/?table=events&view=table&g=service' });
    expect(shared.statusCode).toBe(200);
    expect(shared.body).toBe(res.body);
  });

  it('serves every asset the page loads, and every module those import, with its content type', async () => {
    const page = (await app.inject({ method: 'GET', url: '/' })).body;
    const want = new Map<string, string>();
    for (const m of page.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)) want.set(m[1]!, m[1]!.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
    expect([...want.keys()]).toEqual(expect.arrayContaining(['/ui/app.js', '/ui/style.css', '/ui/vendor/uPlot.min.css']));
    const seen = new Set<string>();
    const queue = [...want.keys()];
    while (queue.length > 0) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await app.inject({ method: 'GET', url: path });
      expect(res.statusCode, path).toBe(200);
      expect(res.headers['content-type'], path).toBe(want.get(path) ?? 'text/javascript; charset=utf-8');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body.length, path).toBeGreaterThan(100);
      if (!path.endsWith('.js')) continue;
      // Static imports, resolved as the browser resolves them.
      for (const m of res.body.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/gm)) {
        const target = new URL(m[1]!, `http://x${path}`).pathname;
        want.set(target, 'text/javascript; charset=utf-8');
        queue.push(target);
      }
    }
    // The whole module graph was reached, uPlot included, and every page file is in it.
    expect(seen).toContain('/ui/vendor/uPlot.esm.js');
    for (const f of UI_FILES.filter((n) => n !== 'index.html')) expect(seen, f).toContain(`/ui/${f}`);
  });

  it('answers 304 to a matching ETag', async () => {
    const first = await app.inject({ method: 'GET', url: '/ui/app.js' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await app.inject({ method: 'GET', url: '/ui/app.js', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('keeps the JSON 404 for every other path', async () => {
    for (const [method, url] of [['GET', '/nope'], ['GET', '/ui/nope.js'], ['GET', '/ui/'], ['GET', '/ui/../package.json'], ['GET', '/ui/%2e%2e/package.json'], ['POST', '/'], ['GET', '/v1/nope']] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.headers['content-type'], url).toMatch(/^application\/json/);
      expect(res.json().error.code, url).toBe('SHOAL_ERR_NOT_FOUND');
    }
  });

  it('a leaf serves the same page; the page needs no token, the data does', async () => {
    const leaf = await inProcessLeaf({ token: 'secret-token-123', logLevel: 'silent' });
    try {
      const page = await leaf.app.inject({ method: 'GET', url: '/' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('<meta name="shoal-role" content="leaf">');
      expect(page.body).toContain('<meta name="shoal-id" content="leaf-test">');
      expect((await leaf.app.inject({ method: 'GET', url: '/ui/app.js' })).statusCode).toBe(200);
      const tables = await leaf.app.inject({ method: 'GET', url: '/v1/tables' });
      expect(tables.statusCode).toBe(401);
      expect(tables.json().error.code).toBe('SHOAL_ERR_UNAUTHORIZED');
      expect((await leaf.app.inject({ method: 'GET', url: '/v1/tables', headers: { authorization: 'Bearer secret-token-123' } })).statusCode).toBe(200);
    } finally {
      await leaf.close();
    }
  });
});

const baseState = (over: Record<string, unknown> = {}) => ({ ...urlState.defaultState(), table: 'events', ...over });

describe('the builder\'s SQL', () => {
  it('quotes every keyword of the lexer, and names that are not plain identifiers', () => {
    for (const k of KEYWORDS) expect(ui.RESERVED.has(k), k).toBe(true);
    expect(ui.quoteIdent('latency_ms')).toBe('latency_ms');
    expect(ui.quoteIdent('select')).toBe('"select"');
    expect(ui.quoteIdent('Latency ms')).toBe('"Latency ms"');
    expect(ui.quoteIdent('a"b')).toBe('"a""b"');
    expect(ui.quoteString("it's")).toBe("'it''s'");
  });

  it('builds only SQL the real planner accepts, for every view, metric, operator and range', () => {
    const nowSeconds = Date.now() / 1000;
    const filters = [
      { col: 'status', op: '>=', value: 500 }, { col: 'status', op: '!=', value: 200 }, { col: 'latency_ms', op: '<', value: 2.5 },
      { col: 'service', op: 'IN', value: ['api', "o'brien"] }, { col: 'service', op: 'NOT IN', value: ['db'] },
      { col: 'service', op: 'LIKE', value: 'a%' }, { col: 'user', op: 'NOT LIKE', value: '_1%' },
      { col: 'region', op: 'IS NULL', value: null }, { col: 'region', op: 'IS NOT NULL', value: null },
      { col: 'ok', op: '=', value: true }, { col: 'tags', op: 'contains', value: 'a' }, { col: 'time', op: '>=', value: '2026-01-01T00:00:00Z' },
      { col: 'select', op: '=', value: 'x' },
    ];
    const metrics = ui.METRIC_FNS.map((m: { fn: string }) => ({ fn: m.fn, col: m.fn === 'count' ? null : 'latency_ms' }));
    const ranges = [...Object.keys(ui.RANGES).map((range) => ({ range })), { range: 'custom', start: '2026-12-01T10:00', end: '2026-12-01T11:30:15' }, { range: 'all' }];
    let built = 0;
    for (const view of ['table', 'timeseries', 'samples']) {
      for (const r of ranges) {
        for (const compare of r.range === 'all' ? [''] : ['', '1h', '1d', '1w']) {
          for (const groupBy of [[], ['service'], ['service', 'select', 'ok']]) {
            const state = baseState({ view, ...r, compare, groupBy, filters, metrics, order: groupBy.length > 0 ? `g:${groupBy[0]}` : 'm1', dir: 'asc' });
            const q = ui.buildQuery(state, [{ name: 't', type: 'int' }], 7200);
            for (const sql of [q.sql, q.compareSql].filter((s) => s !== null)) {
              expect(() => planQuery(sql, nowSeconds), sql).not.toThrow();
              built++;
            }
          }
        }
      }
    }
    expect(built).toBeGreaterThan(200);
    // A bucket alias never clashes with a grouped column named t.
    const q = ui.buildQuery(baseState({ view: 'timeseries', groupBy: ['t'] }), [{ name: 't', type: 'string' }]);
    expect(q.sql).toContain('AS bucket');
    expect(() => planQuery(q.sql, nowSeconds)).not.toThrow();
  });

  it('keeps its bounds within the server\'s (query/limits.ts)', () => {
    expect(ui.SERIES_ROWS_MAX).toBe(LIMITS.resultRowsMax);
    expect(urlState.LIMIT_MAX).toBe(LIMITS.resultRowsMax);
    expect(ui.IN_ITEMS_MAX).toBeLessThanOrEqual(LIMITS.inListMax);
  });

  it('refuses what cannot be a query, with a message', () => {
    expect(() => ui.buildQuery(baseState({ compare: '1d', range: 'all' }))).toThrow(/compare needs a time range/);
    expect(() => ui.buildQuery(baseState({ range: 'custom', start: '2026-12-01T11:00', end: '2026-12-01T10:00' }))).toThrow(/end after it starts/);
    expect(() => ui.parseFilterValue('>=', 'abc', 'int')).toThrow(/not a number/);
    expect(() => ui.parseFilterValue('IN', ' , ', 'string')).toThrow(/at least one value/);
    expect(() => ui.parseFilterValue('=', 'maybe', 'bool')).toThrow(/true or false/);
    expect(ui.parseFilterValue('IN', '500, 503', 'int')).toEqual([500, 503]);
    expect(ui.parseFilterValue('IS NULL', 'ignored', 'string')).toBeNull();
  });

  it('picks the auto granularity so a series has at most AUTO_POINTS_MAX points, and intervals in whole units', () => {
    for (const [range, seconds] of Object.entries(ui.RANGES) as [string, { seconds: number }][]) {
      const width = ui.bucketSeconds(baseState({ range }));
      expect(seconds.seconds / width, range).toBeLessThanOrEqual(ui.AUTO_POINTS_MAX);
      // The finest such width: the next finer one would give too many points.
      const finer = ui.GRANULARITIES.filter((g: { seconds: number }) => g.seconds < width).pop();
      if (finer !== undefined) expect(seconds.seconds / finer.seconds, range).toBeGreaterThan(ui.AUTO_POINTS_MAX);
    }
    expect(ui.intervalSql(3600 + 86_400)).toBe("INTERVAL '25 hours'");
    expect(ui.intervalSql(604_800)).toBe("INTERVAL '1 week'");
    expect(ui.intervalSql(90)).toBe("INTERVAL '90 seconds'");
  });

  it('round-trips the state through the URL', () => {
    const states = [
      baseState(),
      baseState({ view: 'table', range: 'custom', start: '2026-12-01T10:00', end: '2026-12-01T11:00', filters: [{ col: 'a:b', op: 'IN', value: ['x', 'y,z'] }, { col: 'n', op: '>', value: 1.5 }, { col: 'r', op: 'IS NULL', value: null }], groupBy: ['service', 'ok'], metrics: [{ fn: 'p99', col: 'lat:ms' }, { fn: 'count', col: null }], order: 'g:ok', dir: 'asc', limit: 7 }),
      baseState({ view: 'timeseries', granularity: '5m', compare: '1w', top: 3, other: 'hide' }),
      baseState({ sql: "SELECT count(*) FROM events WHERE s = 'a&b=c'", view: 'table' }),
    ];
    for (const s of states) {
      const search = urlState.searchFromState(s);
      const back = urlState.stateFromSearch(search);
      expect(back.problems).toEqual([]);
      expect(ui.buildQuery(back.state).sql).toBe(ui.buildQuery(s).sql);
      expect(urlState.searchFromState(back.state)).toBe(search);
      expect(search).not.toMatch(/token/i);
    }
    const bad = urlState.stateFromSearch('?view=pie&m=median:x&f=notjson&limit=-3');
    expect(bad.problems.length).toBe(3);
    expect(bad.state.view).toBe('timeseries');
    expect(bad.state.limit).toBe(100);
  });

  it('writes a `shoal query` command line that a real shell reads back as the same SQL', () => {
    const sqls = [
      "SELECT service, count(*) FROM events WHERE time >= now() - INTERVAL '1 hour' GROUP BY service",
      'SELECT "odd name", count(*) FROM "my-table" GROUP BY "odd name"',
      "SELECT count(*) FROM t WHERE s = '$HOME `x` \\ !' AND q = 'it''s'",
    ];
    for (const sql of sqls) {
      const line = ui.cliCommand(sql, 'http://127.0.0.1:7001');
      expect(line.startsWith('shoal query --url http://127.0.0.1:7001 ')).toBe(true);
      const echoed = execFileSync('sh', ['-c', `printf '%s' ${line.slice('shoal query --url http://127.0.0.1:7001 '.length)}`], { encoding: 'utf8' });
      expect(echoed).toBe(sql);
    }
    expect(ui.cliCommand('SELECT 1', 'http://127.0.0.1:7000')).toBe('shoal query "SELECT 1"');
  });
});

describe('the builder\'s SQL on a real leaf (in-process), checked against counts of the rows sent', () => {
  let leaf: Awaited<ReturnType<typeof inProcessLeaf>>;
  let events: UiEvent[];
  const nowSeconds = Math.floor(Date.now() / 1000);
  const inLastHour = (e: UiEvent) => e.time >= nowSeconds - 3600;

  beforeAll(async () => {
    leaf = await inProcessLeaf({ logLevel: 'silent' });
    events = makeEvents(nowSeconds, 18);
    const r = await leaf.ingest('events', JSON.stringify(events));
    expect(r.status).toBe(200);
  });
  afterAll(async () => { await leaf?.close(); });

  const run = async (state: Record<string, unknown>) => {
    const q = ui.buildQuery(baseState(state));
    const r = await leaf.query(q.sql);
    expect(r.status, `${q.sql}: ${JSON.stringify(r.json)}`).toBe(200);
    return { q, answer: r.json as QueryAnswer };
  };
  const countBy = (rows: UiEvent[], key: (e: UiEvent) => string) => {
    const m = new Map<string, number>();
    for (const e of rows) m.set(key(e), (m.get(key(e)) ?? 0) + 1);
    return m;
  };

  it('table: a filtered count by service, ordered', async () => {
    const { answer } = await run({ view: 'table', groupBy: ['service'], filters: [{ col: 'status', op: '>=', value: 500 }] });
    const want = countBy(events.filter((e) => inLastHour(e) && e.status >= 500), (e) => e.service);
    expect(new Map(answer.rows.map((r) => [r[0] as string, r[1] as number]))).toEqual(want);
    const counts = answer.rows.map((r) => r[1] as number);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
  });

  it('every filter operator selects the rows this test selects', async () => {
    const cases: [Record<string, unknown>, (e: UiEvent) => boolean][] = [
      [{ col: 'service', op: 'IN', value: ['api', 'db'] }, (e) => e.service === 'api' || e.service === 'db'],
      [{ col: 'service', op: 'NOT IN', value: ['api'] }, (e) => e.service !== 'api'],
      [{ col: 'user', op: 'LIKE', value: 'u1%' }, (e) => e.user.startsWith('u1')],
      [{ col: 'user', op: 'NOT LIKE', value: 'u_' }, (e) => e.user.length !== 2],
      [{ col: 'region', op: 'IS NULL', value: null }, (e) => e.region === null],
      [{ col: 'region', op: 'IS NOT NULL', value: null }, (e) => e.region !== null],
      [{ col: 'latency_ms', op: '<', value: 100 }, (e) => e.latency_ms < 100],
      [{ col: 'status', op: '!=', value: 200 }, (e) => e.status !== 200],
      [{ col: 'ok', op: '=', value: false }, (e) => !e.ok],
    ];
    for (const [filter, keep] of cases) {
      const { answer } = await run({ view: 'table', filters: [filter] });
      expect(answer.rows[0]![0], JSON.stringify(filter)).toBe(events.filter((e) => inLastHour(e) && keep(e)).length);
    }
  });

  it('timeseries: buckets of the chosen width whose counts add up per service', async () => {
    const { q, answer } = await run({ view: 'timeseries', groupBy: ['service'], granularity: '5m' });
    expect(q.bucketSeconds).toBe(300);
    expect(answer.columns.map((c) => c.name)).toEqual(['t', 'service', 'count(*)']);
    for (const r of answer.rows) expect((r[0] as number) % 300).toBe(0);
    const sums = new Map<string, number>();
    for (const r of answer.rows) sums.set(r[1] as string, (sums.get(r[1] as string) ?? 0) + (r[2] as number));
    expect(sums).toEqual(countBy(events.filter(inLastHour), (e) => e.service));
    // The compare query reads the hour a day before.
    const before = await leaf.query(q.compareSql ?? ui.buildQuery(baseState({ view: 'timeseries', groupBy: ['service'], granularity: '5m', compare: '1d' })).compareSql);
    const total = (before.json as QueryAnswer).rows.reduce((s, r) => s + (r[2] as number), 0);
    expect(total).toBe(events.filter((e) => e.time < nowSeconds - 86_400 && e.time >= nowSeconds - 86_400 - 3600).length);
  });

  it('samples: the newest rows first, as many as the limit', async () => {
    const { answer } = await run({ view: 'samples', limit: 25, filters: [{ col: 'service', op: '=', value: 'api' }] });
    const want = events.filter((e) => inLastHour(e) && e.service === 'api').map((e) => e.time).sort((a, b) => b - a).slice(0, 25);
    const t = answer.columns.findIndex((c) => c.name === 'time');
    expect(answer.rows.map((r) => r[t])).toEqual(want);
  });
});

const noBrowser = chromiumMissing();
if (noBrowser !== null) console.warn(`test/ui.test.ts: ${noBrowser}`);

describe.skipIf(noBrowser !== null)('in headless chromium against shoal up (smoke)', () => {
  let up: UpCluster;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let events: UiEvent[];
  const nowSeconds = Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    [up, browser] = await Promise.all([startUp(2), launchBrowser()]);
    events = makeEvents(nowSeconds, 7);
    await ingestSpread(up, 'events', events);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await up?.stop();
  });

  it('builds a time series with the controls, draws it, shows the same rows as POST /v1/query, survives a reload, an error and a stopped leaf', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${up.url}/`);
    await page.locator('[data-testid="table"] option[value="events"]').waitFor({ state: 'attached' });
    await page.selectOption('[data-testid="table"]', 'events');
    await page.locator('#table-info', { hasText: 'rows' }).waitFor();
    await page.selectOption('[data-testid="view"]', 'timeseries');
    await page.selectOption('[data-testid="range"]', '1h');
    await page.locator('[data-testid="group-by"] option[value="service"]').waitFor({ state: 'attached' });
    await page.selectOption('[data-testid="filter-column"]', 'status');
    await page.selectOption('[data-testid="filter-op"]', '>=');
    await page.fill('[data-testid="filter-value"]', '500');
    await page.click('[data-testid="filter-add"]');
    await page.selectOption('[data-testid="group-by"]', 'service');
    await page.selectOption('[data-testid="metric"]', { label: 'avg(latency_ms)' });
    await clickRun(page);
    expect(await page.locator('[data-testid="error"]').isHidden(), await page.locator('[data-testid="error"]').textContent() ?? '').toBe(true);

    const sql = (await page.locator('[data-testid="sql"]').textContent())!;
    expect(sql).toMatch(/^SELECT time_bucket\(INTERVAL '1 minute', time\) AS t, service, count\(\*\), avg\(latency_ms\) FROM events WHERE time >= now\(\) - INTERVAL '1 hour' AND status >= 500 GROUP BY t, service/);
    const answer = (await postJson(`${up.url}/v1/query`, { sql })).body as QueryAnswer;
    const shown = await shownTable(page);
    expect(shown).toEqual(expectedTable(answer));
    // Independently of the server: the errors per service this test sent in the last hour.
    const want = new Map<string, number>();
    for (const e of events) if (e.time >= nowSeconds - 3600 && e.status >= 500) want.set(e.service, (want.get(e.service) ?? 0) + 1);
    const got = new Map<string, number>();
    for (const r of shown.rows) got.set(r[1]!, (got.get(r[1]!) ?? 0) + Number(r[2]));
    expect(got).toEqual(want);

    // Drawn: a line per service (count and avg each), coloured strokes on the canvas.
    const labels = await legendLabels(page);
    expect(new Set(labels)).toEqual(new Set([...want.keys()].flatMap((s) => [`${s} · count(*)`, `${s} · avg(latency_ms)`])));
    expect(await colouredPixels(page)).toBeGreaterThan(300);
    expect(await page.locator('[data-testid="coverage"]').textContent()).toContain('coverage 100%');

    // The URL holds the query: a reload runs it again and shows the same.
    expect(page.url()).toContain('g=service');
    await page.reload();
    await waitRuns(page, 1);
    expect(await page.locator('[data-testid="sql"]').textContent()).toBe(sql);
    expect(await shownTable(page)).toEqual(shown);

    // A bad query: its code, as the server gives it, and the page still works afterwards.
    const badSql = 'SELECT no_such_column FROM events';
    const refused = await postJson(`${up.url}/v1/query`, { sql: badSql });
    expect(refused.body.error.code).toMatch(/^SHOAL_ERR_/);
    await page.fill('[data-testid="sql-input"]', badSql);
    await clickRun(page, 'run-sql');
    const error = page.locator('[data-testid="error"]');
    expect(await error.isVisible()).toBe(true);
    expect(await error.textContent()).toContain(refused.body.error.code);
    expect(await page.locator('[data-testid="sql"]').textContent()).toBe(badSql);
    await clickRun(page);
    expect(await error.isHidden()).toBe(true);
    expect(await shownTable(page)).toEqual(shown);
    expect(SERVICES).toEqual(expect.arrayContaining([...want.keys()]));

    // A leaf that stops answering: the coverage says how much answered and names it.
    await runWithLeafStopped(page, up, 'leaf-2', clickRun);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
