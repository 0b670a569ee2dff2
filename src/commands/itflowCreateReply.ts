import { z } from 'zod';
import { Invalid } from '../errors.js';
import { type Command, timeWorked } from './command.js';
import { hasText, notifyField, shapeProblem, shapeRules } from './createReply.js';
import {
  externalId,
  firstMessage,
  idempotencyKey,
  optionalInteger,
  optionalString,
  requiredInteger,
  requireObject,
} from './fields.js';

/**
 * POST /api/v1/ticket_replies/create.php — ITFlow ≥ 2.4.7's own field names, mapped onto the
 * same command as create.php. Where ITFlow silently falls back (an unknown reply type becomes
 * Internal, a malformed time becomes 00:00:00) this answers 400 instead: a typo should not
 * quietly change what gets written.
 */
export const itflowCreateReplyRequest = z
  .object({
    ticket_id: requiredInteger('ticket_id', { min: 1 }),
    ticket_reply: optionalString('ticket_reply'),
    ticket_reply_type: optionalString('ticket_reply_type')
      .transform((value, ctx) => {
        if (value === undefined || value === '') return 'Internal' as const;
        const type = value.charAt(0).toUpperCase() + value.slice(1).toLowerCase();
        if (type === 'Internal' || type === 'Public') return type;
        ctx.addIssue({ code: 'custom', message: 'ticket_reply_type must be Internal or Public.' });
        return 'Internal' as const;
      })
      .meta({
        description: "'Internal' (default) or 'Public', any case.",
        pattern: '^([Ii][Nn][Tt][Ee][Rr][Nn][Aa][Ll]|[Pp][Uu][Bb][Ll][Ii][Cc])?$',
      }),
    ticket_reply_time_worked: optionalString('ticket_reply_time_worked')
      .transform((value, ctx) => {
        if (value === undefined || value === '') return undefined;
        const match = /^(\d{1,3}):([0-5]\d):([0-5]\d)$/.exec(value.trim());
        if (!match || Number(match[1]) > 838) {
          ctx.addIssue({ code: 'custom', message: 'ticket_reply_time_worked must be HH:MM:SS (at most 838:59:59).' });
          return undefined;
        }
        return timeWorked(Number(match[1]), Number(match[2]), Number(match[3]));
      })
      .meta({
        description: "'HH:MM:SS', at most 838:59:59.",
        pattern: '^(\\s*(\\d{1,2}|[0-7]\\d\\d|8[0-2]\\d|83[0-8]):[0-5]\\d:[0-5]\\d\\s*)?$',
      }),
    ticket_status: optionalInteger('ticket_status'),
    client_id: optionalInteger('client_id'),
    idempotency_key: idempotencyKey('idempotency_key'),
    external_id: externalId('external_id'),
    notify: notifyField,
  })
  .superRefine(
    (body, ctx) => {
      const hasTime = body.ticket_reply_time_worked !== undefined && body.ticket_reply_time_worked !== '00:00:00';
      const message = shapeProblem(body.ticket_reply, body.ticket_status, hasTime);
      if (message) ctx.addIssue({ code: 'custom', message: message.replace('a status > 0', 'a ticket_status > 0') });
    },
    { when: (payload) => payload.issues.length === 0 },
  )
  .meta(shapeRules('ticket_status', ['ticket_reply_time_worked']));

export function parseItflowCreateReply(body: unknown): { command: Command; idempotencyKey: string | undefined } {
  requireObject(body);
  const parsed = itflowCreateReplyRequest.safeParse(body);
  if (!parsed.success) throw new Invalid(firstMessage(parsed.error));
  const r = parsed.data;
  return {
    command: {
      ticketId: r.ticket_id,
      reply: hasText(r.ticket_reply)
        ? { body: r.ticket_reply, type: r.ticket_reply_type, timeWorked: r.ticket_reply_time_worked ?? '00:00:00' }
        : null,
      status: r.ticket_status ?? 0,
      ...(r.client_id ? { clientId: r.client_id } : {}),
      dialect: 'itflow-reply',
      ...(r.external_id !== undefined ? { externalId: r.external_id } : {}),
      ...(r.notify !== undefined ? { notify: r.notify } : {}),
    },
    idempotencyKey: r.idempotency_key,
  };
}
