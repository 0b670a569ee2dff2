import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { COMMANDS } from '../helpers/paths.js';

/**
 * ITFlow ≥ 2.4.7 ships its own /api/v1/ticket_replies/create.php and read.php. The service
 * answers those paths with ITFlow's field names, answer shapes and ordering, mapped onto the
 * same commands and queries, so a client written for ITFlow's endpoints works unchanged.
 */
const CREATE = '/api/v1/ticket_replies/create.php';
const READ = '/api/v1/ticket_replies/read.php';
const RESOLVE = '/api/v1/tickets/resolve.php';

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

  it('resolve.php resolves as ITFlow’s does: status, resolved and first-response times, one history and two log rows', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 2 });
    const answer = await h.post(RESOLVE, { ticket_id: ticket, api_key: world.keys.all });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ success: 'True', count: 1, data: [{ command_id: expect.any(String) }] });
    const row = await ticketRow(h.db, ticket);
    expect(row.ticket_status).toBe(4);
    expect(row.ticket_resolved_at).not.toBeNull();
    expect(row.ticket_first_response_at).toBe(row.ticket_resolved_at);
    expect(await repliesOf(h.db, ticket)).toEqual([]);
    const logs = await h.query(
      'SELECT log_type, log_action, log_description FROM logs WHERE log_entity_id = ? OR log_description LIKE ?',
      [ticket, `%TCK-${row.ticket_number} %`],
    );
    expect(logs.map((l) => `${l.log_type}/${l.log_action}`).sort()).toEqual(['API/Success', 'Ticket/Resolved']);
    const history = await h.query(
      'SELECT ticket_history_description AS d FROM ticket_history WHERE ticket_history_ticket_id = ?',
      [ticket],
    );
    // ITFlow 2.4.4's resolve.php writes no ticket_history row; the newer one does.
    expect(history.map((r) => r.d)).toEqual(generation === '2.4.4' ? [] : ['Resolved via the API (All clients key)']);
    const status = await h.get(`${COMMANDS}?command_id=${answer.body.data[0].command_id}`, { key: world.keys.all });
    expect(status.body.data[0]).toMatchObject({ status: 'applied', insert_id: 0, ticket_id: ticket });
  });

  it('resolve.php refuses a ticket that is already resolved or closed, and writes nothing', async () => {
    const resolved = await addTicket(h.db, generation, { clientId: world.clientA, status: 4 });
    await h.query('UPDATE tickets SET ticket_resolved_at = ? WHERE ticket_id = ?', ['2026-01-01 00:00:00', resolved]);
    const closed = await addTicket(h.db, generation, { clientId: world.clientA, status: 5, closedAt: '2026-01-01 00:00:00' });
    const post = (ticket: number) => h.post(RESOLVE, { ticket_id: ticket }, { key: world.keys.all });
    expect(await post(resolved)).toMatchObject({
      status: 409,
      body: { success: 'False', message: 'Ticket is already resolved.' },
    });
    expect(await post(closed)).toMatchObject({ status: 409, body: { success: 'False', message: 'Ticket is closed.' } });
    expect((await ticketRow(h.db, resolved)).ticket_resolved_at).toBe('2026-01-01 00:00:00');
    const logs = await h.query('SELECT COUNT(*) AS n FROM logs WHERE log_entity_id IN (?, ?)', [resolved, closed]);
    expect(Number(logs[0]?.n)).toBe(0);
  });

  it.each([
    [{}, 400, 'ticket_id is required.'],
    [{ ticket_id: 'abc' }, 400, 'ticket_id must be an integer.'],
    [{ ticket_id: 999_999 }, 404, "Ticket 999999 was not found within this API key's scope."],
  ])('resolve.php refuses %j with %i "%s"', async (body, status, message) => {
    expect(await h.post(RESOLVE, body, { key: world.keys.all })).toMatchObject({ status, body: { success: 'False', message } });
  });

  it('resolve.php keeps to the key’s clients, and to the client_id it is given', async () => {
    const other = await addTicket(h.db, generation, { clientId: world.clientB });
    expect((await h.post(RESOLVE, { ticket_id: other }, { key: world.keys.clientA })).status).toBe(404);
    expect((await h.post(RESOLVE, { ticket_id: other, client_id: world.clientA }, { key: world.keys.all })).status).toBe(404);
    expect((await ticketRow(h.db, other)).ticket_status).toBe(2);
    expect((await h.post(RESOLVE, { ticket_id: other, client_id: world.clientB }, { key: world.keys.all })).status).toBe(200);
  });

  it('resolve.php is safe to retry with an idempotency key: the second answer is the first, nothing resolves twice', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const send = () => h.post(RESOLVE, { ticket_id: ticket, idempotency_key: `resolve-${ticket}` }, { key: world.keys.all });
    const first = await send();
    const again = await send();
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const logs = await h.query("SELECT COUNT(*) AS n FROM logs WHERE log_entity_id = ? AND log_action = 'Resolved'", [ticket]);
    expect(Number(logs[0]?.n)).toBe(1);
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
