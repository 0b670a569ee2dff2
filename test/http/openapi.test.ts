import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReplyRequest } from '../../src/commands/createReply.js';
import { DEMO_KEYS, seedDemoData } from '../../src/demo/seed.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE, ITFLOW_READ, ITFLOW_RESOLVE, READ } from '../helpers/paths.js';

/**
 * The OpenAPI document and the docs page, against the running intake: the document lists every
 * endpoint, its request schemas accept and refuse what the intake does, and the answers the
 * intake really gives are among the documented ones, in the documented shape.
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

describe('OpenAPI document and docs page', () => {
  let h: Harness;
  let doc: Json;
  const ajv = new Ajv2020({ allowUnionTypes: true, strictTypes: false });
  ajv.addVocabulary(['x-integer-like']);
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  const validator = (schema: unknown) => ajv.compile(resolved(schema, doc));
  const requestBody = (path: string) => doc.paths[path].post.requestBody.content['application/json'].schema;

  beforeAll(async () => {
    // The intake alone: accepted commands stay queued, so every example meets the same tickets.
    // ITFlow's address for client mail, as the demo has it: public_reply_type 2 is then accepted.
    h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: { ITFLOW_BASE_URL: 'itflow.demo.example' },
    });
    await seedDemoData(h.config.DATABASE_URL);
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
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
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
        'GET /healthz',
        'GET /readyz',
      ].sort(),
    );
  });

  it('documents the API key as the X-API-Key header or the api_key query parameter, and the create headers', () => {
    expect(doc.components.securitySchemes).toEqual({
      ApiKeyHeader: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      ApiKeyQuery: expect.objectContaining({ type: 'apiKey', in: 'query', name: 'api_key' }),
    });
    const create = doc.paths[CREATE].post;
    expect(create.security).toEqual([{ ApiKeyHeader: [] }, { ApiKeyQuery: [] }]);
    expect(create.parameters.map((p: Json) => `${p.in} ${p.name}`)).toEqual(['header Idempotency-Key', 'header Prefer']);
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['201', '202', '400', '401', '403', '404', '409', '413', '415', '422', '503']),
    );
    expect(Object.keys(create.responses['202'].headers)).toContain('Location');
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(doc.paths[COMMANDS].get.parameters).toEqual([
      expect.objectContaining({ name: 'command_id', in: 'query', required: true }),
    ]);
    expect(Object.keys(doc.paths[BULK].post.requestBody.content)).toEqual(['application/json', 'application/x-ndjson']);
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
    const calls: Array<[string, string, () => Promise<{ status: number; body: unknown }>]> = [
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 2, ticket_reply: 'x' }, { key: DEMO_KEYS.readOnly })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 999, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, { ticket_id: 5, ticket_reply: 'x' }, { key: DEMO_KEYS.admin })],
      ['post', CREATE, () => h.post(CREATE, 'ticket_id=2', { key: DEMO_KEYS.admin, headers: { 'Content-Type': 'text/plain' } })],
      ['post', BULK, () => h.post(BULK, [{ ticket_id: 2, ticket_reply: 'x' }, { ticket_id: 2 }], { key: DEMO_KEYS.admin })],
      ['post', BULK, () => h.post(BULK, [{ ticket_id: 2 }], { key: DEMO_KEYS.admin })],
      ['get', READ, () => h.get(`${READ}?ticket_id=1&limit=1`, { key: DEMO_KEYS.admin })],
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
    ];
    const seen = [];
    for (const [method, path, call] of calls) {
      const { status, body } = await call();
      const documented = doc.paths[path][method].responses[String(status)];
      const schema = documented?.content?.['application/json']?.schema;
      seen.push({
        call: `${method} ${path} → ${status}`,
        documented: documented !== undefined,
        shape: schema ? validator(schema)(body) : false,
      });
    }
    expect(seen).toEqual(seen.map((s) => ({ ...s, documented: true, shape: true })));
    expect(new Set(seen.map((s) => s.call.split(' → ')[1]))).toEqual(
      new Set(['200', '202', '400', '401', '403', '404', '409', '415']),
    );
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
    const shown = await h.get('/docs/json');
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual(doc);
  });
});
