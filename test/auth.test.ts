/**
 * Auth (issue 7): with tokens set, every protected route of a real leaf refuses a request without
 * the right bearer token (401, SHOAL_ERR_UNAUTHORIZED) and works with it; the admin route takes
 * only the admin token; /healthz stays open for load balancers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeaf, type LeafProcess } from './support/processes.js';

const TOKEN = 'query-token-0123456789';
const ADMIN = 'admin-token-9876543210';
let leaf: LeafProcess;
let dataDir: string;

async function call(method: 'GET' | 'POST', path: string, token: string | null, body?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await request(`${leaf.url}${path}`, { method, headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'shoal-auth-'));
  leaf = await startLeaf({ dataDir, args: ['--token', TOKEN, '--admin-token', ADMIN, '--no-shm'] });
});
afterAll(async () => {
  await leaf?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const routes: [string, 'GET' | 'POST', string, string | undefined][] = [
  ['ingest', 'POST', '/v1/tables/events/events', '[{"a":1}]'],
  ['query', 'POST', '/v1/query', '{"sql":"SELECT count(*) FROM events"}'],
  ['tables', 'GET', '/v1/tables', undefined],
  ['table', 'GET', '/v1/tables/events', undefined],
  ['status', 'GET', '/v1/status', undefined],
  ['metrics', 'GET', '/metrics', undefined],
];

describe('bearer tokens', () => {
  it.each(routes)('%s refuses without the token and works with it', async (_name, method, path, body) => {
    for (const bad of [null, 'wrong', ADMIN, TOKEN + 'x']) {
      const r = await call(method, path, bad, body);
      expect(r.status, `${path} with ${bad}`).toBe(401);
      expect(JSON.parse(r.text).error.code).toBe('SHOAL_ERR_UNAUTHORIZED');
      expect(r.text).not.toContain(TOKEN);
    }
    const ok = await call(method, path, TOKEN, body);
    expect(ok.status, ok.text).toBe(200);
  });

  it('leaves /healthz open', async () => {
    expect((await call('GET', '/healthz', null)).status).toBe(200);
  });

  it('admin handoff takes only the admin token', async () => {
    for (const bad of [null, TOKEN, 'wrong']) {
      const r = await call('POST', '/v1/admin/handoff', bad, '{}');
      expect(r.status).toBe(401);
    }
    // With the admin token it is a planned restart; without shared memory, a clean stop.
    const r = await call('POST', '/v1/admin/handoff', ADMIN, '{}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ handingOff: true, via: 'disk' });
    const exit = await new Promise<number | null>((resolve) => {
      if (leaf.process.exitCode !== null) resolve(leaf.process.exitCode);
      else leaf.process.once('exit', (code) => resolve(code));
    });
    expect(exit).toBe(0);
  });
});
