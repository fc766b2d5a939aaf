/**
 * An in-process leaf for tests that exercise the HTTP API through fastify's inject() (no socket):
 * ingest validation, error shapes, the query path. Process-level behaviour (restart, kill -9,
 * handoff) is tested with real processes instead (processes.ts).
 */
import { defaultLeafConfig, type LeafConfig } from '../../server/leaf/config.js';
import { Leaf, buildLeafApp } from '../../server/leaf/leaf.js';
import type { DecodeRunner } from '../../server/leaf/ingest-pool.js';

/** `makeDecodeRunner`: what runs the ingest pool's decodes (default: real worker threads). */
export async function inProcessLeaf(overrides: Partial<LeafConfig> = {}, makeDecodeRunner?: (threads: number) => DecodeRunner) {
  const config: LeafConfig = { ...defaultLeafConfig(), port: 0, workers: 1, diskLog: false, shm: false, ...overrides };
  const leaf = new Leaf(config, 'leaf-test', makeDecodeRunner);
  leaf.state = 'serving';
  const app = buildLeafApp(leaf);
  await app.ready();
  const ingest = async (table: string, body: string, contentType = 'application/json', headers: Record<string, string> = {}) => {
    const res = await app.inject({ method: 'POST', url: `/v1/tables/${table}/events`, payload: body, headers: { 'content-type': contentType, ...headers } });
    return { status: res.statusCode, json: res.json() as Record<string, any> };
  };
  const query = async (sql: string) => {
    const res = await app.inject({ method: 'POST', url: '/v1/query', payload: JSON.stringify({ sql }), headers: { 'content-type': 'application/json' } });
    return { status: res.statusCode, json: res.json() as Record<string, any> };
  };
  const close = async () => { await app.close(); await leaf.closePools(); };
  return { leaf, app, ingest, query, close };
}
