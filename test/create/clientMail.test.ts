import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  addContact,
  addTicket,
  addWatcher,
  repliesOf,
  seedWorld,
  setMailSettings,
  ticketRow,
  type World,
} from '../helpers/itflow.js';
import { BULK, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';

// The client mail ITFlow queues in its email_queue (its own cron sends it), written exactly as
// ITFlow's handlers write it: a Public + email reply (public_reply_type 2), resolve and close when
// its client notifications are on, and any Public reply on ITFlow's own API path. Only where
// ITFlow has mail set up and the service knows ITFlow's address (ITFLOW_BASE_URL); elsewhere a
// Public + email reply is refused with 400 saying why, and nothing is written.

const WAIT = { Prefer: 'wait=10' };
const BASE = 'itflow.msp.example';
const PROMPT = "<i style='color: #808080'>##- Please type your reply above this line -##</i><br><br>";
const SIGN_OFF = '<br><br>--<br>Example MSP - Support<br>support@msp.example<br>(555) 555-0100';
const COLLABORATOR = '<br><br>----------------------------------------<br>YOU ARE A COLLABORATOR ON THIS TICKET';

describe.each(GENERATIONS)('client mail (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  let contact: number;
  const newer = generation !== '2.4.4';
  const post = (body: object, path = CREATE) => h.post(path, body, { key: world.keys.all, headers: WAIT });
  const mail = (ticket: number) =>
    h.query('SELECT * FROM email_queue WHERE email_subject LIKE ? ORDER BY email_id', [`%[TCK-${ticket}]%`]);
  /** A ticket whose number is its id (so its mail is found by it), with the contact and a watcher. */
  const ticketWith = async (options: Parameters<typeof addTicket>[2] = {}) => {
    const ticket = await addTicket(h.db, generation, {
      clientId: world.clientA,
      subject: 'Printer <b>jam</b>',
      contactId: contact,
      ...options,
    });
    await h.query('UPDATE tickets SET ticket_number = ticket_id, ticket_url_key = ? WHERE ticket_id = ?', [
      `key-${ticket}`,
      ticket,
    ]);
    await addWatcher(h.db, ticket, 'wes@partner.example', 'Wes Watcher');
    return ticket;
  };
  const guest = (ticket: number) => `https://${BASE}/guest/guest_view_ticket.php?ticket_id=${ticket}&url_key=key-${ticket}`;
  const details = (ticket: number, status: string) =>
    `Ticket: TCK-${ticket}<br>Subject: Printer jam<br>Status: ${status}<br>Portal: <a href='${guest(ticket)}'>View ticket</a>`;

  beforeAll(async () => {
    h = await startHarness({ generation, env: { ITFLOW_BASE_URL: BASE } });
    world = await seedWorld(h.db, generation);
    await setMailSettings(h.db);
    contact = await addContact(h.db, { name: 'Dana Client', email: 'dana@client.example', clientId: world.clientA });
    if (newer) {
      await h.query("INSERT INTO user_settings (user_id, user_config_signature) VALUES (?, '<br>-- <br>Integration Admin')", [
        world.author,
      ]);
    }
  });
  afterAll(() => h?.close());

  it('a Public + email reply: the reply (with the user’s signature) and a "Ticket update" to the contact and each watcher', async () => {
    const ticket = await ticketWith();
    const answer = await post({ ticket_id: ticket, ticket_reply: '<p>The toner was empty.</p>', public_reply_type: 2 });
    expect(answer.status).toBe(201);
    const stored = newer ? '<p>The toner was empty.</p><br>-- <br>Integration Admin' : '<p>The toner was empty.</p>';
    expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply, r.ticket_reply_type])).toEqual([[stored, 'Public']]);
    const body =
      `${PROMPT}Hello Dana Client,<br><br>Your ticket regarding Printer jam has been updated.<br><br>--------------------------------<br>` +
      `${stored}<br>--------------------------------<br><br>${details(ticket, 'Open')}${SIGN_OFF}`;
    const rows = await mail(ticket);
    expect(
      rows.map((r) => [
        r.email_recipient,
        r.email_recipient_name,
        r.email_from,
        r.email_from_name,
        r.email_subject,
        r.email_content,
      ]),
    ).toEqual([
      [
        'dana@client.example',
        'Dana Client',
        'support@msp.example',
        'MSP Support',
        `Ticket update - [TCK-${ticket}] - Printer jam`,
        body,
      ],
      [
        'wes@partner.example',
        'wes@partner.example',
        'support@msp.example',
        'MSP Support',
        `Ticket update - [TCK-${ticket}] - Printer jam`,
        body + COLLABORATOR,
      ],
    ]);
    expect(rows[0]).toMatchObject({
      email_status: 0,
      email_attempts: 0,
      email_cal_str: '',
      email_sent_at: null,
    });
    // ITFlow ≥ 2.6 keeps an attachment manifest, empty for these mails; 2.4.4 has no such column.
    expect(rows[0]?.email_attachments).toBe(newer ? '' : undefined);
  });

  it('a Public + email reply that resolves says "resolved … (pending closure)" and quotes the reply', async () => {
    const ticket = await ticketWith();
    await post({ ticket_id: ticket, ticket_reply: 'Fixed.', public_reply_type: 2, status: 4 });
    const [toContact] = await mail(ticket);
    expect(toContact?.email_subject).toBe(`Ticket resolved - [TCK-${ticket}] - Printer jam | (pending closure)`);
    expect(toContact?.email_content).toContain(
      'has been marked as solved and is pending closure.<br><br>--------------------------------<br>Fixed.',
    );
    expect(toContact?.email_content).toContain(`please reply or <a href='${guest(ticket)}'>re-open</a> to let us know!`);
    expect(toContact?.email_content).toContain('Status: Resolved');
  });

  it('resolve and close mail the client when ITFlow’s client notifications are on, and only then', async () => {
    const resolved = await ticketWith();
    await post({ ticket_id: resolved, status: 4 });
    expect((await mail(resolved)).map((r) => [r.email_recipient, r.email_subject])).toEqual([
      ['dana@client.example', `Ticket resolved - [TCK-${resolved}] - Printer jam | (pending closure)`],
      ['wes@partner.example', `Ticket resolved - [TCK-${resolved}] - Printer jam | (pending closure)`],
    ]);
    expect((await mail(resolved))[0]?.email_content).toBe(
      `${PROMPT}Hello Dana Client,<br><br>Your ticket regarding Printer jam has been marked as solved and is pending closure.<br><br>` +
        `If your request/issue is resolved, you can simply ignore this email. If you need further assistance, please reply or <a href='${guest(resolved)}'>re-open</a> to let us know! <br><br>` +
        `${details(resolved, 'Resolved')}${SIGN_OFF}`,
    );

    const closed = await ticketWith();
    await post({ ticket_id: closed, status: 5 });
    const [closing] = await mail(closed);
    expect(closing?.email_subject).toBe(`Ticket closed - [TCK-${closed}] - Printer jam | (do not reply)`);
    expect(closing?.email_content).toBe(
      `Hello Dana Client,<br><br>Your ticket regarding "Printer jam" has been closed. <br><br> We hope the request/issue was resolved to your satisfaction, please provide your feedback <a href='${guest(closed)}'>here</a>. <br>If you need further assistance, please raise a new ticket using the below details. Please do not reply to this email. <br><br>` +
        `Ticket: TCK-${closed}<br>Subject: Printer jam<br>Portal: https://${BASE}/client/ticket.php?id=${closed}${SIGN_OFF}`,
    );

    await setMailSettings(h.db, { notifications: 0 });
    try {
      const quiet = await ticketWith();
      await post({ ticket_id: quiet, status: 4 });
      await post({ ticket_id: quiet, status: 5 });
      expect(await mail(quiet)).toEqual([]);
    } finally {
      await setMailSettings(h.db);
    }
  });

  it('a plain Public reply, a reopen, a status change and a historical import mail no one', async () => {
    const ticket = await ticketWith({ status: 4, resolvedAt: '2026-01-02 03:04:05' });
    await post({ ticket_id: ticket, ticket_reply: 'Public, no email', public_reply_type: 1 });
    await post({ ticket_id: ticket, status: 2 });
    await post({ ticket_id: ticket, status: 3 });
    const imported = await h.post(
      BULK,
      [{ ticket_id: ticket, ticket_reply: 'Old', public_reply_type: 1, created_at: '2025-01-01 10:00:00' }],
      {
        key: world.keys.all,
        headers: WAIT,
      },
    );
    expect(imported.status).toBe(200);
    expect(await mail(ticket)).toEqual([]);
    const refused = await h.post(
      BULK,
      [{ ticket_id: ticket, ticket_reply: 'Old', public_reply_type: 2, created_at: '2025-01-01 10:00:00' }],
      {
        key: world.keys.all,
      },
    );
    expect(refused.body.data[0]).toEqual({
      http_status: 400,
      message:
        'public_reply_type 2 emails the client, which a historical reply (created_at) never does: send 1 for a Public reply.',
    });
  });

  it('a contact without a valid address is skipped; the watchers still get theirs', async () => {
    const nobody = await addContact(h.db, { name: 'No Mail', email: 'not-an-address', clientId: world.clientA });
    const ticket = await ticketWith({ contactId: nobody });
    await post({ ticket_id: ticket, ticket_reply: 'Update', public_reply_type: 2 });
    expect((await mail(ticket)).map((r) => r.email_recipient)).toEqual(['wes@partner.example']);
  });

  it('without ITFlow’s mail set up, a Public + email reply is refused with 400 saying why, and nothing is written', async () => {
    await setMailSettings(h.db, { smtp: null });
    try {
      const ticket = await ticketWith();
      const answer = await post({ ticket_id: ticket, ticket_reply: 'Hello', public_reply_type: 2 });
      expect(answer).toMatchObject({
        status: 400,
        body: {
          success: 'False',
          message:
            'public_reply_type 2 (Public + email) is not available: ITFlow has no mail server configured (Admin > Settings > Mail: SMTP provider), so it would not email the client. Use public_reply_type 1 for a Public reply without email.',
        },
      });
      // Resolve and close then queue nothing either, as ITFlow would not.
      await post({ ticket_id: ticket, status: 4 });
      expect(await repliesOf(h.db, ticket)).toEqual([]);
      expect(await mail(ticket)).toEqual([]);
    } finally {
      await setMailSettings(h.db);
    }
  });

  it('without ITFLOW_BASE_URL the service cannot write ITFlow’s links, so it refuses Public + email and says what to set', async () => {
    const intake = await h.startPeer({ intake: true, worker: false }, { ITFLOW_BASE_URL: '' });
    const ticket = await ticketWith();
    const answer = await fetch(`${intake.url}${CREATE}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': world.keys.all },
      body: JSON.stringify({ ticket_id: ticket, ticket_reply: 'Hello', public_reply_type: 2 }),
    });
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { message: string }).message).toContain("set ITFLOW_BASE_URL to ITFlow's $config_base_url");
  });

  if (newer) {
    it('ITFlow’s own reply path mails any Public reply, to named watchers with valid addresses, and notifies no agent', async () => {
      const ticket = await ticketWith({ assignedTo: world.agent });
      await addWatcher(h.db, ticket, 'broken-address', 'Broken');
      const answer = await post(
        { ticket_id: ticket, ticket_reply: 'Via ITFlow’s path', ticket_reply_type: 'Public' },
        ITFLOW_CREATE,
      );
      expect(answer.status).toBe(201);
      expect((await mail(ticket)).map((r) => [r.email_recipient, r.email_recipient_name, r.email_subject])).toEqual([
        ['dana@client.example', 'Dana Client', `Ticket update - [TCK-${ticket}] - Printer jam`],
        ['wes@partner.example', 'Wes Watcher', `Ticket update - [TCK-${ticket}] - Printer jam`],
      ]);
      expect(await h.query('SELECT * FROM notifications WHERE notification_action LIKE ?', [`%ticket_id=${ticket}&%`])).toEqual(
        [],
      );
      const logs = await h.query(
        'SELECT log_type, log_action, log_entity_id FROM logs WHERE log_description LIKE ? ORDER BY log_id',
        [`%TCK-${ticket}%`],
      );
      expect(logs).toEqual([
        { log_type: 'Ticket', log_action: 'Reply', log_entity_id: ticket },
        { log_type: 'API', log_action: 'Success', log_entity_id: 0 },
      ]);
      expect((await ticketRow(h.db, ticket)).ticket_first_response_at).not.toBeNull();
    });
  }
});

describe('client mail is queued exactly once (ITFlow 2.6.7)', () => {
  // The intake alone first, so commands wait in the queue; a worker is started when the test says.
  let h: Harness;
  let world: World;
  let redis: Redis;
  let contact: number;
  const mailTo = (ticket: number) =>
    h.query('SELECT email_recipient, email_subject FROM email_queue WHERE email_subject LIKE ? ORDER BY email_id', [
      `%[TCK-${ticket}]%`,
    ]);
  const ticketWith = async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA, contactId: contact, subject: 'Mail once' });
    await h.query('UPDATE tickets SET ticket_number = ticket_id WHERE ticket_id = ?', [ticket]);
    await addWatcher(h.db, ticket, 'wes@partner.example', 'Wes Watcher');
    return ticket;
  };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false }, env: { ITFLOW_BASE_URL: BASE } });
    world = await seedWorld(h.db, '2.6.7');
    await setMailSettings(h.db, { notifications: 0 });
    contact = await addContact(h.db, { name: 'Dana Client', email: 'dana@client.example', clientId: world.clientA });
    redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });

  it('a retried request, a re-delivered job and a command that fails in the worker add no second mail and no mail at all', async () => {
    const emailed = await ticketWith();
    const closing = await ticketWith();
    const send = (body: object, key?: string) =>
      h.post(CREATE, body, { key: world.keys.all, headers: key ? { 'Idempotency-Key': key } : {} });
    const first = await send({ ticket_id: emailed, ticket_reply: 'Once', public_reply_type: 2 }, `mail-${emailed}`);
    const retried = await send({ ticket_id: emailed, ticket_reply: 'Once', public_reply_type: 2 }, `mail-${emailed}`);
    expect(retried.body.data[0].command_id).toBe(first.body.data[0].command_id);
    // Accepted while the ticket is open; by the time the worker gets to it, the close before it has closed it.
    await send({ ticket_id: closing, status: 5 });
    const refused = await send({ ticket_id: closing, ticket_reply: 'Too late', public_reply_type: 2 });
    expect(refused.status).toBe(202);

    const commandId = first.body.data[0].command_id;
    const lane = new Queue(laneName(laneOf(emailed, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });
    const job = await lane.getJob(commandId);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      await h.finished(commandId);
      const late = await h.finished(refused.body.data[0].command_id);
      expect(late).toMatchObject({ status: 'failed' });
      // The same command again, as BullMQ hands back a job whose worker stalled.
      await lane.add('command', job?.data, { jobId: commandId, removeOnComplete: true });
      for (let i = 0; i < 100 && (await lane.getJob(commandId)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await lane.getJob(commandId)).toBeUndefined();
    } finally {
      await lane.close();
      await worker.close();
    }
    expect(await mailTo(emailed)).toEqual([
      { email_recipient: 'dana@client.example', email_subject: `Ticket update - [TCK-${emailed}] - Mail once` },
      { email_recipient: 'wes@partner.example', email_subject: `Ticket update - [TCK-${emailed}] - Mail once` },
    ]);
    // Client notifications are off: the close mails no one, and the refused reply queued nothing.
    expect(await mailTo(closing)).toEqual([]);
    expect((await repliesOf(h.db, closing)).map((r) => r.ticket_reply)).toEqual(['Ticket closed.']);
  });
});
