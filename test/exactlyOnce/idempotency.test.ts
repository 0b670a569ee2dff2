import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idText } from '../../src/apply/ledger.js';
import { parseBulkItem } from '../../src/commands/bulkItem.js';
import { fingerprint } from '../../src/commands/command.js';
import { newCommandId } from '../../src/commands/commandId.js';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import type { CommandJob } from '../../src/queue/jobs.js';
import { redisKeys } from '../../src/queue/keys.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { deleteQueueKeys, type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';

/**
 * Idempotency keys: a retry with the same key and body gets the first command back and never
 * causes a second effect; the same key with another body is refused (422). Keys are per API key.
 */

describe.each(GENERATIONS)('idempotency keys (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  const post = (body: object, headers: Record<string, string> = {}, key = world.keys.all) =>
    h.post(CREATE, body, { key, headers });

  beforeAll(async () => {
    h = await startHarness({ generation });
    world = await seedWorld(h.db, generation);
  });
  afterAll(() => h?.close());

  /**
   * Claims `key` in Redis as another intake's request for `body` would (the same fingerprint),
   * stamped `stampMs` by that intake's clock, for a command not queued yet. Returns the claim's
   * Redis key. (The fingerprint comes from a first command with the body, as the ledger has it.)
   */
  async function claimElsewhere(redis: Redis, body: object, key: string, commandId: string, stampMs = Date.now()) {
    const probeKey = `${key}-probe`;
    expect((await post(body, { 'Idempotency-Key': probeKey, Prefer: 'wait=10' })).status).toBe(201);
    const [row] = await h.query('SELECT api_key_id, fingerprint FROM rq_commands WHERE idempotency_key = ?', [probeKey]);
    const probed = row as { api_key_id: number; fingerprint: Buffer };
    const claimKey = redisKeys(h.config.QUEUE_PREFIX, 'standalone').idempotency(probed.api_key_id, key);
    await redis.set(claimKey, `${commandId} ${probed.fingerprint.toString('hex')} ${stampMs}`, 'EX', 86_400);
    return claimKey;
  }

  /** Queues an Internal reply to `ticket` straight into its lane, as an intake would, bypassing this one. */
  async function queueDirectly(redis: Redis, ticket: number, job: { commandId: string; idempotencyKey: string; text: string }) {
    const [[apiKey]] = (await h.db.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [world.keys.all])) as any;
    const command = { ticketId: ticket, reply: { body: job.text, type: 'Internal' as const, timeWorked: '00:00:00' }, status: 0 };
    const lane = new Queue(laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });
    try {
      const data = {
        v: 1,
        commandId: job.commandId,
        acceptedAt: Date.now(),
        apiKeyId: apiKey.api_key_id,
        idempotencyKey: job.idempotencyKey,
        fingerprint: fingerprint(command),
        command,
        origin: { ip: '127.0.0.1', userAgent: 'test' },
        announce: true, // as the intake queues any command with an idempotency key
      } satisfies CommandJob;
      await lane.add('command', data, { jobId: job.commandId, removeOnComplete: true });
    } finally {
      await lane.close();
    }
  }

  it('the same key and body give the same command and one reply, before and after it is applied', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Once, however often I am sent' };
    const first = await post(body, { 'Idempotency-Key': 'retry-me-1' });
    const again = await post(body, { 'Idempotency-Key': 'retry-me-1' });
    expect(first.status).toBe(202);
    const commandId = first.body.data[0].command_id;
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect([201, 202]).toContain(again.status);
    expect(again.body.data[0].command_id).toBe(commandId);

    await h.finished(commandId);
    const later = await post(body, { 'Idempotency-Key': 'retry-me-1' });
    const [reply] = await repliesOf(h.db, ticket);
    expect(later).toMatchObject({ status: 201, body: { data: [{ insert_id: reply?.ticket_reply_id, command_id: commandId }] } });
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('the body field idempotency_key works too, and the header wins over it', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const first = await post({ ticket_id: ticket, ticket_reply: 'x', idempotency_key: 'in-body' }, { Prefer: 'wait=10' });
    const byField = await post({ ticket_id: ticket, ticket_reply: 'x', idempotency_key: 'in-body' });
    const byHeader = await post(
      { ticket_id: ticket, ticket_reply: 'x', idempotency_key: 'ignored' },
      { 'Idempotency-Key': 'in-body' },
    );
    expect(byField.body.data[0].command_id).toBe(first.body.data[0].command_id);
    expect(byHeader.body.data[0].command_id).toBe(first.body.data[0].command_id);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('the same key with a different body answers 422 and writes nothing', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const first = await post({ ticket_id: ticket, ticket_reply: 'original' }, { 'Idempotency-Key': 'reused', Prefer: 'wait=10' });
    const other = await post(
      { ticket_id: ticket, ticket_reply: 'something else' },
      { 'Idempotency-Key': 'reused', Prefer: 'wait=10' },
    );
    expect(other.status).toBe(422);
    expect(other.body).toEqual({
      success: 'False',
      message: `Idempotency key 'reused' was already used for a different request (command ${first.body.data[0].command_id}).`,
    });
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['original']);
  });

  it('keys belong to one API key: another key may use the same idempotency key for its own command', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const otherKey = await addKey(h.db, generation, {
      name: 'Second integration',
      owner: generation === '2.4.4' ? 0 : world.author,
    });
    const mine = await post({ ticket_id: ticket, ticket_reply: 'a' }, { 'Idempotency-Key': 'shared', Prefer: 'wait=10' });
    const theirs = await post(
      { ticket_id: ticket, ticket_reply: 'a' },
      { 'Idempotency-Key': 'shared', Prefer: 'wait=10' },
      otherKey,
    );
    expect(theirs.body.data[0].command_id).not.toBe(mine.body.data[0].command_id);
    expect(await repliesOf(h.db, ticket)).toHaveLength(2);
  });

  it('retrying a close that was applied answers as the close did, not "Ticket is closed."', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Closing, thanks!', status: 5 };
    const first = await post(body, { 'Idempotency-Key': 'close-1', Prefer: 'wait=10' });
    const retry = await post(body, { 'Idempotency-Key': 'close-1', Prefer: 'wait=10' });
    expect(first.status).toBe(201);
    expect(retry).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });
    // One closing reply and one "Ticket closed." (ITFlow's close writes it): not two of each.
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Closing, thanks!', 'Ticket closed.']);
    expect((await ticketRow(h.db, ticket)).ticket_status).toBe(5);
  });

  it('concurrent duplicates still in flight cause one effect; each answer names the one command (or asks to retry, 409)', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Racing duplicates' };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(body, { 'Idempotency-Key': 'race-1' })));
    const ids = new Set(answers.filter((a) => a.status === 202 || a.status === 201).map((a) => a.body.data[0].command_id));
    expect(ids.size).toBe(1);
    for (const answer of answers) {
      expect([201, 202, 409]).toContain(answer.status);
      if (answer.status === 409) expect(answer.headers.get('retry-after')).toBe('1');
    }
    await h.finished([...ids][0] as string);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('Redis forgetting a key (a restart without persistence) does not let it be used twice: the ledger remembers', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Remembered by MySQL' };
    const first = await post(body, { 'Idempotency-Key': 'forgotten', Prefer: 'wait=10' });
    await deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:idem`);
    const retry = await post(body, { 'Idempotency-Key': 'forgotten', Prefer: 'wait=10' });
    expect(retry).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });
    const mismatch = await post({ ...body, ticket_reply: 'changed' }, { 'Idempotency-Key': 'forgotten' });
    expect(mismatch.status).toBe(422);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('a Prefer: wait retry of a queued command waits for it and answers 201', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Wait for the first' };
    const [first, second] = await Promise.all([
      post(body, { 'Idempotency-Key': 'wait-1' }),
      new Promise((resolve) => setTimeout(resolve, 30)).then(() =>
        post(body, { 'Idempotency-Key': 'wait-1', Prefer: 'wait=10' }),
      ),
    ]);
    expect(second.status).toBe(201);
    expect(second.body.data[0].command_id).toBe(first.body.data[0].command_id);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  describe('a retry with Prefer: wait while the first request is still being accepted (its claim made, its command not queued yet)', () => {
    it('waits for it to be queued and answers with its outcome (201), not 409', async () => {
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      const body = { ticket_id: ticket, ticket_reply: 'Queued a moment after the retry came' };
      const redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
      try {
        const holder = newCommandId();
        const key = `being-accepted-${generation}`;
        await claimElsewhere(redis, body, key, holder);
        const retrying = post(body, { 'Idempotency-Key': key, Prefer: 'wait=10' });
        // The first request queues its command 400 ms later (a slow ticket check, a busy intake).
        await new Promise((resolve) => setTimeout(resolve, 400));
        await queueDirectly(redis, ticket, { commandId: holder, idempotencyKey: key, text: body.ticket_reply });
        const retry = await retrying;
        expect(retry.status).toBe(201);
        expect(retry.body.data[0].command_id).toBe(holder);
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
        // The probe's reply and the first request's: the retry made none of its own.
        expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual([body.ticket_reply, body.ticket_reply]);
        expect(await h.query('SELECT command_id FROM rq_commands WHERE idempotency_key = ?', [key])).toHaveLength(1);
      } finally {
        redis.disconnect();
      }
    });

    it('goes on as the first request when that one gives the key back (refused), and answers 201', async () => {
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      const body = { ticket_id: ticket, ticket_reply: 'The first was refused, I go through' };
      const redis = new Redis(h.config.REDIS_URL);
      try {
        const holder = newCommandId();
        const key = `given-back-${generation}`;
        const claimKey = await claimElsewhere(redis, body, key, holder);
        const retrying = post(body, { 'Idempotency-Key': key, Prefer: 'wait=10' });
        // 400 ms later the first request is refused and gives the key back.
        await new Promise((resolve) => setTimeout(resolve, 400));
        await redis.del(claimKey);
        const retry = await retrying;
        expect(retry.status).toBe(201);
        expect(retry.body.data[0].command_id).not.toBe(holder);
        expect(await repliesOf(h.db, ticket)).toHaveLength(2); // the probe's and the retry's
      } finally {
        redis.disconnect();
      }
    });

    it('answers 409 with Retry-After when its wait runs out first, and at once without Prefer: wait', async () => {
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      const body = { ticket_id: ticket, ticket_reply: 'Still on its way in' };
      const redis = new Redis(h.config.REDIS_URL);
      try {
        const key = `slow-first-${generation}`;
        await claimElsewhere(redis, body, key, newCommandId());
        const began = Date.now();
        const waited = await post(body, { 'Idempotency-Key': key, Prefer: 'wait=1' });
        const waitedMs = Date.now() - began;
        expect(waited.status).toBe(409);
        expect(waited.headers.get('retry-after')).toBe('1');
        expect(waitedMs).toBeGreaterThanOrEqual(900);
        const at = Date.now();
        const unwaited = await post(body, { 'Idempotency-Key': key });
        expect(unwaited.status).toBe(409);
        expect(Date.now() - at).toBeLessThan(900);
        expect(await repliesOf(h.db, ticket)).toHaveLength(1); // the probe's
      } finally {
        redis.disconnect();
      }
    });

    describe('bulk.php items, the same way', () => {
      /** Claims an item's idempotency key or external_id in Redis as another intake's request for it would. */
      async function claimItemElsewhere(redis: Redis, item: Record<string, unknown>, commandId: string) {
        const [[apiKey]] = (await h.db.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [
          world.keys.all,
        ])) as any;
        const keys = redisKeys(h.config.QUEUE_PREFIX, 'standalone');
        const claimKey =
          typeof item.external_id === 'string'
            ? keys.externalId(apiKey.api_key_id, item.external_id)
            : keys.idempotency(apiKey.api_key_id, item.idempotency_key as string);
        const held = fingerprint(parseBulkItem(item, 'UTC').command);
        await redis.set(claimKey, `${commandId} ${held} ${Date.now()}`, 'EX', 86_400);
        return claimKey;
      }

      it.each([
        ['idempotency key', 'idempotency_key'],
        ['external_id', 'external_id'],
      ])('an item whose %s is held waits with Prefer: wait and answers as the first; the others go through', async (_, field) => {
        const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
        const held = {
          ticket_id: ticket,
          ticket_reply: 'Held by a request still being accepted',
          [field]: `bulk-held-${field}-${generation}`,
        };
        const fresh = { ticket_id: ticket, ticket_reply: 'A new item beside it', [field]: `bulk-fresh-${field}-${generation}` };
        const redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
        try {
          const holder = newCommandId();
          await claimItemElsewhere(redis, held, holder);
          const retrying = h.post(BULK, [held, fresh], { key: world.keys.all, headers: { Prefer: 'wait=10' } });
          // The first request queues its command 400 ms later.
          await new Promise((resolve) => setTimeout(resolve, 400));
          await queueDirectly(redis, ticket, { commandId: holder, idempotencyKey: `first-${field}`, text: held.ticket_reply });
          const retry = await retrying;
          expect(retry.status).toBe(200);
          const [asFirst, beside] = retry.body.data;
          // The first request's reply and the new item's: the held item made none of its own.
          const replies = await repliesOf(h.db, ticket);
          expect(replies.map((r) => r.ticket_reply)).toEqual([held.ticket_reply, fresh.ticket_reply]);
          // Answered as the first request's command once it was applied (the retry asked to wait).
          expect(asFirst).toEqual({
            command_id: holder,
            status: 'applied',
            insert_id: replies[0]?.ticket_reply_id,
            replayed: true,
          });
          expect(beside).toMatchObject({ status: 'applied', insert_id: replies[1]?.ticket_reply_id });
          expect(beside.command_id).not.toBe(holder);
        } finally {
          redis.disconnect();
        }
      });

      it('an item whose key is given back by the first request (refused) goes through itself', async () => {
        const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
        const item = {
          ticket_id: ticket,
          ticket_reply: 'The first was refused, I go through',
          idempotency_key: `bulk-given-back-${generation}`,
        };
        const redis = new Redis(h.config.REDIS_URL);
        try {
          const holder = newCommandId();
          const claimKey = await claimItemElsewhere(redis, item, holder);
          const retrying = h.post(BULK, [item], { key: world.keys.all, headers: { Prefer: 'wait=10' } });
          await new Promise((resolve) => setTimeout(resolve, 400));
          await redis.del(claimKey);
          const retry = await retrying;
          expect(retry.status).toBe(200);
          expect(retry.body.data[0]).toMatchObject({ status: 'applied' });
          expect(retry.body.data[0].command_id).not.toBe(holder);
          expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual([item.ticket_reply]);
        } finally {
          redis.disconnect();
        }
      });

      it('that item answers 409 when the wait runs out, and at once without Prefer: wait; the others are queued', async () => {
        const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
        const held = { ticket_id: ticket, ticket_reply: 'Still on its way in', idempotency_key: `bulk-slow-first-${generation}` };
        const other = { ticket_id: ticket, ticket_reply: 'Not waiting on anyone' };
        const redis = new Redis(h.config.REDIS_URL);
        try {
          await claimItemElsewhere(redis, held, newCommandId());
          const inFlight = {
            http_status: 409,
            message: 'A request with this idempotency key is still being accepted. Retry in a moment.',
          };
          const began = Date.now();
          const waited = await h.post(BULK, [held, other], { key: world.keys.all, headers: { Prefer: 'wait=1' } });
          expect(Date.now() - began).toBeGreaterThanOrEqual(900);
          expect(waited.body.data[0]).toEqual(inFlight);
          expect(waited.body.data[1]).toMatchObject({ status: 'applied' });
          const at = Date.now();
          const unwaited = await h.post(BULK, [held], { key: world.keys.all });
          expect(Date.now() - at).toBeLessThan(900);
          expect(unwaited.status).toBe(400);
          expect(unwaited.body.data[0]).toEqual(inFlight);
          expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual([other.ticket_reply]);
        } finally {
          redis.disconnect();
        }
      });
    });
  });

  it('two commands with one key that reach the workers anyway (bypassing the intake) have one effect', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    const lane = new Queue(laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });
    try {
      const ids = [newCommandId(), newCommandId()];
      for (const commandId of ids)
        await queueDirectly(redis, ticket, { commandId, idempotencyKey: 'bypassed', text: 'Sneaked in twice' });
      await h.finished(ids[0] as string);
      // The second answers as the first and records nothing of its own: wait for it to leave the lane.
      for (let i = 0; i < 100 && (await lane.getJob(ids[1] as string)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await lane.getJob(ids[1] as string)).toBeUndefined();
      expect(await repliesOf(h.db, ticket)).toHaveLength(1);
      const holders = await h.query('SELECT command_id FROM rq_commands WHERE idempotency_key = ?', ['bypassed']);
      expect(holders.map((r) => idText(r.command_id))).toEqual([ids[0]]);
    } finally {
      await lane.close();
      redis.disconnect();
    }
  });

  it("a claim's age is Redis's: a key claimed a moment ago by an intake whose clock runs 10 s behind is still on its way in (409), and taken over once 5 s old by Redis's clock", async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Claimed by a slow clock' };
    const redis = new Redis(h.config.REDIS_URL);
    try {
      // What the other intake wrote: a command not queued yet, stamped by a clock 10 s behind.
      const elsewhere = newCommandId();
      const claimKey = await claimElsewhere(redis, body, `skewed-${generation}`, elsewhere, Date.now() - 10_000);
      const meanwhile = await post(body, { 'Idempotency-Key': `skewed-${generation}` });
      expect(meanwhile.status).toBe(409);
      expect(meanwhile.headers.get('retry-after')).toBe('1');

      // 5 s of its time to live spent: by Redis's clock the claim is 5 s old and its command never came.
      await redis.pexpire(claimKey, 86_400_000 - 5_000);
      const retry = await post(body, { 'Idempotency-Key': `skewed-${generation}`, Prefer: 'wait=10' });
      expect(retry.status).toBe(201);
      expect(retry.body.data[0].command_id).not.toBe(elsewhere);
      expect(await repliesOf(h.db, ticket)).toHaveLength(2); // the probe's and this one
    } finally {
      redis.disconnect();
    }
  });
});

describe('a retry of a command the worker refused (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('gets the same failure, replayed, without trying again', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Closed before I was applied' };
    const first = await h.post(CREATE, body, { key: world.keys.all, headers: { 'Idempotency-Key': 'refused-1' } });
    expect(first.status).toBe(202);
    await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [ticket]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      expect(await h.finished(first.body.data[0].command_id)).toMatchObject({ status: 'failed', http_status: 409 });
    } finally {
      await worker.close();
    }
    const retry = await h.post(CREATE, body, { key: world.keys.all, headers: { 'Idempotency-Key': 'refused-1' } });
    expect(retry).toMatchObject({ status: 409, body: { success: 'False', message: 'Ticket is closed.' } });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await h.query('SELECT command_id FROM rq_commands WHERE ticket_id = ?', [ticket])).toHaveLength(1);
  });
});
