import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';

/**
 * ITFlow ≥ 2.4.7 ships its own /api/v1/ticket_replies/create.php and read.php. The service
 * answers those paths with ITFlow's field names, answer shapes and ordering, mapped onto the
 * same commands and queries, so a client written for ITFlow's endpoints works unchanged.
 */
const CREATE = '/api/v1/ticket_replies/create.php';
const READ = '/api/v1/ticket_replies/read.php';

describe.each(GENERATIONS)('ITFlow’s newer path names (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  const post = (body: object, headers: Record<string, string> = {}) => h.post(CREATE, body, { key: world.keys.all, headers });

  it('create.php answers synchronously with insert_id, using ITFlow’s field names', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await post({
      ticket_id: ticket,
      ticket_reply: 'Rebooted the switch.',
      ticket_reply_type: 'public',
      ticket_reply_time_worked: '1:02:03',
      ticket_status: 4,
    });
    expect(answer.status).toBe(201);
    const [reply] = await repliesOf(h.db, ticket);
    expect(answer.body).toMatchObject({ success: 'True', count: 1, data: [{ insert_id: reply?.ticket_reply_id }] });
    expect(reply).toMatchObject({
      ticket_reply_type: 'Public',
      ticket_reply_time_worked: '01:02:03',
      ticket_reply_by: world.author,
    });
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(4);
  });

  it('create.php defaults to Internal, and answers 202 when the client prefers respond-async', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await post({ ticket_id: ticket, ticket_reply: 'Later is fine' }, { Prefer: 'respond-async' });
    expect(answer.status).toBe(202);
    await h.finished(answer.body.data[0].command_id);
    expect((await repliesOf(h.db, ticket))[0]?.ticket_reply_type).toBe('Internal');
  });

  it.each([
    [{ ticket_reply: 'x' }, 'ticket_id is required.'],
    [{ ticket_id: 1, ticket_reply: 'x', ticket_reply_type: 'Client' }, 'ticket_reply_type must be Internal or Public.'],
    [
      { ticket_id: 1, ticket_reply: 'x', ticket_reply_time_worked: '1h' },
      'ticket_reply_time_worked must be HH:MM:SS (at most 838:59:59).',
    ],
    [{ ticket_id: 1 }, 'Nothing to do: send a ticket_reply, a ticket_status > 0, or both.'],
  ])('create.php refuses %j with "%s"', async (body, message) => {
    expect(await post(body)).toMatchObject({ status: 400, body: { success: 'False', message } });
  });

  it('read.php lists as ITFlow’s does: oldest first, with the ticket reference and the author’s name', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, subject: 'Mail flow' });
    await post({ ticket_id: ticket, ticket_reply: 'first', ticket_reply_type: 'Public' });
    await post({ ticket_id: ticket, ticket_reply: 'second' });
    const answer = await h.get(`${READ}?ticket_id=${ticket}`, { key: world.keys.all });
    expect(answer.status).toBe(200);
    expect(answer.body.data.map((r: { ticket_reply: string }) => r.ticket_reply)).toEqual(['first', 'second']);
    const [ticketRowData] = await h.query('SELECT ticket_number FROM tickets WHERE ticket_id = ?', [ticket]);
    expect(answer.body.data[0]).toMatchObject({
      ticket_reply_type: 'Public',
      ticket_reply_ticket_id: String(ticket),
      ticket_prefix: 'TCK-',
      ticket_number: String(ticketRowData?.ticket_number),
      ticket_subject: 'Mail flow',
      ticket_client_id: String(world.clientA),
      ticket_reply_by_name: generation === '2.4.4' ? null : 'Integration Admin',
    });
  });

  it('read.php filters by ticket_reply_id and by type, case-insensitively', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const pub = await post({ ticket_id: ticket, ticket_reply: 'public one', ticket_reply_type: 'Public' });
    await post({ ticket_id: ticket, ticket_reply: 'internal one' });
    const byType = await h.get(`${READ}?ticket_id=${ticket}&type=public`, { key: world.keys.all });
    expect(byType.body.data.map((r: { ticket_reply: string }) => r.ticket_reply)).toEqual(['public one']);
    const byId = await h.get(`${READ}?ticket_reply_id=${pub.body.data[0].insert_id}`, { key: world.keys.all });
    expect(byId.body).toMatchObject({ count: 1, data: [{ ticket_reply: 'public one' }] });
    expect((await h.get(`${READ}?ticket_id=${ticket}&type=Email`, { key: world.keys.all })).status).toBe(400);
  });
});
