import { z } from 'zod';
import { Invalid } from '../errors.js';
import type { Command } from './command.js';
import { firstMessage, idempotencyKey, optionalInteger, requiredInteger, requireObject } from './fields.js';

/**
 * POST /api/v1/tickets/resolve.php — ITFlow's own resolve endpoint (both generations): a ticket
 * and, optionally, the client it belongs to. It resolves a ticket that is not resolved yet,
 * stamping a missing first response, as ITFlow's does.
 */
export const itflowResolveRequest = z.object({
  ticket_id: requiredInteger('ticket_id', { min: 1 }),
  client_id: optionalInteger('client_id').meta({ description: "The ticket's client (narrows an all-clients key)." }),
  idempotency_key: idempotencyKey('idempotency_key'),
});

export function parseItflowResolve(body: unknown): { command: Command; idempotencyKey: string | undefined } {
  requireObject(body);
  const parsed = itflowResolveRequest.safeParse(body);
  if (!parsed.success) throw new Invalid(firstMessage(parsed.error));
  const r = parsed.data;
  return {
    command: {
      ticketId: r.ticket_id,
      reply: null,
      status: 4,
      ...(r.client_id ? { clientId: r.client_id } : {}),
      dialect: 'itflow-resolve',
    },
    idempotencyKey: r.idempotency_key,
  };
}
