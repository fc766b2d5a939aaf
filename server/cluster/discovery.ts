/**
 * Members found through DNS (`shoal aggregator --leaves-dns NAME:PORT`): every A/AAAA record of
 * the name, re-resolved every interval. That is what a Kubernetes headless Service or Consul's
 * DNS interface gives, so no coordination service of shoal's own is needed.
 *
 * An address becomes a member only once its `GET /v1/status` names it (the leaf's id, or a child
 * aggregator's): the id, not the address, is the member, so a leaf that comes back under another
 * address (a rescheduled Pod) is the same member, with its last known row counts. Until then the
 * address is "pending" in the aggregator's status, with the last error. An address the name no
 * longer lists stays a member for the grace period (`--dns-grace`), health-checked like any other
 * (so a query still counts it as missing); after that it is dropped and the log says so.
 *
 * Not here: joins (membership.ts `join`), health checks (membership.ts).
 */
import dns from 'node:dns/promises';
import type { Dispatcher } from 'undici';
import { LIMITS } from '../../query/limits.js';
import { memberRequest, outcomeJson, outcomeReason } from './fanout.js';
import { validMemberId, type Membership } from './membership.js';

export interface DnsTarget { readonly name: string; readonly port: number }

/** `NAME:PORT` (`[v6]:PORT` for a literal), as --leaves-dns takes it. */
export function parseDnsTarget(text: string): DnsTarget | { error: string } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (m === null) return { error: `"${text}" is not NAME:PORT (e.g. shoal-leaf.shoal.svc.cluster.local:7001)` };
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return { error: `port ${m[2]} of "${text}" is not 1-65535` };
  return { name: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** How a name is resolved: every address, IPv4 and IPv6 (tests inject their own). */
export type Resolver = (name: string) => Promise<string[]>;
export const systemResolver: Resolver = async (name) => (await dns.lookup(name, { all: true, verbatim: true })).map((a) => a.address);

export function addressUrl(address: string, port: number): string {
  return address.includes(':') ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}

export interface PendingAddress { url: string; error: string | null; sinceMs: number }

export interface DnsDiscoveryOptions {
  readonly target: DnsTarget;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly probeTimeoutMs: number;
  readonly memberToken: string | null;
  readonly resolver?: Resolver;
  readonly log: (level: 'info' | 'warn', message: string) => void;
}

export class DnsDiscovery {
  /** Addresses listed but not yet identified (their status did not answer, or not as shoal). */
  readonly pending = new Map<string, PendingAddress>();
  lastResolveError: string | null = null;
  lastResolvedMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly membership: Membership, private readonly agent: Dispatcher, readonly opts: DnsDiscoveryOptions) {
    membership.dnsGraceMs = opts.graceMs;
  }

  start(): void {
    if (this.timer !== null) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One resolution and the probes of new addresses (at most one round at a time). */
  refresh(): Promise<void> {
    this.running ??= this.round().finally(() => { this.running = null; });
    return this.running;
  }

  private async round(): Promise<void> {
    const { name, port } = this.opts.target;
    let addresses: string[];
    try {
      addresses = await (this.opts.resolver ?? systemResolver)(name);
    } catch (e) {
      // A failed lookup changes nothing: members stay until the name lists them no more.
      const why = (e as Error).message;
      if (this.lastResolveError !== why) this.opts.log('warn', `--leaves-dns ${name}: lookup failed (${why}); keeping the members found before`);
      this.lastResolveError = why;
      return;
    }
    this.lastResolveError = null;
    this.lastResolvedMs = Date.now();
    if (addresses.length > LIMITS.dnsAddressesMax) {
      this.opts.log('warn', `--leaves-dns ${name} lists ${addresses.length} addresses; using the first ${LIMITS.dnsAddressesMax} (LIMITS.dnsAddressesMax)`);
      addresses = addresses.slice(0, LIMITS.dnsAddressesMax);
    }
    const urls = new Set(addresses.map((a) => addressUrl(a, port)));
    const now = Date.now();
    for (const m of this.membership.members) {
      if (m.source !== 'dns') continue;
      if (urls.has(m.url)) m.goneFromDnsMs = null;
      else m.goneFromDnsMs ??= now;
    }
    for (const url of this.pending.keys()) if (!urls.has(url)) this.pending.delete(url);
    const known = new Set(this.membership.members.map((m) => m.url));
    const fresh = [...urls].filter((u) => !known.has(u));
    // Probed a few at a time, like every fan-out.
    for (let i = 0; i < fresh.length; i += LIMITS.fanoutInFlightMax) {
      await Promise.all(fresh.slice(i, i + LIMITS.fanoutInFlightMax).map((url) => this.identify(url)));
    }
  }

  /** Asks a new address who it is; a shoal leaf or aggregator becomes a member under its id. */
  private async identify(url: string): Promise<void> {
    const headers: Record<string, string> = this.opts.memberToken === null ? {} : { authorization: `Bearer ${this.opts.memberToken}` };
    const o = await memberRequest(this.agent, `${url}/v1/status`, { method: 'GET', headers, timeoutMs: this.opts.probeTimeoutMs, bytesMax: LIMITS.memberStatusBytesMax });
    const body = outcomeJson(o) as { leafId?: unknown; id?: unknown; role?: unknown } | null;
    const id = o.kind === 'http' && o.status === 200 && body !== null && typeof body === 'object'
      ? (body.role === 'aggregator' ? body.id : body.leafId) : undefined;
    if (!validMemberId(id)) {
      const error = o.kind === 'http' && o.status === 200 ? 'its status names no shoal leaf or aggregator id' : outcomeReason(o);
      const p = this.pending.get(url);
      this.pending.set(url, { url, error, sinceMs: p?.sinceMs ?? Date.now() });
      return;
    }
    this.pending.delete(url);
    const r = this.membership.discovered(id, url);
    if (r === null) {
      this.pending.set(url, { url, error: `its id ${id} is a cluster-file member at another address, or the member limit is reached`, sinceMs: Date.now() });
      return;
    }
    if (r.outcome === 'added') this.opts.log('info', `--leaves-dns ${this.opts.target.name}: ${id} joined at ${url}`);
    else if (r.outcome === 'moved') this.opts.log('info', `--leaves-dns ${this.opts.target.name}: ${id} moved to ${url}`);
    if (!r.member.checking) void this.membership.check(r.member);
  }

  toJSON() {
    return {
      name: this.opts.target.name, port: this.opts.target.port, intervalMs: this.opts.intervalMs, graceMs: this.opts.graceMs,
      lastResolvedMsAgo: this.lastResolvedMs === null ? null : Date.now() - this.lastResolvedMs, lastError: this.lastResolveError,
      pending: [...this.pending.values()].map((p) => ({ url: p.url, error: p.error, sinceMsAgo: Date.now() - p.sinceMs })),
    };
  }
}
