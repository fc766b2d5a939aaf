/**
 * `shoal leaf --join URL[,URL...]`: the leaf announces itself to aggregators. Each gets
 * `POST /v1/cluster/join {id, url, heartbeatMs}` every heartbeat, and one more the moment the
 * leaf starts serving: the readiness push. So an aggregator uses a restarted leaf at once (it
 * checks the leaf's status when the join arrives) instead of at its next health round, and a
 * leaf needs no cluster file entry: an aggregator adds a leaf that joins and drops one that
 * missed LIMITS.joinMissesMax heartbeats.
 *
 * The heartbeat starts before the restore (when the address is known by then), so a leaf that
 * takes long to recover from disk stays a member, counted as missing by queries, rather than
 * being dropped and silently left out of coverage.
 *
 * Not here: what an aggregator does with a join (server/cluster/membership.ts `join`).
 */
import http from 'node:http';
import https from 'node:https';
import { LIMITS } from '../../query/limits.js';

/** One small JSON POST with node:http: a leaf does not load an HTTP client library for this (it
 * would add ~60 ms to every start, and a leaf's start is part of every restart). */
function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).request(u, {
      method: 'POST', timeout: timeoutMs, agent: false,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (text.length < 4096) text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface JoinOptions {
  readonly aggregators: readonly string[];
  readonly id: string;
  /** The URL aggregators reach this leaf at. */
  readonly url: string;
  readonly intervalMs: number;
  readonly token: string | null;
  readonly log: (level: 'info' | 'warn', message: string) => void;
}

export class JoinHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  /** Per aggregator: the last failure said (each is said once, and its recovery once). */
  private readonly failing = new Map<string, string>();
  private readonly inFlight = new Set<string>();
  private readonly again = new Set<string>();

  constructor(readonly opts: JoinOptions) {
    if (opts.aggregators.length > LIMITS.joinTargetsMax) throw new Error(`--join lists ${opts.aggregators.length} aggregators; the limit is ${LIMITS.joinTargetsMax}`);
  }

  start(): void {
    if (this.timer !== null) return;
    this.announce();
    this.timer = setInterval(() => this.announce(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One join to every aggregator, one in flight per aggregator at a time: a join asked for
   * while one is in flight goes out when it ends (the one in flight may have been sent before
   * the leaf served, and the aggregator's check of it found nothing listening). */
  announce(): void {
    for (const agg of this.opts.aggregators) {
      if (this.inFlight.has(agg)) { this.again.add(agg); continue; }
      this.send(agg);
    }
  }

  private send(agg: string): void {
    this.inFlight.add(agg);
    void this.joinOne(agg).finally(() => {
      this.inFlight.delete(agg);
      if (this.again.delete(agg) && this.timer !== null) this.send(agg);
    });
  }

  private async joinOne(agg: string): Promise<void> {
    const timeoutMs = Math.max(250, Math.min(this.opts.intervalMs, 2_000));
    let why: string | null = null;
    try {
      const res = await postJson(`${agg}/v1/cluster/join`, JSON.stringify({ id: this.opts.id, url: this.opts.url, heartbeatMs: this.opts.intervalMs }),
        this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}, timeoutMs);
      if (res.status !== 200) {
        let message = res.text.slice(0, 300);
        try { message = (JSON.parse(res.text) as { error?: { message?: string } }).error?.message ?? message; } catch { /* not JSON */ }
        why = `HTTP ${res.status}: ${message}`;
      }
    } catch (e) {
      why = (e as Error).message;
    }
    const before = this.failing.get(agg);
    if (why !== null) {
      if (before !== why) this.opts.log('warn', `join ${agg}: ${why} (retrying every ${this.opts.intervalMs} ms)`);
      this.failing.set(agg, why);
    } else if (before !== undefined) {
      this.failing.delete(agg);
      this.opts.log('info', `join ${agg}: joined`);
    }
  }
}

/** The URL a leaf announces: --advertise, else its listen address (which must then be one
 * others can reach: not 0.0.0.0 or ::). */
export function advertisedUrl(host: string, port: number, advertise: string | null): string | { error: string } {
  if (advertise !== null) return advertise;
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return { error: `--join with --host ${host} needs --advertise URL: the address aggregators reach this leaf at (e.g. http://10.0.0.5:${port})` };
  if (port === 0) return { error: '--join with --port 0 needs --advertise URL (the port is not known before the leaf listens)' };
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
