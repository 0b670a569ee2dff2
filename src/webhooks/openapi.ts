// The webhooks of the OpenAPI document (OpenAPI 3.1 `webhooks`): what a receiver is sent, with
// examples. test/webhooks/delivery.test.ts checks real deliveries against these schemas.
import { EVENT_TYPES } from './events.js';

type Json = Record<string, any>;

const uuid = { type: 'string', format: 'uuid' };
const instant = (description: string) => ({ type: 'string', format: 'date-time', description });

export const WEBHOOK_SCHEMAS: Json = {
  WebhookCommandEvent: {
    type: 'object',
    description:
      'command.applied or command.failed: what became of one command, written in the transaction that finished it and sent at least once.',
    required: ['id', 'type', 'created_at', 'data'],
    properties: {
      id: {
        ...uuid,
        description: 'The event id, also in the Webhook-Id header: the same on every delivery of this event (deduplicate on it).',
      },
      type: { type: 'string', enum: ['command.applied', 'command.failed'] },
      created_at: instant('When the command finished (UTC).'),
      data: {
        type: 'object',
        required: [
          'command_id',
          'api_key_id',
          'ticket_id',
          'idempotency_key',
          'external_id',
          'status',
          'insert_id',
          'http_status',
          'message',
          'accepted_at',
          'finished_at',
        ],
        properties: {
          command_id: { ...uuid, description: 'As answered by create.php or bulk.php; its status at commands.php.' },
          api_key_id: { type: 'integer', description: 'The ITFlow API key that sent the command (api_keys.api_key_id).' },
          ticket_id: { type: 'integer' },
          idempotency_key: { type: ['string', 'null'], description: 'The Idempotency-Key it was sent with, or null.' },
          external_id: {
            type: ['string', 'null'],
            description: 'The integration’s own reference sent with it (external_id), or null.',
          },
          status: { type: 'string', enum: ['applied', 'failed'] },
          insert_id: {
            type: ['integer', 'null'],
            description: 'applied: the new ticket_reply_id (0 for a status-only command); failed: null.',
          },
          http_status: {
            type: ['integer', 'null'],
            description: 'failed: the status a synchronous call would have got; applied: null.',
          },
          message: { type: ['string', 'null'], description: 'failed: why, as commands.php says it; applied: null.' },
          accepted_at: instant('When the intake accepted the command (UTC).'),
          finished_at: instant('When a worker finished it (UTC).'),
        },
      },
    },
  },
  WebhookImportEvent: {
    type: 'object',
    description:
      'import.finished: every line of a file sent with `npm run cli -- import` has been received and every command queued for it has finished.',
    required: ['id', 'type', 'created_at', 'data'],
    properties: {
      id: { ...uuid, description: 'The event id (made from the key and the import, so one import has one event).' },
      type: { type: 'string', enum: ['import.finished'] },
      created_at: instant('When the service saw the import finished (UTC).'),
      data: {
        type: 'object',
        required: [
          'import_id',
          'api_key_id',
          'file',
          'lines',
          'queued',
          'applied',
          'failed',
          'refused',
          'duplicates',
          'first_request_at',
          'last_request_at',
        ],
        properties: {
          import_id: {
            type: 'string',
            pattern: '^[0-9a-f]{16}$',
            description: 'The file’s id: its lines’ idempotency keys are `import:<import_id>:<line>`.',
          },
          api_key_id: { type: 'integer' },
          file: { type: ['string', 'null'], description: 'The file’s name, as the import CLI sent it.' },
          lines: { type: ['integer', 'null'], description: 'Lines to import (a CSV’s header not counted).' },
          queued: { type: 'integer', description: 'Commands queued for the file’s lines, over every run of the import.' },
          applied: { type: 'integer', description: 'Of those, applied.' },
          failed: { type: 'integer', description: 'Of those, refused by a worker (each with its reason at commands.php).' },
          refused: { type: 'integer', description: 'Lines bulk.php refused (400), counted per request.' },
          duplicates: {
            type: 'integer',
            description: 'Lines sent again by a resumed import and answered as the commands they were.',
          },
          first_request_at: instant('The import’s first bulk.php request.'),
          last_request_at: instant('Its latest.'),
        },
      },
    },
  },
};

const HEADERS = [
  {
    name: 'Webhook-Signature',
    in: 'header',
    required: true,
    description:
      '`t=<unix seconds>,v1=<hex>`: HMAC-SHA256 keyed with the webhook’s secret over `<t>.<raw body>`. Recompute it over the raw bytes received, compare in constant time, and refuse a `t` more than 5 minutes away (docs/webhooks.md has Node and PHP code).',
    schema: { type: 'string', pattern: '^t=\\d+,v1=[0-9a-f]{64}$' },
    example: 't=1795603602,v1=5c0e2b1e9f8d7a6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817065f4e',
  },
  { name: 'Webhook-Id', in: 'header', required: true, description: 'The event id (as the body’s `id`).', schema: uuid },
  {
    name: 'Webhook-Event',
    in: 'header',
    required: true,
    description: 'The event type.',
    schema: { type: 'string', enum: [...EVENT_TYPES, 'webhook.test'] },
  },
  {
    name: 'Webhook-Attempt',
    in: 'header',
    required: true,
    description: 'This delivery’s attempt number (1 for the first).',
    schema: { type: 'integer', minimum: 1 },
  },
];

const RESPONSES = {
  '2XX': { description: 'Delivered: any 2xx within WEBHOOK_TIMEOUT_MS (10 s). The answer’s body is not read.' },
  default: {
    description:
      'Anything else (another status, a redirect — never followed —, no answer in time, no connection) is a failed attempt, retried with exponential backoff and jitter for up to WEBHOOK_RETRY_SECONDS (24 h), then marked failed and replayable.',
  },
};

const EXAMPLE_TIMES = { accepted_at: '2026-11-25T10:46:42.313Z', finished_at: '2026-11-25T10:46:42.335Z' };

export const WEBHOOK_EXAMPLES = {
  applied: {
    id: '01a21250-9ba0-7e51-b7c4-2d9e6f1a3c80',
    type: 'command.applied',
    created_at: EXAMPLE_TIMES.finished_at,
    data: {
      command_id: '01a21250-9b89-7c3e-8a41-5d2f6b9e0c17',
      api_key_id: 1,
      ticket_id: 2,
      idempotency_key: 'rmm-alert-4711-ack',
      external_id: null,
      status: 'applied',
      insert_id: 3,
      http_status: null,
      message: null,
      ...EXAMPLE_TIMES,
    },
  },
  failed: {
    id: '01a21250-9ba1-7a02-8c11-4e7b2d9f0a61',
    type: 'command.failed',
    created_at: EXAMPLE_TIMES.finished_at,
    data: {
      command_id: '01a21250-9b8a-7d14-9f02-3b7a1c4e8d55',
      api_key_id: 1,
      ticket_id: 5,
      idempotency_key: null,
      external_id: null,
      status: 'failed',
      insert_id: null,
      http_status: 409,
      message: 'Ticket is closed.',
      ...EXAMPLE_TIMES,
    },
  },
  importFinished: {
    id: '6f1c2a9e-03b7-8d45-9a1e-7c2b5d8e4f10',
    type: 'import.finished',
    created_at: '2026-11-25T11:02:17.480Z',
    data: {
      import_id: '9c1f4e2a7b3d6e80',
      api_key_id: 1,
      file: 'zendesk-comments.ndjson',
      lines: 12000,
      queued: 11998,
      applied: 11997,
      failed: 1,
      refused: 2,
      duplicates: 0,
      first_request_at: '2026-11-25T10:58:03.112Z',
      last_request_at: '2026-11-25T11:01:12.904Z',
    },
  },
};

function webhook(
  summary: string,
  description: string,
  schema: string,
  examples: Record<string, { summary: string; value: unknown }>,
) {
  return {
    post: {
      summary,
      description,
      parameters: HEADERS,
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` }, examples } },
      },
      responses: RESPONSES,
    },
  };
}

/** The document's `webhooks`: one per event type. */
export function webhookOperations(): Json {
  const how =
    'Sent to the URLs an admin subscribed for the API key that sent the command (`npm run cli -- webhooks add`), signed with that webhook’s secret. ' +
    'At least once: deduplicate on the event id. See docs/webhooks.md.';
  return {
    'command.applied': webhook('A command was applied', how, 'WebhookCommandEvent', {
      applied: { summary: 'A reply written (ticket_reply_id 3)', value: WEBHOOK_EXAMPLES.applied },
    }),
    'command.failed': webhook('A command failed for good', how, 'WebhookCommandEvent', {
      failed: { summary: 'A reply to a closed ticket', value: WEBHOOK_EXAMPLES.failed },
    }),
    'import.finished': webhook('An import finished', how, 'WebhookImportEvent', {
      importFinished: { summary: 'A file of 12,000 comments', value: WEBHOOK_EXAMPLES.importFinished },
    }),
  };
}
