import { z } from 'zod';
import { Invalid } from '../errors.js';
import { type Command, timeWorked } from './command.js';
import {
  firstMessage,
  INTEGER_LIKE,
  idempotencyKey,
  optionalInteger,
  optionalString,
  requiredInteger,
  requireObject,
} from './fields.js';

/**
 * POST /api/v1/tickets/replies/create.php — the proposal's field names.
 * Unknown fields are ignored (v1 clients send api_key, limit, … in the same body).
 */
export const NOTHING_TO_DO = 'Nothing to do: send a ticket_reply, a status > 0, or both.';
/** public_reply_type 2 on an install where ITFlow would not email: why, and what to do instead. */
export function emailNotAvailable(why: string): string {
  return `public_reply_type 2 (Public + email) is not available: ${why}. Use public_reply_type 1 for a Public reply without email.`;
}
export const TIME_NEEDS_REPLY = 'Time worked is recorded on a reply: send a ticket_reply along with hours, minutes or seconds.';

export const createReplyFields = z.object({
  ticket_id: requiredInteger('ticket_id', { min: 1 }),
  ticket_reply: optionalString('ticket_reply'),
  public_reply_type: optionalInteger('public_reply_type').meta({
    description:
      "0 Internal (default), 1 Public, 2 Public + email: also queues ITFlow's client email (to the contact and the " +
      "ticket's watchers) where ITFlow has mail set up; elsewhere 2 is refused with 400 saying why.",
    // createProblem's rule, so the document refuses what the intake refuses.
    [INTEGER_LIKE]: { minimum: 0, maximum: 2 },
  }),
  status: optionalInteger('status').meta({ description: 'ticket_status_id to move the ticket to; 0 or absent: unchanged.' }),
  hours: optionalInteger('hours', { max: 838 }),
  minutes: optionalInteger('minutes', { max: 59 }),
  seconds: optionalInteger('seconds', { max: 59 }),
  client_id: optionalInteger('client_id').meta({ description: "Narrows an all-clients key to one client's tickets." }),
  idempotency_key: idempotencyKey('idempotency_key'),
});

type CreateFields = z.output<typeof createReplyFields>;

/** The cross-field rules of create.php's fields, as one message (or null). */
export function createProblem(body: CreateFields): string | null {
  const type = body.public_reply_type ?? 0;
  if (type > 2) return 'public_reply_type must be 0 (Internal), 1 (Public) or 2 (Public + email).';
  return shapeProblem(body.ticket_reply, body.status, Boolean(body.hours || body.minutes || body.seconds));
}

export const NON_BLANK_REPLY = { required: ['ticket_reply'], properties: { ticket_reply: { type: 'string', pattern: '\\S' } } };
const POSITIVE = {
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^\\s*0*[1-9]\\d*\\s*$' },
  ],
};
/** A time field that records some time: a non-zero integer, or a string with a non-zero digit. */
const SOME_TIME = {
  anyOf: [
    { type: 'integer', not: { const: 0 } },
    { type: 'string', pattern: '[1-9]' },
  ],
};

/**
 * shapeProblem's rules as JSON Schema (2020-12), for the OpenAPI document: a non-blank reply
 * or a status > 0; time worked only with a non-blank reply.
 */
export function shapeRules(statusField: string, timeFields: string[]) {
  return {
    allOf: [
      { anyOf: [NON_BLANK_REPLY, { required: [statusField], properties: { [statusField]: POSITIVE } }] },
      {
        if: { anyOf: timeFields.map((field) => ({ required: [field], properties: { [field]: SOME_TIME } })) },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
        then: NON_BLANK_REPLY,
      },
    ],
  };
}

export const createReplyRequest = createReplyFields
  .superRefine(
    (body, ctx) => {
      const message = createProblem(body);
      if (message) ctx.addIssue({ code: 'custom', message });
    },
    { when: (payload) => payload.issues.length === 0 },
  )
  .meta(shapeRules('status', ['hours', 'minutes', 'seconds']));

/** The rules every dialect shares: something to do, and time worked only with a reply. */
export function shapeProblem(reply: string | undefined, status: number | undefined, hasTime: boolean): string | null {
  const empty = (reply ?? '').trim() === '';
  if (empty && !status) return NOTHING_TO_DO;
  if (empty && hasTime) return TIME_NEEDS_REPLY;
  return null;
}

/** True when a reply body carries something (whitespace alone is no reply). */
export function hasText(reply: string | undefined): reply is string {
  return (reply ?? '').trim() !== '';
}

export type CreateReplyRequest = z.output<typeof createReplyRequest>;

/** Validates a create.php body and turns it into a Command; throws Invalid with the v1 message. */
export function parseCreateReply(body: unknown): { command: Command; idempotencyKey: string | undefined } {
  requireObject(body);
  const parsed = createReplyRequest.safeParse(body);
  if (!parsed.success) throw new Invalid(firstMessage(parsed.error));
  return { command: toCommand(parsed.data), idempotencyKey: parsed.data.idempotency_key };
}

export function toCommand(r: CreateFields): Command {
  return {
    ticketId: r.ticket_id,
    reply: hasText(r.ticket_reply)
      ? {
          body: r.ticket_reply,
          type: (r.public_reply_type ?? 0) > 0 ? 'Public' : 'Internal',
          timeWorked: timeWorked(r.hours, r.minutes, r.seconds),
        }
      : null,
    status: r.status ?? 0,
    ...(r.client_id ? { clientId: r.client_id } : {}),
    ...(r.public_reply_type === 2 ? { emailClient: true as const } : {}),
  };
}
