import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EMAIL_BUT_QUIET } from '../../src/commands/createReply.js';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addContact, addTicket, repliesOf, seedWorld, setMailSettings, ticketRow, type World } from '../helpers/itflow.js';
import { BULK, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * Quiet automations: `notify: false` on a command, or a key an admin made quiet by default
 * (`npm run cli -- keys quiet <api_key_id>`), writes no `notifications` rows and queues no client
 * email, while the reply, the status and the audit rows (`logs`, `ticket_history`) are written as
 * usual. A command asking for email (public_reply_type 2) is never quiet: with notify: false it
 * is refused. Historical imports are always quiet.
 */

const WAIT = { Prefer: 'wait=10' };

describe.each(GENERATIONS)('quiet automations (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  let contact: number;
  let keyId: number;
  const newer = generation !== '2.4.4';

  beforeAll(async () => {
    h = await startHarness({ generation, env: { ITFLOW_BASE_URL: 'itflow.msp.example' } });
    world = await seedWorld(h.db, generation);
    await setMailSettings(h.db);
    contact = await addContact(h.db, { name: 'Dana Client', email: 'dana@client.example', clientId: world.clientA });
    const [key] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [world.keys.all]);
    keyId = Number(key?.api_key_id);
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  const post = (body: object, path = CREATE) => h.post(path, body, { key: world.keys.all, headers: WAIT });
  /** A ticket assigned to an agent and opened by another, with a contact to email (its number is its id). */
  const ticketWith = async (options: Parameters<typeof addTicket>[2] = {}) => {
    const ticket = await addTicket(h.db, generation, {
      clientId: world.clientA,
      assignedTo: world.agent,
      createdBy: world.agent + 1000,
      contactId: contact,
      ...options,
    });
    await h.query('UPDATE tickets SET ticket_number = ticket_id WHERE ticket_id = ?', [ticket]);
    return ticket;
  };
  /** What each kind of row a ticket has: replies, notifications, queued mail, logs, history. */
  const rowsOf = async (ticket: number) => ({
    replies: (await repliesOf(h.db, ticket)).length,
    notifications: (
      await h.query('SELECT notification_id FROM notifications WHERE notification_action LIKE ?', [
        `/agent/ticket.php?ticket_id=${ticket}&%`,
      ])
    ).length,
    mail: (await h.query('SELECT email_id FROM email_queue WHERE email_subject LIKE ?', [`%[TCK-${ticket}]%`])).length,
    logs: (await h.query("SELECT log_id FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ?", [ticket])).length,
    history: (await h.query('SELECT ticket_history_id FROM ticket_history WHERE ticket_history_ticket_id = ?', [ticket])).length,
  });
  const cli = async (...args: string[]) => {
    const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), args);
    const code = await run.exited;
    return { code, output: run.output() };
  };

  it('notify: false writes the reply, the status and the audit rows, and no notification or client email', async () => {
    const [loud, quiet] = [await ticketWith(), await ticketWith()];
    // A reply notifies the assigned agent and the creator; resolving mails the client.
    for (const [ticket, notify] of [
      [loud, {}],
      [quiet, { notify: false }],
    ] as const) {
      expect((await post({ ticket_id: ticket, ticket_reply: 'Patched overnight by the bot.', ...notify })).status).toBe(201);
      expect((await post({ ticket_id: ticket, status: 4, ...notify })).status).toBe(201);
    }
    const expected = { replies: 1, logs: 2, history: newer ? 1 : 0 };
    expect(await rowsOf(loud)).toEqual({ ...expected, notifications: 2, mail: 1 });
    expect(await rowsOf(quiet)).toEqual({ ...expected, notifications: 0, mail: 0 });
    expect((await ticketRow(h.db, quiet)).ticket_status).toBe(4);
  });

  it('a quiet close: closed, its Internal reply and log, no client email', async () => {
    const ticket = await ticketWith();
    expect((await post({ ticket_id: ticket, status: 5, notify: false })).status).toBe(201);
    expect(await rowsOf(ticket)).toMatchObject({ replies: 1, logs: 1, notifications: 0, mail: 0 });
    expect((await ticketRow(h.db, ticket)).ticket_closed_at).not.toBeNull();
  });

  it("on ITFlow's own create path, a quiet Public reply mails no one", async () => {
    const ticket = await ticketWith();
    const answer = await post(
      { ticket_id: ticket, ticket_reply: 'Done.', ticket_reply_type: 'Public', notify: false },
      ITFLOW_CREATE,
    );
    expect(answer.status).toBe(201);
    expect(await rowsOf(ticket)).toMatchObject({ replies: 1, notifications: 0, mail: 0 });
    expect((await repliesOf(h.db, ticket))[0]?.ticket_reply_type).toBe('Public');
  });

  it('public_reply_type 2 (Public + email) with notify: false is contradictory: 400, nothing written (create.php and bulk.php)', async () => {
    const ticket = await ticketWith();
    const body = { ticket_id: ticket, ticket_reply: 'Mail me, quietly', public_reply_type: 2, notify: false };
    expect(await post(body)).toMatchObject({ status: 400, body: { success: 'False', message: EMAIL_BUT_QUIET } });
    const bulk = await h.post(BULK, [body], { key: world.keys.all });
    expect(bulk.body.data).toEqual([{ http_status: 400, message: EMAIL_BUT_QUIET }]);
    expect((await post({ ...body, notify: 'no' })).body.message).toBe('notify must be true or false.');
    expect(await rowsOf(ticket)).toMatchObject({ replies: 0, notifications: 0, mail: 0, logs: 0 });
  });

  it('a historical bulk item is always quiet, and notify: true on one is refused', async () => {
    const ticket = await ticketWith();
    const item = { ticket_id: ticket, ticket_reply: 'From the old system', created_at: '2026-01-05 10:00:00' };
    const answer = await h.post(BULK, [item, { ...item, notify: true }], { key: world.keys.all, headers: WAIT });
    expect(answer.body.data[0]).toMatchObject({ status: 'applied' });
    expect(answer.body.data[1]).toMatchObject({ http_status: 400, message: expect.stringMatching(/^notify: true notifies/) });
    expect(await rowsOf(ticket)).toMatchObject({ replies: 1, notifications: 0, mail: 0 });
  });

  it('keys quiet <id> makes a key quiet by default: its commands notify no one unless they say notify: true or ask for email', async () => {
    const quietened = await cli('keys', 'quiet', String(keyId));
    expect(quietened).toEqual({ code: 0, output: `Quiet by default: key ${keyId}.\n` });
    try {
      const listed = await cli('keys', 'list', '--json');
      expect(
        listed.output
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toContainEqual(expect.objectContaining({ api_key_id: keyId, quiet: true }));

      const [byDefault, loud, mailed] = [await ticketWith(), await ticketWith(), await ticketWith()];
      expect((await post({ ticket_id: byDefault, ticket_reply: 'Nightly check OK.' })).status).toBe(201);
      expect((await post({ ticket_id: loud, ticket_reply: 'Needs a human!', notify: true })).status).toBe(201);
      expect((await post({ ticket_id: mailed, ticket_reply: 'Your backup failed.', public_reply_type: 2 })).status).toBe(201);
      expect(await rowsOf(byDefault)).toMatchObject({ replies: 1, logs: 1, notifications: 0 });
      expect(await rowsOf(loud)).toMatchObject({ replies: 1, logs: 1, notifications: 2 });
      expect(await rowsOf(mailed)).toMatchObject({ replies: 1, notifications: 2, mail: 1 });

      // Another key is not affected.
      const other = await ticketWith();
      const answer = await h.post(
        CREATE,
        { ticket_id: other, ticket_reply: 'Not quiet' },
        { key: world.keys.clientA, headers: WAIT },
      );
      expect(answer.status).toBe(201);
      expect(await rowsOf(other)).toMatchObject({ notifications: 2 });
    } finally {
      expect(await cli('keys', 'notify', String(keyId))).toEqual({ code: 0, output: `Notifying by default: key ${keyId}.\n` });
    }
    const again = await ticketWith();
    expect((await post({ ticket_id: again, ticket_reply: 'Loud again' })).status).toBe(201);
    expect(await rowsOf(again)).toMatchObject({ notifications: 2 });
    expect(await cli('keys', 'quiet', '999999')).toEqual({ code: 2, output: 'No API key 999999 in ITFlow (see `keys list`).\n' });
  });
});
