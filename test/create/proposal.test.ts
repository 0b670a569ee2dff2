import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailNotAvailable, NOTHING_TO_DO } from '../../src/commands/createReply.js';
import { GENERATIONS } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * The proposal's test plan for create.php (seed/ticket-replies-proposal.txt), line by line,
 * through HTTP against both ITFlow schema generations.
 */
const WAIT = { Prefer: 'wait=10' };

describe.each(GENERATIONS)('create.php, the proposal test plan (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  it('a reply with just ticket_reply is stored as an Internal row by the key’s author', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: '<p>Checked the logs.</p>' },
      { key: world.keys.all, headers: WAIT },
    );

    expect(answer.status).toBe(201);
    expect(answer.body.success).toBe('True');
    const [reply] = await repliesOf(h.db, ticket);
    expect(answer.body.data[0].insert_id).toBe(reply?.ticket_reply_id);
    expect(reply).toMatchObject({
      ticket_reply: '<p>Checked the logs.</p>',
      ticket_reply_type: 'Internal',
      ticket_reply_time_worked: '00:00:00',
      ticket_reply_by: world.author,
    });
  });

  it('public_reply_type=1 stores the reply as Public', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'On my way.', public_reply_type: 1 },
      { key: world.keys.all, headers: WAIT },
    );

    expect(answer.status).toBe(201);
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply_type)).toEqual(['Public']);
  });

  it('public_reply_type=2 is refused with the helper message and writes nothing where ITFlow has no mail set up', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const [logsBefore] = await h.query('SELECT COUNT(*) AS n FROM logs');
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Emailed?', public_reply_type: 2, status: 4 },
      { key: world.keys.all, headers: WAIT },
    );

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      success: 'False',
      message: emailNotAvailable(
        'ITFlow has no mail server configured (Admin > Settings > Mail: SMTP provider), so it would not email the client',
      ),
    });
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(2);
    expect(await h.query('SELECT COUNT(*) AS n FROM logs')).toEqual([logsBefore]);
    expect(await h.query('SELECT * FROM rq_commands WHERE ticket_id = ?', [ticket])).toEqual([]);
  });

  it('hours, minutes and seconds become ticket_reply_time_worked (1,2,3 → 01:02:03)', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Replaced the disk.', hours: 1, minutes: '2', seconds: 3 },
      { key: world.keys.all, headers: WAIT },
    );

    expect(answer.status).toBe(201);
    expect((await repliesOf(h.db, ticket))[0]?.ticket_reply_time_worked).toBe('01:02:03');
  });

  it('a status-only command resolves the ticket and answers insert_id 0', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 2 });
    const answer = await h.post(CREATE, { ticket_id: ticket, status: 4 }, { key: world.keys.all, headers: WAIT });

    expect(answer.status).toBe(201);
    expect(answer.body.data[0].insert_id).toBe(0);
    const row = await ticketRow(h.db, ticket);
    expect(row.ticket_status).toBe(4);
    expect(row.ticket_resolved_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('a missing ticket_id answers "ticket_id is required."', async () => {
    const answer = await h.post(CREATE, { ticket_reply: 'Orphan' }, { key: world.keys.all });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ success: 'False', message: 'ticket_id is required.' });
  });

  it('neither a reply nor a status > 0 answers the two-of message', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    for (const body of [{ ticket_id: ticket }, { ticket_id: ticket, ticket_reply: '   ', status: 0 }]) {
      const answer = await h.post(CREATE, body, { key: world.keys.all });
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ success: 'False', message: NOTHING_TO_DO });
    }
  });

  it('a ticket outside the key’s client scope is refused (404) and nothing is written', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientB });
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Not mine', status: 4 },
      { key: world.keys.clientA, headers: WAIT },
    );

    expect(answer.status).toBe(404);
    expect(answer.body.success).toBe('False');
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(2);
  });

  it('the first Public reply stamps ticket_first_response_at; Internal replies never do', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Internal note' }, { key: world.keys.all, headers: WAIT });
    expect((await ticketRow(h.db, ticket)).ticket_first_response_at).toBeNull();

    await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Hello!', public_reply_type: 1 },
      { key: world.keys.all, headers: WAIT },
    );
    const first = (await ticketRow(h.db, ticket)).ticket_first_response_at;
    const [, publicReply] = await repliesOf(h.db, ticket);
    expect(first).toBe(publicReply?.ticket_reply_created_at);

    await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Again', public_reply_type: 1 },
      { key: world.keys.all, headers: WAIT },
    );
    expect((await ticketRow(h.db, ticket)).ticket_first_response_at).toBe(first);
  });
});
