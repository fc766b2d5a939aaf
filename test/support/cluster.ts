/**
 * Real-process cluster helpers for tests (STYLE rule 17): start any `shoal` subcommand
 * (`node dist/server/cli/cli.js ...`) and wait for its `listening on http://127.0.0.1:PORT` line,
 * start leaves and aggregators, write cluster files, a "leaf" that accepts connections and never
 * answers, and small JSON HTTP helpers. Every wait is bounded and failures carry the tail of the
 * process's stdout and stderr.
 *
 * Leaves come from processes.ts (startLeaf); this file adds what a cluster needs on top.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { CLI_PATH, REPO_ROOT, startLeaf, type LeafProcess, type StopOptions } from './processes.js';

export { CLI_PATH, REPO_ROOT };

const LISTENING = /listening on (http:\/\/[0-9.]+:\d+)/;
const OUTPUT_TAIL_CHARS = 16 * 1024;
const KILL_WAIT_MS = 5_000;

export interface ShoalProcess {
  readonly url: string;
  readonly process: ChildProcess;
  output(): string;
  stop(opts?: StopOptions): Promise<void>;
}

/** Starts `node cli.js <args>` and resolves once it prints its listening line. */
export async function startShoal(args: readonly string[], startTimeoutMs = 20_000): Promise<ShoalProcess> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const push = (chunk: string) => { out = (out + chunk).slice(-OUTPUT_TAIL_CHARS); };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', push);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no listening line within ${startTimeoutMs} ms: ${args.join(' ')}\n${out}`)); }, startTimeoutMs);
    child.stdout.on('data', (chunk: string) => {
      push(chunk);
      const m = LISTENING.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`exited before listening: ${args.join(' ')}\n${out}`)); });
  });
  let stopping: Promise<void> | null = null;
  const stop = (o: StopOptions = {}) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(o.signal ?? 'SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(o.timeoutMs ?? 10_000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(KILL_WAIT_MS)]);
      }
    })();
    return stopping;
  };
  return { url, process: child, output: () => out, stop };
}

/** A leaf with a fixed identity (and optionally a fixed port, to restart it where the cluster file says). */
export function startClusterLeaf(dataDir: string, id: string, port = 0): Promise<LeafProcess> {
  return startLeaf({ dataDir, args: ['--id', id, '--workers', '1', '--no-shm', '--port', String(port), '--log-level', 'warn'] });
}

export function startAggregator(clusterFile: string, args: readonly string[] = []): Promise<ShoalProcess> {
  return startShoal(['aggregator', '--cluster', clusterFile, '--port', '0', '--log-level', 'warn', ...args]);
}

export function writeClusterFile(dir: string, name: string, members: readonly { id: string; url: string }[]): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ leaves: members }));
  return file;
}

export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A loopback URL nothing listens on (a port bound, then closed). */
export async function deadUrl(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** A server that accepts connections and never answers (a hung leaf). */
export async function startHangingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface JsonAnswer<T = any> { status: number; body: T; ms: number }

export async function httpJson<T = any>(method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonAnswer<T>> {
  const started = performance.now();
  const res = await fetch(url, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text.length > 0 ? JSON.parse(text) : null; } catch { /* keep text */ }
  return { status: res.status, body: parsed as T, ms: performance.now() - started };
}

export const getJson = <T = any>(url: string) => httpJson<T>('GET', url);
export const postJson = <T = any>(url: string, body: unknown, headers?: Record<string, string>) => httpJson<T>('POST', url, body, headers);

/** Runs the CLI to completion (with `env` added to this process's environment); resolves with
 * its exit code and output. */
export function runCli(args: readonly string[], timeoutMs = 20_000, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`shoal ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port P with P..P+span free on loopback (for `shoal up`, which uses consecutive ports). */
export async function freePortRange(span: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p <= base + span && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

/** An aggregator over `count` leaf processes in a temp directory, and how to stop them all. */
export interface TempCluster {
  readonly leaves: readonly LeafProcess[];
  readonly aggregator: ShoalProcess;
  close(): Promise<void>;
}

/**
 * Starts `count` leaves (ids `${prefix}0`..) with `leafArgs` and an aggregator over them, under a
 * fresh temp directory that close() removes. On a failed start everything started is stopped.
 */
export async function startTempCluster(prefix: string, count: number, leafArgs: readonly string[], aggregatorArgs: readonly string[] = []): Promise<TempCluster> {
  const dir = mkdtempSync(join(tmpdir(), `shoal-${prefix}-`));
  const leaves: LeafProcess[] = [];
  let aggregator: ShoalProcess | null = null;
  const close = async () => {
    await aggregator?.stop();
    await Promise.all(leaves.map((leaf) => leaf.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < count; index++) {
      leaves.push(await startLeaf({ dataDir: join(dir, `leaf${index}`), args: ['--id', `${prefix}${index}`, '--workers', '1', '--no-shm', '--log-level', 'warn', '--fsync', 'never', ...leafArgs] }));
    }
    aggregator = await startAggregator(writeClusterFile(dir, 'cluster.json', leaves.map((leaf, index) => ({ id: `${prefix}${index}`, url: leaf.url }))), aggregatorArgs);
    return { leaves, aggregator, close };
  } catch (error) {
    await close();
    throw error;
  }
}
