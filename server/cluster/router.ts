/**
 * The ingest router: places one batch on one leaf by random fan-out ("power of two choices"):
 * pick two random live members and send the raw body (never re-parsed) to the one with more free
 * memory, as last reported by its status. Each batch carries an `x-shoal-batch-id` (the client's,
 * or one generated here) so a leaf drops a batch it already stored.
 *
 * A batch id the router has placed before (a client retrying after a lost answer) goes first to
 * the member it went to then (a bounded memory of recent placements); a new one draws its pair
 * from a generator seeded by the id, so even another aggregator, or this one after a restart,
 * tends to pick the same pair for the same id.
 *
 * Retries, each bounded by LIMITS.ingestRouteTriesMax in total:
 * - refused (503, or the connection was refused): the batch was certainly not stored; try
 *   another member.
 * - ambiguous (timeout, connection dropped after sending, other 5xx): the member may have stored
 *   it; retry the SAME member with the same batch id once (its dedupe answers `duplicate`), then
 *   move on. Moving on after an ambiguous failure is the one way a batch can be stored twice
 *   (on two different leaves); docs/cluster.md states the window. A leaf that is handing off
 *   or stopped answers a retry from what it holds: `duplicate` if it stored the batch, else 503
 *   with `x-shoal-batch-stored: never`, which ends the wait below at once.
 * - 4xx: the batch itself is bad; the client gets the leaf's answer as it is.
 *
 * Deadlines: every try carries `x-shoal-deadline-ms`, the end of its timeout expressed in the
 * member's clock (our clock plus the offset measured by its health checks), and the member does
 * not store the batch once it has passed. After an ambiguous try the router waits until that
 * deadline plus LIMITS.ingestDeadlineMarginMs (plus the clock estimate's error) before it sends
 * the batch to any other member, so a hung leaf that wakes up later refuses it instead of
 * storing a second copy. A deadline received from a parent aggregator bounds every try.
 *
 * Resends through another aggregator (docs/cluster.md, "Several aggregators"): a client that
 * lost an answer resends the batch, marked as a resend (a `shoal-resend=1` parameter of its
 * Content-Type), often to another aggregator, which has no placement for it. For such a batch
 * the router first asks the members that are not known to be down whether one holds the id
 * (`GET /v1/batches/:id`, each within LIMITS.batchLookupTimeoutMs, at most
 * LIMITS.fanoutInFlightMax at once; a leaf that is receiving or storing that id waits for it
 * first). A member that has it stored answers for it: `duplicate`, not placed again. A member
 * that still has it in flight gets the resend (its dedupe settles which try stores it), and
 * until the in-flight try's deadline could have passed no other member does. Otherwise the
 * batch is placed as any other. The mark goes on, in the Content-Type, to the member chosen, so
 * a child aggregator makes the same check among its own leaves.
 *
 * One schema per cluster: the router does not parse batches (docs/cluster.md measures why); it
 * sends the target member, in `x-shoal-column-types`, the cluster's types of the columns that
 * member does not have yet, and the member checks them while it decodes the batch.
 *
 * Not here: HTTP routes (aggregator.ts), health checks (membership.ts).
 */
import type { Dispatcher } from 'undici';
import { BATCH_STORED_HEADER } from '../http/http-common.js';
import { LIMITS } from '../../query/limits.js';
import type { ColumnType } from '../../query/storage/types.js';
import { mapBounded, memberRequest, outcomeJson, outcomeReason, type MemberOutcome } from './fanout.js';
import type { Member, Membership } from './membership.js';

export interface RouteRequest {
  readonly table: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly batchId: string;
  readonly authorization: string | null;
  readonly timeoutMs: number;
  /** A deadline from a parent aggregator (epoch ms, our clock): no try outlives it. */
  readonly deadlineMs?: number | null;
  /** Column types a parent aggregator sent along (its cluster's), merged into ours. */
  readonly columnTypes?: ReadonlyMap<string, ColumnType> | null;
}

export type RouteResult =
  /** A member answered 200: its body is passed on (`{accepted}` or `{accepted: 0, duplicate: true}`). */
  | { readonly kind: 'accepted'; readonly member: Member; readonly body: Record<string, unknown>; readonly tries: number }
  /** A member judged the batch bad (4xx): the client gets this answer unchanged. */
  | { readonly kind: 'rejected'; readonly member: Member; readonly status: number; readonly text: string }
  /** No member took it. */
  | { readonly kind: 'failed'; readonly failures: { leaf: string; reason: string }[] };

/** Recent batch id -> the member it was sent to (accepted, or maybe stored), bounded. */
export class Placements {
  private readonly byBatch = new Map<string, string>();
  constructor(private readonly max: number = LIMITS.ingestPlacementsMax) {}
  get(batchId: string): string | undefined { return this.byBatch.get(batchId); }
  set(batchId: string, memberId: string): void {
    this.byBatch.delete(batchId);
    this.byBatch.set(batchId, memberId);
    if (this.byBatch.size > this.max) this.byBatch.delete(this.byBatch.keys().next().value!);
  }
  get size(): number { return this.byBatch.size; }
}

/** Picks two distinct members at random and returns the one with more free memory (estimated:
 * the last status less what was routed to it since). A member whose disk log refused writes at
 * its last status loses to one whose did not: it is still tried when drawn against another like
 * it (that is how it is found writable again), but rarely costs a batch a wasted hop. */
export function pickTwo(candidates: readonly Member[], random: () => number): Member | null {
  if (candidates.length === 0) return null;
  const a = candidates[Math.floor(random() * candidates.length)]!;
  if (candidates.length === 1) return a;
  let b = candidates[Math.floor(random() * (candidates.length - 1))]!;
  if (b === a) b = candidates[candidates.length - 1]!;
  const refusing = (m: Member) => m.diskWritable === false;
  if (refusing(a) !== refusing(b)) return refusing(a) ? b : a;
  const free = (m: Member) => m.estimatedFreeBytes() ?? -Infinity;
  return free(b) > free(a) ? b : a;
}

/**
 * The router's randomness for one batch, seeded by its batch id: batches spread uniformly (ids
 * are unique), and a client that retries a batch with the same id after a lost answer draws the
 * same pair of members, so it most likely lands on the leaf that stored it and is dropped there
 * as a duplicate. (FNV-1a of the id seeds mulberry32.)
 */
export function batchRandom(batchId: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < batchId.length; i++) h = Math.imul(h ^ batchId.charCodeAt(i), 0x01000193) >>> 0;
  let state = h;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The `x-shoal-column-types` value for one try: the cluster's type of every column of the table
 * the target does not have (it checks its own columns itself), and the parent's hints beyond
 * ours. Null when there is nothing to send. Cut at LIMITS.ingestTypeHintBytesMax.
 */
export function columnTypesHeader(membership: Membership, table: string, target: Member, parent: ReadonlyMap<string, ColumnType> | null): string | null {
  const has = target.tableSchema(table);
  const out: Record<string, ColumnType> = {};
  let bytes = 2;
  let count = 0;
  const add = (col: string, type: ColumnType) => {
    if (has?.has(col) || col in out) return;
    const entryBytes = Buffer.byteLength(JSON.stringify(col)) + type.length + 4;
    if (bytes + entryBytes > LIMITS.ingestTypeHintBytesMax) return;
    out[col] = type;
    bytes += entryBytes;
    count++;
  };
  for (const [col, c] of membership.clusterSchema(table)) if (col !== 'time') add(col, c.type);
  for (const [col, type] of parent ?? []) if (col !== 'time') add(col, type);
  return count === 0 ? null : JSON.stringify(out);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether a batch's Content-Type marks it a resend (`...; shoal-resend=1`; the loader's
 * RESEND_PARAMETER, loader/transport.ts). */
export function resendMarked(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return contentType.split(';').slice(1).some((p) => p.trim().toLowerCase().replace(/\s*=\s*/, '=').replace(/"/g, '') === 'shoal-resend=1');
}

/** What the members said of one batch id (locateBatch). */
export interface BatchWhereabouts {
  /** A member that has it stored, and its rows. */
  readonly stored: { readonly member: Member; readonly rows: number } | null;
  /** A member that is still receiving or storing a try of it (none stored it). */
  readonly inFlight: Member | null;
  /** Members that could not say (no answer in time, an error, a version without the route). */
  readonly unknown: readonly { readonly leaf: string; readonly reason: string }[];
}

/**
 * Asks every member not known to be down whether it holds `batchId` (see the header): in
 * parallel, at most LIMITS.fanoutInFlightMax at once, each within LIMITS.batchLookupTimeoutMs
 * (and before `deadlineMs`, epoch ms in our clock, when one bounds the batch).
 */
export async function locateBatch(membership: Membership, agent: Dispatcher, batchId: string, authorization: string | null,
  deadlineMs: number = Infinity): Promise<BatchWhereabouts> {
  const headers: Record<string, string> = {};
  if (authorization !== null) headers.authorization = authorization;
  let stored: BatchWhereabouts['stored'] = null;
  let inFlight: Member | null = null;
  const unknown: { leaf: string; reason: string }[] = [];
  const asked = membership.members.filter((m) => m.health !== 'unhealthy');
  const timeoutMs = Math.floor(Math.min(LIMITS.batchLookupTimeoutMs, deadlineMs - Date.now()));
  if (timeoutMs <= 0) return { stored, inFlight, unknown: asked.map((m) => ({ leaf: m.id, reason: 'not asked: the batch\'s deadline has passed' })) };
  await mapBounded(asked, LIMITS.fanoutInFlightMax, async (m) => {
    const o = await memberRequest(agent, `${m.url}/v1/batches/${encodeURIComponent(batchId)}`, {
      method: 'GET', headers, timeoutMs, bytesMax: LIMITS.memberStatusBytesMax,
    });
    const body = o.kind === 'http' && o.status === 200 ? outcomeJson(o) as { stored?: unknown; inFlight?: unknown } | undefined : undefined;
    if (body === undefined || typeof body !== 'object' || body === null) { unknown.push({ leaf: m.id, reason: outcomeReason(o) }); return; }
    if (typeof body.stored === 'number' && Number.isInteger(body.stored) && body.stored >= 0) stored ??= { member: m, rows: body.stored };
    else if (body.inFlight === true) inFlight ??= m;
  });
  return { stored, inFlight: stored === null ? inFlight : null, unknown };
}

type Verdict = 'accepted' | 'rejected' | 'refused' | 'ambiguous';

function judge(o: MemberOutcome): Verdict {
  if (o.kind === 'refused') return 'refused';
  if (o.kind !== 'http') return 'ambiguous';
  if (o.status === 200) return 'accepted';
  if (o.status === 503) return 'refused';
  if (o.status >= 400 && o.status < 500) return 'rejected';
  return 'ambiguous';
}

export async function routeBatch(membership: Membership, agent: Dispatcher, placements: Placements, req: RouteRequest,
  random: () => number = batchRandom(req.batchId)): Promise<RouteResult> {
  const failures: { leaf: string; reason: string }[] = [];
  const done = new Set<Member>();
  // Member -> the time (our clock) until which it may still store an ambiguous try it got.
  const mayStoreUntil = new Map<Member, number>();
  const parentDeadlineMs = req.deadlineMs ?? Infinity;
  // A batch id seen before (a client's retry) goes first to where it went then.
  const prior = placements.get(req.batchId);
  let retrySame: Member | null = prior === undefined ? null : membership.members.find((m) => m.id === prior) ?? null;
  // A resend this router did not place: the first try went through another aggregator (or this
  // one before a restart). Where is it?
  if (prior === undefined && resendMarked(req.contentType)) {
    const where = await locateBatch(membership, agent, req.batchId, req.authorization, parentDeadlineMs);
    if (where.stored !== null) {
      placements.set(req.batchId, where.stored.member.id);
      return { kind: 'accepted', member: where.stored.member, body: { accepted: where.stored.rows, duplicate: true }, tries: 0 };
    }
    if (where.inFlight !== null) {
      // Its try there came with another router's deadline, at most an ingest timeout (ours, as
      // every aggregator of a cluster is normally given the same) from now: until then, only
      // that member may get the batch.
      retrySame = where.inFlight;
      mayStoreUntil.set(where.inFlight, Date.now() + req.timeoutMs + LIMITS.ingestDeadlineMarginMs + Math.min(where.inFlight.clockErrorMs, LIMITS.ingestDeadlineMarginMs * 4));
    }
  }
  for (let tries = 1; tries <= LIMITS.ingestRouteTriesMax; tries++) {
    let target: Member | null = retrySame;
    retrySame = null;
    if (target === null) {
      const untried = membership.members.filter((m) => !done.has(m));
      // Prefer live members; when none is left, try the rest anyway: health is up to a second stale.
      const live = untried.filter((m) => m.live);
      target = pickTwo(live.length > 0 ? live : untried.filter((m) => m.health !== 'unhealthy'), random) ?? pickTwo(untried, random);
    }
    if (target === null) break;
    // One batch, one leaf: before another member gets it, every member that may still hold an
    // ambiguous try must be past that try's deadline (plus the margin).
    let waitUntilMs = 0;
    for (const [m, until] of mayStoreUntil) if (m !== target) waitUntilMs = Math.max(waitUntilMs, until);
    if (waitUntilMs > parentDeadlineMs) {
      failures.push({ leaf: target.id, reason: 'not tried: an earlier try may still be stored until after the deadline this batch came with' });
      break;
    }
    if (waitUntilMs > Date.now()) await sleep(waitUntilMs - Date.now());
    const sentMs = Date.now();
    const budgetMs = Math.floor(Math.min(req.timeoutMs, parentDeadlineMs - sentMs));
    if (budgetMs <= 0) {
      failures.push({ leaf: target.id, reason: 'not tried: the deadline this batch came with has passed' });
      break;
    }
    const deadlineMs = sentMs + budgetMs;
    target.routedBytes += req.body.length;
    const headers: Record<string, string> = {
      'x-shoal-batch-id': req.batchId,
      // In the member's clock: skew between hosts does not move the deadline (docs/cluster.md).
      'x-shoal-deadline-ms': String(Math.round(deadlineMs + (target.clockOffsetMs ?? 0))),
    };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    if (req.authorization !== null) headers.authorization = req.authorization;
    const types = columnTypesHeader(membership, req.table, target, req.columnTypes ?? null);
    if (types !== null) headers['x-shoal-column-types'] = types;
    const o = await memberRequest(agent, `${target.url}/v1/tables/${encodeURIComponent(req.table)}/events`, {
      method: 'POST', headers, body: req.body, timeoutMs: budgetMs, bytesMax: LIMITS.memberStatusBytesMax,
    });
    const verdict = judge(o);
    const storableUntilMs = deadlineMs + LIMITS.ingestDeadlineMarginMs + Math.min(target.clockErrorMs, LIMITS.ingestDeadlineMarginMs * 4);
    if (verdict === 'ambiguous') {
      mayStoreUntil.set(target, storableUntilMs);
    } else if ((o.kind === 'refused' && o.reason === 'connection refused') || (o.kind === 'http' && o.headers[BATCH_STORED_HEADER] === 'never')) {
      // Nothing listens there (the process that got the earlier try is gone), or the process
      // says it takes no more writes and does not hold this batch: no earlier try is stored there.
      mayStoreUntil.delete(target);
    }
    if (verdict === 'accepted' || verdict === 'ambiguous') placements.set(req.batchId, target.id);
    if (verdict === 'accepted') {
      const body = outcomeJson(o);
      if (typeof body === 'object' && body !== null && typeof (body as { accepted?: unknown }).accepted === 'number') {
        return { kind: 'accepted', member: target, body: body as Record<string, unknown>, tries };
      }
      // A 200 that is not an ingest answer: not a shoal leaf, or a broken one. Ambiguous.
      failures.push({ leaf: target.id, reason: `unexpected answer: ${(o as { text: string }).text.slice(0, 200)}` });
      mayStoreUntil.set(target, storableUntilMs);
      done.add(target);
      continue;
    }
    if (verdict === 'rejected') {
      return { kind: 'rejected', member: target, status: (o as { status: number }).status, text: (o as { text: string }).text };
    }
    const reason = outcomeReason(o);
    failures.push({ leaf: target.id, reason });
    if (o.kind === 'refused') target.noteFailure(reason, true, 1);
    const alreadyRetried = failures.filter((f) => f.leaf === target.id).length > 1;
    if (verdict === 'ambiguous' && !alreadyRetried) retrySame = target;
    else done.add(target);
  }
  return { kind: 'failed', failures };
}
