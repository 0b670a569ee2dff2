import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Pool } from 'mysql2/promise';
import { refuseIfClosed, ticketNotFound } from '../apply/applyBatch.js';
import type { Origin } from '../apply/audit.js';
import type { Outcome } from '../apply/ledger.js';
import { type Command, fingerprint } from '../commands/command.js';
import { newCommandId } from '../commands/commandId.js';
import type { ServiceTables } from '../db/tables.js';
import { Conflict, fromFailureRecord, Invalid } from '../errors.js';
import type { Principal } from '../itflow/apiKeys.js';
import { narrowScope, scopeAllows } from '../itflow/scope.js';
import type { TicketDirectory, TicketStatus, TicketSummary } from '../itflow/tickets.js';
import type { AcceptedCounter } from '../metrics/registry.js';
import type { CompletionWaiter } from '../queue/completion.js';
import type { IdempotencyClaims } from '../queue/idempotency.js';
import type { CommandJob } from '../queue/jobs.js';
import type { CommandQueue } from '../queue/producer.js';
import { commandStatus } from '../read/commandStatus.js';
import { ok } from './envelope.js';

/** Where a client asks after an accepted command. */
export const COMMANDS_PATH = '/api/v1/tickets/replies/commands.php';

export interface AcceptDeps {
  tickets: TicketDirectory;
  queue: CommandQueue;
  waiter: CompletionWaiter;
  claims: IdempotencyClaims;
  pool: Pool;
  tables: ServiceTables;
  /** Bumped once per command queued, labelled with the endpoint it came in on. */
  accepted: AcceptedCounter;
}

/**
 * Rejects at once what a worker would certainly refuse: a ticket that does not exist or is
 * outside the key's scope (404), a reply to a closed ticket (409), a status that is not an
 * active ticket status (400). The worker checks all of it again under the ticket's lock.
 */
export async function checkAgainstTicket(deps: AcceptDeps, principal: Principal, command: Command): Promise<void> {
  checkTicketFacts(principal, command, await deps.tickets.ticket(command.ticketId), await deps.tickets.statuses());
}

/** checkAgainstTicket with the ticket and the statuses already in hand (bulk requests). */
export function checkTicketFacts(
  principal: Principal,
  command: Command,
  ticket: TicketSummary | null | undefined,
  statuses: Map<number, TicketStatus>,
): void {
  if (!ticket || !scopeAllows(narrowScope(principal.scope, command.clientId), ticket.clientId)) {
    throw ticketNotFound(command.ticketId);
  }
  refuseIfClosed(ticket.closed, command);
  if (command.status > 0 && !statuses.get(command.status)?.active) {
    throw new Invalid(`status ${command.status} is not an active ticket status.`);
  }
}

export function newJob(
  principal: Principal,
  command: Command,
  idempotencyKey: string | undefined,
  origin: Origin,
  notify: boolean,
): CommandJob {
  // A command with an idempotency key always announces its outcome: a retry of it may wait.
  return {
    v: 1,
    commandId: newCommandId(),
    acceptedAt: Date.now(),
    apiKeyId: principal.keyId,
    idempotencyKey: idempotencyKey ?? null,
    fingerprint: fingerprint(command),
    command,
    origin,
    notify: notify || idempotencyKey !== undefined,
  };
}

/** A claim younger than this whose command is nowhere yet is taken to be still on its way in. */
export const CLAIM_IN_FLIGHT_MS = 3_000;

/**
 * Accepts one command from `answer`'s request: the idempotency check first (a retry of a
 * finished command gets that command's answer even if, say, it closed the ticket since), then
 * the ticket checks, then the queue. Anything refused gives the idempotency key back.
 */
export async function accept(
  deps: AcceptDeps,
  reply: FastifyReply,
  principal: Principal,
  job: CommandJob,
  waitSeconds: number,
): Promise<FastifyReply> {
  const key = job.idempotencyKey;
  if (key !== null) {
    const claim = await deps.claims.claim(principal.keyId, key, job.fingerprint, job.commandId);
    if (claim.kind === 'existing') {
      const replayed = await replay(deps, reply, principal, claim.commandId, waitSeconds);
      if (replayed) return replayed;
      if (Date.now() - claim.claimedAt < CLAIM_IN_FLIGHT_MS) {
        throw new Conflict('A request with this idempotency key is still being accepted. Retry in a moment.', 1);
      }
      // The holder never made it into the queue or the ledger: this request takes its place.
      await deps.claims.takeOver(principal.keyId, key, job.fingerprint, claim.commandId, job.commandId);
    }
  }
  try {
    await checkAgainstTicket(deps, principal, job.command);
    const outcome = await enqueue(deps, job, waitSeconds, reply.log);
    return outcome ? sendOutcome(reply, job.commandId, outcome, waitSeconds) : sendQueued(reply, job.commandId);
  } catch (error) {
    if (key !== null && !(await deps.queue.find(job.commandId).catch(() => null))) {
      await deps.claims.release(principal.keyId, key, job.commandId).catch(() => {});
    }
    throw error;
  }
}

/**
 * The answer for a command that already holds this idempotency key: its result if finished,
 * otherwise 202 with its command id (after waiting for it, if asked). null when the command is
 * neither queued nor finished.
 */
async function replay(
  deps: AcceptDeps,
  reply: FastifyReply,
  principal: Principal,
  commandId: string,
  waitSeconds: number,
): Promise<FastifyReply | null> {
  const found = await commandStatus(deps.pool, deps.tables, deps.queue, commandId, principal.keyId);
  if (!found) return null;
  reply.header('Idempotent-Replayed', 'true');
  if (found.status === 'applied')
    return sendOutcome(reply, commandId, { status: 'applied', insertId: found.insert_id }, waitSeconds);
  if (found.status === 'failed') {
    return sendOutcome(
      reply,
      commandId,
      { status: 'failed', failure: { status: found.http_status, message: found.message } },
      waitSeconds,
    );
  }
  if (waitSeconds > 0) {
    const waiting = await deps.waiter.expect(commandId, waitSeconds * 1000);
    // It may have finished between the look-up and the wait.
    const now = await commandStatus(deps.pool, deps.tables, deps.queue, commandId, principal.keyId);
    if (now?.status === 'applied' || now?.status === 'failed') {
      waiting.cancel();
      return replay(deps, reply, principal, commandId, 0);
    }
    const outcome = await waiting.result;
    if (outcome) return sendOutcome(reply, commandId, outcome, waitSeconds);
  }
  return sendQueued(reply, commandId);
}

/**
 * Queues one job and, when the client asked to wait, waits up to waitSeconds for its outcome.
 * The waiter is registered before the job is queued so a fast worker cannot finish unseen.
 */
export async function enqueue(
  deps: AcceptDeps,
  job: CommandJob,
  waitSeconds: number,
  log: FastifyBaseLogger,
): Promise<Outcome | null> {
  if (waitSeconds <= 0) {
    await deps.queue.add(job);
    queued(deps, job, log);
    return null;
  }
  const waiting = await deps.waiter.expect(job.commandId, waitSeconds * 1000);
  try {
    await deps.queue.add(job);
  } catch (error) {
    waiting.cancel();
    throw error;
  }
  queued(deps, job, log);
  return waiting.result;
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
function sendQueued(reply: FastifyReply, commandId: string): FastifyReply {
  return reply
    .code(202)
    .header('Location', `${COMMANDS_PATH}?command_id=${commandId}`)
    .send(ok([{ command_id: commandId, status: 'queued' }]));
}

/** Answers like a v1 create endpoint once the command has finished: 201 insert_id, or its failure. */
function sendOutcome(reply: FastifyReply, commandId: string, outcome: Outcome, waitSeconds: number): FastifyReply {
  if (waitSeconds > 0) reply.header('Preference-Applied', `wait=${waitSeconds}`);
  if (outcome.status === 'failed') throw fromFailureRecord(outcome.failure);
  return reply
    .code(201)
    .header('Location', `${COMMANDS_PATH}?command_id=${commandId}`)
    .send(ok([{ insert_id: outcome.insertId, command_id: commandId }]));
}
