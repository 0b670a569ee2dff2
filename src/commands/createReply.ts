import { z } from 'zod';
import { Invalid } from '../errors.js';
import { type Command, timeWorked } from './command.js';
import {
  externalId,
  firstMessage,
  INTEGER_LIKE,
  idempotencyKey,
  optionalBoolean,
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
/** public_reply_type 2 asks for the client email that notify: false forbids. */
export const EMAIL_BUT_QUIET =
  'public_reply_type 2 emails the client, which notify: false rules out: send public_reply_type 1 for a Public reply without email, or leave notify out.';
export const TIME_NEEDS_REPLY = 'Time worked is recorded on a reply: send a ticket_reply along with hours, minutes or seconds.';

/** Shared by both create paths and bulk items. */
export const notifyField = optionalBoolean('notify').meta({
  description:
    "false: a quiet command — no `notifications` rows for the ticket's agents and no client email; the audit rows (`logs`, " +
    "`ticket_history`) stay. true: notify even where the key is quiet by default. Absent: the key's default (`npm run cli -- keys quiet`), " +
    'which is to notify. A command asking for email (public_reply_type 2) always notifies; with notify: false it is refused (400).',
});

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
  external_id: externalId('external_id'),
  notify: notifyField,
});

type CreateFields = z.output<typeof createReplyFields>;

/** The cross-field rules of create.php's fields, as one message (or null). */
export function createProblem(body: CreateFields): string | null {
  const type = body.public_reply_type ?? 0;
  if (type > 2) return 'public_reply_type must be 0 (Internal), 1 (Public) or 2 (Public + email).';
  if (type === 2 && body.notify === false) return EMAIL_BUT_QUIET;
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

/** EMAIL_BUT_QUIET as JSON Schema: not public_reply_type 2 together with notify false. */
export const EMAIL_NEEDS_NOTIFY = {
  not: {
    required: ['public_reply_type', 'notify'],
    properties: {
      public_reply_type: { anyOf: [{ const: 2 }, { type: 'string', pattern: '^\\s*0*2\\s*$' }] },
      notify: { const: false },
    },
  },
};

export const createReplyRequest = createReplyFields
  .superRefine(
    (body, ctx) => {
      const message = createProblem(body);
      if (message) ctx.addIssue({ code: 'custom', message });
    },
    { when: (payload) => payload.issues.length === 0 },
  )
  .meta({ allOf: [...shapeRules('status', ['hours', 'minutes', 'seconds']).allOf, EMAIL_NEEDS_NOTIFY] });

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
    ...(r.external_id !== undefined ? { externalId: r.external_id } : {}),
    ...(r.notify !== undefined ? { notify: r.notify } : {}),
  };
}
