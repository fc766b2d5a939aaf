/**
 * Helpers for the web UI's browser tests (issue 18): Debian's chromium driven by playwright-core
 * (no browser download: `executablePath` is the system's), a real `shoal up` started as a child
 * process on free ports in a temp dir, seeded events, and readers of what the page shows.
 *
 * The cell format here is written again from docs/ui.md (times as ISO-8601 UTC, numbers as JSON
 * digits, NULL, sets as [a, b]), not imported from the page, so a page that formats wrongly fails.
 *
 * Not here: the assertions (test/ui.test.ts, test/slow/ui-*.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { CLI_PATH, REPO_ROOT, freePortRange, getJson, postJson, sleep, waitFor } from './cluster.js';
import { mulberry32 } from './gen.js';

/** Where Debian's package puts it; SHOAL_CHROMIUM overrides (another distribution). */
export const CHROMIUM_PATH = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. Printed by the skip. */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM_PATH)) return null;
  return `no chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set SHOAL_CHROMIUM): the web UI's browser tests are skipped`;
}

export async function launchBrowser(): Promise<Browser> {
  // As root in a container chromium needs --no-sandbox (playwright adds it unless chromiumSandbox).
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, timeout: 30_000 });
}

export interface UpMember { id: string; url: string; pid: number }

export interface UpCluster {
  readonly url: string;
  readonly dir: string;
  readonly members: UpMember[];
  readonly process: ChildProcess;
  output(): string;
  /** SIGTERM to `shoal up` (it stops its children), SIGKILL to any left; removes the dir. */
  stop(): Promise<void>;
}

/**
 * `shoal up --leaves N` on a free port range, without shared memory (so nothing is left in
 * /dev/shm), a short leaf timeout (a stopped leaf costs a query 2 s, not 5). Resolves once it
 * prints ready and the aggregator reports every member healthy.
 */
export async function startUp(leafCount: number, extraArgs: readonly string[] = []): Promise<UpCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-ui-'));
  const port = await freePortRange(leafCount);
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [CLI_PATH, 'up', '--leaves', String(leafCount), '--port', String(port), '--data-dir', join(dir, 'data'), '--no-shm', '--leaf-timeout', '2000', ...extraArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const push = (c: string) => { out = (out + c).slice(-32_768); };
  child.stdout.setEncoding('utf8').on('data', push);
  child.stderr.setEncoding('utf8').on('data', push);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const members: UpMember[] = [];
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // A leaf stopped by a test must be able to take SIGTERM.
      for (const m of members) { try { process.kill(m.pid, 'SIGCONT'); } catch { /* gone */ } }
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!done) child.kill('SIGKILL');
    }
    // Anything `shoal up` started and did not stop (it was killed): its leaves and aggregator.
    for (const m of members) { try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('shoal up to be ready', async () => (out.includes('ready at') ? true : child.exitCode !== null ? Promise.reject(new Error('exited')) : undefined), 60_000);
    const status = await waitFor('every member healthy', async () => {
      const st = (await getJson(`${url}/v1/status`)).body;
      return st.leaves?.length === leafCount && st.leaves.every((m: { state: string }) => m.state === 'healthy') ? st : undefined;
    }, 20_000);
    members.push({ id: 'aggregator', url, pid: status.pid });
    const cluster = JSON.parse(readFileSync(join(dir, 'data', 'cluster.json'), 'utf8')) as { leaves: { id: string; url: string }[] };
    for (const m of status.leaves as { id: string; pid: number }[]) members.push({ id: m.id, url: cluster.leaves.find((l) => l.id === m.id)!.url, pid: m.pid });
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  return { url, dir, members, process: child, output: () => out, stop };
}


export interface UiEvent { time: number; service: string; status: number; latency_ms: number; user: string; region: string | null; ok: boolean }

export const SERVICES = ['api', 'web', 'db', 'auth', 'search', 'billing'];

/**
 * Events in the last hour before `nowSeconds` and in the same hour a day before, kept 2 minutes
 * away from either edge so a query run a little later sees exactly the same rows. Services are
 * skewed (api most), so a top-N has a clear order.
 */
export function makeEvents(nowSeconds: number, seed: number, countNow = 600, countDayBefore = 300): UiEvent[] {
  const rnd = mulberry32(seed);
  const one = (base: number): UiEvent => {
    const service = SERVICES[Math.min(SERVICES.length - 1, Math.floor(rnd() * rnd() * SERVICES.length * 1.2))]!;
    const status = rnd() < 0.3 ? (rnd() < 0.5 ? 500 : 503) : 200;
    return {
      time: Math.round(base - 120 - rnd() * (3600 - 240)),
      service, status,
      latency_ms: Math.round((5 + rnd() * 300) * 100) / 100,
      user: `u${Math.floor(rnd() * 40)}`,
      region: rnd() < 0.2 ? null : ['eu', 'us', 'ap'][Math.floor(rnd() * 3)]!,
      ok: status === 200,
    };
  };
  return [...Array.from({ length: countNow }, () => one(nowSeconds)), ...Array.from({ length: countDayBefore }, () => one(nowSeconds - 86_400))];
}

/**
 * Sends `rows` round-robin straight to each leaf (so every leaf holds some: a stopped one is
 * then missing rows), and waits until the aggregator's tables list shows them all.
 */
export async function ingestSpread(up: UpCluster, table: string, rows: readonly object[]): Promise<void> {
  const leaves = up.members.filter((m) => m.id !== 'aggregator');
  for (const [i, leaf] of leaves.entries()) {
    const mine = rows.filter((_, k) => k % leaves.length === i);
    const r = await postJson(`${leaf.url}/v1/tables/${table}/events`, mine);
    if (r.status !== 200) throw new Error(`ingest to ${leaf.id}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  await waitFor(`the aggregator to see ${rows.length} rows`, async () => {
    const t = (await getJson(`${up.url}/v1/tables`)).body.tables?.find((x: { name: string }) => x.name === table);
    return t?.rows === rows.length ? true : undefined;
  });
}

/** A cell as the page must show it (docs/ui.md "Cells"), written independently of the page. */
export function expectedCell(v: unknown, type: string): string {
  if (v === null || v === undefined) return 'NULL';
  if (type === 'time' && typeof v === 'number') {
    const whole = Math.floor(v);
    const micros = Math.round((v - whole) * 1e6);
    const base = new Date(whole * 1000).toISOString().slice(0, 19);
    return micros === 0 ? `${base}Z` : `${base}.${String(micros).padStart(6, '0').replace(/0+$/, '')}Z`;
  }
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

export interface QueryAnswer { columns: { name: string; type: string }[]; rows: unknown[][]; coverage: { percent: number; failures: { leaf: string; reason: string }[] } }

/** The answer as the page must show it: header names and cell texts. */
export function expectedTable(a: QueryAnswer): { head: string[]; rows: string[][] } {
  return { head: a.columns.map((c) => c.name), rows: a.rows.map((r) => r.map((v, i) => expectedCell(v, a.columns[i]!.type))) };
}

/** What `[data-testid=result-table]` shows: header texts and cell texts. */
export async function shownTable(page: Page): Promise<{ head: string[]; rows: string[][] }> {
  return page.locator('[data-testid="result-table"]').evaluate((t: any) => ({
    head: [...t.querySelectorAll('thead th')].map((th: any) => String(th.textContent ?? '')),
    rows: [...t.querySelectorAll('tbody tr')].map((tr: any) => [...tr.querySelectorAll('td')].map((td: any) => String(td.textContent ?? ''))),
  }));
}

/** Runs finished so far on the page (`data-runs` of its results, set when a run is over). */
export async function runsDone(page: Page): Promise<number> {
  return Number(await page.locator('main.results').getAttribute('data-runs') ?? '0');
}

/** Clicks Run (or `testid`) and waits for that run to be over: its table or its error shown. */
export async function clickRun(page: Page, testid = 'run'): Promise<void> {
  const before = await runsDone(page);
  await page.locator(`[data-testid="${testid}"]`).click();
  await waitRuns(page, before + 1);
}

/** Waits until `count` runs are over (a page load with a query in its URL runs one). */
export async function waitRuns(page: Page, count: number): Promise<void> {
  await page.waitForFunction((n) => Number((globalThis as any).document.querySelector('main.results')?.dataset.runs ?? 0) >= n, count, { timeout: 30_000 });
}

/** Pixels of the chart's canvas that are clearly coloured (series strokes; axes and grid are grey). */
export async function colouredPixels(page: Page): Promise<number> {
  return page.locator('[data-testid="chart"] canvas').first().evaluate((canvas: any) => {
    const ctx = canvas.getContext('2d');
    if (ctx === null) return 0;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i]!; const g = data[i + 1]!; const b = data[i + 2]!; const a = data[i + 3]!;
      if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  });
}

/** The chart's series as the page drew them (the element's `shoalChart`). */
export async function chartSeries(page: Page): Promise<{ xs: number[]; series: { label: string; values: (number | null)[]; dash: number[] | null; compare: boolean }[] }> {
  return page.locator('[data-testid="chart"]').evaluate((e: any) => {
    const c = e.shoalChart as { xs: number[]; series: { label: string; values: (number | null)[]; dash: number[] | null; compare: boolean }[] } | null | undefined;
    return c === undefined || c === null ? { xs: [], series: [] } : { xs: [...c.xs], series: c.series.map((s) => ({ label: s.label, values: [...s.values], dash: s.dash, compare: s.compare })) };
  });
}

/** The legend labels uPlot shows (one per drawn series, without the time). */
export async function legendLabels(page: Page): Promise<string[]> {
  return page.locator('[data-testid="chart"] .u-legend .u-series .u-label').allTextContents().then((l) => l.slice(1));
}

/**
 * Runs the page's query with leaf `id` stopped (SIGSTOP, resumed after): the coverage must name
 * it, be under 100% and wear the warning style. Returns the coverage text for more checks, and
 * runs `more` while the leaf is still stopped.
 */
export async function runWithLeafStopped(page: Page, up: { members: readonly { id: string; pid: number }[] }, id: string, clickRun: (p: Page) => Promise<void>, more: (text: string) => Promise<void> = async () => undefined): Promise<string> {
  const victim = up.members.find((m) => m.id === id)!;
  process.kill(victim.pid, 'SIGSTOP');
  try {
    await clickRun(page);
    const coverage = page.locator('[data-testid="coverage"]');
    const text = (await coverage.textContent())!;
    expect(text).toContain(`missing ${id}`);
    expect(Number(/coverage ([\d.]+)%/.exec(text)![1])).toBeLessThan(100);
    expect(await coverage.getAttribute('class')).toContain('warn');
    await more(text);
    return text;
  } finally {
    process.kill(victim.pid, 'SIGCONT');
  }
}
