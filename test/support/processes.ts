/**
 * Starts real shoal processes for tests that are about processes (STYLE rule 17): a leaf is
 * `node dist/server/cli/cli.js leaf --port 0 --data-dir DIR`, ready once it prints
 * `listening on http://127.0.0.1:PORT` on stdout.
 *
 * Every wait is bounded: startup has a timeout (the error carries the tail of stdout and stderr),
 * and stop() sends SIGTERM, then SIGKILL if the process has not exited in time. Output is drained
 * continuously (a full pipe would block the child) and only the last bytes are kept.
 *
 * Not here: talking HTTP to the process (shoal-client.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_PATH = fileURLToPath(new URL('../../dist/server/cli/cli.js', import.meta.url));

const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
/** Bytes of stdout/stderr kept per stream for error messages. */
const OUTPUT_TAIL_BYTES = 16 * 1024;
const START_TIMEOUT_MS_DEFAULT = 20_000;
const STOP_TIMEOUT_MS_DEFAULT = 15_000;
const KILL_TIMEOUT_MS = 5_000;

export interface StartLeafOptions {
  readonly dataDir: string;
  /** Extra command-line arguments after the standard ones. */
  readonly args?: readonly string[];
  readonly startTimeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** A command that execs the leaf (e.g. `unshare --mount ... sh -c '...; exec "$0" "$@"'`): the
   * leaf's argv follows it, and it must exec (not fork) so signals reach the leaf itself. */
  readonly wrap?: readonly string[];
}

export interface StopOptions {
  /** Signal sent first (default SIGTERM: a planned restart, which hands data off). */
  readonly signal?: NodeJS.Signals;
  /** How long to wait for exit before SIGKILL (default 15 s). */
  readonly timeoutMs?: number;
}

export interface LeafProcess {
  readonly url: string;
  readonly process: ChildProcess;
  /** The kept tail of stdout and stderr, for diagnostics. */
  output(): { stdout: string; stderr: string };
  /** Stops the leaf; resolves with its exit code or signal. Safe to call twice. */
  stop(opts?: StopOptions): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A leaf's shared-memory segments exactly (`/shoal-<id>-meta`, `/shoal-<id>-<gen>-<n>`), not
 * those of a leaf whose id merely starts with `<id>-`. */
export function segmentsOf(id: string, list: (prefix: string) => string[]): string[] {
  const own = new RegExp(`^/shoal-${id}-(meta|[0-9a-f]{8}-[0-9]+)$`);
  return list(`/shoal-${id}-`).filter((n) => own.test(n));
}

export function leafCliExists(): boolean {
  return existsSync(CLI_PATH);
}

/** Keeps the last OUTPUT_TAIL_BYTES characters of a stream. */
class Tail {
  text = '';
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > OUTPUT_TAIL_BYTES * 2) this.text = this.text.slice(-OUTPUT_TAIL_BYTES);
  }
  get value(): string {
    return this.text.slice(-OUTPUT_TAIL_BYTES);
  }
}

export async function startLeaf(opts: StartLeafOptions): Promise<LeafProcess> {
  const args = [CLI_PATH, 'leaf', '--port', '0', '--data-dir', opts.dataDir, ...(opts.args ?? [])];
  const [command, ...argv] = opts.wrap !== undefined && opts.wrap.length > 0 ? [...opts.wrap, process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(command!, argv, { cwd: REPO_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new Tail();
  const stderr = new Tail();
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => stderr.push(chunk));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const describe = () => `\n--- stdout (tail) ---\n${stdout.value}\n--- stderr (tail) ---\n${stderr.value}`;
  const startTimeoutMs = opts.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT;

  const url = await new Promise<string>((resolve, reject) => {
    let pending = '';
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => {
        child.kill('SIGKILL');
        reject(new Error(`leaf did not print "listening on http://127.0.0.1:PORT" within ${startTimeoutMs} ms: ${args.join(' ')}${describe()}`));
      });
    }, startTimeoutMs);
    child.stdout.on('data', (chunk: string) => {
      stdout.push(chunk);
      if (settled) return;
      pending += chunk;
      const match = LISTENING.exec(pending);
      if (match) settle(() => resolve(match[1] as string));
      else if (pending.length > OUTPUT_TAIL_BYTES) pending = pending.slice(-1024);
    });
    child.once('error', (error) => settle(() => reject(new Error(`cannot start leaf: ${error.message}${describe()}`))));
    void exited.then(({ code, signal }) => settle(() => reject(new Error(`leaf exited before listening (code ${code}, signal ${signal}): ${args.join(' ')}${describe()}`))));
  });

  /** Resolves with the exit status, or null if the process is still running after `ms`. */
  const waitExit = (ms: number) =>
    new Promise<Awaited<typeof exited> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), ms);
      void exited.then((status) => {
        clearTimeout(timer);
        resolve(status);
      });
    });
  let stopping: Promise<Awaited<typeof exited>> | null = null;
  const stop = (stopOpts: StopOptions = {}) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(stopOpts.signal ?? 'SIGTERM');
      const first = await waitExit(stopOpts.timeoutMs ?? STOP_TIMEOUT_MS_DEFAULT);
      if (first) return first;
      child.kill('SIGKILL');
      const second = await waitExit(KILL_TIMEOUT_MS);
      if (!second) throw new Error(`leaf pid ${child.pid} did not exit after SIGKILL${describe()}`);
      return second;
    })();
    return stopping;
  };

  return { url, process: child, output: () => ({ stdout: stdout.value, stderr: stderr.value }), stop };
}
