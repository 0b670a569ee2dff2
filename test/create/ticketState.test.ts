import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS } from '../../src/demo/itflowDatabase.js';
import { wallClock } from '../../src/itflow/clock.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * What a command does to the ticket and to ITFlow's audit trail, as ITFlow's own reply,
 * resolve and close handlers would have left it.
 */
const WAIT = { Prefer: 'wait=10' };
const ZONE = 'America/New_York';

describe.each(GENERATIONS)('ticket state and audit trail (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;
  const post = (body: object) =>
    h.post(CREATE, body, { key: world.keys.all, headers: { ...WAIT, 'User-Agent': 'rmm-bridge/2.1' } });
  const history = (ticket: number) =>
    h.query(
      'SELECT ticket_history_status, ticket_history_description FROM ticket_history WHERE ticket_history_ticket_id = ? ORDER BY ticket_history_id',
      [ticket],
    );
  const logs = (ticket: number) =>
    h.query("SELECT * FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ? ORDER BY log_id", [ticket]);

  beforeAll(async () => {
    h = await startHarness({ generation, timeZone: ZONE });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  it('a reply leaves a Ticket/Reply logs row naming the key, with the caller’s IP and user agent', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, subject: 'Printer jam' });
    await post({ ticket_id: ticket, ticket_reply: 'Cleared it.', public_reply_type: 1 });
    const [row] = await logs(ticket);
    expect(row).toMatchObject({
      log_action: 'Reply',
      log_description: expect.stringMatching(
        /^Added a Public reply to ticket TCK-\d+ - Printer jam via API \(All clients key\)$/,
      ),
      log_ip: '127.0.0.1',
      log_user_agent: 'rmm-bridge/2.1',
      log_client_id: world.clientA,
      log_user_id: world.author,
    });
    expect(await history(ticket)).toEqual([]);
  });

  it('the assigned agent and the ticket’s creator are notified when they are not the author', async () => {
    const ticket = await addTicket(h.db, generation, {
      clientId: world.clientA,
      assignedTo: world.agent,
      createdBy: world.agent + 1000,
    });
    await post({ ticket_id: ticket, ticket_reply: 'Update' });
    const rows = await h.query('SELECT * FROM notifications WHERE notification_entity_id = ? ORDER BY notification_user_id', [
      ticket,
    ]);
    expect(rows.map((r) => [r.notification_user_id, r.notification.replace(/.* that /, 'that ')])).toEqual([
      [world.agent, 'that is assigned to you'],
      [world.agent + 1000, 'that you opened'],
    ]);
    expect(rows[0]).toMatchObject({
      notification_type: 'Ticket',
      notification_action: `/agent/ticket.php?ticket_id=${ticket}&client_id=${world.clientA}`,
      notification_client_id: world.clientA,
    });
  });

  it('resolving stamps ticket_resolved_at once, with a history row and a Ticket/Resolved log', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 2 });
    await post({ ticket_id: ticket, status: 4 });
    const first = await ticketRow(h.db, ticket);
    expect(first.ticket_status).toBe(4);
    expect(first.ticket_resolved_at).not.toBeNull();

    await post({ ticket_id: ticket, ticket_reply: 'Still resolved', status: 4 });
    expect((await ticketRow(h.db, ticket)).ticket_resolved_at).toBe(first.ticket_resolved_at);
    expect(await history(ticket)).toEqual([
      { ticket_history_status: 'Resolved', ticket_history_description: 'Resolved via the API (All clients key)' },
    ]);
    expect((await logs(ticket)).map((r) => r.log_action)).toEqual(['Resolved', 'Reply']);
  });

  it('closing stamps closed_at, closed_by and the missing resolved_at; closing again is a no-op that succeeds', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 2 });
    const closed = await post({ ticket_id: ticket, ticket_reply: 'Done, closing.', status: 5 });
    expect(closed.status).toBe(201);
    const row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({ ticket_status: 5, ticket_closed_by: world.author });
    expect(row.ticket_closed_at).not.toBeNull();
    expect(row.ticket_resolved_at).toBe(row.ticket_closed_at);

    const again = await post({ ticket_id: ticket, status: 5 });
    expect(again).toMatchObject({ status: 201, body: { data: [{ insert_id: 0 }] } });
    expect(await history(ticket)).toEqual([
      { ticket_history_status: 'Closed', ticket_history_description: 'Closed via the API (All clients key)' },
    ]);
  });

  it('a reply or a status change to a closed ticket answers 409 "Ticket is closed." and writes nothing', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 5, closedAt: '2026-01-02 03:04:05' });
    for (const body of [
      { ticket_id: ticket, ticket_reply: 'Hello?' },
      { ticket_id: ticket, status: 2 },
    ]) {
      expect(await post(body)).toMatchObject({ status: 409, body: { success: 'False', message: 'Ticket is closed.' } });
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(5);
  });

  it('moving a resolved ticket back to Open reopens it (resolved_at cleared) and logs the change', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 4, resolvedAt: '2026-01-02 03:04:05' });
    await post({ ticket_id: ticket, status: 2 });
    expect(await ticketRow(h.db, ticket)).toMatchObject({ ticket_status: 2, ticket_resolved_at: null });
    expect(await history(ticket)).toEqual([
      { ticket_history_status: 'Open', ticket_history_description: 'Status set to Open via the API (All clients key)' },
    ]);
    expect((await logs(ticket)).map((r) => r.log_action)).toEqual(['Reopened']);
  });

  it('a status that does not change is not an event: no history, no log, ticket untouched', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 3 });
    const answer = await post({ ticket_id: ticket, status: 3 });
    expect(answer).toMatchObject({ status: 201, body: { data: [{ insert_id: 0 }] } });
    expect((await ticketRow(h.db, ticket)).ticket_updated_at).toBeNull();
    expect(await history(ticket)).toEqual([]);
    expect(await logs(ticket)).toEqual([]);
  });

  it('timestamps are ITFlow wall-clock time in config_timezone', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
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

describe('ITFlow 2.6.7: SLA verdicts', () => {
  let h: Harness;
  let world: World;
  const post = (body: object) => h.post(CREATE, body, { key: world.keys.all, headers: WAIT });
  const at = (minutes: number) => wallClock(Date.now() + minutes * 60_000, ZONE);

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', timeZone: ZONE });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('the first Public reply judges the response SLA: met before the due time, missed after it', async () => {
    const onTime = await addTicket(h.db, '2.6.7', { responseDueAt: at(30) });
    const late = await addTicket(h.db, '2.6.7', { responseDueAt: at(-30) });
    const noSla = await addTicket(h.db, '2.6.7');
    for (const ticket of [onTime, late, noSla]) await post({ ticket_id: ticket, ticket_reply: 'Hi', public_reply_type: 1 });
    expect((await ticketRow(h.db, onTime)).ticket_response_sla_met).toBe(1);
    expect((await ticketRow(h.db, late)).ticket_response_sla_met).toBe(0);
    expect((await ticketRow(h.db, noSla)).ticket_response_sla_met).toBeNull();
  });

  it('resolving judges the resolution SLA, and a recorded miss stays a miss', async () => {
    const onTime = await addTicket(h.db, '2.6.7', { resolutionDueAt: at(60) });
    const late = await addTicket(h.db, '2.6.7', { resolutionDueAt: at(-60) });
    for (const ticket of [onTime, late]) await post({ ticket_id: ticket, status: 4 });
    expect((await ticketRow(h.db, onTime)).ticket_resolution_sla_met).toBe(1);
    expect((await ticketRow(h.db, late)).ticket_resolution_sla_met).toBe(0);

    await h.query('UPDATE tickets SET ticket_resolution_due_at = ? WHERE ticket_id = ?', [at(600), late]);
    await post({ ticket_id: late, status: 2 });
    await post({ ticket_id: late, status: 4 });
    expect((await ticketRow(h.db, late)).ticket_resolution_sla_met).toBe(0);
  });
});
