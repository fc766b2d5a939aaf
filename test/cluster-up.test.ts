/**
 * `shoal up` as a user runs it: a real supervisor process starting 2 leaves and an aggregator,
 * ingest and query through it, `shoal status`, a leaf killed by hand and restarted by the
 * supervisor, and SIGTERM stopping every process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { CLI_PATH, getJson, postJson, REPO_ROOT, runCli, sleep, waitFor, freePortRange } from './support/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-up-'));
const pids = new Set<number>();

afterAll(() => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  // The leaves handed their data off to shared memory on SIGTERM; remove those segments.
  for (const leaf of ['leaf-1', 'leaf-2']) {
    const idFile = join(dir, 'data', leaf, 'leaf-id');
    if (!existsSync(idFile)) continue;
    const prefix = `shoal-${readFileSync(idFile, 'utf8').trim()}-`;
    if (existsSync('/dev/shm')) for (const f of readdirSync('/dev/shm')) if (f.startsWith(prefix)) rmSync(join('/dev/shm', f), { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});


const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

it('starts, survives a killed leaf and stops on SIGTERM', async () => {
  const port = await freePortRange(2);
  const dataDir = join(dir, 'data');
  const up = spawn(process.execPath, [CLI_PATH, 'up', '--leaves', '2', '--port', String(port), '--data-dir', dataDir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  pids.add(up.pid!);
  let out = '';
  up.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
  up.stderr.setEncoding('utf8').on('data', (c: string) => { out += c; });
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('shoal up to be ready', async () => (out.includes(`2 leaves + aggregator ready at ${url}`) ? true : undefined), 30_000)
    .catch((e: Error) => { throw new Error(`${e.message}\n${out}`); });
  expect(out).toContain(`leaf-1 listening on http://127.0.0.1:${port + 1}`);
  expect(JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')).leaves.map((l: { id: string }) => l.id)).toEqual(['leaf-1', 'leaf-2']);
  expect(existsSync(join(dataDir, 'logs', 'leaf-2.log'))).toBe(true);

  const status = (await getJson(`${url}/v1/status`)).body;
  for (const m of status.leaves) pids.add(m.pid);
  pids.add(status.pid);
  const rows = Array.from({ length: 50 }, (_, i) => ({ time: 1_700_000_000 + i, service: i % 2 ? 'api' : 'web', latency_ms: i }));
  for (let i = 0; i < 5; i++) expect((await postJson(`${url}/v1/tables/events/events`, rows.slice(i * 10, i * 10 + 10))).status).toBe(200);
  const q = await runCli(['query', '--url', url, 'SELECT service, count(*) AS n FROM events GROUP BY service ORDER BY service']);
  expect(q.code).toBe(0);
  expect(q.stdout).toMatch(/api\s*\|\s*25/);
  expect(q.stdout).toContain('coverage 100% (2/2 leaves, 50 rows)');
  const st = await runCli(['status', '--url', url]);
  expect(st.code).toBe(0);
  expect(st.stdout).toContain('2/2 members healthy');

  const victim = status.leaves.find((m: { id: string }) => m.id === 'leaf-1');
  process.kill(victim.pid, 'SIGKILL');
  const back = await waitFor('leaf-1 to be restarted', async () => {
    const m = (await getJson(`${url}/v1/status`)).body.leaves.find((l: { id: string }) => l.id === 'leaf-1');
    return m.state === 'healthy' && m.pid !== victim.pid ? m : undefined;
  }, 20_000);
  pids.add(back.pid);
  expect(out).toMatch(/leaf-1 exited \(signal SIGKILL\); restarting in \d+ ms/);
  const after = await postJson(`${url}/v1/query`, { sql: 'SELECT count(*) FROM events' });
  expect(after.body.coverage).toMatchObject({ percent: 100, leavesResponded: 2 });

  up.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(40_000).then(() => 'timeout' as const)]);
  expect(code, out).toBe(0);
  for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
});
