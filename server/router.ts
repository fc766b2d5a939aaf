/**
 * The ingest router: places one batch on one leaf by random fan-out ("power of two choices"):
 * pick two random live members and send the raw body (never re-parsed) to the one with more free
 * memory, as last reported by its status. Each batch carries an `x-shoal-batch-id` (the client's,
 * or one generated here) so a leaf drops a batch it already stored.
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
import { LIMITS } from '../query/limits.js';
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

/** Picks two distinct members at random and returns the one with more free memory. */
export function pickTwo(candidates: readonly Member[], random: () => number): Member | null {
  if (candidates.length === 0) return null;
  const a = candidates[Math.floor(random() * candidates.length)]!;
  if (candidates.length === 1) return a;
  let b = candidates[Math.floor(random() * (candidates.length - 1))]!;
  if (b === a) b = candidates[candidates.length - 1]!;
  const free = (m: Member) => m.memoryFreeBytes ?? -1;
  return free(b) > free(a) ? b : a;
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

export async function routeBatch(membership: Membership, agent: Dispatcher, req: RouteRequest, random: () => number = Math.random): Promise<RouteResult> {
  const failures: { leaf: string; reason: string }[] = [];
  const done = new Set<Member>();
  let retrySame: Member | null = null;
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
    const headers: Record<string, string> = { 'x-shoal-batch-id': req.batchId };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    if (req.authorization !== null) headers.authorization = req.authorization;
    const o = await memberRequest(agent, `${target.url}/v1/tables/${encodeURIComponent(req.table)}/events`, {
      method: 'POST', headers, body: req.body, timeoutMs: req.timeoutMs, bytesMax: LIMITS.memberStatusBytesMax,
    });
    const verdict = judge(o);
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
