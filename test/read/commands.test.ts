import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * GET commands.php: where an accepted command is — queued, applying, retrying, applied,
 * failed — for the key that sent it and nobody else. The intake runs alone; tests start a
 * worker when they want the command to move on.
 */

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(GENERATIONS)('commands.php (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  const workerEnv = { APPLY_LOCK_WAIT_SECONDS: '1', APPLY_BACKOFF_MS: '300', APPLY_MAX_BACKOFF_MS: '300' };

  beforeAll(async () => {
    h = await startHarness({ generation, roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  const status = (location: string, key = world.keys.all) => h.get(location, { key });

  it('follows a command from queued to applied at the Location create.php answered', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Follow me' }, { key: world.keys.all });
    const location = created.headers.get('location') as string;
    const commandId = created.body.data[0].command_id;

    expect(await status(location)).toMatchObject({
      status: 200,
      body: { success: 'True', count: 1, data: [{ command_id: commandId, ticket_id: ticket, status: 'queued' }] },
    });

    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const applied = await until(
        () => status(location),
        (a) => a.body.data?.[0]?.status === 'applied',
      );
      const [reply] = await h.query('SELECT ticket_reply_id FROM ticket_replies WHERE ticket_reply_ticket_id = ?', [ticket]);
      const [settings] = await h.query('SELECT config_timezone FROM settings WHERE company_id = 1');
      const itflowWallClock = expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      expect(applied.body.data[0]).toEqual({
        command_id: commandId,
        ticket_id: ticket,
        status: 'applied',
        insert_id: reply?.ticket_reply_id,
        accepted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        finished_at: expect.stringMatching(/Z$/),
        accepted_at_itflow: itflowWallClock,
        finished_at_itflow: itflowWallClock,
        itflow_timezone: settings?.config_timezone,
        attempts: 1,
      });
    } finally {
      await worker.close();
    }
  });

  it('shows a failed command with the status and message a synchronous call would have got', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Closed under me' }, { key: world.keys.all });
    await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [ticket]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const failed = await until(
        () => status(created.headers.get('location') as string),
        (a) => a.body.data?.[0]?.status === 'failed',
      );
      expect(failed.body.data[0]).toMatchObject({
        status: 'failed',
        http_status: 409,
        message: 'Ticket is closed.',
        attempts: 1,
      });
    } finally {
      await worker.close();
    }
  });

  it('shows applying, then retrying while ticket_replies is locked elsewhere, then applied once the lock goes', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    // ticket_replies locked by another session (as a backup's LOCK TABLES does): the worker's
    // insert waits APPLY_LOCK_WAIT_SECONDS, then the command is retried.
    await holder.query('LOCK TABLES ticket_replies READ');
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Patience' }, { key: world.keys.all });
    const location = created.headers.get('location') as string;
    const worker = await h.startPeer({ intake: false, worker: true }, workerEnv);
    try {
      // The worker waits up to APPLY_LOCK_WAIT_SECONDS (1 s) for the row before its first retry.
      const applying = await until(
        () => status(location),
        (a) => a.body.data?.[0]?.status !== 'queued',
      );
      expect(applying.body.data[0].status).toBe('applying');
      const retrying = await until(
        () => status(location),
        (a) => a.body.data?.[0]?.status === 'retrying',
      );
      expect(retrying.body.data[0]).toMatchObject({
        status: 'retrying',
        attempts: expect.any(Number),
        next_try_at: expect.stringMatching(/Z$/),
      });
      await holder.query('UNLOCK TABLES');
      const applied = await until(
        () => status(location),
        (a) => a.body.data?.[0]?.status === 'applied',
      );
      expect(applied.body.data[0].attempts).toBeGreaterThan(1);
    } finally {
      await holder.end();
      await worker.close();
    }
  });

  it('shows a command that exhausted its attempts as failed (503), kept for an operator', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    // ticket_replies locked by another session (as a backup's LOCK TABLES does): the worker's
    // insert waits APPLY_LOCK_WAIT_SECONDS, then the command is retried.
    await holder.query('LOCK TABLES ticket_replies READ');
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Never' }, { key: world.keys.all });
    const worker = await h.startPeer({ intake: false, worker: true }, { ...workerEnv, APPLY_MAX_ATTEMPTS: '2' });
    try {
      const dead = await until(
        () => status(created.headers.get('location') as string),
        (a) => a.body.data?.[0]?.status === 'failed',
      );
      expect(dead.body.data[0]).toMatchObject({ status: 'failed', http_status: 503, attempts: 2 });
      expect(dead.body.data[0].message).toMatch(/could not be applied after 2 attempts/);
      expect(JSON.stringify(dead.body)).not.toMatch(/lock|SQL|innodb/i);
    } finally {
      await holder.query('UNLOCK TABLES');
      await holder.end();
      await worker.close();
    }
  });

  it('is visible only to the key that sent the command', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Mine' }, { key: world.keys.all });
    const other = await addKey(h.db, generation, { name: 'Other key', owner: world.author });
    const answer = await status(created.headers.get('location') as string, other);
    expect(answer).toMatchObject({ status: 404, body: { success: 'False' } });
  });

  it('takes a command id in any letter case, with or without dashes, and answers under its canonical form (GET and POST)', async () => {
    const path = '/api/v1/tickets/replies/commands.php';
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Any case' }, { key: world.keys.all });
    const commandId: string = created.body.data[0].command_id;
    const upper = commandId.toUpperCase();
    const bare = commandId.replace(/-/g, '');
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      await h.finished(commandId);
    } finally {
      await worker.close();
    }
    const [reply] = await h.query('SELECT ticket_reply_id FROM ticket_replies WHERE ticket_reply_ticket_id = ?', [ticket]);
    for (const asked of [upper, bare, bare.toUpperCase()]) {
      const answer = await status(`${path}?command_id=${asked}`);
      expect({ asked, status: answer.status, data: answer.body.data?.[0] }).toMatchObject({
        asked,
        status: 200,
        data: { command_id: commandId, status: 'applied', insert_id: reply?.ticket_reply_id },
      });
    }
    const many = await h.post(path, { command_ids: [upper, bare, 'not-a-command', commandId] }, { key: world.keys.all });
    const applied = { command_id: commandId, status: 'applied', insert_id: reply?.ticket_reply_id };
    expect(many).toMatchObject({ status: 200, body: { success: 'True', count: 4 } });
    expect(many.body.data).toEqual([
      applied,
      applied,
      {
        command_id: 'not-a-command',
        status: 'invalid',
        message: 'command_id must be the command_id create.php answered (a UUID).',
      },
      applied,
    ]);
  });

  it('answers 400 for a missing or malformed command_id and 404 for an unknown one', async () => {
    const path = '/api/v1/tickets/replies/commands.php';
    expect(await status(path)).toMatchObject({ status: 400, body: { message: 'command_id is required.' } });
    expect((await status(`${path}?command_id=12`)).status).toBe(400);
    expect((await status(`${path}?command_id=00000000-0000-4000-8000-000000000000`)).status).toBe(404);
  });
});
