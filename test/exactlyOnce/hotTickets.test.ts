import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { laneOf, laneOfTicket } from '../../src/queue/lanes.js';
import { createRedis } from '../../src/queue/redis.js';
import type { RunningService } from '../../src/service.js';
import { expectExactlyOnce, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

// Hot tickets: many commands waiting on a few tickets, so each lane holds a long run of them.
// The worker applying a lane's job takes the commands waiting behind it into the same
// transaction; they are still applied exactly once, in order, counted once and announced once.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sums a metric's samples (across labels) as the process at `url` reports them. */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}${labels} `) || (labels === '' && line.startsWith(`${name}{`)))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('hot tickets: a lane applies its waiting commands together (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let worker: RunningService | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });
  afterAll(() => h?.close());

  const hotTickets = () => Promise.all([1, 2, 3].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));

  it('commands queued on 3 tickets are applied once each, in order, many to a transaction', async () => {
    const tickets = await hotTickets();
    const sent = await sendReplies(h, world.keys.all, tickets, 100);

    worker = await h.startPeer({ intake: false, worker: true }, { WORKER_PORT: '0' });
    await Promise.all(sent.map((s) => h.finished(s.commandId, 60_000)));
    await expectExactlyOnce(h, sent);

    const url = worker.url as string;
    // Each command counted once: none as applied twice, none as "already finished".
    expect(await metric(url, 'replyqueue_commands_applied_total')).toBe(sent.length);
    expect(await metric(url, 'replyqueue_commands_already_finished_total')).toBe(0);
    expect(await metric(url, 'replyqueue_command_lag_seconds_count')).toBe(sent.length);
    const commands = await metric(url, 'replyqueue_apply_batch_commands_sum');
    const transactions = await metric(url, 'replyqueue_apply_batch_commands_count');
    expect(commands).toBe(sent.length);
    // One command per lane per transaction would make at most 3 a transaction.
    console.info('hot tickets:', { commands, transactions, perTransaction: commands / transactions });
    expect(commands / transactions).toBeGreaterThanOrEqual(20);
    // The jobs applied ahead are delivered later all the same, and leave the lanes empty.
    for (let i = 0; i < 100 && (await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')) > 0; i++) await sleep(100);
    expect(await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')).toBe(0);
    expect(await metric(url, 'replyqueue_queue_jobs', '{state="failed"}')).toBe(0);
    // The commands applied ahead were taken out of their lanes once committed: BullMQ delivered a
    // job per run, not one per command (each delivery is a round of scripts on Redis).
    const lanes = [...new Set(tickets.map((t) => laneOfTicket(t, h.config.QUEUE_PARTITIONS, 'standalone')))];
    const redis = createRedis({ REDIS_URL: h.config.REDIS_URL }, 'blocking', 'test-lane-events');
    try {
      let delivered = 0;
      for (const lane of lanes) {
        const events = await redis.xrange(`${h.config.QUEUE_PREFIX}:${lane}:events`, '-', '+');
        delivered += events.filter(([, fields]) => fields[0] === 'event' && fields[1] === 'completed').length;
      }
      console.info('hot tickets: jobs delivered by the lanes', delivered);
      expect(delivered).toBeGreaterThan(0);
      expect(delivered).toBeLessThanOrEqual(transactions * lanes.length);
    } finally {
      redis.disconnect();
    }
  });

  it('clients waiting (Prefer: wait=10) on hot-ticket commands each get 201 with their reply id', async () => {
    const tickets = await hotTickets();
    const waiting = tickets.flatMap((ticketId) =>
      Array.from({ length: 20 }, (_, n) =>
        h.post(
          CREATE,
          { ticket_id: ticketId, ticket_reply: `waited t${ticketId} #${n + 1}` },
          { key: world.keys.all, headers: { Prefer: 'wait=10' } },
        ),
      ),
    );
    // All of them queued before a worker runs, so the lanes hold runs of waiting commands.
    for (let i = 0; i < 100 && (await metric(h.url, 'replyqueue_queue_jobs', '{state="waiting"}')) < waiting.length; i++)
      await sleep(50);
    expect(await metric(h.url, 'replyqueue_queue_jobs', '{state="waiting"}')).toBe(waiting.length);

    worker = await h.startPeer({ intake: false, worker: true }, { WORKER_PORT: '0' });
    const answers = await Promise.all(waiting);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
    const replies = await h.query(
      'SELECT ticket_reply_id, ticket_reply FROM ticket_replies WHERE ticket_reply_ticket_id IN (?)',
      [tickets],
    );
    expect(replies).toHaveLength(waiting.length);
    const idOf = new Map(replies.map((r) => [Number(r.ticket_reply_id), String(r.ticket_reply)]));
    for (const [i, answer] of answers.entries()) {
      const ticketId = tickets[Math.floor(i / 20)];
      expect(idOf.get(answer.body.data[0].insert_id)).toBe(`waited t${ticketId} #${(i % 20) + 1}`);
    }
    const url = worker.url as string;
    expect(await metric(url, 'replyqueue_commands_applied_total')).toBe(waiting.length);
    expect(await metric(url, 'replyqueue_commands_already_finished_total')).toBe(0);
    expect(await metric(url, 'replyqueue_apply_batch_commands_count')).toBeLessThan(waiting.length / 4);
    for (let i = 0; i < 100 && (await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')) > 0; i++) await sleep(100);
    expect(await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')).toBe(0);
  });

  it("in a run, a locked ticket's commands are left to their own delivery (parked once, in order) and a refused one answers later", async () => {
    // Three tickets of one lane: one free, one whose row another session holds, one closed after its command is accepted.
    const free = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const sameLane: number[] = [];
    while (sameLane.length < 2) {
      const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
      if (laneOf(ticket, h.config.QUEUE_PARTITIONS) === laneOf(free, h.config.QUEUE_PARTITIONS)) sameLane.push(ticket);
    }
    const [held, closing] = sameLane as [number, number];
    const post = async (ticketId: number, text: string) => {
      const answer = await h.post(CREATE, { ticket_id: ticketId, ticket_reply: text }, { key: world.keys.all });
      expect(answer.status).toBe(202);
      return answer.body.data[0].command_id as string;
    };
    // Lane order: free #1, held #1, closing #1, free #2, held #2, free #3, held #3, free #4.
    const ids: string[] = [];
    ids.push(await post(free, 'free #1'), await post(held, 'held #1'), await post(closing, 'closing #1'));
    for (let n = 2; n <= 4; n++) {
      ids.push(await post(free, `free #${n}`));
      if (n < 4) ids.push(await post(held, `held #${n}`));
    }
    await h.query('UPDATE tickets SET ticket_status = 5, ticket_closed_at = NOW() WHERE ticket_id = ?', [closing]);
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('START TRANSACTION');
    await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [held]);

    const heldIds = ids.filter((_, i) => [1, 4, 6].includes(i));
    const othersIds = ids.filter((id) => !heldIds.includes(id));
    try {
      worker = await h.startPeer({ intake: false, worker: true }, { WORKER_PORT: '0' });
      await waitForLedger(h, othersIds, 30_000);
      const url = worker.url as string;
      for (let i = 0; i < 100 && (await metric(url, 'replyqueue_commands_parked_total')) < 3; i++) await sleep(100);
      // Each of the held ticket's commands parked once, by its own delivery.
      expect(await metric(url, 'replyqueue_commands_parked_total')).toBe(3);
      expect(await h.query('SELECT command_id FROM rq_commands WHERE ticket_id = ?', [held])).toHaveLength(0);
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    await waitForLedger(h, ids, 30_000);
    const url = worker.url as string;
    const [refused] = await h.query('SELECT status, http_status FROM rq_commands WHERE ticket_id = ?', [closing]);
    expect(refused).toMatchObject({ status: 'failed', http_status: 409 });
    const texts = async (ticketId: number) =>
      (
        await h.query('SELECT ticket_reply FROM ticket_replies WHERE ticket_reply_ticket_id = ? ORDER BY ticket_reply_id', [
          ticketId,
        ])
      ).map((r) => r.ticket_reply);
    expect(await texts(free)).toEqual(['free #1', 'free #2', 'free #3', 'free #4']);
    expect(await texts(held)).toEqual(['held #1', 'held #2', 'held #3']);
    expect(await texts(closing)).toEqual([]);
    expect(await metric(url, 'replyqueue_commands_applied_total')).toBe(7);
    expect(await metric(url, 'replyqueue_commands_failed_total', '{reason="409"}')).toBe(1);
    expect(await metric(url, 'replyqueue_commands_already_finished_total')).toBe(0);
    for (let i = 0; i < 100 && (await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')) > 0; i++) await sleep(100);
    expect(await metric(url, 'replyqueue_queue_jobs', '{state="waiting"}')).toBe(0);
    expect(await metric(url, 'replyqueue_queue_jobs', '{state="failed"}')).toBe(0);
  });
});
