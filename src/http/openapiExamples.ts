// The examples of the OpenAPI document (src/http/openapi.ts): requests written against the demo
// database (`npm run demo`, src/demo/seed.ts: tickets 1–6, ticket 4 resolved, ticket 5 closed,
// ticket 6 without a client), and answers as the service gives them — error messages come from
// the same error classes and constants the intake throws, so they cannot drift.
// test/http/openapi.test.ts sends each operation's default example to the service and provokes
// every documented error example, comparing the answer with the one shown here.
import { EMAIL_BUT_QUIET, NOTHING_TO_DO } from '../commands/createReply.js';
import { ExternalIdMismatch, IdempotencyMismatch, MethodNotAllowed, Unauthorized, Unavailable } from '../errors.js';
import { TICKET_CLOSED, TICKET_RESOLVED, ticketNotFound } from '../itflow/ticketRules.js';
import { fail } from './envelope.js';
import { NO_RESOURCE } from './routes/readReplies.js';

type Json = Record<string, any>;

/** One named example of an OpenAPI `examples` map. */
export interface Example {
  summary: string;
  value: unknown;
  description?: string;
}

/** Command ids as the service makes them (UUIDv7, time first), from 2026-11-25. */
export const EXAMPLE_COMMAND_ID = '01a21250-9b89-7c3e-8a41-5d2f6b9e0c17';
const SECOND_COMMAND_ID = '01a21250-9b8a-7d14-9f02-3b7a1c4e8d55';
/** A bulk request's items share their chunk's id, numbered in the last three hex digits. */
const CHUNK_ITEM = (n: number) => `01a21251-0c2e-7b65-a3d9-4f1e2c7b8${String(n).padStart(3, '0')}`;
export const EXAMPLE_REQUEST_ID = 'rmm-7f3a9c2e';

const failure = (summary: string, message: string): Example => ({ summary, value: fail(message) });

/** The messages the intake answers with, as its code builds them. */
export const MESSAGES = {
  unauthorized: new Unauthorized().message,
  // src/itflow/apiKeys.ts: requireLevel, and a key whose user ITFlow would refuse.
  noPermission: 'The user linked to this API key does not have permission for this action.',
  inactiveUser: 'The user linked to this API key is inactive, archived, or invalid.',
  methodNotAllowed: (allowed: string) => new MethodNotAllowed(allowed).message,
  notJson: 'Send the request body as JSON, with Content-Type: application/json.',
  unavailable: new Unavailable().message,
  // src/http/rateLimits.ts; the seconds are those left in the minute.
  tooManyPerKey: (perMinute: number) =>
    `Too many requests with this API key: at most ${perMinute} a minute. Retry in 42 seconds.`,
  tooManyPerIp: (perMinute: number) =>
    `Too many requests from this IP address: at most ${perMinute} a minute. Retry in 42 seconds.`,
};

// ---------------------------------------------------------------------------------------------
// Requests.

/** create.php bodies; the first is what "Try it out" sends. */
export const CREATE_REQUESTS: Record<string, Example> = {
  publicReply: {
    summary: 'A Public reply with 15 minutes worked (ticket 1)',
    value: {
      ticket_id: 1,
      ticket_reply: "Freed space on the backup volume; tonight's job should pass.",
      public_reply_type: 1,
      minutes: 15,
    },
  },
  resolve: { summary: 'Resolve ticket 3, without a comment', value: { ticket_id: 3, status: 4 } },
  internalNote: {
    summary: 'An Internal note with time worked, integers as strings (as some v1 clients send them)',
    value: { ticket_id: '6', ticket_reply: 'Renewal ordered from the CA; DNS validation pending.', hours: '1', minutes: '30' },
  },
  quietBot: {
    summary: "A monitoring bot's Internal note: its own alert id as external_id, and no one notified",
    value: {
      ticket_id: 1,
      ticket_reply: 'Backup job re-run by the RMM agent: OK.',
      external_id: 'rmm-alert-4711',
      notify: false,
    },
  },
  replyAndEmail: {
    summary: "A Public reply also emailed to the ticket's contact, safe to retry",
    value: {
      ticket_id: 2,
      ticket_reply: 'The laptop is imaged and waiting at the front desk.',
      public_reply_type: 2,
      idempotency_key: 'helpdesk-app-2-0f9c1e',
    },
  },
};

export const ITFLOW_CREATE_REQUESTS: Record<string, Example> = {
  internalNote: {
    summary: 'An Internal note with 20 minutes worked (ticket 6), as ITFlow names the fields',
    value: {
      ticket_id: 6,
      ticket_reply: 'Ordered the renewal; waiting for the CA to validate the domain.',
      ticket_reply_type: 'Internal',
      ticket_reply_time_worked: '00:20:00',
    },
  },
  publicReply: {
    summary: 'A Public reply that also moves ticket 1 to On Hold',
    value: {
      ticket_id: 1,
      ticket_reply: 'Waiting for the new disk to arrive; we will run the backup again then.',
      ticket_reply_type: 'Public',
      ticket_status: 3,
    },
  },
};

export const ITFLOW_RESOLVE_REQUESTS: Record<string, Example> = {
  resolve: { summary: 'Resolve ticket 3', value: { ticket_id: 3 } },
  narrowed: {
    summary: "Resolve ticket 1, checking it is Acme's (client 1), safe to retry",
    value: { ticket_id: 1, client_id: 1, idempotency_key: 'rmm-alert-4711-resolve' },
  },
};

export const BULK_REQUESTS: Record<string, Example> = {
  replies: {
    summary: 'Two replies to ticket 2, applied in this order',
    value: [
      { ticket_id: 2, ticket_reply: 'Laptop imaged; installing the line-of-business apps.' },
      { ticket_id: 2, ticket_reply: 'Apps installed; handed over to the new starter.', public_reply_type: 1, minutes: 45 },
    ],
  },
  historical: {
    summary: 'Historical import: past replies keep their time and author',
    value: [
      {
        ticket_id: 1,
        ticket_reply: 'Customer called: the backup failed again last night.',
        public_reply_type: 1,
        created_at: '2025-03-01T09:30:00+01:00',
        author: { contact_id: 1 },
        idempotency_key: 'import-2025-line-1',
        external_id: 'oldpsa-comment-88121',
      },
      {
        ticket_id: 1,
        ticket_reply: 'Checked the backup agent: the target volume is full.',
        created_at: '2025-03-01 10:15:00',
        author: { user_id: 2 },
        hours: 0,
        minutes: 20,
        idempotency_key: 'import-2025-line-2',
        external_id: 'oldpsa-comment-88122',
      },
    ],
  },
};

export const BULK_NDJSON_EXAMPLE =
  '{"ticket_id": 2, "ticket_reply": "Laptop imaged; installing the line-of-business apps."}\n' +
  '{"ticket_id": 2, "ticket_reply": "Apps installed; handed over.", "public_reply_type": 1, "minutes": 45}\n';

export const COMMAND_IDS_REQUESTS: Record<string, Example> = {
  several: {
    summary: 'Three ids: dashed, bare upper case, and one that is no command id',
    value: { command_ids: [EXAMPLE_COMMAND_ID, SECOND_COMMAND_ID.replace(/-/g, '').toUpperCase(), '0b6f…'] },
  },
};

// ---------------------------------------------------------------------------------------------
// Answers that succeed.

const envelope = (data: unknown[]) => ({ success: 'True', count: data.length, data });

export const QUEUED: Record<string, Example> = {
  queued: { summary: 'Queued', value: envelope([{ command_id: EXAMPLE_COMMAND_ID, status: 'queued' }]) },
};
export const APPLIED: Record<string, Example> = {
  reply: { summary: 'A reply: its ticket_reply_id', value: envelope([{ insert_id: 3, command_id: EXAMPLE_COMMAND_ID }]) },
  statusOnly: { summary: 'A status change alone', value: envelope([{ insert_id: 0, command_id: SECOND_COMMAND_ID }]) },
};
export const ITFLOW_UPDATED: Record<string, Example> = {
  resolved: { summary: 'Resolved', value: envelope([{ command_id: EXAMPLE_COMMAND_ID }]) },
};

export const BULK_ANSWERS: Record<string, Example> = {
  queued: {
    summary: 'Both items queued',
    value: envelope([
      { command_id: CHUNK_ITEM(1), status: 'queued' },
      { command_id: CHUNK_ITEM(2), status: 'queued' },
    ]),
  },
  oneRefused: {
    summary: 'A third item without ticket_id is refused on its own; the others are queued',
    value: envelope([
      { command_id: CHUNK_ITEM(1), status: 'queued' },
      { command_id: CHUNK_ITEM(2), status: 'queued' },
      { http_status: 400, message: 'ticket_id is required.' },
    ]),
  },
};
export const BULK_FINISHED: Record<string, Example> = {
  applied: {
    summary: 'Prefer: wait=N, and every queued item finished in time',
    value: envelope([
      { command_id: CHUNK_ITEM(1), status: 'applied', insert_id: 3 },
      { command_id: CHUNK_ITEM(2), status: 'applied', insert_id: 4 },
    ]),
  },
  dryRun: {
    summary: 'dry_run=1: nothing queued; a third item without ticket_id refused',
    value: envelope([{ status: 'valid' }, { status: 'valid' }, { http_status: 400, message: 'ticket_id is required.' }]),
  },
  replayed: {
    summary: 'Every item an idempotent replay of an earlier request',
    value: envelope([
      { command_id: CHUNK_ITEM(1), status: 'applied', insert_id: 3, replayed: true },
      { command_id: CHUNK_ITEM(2), status: 'queued', replayed: true },
    ]),
  },
};

const REPLY_1 = {
  ticket_reply_id: '1',
  ticket_reply: '<p>Looking into it now.</p>',
  ticket_reply_type: 'Public',
  ticket_reply_time_worked: '00:05:00',
  ticket_reply_created_at: '2026-11-24 23:55:19',
  ticket_reply_updated_at: null,
  ticket_reply_archived_at: null,
  ticket_reply_by: '2',
  ticket_reply_ticket_id: '1',
};
const REPLY_2 = {
  ...REPLY_1,
  ticket_reply_id: '2',
  ticket_reply: '<p>Backup agent log shows a full disk.</p>',
  ticket_reply_type: 'Internal',
  ticket_reply_time_worked: '00:20:00',
  ticket_reply_created_at: '2026-11-25 01:35:19',
};
const ITFLOW_COLUMNS = {
  ticket_prefix: 'TCK-',
  ticket_number: '1',
  ticket_subject: 'Backups failing on the file server',
  ticket_client_id: '1',
  ticket_reply_by_name: 'Tim Technician',
};
export const REPLIES: Record<string, Example> = {
  ticket: { summary: "Ticket 1's replies, newest first", value: envelope([REPLY_2, REPLY_1]) },
  withPending: {
    summary: 'include_pending=1: this key’s command still queued, then the replies (one made with an external_id)',
    value: envelope([
      {
        ticket_reply_id: null,
        ticket_reply: 'Backup job re-run by the RMM agent: OK.',
        ticket_reply_type: 'Internal',
        ticket_reply_time_worked: '00:00:00',
        ticket_reply_created_at: '2026-11-25 05:46:42',
        ticket_reply_updated_at: null,
        ticket_reply_archived_at: null,
        ticket_reply_by: '2',
        ticket_reply_ticket_id: '1',
        external_id: 'rmm-alert-4711',
        pending: true,
        command_id: EXAMPLE_COMMAND_ID,
        ticket_status: null,
      },
      { ...REPLY_2, external_id: 'rmm-alert-4702' },
      REPLY_1,
    ]),
  },
};
export const ITFLOW_REPLIES: Record<string, Example> = {
  ticket: {
    summary: "Ticket 1's replies, oldest first",
    value: envelope([
      { ...REPLY_1, ...ITFLOW_COLUMNS },
      { ...REPLY_2, ...ITFLOW_COLUMNS },
    ]),
  },
};

const finishedTimes = {
  accepted_at: '2026-11-25T10:46:42.313Z',
  finished_at: '2026-11-25T10:46:42.335Z',
  accepted_at_itflow: '2026-11-25 05:46:42',
  finished_at_itflow: '2026-11-25 05:46:42',
  itflow_timezone: 'America/New_York',
  attempts: 1,
};
export const COMMAND_STATUSES: Record<string, Example> = {
  applied: {
    summary: 'Applied',
    value: envelope([{ command_id: EXAMPLE_COMMAND_ID, ticket_id: 1, status: 'applied', insert_id: 3, ...finishedTimes }]),
  },
  queued: {
    summary: 'Waiting in its lane (sent with an external_id)',
    value: envelope([{ command_id: EXAMPLE_COMMAND_ID, ticket_id: 1, external_id: 'rmm-alert-4711', status: 'queued' }]),
  },
  retrying: {
    summary: 'Retrying after a deadlock or while MySQL is away',
    value: envelope([
      {
        command_id: EXAMPLE_COMMAND_ID,
        ticket_id: 1,
        status: 'retrying',
        attempts: 2,
        next_try_at: '2026-11-25T10:46:43.120Z',
      },
    ]),
  },
  failed: {
    summary: 'Failed: what a synchronous call would have got',
    value: envelope([
      {
        command_id: SECOND_COMMAND_ID,
        ticket_id: 5,
        status: 'failed',
        http_status: 409,
        message: TICKET_CLOSED,
        ...finishedTimes,
      },
    ]),
  },
};
export const COMMAND_OUTCOMES: Record<string, Example> = {
  several: {
    summary: 'One applied, one not finished, one no command id',
    value: envelope([
      { command_id: EXAMPLE_COMMAND_ID, status: 'applied', insert_id: 3 },
      { command_id: SECOND_COMMAND_ID, status: 'unfinished' },
      { command_id: '0b6f…', status: 'invalid', message: 'command_id must be the command_id create.php answered (a UUID).' },
    ]),
  },
};

export const READY = {
  ready: {
    summary: 'Ready',
    value: {
      status: 'ready',
      mysql: 'ok',
      redis: 'ok',
      itflow: { keyModel: 'key-runs-as-user', databaseVersion: '2.6.7', sla: true },
    },
  },
};
export const NOT_READY = {
  redisDown: {
    summary: 'Redis does not answer',
    value: {
      status: 'not ready',
      mysql: 'ok',
      redis: 'unreachable',
      itflow: { keyModel: 'key-runs-as-user', databaseVersion: '2.6.7', sla: true },
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Failures. Each operation's map: status → named examples.

export type FailureExamples = Record<string, Record<string, Example>>;

/** The 429s of the limits this install sets (none when both are 0). */
function tooMany(limits: Pick<ExampleLimits, 'perKeyPerMinute' | 'perIpPerMinute'>): FailureExamples {
  const named: Record<string, Example> = {};
  if (limits.perKeyPerMinute > 0) {
    named.perKey = failure('Past RATE_LIMIT_PER_KEY_PER_MINUTE', MESSAGES.tooManyPerKey(limits.perKeyPerMinute));
  }
  if (limits.perIpPerMinute > 0) {
    named.perIp = failure('Past RATE_LIMIT_PER_IP_PER_MINUTE', MESSAGES.tooManyPerIp(limits.perIpPerMinute));
  }
  return Object.keys(named).length > 0 ? { '429': named } : {};
}

/** What every API operation can answer whatever its fields: key, permission, limits, outage. */
function common(allowed: string, limits: ExampleLimits): FailureExamples {
  return {
    '401': { wrongKey: failure('A wrong, expired or missing key', MESSAGES.unauthorized) },
    '403': {
      noPermission: failure("The key's user has no permission for this", MESSAGES.noPermission),
      inactiveUser: failure("The key's user is inactive or archived (ITFlow ≥ 2.4.7)", MESSAGES.inactiveUser),
    },
    '405': { wrongMethod: failure('Another method', MESSAGES.methodNotAllowed(allowed)) },
    ...tooMany(limits),
    '503': { unavailable: failure('MySQL or Redis does not answer', MESSAGES.unavailable) },
  };
}

/** create.php and its ITFlow siblings: the failures one command can meet at the intake. */
function commandFailures(
  allowed: string,
  limits: ExampleLimits,
  invalid: Record<string, Example>,
  conflicts: Record<string, Example>,
  notFound: Record<string, Example>,
  reused: Record<string, Example> = {},
): FailureExamples {
  return {
    ...common(allowed, limits),
    '400': invalid,
    '404': notFound,
    '409': conflicts,
    '413': { bodyTooLarge: failure('A body over BODY_LIMIT_BYTES', limits.bodyTooLarge) },
    '415': { notJson: failure('A body sent as text/plain', MESSAGES.notJson) },
    '422': {
      keyReused: failure(
        'The Idempotency-Key of an earlier, different request',
        new IdempotencyMismatch('helpdesk-app-2-0f9c1e', EXAMPLE_COMMAND_ID).message,
      ),
      ...reused,
    },
  };
}

const notFoundTicket3 = {
  outOfScope: failure("Ticket 3 is Globex's, and the key (demo-acme-tech-key) sees Acme's only", ticketNotFound(3).message),
};

export interface ExampleLimits {
  perKeyPerMinute: number;
  perIpPerMinute: number;
  bulkMaxItems: number;
  bodyTooLarge: string;
}

export function createFailures(limits: ExampleLimits): FailureExamples {
  return commandFailures(
    'POST',
    limits,
    {
      missingTicket: failure('No ticket_id', 'ticket_id is required.'),
      nothingToDo: failure('Neither a reply nor a status', NOTHING_TO_DO),
      minutes: failure('75 minutes', 'minutes must be between 0 and 59.'),
      emailButQuiet: failure('public_reply_type 2 (email) with notify: false', EMAIL_BUT_QUIET),
    },
    { closed: failure('A reply to ticket 5, which is closed', TICKET_CLOSED) },
    notFoundTicket3,
    {
      externalIdReused: failure(
        'An external_id this key already used for a different request',
        new ExternalIdMismatch('chat-msg-88412', EXAMPLE_COMMAND_ID).message,
      ),
    },
  );
}

export function itflowCreateFailures(limits: ExampleLimits): FailureExamples {
  return commandFailures(
    'POST',
    limits,
    {
      replyType: failure(
        "A ticket_reply_type other than 'Internal' or 'Public'",
        'ticket_reply_type must be Internal or Public.',
      ),
      timeWorked: failure(
        'ticket_reply_time_worked not HH:MM:SS',
        'ticket_reply_time_worked must be HH:MM:SS (at most 838:59:59).',
      ),
      nothingToDo: failure('Neither a reply nor a status', NOTHING_TO_DO.replace('a status > 0', 'a ticket_status > 0')),
    },
    { closed: failure('A reply to ticket 5, which is closed', TICKET_CLOSED) },
    notFoundTicket3,
  );
}

export function itflowResolveFailures(limits: ExampleLimits): FailureExamples {
  return commandFailures(
    'POST',
    limits,
    { missingTicket: failure('No ticket_id', 'ticket_id is required.') },
    {
      resolved: failure('Ticket 4, already resolved', TICKET_RESOLVED),
      closed: failure('Ticket 5, closed', TICKET_CLOSED),
    },
    notFoundTicket3,
  );
}

export function bulkFailures(limits: ExampleLimits): FailureExamples {
  const { '503': _unavailable, ...rest } = common('POST', limits);
  return {
    ...rest,
    '413': {
      tooMany: failure(
        `More than ${limits.bulkMaxItems} commands`,
        `A bulk request may carry at most ${limits.bulkMaxItems} commands; this one has ${limits.bulkMaxItems + 1}.`,
      ),
    },
    '415': { notJson: failure('A body sent as text/plain', MESSAGES.notJson) },
  };
}

/** bulk.php's 400 and 503 carry each item's result beside the message. */
export const BULK_REFUSED: Record<string, Example> = {
  noneAccepted: {
    summary: 'No item was accepted: each says why',
    value: {
      success: 'False',
      message: 'No command in the request was accepted; each item says why.',
      count: 2,
      data: [
        { http_status: 400, message: 'ticket_id is required.' },
        { http_status: 409, message: TICKET_CLOSED },
      ],
    },
  },
  notAnArray: failure(
    'A JSON object instead of an array',
    'The request body must be a JSON array of commands, or NDJSON (Content-Type: application/x-ndjson).',
  ),
};
export const BULK_UNAVAILABLE: Record<string, Example> = {
  redisDown: {
    summary: 'Redis does not answer: nothing was queued',
    value: {
      success: 'False',
      message: 'The service is temporarily unavailable; no command was queued. Please retry shortly.',
      count: 1,
      data: [{ http_status: 503, message: MESSAGES.unavailable }],
    },
  },
};

export function readFailures(limits: ExampleLimits, badQuery: Record<string, Example>): FailureExamples {
  return {
    ...common('GET', limits),
    '400': badQuery,
    '404': { nothing: failure('Ticket 3 has no replies yet', NO_RESOURCE) },
  };
}

export function commandStatusFailures(limits: ExampleLimits): FailureExamples {
  return {
    ...common('GET, POST', limits),
    '400': {
      missing: failure('No command_id', 'command_id is required.'),
      notAnId: failure('Not a UUID', 'command_id must be the command_id create.php answered (a UUID).'),
    },
    '404': {
      unknown: failure(
        'Unknown to this key, or past COMMAND_RETENTION_DAYS',
        `No command ${EXAMPLE_COMMAND_ID} for this API key (unknown, or older than the retention).`,
      ),
    },
  };
}

export function commandOutcomesFailures(limits: ExampleLimits): FailureExamples {
  return {
    ...common('GET, POST', limits),
    '400': {
      empty: failure('An empty list', 'command_ids must be a non-empty array of command ids.'),
      tooMany: failure('Over 1,000 ids', 'command_ids may name at most 1000 commands.'),
    },
    '413': { bodyTooLarge: failure('A body over BODY_LIMIT_BYTES', limits.bodyTooLarge) },
    '415': { notJson: failure('A body sent as text/plain', MESSAGES.notJson) },
  };
}

/** The answer of a GET-only operational path to another method. */
export const GET_ONLY: Record<string, Example> = {
  wrongMethod: failure('Another method', MESSAGES.methodNotAllowed('GET')),
};

export const INDEX: Json = {
  service: 'ITFlow Reply Queue',
  docs: '/docs',
  openapi: '/openapi.json',
  health: '/healthz',
  readiness: '/readyz',
  metrics: '/metrics',
};
