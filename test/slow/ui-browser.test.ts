/**
 * The web UI in headless chromium (issue 18), the full set (`npm run test:slow`; the smoke test
 * is in test/ui.test.ts): against a real `shoal up` with 2 leaves, every view built with the
 * controls and checked against POST /v1/query for the SQL the page shows and against counts of
 * the rows this test sent; compare to the day before (dashed, shifted back); top N with "other"
 * or hidden; filter chips; a custom range; a shared URL in a fresh browser; a `kill -STOP`ped leaf
 * named in the coverage; a query token asked once (on a leaf with --token). Writes the
 * screenshots of docs/ui.md to docs/ui/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, getJson, postJson, waitFor } from '../support/cluster.js';
import { startLeaf, type LeafProcess } from '../support/processes.js';
import {
  chartSeries, chromiumMissing, clickRun, colouredPixels, expectedTable, ingestSpread, launchBrowser, legendLabels, makeEvents, runWithLeafStopped, shownTable, startUp, waitRuns,
  type QueryAnswer, type UiEvent, type UpCluster,
} from '../support/browser.js';

const SHOTS_DIR = join(REPO_ROOT, 'docs', 'ui');
const VIEWPORT = { width: 1100, height: 720 };

const noBrowser = chromiumMissing();
if (noBrowser !== null) console.warn(`test/slow/ui-browser.test.ts: ${noBrowser}`);

describe.skipIf(noBrowser !== null)('the web UI in chromium', () => {
  let up: UpCluster;
  let browser: Browser;
  let events: UiEvent[];
  const nowSeconds = Math.floor(Date.now() / 1000);
  const lastHour = (e: UiEvent) => e.time >= nowSeconds - 3600;
  const dayBefore = (e: UiEvent) => e.time >= nowSeconds - 86_400 - 3600 && e.time < nowSeconds - 86_400;

  beforeAll(async () => {
    [up, browser] = await Promise.all([startUp(2), launchBrowser()]);
    events = makeEvents(nowSeconds, 11, 900, 600);
    await ingestSpread(up, 'events', events);
    mkdirSync(SHOTS_DIR, { recursive: true });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await up?.stop();
  });

  /** Uncaught errors in each page (a test ends by checking there were none). */
  const errorsOf = new WeakMap<Page, string[]>();
  async function open(search = ''): Promise<Page> {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    errorsOf.set(page, errors);
    await page.goto(`${up.url}/${search}`);
    await page.locator('#table-info', { hasText: 'rows' }).waitFor();
    if (search.includes('table=') || search.includes('sql=')) await waitRuns(page, 1);
    return page;
  }
  /** docs/ui/<name>.png: the top of the page, legend included, at CSS pixel size (small files). */
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS_DIR, `${name}.png`), fullPage: true, clip: { x: 0, y: 0, width: VIEWPORT.width, height: 860 } });
  /** Ends a test's page: no uncaught error happened in it. */
  async function done(page: Page) {
    expect(errorsOf.get(page) ?? []).toEqual([]);
    await page.close();
  }
  const answerFor = async (sql: string) => (await postJson(`${up.url}/v1/query`, { sql })).body as QueryAnswer;
  const shownSql = async (page: Page) => (await page.locator('[data-testid="sql"]').textContent())!;
  async function addFilter(page: Page, col: string, op: string, value = '') {
    await page.selectOption('[data-testid="filter-column"]', col);
    await page.selectOption('[data-testid="filter-op"]', op);
    if (value !== '') await page.fill('[data-testid="filter-value"]', value);
    await page.click('[data-testid="filter-add"]');
  }

  it('time series: errors by service for the last hour compared with the day before (dashed, shifted back)', async () => {
    const page = await open();
    await page.selectOption('[data-testid="view"]', 'timeseries');
    await page.selectOption('[data-testid="range"]', '1h');
    await addFilter(page, 'status', 'IN', '500, 503');
    await page.selectOption('[data-testid="group-by"]', 'service');
    await page.selectOption('[data-testid="compare"]', '1d');
    await page.selectOption('[data-testid="granularity"]', '5m');
    await page.fill('[data-testid="top"]', '4');
    await page.locator('[data-testid="top"]').dispatchEvent('change');
    await clickRun(page);
    const sql = await shownSql(page);
    const compareText = (await page.locator('[data-testid="sql-compare"]').textContent())!;
    const compareSql = compareText.split('\n').slice(1).join('\n');
    expect(sql).toMatch(/^SELECT time_bucket\(INTERVAL '5 minutes', time\) AS t, service, count\(\*\) FROM events WHERE time >= now\(\) - INTERVAL '1 hour' AND status IN \(500, 503\) GROUP BY t, service ORDER BY t LIMIT \d+$/);
    expect(compareSql).toContain("time >= now() - INTERVAL '25 hours' AND time < now() - INTERVAL '1 day'");
    const main = await answerFor(sql);
    const before = await answerFor(compareSql);
    expect(await shownTable(page)).toEqual(expectedTable(main));

    const errs = (e: UiEvent) => e.status >= 500;
    const perService = new Map<string, number>();
    for (const e of events) if (lastHour(e) && errs(e)) perService.set(e.service, (perService.get(e.service) ?? 0) + 1);
    const ranked = [...perService].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    expect(ranked.length).toBeGreaterThan(4);
    const top = ranked.slice(0, 4).map(([s]) => s);
    const { xs, series } = await chartSeries(page);
    const mainSeries = series.filter((s) => !s.compare);
    const twins = series.filter((s) => s.compare);
    expect(mainSeries.map((s) => s.label)).toEqual([...top, 'other']);
    expect(twins.every((s) => s.dash !== null && s.label.endsWith('(1 day before)'))).toBe(true);
    expect(mainSeries.every((s) => s.dash === null)).toBe(true);
    expect(await legendLabels(page)).toEqual(series.map((s) => s.label));
    // Every error of the last hour is in exactly one drawn line ("other" sums the rest).
    const drawnTotal = mainSeries.reduce((sum, s) => sum + s.values.reduce<number>((a, v) => a + (v ?? 0), 0), 0);
    expect(drawnTotal).toBe(events.filter((e) => lastHour(e) && errs(e)).length);
    // The dashed lines are the day before's buckets moved forward by one day.
    const twinTotal = twins.reduce((sum, s) => sum + s.values.reduce<number>((a, v) => a + (v ?? 0), 0), 0);
    expect(twinTotal).toBe(events.filter((e) => dayBefore(e) && errs(e)).length);
    const firstTwin = twins.find((s) => s.label.startsWith(`${top[0]} `))!;
    for (const r of before.rows.filter((r) => r[1] === top[0])) {
      expect(firstTwin.values[xs.indexOf((r[0] as number) + 86_400)], `bucket ${r[0]}`).toBe(r[2]);
    }
    expect(await colouredPixels(page)).toBeGreaterThan(500);
    expect(await page.locator('[data-testid="note"]').textContent()).toMatch(/the other \d+ summed as "other"/);
    await shot(page, 'timeseries');
    await done(page);
  });

  it('time series: a metric that cannot be summed hides the rest and says so; hover shows values', async () => {
    const page = await open();
    await page.selectOption('[data-testid="view"]', 'timeseries');
    await page.selectOption('[data-testid="group-by"]', 'service');
    await page.locator('[data-testid="metric-chip"] button').click();
    await page.selectOption('[data-testid="metric"]', { label: 'p90(latency_ms)' });
    await page.fill('[data-testid="top"]', '2');
    await page.locator('[data-testid="top"]').dispatchEvent('change');
    await clickRun(page);
    expect(await shownSql(page)).toContain('p90(latency_ms)');
    const { series } = await chartSeries(page);
    expect(series).toHaveLength(2);
    expect(await page.locator('[data-testid="note"]').textContent()).toMatch(/\d+ more are hidden \(these metrics cannot be summed/);
    // Hovering the plot fills the legend with the values under the cursor.
    const over = page.locator('[data-testid="chart"] .u-over');
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    const values = await page.locator('[data-testid="chart"] .u-legend .u-series .u-value').allTextContents();
    expect(values[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // A click on a legend entry hides that line.
    await page.locator('[data-testid="chart"] .u-legend .u-series').nth(1).click();
    expect(await page.locator('[data-testid="chart"] .u-legend .u-series').nth(1).getAttribute('class')).toContain('u-off');
    await done(page);
  });

  it('table: group, several metrics, order and limit, compared with the day before', async () => {
    const page = await open();
    await page.selectOption('[data-testid="view"]', 'table');
    await page.selectOption('[data-testid="group-by"]', 'service');
    await page.selectOption('[data-testid="metric"]', { label: 'avg(latency_ms)' });
    await page.selectOption('[data-testid="metric"]', { label: 'approx_count_distinct(user)' });
    await page.selectOption('[data-testid="order"]', { label: 'count(*)' });
    await page.selectOption('[data-testid="order-dir"]', 'asc');
    await page.fill('[data-testid="limit"]', '4');
    await page.locator('[data-testid="limit"]').dispatchEvent('change');
    await page.selectOption('[data-testid="compare"]', '1d');
    await clickRun(page);
    const sql = await shownSql(page);
    expect(sql).toBe("SELECT service, count(*), avg(latency_ms), approx_count_distinct(user) FROM events WHERE time >= now() - INTERVAL '1 hour' GROUP BY service ORDER BY count(*) ASC LIMIT 4");
    const main = await answerFor(sql);
    expect(await shownTable(page)).toEqual(expectedTable(main));
    const counts = new Map<string, number>();
    for (const e of events) if (lastHour(e)) counts.set(e.service, (counts.get(e.service) ?? 0) + 1);
    const fewest = [...counts.values()].sort((a, b) => a - b).slice(0, 4);
    expect(main.rows.map((r) => r[1])).toEqual(fewest);
    // Beside each group: its count the day before.
    const beforeCounts = new Map<string, number>();
    for (const e of events) if (dayBefore(e)) beforeCounts.set(e.service, (beforeCounts.get(e.service) ?? 0) + 1);
    const compareRows = await page.locator('[data-testid="compare-table"] tbody tr').evaluateAll((trs: any[]) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td: any) => String(td.textContent))));
    expect(compareRows.map((r) => [r[0], r[2]])).toEqual(main.rows.map((r) => [r[0], String(beforeCounts.get(r[0] as string) ?? '—')]));
    await shot(page, 'table');
    await done(page);
  });

  it('samples: raw rows newest first, filter chips added and removed', async () => {
    const page = await open();
    await page.selectOption('[data-testid="view"]', 'samples');
    await addFilter(page, 'service', 'IN', 'api, db');
    await addFilter(page, 'region', 'IS NOT NULL');
    await addFilter(page, 'latency_ms', '>=', 'fast');
    expect(await page.locator('#filter-error').textContent()).toContain('"fast" is not a number');
    await page.fill('[data-testid="limit"]', '30');
    await page.locator('[data-testid="limit"]').dispatchEvent('change');
    await clickRun(page);
    const sql = await shownSql(page);
    expect(sql).toBe("SELECT * FROM events WHERE time >= now() - INTERVAL '1 hour' AND service IN ('api', 'db') AND region IS NOT NULL ORDER BY time DESC LIMIT 30");
    const answer = await answerFor(sql);
    const shown = await shownTable(page);
    expect(shown).toEqual(expectedTable(answer));
    const want = events.filter((e) => lastHour(e) && (e.service === 'api' || e.service === 'db') && e.region !== null).sort((a, b) => b.time - a.time).slice(0, 30);
    const timeAt = shown.head.indexOf('time');
    expect(shown.rows.map((r) => r[timeAt])).toEqual(want.map((e) => new Date(e.time * 1000).toISOString().replace('.000Z', 'Z')));
    await shot(page, 'samples');
    // Removing a chip removes its predicate.
    await page.locator('[data-testid="filter-chip"]', { hasText: 'region' }).locator('button').click();
    await clickRun(page);
    expect(await shownSql(page)).not.toContain('region');
    await done(page);
  });

  it('a custom range, and a shared URL opened in a fresh browser shows the same query and rows', async () => {
    const page = await open();
    await page.selectOption('[data-testid="view"]', 'table');
    await page.selectOption('[data-testid="range"]', 'custom');
    const start = nowSeconds - 1800;
    const end = nowSeconds - 600;
    const local = (s: number) => new Date(s * 1000).toISOString().slice(0, 19);
    await page.fill('[data-testid="range-start"]', local(start));
    await page.fill('[data-testid="range-end"]', local(end));
    await page.selectOption('[data-testid="group-by"]', 'region');
    await clickRun(page);
    const sql = await shownSql(page);
    expect(sql).toContain(`time >= '${local(start)}Z' AND time < '${local(end)}Z'`);
    const want = new Map<string, number>();
    for (const e of events) if (e.time >= start && e.time < end) want.set(e.region ?? 'NULL', (want.get(e.region ?? 'NULL') ?? 0) + 1);
    const shown = await shownTable(page);
    expect(new Map(shown.rows.map((r) => [r[0]!, Number(r[1])]))).toEqual(want);

    const fresh = await browser.newContext({ viewport: VIEWPORT });
    const other = await fresh.newPage();
    await other.goto(page.url());
    await waitRuns(other, 1);
    expect(await shownSql(other)).toBe(sql);
    expect(await shownTable(other)).toEqual(shown);
    // Another query, then the browser's back button: the first one again.
    await page.selectOption('[data-testid="view"]', 'samples');
    await clickRun(page);
    expect(await shownSql(page)).toContain('SELECT *');
    await page.goBack();
    await waitRuns(page, 3);
    expect(await shownSql(page)).toBe(sql);
    expect(await shownTable(page)).toEqual(shown);
    await fresh.close();
    await done(page);
  });

  it('raw SQL: any query, drawn as a time series when it has a time column', async () => {
    const sql = "SELECT time_bucket(INTERVAL '10 minutes', time) AS bucket, region, count(*) AS n FROM events WHERE time >= now() - INTERVAL '1 hour' GROUP BY bucket, region ORDER BY bucket";
    const page = await open(`?table=events&view=timeseries&sql=${encodeURIComponent(sql)}`);
    expect(await shownSql(page)).toBe(sql);
    expect(await shownTable(page)).toEqual(expectedTable(await answerFor(sql)));
    const { series } = await chartSeries(page);
    expect(series.map((s) => s.label).sort()).toEqual(['NULL', 'ap', 'eu', 'us']);
    expect(await colouredPixels(page)).toBeGreaterThan(300);
    expect(await page.locator('[data-testid="sql-cli"]').textContent()).toBe(`shoal query --url ${up.url} "${sql}"`);
    await done(page);
  });

  it('a stopped leaf: coverage below 100% naming it, in the warning style; whole again after SIGCONT', async () => {
    const page = await open('?table=events&view=table');
    await runWithLeafStopped(page, up, 'leaf-2', clickRun, async (text) => {
      expect(text).toMatch(/1\/2 leaves answered/);
      // What answered is exactly the other leaf's rows (ingestSpread sent it every other event).
      const leaves = up.members.filter((m) => m.id !== 'aggregator');
      const victim = leaves.find((m) => m.id === 'leaf-2')!;
      const answered = events.filter((e, k) => k % leaves.length !== leaves.indexOf(victim) && lastHour(e)).length;
      expect((await shownTable(page)).rows).toEqual([[String(answered)]]);
    });
    await waitFor('leaf-2 healthy again', async () => ((await getJson(`${up.url}/v1/status`)).body.leaves.every((m: { state: string }) => m.state === 'healthy') ? true : undefined), 20_000);
    await clickRun(page);
    expect(await page.locator('[data-testid="coverage"]').textContent()).toContain('coverage 100%');
    expect(await page.locator('[data-testid="coverage"]').getAttribute('class')).not.toContain('warn');
    await done(page);
  });
});

describe.skipIf(noBrowser !== null)('the web UI on a leaf with a query token', () => {
  const TOKEN = 'ui-token-0123456789';
  let leaf: LeafProcess;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-ui-auth-'));
    [leaf, browser] = await Promise.all([startLeaf({ dataDir: join(dir, 'leaf'), args: ['--token', TOKEN, '--no-shm', '--workers', '1', '--log-level', 'warn'] }), launchBrowser()]);
    const rows = makeEvents(Math.floor(Date.now() / 1000), 3, 50, 0);
    expect((await postJson(`${leaf.url}/v1/tables/events/events`, rows, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await leaf?.stop({ signal: 'SIGKILL' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the token once, sends it as a bearer token, keeps it out of the URL', async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const authHeaders: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/v1/')) authHeaders.push(r.headers().authorization ?? ''); });
    await page.goto(`${leaf.url}/`);
    const dialog = page.locator('[data-testid="token-dialog"]');
    await dialog.waitFor({ state: 'visible' });
    // A wrong token is refused and asked for again.
    await page.fill('[data-testid="token-input"]', 'wrong');
    await page.click('[data-testid="token-ok"]');
    await expect.poll(async () => page.locator('#token-message').textContent()).toContain('refused');
    await page.fill('[data-testid="token-input"]', TOKEN);
    await page.click('[data-testid="token-ok"]');
    await page.locator('#table-info', { hasText: 'rows' }).waitFor();
    await page.selectOption('[data-testid="view"]', 'table');
    await clickRun(page);
    expect((await shownTable(page)).rows).toEqual([['50']]);
    expect(await page.locator('[data-testid="coverage"]').textContent()).toContain('1/1 leaf answered');
    expect(await page.locator('header').textContent()).toContain('leaf ');
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('shoal.token'))).toBe(TOKEN);
    expect(authHeaders.at(-1)).toBe(`Bearer ${TOKEN}`);
    // A reload in the same tab asks nothing more.
    await page.reload();
    await waitRuns(page, 1);
    expect(await dialog.isVisible()).toBe(false);
    expect((await shownTable(page)).rows).toEqual([['50']]);
    await context.close();
  });
});
