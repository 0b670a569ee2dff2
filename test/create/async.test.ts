import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * The asynchronous model: 202 + command id + Location, `Prefer: wait`, the worker's own
 * re-checks of everything the intake checked, and the ledger that makes a re-delivered
 * command a no-op. The intake here runs alone; each test starts a worker when it wants one.
 */

describe('accepted commands and the worker (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let redis: Redis;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });

  const laneOfTicket = (ticket: number) =>
    new Queue(laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });

  it('answers 202 with a command id and a Location to follow; a worker applies it later', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Queued reply' }, { key: world.keys.all });

    expect(answer.status).toBe(202);
    const commandId = answer.body.data[0].command_id;
    expect(answer.body).toEqual({ success: 'True', count: 1, data: [{ command_id: commandId, status: 'queued' }] });
    expect(commandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers.get('location')).toBe(`/api/v1/tickets/replies/commands.php?command_id=${commandId}`);
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);

    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const ledger = await h.finished(commandId);
      expect(ledger).toMatchObject({ status: 'applied', ticket_id: ticket, attempts: 1 });
      expect((await repliesOf(h.db, ticket)).map((r) => [r.ticket_reply_id, r.ticket_reply])).toEqual([
        [ledger.insert_id, 'Queued reply'],
      ]);
    } finally {
      await worker.close();
    }
  });

  it('Prefer: wait=N answers 202 after N seconds when no worker finishes in time', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const started = Date.now();
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Nobody is working' },
      { key: world.keys.all, headers: { Prefer: 'wait=1' } },
    );
    const waited = Date.now() - started;

    expect(answer.status).toBe(202);
    expect(answer.body.data[0].status).toBe('queued');
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(5000);
  });

  it('the reply keeps its accepted time however late the worker applies it', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Written at acceptance' }, { key: world.keys.all });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const ledger = await h.finished(answer.body.data[0].command_id);
      const [reply] = await repliesOf(h.db, ticket);
      const created = Date.parse(`${String(reply?.ticket_reply_created_at).replace(' ', 'T')}Z`);
      const updated = Date.parse(`${String((await ticketRow(h.db, ticket)).ticket_updated_at).replace(' ', 'T')}Z`);
      expect(updated - created).toBeGreaterThanOrEqual(2000);
      expect(ledger.accepted_at_utc < ledger.finished_at_utc).toBe(true);
    } finally {
      await worker.close();
    }
  });

  it('the worker re-checks under the ticket lock: closed, moved out of scope, or key revoked after acceptance', async () => {
    const toClose = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const toMove = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const toRevoke = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const closed = await h.post(CREATE, { ticket_id: toClose, ticket_reply: 'Too late' }, { key: world.keys.all });
    const moved = await h.post(CREATE, { ticket_id: toMove, ticket_reply: 'Wrong client now' }, { key: world.keys.clientA });
    const doomedKey = await addKey(h.db, '2.6.7', { name: 'Soon revoked', owner: world.author });
    const revoked = await h.post(CREATE, { ticket_id: toRevoke, ticket_reply: 'Key gone' }, { key: doomedKey });
    expect([closed.status, moved.status, revoked.status]).toEqual([202, 202, 202]);

    await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [
      toClose,
    ]);
    await h.query('UPDATE tickets SET ticket_client_id = ? WHERE ticket_id = ?', [world.clientB, toMove]);
    await h.query("UPDATE api_keys SET api_key_expire = '2020-01-01' WHERE api_key_secret = ?", [doomedKey]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const closedRow = await h.finished(closed.body.data[0].command_id);
      const movedRow = await h.finished(moved.body.data[0].command_id);
      expect(closedRow).toMatchObject({ status: 'failed', http_status: 409, error: 'Ticket is closed.', attempts: 1 });
      expect(movedRow).toMatchObject({ status: 'failed', http_status: 404, attempts: 1 });
      expect(await repliesOf(h.db, toClose)).toHaveLength(0);
      expect(await repliesOf(h.db, toMove)).toHaveLength(0);
      expect(await h.finished(revoked.body.data[0].command_id)).toMatchObject({
        status: 'failed',
        http_status: 401,
        attempts: 1,
      });
      expect(await repliesOf(h.db, toRevoke)).toHaveLength(0);
    } finally {
      await worker.close();
    }
  });

  it('a client waiting with Prefer: wait gets the worker’s failure with its HTTP status', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const waiting = h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Will be refused' },
      { key: world.keys.all, headers: { Prefer: 'wait=15' } },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [ticket]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const answer = await waiting;
      expect(answer.status).toBe(409);
      expect(answer.body).toEqual({ success: 'False', message: 'Ticket is closed.' });
      expect(answer.headers.get('preference-applied')).toBe('wait=15');
    } finally {
      await worker.close();
    }
  });

  it('a command delivered twice (as BullMQ re-delivers after a crash) has exactly one effect', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA, status: 2 });
    const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Once only', status: 4 }, { key: world.keys.all });
    const commandId = answer.body.data[0].command_id;
    const lane = laneOfTicket(ticket);
    const job = await lane.getJob(commandId);
    expect(job?.data.commandId).toBe(commandId);

    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const first = await h.finished(commandId);
      // The same command again, as a stalled job would come back.
      await lane.add('command', job?.data, { jobId: commandId, removeOnComplete: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let i = 0; i < 100 && (await lane.getJob(commandId)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await lane.getJob(commandId)).toBeUndefined();

      expect(await repliesOf(h.db, ticket)).toHaveLength(1);
      expect(await h.query('SELECT * FROM rq_commands WHERE command_id = ?', [idBytes(commandId)])).toEqual([first]);
      expect(await h.query('SELECT * FROM ticket_history WHERE ticket_history_ticket_id = ?', [ticket])).toHaveLength(1);
      expect(await h.query("SELECT * FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ?", [ticket])).toHaveLength(2);
    } finally {
      await lane.close();
      await worker.close();
    }
  });
});
