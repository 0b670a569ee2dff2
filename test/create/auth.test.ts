import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS } from '../../src/demo/itflowDatabase.js';
import { deleteQueueKeys, type Harness, startHarness } from '../helpers/harness.js';
import {
  addKey,
  addRole,
  addTicket,
  addUser,
  repliesOf,
  seedWorld,
  setClientPermissions,
  type World,
} from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * Who may write what: API keys of both ITFlow generations, their client scope, and the
 * newer generation's user permissions.
 */
const WAIT = { Prefer: 'wait=10' };
const AUTH_FAILED = { success: 'False', message: 'Authentication failed. API key is invalid or has expired.' };

describe.each(GENERATIONS)('API keys and client scope (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation, env: { AUTH_FAILURE_LOGS_PER_MINUTE: '3' } });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  it('accepts the key as X-API-Key header, api_key body field, or api_key query parameter', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const viaHeader = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'header' }, { key: world.keys.all, headers: WAIT });
    const viaBody = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'body', api_key: world.keys.all }, { headers: WAIT });
    const viaQuery = await h.post(
      `${CREATE}?api_key=${world.keys.all}`,
      { ticket_id: ticket, ticket_reply: 'query' },
      { headers: WAIT },
    );
    expect([viaHeader.status, viaBody.status, viaQuery.status]).toEqual([201, 201, 201]);
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['header', 'body', 'query']);
  });

  it('a missing, unknown or expired key answers 401 and writes nothing', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    for (const key of [undefined, 'no-such-key', world.keys.expired]) {
      const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key, headers: WAIT });
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(AUTH_FAILED);
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('a wrong key leaves an API/Failed logs row as ITFlow does, at most N per IP per minute', async () => {
    await h.query("DELETE FROM logs WHERE log_type = 'API'");
    await deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:authfail`); // earlier tests' attempts
    for (let i = 0; i < 6; i++)
      await h.post(CREATE, { ticket_id: 1, ticket_reply: 'x' }, { key: `wrong-${i}`, headers: { 'User-Agent': 'probe/1.0' } });
    const rows = await h.query("SELECT * FROM logs WHERE log_type = 'API'");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({
      log_action: 'Failed',
      log_description: `Incorrect or expired key (endpoint: ${CREATE})`,
      log_ip: '127.0.0.1',
      log_user_agent: 'probe/1.0',
    });
  });

  it('a client-restricted key may write its own client’s tickets only', async () => {
    const own = await addTicket(h.db, generation, { clientId: world.clientA });
    const other = await addTicket(h.db, generation, { clientId: world.clientB });
    expect(
      (await h.post(CREATE, { ticket_id: own, ticket_reply: 'mine' }, { key: world.keys.clientA, headers: WAIT })).status,
    ).toBe(201);
    const refused = await h.post(
      CREATE,
      { ticket_id: other, ticket_reply: 'theirs' },
      { key: world.keys.clientA, headers: WAIT },
    );
    expect(refused).toMatchObject({
      status: 404,
      body: { success: 'False', message: `Ticket ${other} was not found within this API key's scope.` },
    });
    expect(await repliesOf(h.db, other)).toHaveLength(0);
  });

  it('client_id narrows an all-clients key to one client', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const wrong = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'x', client_id: world.clientB },
      { key: world.keys.all },
    );
    expect(wrong.status).toBe(404);
    const right = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'x', client_id: world.clientA },
      { key: world.keys.all, headers: WAIT },
    );
    expect(right.status).toBe(201);
  });

  it('a ticket with no client (client 0) is writable by an all-clients key', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: 0 });
    expect((await h.post(CREATE, { ticket_id: ticket, status: 3 }, { key: world.keys.all, headers: WAIT })).status).toBe(201);
  });
});

describe('ITFlow 2.4.4: a key scoped to one client', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.4.4' });
    world = await seedWorld(h.db, '2.4.4');
  });
  afterAll(() => h?.close());

  it('does not see tickets that have no client, as ticket_client_id LIKE N never matches 0', async () => {
    const ticket = await addTicket(h.db, '2.4.4', { clientId: 0 });
    expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: world.keys.clientA })).status).toBe(404);
  });

  it('writes replies with ticket_reply_by 0, the key having no user', async () => {
    const ticket = await addTicket(h.db, '2.4.4', { clientId: world.clientA });
    await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: world.keys.clientA, headers: WAIT });
    expect((await repliesOf(h.db, ticket))[0]?.ticket_reply_by).toBe(0);
  });
});

describe('ITFlow 2.6.7: the key runs as a user', () => {
  let h: Harness;
  let world: World;
  const key = async (user: { support?: number; admin?: boolean; type?: number; status?: number; archived?: boolean }) => {
    const roleId = await addRole(h.db, { support: user.support ?? 0, admin: user.admin ?? false });
    const userId = await addUser(h.db, { name: `User ${Math.random()}`, roleId, ...user });
    return { userId, secret: await addKey(h.db, '2.6.7', { name: 'Key', owner: userId }) };
  };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('a user with read-only or no support permission gets 403 and writes nothing', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    for (const support of [1, 0]) {
      const { secret } = await key({ support });
      const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: secret, headers: WAIT });
      expect(answer).toMatchObject({
        status: 403,
        body: { success: 'False', message: 'The user linked to this API key does not have permission for this action.' },
      });
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('an inactive, archived or non-agent user gets 403, and so does a key tied to no user', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    for (const user of [{ status: 0 }, { archived: true }, { type: 2 }]) {
      const { secret } = await key({ admin: true, ...user });
      const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: secret });
      expect(answer).toMatchObject({
        status: 403,
        body: { message: 'The user linked to this API key is inactive, archived, or invalid.' },
      });
    }
    const orphan = await addKey(h.db, '2.6.7', { name: 'Legacy', owner: 0 });
    expect(await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: orphan })).toMatchObject({
      status: 403,
      body: { message: 'This API key is not tied to a user and is no longer valid. Please recreate it.' },
    });
  });

  it('a write-level user with a deny list may write every client but the denied ones', async () => {
    const { userId, secret } = await key({ support: 2 });
    await setClientPermissions(h.db, userId, 'deny', [world.clientB]);
    const allowed = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const denied = await addTicket(h.db, '2.6.7', { clientId: world.clientB });
    expect((await h.post(CREATE, { ticket_id: allowed, ticket_reply: 'ok' }, { key: secret, headers: WAIT })).status).toBe(201);
    expect((await h.post(CREATE, { ticket_id: denied, ticket_reply: 'no' }, { key: secret, headers: WAIT })).status).toBe(404);
    expect((await repliesOf(h.db, allowed))[0]?.ticket_reply_by).toBe(userId);
  });

  it('an allow-listed user may also write tickets with no client, as ITFlow includes client 0', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: 0 });
    expect(
      (await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: world.keys.clientA, headers: WAIT })).status,
    ).toBe(201);
  });
});
