/**
 * Plumbing shared by the benchmarks: a real leaf as a child process, HTTP over keep-alive undici
 * pools, command-line flags, medians, answer hashes, machine facts and aligned tables.
 *
 * The leaf is `node dist/server/cli/cli.js leaf --port 0 ...`, ready once it prints `listening on
 * http://HOST:PORT`; every wait is bounded, and stop() sends SIGTERM, then SIGKILL. Benchmarks
 * talk to it only over HTTP, as a client would: no in-process shortcuts.
 *
 * Not here: the data generator (data.ts) or any measurement policy (each bench says its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

/** The compiled CLI next to this file's directory: dist/bench/../server/cli/cli.js. */
export const CLI_PATH = fileURLToPath(new URL('../server/cli/cli.js', import.meta.url));

const LISTENING = /listening on (http:\/\/[^\s]+)/;
const LEAF_START_TIMEOUT_MS = 30_000;
/** A leaf with a disk log closes its log files on SIGTERM; a big heap takes a moment to exit. */
const LEAF_STOP_TIMEOUT_MS = 60_000;
/** Bytes of the leaf's stdout/stderr kept for error messages. */
const OUTPUT_TAIL_BYTES = 8 * 1024;

// ---- command-line flags ----

export interface FlagSpec { readonly name: string; readonly value: boolean; readonly help: string }

/**
 * Parses `--name value` and `--name` (boolean) flags. Unknown flags and missing values are errors
 * that name the flag and list the known ones.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  const usage = () => specs.map((s) => `--${s.name}${s.value ? ' V' : ''}`).join(' ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const spec = specs.find((s) => `--${s.name}` === arg);
    if (spec === undefined) {
      if (arg === '--help' || arg === '-h') {
        for (const s of specs) console.log(`  --${s.name}${s.value ? ' V' : ''}`.padEnd(28) + s.help);
        process.exit(0);
      }
      throw new Error(`unknown argument "${arg}" (expected ${usage()})`);
    }
    if (!spec.value) { out.set(spec.name, true); continue; }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${arg}: missing value`);
    out.set(spec.name, v);
  }
  return out;
}

/** An integer flag within [min, max] (inclusive), or its default. */
export function intFlag(flags: Map<string, string | true>, name: string, fallback: number, min: number, max: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const v = Number(String(raw).replaceAll('_', ''));
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new Error(`--${name}: expected an integer from ${min} to ${max}, got "${String(raw)}"`);
  return v;
}

// ---- numbers ----

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * A short hash of an answer (SQLite speedtest1 prints one): rows in order, integers as they are,
 * other numbers to 10 significant digits, so two engines that sum floats in a different order
 * still print the same hash for the same answer.
 */
export function answerHash(rows: readonly (readonly unknown[])[]): string {
  const canon = rows.map((r) => r.map((v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(10)) : v)));
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex').slice(0, 16);
}

// ---- the machine ----

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  memGiB: number;
  node: string;
  platform: string;
  loadAvg1m: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAvg1m: round2(os.loadavg()[0]!),
  };
}

/** Other processes competing for the cores make every figure worse: say so up front. */
export function warnIfBusy(log: (s: string) => void): void {
  const load = os.loadavg()[0]!;
  if (load > 0.5) log(`note: 1-minute load average is ${load.toFixed(2)} before the run; other processes may skew the figures`);
}

/** VmRSS and VmHWM (peak) of a process, in bytes, from /proc (Linux); null elsewhere. */
export function processMemory(pid: number): { rssBytes: number; rssPeakBytes: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m === null ? NaN : Number(m[1]) * 1024;
    };
    return { rssBytes: kib('VmRSS'), rssPeakBytes: kib('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * CPU time (user + system, all threads) a process has used, in ms, from /proc/<pid>/stat
 * (Linux; clock ticks of 10 ms); null elsewhere. Unlike wall time it barely moves when other
 * processes compete for the cores, so it is the steadier figure on a busy machine.
 */
export function processCpuMs(pid: number): number | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return ticks * CLOCK_TICK_MS;
  } catch {
    return null;
  }
}
/** USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICK_MS = 10;

// ---- a leaf process ----

export interface LeafProcess {
  readonly url: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Stops the leaf (SIGTERM, then SIGKILL after a timeout); safe to call twice. */
  stop(): Promise<void>;
  output(): string;
}

export interface StartLeafOptions {
  readonly dataDir: string;
  /** Leaf flags after the standard ones, e.g. ['--no-disk-log', '--workers', '2']. */
  readonly args: readonly string[];
  /** Flags for node itself, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  readonly nodeArgs?: readonly string[];
}

export async function startLeaf(opts: StartLeafOptions): Promise<LeafProcess> {
  if (!fs.existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} not found: run \`npm run build\` first`);
  const argv = [...(opts.nodeArgs ?? []), CLI_PATH, 'leaf', '--host', '127.0.0.1', '--port', '0', '--data-dir', opts.dataDir, '--log-level', 'warn', ...opts.args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => { tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES); };
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`leaf did not start within ${LEAF_START_TIMEOUT_MS} ms:\n${tail}`)), LEAF_START_TIMEOUT_MS);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      out += chunk.toString('utf8');
      const m = LISTENING.exec(out);
      if (m !== null) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`leaf exited before listening (code ${code}, signal ${signal}):\n${tail}`)); });
  });
  let stopping: Promise<void> | null = null;
  return {
    url,
    pid: child.pid!,
    process: child,
    output: () => tail,
    stop: () => {
      if (stopping !== null) return stopping;
      stopping = (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), LEAF_STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

// ---- HTTP ----

export interface HttpAnswer { status: number; body: unknown }

/** POSTs a body and parses the JSON answer. */
export async function postJson(pool: Pool, path: string, body: string | Buffer, contentType = 'application/json'): Promise<HttpAnswer> {
  const res = await pool.request({ method: 'POST', path, headers: { 'content-type': contentType }, body });
  const text = await res.body.text();
  return { status: res.statusCode, body: text.length > 0 ? JSON.parse(text) : null };
}

export async function getJson(pool: Pool, path: string): Promise<HttpAnswer> {
  const res = await pool.request({ method: 'GET', path });
  const text = await res.body.text();
  return { status: res.statusCode, body: text.length > 0 ? JSON.parse(text) : null };
}

export function newPool(url: string, connections: number): Pool {
  // Bodies of tens of MB take a while to send on a busy machine: generous timeouts.
  return new Pool(url, { connections, pipelining: 1, headersTimeout: 600_000, bodyTimeout: 600_000, keepAliveTimeout: 60_000 });
}

/** The table as the leaf reports it (GET /v1/tables/:t). */
export interface TableInfo { rows: number; bytes: number; blocks: number }

export async function tableInfo(pool: Pool, table: string): Promise<TableInfo> {
  const r = await getJson(pool, `/v1/tables/${table}`);
  if (r.status !== 200) throw new Error(`GET /v1/tables/${table}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  const b = r.body as TableInfo;
  return { rows: b.rows, bytes: b.bytes, blocks: b.blocks };
}

/**
 * Sends `bodies` over `connections` concurrent keep-alive connections (each connection sends
 * its next body when the previous one is acknowledged). Throws on any answer but 200; returns
 * the events the leaf accepted.
 */
export async function sendBatches(pool: Pool, table: string, bodies: readonly Buffer[], contentType: string, connections: number): Promise<number> {
  let next = 0;
  let accepted = 0;
  const path = `/v1/tables/${table}/events`;
  const loop = async () => {
    while (next < bodies.length) {
      const i = next++;
      const r = await postJson(pool, path, bodies[i]!, contentType);
      if (r.status !== 200) throw new Error(`batch ${i}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      accepted += (r.body as { accepted: number }).accepted;
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, bodies.length) }, loop));
  return accepted;
}

// ---- output ----

/** An aligned text table: first column left-aligned, the rest right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}
