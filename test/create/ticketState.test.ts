import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { wallClock } from '../../src/itflow/clock.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addRole, addTicket, addUser, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';

// What a command writes, as the ITFlow handler it stands for writes it, in each generation (the
// agent UI's add_ticket_reply, resolve_ticket, close_ticket, reopen_ticket: see
// src/apply/itflowHandlers.ts): the ticket row, its replies, ITFlow's logs, the ticket's history
// (ITFlow ≥ 2.4.7 only) and the agents' notifications. Wording may name the API key; columns may
// not differ. The SLA clock and client mail have files of their own (slaClock, clientMail).

const WAIT = { Prefer: 'wait=10' };
const ZONE = 'America/New_York';

describe.each(GENERATIONS)('what each action writes (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  const newer = generation !== '2.4.4';
  /** ITFlow's `$session_name` for the key, and the wording's naming of the key. */
  const actor = () => (newer ? 'Integration Admin' : 'API (All clients key)');
  const via = newer ? ' via API (All clients key)' : '';
  const post = (body: object, headers: Record<string, string> = {}) =>
    h.post(CREATE, body, { key: world.keys.all, headers: { ...WAIT, 'User-Agent': 'rmm-bridge/2.1', ...headers } });
  const history = (ticket: number) =>
    h.query(
      'SELECT ticket_history_status, ticket_history_description FROM ticket_history WHERE ticket_history_ticket_id = ? ORDER BY ticket_history_id',
      [ticket],
    );
  const logs = (ticket: number) =>
    h.query("SELECT * FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ? ORDER BY log_id", [ticket]);
  const notifications = (ticket: number) =>
    h.query('SELECT * FROM notifications WHERE notification_action LIKE ? ORDER BY notification_user_id', [
      `/agent/ticket.php?ticket_id=${ticket}&%`,
    ]);
  const ticketWith = (options: Parameters<typeof addTicket>[2] = {}) =>
    addTicket(h.db, generation, { clientId: world.clientA, subject: 'Printer jam', ...options });

  beforeAll(async () => {
    h = await startHarness({ generation, timeZone: ZONE });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  it('an Internal reply with time: the reply, ticket_updated_at, the agents notified, one Reply log, no history', async () => {
    const ticket = await ticketWith({ assignedTo: world.agent, createdBy: world.agent + 1000 });
    const answer = await post({ ticket_id: ticket, ticket_reply: 'Checked the spooler.', minutes: 15 });
    expect(answer.status).toBe(201);
    const [reply] = await repliesOf(h.db, ticket);
    expect(reply).toMatchObject({
      ticket_reply_id: answer.body.data[0].insert_id,
      ticket_reply: 'Checked the spooler.',
      ticket_reply_type: 'Internal',
      ticket_reply_time_worked: '00:15:00',
      ticket_reply_by: world.author,
    });
    const row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({ ticket_status: 2, ticket_first_response_at: null, ticket_resolved_at: null });
    expect(row.ticket_updated_at).not.toBeNull();
    const [log, ...more] = await logs(ticket);
    expect(more).toEqual([]);
    expect(log).toMatchObject({
      log_action: 'Reply',
      log_description: expect.stringMatching(
        new RegExp(
          `^${actor().replace(/[()]/g, '\\$&')} replied to ticket TCK-\\d+ - Printer jam and was a Internal reply${via.replace(/[()]/g, '\\$&')}$`,
        ),
      ),
      log_ip: '127.0.0.1',
      log_user_agent: 'rmm-bridge/2.1',
      log_client_id: world.clientA,
      log_user_id: world.author,
    });
    const notified = await notifications(ticket);
    expect(notified.map((n) => [n.notification_user_id, n.notification])).toEqual([
      [world.agent, `${actor()} updated Ticket TCK-${row.ticket_number} - Subject: Printer jam that is assigned to you`],
      [world.agent + 1000, `${actor()} updated Ticket TCK-${row.ticket_number} - Subject: Printer jam that you opened`],
    ]);
    // ITFlow's reply handler leaves notification_entity_id at its default.
    expect(notified.map((n) => n.notification_entity_id)).toEqual([0, 0]);
    expect(await history(ticket)).toEqual([]);
  });

  it('a Public reply stamps the first response once; an Internal one never does', async () => {
    const ticket = await ticketWith();
    await post({ ticket_id: ticket, ticket_reply: 'Internal note' });
    expect((await ticketRow(h.db, ticket)).ticket_first_response_at).toBeNull();
    await post({ ticket_id: ticket, ticket_reply: 'Hello from support', public_reply_type: 1 });
    const first = (await ticketRow(h.db, ticket)).ticket_first_response_at;
    expect(first).not.toBeNull();
    await post({ ticket_id: ticket, ticket_reply: 'And again', public_reply_type: 1 });
    expect((await ticketRow(h.db, ticket)).ticket_first_response_at).toBe(first);
  });

  it('a status alone (On Hold) is add_ticket_reply without text: the status, a history row (≥ 2.4.7), one Reply log, no notification', async () => {
    const ticket = await ticketWith({ assignedTo: world.agent });
    expect((await post({ ticket_id: ticket, status: 3 })).body.data[0].insert_id).toBe(0);
    const row = await ticketRow(h.db, ticket);
    expect(row.ticket_status).toBe(3);
    expect(row.ticket_updated_at).not.toBeNull();
    expect(await history(ticket)).toEqual(
      newer
        ? [{ ticket_history_status: 'On Hold', ticket_history_description: `${actor()} set the status to On Hold${via}` }]
        : [],
    );
    expect((await logs(ticket)).map((l) => l.log_action)).toEqual(['Reply']);
    expect(await notifications(ticket)).toEqual([]);
    expect(await repliesOf(h.db, ticket)).toEqual([]);
  });

  it('resolving alone is resolve_ticket: the missing first response stamped, resolved_at, one Resolved log, a history row (≥ 2.4.7)', async () => {
    const ticket = await ticketWith({ assignedTo: world.agent });
    await post({ ticket_id: ticket, status: 4 });
    const row = await ticketRow(h.db, ticket);
    expect(row.ticket_status).toBe(4);
    expect(row.ticket_resolved_at).not.toBeNull();
    expect(row.ticket_first_response_at).toBe(row.ticket_resolved_at);
    expect((await logs(ticket)).map((l) => [l.log_action, l.log_description])).toEqual([
      ['Resolved', `${actor()} resolved ticket TCK-${row.ticket_number} (ID: ${ticket})${via}`],
    ]);
    expect(await history(ticket)).toEqual(
      newer ? [{ ticket_history_status: 'Resolved', ticket_history_description: `${actor()} resolved the ticket${via}` }] : [],
    );
    expect(await notifications(ticket)).toEqual([]);

    // Resolving a resolved ticket again is not an event.
    await post({ ticket_id: ticket, status: 4 });
    expect((await ticketRow(h.db, ticket)).ticket_resolved_at).toBe(row.ticket_resolved_at);
    expect(await logs(ticket)).toHaveLength(1);
  });

  it('closing alone is close_ticket: closed_at/by, resolved_at too (deliberate), the Internal "Ticket closed." reply, one Closed log', async () => {
    const ticket = await ticketWith();
    const closed = await post({ ticket_id: ticket, status: 5 });
    expect(closed).toMatchObject({ status: 201, body: { data: [{ insert_id: 0 }] } });
    const row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({ ticket_status: 5, ticket_closed_by: world.author });
    expect(row.ticket_closed_at).not.toBeNull();
    expect(row.ticket_resolved_at).toBe(row.ticket_closed_at);
    expect(
      (await repliesOf(h.db, ticket)).map((r) => [
        r.ticket_reply,
        r.ticket_reply_type,
        r.ticket_reply_time_worked,
        r.ticket_reply_by,
      ]),
    ).toEqual([['Ticket closed.', 'Internal', newer ? '00:00:00' : '00:01:00', world.author]]);
    expect((await logs(ticket)).map((l) => l.log_action)).toEqual(['Closed']);
    expect(await history(ticket)).toEqual(
      newer ? [{ ticket_history_status: 'Closed', ticket_history_description: `${actor()} closed the ticket${via}` }] : [],
    );
    // Closing again succeeds and writes nothing.
    expect(await post({ ticket_id: ticket, status: 5 })).toMatchObject({ status: 201, body: { data: [{ insert_id: 0 }] } });
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('moving a resolved ticket back to an open status is reopen_ticket: resolved_at cleared, one Reopened log, a history row (≥ 2.4.7)', async () => {
    const ticket = await ticketWith({ status: 4, resolvedAt: '2026-01-02 03:04:05' });
    await post({ ticket_id: ticket, status: 2 });
    expect(await ticketRow(h.db, ticket)).toMatchObject({ ticket_status: 2, ticket_resolved_at: null });
    expect((await logs(ticket)).map((l) => l.log_action)).toEqual(['Reopened']);
    expect(await history(ticket)).toEqual(
      newer ? [{ ticket_history_status: 'Open', ticket_history_description: `${actor()} reopened the ticket${via}` }] : [],
    );
  });

  it('a reply with Resolved is one add_ticket_reply: Resolved then Reply logged, first response only for a Public reply', async () => {
    const internal = await ticketWith();
    await post({ ticket_id: internal, ticket_reply: 'Fixed, internal note', status: 4 });
    const row = await ticketRow(h.db, internal);
    expect(row).toMatchObject({ ticket_status: 4, ticket_first_response_at: null });
    expect(row.ticket_resolved_at).not.toBeNull();
    expect((await logs(internal)).map((l) => l.log_action)).toEqual(['Resolved', 'Reply']);
    expect(await history(internal)).toEqual(
      newer ? [{ ticket_history_status: 'Resolved', ticket_history_description: `${actor()} resolved the ticket${via}` }] : [],
    );
    const publicReply = await ticketWith();
    await post({ ticket_id: publicReply, ticket_reply: 'Fixed, you can print again', public_reply_type: 1, status: 4 });
    expect((await ticketRow(h.db, publicReply)).ticket_first_response_at).not.toBeNull();
  });

  it('a reply with Closed is the reply, then close_ticket: both replies, Reply then Closed logged', async () => {
    const ticket = await ticketWith();
    const answer = await post({ ticket_id: ticket, ticket_reply: 'Done, closing.', public_reply_type: 1, status: 5 });
    const replies = await repliesOf(h.db, ticket);
    expect(replies.map((r) => r.ticket_reply)).toEqual(['Done, closing.', 'Ticket closed.']);
    expect(answer.body.data[0].insert_id).toBe(replies[0]?.ticket_reply_id);
    expect((await logs(ticket)).map((l) => l.log_action)).toEqual(['Reply', 'Closed']);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(5);
  });

  it('a reply or a status change to a closed ticket answers 409 "Ticket is closed." and writes nothing', async () => {
    const ticket = await ticketWith({ status: 5, closedAt: '2026-01-02 03:04:05' });
    for (const body of [
      { ticket_id: ticket, ticket_reply: 'Hello?' },
      { ticket_id: ticket, status: 2 },
    ]) {
      expect(await post(body)).toMatchObject({ status: 409, body: { success: 'False', message: 'Ticket is closed.' } });
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(5);
  });

  it('a status that does not change is not an event: no history, no log, ticket untouched', async () => {
    const ticket = await ticketWith({ status: 3 });
    const answer = await post({ ticket_id: ticket, status: 3 });
    expect(answer).toMatchObject({ status: 201, body: { data: [{ insert_id: 0 }] } });
    expect((await ticketRow(h.db, ticket)).ticket_updated_at).toBeNull();
    expect(await history(ticket)).toEqual([]);
    expect(await logs(ticket)).toEqual([]);
  });

  it('a historical import is quiet: its own time, no notification, no first response; a contact’s reply is logged as a Client reply', async () => {
    const ticket = await ticketWith({ assignedTo: world.agent, createdBy: world.agent + 1000 });
    const [contact] = (await h.db.query('INSERT INTO contacts (contact_name, contact_client_id) VALUES (?, ?)', [
      'Dana Client',
      world.clientA,
    ])) as unknown as [{ insertId: number }];
    const answer = await h.post(
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'From 2025', public_reply_type: 1, created_at: '2025-03-01 09:30:00' },
        {
          ticket_id: ticket,
          ticket_reply: 'The client wrote',
          created_at: '2025-03-02 10:00:00',
          author: { contact_id: Number(contact.insertId) },
        },
      ],
      { key: world.keys.all, headers: WAIT },
    );
    expect(answer.status).toBe(200);
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply_created_at, r.ticket_reply_type])).toEqual([
      ['2025-03-01 09:30:00', 'Public'],
      ['2025-03-02 10:00:00', 'Client'],
    ]);
    const row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({ ticket_first_response_at: null, ticket_updated_at: null });
    expect(await notifications(ticket)).toEqual([]);
    expect((await logs(ticket)).map((l) => l.log_description.replace(/ to ticket.*/, ''))).toEqual([
      'Imported a Public reply dated 2025-03-01 09:30:00',
      'Imported a Client reply dated 2025-03-02 10:00:00',
    ]);
  });

  it('timestamps are ITFlow wall-clock time in config_timezone', async () => {
    const ticket = await ticketWith();
    const before = wallClock(Date.now() - 1000, ZONE);
    await post({ ticket_id: ticket, ticket_reply: 'Done', public_reply_type: 1, status: 4 });
    const after = wallClock(Date.now() + 1000, ZONE);
    const row = await ticketRow(h.db, ticket);
    const [reply] = await repliesOf(h.db, ticket);
    for (const value of [
      reply?.ticket_reply_created_at,
      row.ticket_first_response_at,
      row.ticket_resolved_at,
      row.ticket_updated_at,
    ]) {
      expect(value >= before && value <= after, `${value} within [${before}, ${after}]`).toBe(true);
    }
  });
});

describe('a key whose user is not an admin (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('writes as that user: reply author, closed_by, log user, and the notification names them', async () => {
    const techRole = await addRole(h.db, { support: 2 });
    const tech = await addUser(h.db, { name: 'Tara <b>Tech</b>', roleId: techRole });
    const key = await addKey(h.db, '2.6.7', { name: 'Tara bridge', owner: tech });
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA, assignedTo: world.agent });
    await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'On it', status: 5 }, { key, headers: WAIT });
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply_by)).toEqual([tech, tech]);
    expect((await ticketRow(h.db, ticket)).ticket_closed_by).toBe(tech);
    const [notification] = await h.query('SELECT notification FROM notifications WHERE notification_user_id = ?', [world.agent]);
    // ITFlow's escapeSql strips tags from the name it writes.
    expect(notification?.notification).toMatch(/^Tara Tech updated Ticket TCK-\d+/);
    expect(
      (await h.query('SELECT DISTINCT log_user_id FROM logs WHERE log_entity_id = ?', [ticket])).map((r) => r.log_user_id),
    ).toEqual([tech]);
  });
});
