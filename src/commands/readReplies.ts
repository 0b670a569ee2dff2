import { z } from 'zod';
import { Invalid } from '../errors.js';
import { externalId, firstMessage, optionalInteger, optionalString, REQUIRED } from './fields.js';

/**
 * What a listing asks for, whichever path it came in on. The listing query (src/read) takes
 * only this.
 */
export interface ReplyQuery {
  replyId?: number;
  ticketId?: number;
  /** 'Internal' | 'Public' | 'Client' filter (ITFlow's newer read.php `type`). */
  type?: 'Internal' | 'Public' | 'Client';
  includeArchived: boolean;
  limit: number;
  offset: number;
  /** Keyset cursor: only replies with a smaller ticket_reply_id (newest-first listings). */
  beforeId?: number;
  /** 'desc' newest first (this service's read.php); 'asc' as ITFlow's own read.php lists. */
  order: 'desc' | 'asc';
  /** The caller's reply with this external_id (this service's read.php). */
  externalId?: string;
  /** List the caller's accepted, unapplied commands for ticketId first (this service's read.php). */
  includePending?: boolean;
}

export const MAX_LIMIT = 500;

const flag = (field: string) =>
  optionalString(field)
    .transform((value, ctx) => {
      if (value === undefined || value === '' || value === '0' || value === 'false') return false;
      if (value === '1' || value === 'true') return true;
      ctx.addIssue({ code: 'custom', message: `${field} must be 1 or 0.` });
      return false;
    })
    .meta({ pattern: '^(|0|1|true|false)$' });

const paging = {
  limit: optionalInteger('limit', { min: 1, max: MAX_LIMIT }).meta({
    description: `Rows per page (default 50, at most ${MAX_LIMIT}).`,
  }),
  offset: optionalInteger('offset', { max: 10_000_000 }),
  include_archived: flag('include_archived').meta({ description: '1 to include archived replies.' }),
};

/** GET /api/v1/tickets/replies/read.php — the proposal's names. */
export const INCLUDE_PENDING_NEEDS_TICKET = 'include_pending needs a ticket_id.';

export const readRepliesQuery = z
  .object({
    reply_id: optionalInteger('reply_id', { min: 1 }),
    ticket_id: optionalInteger('ticket_id', { min: 1 }),
    before_id: optionalInteger('before_id', { min: 1 }).meta({
      description: 'Keyset cursor: replies with a smaller ticket_reply_id than this (pass the last row’s id).',
    }),
    external_id: externalId('external_id').meta({
      description:
        'The reply this API key sent with this external_id (other keys’ external ids are not looked at). With include_pending=1, also its command while it is still pending.',
    }),
    include_pending: flag('include_pending').meta({
      description:
        "1, with ticket_id: first list this key's own commands for the ticket that are accepted but not applied yet (`pending: true`, with their `command_id`), newest first — on the first page only (no offset, no before_id).",
    }),
    ...paging,
  })
  .superRefine(
    (query, ctx) => {
      if (query.include_pending && query.ticket_id === undefined)
        ctx.addIssue({ code: 'custom', message: INCLUDE_PENDING_NEEDS_TICKET });
    },
    { when: (payload) => payload.issues.length === 0 },
  );

/** GET /api/v1/ticket_replies/read.php — ITFlow ≥ 2.4.7's own names and ordering. */
export const itflowReadRepliesQuery = z.object({
  ticket_reply_id: optionalInteger('ticket_reply_id', { min: 1 }),
  ticket_id: optionalInteger('ticket_id', { min: 1 }),
  type: optionalString('type')
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      const type = value.charAt(0).toUpperCase() + value.slice(1).toLowerCase();
      if (type === 'Internal' || type === 'Public' || type === 'Client') return type;
      ctx.addIssue({ code: 'custom', message: 'type must be Internal, Public or Client.' });
      return undefined;
    })
    .meta({
      description: 'Internal, Public or Client (any case).',
      pattern: '^(?:[Ii][Nn][Tt][Ee][Rr][Nn][Aa][Ll]|[Pp][Uu][Bb][Ll][Ii][Cc]|[Cc][Ll][Ii][Ee][Nn][Tt])?$',
    }),
  ...paging,
});

function parse<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query ?? {});
  if (!parsed.success) throw new Invalid(firstMessage(parsed.error));
  return parsed.data;
}

export function parseReadReplies(query: unknown): ReplyQuery {
  const q = parse(readRepliesQuery, query);
  return {
    replyId: q.reply_id,
    ticketId: q.ticket_id,
    beforeId: q.before_id,
    includeArchived: q.include_archived,
    limit: q.limit ?? 50,
    offset: q.offset ?? 0,
    order: 'desc',
    externalId: q.external_id,
    includePending: q.include_pending,
  };
}

export function parseItflowReadReplies(query: unknown): ReplyQuery {
  const q = parse(itflowReadRepliesQuery, query);
  return {
    replyId: q.ticket_reply_id,
    ticketId: q.ticket_id,
    type: q.type,
    includeArchived: q.include_archived,
    limit: q.limit ?? 50,
    offset: q.offset ?? 0,
    order: 'asc',
  };
}

const DASHED_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BARE_UUID = /^[0-9a-f]{32}$/i;
const COMMAND_ID_MESSAGE = 'command_id must be the command_id create.php answered (a UUID).';

/**
 * A command id as a client may send it back — any letter case, with or without dashes — in
 * the form the service answers and stores it under (lowercase, dashed); null when it is no UUID.
 */
export function canonicalCommandId(value: string): string | null {
  if (!DASHED_UUID.test(value) && !BARE_UUID.test(value)) return null;
  const hex = value.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** GET /api/v1/tickets/replies/commands.php */
export const commandStatusQuery = z.object({
  command_id: optionalString('command_id')
    .transform((value, ctx) => {
      if (value === undefined || value === '') {
        ctx.addIssue({ code: 'custom', message: 'command_id is required.' });
        return '';
      }
      const id = canonicalCommandId(value);
      if (id === null) ctx.addIssue({ code: 'custom', message: COMMAND_ID_MESSAGE });
      return id ?? '';
    })
    .meta({
      [REQUIRED]: true,
      pattern: '^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32})$',
      description: 'The command_id create.php or bulk.php answered (any letter case, dashes optional).',
    }),
});

export function parseCommandStatus(query: unknown): string {
  return parse(commandStatusQuery, query).command_id;
}

export const MAX_STATUS_IDS = 1000;
const COMMAND_IDS_MESSAGE = 'command_ids must be a non-empty array of command ids.';

/** POST /api/v1/tickets/replies/commands.php — many command ids at once. */
export const commandStatusManyRequest = z.object({
  command_ids: z.array(z.string()).min(1).max(MAX_STATUS_IDS).meta({ description: 'The command ids to look up.' }),
});

/** One id of a POST commands.php list: its canonical form, or why it is none. */
export type RequestedId = { sent: string; id: string } | { sent: string; id: null; problem: string };

export function parseCommandStatusMany(body: unknown): RequestedId[] {
  const parsed = commandStatusManyRequest.safeParse(body ?? {});
  if (parsed.success) {
    return parsed.data.command_ids.map((sent) => {
      const id = canonicalCommandId(sent);
      return id === null ? { sent, id, problem: COMMAND_ID_MESSAGE } : { sent, id };
    });
  }
  const tooMany = parsed.error.issues.some((issue) => issue.code === 'too_big' && issue.path.length === 1);
  throw new Invalid(tooMany ? `command_ids may name at most ${MAX_STATUS_IDS} commands.` : COMMAND_IDS_MESSAGE);
}
