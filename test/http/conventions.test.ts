import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { type RunningService, startService } from '../../src/service.js';
import { type Answer, deleteQueueKeys, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE, READ } from '../helpers/paths.js';
import { RawConnection, rawRequest } from '../helpers/rawHttp.js';

/**
 * The HTTP conventions every answer follows: the request id (the client's X-Request-Id when
 * sane, else a UUID) echoed and logged; RateLimit-* headers on every limited answer; CORS when
 * CORS_ORIGINS allows it; a key as `Authorization: Bearer`; a 413 that names the limit; and
 * commands.php's times beside ITFlow's own wall clock.
 */
const AUTH_FAILED = { success: 'False', message: 'Authentication failed. API key is invalid or has expired.' };
const INTAKE_ONLY = { intake: true, worker: false };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** ITFlow's zone in this file: +05:30 all year, so its wall clock differs from UTC and never jumps. */
const ITFLOW_ZONE = 'Asia/Kolkata';
const KOLKATA_OFFSET_MS = 5.5 * 3600_000;

function send(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return httpRequest(url, method, path, body, headers);
}

/** A request as a browser's fetch would send it from a page: with its Origin, raw (fetch drops nothing). */
function fromPage(
  url: string,
  origin: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
) {
  return rawRequest(url, {
    method,
    path,
    headers: {
      Origin: origin,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
  });
}

const listed = (header: string | string[] | undefined) =>
  String(header ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');

describe('HTTP conventions', () => {
  let h: Harness;
  let world: World;
  let ticket: number;
  /** Intakes on the same database and queue: with small limits, and with CORS for listed origins / for any. */
  let limited: RunningService;
  let corsListed: RunningService;
  let corsAny: RunningService;
  const rateCounters = () => deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:ratelimit`);

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', timeZone: ITFLOW_ZONE });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    limited = await h.startPeer(INTAKE_ONLY, {
      RATE_LIMIT_PER_KEY_PER_MINUTE: '5',
      RATE_LIMIT_PER_IP_PER_MINUTE: '8',
      BODY_LIMIT_BYTES: '2048',
      BULK_BODY_LIMIT_BYTES: '4096',
    });
    corsListed = await h.startPeer(INTAKE_ONLY, { CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' });
    corsAny = await h.startPeer(INTAKE_ONLY, { CORS_ORIGINS: '*' });
  });
  afterAll(() => h?.close());

  describe('X-Request-Id', () => {
    it('every answer carries the sane X-Request-Id the client sent, whatever its status', async () => {
      const id = 'conv-7f3e/req.1:abc_DEF';
      const answers = {
        accepted: await send(
          h.url,
          'POST',
          CREATE,
          { ticket_id: ticket, ticket_reply: 'x' },
          {
            'X-Request-Id': id,
            'X-API-Key': world.keys.all,
          },
        ),
        invalid: await send(h.url, 'POST', CREATE, { ticket_reply: 'x' }, { 'X-Request-Id': id, 'X-API-Key': world.keys.all }),
        unauthorized: await send(h.url, 'GET', `${READ}?ticket_id=${ticket}`, undefined, { 'X-Request-Id': id }),
        wrongMethod: await send(h.url, 'PUT', CREATE, undefined, { 'X-Request-Id': id }),
        unknown: await send(h.url, 'GET', '/nowhere', undefined, { 'X-Request-Id': id }),
        health: await send(h.url, 'GET', '/healthz', undefined, { 'X-Request-Id': id }),
      };
      const seen = Object.fromEntries(
        Object.entries(answers).map(([name, a]) => [name, { status: a.status, id: a.headers.get('x-request-id') }]),
      );
      expect(seen).toEqual({
        accepted: { status: 202, id },
        invalid: { status: 400, id },
        unauthorized: { status: 401, id },
        wrongMethod: { status: 405, id },
        unknown: { status: 404, id },
        health: { status: 200, id },
      });
      // A URL that is not valid percent-encoding is refused before routing, and still answered with it.
      const badUrl = await rawRequest(h.url, { path: `${READ}/%c0%ae`, headers: { 'X-Request-Id': id } });
      expect({ status: badUrl.status, id: badUrl.headers['x-request-id'] }).toEqual({ status: 400, id });
    });

    it('without one, or with one too long or not printable ASCII, the answer carries a fresh UUID instead', async () => {
      const sent: Array<Record<string, string>> = [
        {},
        {},
        { 'X-Request-Id': `r${'x'.repeat(128)}` },
        { 'X-Request-Id': 'caf\u00e9' }, // goes out as the byte 0xE9: not ASCII
      ];
      const ids = [];
      for (const headers of sent) ids.push((await rawRequest(h.url, { path: '/healthz', headers })).headers['x-request-id']);
      for (const id of ids) expect(id).toMatch(UUID);
      expect(new Set(ids).size).toBe(ids.length);
      // Node's parser refuses a head too large before Fastify sees it: that answer has an id of its own.
      const oversized = await rawRequest(h.url, {
        path: '/healthz',
        headers: { 'X-Request-Id': 'mine', 'X-Padding': 'p'.repeat(20_000) },
      });
      expect({ status: oversized.status, id: oversized.headers['x-request-id'] }).toEqual({
        status: 431,
        id: expect.stringMatching(UUID),
      });
      // 128 printable characters are still the client's own.
      const longest = 'y'.repeat(128);
      expect((await send(h.url, 'GET', '/healthz', undefined, { 'X-Request-Id': longest })).headers.get('x-request-id')).toBe(
        longest,
      );
    });

    it("the id is the request's reqId in the log: the client's, or the UUID it was answered with", async () => {
      const lines: Array<Record<string, any>> = [];
      const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
      const service = await startService(h.config, INTAKE_ONLY, logger);
      try {
        const url = service.url as string;
        const sane = 'conv-log-4b1d';
        const insane = `bad id ${'z'.repeat(200)}`;
        const accepted = await send(
          url,
          'POST',
          CREATE,
          { ticket_id: ticket, ticket_reply: 'logged' },
          {
            'X-Request-Id': sane,
            'X-API-Key': world.keys.all,
          },
        );
        expect(accepted.headers.get('x-request-id')).toBe(sane);
        const refused = await send(url, 'GET', READ, undefined, { 'X-Request-Id': insane });
        const generated = refused.headers.get('x-request-id') as string;
        expect(generated).toMatch(UUID);
        await new Promise((resolve) => setTimeout(resolve, 50));

        const saneLines = lines.filter((l) => l.reqId === sane);
        expect(saneLines.map((l) => l.msg)).toEqual(expect.arrayContaining(['command accepted']));
        expect(saneLines.find((l) => l.msg === 'command accepted')).toMatchObject({
          commandId: accepted.body.data[0].command_id,
        });
        expect(lines.filter((l) => l.reqId === generated).length).toBeGreaterThan(0);
        expect(lines.some((l) => JSON.stringify(l).includes('zzzzzzzzzz'))).toBe(false);
      } finally {
        await service.close();
      }
    });
  });

  describe('RateLimit headers', () => {
    beforeEach(rateCounters);
    const header = (a: Answer) => ({
      status: a.status,
      limit: a.headers.get('ratelimit-limit'),
      remaining: a.headers.get('ratelimit-remaining'),
    });
    const reply = (key: string) =>
      send(limited.url as string, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { 'X-API-Key': key });

    it('each answer reports the limit with the least remaining: the key, then the IP; a 429 adds Retry-After', async () => {
      const byKey = [];
      for (let i = 0; i < 4; i++) byKey.push(header(await reply(world.keys.all)));
      // Key: 5 a minute, IP: 8 a minute. After 4 requests the key has 1 left, the IP 4.
      expect(byKey).toEqual([
        { status: 202, limit: '5', remaining: '4' },
        { status: 202, limit: '5', remaining: '3' },
        { status: 202, limit: '5', remaining: '2' },
        { status: 202, limit: '5', remaining: '1' },
      ]);
      // Another key: its own count is low, the address's is now the nearer to running out.
      const byIp = [];
      for (let i = 0; i < 4; i++) byIp.push(header(await reply(world.keys.clientA)));
      expect(byIp).toEqual([
        { status: 202, limit: '8', remaining: '3' },
        { status: 202, limit: '8', remaining: '2' },
        { status: 202, limit: '8', remaining: '1' },
        { status: 202, limit: '8', remaining: '0' },
      ]);
      const refused = await reply(world.keys.clientA);
      expect(header(refused)).toEqual({ status: 429, limit: '8', remaining: '0' });
      expect(refused.body.message).toMatch(/^Too many requests from this IP address/);
      expect(refused.headers.get('retry-after')).toBe(refused.headers.get('ratelimit-reset'));
    });

    it('a 429 carries RateLimit-Remaining 0 and Retry-After equal to RateLimit-Reset', async () => {
      for (let i = 0; i < 5; i++) expect((await reply(world.keys.all)).status).toBe(202);
      const refused = await reply(world.keys.all);
      expect(refused.status).toBe(429);
      expect(refused.body.message).toMatch(/^Too many requests with this API key: at most 5 a minute\./);
      const reset = Number(refused.headers.get('ratelimit-reset'));
      expect(header(refused)).toEqual({ status: 429, limit: '5', remaining: '0' });
      expect(reset).toBeGreaterThanOrEqual(1);
      expect(reset).toBeLessThanOrEqual(60);
      expect(refused.headers.get('retry-after')).toBe(String(reset));
    });

    it('limited answers of every kind carry them (a wrong key, read.php, a key in the body); unlimited endpoints do not', async () => {
      const url = limited.url as string;
      const wrong = await send(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { 'X-API-Key': 'wrong-key' });
      expect(wrong.status).toBe(401);
      expect(header(wrong)).toEqual({ status: 401, limit: '5', remaining: '4' });
      const read = await send(url, 'GET', `${READ}?ticket_id=${ticket}`, undefined, { 'X-API-Key': world.keys.all });
      expect(header(read)).toMatchObject({ limit: '5', remaining: '4' });
      const inBody = await send(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'x', api_key: world.keys.clientA });
      expect(header(inBody)).toEqual({ status: 202, limit: '5', remaining: '4' });
      const reset = Number(inBody.headers.get('ratelimit-reset'));
      expect(reset >= 1 && reset <= 60).toBe(true);
      for (const path of ['/healthz', '/readyz', '/openapi.json']) {
        const answer = await send(url, 'GET', path);
        expect({ path, limit: answer.headers.get('ratelimit-limit') }).toEqual({ path, limit: null });
      }
    });

    it('a key sent as Authorization: Bearer is counted per key like any other', async () => {
      const answers = [];
      for (let i = 0; i < 6; i++) {
        const answer = await send(
          limited.url as string,
          'POST',
          CREATE,
          { ticket_id: ticket, ticket_reply: 'bearer' },
          { Authorization: `Bearer ${world.keys.all}` },
        );
        answers.push(header(answer));
      }
      expect(answers).toEqual([
        { status: 202, limit: '5', remaining: '4' },
        { status: 202, limit: '5', remaining: '3' },
        { status: 202, limit: '5', remaining: '2' },
        { status: 202, limit: '5', remaining: '1' },
        { status: 202, limit: '5', remaining: '0' },
        { status: 429, limit: '5', remaining: '0' },
      ]);
    });
  });

  describe('Authorization: Bearer', () => {
    beforeAll(rateCounters);

    it('a Bearer key works on every endpoint; a wrong one answers ITFlow v1’s 401', async () => {
      const bearer = { Authorization: `Bearer ${world.keys.all}` };
      expect((await send(h.url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'b' }, bearer)).status).toBe(202);
      expect((await send(h.url, 'POST', ITFLOW_CREATE, { ticket_id: ticket, ticket_reply: 'b' }, bearer)).status).toBe(201);
      expect((await send(h.url, 'POST', BULK, [{ ticket_id: ticket, ticket_reply: 'b' }], bearer)).status).toBe(202);
      expect((await send(h.url, 'GET', `${READ}?ticket_id=${ticket}`, undefined, bearer)).status).not.toBe(401);
      const many = await send(h.url, 'POST', COMMANDS, { command_ids: ['x'] }, bearer);
      expect(many.status).toBe(200);
      // The scheme in any case, as HTTP has it.
      const lower = await send(
        h.url,
        'POST',
        CREATE,
        { ticket_id: ticket, ticket_reply: 'b' },
        {
          Authorization: `bearer ${world.keys.all}`,
        },
      );
      expect(lower.status).toBe(202);
      const wrong = await send(h.url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'b' }, { Authorization: 'Bearer nope' });
      expect({ status: wrong.status, body: wrong.body }).toEqual({ status: 401, body: AUTH_FAILED });
    });

    it('one key is used, by precedence: X-API-Key, then Bearer, then the query’s, then the body’s api_key; Basic is no key', async () => {
      // Ticket of client B: the client-A key does not see it (404), the all-clients key does (202).
      const ticketB = await addTicket(h.db, '2.6.7', { clientId: world.clientB });
      const all = world.keys.all;
      const onlyA = world.keys.clientA;
      const body = { ticket_id: ticketB, ticket_reply: 'precedence' };
      const status = async (path: string, sent: unknown, headers: Record<string, string>) =>
        (await send(h.url, 'POST', path, sent, headers)).status;
      expect(await status(CREATE, body, { 'X-API-Key': onlyA, Authorization: `Bearer ${all}` })).toBe(404);
      expect(await status(CREATE, body, { 'X-API-Key': all, Authorization: `Bearer ${onlyA}` })).toBe(202);
      expect(await status(`${CREATE}?api_key=${all}`, body, { Authorization: `Bearer ${onlyA}` })).toBe(404);
      expect(await status(`${CREATE}?api_key=${onlyA}`, body, { Authorization: `Bearer ${all}` })).toBe(202);
      expect(await status(CREATE, { ...body, api_key: all }, { Authorization: `Bearer ${onlyA}` })).toBe(404);
      // A proxy's Basic credentials are not a key: the body's is used.
      expect(await status(CREATE, { ...body, api_key: all }, { Authorization: 'Basic dXNlcjpwYXNz' })).toBe(202);
      expect(await status(CREATE, body, { Authorization: 'Basic dXNlcjpwYXNz' })).toBe(401);
    });

    it('a Bearer key is checked before the body is read: a wrong one gets no 100 Continue, like a wrong X-API-Key', async () => {
      const expecting = async (authorization: string) => {
        const body = JSON.stringify({ ticket_id: ticket, ticket_reply: 'after 100 Continue' });
        const connection = await RawConnection.open(h.url);
        connection.write(
          RawConnection.head('POST', CREATE, {
            Authorization: authorization,
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            Expect: '100-continue',
          }),
        );
        await connection.until((text) => text.startsWith('HTTP/1.1 '), 2_000);
        const first = connection.text.split('\r\n')[0];
        if (first === 'HTTP/1.1 100 Continue') connection.write(body);
        const answer = await connection.answered(2_000);
        connection.destroy();
        return { first, status: answer?.status };
      };
      expect(await expecting('Bearer wrong-bearer')).toEqual({ first: 'HTTP/1.1 401 Unauthorized', status: 401 });
      expect(await expecting(`Bearer ${world.keys.all}`)).toEqual({ first: 'HTTP/1.1 100 Continue', status: 202 });
    });
  });

  describe('413 names the limit', () => {
    beforeAll(rateCounters);

    it('create.php, commands.php and bulk.php say how many bytes they take', async () => {
      const url = limited.url as string;
      const key = { 'X-API-Key': world.keys.all };
      const big = 'x'.repeat(5000);
      const create = await send(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: big }, key);
      const commands = await send(url, 'POST', COMMANDS, { command_ids: [big] }, key);
      const bulk = await send(url, 'POST', BULK, [{ ticket_id: ticket, ticket_reply: big }], key);
      const small = 'The request body is too large: this endpoint takes at most 2048 bytes (2 KiB).';
      expect([create, commands, bulk].map((a) => ({ status: a.status, body: a.body }))).toEqual([
        { status: 413, body: { success: 'False', message: small } },
        { status: 413, body: { success: 'False', message: small } },
        {
          status: 413,
          body: { success: 'False', message: 'The request body is too large: this endpoint takes at most 4096 bytes (4 KiB).' },
        },
      ]);
    });

    it('the default limits read in MiB', async () => {
      const big = Buffer.alloc(2 * 1024 * 1024 + 1, 'x');
      const answer = await rawRequest(h.url, {
        method: 'POST',
        path: CREATE,
        headers: { 'Content-Type': 'application/json', 'X-API-Key': world.keys.all },
        body: big,
      });
      expect(answer).toMatchObject({
        status: 413,
        body: { message: 'The request body is too large: this endpoint takes at most 2097152 bytes (2 MiB).' },
      });
    });
  });

  describe('CORS', () => {
    const ORIGIN = 'https://app.example.com';
    const REQUESTED = 'x-api-key, authorization, idempotency-key, prefer, content-type, x-request-id';

    it.each([CREATE, BULK, READ, COMMANDS])('a listed origin’s preflight of %s is answered 204, without a key', async (path) => {
      const answer = await fromPage(corsListed.url as string, ORIGIN, 'OPTIONS', path, {
        'Access-Control-Request-Method': path === READ ? 'GET' : 'POST',
        'Access-Control-Request-Headers': REQUESTED,
      });
      expect(answer.status).toBe(204);
      expect(answer.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(listed(answer.headers['access-control-allow-methods'])).toEqual(expect.arrayContaining(['get', 'post']));
      expect(listed(answer.headers['access-control-allow-headers'])).toEqual(expect.arrayContaining(listed(REQUESTED)));
      expect(Number(answer.headers['access-control-max-age'])).toBeGreaterThan(0);
      expect(listed(answer.headers.vary)).toContain('origin');
    });

    it('its requests’ answers, refusals included, carry the origin and expose the service’s headers', async () => {
      const url = corsListed.url as string;
      const accepted = await fromPage(
        url,
        ORIGIN,
        'POST',
        CREATE,
        { 'X-API-Key': world.keys.all },
        {
          ticket_id: ticket,
          ticket_reply: 'from a page',
        },
      );
      const refused = await fromPage(
        url,
        'http://localhost:5173',
        'POST',
        CREATE,
        { 'X-API-Key': 'wrong' },
        {
          ticket_id: ticket,
        },
      );
      expect([accepted.status, refused.status]).toEqual([202, 401]);
      expect(accepted.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(refused.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(listed(accepted.headers['access-control-expose-headers'])).toEqual(
        expect.arrayContaining(
          [
            'Idempotent-Replayed',
            'Retry-After',
            'X-Request-Id',
            'RateLimit-Limit',
            'RateLimit-Remaining',
            'RateLimit-Reset',
            'Location',
          ].map((name) => name.toLowerCase()),
        ),
      );
    });

    it('an origin not listed gets no CORS headers, and its preflight is no 204', async () => {
      const url = corsListed.url as string;
      const preflight = await fromPage(url, 'https://evil.example', 'OPTIONS', CREATE, {
        'Access-Control-Request-Method': 'POST',
      });
      expect(preflight.status).toBe(405);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const answer = await fromPage(url, 'https://evil.example', 'GET', `${READ}?ticket_id=${ticket}`, {
        'X-API-Key': world.keys.all,
      });
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('CORS_ORIGINS=* allows every origin', async () => {
      const preflight = await fromPage(corsAny.url as string, 'https://anywhere.example', 'OPTIONS', READ, {
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization',
      });
      expect({ status: preflight.status, origin: preflight.headers['access-control-allow-origin'] }).toEqual({
        status: 204,
        origin: '*',
      });
    });

    it('unset (the default), nothing changes: a preflight is a 405 and no answer has CORS headers', async () => {
      const preflight = await fromPage(h.url, ORIGIN, 'OPTIONS', CREATE, { 'Access-Control-Request-Method': 'POST' });
      expect(preflight.status).toBe(405);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const answer = await fromPage(h.url, ORIGIN, 'POST', CREATE, { 'X-API-Key': world.keys.all }, { ticket_id: ticket });
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('a malformed origin stops the start with one line naming CORS_ORIGINS and the entry', () => {
      const load = (value: string) => () => loadConfig({ CORS_ORIGINS: value });
      for (const bad of ['https://app.example.com/', 'app.example.com', 'https://app.example.com/path', 'ftp://files.example']) {
        expect(load(bad), bad).toThrow(ConfigError);
        expect(load(bad), bad).toThrow(
          new RegExp(`^Invalid configuration: CORS_ORIGINS must be \\* or .*'${bad.replace(/[./]/g, '\\$&')}' is not one`),
        );
      }
      expect(load('https://a.example,*')).toThrow(/CORS_ORIGINS .*\* stands alone/);
      expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).CORS_ORIGINS).toEqual([
        'https://a.example',
        'http://localhost:5173',
      ]);
      expect(loadConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toBe('*');
      expect(loadConfig({}).CORS_ORIGINS).toBe(false);
    });
  });

  describe('commands.php times', () => {
    it('a finished command gives its UTC instants and the same on ITFlow’s wall clock, which its reply carries', async () => {
      const fresh = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
      const created = await send(
        h.url,
        'POST',
        CREATE,
        { ticket_id: fresh, ticket_reply: 'timed' },
        {
          'X-API-Key': world.keys.all,
        },
      );
      const commandId: string = created.body.data[0].command_id;
      await h.finished(commandId);
      const status = await send(h.url, 'GET', `${COMMANDS}?command_id=${commandId}`, undefined, { 'X-API-Key': world.keys.all });
      const item = status.body.data[0];
      expect(item).toMatchObject({
        status: 'applied',
        accepted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        finished_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        itflow_timezone: ITFLOW_ZONE,
      });
      const wall = (iso: string) => new Date(Date.parse(iso) + KOLKATA_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
      expect(item.accepted_at_itflow).toBe(wall(item.accepted_at));
      expect(item.finished_at_itflow).toBe(wall(item.finished_at));
      const read = await send(h.url, 'GET', `${READ}?ticket_id=${fresh}`, undefined, { 'X-API-Key': world.keys.all });
      expect(read.body.data[0].ticket_reply_created_at).toBe(item.accepted_at_itflow);
    });

    it('the OpenAPI document states both time formats for read.php and commands.php', async () => {
      const doc = (await send(h.url, 'GET', '/openapi.json')).body;
      const text = (value: unknown) => JSON.stringify(value);
      expect(text(doc.paths[READ].get)).toMatch(/config_timezone, 'YYYY-MM-DD HH:MM:SS'/);
      expect(text(doc.paths[COMMANDS].get.description)).toMatch(/UTC instants .*accepted_at_itflow/);
      expect(text(doc.components.schemas)).toContain('accepted_at_itflow');
    });
  });
});
