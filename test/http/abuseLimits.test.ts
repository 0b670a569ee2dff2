import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GENERATIONS } from '../../src/demo/itflowDatabase.js';
import type { RunningService } from '../../src/service.js';
import { type Answer, deleteQueueKeys, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, READ } from '../helpers/paths.js';
import { freePort, startRedisServer } from '../helpers/processes.js';

/**
 * What keeps one client from hurting the others: requests per API key and per client IP per
 * minute (429 + Retry-After, counted in Redis across intake processes), bounded bodies (413)
 * and JSON only (415), failed-key `logs` rows bounded per IP, and a key look-up that takes
 * nothing but the exact secret.
 */
const AUTH_FAILED = { success: 'False', message: 'Authentication failed. API key is invalid or has expired.' };
const INTAKE_ONLY = { intake: true, worker: false };

/** A request to any intake (the harness's own, or a peer's). */
async function send(
  url: string,
  path: string,
  { method = 'POST', body, headers = {} }: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return httpRequest(url, method, path, body, headers);
}

/** The failed-key log counter is per calendar minute: keep a burst from straddling two. */
async function awayFromMinuteEnd(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 200));
}

function expectRateLimited(answer: Answer, message: RegExp): number {
  expect(answer.status).toBe(429);
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(answer.body).toEqual({ success: 'False', message: expect.stringMatching(message) });
  expect(answer.body.message).toContain(`Retry in ${retryAfter} seconds.`);
  return retryAfter;
}

describe.each(GENERATIONS)('API key look-up and failed-key logs (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;
  let ticket: number;
  /** A key whose secret has letters and an 'e', so case and accent variants exist. */
  const secret = 'Reply-Queue-Test-Key-7f3e';

  beforeAll(async () => {
    h = await startHarness({
      generation,
      roles: INTAKE_ONLY,
      env: { AUTH_CACHE_SECONDS: '5', AUTH_FAILURE_LOGS_PER_MINUTE: '7' },
    });
    world = await seedWorld(h.db, generation);
    ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const generated = await addKey(h.db, generation, {
      name: 'Exact key',
      owner: generation === '2.4.4' ? 0 : world.author,
    });
    await h.query('UPDATE api_keys SET api_key_secret = ? WHERE api_key_secret = ?', [secret, generated]);
  });
  afterAll(() => h?.close());

  it('takes only the exact secret: another case, trailing spaces or an accented letter answer 401', async () => {
    // The exact key first, so it is cached: a variant must not ride on the cached entry.
    expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'exact' }, { key: secret })).status).toBe(202);
    const variants = [secret.toUpperCase(), secret.toLowerCase(), `${secret} `, `${secret}   `, secret.replace('e', 'é')];
    for (const variant of variants) {
      const inBody = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'variant', api_key: variant });
      expect({ variant, status: inBody.status, body: inBody.body }).toEqual({ variant, status: 401, body: AUTH_FAILED });
      const inQuery = await h.post(`${CREATE}?api_key=${encodeURIComponent(variant)}`, { ticket_id: ticket, ticket_reply: 'x' });
      expect({ variant, status: inQuery.status }).toEqual({ variant, status: 401 });
    }
    // Headers lose surrounding spaces in transit; a header in another case is still refused.
    expect((await h.get(`${READ}?ticket_id=${ticket}`, { key: secret.toUpperCase() })).status).toBe(401);
    expect((await h.get(`${READ}?ticket_id=${ticket}`, { key: secret })).status).not.toBe(401);
  });

  it('a flood of 50 wrong keys answers 401 to each and leaves exactly AUTH_FAILURE_LOGS_PER_MINUTE logs rows', async () => {
    await awayFromMinuteEnd();
    await h.query("DELETE FROM logs WHERE log_type = 'API'");
    await deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:authfail`);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: `flood-${i}` })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(401));
    expect(answers.every((a) => a.body.message === AUTH_FAILED.message)).toBe(true);
    const rows = await h.query("SELECT log_action, log_description, log_ip FROM logs WHERE log_type = 'API'");
    expect(rows).toHaveLength(h.config.AUTH_FAILURE_LOGS_PER_MINUTE);
    expect(rows.every((r) => r.log_action === 'Failed' && r.log_ip === '127.0.0.1')).toBe(true);
  });
});

describe('Rate limits per API key and per client IP', () => {
  let h: Harness;
  let world: World;
  let ticket: number;
  /** A second intake on the same database and Redis prefix, behind a proxy it trusts. */
  let proxied: RunningService;
  let redis: Redis;
  const ratePrefix = () => `${h.config.QUEUE_PREFIX}:replyqueue:ratelimit`;
  const reply = (key: string) => ({ body: { ticket_id: ticket, ticket_reply: 'x' }, headers: { 'X-API-Key': key } });

  beforeAll(async () => {
    h = await startHarness({
      generation: '2.6.7',
      roles: INTAKE_ONLY,
      env: {
        RATE_LIMIT_PER_KEY_PER_MINUTE: '5',
        RATE_LIMIT_PER_IP_PER_MINUTE: '10',
        BODY_LIMIT_BYTES: '2048',
        BULK_BODY_LIMIT_BYTES: '4096',
      },
    });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    proxied = await h.startPeer(INTAKE_ONLY, { TRUST_PROXY: '127.0.0.1' });
    redis = new Redis(h.config.REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });
  // Every test starts with fresh counters.
  beforeEach(() => deleteQueueKeys(h.config.REDIS_URL, ratePrefix()));

  it('the request past the per-key limit answers 429 with Retry-After, wherever the key is sent', async () => {
    const key = world.keys.all;
    const answers = [
      await send(h.url, CREATE, reply(key)),
      await send(h.url, CREATE, reply(key)),
      await send(h.url, CREATE, { body: { ticket_id: ticket, ticket_reply: 'x', api_key: key } }),
      await send(h.url, `${CREATE}?api_key=${key}`, { body: { ticket_id: ticket, ticket_reply: 'x' } }),
      await send(h.url, `${READ}?ticket_id=${ticket}`, { method: 'GET', headers: { 'X-API-Key': key } }),
    ];
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 404]);
    expectRateLimited(await send(h.url, CREATE, reply(key)), /^Too many requests with this API key: at most 5 a minute\./);
    expectRateLimited(await send(h.url, CREATE, { body: { ticket_id: ticket, ticket_reply: 'x', api_key: key } }), /API key/);
    // Another key from the same address is not held back.
    expect((await send(h.url, CREATE, reply(world.keys.clientA))).status).toBe(202);
  });

  it('counts a key under its SHA-256 digest: the secret never becomes a Redis key', async () => {
    await send(h.url, CREATE, reply(world.keys.all));
    const keys = await redis.keys(`${ratePrefix()}:*`);
    const digest = createHash('sha256').update(world.keys.all).digest('hex');
    expect(keys.sort()).toEqual([`${ratePrefix()}:ip:127.0.0.1`, `${ratePrefix()}:key:${digest}`].sort());
    expect(keys.some((k) => k.includes(world.keys.all))).toBe(false);
  });

  it('the per-key limit holds across intake processes: they count in one place', async () => {
    const key = world.keys.all;
    for (let i = 0; i < 3; i++) expect((await send(h.url, CREATE, reply(key))).status).toBe(202);
    for (let i = 0; i < 2; i++) expect((await send(proxied.url as string, CREATE, reply(key))).status).toBe(202);
    expectRateLimited(await send(proxied.url as string, CREATE, reply(key)), /API key/);
    expectRateLimited(await send(h.url, CREATE, reply(key)), /API key/);
  });

  it('the request past the per-IP limit answers 429 whatever the keys, and wrong keys count too', async () => {
    const keys = [world.keys.all, world.keys.clientA];
    for (let i = 0; i < 8; i++) expect((await send(h.url, CREATE, reply(keys[i % 2] as string))).status).toBe(202);
    expect((await send(h.url, CREATE, reply('wrong-key'))).status).toBe(401);
    expect((await send(h.url, CREATE, { body: { ticket_id: ticket } })).status).toBe(401); // no key at all
    const fresh = await addKey(h.db, '2.6.7', { name: 'Fresh', owner: world.author });
    expectRateLimited(
      await send(h.url, CREATE, reply(fresh)),
      /^Too many requests from this IP address: at most 10 a minute\. Retry in \d+ seconds\.$/,
    );
  });

  it('health, readiness, metrics and the docs are never limited', async () => {
    for (let i = 0; i < 10; i++) await send(h.url, CREATE, { body: { ticket_id: ticket } });
    expect((await send(h.url, CREATE, { body: { ticket_id: ticket } })).status).toBe(429);
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs/json', '/docs']) {
      expect((await send(h.url, path, { method: 'GET' })).status, path).toBe(200);
    }
  });

  it('with TRUST_PROXY off (the default), X-Forwarded-For does not change the address counted', async () => {
    for (let i = 0; i < 10; i++) {
      const answer = await send(h.url, CREATE, { body: { ticket_id: ticket }, headers: { 'X-Forwarded-For': `203.0.113.${i}` } });
      expect(answer.status).toBe(401);
    }
    const spoofed = await send(h.url, CREATE, {
      ...reply(world.keys.all),
      headers: { 'X-API-Key': world.keys.all, 'X-Forwarded-For': '198.51.100.77' },
    });
    expectRateLimited(spoofed, /IP address/);
  });

  it('behind a proxy TRUST_PROXY names, each forwarded client address has its own count', async () => {
    const url = proxied.url as string;
    const from = (ip: string, key: string) =>
      send(url, CREATE, { ...reply(key), headers: { 'X-API-Key': key, 'X-Forwarded-For': ip } });
    const keys = [world.keys.all, world.keys.clientA];
    for (let i = 0; i < 10; i++) expect((await from('203.0.113.7', keys[i % 2] as string)).status).toBe(202);
    const fresh = await addKey(h.db, '2.6.7', { name: 'Fresh', owner: world.author });
    expectRateLimited(await from('203.0.113.7', fresh), /IP address/);
    expect((await from('198.51.100.9', fresh)).status).toBe(202);
    expect((await send(url, CREATE, reply(fresh))).status).toBe(202); // the proxy's own address, 127.0.0.1
    expect(await redis.exists(`${ratePrefix()}:ip:203.0.113.7`, `${ratePrefix()}:ip:198.51.100.9`)).toBe(2);
  });

  it('the OpenAPI document lists 429 with Retry-After for every API operation, and for no operational endpoint', async () => {
    const doc = (await send(h.url, '/openapi.json', { method: 'GET' })).body;
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(item)) {
        const documented = operation.responses['429'];
        if (!path.startsWith('/api/')) {
          expect(documented, `${method} ${path}`).toBeUndefined();
          continue;
        }
        expect(documented?.headers?.['Retry-After'], `${method} ${path}`).toBeDefined();
      }
    }
  });

  it('a body over the limit answers 413 and a body that is not JSON 415, in the v1 envelope', async () => {
    // Each names its own limit: BODY_LIMIT_BYTES for create.php, BULK_BODY_LIMIT_BYTES for bulk.php.
    const large = (bytes: number, shown: string) => ({
      success: 'False',
      message: `The request body is too large: this endpoint takes at most ${bytes} bytes (${shown}).`,
    });
    const notJson = { success: 'False', message: 'Send the request body as JSON, with Content-Type: application/json.' };
    const key = { 'X-API-Key': world.keys.all };
    const big = 'x'.repeat(5000);
    expect(await send(h.url, CREATE, { body: { ticket_id: ticket, ticket_reply: big }, headers: key })).toMatchObject({
      status: 413,
      body: large(2048, '2 KiB'),
    });
    expect(await send(h.url, BULK, { body: [{ ticket_id: ticket, ticket_reply: big }], headers: key })).toMatchObject({
      status: 413,
      body: large(4096, '4 KiB'),
    });
    for (const path of [CREATE, BULK, COMMANDS]) {
      const answer = await send(h.url, path, { body: 'ticket_id=1', headers: { ...key, 'Content-Type': 'text/plain' } });
      expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 415, body: notJson });
    }
  });
});

describe('Rate limits while Redis is down', () => {
  let h: Harness;
  let world: World;
  let redis: ChildProcess | null = null;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedisServer(port);
    h = await startHarness({ generation: '2.6.7', roles: INTAKE_ONLY, env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(async () => {
    // The harness clears its Redis keys on close: give it a Redis to do so.
    const alive = redis !== null && redis.exitCode === null && redis.signalCode === null;
    if (!alive) redis = await startRedisServer(port);
    await h?.close();
    redis?.kill('SIGKILL');
  });

  it('fail open: reads still answer, create.php keeps its 503 with Retry-After, never a 500', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'before' }, { key: world.keys.all })).status).toBe(202);
    redis?.kill('SIGKILL');
    await once(redis as ChildProcess, 'exit');
    await new Promise((resolve) => setTimeout(resolve, 200));

    const read = await h.get(`${READ}?ticket_id=${ticket}`, { key: world.keys.all });
    expect(read.status).toBe(404); // nothing applied yet (no worker): the read ran, unlimited
    expect(read.body.success).toBe('False');
    const create = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'during' }, { key: world.keys.all });
    expect(create.status).toBe(503);
    expect(create.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(create.body).toEqual({ success: 'False', message: expect.any(String) });
    expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: 'wrong' })).body).toEqual(AUTH_FAILED);
  });
});
