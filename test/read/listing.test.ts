import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { NO_RESOURCE } from '../../src/http/routes/readReplies.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addRole, addTicket, addUser, seedWorld, type World } from '../helpers/itflow.js';
import { READ } from '../helpers/paths.js';

/**
 * GET read.php: the listing, its paging, its scope, and the exact v1 serialisation of a row.
 * Replies are written straight into ticket_replies, as ITFlow's web UI writes them: the
 * listing reads the database, not the queue.
 */

async function webReply(
  h: Harness,
  ticket: number,
  text: string,
  { type = 'Public', by = 1, at = '2026-11-20 09:30:00', archived = null as string | null } = {},
): Promise<number> {
  const [result] = (await h.db.query(
    `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_created_at,
                                 ticket_reply_archived_at, ticket_reply_by, ticket_reply_ticket_id) VALUES (?, ?, '00:15:00', ?, ?, ?, ?)`,
    [text, type, at, archived, by, ticket],
  )) as unknown as [{ insertId: number }];
  return result.insertId;
}

describe.each(GENERATIONS)('read.php listing (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  let ticketA: number;
  let ticketB: number;
  let ids: { a1: number; a2: number; archived: number; b1: number };

  beforeAll(async () => {
    h = await startHarness({ generation, roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, generation);
    ticketA = await addTicket(h.db, generation, { clientId: world.clientA });
    ticketB = await addTicket(h.db, generation, { clientId: world.clientB });
    ids = {
      a1: await webReply(h, ticketA, '<p>First on A</p>', { at: '2026-11-20 09:30:00' }),
      b1: await webReply(h, ticketB, 'Only on B', { type: 'Internal' }),
      archived: await webReply(h, ticketA, 'Archived on A', { archived: '2026-11-21 08:00:00' }),
      a2: await webReply(h, ticketA, 'Second on A', { type: 'Internal', at: '2026-11-20 10:00:00' }),
    };
  });
  afterAll(() => h?.close());

  const list = (query: string, key = world.keys.all) => h.get(`${READ}${query}`, { key });
  const idsOf = (body: { data: Array<{ ticket_reply_id: string }> }) => body.data.map((r) => Number(r.ticket_reply_id));

  it('reply_id answers that one reply, every column serialised as v1 does (strings, null, DATETIME text)', async () => {
    const answer = await list(`?reply_id=${ids.a1}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      success: 'True',
      count: 1,
      data: [
        {
          ticket_reply_id: String(ids.a1),
          ticket_reply: '<p>First on A</p>',
          ticket_reply_type: 'Public',
          ticket_reply_time_worked: '00:15:00',
          ticket_reply_created_at: '2026-11-20 09:30:00',
          ticket_reply_updated_at: null,
          ticket_reply_archived_at: null,
          ticket_reply_by: '1',
          ticket_reply_ticket_id: String(ticketA),
        },
      ],
    });
  });

  it('ticket_id lists that ticket’s replies newest first, archived ones hidden', async () => {
    const answer = await list(`?ticket_id=${ticketA}`);
    expect(answer.body.count).toBe(2);
    expect(idsOf(answer.body)).toEqual([ids.a2, ids.a1]);
  });

  it('include_archived=1 shows archived replies too', async () => {
    expect(idsOf((await list(`?ticket_id=${ticketA}&include_archived=1`)).body)).toEqual([ids.a2, ids.archived, ids.a1]);
  });

  it('no filter lists every reply the key may see, newest first', async () => {
    expect(idsOf((await list('')).body)).toEqual([ids.a2, ids.b1, ids.a1]);
  });

  it('limit, offset and the before_id cursor page through newest first', async () => {
    expect(idsOf((await list('?limit=2')).body)).toEqual([ids.a2, ids.b1]);
    expect(idsOf((await list('?limit=2&offset=2')).body)).toEqual([ids.a1]);
    expect(idsOf((await list(`?limit=2&before_id=${ids.b1}`)).body)).toEqual([ids.a1]);
    expect(idsOf((await list(`?ticket_id=${ticketA}&before_id=${ids.a2}`)).body)).toEqual([ids.a1]);
  });

  it.each([
    ['?limit=0', 'limit must be between 1 and 500.'],
    ['?limit=501', 'limit must be between 1 and 500.'],
    ['?limit=ten', 'limit must be an integer.'],
    ['?offset=-1', 'offset must be between 0 and 10000000.'],
    ['?before_id=x', 'before_id must be an integer.'],
    ['?include_archived=yes', 'include_archived must be 1 or 0.'],
  ])('bad paging %s answers 400 "%s"', async (query, message) => {
    expect(await list(query)).toMatchObject({ status: 400, body: { success: 'False', message } });
  });

  it('a client-restricted key never sees another client’s reply, even by reply_id', async () => {
    expect(idsOf((await list('', world.keys.clientA)).body)).toEqual([ids.a2, ids.a1]);
    const byId = await list(`?reply_id=${ids.b1}`, world.keys.clientA);
    expect(byId).toMatchObject({ status: 404, body: { success: 'False', message: NO_RESOURCE } });
    expect((await list(`?ticket_id=${ticketB}`, world.keys.clientA)).status).toBe(404);
  });

  it('nothing found answers 404 with v1’s message', async () => {
    expect(await list('?reply_id=999999')).toEqual({
      status: 404,
      headers: expect.anything(),
      body: { success: 'False', message: NO_RESOURCE },
    });
  });

  it('a bad key answers 401, and POST is not a read (405)', async () => {
    expect((await list('', 'wrong')).status).toBe(401);
    expect((await h.post(READ, {}, { key: world.keys.all })).status).toBe(405);
  });
});

describe('read.php permissions (ITFlow 2.6.7: the key runs as a user)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    const world = await seedWorld(h.db, '2.6.7');
    await webReply(h, await addTicket(h.db, '2.6.7', { clientId: world.clientA }), 'Visible');
  });
  afterAll(() => h?.close());

  it('a user with read-only ticket access may list; one with none may not (403)', async () => {
    const reader = await addKey(h.db, '2.6.7', {
      name: 'Reader',
      owner: await addUser(h.db, { name: 'Reader', roleId: await addRole(h.db, { support: 1 }) }),
    });
    const outsider = await addKey(h.db, '2.6.7', {
      name: 'Outsider',
      owner: await addUser(h.db, { name: 'Outsider', roleId: await addRole(h.db, { support: 0 }) }),
    });
    expect((await h.get(READ, { key: reader })).status).toBe(200);
    expect(await h.get(READ, { key: outsider })).toMatchObject({
      status: 403,
      body: { message: 'The user linked to this API key does not have permission for this action.' },
    });
  });
});
