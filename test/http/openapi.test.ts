import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDemo } from '../../src/cli/demo.js';
import { createReplyRequest } from '../../src/commands/createReply.js';
import { loadConfig } from '../../src/config.js';
import { databaseName } from '../../src/db/pool.js';
import { DEMO_KEYS, seedDemoData } from '../../src/demo/seed.js';
import { EXAMPLE_COMMAND_ID } from '../../src/http/openapiExamples.js';
import { createLogger } from '../../src/logger.js';
import { type RunningService, startService } from '../../src/service.js';
import { type Answer, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE, ITFLOW_READ, ITFLOW_RESOLVE, READ } from '../helpers/paths.js';

/**
 * The OpenAPI document and the docs page, against the running intake: the document is valid
 * OpenAPI 3.1, lists every endpoint, its request schemas accept and refuse what the intake does,
 * each operation's default example answers as documented, every error example is the answer the
 * service really gives, and the answers' headers are the documented ones.
 */

type Json = Record<string, any>;

/** Inlines the document's `#/components/...` references, so a schema can be compiled alone. */
function resolved(schema: unknown, doc: Json): any {
  if (Array.isArray(schema)) return schema.map((item) => resolved(item, doc));
  if (!schema || typeof schema !== 'object') return schema;
  const { $ref, ...rest } = schema as Json;
  if (typeof $ref === 'string') {
    const target = $ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((node: Json, key) => node[key], doc);
    return resolved({ ...target, ...rest }, doc);
  }
  return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, resolved(value, doc)]));
}

/** Every operation of the document: path, method and the operation object (references resolved). */
function operationsOf(doc: Json): Array<{ path: string; method: string; op: Json }> {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => ({ path, method, op: resolved(op, doc) })),
  );
}

/** Command ids and waiting times vary from run to run; the rest of a message does not. */
function normalized(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value)
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
      .replace(/Retry in \d+ seconds/g, 'Retry in N seconds'),
  );
}

/** Headers the service sets on purpose; an answer carrying one its operation does not document is a finding. */
const SERVICE_HEADERS = [
  'X-Request-Id',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Retry-After',
  'Location',
  'Idempotent-Replayed',
  'Preference-Applied',
  'Allow',
  'X-Read-Source',
  'X-Projection-Lag',
];

/** What an answer shows that its documented response does not say (status, headers, body shape). */
function undocumented(answer: Answer, response: Json | undefined, validate: (schema: unknown, body: unknown) => boolean) {
  if (!response) return [`status ${answer.status}`];
  const documented = Object.keys(response.headers ?? {}).map((name) => name.toLowerCase());
  const problems = SERVICE_HEADERS.filter((name) => answer.headers.has(name) && !documented.includes(name.toLowerCase())).map(
    (name) => `header ${name}`,
  );
  if (!answer.headers.has('X-Request-Id')) problems.push('no X-Request-Id');
  const media = answer.headers.get('content-type')?.split(';')[0] ?? '';
  const schema = response.content?.[media]?.schema;
  if (media === 'application/json' && !(schema && validate(schema, answer.body))) problems.push('body shape');
  return problems;
}

const TAGS = ['commands', 'bulk', 'read', 'status', 'operations'];
/** Two keys the demo lacks, added for the 403 examples: a user without ticket access, an archived user. */
const NO_TICKETS_KEY = 'docs-no-tickets-key';
const ARCHIVED_USER_KEY = 'docs-archived-user-key';
const BODY_LIMIT = 16_384;
const BULK_BODY_LIMIT = 65_536;

async function addForbiddenKeys(h: Harness): Promise<void> {
  await h.query(`INSERT INTO user_roles (role_id, role_name, role_description, role_is_admin) VALUES (4, 'No tickets', '', 0)`);
  await h.query(
    `INSERT INTO users (user_id, user_name, user_email, user_password, user_role_id, user_archived_at) VALUES
       (4, 'Nora No-Tickets', 'nora@msp.example', '!', 4, NULL), (5, 'Archie Archived', 'archie@msp.example', '!', 1, NOW())`,
  );
  await h.query(
    `INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, api_key_user_id) VALUES
       ('Docs no tickets', ?, '', '2099-12-31', 4), ('Docs archived user', ?, '', '2099-12-31', 5)`,
    [NO_TICKETS_KEY, ARCHIVED_USER_KEY],
  );
}

describe('OpenAPI document and docs page', () => {
  let h: Harness;
  let doc: Json;
  const ajv = new Ajv2020({ allowUnionTypes: true, strictTypes: false });
  ajv.addVocabulary(['x-integer-like']);
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  const validator = (schema: unknown) => ajv.compile(resolved(schema, doc));
  const valid = (schema: unknown, body: unknown) => validator(schema)(body);
  const requestBody = (path: string) => doc.paths[path].post.requestBody.content['application/json'].schema;

  beforeAll(async () => {
    // The intake alone: accepted commands stay queued, so every example meets the same tickets.
    // ITFlow's address for client mail, as the demo has it: public_reply_type 2 is then accepted.
    h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: {
        ITFLOW_BASE_URL: 'itflow.demo.example',
        BODY_LIMIT_BYTES: String(BODY_LIMIT),
        BULK_BODY_LIMIT_BYTES: String(BULK_BODY_LIMIT),
      },
    });
    await seedDemoData(h.config.DATABASE_URL);
    await addForbiddenKeys(h);
    doc = (await h.get('/openapi.json')).body;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves an OpenAPI 3.1 document, without an API key, naming every endpoint the intake serves', async () => {
    const answer = await h.get('/openapi.json');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(doc.openapi).toMatch(/^3\.1\./);
    // OpenAPI 3.1's default dialect (JSON Schema 2020-12 with its vocabulary); Swagger UI warns about any other.
    expect(doc).not.toHaveProperty('jsonSchemaDialect');
    const operations = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        `POST ${CREATE}`,
        `POST ${BULK}`,
        `GET ${READ}`,
        `GET ${COMMANDS}`,
        `POST ${COMMANDS}`,
        `POST ${ITFLOW_CREATE}`,
        `GET ${ITFLOW_READ}`,
        `POST ${ITFLOW_RESOLVE}`,
        'GET /',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'GET /openapi.json',
      ].sort(),
    );
  });

  it('is valid OpenAPI for @apidevtools/swagger-parser (schema, references, no 3.2-only keywords)', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('gives every operation a unique operationId, one known tag, a summary, a 405 and the request id header', () => {
    const operations = operationsOf(doc);
    const ids = operations.map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.tags.map((tag: Json) => tag.name)).toEqual(TAGS);
    const shapes = operations.map(({ path, method, op }) => ({
      operation: `${method} ${path}`,
      tags: op.tags.length === 1 && TAGS.includes(op.tags[0]),
      summary: typeof op.summary === 'string' && op.summary.length > 0,
      wrongMethod: op.responses['405']?.content['application/json'].examples.wrongMethod.value.success === 'False',
      allow: 'Allow' in (op.responses['405']?.headers ?? {}),
      requestId: Object.values(op.responses as Json).every((response: Json) => 'X-Request-Id' in (response.headers ?? {})),
    }));
    expect(shapes).toEqual(
      shapes.map((s) => ({ ...s, tags: true, summary: true, wrongMethod: true, allow: true, requestId: true })),
    );
    // Every /api/ answer but a 405 (refused before any route, so never counted) carries the limits.
    const unlimited = operations
      .filter(({ path }) => path.startsWith('/api/'))
      .flatMap(({ path, method, op }) =>
        Object.entries(op.responses as Json)
          .filter(([status, response]) => !['405', 'default'].includes(status) && !('RateLimit-Remaining' in response.headers))
          .map(([status]) => `${method} ${path} ${status}`),
      );
    expect(unlimited).toEqual([]);
    const byTag = Object.fromEntries(TAGS.map((tag) => [tag, operationsOf(doc).filter(({ op }) => op.tags[0] === tag).length]));
    expect(byTag).toEqual({ commands: 3, bulk: 1, read: 2, status: 2, operations: 5 });
  });

  it('documents the key as X-API-Key, Authorization: Bearer or api_key, and the create headers', () => {
    expect(doc.components.securitySchemes).toEqual({
      ApiKeyHeader: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      BearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      ApiKeyQuery: expect.objectContaining({ type: 'apiKey', in: 'query', name: 'api_key' }),
    });
    const create = resolved(doc.paths[CREATE].post, doc);
    expect(create.security).toEqual([{ ApiKeyHeader: [] }, { BearerAuth: [] }, { ApiKeyQuery: [] }]);
    expect(create.parameters.map((p: Json) => `${p.in} ${p.name}`)).toEqual([
      'header Idempotency-Key',
      'header Prefer',
      'header X-Request-Id',
    ]);
    expect(Object.keys(create.responses).sort()).toEqual(
      ['201', '202', '400', '401', '403', '404', '405', '409', '413', '415', '422', '429', '503', 'default'].sort(),
    );
    expect(Object.keys(create.responses['202'].headers)).toEqual(
      expect.arrayContaining(['Location', 'Idempotent-Replayed', 'X-Request-Id', 'RateLimit-Limit']),
    );
    expect(Object.keys(create.responses['429'].headers)).toContain('Retry-After');
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(resolved(doc.paths[COMMANDS].get.parameters, doc)).toEqual([
      expect.objectContaining({ name: 'command_id', in: 'query', required: true }),
      expect.objectContaining({ name: 'X-Request-Id', in: 'header' }),
    ]);
    expect(Object.keys(doc.paths[BULK].post.requestBody.content)).toEqual(['application/json', 'application/x-ndjson']);
  });

  it('every example is valid against the schema it illustrates', () => {
    const invalid = [];
    let checked = 0;
    for (const { path, method, op } of operationsOf(doc)) {
      const media = [
        ...Object.entries(op.requestBody?.content ?? {}).map(([type, m]) => [`request ${type}`, m]),
        ...Object.entries(op.responses as Json).flatMap(([status, response]) =>
          Object.entries((response as Json).content ?? {}).map(([type, m]) => [`${status} ${type}`, m]),
        ),
      ] as Array<[string, Json]>;
      for (const [where, m] of media) {
        if (!where.endsWith('application/json')) continue;
        for (const [name, example] of Object.entries((m.examples ?? {}) as Json)) {
          checked++;
          if (!valid(m.schema, example.value)) invalid.push(`${method} ${path} ${where} ${name}`);
        }
      }
    }
    expect(invalid).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });

  it('accepts every request example of the document (commands queued at once, bulk items in a dry run)', async () => {
    const answers = [];
    for (const { path, op } of operationsOf(doc).filter(({ op }) => op.requestBody)) {
      const bulk = path === BULK;
      const target = bulk ? `${path}?dry_run=1` : path;
      const headers = { 'X-API-Key': DEMO_KEYS.admin, Prefer: 'respond-async' };
      for (const [name, example] of Object.entries(op.requestBody.content['application/json'].examples as Json)) {
        const answer = await httpRequest(h.url, 'POST', target, example.value, headers);
        const accepted = answer.status < 300 && (!bulk || answer.body.data.every((item: Json) => item.status === 'valid'));
        answers.push({ example: `${op.operationId} ${name}`, status: answer.status, accepted });
      }
      if (bulk) {
        const ndjson = op.requestBody.content['application/x-ndjson'].example;
        const answer = await httpRequest(h.url, 'POST', target, ndjson, { ...headers, 'Content-Type': 'application/x-ndjson' });
        const accepted = answer.status === 200 && answer.body.data.every((item: Json) => item.status === 'valid');
        answers.push({ example: `${op.operationId} ndjson`, status: answer.status, accepted });
      }
    }
    expect(answers.length).toBeGreaterThanOrEqual(11);
    expect(answers).toEqual(answers.map((a) => ({ ...a, accepted: true })));
  });

  /**
   * How to provoke each documented failure example on the demo data; compared with the answer
   * the service gives (ids and waiting times aside). 503s need MySQL or Redis down
   * (test/faults/): their examples are built from the same error classes the intake throws.
   */
  it('every failure example is the answer the service gives to such a request', async () => {
    // Intakes beside it whose limits are 1 a minute (counted in the same Redis, so already spent):
    // their 429s, and their documents showing them.
    const limitedPeer = async (env: Record<string, string>) => {
      const url = (await h.startPeer({ intake: true, worker: false }, env)).url ?? '';
      return { url, doc: (await httpRequest(url, 'GET', '/openapi.json', undefined)).body as Json };
    };
    const peers: Record<string, { url: string; doc: Json }> = {
      perKey: await limitedPeer({ RATE_LIMIT_PER_KEY_PER_MINUTE: '1' }),
      perIp: await limitedPeer({ RATE_LIMIT_PER_IP_PER_MINUTE: '1' }),
    };
    const admin = DEMO_KEYS.admin;
    type Call = (key: string | undefined, body?: unknown, headers?: Record<string, string>, url?: string) => Promise<Answer>;
    const at = (method: string, path: string, asyncByDefault = false): Call => {
      return (key, body, headers = {}, url = h.url) =>
        httpRequest(url, method, path, body, {
          ...(asyncByDefault ? { Prefer: 'respond-async' } : {}),
          ...(key ? { 'X-API-Key': key } : {}),
          ...headers,
        });
    };
    const textBody = { 'Content-Type': 'text/plain' };
    const tooLarge = (limit: number) => JSON.stringify({ ticket_id: 1, ticket_reply: 'x'.repeat(limit) });
    /** The failures every API operation shares: key, permission, method, rate limit. */
    const common = (call: Call, wrongMethod: () => Promise<Answer>, body: unknown, reader: boolean) => ({
      '401 wrongKey': () => call('not-a-demo-key', body),
      '403 noPermission': () => call(reader ? NO_TICKETS_KEY : DEMO_KEYS.readOnly, body),
      '403 inactiveUser': () => call(ARCHIVED_USER_KEY, body),
      '405 wrongMethod': wrongMethod,
      '429 perKey': async () => {
        await call(admin, body, {}, peers.perKey?.url);
        return call(admin, body, {}, peers.perKey?.url);
      },
      '429 perIp': async () => {
        await call(admin, body, {}, peers.perIp?.url);
        return call(admin, body, {}, peers.perIp?.url);
      },
    });
    const idempotencyReuse = (call: Call, first: unknown, second: unknown) => async () => {
      const key = { 'Idempotency-Key': 'helpdesk-app-2-0f9c1e' };
      await call(admin, first, key);
      return call(admin, second, key);
    };

    const create = at('POST', CREATE);
    const itflowCreate = at('POST', ITFLOW_CREATE, true);
    const resolve = at('POST', ITFLOW_RESOLVE, true);
    const bulk = at('POST', BULK);
    const commandsPost = at('POST', COMMANDS);
    const reply = { ticket_id: 1, ticket_reply: 'Checked again.' };
    const recipes: Record<string, Record<string, () => Promise<Answer>>> = {
      createReply: {
        ...common(create, () => at('GET', CREATE)(admin), reply, false),
        '400 missingTicket': () => create(admin, { ticket_reply: 'Which ticket?' }),
        '400 nothingToDo': () => create(admin, { ticket_id: 1 }),
        '400 minutes': () => create(admin, { ticket_id: 1, ticket_reply: 'x', minutes: 75 }),
        '404 outOfScope': () => create(DEMO_KEYS.acmeTechnician, { ticket_id: 3, ticket_reply: 'x' }),
        '409 closed': () => create(admin, { ticket_id: 5, ticket_reply: 'x' }),
        '413 bodyTooLarge': () => create(admin, tooLarge(BODY_LIMIT), { 'Content-Type': 'application/json' }),
        '415 notJson': () => create(admin, 'ticket_id=1', textBody),
        '422 keyReused': idempotencyReuse(
          create,
          { ticket_id: 2, ticket_reply: 'First.' },
          { ticket_id: 2, ticket_reply: 'Second.' },
        ),
        '400 emailButQuiet': () => create(admin, { ticket_id: 2, ticket_reply: 'x', public_reply_type: 2, notify: false }),
        '422 externalIdReused': async () => {
          await create(admin, { ticket_id: 2, ticket_reply: 'Chat message.', external_id: 'chat-msg-88412' });
          return create(admin, { ticket_id: 2, ticket_reply: 'Chat message, edited.', external_id: 'chat-msg-88412' });
        },
      },
      itflowCreateReply: {
        ...common(itflowCreate, () => at('GET', ITFLOW_CREATE)(admin), reply, false),
        '400 replyType': () => itflowCreate(admin, { ...reply, ticket_reply_type: 'Email' }),
        '400 timeWorked': () => itflowCreate(admin, { ...reply, ticket_reply_time_worked: '1h' }),
        '400 nothingToDo': () => itflowCreate(admin, { ticket_id: 1 }),
        '404 outOfScope': () => itflowCreate(DEMO_KEYS.acmeTechnician, { ticket_id: 3, ticket_reply: 'x' }),
        '409 closed': () => itflowCreate(admin, { ticket_id: 5, ticket_reply: 'x' }),
        '413 bodyTooLarge': () => itflowCreate(admin, tooLarge(BODY_LIMIT), { 'Content-Type': 'application/json' }),
        '415 notJson': () => itflowCreate(admin, 'ticket_id=1', textBody),
        '422 keyReused': idempotencyReuse(
          itflowCreate,
          { ticket_id: 2, ticket_reply: 'One.' },
          { ticket_id: 2, ticket_reply: 'Two.' },
        ),
      },
      itflowResolveTicket: {
        ...common(resolve, () => at('GET', ITFLOW_RESOLVE)(admin), { ticket_id: 1 }, false),
        '400 missingTicket': () => resolve(admin, {}),
        '404 outOfScope': () => resolve(DEMO_KEYS.acmeTechnician, { ticket_id: 3 }),
        '409 resolved': () => resolve(admin, { ticket_id: 4 }),
        '409 closed': () => resolve(admin, { ticket_id: 5 }),
        '413 bodyTooLarge': () => resolve(admin, tooLarge(BODY_LIMIT), { 'Content-Type': 'application/json' }),
        '415 notJson': () => resolve(admin, 'ticket_id=1', textBody),
        '422 keyReused': idempotencyReuse(resolve, { ticket_id: 1 }, { ticket_id: 1, client_id: 1 }),
      },
      createRepliesInBulk: {
        ...common(bulk, () => at('GET', BULK)(admin), [reply], false),
        '400 noneAccepted': () => bulk(admin, [{ ticket_reply: 'Which ticket?' }, { ticket_id: 5, ticket_reply: 'x' }]),
        '400 notAnArray': () => bulk(admin, reply),
        '413 tooMany': () =>
          bulk(
            admin,
            Array.from({ length: 1001 }, () => reply),
          ),
        '413 bodyTooLarge': () => bulk(admin, `[${tooLarge(BULK_BODY_LIMIT)}]`, { 'Content-Type': 'application/json' }),
        '415 notJson': () => bulk(admin, 'ticket_id=1', textBody),
      },
      listReplies: {
        ...common(at('GET', `${READ}?ticket_id=1`), () => at('POST', READ)(admin), undefined, true),
        '400 limit': () => at('GET', `${READ}?limit=0`)(admin),
        '400 includeArchived': () => at('GET', `${READ}?include_archived=yes`)(admin),
        '400 pendingWithoutTicket': () => at('GET', `${READ}?include_pending=1`)(admin),
        '404 nothing': () => at('GET', `${READ}?ticket_id=3`)(admin),
      },
      itflowListReplies: {
        ...common(at('GET', `${ITFLOW_READ}?ticket_id=1`), () => at('POST', ITFLOW_READ)(admin), undefined, true),
        '400 type': () => at('GET', `${ITFLOW_READ}?type=Email`)(admin),
        '404 nothing': () => at('GET', `${ITFLOW_READ}?ticket_id=3`)(admin),
      },
      getCommandStatus: {
        ...common(at('GET', `${COMMANDS}?command_id=${EXAMPLE_COMMAND_ID}`), () => at('PUT', COMMANDS)(admin), undefined, true),
        '400 missing': () => at('GET', COMMANDS)(admin),
        '400 notAnId': () => at('GET', `${COMMANDS}?command_id=0b6f`)(admin),
        '404 unknown': () => at('GET', `${COMMANDS}?command_id=${EXAMPLE_COMMAND_ID}`)(admin),
      },
      getCommandOutcomes: {
        ...common(commandsPost, () => at('PUT', COMMANDS)(admin), { command_ids: ['0b6f'] }, true),
        '400 empty': () => commandsPost(admin, { command_ids: [] }),
        '400 tooMany': () => commandsPost(admin, { command_ids: Array.from({ length: 1001 }, (_, i) => String(i)) }),
        '413 bodyTooLarge': () => commandsPost(admin, tooLarge(BODY_LIMIT), { 'Content-Type': 'application/json' }),
        '415 notJson': () => commandsPost(admin, 'command_ids=1', textBody),
      },
      getIndex: { '405 wrongMethod': () => at('POST', '/')(undefined) },
      getHealth: { '405 wrongMethod': () => at('POST', '/healthz')(undefined) },
      getReadiness: { '405 wrongMethod': () => at('POST', '/readyz')(undefined) },
      getMetrics: { '405 wrongMethod': () => at('POST', '/metrics')(undefined) },
      getOpenApiDocument: { '405 wrongMethod': () => at('POST', '/openapi.json')(undefined) },
    };

    const results = [];
    const operations = operationsOf(doc);
    for (const { path, method, op } of operations) {
      for (const [status, response] of Object.entries(op.responses as Json)) {
        if (!status.startsWith('4') && !status.startsWith('5')) continue;
        for (const name of Object.keys(response.content?.['application/json']?.examples ?? {})) {
          const label = `${op.operationId} ${status} ${name}`;
          const recipe = recipes[op.operationId]?.[`${status} ${name}`];
          if (status === '503') continue;
          if (!recipe) {
            results.push({ label, problem: 'no request provokes it here' });
            continue;
          }
          const answer = await recipe();
          // A peer with a limit of 1 shows its own 429 example.
          const peer = status === '429' ? peers[name] : undefined;
          const shownBy = peer ? resolved(peer.doc.paths[path][method], peer.doc) : op;
          const shown = shownBy.responses[status].content['application/json'].examples[name].value;
          const problems = [
            ...(answer.status === Number(status) ? [] : [`answered ${answer.status}`]),
            ...(JSON.stringify(normalized(answer.body)) === JSON.stringify(normalized(shown))
              ? []
              : [`answered ${JSON.stringify(answer.body).slice(0, 300)}`]),
            ...undocumented(answer, op.responses[String(answer.status)], valid),
          ];
          results.push({ label, problem: problems.join('; ') || null });
        }
      }
    }
    expect(results.length).toBeGreaterThan(80);
    expect(results.filter((r) => r.problem !== null)).toEqual([]);
    // Nothing in the table goes unused: each recipe provokes an example the document shows.
    const shown = new Set(results.map((r) => r.label));
    const unused = Object.entries(recipes).flatMap(([id, byExample]) =>
      Object.keys(byExample)
        .map((key) => `${id} ${key}`)
        .filter((label) => !shown.has(label)),
    );
    expect(unused).toEqual([]);
  });

  describe("create.php's request schema accepts and refuses what the intake does", () => {
    // Ticket 2 is open and belongs to Acme (client 1) in the demo data.
    const examples: Array<[string, unknown]> = [
      ['a reply', { ticket_id: 2, ticket_reply: 'Hello' }],
      [
        'decimal strings and time worked',
        { ticket_id: '2', ticket_reply: 'Hi', public_reply_type: 1, hours: 1, minutes: '2', seconds: 3 },
      ],
      ['a status change alone', { ticket_id: 2, status: 3 }],
      ['padded strings and an empty reply with a status', { ticket_id: ' 2 ', status: '3', ticket_reply: '' }],
      ['nulls and unknown fields', { ticket_id: 2, ticket_reply: 'x', public_reply_type: null, client_id: 1, colour: 'red' }],
      ['an idempotency key of 255 characters', { ticket_id: 2, ticket_reply: 'x', idempotency_key: 'k'.repeat(255) }],
      ['no ticket_id', { ticket_reply: 'x' }],
      ['a null ticket_id', { ticket_id: null, ticket_reply: 'x' }],
      ['a ticket_id that is not a number', { ticket_id: 'two', ticket_reply: 'x' }],
      ['a fractional ticket_id', { ticket_id: 2.5, ticket_reply: 'x' }],
      ['ticket_id 0', { ticket_id: 0, ticket_reply: 'x' }],
      ['nothing to do', { ticket_id: 2 }],
      ['a blank reply and status 0', { ticket_id: 2, ticket_reply: '   ', status: '0' }],
      ['public_reply_type 2 (email)', { ticket_id: 2, ticket_reply: 'x', public_reply_type: 2 }],
      ['public_reply_type "2"', { ticket_id: 2, ticket_reply: 'x', public_reply_type: '2' }],
      ['time worked without a reply', { ticket_id: 2, status: 3, minutes: 5 }],
      ['60 minutes', { ticket_id: 2, ticket_reply: 'x', minutes: 60 }],
      ['839 hours', { ticket_id: 2, ticket_reply: 'x', hours: 839 }],
      ['a number as the reply', { ticket_id: 2, ticket_reply: 5 }],
      ['a negative status', { ticket_id: 2, ticket_reply: 'x', status: -1 }],
      ['a boolean status', { ticket_id: 2, ticket_reply: 'x', status: true }],
      ['an idempotency key of 256 characters', { ticket_id: 2, ticket_reply: 'x', idempotency_key: 'k'.repeat(256) }],
      ['an external id, quiet', { ticket_id: 2, ticket_reply: 'x', external_id: 'agreement-1', notify: false }],
      ['an empty external id and a null notify', { ticket_id: 2, ticket_reply: 'x', external_id: '', notify: null }],
      ['an external id ending with a space', { ticket_id: 2, ticket_reply: 'x', external_id: 'agreement-2 ' }],
      ['an external id of 256 characters', { ticket_id: 2, ticket_reply: 'x', external_id: 'e'.repeat(256) }],
      ['notify as a string', { ticket_id: 2, ticket_reply: 'x', notify: 'false' }],
      ['public_reply_type 2 and notify: false', { ticket_id: 2, ticket_reply: 'x', public_reply_type: '2', notify: false }],
      ['public_reply_type 2 and notify: true', { ticket_id: 2, ticket_reply: 'x', public_reply_type: 2, notify: true }],
    ];

    it.each(examples)('%s', async (_label, body) => {
      const documented = validator(requestBody(CREATE))(body);
      const answer = await h.post(CREATE, body, { key: DEMO_KEYS.admin });
      expect(answer.status, JSON.stringify(answer.body)).toBe(documented ? 202 : 400);
      expect(createReplyRequest.safeParse(body).success).toBe(documented);
    });
  });

  /** Each body: documented by the path's request schema exactly when the intake accepts it (202, not 400). */
  async function expectAgreement(path: string, examples: unknown[], accepted: number) {
    const validate = validator(requestBody(path));
    const verdicts = [];
    for (const body of examples) {
      const answer = await h.post(path, body, { key: DEMO_KEYS.admin, headers: { Prefer: 'respond-async' } });
      verdicts.push({ body, documented: validate(body), status: answer.status });
    }
    expect(verdicts).toEqual(verdicts.map((v) => ({ ...v, status: v.documented ? 202 : 400 })));
    expect(verdicts.filter((v) => v.documented)).toHaveLength(accepted);
  }

  it("ITFlow's create path: the document's schema agrees with the intake", async () => {
    const examples: unknown[] = [
      { ticket_id: 2, ticket_reply: 'x', ticket_reply_type: 'public', ticket_reply_time_worked: '01:02:03' },
      { ticket_id: 2, ticket_status: '3' },
      { ticket_id: 2, ticket_reply: 'x', ticket_reply_type: 'PUBLIC', ticket_reply_time_worked: '' },
      { ticket_id: 2, ticket_reply: 'x', ticket_reply_type: 'Publc' },
      { ticket_id: 2, ticket_reply: 'x', ticket_reply_time_worked: '1:2:3' },
      { ticket_id: 2, ticket_reply: 'x', ticket_reply_time_worked: '839:00:00' },
      { ticket_id: 2, ticket_status: 3, ticket_reply_time_worked: '00:10:00' },
      { ticket_id: 2, ticket_status: 3, ticket_reply_time_worked: '00:00:00' },
      { ticket_id: 2 },
    ];
    await expectAgreement(ITFLOW_CREATE, examples, 4);
  });

  it("ITFlow's resolve path: the document's schema agrees with the intake", async () => {
    const examples: unknown[] = [
      { ticket_id: 2 },
      { ticket_id: '2', client_id: 1 },
      { ticket_id: 2, client_id: null, idempotency_key: 'resolve-2' },
      {},
      { ticket_id: 'two' },
      { ticket_id: 0 },
      { ticket_id: 2, client_id: 'acme' },
    ];
    await expectAgreement(ITFLOW_RESOLVE, examples, 3);
  });

  it("bulk.php's item schema agrees with the intake's verdict on each item (dry run)", async () => {
    const items = [
      { ticket_id: 2, ticket_reply: 'Imported', created_at: '2026-01-05 09:30:00', author: { user_id: 2 } },
      { ticket_id: 2, status: 3 },
      { ticket_id: 2, author: { user_id: 2 }, status: 3 },
      { ticket_id: 2, ticket_reply: 'x', author: { user_id: 2, contact_id: 1 } },
      { ticket_id: 2, ticket_reply: 'x', public_reply_type: 2 },
      { ticket_reply: 'x' },
    ];
    const answer = await h.post(`${BULK}?dry_run=1`, items, { key: DEMO_KEYS.admin });
    expect(answer.status).toBe(200);
    const validate = validator(doc.paths[BULK].post.requestBody.content['application/json'].schema.items);
    expect(answer.body.data.map((result: Json) => result.status === 'valid')).toEqual(items.map((item) => validate(item)));
    expect(validator(doc.components.schemas.BulkAnswer)(answer.body)).toBe(true);
  });

  it('answers the intake really gives are documented for their operation, in the documented shape', async () => {
    const calls: Array<[string, string, () => Promise<Answer>]> = [
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' }, { key: DEMO_KEYS.readOnly })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 999, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 5, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, 'ticket_id=2', { key: DEMO_KEYS.admin, headers: { 'Content-Type': 'text/plain' } })],
      [
        'post',
        CREATE,
        () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' }, { headers: { Authorization: `Bearer ${DEMO_KEYS.admin}` } }),
      ],
      ['post', BULK, () => h.post(BULK, [{ ticket_id: 2, ticket_reply: 'x' }, { ticket_id: 2 }], { key: DEMO_KEYS.admin })],
      ['post', BULK, () => h.post(BULK, [{ ticket_id: 2 }], { key: DEMO_KEYS.admin })],
      ['get', READ, () => h.get(`${READ}?ticket_id=1&limit=1`, { key: DEMO_KEYS.admin })],
      // Ticket 2's commands stay queued (no worker here): listed as pending rows before its replies.
      ['get', READ, () => h.get(`${READ}?ticket_id=2&include_pending=1`, { key: DEMO_KEYS.admin })],
      ['get', READ, () => h.get(`${READ}?ticket_id=3`, { key: DEMO_KEYS.acmeTechnician })],
      ['get', READ, () => h.get(`${READ}?limit=0`, { key: DEMO_KEYS.admin })],
      ['get', ITFLOW_READ, () => h.get(`${ITFLOW_READ}?ticket_id=1`, { key: DEMO_KEYS.admin })],
      [
        'post',
        ITFLOW_RESOLVE,
        () => h.post(ITFLOW_RESOLVE, { ticket_id: 2 }, { key: DEMO_KEYS.admin, headers: { Prefer: 'respond-async' } }),
      ],
      ['post', ITFLOW_RESOLVE, () => h.post(ITFLOW_RESOLVE, { ticket_id: 5 }, { key: DEMO_KEYS.admin })],
      ['post', ITFLOW_RESOLVE, () => h.post(ITFLOW_RESOLVE, { ticket_id: 999 }, { key: DEMO_KEYS.admin })],
      ['post', ITFLOW_RESOLVE, () => h.post(ITFLOW_RESOLVE, { ticket_id: 2 })],
      ['get', COMMANDS, () => h.get(`${COMMANDS}?command_id=01890000-0000-7000-8000-000000000000`, { key: DEMO_KEYS.admin })],
      [
        'post',
        COMMANDS,
        () => h.post(COMMANDS, { command_ids: ['01890000-0000-7000-8000-000000000000'] }, { key: DEMO_KEYS.admin }),
      ],
      ['post', COMMANDS, () => h.post(COMMANDS, { command_ids: [] }, { key: DEMO_KEYS.admin })],
      ['get', '/healthz', () => h.get('/healthz')],
      ['get', '/readyz', () => h.get('/readyz')],
      ['get', '/', () => h.get('/')],
    ];
    const seen = [];
    for (const [method, path, call] of calls) {
      const answer = await call();
      const documented = resolved(doc.paths[path][method], doc).responses[String(answer.status)];
      seen.push({ call: `${method} ${path} → ${answer.status}`, problems: undocumented(answer, documented, valid) });
    }
    expect(seen).toEqual(seen.map((s) => ({ ...s, problems: [] })));
    expect(new Set(seen.map((s) => s.call.split(' → ')[1]))).toEqual(
      new Set(['200', '202', '400', '401', '403', '404', '409', '415']),
    );
  });

  it('GET / sends a browser on to /docs and gives anyone else the links', async () => {
    const links = await h.get('/');
    expect(links.status).toBe(200);
    expect(links.body).toEqual({
      service: 'ITFlow Reply Queue',
      docs: '/docs',
      openapi: '/openapi.json',
      health: '/healthz',
      readiness: '/readyz',
      metrics: '/metrics',
    });
    const browser = await fetch(`${h.url}/`, { headers: { Accept: 'text/html,application/xhtml+xml' }, redirect: 'manual' });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/docs');
  });

  it('/docs is an HTML page, served without a CDN or a key, that shows this document', async () => {
    const page = await fetch(`${h.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(0);
    expect(assets.every((asset) => asset.startsWith('/docs/'))).toBe(true);
    for (const asset of assets) expect((await fetch(`${h.url}${asset}`)).status, asset).toBe(200);

    const initializer = await (await fetch(`${h.url}/docs/static/swagger-initializer.js`)).text();
    expect(initializer).toContain("resolveUrl('./json')");
    // No validator badge (it would send the document to validator.swagger.io), and no key outside the demo.
    expect(initializer).toMatch(/"validatorUrl":null/);
    expect(initializer).not.toContain('initialState');
    expect(initializer).not.toContain(DEMO_KEYS.admin);
    const shown = await h.get('/docs/json');
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual(doc);
  });

  it("only the demo's service opens /docs authorized, with the demo's admin key; the environment cannot ask for it", async () => {
    const { config: demo } = await prepareDemo(h.config, { reset: false, database: databaseName(h.config.DATABASE_URL) });
    expect(demo.docsApiKey).toBe(DEMO_KEYS.admin);
    expect(loadConfig({ docsApiKey: 'x', DOCS_API_KEY: 'x' } as NodeJS.ProcessEnv)).not.toHaveProperty('docsApiKey');
    let service: RunningService | undefined;
    try {
      service = await startService(demo, { intake: true, worker: false }, createLogger('silent'));
      const initializer = await (await fetch(`${service.url}/docs/static/swagger-initializer.js`)).text();
      expect(initializer).toContain(
        '"initialState":{"auth":{"authorized":{"ApiKeyHeader":{"name":"ApiKeyHeader","value":"demo-admin-key"',
      );
    } finally {
      await service?.close();
    }
  });
});

/**
 * Each operation sent as Swagger UI's "Try it out" sends it — its parameters' examples, the
 * first example of its JSON body, the demo's admin key — to the service with a worker, on the
 * demo data as `npm run demo` builds it: the answer is the documented one for that status.
 */
describe("each operation's default example, as Swagger UI sends it", () => {
  let h: Harness;
  let doc: Json;
  const ajv = new Ajv2020({ allowUnionTypes: true, strictTypes: false });
  ajv.addVocabulary(['x-integer-like']);
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  const valid = (schema: unknown, body: unknown) => ajv.compile(resolved(schema, doc))(body);

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', env: { ITFLOW_BASE_URL: 'itflow.demo.example' } });
    await seedDemoData(h.config.DATABASE_URL);
    doc = (await h.get('/openapi.json')).body;
  });
  afterAll(async () => {
    await h?.close();
  });

  /** What a successful "Try it out" answers on fresh demo data; the command status example is an id no one sent. */
  const expected: Record<string, number> = {
    createReply: 201,
    createRepliesInBulk: 200,
    listReplies: 200,
    getCommandStatus: 404,
    getCommandOutcomes: 200,
    itflowCreateReply: 201,
    itflowResolveTicket: 200,
    itflowListReplies: 200,
    getIndex: 200,
    getHealth: 200,
    getReadiness: 200,
    getMetrics: 200,
    getOpenApiDocument: 200,
  };

  it('answers each with its documented status, headers and shape', async () => {
    const results = [];
    for (const { path, method, op } of operationsOf(doc)) {
      const query = new URLSearchParams();
      const headers: Record<string, string> = { Accept: 'application/json' };
      for (const parameter of op.parameters as Json[]) {
        if (parameter.example === undefined) continue;
        if (parameter.in === 'query') query.set(parameter.name, String(parameter.example));
        if (parameter.in === 'header') headers[parameter.name] = String(parameter.example);
      }
      if (op.security.length > 0) headers['X-API-Key'] = DEMO_KEYS.admin;
      const examples = op.requestBody?.content['application/json'].examples;
      const body = examples ? (Object.values(examples as Json)[0] as Json).value : undefined;
      const target = query.size > 0 ? `${path}?${query}` : path;
      const answer = await httpRequest(h.url, method.toUpperCase(), target, body, headers);
      const response = op.responses[String(answer.status)];
      const example = response?.content?.['application/json']?.examples;
      // An error answer must be one of its examples, word for word.
      const matchesExample =
        answer.status < 400 ||
        Object.values((example ?? {}) as Json).some((e: Json) => JSON.stringify(e.value) === JSON.stringify(answer.body));
      results.push({
        operation: op.operationId,
        status: answer.status,
        problems: [...undocumented(answer, response, valid), ...(matchesExample ? [] : ['not its example'])],
      });
    }
    expect(results).toEqual(results.map((r) => ({ ...r, status: expected[r.operation], problems: [] })));
    expect(results).toHaveLength(Object.keys(expected).length);
  });
});
