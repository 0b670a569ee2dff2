import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCommandId } from '../../src/commands/commandId.js';
import { INCLUDE_PENDING_NEEDS_TICKET } from '../../src/commands/readReplies.js';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { redisKeys } from '../../src/queue/keys.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, READ } from '../helpers/paths.js';

/**
 * Read-your-writes: read.php?ticket_id=…&include_pending=1 lists first the caller's own commands
 * for the ticket that were accepted but are not applied yet — marked `pending` with their
 * command_id, shaped like the replies they will become — and never another key's. Once applied,
 * a command is listed as its reply, never twice; a leftover note (a worker that died before
 * clearing it) never shows.
 */

describe.each(GENERATIONS)('read.php include_pending (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  let redis: Redis;
  let keyId: number;

  beforeAll(async () => {
    h = await startHarness({ generation, timeZone: 'America/New_York' });
    world = await seedWorld(h.db, generation);
    redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    const [key] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [world.keys.all]);
    keyId = Number(key?.api_key_id);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });

  const lane = (ticket: number) =>
    new Queue(laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });
  const read = (query: string, key = world.keys.all) => h.get(`${READ}?${query}`, { key });
  /** Runs `use` with the ticket's lane paused, so what is accepted stays queued. */
  async function whilePaused<T>(ticket: number, use: (queue: Queue) => Promise<T>): Promise<T> {
    const queue = lane(ticket);
    await queue.pause();
    try {
      return await use(queue);
    } finally {
      await queue.resume();
      await queue.close();
    }
  }

  it('lists the caller’s queued commands first, newest first, then the applied replies; other keys see only their own', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const applied = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Already applied' },
      { key: world.keys.all, headers: { Prefer: 'wait=10' } },
    );
    const appliedId = String(applied.body.data[0].insert_id);
    await whilePaused(ticket, async (queue) => {
      const reply = await h.post(
        CREATE,
        { ticket_id: ticket, ticket_reply: 'Typed a moment ago', public_reply_type: 1, minutes: 5, external_id: `msg-${ticket}` },
        { key: world.keys.all },
      );
      const status = await h.post(CREATE, { ticket_id: ticket, status: 3 }, { key: world.keys.all });
      const bulk = await h.post(BULK, [{ ticket_id: ticket, ticket_reply: 'From a bulk request' }], { key: world.keys.all });
      const theirs = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Another key’s' }, { key: world.keys.clientA });
      expect([reply.status, status.status, bulk.status, theirs.status]).toEqual([202, 202, 202, 202]);
      const by = generation === '2.4.4' ? '0' : String(world.author);

      const answer = await read(`ticket_id=${ticket}&include_pending=1`);
      expect(answer.status).toBe(200);
      const [bulkRow, statusRow, replyRow, appliedRow, ...rest] = answer.body.data;
      expect(rest).toEqual([]);
      expect(answer.body.count).toBe(4);
      expect(replyRow).toEqual({
        ticket_reply_id: null,
        ticket_reply: 'Typed a moment ago',
        ticket_reply_type: 'Public',
        ticket_reply_time_worked: '00:05:00',
        ticket_reply_created_at: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
        ticket_reply_updated_at: null,
        ticket_reply_archived_at: null,
        ticket_reply_by: by,
        ticket_reply_ticket_id: String(ticket),
        external_id: `msg-${ticket}`,
        pending: true,
        command_id: reply.body.data[0].command_id,
        ticket_status: null,
      });
      expect(statusRow).toMatchObject({
        pending: true,
        command_id: status.body.data[0].command_id,
        ticket_reply: null,
        ticket_reply_type: null,
        ticket_status: '3',
      });
      expect(bulkRow).toMatchObject({
        pending: true,
        command_id: bulk.body.data[0].command_id,
        ticket_reply: 'From a bulk request',
      });
      expect(appliedRow).toMatchObject({ ticket_reply_id: appliedId, ticket_reply: 'Already applied' });
      expect(appliedRow).not.toHaveProperty('pending');

      // The other key sees its own pending command, not these.
      const theirsAnswer = await read(`ticket_id=${ticket}&include_pending=1`, world.keys.clientA);
      expect(
        theirsAnswer.body.data.filter((r: { pending?: boolean }) => r.pending).map((r: { command_id: string }) => r.command_id),
      ).toEqual([theirs.body.data[0].command_id]);
      // Without include_pending, and on later pages, only replies.
      expect((await read(`ticket_id=${ticket}`)).body.data.map((r: { ticket_reply_id: string }) => r.ticket_reply_id)).toEqual([
        appliedId,
      ]);
      expect((await read(`ticket_id=${ticket}&include_pending=1&before_id=${Number(appliedId) + 1}`)).body.count).toBe(1);
      // external_id narrows the pending rows too.
      expect((await read(`ticket_id=${ticket}&include_pending=1&external_id=msg-${ticket}`)).body.data).toEqual([replyRow]);
      await queue.resume();
      for (const answer of [reply, status, bulk, theirs]) await h.finished(answer.body.data[0].command_id);
    });

    // Applied: listed once each, as replies.
    const after = await read(`ticket_id=${ticket}&include_pending=1`);
    expect(after.body.data.some((r: { pending?: boolean }) => r.pending)).toBe(false);
    expect(after.body.data.map((r: { ticket_reply: string }) => r.ticket_reply)).toEqual([
      'Another key’s',
      'From a bulk request',
      'Typed a moment ago',
      'Already applied',
    ]);
  });

  it('a ticket with only pending commands answers 200 with them; with nothing at all, 404', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    expect((await read(`ticket_id=${ticket}&include_pending=1`)).status).toBe(404);
    await whilePaused(ticket, async (queue) => {
      const queued = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Only pending' }, { key: world.keys.all });
      const answer = await read(`ticket_id=${ticket}&include_pending=1`);
      expect(answer).toMatchObject({
        status: 200,
        body: { count: 1, data: [{ pending: true, command_id: queued.body.data[0].command_id }] },
      });
      expect((await read(`ticket_id=${ticket}`)).status).toBe(404);
      await queue.resume();
      await h.finished(queued.body.data[0].command_id);
    });
  });

  it('a command parked behind a ticket row another session holds is pending until the row is free', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const holder = await h.db.getConnection();
    try {
      await holder.query('START TRANSACTION');
      await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [ticket]);
      const queued = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Behind a lock' }, { key: world.keys.all });
      const commandId = queued.body.data[0].command_id;
      // Parked: the lane goes on with its other tickets, and this command waits in Redis for the row.
      let waiting: unknown;
      for (let i = 0; i < 200 && !waiting; i++) {
        const status = await h.get(`${COMMANDS}?command_id=${commandId}`, { key: world.keys.all });
        waiting = status.body.data[0].waiting_for;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(waiting).toBe('ticket_lock');
      const answer = await read(`ticket_id=${ticket}&include_pending=1`);
      expect(answer.body.data).toEqual([
        expect.objectContaining({ pending: true, command_id: commandId, ticket_reply: 'Behind a lock' }),
      ]);
      await holder.query('COMMIT');
      await h.finished(commandId);
      const after = await read(`ticket_id=${ticket}&include_pending=1`);
      expect(after.body.data).toEqual([expect.objectContaining({ ticket_reply: 'Behind a lock' })]);
      expect(after.body.data[0]).not.toHaveProperty('pending');
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });

  it('a note left behind (the worker died before clearing it, or the command never reached its lane) never shows, and is dropped', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const applied = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Applied long ago' },
      { key: world.keys.all, headers: { Prefer: 'wait=10' } },
    );
    const key = redisKeys(h.config.QUEUE_PREFIX, 'standalone').pending(
      laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'),
      keyId,
      ticket,
    );
    const lost = newCommandId();
    const onItsWay = newCommandId();
    // A note for the applied command (as if its worker died after committing), one for a command that
    // never reached its lane an hour ago, and one being accepted right now.
    await redis.zadd(key, Date.now() - 5000, applied.body.data[0].command_id, Date.now() - 3_600_000, lost, Date.now(), onItsWay);
    const answer = await read(`ticket_id=${ticket}&include_pending=1`);
    expect(answer.body.data.map((r: { ticket_reply: string; pending?: boolean }) => [r.ticket_reply, r.pending])).toEqual([
      ['Applied long ago', undefined],
    ]);
    // The read dropped the notes of what is finished or lost, and kept the one that may still arrive.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await redis.zrange(key, '0', '-1')).toEqual([onItsWay]);
  });

  it('the worker clears a command’s note once it is applied', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const key = redisKeys(h.config.QUEUE_PREFIX, 'standalone').pending(
      laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'),
      keyId,
      ticket,
    );
    await whilePaused(ticket, async (queue) => {
      const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Cleared' }, { key: world.keys.all });
      expect(answer.status).toBe(202);
      expect(await redis.zrange(key, '0', '-1')).toEqual([answer.body.data[0].command_id]);
      await queue.resume();
      await h.finished(answer.body.data[0].command_id);
    });
    for (let i = 0; i < 50 && (await redis.zcard(key)) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await redis.zcard(key)).toBe(0);
  });

  it('include_pending needs a ticket_id (400) and takes 1 or 0', async () => {
    expect(await read('include_pending=1')).toMatchObject({ status: 400, body: { message: INCLUDE_PENDING_NEEDS_TICKET } });
    expect(await read('ticket_id=1&include_pending=yes')).toMatchObject({
      status: 400,
      body: { message: 'include_pending must be 1 or 0.' },
    });
  });
});
