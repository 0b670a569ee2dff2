// Accepting one command at the intake: the idempotency claim, the early ticket checks, the queue,
// and — with `Prefer: wait` — the outcome. Every function here returns the answer as data
// (status, headers, body) for the route to send, so no path can answer twice.
import type { FastifyBaseLogger } from 'fastify';
import type { Pool } from 'mysql2/promise';
import type { Origin } from '../apply/audit.js';
import type { Outcome } from '../apply/ledger.js';
import { type Command, fingerprint } from '../commands/command.js';
import { newCommandId } from '../commands/commandId.js';
import { emailNotAvailable } from '../commands/createReply.js';
import type { ServiceTables } from '../db/tables.js';
import { Conflict, ExternalIdMismatch, Invalid, NotReplicated } from '../errors.js';
import type { Principal } from '../itflow/apiKeys.js';
import { refuseIfClosed, refuseIfResolved, requireActiveStatus, requireTicketInScope } from '../itflow/ticketRules.js';
import type { TicketDirectory, TicketStatus, TicketSummary } from '../itflow/tickets.js';
import type { AcceptedCounter } from '../metrics/registry.js';
import type { CompletionWaiter } from '../queue/completion.js';
import type { ExternalIdClaims } from '../queue/externalIds.js';
import type { IdempotencyClaims } from '../queue/idempotency.js';
import type { CommandJob } from '../queue/jobs.js';
import type { CommandQueue } from '../queue/producer.js';
import type { ReplicaAcks, WritesBegan } from '../queue/replication.js';
import { commandStatus } from '../read/commandStatus.js';
import { fail, ok } from './envelope.js';

/** Where a client asks after an accepted command. */
export const COMMANDS_PATH = '/api/v1/tickets/replies/commands.php';

export interface AcceptDeps {
  tickets: TicketDirectory;
  queue: CommandQueue;
  waiter: CompletionWaiter;
  claims: IdempotencyClaims;
  externalIds: ExternalIdClaims;
  pool: Pool;
  tables: ServiceTables;
  /** Bumped once per command queued, labelled with the endpoint it came in on. */
  accepted: AcceptedCounter;
  /** Why ITFlow would not email a client from this install right now, or null when it would. */
  clientMail: () => Promise<string | null>;
  /** Confirms a queued command is on enough Redis replicas before it is acknowledged (REDIS_MIN_REPLICAS_ACK). */
  replicas: ReplicaAcks;
}

/** An HTTP answer as data; the route sends it. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * Rejects at once what a worker would certainly refuse: a ticket that does not exist or is
 * outside the key's scope (404), a reply to a closed ticket (409), a status that is not an
 * active ticket status (400). The worker checks all of it again under the ticket's lock.
 */
export async function checkAgainstTicket(deps: AcceptDeps, principal: Principal, command: Command): Promise<void> {
  checkTicketFacts(principal, command, await deps.tickets.ticket(command.ticketId), await deps.tickets.statuses());
  await requireClientMail(deps, [command]);
}

/** 400 for a Public + email reply where ITFlow would not email the client, saying why. */
export async function requireClientMail(deps: Pick<AcceptDeps, 'clientMail'>, commands: Command[]): Promise<void> {
  if (!commands.some((c) => c.emailClient)) return;
  const why = await deps.clientMail();
  if (why !== null) throw new Invalid(emailNotAvailable(why));
}

/** checkAgainstTicket with the ticket and the statuses already in hand (bulk requests). */
export function checkTicketFacts(
  principal: Principal,
  command: Command,
  ticket: TicketSummary | null | undefined,
  statuses: Map<number, TicketStatus>,
): void {
  requireTicketInScope(principal.scope, command, ticket?.clientId);
  refuseIfClosed(ticket?.closed === true, command);
  if (command.dialect === 'itflow-resolve') refuseIfResolved(ticket?.resolved === true);
  requireActiveStatus(command, undefined, statuses);
}

export function newJob(
  principal: Principal,
  command: Command,
  idempotencyKey: string | undefined,
  origin: Origin,
  announce: boolean,
): CommandJob {
  // A command with an idempotency key or an external id always announces its outcome: a retry of it may wait.
  return {
    v: 1,
    commandId: newCommandId(),
    acceptedAt: Date.now(),
    apiKeyId: principal.keyId,
    idempotencyKey: idempotencyKey ?? null,
    fingerprint: fingerprint(command),
    command,
    origin,
    announce: announce || idempotencyKey !== undefined || command.externalId !== undefined,
  };
}

/** A claim younger than this whose command is nowhere yet is taken to be still on its way in. */
export const CLAIM_IN_FLIGHT_MS = 3_000;

/**
 * Accepts one command: the idempotency check first (a retry of a finished command gets that
 * command's answer even if, say, it closed the ticket since), then the ticket checks, then the
 * queue. Anything refused gives the idempotency key back — except a command queued but not
 * confirmed on enough Redis replicas: it may still be applied, so its key stays with it and a
 * retry answers as it.
 */
export async function accept(
  deps: AcceptDeps,
  principal: Principal,
  job: CommandJob,
  waitSeconds: number,
  log: FastifyBaseLogger,
): Promise<HttpAnswer> {
  const key = job.idempotencyKey;
  const began = deps.replicas.begin();
  if (key !== null) {
    const held = await whileBeingAccepted(waitSeconds, 'idempotency key', async () => {
      const claim = await deps.claims.claim(principal.keyId, key, job.fingerprint, job.commandId);
      if (claim.kind === 'new') return { settled: null };
      const replayed = await replay(deps, principal, claim.commandId, waitSeconds, began);
      if (replayed !== null) return { settled: replayed };
      if (claim.ageMs < CLAIM_IN_FLIGHT_MS) return undefined;
      // The holder never made it into the queue or the ledger: this request takes its place.
      await deps.claims.takeOver(principal.keyId, key, job.fingerprint, claim.commandId, job.commandId);
      return { settled: null };
    });
    if (held !== null) return held;
  }
  const externalId = job.command.externalId;
  try {
    if (externalId !== undefined) {
      const holder = await claimExternalId(deps, principal, job, waitSeconds, began);
      if (holder !== null) {
        // Answered as the command holding the external id: this one is never queued.
        if (key !== null) await deps.claims.release(principal.keyId, key, job.commandId).catch(() => {});
        return holder;
      }
    }
    await checkAgainstTicket(deps, principal, job.command);
    const outcome = await enqueue(deps, job, waitSeconds, log, began);
    return outcome ? outcomeAnswer(job.commandId, outcome, waitSeconds) : queuedAnswer(job.commandId);
  } catch (error) {
    if (error instanceof NotReplicated) throw error;
    if ((key !== null || externalId !== undefined) && !(await deps.queue.find(job.commandId).catch(() => null))) {
      if (key !== null) await deps.claims.release(principal.keyId, key, job.commandId).catch(() => {});
      if (externalId !== undefined) await deps.externalIds.release(principal.keyId, externalId, job.commandId).catch(() => {});
    }
    throw error;
  }
}

/** How often a request that may wait looks again at a duplicate still being accepted. */
export const IN_FLIGHT_POLL_MS = 20;

/** 409 for a command whose idempotency key or external_id a request still being accepted holds. */
export function stillBeingAccepted(what: 'idempotency key' | 'external_id'): Conflict {
  return new Conflict(`A request with this ${what} is still being accepted. Retry in a moment.`, 1);
}

/**
 * Runs `look` until it settles (returns `{ settled }`): undefined means the holder of the key or
 * external id is still being accepted (claimed, not yet queued — usually a few milliseconds). A
 * request that may wait (`Prefer: wait=N`) looks again while its wait lasts, so a retry sent
 * hard on the heels of the first gets the first's answer rather than a 409; one that may not
 * wait, or whose wait ran out, gets stillBeingAccepted(what) (409, Retry-After: 1).
 */
async function whileBeingAccepted<T>(
  waitSeconds: number,
  what: 'idempotency key' | 'external_id',
  look: () => Promise<{ settled: T } | undefined>,
): Promise<T> {
  const until = Date.now() + waitSeconds * 1000;
  for (;;) {
    const seen = await look();
    if (seen !== undefined) return seen.settled;
    if (Date.now() + IN_FLIGHT_POLL_MS > until) throw stillBeingAccepted(what);
    await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_POLL_MS));
  }
}

/**
 * An external id is the integration's own name for a reply, kept for good: a command carrying one
 * that an applied or still unfinished command holds answers as that command (its insert_id, or
 * 202 with its command id), marked `Idempotent-Replayed` — or 422 when it asks something else.
 * A holder that failed made no reply, so it gives the id up and this command takes it. null:
 * this command holds the id now and goes on to be queued.
 */
async function claimExternalId(
  deps: AcceptDeps,
  principal: Principal,
  job: CommandJob,
  waitSeconds: number,
  began: WritesBegan,
): Promise<HttpAnswer | null> {
  const externalId = job.command.externalId as string;
  return whileBeingAccepted(waitSeconds, 'external_id', async () => {
    const claim = await deps.externalIds.claim(principal.keyId, externalId, job.fingerprint, job.commandId);
    if (claim.kind === 'new') return { settled: null };
    const status = await commandStatus(deps.pool, deps.tables, deps.queue, claim.commandId, principal.keyId);
    if (status && status.status !== 'failed') {
      if (claim.fingerprint !== job.fingerprint) throw new ExternalIdMismatch(externalId, claim.commandId);
      const replayed = await replay(deps, principal, claim.commandId, waitSeconds, began);
      if (replayed !== null) return { settled: replayed };
    }
    if (!status) {
      // Its holder is past the ledger's retention (or was lost): the external-id table remembers what it made.
      const bound = (await deps.externalIds.bound(principal.keyId, [externalId])).get(externalId);
      if (bound) {
        if (bound.fingerprint !== job.fingerprint) throw new ExternalIdMismatch(externalId, bound.commandId);
        const answer = outcomeAnswer(bound.commandId, { status: 'applied', insertId: bound.insertId }, waitSeconds);
        answer.headers['Idempotent-Replayed'] = 'true';
        return { settled: answer };
      }
      if (claim.ageMs < CLAIM_IN_FLIGHT_MS) return undefined;
    }
    await deps.externalIds.takeOver(principal.keyId, externalId, job.fingerprint, claim.commandId, job.commandId);
    return { settled: null };
  });
}

/**
 * The answer for a command that already holds this idempotency key, marked
 * `Idempotent-Replayed`: its result if finished, otherwise 202 with its command id (after
 * waiting for it, if asked). null when the command is neither queued nor finished.
 */
async function replay(
  deps: AcceptDeps,
  principal: Principal,
  commandId: string,
  waitSeconds: number,
  began: WritesBegan,
): Promise<HttpAnswer | null> {
  const answer = await answerFor(deps, principal, commandId, waitSeconds, began);
  if (answer !== null) answer.headers['Idempotent-Replayed'] = 'true';
  return answer;
}

async function answerFor(
  deps: AcceptDeps,
  principal: Principal,
  commandId: string,
  waitSeconds: number,
  began: WritesBegan,
): Promise<HttpAnswer | null> {
  const finished = (status: Awaited<ReturnType<typeof commandStatus>>): Outcome | null =>
    status?.status === 'applied'
      ? { status: 'applied', insertId: status.insert_id }
      : status?.status === 'failed'
        ? { status: 'failed', failure: { status: status.http_status, message: status.message } }
        : null;
  const found = await commandStatus(deps.pool, deps.tables, deps.queue, commandId, principal.keyId);
  if (!found) return null;
  const outcome = finished(found);
  if (outcome) return outcomeAnswer(commandId, outcome, waitSeconds);
  // Still in Redis: the first request may have been refused for want of replicas, and this one
  // is acknowledged only once the command is on them.
  await deps.replicas.confirm(began);
  if (waitSeconds > 0) {
    const waiting = await deps.waiter.expect(commandId, waitSeconds * 1000);
    // It may have finished between the look-up and the wait.
    const now = finished(await commandStatus(deps.pool, deps.tables, deps.queue, commandId, principal.keyId));
    if (now) waiting.cancel();
    const result = now ?? (await waiting.result);
    if (result) return outcomeAnswer(commandId, result, waitSeconds);
  }
  return queuedAnswer(commandId);
}

/**
 * Queues one job, confirms it reached enough Redis replicas (NotReplicated if not) and, when the
 * client asked to wait, then waits up to waitSeconds for its outcome. The waiter is registered
 * before the job is queued so a fast worker cannot finish unseen.
 */
export async function enqueue(
  deps: AcceptDeps,
  job: CommandJob,
  waitSeconds: number,
  log: FastifyBaseLogger,
  began: WritesBegan,
): Promise<Outcome | null> {
  const waiting = waitSeconds > 0 ? await deps.waiter.expect(job.commandId, waitSeconds * 1000) : null;
  try {
    await deps.queue.add(job);
    queued(deps, job, log);
    await deps.replicas.confirm(began);
  } catch (error) {
    waiting?.cancel();
    throw error;
  }
  return waiting ? waiting.result : null;
}

/** Counts a command the queue took and says so in the request's log (which carries its reqId). */
function queued(deps: AcceptDeps, job: CommandJob, log: FastifyBaseLogger): void {
  deps.accepted.inc();
  log.info({ commandId: job.commandId, ticketId: job.command.ticketId }, 'command accepted');
}

/**
 * How long to wait for the worker, in seconds: `Prefer: wait=N` (RFC 7240) capped at
 * maxSeconds; `Prefer: respond-async` means 0; without either, `byDefault`.
 */
export function preferredWait(header: string | string[] | undefined, maxSeconds: number, byDefault = 0): number {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const match = /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(text);
  if (match) return Math.min(Number(match[1]), maxSeconds);
  if (/(?:^|[,;\s])respond-async(?:$|[,;\s])/i.test(text)) return 0;
  return Math.min(byDefault, maxSeconds);
}

/** 202 with the command id and where to follow it. */
function queuedAnswer(commandId: string): HttpAnswer {
  return {
    status: 202,
    headers: { Location: `${COMMANDS_PATH}?command_id=${commandId}` },
    body: ok([{ command_id: commandId, status: 'queued' }]),
  };
}

/** Answers like a v1 create endpoint once the command has finished: 201 insert_id, or its failure. */
function outcomeAnswer(commandId: string, outcome: Outcome, waitSeconds: number): HttpAnswer {
  const headers: Record<string, string> = waitSeconds > 0 ? { 'Preference-Applied': `wait=${waitSeconds}` } : {};
  if (outcome.status === 'failed') {
    return { status: outcome.failure.status, headers, body: fail(outcome.failure.message) };
  }
  headers.Location = `${COMMANDS_PATH}?command_id=${commandId}`;
  return { status: 201, headers, body: ok([{ insert_id: outcome.insertId, command_id: commandId }]) };
}
