// POST bulk.php: each item is validated on its own and answered in input order — queued with
// its command_id, or refused with its HTTP status and message — and the valid ones are queued
// even when others are refused. Valid items travel in chunk jobs, one per lane per
// `chunkSize` items, added with BullMQ's bulk add; look-ups and idempotency claims are
// batched, so a request of 1,000 items costs a handful of round trips.
import type { Origin } from '../apply/audit.js';
import { parseBulkItem } from '../commands/bulkItem.js';
import type { Command } from '../commands/command.js';
import { fingerprint } from '../commands/command.js';
import { emailNotAvailable } from '../commands/createReply.js';
import { ExternalIdMismatch, IdempotencyMismatch, Invalid, ServiceError, Unavailable } from '../errors.js';
import type { Principal } from '../itflow/apiKeys.js';
import type { ItflowClock } from '../itflow/clock.js';
import type { People } from '../itflow/people.js';
import { type ChunkJob, commandIdInChunk, newChunkId } from '../queue/chunks.js';
import type { CommandJob } from '../queue/jobs.js';
import { laneOf } from '../queue/lanes.js';
import { commandStatusMany, type FinishedStatus, finishedStatus } from '../read/commandStatus.js';
import { type AcceptDeps, CLAIM_IN_FLIGHT_MS, checkTicketFacts, IN_FLIGHT_POLL_MS, stillBeingAccepted } from './accept.js';

export interface BulkDeps extends AcceptDeps {
  clock: ItflowClock;
  people: People;
  lanes: number;
  chunkSize: number;
}

export type ItemResult =
  | { command_id: string; status: 'queued'; replayed?: true }
  | { command_id: string; status: 'applied'; insert_id: number; replayed?: true }
  | { command_id: string; status: 'failed'; http_status: number; message: string; replayed?: true }
  | { status: 'valid' }
  | { http_status: number; message: string };

/** An NDJSON line that was not JSON, kept in its place so its result lands at the right index. */
export class UnreadableLine {
  constructor(readonly line: number) {}
}

interface Candidate {
  index: number;
  command: Command;
  idempotencyKey: string | undefined;
  job?: CommandJob;
}

export interface BulkAnswer {
  httpStatus: number;
  results: ItemResult[];
}

export async function acceptBulk(
  deps: BulkDeps,
  principal: Principal,
  items: unknown[],
  origin: Origin,
  { dryRun, waitSeconds }: { dryRun: boolean; waitSeconds: number },
): Promise<BulkAnswer> {
  const results: ItemResult[] = new Array(items.length);
  const refuse = (index: number, error: ServiceError) => {
    results[index] = { http_status: error.status, message: error.message };
  };
  const candidates = await checkItems(deps, principal, items, refuse);
  if (dryRun) {
    for (const c of candidates) results[c.index] = { status: 'valid' };
    return { httpStatus: 200, results };
  }

  const chunks = chunked(deps, principal, chronological(candidates), origin, waitSeconds > 0);
  const began = deps.replicas.begin();
  const { replayed, repeats } = await claimAll(deps, principal, candidates, results, refuse, waitSeconds);
  const queued = candidates.filter((c) => c.job && results[c.index] === undefined);
  const keep = new Set(queued.map((c) => c.job?.commandId));
  const toAdd = chunks
    .map((chunk) => ({ ...chunk, commands: chunk.commands.filter((job) => keep.has(job.commandId)) }))
    .filter((chunk) => chunk.commands.length > 0);

  const waiting = waitSeconds > 0 ? await deps.waiter.expectMany([...keep] as string[], waitSeconds * 1000) : null;
  const notAdded = new Set((await deps.queue.addChunks(toAdd)).flatMap((chunk) => chunk.commands.map((job) => job.commandId)));
  for (const c of queued) {
    const job = c.job as CommandJob;
    if (notAdded.has(job.commandId)) {
      refuse(c.index, new Unavailable());
      if (job.idempotencyKey !== null)
        await deps.claims.release(principal.keyId, job.idempotencyKey, job.commandId).catch(() => {});
      if (job.command.externalId !== undefined)
        await deps.externalIds.release(principal.keyId, job.command.externalId, job.commandId).catch(() => {});
    } else {
      results[c.index] = { command_id: job.commandId, status: 'queued' };
    }
  }
  deps.accepted.inc(queued.length - notAdded.size);
  // Nothing is acknowledged before the commands queued, now or by an earlier request of which
  // this is a retry, are on enough Redis replicas: else the whole request answers 503, and its
  // retry with the same idempotency keys answers as these commands.
  if (results.some((result) => result !== undefined && 'status' in result && result.status === 'queued')) {
    await deps.replicas.confirm(began).catch((error: unknown) => {
      waiting?.cancel();
      throw error;
    });
  }

  let allFinished = true;
  if (waiting) {
    // Items answered as an earlier request's commands still queued are waited for as well.
    const stillQueued = results.flatMap((result, index) =>
      result !== undefined && 'status' in result && result.status === 'queued' && result.replayed ? [index] : [],
    );
    const [outcomes, earlier] = await Promise.all([
      waiting.result,
      finishedWithin(
        deps,
        principal.keyId,
        stillQueued.map((index) => (results[index] as { command_id: string }).command_id),
        waitSeconds * 1000,
      ),
    ]);
    for (const c of queued) {
      const job = c.job as CommandJob;
      if (notAdded.has(job.commandId)) continue;
      const outcome = outcomes.get(job.commandId);
      if (!outcome) allFinished = false;
      else results[c.index] = finishedStatus(job.commandId, outcome);
    }
    for (const index of stillQueued) {
      const commandId = (results[index] as { command_id: string }).command_id;
      const ended = earlier.get(commandId);
      if (!ended) allFinished = false;
      else results[index] = { ...ended, replayed: true };
    }
  }
  for (const [repeat, first] of repeats) {
    const answer = results[first] as ItemResult;
    results[repeat] = 'command_id' in answer ? { ...answer, replayed: true } : answer;
  }
  const newlyQueued = queued.length - notAdded.size;
  const httpStatus =
    newlyQueued > 0 && !(waiting && allFinished) ? 202 : newlyQueued > 0 || replayed > 0 ? 200 : notAdded.size > 0 ? 503 : 400;
  return { httpStatus, results };
}

/**
 * How commands queued by earlier requests ended, as they finish within `waitMs`. Each announces
 * its outcome (it carries an idempotency key or an external id); one that finished between the
 * look that found it queued and the listening is read from the ledger instead.
 */
async function finishedWithin(
  deps: BulkDeps,
  apiKeyId: number,
  commandIds: string[],
  waitMs: number,
): Promise<Map<string, FinishedStatus>> {
  const found = new Map<string, FinishedStatus>();
  const until = Date.now() + waitMs;
  let left = commandIds;
  while (left.length > 0 && Date.now() < until) {
    const waiting = await deps.waiter.expectMany(left, until - Date.now());
    const finished = await commandStatusMany(deps.pool, deps.tables, left, apiKeyId);
    if (finished.size === 0) {
      for (const [commandId, outcome] of await waiting.result) found.set(commandId, finishedStatus(commandId, outcome));
      break;
    }
    // Some finished unheard: listen again for the others only.
    waiting.cancel();
    for (const [commandId, status] of finished) found.set(commandId, status);
    left = left.filter((commandId) => !finished.has(commandId));
  }
  return found;
}

/** Field validation, then the ticket, scope, status and author checks, with one ticket query. */
async function checkItems(
  deps: BulkDeps,
  principal: Principal,
  items: unknown[],
  refuse: (index: number, error: ServiceError) => void,
): Promise<Candidate[]> {
  const zone = await deps.clock.zone();
  const now = Date.now();
  const parsed: Candidate[] = [];
  for (const [index, item] of items.entries()) {
    try {
      if (item instanceof UnreadableLine) throw new Invalid(`Line ${item.line} is not valid JSON.`);
      parsed.push({ index, ...parseBulkItem(item, zone, now) });
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      refuse(index, error);
    }
  }
  const tickets = await deps.tickets.ticketsMany(parsed.map((c) => c.command.ticketId));
  const statuses = await deps.tickets.statuses();
  const noMail = parsed.some((c) => c.command.emailClient) ? await deps.clientMail() : null;
  const valid: Candidate[] = [];
  for (const candidate of parsed) {
    try {
      const ticket = tickets.get(candidate.command.ticketId);
      checkTicketFacts(principal, candidate.command, ticket, statuses);
      if (noMail !== null && candidate.command.emailClient) throw new Invalid(emailNotAvailable(noMail));
      if (candidate.command.author) await deps.people.check(principal, candidate.command.author, ticket?.clientId ?? 0);
      valid.push(candidate);
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      refuse(candidate.index, error);
    }
  }
  return valid;
}

/**
 * A ticket's historical items (created_at) in time order, in the places its historical items
 * held; live items keep theirs. ITFlow lists a ticket's replies by ticket_reply_id, so the ids
 * of an import must follow time for the ticket to read chronologically. Stable: items with the
 * same time keep the request's order. created_at is ITFlow's wall clock, so text order is time.
 */
function chronological(candidates: Candidate[]): Candidate[] {
  const historical = new Map<number, Candidate[]>();
  for (const c of candidates) {
    if (c.command.createdAt === undefined) continue;
    const list = historical.get(c.command.ticketId);
    if (list) list.push(c);
    else historical.set(c.command.ticketId, [c]);
  }
  for (const list of historical.values())
    list.sort((a, b) =>
      (a.command.createdAt as string) < (b.command.createdAt as string)
        ? -1
        : a.command.createdAt === b.command.createdAt
          ? 0
          : 1,
    );
  const taken = new Map<number, number>();
  return candidates.map((c) => {
    if (c.command.createdAt === undefined) return c;
    const next = taken.get(c.command.ticketId) ?? 0;
    taken.set(c.command.ticketId, next + 1);
    return (historical.get(c.command.ticketId) as Candidate[])[next] as Candidate;
  });
}

/**
 * Gives each valid item its job, grouped by lane in input order and cut into chunks, each item
 * numbered within its chunk (its command id says which chunk it is in).
 */
function chunked(deps: BulkDeps, principal: Principal, candidates: Candidate[], origin: Origin, announce: boolean): ChunkJob[] {
  const byLane = new Map<number, Candidate[]>();
  for (const c of candidates) {
    const lane = laneOf(c.command.ticketId, deps.lanes);
    byLane.set(lane, [...(byLane.get(lane) ?? []), c]);
  }
  const acceptedAt = Date.now();
  const chunks: ChunkJob[] = [];
  for (const list of byLane.values()) {
    for (let start = 0; start < list.length; start += deps.chunkSize) {
      const chunkId = newChunkId();
      const commands = list.slice(start, start + deps.chunkSize).map((c, position): CommandJob => {
        c.job = {
          v: 1,
          commandId: commandIdInChunk(chunkId, position),
          acceptedAt,
          apiKeyId: principal.keyId,
          idempotencyKey: c.idempotencyKey ?? null,
          fingerprint: fingerprint(c.command),
          command: c.command,
          origin,
          announce: announce || c.idempotencyKey !== undefined || c.command.externalId !== undefined,
        };
        return c.job;
      });
      chunks.push({ v: 1, kind: 'chunk', chunkId, commands });
    }
  }
  return chunks;
}

/** An item whose key or external id a request still being accepted holds (claimed, not queued yet). */
interface Busy {
  candidate: Candidate;
  job: CommandJob;
  held: 'idempotency key' | 'external_id';
}

/**
 * The idempotency keys, then the external ids, of the whole request. An item whose key or id is
 * held by a request still being accepted (usually a few milliseconds from its queue) looks again
 * every IN_FLIGHT_POLL_MS while the request's `Prefer: wait` lasts — then answers as that request,
 * or goes on to be queued if it gave the key or id back — as create.php does; without a wait, or
 * once the wait runs out, it is that item's 409 (Retry-After: 1).
 */
async function claimAll(
  deps: BulkDeps,
  principal: Principal,
  candidates: Candidate[],
  results: ItemResult[],
  refuse: (index: number, error: ServiceError) => void,
  waitSeconds: number,
): Promise<{ replayed: number; repeats: Array<[number, number]> }> {
  const until = Date.now() + waitSeconds * 1000;
  const repeats: Array<[number, number]> = [];
  let replayed = 0;
  let looking = candidates;
  for (;;) {
    const busy: Busy[] = [];
    replayed += await claimKeys(deps, principal, looking, results, refuse, repeats, busy);
    replayed += await claimExternalIds(deps, principal, looking, results, refuse, repeats, busy);
    if (busy.length === 0) return { replayed, repeats };
    if (Date.now() + IN_FLIGHT_POLL_MS > until) {
      for (const b of busy) refuse(b.candidate.index, stillBeingAccepted(b.held));
      return { replayed, repeats };
    }
    await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_POLL_MS));
    // Each looks again as it came: its job back, its key to claim anew.
    for (const b of busy) b.candidate.job = b.job;
    looking = busy.map((b) => b.candidate);
  }
}

/**
 * Idempotency keys, for the whole request at once. An item whose key already names a command
 * answers with that command (its outcome if finished, else queued), marked replayed; a key
 * used for something else is refused (422). An item repeating a key used earlier in the same
 * request is not queued: it is the same command, and is answered as that one is (`repeats`).
 * An item whose key a request still being accepted holds goes to `busy`, its job set aside.
 * Answers how many items were replayed.
 */
async function claimKeys(
  deps: BulkDeps,
  principal: Principal,
  candidates: Candidate[],
  results: ItemResult[],
  refuse: (index: number, error: ServiceError) => void,
  repeats: Array<[number, number]>,
  busy: Busy[],
): Promise<number> {
  const firstByKey = new Map<string, Candidate>();
  const unique: Candidate[] = [];
  for (const c of candidates) {
    const job = c.job as CommandJob;
    if (job.idempotencyKey === null) continue;
    const first = firstByKey.get(job.idempotencyKey);
    if (!first) {
      firstByKey.set(job.idempotencyKey, c);
      unique.push(c);
    } else if (first.job?.fingerprint !== job.fingerprint) {
      refuse(c.index, new IdempotencyMismatch(job.idempotencyKey, first.job?.commandId as string));
    } else {
      repeats.push([c.index, first.index]);
      c.job = undefined;
    }
  }
  const claims = await deps.claims.claimMany(
    principal.keyId,
    unique.map((c) => {
      const job = c.job as CommandJob;
      return { idempotencyKey: job.idempotencyKey as string, fingerprint: job.fingerprint, commandId: job.commandId };
    }),
  );
  const holders: Array<{ candidate: Candidate; commandId: string; ageMs: number }> = [];
  claims.forEach((claim, i) => {
    const c = unique[i] as Candidate;
    if (claim.kind === 'mismatch') refuse(c.index, claim.error);
    if (claim.kind === 'existing') holders.push({ candidate: c, commandId: claim.commandId, ageMs: claim.ageMs });
  });

  const finished = await commandStatusMany(
    deps.pool,
    deps.tables,
    holders.map((h) => h.commandId),
    principal.keyId,
  );
  const unfinished = holders.filter((h) => !finished.has(h.commandId));
  const inQueue = await deps.queue.stillQueued(
    unfinished.map((h) => ({ commandId: h.commandId, ticketId: h.candidate.command.ticketId })),
  );
  let replayed = 0;
  for (const h of holders) {
    const done = finished.get(h.commandId);
    const queued = inQueue[unfinished.indexOf(h)] === true;
    if (done || queued) {
      results[h.candidate.index] = { ...(done ?? { command_id: h.commandId, status: 'queued' }), replayed: true } as ItemResult;
      replayed++;
    } else if (h.ageMs < CLAIM_IN_FLIGHT_MS) {
      busy.push({
        candidate: h.candidate,
        job: h.candidate.job as CommandJob,
        held: 'idempotency key',
      });
      h.candidate.job = undefined;
    } else {
      // The holder never made it into the queue or the ledger: this item takes its place.
      const job = h.candidate.job as CommandJob;
      await deps.claims.takeOver(principal.keyId, job.idempotencyKey as string, job.fingerprint, h.commandId, job.commandId);
    }
  }
  return replayed;
}

/**
 * External ids, for the items still to be queued, at once — as accept.ts's claimExternalId does
 * for one command. An item whose id an applied or unfinished command holds answers as that
 * command (replayed), or 422 if it asks something else; a holder that failed gives the id up. An
 * item repeating an id used earlier in the same request is answered as that item (`repeats`).
 * An item whose id a request still being accepted holds goes to `busy`, its key given back.
 * Answers how many items were replayed.
 */
async function claimExternalIds(
  deps: BulkDeps,
  principal: Principal,
  candidates: Candidate[],
  results: ItemResult[],
  refuse: (index: number, error: ServiceError) => void,
  repeats: Array<[number, number]>,
  busy: Busy[],
): Promise<number> {
  const keyId = principal.keyId;
  /** This item will not be queued: its idempotency claim (its own, a new one) is given back. */
  const drop = async (c: Candidate) => {
    const job = c.job as CommandJob;
    if (job.idempotencyKey !== null) await deps.claims.release(keyId, job.idempotencyKey, job.commandId).catch(() => {});
    c.job = undefined;
  };
  const firstById = new Map<string, Candidate>();
  const unique: Candidate[] = [];
  for (const c of candidates) {
    const externalId = c.job?.command.externalId;
    if (externalId === undefined || results[c.index] !== undefined) continue;
    const first = firstById.get(externalId);
    if (!first) {
      firstById.set(externalId, c);
      unique.push(c);
    } else if (first.job?.fingerprint !== c.job?.fingerprint) {
      refuse(c.index, new ExternalIdMismatch(externalId, first.job?.commandId as string));
      await drop(c);
    } else {
      repeats.push([c.index, first.index]);
      await drop(c);
    }
  }
  if (unique.length === 0) return 0;
  const claims = await deps.externalIds.claimMany(
    keyId,
    unique.map((c) => {
      const job = c.job as CommandJob;
      return { idempotencyKey: job.command.externalId as string, fingerprint: job.fingerprint, commandId: job.commandId };
    }),
  );
  const holders = unique.flatMap((candidate, i) => {
    const claim = claims[i];
    return claim?.kind === 'existing' ? [{ candidate, ...claim }] : [];
  });
  const finished = await commandStatusMany(
    deps.pool,
    deps.tables,
    holders.map((h) => h.commandId),
    keyId,
  );
  const unfinished = holders.filter((h) => !finished.has(h.commandId));
  const inQueue = await deps.queue.stillQueued(
    unfinished.map((h) => ({ commandId: h.commandId, ticketId: h.candidate.command.ticketId })),
  );
  const nowhere = unfinished.filter((_, i) => inQueue[i] !== true);
  const bound = await deps.externalIds.bound(
    keyId,
    nowhere.map((h) => h.candidate.command.externalId as string),
  );
  let replayed = 0;
  for (const h of holders) {
    const c = h.candidate;
    const job = c.job as CommandJob;
    const externalId = job.command.externalId as string;
    const done = finished.get(h.commandId);
    const boundTo = nowhere.includes(h) ? bound.get(externalId) : undefined;
    const holder: ItemResult | null =
      done && done.status === 'applied'
        ? done
        : boundTo
          ? { command_id: boundTo.commandId, status: 'applied', insert_id: boundTo.insertId }
          : !done && !nowhere.includes(h)
            ? { command_id: h.commandId, status: 'queued' }
            : null;
    if (holder !== null) {
      const heldFor = boundTo?.fingerprint ?? h.fingerprint;
      if (heldFor !== job.fingerprint) refuse(c.index, new ExternalIdMismatch(externalId, holder.command_id as string));
      else {
        results[c.index] = { ...holder, replayed: true } as ItemResult;
        replayed++;
      }
      await drop(c);
    } else if (!done && h.ageMs < CLAIM_IN_FLIGHT_MS) {
      busy.push({
        candidate: c,
        job,
        held: 'external_id',
      });
      await drop(c);
    } else {
      // The holder failed (it made no reply), or never made it into the queue: this item takes the id.
      await deps.externalIds.takeOver(keyId, externalId, job.fingerprint, h.commandId, job.commandId);
    }
  }
  return replayed;
}
