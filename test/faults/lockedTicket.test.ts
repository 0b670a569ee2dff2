import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { queuesText } from '../../src/cli/queues.js';
import { laneOf } from '../../src/queue/lanes.js';
import { readQueues } from '../../src/queue/overview.js';
import { expectExactlyOnce, type Sent, sendRound, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { COMMANDS, CREATE } from '../helpers/paths.js';

// A ticket row held FOR UPDATE by another session (an agent's long transaction, a report, a
// migration script) delays only that ticket. Commands for other tickets — in the same lane, in
// the same bulk chunk, in the same batch — keep flowing while it is held, and the held ticket's
// own commands wait, then take effect in the order they were accepted.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HOLD_MS = 9_000;

describe('a ticket row locked by another session (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('delays only its own commands, which then apply in order', async () => {
    const locked: number[] = [];
    for (let i = 0; i < 3; i++) locked.push(await addTicket(h.db, '2.6.7', { clientId: world.clientA }));
    // Free tickets: three in the first locked ticket's lane, and five others.
    const lane = laneOf(locked[0] as number, h.config.QUEUE_PARTITIONS);
    const sameLane: number[] = [];
    const others: number[] = [];
    while (sameLane.length < 3 || others.length < 5) {
      const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
      if (laneOf(ticket, h.config.QUEUE_PARTITIONS) === lane) {
        if (sameLane.length < 3) sameLane.push(ticket);
      } else if (
        others.length < 5 &&
        !locked.some((l) => laneOf(l, h.config.QUEUE_PARTITIONS) === laneOf(ticket, h.config.QUEUE_PARTITIONS))
      ) {
        others.push(ticket);
      }
    }
    const free = [...sameLane, ...others];
    const all = [...locked, ...free];

    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('START TRANSACTION');
    await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id IN (?) FOR UPDATE', [locked]);
    const heldAt = Date.now();
    const sent: Sent[] = [];
    let n = 0;
    try {
      // Rounds of one command per ticket (a ticket's commands one after the other), every third
      // round one bulk request carrying all of them — locked and free tickets in the same chunk.
      while (Date.now() - heldAt < HOLD_MS - 2_500) {
        n++;
        sent.push(...(await sendRound(h, world.keys.all, all, n, n % 3 === 0)));
        await sleep(100);
      }
      const freeSent = sent.filter((s) => free.includes(s.ticketId));
      await waitForLedger(
        h,
        freeSent.map((s) => s.commandId),
        5_000,
      );
      expect(Date.now() - heldAt, 'the free tickets finished while the lock was still held').toBeLessThan(HOLD_MS);

      // Accept-to-applied lag of the free tickets' commands, from the ledger.
      const rows = await h.query(
        `SELECT TIMESTAMPDIFF(MICROSECOND, accepted_at_utc, finished_at_utc) / 1000 AS lag_ms
           FROM rq_commands WHERE command_id IN (?) ORDER BY lag_ms`,
        [freeSent.map((s) => idBytes(s.commandId))],
      );
      const lags = rows.map((r) => Number(r.lag_ms));
      const p99 = lags[Math.ceil(lags.length * 0.99) - 1] as number;
      console.info(
        `${freeSent.length} commands to free tickets while 3 were locked: lag p50 ${lags[Math.floor(lags.length / 2)]} ms, p99 ${p99} ms`,
      );
      expect(p99).toBeLessThan(1_000);

      // The locked tickets have nothing yet; their commands say what they wait for.
      for (const ticket of locked) expect(await repliesOf(h.db, ticket)).toEqual([]);
      const waiting = sent.find((s) => s.ticketId === locked[0]) as Sent;
      const status = await h.get(`${COMMANDS}?command_id=${waiting.commandId}`, { key: world.keys.all });
      expect(status.body.data[0]).toMatchObject({ status: 'queued', waiting_for: 'ticket_lock' });
      // The operator sees them: in `queues` and in /metrics.
      const lockedSent = sent.filter((s) => locked.includes(s.ticketId)).length;
      const redis = new Redis(h.config.REDIS_URL);
      try {
        let view = await readQueues(redis, h.config.QUEUE_PREFIX, h.config.QUEUE_PARTITIONS);
        for (let i = 0; i < 30 && view.parked.commands < lockedSent; i++) {
          await sleep(100); // the last of them may still be on its way from its lane
          view = await readQueues(redis, h.config.QUEUE_PREFIX, h.config.QUEUE_PARTITIONS);
        }
        expect(view.parked).toEqual({ tickets: 3, commands: lockedSent });
        expect(queuesText(view)).toContain(`Parked: ${lockedSent} command(s) of 3 ticket(s)`);
      } finally {
        redis.disconnect();
      }
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      expect(metrics).toContain(`replyqueue_parked_commands{kind="commands"} ${lockedSent}`);
      expect(metrics).toContain('replyqueue_parked_commands{kind="tickets"} 3');
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      20_000,
    );
    // Every command once; each ticket's replies in acceptance order (reply ids and times).
    await expectExactlyOnce(h, sent);
  }, 60_000);

  it('a client waiting on a command of a locked ticket gets 202, then the outcome once the row is free', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('START TRANSACTION');
    await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [ticket]);
    const body = { ticket_id: ticket, ticket_reply: 'Behind a lock', status: 4 };
    const headers = { 'Idempotency-Key': 'locked-wait', Prefer: 'wait=2' };
    try {
      const first = await h.post(CREATE, body, { key: world.keys.all, headers });
      expect(first.status).toBe(202);
      // A retry while it waits is the same command, still waiting (not a new one, not a 409).
      await sleep(3_500);
      const retry = await h.post(CREATE, body, { key: world.keys.all, headers: { 'Idempotency-Key': 'locked-wait' } });
      expect(retry).toMatchObject({ status: 202, body: { data: [{ command_id: first.body.data[0].command_id }] } });
      const waiting = h.post(CREATE, body, {
        key: world.keys.all,
        headers: { 'Idempotency-Key': 'locked-wait', Prefer: 'wait=10' },
      });
      await sleep(500);
      await holder.query('COMMIT');
      const applied = await waiting;
      expect(applied.status).toBe(201);
      expect(applied.body.data[0].command_id).toBe(first.body.data[0].command_id);
    } finally {
      await holder.end();
    }
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Behind a lock']);
    const [row] = await h.query('SELECT ticket_status FROM tickets WHERE ticket_id = ?', [ticket]);
    expect(row?.ticket_status).toBe(4);
  });
});
