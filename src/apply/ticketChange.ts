import type { Command } from '../commands/command.js';
import { CLOSED, RESOLVED } from '../itflow/tickets.js';
import type { LockedTicket } from './lockTickets.js';

type Column =
  | 'ticket_status'
  | 'ticket_updated_at'
  | 'ticket_resolved_at'
  | 'ticket_closed_at'
  | 'ticket_closed_by'
  | 'ticket_first_response_at'
  | 'ticket_response_sla_met'
  | 'ticket_resolution_sla_met';

/** What one command does to its ticket row, worked out before anything is written. */
export interface TicketChange {
  set: Partial<Record<Column, string | number | null>>;
  statusChanged: boolean;
  resolved: boolean;
  closed: boolean;
  reopened: boolean;
  firstResponse: boolean;
}

interface PlanInput {
  ticket: LockedTicket;
  command: Command;
  hasSla: boolean;
  /** The user the key runs as (0 for per-key-scope keys): ticket_closed_by. */
  actorId: number;
  /** When the event happened in ITFlow's zone: the command's accepted time. */
  eventTime: string;
  /** ITFlow's wall clock at apply time, for ticket_updated_at. */
  now: string;
}

/** A historical import: it keeps its own time and leaves the ticket's live state alone. */
function isImport(command: Command): boolean {
  return command.createdAt !== undefined;
}

/**
 * The rules of ITFlow's reply handler, as one pure function:
 * - a status that does not change is not an event;
 * - moving into Resolved stamps ticket_resolved_at once (and judges the resolution SLA);
 * - moving into Closed stamps closed_at/closed_by, and resolved_at if still empty;
 * - moving out of Resolved to an open status reopens the ticket (resolved_at cleared,
 *   as ITFlow's own reopen does), so a later resolve is stamped afresh;
 * - the first Public reply stamps ticket_first_response_at (and judges the response SLA);
 *   Internal replies never count.
 */
export function planTicketChange({ ticket, command, hasSla, actorId, eventTime, now }: PlanInput): TicketChange {
  const set: TicketChange['set'] = {};
  const target = command.status;
  const statusChanged = target > 0 && target !== ticket.status;
  const resolved = statusChanged && target === RESOLVED;
  const closed = statusChanged && target === CLOSED;
  const reopened = statusChanged && ticket.status === RESOLVED && target !== CLOSED;
  // A reopened ticket has its resolution cleared first, so the checks below see it empty.
  const resolvedAt = reopened ? null : ticket.resolvedAt;

  if (statusChanged) {
    set.ticket_status = target;
    if (reopened) set.ticket_resolved_at = null;
    if ((target === RESOLVED || target === CLOSED) && resolvedAt === null) {
      set.ticket_resolved_at = eventTime;
      if (hasSla && ticket.resolutionDueAt !== null && ticket.resolutionSlaMet !== 0) {
        // A recorded miss is final, as in ITFlow: only an unjudged or met verdict is (re)judged.
        set.ticket_resolution_sla_met = eventTime <= ticket.resolutionDueAt ? 1 : 0;
      }
    }
    if (closed) {
      set.ticket_closed_at = eventTime;
      set.ticket_closed_by = actorId;
    }
  }

  const firstResponse = command.reply?.type === 'Public' && ticket.firstResponseAt === null && !isImport(command);
  if (firstResponse) {
    set.ticket_first_response_at = eventTime;
    if (hasSla) set.ticket_response_sla_met = ticket.responseDueAt === null ? null : eventTime <= ticket.responseDueAt ? 1 : 0;
  }

  if (statusChanged || (command.reply !== null && !isImport(command))) set.ticket_updated_at = now;
  return { set, statusChanged, resolved, closed, reopened, firstResponse };
}

/** The ticket as the next command in the same batch sees it, after this change. */
export function afterChange(ticket: LockedTicket, change: TicketChange): LockedTicket {
  const set = change.set;
  return {
    ...ticket,
    status: typeof set.ticket_status === 'number' ? set.ticket_status : ticket.status,
    resolvedAt: 'ticket_resolved_at' in set ? (set.ticket_resolved_at as string | null) : ticket.resolvedAt,
    closedAt: 'ticket_closed_at' in set ? (set.ticket_closed_at as string | null) : ticket.closedAt,
    firstResponseAt: 'ticket_first_response_at' in set ? (set.ticket_first_response_at as string) : ticket.firstResponseAt,
    resolutionSlaMet:
      'ticket_resolution_sla_met' in set ? (set.ticket_resolution_sla_met as number | null) : ticket.resolutionSlaMet,
  };
}

/**
 * The ticket UPDATEs for a whole batch. A ticket's changes are merged in order, so the last
 * command's values win, as if each had been written in turn; tickets that end up with the
 * very same changes (typically a batch of replies: only ticket_updated_at) share one UPDATE.
 */
export function updateStatements(
  changes: Array<{ ticketId: number; change: TicketChange }>,
): Array<{ sql: string; params: unknown[] }> {
  const merged = new Map<number, TicketChange['set']>();
  for (const { ticketId, change } of changes) merged.set(ticketId, { ...merged.get(ticketId), ...change.set });
  const groups = new Map<string, { set: TicketChange['set']; ticketIds: number[] }>();
  for (const [ticketId, set] of merged) {
    if (Object.keys(set).length === 0) continue;
    const key = JSON.stringify(Object.entries(set));
    const group = groups.get(key) ?? { set, ticketIds: [] };
    group.ticketIds.push(ticketId);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ set, ticketIds }) => {
    const entries = Object.entries(set);
    return {
      // Column names come from the fixed Column list above, never from input.
      sql: `UPDATE tickets SET ${entries.map(([column]) => `${column} = ?`).join(', ')} WHERE ticket_id IN (?)`,
      params: [...entries.map(([, value]) => value), ticketIds],
    };
  });
}
