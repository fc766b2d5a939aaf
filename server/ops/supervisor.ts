/**
 * A small process supervisor for `shoal up`: starts child processes with their stdout and stderr
 * appended to a log file, waits until each serves (`GET /healthz`), restarts one that exits
 * (exponential backoff, at most LIMITS.upRestartsPerMinuteMax restarts a minute, then it gives
 * up and says so), and stops them all: SIGTERM, then SIGKILL after a timeout.
 *
 * Children write straight into their log files (not through pipes to this process), so a child
 * never blocks or dies on a full or broken pipe if the supervisor is slow or gone. Each runs in
 * its own process group: signals from the terminal go to the supervisor alone, which stops the
 * children one signal each.
 *
 * Not here: what the children are (cmd-up.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { request } from 'undici';
import { LIMITS } from '../../query/limits.js';

export interface ChildSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  /** Base URL whose /healthz answers 200 once the child serves. */
  readonly url: string;
  readonly restart: boolean;
}

export interface SupervisorOptions {
  readonly log: (line: string) => void;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** Grace time between SIGTERM and SIGKILL when stopping. */
  readonly stopTimeoutMs: number;
}

export type ChildState = 'running' | 'backoff' | 'given-up' | 'stopped';

export class ManagedChild {
  proc: ChildProcess | null = null;
  state: ChildState = 'stopped';
  /** Start times of recent restarts (ms), pruned to the last minute. */
  restarts: number[] = [];
  startedAtMs = 0;
  timer: NodeJS.Timeout | null = null;
  exited: Promise<void> = Promise.resolve();
  constructor(readonly spec: ChildSpec) {}
  get pid(): number | null { return this.proc?.pid ?? null; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Supervisor {
  readonly children: ManagedChild[] = [];
  private stopping = false;

  constructor(readonly opts: SupervisorOptions) {}

  start(spec: ChildSpec): ManagedChild {
    const child = new ManagedChild(spec);
    this.children.push(child);
    this.spawn(child);
    return child;
  }

  private spawn(child: ManagedChild): void {
    const fd = fs.openSync(child.spec.logFile, 'a');
    try {
      fs.writeSync(fd, `--- ${new Date().toISOString()} shoal up: starting ${child.spec.name}: ${child.spec.args.join(' ')}\n`);
      // detached: each child in its own process group, so a Ctrl-C at the terminal reaches only
      // the supervisor, which then sends each child exactly one SIGTERM (a leaf that got SIGINT
      // from the terminal and SIGTERM from us would see two stop requests mid-handoff).
      child.proc = spawn(child.spec.command, [...child.spec.args], { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      fs.closeSync(fd);
    }
    child.state = 'running';
    child.startedAtMs = Date.now();
    const proc = child.proc;
    child.exited = new Promise<void>((resolve) => {
      proc.once('error', (e) => { this.opts.log(`${child.spec.name}: cannot start: ${e.message}`); });
      proc.once('exit', (code, signal) => {
        resolve();
        this.onExit(child, code, signal);
      });
    });
  }

  private onExit(child: ManagedChild, code: number | null, signal: NodeJS.Signals | null): void {
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    if (this.stopping || !child.spec.restart) {
      child.state = 'stopped';
      if (!this.stopping) this.opts.log(`${child.spec.name} exited (${how})`);
      return;
    }
    const now = Date.now();
    if (code === 0 && signal === null) {
      // A clean exit is a planned one (a handoff for a rolling restart): start the successor at
      // once, and do not count it against the crash budget.
      this.opts.log(`${child.spec.name} handed off and exited; starting its successor`);
      this.respawn(child, 0);
      return;
    }
    child.restarts = child.restarts.filter((t) => now - t < 60_000);
    if (child.restarts.length >= LIMITS.upRestartsPerMinuteMax) {
      child.state = 'given-up';
      this.opts.log(`${child.spec.name} exited (${how}); it was restarted ${child.restarts.length} times in the last minute, so it stays down (log: ${child.spec.logFile})`);
      return;
    }
    // Backoff grows with restarts in the last minute: a leaf that crashes at once is not spun.
    const delayMs = Math.min(this.opts.backoffMsMax, this.opts.backoffMsMin * 2 ** child.restarts.length);
    child.restarts.push(now);
    this.opts.log(`${child.spec.name} exited (${how}); restarting in ${delayMs} ms (restart ${child.restarts.length} in the last minute; log: ${child.spec.logFile})`);
    this.respawn(child, delayMs);
  }

  /** Starts the child again after `delayMs` (unless everything is stopping meanwhile). */
  private respawn(child: ManagedChild, delayMs: number): void {
    child.state = 'backoff';
    child.timer = setTimeout(() => {
      child.timer = null;
      if (this.stopping) { child.state = 'stopped'; return; }
      this.spawn(child);
      void this.waitReady(child, 60_000).then(
        () => this.opts.log(`${child.spec.name} is back at ${child.spec.url} (pid ${child.pid})`),
        (e: Error) => this.opts.log(`${child.spec.name}: ${e.message}`),
      );
    }, delayMs);
  }

  /** Resolves once the child answers /healthz with 200; rejects if it exits or the time runs out. */
  async waitReady(child: ManagedChild, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const proc = child.proc;
    while (Date.now() < deadline) {
      if (proc === null || proc.exitCode !== null || proc.signalCode !== null || child.proc !== proc) {
        throw new Error(`${child.spec.name} exited before it served; see ${child.spec.logFile}:\n${tail(child.spec.logFile)}`);
      }
      let other: number | null = null;
      try {
        const res = await request(`${child.spec.url}/healthz`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
        const text = await res.body.text();
        let pid: unknown;
        try { pid = (JSON.parse(text) as { pid?: unknown }).pid; } catch { /* not shoal: judged below */ }
        // Only our child counts: another process on that port (another cluster) is not it.
        if (pid === child.pid) { if (res.statusCode === 200) return; } else other = typeof pid === 'number' ? pid : -1;
      } catch { /* not listening yet */ }
      if (other !== null) {
        throw new Error(`${child.spec.name}: another process answers at ${child.spec.url} (${other > 0 ? `shoal, pid ${other}` : 'not shoal'}); its port is in use`);
      }
      await sleep(100);
    }
    throw new Error(`${child.spec.name} did not serve at ${child.spec.url} within ${timeoutMs} ms; see ${child.spec.logFile}:\n${tail(child.spec.logFile)}`);
  }

  /** Stops every child: SIGTERM, then SIGKILL after stopTimeoutMs. Restarts end here. */
  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    for (const c of this.children) {
      if (c.timer !== null) { clearTimeout(c.timer); c.timer = null; c.state = 'stopped'; }
    }
    const running = this.children.filter((c) => c.proc !== null && c.proc.exitCode === null && c.proc.signalCode === null);
    for (const c of running) c.proc!.kill(signal);
    const all = Promise.all(running.map((c) => c.exited));
    const timedOut = await Promise.race([all.then(() => false), sleep(this.opts.stopTimeoutMs).then(() => true)]);
    if (timedOut) {
      for (const c of running) {
        if (c.proc!.exitCode === null && c.proc!.signalCode === null) {
          this.opts.log(`${c.spec.name} (pid ${c.pid}) did not exit within ${this.opts.stopTimeoutMs} ms of ${signal}; sending SIGKILL`);
          c.proc!.kill('SIGKILL');
        }
      }
      await Promise.race([all, sleep(5_000)]);
    }
  }

  /** Kills every child at once (a second Ctrl-C). */
  killAll(): void {
    this.stopping = true;
    for (const c of this.children) if (c.proc !== null && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, bytes = 2_000): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(bytes, size));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}
