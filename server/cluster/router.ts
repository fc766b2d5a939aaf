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
 *   (on two different leaves); docs/cluster.md states the window.
 * - 4xx: the batch itself is bad; the client gets the leaf's answer as it is.
 *
 * Not here: HTTP routes (aggregator.ts), health checks (membership.ts).
 */
import type { Dispatcher } from 'undici';
import { LIMITS } from '../../query/limits.js';
import { memberRequest, outcomeJson, outcomeReason, type MemberOutcome } from './fanout.js';
import type { Member, Membership } from './membership.js';

export interface RouteRequest {
  readonly table: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly batchId: string;
  readonly authorization: string | null;
  readonly timeoutMs: number;
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
  // A batch id seen before (a client's retry) goes first to where it went then.
  const prior = placements.get(req.batchId);
  let retrySame: Member | null = prior === undefined ? null : membership.members.find((m) => m.id === prior) ?? null;
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
    target.routedBytes += req.body.length;
    const headers: Record<string, string> = { 'x-shoal-batch-id': req.batchId };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    if (req.authorization !== null) headers.authorization = req.authorization;
    const o = await memberRequest(agent, `${target.url}/v1/tables/${encodeURIComponent(req.table)}/events`, {
      method: 'POST', headers, body: req.body, timeoutMs: req.timeoutMs, bytesMax: LIMITS.memberStatusBytesMax,
    });
    const verdict = judge(o);
    if (verdict === 'accepted' || verdict === 'ambiguous') placements.set(req.batchId, target.id);
    if (verdict === 'accepted') {
      const body = outcomeJson(o);
      if (typeof body === 'object' && body !== null && typeof (body as { accepted?: unknown }).accepted === 'number') {
        return { kind: 'accepted', member: target, body: body as Record<string, unknown>, tries };
      }
      // A 200 that is not an ingest answer: not a shoal leaf, or a broken one. Ambiguous.
      failures.push({ leaf: target.id, reason: `unexpected answer: ${(o as { text: string }).text.slice(0, 200)}` });
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
