import { type Pool, type PoolConnection, type ResultSetHeader, raw } from 'mysql2/promise';
import type { ReplyId } from '../db/sqlExpression.js';
import type { ServiceTables } from '../db/tables.js';
import { ExternalIdMismatch, IdempotencyMismatch, ServiceError, toFailureRecord, Unauthorized } from '../errors.js';
import { type Principal, type Resolution, requireLevel, unwrap, WRITE } from '../itflow/apiKeys.js';
import { type ItflowClock, wallClock } from '../itflow/clock.js';
import type { People } from '../itflow/people.js';
import type { ItflowSchema } from '../itflow/schema.js';
import type { ItflowSettings, ItflowSettingsReader } from '../itflow/settings.js';
import { refuseIfClosed, refuseIfResolved, requireActiveStatus, requireTicketInScope } from '../itflow/ticketRules.js';
import { CLOSED, RESOLVED, type TicketDirectory, type TicketStatus } from '../itflow/tickets.js';
import type { CommandJob } from '../queue/jobs.js';
import { commandEventsStatement, recordOnceWithEvents } from '../webhooks/outbox.js';
import type { SubscriptionIndex, WebhookSubscriptions } from '../webhooks/subscriptions.js';
import { auditStatements } from './audit.js';
import { classify } from './classify.js';
import { mailStatement } from './clientMail.js';
import { externalIdStatement } from './externalIds.js';
import { applyCommand, emptyWrites, type Writes } from './itflowHandlers.js';
import { type LedgerEntry, ledgerStatement, type Outcome } from './ledger.js';
import { idempotencyKeyOf, type LockedState, type LockedTicket, lockTickets } from './lockTickets.js';
import { projectionStatement } from './projection.js';
import { intervalWrites, type TicketModel, ticketModel, ticketUpdates } from './ticketModel.js';

/**
 * Session settings for the worker's pool: READ COMMITTED for the ledger read under the ticket
 * locks (see lockTickets), and a bounded wait for a row or a table somebody else holds (a
 * backup's LOCK TABLES, an ALTER), after which the batch is retried later.
 */
export function applySessionSql(lockWaitSeconds: number): string[] {
  const seconds = Math.trunc(lockWaitSeconds);
  return [
    'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
    `SET SESSION innodb_lock_wait_timeout = ${seconds}`,
    `SET SESSION lock_wait_timeout = ${seconds}`,
  ];
}

export interface ApplyDeps {
  pool: Pool;
  tables: ServiceTables;
  schema: ItflowSchema;
  clock: ItflowClock;
  /** The status list (a short cache is fine: a status is re-checked against the ticket's own). */
  tickets: TicketDirectory;
  /** ITFlow's mail, company and business-hours settings. */
  settings: ItflowSettingsReader;
  /**
   * Among these tickets, those with commands parked behind a row lock (src/queue/parked.ts):
   * their other commands must wait behind the parked ones. Asked while the tickets are locked.
   */
  parkedAmong?: (ticketIds: number[]) => Promise<Set<number>>;
  people: People;
  /** Webhook subscriptions (cached): the commands whose key has one get their event written with their ledger row. */
  webhooks?: WebhookSubscriptions;
}

/** One command to apply, with how many times it has been tried (for the ledger). */
export interface Submission {
  job: CommandJob;
  attempts: number;
  /** Taken from its ticket's parked commands (by the drainer), not from a lane. */
  parked?: boolean;
}

interface Statement {
  sql: string;
  params: unknown[];
}

/**
 * What a batch will write, worked out under the tickets' locks before anything is written.
 * Every command ends as exactly one of: already finished (nothing to write), failed (its
 * ledger row only), or applied (its effects and its ledger row).
 */
interface Plan {
  outcomes: ApplyResult[];
  writes: Writes;
  models: Map<number, TicketModel>;
  ledger: Array<{ index: number; entry: LedgerEntry }>;
  /** A command that appears twice in the batch: [its later index, its first index]. */
  twins: Array<[number, number]>;
  /**
   * A command whose external id a batch-mate's reply takes: [its index, the mate's]. It answers
   * (and is recorded) as the mate once the mate's reply has its id.
   */
  externalTwins: Array<[number, number]>;
}

/**
 * What became of one command of a batch: its outcome, or `locked` when its ticket's row was held
 * by another session, or the ticket already has commands parked ahead of it — nothing was
 * written for it, and it is to be parked behind them.
 */
export type ApplyResult = Outcome | { status: 'locked' };

/**
 * Applies a batch of commands in one MySQL transaction and two round trips: lock the
 * tickets and read the ledger; insert the replies, write the ticket updates, audit rows and
 * ledger rows, and commit (three where the replies' ids must be known before the last: see
 * write). Each command is still all or nothing: one that must fail (ticket gone, closed, out of
 * scope…) contributes only its failed ledger row, and its batch-mates apply. Commands of one ticket take effect in batch order.
 *
 * Throws only for errors of the whole batch (deadlock, lost connection…), after rolling back.
 */
export async function applyBatch(deps: ApplyDeps, batch: Submission[]): Promise<ApplyResult[]> {
  const ticketIds = [...new Set(batch.map((s) => s.job.command.ticketId))].sort((a, b) => a - b);
  const zone = await deps.clock.zone();
  const settings = await deps.settings.get();
  const mailing = mayEmail(deps.schema, settings, batch);
  const subscriptions = await deps.webhooks?.current();
  const fromLanes = [...new Set(batch.filter((s) => !s.parked).map((s) => s.job.command.ticketId))];
  // Asked alongside the locking round trip, so it adds no wait of its own.
  const parking = fromLanes.length > 0 && deps.parkedAmong ? deps.parkedAmong(fromLanes) : Promise.resolve(new Set<number>());
  parking.catch(() => {}); // awaited below; a failure here must not go unhandled meanwhile
  const conn = await deps.pool.getConnection();
  let broken = false;
  try {
    const [state, parked] = await Promise.all([
      lockTickets(conn, deps.schema, deps.tables, {
        ticketIds,
        commandIds: batch.map((s) => s.job.commandId),
        idempotencyKeys: batch.flatMap(({ job }) =>
          job.idempotencyKey === null ? [] : [[job.apiKeyId, job.idempotencyKey] as [number, string]],
        ),
        keyIds: [...new Set(batch.map((s) => s.job.apiKeyId))],
        now: wallClock(Date.now(), zone),
        mail: mailing,
        signatureKeyIds: [...new Set(batch.filter((s) => s.job.command.emailClient).map((s) => s.job.apiKeyId))],
        externalIds: batch.flatMap(({ job }) =>
          job.command.externalId === undefined ? [] : [[job.apiKeyId, job.command.externalId] as [number, string]],
        ),
        quietKeyIds: [...new Set(batch.filter((s) => followsKeyDefault(s.job.command)).map((s) => s.job.apiKeyId))],
      }),
      parking,
    ]);
    const plan = await decide(deps, batch, state, parked, zone, settings);
    await write(conn, deps, plan, batch, subscriptions);
    for (const [twin, first] of plan.twins) {
      const outcome = plan.outcomes[first] as ApplyResult;
      plan.outcomes[twin] = outcome.status === 'locked' ? outcome : { ...outcome, repeat: true };
    }
    return plan.outcomes;
  } catch (error) {
    broken = (error as { fatal?: boolean }).fatal === true;
    if (!broken) await conn.query('ROLLBACK').catch(() => (broken = true));
    const verdict = classify(error);
    // A lone command whose data ITFlow's tables refuse will never apply: record it as failed.
    if (verdict.kind === 'final' && batch.length === 1) {
      return [await recordFailure(deps, subscriptions, batch[0] as Submission, verdict.error)];
    }
    throw error;
  } finally {
    if (broken) conn.destroy();
    else conn.release();
  }
}

/**
 * Whether some command of the batch may email a client, so the tickets' contacts and watchers are
 * read with the locks: ITFlow has mail set up, and a command asks for a Public + email reply, is
 * a live resolve or close (mailed when client notifications are on), or a Public reply on
 * ITFlow's own API path.
 */
function mayEmail(schema: ItflowSchema, settings: ItflowSettings, batch: Submission[]): boolean {
  if (!schema.mail.queue || !settings.mail.smtpConfigured || settings.baseUrl === null) return false;
  return batch.some(({ job: { command } }) => {
    if (command.createdAt !== undefined) return false;
    if (command.emailClient && command.reply) return true;
    if (command.dialect === 'itflow-reply' && command.reply?.type === 'Public') return true;
    return settings.mail.clientNotifications && (command.status === RESOLVED || command.status === CLOSED);
  });
}

/** A command that notifies or not as its key's default says: it says nothing itself and asks for no email. */
function followsKeyDefault(command: CommandJob['command']): boolean {
  return command.notify === undefined && !command.emailClient && command.createdAt === undefined;
}

async function decide(
  deps: ApplyDeps,
  batch: Submission[],
  state: LockedState,
  parked: Set<number>,
  zone: string,
  settings: ItflowSettings,
): Promise<Plan> {
  const plan: Plan = { outcomes: [], writes: emptyWrites(), models: new Map(), ledger: [], twins: [], externalTwins: [] };
  const statuses = await deps.tickets.statuses();
  const now = wallClock(Date.now(), zone);
  const latest = new Map(state.latestAccepted);
  const seen = new Map<string, number>();
  const keyedInBatch = new Map<string, { commandId: string; fingerprint: string; index: number }>();
  const externalInBatch = new Map<string, { commandId: string; fingerprint: string; index: number }>();

  for (const [index, { job, attempts, parked: fromParked }] of batch.entries()) {
    const earlier = state.finished.get(job.commandId);
    if (earlier) {
      // Finished by an earlier delivery: that outcome stands and nothing is written.
      plan.outcomes[index] = { ...earlier, repeat: true };
      continue;
    }
    const first = seen.get(job.commandId);
    if (first !== undefined) {
      // Twice in this batch: it takes the first one's outcome once that is written.
      plan.twins.push([index, first]);
      continue;
    }
    seen.set(job.commandId, index);
    // Its ticket's row is held elsewhere, or it has commands parked ahead of this one: it waits.
    if (state.lockedElsewhere.has(job.command.ticketId) || (!fromParked && parked.has(job.command.ticketId))) {
      plan.outcomes[index] = { status: 'locked' };
      continue;
    }
    if (job.idempotencyKey !== null) {
      // Another command already holds this idempotency key (a race the intake could not see):
      // this one never takes effect; it answers as the holder did, or 422 if it asked otherwise.
      const keyId = idempotencyKeyOf(job.apiKeyId, job.idempotencyKey);
      const holder = state.keyed.get(keyId) ?? keyedInBatch.get(keyId);
      if (holder && holder.commandId !== job.commandId) {
        if (holder.fingerprint !== job.fingerprint) {
          plan.outcomes[index] = {
            status: 'failed',
            failure: toFailureRecord(new IdempotencyMismatch(job.idempotencyKey, holder.commandId)),
          };
        } else if ('outcome' in holder) {
          // The holder finished earlier: this one answers as it did.
          plan.outcomes[index] = { ...holder.outcome, repeat: true };
        } else {
          plan.twins.push([index, holder.index]);
        }
        continue;
      }
      keyedInBatch.set(keyId, { commandId: job.commandId, fingerprint: job.fingerprint, index });
    }
    plan.ledger.push({ index, entry: ledgerEntry({ job, attempts }) });
    const externalId = job.command.externalId;
    const externalKey = externalId === undefined ? null : idempotencyKeyOf(job.apiKeyId, externalId);
    if (externalId !== undefined && externalKey !== null) {
      // The external id already names a reply (committed, or made by a batch-mate): this command
      // makes none. The same request answers as the one that made it; another is refused (422).
      const holder = state.externalIds.get(externalKey) ?? externalInBatch.get(externalKey);
      if (holder) {
        if (holder.fingerprint !== job.fingerprint) {
          plan.outcomes[index] = {
            status: 'failed',
            failure: toFailureRecord(new ExternalIdMismatch(externalId, holder.commandId)),
          };
        } else if ('insertId' in holder) {
          plan.outcomes[index] = { status: 'applied', insertId: holder.insertId, repeat: true };
        } else {
          plan.outcomes[index] = { status: 'applied', insertId: 0, repeat: true };
          plan.externalTwins.push([index, holder.index]);
        }
        continue;
      }
    }
    try {
      const locked = state.tickets.get(job.command.ticketId);
      let model = locked ? plan.models.get(locked.id) : undefined;
      if (locked && !model) {
        model = ticketModel(locked, state.intervals.get(locked.id) ?? []);
        plan.models.set(locked.id, model);
      }
      const principal = await checkCommand(deps, job, model?.ticket, state.keys.get(job.apiKeyId), statuses);
      const ticket = (model as TicketModel).ticket;
      const { command } = job;
      let at = command.createdAt;
      if (at === undefined) {
        // Two requests accepted in the same instant can reach a lane in either order: the
        // event time never goes back, so created_at follows ticket_reply_id.
        const eventMs = Math.max(job.acceptedAt, latest.get(ticket.id) ?? 0);
        latest.set(ticket.id, eventMs);
        at = wallClock(eventMs, zone);
      }
      // An import may name its author; a contact's reply is a 'Client' reply, as ITFlow's portal writes it.
      const author = command.author;
      const by = author === undefined ? principal.userId : 'userId' in author ? author.userId : author.contactId;
      const type = author !== undefined && 'contactId' in author ? 'Client' : (command.reply?.type ?? 'Internal');
      applyCommand(
        {
          schema: deps.schema,
          statuses,
          settings,
          zone,
          principal,
          origin: job.origin,
          at,
          now,
          index,
          mailbox: state.mailboxes.get(ticket.id),
          signature: state.signatures.get(job.apiKeyId) ?? '',
          quiet: command.notify === false || (followsKeyDefault(command) && state.quietKeys.has(job.apiKeyId)),
          writes: plan.writes,
        },
        model as TicketModel,
        command,
        { by, type },
      );
      plan.outcomes[index] = { status: 'applied', insertId: 0 };
      // Only a command that applies takes its external id: a failed one made nothing to name.
      if (externalKey !== null)
        externalInBatch.set(externalKey, { commandId: job.commandId, fingerprint: job.fingerprint, index });
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      plan.outcomes[index] = { status: 'failed', failure: toFailureRecord(error) };
    }
  }
  return plan;
}

/**
 * The worker's own checks, under the ticket's lock and with the key as MySQL has it in this
 * transaction: everything the intake checked (from its cache), again.
 */
async function checkCommand(
  deps: ApplyDeps,
  job: CommandJob,
  ticket: LockedTicket | undefined,
  key: Resolution | undefined,
  statuses: Map<number, TicketStatus>,
): Promise<Principal> {
  const { command } = job;
  const principal = unwrap(key);
  if (!principal) throw new Unauthorized();
  requireLevel(principal, WRITE);
  requireTicketInScope(principal.scope, command, ticket?.clientId);
  const locked = ticket as LockedTicket;
  refuseIfClosed(locked.closedAt !== null, command);
  if (command.dialect === 'itflow-resolve') refuseIfResolved(locked.resolvedAt !== null);
  if (command.author !== undefined) await deps.people.check(principal, command.author, locked.clientId);
  requireActiveStatus(command, locked.status, statuses);
  return principal;
}

function ledgerEntry({ job, attempts }: Submission): LedgerEntry {
  return {
    commandId: job.commandId,
    apiKeyId: job.apiKeyId,
    idempotencyKey: job.idempotencyKey,
    fingerprint: job.fingerprint,
    ticketId: job.command.ticketId,
    acceptedAt: job.acceptedAt,
    attempts,
    externalId: job.command.externalId ?? null,
  };
}

async function write(
  conn: PoolConnection,
  deps: ApplyDeps,
  plan: Plan,
  batch: Submission[],
  subscriptions: SubscriptionIndex | undefined,
): Promise<void> {
  const { writes } = plan;
  const statements: Statement[] = [];
  // The replies go in with the rest, in one round trip, where the server gives a multi-row INSERT
  // consecutive ids and no webhook body needs them before the query: the rows that name a reply
  // read its id from LAST_INSERT_ID(), kept in a session variable. Otherwise they are inserted
  // first, in a round trip of their own.
  const folded = writes.replies.length > 0 && deps.schema.consecutiveInsertIds && (!subscriptions || subscriptions.empty);
  let replyIds: ReplyId[] = [];
  if (folded) {
    statements.push(
      { sql: INSERT_REPLIES, params: [writes.replies.map((r) => r.values)] },
      { sql: 'SET @rq_first_reply = LAST_INSERT_ID()', params: [] },
    );
    replyIds = writes.replies.map((_, i) => raw(`(@rq_first_reply + ${i})`));
  } else if (writes.replies.length > 0) {
    const ids = await insertReplies(
      conn,
      deps.schema.consecutiveInsertIds,
      writes.replies.map((r) => r.values),
    );
    replyIdsKnown(plan, ids);
    replyIds = ids;
  }
  // The reply id each command's rows name (an external-id twin names its mate's).
  const replyOf = new Map<number, ReplyId>();
  writes.replies.forEach((reply, i) => {
    if (reply.index !== null) replyOf.set(reply.index, replyIds[i] as ReplyId);
  });
  for (const [twin, mate] of plan.externalTwins) {
    const id = replyOf.get(mate);
    if (id !== undefined) replyOf.set(twin, id);
  }
  const models = [...plan.models.values()];
  statements.push(...ticketUpdates(models), ...intervalWrites(models), ...auditStatements(writes));
  const projected = projectionStatement(deps.tables, writes.replies, replyIds, plan.models, (index) =>
    index === null ? null : (batch[index]?.job.command.externalId ?? null),
  );
  if (projected) statements.push(projected);
  if (writes.mail.length > 0) statements.push(mailStatement(writes.mail, deps.schema.mail.attachments));
  const finished = plan.ledger.map(({ index, entry }) => ({
    entry,
    outcome: plan.outcomes[index] as Outcome,
    replyId: replyOf.get(index),
  }));
  const named = externalIdStatement(deps.tables, finished);
  if (named) statements.push(named);
  if (plan.ledger.length > 0) statements.push(ledgerStatement(deps.tables, finished));
  // Webhook events of the commands finished now, with their ledger rows (src/webhooks/outbox.ts).
  const events = commandEventsStatement(
    deps.tables,
    subscriptions,
    plan.ledger.map(({ index }) => ({ job: (batch[index] as Submission).job, outcome: plan.outcomes[index] as Outcome })),
  );
  if (events) statements.push(events);
  statements.push({ sql: 'COMMIT', params: [] });
  const [results] = await conn.query<ResultSetHeader[]>(
    statements.map((s) => s.sql).join(';\n'),
    statements.flatMap((s) => s.params),
  );
  if (folded) {
    const first = (results[0] as ResultSetHeader).insertId;
    replyIdsKnown(
      plan,
      writes.replies.map((_, i) => first + i),
    );
  }
  for (const [twin, mate] of plan.externalTwins) plan.outcomes[twin] = { ...(plan.outcomes[mate] as Outcome), repeat: true };
  if (events) deps.webhooks?.eventsWritten();
}

/** Each command that made a reply answers with its ticket_reply_id. */
function replyIdsKnown(plan: Plan, ids: number[]): void {
  plan.writes.replies.forEach((reply, i) => {
    if (reply.index !== null) plan.outcomes[reply.index] = { status: 'applied', insertId: ids[i] as number };
  });
}

const REPLY_COLUMNS = `ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_by,
  ticket_reply_ticket_id, ticket_reply_created_at`;

/** A batch's replies in one multi-row INSERT (consecutive ids where the server guarantees them). */
const INSERT_REPLIES = `INSERT INTO ticket_replies (${REPLY_COLUMNS}) VALUES ?`;

/**
 * Inserts a batch's replies in one round trip and returns their ticket_reply_ids in order:
 * one multi-row INSERT where the server guarantees consecutive ids, else one INSERT per reply
 * (each answering its own id).
 */
async function insertReplies(conn: PoolConnection, consecutive: boolean, rows: unknown[][]): Promise<number[]> {
  if (consecutive || rows.length === 1) {
    const [result] = await conn.query<ResultSetHeader>(INSERT_REPLIES, [rows]);
    return rows.map((_, i) => result.insertId + i);
  }
  const sql = rows.map(() => `INSERT INTO ticket_replies (${REPLY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`).join(';\n');
  const [results] = await conn.query<ResultSetHeader[]>(sql, rows.flat());
  return results.map((r) => r.insertId);
}

/**
 * A lone command that cannot be stored at all is recorded as failed, on a connection of its own
 * (the batch's may have been closed by the server, as after a packet too large).
 */
async function recordFailure(
  deps: ApplyDeps,
  subscriptions: SubscriptionIndex | undefined,
  submission: Submission,
  error: ServiceError,
) {
  const outcome: Outcome = { status: 'failed', failure: toFailureRecord(error) };
  const ledger = ledgerStatement(deps.tables, [{ entry: ledgerEntry(submission), outcome }]);
  const events = commandEventsStatement(deps.tables, subscriptions, [{ job: submission.job, outcome }]);
  await recordOnceWithEvents(deps.pool, ledger, events);
  if (events) deps.webhooks?.eventsWritten();
  return outcome;
}
