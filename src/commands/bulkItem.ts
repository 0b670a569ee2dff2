import { z } from 'zod';
import { Invalid } from '../errors.js';
import type { Command } from './command.js';
import { parseCreatedAt } from './createdAt.js';
import { createProblem, createReplyFields, EMAIL_NEEDS_NOTIFY, NON_BLANK_REPLY, shapeRules, toCommand } from './createReply.js';
import { firstMessage, optionalString, requiredInteger, requireObject } from './fields.js';

/**
 * One item of POST bulk.php: create.php's fields, plus `created_at` for historical import and
 * `author` to attribute an imported reply to an agent or to the client's contact.
 */
const author = z
  .union(
    [
      z.object({ user_id: requiredInteger('author.user_id', { min: 1 }) }).strict(),
      z.object({ contact_id: requiredInteger('author.contact_id', { min: 1 }) }).strict(),
    ],
    { error: 'author must be {"user_id": n} or {"contact_id": n}.' },
  )
  .optional();

export const bulkItemRequest = createReplyFields
  .extend({
    created_at: optionalString('created_at').meta({
      description: "Historical import: ISO 8601 with offset, or 'YYYY-MM-DD HH:MM:SS' in ITFlow's time zone; not in the future.",
    }),
    author: author.meta({ description: 'Historical import, for keys that can write every client: who wrote the reply.' }),
  })
  .superRefine(
    (body, ctx) => {
      const historical = body.created_at !== undefined && body.created_at.trim() !== '';
      const message =
        createProblem(body) ??
        (body.author && !body.ticket_reply?.trim() ? 'author needs a ticket_reply.' : null) ??
        (historical && body.public_reply_type === 2
          ? 'public_reply_type 2 emails the client, which a historical reply (created_at) never does: send 1 for a Public reply.'
          : null) ??
        (historical && body.notify === true
          ? "notify: true notifies the ticket's agents, which a historical reply (created_at) never does: leave notify out."
          : null);
      if (message) ctx.addIssue({ code: 'custom', message });
    },
    { when: (payload) => payload.issues.length === 0 },
  )
  .meta({
    allOf: [
      ...shapeRules('status', ['hours', 'minutes', 'seconds']).allOf,
      EMAIL_NEEDS_NOTIFY,
      {
        if: { required: ['author'] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
        then: NON_BLANK_REPLY,
      },
    ],
  });

/** Validates one bulk item; throws Invalid with the message its result carries. */
export function parseBulkItem(
  item: unknown,
  zone: string,
  now = Date.now(),
): { command: Command; idempotencyKey: string | undefined } {
  requireObject(item);
  const parsed = bulkItemRequest.safeParse(item);
  if (!parsed.success) throw new Invalid(firstMessage(parsed.error));
  const r = parsed.data;
  const command = toCommand(r);
  if (r.created_at !== undefined && r.created_at.trim() !== '') {
    const createdAt = parseCreatedAt(r.created_at, zone, now);
    if ('problem' in createdAt) throw new Invalid(createdAt.problem);
    command.createdAt = createdAt.wall;
  }
  if (r.author) command.author = 'user_id' in r.author ? { userId: r.author.user_id } : { contactId: r.author.contact_id };
  return { command, idempotencyKey: r.idempotency_key };
}
