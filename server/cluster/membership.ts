/**
 * Cluster membership of an aggregator: the static cluster file (validated, with errors naming
 * the entry), and health checks that track members coming and going. Every second each member
 * gets `GET /v1/status` with a short timeout; its answer refreshes what the aggregator knows of
 * it (rows per table, free memory, whether it takes writes), which the ingest router and the
 * coverage computation use when the member itself does not answer.
 *
 * A member is a leaf or another aggregator (a tree): an aggregator's status says
 * `role: "aggregator"` and how many leaves it stands for.
 *
 * Not here: sending queries or batches (cluster-query.ts, router.ts).
 */
import fs from 'node:fs';
import type { Dispatcher } from 'undici';
import { ShoalError } from '../../query/errors.js';
import { LIMITS } from '../../query/limits.js';
import type { ColumnType } from '../../query/storage/types.js';
import { mapBounded, memberRequest, outcomeJson, outcomeReason } from './fanout.js';

export interface MemberSpec { readonly id: string; readonly url: string }

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** A member's URL as an origin (`http://host:port`), or what is wrong with it. */
export function memberOrigin(url: unknown): string | { error: string } {
  if (typeof url !== 'string') return { error: 'must be a string like "http://127.0.0.1:7001"' };
  let parsed: URL;
  try { parsed = new URL(url); } catch { return { error: `${JSON.stringify(url)} is not a URL` }; }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { error: 'must start with http:// or https://' };
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '') {
    return { error: `must be an origin without a path (got ${JSON.stringify(url)})` };
  }
  return parsed.origin;
}

/** Member ids: the same rule as leaf ids. */
export function validMemberId(id: unknown): id is string { return typeof id === 'string' && ID_PATTERN.test(id); }

function configError(file: string, message: string): ShoalError {
  return new ShoalError('SHOAL_ERR_CLUSTER_CONFIG', `cluster file ${file}: ${message}`);
}

/** Validates the text of a cluster file: `{"leaves": [{"id": "leaf-1", "url": "http://127.0.0.1:7001"}]}`. */
export function parseClusterFile(text: string, file = '<cluster>'): MemberSpec[] {
  if (text.length > LIMITS.clusterFileBytesMax) throw configError(file, `is larger than ${LIMITS.clusterFileBytesMax} bytes`);
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { throw configError(file, `is not valid JSON: ${(e as Error).message}`); }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw configError(file, 'must be a JSON object with a "leaves" array');
  const leaves = (doc as { leaves?: unknown }).leaves;
  if (!Array.isArray(leaves)) throw configError(file, 'must have "leaves": an array of {"id", "url"}');
  if (leaves.length === 0) throw configError(file, '"leaves" is empty; list at least one leaf');
  if (leaves.length > LIMITS.clusterMembersMax) {
    throw configError(file, `lists ${leaves.length} leaves; the limit is ${LIMITS.clusterMembersMax} (stand aggregators over aggregators for more)`);
  }
  const ids = new Set<string>();
  const urls = new Set<string>();
  return leaves.map((entry: unknown, i) => {
    const where = `leaves[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw configError(file, `${where} must be an object {"id", "url"}`);
    const { id, url } = entry as { id?: unknown; url?: unknown };
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
      throw configError(file, `${where}.id must be 1-64 letters, digits, '.', '_' or '-' (got ${JSON.stringify(id)})`);
    }
    const origin = memberOrigin(url);
    if (typeof origin !== 'string') throw configError(file, `${where}.url ${origin.error}`);
    if (ids.has(id)) throw configError(file, `${where}.id "${id}" appears twice`);
    if (urls.has(origin)) throw configError(file, `${where}.url ${origin} appears twice`);
    ids.add(id);
    urls.add(origin);
    return { id, url: origin };
  });
}

export function loadClusterFile(file: string): MemberSpec[] {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > LIMITS.clusterFileBytesMax) throw configError(file, `is larger than ${LIMITS.clusterFileBytesMax} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ShoalError) throw e;
    throw configError(file, `cannot be read: ${(e as Error).message}`);
  }
  return parseClusterFile(text, file);
}

export type MemberHealth = 'healthy' | 'unhealthy' | 'unknown';
/** Where a member came from: the cluster file, a DNS name (--leaves-dns), or its own join. */
export type MemberSource = 'file' | 'dns' | 'join';

/** What the aggregator knows of one member. */
export class Member {
  health: MemberHealth = 'unknown';
  role: 'leaf' | 'aggregator' | null = null;
  /** The member's own state word ('serving', 'handing-off', ...), from its status. */
  memberState: string | null = null;
  reportedId: string | null = null;
  lastError: string | null = null;
  lastSeenMs: number | null = null;
  lastCheckMs: number | null = null;
  consecutiveFailures = 0;
  rows: number | null = null;
  bytes: number | null = null;
  memoryFreeBytes: number | null = null;
  memoryBudgetBytes: number | null = null;
  /** Leaves this member stands for: 1 for a leaf, the leaf count of a child aggregator. */
  leafCount = 1;
  pid: number | null = null;
  /** The member process's random id from its status (null: an older build that has none). */
  instanceId: string | null = null;
  restart: { source: string; ms: number } | null = null;
  /** False while the member said its disk log refuses writes (disk full, failed fsync); null
   * when unknown or it keeps no log. */
  diskWritable: boolean | null = null;
  /** Rows per table as last seen (status poll or query answer); null until first seen. */
  private tableRows: Map<string, number> | null = null;
  /** Bytes per table as of the last status (queries do not report them). */
  private tableBytes = new Map<string, number>();
  /** Body bytes the router sent this member since its last status: the free memory it reported
   * is up to a poll interval old, and without this every batch in that interval would go to the
   * same "freest" member. */
  routedBytes = 0;
  /** A health check of this member is in flight (at most one at a time). */
  checking = false;
  /** The member's schemaVersion at its last status, and its column types per table as of then
   * (null: unknown, e.g. an older shoal; a table missing from the map: not listed). */
  schemaVersion: string | null = null;
  tableSchemas: Map<string, ReadonlyMap<string, ColumnType>> | null = null;
  /** The member's clock minus ours (ms), from its last status (`clockMs` against the midpoint of
   * the request), and the error of that estimate (half the round trip). Null until known. */
  clockOffsetMs: number | null = null;
  clockErrorMs = 0;

  /** When a joined member last announced itself, and the interval it promised (null: not joined). */
  lastJoinMs: number | null = null;
  joinHeartbeatMs: number | null = null;
  /** When a DNS member's address stopped being listed (null: listed, or not from DNS). */
  goneFromDnsMs: number | null = null;

  constructor(public spec: MemberSpec, readonly source: MemberSource = 'file') {}

  get id(): string { return this.spec.id; }
  get url(): string { return this.spec.url; }

  /** The member answers at another address now (a leaf that came back elsewhere keeps its id
   * and everything known of it). Its next health check goes to the new address. */
  moveTo(url: string): void { this.spec = { id: this.spec.id, url }; }

  /** Takes writes: answered its last health check and says it is serving. */
  get live(): boolean { return this.health === 'healthy' && (this.memberState === null || this.memberState === 'serving'); }

  /** Last known row count of a table on this member; null when the member was never seen. */
  knownTableRows(table: string): number | null {
    if (this.tableRows === null) return null;
    return this.tableRows.get(table) ?? 0;
  }

  /** A query answered: the member holds `rows` rows of `table` now. */
  noteAnswer(table: string, rows: number): void {
    this.tableRows ??= new Map();
    this.tableRows.set(table, rows);
    this.lastSeenMs = Date.now();
  }

  /** A request failed. `refused` (nothing listens) marks the member down at once; other
   * failures (timeouts, drops) only after `failuresMax` in a row, so one slow answer is not an outage. */
  noteFailure(reason: string, refused: boolean, failuresMax: number): void {
    this.lastError = reason;
    this.consecutiveFailures++;
    if (refused || this.consecutiveFailures >= failuresMax) this.health = 'unhealthy';
  }

  /** Records a status answer; `timing` (when the request went out and the answer came back, in
   * our epoch ms) dates the member's clock. Returns true when its column types changed. */
  noteStatus(s: Record<string, unknown>, timing: { sentMs: number; receivedMs: number } | null = null): boolean {
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    const clock = num(s.clockMs);
    if (clock !== null && timing !== null) {
      this.clockOffsetMs = clock - (timing.sentMs + timing.receivedMs) / 2;
      this.clockErrorMs = Math.ceil((timing.receivedMs - timing.sentMs) / 2);
    }
    this.health = 'healthy';
    this.consecutiveFailures = 0;
    this.lastError = null;
    this.lastSeenMs = Date.now();
    this.role = s.role === 'aggregator' ? 'aggregator' : 'leaf';
    this.memberState = typeof s.state === 'string' ? s.state : null;
    this.reportedId = typeof s.leafId === 'string' ? s.leafId : typeof s.id === 'string' ? s.id : null;
    this.rows = num(s.rows);
    this.bytes = num(s.bytes);
    this.memoryFreeBytes = num(s.memoryFreeBytes);
    this.routedBytes = 0;
    this.memoryBudgetBytes = num(s.memoryBudgetBytes);
    this.pid = num(s.pid);
    this.instanceId = typeof s.instanceId === 'string' ? s.instanceId : null;
    this.leafCount = this.role === 'aggregator' ? Math.max(1, num(s.leafCount) ?? 1) : 1;
    const r = s.restart as { source?: unknown; ms?: unknown } | undefined;
    this.restart = r && typeof r.source === 'string' ? { source: r.source, ms: num(r.ms) ?? 0 } : null;
    const disk = s.disk as { log?: unknown; writable?: unknown } | undefined;
    this.diskWritable = disk !== undefined && disk.log === true && typeof disk.writable === 'boolean' ? disk.writable : null;
    const tables = s.tables;
    if (typeof tables === 'object' && tables !== null) {
      const m = new Map<string, number>();
      const bytes = new Map<string, number>();
      for (const [name, t] of Object.entries(tables as Record<string, { rows?: unknown; bytes?: unknown }>)) {
        m.set(name, num(t?.rows) ?? 0);
        bytes.set(name, num(t?.bytes) ?? 0);
      }
      this.tableRows = m;
      this.tableBytes = bytes;
    }
    return this.noteSchemas(s);
  }

  /** A status lists column types only when the schemaVersion we sent was stale. */
  private noteSchemas(s: Record<string, unknown>): boolean {
    const version = typeof s.schemaVersion === 'string' ? s.schemaVersion : null;
    if (version === null) {
      const had = this.tableSchemas !== null;
      this.schemaVersion = null;
      this.tableSchemas = null;
      return had;
    }
    if (version === this.schemaVersion) return false;
    const schemas = new Map<string, ReadonlyMap<string, ColumnType>>();
    const tables = (typeof s.tables === 'object' && s.tables !== null ? s.tables : {}) as Record<string, { columns?: unknown }>;
    for (const [name, t] of Object.entries(tables)) {
      const cols = t?.columns;
      if (typeof cols !== 'object' || cols === null) continue; // columnsOmitted: unknown
      const m = new Map<string, ColumnType>();
      for (const [c, type] of Object.entries(cols as Record<string, unknown>)) if (typeof type === 'string') m.set(c, type as ColumnType);
      schemas.set(name, m);
    }
    this.schemaVersion = version;
    this.tableSchemas = schemas;
    return true;
  }

  /** This member's column types of a table (undefined: not known to have it). */
  tableSchema(table: string): ReadonlyMap<string, ColumnType> | undefined { return this.tableSchemas?.get(table); }

  /** Free memory now, as well as the router can tell: the last report less what was sent since. */
  estimatedFreeBytes(): number | null {
    return this.memoryFreeBytes === null ? null : this.memoryFreeBytes - this.routedBytes;
  }

  /** Table row counts as last seen, for the aggregator's own status. */
  tablesSeen(): ReadonlyMap<string, number> { return this.tableRows ?? new Map(); }
  /** A table's bytes on this member at its last status (0 when not listed there). */
  tableBytesSeen(table: string): number { return this.tableBytes.get(table) ?? 0; }

  toJSON() {
    return {
      id: this.id, url: this.url, source: this.source, role: this.role, state: this.health, memberState: this.memberState,
      reportedId: this.reportedId, lastError: this.lastError,
      lastSeenMsAgo: this.lastSeenMs === null ? null : Date.now() - this.lastSeenMs,
      rows: this.rows, bytes: this.bytes, memoryFreeBytes: this.memoryFreeBytes, memoryBudgetBytes: this.memoryBudgetBytes,
      leafCount: this.leafCount, pid: this.pid, instanceId: this.instanceId, restart: this.restart, diskWritable: this.diskWritable,
      clockOffsetMs: this.clockOffsetMs === null ? null : Math.round(this.clockOffsetMs), schemaVersion: this.schemaVersion,
    };
  }
}

export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failed checks (other than a refused connection) before a member is unhealthy. */
  failuresMax: number;
}

/** One column across the members: every type it has and which members hold each. */
export interface ClusterColumn {
  /** The type the cluster gives the column: the first member's (in member order) that has it. */
  readonly type: ColumnType;
  readonly byType: ReadonlyMap<ColumnType, readonly string[]>;
}

const numericType = (t: ColumnType) => t === 'int' || t === 'float';
/** int and float are one family: they widen, never conflict. */
export function typeFamily(t: ColumnType): string { return numericType(t) ? 'number' : t; }

export class Membership {
  members: Member[];
  private timer: NodeJS.Timeout | null = null;
  /** Bumped whenever a member's column types change; the cluster schema cache keys on it. */
  private schemaGeneration = 0;
  private schemaCache = new Map<string, { generation: number; columns: ReadonlyMap<string, ClusterColumn> }>();

  /** `memberToken`: the bearer token members require on /v1/status (null: none). */
  constructor(specs: readonly MemberSpec[], private readonly agent: Dispatcher, readonly health: HealthOptions, private readonly memberToken: string | null = null) {
    this.members = specs.map((s) => new Member(s));
  }

  /** Replaces the member list (cluster file reloaded); members whose id and URL are unchanged keep their state. */
  replace(specs: readonly MemberSpec[]): { added: string[]; removed: string[] } {
    const fromFile = this.members.filter((m) => m.source === 'file');
    const old = new Map(fromFile.map((m) => [`${m.id} ${m.url}`, m]));
    const listed = new Set(specs.flatMap((s) => [`id ${s.id}`, `url ${s.url}`]));
    // Joined and discovered members stay, unless the file now names the same id or address.
    const others = this.members.filter((m) => m.source !== 'file' && !listed.has(`id ${m.id}`) && !listed.has(`url ${m.url}`));
    const next = [...specs.map((s) => old.get(`${s.id} ${s.url}`) ?? new Member(s)), ...others];
    const kept = new Set(next);
    const removed = this.members.filter((m) => !kept.has(m)).map((m) => m.id);
    const added = next.filter((m) => !this.members.includes(m)).map((m) => m.id);
    this.members = next;
    this.schemaGeneration++;
    return { added, removed };
  }

  start(): void {
    if (this.timer !== null) return;
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.health.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round of health checks; a member whose previous check is still running is skipped. */
  async checkAll(): Promise<void> {
    this.expire(Date.now());
    const due = this.members.filter((m) => !m.checking);
    await mapBounded(due, LIMITS.fanoutInFlightMax, (m) => this.check(m));
  }

  async check(m: Member): Promise<void> {
    m.checking = true;
    try {
      const headers: Record<string, string> = this.memberToken === null ? {} : { authorization: `Bearer ${this.memberToken}` };
      const query = m.schemaVersion === null ? '' : `?schemaVersion=${encodeURIComponent(m.schemaVersion)}`;
      const sentMs = Date.now();
      const o = await memberRequest(this.agent, `${m.url}/v1/status${query}`, { method: 'GET', headers, timeoutMs: this.health.timeoutMs, bytesMax: LIMITS.memberStatusBytesMax });
      m.lastCheckMs = Date.now();
      const body = outcomeJson(o);
      if (o.kind === 'http' && o.status === 200 && typeof body === 'object' && body !== null) {
        if (m.noteStatus(body as Record<string, unknown>, { sentMs, receivedMs: m.lastCheckMs })) this.schemaGeneration++;
      } else if (o.kind === 'timeout' && m.lastSeenMs !== null && m.lastSeenMs >= sentMs) {
        // The member answered something else (a query) while this check waited: it is alive, and
        // the check was slow because this process was (an aggregator whose event loop runs
        // behind under load timed out checks of every member and marked live leaves unhealthy:
        // bench/tree.ts, 8 clients over 200 leaves). Not a failure; the next round asks again.
      } else {
        m.noteFailure(outcomeReason(o), o.kind === 'refused', this.health.failuresMax);
      }
    } finally {
      m.checking = false;
    }
  }

  /**
   * The cluster's schema of a table, as the members' last statuses tell it: each column's type
   * and, when members disagree (two leaves learned different types before either status came
   * in), every type with its members. Cached until some member's column types change.
   */
  clusterSchema(table: string): ReadonlyMap<string, ClusterColumn> {
    const hit = this.schemaCache.get(table);
    if (hit !== undefined && hit.generation === this.schemaGeneration) return hit.columns;
    const byColumn = new Map<string, Map<ColumnType, string[]>>();
    for (const m of this.members) {
      for (const [col, type] of m.tableSchema(table) ?? []) {
        let types = byColumn.get(col);
        if (types === undefined) byColumn.set(col, (types = new Map()));
        const ids = types.get(type);
        if (ids === undefined) types.set(type, [m.id]);
        else ids.push(m.id);
      }
    }
    const columns = new Map<string, ClusterColumn>();
    for (const [col, types] of byColumn) columns.set(col, { type: types.keys().next().value!, byType: types });
    if (this.schemaCache.size >= LIMITS.tablesPerLeafMax) this.schemaCache.clear();
    this.schemaCache.set(table, { generation: this.schemaGeneration, columns });
    return columns;
  }

  /** A version of the members' column types together (for this aggregator's own status). */
  schemaVersion(): string {
    let h = 0x811c9dc5;
    const text = this.members.map((m) => `${m.id}=${m.schemaVersion ?? ''}`).join(',');
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return `agg.${h.toString(16)}`;
  }

  /**
   * A member announces itself (`POST /v1/cluster/join` from `shoal leaf --join`): the readiness
   * push. Known by its address (a cluster-file or DNS member): checked now rather than at the
   * next health round. Known by its id at another address: moved there, keeping its id and what
   * is known of it. Otherwise added, as a joined member that is dropped after it misses
   * LIMITS.joinMissesMax heartbeats. A cluster-file member's id at another address is a
   * conflict: the file is the operator's word.
   */
  join(a: { id: string; url: string; heartbeatMs: number }, nowMs = Date.now()): { outcome: 'known' | 'moved' | 'added'; member: Member } {
    const r = this.admit(a.id, a.url, 'join');
    if ('refused' in r) {
      throw new ShoalError('SHOAL_ERR_CLUSTER_JOIN', r.refused === 'file-id'
        ? `member id "${a.id}" is in the cluster file at ${r.at}; a leaf joining from ${a.url} cannot take it (give it another --id, or fix the cluster file)`
        : `this aggregator has ${this.members.length} members, its limit (LIMITS.clusterMembersMax); stand aggregators over aggregators for more`);
    }
    if (r.member.source === 'join') {
      r.member.lastJoinMs = nowMs;
      r.member.joinHeartbeatMs = a.heartbeatMs;
    }
    if (!r.member.checking) void this.check(r.member);
    return r;
  }

  /**
   * A member found through DNS: `url` answered a status naming `id`. The same rules as a join
   * (an id seen before at another address moves there), without the heartbeat: a DNS member
   * stays while the name lists its address and for `graceMs` after. Null: refused (the id is a
   * cluster-file member's at another address, or the member limit is reached).
   */
  discovered(id: string, url: string): { outcome: 'known' | 'moved' | 'added'; member: Member } | null {
    const r = this.admit(id, url, 'dns');
    if ('refused' in r) return null;
    r.member.goneFromDnsMs = null;
    return r;
  }

  /** Where a member announced or discovered at `url` under `id` goes: the member at that
   * address, the member of that id (moved there, unless the cluster file names it), or a new one. */
  private admit(id: string, url: string, source: MemberSource): { outcome: 'known' | 'moved' | 'added'; member: Member } | { refused: 'file-id'; at: string } | { refused: 'limit' } {
    const atUrl = this.members.find((x) => x.url === url);
    if (atUrl !== undefined) return { outcome: 'known', member: atUrl };
    const byId = this.members.find((x) => x.id === id);
    if (byId !== undefined) {
      if (byId.source === 'file') return { refused: 'file-id', at: byId.url };
      byId.moveTo(url);
      this.schemaGeneration++;
      return { outcome: 'moved', member: byId };
    }
    if (this.members.length >= LIMITS.clusterMembersMax) return { refused: 'limit' };
    const m = new Member({ id, url }, source);
    this.members = [...this.members, m];
    this.schemaGeneration++;
    return { outcome: 'added', member: m };
  }

  /** Drops joined members that missed too many heartbeats and DNS members gone from the name
   * for longer than its grace. Returns what was dropped, with why. */
  expire(nowMs: number): { id: string; reason: string }[] {
    const dropped: { id: string; reason: string }[] = [];
    const keep = this.members.filter((m) => {
      if (m.source === 'join' && m.lastJoinMs !== null && m.joinHeartbeatMs !== null) {
        const silentMs = nowMs - m.lastJoinMs;
        if (silentMs > m.joinHeartbeatMs * LIMITS.joinMissesMax) { dropped.push({ id: m.id, reason: `no heartbeat for ${silentMs} ms (${LIMITS.joinMissesMax} missed)` }); return false; }
      }
      if (m.source === 'dns' && m.goneFromDnsMs !== null && nowMs - m.goneFromDnsMs > this.dnsGraceMs) {
        dropped.push({ id: m.id, reason: `its address ${m.url} has not been listed by DNS for ${nowMs - m.goneFromDnsMs} ms` });
        return false;
      }
      return true;
    });
    if (dropped.length > 0) {
      this.members = keep;
      this.schemaGeneration++;
      this.onDropped(dropped);
    }
    return dropped;
  }

  /** How long a DNS member may be missing from the name before it is dropped (set by discovery). */
  dnsGraceMs = 60_000;
  /** Told of every member expire() drops (the aggregator logs them). */
  onDropped: (dropped: { id: string; reason: string }[]) => void = () => undefined;

  /** Members that take writes now. */
  live(): Member[] { return this.members.filter((m) => m.live); }

  /** Leaves this aggregator stands for (child aggregators count their leaves). */
  leafCount(): number { return this.members.reduce((n, m) => n + m.leafCount, 0); }
}
