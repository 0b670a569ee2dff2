import { z } from 'zod';
import { bulkItemRequest } from '../commands/bulkItem.js';
import { createReplyRequest } from '../commands/createReply.js';
import { INTEGER_LIKE, type IntegerBounds, REQUIRED } from '../commands/fields.js';
import { itflowCreateReplyRequest } from '../commands/itflowCreateReply.js';
import { itflowResolveRequest } from '../commands/itflowResolve.js';
import {
  commandStatusManyRequest,
  commandStatusQuery,
  itflowReadRepliesQuery,
  readRepliesQuery,
} from '../commands/readReplies.js';
import { COMMANDS_PATH } from './accept.js';
import { BULK_PATH } from './routes/bulk.js';
import { CREATE_PATH, ITFLOW_CREATE_PATH, ITFLOW_RESOLVE_PATH } from './routes/createReply.js';
import { ITFLOW_READ_PATH, NO_RESOURCE, READ_PATH } from './routes/readReplies.js';

/**
 * The OpenAPI 3.1 document of the intake, generated from the zod schemas that validate its
 * requests (z.toJSONSchema, input side, JSON Schema 2020-12 — OpenAPI 3.1's dialect). The
 * fields' transforms check more than zod can express, so each field carries annotations
 * (src/commands/fields.ts) that become plain JSON Schema here; the response shapes, which
 * nothing validates, are written below as zod schemas too.
 */
type Json = Record<string, any>;

export interface DocumentLimits {
  bulkMaxItems: number;
  preferWaitMaxSeconds: number;
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

/** A request schema as JSON Schema 2020-12: what a client may send. */
export function requestSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    override: ({ jsonSchema }) => integerLike(jsonSchema as Json),
  }) as Json;
  delete json.$schema;
  liftRequired(json);
  return json;
}

/** A response shape as JSON Schema (output side: what the service sends). */
function responseSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12' }) as Json;
  delete json.$schema;
  return json;
}

/** Query parameters from a query schema: on the wire every value is text, so integers read as such. */
function queryParameters(schema: z.ZodType): Json[] {
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
      "Every ticket_replies column, as ITFlow's v1 read endpoints send it: every value a string, NULL as null, DATETIME as 'YYYY-MM-DD HH:MM:SS'.",
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
const timesAndAttempts = { accepted_at: z.iso.datetime(), finished_at: z.iso.datetime(), attempts: z.int().min(1) };
const commandStatus = successEnvelope(
  z.discriminatedUnion('status', [
    z.object({ command_id: commandId, ticket_id: z.int(), status: z.enum(['queued', 'applying']) }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      status: z.literal('retrying'),
      attempts: z.int(),
      next_try_at: z.iso.datetime(),
    }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
      status: z.literal('applied'),
      insert_id: z.int(),
      ...timesAndAttempts,
    }),
    z.object({
      command_id: commandId,
      ticket_id: z.int(),
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
});

// Headers and the failure answers every endpoint shares.
const header = (description: string, schema: Json = { type: 'string' }) => ({ description, schema });
const LOCATION = header('Where to follow the command: commands.php?command_id=…');
const RETRY_AFTER = header('Seconds to wait before retrying.', { type: 'integer' });
const failureResponse = (description: string, headers?: Json) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ref('Failure') } },
});
const FAILURES: Record<string, Json> = {
  '400': failureResponse('Invalid input: the message names the field. Nothing was written.'),
  '401': failureResponse('Authentication failed. API key is invalid or has expired.'),
  '403': failureResponse("The key's user may not do this (no permission, inactive or archived user)."),
  '404': failureResponse("Unknown ticket, reply or command, or outside the key's client scope."),
  '409': failureResponse(
    '`Ticket is closed.` (resolve.php: also `Ticket is already resolved.`), or a request with the same idempotency key is still being accepted (with Retry-After: 1).',
    { 'Retry-After': RETRY_AFTER },
  ),
  '413': failureResponse('The request body is too large.'),
  '415': failureResponse('The body is not JSON (send Content-Type: application/json).'),
  '422': failureResponse('The idempotency key was already used for a different request.'),
  '429': failureResponse('Too many requests from this API key or IP address this minute: retry after Retry-After seconds.', {
    'Retry-After': RETRY_AFTER,
  }),
  '503': failureResponse('MySQL or Redis is unreachable: retry after Retry-After seconds.', { 'Retry-After': RETRY_AFTER }),
};
const failures = (...codes: string[]) => Object.fromEntries(codes.map((code) => [code, FAILURES[code]]));
const json = (schema: Json) => ({ 'application/json': { schema } });

const SECURITY = [{ ApiKeyHeader: [] }, { ApiKeyQuery: [] }];
const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  description: 'Makes retries safe: the same key and request answer as the first did; wins over the body field.',
  schema: { type: 'string', maxLength: 255 },
};
const preferHeader = (description: string) => ({ name: 'Prefer', in: 'header', description, schema: { type: 'string' } });

function createOperation(
  summary: string,
  description: string,
  body: string,
  limits: DocumentLimits,
  prefer: string,
  applied: { status: string; schema: string } = { status: '201', schema: 'Applied' },
): Json {
  return {
    summary,
    description,
    security: SECURITY,
    parameters: [IDEMPOTENCY_KEY, preferHeader(prefer)],
    requestBody: {
      required: true,
      description: 'JSON. Unknown fields are ignored; the key may also come as the field `api_key`.',
      content: json(ref(body)),
    },
    responses: {
      [applied.status]: {
        description: `Applied (the client waited, up to ${limits.preferWaitMaxSeconds} s).`,
        headers: {
          Location: LOCATION,
          'Preference-Applied': header('wait=N, as honoured.'),
          'Idempotent-Replayed': header('true when this is the answer of an earlier request with the same key.'),
        },
        content: json(ref(applied.schema)),
      },
      '202': {
        description: 'Accepted and queued (or the wait ran out): follow the Location.',
        headers: { Location: LOCATION, 'Idempotent-Replayed': header('true when replayed.') },
        content: json(ref('Queued')),
      },
      ...failures('400', '401', '403', '404', '409', '413', '415', '422', '429', '503'),
    },
  };
}

function readOperation(summary: string, description: string, query: z.ZodType, replies: string): Json {
  return {
    summary,
    description,
    security: SECURITY,
    parameters: queryParameters(query),
    responses: {
      '200': {
        description: 'The replies; `count` is the number of rows returned.',
        content: json(ref(replies)),
      },
      ...failures('400', '401', '403'),
      '404': failureResponse(`Nothing found: \`${NO_RESOURCE}\``),
      ...failures('429', '503'),
    },
  };
}

/** The whole document. Pure: the same schemas and limits give the same document. */
export function buildOpenApiDocument(limits: DocumentLimits): Json {
  const bulkArray = { type: 'array', minItems: 1, maxItems: limits.bulkMaxItems, items: ref('BulkItem') };
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'ITFlow Reply Queue',
      version: '1',
      description:
        "Ticket replies, status changes and time worked for ITFlow, queued and applied exactly once. Every answer uses ITFlow v1's envelope: " +
        '`{"success": "True", "count": N, "data": [...]}` or `{"success": "False", "message": "…"}`. Integers may be sent as JSON numbers or decimal strings.',
    },
    servers: [{ url: '/' }],
    security: SECURITY,
    paths: {
      [CREATE_PATH]: {
        post: createOperation(
          'Add a reply and/or change the status and/or log time worked',
          "Queued by default: 202 with a command_id. With `Prefer: wait=N` the intake waits for the worker and answers 201 with insert_id, or the command's failure.",
          'CreateReplyRequest',
          limits,
          `wait=N (N ≤ ${limits.preferWaitMaxSeconds}): wait for the worker. respond-async: answer 202 at once (the default).`,
        ),
      },
      [BULK_PATH]: {
        post: {
          summary: 'Many commands in one request (imports, high-volume integrations)',
          description:
            `A JSON array, or NDJSON (one command per line), of up to ${limits.bulkMaxItems} commands. Each item is validated on its own; ` +
            "the answer lists, in order, each item's command_id or its refusal. The key comes in the X-API-Key header or the api_key query parameter.",
          security: SECURITY,
          parameters: [
            {
              name: 'dry_run',
              in: 'query',
              description: '1: validate every item, queue nothing (each valid item answers {"status": "valid"}).',
              schema: { type: 'string', enum: ['0', '1', 'true', 'false'] },
            },
            preferHeader(`wait=N (N ≤ ${limits.preferWaitMaxSeconds}): wait for the worker to apply the queued items.`),
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: bulkArray },
              'application/x-ndjson': {
                schema: { type: 'string', description: 'One BulkItem as JSON per line.' },
                itemSchema: ref('BulkItem'),
              },
            },
          },
          responses: {
            '200': {
              description: 'Every item answered without queueing anything new (dry run, replays, or all applied while waiting).',
              content: json(ref('BulkAnswer')),
            },
            '202': { description: 'At least one item was queued.', content: json(ref('BulkAnswer')) },
            '400': {
              description: 'No item was accepted (each says why), or the body is not an array of commands.',
              content: json({ anyOf: [ref('BulkAnswer'), ref('Failure')] }),
            },
            ...failures('401', '403'),
            '413': failureResponse(`The body is too large, or carries more than ${limits.bulkMaxItems} commands.`),
            ...failures('415', '429'),
            '503': {
              description: 'Nothing could be queued: Redis is unreachable.',
              headers: { 'Retry-After': RETRY_AFTER },
              content: json({ anyOf: [ref('BulkAnswer'), ref('Failure')] }),
            },
          },
        },
      },
      [READ_PATH]: {
        get: readOperation(
          'List replies, newest first',
          "`reply_id` → that reply; `ticket_id` → that ticket's replies; neither → every reply the key may see. Page with `limit`/`offset`, or the keyset cursor `before_id`.",
          readRepliesQuery,
          'Replies',
        ),
      },
      [COMMANDS_PATH]: {
        get: {
          summary: 'Where an accepted command is',
          description: 'Visible only to the key that sent it, for COMMAND_RETENTION_DAYS.',
          security: SECURITY,
          parameters: queryParameters(commandStatusQuery),
          responses: {
            '200': { description: "The command's status.", content: json(ref('CommandStatus')) },
            ...failures('400', '401', '403', '404', '429', '503'),
          },
        },
        post: {
          summary: 'The outcome of many commands at once',
          description:
            'Finished commands with their outcome; the rest `unfinished`; an id that is no UUID `invalid`. Ids in any letter case, dashes optional; answered in canonical form.',
          security: SECURITY,
          requestBody: { required: true, content: json(ref('CommandStatusManyRequest')) },
          responses: {
            '200': { description: 'One entry per command id, in order.', content: json(ref('CommandOutcomes')) },
            ...failures('400', '401', '403', '413', '415', '429', '503'),
          },
        },
      },
      [ITFLOW_CREATE_PATH]: {
        post: createOperation(
          "ITFlow ≥ 2.4.7's own create path and field names",
          'Waits for the worker by default and answers 201 with insert_id, as ITFlow does; 202 with `Prefer: respond-async`, or when the wait runs out.',
          'ItflowCreateReplyRequest',
          limits,
          `respond-async or wait=0: answer 202 at once. wait=N: wait at most N s (default and most: ${limits.preferWaitMaxSeconds}).`,
        ),
      },
      [ITFLOW_RESOLVE_PATH]: {
        post: createOperation(
          "ITFlow's own resolve path: resolve a ticket",
          "Resolves the ticket as ITFlow's resolve.php does (status Resolved, a missing first response stamped, the SLA clock stopped, " +
            "the client's resolved email queued when ITFlow's settings say so). A ticket already resolved or closed is refused. " +
            "Waits for the worker by default and answers 200 with ITFlow's update answer; 202 with `Prefer: respond-async`, or when the wait runs out.",
          'ItflowResolveRequest',
          limits,
          `respond-async or wait=0: answer 202 at once. wait=N: wait at most N s (default and most: ${limits.preferWaitMaxSeconds}).`,
          { status: '200', schema: 'ItflowUpdated' },
        ),
      },
      [ITFLOW_READ_PATH]: {
        get: readOperation(
          "ITFlow ≥ 2.4.7's own read path: replies oldest first",
          "`ticket_reply_id` → that reply; `ticket_id` → that ticket's replies; `type` filters by reply type.",
          itflowReadRepliesQuery,
          'ItflowReplies',
        ),
      },
      '/healthz': {
        get: {
          summary: 'The process is alive',
          security: [],
          responses: { '200': { description: 'Alive.', content: json(responseSchema(health)) } },
        },
      },
      '/readyz': {
        get: {
          summary: 'MySQL and Redis answer',
          security: [],
          responses: {
            '200': { description: 'Ready.', content: json(ref('Readiness')) },
            '503': { description: 'Not ready.', headers: { 'Retry-After': RETRY_AFTER }, content: json(ref('Readiness')) },
          },
        },
      },
    },
    components: {
      securitySchemes: {
        ApiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: "An ITFlow API key's secret." },
        ApiKeyQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'api_key',
          description:
            'The same key as a query parameter (create.php and commands.php also take it as the body field `api_key`).',
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
        Replies: responseSchema(successEnvelope(replyRow)),
        ItflowReplies: responseSchema(successEnvelope(itflowReplyRow)),
        CommandStatus: responseSchema(commandStatus),
        CommandOutcomes: responseSchema(finishedOrUnfinished),
        Readiness: responseSchema(readiness),
      },
    },
  };
}
