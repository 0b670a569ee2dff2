import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Harness, startHarness, uniqueName } from '../helpers/harness.js';
import { addTicket, createMysqlUser, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, READ } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The all-in-one process at LOG_LEVEL=info, as an operator runs it, with a MySQL password in
 * DATABASE_URL. Its whole output is read back: request lines carry the request id, accepted
 * and applied commands their command id, and no API key (valid or not, in the header, the
 * query string or the body) and no password ever appears.
 */

describe('logs: request and command ids in, secrets out', () => {
  let h: Harness;
  let world: World;
  let admin: mysql.Connection;
  const user = uniqueName('l').slice(0, 32);
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let dropUser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    admin = await mysql.createConnection({ uri: inject('mysqlUrl') });
    dropUser = await createMysqlUser(admin, h.config.DATABASE_URL.split('/').pop() as string, user, password);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await dropUser?.();
    await admin?.end();
    await h?.close();
  });

  it('carries request and command ids, and never an API key or the database password', async () => {
    const databaseUrl = new URL(h.config.DATABASE_URL);
    databaseUrl.username = user;
    databaseUrl.password = password;
    const service = spawnEntry('workers/service.ts', h.processEnv({ DATABASE_URL: databaseUrl.toString(), LOG_LEVEL: 'info' }));
    const url = JSON.parse(await service.waitFor(/"ITFlow Reply Queue started"/)).url as string;

    const key = world.keys.all;
    const badKey = `bad-${randomBytes(12).toString('hex')}`;
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const send = async (
      requestId: string,
      path: string,
      body: unknown,
      headers: Record<string, string> = {},
      method = 'POST',
    ): Promise<{ status: number; body: any }> => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId, ...headers },
        body: method === 'POST' ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, body: await response.json() };
    };

    const accepted = new Map<string, string[]>(); // request id → command ids
    const expectAccepted = (requestId: string, answer: { status: number; body: any }) => {
      expect(answer.status, JSON.stringify(answer.body)).toBe(202);
      accepted.set(
        requestId,
        answer.body.data.map((item: { command_id: string }) => item.command_id),
      );
    };
    expectAccepted(
      'obs-header',
      await send('obs-header', CREATE, { ticket_id: ticket, ticket_reply: 'a' }, { 'X-API-Key': key }),
    );
    expectAccepted('obs-query', await send('obs-query', `${CREATE}?api_key=${key}`, { ticket_id: ticket, ticket_reply: 'b' }));
    expectAccepted('obs-body', await send('obs-body', CREATE, { ticket_id: ticket, ticket_reply: 'c', api_key: key }));
    // A percent-encoded parameter name is still api_key to the query parser, so to the redaction.
    expectAccepted(
      'obs-encoded-query',
      await send('obs-encoded-query', `${CREATE}?api%5Fkey=${key}`, { ticket_id: ticket, ticket_reply: 'f' }),
    );
    expectAccepted(
      'obs-bulk',
      await send('obs-bulk', `${BULK}?api_key=${key}`, [
        { ticket_id: ticket, ticket_reply: 'd' },
        { ticket_id: ticket, ticket_reply: 'e' },
      ]),
    );
    const reply = { ticket_id: ticket, ticket_reply: 'refused' };
    expect((await send('obs-bad-header', CREATE, reply, { 'X-API-Key': badKey })).status).toBe(401);
    expect((await send('obs-bad-query', `${CREATE}?api_key=${badKey}&x=1`, reply)).status).toBe(401);
    expect((await send('obs-bad-body', CREATE, { ...reply, api_key: badKey })).status).toBe(401);
    expect((await send('obs-bad-encoded', `${CREATE}?x=1&%61pi%5fkey=${badKey}`, reply)).status).toBe(401);
    expect((await send('obs-bad-bearer', CREATE, reply, { Authorization: `Bearer ${badKey}` })).status).toBe(401);
    expect((await send('obs-read', `${READ}?api_key=${key}&ticket_id=${ticket}`, undefined, {}, 'GET')).status).toBeLessThan(500);

    const commandIds = [...accepted.values()].flat();
    for (const id of commandIds) await service.waitFor(new RegExp(`"commandId":"${id}".*"command applied"`));
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    const output = service.output();
    expect(output).not.toContain(key);
    expect(output).not.toContain(badKey);
    expect(output).not.toContain(password);

    const lines = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, any>);
    // Every request is logged with its request id, and keys in URLs are masked.
    for (const requestId of [
      'obs-header',
      'obs-query',
      'obs-body',
      'obs-encoded-query',
      'obs-bulk',
      'obs-bad-header',
      'obs-bad-query',
      'obs-bad-encoded',
      'obs-read',
    ]) {
      const completed = lines.find((l) => l.reqId === requestId && l.msg === 'request completed');
      expect(completed, requestId).toBeDefined();
    }
    const incoming = lines.filter((l) => l.msg === 'incoming request').map((l) => l.req.url as string);
    expect(incoming).toContain(`${CREATE}?api_key=[redacted]`);
    expect(incoming).toContain(`${CREATE}?api_key=[redacted]&x=1`);
    expect(incoming).toContain(`${CREATE}?api%5Fkey=[redacted]`);
    expect(incoming).toContain(`${CREATE}?x=1&%61pi%5fkey=[redacted]`);

    // The accepting request's log names each command it queued.
    for (const requestId of ['obs-header', 'obs-query', 'obs-body', 'obs-encoded-query']) {
      const [commandId] = accepted.get(requestId) as string[];
      expect(lines.find((l) => l.msg === 'command accepted' && l.reqId === requestId)).toMatchObject({
        commandId,
        ticketId: ticket,
      });
    }
    expect(lines.find((l) => l.msg === 'commands accepted' && l.reqId === 'obs-bulk')).toMatchObject({
      accepted: 2,
      commandIds: accepted.get('obs-bulk'),
    });
    // And the worker's line for each applied command carries the same id.
    for (const commandId of commandIds) {
      expect(lines.find((l) => l.msg === 'command applied' && l.commandId === commandId)).toMatchObject({ ticketId: ticket });
    }
  }, 60_000);
});
