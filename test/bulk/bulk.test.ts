import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { wallClock } from '../../src/itflow/clock.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addRole, addTicket, addUser, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { BULK } from '../helpers/paths.js';

/**
 * POST bulk.php: many commands in one request, each validated and answered on its own, the
 * valid ones queued even when others are refused; NDJSON; the size limit; historical import
 * semantics; author attribution; idempotency per item.
 */
const ZONE = 'America/New_York';

async function addContact(h: Harness, clientId: number, name: string): Promise<number> {
  const [result] = (await h.db.query('INSERT INTO contacts (contact_name, contact_client_id) VALUES (?, ?)', [
    name,
    clientId,
  ])) as unknown as [{ insertId: number }];
  return result.insertId;
}

describe.each(GENERATIONS)('bulk.php (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  const bulk = (items: unknown, headers: Record<string, string> = {}, key = world.keys.all, query = '') =>
    h.post(`${BULK}${query}`, items, { key, headers });

  beforeAll(async () => {
    h = await startHarness({ generation, timeZone: ZONE, env: { BULK_MAX_ITEMS: '20', BULK_CHUNK_SIZE: '3' } });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  it('answers every item in order: valid ones queued, invalid ones refused alone', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const other = await addTicket(h.db, generation, { clientId: world.clientB });
    const answer = await bulk([
      { ticket_id: ticket, ticket_reply: 'one' },
      { ticket_reply: 'no ticket' },
      { ticket_id: ticket, ticket_reply: 'two', public_reply_type: 2 },
      { ticket_id: 999_999, ticket_reply: 'gone' },
      { ticket_id: ticket, ticket_reply: 'three', minutes: 5 },
      'not an object',
    ]);
    expect(answer.status).toBe(202);
    expect(answer.body.success).toBe('True');
    expect(answer.body.count).toBe(6);
    const [one, noTicket, email, gone, three, text] = answer.body.data;
    expect(one).toEqual({ command_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued' });
    expect(noTicket).toEqual({ http_status: 400, message: 'ticket_id is required.' });
    expect(email.http_status).toBe(400);
    expect(gone).toEqual({ http_status: 404, message: "Ticket 999999 was not found within this API key's scope." });
    expect(three.status).toBe('queued');
    expect(text).toEqual({ http_status: 400, message: 'The request body must be a JSON object.' });
    await h.finished(one.command_id);
    await h.finished(three.command_id);
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply, r.ticket_reply_time_worked])).toEqual([
      ['one', '00:00:00'],
      ['three', '00:05:00'],
    ]);
    expect(await repliesOf(h.db, other)).toHaveLength(0);
  });

  it('takes NDJSON, refusing an unreadable line alone', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const ndjson = `{"ticket_id": ${ticket}, "ticket_reply": "first"}\n{oops\n\n{"ticket_id": ${ticket}, "ticket_reply": "second"}\n`;
    const answer = await bulk(ndjson, { 'Content-Type': 'application/x-ndjson', Prefer: 'wait=10' });
    expect(answer.status).toBe(200);
    expect(answer.body.data.map((r: { status?: string; http_status?: number }) => r.status ?? r.http_status)).toEqual([
      'applied',
      400,
      'applied',
    ]);
    expect(answer.body.data[1].message).toBe('Line 2 is not valid JSON.');
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['first', 'second']);
  });

  it('with Prefer: wait answers 200 with every item’s insert_id once all are applied', async () => {
    const tickets = [
      await addTicket(h.db, generation, { clientId: world.clientA }),
      await addTicket(h.db, generation, { clientId: world.clientB }),
    ];
    const items = Array.from({ length: 8 }, (_, i) => ({ ticket_id: tickets[i % 2], ticket_reply: `r${i}` }));
    const answer = await bulk(items, { Prefer: 'wait=10' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('preference-applied')).toBe('wait=10');
    for (const [i, item] of answer.body.data.entries()) {
      expect(item.status).toBe('applied');
      const [row] = await h.query('SELECT ticket_reply FROM ticket_replies WHERE ticket_reply_id = ?', [item.insert_id]);
      expect(row?.ticket_reply).toBe(`r${i}`);
    }
  });

  it('answers 413 naming the limit when there are too many items, and 400 for no items or a non-array', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const tooMany = await bulk(Array.from({ length: 21 }, () => ({ ticket_id: ticket, ticket_reply: 'x' })));
    expect(tooMany).toMatchObject({
      status: 413,
      body: { success: 'False', message: 'A bulk request may carry at most 20 commands; this one has 21.' },
    });
    expect((await bulk([])).status).toBe(400);
    expect((await bulk({ ticket_id: ticket, ticket_reply: 'x' })).status).toBe(400);
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('answers 400, nothing queued, when every item is refused', async () => {
    const answer = await bulk([{ ticket_reply: 'a' }, { ticket_id: 999_999, status: 2 }]);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ success: 'False', count: 2 });
    expect(answer.body.data.map((r: { http_status: number }) => r.http_status)).toEqual([400, 404]);
  });

  it('dry_run=1 validates every item and writes nothing', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await bulk(
      [{ ticket_id: ticket, ticket_reply: 'would be fine' }, { ticket_id: ticket }],
      {},
      world.keys.all,
      '?dry_run=1',
    );
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual([
      { status: 'valid' },
      { http_status: 400, message: expect.stringMatching(/^Nothing to do/) },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('historical import: keeps created_at (converted into ITFlow’s zone), even on a closed ticket, without stamping the ticket', async () => {
    const open = await addTicket(h.db, generation, { clientId: world.clientA, assignedTo: world.agent });
    const closed = await addTicket(h.db, generation, { clientId: world.clientA, status: 5, closedAt: '2026-02-01 00:00:00' });
    const answer = await bulk(
      [
        { ticket_id: open, ticket_reply: 'from Paris', public_reply_type: 1, created_at: '2026-01-15T10:00:00+01:00' },
        { ticket_id: open, ticket_reply: 'naive', created_at: '2026-01-15 12:00:00' },
        { ticket_id: closed, ticket_reply: 'history of a closed ticket', created_at: '2026-01-20T08:00:00Z' },
        { ticket_id: closed, ticket_reply: 'live reply to a closed ticket' },
        { ticket_id: open, ticket_reply: 'from the future', created_at: wallClock(Date.now() + 3_600_000, ZONE) },
        { ticket_id: open, ticket_reply: 'bad date', created_at: 'last Tuesday' },
      ],
      { Prefer: 'wait=10' },
    );
    const statuses = answer.body.data.map((r: { status?: string; http_status?: number }) => r.status ?? r.http_status);
    expect(statuses).toEqual(['applied', 'applied', 'applied', 409, 400, 400]);
    expect(answer.body.data[4].message).toBe('created_at is in the future.');
    expect((await repliesOf(h.db, open)).map((r) => [r.ticket_reply, r.ticket_reply_created_at])).toEqual([
      ['from Paris', '2026-01-15 04:00:00'],
      ['naive', '2026-01-15 12:00:00'],
    ]);
    expect((await repliesOf(h.db, closed)).map((r) => r.ticket_reply_created_at)).toEqual(['2026-01-20 03:00:00']);
    const row = await ticketRow(h.db, open);
    expect(row.ticket_first_response_at).toBeNull();
    expect(row.ticket_updated_at).toBeNull();
    expect(row.ticket_status).toBe(2);
    expect(await h.query('SELECT * FROM notifications WHERE notification_entity_id = ?', [open])).toEqual([]);
    const [log] = await h.query("SELECT log_description FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ?", [open]);
    expect(log?.log_description).toMatch(/^Imported a Public reply dated 2026-01-15 04:00:00 to ticket/);
  });

  it('a created_at MySQL cannot store (year 1, year 0, 9999-12-31) is that item’s 400; the others are queued', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await bulk([
      { ticket_id: ticket, ticket_reply: 'year one', created_at: '0001-01-01 00:00:00' },
      { ticket_id: ticket, ticket_reply: 'kept', created_at: '2026-01-15 12:00:00' },
      { ticket_id: ticket, ticket_reply: 'year zero', created_at: '0000-01-01T00:00:00+14:00' },
      { ticket_id: ticket, ticket_reply: 'end of time', created_at: '9999-12-31 23:59:59' },
    ]);
    expect(answer.status).toBe(202);
    const [yearOne, kept, yearZero, endOfTime] = answer.body.data;
    const tooEarly = {
      http_status: 400,
      message: 'created_at must not be before 1000-01-01 00:00:00, the earliest time MySQL stores.',
    };
    expect(yearOne).toEqual(tooEarly);
    expect(yearZero).toEqual(tooEarly);
    expect(endOfTime).toEqual({ http_status: 400, message: 'created_at is in the future.' });
    expect(kept.status).toBe('queued');
    await h.finished(kept.command_id);
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply, r.ticket_reply_created_at])).toEqual([
      ['kept', '2026-01-15 12:00:00'],
    ]);
  });

  it('an imported item moves the status only when it says so', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, status: 2 });
    await bulk([{ ticket_id: ticket, ticket_reply: 'resolved back then', status: 4, created_at: '2026-01-10 10:00:00' }], {
      Prefer: 'wait=10',
    });
    expect(await ticketRow(h.db, ticket)).toMatchObject({ ticket_status: 4, ticket_resolved_at: '2026-01-10 10:00:00' });
  });

  it('attributes imported replies to an agent or to the ticket’s client’s contact, with an all-clients key', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const contact = await addContact(h, world.clientA, 'Customer Carla');
    const strangerContact = await addContact(h, world.clientB, 'Someone Else');
    const portalUser = await addUser(h.db, { name: 'Portal User', roleId: await addRole(h.db, {}), type: 2 });
    const answer = await bulk(
      [
        { ticket_id: ticket, ticket_reply: 'by the agent', created_at: '2026-01-01 09:00:00', author: { user_id: world.agent } },
        {
          ticket_id: ticket,
          ticket_reply: 'by the customer',
          created_at: '2026-01-01 10:00:00',
          author: { contact_id: contact },
        },
        { ticket_id: ticket, ticket_reply: 'x', created_at: '2026-01-01 11:00:00', author: { contact_id: strangerContact } },
        { ticket_id: ticket, ticket_reply: 'x', created_at: '2026-01-01 11:00:00', author: { user_id: portalUser } },
        { ticket_id: ticket, ticket_reply: 'x', author: { user_id: world.agent, contact_id: contact } },
      ],
      { Prefer: 'wait=10' },
    );
    expect(answer.body.data.map((r: { status?: string; http_status?: number }) => r.status ?? r.http_status)).toEqual([
      'applied',
      'applied',
      400,
      400,
      400,
    ]);
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply, r.ticket_reply_type, r.ticket_reply_by])).toEqual([
      ['by the agent', 'Internal', world.agent],
      ['by the customer', 'Client', contact],
    ]);
  });

  it('refuses author attribution (403) to a key limited to some clients', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await bulk(
      [{ ticket_id: ticket, ticket_reply: 'x', created_at: '2026-01-01 09:00:00', author: { user_id: world.agent } }],
      {},
      world.keys.clientA,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.data).toEqual([
      {
        http_status: 403,
        message:
          generation === '2.4.4'
            ? 'Setting an author needs an API key for every client.'
            : 'Setting an author needs an admin API key.',
      },
    ]);
  });

  it('idempotency keys per item: a resent request replays, a repeat within a request is one command', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const items = [
      { ticket_id: ticket, ticket_reply: 'k1', idempotency_key: 'item-1' },
      { ticket_id: ticket, ticket_reply: 'k2', idempotency_key: 'item-2' },
      { ticket_id: ticket, ticket_reply: 'k1', idempotency_key: 'item-1' },
      { ticket_id: ticket, ticket_reply: 'changed', idempotency_key: 'item-2' },
    ];
    const first = await bulk(items, { Prefer: 'wait=10' });
    expect(
      first.body.data.map((r: { status?: string; http_status?: number; replayed?: boolean }) => [
        r.status ?? r.http_status,
        r.replayed ?? false,
      ]),
    ).toEqual([
      ['applied', false],
      ['applied', false],
      ['applied', true],
      [422, false],
    ]);
    expect(first.body.data[2].command_id).toBe(first.body.data[0].command_id);
    const again = await bulk(items.slice(0, 2));
    expect(again.status).toBe(200);
    expect(again.body.data).toEqual([
      { ...first.body.data[0], replayed: true },
      { ...first.body.data[1], replayed: true },
    ]);
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['k1', 'k2']);
  });

  it('keeps each ticket’s items in order across chunks and lanes', async () => {
    const tickets = await Promise.all([1, 2, 3].map(() => addTicket(h.db, generation, { clientId: world.clientA })));
    const items = Array.from({ length: 18 }, (_, i) => ({ ticket_id: tickets[i % 3], ticket_reply: `#${i}` }));
    const answer = await bulk(items, { Prefer: 'wait=10' });
    expect(answer.status).toBe(200);
    for (const [t, ticket] of tickets.entries()) {
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(
        items.filter((_, i) => i % 3 === t).map((i) => i.ticket_reply),
      );
    }
  });

  it('inserts a ticket’s historical items in created_at order, so ITFlow (which lists replies by id) shows them chronologically', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const other = await addTicket(h.db, generation, { clientId: world.clientA });
    const items = [
      { ticket_id: ticket, ticket_reply: '2024', created_at: '2024-03-01 09:00:00' },
      { ticket_id: other, ticket_reply: 'other 2025', created_at: '2025-01-01 09:00:00' },
      { ticket_id: ticket, ticket_reply: 'live' },
      { ticket_id: ticket, ticket_reply: '2022', created_at: '2022-01-01 09:00:00' },
      { ticket_id: other, ticket_reply: 'other 2021', created_at: '2021-01-01 09:00:00' },
      { ticket_id: ticket, ticket_reply: '2023 (UTC+14)', created_at: '2023-06-01T09:00:00+14:00' },
      { ticket_id: ticket, ticket_reply: '2022 again', created_at: '2022-01-01 09:00:00' },
    ];
    const answer = await bulk(items, { Prefer: 'wait=10' });
    expect(answer.status).toBe(200);
    // Historical items fill the places historical items held, oldest first (equal times keep
    // the request's order); the live item keeps its place.
    const replies = await repliesOf(h.db, ticket);
    expect(replies.map((r) => r.ticket_reply)).toEqual(['2022', 'live', '2022 again', '2023 (UTC+14)', '2024']);
    expect((await repliesOf(h.db, other)).map((r) => r.ticket_reply)).toEqual(['other 2021', 'other 2025']);
    // The answer still follows the request: each item's insert_id is its own reply.
    const idOf = new Map(replies.map((r) => [r.ticket_reply, r.ticket_reply_id]));
    expect(answer.body.data[0].insert_id).toBe(idOf.get('2024'));
    expect(answer.body.data[3].insert_id).toBe(idOf.get('2022'));
    expect(answer.body.data[6].insert_id).toBe(idOf.get('2022 again'));
  });

  it('POST commands.php reports many commands at once', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const answer = await bulk(
      [
        { ticket_id: ticket, ticket_reply: 'a' },
        { ticket_id: ticket, ticket_reply: 'b' },
      ],
      { Prefer: 'wait=10' },
    );
    const ids = answer.body.data.map((r: { command_id: string }) => r.command_id);
    const unknown = '00000000-0000-4000-8000-000000000001';
    const statuses = await h.post(
      '/api/v1/tickets/replies/commands.php',
      { command_ids: [...ids, unknown] },
      { key: world.keys.all },
    );
    expect(statuses.body.data).toEqual([
      { command_id: ids[0], status: 'applied', insert_id: answer.body.data[0].insert_id },
      { command_id: ids[1], status: 'applied', insert_id: answer.body.data[1].insert_id },
      { command_id: unknown, status: 'unfinished' },
    ]);
  });
});

describe('bulk commands still in the queue (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('are found one by one at commands.php inside their chunk, then applied', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const answer = await h.post(
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'a' },
        { ticket_id: ticket, ticket_reply: 'b' },
      ],
      { key: world.keys.all },
    );
    const [a, b] = answer.body.data.map((r: { command_id: string }) => r.command_id);
    for (const id of [a, b]) {
      const status = await h.get(`/api/v1/tickets/replies/commands.php?command_id=${id}`, { key: world.keys.all });
      expect(status.body.data[0]).toMatchObject({ command_id: id, ticket_id: ticket, status: 'queued' });
    }
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      expect((await h.finished(b)).status).toBe('applied');
      expect(
        (await h.get(`/api/v1/tickets/replies/commands.php?command_id=${a}`, { key: world.keys.all })).body.data[0].status,
      ).toBe('applied');
    } finally {
      await worker.close();
    }
  });

  it('a retry with Prefer: wait of items still queued waits for them too, and answers them applied (replayed)', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const item = {
      ticket_id: ticket,
      ticket_reply: 'Sent, then sent again asking to wait',
      idempotency_key: 'bulk-wait-for-first',
    };
    const beside = { ticket_id: ticket, ticket_reply: 'New in the retry' };
    const first = await h.post(BULK, [item], { key: world.keys.all });
    expect(first.body.data[0]).toMatchObject({ status: 'queued' });
    const commandId = first.body.data[0].command_id;
    // No worker for longer than a retry's wait: it answers 202, the replayed item still queued.
    const outwaited = await h.post(BULK, [item, { ...beside, ticket_reply: 'Queued while no worker runs' }], {
      key: world.keys.all,
      headers: { Prefer: 'wait=1' },
    });
    expect(outwaited.status).toBe(202);
    expect(outwaited.body.data[0]).toEqual({ command_id: commandId, status: 'queued', replayed: true });
    expect(outwaited.body.data[1]).toMatchObject({ status: 'queued' });
    const retrying = h.post(BULK, [item, beside], { key: world.keys.all, headers: { Prefer: 'wait=10' } });
    // No worker yet: the first request's command is still queued when the retry looks.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const retry = await retrying;
      expect(retry.status).toBe(200);
      const replies = await repliesOf(h.db, ticket);
      expect(replies.map((r) => r.ticket_reply)).toEqual([item.ticket_reply, 'Queued while no worker runs', beside.ticket_reply]);
      expect(retry.body.data).toEqual([
        { command_id: commandId, status: 'applied', insert_id: replies[0]?.ticket_reply_id, replayed: true },
        { command_id: expect.any(String), status: 'applied', insert_id: replies[2]?.ticket_reply_id },
      ]);
      // Only items already queued: answered as they ended, within the wait.
      const again = await h.post(BULK, [item], { key: world.keys.all, headers: { Prefer: 'wait=10' } });
      expect(again.status).toBe(200);
      expect(again.body.data).toEqual([retry.body.data[0]]);
    } finally {
      await worker.close();
    }
  });
});
