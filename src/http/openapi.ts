// The OpenAPI 3.1 document of the intake, generated from the zod schemas that validate its
// requests (z.toJSONSchema, input side, JSON Schema 2020-12 — OpenAPI 3.1's default dialect).
// The fields' transforms check more than zod can express, so each field carries annotations
// (src/commands/fields.ts) that become plain JSON Schema here; the response shapes, which
// nothing validates, are written below as zod schemas too. Examples: src/http/openapiExamples.ts.
// The document passes @apidevtools/swagger-parser and `redocly lint` (test/http/openapi.test.ts).
import { z } from 'zod';
import { bulkItemRequest } from '../commands/bulkItem.js';
import { createReplyRequest } from '../commands/createReply.js';
import { INTEGER_LIKE, type IntegerBounds, REQUIRED } from '../commands/fields.js';
import { itflowCreateReplyRequest } from '../commands/itflowCreateReply.js';
import { itflowResolveRequest } from '../commands/itflowResolve.js';
import {
  commandStatusManyRequest,
  commandStatusQuery,
  INCLUDE_PENDING_NEEDS_TICKET,
  itflowReadRepliesQuery,
  readRepliesQuery,
} from '../commands/readReplies.js';
import { WEBHOOK_SCHEMAS, webhookOperations } from '../webhooks/openapi.js';
import { COMMANDS_PATH } from './accept.js';
import { toServiceError } from './errors.js';
import type { Example, FailureExamples } from './openapiExamples.js';
import * as examples from './openapiExamples.js';
import { BULK_PATH } from './routes/bulk.js';
import { CREATE_PATH, ITFLOW_CREATE_PATH, ITFLOW_RESOLVE_PATH } from './routes/createReply.js';
import { ITFLOW_READ_PATH, NO_RESOURCE, READ_PATH } from './routes/readReplies.js';

type Json = Record<string, any>;

/** What the document says of this install's limits (they show in descriptions and examples). */
export interface DocumentLimits {
  bulkMaxItems: number;
  preferWaitMaxSeconds: number;
  /** BODY_LIMIT_BYTES and BULK_BODY_LIMIT_BYTES. */
  bodyLimitBytes: number;
  bulkBodyLimitBytes: number;
  /** RATE_LIMIT_PER_KEY_PER_MINUTE and RATE_LIMIT_PER_IP_PER_MINUTE (0: no limit). */
  perKeyPerMinute: number;
  perIpPerMinute: number;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** A field annotated x-integer-like: a JSON integer, or a decimal string, within its bounds. */
function integerLike(json: Json): void {
  const bounds = json[INTEGER_LIKE] as IntegerBounds | true | undefined;
  if (typeof bounds !== 'object') return;
  const required = json[REQUIRED] === true;
  const digits =
    bounds.minimum >= 0 && bounds.maximum <= 9
      ? `0*[${bounds.minimum}-${bounds.maximum}]`
      : bounds.minimum >= 1
        ? '0*[1-9]\\d*'
        : bounds.minimum >= 0
          ? '\\d+'
          : '-?\\d+';
  delete json.anyOf;
  Object.assign(json, {
    [INTEGER_LIKE]: true,
    type: required ? ['integer', 'string'] : ['integer', 'string', 'null'],
    minimum: bounds.minimum,
    maximum: bounds.maximum,
    pattern: required ? `^\\s*${digits}\\s*$` : `^\\s*(${digits})?\\s*$`,
  });
}

/** Properties annotated x-required go to their object's `required`, and take no null. */
function liftRequired(json: Json): void {
  if (json.properties) {
    for (const [name, property] of Object.entries(json.properties as Record<string, Json>)) {
      if (property[REQUIRED] !== true) continue;
      delete property[REQUIRED];
      json.required = [...new Set([...(json.required ?? []), name])];
      if (Array.isArray(property.type)) property.type = property.type.filter((type: string) => type !== 'null');
    }
  }
  for (const child of Object.values(json)) {
    if (child && typeof child === 'object') liftRequired(child as Json);
  }
}

/** Keywords whose subschemas are conditions on the whole object rather than its shape. */
const RULE_KEYWORDS = ['anyOf', 'oneOf', 'if', 'then', 'else', 'not'];

/**
 * Shapes linters flag, rewritten without changing what validates: an `anyOf` of one schema is
 * that schema; a name in `required` gets an entry under `properties` (a rule's
 * `if: {required: ['author']}`); and a rule that constrains properties (`then: {required:
 * ['ticket_reply'], properties: …}`) becomes an `allOf` of its parts, because Redocly's example
 * check closes every schema that has `properties` (unevaluatedProperties: false) except allOf's
 * members, which would make it refuse valid examples. Inside an `if` nothing is rewritten: a
 * condition that fails only skips its `then`.
 */
function tidy(json: Json, rule = false, rewrite = true): void {
  if (Array.isArray(json.anyOf) && json.anyOf.length === 1) {
    const [only] = json.anyOf as Json[];
    if (only && Object.keys(only).every((key) => !(key in json))) {
      delete json.anyOf;
      Object.assign(json, only);
    }
  }
  if (Array.isArray(json.required)) {
    json.properties ??= {};
    for (const name of json.required as string[]) json.properties[name] ??= {};
  }
  for (const [key, child] of Object.entries(json)) {
    if (!child || typeof child !== 'object') continue;
    const isRule = RULE_KEYWORDS.includes(key);
    const inside = rewrite && key !== 'if';
    if (Array.isArray(child)) {
      for (const item of child.filter((item) => item && typeof item === 'object')) tidy(item, isRule, inside);
    } else {
      tidy(child as Json, isRule, inside);
    }
  }
  if (rewrite && rule && json.properties && json.type === undefined) {
    const { required, properties, ...rest } = json;
    for (const key of Object.keys(json)) delete json[key];
    Object.assign(json, rest, { allOf: [...(rest.allOf ?? []), ...(required ? [{ required }] : []), { properties }] });
  }
}

/** A request schema as JSON Schema 2020-12: what a client may send. */
export function requestSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    override: ({ jsonSchema }) => integerLike(jsonSchema as Json),
  }) as Json;
  delete json.$schema;
  liftRequired(json);
  tidy(json);
  return json;
}

/** A response shape as JSON Schema (output side: what the service sends). */
function responseSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12' }) as Json;
  delete json.$schema;
  return json;
}

/**
 * Query parameters from a query schema: on the wire every value is text, so integers read as
 * such. `example` values are what Swagger UI's "Try it out" fills in.
 */
function queryParameters(schema: z.ZodType, example: Record<string, unknown> = {}): Json[] {
  const json = requestSchema(schema);
  return Object.entries(json.properties as Record<string, Json>).map(([name, property]) => {
    const { description, [INTEGER_LIKE]: integer, type: _type, pattern, ...rest } = property;
    const parameterSchema = integer
      ? { type: 'integer', minimum: rest.minimum, maximum: rest.maximum }
      : { type: 'string', ...(pattern ? { pattern } : {}), ...(rest.format ? { format: rest.format } : {}) };
    return {
      name,
      in: 'query',
      required: (json.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: parameterSchema,
      ...(name in example ? { example: example[name] } : {}),
    };
  });
}

// Response shapes.
const successEnvelope = (item: z.ZodType) => z.object({ success: z.literal('True'), count: z.int().min(0), data: z.array(item) });
const commandId = z.string().meta({ format: 'uuid', description: 'The command id: follow it at commands.php.' });
const failure = z
  .object({ success: z.literal('False'), message: z.string() })
  .meta({ description: "ITFlow v1's failure envelope: the message says what was wrong; nothing internal." });
const queued = successEnvelope(z.object({ command_id: commandId, status: z.literal('queued') }));
const applied = successEnvelope(
  z.object({
    insert_id: z.int().min(0).meta({ description: 'The new ticket_reply_id; 0 for a status-only command.' }),
    command_id: commandId,
  }),
);
const replyRow = z
  .object({
    ticket_reply_id: z.string(),
    ticket_reply: z.string(),
    ticket_reply_type: z.string(),
    ticket_reply_time_worked: z.string().nullable(),
    ticket_reply_created_at: z.string(),
    ticket_reply_updated_at: z.string().nullable(),
    ticket_reply_archived_at: z.string().nullable(),
    ticket_reply_by: z.string(),
    ticket_reply_ticket_id: z.string(),
  })
  .catchall(z.string().nullable())
  .meta({
    description:
      "Every ticket_replies column, as ITFlow's v1 read endpoints send it: every value a string, NULL as null, DATETIME as 'YYYY-MM-DD HH:MM:SS' on ITFlow's wall clock (its config_timezone, no offset). On this service's read.php, also `external_id` where this key's command that made the reply carried one.",
  });
const pendingRow = z
  .object({
    ticket_reply_id: z.null(),
    ticket_reply: z.string().nullable().meta({ description: 'null for a status-only command.' }),
    ticket_reply_type: z.enum(['Internal', 'Public', 'Client']).nullable(),
    ticket_reply_time_worked: z.string().nullable(),
    ticket_reply_created_at: z.string().meta({
      description: "The time its reply will carry: when it was accepted (or its created_at), on ITFlow's wall clock.",
    }),
    ticket_reply_updated_at: z.null(),
    ticket_reply_archived_at: z.null(),
    ticket_reply_by: z.string(),
    ticket_reply_ticket_id: z.string(),
    external_id: z.string().optional(),
    pending: z.literal(true),
    command_id: z.string().meta({ format: 'uuid', description: 'Follow it at commands.php.' }),
    ticket_status: z.string().nullable().meta({ description: 'The ticket_status_id it moves the ticket to; null: unchanged.' }),
  })
  .meta({
    description:
      "include_pending=1: one of this key's own commands for the ticket, accepted but not applied yet, shaped like the reply it will add. Listed before the replies, newest first.",
  });
const itflowReplyRow = replyRow
  .extend({
    ticket_prefix: z.string().nullable(),
    ticket_number: z.string().nullable(),
    ticket_subject: z.string().nullable(),
    ticket_client_id: z.string().nullable(),
    ticket_reply_by_name: z.string().nullable(),
  })
  .meta({
    description: "A reply row as ITFlow's own read.php sends it: the columns plus the ticket's reference and the author's name.",
  });
const itflowUpdated = successEnvelope(z.object({ command_id: commandId })).meta({
  description: "ITFlow's update answer: success and the number of tickets resolved (1), with the command id beside it.",
});
const utcInstant = (what: string) =>
  z.iso.datetime().meta({ description: `${what}: a UTC instant, RFC 3339 with milliseconds (2026-11-25T10:46:42.313Z).` });
const itflowWallClock = (what: string) =>
  z
    .string()
    .regex(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
    .meta({ description: `${what} on ITFlow's wall clock: 'YYYY-MM-DD HH:MM:SS' in itflow_timezone, as read.php's times.` });
const timesAndAttempts = {
  accepted_at: utcInstant('When the intake accepted it'),
  finished_at: utcInstant('When a worker finished it'),
  accepted_at_itflow: itflowWallClock('accepted_at'),
  finished_at_itflow: itflowWallClock('finished_at'),
  itflow_timezone: z.string().meta({ description: "ITFlow's config_timezone (IANA), e.g. Europe/Berlin." }),
  attempts: z.int().min(1),
};
const externalId = z.string().optional().meta({ description: 'The external_id the command carried, if any.' });
const commandStatus = successEnvelope(
  z.discriminatedUnion('status', [
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      external_id: externalId,
      status: z.enum(['queued', 'applying']),
      waiting_for: z.literal('ticket_lock').optional().meta({
        description: 'Queued behind a ticket row another session holds (see the README\'s "A ticket locked elsewhere").',
      }),
      next_try_at: z.iso.datetime().optional(),
    }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      external_id: externalId,
      status: z.literal('retrying'),
      attempts: z.int(),
      next_try_at: z.iso.datetime(),
    }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      external_id: externalId,
      status: z.literal('applied'),
      insert_id: z.int(),
      ...timesAndAttempts,
    }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      external_id: externalId,
      status: z.literal('failed'),
      http_status: z.int().meta({ description: 'The status a synchronous call would have got (503: kept for an operator).' }),
      message: z.string(),
      ...z.object(timesAndAttempts).partial().shape,
      attempts: z.int(),
    }),
  ]),
);
const finishedOrUnfinished = successEnvelope(
  z.union([
    z.object({ command_id: z.string(), status: z.literal('applied'), insert_id: z.int() }),
    z.object({ command_id: z.string(), status: z.literal('failed'), http_status: z.int(), message: z.string() }),
    z.object({
      command_id: z.string(),
      status: z.literal('unfinished').meta({ description: 'Queued, applying or retrying — or unknown to this key.' }),
    }),
    z.object({
      command_id: z.string().meta({ description: 'As sent.' }),
      status: z.literal('invalid').meta({ description: 'Not a command id (a UUID).' }),
      message: z.string(),
    }),
  ]),
);
const bulkItemResult = z.union([
  z.object({ command_id: commandId, status: z.literal('queued'), replayed: z.literal(true).optional() }),
  z.object({ command_id: commandId, status: z.literal('applied'), insert_id: z.int(), replayed: z.literal(true).optional() }),
  z.object({
    command_id: commandId,
    status: z.literal('failed'),
    http_status: z.int(),
    message: z.string(),
    replayed: z.literal(true).optional(),
  }),
  z.object({ status: z.literal('valid').meta({ description: 'dry_run=1: the item would be accepted.' }) }),
  z.object({ http_status: z.int(), message: z.string() }).meta({ description: 'The item was refused: why, and its status.' }),
]);
const bulkAnswer = z.object({
  success: z.enum(['True', 'False']),
  message: z.string().optional().meta({ description: 'When no item was accepted.' }),
  count: z.int(),
  data: z.array(bulkItemResult).meta({ description: "One result per item, in the request's order." }),
});
const health = z.object({ status: z.literal('ok') });
const readiness = z.object({
  status: z.enum(['ready', 'not ready']),
  mysql: z.enum(['ok', 'unreachable']),
  redis: z.enum(['ok', 'unreachable']),
  itflow: z.object({ keyModel: z.string(), databaseVersion: z.string().nullable(), sla: z.boolean() }),
  redisReplicas: z
    .object({ online: z.int().nullable(), required: z.int() })
    .optional()
    .meta({
      description:
        'With REDIS_MIN_REPLICAS_ACK set, on an intake: the Redis replicas online now, and how many must hold a command before it is ' +
        'acknowledged. Too few do not make the intake unready: commands are answered 503 until enough are back.',
    }),
});

// Headers, parameters and failure answers the operations share.
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
/** Every answer, errors included, carries its request's id. */
const ANSWER_HEADERS = { 'X-Request-Id': header('RequestId') };
/** An answer of an /api/ path: the request was counted against the rate limits. */
const API_HEADERS = {
  ...ANSWER_HEADERS,
  'RateLimit-Limit': header('RateLimitLimit'),
  'RateLimit-Remaining': header('RateLimitRemaining'),
  'RateLimit-Reset': header('RateLimitReset'),
};
/** What a command's answer may add: where to follow it, a replay, a wait that was honoured. */
const COMMAND_HEADERS = {
  'Idempotent-Replayed': header('IdempotentReplayed'),
  'Preference-Applied': header('PreferenceApplied'),
};
const LOCATION = { Location: header('Location') };
/** A listing's answer (and its 404): what answered it, and the read projection's lag. */
const READ_HEADERS = { 'X-Read-Source': header('ReadSource'), 'X-Projection-Lag': header('ProjectionLag') };
const RETRY_AFTER = { 'Retry-After': header('RetryAfter') };

const json = (schema: Json, named?: Record<string, Example>) => ({
  'application/json': { schema, ...(named ? { examples: named } : {}) },
});
const answer = (description: string, schema: Json, named?: Record<string, Example>, headers: Json = API_HEADERS) => ({
  description,
  headers,
  content: json(schema, named),
});

const FAILURE_TEXT: Record<string, string> = {
  '400': 'Invalid input: the message names the field. Nothing was written.',
  '401': 'No valid key: none was sent, or it is unknown or expired. ITFlow logs the attempt.',
  '403': "The key's user may not do this: no permission for tickets, or the user is inactive or archived (ITFlow ≥ 2.4.7).",
  '404': "Unknown ticket, or one outside the key's client scope.",
  '405': 'This path does not take that method; Allow names the ones it does.',
  '409':
    "The ticket's state forbids it (`Ticket is closed.`), or a request with the same idempotency key (or external_id) is still being " +
    'accepted (`A request with this idempotency key is still being accepted. Retry in a moment.`, with Retry-After: 1) and this request ' +
    'did not ask to wait (Prefer: wait=N waits for it), or its wait ran out first.',
  '413': 'The request body is too large.',
  '415': 'The body is not JSON: send Content-Type: application/json (uncompressed, UTF-8).',
  '422': 'The idempotency key, or the external_id, was already used (by this key) for a different request. Nothing was written.',
  '429': 'Too many requests with this API key, or from this IP address, this minute: retry after Retry-After seconds.',
  '503':
    'MySQL or Redis does not answer: nothing was done; retry after Retry-After seconds. With REDIS_MIN_REPLICAS_ACK set, also: the ' +
    'command was queued but Redis could not confirm it on enough replicas in time (`The command was not acknowledged: …`); it may ' +
    'still be applied, so retry with the same idempotency key, which answers as that command.',
};

const FAILURE_HEADERS: Record<string, Json> = {
  '405': { ...ANSWER_HEADERS, Allow: header('Allow') },
  '409': { ...API_HEADERS, ...RETRY_AFTER },
  '429': { ...API_HEADERS, ...RETRY_AFTER },
  '503': { ...API_HEADERS, ...RETRY_AFTER },
};

/**
 * Failure answers of an operation, from its examples (status → named examples). On the command
 * paths an answer that is a command's outcome (after `Prefer: wait`, or replayed for its
 * idempotency key) carries the command headers too.
 */
function failures(named: FailureExamples, texts: Record<string, string> = {}, command = false): Json {
  return Object.fromEntries(
    Object.keys(named)
      .sort()
      .map((status) => {
        const base = FAILURE_HEADERS[status] ?? API_HEADERS;
        const outcome = command && ['400', '403', '404', '409'].includes(status);
        return [
          status,
          answer(texts[status] ?? FAILURE_TEXT[status] ?? '', ref('Failure'), named[status], {
            ...base,
            ...(outcome ? COMMAND_HEADERS : {}),
          }),
        ];
      }),
  );
}

/** What else a request can meet, on any path: its head or body too slow, its headers too large, a fault. */
const OTHER_FAILURES = {
  default: {
    description:
      'Any other failure, in the same envelope: 408 when the request did not arrive within REQUEST_TIMEOUT_SECONDS, ' +
      '431 when its headers are too large, 400 when it is not valid HTTP, 500 `Internal error.` on a fault of the service.',
    headers: ANSWER_HEADERS,
    content: json(ref('Failure')),
  },
};

const SECURITY = [{ ApiKeyHeader: [] }, { BearerAuth: [] }, { ApiKeyQuery: [] }];
const parameter = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const prefer = (description: string) => ({
  name: 'Prefer',
  in: 'header',
  description,
  schema: { type: 'string' },
  example: 'wait=5',
});

type Tag = 'commands' | 'bulk' | 'read' | 'status' | 'operations';
const TAGS: Array<{ name: Tag; description: string }> = [
  {
    name: 'commands',
    description:
      'One reply and/or status change and/or time worked a request: queued and answered at once (202), or waited for (`Prefer: wait=N`).',
  },
  { name: 'bulk', description: 'Many commands a request: imports, historical replies, high-volume integrations.' },
  { name: 'read', description: "Replies as ITFlow's v1 read endpoints send them, whoever wrote them." },
  { name: 'status', description: 'Following accepted commands until a worker has applied them.' },
  { name: 'operations', description: 'Health, readiness, metrics and this document; no API key.' },
];

interface Operation {
  operationId: string;
  tag: Tag;
  summary: string;
  description: string;
  /** false: open to anyone (no API key). */
  secured?: boolean;
  parameters?: Json[];
  requestBody?: Json;
  responses: Json;
}

function operation({
  operationId,
  tag,
  summary,
  description,
  secured = true,
  parameters = [],
  requestBody,
  responses,
}: Operation) {
  return {
    operationId,
    tags: [tag],
    summary,
    description,
    security: secured ? SECURITY : [],
    parameters: [...parameters, parameter('RequestId')],
    ...(requestBody ? { requestBody } : {}),
    responses: { ...responses, ...OTHER_FAILURES },
  };
}

const KEY_IN_BODY =
  ' The key may also come as the body field `api_key` (looked at after X-API-Key, Authorization and the query string).';

/** The three command paths: one command, 201/200 when waited for, 202 when queued. */
function commandOperation(
  op: Omit<Operation, 'responses' | 'parameters' | 'requestBody' | 'tag'>,
  body: { schema: string; named: Record<string, Example> },
  preferText: string,
  applied: { status: string; schema: string; named: Record<string, Example> },
  named: FailureExamples,
  limits: DocumentLimits,
): Json {
  return operation({
    ...op,
    tag: 'commands',
    parameters: [parameter('IdempotencyKey'), prefer(preferText)],
    requestBody: {
      required: true,
      description: `JSON; unknown fields are ignored.${KEY_IN_BODY}`,
      content: json(ref(body.schema), body.named),
    },
    responses: {
      [applied.status]: answer(
        `Applied: the client waited (\`Prefer: wait=N\`, N ≤ ${limits.preferWaitMaxSeconds}) and the worker finished in time.`,
        ref(applied.schema),
        applied.named,
        { ...API_HEADERS, ...LOCATION, ...COMMAND_HEADERS },
      ),
      '202': answer(
        'Accepted and queued (or the wait ran out): follow the Location (commands.php).',
        ref('Queued'),
        examples.QUEUED,
        { ...API_HEADERS, ...LOCATION, ...COMMAND_HEADERS },
      ),
      ...failures(named, { '413': `The request body is over BODY_LIMIT_BYTES (${limits.bodyLimitBytes} bytes).` }, true),
    },
  });
}

function readOperation(
  op: Pick<Operation, 'operationId' | 'summary' | 'description'>,
  query: z.ZodType,
  replies: { schema: string; named: Record<string, Example> },
  badQuery: Record<string, Example>,
  limits: examples.ExampleLimits,
): Json {
  return operation({
    ...op,
    tag: 'read',
    parameters: queryParameters(query, { ticket_id: 1, limit: 10 }),
    responses: {
      '200': answer(
        "The replies; `count` is the number of rows returned. Times (`ticket_reply_created_at`, `…_updated_at`, `…_archived_at`) are ITFlow's wall clock in its config_timezone, 'YYYY-MM-DD HH:MM:SS' without an offset, as ITFlow stores and shows them.",
        ref(replies.schema),
        replies.named,
        { ...API_HEADERS, ...READ_HEADERS },
      ),
      ...withHeaders(
        failures(examples.readFailures(limits, badQuery), { '404': `Nothing found: \`${NO_RESOURCE}\`` }),
        '404',
        READ_HEADERS,
      ),
    },
  });
}

/** `responses` with `headers` added to the answer of `status`. */
function withHeaders(responses: Json, status: string, headers: Json): Json {
  const response = responses[status];
  return response ? { ...responses, [status]: { ...response, headers: { ...response.headers, ...headers } } } : responses;
}

/** A GET path of the operations tag: open to anyone, never rate limited. */
function operationsPath(op: Omit<Operation, 'tag' | 'secured'>): Json {
  return operation({
    ...op,
    tag: 'operations',
    secured: false,
    responses: {
      ...op.responses,
      '405': answer(FAILURE_TEXT['405'] as string, ref('Failure'), examples.GET_ONLY, {
        ...ANSWER_HEADERS,
        Allow: header('Allow'),
      }),
    },
  });
}

/** The message a body over `bytes` gets, as the intake's error mapping words it. */
function bodyTooLarge(bytes: number): string {
  return toServiceError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' }, bytes)?.message ?? '';
}

/** The whole document. Pure: the same schemas and limits give the same document. */
export function buildOpenApiDocument(limits: DocumentLimits): Json {
  const exampleLimits = { ...limits, bodyTooLarge: bodyTooLarge(limits.bodyLimitBytes) };
  const bulkArray = { type: 'array', minItems: 1, maxItems: limits.bulkMaxItems, items: ref('BulkItem') };
  const waitMost = `wait=N: wait at most N s (default and most: ${limits.preferWaitMaxSeconds}). respond-async or wait=0: answer 202 at once.`;
  const bulkFailures = examples.bulkFailures(exampleLimits);
  bulkFailures['413'] = {
    ...bulkFailures['413'],
    bodyTooLarge: {
      summary: 'A body over BULK_BODY_LIMIT_BYTES',
      value: { success: 'False', message: bodyTooLarge(limits.bulkBodyLimitBytes) },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'ITFlow Reply Queue',
      version: '1',
      description:
        "Ticket replies, status changes and time worked for ITFlow, queued and applied exactly once. Every answer uses ITFlow v1's envelope: " +
        '`{"success": "True", "count": N, "data": [...]}` or `{"success": "False", "message": "…"}`. Integers may be sent as JSON numbers or decimal strings.\n\n' +
        'The key goes in `X-API-Key`, `Authorization: Bearer <key>` or the query parameter `api_key` (create.php, ITFlow’s create and resolve paths and POST commands.php also take the body field `api_key`). ' +
        'Every answer carries `X-Request-Id` (yours, or one the service made); answers on `/api/` paths carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`. ' +
        'The examples are written for the demo database (`npm run demo`): tickets 1–6, ticket 4 resolved, ticket 5 closed, ticket 6 without a client; ' +
        'keys `demo-admin-key`, `demo-acme-tech-key` (Acme only) and `demo-read-only-key`.',
    },
    servers: [{ url: '/' }],
    security: SECURITY,
    tags: TAGS,
    paths: {
      [CREATE_PATH]: {
        post: commandOperation(
          {
            operationId: 'createReply',
            summary: 'Add a reply, change the status, log time worked',
            description:
              "One command: a reply and/or a status change and/or time worked. Queued by default: 202 with a command_id and a Location to follow it. With `Prefer: wait=N` the intake waits for the worker and answers 201 with insert_id (the new ticket_reply_id; 0 for a status-only command), or the command's failure.\n\n" +
              '`external_id` is your own id for the reply, unique per API key and kept for good: a later command with it answers as the one that made the reply (201 with its insert_id, or 202 with its command_id while it is queued, marked `Idempotent-Replayed`), or 422 when it asks something else; a command that failed leaves it free. `notify: false` (or a key made quiet with `npm run cli -- keys quiet`) writes no notifications and no client email; the audit rows stay.',
          },
          { schema: 'CreateReplyRequest', named: examples.CREATE_REQUESTS },
          `wait=N (N ≤ ${limits.preferWaitMaxSeconds}): wait for the worker and answer 201. respond-async (the default): answer 202 at once.`,
          { status: '201', schema: 'Applied', named: examples.APPLIED },
          examples.createFailures(exampleLimits),
          limits,
        ),
      },
      [BULK_PATH]: {
        post: operation({
          operationId: 'createRepliesInBulk',
          tag: 'bulk',
          summary: 'Many commands in one request',
          description:
            `A JSON array, or NDJSON (one command per line), of up to ${limits.bulkMaxItems} commands, each a create.php body plus ` +
            '`idempotency_key`, `external_id` and `notify`, and for historical imports `created_at` and `author` (a historical item is always quiet). Each item is validated on its own; ' +
            "the answer lists, in order, each item's command_id or its refusal, and valid items are queued even when others are refused. " +
            'The key comes in X-API-Key, Authorization: Bearer or the api_key query parameter (never the body), and is checked before the body is read.',
          parameters: [
            {
              name: 'dry_run',
              in: 'query',
              description:
                '1: validate every item (ticket, scope, author, date) and queue nothing; each valid item answers {"status": "valid"}.',
              schema: { type: 'string', enum: ['0', '1', 'true', 'false'] },
            },
            prefer(
              `wait=N (N ≤ ${limits.preferWaitMaxSeconds}): wait for the worker to apply the queued items — and items replayed from an earlier request whose command is still queued — and answer 200 when all finished. ` +
                'An item whose idempotency key or external_id a request still being accepted holds waits for that request within N, then answers as it.',
            ),
          ],
          requestBody: {
            required: true,
            description: `At most ${limits.bulkMaxItems} commands and BULK_BODY_LIMIT_BYTES (${limits.bulkBodyLimitBytes} bytes).`,
            content: {
              ...json(bulkArray, examples.BULK_REQUESTS),
              'application/x-ndjson': {
                schema: {
                  type: 'string',
                  description: 'One BulkItem as JSON per line (see the application/json items); blank lines are skipped.',
                },
                example: examples.BULK_NDJSON_EXAMPLE,
              },
            },
          },
          responses: {
            '200': answer(
              'Every item answered without anything left queued: dry run, idempotent replays, or (`Prefer: wait=N`) every queued item finished in time.',
              ref('BulkAnswer'),
              examples.BULK_FINISHED,
              { ...API_HEADERS, 'Preference-Applied': header('PreferenceApplied') },
            ),
            '202': answer('At least one item was queued; the others say why not.', ref('BulkAnswer'), examples.BULK_ANSWERS, {
              ...API_HEADERS,
              'Preference-Applied': header('PreferenceApplied'),
            }),
            '400': answer(
              'No item was accepted (each says why), or the body is not an array of commands.',
              { anyOf: [ref('BulkAnswer'), ref('Failure')] },
              examples.BULK_REFUSED,
            ),
            ...failures(bulkFailures, {
              '413': `More than ${limits.bulkMaxItems} commands (NDJSON: \`…; this one has more.\`, as reading stops there), or a body over BULK_BODY_LIMIT_BYTES.`,
            }),
            '503': answer(
              'Redis does not answer: nothing was queued; retry after Retry-After seconds. With REDIS_MIN_REPLICAS_ACK set, also: ' +
                'the items were queued but Redis could not confirm them on enough replicas in time (a Failure); retry with the same ' +
                'idempotency keys, which answer as those commands.',
              { anyOf: [ref('BulkAnswer'), ref('Failure')] },
              examples.BULK_UNAVAILABLE,
              { ...API_HEADERS, ...RETRY_AFTER },
            ),
          },
        }),
      },
      [READ_PATH]: {
        get: readOperation(
          {
            operationId: 'listReplies',
            summary: 'List replies, newest first',
            description:
              "`reply_id` → that reply; `ticket_id` → that ticket's replies; `external_id` → the reply this key's command with that external_id made; none → every reply the key may see. Page with `limit`/`offset`, or the keyset cursor `before_id`. Archived replies only with `include_archived=1`. " +
              "With `ticket_id` and `include_pending=1`, the first page starts with this key's own commands for the ticket that are accepted but not applied yet (`pending: true`, with their `command_id`) — read-your-writes for a UI that just posted. " +
              "Served through the service's read projection of ticket_replies (X-Read-Source, X-Projection-Lag): replies written in ITFlow by any means are listed, as ITFlow's tables have them.",
          },
          readRepliesQuery,
          { schema: 'Replies', named: examples.REPLIES },
          {
            limit: { summary: 'limit=0', value: { success: 'False', message: 'limit must be between 1 and 500.' } },
            includeArchived: {
              summary: 'include_archived=yes',
              value: { success: 'False', message: 'include_archived must be 1 or 0.' },
            },
            pendingWithoutTicket: {
              summary: 'include_pending=1 without ticket_id',
              value: { success: 'False', message: INCLUDE_PENDING_NEEDS_TICKET },
            },
          },
          exampleLimits,
        ),
      },
      [COMMANDS_PATH]: {
        get: operation({
          operationId: 'getCommandStatus',
          tag: 'status',
          summary: 'Where an accepted command is',
          description:
            "The command_id create.php or bulk.php answered (the Location of a 202). Visible only to the key that sent it, for COMMAND_RETENTION_DAYS. `accepted_at`, `finished_at` and `next_try_at` are UTC instants (RFC 3339, milliseconds, Z); a finished command also has `accepted_at_itflow` and `finished_at_itflow`, the same instants on ITFlow's wall clock ('YYYY-MM-DD HH:MM:SS' in `itflow_timezone`, the format of read.php's times): a reply's `ticket_reply_created_at` is normally its command's `accepted_at_itflow`.",
          parameters: queryParameters(commandStatusQuery, { command_id: examples.EXAMPLE_COMMAND_ID }),
          responses: {
            '200': answer("The command's status.", ref('CommandStatus'), examples.COMMAND_STATUSES),
            ...failures(examples.commandStatusFailures(exampleLimits), {
              '404': 'No such command for this key: unknown, sent with another key, or older than COMMAND_RETENTION_DAYS.',
            }),
          },
        }),
        post: operation({
          operationId: 'getCommandOutcomes',
          tag: 'status',
          summary: 'The outcomes of many commands at once',
          description:
            'Up to 1,000 command ids. Finished commands with their outcome; the rest `unfinished` (queued, applying, retrying — or unknown to this key); an id that is no UUID `invalid`. Ids in any letter case, dashes optional; answered in canonical form, in the order asked. Importers poll it while they wait.',
          requestBody: {
            required: true,
            description: `JSON.${KEY_IN_BODY}`,
            content: json(ref('CommandStatusManyRequest'), examples.COMMAND_IDS_REQUESTS),
          },
          responses: {
            '200': answer('One entry per command id, in order.', ref('CommandOutcomes'), examples.COMMAND_OUTCOMES),
            ...failures(examples.commandOutcomesFailures(exampleLimits), {
              '413': `The request body is over BODY_LIMIT_BYTES (${limits.bodyLimitBytes} bytes).`,
            }),
          },
        }),
      },
      [ITFLOW_CREATE_PATH]: {
        post: commandOperation(
          {
            operationId: 'itflowCreateReply',
            summary: "Add a reply on ITFlow's own create path, with its field names",
            description:
              "ITFlow ≥ 2.4.7's `ticket_replies/create.php`: `ticket_reply_type` 'Internal'/'Public', `ticket_reply_time_worked` 'HH:MM:SS', `ticket_status`. " +
              'Waits for the worker by default and answers 201 with insert_id, as ITFlow does; 202 with `Prefer: respond-async`, or when the wait runs out. ' +
              'Where ITFlow silently falls back (an unknown reply type, a malformed time) this answers 400.',
          },
          { schema: 'ItflowCreateReplyRequest', named: examples.ITFLOW_CREATE_REQUESTS },
          waitMost,
          { status: '201', schema: 'Applied', named: examples.APPLIED },
          examples.itflowCreateFailures(exampleLimits),
          limits,
        ),
      },
      [ITFLOW_RESOLVE_PATH]: {
        post: commandOperation(
          {
            operationId: 'itflowResolveTicket',
            summary: "Resolve a ticket on ITFlow's own resolve path",
            description:
              "Resolves the ticket as ITFlow's resolve.php does (status Resolved, a missing first response stamped, the SLA clock stopped, " +
              "the client's resolved email queued when ITFlow's settings say so). A ticket already resolved or closed is refused with 409. " +
              "Waits for the worker by default and answers 200 with ITFlow's update answer; 202 with `Prefer: respond-async`, or when the wait runs out.",
          },
          { schema: 'ItflowResolveRequest', named: examples.ITFLOW_RESOLVE_REQUESTS },
          waitMost,
          { status: '200', schema: 'ItflowUpdated', named: examples.ITFLOW_UPDATED },
          examples.itflowResolveFailures(exampleLimits),
          limits,
        ),
      },
      [ITFLOW_READ_PATH]: {
        get: readOperation(
          {
            operationId: 'itflowListReplies',
            summary: "List replies on ITFlow's own read path, oldest first",
            description:
              "ITFlow ≥ 2.4.7's `ticket_replies/read.php`: `ticket_reply_id` → that reply; `ticket_id` → that ticket's replies; `type` filters by reply type. Rows carry the ticket's reference and the author's name, as ITFlow adds them.",
          },
          itflowReadRepliesQuery,
          { schema: 'ItflowReplies', named: examples.ITFLOW_REPLIES },
          { type: { summary: 'type=Email', value: { success: 'False', message: 'type must be Internal, Public or Client.' } } },
          exampleLimits,
        ),
      },
      '/': {
        get: operationsPath({
          operationId: 'getIndex',
          summary: 'Where things are',
          description: 'A browser (Accept: text/html) is sent on to /docs; anyone else gets the links as JSON.',
          responses: {
            '200': answer(
              'The links.',
              { type: 'object', additionalProperties: { type: 'string' } },
              {
                links: { summary: 'The links', value: examples.INDEX },
              },
              ANSWER_HEADERS,
            ),
            '302': { description: 'To /docs, for a browser.', headers: { ...ANSWER_HEADERS, ...LOCATION } },
          },
        }),
      },
      '/healthz': {
        get: operationsPath({
          operationId: 'getHealth',
          summary: 'The process is alive',
          description: 'Liveness: answers 200 while the process runs, whatever MySQL and Redis do.',
          responses: {
            '200': answer(
              'Alive.',
              responseSchema(health),
              { ok: { summary: 'Alive', value: { status: 'ok' } } },
              ANSWER_HEADERS,
            ),
          },
        }),
      },
      '/readyz': {
        get: operationsPath({
          operationId: 'getReadiness',
          summary: 'MySQL and Redis answer',
          description: "Readiness: MySQL and Redis both answer (each within 2 s) and ITFlow's schema was detected at start-up.",
          responses: {
            '200': answer('Ready.', ref('Readiness'), examples.READY, ANSWER_HEADERS),
            '503': answer('Not ready: which one is down.', ref('Readiness'), examples.NOT_READY, {
              ...ANSWER_HEADERS,
              ...RETRY_AFTER,
            }),
          },
        }),
      },
      '/metrics': {
        get: operationsPath({
          operationId: 'getMetrics',
          summary: "This process's metrics, for Prometheus",
          description: 'Prometheus text format 0.0.4. No key: expose it to your monitoring network only.',
          responses: {
            '200': {
              description: 'The metrics.',
              headers: ANSWER_HEADERS,
              content: {
                'text/plain': {
                  schema: { type: 'string' },
                  example:
                    '# HELP replyqueue_commands_accepted_total Commands queued, by the endpoint they came in on.\n' +
                    '# TYPE replyqueue_commands_accepted_total counter\nreplyqueue_commands_accepted_total{endpoint="create"} 42\n',
                },
              },
            },
          },
        }),
      },
      '/openapi.json': {
        get: operationsPath({
          operationId: 'getOpenApiDocument',
          summary: 'This document',
          description: 'The OpenAPI 3.1 document Swagger UI at /docs shows.',
          responses: {
            '200': {
              description: 'The document.',
              headers: ANSWER_HEADERS,
              content: json({
                type: 'object',
                properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } },
                required: ['openapi', 'info', 'paths'],
              }),
            },
          },
        }),
      },
    },
    // What the service sends: completion webhooks (docs/webhooks.md).
    webhooks: webhookOperations(),
    components: {
      securitySchemes: {
        ApiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: "An ITFlow API key's secret." },
        BearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'The same secret as `Authorization: Bearer <key>` (X-API-Key wins when both are sent).',
        },
        ApiKeyQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'api_key',
          description:
            'The same secret as a query parameter. create.php, ITFlow’s create and resolve paths and POST commands.php also take it as the JSON body field `api_key`.',
        },
      },
      parameters: {
        RequestId: {
          name: 'X-Request-Id',
          in: 'header',
          description:
            'Your own id for this request (printable ASCII, at most 128 characters): answered back in X-Request-Id and logged as reqId. Without it the service makes one.',
          schema: { type: 'string', maxLength: 128 },
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          description:
            'Makes retries safe (e.g. `rmm-alert-4711-ack`): the same key and request answer as the first did, never a second reply; the same key with another request is 422. Wins over the body field `idempotency_key`. At most 255 characters, not ending with a space.',
          schema: { type: 'string', maxLength: 255 },
        },
      },
      headers: {
        RequestId: {
          description:
            "The request's id: the client's X-Request-Id when it sent a usable one, else a new UUID. Quote it when asking about a request.",
          schema: { type: 'string' },
          example: examples.EXAMPLE_REQUEST_ID,
        },
        RateLimitLimit: {
          description:
            'Requests allowed in the current one-minute window by the limit nearest to running out (per API key or per client IP), or by the one that refused the request. Absent when both limits are 0, or while Redis does not answer (the limits are then not enforced).',
          schema: { type: 'integer' },
          example: limits.perKeyPerMinute || limits.perIpPerMinute,
        },
        RateLimitRemaining: {
          description: 'Requests that limit still allows in the window.',
          schema: { type: 'integer' },
          example: Math.max(0, (limits.perKeyPerMinute || limits.perIpPerMinute) - 1),
        },
        RateLimitReset: { description: 'Seconds until the window ends.', schema: { type: 'integer' }, example: 42 },
        RetryAfter: { description: 'Seconds to wait before trying again.', schema: { type: 'integer' }, example: 5 },
        Location: {
          description: 'Where to follow the command.',
          schema: { type: 'string' },
          example: `${COMMANDS_PATH}?command_id=${examples.EXAMPLE_COMMAND_ID}`,
        },
        IdempotentReplayed: {
          description:
            'true: this is the answer of an earlier request with the same Idempotency-Key, or of the command that holds this external_id; nothing new was done.',
          schema: { type: 'string', enum: ['true'] },
        },
        PreferenceApplied: {
          description: 'The wait honoured, as `wait=N` (RFC 7240).',
          schema: { type: 'string' },
          example: 'wait=5',
        },
        Allow: { description: 'The methods this path takes.', schema: { type: 'string' }, example: 'POST' },
        ReadSource: {
          description:
            "What answered the listing: `projection` (the service's read projection found the page; the rows are read from ticket_replies), or `itflow` (ITFlow's tables alone: a reply_id, or the projection being built or more than PROJECTION_MAX_LAG_SECONDS behind). The rows are the same either way.",
          schema: { type: 'string', enum: ['projection', 'itflow'] },
          example: 'projection',
        },
        ProjectionLag: {
          description:
            'Seconds since the read projection last caught up with ticket_replies (replies added, edited, archived or deleted in ITFlow show at once regardless), or `building` while it is being built.',
          schema: { type: 'string', pattern: '^(\\d+\\.\\d{3}|building)$' },
          example: '0.231',
        },
      },
      schemas: {
        CreateReplyRequest: requestSchema(createReplyRequest),
        ItflowCreateReplyRequest: requestSchema(itflowCreateReplyRequest),
        ItflowResolveRequest: requestSchema(itflowResolveRequest),
        BulkItem: requestSchema(bulkItemRequest),
        CommandStatusManyRequest: requestSchema(commandStatusManyRequest),
        Failure: responseSchema(failure),
        Queued: responseSchema(queued),
        Applied: responseSchema(applied),
        ItflowUpdated: responseSchema(itflowUpdated),
        BulkAnswer: responseSchema(bulkAnswer),
        Replies: responseSchema(successEnvelope(z.union([replyRow, pendingRow]))),
        ItflowReplies: responseSchema(successEnvelope(itflowReplyRow)),
        CommandStatus: responseSchema(commandStatus),
        CommandOutcomes: responseSchema(finishedOrUnfinished),
        Readiness: responseSchema(readiness),
        ...WEBHOOK_SCHEMAS,
      },
    },
  };
}
