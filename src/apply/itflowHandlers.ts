// ITFlow's own handlers for the actions the service performs, replayed on a TicketModel in the
// order ITFlow's PHP does them, with the rows they leave: the agent UI's add_ticket_reply,
// resolve_ticket, close_ticket and reopen_ticket (agent/post/ticket.php) for the service's own
// create.php, and ITFlow's v1 API (api/v1/ticket_replies/create.php, api/v1/tickets/resolve.php)
// for commands that came in on ITFlow's paths. The newer handlers (ITFlow ≥ 2.4.7) and the older
// ones differ: ticket_history rows, the SLA clock, the moving-into-Resolved check, the first
// response's verdict, the close reply's minute. Where the service deliberately differs it says
// so at the spot. Historical imports are quiet: their own time, no SLA, no notification, no mail.
// A quiet live command (notify: false) writes no notification and no mail either, but is
// otherwise the handler it stands for.
import type { Command } from '../commands/command.js';
import type { Principal } from '../itflow/apiKeys.js';
import { sanitize } from '../itflow/format.js';
import type { ItflowSchema } from '../itflow/schema.js';
import type { ItflowSettings } from '../itflow/settings.js';
import { CLOSED, RESOLVED, type TicketStatus } from '../itflow/tickets.js';
import type { Origin } from './audit.js';
import { clientMailRows, type MailKind } from './clientMail.js';
import type { Mailbox } from './lockTickets.js';
import {
  resetTicketResolutionSla,
  type SlaContext,
  setTicketFirstResponse,
  setTicketResolutionSlaMet,
  syncTicketSlaClock,
} from './slaClock.js';
import { type TicketModel, updateTicket } from './ticketModel.js';

type Row = unknown[];

/** The rows a batch's commands write besides the ticket and its clock, in the order written. */
export interface Writes {
  /** ticket_replies rows; `index` is the batch position of the command whose own reply it is. */
  replies: Array<{ index: number | null; values: Row }>;
  logs: Row[];
  history: Row[];
  notifications: Row[];
  mail: Row[];
}

export const emptyWrites = (): Writes => ({ replies: [], logs: [], history: [], notifications: [], mail: [] });

export interface HandlerContext {
  schema: ItflowSchema;
  statuses: Map<number, TicketStatus>;
  settings: ItflowSettings;
  zone: string;
  principal: Principal;
  origin: Origin;
  /** The command's time (its accepted time), ITFlow's wall clock: ITFlow's NOW() for the action. */
  at: string;
  /** ITFlow's wall clock at writing: ticket_updated_at, logs, notifications, queued mail. */
  now: string;
  /** The command's position in its batch, for its reply's insert id. */
  index: number;
  /** The ticket's contact and watchers, when the batch may email. */
  mailbox: Mailbox | undefined;
  /** The key's user's mail signature. */
  signature: string;
  /**
   * A quiet command (notify: false, or its key's default): no `notifications` rows and no client
   * email; everything else — the reply, the status, SLA, `logs`, `ticket_history` — as usual.
   */
  quiet?: boolean;
  writes: Writes;
}

// ITFlow's column widths; its strict-mode inserts fail on longer text rather than truncate.
/** At most `max` UTF-16 units, never ending in half a surrogate pair (which MySQL would store as U+FFFD). */
const cut = (text: string, max: number) => {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1] ?? '') ? max - 1 : max;
  return text.slice(0, end);
};

const slaContext = (ctx: HandlerContext): SlaContext => ({
  statuses: ctx.statuses,
  calendar: ctx.settings.calendar,
  zone: ctx.zone,
  at: ctx.at,
  now: ctx.now,
});

/** `$session_name`: the key's user, or the key itself for keys that have none (ITFlow ≤ 2.4.6). */
const actor = (ctx: HandlerContext) => sanitize(ctx.principal.actorName);
/** The wording names the key whose request it was, after what ITFlow's UI would say. */
const via = (ctx: HandlerContext) => (ctx.principal.keyModel === 'key-runs-as-user' ? ` via API (${ctx.principal.keyName})` : '');
const ref = (model: TicketModel) => `${sanitize(model.ticket.prefix)}${model.ticket.number}`;
const statusName = (ctx: HandlerContext, status: number) => ctx.statuses.get(status)?.name ?? 'Unknown';

function logAudit(ctx: HandlerContext, model: TicketModel, type: string, action: string, description: string, entity = true) {
  const { origin, principal, now } = ctx;
  ctx.writes.logs.push([
    type,
    action,
    cut(description, 1000),
    cut(origin.ip, 200),
    cut(origin.userAgent, 250),
    now,
    model.ticket.clientId,
    principal.userId,
    entity ? model.ticket.id : 0,
  ]);
}

/** logTicketHistory: stamped with the status the ticket is in when it is written. */
function logTicketHistory(ctx: HandlerContext, model: TicketModel, description: string, at = ctx.at) {
  ctx.writes.history.push([cut(statusName(ctx, model.ticket.status), 200), cut(description, 255), at, model.ticket.id]);
}

function insertReply(
  ctx: HandlerContext,
  model: TicketModel,
  own: boolean,
  values: { body: string; type: string; time: string; by: number; at: string },
) {
  ctx.writes.replies.push({
    index: own ? ctx.index : null,
    values: [values.body, values.type, values.time, values.by, model.ticket.id, values.at],
  });
}

function queueMail(ctx: HandlerContext, model: TicketModel, kind: MailKind, reply?: string) {
  if (ctx.quiet || !ctx.mailbox || !ctx.schema.mail.queue || !ctx.settings.mail.smtpConfigured || ctx.settings.baseUrl === null)
    return;
  ctx.writes.mail.push(
    ...clientMailRows({
      kind,
      ticket: model.ticket,
      mailbox: ctx.mailbox,
      settings: ctx.settings,
      statusName: statusName(ctx, model.ticket.status),
      reply,
      now: ctx.now,
    }),
  );
}

/** Notifications for the assigned agent and the ticket's creator, when they are not the author. */
function notifyAgents(ctx: HandlerContext, model: TicketModel) {
  if (ctx.quiet) return;
  const t = model.ticket;
  const userId = ctx.principal.userId;
  const text = `${actor(ctx)} updated Ticket ${ref(model)} - Subject: ${sanitize(t.subject)}`;
  const action = `/agent/ticket.php?ticket_id=${t.id}${t.clientId ? `&client_id=${t.clientId}` : ''}`;
  const notify = (user: number, suffix: string) =>
    ctx.writes.notifications.push(['Ticket', cut(`${text} ${suffix}`, 1000), cut(action, 250), ctx.now, t.clientId, user]);
  if (userId !== t.assignedTo && t.assignedTo !== 0) notify(t.assignedTo, 'that is assigned to you');
  if (userId !== t.createdBy && t.createdBy !== 0) notify(t.createdBy, 'that you opened');
}

/** ITFlow ≤ 2.4.6 stamps the first response plainly; the newer handlers judge the response SLA. */
function firstResponse(ctx: HandlerContext, model: TicketModel) {
  if (ctx.schema.slaClock || ctx.schema.newerHandlers) {
    if (ctx.schema.hasSla) setTicketFirstResponse(model, slaContext(ctx));
    else if (model.ticket.firstResponseAt === null) updateTicket(model, { ticket_first_response_at: ctx.at }, ctx.now);
  } else if (model.ticket.firstResponseAt === null) updateTicket(model, { ticket_first_response_at: ctx.at }, ctx.now);
}

const sync = (ctx: HandlerContext, model: TicketModel) => ctx.schema.slaClock && syncTicketSlaClock(model, slaContext(ctx));
const judgeResolution = (ctx: HandlerContext, model: TicketModel) =>
  ctx.schema.slaClock && setTicketResolutionSlaMet(model, slaContext(ctx));

/**
 * The verdict ITFlow's SLA-less releases still keep where the columns exist but no clock does:
 * judged once at resolve against the stored deadline, a recorded miss kept.
 */
function judgeResolutionWithoutClock(ctx: HandlerContext, model: TicketModel) {
  const t = model.ticket;
  if (ctx.schema.slaClock || !ctx.schema.hasSla || t.resolutionDueAt === null || t.resolutionSlaMet === 0) return;
  updateTicket(model, { ticket_resolution_sla_met: (t.resolvedAt ?? ctx.at) <= t.resolutionDueAt ? 1 : 0 }, ctx.now);
}

export interface ReplyInput {
  body: string;
  type: string;
  timeWorked: string;
  emailClient: boolean;
}

/**
 * agent UI add_ticket_reply: set the status (unchanged, or `status`) and ticket_updated_at; if
 * the ticket moves into Resolved, stamp it and judge the resolution SLA; add the reply, email the
 * client (Public + email), notify the agents, stamp the first Public response; log the status
 * change in the ticket's history and the reply in ITFlow's log.
 */
export function addTicketReply(ctx: HandlerContext, model: TicketModel, reply: ReplyInput | null, status: number) {
  const original = model.ticket.status;
  const newer = ctx.schema.newerHandlers;
  updateTicket(model, { ticket_status: status, ticket_updated_at: ctx.now }, ctx.now);
  sync(ctx, model);

  if (status === RESOLVED && original !== RESOLVED) {
    updateTicket(model, { ticket_resolved_at: ctx.at }, ctx.now);
    judgeResolution(ctx, model);
    judgeResolutionWithoutClock(ctx, model);
    if (newer) logTicketHistory(ctx, model, `${actor(ctx)} resolved the ticket${via(ctx)}`);
    logAudit(ctx, model, 'Ticket', 'Resolved', `${actor(ctx)} resolved ticket ${ref(model)}${via(ctx)}`);
  }

  if (reply) {
    // Public + email carries the agent's signature, in the reply as stored and in the mail.
    const body = reply.emailClient ? reply.body + ctx.signature : reply.body;
    insertReply(ctx, model, true, { body, type: reply.type, time: reply.timeWorked, by: ctx.principal.userId, at: ctx.at });
    if (reply.emailClient && reply.type === 'Public') queueMail(ctx, model, 'reply', body);
    notifyAgents(ctx, model);
    if (reply.type === 'Public') firstResponse(ctx, model);
  }

  if (newer && status !== original && status !== RESOLVED) {
    logTicketHistory(ctx, model, `${actor(ctx)} set the status to ${statusName(ctx, status)}${via(ctx)}`);
  }
  logAudit(
    ctx,
    model,
    'Ticket',
    'Reply',
    reply
      ? `${actor(ctx)} replied to ticket ${ref(model)} - ${sanitize(model.ticket.subject)} and was a ${reply.type} reply${via(ctx)}`
      : `${actor(ctx)} set ticket ${ref(model)} - ${sanitize(model.ticket.subject)} to ${statusName(ctx, status)}${via(ctx)}`,
  );
}

/** agent UI resolve_ticket: stamp a missing first response, resolve, judge, mail the client. */
export function resolveTicket(ctx: HandlerContext, model: TicketModel) {
  firstResponse(ctx, model);
  updateTicket(model, { ticket_status: RESOLVED, ticket_resolved_at: ctx.at }, ctx.now);
  sync(ctx, model);
  judgeResolution(ctx, model);
  judgeResolutionWithoutClock(ctx, model);
  if (ctx.schema.newerHandlers) logTicketHistory(ctx, model, `${actor(ctx)} resolved the ticket${via(ctx)}`);
  logAudit(ctx, model, 'Ticket', 'Resolved', `${actor(ctx)} resolved ticket ${ref(model)} (ID: ${model.ticket.id})${via(ctx)}`);
  if (ctx.settings.mail.clientNotifications) queueMail(ctx, model, 'resolved');
}

/**
 * agent UI close_ticket: close, stop the clock and judge, add the Internal "Ticket closed." reply
 * by the acting user, mail the client. One deliberate difference: a ticket closed before it was
 * resolved gets ticket_resolved_at too (ITFlow leaves it NULL, which keeps a closed ticket in its
 * Open list).
 */
export function closeTicket(ctx: HandlerContext, model: TicketModel) {
  const userId = ctx.principal.userId;
  updateTicket(
    model,
    {
      ticket_status: CLOSED,
      ticket_closed_at: ctx.at,
      ticket_closed_by: userId,
      ...(model.ticket.resolvedAt === null ? { ticket_resolved_at: ctx.at } : {}),
    },
    ctx.now,
  );
  sync(ctx, model);
  judgeResolution(ctx, model);
  judgeResolutionWithoutClock(ctx, model);
  insertReply(ctx, model, false, {
    body: 'Ticket closed.',
    type: 'Internal',
    time: ctx.schema.newerHandlers ? '00:00:00' : '00:01:00',
    by: userId,
    at: ctx.at,
  });
  if (ctx.schema.newerHandlers) logTicketHistory(ctx, model, `${actor(ctx)} closed the ticket${via(ctx)}`);
  logAudit(ctx, model, 'Ticket', 'Closed', `${actor(ctx)} closed ticket ${ref(model)} (ID: ${model.ticket.id})${via(ctx)}`);
  if (ctx.settings.mail.clientNotifications) queueMail(ctx, model, 'closed');
}

/**
 * agent UI reopen_ticket: back to an open status (ITFlow's button uses Open; the service keeps
 * the status asked for), resolution cleared, the clock restarted and re-based, the verdict reset.
 */
export function reopenTicket(ctx: HandlerContext, model: TicketModel, status: number) {
  updateTicket(model, { ticket_status: status, ticket_resolved_at: null }, ctx.now);
  sync(ctx, model);
  if (ctx.schema.slaClock) resetTicketResolutionSla(model, slaContext(ctx));
  else if (ctx.schema.hasSla && model.ticket.resolutionSlaMet !== 0)
    updateTicket(model, { ticket_resolution_sla_met: null }, ctx.now);
  if (ctx.schema.newerHandlers) logTicketHistory(ctx, model, `${actor(ctx)} reopened the ticket${via(ctx)}`);
  logAudit(ctx, model, 'Ticket', 'Reopened', `${actor(ctx)} reopened ticket ${ref(model)} (ID: ${model.ticket.id})${via(ctx)}`);
}

/**
 * ITFlow's api/v1/ticket_replies/create.php: stamp the first Public response, add the reply, set
 * a status (moving into Resolved: stamp and judge), log the reply twice (ticket and API), and
 * email the contact and watchers on any Public reply. It writes no notifications and, for a
 * status that is not Resolved, leaves the SLA clock alone — as ITFlow's endpoint does.
 */
export function apiCreateReply(ctx: HandlerContext, model: TicketModel, reply: ReplyInput, status: number) {
  const key = ctx.principal.keyName;
  const original = model.ticket.status;
  if (reply.type === 'Public') firstResponse(ctx, model);
  insertReply(ctx, model, true, {
    body: reply.body,
    type: reply.type,
    time: reply.timeWorked,
    by: ctx.principal.userId,
    at: ctx.at,
  });
  if (status > 0) {
    updateTicket(model, { ticket_status: status }, ctx.now);
    if (status !== original && status !== RESOLVED) {
      logTicketHistory(ctx, model, `Status set to ${statusName(ctx, status)} via the API (${key})`);
    }
    if (status === RESOLVED && original !== RESOLVED) {
      if (model.ticket.resolvedAt === null) updateTicket(model, { ticket_resolved_at: ctx.at }, ctx.now);
      judgeResolution(ctx, model);
      judgeResolutionWithoutClock(ctx, model);
      logTicketHistory(ctx, model, `Resolved via the API (${key})`);
      logAudit(ctx, model, 'Ticket', 'Resolved', `Resolved ticket ${ref(model)} via API (${key})`);
    }
  }
  logAudit(
    ctx,
    model,
    'Ticket',
    'Reply',
    `Added a ${reply.type} reply to ticket ${ref(model)} - ${sanitize(model.ticket.subject)} via API (${key})`,
  );
  logAudit(ctx, model, 'API', 'Success', `Added a ${reply.type} reply to ticket ${ref(model)} via API (${key})`, false);
  if (reply.type === 'Public') queueMail(ctx, model, 'apiReply', reply.body);
}

/** ITFlow's api/v1/tickets/resolve.php: as resolve_ticket, logged as the API, no mail. */
export function apiResolveTicket(ctx: HandlerContext, model: TicketModel) {
  const key = ctx.principal.keyName;
  firstResponse(ctx, model);
  updateTicket(model, { ticket_status: RESOLVED, ticket_resolved_at: ctx.at }, ctx.now);
  sync(ctx, model);
  judgeResolution(ctx, model);
  judgeResolutionWithoutClock(ctx, model);
  if (ctx.schema.newerHandlers) logTicketHistory(ctx, model, `Resolved via the API (${key})`);
  logAudit(ctx, model, 'Ticket', 'Resolved', `${ref(model)} ticket via API (${key})`);
  logAudit(ctx, model, 'API', 'Success', `Resolved ticket ${ref(model)} via API (${key})`, false);
}

/**
 * A historical reply (bulk.php `created_at`): added with its own time and author, logged as an
 * import; a status it carries is set with the same time, quietly — no SLA clock, verdict,
 * notification or mail, and no first response.
 */
export function importReply(ctx: HandlerContext, model: TicketModel, command: Command, by: number, type: string) {
  const createdAt = command.createdAt as string;
  if (command.reply) {
    insertReply(ctx, model, true, { body: command.reply.body, type, time: command.reply.timeWorked, by, at: createdAt });
    logAudit(
      ctx,
      model,
      'Ticket',
      'Reply',
      `Imported a ${type} reply dated ${createdAt} to ticket ${ref(model)} - ${sanitize(model.ticket.subject)} via API (${ctx.principal.keyName})`,
    );
  }
  const status = command.status;
  if (status > 0 && status !== model.ticket.status) {
    const t = model.ticket;
    updateTicket(
      model,
      {
        ticket_status: status,
        ...(t.status === RESOLVED && status !== CLOSED ? { ticket_resolved_at: null } : {}),
        ...((status === RESOLVED || status === CLOSED) &&
        (t.status === RESOLVED && status !== CLOSED ? null : t.resolvedAt) === null
          ? { ticket_resolved_at: createdAt }
          : {}),
        ...(status === CLOSED ? { ticket_closed_at: createdAt, ticket_closed_by: ctx.principal.userId } : {}),
      },
      ctx.now,
    );
    if (ctx.schema.newerHandlers) {
      logTicketHistory(
        ctx,
        model,
        `Status set to ${statusName(ctx, status)} by an import via the API (${ctx.principal.keyName})`,
        createdAt,
      );
    }
    logAudit(
      ctx,
      model,
      'Ticket',
      'Edit',
      `Set ticket ${ref(model)} status to ${statusName(ctx, status)} by an import via API (${ctx.principal.keyName})`,
    );
  }
}

/**
 * Which of ITFlow's handlers a command stands for, given its ticket as it is now, and runs it.
 * On the service's own path: a reply (with or without a status) is add_ticket_reply; a status
 * alone is resolve_ticket, close_ticket or reopen_ticket where ITFlow has a button for it, else
 * add_ticket_reply without text; a reply with a close, or with a move out of Resolved, is the
 * reply and then that button. A status that does not change is not an event.
 */
export function applyCommand(ctx: HandlerContext, model: TicketModel, command: Command, author: { by: number; type: string }) {
  if (command.createdAt !== undefined) return importReply(ctx, model, command, author.by, author.type);
  const current = model.ticket.status;
  const target = command.status > 0 && command.status !== current ? command.status : 0;
  const reply: ReplyInput | null = command.reply
    ? {
        body: command.reply.body,
        type: command.reply.type,
        timeWorked: command.reply.timeWorked,
        emailClient: command.emailClient === true,
      }
    : null;

  if (command.dialect === 'itflow-resolve') return apiResolveTicket(ctx, model);
  if (command.dialect === 'itflow-reply' && reply && ctx.schema.newerHandlers)
    return apiCreateReply(ctx, model, reply, command.status);

  const reopening = current === RESOLVED && target !== 0 && target !== CLOSED;
  if (reply && (target === 0 || target === CLOSED || reopening)) addTicketReply(ctx, model, reply, current);
  else if (reply) return addTicketReply(ctx, model, reply, target);

  if (target === RESOLVED) resolveTicket(ctx, model);
  else if (target === CLOSED) closeTicket(ctx, model);
  else if (reopening) reopenTicket(ctx, model, target);
  else if (target !== 0) addTicketReply(ctx, model, null, target);
}
