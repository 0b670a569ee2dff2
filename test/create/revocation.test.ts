import type { ResultSetHeader } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
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
import { BULK, CREATE } from '../helpers/paths.js';

// Revoking access takes effect: an expired key, an archived or deactivated user, a client
// permission taken away. The intake caches look-ups for AUTH_CACHE_SECONDS and never answers
// from an entry older than that, however long the key sat idle; the worker reads the key, its
// user and its scope from MySQL inside the transaction that applies the command, so a command
// accepted just before a revocation is refused without writing anything.

const WAIT = { Prefer: 'wait=10' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Revocable {
  name: string;
  generations: Generation[];
  /** Revokes the access `secret` had to `ticket`; answers are then `status` with `message`. */
  revoke(h: Harness, key: { secret: string; userId: number; keyId: number }, world: World): Promise<void>;
  status: number;
  message: string;
}

const REVOCATIONS: Revocable[] = [
  {
    name: 'the key expires',
    generations: [...GENERATIONS],
    revoke: (h, key) =>
      h.query("UPDATE api_keys SET api_key_expire = '2020-01-01' WHERE api_key_id = ?", [key.keyId]).then(() => {}),
    status: 401,
    message: 'Authentication failed. API key is invalid or has expired.',
  },
  {
    name: 'its user is archived',
    generations: ['2.6.7'],
    revoke: (h, key) =>
      h.query("UPDATE users SET user_archived_at = '2026-01-01 00:00:00' WHERE user_id = ?", [key.userId]).then(() => {}),
    status: 403,
    message: 'The user linked to this API key is inactive, archived, or invalid.',
  },
  {
    name: 'its user is deactivated',
    generations: ['2.6.7'],
    revoke: (h, key) => h.query('UPDATE users SET user_status = 0 WHERE user_id = ?', [key.userId]).then(() => {}),
    status: 403,
    message: 'The user linked to this API key is inactive, archived, or invalid.',
  },
  {
    name: 'its user loses the client',
    generations: ['2.6.7'],
    revoke: (h, key, world) => setClientPermissions(h.db, key.userId, 'allow', [world.clientB]),
    status: 404,
    message: 'was not found within this API key',
  },
  {
    name: 'its key is narrowed to another client',
    generations: ['2.4.4'],
    revoke: (h, key, world) =>
      h.query('UPDATE api_keys SET api_key_client_id = ? WHERE api_key_id = ?', [world.clientB, key.keyId]).then(() => {}),
    status: 404,
    message: 'was not found within this API key',
  },
];

/** A fresh key with write access to client A's tickets (its own user on ITFlow ≥ 2.4.7). */
async function writerKey(h: Harness, generation: Generation) {
  let userId = 0;
  let owner = 0;
  if (generation !== '2.4.4') {
    userId = await addUser(h.db, { name: `Writer ${Math.random()}`, roleId: await addRole(h.db, { support: 2 }) });
    owner = userId;
  }
  const secret = await addKey(h.db, generation, { name: 'Revocable', owner });
  const [row] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [secret]);
  return { secret, userId, keyId: Number(row?.api_key_id) };
}

describe.each(GENERATIONS)('revocation at the intake, after the key sat idle (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation, env: { AUTH_CACHE_SECONDS: '1' } });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  for (const revocation of REVOCATIONS.filter((r) => r.generations.includes(generation))) {
    it(`${revocation.name}: refused once AUTH_CACHE_SECONDS have passed, single and bulk, nothing written`, async () => {
      const key = await writerKey(h, generation);
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      const before = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'before' }, { key: key.secret, headers: WAIT });
      expect(before.status).toBe(201);
      await revocation.revoke(h, key, world);
      await sleep(2_500); // idle for longer than the cache keeps anything

      const single = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'after' }, { key: key.secret, headers: WAIT });
      expect(single.status).toBe(revocation.status);
      expect(single.body.message).toContain(revocation.message);
      const bulk = await h.post(BULK, [{ ticket_id: ticket, ticket_reply: 'after, in bulk' }], {
        key: key.secret,
        headers: WAIT,
      });
      if (revocation.status === 404) {
        expect(bulk.status).toBe(400);
        expect(bulk.body.data[0]).toMatchObject({ http_status: 404 });
      } else {
        expect(bulk).toMatchObject({ status: revocation.status, body: { message: revocation.message } });
      }
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['before']);
    });
  }
});

describe.each(GENERATIONS)('revocation checked by the worker, in the apply transaction (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    // A long cache: the intake still takes the key as valid after the revocation, so only the
    // worker's own check can refuse the command.
    h = await startHarness({ generation, env: { AUTH_CACHE_SECONDS: '300' } });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  for (const revocation of REVOCATIONS.filter((r) => r.generations.includes(generation))) {
    it(`${revocation.name}: a command accepted on the cached key fails ${revocation.status} and writes nothing`, async () => {
      const key = await writerKey(h, generation);
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      const before = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'before' }, { key: key.secret, headers: WAIT });
      expect(before.status).toBe(201);
      await revocation.revoke(h, key, world);

      const single = await h.post(
        CREATE,
        { ticket_id: ticket, ticket_reply: 'after', status: 3 },
        { key: key.secret, headers: WAIT },
      );
      expect(single.status).toBe(revocation.status);
      expect(single.body.message).toContain(revocation.message);
      const bulk = await h.post(BULK, [{ ticket_id: ticket, ticket_reply: 'after, in bulk' }], {
        key: key.secret,
        headers: WAIT,
      });
      expect(bulk.status).toBe(200);
      expect(bulk.body.data[0]).toMatchObject({ status: 'failed', http_status: revocation.status });
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['before']);
      const [row] = await h.query('SELECT ticket_status FROM tickets WHERE ticket_id = ?', [ticket]);
      expect(row?.ticket_status).toBe(2);
    });
  }
});

describe('who may set an author (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('a technician with write access to every client may not attribute replies; an admin may', async () => {
    const tech = await addUser(h.db, { name: 'Unrestricted Tech', roleId: await addRole(h.db, { support: 3 }) });
    const techKey = await addKey(h.db, '2.6.7', { name: 'Tech key', owner: tech });
    const [inserted] = await h.db.query<ResultSetHeader>('INSERT INTO contacts (contact_name, contact_client_id) VALUES (?, ?)', [
      'Client Contact',
      world.clientA,
    ]);
    const contact = { id: Number(inserted.insertId) };
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const items = [
      { ticket_id: ticket, ticket_reply: 'as the admin', created_at: '2026-01-01 09:00:00', author: { user_id: world.author } },
      {
        ticket_id: ticket,
        ticket_reply: 'as the client',
        created_at: '2026-01-01 09:00:00',
        author: { contact_id: contact?.id },
      },
    ];
    const refused = await h.post(BULK, items, { key: techKey, headers: WAIT });
    expect(refused.status).toBe(400);
    for (const item of refused.body.data) {
      expect(item).toEqual({ http_status: 403, message: 'Setting an author needs an admin API key.' });
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);

    const allowed = await h.post(BULK, items, { key: world.keys.all, headers: WAIT });
    expect(allowed.status).toBe(200);
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply_by, r.ticket_reply_type])).toEqual([
      [world.author, 'Internal'],
      [contact?.id, 'Client'],
    ]);
  });
});
