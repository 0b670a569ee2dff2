import type { Command } from '../commands/command.js';
import type { Principal } from '../itflow/apiKeys.js';
import { type LockedTicket, ticketRef } from './lockTickets.js';
import type { TicketChange } from './ticketChange.js';

/** Where the request came from, for ITFlow's logs.log_ip / log_user_agent. */
export interface Origin {
  ip: string;
  userAgent: string;
}

type Row = (string | number | null)[];

/** Rows for ITFlow's audit tables, gathered over a batch and written with one INSERT each. */
export interface AuditRows {
  logs: Row[];
  history: Row[];
  notifications: Row[];
}

export const emptyAudit = (): AuditRows => ({ logs: [], history: [], notifications: [] });

interface AuditInput {
  /** The ticket as it was before this command. */
  ticket: LockedTicket;
  command: Command;
  change: TicketChange;
  principal: Principal;
  origin: Origin;
  /** Name of the ticket's status after the command (ticket_history_status). */
  statusName: string;
  eventTime: string;
  now: string;
}

// ITFlow's column widths; its strict-mode inserts fail on longer text rather than truncate.
/** At most `max` UTF-16 units, never ending in half a surrogate pair (which MySQL would store as U+FFFD). */
const cut = (text: string, max: number) => {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1] ?? '') ? max - 1 : max;
  return text.slice(0, end);
};

/**
 * The audit trail ITFlow's own handlers leave, naming the key:
 * `logs` rows ('Ticket'/'Reply', 'Ticket'/'Resolved', …), `ticket_history` rows for status
 * changes, and `notifications` for the assigned agent and the ticket's creator.
 */
export function addAuditRows(rows: AuditRows, input: AuditInput): void {
  const { ticket, command, change, principal, origin, statusName, eventTime, now } = input;
  const via = `via API (${principal.keyName})`;
  const ref = ticketRef(ticket);
  const log = (action: string, description: string) =>
    rows.logs.push([
      'Ticket',
      action,
      cut(description, 1000),
      cut(origin.ip, 200),
      cut(origin.userAgent, 250),
      now,
      ticket.clientId,
      principal.userId,
      ticket.id,
    ]);
  const history = (description: string) => rows.history.push([cut(statusName, 200), cut(description, 255), eventTime, ticket.id]);

  if (command.reply) {
    const what = command.createdAt
      ? `Imported a ${command.reply.type} reply dated ${command.createdAt}`
      : `Added a ${command.reply.type} reply`;
    log('Reply', `${what} to ticket ${ref} - ${ticket.subject} ${via}`);
  }
  if (change.resolved) {
    history(`Resolved via the API (${principal.keyName})`);
    log('Resolved', `Resolved ticket ${ref} ${via}`);
  } else if (change.closed) {
    history(`Closed via the API (${principal.keyName})`);
    log('Closed', `Closed ticket ${ref} ${via}`);
  } else if (change.statusChanged) {
    history(`Status set to ${statusName} via the API (${principal.keyName})`);
    log(change.reopened ? 'Reopened' : 'Edit', `Set ticket ${ref} status to ${statusName} ${via}`);
  }

  // History being imported is not news: agents are notified of live changes only.
  if ((command.reply && !command.createdAt) || change.statusChanged) {
    const text = `${principal.actorName} updated Ticket ${ref} - Subject: ${ticket.subject}`;
    const action = `/agent/ticket.php?ticket_id=${ticket.id}${ticket.clientId ? `&client_id=${ticket.clientId}` : ''}`;
    const notify = (userId: number, suffix: string) =>
      rows.notifications.push([
        'Ticket',
        cut(`${text} ${suffix}`, 1000),
        cut(action, 250),
        now,
        ticket.clientId,
        userId,
        ticket.id,
      ]);
    if (ticket.assignedTo !== 0 && ticket.assignedTo !== principal.userId) notify(ticket.assignedTo, 'that is assigned to you');
    if (ticket.createdBy !== 0 && ticket.createdBy !== principal.userId) notify(ticket.createdBy, 'that you opened');
  }
}

/** The INSERT statements for gathered audit rows (none when there is nothing to write). */
export function auditStatements(rows: AuditRows): Array<{ sql: string; params: unknown[] }> {
  const statements: Array<{ sql: string; params: unknown[] }> = [];
  if (rows.logs.length > 0) {
    statements.push({
      sql: `INSERT INTO logs (log_type, log_action, log_description, log_ip, log_user_agent, log_created_at,
                             log_client_id, log_user_id, log_entity_id) VALUES ?`,
      params: [rows.logs],
    });
  }
  if (rows.history.length > 0) {
    statements.push({
      sql: `INSERT INTO ticket_history (ticket_history_status, ticket_history_description, ticket_history_created_at,
                                       ticket_history_ticket_id) VALUES ?`,
      params: [rows.history],
    });
  }
  if (rows.notifications.length > 0) {
    statements.push({
      sql: `INSERT INTO notifications (notification_type, notification, notification_action, notification_timestamp,
                                      notification_client_id, notification_user_id, notification_entity_id) VALUES ?`,
      params: [rows.notifications],
    });
  }
  return statements;
}
