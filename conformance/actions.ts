// The actions compared, each done by ITFlow's own handler on twin A and by the service on twin B.
// This table is the contract the service is held to (also printed with every run):
//
// | action | service request (POST /api/v1/tickets/replies/create.php unless said) | ITFlow reference |
// |---|---|---|
// | Internal reply with time | ticket_reply, public_reply_type 0, minutes 15 | agent UI add_ticket_reply (public_reply_type 0, status unchanged) |
// | Public reply | public_reply_type 1 | add_ticket_reply, public_reply_type 1 |
// | Public reply + email | public_reply_type 2 | add_ticket_reply, public_reply_type 2 (SMTP configured) |
// | custom (pausing) status, then back to Open | status only, two requests | add_ticket_reply, empty reply, that status (each step) |
// | resolve, no first response yet | status 4 only | agent UI resolve_ticket |
// | resolve after a Public reply | status 4 only | resolve_ticket |
// | reopen a resolved ticket | status 2 only | reopen_ticket |
// | close an open ticket | status 5 only | close_ticket |
// | close a resolved ticket | status 5 only | close_ticket |
// | Public reply + resolve | ticket_reply + status 4 | add_ticket_reply with both |
// | Internal reply + pausing status | ticket_reply + status | add_ticket_reply with both |
// | ITFlow's own reply path (≥ 2.4.7) | POST /api/v1/ticket_replies/create.php, ITFlow's fields | ITFlow's api/v1/ticket_replies/create.php |
// | ITFlow's own resolve path | POST /api/v1/tickets/resolve.php | ITFlow's api/v1/tickets/resolve.php |
//
// Preparation steps (a Public reply before "resolve after a Public reply", a resolve before
// "reopen" and "close a resolved ticket") are done through ITFlow's UI on both twins alike.
import type { Connection } from 'mysql2/promise';
import { oneLine } from './browser.js';
import type { TwinIdentity } from './diff.js';
import { type ItflowUi, ticketPage, type World } from './itflow.js';
import { type HttpAnswer, postJson } from './service.js';

export const OPEN = 2;
export const RESOLVED = 4;
export const CLOSED = 5;

export interface ActionContext {
  ui: ItflowUi;
  db: Connection;
  world: World;
  phpUrl: string;
  serviceUrl: string;
}

/** What one side's requests answered, one line per request. */
export type Answers = string[];

/** A side that cannot be compared (the service does not serve the path): said in the report. */
export class NotServed extends Error {}

export interface Action {
  title: string;
  serviceRequest: string;
  reference: string;
  /** Why the action is skipped in this generation, or null to run it. */
  skip(world: World): string | null;
  prepare?(ctx: ActionContext, twin: TwinIdentity): Promise<void>;
  itflow(ctx: ActionContext, twin: TwinIdentity): Promise<Answers>;
  service(ctx: ActionContext, twin: TwinIdentity): Promise<Answers>;
  /** Said under the action in the report (what differs in how the action could be run). */
  note?(world: World): string | null;
}

const TEXT = {
  internal: '<p>Checked the print queue; the spooler was stuck.</p>',
  public: '<p>We restarted the printer; please try again.</p>',
  api: '<p>Toner replaced by the on-site technician.</p>',
};

interface UiReply {
  reply: string;
  type: 0 | 1 | 2;
  status?: number;
  minutes?: number;
}

async function uiReply(ctx: ActionContext, twin: TwinIdentity, reply: UiReply): Promise<string> {
  const overrides: Record<string, string> = {
    ticket_reply: reply.reply,
    public_reply_type: String(reply.type),
    hours: '0',
    minutes: String(reply.minutes ?? 0),
    seconds: '0',
  };
  // Without a status the form's own preselection (the ticket's current status) is sent.
  if (reply.status !== undefined) overrides.status = String(reply.status);
  const answer = await ctx.ui.replyForm(twin.id, ctx.world.clientId, overrides);
  return `add_ticket_reply ${JSON.stringify(overrides)} → ${answer.status}`;
}

async function uiLink(ctx: ActionContext, twin: TwinIdentity, handler: string): Promise<string> {
  const answer = await ctx.ui.followHandlerLink(ticketPage(twin.id, ctx.world.clientId), handler, twin.id);
  return `${handler} → ${answer.status}`;
}

function describe(path: string, body: Record<string, unknown>, answer: HttpAnswer): string {
  const shown = Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'api_key'));
  return `POST ${path} ${JSON.stringify(shown)} → ${answer.status} ${oneLine(answer.body, 160)}`;
}

async function serviceCreate(ctx: ActionContext, twin: TwinIdentity, fields: Record<string, unknown>): Promise<string> {
  const path = '/api/v1/tickets/replies/create.php';
  const body = { ticket_id: twin.id, ...fields };
  const answer = await postJson(`${ctx.serviceUrl}${path}`, body, { 'X-API-Key': ctx.world.apiKey, Prefer: 'wait=10' });
  return describe(path, body, answer);
}

/** The same JSON body, with the key in it as ITFlow's v1 clients send it, to ITFlow or the service. */
async function apiCall(base: string, path: string, body: Record<string, unknown>, notServed = false): Promise<string> {
  const answer = await postJson(`${base}${path}`, body);
  if (notServed && answer.status === 404) throw new NotServed(describe(path, body, answer));
  return describe(path, body, answer);
}

const newestOnly = (world: World) => (world.keysRunAsUser ? null : 'ITFlow ≤ 2.4.6 has no api/v1/ticket_replies/create.php');

export const ACTIONS: Action[] = [
  {
    title: 'Internal reply with time',
    serviceRequest: 'ticket_reply, public_reply_type 0, minutes 15',
    reference: 'agent UI add_ticket_reply (public_reply_type 0, status unchanged)',
    skip: () => null,
    itflow: async (ctx, t) => [await uiReply(ctx, t, { reply: TEXT.internal, type: 0, minutes: 15 })],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { ticket_reply: TEXT.internal, public_reply_type: 0, minutes: 15 })],
  },
  {
    title: 'Public reply',
    serviceRequest: 'ticket_reply, public_reply_type 1',
    reference: 'add_ticket_reply, public_reply_type 1',
    skip: () => null,
    itflow: async (ctx, t) => [await uiReply(ctx, t, { reply: TEXT.public, type: 1 })],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { ticket_reply: TEXT.public, public_reply_type: 1 })],
  },
  {
    title: 'Public reply + email',
    serviceRequest: 'ticket_reply, public_reply_type 2',
    reference: 'add_ticket_reply, public_reply_type 2 (SMTP configured)',
    skip: () => null,
    itflow: async (ctx, t) => [await uiReply(ctx, t, { reply: TEXT.public, type: 2 })],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { ticket_reply: TEXT.public, public_reply_type: 2 })],
  },
  {
    title: 'custom status, then back to Open (two steps)',
    serviceRequest: 'status <custom> only, then status 2 only',
    reference: 'add_ticket_reply with empty reply and that status (each step)',
    skip: () => null,
    note: (w) =>
      w.hasSla
        ? 'the custom status pauses the SLA (ticket_status_pauses_sla = 1)'
        : 'no SLA in this generation: the custom status is a plain status',
    itflow: async (ctx, t) => [
      await uiReply(ctx, t, { reply: '', type: 0, status: ctx.world.customStatusId }),
      await uiReply(ctx, t, { reply: '', type: 0, status: OPEN }),
    ],
    service: async (ctx, t) => [
      await serviceCreate(ctx, t, { status: ctx.world.customStatusId }),
      await serviceCreate(ctx, t, { status: OPEN }),
    ],
  },
  {
    title: 'resolve, no first response yet',
    serviceRequest: 'status 4 only',
    reference: 'agent UI resolve_ticket',
    skip: () => null,
    itflow: async (ctx, t) => [await uiLink(ctx, t, 'resolve_ticket')],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { status: RESOLVED })],
  },
  {
    title: 'resolve after a Public reply',
    serviceRequest: 'status 4 only',
    reference: 'resolve_ticket',
    skip: () => null,
    prepare: async (ctx, t) => {
      await uiReply(ctx, t, { reply: TEXT.public, type: 1 });
    },
    itflow: async (ctx, t) => [await uiLink(ctx, t, 'resolve_ticket')],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { status: RESOLVED })],
  },
  {
    title: 'reopen a resolved ticket',
    serviceRequest: 'status 2 only',
    reference: 'reopen_ticket',
    skip: () => null,
    prepare: async (ctx, t) => {
      await uiLink(ctx, t, 'resolve_ticket');
    },
    itflow: async (ctx, t) => [await uiLink(ctx, t, 'reopen_ticket')],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { status: OPEN })],
  },
  {
    title: 'close an open ticket',
    serviceRequest: 'status 5 only',
    reference: 'close_ticket',
    skip: () => null,
    note: () => "ITFlow's ticket page shows Close only on a resolved ticket; its close_ticket handler is called for the open one",
    itflow: async (ctx, t) => [await uiLink(ctx, t, 'close_ticket')],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { status: CLOSED })],
  },
  {
    title: 'close a resolved ticket',
    serviceRequest: 'status 5 only',
    reference: 'close_ticket',
    skip: () => null,
    prepare: async (ctx, t) => {
      await uiLink(ctx, t, 'resolve_ticket');
    },
    itflow: async (ctx, t) => [await uiLink(ctx, t, 'close_ticket')],
    service: async (ctx, t) => [await serviceCreate(ctx, t, { status: CLOSED })],
  },
  {
    title: 'Public reply + resolve in one command',
    serviceRequest: 'ticket_reply, public_reply_type 1, status 4',
    reference: 'add_ticket_reply with both',
    skip: () => null,
    itflow: async (ctx, t) => [await uiReply(ctx, t, { reply: TEXT.public, type: 1, status: RESOLVED })],
    service: async (ctx, t) => [
      await serviceCreate(ctx, t, { ticket_reply: TEXT.public, public_reply_type: 1, status: RESOLVED }),
    ],
  },
  {
    title: 'Internal reply + custom status in one command',
    serviceRequest: 'ticket_reply, public_reply_type 0, status <custom>',
    reference: 'add_ticket_reply with both',
    skip: () => null,
    itflow: async (ctx, t) => [await uiReply(ctx, t, { reply: TEXT.internal, type: 0, status: ctx.world.customStatusId })],
    service: async (ctx, t) => [
      await serviceCreate(ctx, t, { ticket_reply: TEXT.internal, public_reply_type: 0, status: ctx.world.customStatusId }),
    ],
  },
  {
    title: "ITFlow's own reply path",
    serviceRequest:
      'POST /api/v1/ticket_replies/create.php: ticket_reply, ticket_reply_type Public, ticket_reply_time_worked 00:10:00',
    reference: "ITFlow's api/v1/ticket_replies/create.php (same fields, same key)",
    skip: newestOnly,
    itflow: async (ctx, t) => [await apiCall(ctx.phpUrl, '/api/v1/ticket_replies/create.php', itflowReplyBody(ctx, t))],
    service: async (ctx, t) => [await apiCall(ctx.serviceUrl, '/api/v1/ticket_replies/create.php', itflowReplyBody(ctx, t))],
  },
  {
    title: "ITFlow's own resolve path",
    serviceRequest: 'POST /api/v1/tickets/resolve.php: ticket_id, client_id',
    reference: "ITFlow's api/v1/tickets/resolve.php",
    skip: () => null,
    note: (w) =>
      w.keysRunAsUser
        ? null
        : "ITFlow ≤ 2.4.6's resolve.php only finds tickets of the key's own client (an all-clients key finds none), so both sides use a second key limited to the client",
    itflow: async (ctx, t) => [await apiCall(ctx.phpUrl, '/api/v1/tickets/resolve.php', resolveBody(ctx, t))],
    service: async (ctx, t) => [await apiCall(ctx.serviceUrl, '/api/v1/tickets/resolve.php', resolveBody(ctx, t), true)],
  },
];

function itflowReplyBody(ctx: ActionContext, t: TwinIdentity): Record<string, unknown> {
  return {
    api_key: ctx.world.apiKey,
    ticket_id: t.id,
    client_id: ctx.world.clientId,
    ticket_reply: TEXT.api,
    ticket_reply_type: 'Public',
    ticket_reply_time_worked: '00:10:00',
  };
}

function resolveBody(ctx: ActionContext, t: TwinIdentity): Record<string, unknown> {
  return { api_key: ctx.world.clientApiKey ?? ctx.world.apiKey, ticket_id: t.id, client_id: ctx.world.clientId };
}
