import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { rawRequest } from '../helpers/rawHttp.js';

/**
 * Requests at the edges of HTTP: paths that climb out of the docs' static files, URLs that
 * are not valid percent-encoding, compressed bodies. Each gets the v1 envelope with an honest
 * status, never a 500.
 */
const UNKNOWN = { success: 'False', message: 'Unknown endpoint.' };

describe('requests at the edges of HTTP', () => {
  let h: Harness;
  let world: World;
  let ticket: number;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
  });
  afterAll(() => h?.close());

  it.each([
    '/docs/static/../..',
    '/docs/static/../../../etc/passwd',
    '/docs/static/%2e%2e/%2e%2e',
    '/docs/static/%2E%2E/%2E%2E/package.json',
    '/docs/static/..%5c..%5cpackage.json',
    '/docs/static/./../static/index.html',
  ])('GET %s answers 404 in the v1 envelope', async (path) => {
    const answer = await rawRequest(h.url, { path });
    expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 404, body: UNKNOWN });
  });

  it('the docs still serve their own files', async () => {
    const answer = await rawRequest(h.url, { path: '/docs/static/swagger-ui.css' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/css/);
  });

  it.each(['/docs/static/%', '/api/v1/tickets/replies/read.php/%c0%ae'])(
    'GET %s (bad percent-encoding) answers 400 in the v1 envelope',
    async (path) => {
      const answer = await rawRequest(h.url, { path });
      expect(answer).toMatchObject({ status: 400, body: { success: 'False', message: 'The request URL is not valid.' } });
      expect(Object.keys(answer.body).sort()).toEqual(['message', 'success']);
    },
  );

  it.each([
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
  ] as const)('a %s-encoded body answers 415 naming the encoding', async (encoding, compress) => {
    const answer = await rawRequest(h.url, {
      method: 'POST',
      path: CREATE,
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding, 'X-API-Key': world.keys.all },
      body: compress(Buffer.from(JSON.stringify({ ticket_id: ticket, ticket_reply: 'compressed' }))),
    });
    expect(answer).toMatchObject({
      status: 415,
      headers: { 'accept-encoding': 'identity' },
      body: { success: 'False', message: `Send the request body uncompressed (Content-Encoding: ${encoding} is not accepted).` },
    });
  });

  it('Content-Encoding: identity is an uncompressed body, accepted as usual', async () => {
    const answer = await rawRequest(h.url, {
      method: 'POST',
      path: CREATE,
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'identity', 'X-API-Key': world.keys.all },
      body: Buffer.from(JSON.stringify({ ticket_id: ticket, ticket_reply: 'plain' })),
    });
    expect(answer.status).toBe(202);
  });
});
