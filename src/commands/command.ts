import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * A command in the service's own terms, whichever endpoint or field dialect it arrived in.
 * This is what travels through the queue and what a worker applies.
 */
export const REPLY_TYPES = ['Internal', 'Public', 'Client'] as const;
export type ReplyType = (typeof REPLY_TYPES)[number];

export const TIME_WORKED = /^\d{2,3}:[0-5]\d:[0-5]\d$/;
export const WALL_CLOCK = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

export const commandSchema = z.object({
  ticketId: z.number().int().positive(),
  /** The reply to add, or null for a status-only command. */
  reply: z
    .object({
      body: z.string(),
      type: z.enum(REPLY_TYPES),
      /** 'HH:MM:SS' for ticket_reply_time_worked. */
      timeWorked: z.string().regex(TIME_WORKED),
    })
    .nullable(),
  /** ticket_status_id to move the ticket to; 0 leaves the status alone. */
  status: z.number().int().min(0),
  /** A request's optional client narrowing (client_id), re-checked by the worker. */
  clientId: z.number().int().positive().optional(),
  /**
   * Historical import (bulk.php `created_at`): the reply's original time, as ITFlow's wall
   * clock. An imported command keeps that time, never stamps the first response, and may add
   * a reply to a closed ticket.
   */
  createdAt: z.string().regex(WALL_CLOCK).optional(),
  /**
   * Which of ITFlow's own handlers the command stands for when it came in on ITFlow's API paths
   * (its effects follow that endpoint's): `itflow-reply` api/v1/ticket_replies/create.php,
   * `itflow-resolve` api/v1/tickets/resolve.php. Absent: the service's own create.php, whose
   * effects follow ITFlow's agent UI.
   */
  dialect: z.enum(['itflow-reply', 'itflow-resolve']).optional(),
  /**
   * public_reply_type 2 (Public + email): the reply also emails the client, as ITFlow queues it.
   * Accepted only where ITFlow would send mail, with or without a reply (without one, like
   * ITFlow's own form, it sends nothing).
   */
  emailClient: z.literal(true).optional(),
  /** Import attribution: the agent or the client's contact who wrote the reply. */
  author: z
    .union([z.object({ userId: z.number().int().positive() }), z.object({ contactId: z.number().int().positive() })])
    .optional(),
  /** The integration's own reference for the command (`external_id`); carried into webhook events. */
  externalId: z.string().max(255).optional(),
});

export type Command = z.infer<typeof commandSchema>;

/** hours/minutes/seconds as ITFlow's TIME column takes them: 1,2,3 → '01:02:03'. */
export function timeWorked(hours = 0, minutes = 0, seconds = 0): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(hours)}:${two(minutes)}:${two(seconds)}`;
}

/**
 * A digest of what a command does, so a reused idempotency key can be told apart from a
 * retry of the same request. Key order is fixed so equal commands hash equally.
 */
export function fingerprint(command: Command): string {
  // Fields added later join only when set, so a command of the earlier shape keeps its digest
  // (an idempotent retry across an upgrade is still the same request).
  const later = [...(command.emailClient ? [['emailClient']] : []), ...(command.dialect ? [['dialect', command.dialect]] : [])];
  const canonical = JSON.stringify([
    command.ticketId,
    command.reply?.body ?? null,
    command.reply?.type ?? null,
    command.reply?.timeWorked ?? null,
    command.status,
    command.clientId ?? null,
    command.createdAt ?? null,
    command.author ?? null,
    ...later,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
