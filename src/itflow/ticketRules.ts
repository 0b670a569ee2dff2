// The rules about a ticket that both the intake (early, from a short cache) and the worker (under
// the ticket's row lock, authoritative) apply to a command: it exists within the key's scope, it
// is not closed, and a status it asks for is an active one.
import type { Command } from '../commands/command.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { type ClientScope, narrowScope, scopeAllows } from './scope.js';
import { CLOSED, type TicketStatus } from './tickets.js';

export const TICKET_CLOSED = 'Ticket is closed.';

export function ticketNotFound(ticketId: number): NotFound {
  return new NotFound(`Ticket ${ticketId} was not found within this API key's scope.`);
}

/** 404 unless the ticket exists and its client is within the key's scope (narrowed by the command's client_id). */
export function requireTicketInScope(
  scope: ClientScope,
  command: Pick<Command, 'ticketId' | 'clientId'>,
  ticketClientId: number | undefined,
): void {
  if (ticketClientId === undefined || !scopeAllows(narrowScope(scope, command.clientId), ticketClientId)) {
    throw ticketNotFound(command.ticketId);
  }
}

/**
 * A closed ticket takes no replies and no status changes; closing it again is a no-op, so an
 * automation retrying its close succeeds. Imported history may still be added to it.
 */
export function refuseIfClosed(closed: boolean, command: Pick<Command, 'reply' | 'status' | 'createdAt'>): void {
  if (!closed) return;
  const reply = command.reply !== null && command.createdAt === undefined;
  if (reply || (command.status > 0 && command.status !== CLOSED)) throw new Conflict(TICKET_CLOSED);
}

/** 400 unless a status the command moves the ticket to is an active ticket status. */
export function requireActiveStatus(
  command: Pick<Command, 'status'>,
  currentStatus: number | undefined,
  statuses: Map<number, TicketStatus>,
): void {
  if (command.status > 0 && command.status !== currentStatus && !statuses.get(command.status)?.active) {
    throw new Invalid(`status ${command.status} is not an active ticket status.`);
  }
}

export const TICKET_RESOLVED = 'Ticket is already resolved.';

/** ITFlow's api/v1/tickets/resolve.php resolves only a ticket that is not resolved yet. */
export function refuseIfResolved(resolved: boolean): void {
  if (resolved) throw new Conflict(TICKET_RESOLVED);
}
